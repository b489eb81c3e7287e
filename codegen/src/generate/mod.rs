//! The service generator handed to prost.
//!
//! - A service steadfast leaves alone goes to tonic-prost-build's own generator,
//!   configured with the same service settings, so a proto without steadfast
//!   options generates exactly what tonic-prost-build would.
//! - A rewritten service (one in the [`Model`]) gets, in its package's module:
//!   - [`frames`]: the glue between each synthesized frame message and the runtime;
//!   - [`client`]: `<svc>_client::<Svc>Client`, the original signatures;
//!   - [`server`]: `<svc>_server::{<Svc>, <Svc>Server}`, the original signatures;
//!   - [`wire`]: `<svc>_wire`, tonic-build's client and server for the rewritten
//!     service (frames visible), generated over this crate's own
//!     `tonic_build::Service`; the typed layer is built on it, and it stays
//!     reachable as an escape hatch.
//!
//! The original signatures come from prost itself ([`resolve`]), paired with
//! the wire methods by name through the model, once per service (a
//! [`ServiceView`]) before any generator runs.

mod client;
mod frames;
mod resolve;
mod server;
mod wire;

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Duration;

use proc_macro2::{Ident, TokenStream};
use prost_build::{Service, ServiceGenerator};
use quote::{format_ident, quote};

pub(crate) use self::resolve::original_services;
use crate::Error;
use crate::model::{MethodModel, Model, ServiceModel, qualified};
use crate::names;

/// Runs a prost-build generation over `protos`: its error becomes
/// [`Error::Generate`], and a panic inside it [`Error::GeneratorPanic`] naming
/// the protos, so that no failure of steadfast-build is a panic (the last line
/// of defence: every panic of prost-build known is avoided before it).
///
/// Unwind safety: the config and generators the closure borrows are dropped
/// unused after a panic, as the caller returns the error.
pub(crate) fn guarded<T>(
    protos: &[impl AsRef<Path>],
    run: impl FnOnce() -> std::io::Result<T>,
) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(result) => result.map_err(Error::Generate),
        Err(payload) => {
            let message = if let Some(text) = payload.downcast_ref::<&str>() {
                (*text).to_owned()
            } else if let Some(text) = payload.downcast_ref::<String>() {
                text.clone()
            } else {
                "(no message)".to_owned()
            };
            Err(Error::GeneratorPanic {
                protos: protos.iter().map(|p| p.as_ref().to_path_buf()).collect(),
                message,
            })
        }
    }
}

/// The service-level settings, as tonic-prost-build has them; applied alike to
/// plain services (through tonic-prost-build), to the wire code and to the
/// typed layer.
#[derive(Clone)]
pub(crate) struct ServiceSettings {
    pub(crate) build_client: bool,
    pub(crate) build_server: bool,
    pub(crate) build_transport: bool,
    pub(crate) emit_package: bool,
    pub(crate) use_arc_self: bool,
    pub(crate) generate_default_stubs: bool,
    pub(crate) disable_comments: HashSet<String>,
    pub(crate) codec_path: Option<String>,
    pub(crate) client_mod_attributes: Vec<(String, String)>,
    pub(crate) client_attributes: Vec<(String, String)>,
    pub(crate) server_mod_attributes: Vec<(String, String)>,
    pub(crate) server_attributes: Vec<(String, String)>,
    pub(crate) trait_attributes: Vec<(String, String)>,
    /// The path of the `steadfast` crate in generated code.
    pub(crate) crate_path: syn::Path,
}

impl ServiceSettings {
    /// tonic-prost-build's generator, for the services steadfast leaves alone.
    fn tonic_generator(&self) -> Box<dyn ServiceGenerator> {
        let mut builder = tonic_prost_build::configure()
            .build_client(self.build_client)
            .build_server(self.build_server)
            .build_transport(self.build_transport)
            .emit_package(self.emit_package)
            .use_arc_self(self.use_arc_self)
            .generate_default_stubs(self.generate_default_stubs)
            .disable_comments(self.disable_comments.iter().cloned());
        if let Some(codec) = &self.codec_path {
            builder = builder.codec_path(codec);
        }
        for (pattern, attribute) in &self.client_mod_attributes {
            builder = builder.client_mod_attribute(pattern, attribute);
        }
        for (pattern, attribute) in &self.client_attributes {
            builder = builder.client_attribute(pattern, attribute);
        }
        for (pattern, attribute) in &self.server_mod_attributes {
            builder = builder.server_mod_attribute(pattern, attribute);
        }
        for (pattern, attribute) in &self.server_attributes {
            builder = builder.server_attribute(pattern, attribute);
        }
        for (pattern, attribute) in &self.trait_attributes {
            builder = builder.trait_attribute(pattern, attribute);
        }
        builder.service_generator()
    }
}

/// The generator handed to `prost_build::Config::service_generator`.
pub(crate) struct Generator {
    tonic: Box<dyn ServiceGenerator>,
    model: Model,
    originals: HashMap<String, Service>,
    settings: ServiceSettings,
}

impl Generator {
    pub(crate) fn new(
        model: Model,
        originals: HashMap<String, Service>,
        settings: ServiceSettings,
    ) -> Self {
        Generator {
            tonic: settings.tonic_generator(),
            model,
            originals,
            settings,
        }
    }
}

impl ServiceGenerator for Generator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let key = qualified(&service.package, &service.proto_name);
        let Some(model) = self.model.service(&key) else {
            self.tonic.generate(service, buf);
            return;
        };
        let tokens = match self.originals.get(&key) {
            Some(original) => match ServiceView::join(model, original, &service, &self.settings) {
                Ok(view) => rewritten_service(&view, &self.settings),
                Err(error) => error,
            },
            None => {
                let message = format!(
                    "steadfast-build internal error: prost did not resolve the original service `{key}`"
                );
                quote!(::core::compile_error!(#message);)
            }
        };
        match syn::parse2::<syn::File>(tokens.clone()) {
            Ok(file) => buf.push_str(&prettyplease::unparse(&file)),
            Err(_) => buf.push_str(&tokens.to_string()),
        }
    }

    fn finalize(&mut self, buf: &mut String) {
        self.tonic.finalize(buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        self.tonic.finalize_package(package, buf);
    }
}

/// One method as the generator sees it: the model, and prost's Rust view of
/// its original and wire signatures.
pub(crate) struct Method<'a> {
    pub(crate) model: &'a MethodModel,
    pub(crate) original: &'a prost_build::Method,
    pub(crate) wire: &'a prost_build::Method,
    /// The method's doc comment lines, unless `disable_comments` names it.
    pub(crate) docs: &'a [String],
}

/// One rewritten service as the generators see it: the model, prost's Rust
/// view of the service as written and as it travels, every method of the
/// model joined with prost's two views of it (in proto order), and the names
/// of what is generated.
pub(crate) struct ServiceView<'a> {
    pub(crate) model: &'a ServiceModel,
    pub(crate) original: &'a Service,
    pub(crate) wire: &'a Service,
    pub(crate) methods: Vec<Method<'a>>,
    pub(crate) names: ServiceNames,
    /// The service's doc comment, unless `disable_comments` names it.
    pub(crate) docs: TokenStream,
}

/// The names of a rewritten service's generated code, for every generator.
pub(crate) struct ServiceNames {
    /// The full proto name (`lab.v1.Lab`).
    pub(crate) full_name: String,
    /// The name tonic matches struct attributes and comments against
    /// (`lab.v1.Lab`, or `Lab` without `emit_package`).
    pub(crate) path: String,
    /// The package tonic matches module attributes against (`lab.v1`, or
    /// empty without `emit_package`).
    pub(crate) package: String,
    /// `lab_client`: the typed client's module, as tonic names it.
    pub(crate) client_module: Ident,
    /// `lab_server`: the typed server's module, as tonic names it.
    pub(crate) server_module: Ident,
    /// `lab_wire`: the module of the wire code.
    pub(crate) wire_module: Ident,
    /// `LabClient`.
    pub(crate) client: Ident,
    /// `Lab`: the typed server's trait, prost's Rust name of the service.
    pub(crate) server_trait: Ident,
    /// `LabServer`.
    pub(crate) server: Ident,
}

impl ServiceNames {
    fn new(model: &ServiceModel, original: &Service, settings: &ServiceSettings) -> Self {
        let full_name = model.full_name();
        let (path, package) = if settings.emit_package {
            (full_name.clone(), model.package.clone())
        } else {
            (model.proto_name.clone(), String::new())
        };
        let prefix = names::module_prefix(&model.proto_name);
        ServiceNames {
            full_name,
            path,
            package,
            client_module: format_ident!("{prefix}_client"),
            server_module: format_ident!("{prefix}_server"),
            wire_module: format_ident!("{}", model.wire_module),
            client: format_ident!("{}Client", original.name),
            server_trait: format_ident!("{}", original.name),
            server: format_ident!("{}Server", original.name),
        }
    }
}

impl<'a> ServiceView<'a> {
    /// Pairs each method of `model` with prost's original and wire method of
    /// the same name (a method prost lacks is an internal error, as code that
    /// does not compile), and names what is generated.
    fn join(
        model: &'a ServiceModel,
        original: &'a Service,
        wire: &'a Service,
        settings: &ServiceSettings,
    ) -> Result<Self, TokenStream> {
        let names = ServiceNames::new(model, original, settings);
        let disabled = |path: &str| settings.disable_comments.contains(path);
        let mut methods = Vec::with_capacity(model.methods.len());
        for method in &model.methods {
            let find = |service: &'a Service| {
                service
                    .methods
                    .iter()
                    .find(|m| m.proto_name == method.proto_name)
            };
            match (find(original), find(wire)) {
                (Some(original), Some(wire)) => methods.push(Method {
                    model: method,
                    original,
                    wire,
                    docs: if disabled(&format!("{}.{}", names.path, method.proto_name)) {
                        &[]
                    } else {
                        &original.comments.leading
                    },
                }),
                _ => {
                    let message = format!(
                        "steadfast-build internal error: method `{}` of `{}` not found in prost's services",
                        method.proto_name,
                        model.full_name()
                    );
                    return Err(quote!(::core::compile_error!(#message);));
                }
            }
        }
        let docs = if disabled(&names.path) {
            TokenStream::new()
        } else {
            docs(&original.comments.leading)
        };
        Ok(ServiceView {
            model,
            original,
            wire,
            methods,
            names,
            docs,
        })
    }
}

fn rewritten_service(service: &ServiceView<'_>, settings: &ServiceSettings) -> TokenStream {
    let frames = frames::generate(&service.methods, settings);
    let wire_code = wire::generate(service, settings);
    let client = if settings.build_client {
        client::generate(service, settings)
    } else {
        TokenStream::new()
    };
    let server = if settings.build_server {
        server::generate(service, settings)
    } else {
        TokenStream::new()
    };
    quote! {
        #frames
        #client
        #server
        #wire_code
    }
}

/// Whether any method of the service has a request blob (and so an upload).
pub(crate) fn has_uploads(model: &ServiceModel) -> bool {
    model.methods.iter().any(|m| m.options.request_blob)
}

/// Whether any method of the service has a blob, either way.
pub(crate) fn has_blobs(model: &ServiceModel) -> bool {
    model
        .methods
        .iter()
        .any(|m| m.options.request_blob || m.options.response_blob)
}

/// Which end a typed wrapper is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// The compression and message-size settings of a typed client or server,
/// passed on to the wire one in `self.inner`. Heartbeat frames wrap the
/// responses, so the response side's size limit allows for what a frame adds;
/// with `uploads` (the service has a `request_blob` method), upload frames wrap
/// requests, and the request side's limit allows for that too. A typed server
/// passes them on to its original-shape server in `self.original` as well, with
/// the message's own limits.
pub(crate) fn codec_settings(side: Side, uploads: bool) -> TokenStream {
    // Client and server modules name the runtime through their `__sf` alias.
    let tonic = quote!(__sf::tonic);
    let (sent, received) = match side {
        Side::Client => ("requests", "responses"),
        Side::Server => ("responses", "requests"),
    };
    let send_doc = format!(" Compresses {sent} with the given encoding.");
    let accept_doc = format!(" Enables decompressing {received} with the given encoding.");
    let frames = quote! {
        ///
        /// The limit is the message's: a heartbeat frame around it may add up to
        /// a few bytes more on the wire, which are allowed on top.
    };
    let with_frame = quote!(limit.saturating_add(__sf::FRAME_OVERHEAD));
    let (request_doc, request_limit) = if uploads {
        let doc = quote! {
            ///
            /// The limit is the message's: the upload frame around the request of a
            /// blob method may add up to a few bytes more on the wire, which are
            /// allowed on top.
        };
        (doc, with_frame.clone())
    } else {
        (TokenStream::new(), quote!(limit))
    };
    let (decoding, decoding_doc, decoding_limit) = match side {
        Side::Client => (
            " Limits the size of a decoded response message (default: 4 MiB, as in tonic).",
            frames.clone(),
            with_frame.clone(),
        ),
        Side::Server => (
            " Limits the size of a decoded request message (default: 4 MiB).",
            request_doc.clone(),
            request_limit.clone(),
        ),
    };
    let (encoding, encoding_doc, encoding_limit) = match side {
        Side::Client => (
            " Limits the size of an encoded request message (default: `usize::MAX`).",
            request_doc,
            request_limit,
        ),
        Side::Server => (
            " Limits the size of an encoded response message (default: `usize::MAX`).",
            frames,
            with_frame,
        ),
    };
    let original = |setting: TokenStream| match side {
        Side::Client => TokenStream::new(),
        Side::Server => quote!(self.original = self.original.#setting;),
    };
    let send_original = original(quote!(send_compressed(encoding)));
    let accept_original = original(quote!(accept_compressed(encoding)));
    let decoding_original = original(quote!(max_decoding_message_size(limit)));
    let encoding_original = original(quote!(max_encoding_message_size(limit)));
    quote! {
        #[doc = #send_doc]
        #[must_use]
        pub fn send_compressed(mut self, encoding: #tonic::codec::CompressionEncoding) -> Self {
            self.inner = self.inner.send_compressed(encoding);
            #send_original
            self
        }

        #[doc = #accept_doc]
        #[must_use]
        pub fn accept_compressed(mut self, encoding: #tonic::codec::CompressionEncoding) -> Self {
            self.inner = self.inner.accept_compressed(encoding);
            #accept_original
            self
        }

        #[doc = #decoding]
        #decoding_doc
        #[must_use]
        pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
            self.inner = self.inner.max_decoding_message_size(#decoding_limit);
            #decoding_original
            self
        }

        #[doc = #encoding]
        #encoding_doc
        #[must_use]
        pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
            self.inner = self.inner.max_encoding_message_size(#encoding_limit);
            #encoding_original
            self
        }
    }
}

/// Doc attributes for comment lines, as tonic writes them (one leading space).
pub(crate) fn docs<S: AsRef<str>>(lines: &[S]) -> TokenStream {
    let lines = lines.iter().map(|line| {
        let line = line.as_ref().trim_end();
        if line.starts_with(' ') || line.is_empty() {
            line.to_owned()
        } else {
            format!(" {line}")
        }
    });
    quote!(#(#[doc = #lines])*)
}

/// A Rust type from prost's path (relative to the package's module), as seen
/// from `prefix` (`super` one module down, `super::super` two down).
pub(crate) fn rust_type(prost_path: &str, prefix: &str) -> TokenStream {
    let text = if is_relative(prost_path) && !prefix.is_empty() {
        format!("{prefix}::{prost_path}")
    } else {
        prost_path.to_owned()
    };
    match syn::parse_str::<syn::Type>(&text) {
        Ok(ty) => quote!(#ty),
        Err(_) => {
            let message = format!("steadfast-build: cannot parse Rust type `{text}`");
            quote!(::core::compile_error!(#message))
        }
    }
}

/// Whether prost's path is relative to the package's module: not absolute
/// (`::x`, `crate::x`), not `()`, not a primitive (wrapper types map to them).
fn is_relative(path: &str) -> bool {
    const PRIMITIVES: &[&str] = &["bool", "i32", "i64", "u32", "u64", "f32", "f64"];
    !(path.starts_with("::")
        || path.starts_with("crate::")
        || path.starts_with('(')
        || PRIMITIVES.contains(&path))
}

/// The attributes whose pattern matches `name`, by tonic-build's rule (so that
/// typed, wire and plain code agree): `.` matches everything, an equal name
/// matches; otherwise a pattern starting with `.` matches by prefix, any other
/// by suffix, on whole dot-separated segments.
pub(crate) fn attributes(patterns: &[(String, String)], name: &str) -> TokenStream {
    let mut out = TokenStream::new();
    for (pattern, attribute) in patterns {
        if !matches(pattern, name) {
            continue;
        }
        match syn::parse_str::<syn::DeriveInput>(&format!("{attribute}\nstruct S;")) {
            Ok(input) => {
                for attr in input.attrs {
                    out.extend(quote!(#attr));
                }
            }
            Err(e) => {
                let message = format!("steadfast-build: invalid attribute `{attribute}`: {e}");
                out.extend(quote!(::core::compile_error!(#message);));
            }
        }
    }
    out
}

fn matches(pattern: &str, name: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    if pattern == "." || pattern == name {
        return true;
    }
    let pattern_segments: Vec<&str> = pattern.split('.').collect();
    let name_segments: Vec<&str> = name.split('.').collect();
    if pattern_segments.len() > name_segments.len() {
        return false;
    }
    if pattern.starts_with('.') {
        // As in tonic-build: the empty first segment of `.lab` is compared too,
        // so a leading-dot pattern other than `.` matches only names that start
        // with a dot themselves.
        pattern_segments[..] == name_segments[..pattern_segments.len()]
    } else {
        pattern_segments[..] == name_segments[name_segments.len() - pattern_segments.len()..]
    }
}

/// The `steadfast` crate path as intra-doc links want it (no leading `::`).
pub(crate) fn doc_path(settings: &ServiceSettings) -> String {
    let path = &settings.crate_path;
    quote!(#path)
        .to_string()
        .replace(' ', "")
        .trim_start_matches("::")
        .to_owned()
}

/// The interval as a `u64` literal of milliseconds.
pub(crate) fn duration_literal(interval: Duration) -> u64 {
    u64::try_from(interval.as_millis()).unwrap_or(u64::MAX)
}

/// `500 ms`, `1.5 s`, `2 s` for docs.
pub(crate) fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_patterns_match_as_in_tonic() {
        assert!(matches(".", "lab.v1.Lab"));
        assert!(matches("lab.v1.Lab", "lab.v1.Lab"));
        // tonic-build compares the empty segment before the dot too.
        assert!(!matches(".lab", "lab.v1.Lab"));
        assert!(matches(".lab", ".lab.v1.Lab"));
        assert!(!matches(".la", ".lab.v1.Lab"));
        assert!(matches("Lab", "lab.v1.Lab"));
        assert!(matches("v1.Lab", "lab.v1.Lab"));
        assert!(!matches("ab", "lab.v1.Lab"));
        assert!(!matches("", "lab.v1.Lab"));
    }

    #[test]
    fn relative_paths_get_the_prefix_and_others_do_not() {
        let ty = |p: &str| rust_type(p, "super").to_string().replace(' ', "");
        assert_eq!(ty("SleepReply"), "super::SleepReply");
        assert_eq!(ty("super::common::Foo"), "super::super::common::Foo");
        assert_eq!(ty("::prost_types::Any"), "::prost_types::Any");
        assert_eq!(ty("crate::x::Y"), "crate::x::Y");
        assert_eq!(ty("()"), "()");
        assert_eq!(ty("bool"), "bool");
        assert_eq!(ty("outer::Inner"), "super::outer::Inner");
    }
}
