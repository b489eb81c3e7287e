//! Keepalive enforcement of `steadfast::server::Server` (issue 24 item 1),
//! seen by a raw HTTP/2 client (h2): a client that PINGs faster than the
//! server's minimum interval is told GOAWAY `ENHANCE_YOUR_CALM` and cut off;
//! one that PINGs slower, or fast with calls answered in between, is served.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Ping, PingPong, Reason};
use steadfast::server::Server;
use steadfast_tests::serve::Production;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::codegen::http;

/// Generous bound for anything to happen, so a hang fails the test instead of CI.
const DEADLINE: Duration = Duration::from_secs(10);

/// A raw HTTP/2 connection to a server: requests, PINGs, and the connection's
/// task, whose result tells how it ended.
struct Client {
    addr: SocketAddr,
    send: SendRequest<Bytes>,
    pings: PingPong,
    connection: JoinHandle<Result<(), h2::Error>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (send, mut connection) = h2::client::handshake(tcp).await.expect("handshake");
        let pings = connection.ping_pong().expect("the connection's PINGs");
        Client {
            addr,
            send,
            pings,
            connection: tokio::spawn(connection),
        }
    }

    /// One PING and its answer.
    async fn ping(&mut self) -> Result<(), h2::Error> {
        tokio::time::timeout(DEADLINE, self.pings.ping(Ping::opaque()))
            .await
            .expect("a PING answered or the connection ended")
            .map(drop)
    }

    /// Opens a `grpc.health.v1.Health` call for the server's overall health
    /// (`""`): the response's body.
    async fn health(&mut self, method: &str) -> h2::RecvStream {
        let request = http::Request::post(format!(
            "http://{}/grpc.health.v1.Health/{method}",
            self.addr
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
        let mut send = self.send.clone().ready().await.expect("room for a call");
        let (response, mut stream) = send.send_request(request, false).expect("request sent");
        // An empty HealthCheckRequest: the 5-byte gRPC prefix alone.
        stream
            .send_data(Bytes::from_static(&[0; 5]), true)
            .expect("message sent");
        let response = tokio::time::timeout(DEADLINE, response)
            .await
            .expect("response headers in time")
            .expect("response headers");
        assert_eq!(response.status(), http::StatusCode::OK);
        response.into_body()
    }

    /// A whole `Check("")` call on this connection: its `grpc-status`.
    async fn check(&mut self) -> String {
        let mut body = self.health("Check").await;
        let answered = async {
            while let Some(chunk) = body.data().await {
                let chunk = chunk.expect("a response message");
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            body.trailers().await
        };
        let trailers = tokio::time::timeout(DEADLINE, answered)
            .await
            .expect("the call ended in time")
            .expect("trailers")
            .expect("trailers, not just an end");
        trailers
            .get("grpc-status")
            .and_then(|status| status.to_str().ok())
            .unwrap_or("none")
            .to_owned()
    }

    /// Waits for the connection to end, at most [`DEADLINE`]: how it ended.
    async fn ended(self) -> Result<(), h2::Error> {
        tokio::time::timeout(DEADLINE, self.connection)
            .await
            .expect("the connection ended in time")
            .expect("the connection's task")
    }
}

/// A server whose clients must leave `min_interval` between their PINGs.
async fn server(min_interval: Duration, permit_without_calls: bool) -> Production {
    Production::start(Server::builder().keepalive_enforcement(min_interval, permit_without_calls))
        .await
}

fn told_to_calm_down(ended: &Result<(), h2::Error>) -> bool {
    matches!(ended, Err(error) if error.is_go_away() && error.reason() == Some(Reason::ENHANCE_YOUR_CALM))
}

#[tokio::test]
async fn a_client_that_pings_every_50_ms_against_a_500_ms_minimum_gets_goaway_enhance_your_calm() {
    let server = server(Duration::from_millis(500), true).await;
    let mut client = Client::connect(server.addr()).await;
    let mut answered = 0;
    // The fourth PING is the third strike: it is never answered, the
    // connection ends instead.
    while client.ping().await.is_ok() {
        answered += 1;
        assert!(answered < 10, "still answered after {answered} PINGs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered, 3, "PINGs answered before the eviction");
    let ended = client.ended().await;
    assert!(told_to_calm_down(&ended), "ended with {ended:?}");
}

#[tokio::test]
async fn a_client_that_pings_every_300_ms_against_a_100_ms_minimum_is_served() {
    let server = server(Duration::from_millis(100), true).await;
    let mut client = Client::connect(server.addr()).await;
    for i in 0..5 {
        if let Err(error) = client.ping().await {
            panic!("PING {i} got {error:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(client.check().await, "0");
    assert!(!client.connection.is_finished());
}

#[tokio::test]
async fn a_client_that_pings_fast_between_its_calls_is_served() {
    let server = server(Duration::from_millis(500), true).await;
    let mut client = Client::connect(server.addr()).await;
    // Two quick PINGs a round: the server's HEADERS and DATA of each call wipe
    // the strike, so there is never more than one.
    for round in 0..10 {
        for i in 0..2 {
            if let Err(error) = client.ping().await {
                panic!("round {round}, PING {i} got {error:?}");
            }
        }
        assert_eq!(client.check().await, "0", "round {round}");
    }
    assert!(!client.connection.is_finished());
}

#[tokio::test]
async fn without_calls_pings_are_refused_unless_permitted_but_a_call_in_flight_permits_them() {
    let server = server(Duration::from_millis(100), false).await;

    // A health Watch in flight: PINGs every 300 ms are fine.
    let mut client = Client::connect(server.addr()).await;
    let mut watch = client.health("Watch").await;
    let first = tokio::time::timeout(DEADLINE, watch.data())
        .await
        .expect("the first status in time");
    assert!(matches!(first, Some(Ok(_))), "the first status: {first:?}");
    for i in 0..5 {
        if let Err(error) = client.ping().await {
            panic!("PING {i} with a call in flight got {error:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(watch);

    // No call: the same PINGs are held to 2 hours, and the fourth evicts.
    let mut client = Client::connect(server.addr()).await;
    let mut answered = 0;
    while client.ping().await.is_ok() {
        answered += 1;
        assert!(answered < 10, "still answered after {answered} PINGs");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(answered, 3, "PINGs answered before the eviction");
    let ended = client.ended().await;
    assert!(told_to_calm_down(&ended), "ended with {ended:?}");
}
