//! The typed server of a rewritten service: `<svc>_server::{<Svc>, <Svc>Server}`
//! with the methods' original signatures. A call that asks for frames
//! (`steadfast::framing`) goes to the wire server, through an adapter that runs
//! heartbeat methods inside the runtime's frame stream; any other call goes to
//! tonic's server of the service as written, through an adapter that serves the
//! original shapes (and refuses blob methods).

use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{
    Method, ServiceSettings, ServiceView, Side, attributes, codec_settings, doc_path, docs,
    duration_literal, has_blobs, has_uploads, human, rust_type, wire,
};
use crate::model::ServiceModel;

pub(crate) fn generate(service: &ServiceView<'_>, settings: &ServiceSettings) -> TokenStream {
    let (model, original, methods) = (service.model, service.original, &service.methods);
    let sf = &settings.crate_path;
    let tonic = quote!(__sf::tonic);
    let names = &service.names;
    let module = &names.server_module;
    let server_trait = &names.server_trait;
    let server = &names.server;
    let wire_module = &names.wire_module;
    let wire = quote!(super::#wire_module::#module);
    let wire_server = quote!(#wire::#server<_WireAdapter<T>>);
    let original_server = quote!(_original::#module::#server<_OriginalAdapter<T>>);
    let original_code = wire::original_server(original, settings);
    let sf_doc = doc_path(settings);
    let mod_attributes = attributes(&settings.server_mod_attributes, &names.package);
    let struct_attributes = attributes(&settings.server_attributes, &names.path);
    let trait_attributes = attributes(&settings.trait_attributes, &original.name);
    let service_doc = &service.docs;
    let separator = if service_doc.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[doc = ""])
    };
    let module_doc = format!(" The server of `{}`.", names.full_name);
    let blobs = has_blobs(model);
    let uploads = has_uploads(model);
    let mut trait_doc = format!(
        " The methods of `{}` with their original signatures, served by [`{server}`]. A heartbeat method can report progress with [`Progress`]({sf_doc}::Progress).",
        names.full_name
    );
    if blobs {
        trait_doc.push_str(&format!(
            " A blob method takes a [`Blob`]({sf_doc}::Blob) to read beside the request, or returns a [`BlobSource`]({sf_doc}::BlobSource) to send after the reply."
        ));
    }
    let server_doc = format!(
        " Serves an implementation of [`{server_trait}`] as `{}` ({} methods rewritten for the wire).",
        names.full_name,
        if blobs {
            "heartbeat and blob"
        } else {
            "heartbeat"
        }
    );
    let self_param = if settings.use_arc_self {
        quote!(self: ::std::sync::Arc<Self>)
    } else {
        quote!(&self)
    };

    let trait_methods = methods
        .iter()
        .map(|m| trait_method(m, settings, &self_param, server, &sf_doc));
    let codec_settings = codec_settings(Side::Server, uploads);
    let adapter_methods = methods
        .iter()
        .map(|m| adapter_method(m, settings, server_trait));
    let original_methods = methods
        .iter()
        .map(|m| original_method(m, model, settings, server_trait));
    // The upload limits: set on the typed server, read by its adapter per call.
    let limits_cell = quote!(__sf::LimitsCell);
    let (limits_field, limits_new, limits_adapter, limits_clone, blob_limits) = if uploads {
        let blob_limits_doc = format!(
            " Limits the blobs that requests bring (see [`BlobLimits`]({sf_doc}::blob::BlobLimits) for what is limited, and the defaults). A blob over a limit, declared or actual, fails its call with `RESOURCE_EXHAUSTED`."
        );
        (
            quote!(limits: #limits_cell,),
            quote!(limits: limits.clone(),),
            quote!(limits,),
            quote!(limits: self.limits.clone(),),
            quote! {
                #[doc = #blob_limits_doc]
                #[must_use]
                pub fn blob_limits(self, limits: #sf::blob::BlobLimits) -> Self {
                    self.limits.set(limits);
                    self
                }
            },
        )
    } else {
        Default::default()
    };
    let from_arc = if uploads {
        quote! {
            let limits = <#limits_cell as ::core::default::Default>::default();
            Self {
                inner: #wire::#server::new(_WireAdapter { inner: ::std::sync::Arc::clone(&inner), #limits_new }),
                original: _original::#module::#server::new(_OriginalAdapter { inner }),
                #limits_adapter
            }
            .max_decoding_message_size(4 * 1024 * 1024)
        }
    } else {
        quote! {
            Self {
                inner: #wire::#server::new(_WireAdapter { inner: ::std::sync::Arc::clone(&inner) }),
                original: _original::#module::#server::new(_OriginalAdapter { inner }),
            }
        }
    };

    quote! {
        #[doc = #module_doc]
        #mod_attributes
        pub mod #module {
            #![allow(unused_variables, dead_code, missing_docs, clippy::let_unit_value)]

            use #sf::__private as __sf;

            #service_doc
            #separator
            #[doc = #trait_doc]
            #trait_attributes
            #[__sf::async_trait]
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
                original: #original_server,
                #limits_field
            }

            impl<T> #server<T> {
                /// Serves `inner`.
                pub fn new(inner: T) -> Self {
                    Self::from_arc(::std::sync::Arc::new(inner))
                }

                /// Serves a shared `inner`.
                pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {
                    #from_arc
                }

                /// Serves `inner` behind an interceptor.
                pub fn with_interceptor<F>(inner: T, interceptor: F) -> #tonic::codegen::InterceptedService<Self, F>
                where
                    F: #tonic::service::Interceptor,
                {
                    #tonic::codegen::InterceptedService::new(Self::new(inner), interceptor)
                }

                #blob_limits

                #codec_settings
            }

            impl<T> ::core::clone::Clone for #server<T> {
                fn clone(&self) -> Self {
                    Self { inner: self.inner.clone(), original: self.original.clone(), #limits_clone }
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
                type Response = #tonic::codegen::http::Response<#tonic::body::Body>;
                type Error = ::core::convert::Infallible;
                type Future = #tonic::codegen::BoxFuture<Self::Response, Self::Error>;

                fn poll_ready(&mut self, cx: &mut ::core::task::Context<'_>) -> ::core::task::Poll<::core::result::Result<(), Self::Error>> {
                    // tonic's servers are always ready.
                    ::core::task::Poll::Ready(::core::result::Result::Ok(()))
                }

                /// Serves a call that asks for frames (`steadfast-framing: v1`) on the
                /// wire, any other in the methods' original shapes.
                fn call(&mut self, request: #tonic::codegen::http::Request<B>) -> Self::Future {
                    match __sf::negotiate(request.headers()) {
                        __sf::Framing::Frames => #tonic::codegen::Service::call(&mut self.inner, request),
                        __sf::Framing::Original => #tonic::codegen::Service::call(&mut self.original, request),
                        __sf::Framing::Unsupported(status) => __sf::refuse(status),
                    }
                }
            }

            impl<T> #tonic::server::NamedService for #server<T> {
                const NAME: &'static str = SERVICE_NAME;
            }

            /// Implements the wire service on top of the typed trait.
            #[doc(hidden)]
            pub struct _WireAdapter<T> {
                inner: ::std::sync::Arc<T>,
                #limits_field
            }

            impl<T> ::core::fmt::Debug for _WireAdapter<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct("_WireAdapter").finish_non_exhaustive()
                }
            }

            #[__sf::async_trait]
            #[allow(non_camel_case_types)]
            impl<T: #server_trait> #wire::#server_trait for _WireAdapter<T> {
                #(#adapter_methods)*
            }

            /// Implements the service as written on top of the typed trait, for
            /// calls that do not ask for frames.
            #[doc(hidden)]
            pub struct _OriginalAdapter<T> {
                inner: ::std::sync::Arc<T>,
            }

            impl<T> ::core::fmt::Debug for _OriginalAdapter<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct("_OriginalAdapter").finish_non_exhaustive()
                }
            }

            #[__sf::async_trait]
            #[allow(non_camel_case_types)]
            impl<T: #server_trait> _original::#module::#server_trait for _OriginalAdapter<T> {
                #(#original_methods)*
            }

            #original_code
        }
    }
}

/// The request parameter's type of `method` as tonic's server trait has it
/// (`Request<T>`, or `Request<Streaming<T>>` for a client stream).
fn request_type(method: &prost_build::Method, tonic: &TokenStream) -> TokenStream {
    let request = rust_type(&method.input_type, "super");
    if method.client_streaming {
        quote!(#tonic::Request<#tonic::Streaming<#request>>)
    } else {
        quote!(#tonic::Request<#request>)
    }
}

/// The typed stream type of a server-streaming method (`TicksStream`).
fn stream_type(m: &Method<'_>) -> proc_macro2::Ident {
    format_ident!("{}Stream", m.model.proto_name.to_upper_camel_case())
}

fn trait_method(
    m: &Method<'_>,
    settings: &ServiceSettings,
    self_param: &TokenStream,
    server: &proc_macro2::Ident,
    sf_doc: &str,
) -> TokenStream {
    let sf = &settings.crate_path;
    let tonic = quote!(__sf::tonic);
    let ident = format_ident!("{}", m.original.name);
    let proto_docs = m.docs;
    let mut doc = docs(proto_docs);
    let mut notes = Vec::new();
    if let Some(interval) = m.model.options.heartbeat {
        notes.push(format!(
            " Heartbeats: while this runs, the server sends one whenever {} pass with nothing sent; they carry what the handler reports through [`Progress::from_request`]({sf_doc}::Progress::from_request). Past the call's deadline (`grpc-timeout`) this future is dropped and the client gets `DEADLINE_EXCEEDED`.",
            human(interval)
        ));
    }
    if m.model.options.request_blob {
        notes.push(format!(
            " The request carries a blob: `blob` reads it as it arrives, after the request message, within the server's [`blob_limits`]({server}::blob_limits)."
        ));
    }
    if m.model.options.response_blob {
        let mut note = " The response carries a blob: the returned `BlobSource` is sent after the reply, compressed and cut into chunks.".to_owned();
        if m.model.options.heartbeat.is_none() {
            note.push_str(" Past the call's deadline (`grpc-timeout`) this future is dropped and the client gets `DEADLINE_EXCEEDED`.");
        }
        notes.push(note);
    }
    for (i, note) in notes.iter().enumerate() {
        if i > 0 || !proto_docs.is_empty() {
            doc.extend(quote!(#[doc = ""]));
        }
        doc.extend(quote!(#[doc = #note]));
    }
    if m.model.frame.is_some() && !m.original.server_streaming {
        doc.extend(quote! {
            ///
            /// The metadata of the returned `Response` is not sent: the response headers
            /// leave before the handler answers. Put such values in the message.
        });
    }
    let request = request_type(m.original, &tonic);
    let response = rust_type(&m.original.output_type, "super");
    let blob_param = if m.model.options.request_blob {
        quote!(, blob: #sf::Blob)
    } else {
        TokenStream::new()
    };
    let returns = if m.model.options.response_blob {
        quote!((#tonic::Response<#response>, #sf::BlobSource))
    } else {
        quote!(#tonic::Response<#response>)
    };
    let stub = quote!({
        ::core::result::Result::Err(#tonic::Status::unimplemented("Not yet implemented"))
    });
    match (m.original.server_streaming, settings.generate_default_stubs) {
        (false, false) => quote! {
            #doc
            async fn #ident(#self_param, request: #request #blob_param) -> ::core::result::Result<#returns, #tonic::Status>;
        },
        (false, true) => quote! {
            #doc
            async fn #ident(#self_param, request: #request #blob_param) -> ::core::result::Result<#returns, #tonic::Status> #stub
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
    let tonic = quote!(__sf::tonic);
    let ident = format_ident!("{}", m.original.name);
    // tonic-build names the wire trait's stream types after the proto name.
    let wire_stream = format_ident!("{}Stream", m.model.proto_name);
    let request = request_type(m.wire, &tonic);
    // How the handler is called, with `inner: Arc<T>` (or `&Arc<T>`) in scope,
    // and `blob` for a request blob.
    let blob = if m.model.options.request_blob {
        quote!(, blob)
    } else {
        TokenStream::new()
    };
    let call = if settings.use_arc_self {
        quote!(<T as #server_trait>::#ident(inner, request #blob))
    } else {
        quote!(<T as #server_trait>::#ident(&inner, request #blob))
    };
    // The upload read off the request stream first, with `limits` in scope.
    let accept = if m.model.options.request_blob {
        quote!(let (request, blob) = __sf::accept_upload(request, limits).await?;)
    } else {
        TokenStream::new()
    };
    let limits = if m.model.options.request_blob {
        quote!(let limits = self.limits.get();)
    } else {
        TokenStream::new()
    };
    if m.model.frame.is_none() {
        let handler = quote! {
            let inner = ::std::sync::Arc::clone(&self.inner);
            #limits
            #accept
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
    }
    let interval = m.model.options.heartbeat.map(|interval| {
        let millis = duration_literal(interval);
        quote!(::core::time::Duration::from_millis(#millis))
    });
    let frame = rust_type(&m.wire.output_type, "super");
    let (serve, interval) = match interval {
        _ if m.model.options.response_blob => {
            let interval = match interval {
                Some(interval) => quote!(::core::option::Option::Some(#interval)),
                None => quote!(::core::option::Option::None),
            };
            (quote!(serve_download), interval)
        }
        Some(interval) if m.original.server_streaming => (quote!(serve_streaming), interval),
        Some(interval) => (quote!(serve_unary), interval),
        None => {
            let message = format!(
                "steadfast-build internal error: method `{}` has a frame but neither heartbeats nor a response blob",
                m.model.proto_name
            );
            return quote!(::core::compile_error!(#message););
        }
    };
    quote! {
        type #wire_stream = __sf::FrameStream<#frame>;
        async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<Self::#wire_stream>, #tonic::Status> {
            let inner = ::std::sync::Arc::clone(&self.inner);
            #limits
            ::core::result::Result::Ok(__sf::#serve(
                request,
                #interval,
                move |request| async move {
                    #accept
                    #call.await
                },
            ))
        }
    }
}

/// A method of the original-shape adapter: plain methods as they are, heartbeat
/// methods without heartbeats (the deadline still enforced), blob methods
/// refused.
fn original_method(
    m: &Method<'_>,
    model: &ServiceModel,
    settings: &ServiceSettings,
    server_trait: &proc_macro2::Ident,
) -> TokenStream {
    let tonic = quote!(__sf::tonic);
    let ident = format_ident!("{}", m.original.name);
    // tonic-build names the trait's stream types after the proto name.
    let tonic_stream = format_ident!("{}Stream", m.model.proto_name);
    let request = request_type(m.original, &tonic);
    let response = rust_type(&m.original.output_type, "super");
    let call = if settings.use_arc_self {
        quote!(<T as #server_trait>::#ident(inner, request))
    } else {
        quote!(<T as #server_trait>::#ident(&inner, request))
    };
    if m.model.options.request_blob || m.model.options.response_blob {
        let method = format!("{}/{}", model.full_name(), m.model.proto_name);
        return quote! {
            async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status> {
                ::core::result::Result::Err(__sf::blob_refused(#method))
            }
        };
    }
    if !m.original.server_streaming {
        let body = if m.model.options.heartbeat.is_some() {
            quote!(__sf::serve_original_unary(request, move |request| async move { #call.await }).await)
        } else {
            quote!(#call.await)
        };
        return quote! {
            async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<#response>, #tonic::Status> {
                let inner = ::std::sync::Arc::clone(&self.inner);
                #body
            }
        };
    }
    let typed = if settings.generate_default_stubs {
        quote!(#tonic::codegen::BoxStream<#response>)
    } else {
        let typed = stream_type(m);
        quote!(<T as #server_trait>::#typed)
    };
    let (stream, body) = if m.model.options.heartbeat.is_some() {
        (
            quote!(__sf::OriginalStream<#typed>),
            quote!(__sf::serve_original_streaming(request, move |request| async move { #call.await }).await),
        )
    } else {
        (typed, quote!(#call.await))
    };
    quote! {
        type #tonic_stream = #stream;
        async fn #ident(&self, request: #request) -> ::core::result::Result<#tonic::Response<Self::#tonic_stream>, #tonic::Status> {
            let inner = ::std::sync::Arc::clone(&self.inner);
            #body
        }
    }
}
