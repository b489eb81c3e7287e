//! The `#[status(...)]` attribute, parsed as written, wherever it appears.
//!
//! Grammar (one or more comma-separated items, over one or more attributes):
//!
//! ```text
//! #[status(<code>)]            a gRPC code in snake_case: `not_found`, `internal`, ...
//! #[status(transparent)]       convert the one field with its own `Into<Status>`
//! #[status(crate = "path")]    where the `steadfast` crate is (on the type only)
//! ```
//!
//! This module only reads; whether an item is allowed where it was written
//! (`crate` on a variant, `transparent` on an enum) is `valid.rs`'s business.

use crate::ctxt::Ctxt;
use crate::meta::{crate_path, path_text};
use proc_macro2::Span;
use syn::{Attribute, Ident, Meta, Path, Token, meta::ParseNestedMeta, token};

/// The attribute's name, also registered as the derive's helper attribute.
pub(crate) const STATUS: &str = "status";

/// The codes an error may map to: tonic's `Code` variants but `Ok`, as
/// (snake_case name in the attribute, variant name in `tonic::Code`).
const CODES: [(&str, &str); 16] = [
    ("cancelled", "Cancelled"),
    ("unknown", "Unknown"),
    ("invalid_argument", "InvalidArgument"),
    ("deadline_exceeded", "DeadlineExceeded"),
    ("not_found", "NotFound"),
    ("already_exists", "AlreadyExists"),
    ("permission_denied", "PermissionDenied"),
    ("resource_exhausted", "ResourceExhausted"),
    ("failed_precondition", "FailedPrecondition"),
    ("aborted", "Aborted"),
    ("out_of_range", "OutOfRange"),
    ("unimplemented", "Unimplemented"),
    ("internal", "Internal"),
    ("unavailable", "Unavailable"),
    ("data_loss", "DataLoss"),
    ("unauthenticated", "Unauthenticated"),
];

/// The `#[status(...)]` items of one type, variant or field.
#[derive(Default)]
pub(crate) struct Attrs {
    /// A code or `transparent`.
    pub(crate) status: Option<Status>,
    /// `crate = "..."`, with the span of the `crate` key.
    pub(crate) krate: Option<(Path, Span)>,
    /// A `#[status]` here was wrong (and reported): a missing code is no news.
    pub(crate) failed: bool,
}

/// What a `#[status(...)]` says to do with a value.
#[derive(Clone)]
pub(crate) enum Status {
    /// `Status::new(code, value.to_string())`.
    Code(Code),
    /// `Into::<Status>::into(the only field)`; the span of `transparent`.
    Transparent(Span),
}

/// A gRPC code as the user wrote it.
#[derive(Clone)]
pub(crate) struct Code {
    /// The name of the variant of `tonic::Code`, spanned at the user's token.
    pub(crate) variant: Ident,
    /// The user's token (`not_found`).
    pub(crate) written: Ident,
}

impl Status {
    fn describe(&self) -> String {
        match self {
            Status::Code(code) => format!("`{}`", code.written),
            Status::Transparent(_) => "`transparent`".to_owned(),
        }
    }
}

/// Reads every `#[status]` among `attrs`; mistakes go to `cx`, and the rest of
/// the attributes are still read.
pub(crate) fn get(cx: &mut Ctxt, attrs: &[Attribute]) -> Attrs {
    let mut out = Attrs::default();
    let errors_before = cx.len();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(STATUS)) {
        match &attr.meta {
            Meta::List(list) if !list.tokens.is_empty() => {
                if let Err(error) = attr.parse_nested_meta(|meta| item(cx, &mut out, meta)) {
                    cx.syn_error(error);
                }
            }
            Meta::List(list) => cx.error_spanned_by(
                list,
                format!("`#[status()]` needs a status code, one of {}", code_list()),
            ),
            Meta::Path(path) => cx.error_spanned_by(
                path,
                format!(
                    "`#[status]` needs a status code, as in `#[status(not_found)]`; one of {}",
                    code_list()
                ),
            ),
            Meta::NameValue(nv) => cx.error_spanned_by(
                nv,
                "expected `#[status(<code>)]`, as in `#[status(not_found)]`",
            ),
        }
    }
    out.failed = cx.len() > errors_before;
    out
}

/// One item inside `#[status(...)]`.
fn item(cx: &mut Ctxt, out: &mut Attrs, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
    if let Some(key) = meta.path.get_ident().filter(|ident| *ident == "crate") {
        let span = key.span();
        let path = crate_path(&meta)?;
        if out.krate.is_some() {
            cx.error_at(span, "duplicate `crate = \"...\"` in `#[status]`");
        } else {
            out.krate = Some((path, span));
        }
        return Ok(());
    }

    let name = path_text(&meta.path);
    if meta.input.peek(Token![=]) || meta.input.peek(token::Paren) {
        return Err(meta.error(format!(
            "unknown key `{name}` in `#[status]`: expected a status code such as `not_found`, `transparent`, or `crate = \"...\"`"
        )));
    }

    let status = match meta.path.get_ident() {
        Some(ident) if ident == "transparent" => Status::Transparent(ident.span()),
        Some(ident) => match code(ident) {
            Ok(code) => Status::Code(code),
            Err(message) => {
                cx.error_at(ident.span(), message);
                return Ok(());
            }
        },
        None => {
            cx.error_spanned_by(&meta.path, unknown_code(&name));
            return Ok(());
        }
    };
    match &out.status {
        Some(first) => cx.error_spanned_by(
            &meta.path,
            format!(
                "duplicate status code: this item already has {}",
                first.describe()
            ),
        ),
        None => out.status = Some(status),
    }
    Ok(())
}

/// The code `ident` names, or why it names none.
fn code(ident: &Ident) -> Result<Code, String> {
    let name = ident.to_string();
    if let Some((_, variant)) = CODES.iter().find(|(snake, _)| *snake == name) {
        return Ok(Code {
            variant: Ident::new(variant, ident.span()),
            written: ident.clone(),
        });
    }
    Err(unknown_code(&name))
}

/// Why `name` (an identifier or a path) is not a code, with the right
/// spelling when it is a code spelt otherwise (`NotFound`, `Code::NotFound`).
fn unknown_code(name: &str) -> String {
    let last = name.rsplit("::").next().unwrap_or(name);
    if normalize(last) == "ok" {
        return "`ok` is not an error code: a `Status` made from an error cannot be OK".to_owned();
    }
    match CODES
        .iter()
        .find(|(snake, _)| normalize(snake) == normalize(last))
    {
        Some((snake, _)) => format!("unknown status code `{name}`; did you mean `{snake}`?"),
        None => format!(
            "unknown status code `{name}`; expected one of {}, or `transparent`",
            code_list()
        ),
    }
}

/// `NotFound`, `NOT_FOUND` and `notfound` all become `notfound`.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn code_list() -> String {
    let names: Vec<String> = CODES
        .iter()
        .map(|(snake, _)| format!("`{snake}`"))
        .collect();
    names.join(", ")
}
