//! The model of a `#[steadfast::service]` trait, read from syn's tree: its
//! methods, each with its `#[steadfast::func]` keys, its doc text and its
//! arguments sorted by what they are. Nothing is judged here (`valid.rs` does).

use super::attr::{self, FuncAttrs, ServiceAttrs};
use crate::ctxt::Ctxt;
use syn::{FnArg, ItemTrait, Pat, Receiver, TraitItem, TraitItemFn, Type};

/// The trait as written.
pub(crate) struct Service<'a> {
    pub(crate) item: &'a ItemTrait,
    pub(crate) attrs: ServiceAttrs,
    pub(crate) methods: Vec<Method<'a>>,
    /// Items that are not methods (consts, types, macros).
    pub(crate) others: Vec<&'a TraitItem>,
}

/// One method as written.
pub(crate) struct Method<'a> {
    pub(crate) item: &'a TraitItemFn,
    pub(crate) func: FuncAttrs,
    /// The doc comment's text (for `Describe`).
    pub(crate) doc: String,
    /// `self`, `&self`, `&mut self`... if the first argument is one.
    pub(crate) receiver: Option<&'a Receiver>,
    /// The arguments after the receiver.
    pub(crate) args: Vec<Arg<'a>>,
}

/// An argument after the receiver.
pub(crate) struct Arg<'a> {
    pub(crate) pat: &'a Pat,
    pub(crate) ty: &'a Type,
    pub(crate) kind: ArgKind,
}

/// What an argument is, told by its type's name (the macro sees tokens, not
/// types): `Context` and `Blob` are steadfast's, anything else is the params.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgKind {
    /// `steadfast::Context` (or `steadfast::dispatch::Context`).
    Context,
    /// `steadfast::Blob`.
    Blob,
    /// The params, deserialized from JSON.
    Params,
}

impl ArgKind {
    fn of(ty: &Type) -> Self {
        match last_segment(ty).as_deref() {
            Some("Context") => ArgKind::Context,
            Some("Blob") => ArgKind::Blob,
            _ => ArgKind::Params,
        }
    }
}

/// The name of the last segment of a path type without generic arguments
/// (`steadfast::Blob` → `Blob`), if `ty` is one.
pub(crate) fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .filter(|segment| segment.arguments.is_none())
            .map(|segment| segment.ident.to_string()),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

impl<'a> Service<'a> {
    pub(crate) fn from_syn(cx: &mut Ctxt, attrs: ServiceAttrs, item: &'a ItemTrait) -> Self {
        let mut methods = Vec::new();
        let mut others = Vec::new();
        for trait_item in &item.items {
            match trait_item {
                TraitItem::Fn(method) => methods.push(Method::from_syn(cx, method)),
                other => others.push(other),
            }
        }
        Service {
            item,
            attrs,
            methods,
            others,
        }
    }
}

impl<'a> Method<'a> {
    fn from_syn(cx: &mut Ctxt, item: &'a TraitItemFn) -> Self {
        let mut receiver = None;
        let mut args = Vec::new();
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r),
                FnArg::Typed(typed) => args.push(Arg {
                    pat: &typed.pat,
                    ty: &typed.ty,
                    kind: ArgKind::of(&typed.ty),
                }),
            }
        }
        Method {
            item,
            func: attr::func(cx, &item.attrs),
            doc: attr::doc_text(&item.attrs),
            receiver,
            args,
        }
    }
}
