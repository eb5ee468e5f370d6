//! [`TcpTransport`]: a node's side of the TCP network.

use crate::address::PeerAddr;
use crate::config::TcpConfig;
use crate::error::TcpError;
use crate::links::Links;
use crate::peer::LinkSettings;
use crate::server::{accept_loop, Shared};
use crate::wire::encode_frame;
use async_trait::async_trait;
use dlm_core::message::PeerMessage;
use dlm_core::runtime::{Incoming, PeerLinkState, Transport};
use dlm_core::{ClientResponse, ConnId, Membership, NodeId};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many inputs may wait for the node before connection readers stop reading (TCP then
/// pushes back on the senders).
const INCOMING_CAPACITY: usize = 4096;

/// The state of one peer's outbound queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Frames waiting to be written.
    pub queued: usize,
    /// Frames dropped because the queue was full.
    pub dropped: u64,
}

/// A node's TCP transport: a listener for peers and clients, and an outbound link per peer.
/// Why an admin secret alone is refused: members prove the client secret when they have no
/// secret of their own (and under mutual TLS any certificate of the CA passes for one), so a
/// client could join as a member and write to the log what an operator alone may.
pub const ADMIN_NEEDS_PEER_SECRET: &str = "an admin secret needs a peer secret as well \
     (--peer-secret-file, ServerBuilder::peer_secret): without one a client can pose as a \
     member and bypass it";

/// Dropping it closes the listener and every connection.
pub struct TcpTransport {
    shared: Arc<Shared>,
    incoming: mpsc::Receiver<Incoming>,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
    peers: Links,
}

impl TcpTransport {
    /// Listens on `config.listen` and starts a link to each peer. Must run inside a tokio runtime.
    pub async fn bind(config: TcpConfig) -> Result<TcpTransport, TcpError> {
        if config.admin_secret.is_some() && config.peer_secret.is_none() {
            return Err(TcpError::Settings(ADMIN_NEEDS_PEER_SECRET));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            let has_peers = config.peers.keys().any(|id| *id != config.id);
            if has_peers && tls.dial.is_none() {
                return Err(crate::tls::TlsConfigError::NoCaForPeers.into());
            }
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| TcpError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(INCOMING_CAPACITY);
        let shared = Arc::new(Shared::new(&config, tx));
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        let settings = LinkSettings {
            me: config.id,
            cluster_id: config.cluster_id,
            secret: config.member_secret(),
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
            connect_timeout: config.connect_timeout,
            handshake_timeout: config.handshake_timeout,
            live: config.liveness(),
            #[cfg(feature = "tls")]
            tls: config.tls.as_ref().and_then(|tls| tls.dial.clone()),
        };
        let peers = Links::new(settings, config.peer_queue_frames, shared.queue_bytes);
        let transport = TcpTransport {
            shared,
            incoming: rx,
            local_addr,
            accept,
            peers,
        };
        for (id, addr) in config.peers {
            transport.set_peer(id, addr);
        }
        tracing::info!(node = %config.id, addr = %local_addr, "listening");
        Ok(transport)
    }

    /// Where this node listens (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// Adds a peer, or moves it to a new address (its queued messages are kept). A host name
    /// ([`PeerAddr::Host`]) is resolved at every dial.
    pub fn set_peer(&self, id: NodeId, addr: impl Into<PeerAddr>) {
        self.peers.set(id, addr.into());
    }

    /// Where the link to peer `id` dials, if there is one.
    pub fn peer_addr(&self, id: NodeId) -> Option<PeerAddr> {
        self.peers.table().links.get(&id).map(|l| l.addr.clone())
    }

    /// The peers it has a link to, in id order.
    pub fn linked_peers(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.peers.table().links.keys().copied().collect();
        ids.sort();
        ids
    }

    /// The outbound queue of peer `id`, if it is known.
    pub fn peer_stats(&self, id: NodeId) -> Option<PeerStats> {
        self.peers.table().links.get(&id).map(|link| PeerStats {
            queued: link.queue.len(),
            dropped: link.queue.dropped(),
        })
    }

    /// Client connections open now.
    pub fn client_connections(&self) -> usize {
        self.shared.conns().len()
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[async_trait]
impl Transport for TcpTransport {
    async fn send(&self, msg: PeerMessage) {
        let to = msg.to;
        let frame = match encode_frame(&msg, self.shared.max_frame) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::error!(node = %self.shared.id, peer = %to, "message not sent: {e}");
                return;
            }
        };
        match self.peers.table().links.get(&to) {
            Some(link) => link.send(frame),
            None => {
                tracing::warn!(node = %self.shared.id, peer = %to, "message to an unknown peer dropped")
            }
        }
    }

    async fn reply(&self, conn: ConnId, response: ClientResponse) {
        let frame = match encode_frame(&response, self.shared.max_frame) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::error!(node = %self.shared.id, %conn, "reply not sent: {e}");
                return;
            }
        };
        // Also to the client's other connections, if it has opened more (see `client_conns`).
        if self.shared.conns().deliver(conn, response.client, frame) == 0 {
            tracing::debug!(node = %self.shared.id, %conn, "reply to a closed connection dropped")
        }
    }

    async fn recv(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    fn peer_links(&self) -> Vec<PeerLinkState> {
        self.peers
            .table()
            .links
            .iter()
            .map(|(id, link)| {
                let up = link.up.load(std::sync::atomic::Ordering::Relaxed);
                PeerLinkState::new(*id, up, link.queue.len(), link.queue.dropped())
            })
            .collect()
    }

    /// Dials members of the configuration it has no link to yet (at their address; one with
    /// an empty address keeps the start-up one) and drops the links to former members a few
    /// seconds later, once the leader's last messages to them have gone.
    fn members_changed(&self, members: &Membership) {
        self.peers.follow(members);
    }
}
