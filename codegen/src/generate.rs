//! The service generator handed to prost: plain services go to tonic's own
//! generator untouched (so a proto without steadfast options generates exactly
//! what tonic-prost-build would); a rewritten service gets tonic's code for the
//! wire service under a `…Wire` name, plus the typed layer — a server trait and
//! a client with the **original** signatures, and the glue between the two.

use std::collections::HashMap;

use heck::ToSnakeCase;
use proc_macro2::{Ident, TokenStream};
use prost_build::{Method, Service, ServiceGenerator};
use quote::{format_ident, quote};

use crate::{options::Plan, rewrite::TWIN_SUFFIX};

/// Settings of the typed layer.
#[derive(Clone)]
pub(crate) struct TypedConfig {
    pub(crate) crate_path: syn::Path,
    pub(crate) build_client: bool,
    pub(crate) build_server: bool,
}

/// Wraps tonic-prost-build's generator; see the module docs.
pub(crate) struct Generator {
    tonic: Box<dyn ServiceGenerator>,
    plan: Plan,
    config: TypedConfig,
    /// Rewritten services of the current file, waiting for their twins.
    pending: Vec<Service>,
    /// Original signatures, keyed by `package.Service`.
    twins: HashMap<String, Service>,
}

impl Generator {
    pub(crate) fn new(tonic: Box<dyn ServiceGenerator>, plan: Plan, config: TypedConfig) -> Self {
        Generator {
            tonic,
            plan,
            config,
            pending: Vec::new(),
            twins: HashMap::new(),
        }
    }
}

fn full_name(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

impl ServiceGenerator for Generator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        if let Some(original) = service.proto_name.strip_suffix(TWIN_SUFFIX) {
            self.twins
                .insert(full_name(&service.package, original), service);
        } else if self
            .plan
            .services
            .contains_key(&full_name(&service.package, &service.proto_name))
        {
            self.pending.push(service);
        } else {
            self.tonic.generate(service, buf);
        }
    }

    fn finalize(&mut self, buf: &mut String) {
        for wire in std::mem::take(&mut self.pending) {
            let key = full_name(&wire.package, &wire.proto_name);
            let typed = match self.twins.remove(&key) {
                Some(original) => typed_layer(&wire, &original, &self.plan, &self.config),
                None => {
                    let msg =
                        format!("steadfast-build internal error: no original signatures for {key}");
                    quote!(::core::compile_error!(#msg);)
                }
            };
            let mut renamed = wire.clone();
            renamed.name = format!("{}Wire", wire.name);
            self.tonic.generate(renamed, buf);
            match syn::parse2::<syn::File>(typed.clone()) {
                Ok(file) => buf.push_str(&prettyplease::unparse(&file)),
                Err(_) => buf.push_str(&typed.to_string()),
            }
        }
        self.tonic.finalize(buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        self.tonic.finalize_package(package, buf);
    }
}

/// tonic-build's module naming (`naive_snake_case`), so the wire modules are
/// found where tonic puts them.
fn naive_snake_case(name: &str) -> String {
    let mut s = String::new();
    let mut it = name.chars().peekable();
    while let Some(x) = it.next() {
        s.push(x.to_ascii_lowercase());
        if it.peek().is_some_and(|y| y.is_uppercase()) {
            s.push('_');
        }
    }
    s
}

/// A Rust type path from prost, seen from `prefix` (`super` in the service
/// modules, nothing at package level) — as tonic-prost-build does it.
fn rust_type(prost_path: &str, prefix: Option<&str>) -> TokenStream {
    // Absolute paths (extern types) and `()` (google.protobuf.Empty) need no prefix.
    let local =
        prost_path.starts_with("::") || prost_path.starts_with("crate::") || prost_path == "()";
    let text = match prefix {
        Some(prefix) if !local => format!("{prefix}::{prost_path}"),
        _ => prost_path.to_owned(),
    };
    syn::parse_str::<syn::Type>(&text)
        .map(|t| quote!(#t))
        .unwrap_or_else(|_| {
            let msg = format!("steadfast-build: cannot parse Rust type `{text}`");
            quote!(::core::compile_error!(#msg))
        })
}

fn docs(lines: &[String]) -> TokenStream {
    let lines = lines.iter().map(|l| format!(" {}", l.trim_end()));
    quote!(#(#[doc = #lines])*)
}

/// One method as the typed layer sees it.
struct TypedMethod<'a> {
    original: &'a Method,
    wire: &'a Method,
    ident: Ident,
    stream_ident: Ident,
    heartbeat_ms: Option<u64>,
}

fn typed_layer(
    wire: &Service,
    original: &Service,
    plan: &Plan,
    config: &TypedConfig,
) -> TokenStream {
    let service_full = full_name(&wire.package, &wire.proto_name);
    let methods: Vec<TypedMethod<'_>> = original
        .methods
        .iter()
        .zip(&wire.methods)
        .map(|(original, wire_method)| TypedMethod {
            original,
            wire: wire_method,
            ident: format_ident!("{}", original.name),
            stream_ident: format_ident!("{}Stream", original.proto_name),
            heartbeat_ms: plan
                .method(&service_full, &original.proto_name)
                .and_then(|p| p.heartbeat)
                .map(|d| d.as_millis() as u64),
        })
        .collect();

    let frames = frame_impls(&methods, config);
    let client = if config.build_client {
        client_module(wire, &methods, config)
    } else {
        TokenStream::new()
    };
    let server = if config.build_server {
        server_module(wire, &methods, config)
    } else {
        TokenStream::new()
    };
    quote! {
        #frames
        #client
        #server
    }
}

fn frame_impls(methods: &[TypedMethod<'_>], config: &TypedConfig) -> TokenStream {
    let sf = &config.crate_path;
    let impls = methods.iter().filter(|m| m.heartbeat_ms.is_some()).map(|m| {
        let frame = rust_type(&m.wire.output_type, None);
        let message = rust_type(&m.original.output_type, None);
        let frame_name = m.wire.output_type.rsplit("::").next().unwrap_or(&m.wire.output_type);
        let kind_mod = format_ident!("{}", frame_name.to_snake_case());
        quote! {
            impl #sf::__private::Frame for #frame {
                type Message = #message;
                fn heartbeat(heartbeat: #sf::__private::v1::Heartbeat) -> Self {
                    Self { kind: ::core::option::Option::Some(#kind_mod::Kind::Heartbeat(heartbeat)) }
                }
                fn message(message: #message) -> Self {
                    Self { kind: ::core::option::Option::Some(#kind_mod::Kind::Message(message)) }
                }
                fn into_part(self) -> ::core::option::Option<#sf::__private::FramePart<#message>> {
                    match self.kind? {
                        #kind_mod::Kind::Heartbeat(heartbeat) => ::core::option::Option::Some(#sf::__private::FramePart::Heartbeat(heartbeat)),
                        #kind_mod::Kind::Message(message) => ::core::option::Option::Some(#sf::__private::FramePart::Message(message)),
                    }
                }
            }
        }
    });
    quote!(#(#impls)*)
}

fn interval(ms: u64) -> TokenStream {
    quote!(::core::time::Duration::from_millis(#ms))
}

/// The compression and size settings tonic's client and server both have,
/// delegated to the wire client/server in `self.inner`.
fn config_methods(tonic: &TokenStream, sent: &str, received: &str) -> TokenStream {
    let send_doc = format!(" Compress {sent} with the given encoding.");
    let accept_doc = format!(" Enable decompressing {received} with the given encoding.");
    quote! {
        #[doc = #send_doc]
        #[must_use]
        pub fn send_compressed(mut self, encoding: #tonic::codec::CompressionEncoding) -> Self {
            self.inner = self.inner.send_compressed(encoding);
            self
        }

        #[doc = #accept_doc]
        #[must_use]
        pub fn accept_compressed(mut self, encoding: #tonic::codec::CompressionEncoding) -> Self {
            self.inner = self.inner.accept_compressed(encoding);
            self
        }

        /// Limits the maximum size of a decoded message (default: 4 MiB).
        #[must_use]
        pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
            self.inner = self.inner.max_decoding_message_size(limit);
            self
        }

        /// Limits the maximum size of an encoded message (default: `usize::MAX`).
        #[must_use]
        pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
            self.inner = self.inner.max_encoding_message_size(limit);
            self
        }
    }
}

fn client_module(wire: &Service, methods: &[TypedMethod<'_>], config: &TypedConfig) -> TokenStream {
    let sf = &config.crate_path;
    let tonic = quote!(#sf::__private::tonic);
    let client_mod = format_ident!("{}_client", naive_snake_case(&wire.name));
    let client = format_ident!("{}Client", wire.name);
    let wire_mod = format_ident!("{}_wire_client", naive_snake_case(&wire.name));
    let wire_client = format_ident!("{}WireClient", wire.name);
    let service_doc = docs(&wire.comments.leading);
    let config = config_methods(&tonic, "requests", "responses");
    let client_doc = format!(
        " Client for `{}`: methods with the original signatures; heartbeats are consumed inside (see [`{}::CallOptions`] for progress and liveness).",
        full_name(&wire.package, &wire.proto_name),
        quote!(#sf).to_string().replace(' ', "")
    );

    let calls = methods.iter().map(|m| {
        let ident = &m.ident;
        let doc = docs(&m.original.comments.leading);
        let request = rust_type(&m.original.input_type, Some("super"));
        let response = rust_type(&m.original.output_type, Some("super"));
        let frame = rust_type(&m.wire.output_type, Some("super"));
        let request_arg = if m.original.client_streaming {
            quote!(request: impl #tonic::IntoStreamingRequest<Message = #request>)
        } else {
            quote!(request: impl #tonic::IntoRequest<#request>)
        };
        let into_request = if m.original.client_streaming {
            quote!(#tonic::IntoStreamingRequest::into_streaming_request(request))
        } else {
            quote!(#tonic::IntoRequest::into_request(request))
        };
        match (m.heartbeat_ms, m.original.server_streaming) {
            (None, false) => quote! {
                #doc
                pub async fn #ident(&mut self, #request_arg) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status> {
                    self.inner.#ident(request).await
                }
            },
            (None, true) => quote! {
                #doc
                pub async fn #ident(&mut self, #request_arg) -> ::core::result::Result<#tonic::Response<#tonic::codec::Streaming<#response>>, #tonic::Status> {
                    self.inner.#ident(request).await
                }
            },
            (Some(ms), false) => {
                let interval = interval(ms);
                quote! {
                    #doc
                    ///
                    /// Heartbeats are consumed here; pass [`CallOptions`](#sf::CallOptions) in the request extensions to observe progress or change the liveness window.
                    pub async fn #ident(&mut self, #request_arg) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status> {
                        let mut request = #into_request;
                        let context = #sf::__private::call_context(&mut request, #interval);
                        #sf::__private::call_unary::<#frame, _>(context, self.inner.#ident(request)).await
                    }
                }
            }
            (Some(ms), true) => {
                let interval = interval(ms);
                quote! {
                    #doc
                    ///
                    /// Heartbeats are skipped by the returned stream; pass [`CallOptions`](#sf::CallOptions) in the request extensions to observe progress or change the liveness window.
                    pub async fn #ident(&mut self, #request_arg) -> ::core::result::Result<#tonic::Response<#sf::Streaming<#response>>, #tonic::Status> {
                        let mut request = #into_request;
                        let context = #sf::__private::call_context(&mut request, #interval);
                        #sf::__private::call_streaming::<#frame, _>(context, self.inner.#ident(request)).await
                    }
                }
            }
        }
    });

    quote! {
        /// Generated client implementations (steadfast typed layer).
        pub mod #client_mod {
            #![allow(unused_variables, dead_code, missing_docs, clippy::let_unit_value)]

            #service_doc
            #[doc = #client_doc]
            #[derive(Debug, Clone)]
            pub struct #client<T> {
                inner: super::#wire_mod::#wire_client<T>,
            }

            impl #client<#tonic::transport::Channel> {
                /// Attempt to create a new client by connecting to a given endpoint.
                pub async fn connect<D>(dst: D) -> ::core::result::Result<Self, #tonic::transport::Error>
                where
                    D: ::core::convert::TryInto<#tonic::transport::Endpoint>,
                    D::Error: ::core::convert::Into<#tonic::codegen::StdError>,
                {
                    super::#wire_mod::#wire_client::connect(dst).await.map(Self::from_wire)
                }
            }

            impl<T> #client<T>
            where
                T: #tonic::client::GrpcService<#tonic::body::Body>,
                T::Error: ::core::convert::Into<#tonic::codegen::StdError>,
                T::ResponseBody: #tonic::codegen::Body<Data = #tonic::codegen::Bytes> + ::core::marker::Send + 'static,
                <T::ResponseBody as #tonic::codegen::Body>::Error: ::core::convert::Into<#tonic::codegen::StdError> + ::core::marker::Send,
            {
                /// Wraps a transport (e.g. a `tonic::transport::Channel`).
                pub fn new(inner: T) -> Self {
                    Self::from_wire(super::#wire_mod::#wire_client::new(inner))
                }

                /// Wraps a transport, sending requests to `origin`.
                pub fn with_origin(inner: T, origin: #tonic::codegen::http::Uri) -> Self {
                    Self::from_wire(super::#wire_mod::#wire_client::with_origin(inner, origin))
                }

                /// Wraps a transport behind an interceptor.
                pub fn with_interceptor<F>(inner: T, interceptor: F) -> #client<#tonic::codegen::InterceptedService<T, F>>
                where
                    F: #tonic::service::Interceptor,
                    T::ResponseBody: ::core::default::Default,
                    T: #tonic::codegen::Service<
                        #tonic::codegen::http::Request<#tonic::body::Body>,
                        Response = #tonic::codegen::http::Response<<T as #tonic::client::GrpcService<#tonic::body::Body>>::ResponseBody>,
                    >,
                    <T as #tonic::codegen::Service<#tonic::codegen::http::Request<#tonic::body::Body>>>::Error:
                        ::core::convert::Into<#tonic::codegen::StdError> + ::core::marker::Send + ::core::marker::Sync,
                {
                    #client::new(#tonic::codegen::InterceptedService::new(inner, interceptor))
                }

                /// Wraps the generated wire client (the rewritten service, frames visible).
                pub fn from_wire(inner: super::#wire_mod::#wire_client<T>) -> Self {
                    Self { inner }
                }

                /// The wire client underneath: calls return frames, heartbeats included.
                pub fn into_wire(self) -> super::#wire_mod::#wire_client<T> {
                    self.inner
                }

                #config

                #(#calls)*
            }
        }
    }
}

fn server_module(wire: &Service, methods: &[TypedMethod<'_>], config: &TypedConfig) -> TokenStream {
    let sf = &config.crate_path;
    let tonic = quote!(#sf::__private::tonic);
    let server_mod = format_ident!("{}_server", naive_snake_case(&wire.name));
    let server_trait = format_ident!("{}", wire.name);
    let server = format_ident!("{}Server", wire.name);
    let adapter = format_ident!("{}WireAdapter", wire.name);
    let wire_mod = format_ident!("{}_wire_server", naive_snake_case(&wire.name));
    let wire_trait = format_ident!("{}Wire", wire.name);
    let wire_server = format_ident!("{}WireServer", wire.name);
    let service_doc = docs(&wire.comments.leading);
    let config = config_methods(&tonic, "responses", "requests");
    let trait_doc = format!(
        " The methods of `{}` with their original signatures. Heartbeat methods may report progress through [`{}::Progress::from_request`].",
        full_name(&wire.package, &wire.proto_name),
        quote!(#sf).to_string().replace(' ', "")
    );

    let trait_methods = methods.iter().map(|m| {
        let ident = &m.ident;
        let stream = &m.stream_ident;
        let doc = docs(&m.original.comments.leading);
        let request = rust_type(&m.original.input_type, Some("super"));
        let response = rust_type(&m.original.output_type, Some("super"));
        let request = if m.original.client_streaming {
            quote!(#tonic::Request<#tonic::Streaming<#request>>)
        } else {
            quote!(#tonic::Request<#request>)
        };
        if m.original.server_streaming {
            let stream_doc = format!(" Server streaming response type for the {} method.", m.original.proto_name);
            quote! {
                #[doc = #stream_doc]
                type #stream: #tonic::codegen::tokio_stream::Stream<Item = ::core::result::Result<#response, #tonic::Status>> + ::core::marker::Send + 'static;
                #doc
                async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<Self::#stream>, #tonic::Status>;
            }
        } else {
            quote! {
                #doc
                async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status>;
            }
        }
    });

    let adapter_methods = methods.iter().map(|m| {
        let ident = &m.ident;
        let stream = &m.stream_ident;
        let request = rust_type(&m.wire.input_type, Some("super"));
        let request = if m.wire.client_streaming {
            quote!(#tonic::Request<#tonic::Streaming<#request>>)
        } else {
            quote!(#tonic::Request<#request>)
        };
        match m.heartbeat_ms {
            None if m.original.server_streaming => quote! {
                type #stream = <T as #server_trait>::#stream;
                async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<Self::#stream>, #tonic::Status> {
                    <T as #server_trait>::#ident(&self.inner, request).await
                }
            },
            None => {
                let response = rust_type(&m.wire.output_type, Some("super"));
                quote! {
                    async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status> {
                        <T as #server_trait>::#ident(&self.inner, request).await
                    }
                }
            }
            Some(ms) => {
                let interval = interval(ms);
                let frame = rust_type(&m.wire.output_type, Some("super"));
                let serve = if m.original.server_streaming {
                    quote!(serve_streaming)
                } else {
                    quote!(serve_unary)
                };
                quote! {
                    type #stream = #sf::__private::FrameStream<#frame>;
                    async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<Self::#stream>, #tonic::Status> {
                        let inner = ::std::sync::Arc::clone(&self.inner);
                        ::core::result::Result::Ok(#sf::__private::#serve(request, #interval, move |request| async move {
                            <T as #server_trait>::#ident(&inner, request).await
                        }))
                    }
                }
            }
        }
    });

    quote! {
        /// Generated server implementations (steadfast typed layer).
        pub mod #server_mod {
            #![allow(unused_variables, dead_code, missing_docs, clippy::let_unit_value)]

            #[doc = #trait_doc]
            #[#sf::__private::async_trait]
            pub trait #server_trait: ::core::marker::Send + ::core::marker::Sync + 'static {
                #(#trait_methods)*
            }

            /// The gRPC service name, as on the wire.
            pub const SERVICE_NAME: &str = super::#wire_mod::SERVICE_NAME;

            #service_doc
            /// Serves an implementation of the trait of the same name as the rewritten wire service.
            pub struct #server<T> {
                inner: super::#wire_mod::#wire_server<#adapter<T>>,
            }

            impl<T> #server<T> {
                /// Serves `inner`.
                pub fn new(inner: T) -> Self {
                    Self::from_arc(::std::sync::Arc::new(inner))
                }

                /// Serves a shared `inner`.
                pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {
                    Self { inner: super::#wire_mod::#wire_server::new(#adapter { inner }) }
                }

                /// Serves `inner` behind an interceptor.
                pub fn with_interceptor<F>(inner: T, interceptor: F) -> #tonic::codegen::InterceptedService<Self, F>
                where
                    F: #tonic::service::Interceptor,
                {
                    #tonic::codegen::InterceptedService::new(Self::new(inner), interceptor)
                }

                #config
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
                type Response = <super::#wire_mod::#wire_server<#adapter<T>> as #tonic::codegen::Service<#tonic::codegen::http::Request<B>>>::Response;
                type Error = <super::#wire_mod::#wire_server<#adapter<T>> as #tonic::codegen::Service<#tonic::codegen::http::Request<B>>>::Error;
                type Future = <super::#wire_mod::#wire_server<#adapter<T>> as #tonic::codegen::Service<#tonic::codegen::http::Request<B>>>::Future;

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

            /// Implements the wire service on top of the typed trait (heartbeats, frames).
            #[doc(hidden)]
            pub struct #adapter<T> {
                inner: ::std::sync::Arc<T>,
            }

            impl<T> ::core::fmt::Debug for #adapter<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(::core::stringify!(#adapter)).finish_non_exhaustive()
                }
            }

            #[#sf::__private::async_trait]
            impl<T: #server_trait> super::#wire_mod::#wire_trait for #adapter<T> {
                #(#adapter_methods)*
            }
        }
    }
}
