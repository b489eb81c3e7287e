//! The frames of `Dispatch.Call` as the blob and heartbeat glue sees them: the same
//! impls the codegen writes for a generated `request_blob` + `response_blob` method.

use crate::blob::glue::{Upload, UploadPart};
use crate::frame::{BlobFrame, Frame, FramePart};
use crate::proto::v1::{
    BlobHeader, CallHead, CallResult, Chunk, DispatchFrame, DispatchUpload, Heartbeat,
    dispatch_frame, dispatch_upload,
};

impl Upload for DispatchUpload {
    type Head = CallHead;

    fn head(head: CallHead) -> Self {
        DispatchUpload {
            kind: Some(dispatch_upload::Kind::Head(head)),
        }
    }

    fn blob(header: BlobHeader) -> Self {
        DispatchUpload {
            kind: Some(dispatch_upload::Kind::Blob(header)),
        }
    }

    fn chunk(chunk: Chunk) -> Self {
        DispatchUpload {
            kind: Some(dispatch_upload::Kind::Chunk(chunk)),
        }
    }

    fn into_part(self) -> Option<UploadPart<CallHead>> {
        Some(match self.kind? {
            dispatch_upload::Kind::Head(head) => UploadPart::Head(head),
            dispatch_upload::Kind::Blob(header) => UploadPart::Blob(header),
            dispatch_upload::Kind::Chunk(chunk) => UploadPart::Chunk(chunk),
        })
    }
}

impl Frame for DispatchFrame {
    type Message = CallResult;

    fn heartbeat(heartbeat: Heartbeat) -> Self {
        DispatchFrame {
            kind: Some(dispatch_frame::Kind::Heartbeat(heartbeat)),
        }
    }

    fn message(message: CallResult) -> Self {
        DispatchFrame {
            kind: Some(dispatch_frame::Kind::Message(message)),
        }
    }

    fn into_part(self) -> Option<FramePart<CallResult>> {
        Some(match self.kind? {
            dispatch_frame::Kind::Heartbeat(heartbeat) => FramePart::Heartbeat(heartbeat),
            dispatch_frame::Kind::Message(message) => FramePart::Message(message),
            dispatch_frame::Kind::Blob(header) => FramePart::Blob(header),
            dispatch_frame::Kind::Chunk(chunk) => FramePart::Chunk(chunk),
        })
    }
}

impl BlobFrame for DispatchFrame {
    fn blob(header: BlobHeader) -> Self {
        DispatchFrame {
            kind: Some(dispatch_frame::Kind::Blob(header)),
        }
    }

    fn chunk(chunk: Chunk) -> Self {
        DispatchFrame {
            kind: Some(dispatch_frame::Kind::Chunk(chunk)),
        }
    }
}
