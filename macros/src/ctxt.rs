//! Collects every error a macro finds, each with its span (like serde's `Ctxt`).
//!
//! A macro reports all the mistakes in its input at once, not the first one
//! only; the collected errors become one `compile_error!` per span at the edge.

use proc_macro2::Span;
use quote::ToTokens;
use std::fmt::Display;

/// The errors found so far in one macro invocation.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An error covering the tokens of `node` (its first to its last token).
    pub(crate) fn error_spanned_by(&mut self, node: impl ToTokens, message: impl Display) {
        self.errors
            .push(syn::Error::new_spanned(node.into_token_stream(), message));
    }

    /// An error at one span.
    pub(crate) fn error_at(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// An error syn already made (a parse error, with its own span).
    pub(crate) fn syn_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// How many errors have been reported so far.
    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    /// The checked result, or every error found, combined.
    ///
    /// `value` is `None` only when a step gave up, and a step only gives up after
    /// reporting why; should one ever fail to, this says so rather than emitting
    /// nothing.
    pub(crate) fn check<T>(self, value: Option<T>) -> syn::Result<T> {
        let mut errors = self.errors.into_iter();
        match (errors.next(), value) {
            (Some(mut combined), _) => {
                combined.extend(errors);
                Err(combined)
            }
            (None, Some(value)) => Ok(value),
            (None, None) => Err(syn::Error::new(
                Span::call_site(),
                "steadfast-macros rejected this input without saying why; this is a bug, please report it",
            )),
        }
    }
}
