//! The typed server of a rewritten service: `<svc>_server::{<Svc>, <Svc>Server}`
//! with the methods' original signatures, served through the wire server by an
//! adapter that runs heartbeat methods inside the runtime's frame stream.

use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{
    Method, ServiceSettings, Side, attributes, codec_settings, doc_path, docs, duration_literal,
    human, rust_type,
};
use crate::{model::ServiceModel, names};

pub(crate) fn generate(
    model: &ServiceModel,
    original: &prost_build::Service,
    methods: &[Method<'_>],
    settings: &ServiceSettings,
) -> TokenStream {
    let sf = &settings.crate_path;
    let tonic = quote!(#sf::__private::tonic);
    let prefix = names::module_prefix(&model.proto_name);
    let module = format_ident!("{prefix}_server");
    let server_trait = format_ident!("{}", original.name);
    let server = format_ident!("{}Server", original.name);
    let wire_module = format_ident!("{}", model.wire_module);
    let wire = quote!(super::#wire_module::#module);
    let wire_server = quote!(#wire::#server<_WireAdapter<T>>);
    let sf_doc = doc_path(settings);
    let service_path = settings.service_path(model);
    let mod_attributes = attributes(&settings.server_mod_attributes, settings.package(model));
    let struct_attributes = attributes(&settings.server_attributes, &service_path);
    let trait_attributes = attributes(&settings.trait_attributes, &original.name);
    let service_doc = settings.service_docs(model, original);
    let separator = if service_doc.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[doc = ""])
    };
    let module_doc = format!(" The server of `{}`.", model.full_name());
    let trait_doc = format!(
        " The methods of `{}` with their original signatures, served by [`{server}`]. A heartbeat method can report progress with [`Progress`]({sf_doc}::Progress).",
        model.full_name()
    );
    let server_doc = format!(
        " Serves an implementation of [`{server_trait}`] as `{}` (heartbeat methods rewritten for the wire).",
        model.full_name()
    );
    let self_param = if settings.use_arc_self {
        quote!(self: ::std::sync::Arc<Self>)
    } else {
        quote!(&self)
    };

    let trait_methods = methods
        .iter()
        .map(|m| trait_method(m, model, settings, &self_param, &sf_doc));
    let codec_settings = codec_settings(settings, Side::Server);
    let adapter_methods = methods
        .iter()
        .map(|m| adapter_method(m, settings, &server_trait));

    quote! {
        #[doc = #module_doc]
        #mod_attributes
        pub mod #module {
            #![allow(unused_variables, dead_code, missing_docs, clippy::let_unit_value)]

            #service_doc
            #separator
            #[doc = #trait_doc]
            #trait_attributes
            #[#sf::__private::async_trait]
            pub trait #server_trait: ::core::marker::Send + ::core::marker::Sync + 'static {
                #(#trait_methods)*
            }

            /// The gRPC service name, as on the wire.
            pub const SERVICE_NAME: &str = #wire::SERVICE_NAME;

            #service_doc
            #separator
            #[doc = #server_doc]
            #struct_attributes
            pub struct #server<T> {
                inner: #wire_server,
            }

            impl<T> #server<T> {
                /// Serves `inner`.
                pub fn new(inner: T) -> Self {
                    Self::from_arc(::std::sync::Arc::new(inner))
                }

                /// Serves a shared `inner`.
                pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {
                    Self { inner: #wire::#server::new(_WireAdapter { inner }) }
                }

                /// Serves `inner` behind an interceptor.
                pub fn with_interceptor<F>(inner: T, interceptor: F) -> #tonic::codegen::InterceptedService<Self, F>
                where
                    F: #tonic::service::Interceptor,
                {
                    #tonic::codegen::InterceptedService::new(Self::new(inner), interceptor)
                }

                #codec_settings
            }

            impl<T> ::core::clone::Clone for #server<T> {
                fn clone(&self) -> Self {
                    Self { inner: self.inner.clone() }
                }
            }

            impl<T> ::core::fmt::Debug for #server<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(::core::stringify!(#server)).finish_non_exhaustive()
                }
            }

            impl<T, B> #tonic::codegen::Service<#tonic::codegen::http::Request<B>> for #server<T>
            where
                T: #server_trait,
                B: #tonic::codegen::Body + ::core::marker::Send + 'static,
                B::Error: ::core::convert::Into<#tonic::codegen::StdError> + ::core::marker::Send + 'static,
            {
                type Response = <#wire_server as #tonic::codegen::Service<#tonic::codegen::http::Request<B>>>::Response;
                type Error = <#wire_server as #tonic::codegen::Service<#tonic::codegen::http::Request<B>>>::Error;
                type Future = <#wire_server as #tonic::codegen::Service<#tonic::codegen::http::Request<B>>>::Future;

                fn poll_ready(&mut self, cx: &mut ::core::task::Context<'_>) -> ::core::task::Poll<::core::result::Result<(), Self::Error>> {
                    #tonic::codegen::Service::<#tonic::codegen::http::Request<B>>::poll_ready(&mut self.inner, cx)
                }

                fn call(&mut self, request: #tonic::codegen::http::Request<B>) -> Self::Future {
                    #tonic::codegen::Service::call(&mut self.inner, request)
                }
            }

            impl<T> #tonic::server::NamedService for #server<T> {
                const NAME: &'static str = SERVICE_NAME;
            }

            /// Implements the wire service on top of the typed trait.
            #[doc(hidden)]
            pub struct _WireAdapter<T> {
                inner: ::std::sync::Arc<T>,
            }

            impl<T> ::core::fmt::Debug for _WireAdapter<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct("_WireAdapter").finish_non_exhaustive()
                }
            }

            #[#sf::__private::async_trait]
            #[allow(non_camel_case_types)]
            impl<T: #server_trait> #wire::#server_trait for _WireAdapter<T> {
                #(#adapter_methods)*
            }
        }
    }
}

/// The typed stream type of a server-streaming method (`TicksStream`).
fn stream_type(m: &Method<'_>) -> proc_macro2::Ident {
    format_ident!("{}Stream", m.model.proto_name.to_upper_camel_case())
}

fn trait_method(
    m: &Method<'_>,
    model: &ServiceModel,
    settings: &ServiceSettings,
    self_param: &TokenStream,
    sf_doc: &str,
) -> TokenStream {
    let sf = &settings.crate_path;
    let tonic = quote!(#sf::__private::tonic);
    let ident = format_ident!("{}", m.original.name);
    let proto_docs = settings.method_docs(model, m.model, m.original);
    let mut doc = docs(proto_docs);
    if let Some(interval) = m.model.heartbeat {
        if !proto_docs.is_empty() {
            doc.extend(quote!(#[doc = ""]));
        }
        let heartbeat_doc = format!(
            " Heartbeats: while this runs, the server sends one whenever {} pass with nothing sent; they carry what the handler reports through [`Progress::from_request`]({sf_doc}::Progress::from_request). Past the call's deadline (`grpc-timeout`) this future is dropped and the client gets `DEADLINE_EXCEEDED`.",
            human(interval)
        );
        doc.extend(quote!(#[doc = #heartbeat_doc]));
        if !m.original.server_streaming {
            doc.extend(quote! {
                ///
                /// The metadata of the returned `Response` is not sent: the response headers
                /// leave before the handler answers. Put such values in the message.
            });
        }
    }
    let request = rust_type(&m.original.input_type, "super");
    let response = rust_type(&m.original.output_type, "super");
    let request = if m.original.client_streaming {
        quote!(#tonic::Request<#tonic::Streaming<#request>>)
    } else {
        quote!(#tonic::Request<#request>)
    };
    let stub = quote!({
        ::core::result::Result::Err(#tonic::Status::unimplemented("Not yet implemented"))
    });
    match (m.original.server_streaming, settings.generate_default_stubs) {
        (false, false) => quote! {
            #doc
            async fn #ident(#self_param, request: #request) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status>;
        },
        (false, true) => quote! {
            #doc
            async fn #ident(#self_param, request: #request) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status> #stub
        },
        (true, false) => {
            let stream = stream_type(m);
            let stream_doc = format!(
                " The response stream of [`{}`](Self::{}).",
                m.original.name.trim_start_matches("r#"),
                m.original.name
            );
            quote! {
                #[doc = #stream_doc]
                type #stream: #tonic::codegen::tokio_stream::Stream<Item = ::core::result::Result<#response, #tonic::Status>> + ::core::marker::Send + 'static;
                #doc
                async fn #ident(#self_param, request: #request) -> ::core::result::Result<#tonic::Response<Self::#stream>, #tonic::Status>;
            }
        }
        (true, true) => quote! {
            #doc
            async fn #ident(#self_param, request: #request) -> ::core::result::Result<#tonic::Response<#tonic::codegen::BoxStream<#response>>, #tonic::Status> #stub
        },
    }
}

fn adapter_method(
    m: &Method<'_>,
    settings: &ServiceSettings,
    server_trait: &proc_macro2::Ident,
) -> TokenStream {
    let sf = &settings.crate_path;
    let tonic = quote!(#sf::__private::tonic);
    let ident = format_ident!("{}", m.original.name);
    // tonic-build names the wire trait's stream types after the proto name.
    let wire_stream = format_ident!("{}Stream", m.model.proto_name);
    let request = rust_type(&m.wire.input_type, "super");
    let request = if m.wire.client_streaming {
        quote!(#tonic::Request<#tonic::Streaming<#request>>)
    } else {
        quote!(#tonic::Request<#request>)
    };
    // How the handler is called, with `inner: Arc<T>` (or `&Arc<T>`) in scope.
    let call = if settings.use_arc_self {
        quote!(<T as #server_trait>::#ident(inner, request))
    } else {
        quote!(<T as #server_trait>::#ident(&inner, request))
    };
    let Some(interval) = m.model.heartbeat else {
        let handler = quote! {
            let inner = ::std::sync::Arc::clone(&self.inner);
            #call.await
        };
        if !m.wire.server_streaming {
            let response = rust_type(&m.wire.output_type, "super");
            return quote! {
                async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status> {
                    #handler
                }
            };
        }
        let stream = if settings.generate_default_stubs {
            let response = rust_type(&m.wire.output_type, "super");
            quote!(#tonic::codegen::BoxStream<#response>)
        } else {
            let typed = stream_type(m);
            quote!(<T as #server_trait>::#typed)
        };
        return quote! {
            type #wire_stream = #stream;
            async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<Self::#wire_stream>, #tonic::Status> {
                #handler
            }
        };
    };
    let millis = duration_literal(interval);
    let frame = rust_type(&m.wire.output_type, "super");
    let serve = if m.original.server_streaming {
        quote!(serve_streaming)
    } else {
        quote!(serve_unary)
    };
    quote! {
        type #wire_stream = #sf::__private::FrameStream<#frame>;
        async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<Self::#wire_stream>, #tonic::Status> {
            let inner = ::std::sync::Arc::clone(&self.inner);
            ::core::result::Result::Ok(#sf::__private::#serve(
                request,
                ::core::time::Duration::from_millis(#millis),
                move |request| async move { #call.await },
            ))
        }
    }
}
