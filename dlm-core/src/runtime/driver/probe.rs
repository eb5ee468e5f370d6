//! Trace events for the commit-latency breakdown (`examples/breakdown.rs`): where one commit's
//! time goes between a client's request reaching the leader and the leader's reply. Target
//! [`PROBE_TARGET`], level TRACE: off unless a subscriber asks for them, and then each is one
//! event with the node, a step name and the index or sequence number that ties the steps of
//! one commit together. Heartbeats and rejected appends are left out; they carry no commit.

use crate::message::{AppendOutcome, PeerBody, PeerMessage};
use crate::protocol::{ClientRequest, ClientResponse};
use crate::types::NodeId;

/// The `tracing` target of the probe's events.
pub const PROBE_TARGET: &str = "dlm_probe";

fn on() -> bool {
    tracing::enabled!(target: PROBE_TARGET, tracing::Level::TRACE)
}

/// A step of one node: `step` names it, `at` is the log index or request seq it concerns, and
/// `peer` the other node (0 for none).
fn event(node: NodeId, step: &'static str, peer: NodeId, at: u64) {
    tracing::trace!(target: PROBE_TARGET, node = node.0, step, peer = peer.0, at);
}

/// A peer message went to the transport (`out`) or came in from it.
pub(super) fn peer(node: NodeId, msg: &PeerMessage, out: bool) {
    if !on() {
        return;
    }
    let other = if out { msg.to } else { msg.from };
    match (&msg.body, out) {
        (PeerBody::AppendEntries { prev, entries, .. }, _) if !entries.is_empty() => {
            let last = prev.index.0 + entries.len() as u64;
            let step = if out { "append_out" } else { "append_in" };
            event(node, step, other, last);
        }
        (
            PeerBody::AppendResponse {
                outcome: AppendOutcome::Accepted { match_index },
                ..
            },
            _,
        ) => {
            let step = if out { "ack_out" } else { "ack_in" };
            event(node, step, other, match_index.0);
        }
        _ => {}
    }
}

/// A client request was handed to the node.
pub(super) fn request_in(node: NodeId, request: &ClientRequest) {
    if on() {
        event(node, "request_in", NodeId(0), request.seq.0);
    }
}

/// A reply went to the transport.
pub(super) fn reply_out(node: NodeId, response: &ClientResponse) {
    if on() {
        event(node, "reply_out", NodeId(0), response.seq.0);
    }
}

/// A sync of the node's storage started or finished.
pub(super) fn sync(node: NodeId, done: bool) {
    if on() {
        let step = if done { "sync_done" } else { "sync_start" };
        event(node, step, NodeId(0), 0);
    }
}
