//! The glue between each synthesized message and the runtime, at the
//! package's module (inside an anonymous `const`): `__private::Frame` for a
//! response frame (and `__private::BlobFrame` when it carries a blob),
//! `__private::Upload` for a request upload.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Method, ServiceSettings, rust_type};

/// The glue impls of a service's synthesized messages, in one anonymous
/// `const _: () = { ... };` (as serde's derives do): its
/// `use <crate>::__private as __sf;` is seen by the impls alone, not by the
/// package's module, which may hold the glue of several services. Nothing when
/// no method has frames or uploads.
pub(crate) fn generate(methods: &[Method<'_>], settings: &ServiceSettings) -> TokenStream {
    let impls: TokenStream = methods.iter().flat_map(|m| [upload(m), frame(m)]).collect();
    if impls.is_empty() {
        return TokenStream::new();
    }
    let sf = &settings.crate_path;
    quote! {
        const _: () = {
            use #sf::__private as __sf;
            #impls
        };
    }
}

fn frame(m: &Method<'_>) -> TokenStream {
    let Some(frame) = &m.model.frame else {
        return TokenStream::new();
    };
    let some = quote!(::core::option::Option::Some);
    let frame_type = rust_type(&m.wire.output_type, "");
    let message = rust_type(&m.original.output_type, "");
    // prost puts the `kind` oneof in a module named after the message.
    let kind = format_ident!("{}", frame.name.to_snake_case());
    let (blob_parts, blob_impl) = if m.model.options.response_blob {
        let parts = quote! {
            #kind::Kind::Blob(header) => #some(__sf::FramePart::Blob(header)),
            #kind::Kind::Chunk(chunk) => #some(__sf::FramePart::Chunk(chunk)),
        };
        let blob_impl = quote! {
            impl __sf::BlobFrame for #frame_type {
                fn blob(header: __sf::v1::BlobHeader) -> Self {
                    Self { kind: #some(#kind::Kind::Blob(header)) }
                }
                fn chunk(chunk: __sf::v1::Chunk) -> Self {
                    Self { kind: #some(#kind::Kind::Chunk(chunk)) }
                }
            }
        };
        (parts, blob_impl)
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    quote! {
        impl __sf::Frame for #frame_type {
            type Message = #message;
            fn heartbeat(heartbeat: __sf::v1::Heartbeat) -> Self {
                Self { kind: #some(#kind::Kind::Heartbeat(heartbeat)) }
            }
            fn message(message: #message) -> Self {
                Self { kind: #some(#kind::Kind::Message(message)) }
            }
            fn into_part(self) -> ::core::option::Option<__sf::FramePart<#message>> {
                match self.kind? {
                    #kind::Kind::Heartbeat(heartbeat) => #some(__sf::FramePart::Heartbeat(heartbeat)),
                    #kind::Kind::Message(message) => #some(__sf::FramePart::Message(message)),
                    #blob_parts
                }
            }
        }
        #blob_impl
    }
}

fn upload(m: &Method<'_>) -> TokenStream {
    let Some(upload) = &m.model.upload else {
        return TokenStream::new();
    };
    let some = quote!(::core::option::Option::Some);
    let upload_type = rust_type(&m.wire.input_type, "");
    let head = rust_type(&m.original.input_type, "");
    let kind = format_ident!("{}", upload.name.to_snake_case());
    quote! {
        impl __sf::Upload for #upload_type {
            type Head = #head;
            fn head(head: #head) -> Self {
                Self { kind: #some(#kind::Kind::Head(head)) }
            }
            fn blob(header: __sf::v1::BlobHeader) -> Self {
                Self { kind: #some(#kind::Kind::Blob(header)) }
            }
            fn chunk(chunk: __sf::v1::Chunk) -> Self {
                Self { kind: #some(#kind::Kind::Chunk(chunk)) }
            }
            fn into_part(self) -> ::core::option::Option<__sf::UploadPart<#head>> {
                match self.kind? {
                    #kind::Kind::Head(head) => #some(__sf::UploadPart::Head(head)),
                    #kind::Kind::Blob(header) => #some(__sf::UploadPart::Blob(header)),
                    #kind::Kind::Chunk(chunk) => #some(__sf::UploadPart::Chunk(chunk)),
                }
            }
        }
    }
}
