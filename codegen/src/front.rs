//! The front end: the protos parsed and checked by protox, with the built-in
//! `steadfast/v1/*.proto` served from the crate.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::{Path, PathBuf},
    rc::Rc,
};

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::{Error, rewrite};

/// `steadfast/v1/options.proto`, compiled in so users need no include path for it.
pub const OPTIONS_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/options.proto");
/// `steadfast/v1/frame.proto`, compiled in and written beside emitted wire protos.
pub const FRAME_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/frame.proto");
/// `steadfast/v1/dispatch.proto` (the wire of metadata dispatch), compiled in: name
/// it among the protos given to
/// [`write_wire_protos`](crate::Builder::write_wire_protos) (or import it) to get it
/// written, as it is, with `steadfast/v1/frame.proto`, for a client in another
/// language.
pub const DISPATCH_PROTO_SOURCE: &str = include_str!("../proto/steadfast/v1/dispatch.proto");

/// The front end: protos parsed and checked by protox.
pub(crate) struct Front {
    pub(crate) fds: prost_types::FileDescriptorSet,
    pub(crate) pool: prost_reflect::DescriptorPool,
    pub(crate) read_paths: Vec<PathBuf>,
    /// The source text of every file read, by file name, for the wire protos.
    pub(crate) sources: HashMap<String, String>,
}

/// Serves the built-in `steadfast/v1/*.proto`.
pub(crate) struct SteadfastProtos;

impl FileResolver for SteadfastProtos {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match name {
            rewrite::OPTIONS_PROTO => File::from_source(name, OPTIONS_PROTO_SOURCE),
            rewrite::FRAME_PROTO => File::from_source(name, FRAME_PROTO_SOURCE),
            rewrite::DISPATCH_PROTO => File::from_source(name, DISPATCH_PROTO_SOURCE),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Passes files through from `inner`, keeping the source text of each.
struct KeepSources<R> {
    inner: R,
    sources: Rc<RefCell<HashMap<String, String>>>,
}

impl<R: FileResolver> FileResolver for KeepSources<R> {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        self.inner.resolve_path(path)
    }

    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let file = self.inner.open_file(name)?;
        if let Some(source) = file.source() {
            self.sources
                .borrow_mut()
                .insert(name.to_owned(), source.to_owned());
        }
        Ok(file)
    }
}

impl Front {
    pub(crate) fn load(
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Front, Error> {
        let mut resolver = ChainFileResolver::new();
        resolver.add(SteadfastProtos);
        for include in includes {
            resolver.add(IncludeFileResolver::new(include.as_ref().to_path_buf()));
        }
        resolver.add(GoogleFileResolver::new());
        let sources = Rc::new(RefCell::new(HashMap::new()));
        let mut compiler = protox::Compiler::with_file_resolver(KeepSources {
            inner: resolver,
            sources: Rc::clone(&sources),
        });
        compiler.include_imports(true).include_source_info(true);
        for proto in protos {
            compiler
                .open_file(proto.as_ref())
                .map_err(Error::from_protox)?;
        }
        // The frame messages must be known to prost even if no file imports them yet.
        compiler
            .open_file(rewrite::FRAME_PROTO)
            .map_err(Error::from_protox)?;

        // The files read, never a directory: a watched directory that holds the
        // target directory (an include path of ".") would rerun the build
        // script on every build.
        let read_paths: Vec<PathBuf> = compiler
            .files()
            .filter_map(|f| f.path().map(Path::to_path_buf))
            .collect();
        Ok(Front {
            fds: compiler.file_descriptor_set(),
            pool: compiler.descriptor_pool(),
            read_paths,
            sources: sources.take(),
        })
    }
}

impl Front {
    /// The front end from descriptors another compiler parsed: protoc's
    /// `CodeGeneratorRequest.proto_file`, each file encoded, every import
    /// before the files importing it. Decoded into a descriptor pool with
    /// their options kept as encoded (protoc leaves the `(steadfast.v1.method)`
    /// extension there for the pool to read), and `steadfast/v1/frame.proto`
    /// added last if no file imports it, as [`Front::load`] does. No paths are
    /// read and no source text is known.
    pub(crate) fn from_encoded_files(files: &[Vec<u8>]) -> Result<Front, Error> {
        use prost::Message as _;

        let bad = |message: String| Error::Proto {
            location: crate::Location {
                file: None,
                line_col: None,
            },
            message,
        };
        let mut encoded = files.to_vec();
        let mut fds = prost_types::FileDescriptorSet::default();
        for file in files {
            let file = prost_types::FileDescriptorProto::decode(file.as_slice())
                .map_err(|e| bad(format!("a file descriptor does not decode: {e}")))?;
            if file.syntax() == "editions" {
                return Err(Error::Proto {
                    location: crate::Location {
                        file: Some(file.name().to_owned()),
                        line_col: None,
                    },
                    message: "editions are not supported yet by steadfast-build; \
                              use syntax = \"proto3\" or \"proto2\""
                        .to_owned(),
                });
            }
            fds.file.push(file);
        }
        if !fds.file.iter().any(|f| f.name() == rewrite::FRAME_PROTO) {
            let mut compiler = protox::Compiler::with_file_resolver(SteadfastProtos);
            compiler.include_imports(true).include_source_info(true);
            compiler
                .open_file(rewrite::FRAME_PROTO)
                .map_err(Error::from_protox)?;
            for file in compiler.file_descriptor_set().file {
                if !fds.file.iter().any(|f| f.name() == file.name()) {
                    encoded.push(file.encode_to_vec());
                    fds.file.push(file);
                }
            }
        }
        let set = EncodedSet { file: encoded }.encode_to_vec();
        let pool = prost_reflect::DescriptorPool::decode(set.as_slice())
            .map_err(|e| bad(format!("the descriptors do not check: {e}")))?;
        Ok(Front {
            fds,
            pool,
            read_paths: Vec::new(),
            sources: HashMap::new(),
        })
    }
}

/// A `google.protobuf.FileDescriptorSet` of files kept encoded.
#[derive(Clone, PartialEq, prost::Message)]
struct EncodedSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}
