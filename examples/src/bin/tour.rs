//! Run with: `cargo run -p steadfast-examples --bin tour`
//!
//! A quick tour of what steadfast does, on 127.0.0.1 with nothing to set up:
//! a lab server behind a proxy that cuts calls idle for 1 s (as nginx's
//! `grpc_read_timeout` does), a plain call that dies there, a heartbeat call
//! that passes with progress, a stream with long gaps, a frozen server caught
//! by the client's liveness window, cancellation, and a refused bad request.
//! Exits non-zero if anything does not behave as described.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use steadfast::CallOptions;
use steadfast_examples::{
    lab::{RunningLab, describe},
    proto::lab::v1::{SleepRequest, TicksRequest, WhoAmIRequest, lab_client::LabClient},
    proxy::CuttingProxy,
    report::Report,
};
use tokio::time::Instant;
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

async fn connect(url: String) -> Result<LabClient<Channel>> {
    Ok(LabClient::connect(url).await?)
}

#[tokio::main]
async fn main() -> ExitCode {
    println!("steadfast tour: everything runs on 127.0.0.1 and takes about 15 s.\n");
    match tour().await {
        Ok(()) => {
            println!(
                "\nAll good. Next: run `lab-server` and `lab-client` yourself (see README.md)."
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
        plain.is_err() && proxy.cut_count() == 1,
        "the proxy cut the silent call after 1 s",
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
    Ok(())
}
