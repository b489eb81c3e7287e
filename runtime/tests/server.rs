//! steadfast's HTTP/2 defaults as the peer sees them on the wire: the SETTINGS
//! frame a `steadfast::server` sends a client, and the one a steadfast channel
//! sends its server, both read off a raw TCP connection.

use std::time::Duration;

use steadfast::dispatch::{self, Context, DispatchClient, DispatchServer};
use steadfast::server::MAX_FRAME_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::Status;

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

/// What every HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The frame type of SETTINGS, and the id of `SETTINGS_MAX_FRAME_SIZE`.
const SETTINGS: u8 = 0x4;
const MAX_FRAME_SIZE: u16 = 0x5;

/// Reads frames off `stream` until the first SETTINGS frame that is not an
/// acknowledgement, and returns its `(id, value)` pairs.
async fn read_settings(stream: &mut TcpStream) -> Vec<(u16, u32)> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let mut header = [0u8; 9];
            stream
                .read_exact(&mut header)
                .await
                .expect("a frame header");
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; len];
            stream
                .read_exact(&mut payload)
                .await
                .expect("a frame payload");
            let ack = header[4] & 0x1 != 0;
            if header[3] == SETTINGS && !ack {
                return payload
                    .chunks_exact(6)
                    .map(|entry| {
                        (
                            u16::from_be_bytes([entry[0], entry[1]]),
                            u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]),
                        )
                    })
                    .collect();
            }
        }
    })
    .await
    .expect("a SETTINGS frame in time")
}

fn max_frame_size(settings: &[(u16, u32)]) -> Option<u32> {
    settings
        .iter()
        .find(|(id, _)| *id == MAX_FRAME_SIZE)
        .map(|(_, value)| *value)
}

#[tokio::test]
async fn a_steadfast_server_accepts_frames_of_max_frame_bytes() {
    let server = DispatchServer::new()
        .mount(dispatch::function(
            "who",
            |_ctx: Context, _: ()| async move { Ok::<_, Status>("me".to_owned()) },
        ))
        .expect("one function");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("a bound address");
    let serving = tokio::spawn(
        steadfast::server::builder()
            .add_service(server)
            .serve_with_incoming(steadfast::server::incoming(listener)),
    );

    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(PREFACE).await.expect("preface");
    // An empty SETTINGS frame: the client's half of the connection preface.
    stream
        .write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    let settings = read_settings(&mut stream).await;
    assert_eq!(
        max_frame_size(&settings),
        Some(MAX_FRAME_BYTES),
        "the server's SETTINGS: {settings:?}"
    );

    // And it serves calls: a steadfast client, whose frames may now be large.
    let channel = steadfast::channel::connect_lazy(format!("http://{addr}")).expect("a channel");
    let mut client = DispatchClient::new(channel);
    let (who, _): (String, _) = tokio::time::timeout(PATIENCE, client.call("who", &(), None))
        .await
        .expect("an answer in time")
        .expect("the call");
    assert_eq!(who, "me");
    serving.abort();
}

#[tokio::test]
async fn a_steadfast_channel_accepts_frames_of_max_frame_bytes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("a bound address");
    let channel = steadfast::channel::connect_lazy(format!("http://{addr}")).expect("a channel");
    // The call connects; this end reads what the channel sends first.
    let call = tokio::spawn(async move {
        let mut client = DispatchClient::new(channel);
        let _ = client.call::<(), String>("who", &(), None).await;
    });
    let (mut stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .expect("the channel connects in time")
        .expect("accept");
    let mut preface = [0u8; PREFACE.len()];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut preface))
        .await
        .expect("a preface in time")
        .expect("a preface");
    assert_eq!(&preface[..], PREFACE);
    let settings = read_settings(&mut stream).await;
    assert_eq!(
        max_frame_size(&settings),
        Some(MAX_FRAME_BYTES),
        "the channel's SETTINGS: {settings:?}"
    );
    call.abort();
}
