//! The Model deployment as shipped: three `model-server` processes behind real
//! nginx running `examples/deploy/nginx.conf` (its listen address, backend
//! servers and read timeout replaced by the test's, the rest as it is), with
//! `grpc_read_timeout 1s`. nginx answers HTTP/2 PINGs itself, so only
//! heartbeats keep a slow call alive; `x-upstream` picks the backend group.

use std::{
    io::ErrorKind,
    net::{SocketAddr, TcpListener},
    process::{Command, Stdio},
    time::Duration,
};

use sha2::{Digest, Sha256};
use steadfast::{BlobSource, CallOptions};
use steadfast_examples::{
    lab::hex,
    model::{HelloParams, ModelClient, PredictParams},
};
use steadfast_tests::{
    nginx::Nginx,
    process::{ChildGuard, spawn_server},
    tools,
};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

const MODEL_SERVER: &str = env!("CARGO_BIN_EXE_model-server");
const MODEL_CLIENT: &str = env!("CARGO_BIN_EXE_model-client");

/// The deployment snippet users copy.
const DEPLOY_CONF: &str = include_str!("../deploy/nginx.conf");

/// How long any one call of these tests may take, hung or not.
const DEADLINE: Duration = Duration::from_secs(30);

/// The backend groups of the snippet, with the name of the one server the test
/// runs in each.
const GROUPS: [(&str, &str); 3] = [
    ("models_default", "models-default-1"),
    ("models_a", "models-a-1"),
    ("models_b", "models-b-1"),
];

/// `examples/deploy/nginx.conf` with nginx listening on `listen`, each upstream
/// group's `server` line pointing at the test's backend for it, and
/// `grpc_read_timeout` set to `read_timeout`. Fails when the snippet has not
/// exactly one of each of these lines where the test expects it, so the file
/// the test runs cannot drift from the file users get.
fn render(listen: SocketAddr, backends: &[(&str, SocketAddr)], read_timeout: &str) -> String {
    let mut out = String::new();
    let mut group: Option<&str> = None;
    let mut replaced_servers = Vec::new();
    let (mut listens, mut read_timeouts) = (0, 0);
    for line in DEPLOY_CONF.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if let Some(name) = code
            .strip_prefix("upstream ")
            .and_then(|rest| rest.strip_suffix('{'))
        {
            group = Some(name.trim());
        } else if code == "}" {
            group = None;
        }
        let replacement = if code.starts_with("server ") && group.is_some() {
            let name = group.unwrap_or_default();
            let (_, addr) = backends
                .iter()
                .find(|(group, _)| *group == name)
                .unwrap_or_else(|| panic!("the snippet has a group `{name}` the test does not"));
            replaced_servers.push(name);
            Some(format!("server {addr};"))
        } else if code.starts_with("listen ") {
            listens += 1;
            Some(format!("listen {listen} http2;"))
        } else if code.starts_with("grpc_read_timeout ") {
            read_timeouts += 1;
            Some(format!("grpc_read_timeout {read_timeout};"))
        } else {
            None
        };
        match replacement {
            Some(replacement) => out.push_str(&format!("{indent}{replacement}\n")),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    replaced_servers.sort_unstable();
    let mut groups: Vec<&str> = backends.iter().map(|(group, _)| *group).collect();
    groups.sort_unstable();
    assert_eq!(
        replaced_servers, groups,
        "one `server` line per upstream group"
    );
    assert_eq!(
        (listens, read_timeouts),
        (1, 1),
        "one listen, one read timeout"
    );
    out
}

#[test]
fn the_snippet_routes_through_the_map_never_to_the_header_itself() {
    let code: Vec<&str> = DEPLOY_CONF
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|code| !code.is_empty())
        .collect();
    let grpc_passes: Vec<&&str> = code.iter().filter(|c| c.starts_with("grpc_pass")).collect();
    assert_eq!(grpc_passes, [&"grpc_pass grpc://$model_upstream;"]);
    assert!(code.contains(&"map $http_x_upstream $model_upstream {"));
    assert!(code.contains(&"default   models_default;"), "{code:?}");
    assert!(code.contains(&"client_max_body_size 0;"));
    assert!(
        code.iter()
            .any(|c| c.starts_with("listen ") && c.ends_with(" http2;"))
    );
}

/// Three model servers (one per group) behind nginx; everything stops on drop.
struct Deployment {
    /// Declared first: stopped before the servers.
    nginx: Nginx,
    _servers: Vec<ChildGuard>,
}

impl Deployment {
    /// Starts the deployment, or `None` (skipped) without nginx outside CI.
    async fn start() -> Option<Deployment> {
        let nginx_bin = tools::require("nginx")?;
        tokio::task::spawn_blocking(move || {
            let mut servers = Vec::new();
            let mut backends = Vec::new();
            for (group, name) in GROUPS {
                let (server, addr) = spawn_server(
                    Command::new(MODEL_SERVER)
                        .args(["--addr", "127.0.0.1:0", "--name", name])
                        .stdin(Stdio::null())
                        .stderr(Stdio::null()),
                    &format!("model-server {name}"),
                    Duration::from_secs(10),
                )
                .expect("model-server starts");
                servers.push(server);
                backends.push((group, addr));
            }
            let nginx = Nginx::start_with(&nginx_bin, |listen| render(listen, &backends, "1s"))
                .expect("nginx starts on the deployment snippet");
            Some(Deployment {
                nginx,
                _servers: servers,
            })
        })
        .await
        .expect("join")
    }

    /// A client through nginx, sending `x-upstream: upstream` if given.
    async fn client(&self, upstream: Option<&str>) -> ModelClient<Channel> {
        let client = ModelClient::connect(self.nginx.url())
            .await
            .expect("connect to nginx");
        match upstream {
            Some(name) => client.upstream(name).expect("a valid metadata value"),
            None => client,
        }
    }

    /// Which server answers a quick `predict` sent with `x-upstream: upstream`
    /// (checking the prediction on the way).
    async fn served_by(&self, upstream: Option<&str>) -> String {
        let input = b"which backend?".to_vec();
        let prediction = tokio::time::timeout(
            DEADLINE,
            self.client(upstream)
                .await
                .predict(PredictParams { delay_ms: 0 }, input.clone()),
        )
        .await
        .expect("the call ends")
        .expect("predict through nginx");
        assert_eq!(prediction.size, input.len() as u64);
        assert_eq!(prediction.sha256_hex, hex(&Sha256::digest(&input)));
        prediction.served_by
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_with_a_1s_read_timeout_a_3s_predict_succeeds_on_heartbeats() {
    let Some(deployment) = Deployment::start().await else {
        return;
    };
    let mut client = deployment.client(Some("models-a")).await;
    let input: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let (options, progress) = CallOptions::new().progress_watch();
    let mut request = Request::new(PredictParams { delay_ms: 3000 });
    options.attach(&mut request);
    let prediction = tokio::time::timeout(DEADLINE, client.predict(request, input.clone()))
        .await
        .expect("the call ends")
        .expect("heartbeats keep the call alive through nginx");
    assert_eq!(prediction.size, input.len() as u64);
    assert_eq!(prediction.sha256_hex, hex(&Sha256::digest(&input)));
    assert_eq!(prediction.served_by, "models-a-1");
    let last = progress.borrow().clone().expect("heartbeats were observed");
    assert!(last.seq >= 4, "about 6 heartbeats in 3 s: {last:?}");
    assert!(
        last.progress.is_some_and(|p| p > 0.5) && last.note.is_some(),
        "{last:?}"
    );
    let log = deployment.nginx.error_log();
    assert!(!log.contains("upstream timed out"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_same_nginx_a_call_silent_for_3s_is_cut() {
    // The control for the scenario above: `echo_blob` has no heartbeats, and
    // its input comes after 3 s, so nothing moves on the call for 3 s.
    let Some(deployment) = Deployment::start().await else {
        return;
    };
    let mut client = deployment.client(None).await;
    let (mut writer, reader) = tokio::io::duplex(1024);
    let late_input = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = tokio::io::AsyncWriteExt::write_all(&mut writer, b"too late").await;
    });
    // The default codec (Auto) gives up waiting for the first block after
    // `AUTO_WAIT`, so the head (with the blob's header) leaves at once and the
    // 3 s silence is the upstream's, which nginx cuts.
    let source = BlobSource::from_reader(reader);
    let outcome = tokio::time::timeout(DEADLINE, async {
        let ((), blob) = client.echo_blob((), source).await?;
        blob.to_bytes(1 << 20).await
    })
    .await
    .expect("the call ends");
    late_input.abort();
    let status = outcome.expect_err("nginx cuts a call silent for more than 1 s");
    let log = deployment.nginx.error_log();
    assert!(
        log.contains("upstream timed out"),
        "nginx reports its read timeout ({status:?}); error.log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_upstream_picks_the_backend_group_and_without_it_the_default_group_answers() {
    let Some(deployment) = Deployment::start().await else {
        return;
    };
    assert_eq!(deployment.served_by(Some("models-a")).await, "models-a-1");
    assert_eq!(deployment.served_by(Some("models-b")).await, "models-b-1");
    assert_eq!(deployment.served_by(None).await, "models-default-1");
    // Per call, the request's own `x-upstream` wins over the client's.
    let mut client = deployment.client(Some("models-a")).await;
    let mut request = Request::new(HelloParams { name: "Ada".into() });
    request
        .metadata_mut()
        .insert("x-upstream", MetadataValue::from_static("models-b"));
    let greeting = tokio::time::timeout(DEADLINE, client.hello(request))
        .await
        .expect("the call ends")
        .expect("hello through nginx");
    assert_eq!(greeting, "hello, Ada from models-b-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_upstream_name_or_an_address_reaches_the_default_group_only() {
    let Some(deployment) = Deployment::start().await else {
        return;
    };
    // A listener the test owns: were `x-upstream` taken as an address, nginx
    // would connect to it.
    let bait = TcpListener::bind("127.0.0.1:0").expect("bind");
    bait.set_nonblocking(true).expect("non-blocking");
    let bait_addr = bait.local_addr().expect("addr").to_string();
    for upstream in [
        "models-z",
        // A group's own name is not a key of the map.
        "models_a",
        bait_addr.as_str(),
        "localhost",
    ] {
        assert_eq!(
            deployment.served_by(Some(upstream)).await,
            "models-default-1",
            "x-upstream: {upstream}"
        );
    }
    match bait.accept() {
        Err(err) if err.kind() == ErrorKind::WouldBlock => {}
        other => panic!("something connected to {bait_addr}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_client_says_hello_through_nginx() {
    let Some(deployment) = Deployment::start().await else {
        return;
    };
    let url = deployment.nginx.url();
    for (args, greeting) in [
        (vec!["hello", "Ada"], "hello, Ada from models-default-1\n"),
        (
            vec!["--upstream", "models-b", "hello", "Grace"],
            "hello, Grace from models-b-1\n",
        ),
    ] {
        let output = tokio::process::Command::new(MODEL_CLIENT)
            .args(["--addr", &url])
            .args(&args)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(DEADLINE, output)
            .await
            .expect("model-client ends")
            .expect("model-client runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            greeting,
            "{stderr}"
        );
    }
}
