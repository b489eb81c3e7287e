//! The attributes of `#[steadfast::service]`, parsed as written.
//!
//! Grammar:
//!
//! ```text
//! #[steadfast::service]                          on a trait
//! #[steadfast::service(crate = "path")]          where `steadfast` is, if renamed
//! #[steadfast::func(name = "wire-name", heartbeat_ms = 500)]   on a method, keys optional
//! ```
//!
//! This module only reads; whether a name is a valid `x-func-name` or an
//! interval is positive is `valid.rs`'s business.

use crate::ctxt::Ctxt;
use crate::meta::{crate_path, path_text};
use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitInt, LitStr, Meta, Path};

/// The method attribute's name (its last path segment: `#[steadfast::func]` or,
/// after `use steadfast::func`, `#[func]`).
pub(crate) const FUNC: &str = "func";

/// The arguments of `#[steadfast::service(...)]`.
#[derive(Default)]
pub(crate) struct ServiceAttrs {
    /// `crate = "..."`.
    pub(crate) krate: Option<Path>,
}

/// The `#[steadfast::func(...)]` keys of one method.
#[derive(Default)]
pub(crate) struct FuncAttrs {
    /// `name = "..."`: the wire name (`x-func-name`).
    pub(crate) name: Option<LitStr>,
    /// `heartbeat_ms = N`.
    pub(crate) heartbeat_ms: Option<LitInt>,
}

/// Reads the arguments of `#[steadfast::service(...)]`.
pub(crate) fn service(cx: &mut Ctxt, args: TokenStream) -> ServiceAttrs {
    let mut out = ServiceAttrs::default();
    if args.is_empty() {
        return out;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            if out.krate.replace(crate_path(&meta)?).is_some() {
                return Err(meta.error("duplicate `crate = \"...\"`"));
            }
            Ok(())
        } else {
            Err(unknown_key(&meta, "`crate = \"...\"`"))
        }
    });
    if let Err(error) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(error);
    }
    out
}

/// Whether `attr` is a `#[steadfast::func]`.
pub(crate) fn is_func(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == FUNC)
}

/// Reads every `#[steadfast::func(...)]` among a method's attributes.
pub(crate) fn func(cx: &mut Ctxt, attrs: &[Attribute]) -> FuncAttrs {
    let mut out = FuncAttrs::default();
    for attr in attrs.iter().filter(|attr| is_func(attr)) {
        match &attr.meta {
            // `#[steadfast::func]` alone says nothing, and is harmless.
            Meta::Path(_) => {}
            Meta::List(_) => {
                if let Err(error) = attr.parse_nested_meta(|meta| func_item(&mut out, meta)) {
                    cx.syn_error(error);
                }
            }
            Meta::NameValue(nv) => cx.error_spanned_by(
                nv,
                "expected `#[steadfast::func(name = \"...\", heartbeat_ms = N)]`",
            ),
        }
    }
    out
}

fn func_item(out: &mut FuncAttrs, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.path.is_ident("name") {
        let literal: LitStr = meta.value()?.parse()?;
        if out.name.replace(literal).is_some() {
            return Err(meta.error("duplicate `name`"));
        }
        Ok(())
    } else if meta.path.is_ident("heartbeat_ms") {
        let literal: LitInt = meta.value()?.parse()?;
        if out.heartbeat_ms.replace(literal).is_some() {
            return Err(meta.error("duplicate `heartbeat_ms`"));
        }
        Ok(())
    } else {
        Err(unknown_key(&meta, "`name = \"...\"` or `heartbeat_ms = N`"))
    }
}

fn unknown_key(meta: &ParseNestedMeta<'_>, expected: &str) -> syn::Error {
    meta.error(format!(
        "unknown key `{}`; expected {expected}",
        path_text(&meta.path)
    ))
}

/// The text of a method's doc comments, one line per `///` line, with the one
/// space after `///` removed and blank lines at either end dropped.
pub(crate) fn doc_text(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|text| {
            text.split('\n')
                .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    lines.join("\n").trim().to_owned()
}
