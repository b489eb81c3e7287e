//! The typed client of a rewritten service: `<svc>_client::<Svc>Client`, with
//! the methods' original signatures, on top of the wire client.

use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{
    Method, ServiceSettings, ServiceView, Side, attributes, codec_settings, doc_path, docs,
    duration_literal, has_blobs, has_uploads, human, rust_type,
};
use crate::model::ServiceModel;

pub(crate) fn generate(service: &ServiceView<'_>, settings: &ServiceSettings) -> TokenStream {
    let (model, methods) = (service.model, &service.methods);
    let sf = &settings.crate_path;
    let tonic = quote!(__sf::tonic);
    let names = &service.names;
    let module = &names.client_module;
    let client = &names.client;
    let wire_module = &names.wire_module;
    let wire_client = quote!(super::#wire_module::#module::#client<__sf::Observed<T>>);
    let mod_attributes = attributes(&settings.client_mod_attributes, &names.package);
    let struct_attributes = attributes(&settings.client_attributes, &names.path);
    let service_doc = &service.docs;
    let sf_doc = doc_path(settings);
    let mut client_doc = format!(
        " Client for `{}` with the methods' original signatures. Heartbeats are consumed inside the calls; attach a [`CallOptions`]({sf_doc}::CallOptions) to a request to watch them.",
        names.full_name
    );
    if has_blobs(model) {
        client_doc.push_str(&format!(
            " Blob methods take a [`BlobSource`]({sf_doc}::BlobSource) to send after the request, or return a [`Blob`]({sf_doc}::Blob) to read after the reply."
        ));
    }
    let module_doc = format!(" The client of `{}`.", names.full_name);
    let separator = if service_doc.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[doc = ""])
    };

    let calls = methods.iter().map(|m| call(m, model, &sf_doc));
    let sessions: Vec<TokenStream> = methods
        .iter()
        .filter(|m| m.original.client_streaming || m.original.server_streaming)
        .map(|m| {
            if m.original.client_streaming {
                session(m, model, &sf_doc)
            } else {
                resuming(m, model, &sf_doc)
            }
        })
        .collect();
    let sessions = if sessions.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            impl<T> #client<T>
            where
                T: #tonic::client::GrpcService<#tonic::body::Body> + ::core::clone::Clone + ::core::marker::Send + 'static,
                T::Future: ::core::marker::Send,
                T::Error: ::core::convert::Into<#tonic::codegen::StdError>,
                T::ResponseBody: #tonic::codegen::Body<Data = #tonic::codegen::Bytes> + ::core::marker::Send + 'static,
                <T::ResponseBody as #tonic::codegen::Body>::Error: ::core::convert::Into<#tonic::codegen::StdError> + ::core::marker::Send,
            {
                #(#sessions)*
            }
        }
    };
    let codec_settings = codec_settings(Side::Client, has_uploads(model));
    let connect = if settings.build_transport {
        quote! {
            impl #client<#tonic::transport::Channel> {
                /// A client connected to `dst` before it returns, with steadfast's
                /// channel defaults (`steadfast::channel`: keepalive, connect timeout);
                /// it reconnects on the call after a break.
                pub async fn connect<D>(dst: D) -> ::core::result::Result<Self, #tonic::transport::Error>
                where
                    D: ::core::convert::TryInto<#tonic::transport::Endpoint>,
                    D::Error: ::core::convert::Into<#tonic::codegen::StdError>,
                {
                    let (channel, connection) = __sf::connect_condemnable(dst).await?;
                    let mut client = Self::new(channel);
                    client.retry.set_connection(connection);
                    ::core::result::Result::Ok(client)
                }

                /// A client whose channel connects on its first call, so it can be made
                /// before the server is up, and reconnects on the call after a break;
                /// with steadfast's keepalive defaults (`steadfast::channel`). Must be
                /// called inside a tokio runtime.
                pub fn connect_lazy<D>(dst: D) -> ::core::result::Result<Self, #tonic::transport::Error>
                where
                    D: ::core::convert::TryInto<#tonic::transport::Endpoint>,
                    D::Error: ::core::convert::Into<#tonic::codegen::StdError>,
                {
                    let (channel, connection) = __sf::connect_lazy_condemnable(dst)?;
                    let mut client = Self::new(channel);
                    client.retry.set_connection(connection);
                    ::core::result::Result::Ok(client)
                }
            }
        }
    } else {
        TokenStream::new()
    };

    quote! {
        #[doc = #module_doc]
        #mod_attributes
        pub mod #module {
            #![allow(unused_variables, dead_code, missing_docs, clippy::let_unit_value)]

            use #sf::__private as __sf;

            #service_doc
            #separator
            #[doc = #client_doc]
            #struct_attributes
            #[derive(Debug, Clone)]
            pub struct #client<T> {
                inner: #wire_client,
                retry: __sf::ClientRetry,
            }

            #connect

            impl<T> #client<T>
            where
                T: #tonic::client::GrpcService<#tonic::body::Body>,
                T::Error: ::core::convert::Into<#tonic::codegen::StdError>,
                T::ResponseBody: #tonic::codegen::Body<Data = #tonic::codegen::Bytes> + ::core::marker::Send + 'static,
                <T::ResponseBody as #tonic::codegen::Body>::Error: ::core::convert::Into<#tonic::codegen::StdError> + ::core::marker::Send,
            {
                /// Wraps a transport (e.g. a `tonic::transport::Channel`).
                pub fn new(inner: T) -> Self {
                    Self::wrap(super::#wire_module::#module::#client::new(__sf::Observed::new(inner)))
                }

                /// Wraps a transport, sending requests to `origin`.
                pub fn with_origin(inner: T, origin: #tonic::codegen::http::Uri) -> Self {
                    Self::wrap(super::#wire_module::#module::#client::with_origin(__sf::Observed::new(inner), origin))
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

                /// Wraps the wire client (the service as it travels, heartbeat frames
                /// visible, over an `Observed` transport: `steadfast::observe::Observed`),
                /// keeping its settings as they are.
                pub fn from_wire(inner: #wire_client) -> Self {
                    Self { inner, retry: ::core::default::Default::default() }
                }

                /// A new client's decoding limit: tonic's 4 MiB for the message, plus
                /// what a heartbeat frame adds around it.
                fn wrap(inner: #wire_client) -> Self {
                    Self::from_wire(inner).max_decoding_message_size(4 * 1024 * 1024)
                }

                /// The wire client underneath: its calls return the frames, heartbeats
                /// included, each observed as one call (`steadfast::observe::Observed`).
                pub fn into_wire(self) -> #wire_client {
                    self.inner
                }

                /// Retries every unary and server-streaming call of this client by
                /// `policy`, over the methods' own policies and a service config.
                /// Calls are retried after they may have reached the server only if
                /// their method is `idempotent`.
                pub fn with_retry_policy(mut self, policy: __sf::RetryPolicy) -> Self {
                    self.retry.set_policy(policy);
                    self
                }

                /// Retries the methods a gRPC service config names by its
                /// `retryPolicy`, over their own policies (not over
                /// `with_retry_policy`), gives their calls its `timeout` when they set
                /// none and its `waitForReady` (unless `wait_for_ready` was set), and
                /// throttles this client's retries by its `retryThrottling`.
                pub fn with_service_config(mut self, config: &__sf::ServiceConfig) -> Self {
                    self.retry.set_service_config(config);
                    self
                }

                /// Makes every call one attempt, never retried.
                pub fn without_retries(mut self) -> Self {
                    self.retry.disable();
                    self
                }

                /// Whether calls wait for a server to be ready (gRPC's wait-for-ready):
                /// a call that finds no server tries again with backoff, without
                /// spending retry attempts, until a server takes it or its deadline
                /// passes; sessions reconnect the same way. Over the service config's
                /// `waitForReady`; a call's `CallOptions::wait_for_ready` wins. Default: no.
                pub fn wait_for_ready(mut self, wait: bool) -> Self {
                    self.retry.set_wait_for_ready(wait);
                    self
                }

                #codec_settings

                #(#calls)*
            }

            #sessions
        }
    }
}

/// `<method>_session`: a reconnecting session of a method that streams its
/// requests, over the client's own method.
fn session(m: &Method<'_>, model: &ServiceModel, sf_doc: &str) -> TokenStream {
    let ident = format_ident!("{}", m.original.name);
    let session = format_ident!("{}_session", m.original.name);
    let request = rust_type(&m.original.input_type, "super");
    let response = rust_type(&m.original.output_type, "super");
    let deprecated = deprecated(m);
    let (open, shape) = if m.original.server_streaming {
        (
            quote!(open),
            "Each response acknowledges the oldest request not yet acknowledged, unless the builder sets another rule.",
        )
    } else {
        (
            quote!(open_client_streaming),
            "Call `finish` after the last request; the one response then comes from `recv`. A request is acknowledged once the attempt that sent it has sent all the requests, unless the builder sets another rule.",
        )
    };
    let doc = format!(
        " A reconnecting session of [`{}`](Self::{}): requests go into the session's outbox and stay buffered until acknowledged; when the call breaks, a new attempt re-sends the buffered requests first, in order (see [`session`]({sf_doc}::session)). {shape} It reconnects by the builder's policy if it has one (`SessionBuilder::policy`), else by this client's policy for the method, and waits for a server to be ready if the builder or this client asks (`wait_for_ready`); pass `SessionBuilder::new()` for the defaults.",
        m.original.name, m.original.name
    );
    let method = retry_method(m, model);
    quote! {
        #[doc = #doc]
        #deprecated
        pub fn #session(
            &self,
            session: __sf::SessionBuilder<#request, #response>,
        ) -> __sf::Session<#request, #response> {
            let session = __sf::session_defaults(session, &self.retry, #method);
            let client = ::core::clone::Clone::clone(self);
            session.#open(move |requests| {
                let mut client = ::core::clone::Clone::clone(&client);
                async move { client.#ident(requests.into_request()).await }
            })
        }
    }
}

/// One client method.
fn call(m: &Method<'_>, model: &ServiceModel, sf_doc: &str) -> TokenStream {
    let tonic = quote!(__sf::tonic);
    let ident = format_ident!("{}", m.original.name);
    let proto_docs = m.docs;
    let mut doc = docs(proto_docs);
    let retry_note = retry_note(m);
    let deprecated = deprecated(m);
    let request = rust_type(&m.original.input_type, "super");
    let response = rust_type(&m.original.output_type, "super");
    let request_arg = if m.original.client_streaming {
        quote!(request: impl #tonic::IntoStreamingRequest<Message = #request>)
    } else {
        quote!(request: impl #tonic::IntoRequest<#request>)
    };
    // A retried method's attempts get the wire client as an argument.
    let inner = if m.original.client_streaming {
        quote!(self.inner)
    } else {
        quote!(inner)
    };
    if m.model.frame.is_none() && m.model.upload.is_none() {
        let returns = if m.original.server_streaming {
            quote!(#tonic::codec::Streaming<#response>)
        } else {
            response
        };
        if let Some(note) = &retry_note {
            if !proto_docs.is_empty() {
                doc.extend(quote!(#[doc = ""]));
            }
            doc.extend(quote!(#[doc = #note]));
        }
        let body = retried(m, model, false, quote!(#inner.#ident(request).await));
        return quote! {
            #doc
            #deprecated
            pub async fn #ident(&mut self, #request_arg) -> ::core::result::Result<#tonic::Response<#returns>, #tonic::Status> {
                #body
            }
        };
    }

    // What steadfast changed, after the proto's own docs.
    let mut notes = Vec::new();
    if let Some(interval) = m.model.options.heartbeat {
        let when = if m.original.server_streaming {
            "whenever {} pass without a message"
        } else {
            "every {} while it works"
        }
        .replace("{}", &human(interval));
        notes.push(format!(
            " Heartbeats: the server sends one {when}, and this call consumes them; attach a [`CallOptions`]({sf_doc}::CallOptions) to the request to watch them or to change the liveness window (default: {}, three intervals). The request's timeout (`Request::set_timeout`) is enforced here as well as on the server.",
            human(interval.saturating_mul(3)),
        ));
    }
    if m.model.options.request_blob {
        notes.push(
            " The request carries a blob: `blob` is sent after the request message, compressed and cut into chunks, read from its source while the call runs. If reading the source fails, the call returns that error.".to_owned(),
        );
    }
    if m.model.options.response_blob {
        let mut note = " The response carries a blob: the returned `Blob` reads it as it arrives, after the reply.".to_owned();
        if m.model.options.heartbeat.is_none() {
            note.push_str(" The request's timeout (`Request::set_timeout`) is enforced here as well as on the server.");
        }
        notes.push(note);
    }
    notes.extend(retry_note);
    for (i, note) in notes.iter().enumerate() {
        if i > 0 || !proto_docs.is_empty() {
            doc.extend(quote!(#[doc = ""]));
        }
        doc.extend(quote!(#[doc = #note]));
    }
    if m.model.frame.is_some() && !m.original.server_streaming {
        doc.extend(quote! {
            ///
            /// The response's metadata holds the response headers, which the server sends
            /// before its handler answers, and the trailers.
        });
    }

    let interval = |interval: std::time::Duration| {
        let millis = duration_literal(interval);
        quote!(::core::time::Duration::from_millis(#millis))
    };
    let frame = rust_type(&m.wire.output_type, "super");
    let call = quote!(#inner.#ident(request));
    let (blob_arg, upload) = match &m.model.upload {
        Some(_) => {
            let upload = rust_type(&m.wire.input_type, "super");
            (
                quote!(, blob: impl ::core::convert::Into<__sf::BlobSource>),
                quote! {
                    let (request, outcome) = __sf::upload::<#upload>(request, blob);
                },
            )
        }
        None => (TokenStream::new(), TokenStream::new()),
    };
    let check = |result: TokenStream| {
        if m.model.upload.is_some() {
            quote!(outcome.check(#result))
        } else {
            result
        }
    };
    let (returns, body) = if m.model.options.response_blob {
        let context = match m.model.options.heartbeat {
            Some(every) => {
                let every = interval(every);
                quote!(::core::option::Option::Some(#every))
            }
            None => quote!(::core::option::Option::None),
        };
        let result = check(quote!(__sf::call_download::<#frame, _, _>(context, #call).await));
        (
            quote!((#tonic::Response<#response>, __sf::Blob)),
            quote! {
                let context = __sf::blob_call_context(&mut request, #context);
                #upload
                #result
            },
        )
    } else if let Some(every) = m.model.options.heartbeat {
        let every = interval(every);
        let (returns, run) = if m.original.server_streaming {
            (quote!(__sf::Streaming<#response>), quote!(call_streaming))
        } else {
            (response, quote!(call_unary))
        };
        let result = check(quote!(__sf::#run::<#frame, _>(context, #call).await));
        (
            quote!(#tonic::Response<#returns>),
            quote! {
                let context = __sf::call_context(&mut request, #every);
                #upload
                #result
            },
        )
    } else {
        // A request blob alone: the reply comes as it is.
        let result = check(quote!(#call.await));
        (
            quote!(#tonic::Response<#response>),
            quote! {
                #upload
                #result
            },
        )
    };
    // The request gets its call context when the response has frames.
    let body = retried(m, model, m.model.frame.is_some(), body);
    quote! {
        #doc
        #deprecated
        pub async fn #ident(&mut self, #request_arg #blob_arg) -> ::core::result::Result<#returns, #tonic::Status> {
            #body
        }
    }
}

/// `<method>_resuming`: a server stream that reconnects and resumes by the
/// application's rule, over the client's own method (without its retries: the
/// stream reconnects by the same policy itself).
fn resuming(m: &Method<'_>, model: &ServiceModel, sf_doc: &str) -> TokenStream {
    let tonic = quote!(__sf::tonic);
    let ident = format_ident!("{}", m.original.name);
    let resuming = format_ident!("{}_resuming", m.original.name);
    let request = rust_type(&m.original.input_type, "super");
    let response = rust_type(&m.original.output_type, "super");
    let deprecated = deprecated(m);
    let doc = format!(
        " A stream of [`{}`](Self::{}) that survives reconnects: when the call breaks, it calls again with the request `resume` makes from the last request and the last response handed out (`None`: it cannot resume, and the stream ends with the failure), so the rule must make the server continue right after that response (see [`ResumingStream`]({sf_doc}::session::ResumingStream)). It reconnects by this client's policy for the method; the request's timeout bounds all attempts together.",
        m.original.name, m.original.name
    );
    let method = retry_method(m, model);
    let service_name = model.full_name();
    let method_name = &m.model.proto_name;
    quote! {
        #[doc = #doc]
        #deprecated
        pub fn #resuming<R>(
            &self,
            request: impl #tonic::IntoRequest<#request>,
            resume: R,
        ) -> __sf::ResumingStream<#request, #response>
        where
            R: ::core::ops::FnMut(&#request, &#response) -> ::core::option::Option<#request> + ::core::marker::Send + 'static,
        {
            let policy = __sf::session_policy(&self.retry, #method);
            let client = ::core::clone::Clone::clone(self).without_retries();
            __sf::ResumingStream::builder(policy).method(#service_name, #method_name).open(
                request,
                move |request| {
                    let mut client = ::core::clone::Clone::clone(&client);
                    async move { client.#ident(request).await }
                },
                resume,
            )
        }
    }
}

/// `#[deprecated]` on a deprecated rpc's methods; the wire client's method is
/// deprecated too, and calling it must not warn.
fn deprecated(m: &Method<'_>) -> TokenStream {
    if m.original.options.deprecated() {
        quote!(#[deprecated] #[allow(deprecated)])
    } else {
        TokenStream::new()
    }
}

/// What the proto or build.rs set for the method's retries, if anything.
fn retry_note(m: &Method<'_>) -> Option<String> {
    if m.original.client_streaming
        || (m.model.options.retry.is_none() && !m.model.options.idempotent)
    {
        return None;
    }
    let mut note = String::from(" Retries: ");
    match &m.model.options.retry {
        Some(plan) => note.push_str(&format!(
            "up to {} attempts in all on {} (the method's policy; a client's `with_retry_policy` or `with_service_config` replaces it)",
            plan.attempts(),
            plan.codes.join(", ")
        )),
        None => note.push_str("by the client's policy"),
    }
    if m.model.options.idempotent {
        note.push_str("; idempotent, so retried even after the server may have seen the call");
    } else {
        note.push_str("; not idempotent, so retried only when the server never received the call");
    }
    if m.original.server_streaming {
        note.push_str(", and only until the response headers arrive");
    }
    note.push('.');
    Some(note)
}

/// A method's body run under its retry policy: `attempt` (which reads
/// `request`, and `blob` for a request blob; `mutable`: mutably) once per
/// attempt, for unary and server-streaming methods, as an async closure given
/// to the runtime's `retried`; as it is, on the one request stream, for
/// client-streaming ones.
fn retried(
    m: &Method<'_>,
    model: &ServiceModel,
    mutable: bool,
    attempt: TokenStream,
) -> TokenStream {
    let request = if mutable {
        quote!(mut request)
    } else {
        quote!(request)
    };
    if m.original.client_streaming {
        let service = model.full_name();
        let method = &m.model.proto_name;
        let call_type = call_type(m);
        return quote! {
            let mut request = __sf::tonic::IntoStreamingRequest::into_streaming_request(request);
            let call = __sf::start_call(&mut request, #service, #method, #call_type);
            let result = { #attempt };
            call.settled(result)
        };
    }
    let method = retry_method(m, model);
    let attempt = if m.model.frame.is_none() && m.model.upload.is_none() {
        attempt
    } else {
        quote!({ #attempt })
    };
    let call = if m.model.upload.is_some() {
        quote!(__sf::retried_with_blob(&self.retry, method, &mut self.inner, request, blob, async |inner, #request, blob| #attempt))
    } else {
        quote!(__sf::retried(&self.retry, method, &mut self.inner, request, async |inner, #request| #attempt))
    };
    quote! {
        let method = #method;
        #call.await
    }
}

/// The method's `RetryMethod`: its names and what steadfast-build resolved.
fn retry_method(m: &Method<'_>, model: &ServiceModel) -> TokenStream {
    let tonic = quote!(__sf::tonic);
    let service = model.full_name();
    let method = &m.model.proto_name;
    let policy = match &m.model.options.retry {
        None => quote!(::core::option::Option::None),
        Some(plan) => {
            let max_attempts = plan.max_attempts;
            let attempt_limit = plan.attempt_limit;
            let initial = plan.initial_backoff_ms;
            let max = plan.max_backoff_ms;
            let multiplier = proc_macro2::Literal::f64_suffixed(plan.multiplier());
            let codes = plan.codes.iter().map(|name| {
                let code = format_ident!("{}", name.to_upper_camel_case());
                quote!(#tonic::Code::#code)
            });
            quote! {
                ::core::option::Option::Some(__sf::retry_policy(
                    #max_attempts, #attempt_limit, #initial, #max, #multiplier, &[#(#codes),*],
                ))
            }
        }
    };
    let idempotent = m.model.options.idempotent;
    let call_type = call_type(m);
    quote! {
        __sf::RetryMethod {
            service: #service,
            method: #method,
            policy: #policy,
            idempotent: #idempotent,
            call_type: #call_type,
        }
    }
}

/// The method's `CallType` (its metrics' `grpc_type`): its shape as it
/// travels, as the server labels it (a heartbeat method streams its
/// responses, a request blob its requests).
fn call_type(m: &Method<'_>) -> TokenStream {
    match (m.wire.client_streaming, m.wire.server_streaming) {
        (false, false) => quote!(__sf::CallType::Unary),
        (true, false) => quote!(__sf::CallType::ClientStream),
        (false, true) => quote!(__sf::CallType::ServerStream),
        (true, true) => quote!(__sf::CallType::BidiStream),
    }
}
