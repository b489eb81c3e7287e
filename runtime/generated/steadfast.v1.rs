// @generated from proto/steadfast/v1/frame.proto by prost-build (default Config,
// bytes fields as Bytes),
// formatted with prettyplease. Do not edit: change the proto, then run
//   STEADFAST_BLESS=1 cargo test -p steadfast-tests --test runtime_proto
// and review the diff. Included by runtime/src/proto.rs as `steadfast::proto::v1`.
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
    /// Uncompressed size in bytes, as declared by the sender; unset when unknown.
    #[prost(uint64, optional, tag = "1")]
    pub size: ::core::option::Option<u64>,
    /// Compression of the blob's bytes.
    #[prost(enumeration = "Codec", tag = "2")]
    pub codec: i32,
}
/// One piece of a blob's (compressed) byte stream.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Chunk {
    /// The bytes of this piece.
    #[prost(bytes = "bytes", tag = "1")]
    pub data: ::prost::bytes::Bytes,
    /// Offset of `data` in the compressed stream.
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    /// Set on the final chunk.
    #[prost(bool, tag = "3")]
    pub last: bool,
    /// Reserved for codecs without a checksum of their own; unset with CODEC_ZSTD,
    /// whose frame carries zstd's content checksum (which receivers require).
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
