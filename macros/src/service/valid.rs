//! Checks a service's model against the rules of a dispatch function and turns
//! it into a plan for `expand.rs`: every mistake is reported, each at the
//! user's token, and a plan is made only when there are none.
//!
//! What the macro cannot see (types are tokens here) is left to the compiler:
//! a params type that does not deserialize, a result that does not serialize,
//! an error that is not `Into<Status>`. `expand.rs` spans those checks at the
//! user's types.

use std::collections::BTreeMap;

use super::ast::{Arg, ArgKind, Method, Service, last_segment};
use crate::ctxt::Ctxt;
use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    GenericArgument, Ident, ItemTrait, Pat, Path, PathArguments, ReturnType, TraitItemFn, Type,
};

/// The longest function name, in bytes: `steadfast::dispatch::MAX_NAME_BYTES`
/// (a proc-macro crate cannot read that one; the tests below keep them equal).
const MAX_NAME_BYTES: usize = 256;

/// What keeps `name` from being a function's name, if anything, by the
/// runtime's rule (`DispatchServer::mount` refuses any other name): 1 to
/// [`MAX_NAME_BYTES`] bytes of visible ASCII. The test
/// `the_name_rule_is_the_runtimes` below checks that the two agree.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!("is {} bytes long", name.len()))
    } else {
        name.bytes()
            .find(|byte| !byte.is_ascii_graphic())
            .map(|byte| match byte {
                b' ' => "has a space".to_owned(),
                byte if byte.is_ascii() => format!("has {:?}", char::from(byte)),
                _ => "is not ASCII".to_owned(),
            })
    }
}

/// The rule, for messages.
fn name_rule() -> String {
    format!(
        "a function's name is its `x-func-name` metadata value: 1 to {MAX_NAME_BYTES} bytes of visible ASCII, no spaces"
    )
}

/// The methods every generated client has; a trait method of the same name
/// would clash with them.
const CLIENT_METHODS: [&str; 6] = [
    "new",
    "connect",
    "connect_lazy",
    "from_dispatch",
    "into_dispatch",
    "upstream",
];

/// A checked service.
pub(crate) struct Plan<'a> {
    pub(crate) item: &'a ItemTrait,
    /// The path to the `steadfast` crate.
    pub(crate) krate: Path,
    pub(crate) functions: Vec<FnPlan<'a>>,
}

/// A checked method: one dispatch function.
pub(crate) struct FnPlan<'a> {
    pub(crate) method: &'a TraitItemFn,
    /// The `x-func-name` that calls it.
    pub(crate) wire_name: String,
    pub(crate) heartbeat_ms: Option<u32>,
    /// Whether the method takes a `Context`.
    pub(crate) context: bool,
    /// The params type, if the method takes params (else `()` travels).
    pub(crate) params: Option<&'a Type>,
    /// The client's name for the params argument.
    pub(crate) params_ident: Ident,
    /// The client's name for the blob argument, if the method takes a blob.
    pub(crate) blob: Option<Ident>,
    /// `R` in `Result<R, _>` or `Result<(R, BlobSource), _>`.
    pub(crate) result: &'a Type,
    /// The method's return type as written.
    pub(crate) output: &'a Type,
    /// `E` in `Result<R, E>` (a one-argument `Result<R>` alias names none).
    pub(crate) error: Option<&'a Type>,
    pub(crate) returns_blob: bool,
    pub(crate) doc: String,
}

pub(crate) fn check<'a>(cx: &mut Ctxt, service: &Service<'a>) -> Option<Plan<'a>> {
    let item = service.item;
    let errors_before = cx.len();
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &item.generics,
            "a `#[steadfast::service]` trait cannot be generic: its functions are called by name, with concrete types",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        cx.error_spanned_by(
            unsafety,
            "a `#[steadfast::service]` trait cannot be `unsafe`",
        );
    }
    if let Some(auto) = &item.auto_token {
        cx.error_spanned_by(
            auto,
            "a `#[steadfast::service]` trait cannot be an auto trait",
        );
    }
    for other in &service.others {
        cx.error_spanned_by(
            other,
            "a `#[steadfast::service]` trait holds only `async fn` methods, each one a remote function; move this item to another trait or impl",
        );
    }

    let functions: Vec<FnPlan<'a>> = service
        .methods
        .iter()
        .filter_map(|method| check_method(cx, method))
        .collect();

    let mut by_name: BTreeMap<&str, &FnPlan<'a>> = BTreeMap::new();
    for function in &functions {
        if let Some(first) = by_name.insert(&function.wire_name, function) {
            let span = service
                .methods
                .iter()
                .find(|method| std::ptr::eq(method.item, function.method))
                .and_then(|method| method.func.name.as_ref().map(|name| name.span()))
                .unwrap_or_else(|| function.method.sig.ident.span());
            cx.error_at(
                span,
                format!(
                    "two functions are named `{}` (`{}` and `{}`); give one another name with `#[steadfast::func(name = \"...\")]`",
                    function.wire_name,
                    first.method.sig.ident.unraw(),
                    function.method.sig.ident.unraw()
                ),
            );
        }
    }

    if cx.len() > errors_before {
        return None;
    }
    Some(Plan {
        item,
        krate: service
            .attrs
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::steadfast)),
        functions,
    })
}

fn check_method<'a>(cx: &mut Ctxt, method: &Method<'a>) -> Option<FnPlan<'a>> {
    let errors_before = cx.len();
    let sig = &method.item.sig;
    let name = sig.ident.unraw().to_string();

    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            format!(
                "`{name}` is not `async`: each method of a `#[steadfast::service]` trait is a remote call; write `async fn {name}`"
            ),
        );
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "a remote function cannot be `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(unsafety, "a remote function cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a remote function cannot have an ABI");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a remote function cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            format!(
                "`{name}` cannot be generic: its params and result travel as JSON, with concrete types"
            ),
        );
    }
    if CLIENT_METHODS.contains(&name.as_str()) {
        cx.error_spanned_by(
            &sig.ident,
            format!(
                "`{name}` is also a method of the generated client; name the Rust method otherwise and keep the wire name with `#[steadfast::func(name = \"{name}\")]`"
            ),
        );
    }

    match method.receiver {
        None => cx.error_spanned_by(
            &sig.ident,
            format!(
                "`{name}` has no `&self`: each function of a service takes `&self` first, as in `async fn {name}(&self, params: P)`"
            ),
        ),
        Some(receiver)
            if receiver.reference.is_none()
                || receiver.mutability.is_some()
                || receiver.colon_token.is_some() =>
        {
            cx.error_spanned_by(
                receiver,
                format!(
                    "`{name}` takes `{}`; a function of a service takes `&self`: the server shares the service between the calls it runs at once",
                    receiver_text(receiver)
                ),
            );
        }
        Some(_) => {}
    }

    let args = check_args(cx, &name, &method.args);
    let (output, result, error, returns_blob) = check_output(cx, &name, method)?;
    let wire_name = check_name(cx, &name, method);
    let heartbeat_ms = check_heartbeat(cx, method);

    if cx.len() > errors_before {
        return None;
    }
    let (context, params, params_ident, blob) = args?;
    Some(FnPlan {
        method: method.item,
        wire_name,
        heartbeat_ms,
        context,
        params,
        params_ident,
        blob,
        result,
        output,
        error,
        returns_blob,
        doc: method.doc.clone(),
    })
}

/// A receiver as written, spaced as people write it (`&mut self`).
fn receiver_text(receiver: &syn::Receiver) -> String {
    match (&receiver.reference, &receiver.colon_token) {
        (_, Some(_)) => format!("self: {}", receiver.ty.to_token_stream()),
        (Some(_), None) if receiver.mutability.is_some() => "&mut self".to_owned(),
        (Some(_), None) => "&self".to_owned(),
        (None, None) if receiver.mutability.is_some() => "mut self".to_owned(),
        (None, None) => "self".to_owned(),
    }
}

type Args<'a> = (bool, Option<&'a Type>, Ident, Option<Ident>);

/// Checks the order and shape of the arguments after `&self`: an optional
/// `Context`, at most one params value, an optional `Blob`.
fn check_args<'a>(cx: &mut Ctxt, name: &str, args: &[Arg<'a>]) -> Option<Args<'a>> {
    let errors_before = cx.len();
    let mut context = false;
    let mut params: Option<&Arg<'a>> = None;
    let mut blob: Option<&Arg<'a>> = None;
    for (index, arg) in args.iter().enumerate() {
        match arg.kind {
            ArgKind::Context if context => {
                cx.error_spanned_by(arg.ty, format!("`{name}` takes a second `Context`"));
            }
            ArgKind::Context if index != 0 => cx.error_spanned_by(
                arg.ty,
                "the `Context` goes first, right after `&self`",
            ),
            ArgKind::Context => context = true,
            ArgKind::Blob if blob.is_some() => cx.error_spanned_by(
                arg.ty,
                format!(
                    "`{name}` takes a second `Blob`; a function takes at most one blob, after its params"
                ),
            ),
            ArgKind::Blob => blob = Some(arg),
            ArgKind::Params if blob.is_some() => cx.error_spanned_by(
                arg.ty,
                "the params go before the `Blob`: `(&self, [ctx: Context,] params: P, [input: Blob])`",
            ),
            ArgKind::Params if params.is_some() => cx.error_spanned_by(
                arg.ty,
                format!(
                    "`{name}` takes a second params value; a function takes one, deserialized from its JSON: put both in one struct that derives `serde::Serialize` and `serde::Deserialize`"
                ),
            ),
            ArgKind::Params => {
                check_params_type(cx, arg.ty);
                params = Some(arg);
            }
        }
    }
    if cx.len() > errors_before {
        return None;
    }
    let params_ident = params.map_or_else(
        || Ident::new("params", Span::call_site()),
        |arg| client_ident(arg.pat, "params"),
    );
    let blob_ident = blob.map(|arg| {
        let ident = client_ident(arg.pat, "input");
        if ident == params_ident {
            Ident::new("blob", ident.span())
        } else {
            ident
        }
    });
    Some((context, params.map(|arg| arg.ty), params_ident, blob_ident))
}

/// A params type must be a type the server can deserialize into: owned and
/// named.
fn check_params_type(cx: &mut Ctxt, ty: &Type) {
    match ty {
        Type::Reference(_) => cx.error_spanned_by(
            ty,
            "params are deserialized from JSON into an owned value: take an owned type (`String`, not `&str`)",
        ),
        Type::ImplTrait(_)
        | Type::Infer(_)
        | Type::Never(_)
        | Type::TraitObject(_)
        | Type::BareFn(_)
        | Type::Ptr(_) => cx.error_spanned_by(
            ty,
            "params need a concrete type that implements `serde::Deserialize` (a struct, usually)",
        ),
        _ => {}
    }
}

/// The name the client gives an argument: the trait's, when it is a plain
/// identifier, else `fallback`.
fn client_ident(pat: &Pat, fallback: &str) -> Ident {
    match pat {
        Pat::Ident(pat) if pat.subpat.is_none() && pat.ident != "self" => pat.ident.clone(),
        _ => Ident::new(fallback, pat.span()),
    }
}

/// `Result<R, E>` (or a one-argument `Result<R>` alias) → (the whole type, `R`,
/// `E`, whether `R` is `(R, BlobSource)`).
fn check_output<'a>(
    cx: &mut Ctxt,
    name: &str,
    method: &Method<'a>,
) -> Option<(&'a Type, &'a Type, Option<&'a Type>, bool)> {
    let sig = &method.item.sig;
    let expected = "`Result<R, Status>` (`R: serde::Serialize + serde::Deserialize`), or `Result<(R, BlobSource), Status>` to send a blob back; the error may be any `E: Into<tonic::Status>`";
    let output = match &sig.output {
        ReturnType::Type(_, ty) => &**ty,
        ReturnType::Default => {
            cx.error_at(
                sig.paren_token.span.close(),
                format!("`{name}` returns nothing; a remote function returns {expected}"),
            );
            return None;
        }
    };
    let Some((ok, error)) = result_types(output) else {
        cx.error_spanned_by(output, format!("`{name}` must return {expected}"));
        return None;
    };
    match ok {
        Type::Tuple(tuple)
            if tuple.elems.len() == 2
                && last_segment(&tuple.elems[1]).as_deref() == Some("BlobSource") =>
        {
            Some((output, &tuple.elems[0], error, true))
        }
        Type::ImplTrait(_) | Type::Infer(_) => {
            cx.error_spanned_by(
                ok,
                "a function's result needs a concrete type that implements `serde::Serialize`",
            );
            None
        }
        ok => Some((output, ok, error, false)),
    }
}

/// `T` and `E` in a path type ending in `Result<T, E>` (`E` is `None` in a
/// `Result<T>` alias).
fn result_types(ty: &Type) -> Option<(&Type, Option<&Type>)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let ok = types.next()?;
    let error = types.next();
    types.next().is_none().then_some((ok, error))
}

/// The wire name: `name = "..."`, else the method's name (without `r#`), which
/// must then be a valid name itself (an error at the method's name, pointing
/// to `name = "..."`).
fn check_name(cx: &mut Ctxt, method_name: &str, method: &Method<'_>) -> String {
    let Some(literal) = &method.func.name else {
        if let Some(problem) = name_problem(method_name) {
            cx.error_spanned_by(
                &method.item.sig.ident,
                format!(
                    "the method's name {problem}, and it is the function's name unless \
                     `#[steadfast::func(name = \"...\")]` gives another; {}",
                    name_rule()
                ),
            );
        }
        return method_name.to_owned();
    };
    let name = literal.value();
    if let Some(problem) = name_problem(&name) {
        cx.error_spanned_by(literal, format!("this name {problem}; {}", name_rule()));
    }
    name
}

fn check_heartbeat(cx: &mut Ctxt, method: &Method<'_>) -> Option<u32> {
    let literal = method.func.heartbeat_ms.as_ref()?;
    match literal.base10_parse::<u32>() {
        Ok(0) | Err(_) => {
            cx.error_spanned_by(
                literal,
                "`heartbeat_ms` is the interval of silence after which a heartbeat is sent: a number of milliseconds from 1 to 4294967295",
            );
            None
        }
        Ok(ms) => Some(ms),
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_NAME_BYTES, name_problem};
    use steadfast::dispatch::{self, Context, DispatchServer};

    async fn handler(_: Context, _: ()) -> Result<(), tonic::Status> {
        Ok(())
    }

    /// The macro accepts exactly the names `DispatchServer::mount` accepts (so
    /// that the server a macro generates always mounts).
    #[test]
    fn the_name_rule_is_the_runtimes() {
        assert_eq!(MAX_NAME_BYTES, dispatch::MAX_NAME_BYTES);
        let mut names: Vec<String> = (0..=0x7f_u8).map(|b| char::from(b).to_string()).collect();
        names.extend(
            [
                "", "é", "grüße", "a b", "a\u{a0}b", "x-func", "a.b/c:d", "ß", "\u{200b}", "🙂",
            ]
            .map(str::to_owned),
        );
        for len in [MAX_NAME_BYTES - 1, MAX_NAME_BYTES, MAX_NAME_BYTES + 1, 301] {
            names.push("a".repeat(len));
            names.push(format!("{}é", "a".repeat(len.saturating_sub(2))));
        }
        for name in &names {
            let runtime = DispatchServer::new()
                .mount(dispatch::function(name.as_str(), handler))
                .is_ok();
            assert_eq!(
                name_problem(name).is_none(),
                runtime,
                "{name:?}: the macro says {:?}, the runtime {}",
                name_problem(name),
                if runtime { "mounts it" } else { "refuses it" }
            );
        }
    }
}
