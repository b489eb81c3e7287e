//! The glue between each synthesized frame message and the runtime: an
//! implementation of `__private::Frame`, at the package's module.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Method, ServiceSettings, rust_type};

pub(crate) fn generate(methods: &[Method<'_>], settings: &ServiceSettings) -> TokenStream {
    let sf = &settings.crate_path;
    let impls = methods.iter().filter_map(|m| {
        let frame = m.model.frame.as_ref()?;
        let frame_type = rust_type(&m.wire.output_type, "");
        let message = rust_type(&m.original.output_type, "");
        // prost puts the `kind` oneof in a module named after the message.
        let kind = format_ident!("{}", frame.name.to_snake_case());
        Some(quote! {
            impl #sf::__private::Frame for #frame_type {
                type Message = #message;
                fn heartbeat(heartbeat: #sf::__private::v1::Heartbeat) -> Self {
                    Self { kind: ::core::option::Option::Some(#kind::Kind::Heartbeat(heartbeat)) }
                }
                fn message(message: #message) -> Self {
                    Self { kind: ::core::option::Option::Some(#kind::Kind::Message(message)) }
                }
                fn into_part(self) -> ::core::option::Option<#sf::__private::FramePart<#message>> {
                    match self.kind? {
                        #kind::Kind::Heartbeat(heartbeat) => ::core::option::Option::Some(#sf::__private::FramePart::Heartbeat(heartbeat)),
                        #kind::Kind::Message(message) => ::core::option::Option::Some(#sf::__private::FramePart::Message(message)),
                    }
                }
            }
        })
    });
    quote!(#(#impls)*)
}
