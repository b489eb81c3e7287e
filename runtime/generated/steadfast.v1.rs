// @generated from proto/steadfast/v1/{frame,dispatch}.proto by prost-build (default Config,
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
    /// Offset of `data` in the blob's bytes on the wire: the compressed stream with
    /// CODEC_ZSTD, the blob's own bytes with CODEC_NONE.
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    /// Set on the final chunk.
    #[prost(bool, tag = "3")]
    pub last: bool,
    /// For codecs without a checksum of their own. With CODEC_NONE: set on the last
    /// chunk, to the XXH3-64 (seed 0) of all the blob's bytes; receivers refuse a
    /// last chunk without it or with another one (DATA_LOSS) and ignore it on other
    /// chunks. Unset with CODEC_ZSTD, whose frame carries zstd's content checksum
    /// (which receivers require).
    #[prost(fixed64, optional, tag = "4")]
    pub checksum: ::core::option::Option<u64>,
}
/// Compression of a blob's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum Codec {
    /// No codec given (the proto3 default value).
    Unspecified = 0,
    /// The bytes are sent as they are; the last chunk's `checksum` is the XXH3-64
    /// (seed 0) of all of them.
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
/// The first frame of a dispatch call.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct CallHead {
    /// The function's params, as JSON (UTF-8).
    #[prost(bytes = "bytes", tag = "1")]
    pub params: ::prost::bytes::Bytes,
}
/// What a dispatch function returned.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct CallResult {
    /// The function's result, as JSON (UTF-8).
    #[prost(bytes = "bytes", tag = "1")]
    pub result: ::prost::bytes::Bytes,
}
/// A frame of the request stream of `Dispatch.Call`: the head, then the blob's
/// header and its chunks when a blob is sent.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct DispatchUpload {
    /// What the frame carries.
    #[prost(oneof = "dispatch_upload::Kind", tags = "1, 2, 3")]
    pub kind: ::core::option::Option<dispatch_upload::Kind>,
}
/// Nested message and enum types in `DispatchUpload`.
pub mod dispatch_upload {
    /// What the frame carries.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Oneof)]
    pub enum Kind {
        /// The params (first).
        #[prost(message, tag = "1")]
        Head(super::CallHead),
        /// The header of the input blob (second, when a blob is sent).
        #[prost(message, tag = "2")]
        Blob(super::BlobHeader),
        /// A chunk of the input blob.
        #[prost(message, tag = "3")]
        Chunk(super::Chunk),
    }
}
/// A frame of the response stream of `Dispatch.Call`: heartbeats, the result,
/// then the blob's header and its chunks when a blob comes back.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DispatchFrame {
    /// What the frame carries.
    #[prost(oneof = "dispatch_frame::Kind", tags = "1, 2, 3, 4")]
    pub kind: ::core::option::Option<dispatch_frame::Kind>,
}
/// Nested message and enum types in `DispatchFrame`.
pub mod dispatch_frame {
    /// What the frame carries.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Kind {
        /// The function is still working.
        #[prost(message, tag = "1")]
        Heartbeat(super::Heartbeat),
        /// The result (once).
        #[prost(message, tag = "2")]
        Message(super::CallResult),
        /// The header of the output blob (after the result, when a blob comes back).
        #[prost(message, tag = "3")]
        Blob(super::BlobHeader),
        /// A chunk of the output blob.
        #[prost(message, tag = "4")]
        Chunk(super::Chunk),
    }
}
/// The request of `Dispatch.Describe`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct DescribeRequest {}
/// The functions a server offers.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DescribeReply {
    /// Sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub functions: ::prost::alloc::vec::Vec<FunctionInfo>,
}
/// One function a dispatch server offers.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct FunctionInfo {
    /// Its name, the value of `x-func-name` that calls it.
    #[prost(string, tag = "1")]
    pub name: ::prost::alloc::string::String,
    /// What it does (its doc comment); may be empty.
    #[prost(string, tag = "2")]
    pub doc: ::prost::alloc::string::String,
    /// Its heartbeat interval in milliseconds; 0 when it sends no heartbeats.
    #[prost(uint32, tag = "3")]
    pub heartbeat_ms: u32,
    /// Whether a call must send an input blob after the head.
    #[prost(bool, tag = "4")]
    pub takes_blob: bool,
    /// Whether the result is followed by an output blob.
    #[prost(bool, tag = "5")]
    pub returns_blob: bool,
    /// JSON Schema of the params; empty when the server was built without schemas.
    #[prost(string, tag = "6")]
    pub params_schema: ::prost::alloc::string::String,
    /// JSON Schema of the result; empty when the server was built without schemas.
    #[prost(string, tag = "7")]
    pub result_schema: ::prost::alloc::string::String,
    /// Set on the server's default function, the one called without `x-func-name`.
    #[prost(bool, tag = "8")]
    pub is_default: bool,
}
