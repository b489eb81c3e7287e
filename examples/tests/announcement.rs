//! The example servers' `listening on ADDR` line, which scripts and tests rely
//! on: documented in each server's `--help`, and printed with the port the OS
//! picked when a server is started on port 0.

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use steadfast_tests::process::spawn_server;

/// Each server binary and the start of its line.
const SERVERS: [(&str, &str); 4] = [
    (env!("CARGO_BIN_EXE_lab-server"), "lab-server NAME"),
    (env!("CARGO_BIN_EXE_model-server"), "model-server NAME"),
    (env!("CARGO_BIN_EXE_contact-server"), "contact-server"),
    (env!("CARGO_BIN_EXE_gateway-server"), "gateway-server"),
];

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn every_server_documents_its_listening_line_in_its_help() {
    for (program, announcement) in SERVERS {
        let output = Command::new(program)
            .arg("--help")
            .output()
            .expect("running --help");
        assert!(output.status.success(), "{program} --help: {output:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            help.contains(&format!("`{announcement} listening on ADDR`")),
            "{program} --help does not document its line:\n{help}"
        );
        assert!(
            help.contains("port 0"),
            "{program} --help does not say what port 0 does:\n{help}"
        );
    }
}

#[test]
fn every_server_on_port_0_announces_the_port_the_os_picked() {
    for (program, announcement) in SERVERS {
        let announcement = announcement.replace("NAME", "probe");
        let mut command = Command::new(program);
        command.args(["--addr", "127.0.0.1:0"]);
        if announcement.contains("probe") {
            command.args(["--name", "probe"]);
        }
        let (_server, addr) = spawn_server(&mut command, &announcement, PATIENCE)
            .unwrap_or_else(|err| panic!("{program}: {err}"));
        assert_ne!(addr.port(), 0, "{program} announced port 0");
        TcpStream::connect(addr)
            .unwrap_or_else(|err| panic!("{program} announced {addr}, which refuses: {err}"));
    }
}
