//! Checks the model and resolves it into a plan: one conversion per variant
//! (or for the struct), every attribute in a place where it means something.
//! All mistakes are reported, each at the user's token.

use super::ast::{Body, Input, Item};
use super::attr::{Attrs, Code, Status};
use crate::ctxt::Ctxt;
use proc_macro2::Span;
use syn::{Fields, Generics, Ident, Index, Member, Path, Type};

/// What to generate: checked, nothing left to decide.
pub(crate) struct Plan<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    /// The path of the `steadfast` crate (`::steadfast` unless `crate = "..."`).
    pub(crate) krate: Path,
    pub(crate) body: PlanBody<'a>,
}

pub(crate) enum PlanBody<'a> {
    Enum(Vec<(&'a Ident, Conversion<'a>)>),
    Struct(Conversion<'a>),
}

/// How one variant (or the struct) becomes a `Status`.
pub(crate) enum Conversion<'a> {
    /// This code, with the value's `Display` as the message.
    Code(Code),
    /// The only field's own `Into<Status>`.
    Transparent { member: Member, ty: &'a Type },
}

/// The plan for `input`; `None` when some conversion cannot be decided (the
/// reason is in `cx`). Other mistakes are reported to `cx` too, without
/// stopping the check.
pub(crate) fn check<'a>(cx: &mut Ctxt, input: &Input<'a>) -> Option<Plan<'a>> {
    let krate = match &input.attrs.krate {
        Some((path, _)) => path.clone(),
        None => syn::parse_quote!(::steadfast),
    };
    let body = match &input.body {
        Body::Enum(variants) => {
            let default = match &input.attrs.status {
                Some(Status::Code(code)) => Some(code),
                Some(Status::Transparent(span)) => {
                    cx.error_at(
                        *span,
                        "`#[status(transparent)]` goes on a variant with one field, not on an enum",
                    );
                    None
                }
                None => None,
            };
            // A default that was written but wrong has been reported; the
            // variants relying on it need no message of their own.
            let default_failed =
                input.attrs.failed || input.attrs.status.is_some() && default.is_none();
            let mut resolved = Vec::with_capacity(variants.len());
            for variant in variants {
                no_crate_key(cx, &variant.attrs, "a variant");
                no_field_attrs(cx, &variant.item);
                let conversion = match (&variant.attrs.status, default) {
                    (Some(status), _) => conversion(cx, status, &variant.item),
                    (None, Some(code)) if !variant.attrs.failed => {
                        Some(Conversion::Code(code.clone()))
                    }
                    (None, _) if variant.attrs.failed || default_failed => None,
                    (None, _) => {
                        cx.error_at(
                            variant.ident.span(),
                            format!(
                                "no status code for `{}::{}`: add `#[status(<code>)]` to the variant, \
                                 or a default `#[status(<code>)]` to the enum",
                                input.ident, variant.ident
                            ),
                        );
                        None
                    }
                };
                resolved.push(conversion.map(|c| (variant.ident, c)));
            }
            resolved
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(PlanBody::Enum)
        }
        Body::Struct(item) => {
            no_field_attrs(cx, item);
            match &input.attrs.status {
                Some(status) => conversion(cx, status, item).map(PlanBody::Struct),
                None if input.attrs.failed => None,
                None => {
                    cx.error_at(
                        input.ident.span(),
                        format!(
                            "no status code for `{}`: add `#[status(<code>)]` to the struct, \
                             as in `#[status(internal)]`",
                            input.ident
                        ),
                    );
                    None
                }
            }
        }
    };
    Some(Plan {
        ident: input.ident,
        generics: input.generics,
        krate,
        body: body?,
    })
}

fn conversion<'a>(cx: &mut Ctxt, status: &Status, item: &Item<'a>) -> Option<Conversion<'a>> {
    match status {
        Status::Code(code) => Some(Conversion::Code(code.clone())),
        Status::Transparent(span) => transparent(cx, *span, item.fields),
    }
}

/// The one field a `transparent` conversion hands over.
fn transparent<'a>(cx: &mut Ctxt, span: Span, fields: &'a Fields) -> Option<Conversion<'a>> {
    let mut iter = fields.iter();
    match (iter.next(), iter.next()) {
        (Some(field), None) => Some(Conversion::Transparent {
            member: match &field.ident {
                Some(ident) => Member::Named(ident.clone()),
                None => Member::Unnamed(Index { index: 0, span }),
            },
            ty: &field.ty,
        }),
        _ => {
            cx.error_at(
                span,
                format!(
                    "`#[status(transparent)]` needs exactly one field, found {}",
                    fields.len()
                ),
            );
            None
        }
    }
}

fn no_crate_key(cx: &mut Ctxt, attrs: &Attrs, place: &str) {
    if let Some((_, span)) = &attrs.krate {
        cx.error_at(
            *span,
            format!("`crate = \"...\"` goes on the type, not on {place}"),
        );
    }
}

fn no_field_attrs(cx: &mut Ctxt, item: &Item<'_>) {
    for attr in &item.misplaced {
        cx.error_spanned_by(
            attr,
            "`#[status]` goes on the type or on a variant, not on a field",
        );
    }
}
