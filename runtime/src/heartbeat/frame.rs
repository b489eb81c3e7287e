//! The frames of a heartbeat-wrapped response stream, as generated code sees them.

use crate::proto::v1::Heartbeat;

/// The most bytes a heartbeat frame adds around its message when encoded: the key of
/// the `message` field (field 2, length-delimited: 1 byte) and the message's length
/// (a varint: at most 10 bytes).
///
/// A message that fits a size limit fits it with this much added once it travels in
/// a frame.
pub const FRAME_OVERHEAD: usize = 1 + 10;

/// A frame of a heartbeat-wrapped response stream.
///
/// Implemented by the generated `<Method>Frame` messages, whose wire form is
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

/// What one [`Frame`] carries.
#[derive(Clone, Debug, PartialEq)]
pub enum FramePart<M> {
    /// A heartbeat: the server is still working.
    Heartbeat(Heartbeat),
    /// The method's own message.
    Message(M),
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost::encoding::{encoded_len_varint, key_len};

    use super::*;
    use crate::heartbeat::test_support::{TestFrame, TestMessage};

    #[test]
    fn frame_overhead_is_the_message_fields_key_and_longest_length() {
        assert_eq!(FRAME_OVERHEAD, key_len(2) + encoded_len_varint(u64::MAX));
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
