//! prost's Rust view of the original services.
//!
//! The typed layer keeps the signatures the user wrote, so it needs the Rust
//! types prost gives the *original* request and response messages (extern
//! paths, `super::` chains, well-known types, keyword escapes). Rather than
//! re-implement prost's resolution, prost is asked: a dry run of
//! `prost_build::Config::generate` over the original descriptors of the files
//! with rewritten services, with the user's own prost settings, captures the
//! resolved [`prost_build::Service`]s (their comments included) and writes
//! nothing. The real run then compiles the wire descriptors.
//!
//! Only the files with services are passed, so the dry run relies on no more
//! than what every prost-build 0.14 does with them: prost-build 0.14.0 to
//! 0.14.4 drops a package whose code is empty and then panics looking it up
//! for `finalize_package` (fixed by tokio-rs/prost#1442), which a package
//! whose only file here holds just a service would be; so the capturing
//! generator writes a line into the (discarded) code of every service it sees.

use std::{cell::RefCell, collections::HashMap, path::Path, rc::Rc};

use prost_build::{Module, Service, ServiceGenerator};
use prost_types::FileDescriptorSet;

use crate::{
    Error,
    model::{Model, qualified},
};

/// The original services of `model`, as prost resolves them, keyed by full name.
pub(crate) fn original_services(
    config: &mut prost_build::Config,
    original: &FileDescriptorSet,
    model: &Model,
    protos: &[impl AsRef<Path>],
) -> Result<HashMap<String, Service>, Error> {
    let captured = Rc::new(RefCell::new(HashMap::new()));
    let requests: Vec<(Module, prost_types::FileDescriptorProto)> = original
        .file
        .iter()
        .filter(|file| {
            file.service.iter().any(|s| {
                model
                    .services
                    .contains_key(&qualified(file.package(), s.name()))
            })
        })
        .map(|file| {
            (
                Module::from_protobuf_package_name(file.package()),
                file.clone(),
            )
        })
        .collect();
    if requests.is_empty() {
        return Ok(HashMap::new());
    }
    config.service_generator(Box::new(Capture {
        model: model.clone(),
        captured: Rc::clone(&captured),
    }));
    super::guarded(protos, || config.generate(requests))?;
    Ok(captured.take())
}

/// Keeps the services of the model; emits nothing.
struct Capture {
    model: Model,
    captured: Rc<RefCell<HashMap<String, Service>>>,
}

impl ServiceGenerator for Capture {
    fn generate(&mut self, service: Service, buf: &mut String) {
        // Never an empty package (see the module docs); the dry run's code is
        // thrown away.
        buf.push_str("// resolved by steadfast-build\n");
        let key = qualified(&service.package, &service.proto_name);
        if self.model.services.contains_key(&key) {
            self.captured.borrow_mut().insert(key, service);
        }
    }
}
