//! The glue between each synthesized message and the runtime, at the
//! package's module: `__private::Frame` for a response frame (and
//! `__private::BlobFrame` when it carries a blob), `__private::Upload` for a
//! request upload.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Method, ServiceSettings, rust_type};

pub(crate) fn generate(methods: &[Method<'_>], settings: &ServiceSettings) -> TokenStream {
    let impls = methods.iter().map(|m| {
        let upload = upload(m, settings);
        let frame = frame(m, settings);
        quote!(#upload #frame)
    });
    quote!(#(#impls)*)
}

fn frame(m: &Method<'_>, settings: &ServiceSettings) -> TokenStream {
    let Some(frame) = &m.model.frame else {
        return TokenStream::new();
    };
    let sf = &settings.crate_path;
    let some = quote!(::core::option::Option::Some);
    let frame_type = rust_type(&m.wire.output_type, "");
    let message = rust_type(&m.original.output_type, "");
    // prost puts the `kind` oneof in a module named after the message.
    let kind = format_ident!("{}", frame.name.to_snake_case());
    let (blob_parts, blob_impl) = if m.model.options.response_blob {
        let parts = quote! {
            #kind::Kind::Blob(header) => #some(#sf::__private::FramePart::Blob(header)),
            #kind::Kind::Chunk(chunk) => #some(#sf::__private::FramePart::Chunk(chunk)),
        };
        let blob_impl = quote! {
            impl #sf::__private::BlobFrame for #frame_type {
                fn blob(header: #sf::__private::v1::BlobHeader) -> Self {
                    Self { kind: #some(#kind::Kind::Blob(header)) }
                }
                fn chunk(chunk: #sf::__private::v1::Chunk) -> Self {
                    Self { kind: #some(#kind::Kind::Chunk(chunk)) }
                }
            }
        };
        (parts, blob_impl)
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    quote! {
        impl #sf::__private::Frame for #frame_type {
            type Message = #message;
            fn heartbeat(heartbeat: #sf::__private::v1::Heartbeat) -> Self {
                Self { kind: #some(#kind::Kind::Heartbeat(heartbeat)) }
            }
            fn message(message: #message) -> Self {
                Self { kind: #some(#kind::Kind::Message(message)) }
            }
            fn into_part(self) -> ::core::option::Option<#sf::__private::FramePart<#message>> {
                match self.kind? {
                    #kind::Kind::Heartbeat(heartbeat) => #some(#sf::__private::FramePart::Heartbeat(heartbeat)),
                    #kind::Kind::Message(message) => #some(#sf::__private::FramePart::Message(message)),
                    #blob_parts
                }
            }
        }
        #blob_impl
    }
}

fn upload(m: &Method<'_>, settings: &ServiceSettings) -> TokenStream {
    let Some(upload) = &m.model.upload else {
        return TokenStream::new();
    };
    let sf = &settings.crate_path;
    let some = quote!(::core::option::Option::Some);
    let upload_type = rust_type(&m.wire.input_type, "");
    let head = rust_type(&m.original.input_type, "");
    let kind = format_ident!("{}", upload.name.to_snake_case());
    quote! {
        impl #sf::__private::Upload for #upload_type {
            type Head = #head;
            fn head(head: #head) -> Self {
                Self { kind: #some(#kind::Kind::Head(head)) }
            }
            fn blob(header: #sf::__private::v1::BlobHeader) -> Self {
                Self { kind: #some(#kind::Kind::Blob(header)) }
            }
            fn chunk(chunk: #sf::__private::v1::Chunk) -> Self {
                Self { kind: #some(#kind::Kind::Chunk(chunk)) }
            }
            fn into_part(self) -> ::core::option::Option<#sf::__private::UploadPart<#head>> {
                match self.kind? {
                    #kind::Kind::Head(head) => #some(#sf::__private::UploadPart::Head(head)),
                    #kind::Kind::Blob(header) => #some(#sf::__private::UploadPart::Blob(header)),
                    #kind::Kind::Chunk(chunk) => #some(#sf::__private::UploadPart::Chunk(chunk)),
                }
            }
        }
    }
}
