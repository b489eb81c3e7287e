//! Negotiated framing: which shape a call of a rewritten method travels in.
//!
//! A steadfast option (`heartbeat_ms`, `request_blob`, `response_blob`) changes
//! a method's shape on the wire under the same path: heartbeat frames around the
//! response, uploads and downloads around a blob. A client compiled from the
//! *original* proto (grpcio, grpc-go, plain tonic, the clients a service had
//! before it adopted steadfast) knows nothing of that. So the shape is chosen per
//! call, by the client:
//!
//! - A client that reads and writes frames says so with the request metadata
//!   [`HEADER`]` = `[`VERSION`] (`steadfast-framing: v1`). Every steadfast
//!   client sends it (the typed clients, their `*_wire` clients, the Python
//!   package), and so must any other client built from the emitted wire protos.
//!   The emitted protos say so at their top.
//! - A call **without** it is served the method's **original shape**: a unary or
//!   client-streaming method answers the plain reply, a server-streaming or bidi
//!   method sends plain messages. No heartbeats: that is all such a caller
//!   loses. The call's deadline (`grpc-timeout`) is still enforced on the
//!   server, also on a stream whose headers went out long before.
//! - A blob method cannot carry its blob in the original shape: without the key
//!   it answers `FAILED_PRECONDITION`, naming the method and how to call it.
//! - Any other value of the key is refused with `FAILED_PRECONDITION` naming the
//!   version this server speaks, so a newer client learns at once why.
//! - `steadfast.v1.Dispatch` has no original shape: it is served the same with or
//!   without the key.
//!
//! The generated server decides per call, before tonic decodes anything, and
//! hands the call to one of two tonic servers over the same implementation.
//!
//! So the order for a live service is: deploy the server with the option (its
//! callers keep their answers), then move callers to steadfast's clients or the
//! wire protos as they need heartbeats or blobs. Adding a blob to a method that
//! has callers changes its contract: give a blob its own new method.
//!
//! # The wire shapes
//!
//! The framed shape of a method is public and versioned (`steadfast.v1`);
//! changing it is a breaking change. For a method `Sleep` of a service `Lab`:
//!
//! - `heartbeat_ms`: the response becomes `stream LabSleepFrame`, with
//!   `message LabSleepFrame { oneof kind { steadfast.v1.Heartbeat heartbeat = 1;
//!   SleepReply message = 2; } }`. A unary or client-streaming method sends
//!   exactly one `message`, last.
//! - `request_blob`: the request becomes `stream LabDigestUpload`, with
//!   `oneof kind { DigestRequest head = 1; steadfast.v1.BlobHeader blob = 2;
//!   steadfast.v1.Chunk chunk = 3; }`, sent in that order: the request, the
//!   blob's header, then its chunks.
//! - `response_blob`: the response becomes `stream LabFetchFrame`, with
//!   `oneof kind { steadfast.v1.Heartbeat heartbeat = 1; FetchReply message = 2;
//!   steadfast.v1.BlobHeader blob = 3; steadfast.v1.Chunk chunk = 4; }`:
//!   heartbeats (if the method has an interval), the reply, the blob's header,
//!   then its chunks.
//!
//! **The naming rule.** The response frame of a heartbeat or `response_blob`
//! method is `<Service><Method>Frame`, the request of a `request_blob` method
//! `<Service><Method>Upload`, both in UpperCamelCase (`Lab` + `get_thing` →
//! `LabGetThingFrame`), in the service's package. A name depends only on its
//! own service and method, so two services can each have a `Sleep`, and adding
//! a service renames nothing already on the wire. steadfast-build checks the
//! names against the whole package and fails the build on a clash.
//!
//! To call a steadfast server from another language, write these protos with
//! `steadfast-codegen wire` (or `emit_wire_protos` in build.rs) and compile
//! them with that language's tools; each is the user's own file with only the
//! rewritten signatures changed and the frame and upload messages appended.
//! A client of them sends [`HEADER`]` = `[`VERSION`] on every call of a
//! rewritten method.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::time::Sleep;
use tonic::codegen::http;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::deadline::{Deadline, Watched};
use crate::heartbeat::progress::Progress;

/// The request metadata key of a client that reads and writes steadfast frames.
///
/// Part of the `steadfast.v1` wire contract, like its value [`VERSION`].
pub const HEADER: &str = "steadfast-framing";

/// The value of [`HEADER`] for the frames of `steadfast.v1`.
pub const VERSION: &str = "v1";

/// The shape a call asked for, from its request headers.
#[doc(hidden)]
#[derive(Debug)]
pub enum Framing {
    /// The key is there with [`VERSION`]: the wire shape, with frames.
    Frames,
    /// No key: the method's original shape.
    Original,
    /// A value this server does not speak: the status to answer.
    Unsupported(Status),
}

/// Reads the framing a call asks for from its request headers.
#[doc(hidden)]
pub fn negotiate(headers: &http::HeaderMap) -> Framing {
    let mut values = headers.get_all(HEADER).iter().peekable();
    if values.peek().is_none() {
        return Framing::Original;
    }
    for value in values {
        if value.as_bytes() != VERSION.as_bytes() {
            return Framing::Unsupported(Status::failed_precondition(format!(
                "unsupported {HEADER} {:?}: this server speaks steadfast wire frames {VERSION:?} \
                 (send `{HEADER}: {VERSION}`, or no {HEADER} at all for the methods' original shapes)",
                String::from_utf8_lossy(value.as_bytes())
            )));
        }
    }
    Framing::Frames
}

/// The response to a call whose framing was refused.
#[doc(hidden)]
pub fn refuse(
    status: Status,
) -> Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>> {
    Box::pin(std::future::ready(Ok(status.into_http())))
}

/// Marks a request as read and written in frames: what every steadfast client
/// of a rewritten method sends.
pub fn announce<T>(request: &mut Request<T>) {
    request
        .metadata_mut()
        .insert(HEADER, MetadataValue::from_static(VERSION));
}

/// The refusal of a blob method called without frames.
#[doc(hidden)]
pub fn blob_refused(method: &str) -> Status {
    Status::failed_precondition(format!(
        "{method} carries a blob, which only steadfast's framed shape can: call it with a \
         steadfast client, or with a client built from the wire protos \
         (`steadfast-codegen wire`) that sends the metadata `{HEADER}: {VERSION}`"
    ))
}

/// Serves a unary or client-streaming call of a heartbeat method in its
/// original shape: the handler's reply as it is, within the call's deadline.
#[doc(hidden)]
pub async fn serve_original_unary<R, M, H, Fut>(
    request: Request<R>,
    handler: H,
) -> Result<Response<M>, Status>
where
    H: FnOnce(Request<R>) -> Fut,
    Fut: Future<Output = Result<Response<M>, Status>>,
{
    let (request, deadline) = prepare(request);
    within(deadline, handler(request)).await
}

/// Serves a server-streaming or bidi call of a heartbeat method in its
/// original shape: the handler's messages as they are; when the call's deadline
/// passes, the handler's stream is dropped and the call ends with
/// `DEADLINE_EXCEEDED`, also when the client stopped reading (a watchdog drops
/// it, as for framed calls).
#[doc(hidden)]
pub async fn serve_original_streaming<R, S, H, Fut>(
    request: Request<R>,
    handler: H,
) -> Result<Response<OriginalStream<S>>, Status>
where
    H: FnOnce(Request<R>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>>,
    S: Send + 'static,
{
    let (request, deadline) = prepare(request);
    let response = within(deadline, handler(request)).await?;
    Ok(response.map(|stream| OriginalStream {
        stream: Some(match deadline {
            Some(deadline) => Inner::Watched(Watched::new(stream, deadline)),
            None => Inner::Plain(Box::pin(stream)),
        }),
        timer: deadline.map(|deadline| (Box::pin(tokio::time::sleep_until(deadline.at)), deadline)),
    }))
}

/// What a heartbeat handler finds in its request in either shape: a
/// [`Progress`] (reports go nowhere here) and the call's deadline.
fn prepare<R>(mut request: Request<R>) -> (Request<R>, Option<Deadline>) {
    let deadline = Deadline::from_metadata(request.metadata());
    request.extensions_mut().insert(Progress::default());
    if let Some(deadline) = deadline {
        request.extensions_mut().insert(deadline);
    }
    (request, deadline)
}

/// Runs `future` until the deadline, if there is one.
async fn within<T>(
    deadline: Option<Deadline>,
    future: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.at, future)
            .await
            .unwrap_or_else(|_| Err(deadline.exceeded())),
        None => future.await,
    }
}

/// A handler's response stream in the original shape, ended at the call's
/// deadline (tonic's own server timeout stops at the response headers).
pub struct OriginalStream<S> {
    // `None` once the call is over: dropping it cancels the handler's work.
    stream: Option<Inner<S>>,
    // Ends a stream that is polled but silent at the deadline.
    timer: Option<(Pin<Box<Sleep>>, Deadline)>,
}

/// The handler's stream; with a deadline, behind a watchdog that drops it
/// then even if nothing polls it.
enum Inner<S> {
    Plain(Pin<Box<S>>),
    Watched(Watched<S>),
}

impl<S> std::fmt::Debug for OriginalStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginalStream").finish_non_exhaustive()
    }
}

impl<S, M> Stream for OriginalStream<S>
where
    S: Stream<Item = Result<M, Status>>,
{
    type Item = Result<M, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some((timer, deadline)) = this.timer.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            let status = deadline.exceeded();
            this.stream = None;
            this.timer = None;
            return Poll::Ready(Some(Err(status)));
        }
        let item = std::task::ready!(match stream {
            Inner::Plain(stream) => stream.as_mut().poll_next(cx),
            Inner::Watched(stream) => Pin::new(stream).poll_next(cx),
        });
        if !matches!(item, Some(Ok(_))) {
            this.stream = None;
            this.timer = None;
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn headers(values: &[&'static str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in values {
            headers.append(HEADER, http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_key_picks_the_shape() {
        assert!(matches!(negotiate(&headers(&[])), Framing::Original));
        assert!(matches!(negotiate(&headers(&["v1"])), Framing::Frames));
        assert!(matches!(
            negotiate(&headers(&["v1", "v1"])),
            Framing::Frames
        ));
        for odd in [&["v2"][..], &["v1", "v2"], &[""], &["V1"]] {
            let Framing::Unsupported(status) = negotiate(&headers(odd)) else {
                panic!("{odd:?} accepted");
            };
            assert_eq!(status.code(), tonic::Code::FailedPrecondition);
            assert!(
                status
                    .message()
                    .contains("speaks steadfast wire frames \"v1\"")
            );
        }
    }

    #[test]
    fn announce_sets_the_key() {
        let mut request = Request::new(());
        announce(&mut request);
        let headers = request.into_parts().0.into_headers();
        assert!(matches!(negotiate(&headers), Framing::Frames));
    }

    #[tokio::test(start_paused = true)]
    async fn an_original_unary_call_is_dropped_at_its_deadline() {
        let mut request = Request::new(());
        request.set_timeout(Duration::from_millis(300));
        let status = serve_original_unary(request, |request: Request<()>| async move {
            assert!(request.extensions().get::<Progress>().is_some());
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Response::new(()))
        })
        .await
        .expect_err("answered after its deadline");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test(start_paused = true)]
    async fn an_original_stream_ends_at_its_deadline_and_drops_the_handler() {
        struct Dropped(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = Dropped(dropped.clone());
        let mut request = Request::new(());
        request.set_timeout(Duration::from_millis(300));
        let response = serve_original_streaming(request, move |_: Request<()>| async move {
            let ticks = Ticks {
                interval: tokio::time::interval(Duration::from_millis(100)),
                _guard: guard,
            };
            Ok(Response::new(ticks))
        })
        .await
        .expect("the stream opens");
        let mut stream = Box::pin(response.into_inner());
        let mut got = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            got.push(item.map_err(|status| status.code()));
        }
        // Ticks every 100 ms: three or four before the 300 ms deadline, then the error.
        assert!(got.len() >= 3, "{got:?}");
        assert_eq!(got.last(), Some(&Err(tonic::Code::DeadlineExceeded)));
        assert!(got[..got.len() - 1].iter().all(Result::is_ok), "{got:?}");
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));

        /// An endless stream of `()` every 100 ms that owns a guard.
        struct Ticks {
            interval: tokio::time::Interval,
            _guard: Dropped,
        }
        impl Stream for Ticks {
            type Item = Result<(), Status>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                self.interval.poll_tick(cx).map(|_| Some(Ok(())))
            }
        }
    }
}
