//! The effects a node has produced and its driver has not yet taken, kept in a field of their
//! own so that a handler can emit while it reads the configuration or its role's state.

use super::effects::{Effect, Persist};
use crate::message::{PeerBody, PeerMessage};
use crate::protocol::{ClientResponse, Rejection, Reply};
use crate::types::{ClientId, ConnId, NodeId, Seq, Term};
use std::collections::VecDeque;

/// Effects in the order they must be executed.
#[derive(Debug, Default)]
pub(super) struct Output {
    effects: VecDeque<Effect>,
}

impl Output {
    /// Queues any effect.
    pub fn push(&mut self, effect: Effect) {
        self.effects.push_back(effect);
    }

    /// Queues a persist.
    pub fn persist(&mut self, persist: Persist) {
        self.push(Effect::Persist(persist));
    }

    /// Queues a message from `from` to `to`, sent in `term`.
    pub fn send(&mut self, from: NodeId, to: NodeId, term: Term, body: PeerBody) {
        self.push(Effect::Send(PeerMessage {
            from,
            to,
            term,
            body,
        }));
    }

    /// Queues the answer to `(client, seq)` on connection `conn`.
    pub fn reply(
        &mut self,
        conn: ConnId,
        client: ClientId,
        seq: Seq,
        result: Result<Reply, Rejection>,
    ) {
        let response = ClientResponse {
            client,
            seq,
            result,
        };
        self.push(Effect::Reply { conn, response });
    }

    /// The next effect to execute.
    pub fn pop(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }
}
