//! The derive's input as the user wrote it: the type, its variants or fields,
//! and their `#[status]` attributes. Nothing here is checked yet.

use super::attr::{self, Attrs};
use crate::ctxt::Ctxt;
use syn::{Attribute, Data, DeriveInput, Fields, Generics, Ident};

/// A type deriving `IntoStatus`.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: Attrs,
    pub(crate) body: Body<'a>,
}

pub(crate) enum Body<'a> {
    Enum(Vec<Variant<'a>>),
    Struct(Item<'a>),
}

/// A variant of an enum, or the fields of a struct: what gets one conversion.
pub(crate) struct Item<'a> {
    pub(crate) fields: &'a Fields,
    /// `#[status]` attributes on fields, which have no business there (kept
    /// unparsed: the one thing to say about them is where they are).
    pub(crate) misplaced: Vec<&'a Attribute>,
}

pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: Attrs,
    pub(crate) item: Item<'a>,
}

impl<'a> Input<'a> {
    /// The model of `node`; `None` (with the error in `cx`) for a union.
    pub(crate) fn from_syn(cx: &mut Ctxt, node: &'a DeriveInput) -> Option<Self> {
        // In source order, so that the errors come in source order.
        let attrs = attr::get(cx, &node.attrs);
        let body = match &node.data {
            Data::Enum(data) => Body::Enum(
                data.variants
                    .iter()
                    .map(|variant| Variant {
                        ident: &variant.ident,
                        attrs: attr::get(cx, &variant.attrs),
                        item: Item::from_syn(&variant.fields),
                    })
                    .collect(),
            ),
            Data::Struct(data) => Body::Struct(Item::from_syn(&data.fields)),
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "`IntoStatus` cannot be derived for a union; use an enum or a struct",
                );
                return None;
            }
        };
        Some(Input {
            ident: &node.ident,
            generics: &node.generics,
            attrs,
            body,
        })
    }
}

impl<'a> Item<'a> {
    fn from_syn(fields: &'a Fields) -> Self {
        let misplaced = fields
            .iter()
            .flat_map(|field| &field.attrs)
            .filter(|attr| attr.path().is_ident(attr::STATUS))
            .collect();
        Item { fields, misplaced }
    }
}
