//! What goes into the client core and what comes out of it.

use super::call::{CallId, CallOp, Done};
use super::error::{ClientError, NodeCause};
use crate::names::LockName;
use crate::protocol::{ClientRequest, ClientResponse};
use crate::types::{ClientId, FencingToken, NodeId, Seq, Time};

/// Something that happened to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The caller starts a call under its own id.
    Start {
        /// The caller's id for it.
        call: CallId,
        /// What to do.
        op: CallOp,
    },
    /// The caller no longer waits for this call (its future was dropped or timed out). The core
    /// undoes what the call may have left at the service: an acquire is withdrawn, and given
    /// back if it was granted; a release goes on in the background; an append or read is
    /// forgotten (it may still take effect once, never twice).
    Abandon(CallId),
    /// A node answered a request.
    Answer {
        /// The node.
        node: NodeId,
        /// Its answer.
        response: ClientResponse,
    },
    /// A request could not be delivered to `node`, or its connection broke before the answer.
    Failed {
        /// The node.
        node: NodeId,
        /// The request's session.
        client: ClientId,
        /// The request's seq.
        seq: Seq,
        /// What happened.
        cause: NodeCause,
    },
    /// Time passed.
    Tick,
}

/// What the core asks of its driver, or tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Send `request` to `node` and report the answer or failure.
    Send {
        /// The node.
        node: NodeId,
        /// The request.
        request: ClientRequest,
    },
    /// A call ended.
    Done {
        /// The caller's id for it.
        call: CallId,
        /// How.
        result: Result<Done, ClientError>,
    },
    /// A held lock's lease was renewed: it is certainly held until `safe_until`.
    Renewed {
        /// The lock.
        lock: LockName,
        /// The grant's token.
        token: FencingToken,
        /// The new end of its safe window.
        safe_until: Time,
    },
    /// A held lock is lost: the service no longer lists it, its lease ran out unconfirmed, or
    /// the session it was held in expired.
    Lost {
        /// The lock.
        lock: LockName,
        /// The grant's token.
        token: FencingToken,
        /// How it was lost.
        reason: LossReason,
    },
}

/// Why a held lock was lost. Whatever the reason, the grant's token is no longer good: work
/// under it must stop, and the resources it guards refuse it once they see a newer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// An operator revoked the grant (`dlm revoke`): the lock went to the next waiter under a
    /// newer token, and the service refuses this grant's appends and releases as revoked.
    Revoked,
    /// A keep-alive answer no longer lists the grant: its lease ran out at the service.
    NotListed,
    /// No keep-alive answer confirmed the lease before its safe window ended (no node could
    /// be reached in time): the service may have let it expire.
    LeaseRanOut,
    /// The service expired the whole session, and every lock held in it.
    SessionExpired,
}

impl std::fmt::Display for LossReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossReason::Revoked => "revoked by an operator",
            LossReason::NotListed => "its lease expired at the service",
            LossReason::LeaseRanOut => "its lease ran out before a keep-alive confirmed it",
            LossReason::SessionExpired => "the session expired at the service",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::LossReason;

    /// `dlm lock` prints the reason to whoever watches the command: each says its own thing.
    #[test]
    fn each_loss_reason_says_what_happened() {
        let all = [
            LossReason::Revoked,
            LossReason::NotListed,
            LossReason::LeaseRanOut,
            LossReason::SessionExpired,
        ];
        let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert!(texts[0].contains("revoked"), "{texts:?}");
        assert!(texts[2].contains("keep-alive"), "{texts:?}");
        assert!(texts[3].contains("session"), "{texts:?}");
        let distinct: std::collections::BTreeSet<&String> = texts.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{texts:?}");
    }
}
