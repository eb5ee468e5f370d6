//! Settings of a node's transport and of a client.

use crate::auth::ClusterSecret;
use dlm_core::NodeId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The default largest frame payload: 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// A node's TCP transport settings. Build with [`TcpConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// This node.
    pub id: NodeId,
    /// Where to listen for peers and clients (port 0 picks a free port; see
    /// [`crate::TcpTransport::local_addr`]).
    pub listen: SocketAddr,
    /// The other nodes and where they listen (an entry for `id` itself is ignored).
    pub peers: HashMap<NodeId, SocketAddr>,
    /// Connections from another cluster are refused.
    pub cluster_id: u64,
    /// With a secret, peers and clients must prove they know it (and this node proves it to
    /// them); callers without it are refused. Every node and client of a cluster needs the same.
    pub secret: Option<ClusterSecret>,
    /// A secret for members only. With it, a caller that says it is a member must prove this
    /// one instead (and this node proves it when it connects to its peers), so a client that
    /// knows `secret` cannot pose as a node. Every node needs the same; clients never get it.
    pub peer_secret: Option<ClusterSecret>,
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// Frames queued per peer before the oldest are dropped.
    pub peer_queue_frames: usize,
    /// Bytes queued per peer (or per client connection) before the oldest frames are dropped.
    pub queue_bytes: usize,
    /// Replies queued per client connection before the oldest are dropped.
    pub conn_queue_frames: usize,
    /// First wait before reconnecting to a peer; doubles on each failure.
    pub backoff_min: Duration,
    /// Longest wait between reconnection attempts.
    pub backoff_max: Duration,
    /// Limit for a TCP connect.
    pub connect_timeout: Duration,
    /// Limit for the handshake, both ways.
    pub handshake_timeout: Duration,
    /// Most client connections served at once; past it a client's handshake is refused with
    /// the reason (it may try another node or later). Peers are always admitted.
    pub max_clients: usize,
    /// Most connections still in their handshake; past it the oldest is closed, so a flood of
    /// silent sockets cannot hold descriptors for the handshake time-out, nor lock out clients
    /// that send their hello at once.
    pub max_handshaking: usize,
}

impl TcpConfig {
    /// The secret a member proves, and is asked for: the member secret, or else the shared one.
    pub(crate) fn member_secret(&self) -> Option<ClusterSecret> {
        self.peer_secret.clone().or_else(|| self.secret.clone())
    }

    /// Defaults: no secret, 4 MiB frames, 1024 frames / 64 MiB queued per peer, 1024 replies per
    /// client connection, backoff 50 ms to 5 s, 2 s connect and 5 s handshake limits, 1024
    /// clients, 128 connections in their handshake, no peers.
    pub fn new(id: NodeId, listen: SocketAddr, cluster_id: u64) -> TcpConfig {
        TcpConfig {
            id,
            listen,
            peers: HashMap::new(),
            cluster_id,
            secret: None,
            peer_secret: None,
            max_frame: DEFAULT_MAX_FRAME,
            peer_queue_frames: 1024,
            queue_bytes: 64 * 1024 * 1024,
            conn_queue_frames: 1024,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            max_clients: 1024,
            max_handshaking: 128,
        }
    }
}

/// A client's TCP settings.
#[derive(Clone, Debug)]
pub struct TcpClientConfig {
    /// The cluster to talk to; a node of another cluster refuses the connection.
    pub cluster_id: u64,
    /// The cluster's secret, if its nodes have one: the client proves it knows it, and hangs up
    /// on a node that cannot prove the same.
    pub secret: Option<ClusterSecret>,
    /// Where each node listens.
    pub nodes: HashMap<NodeId, SocketAddr>,
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// Requests queued per connection before calls fail at once.
    pub queue_frames: usize,
    /// Limit for a TCP connect.
    pub connect_timeout: Duration,
    /// Limit for the handshake.
    pub handshake_timeout: Duration,
}

impl TcpClientConfig {
    /// Defaults: no secret, 4 MiB frames, 4096 queued requests, 2 s connect and 5 s handshake
    /// limits.
    pub fn new(cluster_id: u64, nodes: HashMap<NodeId, SocketAddr>) -> TcpClientConfig {
        TcpClientConfig {
            cluster_id,
            secret: None,
            nodes,
            max_frame: DEFAULT_MAX_FRAME,
            queue_frames: 4096,
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
        }
    }
}
