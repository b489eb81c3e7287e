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

use std::{cell::RefCell, collections::HashMap, rc::Rc};

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
    config.generate(requests).map_err(Error::Generate)?;
    Ok(captured.take())
}

/// Keeps the services of the model; emits nothing.
struct Capture {
    model: Model,
    captured: Rc<RefCell<HashMap<String, Service>>>,
}

impl ServiceGenerator for Capture {
    fn generate(&mut self, service: Service, _buf: &mut String) {
        let key = qualified(&service.package, &service.proto_name);
        if self.model.services.contains_key(&key) {
            self.captured.borrow_mut().insert(key, service);
        }
    }
}
