//! Calls the Worker service.
//!
//! ```text
//! cargo run --bin client -- work 3000 [URL]    # 3 s of work, with its progress
//! cargo run --bin client -- store FILE [URL]   # uploads FILE as a blob
//! ```
//! URL defaults to `http://127.0.0.1:50051`.

use steadfast::{BlobSource, CallOptions};
use tonic::Request;

use {{crate_name}}::proto::worker_client::WorkerClient;
use {{crate_name}}::proto::{StoreRequest, WorkRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, arg) = match args.as_slice() {
        [command, arg, ..] => (command.as_str(), arg.as_str()),
        _ => return Err("usage: client work MILLIS [URL] | client store FILE [URL]".into()),
    };
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let mut client = WorkerClient::connect(url).await?;
    match command {
        "work" => {
            let mut request = Request::new(WorkRequest {
                millis: arg.parse()?,
            });
            CallOptions::new()
                .on_progress(|heartbeat| {
                    let percent = heartbeat.progress.unwrap_or(0.0) * 100.0;
                    eprintln!("heartbeat: {percent:.0}%");
                })
                .attach(&mut request);
            let reply = client.work(request).await?;
            println!("took {} ms", reply.get_ref().took_ms);
        }
        "store" => {
            let request = StoreRequest {
                name: arg.to_owned(),
            };
            let reply = client.store(request, BlobSource::from_path(arg)).await?;
            println!(
                "size={} sha256={}",
                reply.get_ref().size,
                reply.get_ref().sha256_hex
            );
        }
        other => return Err(format!("unknown command `{other}`: work or store").into()),
    }
    Ok(())
}
