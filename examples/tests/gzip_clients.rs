//! Every example server takes calls from a Python grpcio client whose channel
//! compresses with gzip (issue 24): `steadfast::server::Server` decompresses
//! gzip and zstd requests for every service it serves.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use steadfast_tests::process::spawn_server;
use steadfast_tests::tools;

/// Each server binary and the start of its `listening on` line.
const SERVERS: [(&str, &str); 4] = [
    (env!("CARGO_BIN_EXE_lab-server"), "lab-server gzip"),
    (env!("CARGO_BIN_EXE_model-server"), "model-server gzip"),
    (env!("CARGO_BIN_EXE_contact-server"), "contact-server"),
    (env!("CARGO_BIN_EXE_gateway-server"), "gateway-server"),
];

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn a_python_client_compressing_with_gzip_is_served_by_every_example_server() {
    let Some(python) = tools::python_with_grpc() else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/gzip_check.py");
    for (program, announcement) in SERVERS {
        let mut command = Command::new(program);
        command.args(["--addr", "127.0.0.1:0"]);
        if announcement.ends_with("gzip") {
            command.args(["--name", "gzip"]);
        }
        let (_server, addr) = spawn_server(&mut command, announcement, PATIENCE)
            .unwrap_or_else(|err| panic!("{program}: {err}"));
        let output = Command::new(&python)
            .arg(&script)
            .args(["--addr", &addr.to_string()])
            .output()
            .expect("running gzip_check.py");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.trim() == "SERVING",
            "{program}: a gzip client got:\n{stdout}\n{stderr}"
        );
    }
}
