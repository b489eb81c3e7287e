//! Messages of the `steadfast.v1` wire contract (`proto/steadfast/v1/*.proto`).
//!
//! The code in [`v1`] is what `prost-build` 0.14 emits for
//! `proto/steadfast/v1/frame.proto`, kept by hand so that the runtime needs no
//! build script. The only difference is a doc comment on the items the proto leaves
//! undocumented, because this crate denies `missing_docs`. Change the proto and this
//! file together: the wire contract is public and versioned.

/// Package `steadfast.v1`: heartbeats, blob headers and chunks.
pub mod v1 {
    /// Sent by the server while a call is in progress, so that no proxy sees an idle call.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Heartbeat {
        /// 1 for the first heartbeat of a call, then 2, 3, ...
        #[prost(uint64, tag = "1")]
        pub seq: u64,
        /// Milliseconds since the handler started.
        #[prost(uint64, tag = "2")]
        pub elapsed_ms: u64,
        /// Fraction done (0..1), when the handler reported it.
        #[prost(float, optional, tag = "3")]
        pub progress: ::core::option::Option<f32>,
        /// A short note from the handler, when it reported one.
        #[prost(string, optional, tag = "4")]
        pub note: ::core::option::Option<::prost::alloc::string::String>,
    }
    /// Announces a blob before its chunks.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct BlobHeader {
        /// Uncompressed size in bytes, as declared by the sender.
        #[prost(uint64, tag = "1")]
        pub size: u64,
        /// Compression of the blob's bytes (a [`Codec`] value).
        #[prost(enumeration = "Codec", tag = "2")]
        pub codec: i32,
    }
    /// One piece of a blob's (compressed) byte stream.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct Chunk {
        /// The bytes of this piece.
        #[prost(bytes = "vec", tag = "1")]
        pub data: ::prost::alloc::vec::Vec<u8>,
        /// Offset of `data` in the compressed stream.
        #[prost(uint64, tag = "2")]
        pub offset: u64,
        /// Set on the final chunk.
        #[prost(bool, tag = "3")]
        pub last: bool,
        /// On the final chunk: checksum of the uncompressed bytes.
        #[prost(fixed64, optional, tag = "4")]
        pub checksum: ::core::option::Option<u64>,
    }
    /// Compression of a blob's bytes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum Codec {
        /// No codec given (the proto3 default value).
        Unspecified = 0,
        /// The bytes are sent as they are.
        None = 1,
        /// The bytes are one zstd stream.
        Zstd = 2,
    }
    impl Codec {
        /// String value of the enum field names used in the ProtoBuf definition.
        ///
        /// The values are not transformed in any way and thus are considered stable
        /// (if the ProtoBuf definition does not change) and safe for programmatic use.
        pub fn as_str_name(&self) -> &'static str {
            match self {
                Self::Unspecified => "CODEC_UNSPECIFIED",
                Self::None => "CODEC_NONE",
                Self::Zstd => "CODEC_ZSTD",
            }
        }
        /// Creates an enum from field names used in the ProtoBuf definition.
        pub fn from_str_name(value: &str) -> ::core::option::Option<Self> {
            match value {
                "CODEC_UNSPECIFIED" => Some(Self::Unspecified),
                "CODEC_NONE" => Some(Self::None),
                "CODEC_ZSTD" => Some(Self::Zstd),
                _ => None,
            }
        }
    }
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
            size: 3,
            codec: Codec::Zstd as i32,
        };
        assert_eq!(header.encode_to_vec(), [0x08, 0x03, 0x10, 0x02]);
        assert_eq!(header.codec(), Codec::Zstd);

        let chunk = Chunk {
            data: vec![7],
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
