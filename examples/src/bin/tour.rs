//! Run with: `cargo run -p steadfast-examples --bin tour`
//!
//! A quick tour of what steadfast does, on 127.0.0.1 with nothing to set up:
//! a lab server behind a proxy that cuts calls idle for 1 s (as nginx's
//! `grpc_read_timeout` does), a plain call that dies there, a heartbeat call
//! that passes with progress, a stream with long gaps, a frozen server caught
//! by the client's liveness window, cancellation, a refused bad request, and
//! blobs: 64 MiB uploaded and hashed as it streams, 16 MiB downloaded, both in
//! constant memory and checked against a locally computed SHA-256, and a
//! code-first service (`#[steadfast::service]`, no `.proto`) called by name
//! through the same cutting proxy, and reconnecting stubs: a generated client
//! made before its server is up, and a bidi session across a server restart.
//! Exits non-zero if anything does not behave as described.

use std::{
    future::Future,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sha2::{Digest as _, Sha256};
use steadfast::server::Server;
use steadfast::session::{Event, SessionBuilder};
use steadfast::{BlobSource, CallOptions, blob::TransferProgress};
use steadfast_examples::{
    contact::{self, ContactService},
    content,
    lab::{RunningLab, describe, hex},
    model::{HelloParams, ModelClient, ModelServer, ModelService, PredictParams},
    proto::contact::v1::{AgentStatus, contact_client::ContactClient},
    proto::lab::v1::{
        DigestRequest, FetchRequest, SleepRequest, TicksRequest, WhoAmIRequest,
        lab_client::LabClient,
    },
    proxy::CuttingProxy,
    report::Report,
};
use tokio::{io::AsyncReadExt, time::Instant};
use tokio_stream::StreamExt;
use tonic::{Code, Request, transport::Channel};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn check(ok: bool, what: &str) -> Result {
    if ok {
        println!("   ✓ {what}");
        Ok(())
    } else {
        Err(format!("✗ {what}").into())
    }
}

/// Polls `condition` until it holds, failing the tour after 10 s.
async fn wait_for(what: &str, condition: impl Fn() -> bool) -> Result {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        if Instant::now() > deadline {
            return Err(format!("✗ timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Runs `transfer`, printing a line each time `progress` passes another quarter.
async fn with_progress_lines<T>(
    what: &str,
    progress: TransferProgress,
    transfer: impl Future<Output = T>,
) -> T {
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let mut quarters_shown = 0;
    let mut show = |progress: &TransferProgress| {
        let Some(total) = progress.total().filter(|&total| total > 0) else {
            return;
        };
        let bytes = progress.bytes();
        let quarters = (bytes.saturating_mul(4) / total).min(4);
        if quarters > quarters_shown {
            quarters_shown = quarters;
            println!("   {what} {} of {} MiB", bytes >> 20, total >> 20);
        }
    };
    tokio::pin!(transfer);
    let result = loop {
        tokio::select! {
            result = &mut transfer => break result,
            _ = ticks.tick() => show(&progress),
        }
    };
    show(&progress);
    result
}

async fn connect(url: String) -> Result<LabClient<Channel>> {
    Ok(LabClient::connect(url).await?)
}

#[tokio::main]
async fn main() -> ExitCode {
    println!("steadfast tour: everything runs on 127.0.0.1 and takes about 45 s.\n");
    match tour().await {
        Ok(()) => {
            println!(
                "\nAll good. Next: run `lab-server` and `lab-client`, or `model-server` and\n`model-client`, yourself: each file in examples/src/bin/ starts with its\n`Run with:` line."
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("\ntour failed: {}", Report(&*err));
            ExitCode::FAILURE
        }
    }
}

async fn tour() -> Result {
    let lab = RunningLab::start("tour-lab").await?;
    let proxy = CuttingProxy::start(lab.addr(), Some(Duration::from_secs(1))).await?;
    println!(
        "1. A lab server on {}, behind a proxy on {} that cuts a connection after\n   1 s without bytes from the server (like nginx's grpc_read_timeout).\n",
        lab.addr(),
        proxy.addr()
    );

    println!("2. SleepPlain(3 s): a plain unary call, silent until it returns, through the proxy");
    let mut client = connect(proxy.url()).await?;
    let plain = client.sleep_plain(SleepRequest { millis: 3000 }).await;
    if let Err(status) = &plain {
        println!(
            "   the call failed: {:?}: {}",
            status.code(),
            status.message()
        );
    }
    check(
        matches!(&plain, Err(s) if s.code() == Code::Unavailable) && proxy.cut_count() == 1,
        "the proxy cut the silent call after 1 s; the client reports the lost connection as UNAVAILABLE",
    )?;

    println!("\n3. Sleep(3 s): the same work with `heartbeat_ms: 500`, through the same proxy");
    let mut client = connect(proxy.url()).await?;
    let mut request = Request::new(SleepRequest { millis: 3000 });
    CallOptions::new()
        .on_progress(|hb| println!("   {}", describe(hb)))
        .attach(&mut request);
    let reply = client.sleep(request).await?.into_inner();
    println!("   reply: slept {} ms", reply.slept_ms);
    check(
        reply.slept_ms >= 3000 && proxy.cut_count() == 1,
        "heartbeats kept the call alive; the client saw progress and got the reply",
    )?;

    println!("\n4. Ticks(3, 1.5 s apart): a server stream whose gaps exceed the proxy's 1 s");
    let started = Instant::now();
    let mut request = Request::new(TicksRequest {
        count: 3,
        gap_ms: 1500,
    });
    CallOptions::new()
        .on_progress(|hb| println!("   (hidden from the stream) {}", describe(hb)))
        .attach(&mut request);
    let mut ticks = client.ticks(request).await?.into_inner();
    let mut got = Vec::new();
    while let Some(tick) = ticks.next().await {
        let tick = tick?;
        println!("   tick {} at {} ms", tick.n, started.elapsed().as_millis());
        got.push(tick.n);
    }
    check(
        got == [1, 2, 3] && proxy.cut_count() == 1,
        "all ticks arrived; heartbeats filled the gaps",
    )?;

    println!("\n5. A frozen server: the network stops forwarding in the middle of Sleep(20 s)");
    let frozen = CuttingProxy::start(lab.addr(), None).await?;
    let mut client = connect(frozen.url()).await?;
    let first_beat = Arc::new(AtomicBool::new(false));
    let mut request = Request::new(SleepRequest { millis: 20_000 });
    CallOptions::new()
        .liveness(Duration::from_millis(1500))
        .on_progress({
            let first_beat = Arc::clone(&first_beat);
            move |hb| {
                println!("   {}", describe(hb));
                first_beat.store(true, Ordering::SeqCst);
            }
        })
        .attach(&mut request);
    let call = tokio::spawn(async move { client.sleep(request).await });
    wait_for("a first heartbeat", || first_beat.load(Ordering::SeqCst)).await?;
    frozen.freeze();
    let frozen_at = Instant::now();
    println!("   -- network frozen --");
    let outcome = call.await?;
    match &outcome {
        Err(status) => println!(
            "   after {} ms: {:?}: {}",
            frozen_at.elapsed().as_millis(),
            status.code(),
            status.message()
        ),
        Ok(_) => println!("   the call unexpectedly succeeded"),
    }
    check(
        matches!(&outcome, Err(s) if s.code() == Code::Unavailable),
        "the client gave up after its 1.5 s liveness window, not after 20 s",
    )?;

    println!("\n6. Cancellation: a client starts Sleep(30 s) directly, then goes away");
    let mut client = connect(lab.url()).await?;
    let (started, cancelled) = (lab.stats().started(), lab.stats().cancelled());
    let call = tokio::spawn(async move { client.sleep(SleepRequest { millis: 30_000 }).await });
    wait_for("the handler to start", || lab.stats().started() > started).await?;
    call.abort();
    wait_for("the handler to be dropped", || {
        lab.stats().cancelled() > cancelled
    })
    .await?;
    check(
        true,
        "the server dropped the handler when the client went away",
    )?;

    println!("\n7. Bad input: Sleep(millis = 99999999)");
    let mut client = connect(lab.url()).await?;
    let refused = client.sleep(SleepRequest { millis: 99_999_999 }).await;
    if let Err(status) = &refused {
        println!("   {:?}: {}", status.code(), status.message());
    }
    check(
        matches!(&refused, Err(s) if s.code() == Code::InvalidArgument),
        "refused with INVALID_ARGUMENT",
    )?;
    let me = client.who_am_i(WhoAmIRequest {}).await?.into_inner();
    check(
        me.name == "tour-lab",
        "the server keeps serving (WhoAmI answered \"tour-lab\")",
    )?;

    blobs(&lab).await?;
    code_first().await?;
    reconnecting().await
}

/// Generated content for the blob steps: `UPLOAD_BYTES` from seed 1 up,
/// `DOWNLOAD_BYTES` from seed 2 down.
const UPLOAD_BYTES: u64 = 64 << 20;
const DOWNLOAD_BYTES: u64 = 16 << 20;

async fn blobs(lab: &RunningLab) -> Result {
    println!(
        "\n8. Digest: upload {} MiB (generated as it is sent) for the server to hash as it streams in",
        UPLOAD_BYTES >> 20
    );
    let mut client = connect(lab.url()).await?;
    let mut request = Request::new(DigestRequest { extra_millis: 1500 });
    CallOptions::new()
        .on_progress(|hb| println!("   {}", describe(hb)))
        .attach(&mut request);
    let source = BlobSource::from_reader(content::reader(UPLOAD_BYTES, 1)).size(UPLOAD_BYTES);
    let reply = with_progress_lines("sent", source.progress(), client.digest(request, source))
        .await?
        .into_inner();
    println!(
        "   reply: {} bytes, sha256 {}",
        reply.size, reply.sha256_hex
    );
    check(
        reply.size == UPLOAD_BYTES && reply.sha256_hex == content::sha256_hex(UPLOAD_BYTES, 1),
        "the server's SHA-256 matches the one computed here",
    )?;

    println!(
        "\n9. Fetch: download {} MiB generated by the server, hashed here as it arrives",
        DOWNLOAD_BYTES >> 20
    );
    let (reply, mut blob) = client
        .fetch(FetchRequest {
            size: DOWNLOAD_BYTES,
            seed: 2,
        })
        .await?;
    println!("   reply: {} bytes follow", reply.get_ref().size);
    let progress = blob.progress();
    let read_all = async move {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; 64 * 1024];
        let mut size = 0u64;
        loop {
            match blob.read(&mut buffer).await? {
                0 => return Ok::<_, std::io::Error>((size, hex(&hasher.finalize()))),
                n => {
                    hasher.update(&buffer[..n]);
                    size += n as u64;
                }
            }
        }
    };
    let (size, sha256) = with_progress_lines("received", progress, read_all)
        .await
        .map_err(|e| steadfast::blob::status(&e))?;
    check(
        size == DOWNLOAD_BYTES && sha256 == content::sha256_hex(DOWNLOAD_BYTES, 2),
        "every byte arrived, verified, with the expected SHA-256",
    )?;
    Ok(())
}

/// What step 10 uploads to `predict`.
const PREDICT_BYTES: u64 = 4 << 20;

/// Step 10: the code-first `Model` service (`steadfast_examples::model`, a trait
/// with `#[steadfast::service]`) behind a proxy that cuts silent calls after 1 s.
async fn code_first() -> Result {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .add_service(ModelServer::new(ModelService::new("tour-model")))
            .serve_until(listener, std::future::pending()),
    );
    let proxy = CuttingProxy::start(addr, Some(Duration::from_secs(1))).await?;
    println!(
        "\n10. A code-first service: `trait Model` with #[steadfast::service], no .proto, on\n    {addr}; called by name (x-func-name) through a proxy on {} that cuts silent calls after 1 s",
        proxy.addr()
    );
    let mut client = ModelClient::connect(proxy.url()).await?;
    let greeting = client
        .hello(HelloParams {
            name: "tour".into(),
        })
        .await?;
    println!("   hello -> {greeting:?}");
    check(
        greeting == "hello, tour from tour-model",
        "the generated client called `hello` and got its JSON result",
    )?;

    let mut request = Request::new(PredictParams { delay_ms: 2500 });
    CallOptions::new()
        .on_progress(|hb| println!("   {}", describe(hb)))
        .attach(&mut request);
    let source = BlobSource::from_reader(content::reader(PREDICT_BYTES, 3)).size(PREDICT_BYTES);
    let prediction = client.predict(request, source).await?;
    println!(
        "   predict -> size {}, sha256 {}, served by {}",
        prediction.size, prediction.sha256_hex, prediction.served_by
    );
    check(
        prediction.size == PREDICT_BYTES
            && prediction.sha256_hex == content::sha256_hex(PREDICT_BYTES, 3)
            && proxy.cut_count() == 0,
        "a 2.5 s `predict` over a 4 MiB blob passed the 1 s proxy on heartbeats",
    )?;

    let mut dispatch = client.into_dispatch();
    let unknown = dispatch.call::<_, ()>("train", &(), None).await;
    if let Err(status) = &unknown {
        println!("   train -> {:?}: {}", status.code(), status.message());
    }
    check(
        matches!(&unknown, Err(s) if s.code() == Code::Unimplemented && s.message().contains("predict")),
        "an unknown name is UNIMPLEMENTED, and the message lists the names the server knows",
    )?;
    Ok(())
}

/// A contact server on `listener`; stops (its streams ended with
/// `UNAVAILABLE`) when `true` is sent, and the handle returns.
fn contact_server(
    listener: tokio::net::TcpListener,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let service = ContactService::new(5, Duration::ZERO, stopping.clone());
    let mut shutdown = stopping;
    let server = tokio::spawn(async move {
        let _ = Server::builder()
            .add_service(service.into_server())
            .serve_until(listener, async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await;
    });
    (stop, server)
}

async fn reconnecting() -> Result {
    // A free port, with nothing listening yet.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?;
    println!(
        "\n11. Reconnecting stubs: a generated ContactClient made for {addr} before any server\n    listens there; ten RemoteCmd calls start at once"
    );
    let client = ContactClient::connect_lazy(format!("http://{addr}"))?;
    let commands = {
        let client = client.clone();
        tokio::spawn(async move { contact::commands(&client).await })
    };
    // Their first attempts find nothing listening (connection refused).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (stop, server) = contact_server(tokio::net::TcpListener::bind(addr).await?);
    println!("   50 ms later the server comes up");
    let results = commands.await??;
    check(
        results.len() == 10
            && results
                .iter()
                .all(|r| r.output.starts_with("ran `check disk")),
        "all ten calls were answered: refused while nothing listened, retried by the proto's policy",
    )?;

    let mut session = client.send_status_session(SessionBuilder::new());
    let mut events = session.events();
    let mut acked = Vec::new();
    let mut first = Some((stop, server));
    let mut second = None;
    for seq in 1..=10 {
        session
            .send(AgentStatus {
                seq,
                state: "busy".into(),
            })
            .await
            .map_err(|_| "the session ended")?;
        match session.recv().await {
            Some(Ok(ack)) => acked.push(ack.seq),
            other => return Err(format!("✗ no acknowledgment for {seq}: {other:?}").into()),
        }
        if seq == 5
            && let Some((stop, server)) = first.take()
        {
            let _ = stop.send(true);
            server.await?;
            println!("   status 5 acknowledged; the server stops and a new one starts on {addr}");
            second = Some(contact_server(tokio::net::TcpListener::bind(addr).await?));
        }
    }
    let reconnected = std::iter::from_fn(|| events.try_recv().ok())
        .any(|event| matches!(event, Event::Reconnected { .. }));
    println!("   acknowledged: {acked:?}");
    check(
        acked == (1..=10).collect::<Vec<_>>() && reconnected,
        "a SendStatus session carried on across the restart: every report acknowledged once, in order",
    )?;
    session.close().await;
    if let Some((stop, server)) = second {
        let _ = stop.send(true);
        server.await?;
    }
    Ok(())
}
