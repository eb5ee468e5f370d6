//! The seams between the runtime and a network: [`Transport`] for a node, [`ClientTransport`] for
//! a client. dlm-transport-mem and dlm-transport-tcp implement both.

use crate::membership::Membership;
use crate::message::PeerMessage;
use crate::protocol::{ClientRequest, ClientResponse, Op, Rejection};
use crate::types::{ConnId, NodeId};
use async_trait::async_trait;

/// Something that arrived at a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A message from a peer node.
    Peer(PeerMessage),
    /// A request from a client connection.
    Client {
        /// The connection, for the reply.
        conn: ConnId,
        /// The request.
        request: ClientRequest,
    },
    /// A client request the transport refused and answered itself (an operator's request from
    /// a connection without the admin credential), told to the node for its metrics only.
    Refused {
        /// What was asked.
        op: Op,
        /// The refusal sent back.
        rejection: Rejection,
    },
}

/// Why a transport could not deliver.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The destination is unknown to this transport.
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    /// The connection failed or was closed; the caller may retry.
    #[error("connection to node {node} failed: {reason}")]
    Connection {
        /// The node.
        node: NodeId,
        /// What happened.
        reason: String,
    },
    /// The peer speaks another protocol version, belongs to another cluster, or failed the
    /// cluster secret's authentication (either way round).
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// The transport was shut down.
    #[error("transport closed")]
    Closed,
}

/// What a transport knows about its link to one peer, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerLinkState {
    /// The peer.
    pub peer: NodeId,
    /// Whether a connection to it is up now.
    pub up: bool,
    /// Messages waiting to be written to it.
    pub queued: usize,
    /// Messages dropped because its queue was full.
    pub dropped: u64,
}

impl PeerLinkState {
    /// The link to `peer`: whether it is up, what waits on it, what it dropped.
    pub fn new(peer: NodeId, up: bool, queued: usize, dropped: u64) -> PeerLinkState {
        PeerLinkState {
            peer,
            up,
            queued,
            dropped,
        }
    }
}

/// A node's network: it sends peer messages and client replies, and receives both kinds of input.
///
/// Sending is best effort and must not wait on the network: implementations queue (with a bound,
/// dropping when a peer is slow or gone), because the protocol recovers lost messages and a node
/// must never stall on one peer.
#[async_trait]
pub trait Transport: Send + 'static {
    /// Queues a message for a peer.
    async fn send(&self, msg: PeerMessage);
    /// Queues the answer for a client connection (dropped if the connection is gone).
    async fn reply(&self, conn: ConnId, response: ClientResponse);
    /// Waits for the next input. `None` means the transport has shut down.
    async fn recv(&mut self) -> Option<Incoming>;

    /// The state of each peer link, for metrics (asked at most once per scrape, so it may
    /// allocate). A transport without links to speak of keeps the default: none.
    fn peer_links(&self) -> Vec<PeerLinkState> {
        Vec::new()
    }

    /// The node's configuration in force changed (and once at start, after recovery): a
    /// transport that dials its peers connects to members it does not know yet at their
    /// address (an empty one means "as given at start-up") and lets go of ids no longer in
    /// it. Called before the effects of the input that changed it are executed, so the first
    /// message to a new member finds its link. A transport without links keeps the default.
    fn members_changed(&self, members: &Membership) {
        let _ = members;
    }
}

/// A client's network: it sends a request to one node and waits for that node's answer.
///
/// Many calls may be outstanding at once (implementations match answers to calls by
/// `(client, seq)`). Time-outs, retries and leader-finding are the caller's business.
#[async_trait]
pub trait ClientTransport: Send + Sync + 'static {
    /// Sends `request` to `node` and waits for the answer.
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError>;
}
