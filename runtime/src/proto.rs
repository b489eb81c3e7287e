//! Messages of the `steadfast.v1` wire contract (`proto/steadfast/v1/*.proto`).
//!
//! [`v1`] is what `prost-build` 0.14 (default `Config`) emits for
//! `proto/steadfast/v1/frame.proto` and `dispatch.proto`, checked in as `runtime/generated/steadfast.v1.rs`
//! so that the runtime needs no build script. Do not edit that file: change
//! the proto (documenting every new message, field and value: this crate denies
//! `missing_docs`), then regenerate it with
//! `STEADFAST_BLESS=1 cargo test -p steadfast-tests --test runtime_proto` and
//! review the diff. That test fails whenever the checked-in file is not what
//! prost-build generates from the proto. The wire contract is public and
//! versioned: the tests below pin the encoding by hand as well.

/// Package `steadfast.v1`: heartbeats, blob headers and chunks, and the frames of `Dispatch`.
pub mod v1 {
    include!("../generated/steadfast.v1.rs");
}

#[cfg(test)]
mod tests {
    use super::v1::{BlobHeader, Chunk, Codec, Heartbeat};
    use prost::Message;

    // Bytes written by hand from frame.proto's field numbers and types, so that a
    // wrong tag or wire type in the structs above fails here.
    #[test]
    fn heartbeat_encodes_with_the_proto_field_numbers() {
        let hb = Heartbeat {
            seq: 1,
            elapsed_ms: 500,
            progress: Some(0.5),
            note: Some("hi".into()),
        };
        let expected = [
            0x08, 0x01, // seq = 1 (varint)
            0x10, 0xf4, 0x03, // elapsed_ms = 500 (varint)
            0x1d, 0x00, 0x00, 0x00, 0x3f, // progress = 0.5 (fixed32)
            0x22, 0x02, b'h', b'i', // note = "hi"
        ];
        assert_eq!(hb.encode_to_vec(), expected);
        assert_eq!(Heartbeat::decode(&expected[..]).expect("decodes"), hb);
    }

    #[test]
    fn optional_fields_are_absent_when_unset_and_present_when_zero() {
        assert!(Heartbeat::default().encode_to_vec().is_empty());
        let zero = Heartbeat {
            progress: Some(0.0),
            note: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            zero.encode_to_vec(),
            [0x1d, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00]
        );
    }

    #[test]
    fn blob_header_and_chunk_encode_with_the_proto_field_numbers() {
        let header = BlobHeader {
            size: Some(3),
            codec: Codec::Zstd as i32,
        };
        assert_eq!(header.encode_to_vec(), [0x08, 0x03, 0x10, 0x02]);
        assert_eq!(header.codec(), Codec::Zstd);

        let chunk = Chunk {
            data: vec![7].into(),
            offset: 2,
            last: true,
            checksum: Some(1),
        };
        assert_eq!(
            chunk.encode_to_vec(),
            [
                0x0a, 0x01, 0x07, // data
                0x10, 0x02, // offset
                0x18, 0x01, // last
                0x21, 0x01, 0, 0, 0, 0, 0, 0, 0, // checksum (fixed64)
            ]
        );
        assert_eq!(Codec::from_str_name("CODEC_NONE"), Some(Codec::None));
        assert_eq!(Codec::Zstd.as_str_name(), "CODEC_ZSTD");
    }
}
