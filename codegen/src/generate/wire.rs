//! The wire-level code of a rewritten service: tonic-build's client and server
//! for the service as it travels (frames visible), in the module
//! `<svc>_wire`, generated over this crate's own `tonic_build::Service`; and
//! tonic-build's server for the service as written, which serves the calls that
//! do not ask for frames (`steadfast::framing`).

use std::collections::HashSet;

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::quote;
use tonic_build::{Attributes, CodeGenBuilder};

use super::{ServiceSettings, ServiceView, has_blobs, has_uploads, rust_type};

/// tonic's view of the wire service: prost's resolved wire signatures.
struct WireService<'a> {
    service: &'a prost_build::Service,
    methods: Vec<WireMethod<'a>>,
}

struct WireMethod<'a> {
    method: &'a prost_build::Method,
    codec_path: String,
}

impl<'a> tonic_build::Service for WireService<'a> {
    type Comment = String;
    type Method = WireMethod<'a>;

    fn name(&self) -> &str {
        &self.service.name
    }

    fn package(&self) -> &str {
        &self.service.package
    }

    fn identifier(&self) -> &str {
        &self.service.proto_name
    }

    fn methods(&self) -> &[Self::Method] {
        &self.methods
    }

    fn comment(&self) -> &[Self::Comment] {
        &self.service.comments.leading
    }
}

impl tonic_build::Method for WireMethod<'_> {
    type Comment = String;

    fn name(&self) -> &str {
        &self.method.name
    }

    fn identifier(&self) -> &str {
        &self.method.proto_name
    }

    fn codec_path(&self) -> &str {
        &self.codec_path
    }

    fn client_streaming(&self) -> bool {
        self.method.client_streaming
    }

    fn server_streaming(&self) -> bool {
        self.method.server_streaming
    }

    fn comment(&self) -> &[Self::Comment] {
        &self.method.comments.leading
    }

    fn deprecated(&self) -> bool {
        self.method.options.deprecated()
    }

    fn request_response_name(&self, proto_path: &str, _: bool) -> (TokenStream, TokenStream) {
        (
            rust_type(&self.method.input_type, proto_path),
            rust_type(&self.method.output_type, proto_path),
        )
    }
}

/// The `<svc>_wire` module.
pub(crate) fn generate(view: &ServiceView<'_>, settings: &ServiceSettings) -> TokenStream {
    let model = view.model;
    // A configured codec serves every method. Otherwise the methods steadfast
    // rewrites (heartbeats, blobs) get the runtime's `FrameCodec`: small
    // buffers, for a body that lives as long as the call and writes small
    // frames now and then, and room made for each message before it is
    // written, for blob chunks (which prost would otherwise copy twice). Every
    // other method gets tonic-prost's codec, as tonic would give it. Both
    // through the `__sf` alias `with_runtime_alias` gives tonic's modules.
    let plain_codec = settings
        .codec_path
        .clone()
        .unwrap_or_else(|| PROST_CODEC.to_owned());
    let frame_codec = settings
        .codec_path
        .clone()
        .unwrap_or_else(|| "__sf::FrameCodec".to_owned());
    let service = WireService {
        service: view.wire,
        methods: view
            .methods
            .iter()
            .map(|m| WireMethod {
                method: m.wire,
                codec_path: if m.model.options.has_frames() {
                    frame_codec.clone()
                } else {
                    plain_codec.clone()
                },
            })
            .collect(),
    };
    let mut builder = code_gen_builder(settings);

    let mut code = TokenStream::new();
    if settings.build_client {
        let mut attributes = Attributes::default();
        for (pattern, attribute) in &settings.client_mod_attributes {
            attributes.push_mod(pattern, attribute);
        }
        for (pattern, attribute) in &settings.client_attributes {
            attributes.push_struct(pattern, attribute);
        }
        builder.attributes(attributes);
        let client = builder.generate_client(&service, "super::super");
        let framed: HashSet<&str> = view
            .methods
            .iter()
            .filter(|m| m.model.options.has_frames())
            .map(|m| m.model.proto_name.as_str())
            .collect();
        let announce = quote!(__sf::announce(&mut req););
        let mut announced = 0;
        let client = announce_framing(client, &framed, &announce, &mut announced);
        code.extend(with_runtime_alias(client, &settings.crate_path));
        if announced != framed.len() {
            let message = format!(
                "steadfast-build internal error: the wire client of `{}` announces frames in {announced} of its {} framed methods",
                view.names.full_name,
                framed.len()
            );
            code.extend(quote!(::core::compile_error!(#message);));
        }
    }
    if settings.build_server {
        let mut attributes = Attributes::default();
        for (pattern, attribute) in &settings.server_mod_attributes {
            attributes.push_mod(pattern, attribute);
        }
        for (pattern, attribute) in &settings.server_attributes {
            attributes.push_struct(pattern, attribute);
        }
        for (pattern, attribute) in &settings.trait_attributes {
            attributes.push_trait(pattern, attribute);
        }
        builder.attributes(attributes);
        let server = builder.generate_server(&service, "super::super");
        code.extend(with_runtime_alias(server, &settings.crate_path));
    }

    let module = &view.names.wire_module;
    let doc = format!(
        " The wire-level code of `{}`: tonic's client and server for the service as it travels, with the {} visible.",
        view.names.full_name,
        if has_uploads(model) {
            "frames and uploads"
        } else if has_blobs(model) {
            "frames"
        } else {
            "heartbeat frames"
        }
    );
    quote! {
        #[doc = #doc]
        ///
        /// An escape hatch: the typed client and server of this package are built on
        /// it, and most code never needs it.
        #[allow(non_camel_case_types)]
        pub mod #module {
            #code
        }
    }
}

/// tonic-prost's codec, as tonic's modules name it through their `__sf` alias.
const PROST_CODEC: &str = "__sf::tonic_prost::ProstCodec";

/// Gives each module of tonic-build's `code` that names `__sf` (the codecs,
/// the framing announcements) its `use <crate>::__private as __sf;`, after the
/// module's inner attributes, as the typed client and server modules have it.
/// tonic's modules hold only what tonic generates, so the alias meets no other
/// name but those of its glob import `tonic::codegen::*`, which it shadows.
fn with_runtime_alias(code: TokenStream, sf: &syn::Path) -> TokenStream {
    let mut out = TokenStream::new();
    let mut previous: [Option<TokenTree>; 2] = [None, None];
    for tree in code {
        let is_mod = matches!(&previous, [Some(TokenTree::Ident(m)), Some(TokenTree::Ident(_))] if m == "mod");
        let tree = match tree {
            TokenTree::Group(group)
                if is_mod
                    && group.delimiter() == Delimiter::Brace
                    && names_alias(group.stream()) =>
            {
                let mut body: Vec<TokenTree> = group.stream().into_iter().collect();
                let inner_attributes = inner_attributes_len(&body);
                let alias = quote!(use #sf::__private as __sf;);
                body.splice(inner_attributes..inner_attributes, alias);
                let mut patched = Group::new(Delimiter::Brace, body.into_iter().collect());
                patched.set_span(group.span());
                TokenTree::Group(patched)
            }
            other => other,
        };
        previous = [previous[1].take(), Some(tree.clone())];
        out.extend([tree]);
    }
    out
}

/// Whether `tokens` name `__sf` anywhere.
fn names_alias(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == "__sf",
        TokenTree::Group(group) => names_alias(group.stream()),
        _ => false,
    })
}

/// How many tokens the inner attributes (`#![...]`) at the start of a module
/// body take.
fn inner_attributes_len(body: &[TokenTree]) -> usize {
    body.chunks(3)
        .take_while(|attribute| {
            matches!(
                attribute,
                [TokenTree::Punct(hash), TokenTree::Punct(bang), TokenTree::Group(group)]
                    if hash.as_char() == '#' && bang.as_char() == '!'
                        && group.delimiter() == Delimiter::Bracket
            )
        })
        .count()
        * 3
}

/// Adds `announce` after each statement of tonic's client that names a framed
/// method's `GrpcMethod` (`req.extensions_mut().insert(GrpcMethod::new(service,
/// "Method"));`), so that the wire client's calls of those methods ask for
/// frames; counts the statements patched in `announced`.
fn announce_framing(
    tokens: TokenStream,
    framed: &HashSet<&str>,
    announce: &TokenStream,
    announced: &mut usize,
) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream::new();
    let mut statement_start = 0;
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(group) => {
                let stream = announce_framing(group.stream(), framed, announce, announced);
                let mut patched = Group::new(group.delimiter(), stream);
                patched.set_span(group.span());
                out.extend([TokenTree::Group(patched)]);
            }
            other => out.extend([other.clone()]),
        }
        if let TokenTree::Punct(punct) = tree
            && punct.as_char() == ';'
        {
            if names_framed_method(&trees[statement_start..i], framed) {
                out.extend(announce.clone());
                *announced += 1;
            }
            statement_start = i + 1;
        }
    }
    out
}

/// Whether `statement` is `req.extensions_mut().insert(GrpcMethod::new(_, "M"))`
/// for a framed method `M`.
fn names_framed_method(statement: &[TokenTree], framed: &HashSet<&str>) -> bool {
    let ident = |i: usize, name: &str| matches!(statement.get(i), Some(TokenTree::Ident(ident)) if ident == name);
    if !(statement.len() == 7
        && ident(0, "req")
        && ident(2, "extensions_mut")
        && ident(5, "insert"))
    {
        return false;
    }
    let Some(TokenTree::Group(argument)) = statement.get(6) else {
        return false;
    };
    let inner: Vec<TokenTree> = argument.stream().into_iter().collect();
    let [
        TokenTree::Ident(constructor),
        _,
        _,
        TokenTree::Ident(new),
        TokenTree::Group(names),
    ] = &inner[..]
    else {
        return false;
    };
    if constructor != "GrpcMethod" || new != "new" {
        return false;
    }
    let Some(TokenTree::Literal(method)) = names.stream().into_iter().last() else {
        return false;
    };
    let method = method.to_string();
    method
        .strip_prefix('"')
        .and_then(|m| m.strip_suffix('"'))
        .is_some_and(|m| framed.contains(m))
}

/// tonic-build's server for the service as written (the original signatures,
/// tonic-prost's codec or the configured one), in a hidden module `_original`
/// inside the typed server's module: the typed server hands it the calls that
/// do not ask for frames.
pub(crate) fn original_server(
    original: &prost_build::Service,
    settings: &ServiceSettings,
) -> TokenStream {
    let codec = settings
        .codec_path
        .clone()
        .unwrap_or_else(|| PROST_CODEC.to_owned());
    let service = WireService {
        service: original,
        methods: original
            .methods
            .iter()
            .map(|method| WireMethod {
                method,
                codec_path: codec.clone(),
            })
            .collect(),
    };
    let code = code_gen_builder(settings).generate_server(&service, "super::super::super");
    let code = with_runtime_alias(code, &settings.crate_path);
    quote! {
        /// tonic's server of the service as written, for calls without frames.
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub mod _original {
            #code
        }
    }
}

/// tonic-build's generator with the service settings. The typed server
/// implements tonic's traits through its adapters, so they keep tonic's
/// defaults (`&self`, no default stubs) whatever the typed trait is set to.
fn code_gen_builder(settings: &ServiceSettings) -> CodeGenBuilder {
    let mut builder = CodeGenBuilder::new();
    builder
        .emit_package(settings.emit_package)
        .build_transport(settings.build_transport)
        .disable_comments(settings.disable_comments.clone())
        .use_arc_self(false)
        .generate_default_stubs(false);
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(code: TokenStream) -> String {
        with_runtime_alias(code, &syn::parse_quote!(::steadfast))
            .to_string()
            .replace(' ', "")
    }

    #[test]
    fn the_alias_follows_the_inner_attributes_of_a_module_that_names_it() {
        let code = quote! {
            /// Docs.
            pub mod lab_client {
                #![allow(unused_variables)]
                #![allow(dead_code)]
                use tonic::codegen::*;
                fn f() { let codec = __sf::FrameCodec::default(); }
            }
        };
        let expected = quote! {
            /// Docs.
            pub mod lab_client {
                #![allow(unused_variables)]
                #![allow(dead_code)]
                use ::steadfast::__private as __sf;
                use tonic::codegen::*;
                fn f() { let codec = __sf::FrameCodec::default(); }
            }
        };
        assert_eq!(alias(code), expected.to_string().replace(' ', ""));
    }

    #[test]
    fn a_module_that_does_not_name_it_is_left_alone() {
        // A configured codec: tonic's module names no runtime path.
        let code = quote! {
            pub mod lab_server {
                use tonic::codegen::*;
                fn f() { let codec = crate::MyCodec::default(); }
            }
        };
        assert_eq!(alias(code.clone()), code.to_string().replace(' ', ""));
    }
}
