//! A frame type like the generated ones, for the tests of the frames and of
//! the heartbeat server and client.

use super::{Frame, FramePart};
use crate::proto::v1::Heartbeat;

/// Stands for a method's own response message.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct TestMessage {
    #[prost(string, tag = "1")]
    pub value: String,
}

impl TestMessage {
    pub(crate) fn new(value: &str) -> Self {
        TestMessage {
            value: value.to_owned(),
        }
    }
}

/// What the codegen emits for `message TestFrame { oneof kind { Heartbeat heartbeat = 1; TestMessage message = 2; } }`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub(crate) struct TestFrame {
    #[prost(oneof = "test_frame::Kind", tags = "1, 2")]
    pub kind: Option<test_frame::Kind>,
}

pub(crate) mod test_frame {
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub(crate) enum Kind {
        #[prost(message, tag = "1")]
        Heartbeat(crate::proto::v1::Heartbeat),
        #[prost(message, tag = "2")]
        Message(super::TestMessage),
    }
}

impl Frame for TestFrame {
    type Message = TestMessage;

    fn heartbeat(heartbeat: Heartbeat) -> Self {
        TestFrame {
            kind: Some(test_frame::Kind::Heartbeat(heartbeat)),
        }
    }

    fn message(message: TestMessage) -> Self {
        TestFrame {
            kind: Some(test_frame::Kind::Message(message)),
        }
    }

    fn into_part(self) -> Option<FramePart<TestMessage>> {
        match self.kind? {
            test_frame::Kind::Heartbeat(heartbeat) => Some(FramePart::Heartbeat(heartbeat)),
            test_frame::Kind::Message(message) => Some(FramePart::Message(message)),
        }
    }
}
