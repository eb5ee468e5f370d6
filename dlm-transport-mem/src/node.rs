//! A node's end of the in-process network.

use crate::faults::Endpoint;
use crate::network::{MemNetwork, Payload};
use async_trait::async_trait;
use dlm_core::message::PeerMessage;
use dlm_core::runtime::{Incoming, Transport};
use dlm_core::{ClientResponse, ConnId, NodeId};
use tokio::sync::mpsc;

/// A node's transport on a [`MemNetwork`]. Client connections are numbered by the client's
/// pseudo-id: `ConnId(n)` is [`Endpoint::Client`]`(n)`.
pub struct MemNode {
    id: NodeId,
    net: MemNetwork,
    inbox: mpsc::UnboundedReceiver<Incoming>,
}

impl MemNode {
    pub(crate) fn new(
        id: NodeId,
        net: MemNetwork,
        inbox: mpsc::UnboundedReceiver<Incoming>,
    ) -> Self {
        MemNode { id, net, inbox }
    }

    /// The next input if one is already here, without waiting (for tests and harnesses).
    pub fn try_recv(&mut self) -> Option<Incoming> {
        self.inbox.try_recv().ok()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
}

#[async_trait]
impl Transport for MemNode {
    async fn send(&self, msg: PeerMessage) {
        let to = Endpoint::Node(msg.to);
        self.net.deliver(
            Endpoint::Node(self.id),
            to,
            Payload::ToNode(Incoming::Peer(msg)),
        );
    }

    async fn reply(&self, conn: ConnId, response: ClientResponse) {
        let payload = Payload::ToClient {
            from: self.id,
            response,
        };
        self.net.deliver(
            Endpoint::Node(self.id),
            Endpoint::Client(conn.get()),
            payload,
        );
    }

    async fn recv(&mut self) -> Option<Incoming> {
        self.inbox.recv().await
    }
}
