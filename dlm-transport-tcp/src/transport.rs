//! [`TcpTransport`]: a node's side of the TCP network.

use crate::address::PeerAddr;
use crate::config::TcpConfig;
use crate::datagram::node::NodeDatagrams;
use crate::datagram::{DatagramStats, Datagrams};
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
    /// The task taking datagrams, if they are on.
    datagrams: Option<JoinHandle<()>>,
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
        let endpoint = datagram_endpoint(&config, local_addr).await;
        let (tx, rx) = mpsc::channel(INCOMING_CAPACITY);
        let shared = Arc::new(Shared::new(&config, tx, endpoint.clone()));
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        let datagrams = endpoint
            .clone()
            .map(|endpoint| tokio::spawn(endpoint.serve(shared.clone())));
        let mut live = config.liveness();
        if endpoint.is_none() {
            live = live.with_datagrams(Datagrams::Never);
        }
        let settings = LinkSettings {
            me: config.id,
            cluster_id: config.cluster_id,
            secret: config.member_secret(),
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
            connect_timeout: config.connect_timeout,
            handshake_timeout: config.handshake_timeout,
            live,
            datagrams: endpoint,
            #[cfg(feature = "tls")]
            tls: config.tls.as_ref().and_then(|tls| tls.dial.clone()),
        };
        let peers = Links::new(settings, config.peer_queue_frames, shared.queue_bytes);
        let transport = TcpTransport {
            shared,
            incoming: rx,
            local_addr,
            accept,
            datagrams,
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

    /// This node's datagrams so far; `None` when it takes none (`TcpConfig::datagrams` is
    /// `Never`, TLS is on, or the UDP socket could not be bound).
    pub fn datagram_stats(&self) -> Option<DatagramStats> {
        let endpoint = self.shared.datagrams.as_ref()?;
        Some(endpoint.counters.snapshot())
    }
}

/// The node's datagram endpoint on the TCP listener's address, unless datagrams are off.
/// Never fails the start: a node that cannot bind it says so once and runs on TCP alone.
async fn datagram_endpoint(config: &TcpConfig, at: SocketAddr) -> Option<Arc<NodeDatagrams>> {
    if config.datagrams_in_effect() == Datagrams::Never {
        if config.datagrams != Datagrams::Never {
            tracing::info!(node = %config.id, "datagram copies off under TLS");
        }
        return None;
    }
    match NodeDatagrams::bind(at, config.datagrams.copies()).await {
        Ok(endpoint) => Some(Arc::new(endpoint)),
        Err(e) => {
            tracing::warn!(node = %config.id, %at, "cannot bind UDP beside the listener ({e}): running without datagram copies");
            None
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(datagrams) = &self.datagrams {
            datagrams.abort();
        }
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
        let conns = self.shared.conns();
        // As a datagram too, while the client sends its requests that way (see `datagram`).
        if let (Some(endpoint), Some(payload)) = (
            &self.shared.datagrams,
            frame.get(crate::wire::FRAME_HEADER_LEN..),
        ) {
            let now = tokio::time::Instant::now();
            for token in conns.datagram_tokens(conn, response.client) {
                if endpoint.reply(&token, payload, now) {
                    break;
                }
            }
        }
        // Also to the client's other connections, if it has opened more (see `client_conns`).
        if conns.deliver(conn, response.client, frame) == 0 {
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
