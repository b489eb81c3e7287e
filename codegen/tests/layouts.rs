//! Common ways to lay a package out over files all compile, with every
//! prost-build the manifests allow, and whatever goes wrong inside
//! prost-build reaches the caller as a `steadfast_build::Error`, never a panic.
//!
//! That the generated code builds and matches its golden file is checked by the
//! `servicefile` and `manyfiles` cases of `tests/golden/cases/`
//! (`steadfast-tests --test generated`).

mod support;

const HEAD: &str = "syntax = \"proto3\";\nimport \"steadfast/v1/options.proto\";\n";

/// `shop/v1/service.proto`: only the service, one heartbeat method, its
/// messages imported from `import`.
fn service(package: &str, import: &str, types: &str) -> String {
    format!(
        "{HEAD}package {package};\nimport \"{import}\";\n\
         service Shop {{\n  rpc Order({types}OrderRequest) returns ({types}OrderReply) {{\n    \
         option (steadfast.v1.method) = {{ heartbeat_ms: 500 }};\n  }}\n}}\n"
    )
}

fn messages(package: &str) -> String {
    format!(
        "syntax = \"proto3\";\npackage {package};\n\
         message OrderRequest {{ string item = 1; }}\nmessage OrderReply {{ uint64 id = 1; }}\n"
    )
}

/// Compiles `main` from `dir` with `builder`; the generated Rust by file name.
fn compile(
    dir: &std::path::Path,
    main: &[&str],
    builder: steadfast_build::Builder,
) -> Result<Vec<(String, String)>, String> {
    let out = tempfile::tempdir().expect("out dir");
    let protos: Vec<_> = main.iter().map(|m| dir.join(m)).collect();
    builder
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&protos, &[dir])
        .map_err(|e| e.to_string())?;
    let mut files: Vec<(String, String)> = std::fs::read_dir(out.path())
        .expect("out dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).expect("read"))
        })
        .collect();
    files.sort();
    Ok(files)
}

#[test]
fn a_service_file_with_its_messages_in_a_sibling_file_of_the_package_compiles() {
    let dir = support::protos(&[
        (
            "shop/v1/service.proto",
            &service("shop.v1", "shop/v1/messages.proto", ""),
        ),
        ("shop/v1/messages.proto", &messages("shop.v1")),
    ]);
    let files = compile(
        dir.path(),
        &["shop/v1/service.proto"],
        steadfast_build::configure(),
    )
    .expect("compiles");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["shop.v1.rs"]);
    let code = &files[0].1;
    assert!(code.contains("pub struct OrderRequest"), "{code}");
    assert!(code.contains("pub mod shop_client"), "{code}");
    assert!(code.contains("pub mod shop_server"), "{code}");
}

#[test]
fn a_service_only_package_with_its_messages_in_another_package_compiles() {
    let dir = support::protos(&[
        (
            "shop/v1/service.proto",
            &service("shop.v1", "shop/types/v1/types.proto", "shop.types.v1."),
        ),
        ("shop/types/v1/types.proto", &messages("shop.types.v1")),
    ]);
    let files = compile(
        dir.path(),
        &["shop/v1/service.proto"],
        steadfast_build::configure(),
    )
    .expect("compiles");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["shop.types.v1.rs", "shop.v1.rs"]);
    assert!(
        files[1].1.contains("super::super::types::v1::OrderRequest"),
        "{}",
        files[1].1
    );
}

/// Without client and server no service code is generated, as with
/// tonic-prost-build: a package that holds only a service gets its frame
/// messages, and nothing else.
#[test]
fn a_service_only_package_without_client_and_server_compiles_to_its_frames() {
    let dir = support::protos(&[
        (
            "shop/v1/service.proto",
            &service("shop.v1", "shop/types/v1/types.proto", "shop.types.v1."),
        ),
        ("shop/types/v1/types.proto", &messages("shop.types.v1")),
    ]);
    let builder = steadfast_build::configure()
        .build_client(false)
        .build_server(false);
    let files = compile(dir.path(), &["shop/v1/service.proto"], builder).expect("compiles");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["shop.types.v1.rs", "shop.v1.rs"]);
    let code = &files[1].1;
    assert!(code.contains("pub struct ShopOrderFrame"), "{code}");
    assert!(!code.contains("pub mod shop_client"), "{code}");
    assert!(!code.contains("pub mod shop_server"), "{code}");
    assert!(!code.contains("resolved by steadfast-build"), "{code}");
}

/// The last line of defence: a panic inside prost-build (here on an attribute
/// it pastes into the code unchecked and then cannot parse) is an
/// `Error::GeneratorPanic` naming the protos.
#[test]
fn a_panic_inside_prost_build_is_an_error_naming_the_protos() {
    let dir = support::protos(&[
        (
            "shop/v1/service.proto",
            &service("shop.v1", "shop/v1/messages.proto", ""),
        ),
        ("shop/v1/messages.proto", &messages("shop.v1")),
    ]);
    let out = tempfile::tempdir().expect("out dir");
    let err = steadfast_build::configure()
        .type_attribute(".shop.v1.OrderRequest", "#[derive(")
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[dir.path().join("shop/v1/service.proto")], &[dir.path()])
        .expect_err("prost-build cannot format the code");
    assert!(
        matches!(err, steadfast_build::Error::GeneratorPanic { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("prost-build panicked while generating Rust code for "),
        "{text}"
    );
    assert!(text.contains("shop/v1/service.proto"), "{text}");
}

/// The wire protos of that layout: the service's file gets the frames, the
/// messages' file is written as it is.
#[test]
fn the_wire_protos_of_a_service_file_and_its_messages_file() {
    let messages_source = messages("shop.v1");
    let dir = support::protos(&[
        (
            "shop/v1/service.proto",
            &service("shop.v1", "shop/v1/messages.proto", ""),
        ),
        ("shop/v1/messages.proto", &messages_source),
    ]);
    let out = tempfile::tempdir().expect("out dir");
    let written = steadfast_build::configure()
        .write_wire_protos(
            &[dir.path().join("shop/v1/service.proto")],
            &[dir.path()],
            out.path(),
        )
        .expect("wire protos written");
    let mut names: Vec<String> = written
        .iter()
        .map(|p| {
            p.strip_prefix(out.path())
                .expect("under out")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "service_config.json",
            "shop/v1/messages.proto",
            "shop/v1/service.proto",
            "steadfast.json",
            "steadfast/v1/frame.proto"
        ]
    );
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).expect("read");
    assert_eq!(read("shop/v1/messages.proto"), messages_source);
    let service = read("shop/v1/service.proto");
    assert!(
        service.contains("returns (stream ShopOrderFrame)"),
        "{service}"
    );
    assert!(service.contains("message ShopOrderFrame"), "{service}");
}
