//! Counting the gRPC messages of a body from its bytes: each message is a
//! 5-byte prefix (a compression flag and a big-endian length) and its bytes,
//! and a body's frames may split both anywhere.
// Used only by the metrics.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

/// Counts the messages a body's DATA frames carry, frame by frame.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MessageCounter {
    /// Bytes of the prefix read so far (0 while between messages).
    prefix_read: u8,
    /// The length being read from the prefix.
    length: u32,
    /// Bytes of the current message still to skip.
    remaining: u64,
}

impl MessageCounter {
    /// Reads one frame's bytes; returns how many messages began in it.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut began = 0;
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip =
                    usize::try_from(self.remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                self.remaining -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            if self.prefix_read == 0 {
                began += 1;
                self.length = 0;
            }
            // Byte 0 is the compression flag; bytes 1..5 the length.
            if self.prefix_read > 0 {
                self.length = (self.length << 8) | u32::from(bytes[0]);
            }
            self.prefix_read += 1;
            bytes = &bytes[1..];
            if self.prefix_read == 5 {
                self.prefix_read = 0;
                self.remaining = u64::from(self.length);
            }
        }
        began
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, len));
        bytes
    }

    #[test]
    fn messages_are_counted_however_the_frames_split_them() {
        let body: Vec<u8> = [message(0), message(3), message(70_000), message(1)].concat();
        let mut whole = MessageCounter::default();
        assert_eq!(whole.feed(&body), 4);
        for split in [1, 2, 5, 7, 4096] {
            let mut counter = MessageCounter::default();
            let counted: u64 = body.chunks(split).map(|chunk| counter.feed(chunk)).sum();
            assert_eq!(counted, 4, "chunks of {split}");
        }
    }
}
