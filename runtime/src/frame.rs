//! The frames of the methods steadfast rewrites (heartbeat-wrapped responses, blob
//! uploads and downloads), and their codec, as generated code sees them.

use std::fmt;
use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::proto::v1::{BlobHeader, Chunk, Heartbeat};

/// The initial size of the encode and decode buffers of [`FrameCodec`], per call:
/// room for any heartbeat frame (see the tests), where tonic's default is 8 KiB.
/// A larger message gets the room it needs ([`ReservingEncoder`]).
pub(crate) const FRAME_BUFFER_BYTES: usize = 512;

/// How many encoded bytes tonic gathers before it hands them on, as in tonic's
/// default buffer settings (32 KiB).
const FRAME_YIELD_THRESHOLD: usize = 32 * 1024;

/// The codec of the methods steadfast rewrites (heartbeats, blobs, dispatch),
/// unless one was configured: prost, as `tonic_prost::ProstCodec`, with buffers
/// of 512 bytes (`FRAME_BUFFER_BYTES`) and an encoder that makes room for each
/// message before it writes it ([`ReservingEncoder`]).
///
/// tonic gives every call's body an encode buffer of 8 KiB by default. A plain
/// unary body lives only while its one message is written; a heartbeat body lives
/// for the whole call and writes a small frame now and then, each further into
/// the buffer, so over a minute an idle call touches all 8 KiB of it. A blob's
/// chunks are larger than either size: each gets a buffer of its own length
/// (below 1 KiB, a `BytesMut` that runs out allocates only what is asked for,
/// not the 8 KiB it started with, which the chunk would then grow by copying).
pub struct FrameCodec<T, U> {
    types: PhantomData<fn(T) -> U>,
}

impl<T, U> FrameCodec<T, U> {
    /// The codec.
    pub fn new() -> Self {
        FrameCodec { types: PhantomData }
    }

    fn buffer_settings() -> BufferSettings {
        BufferSettings::new(FRAME_BUFFER_BYTES, FRAME_YIELD_THRESHOLD)
    }
}

impl<T, U> Default for FrameCodec<T, U> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, U> Clone for FrameCodec<T, U> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T, U> fmt::Debug for FrameCodec<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameCodec")
            .field("buffer_bytes", &FRAME_BUFFER_BYTES)
            .finish()
    }
}

impl<T, U> Codec for FrameCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ReservingEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ReservingEncoder(ProstEncoder::new(Self::buffer_settings()))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(Self::buffer_settings())
    }
}

/// tonic-prost's encoder, which first reserves the message's encoded length in
/// tonic's buffer.
///
/// prost writes a message field by field into the buffer tonic gives it, and a
/// `BytesMut` has room for anything, so the buffer grows as the fields come:
/// each time to the larger of twice its size and what the field needs. A chunk
/// is its data followed by its offset: the data grows the buffer to fit it
/// exactly, then the offset's first byte doubles it, copying the whole chunk a
/// second time into twice the memory (4 % of a raw blob upload's client CPU,
/// and 256 KiB held per 128 KiB chunk waiting to be written). Reserved first,
/// the message goes in once.
#[derive(Debug)]
pub struct ReservingEncoder<T>(ProstEncoder<T>);

impl<T: prost::Message> Encoder for ReservingEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        self.0.encode(item, buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The most bytes a heartbeat frame adds around its message when encoded: the key of
/// the `message` field (field 2, length-delimited: 1 byte) and the message's length
/// (a varint: at most 10 bytes).
///
/// A message that fits a size limit fits it with this much added once it travels in
/// a frame.
pub const FRAME_OVERHEAD: usize = 1 + 10;

/// A frame of a heartbeat-wrapped response stream.
///
/// Implemented by the generated `<Service><Method>Frame` messages, whose wire form is
/// `oneof kind { steadfast.v1.Heartbeat heartbeat = 1; <Resp> message = 2; }`.
pub trait Frame: prost::Message + Default + Send + 'static {
    /// The method's own response message (`<Resp>`).
    type Message: Send + 'static;

    /// A frame carrying a heartbeat.
    fn heartbeat(heartbeat: Heartbeat) -> Self;

    /// A frame carrying the method's message.
    fn message(message: Self::Message) -> Self;

    /// What the frame carries; `None` when the peer sent a frame with no `kind` set.
    fn into_part(self) -> Option<FramePart<Self::Message>>;
}

/// A frame of a response that carries a blob after its message.
///
/// Implemented by the generated `<Service><Method>Frame` of a `response_blob`
/// method, whose wire form is `oneof kind { steadfast.v1.Heartbeat heartbeat = 1;
/// <Resp> message = 2; steadfast.v1.BlobHeader blob = 3; steadfast.v1.Chunk chunk = 4; }`:
/// heartbeats, the message, the blob's header, then its chunks.
pub trait BlobFrame: Frame {
    /// A frame carrying the blob's header.
    fn blob(header: BlobHeader) -> Self;

    /// A frame carrying a chunk of the blob.
    fn chunk(chunk: Chunk) -> Self;
}

/// What one [`Frame`] carries.
#[derive(Clone, Debug, PartialEq)]
pub enum FramePart<M> {
    /// A heartbeat: the server is still working.
    Heartbeat(Heartbeat),
    /// The method's own message.
    Message(M),
    /// The header of the blob that follows the message ([`BlobFrame`] only).
    Blob(BlobHeader),
    /// A chunk of that blob ([`BlobFrame`] only).
    Chunk(Chunk),
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost::encoding::{encoded_len_varint, key_len};

    use super::testing::{TestFrame, TestMessage};
    use super::*;

    #[test]
    fn frame_overhead_is_the_message_fields_key_and_longest_length() {
        assert_eq!(FRAME_OVERHEAD, key_len(2) + encoded_len_varint(u64::MAX));
    }

    #[test]
    fn the_frame_codec_has_small_buffers() {
        use tonic::codec::{Decoder, Encoder};
        let mut codec = FrameCodec::<TestFrame, TestFrame>::default();
        let encoder = codec.encoder();
        let decoder = codec.decoder();
        // The settings are opaque; their debug form shows them.
        for settings in [
            format!("{:?}", encoder.buffer_settings()),
            format!("{:?}", decoder.buffer_settings()),
        ] {
            assert!(
                settings.contains(&format!("buffer_size: {FRAME_BUFFER_BYTES},")),
                "{settings}"
            );
            assert!(settings.contains("yield_threshold: 32768"), "{settings}");
        }
    }

    #[test]
    fn a_frame_adds_at_most_frame_overhead_to_its_message() {
        for len in [0, 1, 127, 128, 16_383, 16_384, 4 * 1024 * 1024 + 3] {
            let message = TestMessage::new(&"x".repeat(len));
            let message_len = message.encoded_len();
            let frame = TestFrame::message(message);
            let encoded = frame.encode_to_vec();
            assert_eq!(encoded.len(), frame.encoded_len());
            let added = encoded.len() - message_len;
            assert!(added <= FRAME_OVERHEAD, "{len}: {added} bytes added");
            // The key and the length, nothing else.
            assert_eq!(added, 1 + encoded_len_varint(message_len as u64), "{len}");
        }
    }
}
