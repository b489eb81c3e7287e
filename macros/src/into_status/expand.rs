//! Turns a checked plan into `impl From<YourType> for tonic::Status`, and
//! produces the stand-in impl emitted beside errors.
//!
//! Paths go through `<crate>::__private::tonic`, so a user needs `steadfast`
//! only. Tokens that can fail to type-check are spanned at the user's tokens:
//! a type without `Display` is reported at its name, a transparent field that
//! is not `Into<Status>` at its type.

use super::valid::{Conversion, Plan, PlanBody};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, GenericParam, Generics, Ident, Member, Path, Type};

pub(crate) fn derive(plan: &Plan<'_>) -> TokenStream {
    let Plan {
        ident,
        generics,
        krate,
        body,
    } = plan;
    let status = quote!(#krate::__private::tonic::Status);
    let code = quote!(#krate::__private::tonic::Code);
    let (impl_generics, ty_generics, _) = generics.split_for_impl();

    // Local names. `__` because a binding named like a const in scope would
    // match the const; call-site spans (not mixed-site) because the two uses
    // that can fail to type-check name them at the user's token instead, and
    // tokens of the input resolve like call-site ones.
    let error = Ident::new("__error", Span::call_site());
    let code_local = Ident::new("__code", Span::call_site());
    let value = Ident::new("__value", Span::call_site());
    // A type without `Display` is reported at its name.
    let message = {
        let error = Ident::new("__error", ident.span());
        quote_spanned!(ident.span()=> ::std::format!("{}", #error))
    };
    // A transparent field that is not `Into<Status>` is reported at its type.
    let into_status = |ty: &Type, binding: &Ident, member: Option<&Member>| {
        let span = ty.span();
        let mut binding = binding.clone();
        binding.set_span(span);
        let member = member.map(|member| {
            let mut member = member.clone();
            match &mut member {
                Member::Named(ident) => ident.set_span(span),
                Member::Unnamed(index) => index.span = span,
            }
            quote!(.#member)
        });
        quote_spanned!(span=> ::core::convert::Into::<#status>::into(#binding #member))
    };

    // Bounds the impl needs when they depend on the type's parameters. A bound
    // without parameters stays out of the where clause (it would be a trivial
    // bound, an error of its own); the body then reports the missing trait at
    // the user's token.
    let conversions: Vec<&Conversion<'_>> = match body {
        PlanBody::Enum(variants) => variants.iter().map(|(_, c)| c).collect(),
        PlanBody::Struct(conversion) => vec![conversion],
    };
    // Whether any conversion uses the message (only transparent ones: no
    // `Display` needed at all).
    let uses_message = conversions.iter().any(|c| matches!(c, Conversion::Code(_)));
    let params = param_names(generics);
    let mut bounds: Vec<TokenStream> = Vec::new();
    if uses_message && !generics.params.is_empty() {
        bounds.push(quote_spanned!(ident.span()=> #ident #ty_generics: ::core::fmt::Display));
    }
    for conversion in conversions {
        if let Conversion::Transparent { ty, .. } = conversion
            && mentions(ty.to_token_stream(), &params)
        {
            bounds.push(quote_spanned!(ty.span()=> #ty: ::core::convert::Into<#status>));
        }
    }
    let existing = generics.where_clause.iter().flat_map(|w| &w.predicates);
    let where_clause = if generics.where_clause.is_some() || !bounds.is_empty() {
        quote!(where #(#existing,)* #(#bounds,)*)
    } else {
        TokenStream::new()
    };

    let conversion = match body {
        PlanBody::Struct(Conversion::Code(c)) => {
            let variant = &c.variant;
            quote!(#status::new(#code::#variant, #message))
        }
        PlanBody::Struct(Conversion::Transparent { member, ty }) => {
            into_status(ty, &error, Some(member))
        }
        PlanBody::Enum(variants) => {
            let arms = variants
                .iter()
                .map(|(variant, conversion)| match conversion {
                    Conversion::Code(c) => {
                        let code_variant = &c.variant;
                        quote!(#error @ #ident::#variant { .. } => (#code::#code_variant, #error),)
                    }
                    Conversion::Transparent { member, ty } => {
                        let into = into_status(ty, &value, None);
                        if uses_message {
                            quote!(#ident::#variant { #member: #value } => return #into,)
                        } else {
                            quote!(#ident::#variant { #member: #value } => #into,)
                        }
                    }
                });
            if uses_message {
                quote! {
                    let (#code_local, #error) = match #error { #(#arms)* };
                    #status::new(#code_local, #message)
                }
            } else {
                // Only transparent variants, or none at all: no message to build.
                quote!(match #error { #(#arms)* })
            }
        }
    };

    quote! {
        #[automatically_derived]
        impl #impl_generics ::core::convert::From<#ident #ty_generics> for #status #where_clause {
            fn from(#error: #ident #ty_generics) -> Self {
                #conversion
            }
        }
    }
}

/// The impl emitted beside compile errors, so that code using the type (`?`
/// in a handler) does not add errors of its own.
pub(crate) fn fallback(input: &DeriveInput, krate: Option<&Path>) -> TokenStream {
    let ident = &input.ident;
    let krate = match krate {
        Some(path) => quote!(#path),
        None => quote!(::steadfast),
    };
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::core::convert::From<#ident #ty_generics>
            for #krate::__private::tonic::Status #where_clause
        {
            fn from(_: #ident #ty_generics) -> Self {
                ::core::unreachable!()
            }
        }
    }
}

/// The names of the type's generic parameters (types, consts and lifetimes).
fn param_names(generics: &Generics) -> Vec<Ident> {
    generics
        .params
        .iter()
        .map(|param| match param {
            GenericParam::Type(t) => t.ident.clone(),
            GenericParam::Const(c) => c.ident.clone(),
            GenericParam::Lifetime(l) => l.lifetime.ident.clone(),
        })
        .collect()
}

/// Whether `tokens` name any of `params` (a conservative test: a false
/// positive only adds a bound the compiler checks anyway).
fn mentions(tokens: TokenStream, params: &[Ident]) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => params.contains(&ident),
        TokenTree::Group(group) => mentions(group.stream(), params),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}
