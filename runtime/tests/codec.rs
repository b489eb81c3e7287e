//! The codec of the methods steadfast rewrites writes each blob chunk into
//! tonic's buffer once, in memory the size of the chunk.
//!
//! prost writes a message field by field into the buffer tonic gives it. A
//! chunk's data fills that buffer to the byte, and its offset, the field after
//! the data, then doubles it: the whole chunk copied again, into twice its
//! size, which h2 holds until the chunk is written. `FrameCodec` reserves each
//! message's length first. Measured here with `stats_alloc` as this binary's
//! allocator (it has this one test, so nothing else allocates meanwhile).

use std::alloc::System;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::Body;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use steadfast::__private::FrameCodec;
use steadfast::__private::v1::Chunk;
use tonic::codec::{Codec, EncodeBody};
use tonic_prost::ProstCodec;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The blob sender's default chunk size.
const CHUNK_BYTES: usize = 128 * 1024;

const CHUNKS: usize = 16;

/// Encodes `CHUNKS` chunks as a client's request body with `codec`, keeping
/// every encoded frame (as h2 keeps what it has not written yet), and returns
/// the bytes allocated for them per byte encoded.
fn memory_per_encoded_byte<C: Codec<Encode = Chunk>>(mut codec: C) -> f64 {
    let chunks: Vec<Result<Chunk, tonic::Status>> = (0..CHUNKS)
        .map(|i| {
            Ok(Chunk {
                data: Bytes::from(vec![i as u8; CHUNK_BYTES]),
                offset: (i * CHUNK_BYTES) as u64,
                last: i + 1 == CHUNKS,
                checksum: None,
            })
        })
        .collect();
    let mut body = std::pin::pin!(EncodeBody::new_client(
        codec.encoder(),
        tokio_stream::iter(chunks),
        None,
        None
    ));
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = Vec::with_capacity(2 * CHUNKS + 2);
    let mut encoded = 0;
    let region = Region::new(ALLOCATOR);
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                encoded += frame.data_ref().map_or(0, Bytes::len);
                frames.push(frame);
            }
            Poll::Ready(Some(Err(status))) => panic!("encoding failed: {status}"),
            Poll::Ready(None) => break,
            Poll::Pending => panic!("a stream of ready chunks is never pending"),
        }
    }
    let change = region.change();
    let held = change.bytes_allocated as isize + change.bytes_reallocated
        - change.bytes_deallocated as isize;
    assert!(
        encoded > CHUNKS * CHUNK_BYTES,
        "{encoded} bytes encoded: not every chunk went out"
    );
    drop(frames);
    held as f64 / encoded as f64
}

#[test]
fn the_frame_codec_writes_each_chunk_once_in_memory_its_size() {
    // The control: tonic-prost's codec doubles the buffer after each chunk.
    let prost = memory_per_encoded_byte(ProstCodec::<Chunk, Chunk>::default());
    assert!(
        prost > 1.5,
        "tonic-prost's codec holds {prost:.2} bytes per encoded byte: \
         the test no longer sees its second copy"
    );
    let ours = memory_per_encoded_byte(FrameCodec::<Chunk, Chunk>::default());
    assert!(
        ours < 1.05,
        "the frame codec holds {ours:.2} bytes per encoded byte of {CHUNKS} chunks"
    );
}
