//! [`Ack`]: which outstanding requests a response acknowledges.

use std::fmt;
use std::sync::Arc;

type Rule<Req, Resp> = dyn Fn(&Resp, &Req) -> usize + Send + Sync;

/// The rule that decides, for each response, how many of the oldest
/// outstanding requests it acknowledges. An acknowledged request is dropped
/// from the session's unacknowledged buffer and never re-sent.
///
/// A response can only acknowledge requests sent on its own attempt: whatever
/// the rule returns is capped at the number of requests that attempt has sent
/// and not yet seen acknowledged.
pub struct Ack<Req, Resp> {
    kind: Kind<Req, Resp>,
}

enum Kind<Req, Resp> {
    OldestPerResponse,
    AllSent,
    With(Arc<Rule<Req, Resp>>),
}

impl<Req, Resp> Ack<Req, Resp> {
    /// Each response acknowledges the oldest outstanding request: the
    /// request/response-over-a-stream pattern (one answer per request, in
    /// order). The default.
    ///
    /// The session cannot tell an answer from a message the server sends of
    /// its own accord: with this rule such a message acknowledges (and so
    /// drops) a request the server may never have read. For a server that
    /// sends messages of its own, use [`with`](Self::with) with a rule that
    /// returns 0 for them.
    pub fn oldest_per_response() -> Self {
        Ack {
            kind: Kind::OldestPerResponse,
        }
    }

    /// Each response acknowledges every request its attempt has sent: for a
    /// client-streaming call, whose one response answers the whole stream.
    pub fn all_sent() -> Self {
        Ack {
            kind: Kind::AllSent,
        }
    }

    /// A rule of the application's: `rule(response, oldest)` returns how many
    /// of the oldest outstanding requests `response` acknowledges (0: none),
    /// `oldest` being the oldest of them. Not called when no request is
    /// outstanding.
    ///
    /// ```
    /// use steadfast::session::Ack;
    /// // Requests carry a sequence number; a response tells the last one it covers.
    /// let ack = Ack::with(|last: &u64, oldest: &u64| (last + 1).saturating_sub(*oldest) as usize);
    /// # let _: Ack<u64, u64> = ack;
    /// ```
    pub fn with(rule: impl Fn(&Resp, &Req) -> usize + Send + Sync + 'static) -> Self {
        Ack {
            kind: Kind::With(Arc::new(rule)),
        }
    }

    /// How many requests `response` acknowledges when `sent` requests of its
    /// attempt are outstanding, `oldest` being the first of them: the rule's
    /// answer capped at `sent`.
    pub(crate) fn count(&self, response: &Resp, oldest: Option<&Req>, sent: usize) -> usize {
        let Some(oldest) = oldest.filter(|_| sent > 0) else {
            return 0;
        };
        let n = match &self.kind {
            Kind::OldestPerResponse => 1,
            Kind::AllSent => sent,
            Kind::With(rule) => rule(response, oldest),
        };
        n.min(sent)
    }
}

impl<Req, Resp> Default for Ack<Req, Resp> {
    fn default() -> Self {
        Ack::oldest_per_response()
    }
}

impl<Req, Resp> Clone for Ack<Req, Resp> {
    fn clone(&self) -> Self {
        let kind = match &self.kind {
            Kind::OldestPerResponse => Kind::OldestPerResponse,
            Kind::AllSent => Kind::AllSent,
            Kind::With(rule) => Kind::With(Arc::clone(rule)),
        };
        Ack { kind }
    }
}

impl<Req, Resp> fmt::Debug for Ack<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::OldestPerResponse => "Ack::oldest_per_response",
            Kind::AllSent => "Ack::all_sent",
            Kind::With(_) => "Ack::with(..)",
        })
    }
}
