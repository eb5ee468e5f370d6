//! Connecting a client: to a TCP cluster (with its id, secrets and TLS) or to nodes on an
//! in-memory network.

#[cfg(feature = "tcp")]
use super::DEFAULT_CLUSTER_ID;
use dlm_core::NodeId;
#[cfg(feature = "tcp")]
use std::net::SocketAddr;

/// A client of a TCP cluster: `nodes` are the members and where they listen.
#[cfg(feature = "tcp")]
pub fn connect_tcp(
    nodes: impl IntoIterator<Item = (u64, SocketAddr)>,
) -> dlm_core::runtime::Client<dlm_transport_tcp::TcpClient> {
    connect_tcp_with(nodes, DEFAULT_CLUSTER_ID, |_| {})
}

/// Which cluster a TCP client joins: its id and, if its nodes have them, its secret and its
/// TLS settings. A bare cluster id converts into one with neither.
#[cfg(feature = "tcp")]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterAccess {
    /// The cluster's id.
    pub id: u64,
    /// The cluster's shared secret, if its nodes require one.
    pub secret: Option<dlm_transport_tcp::ClusterSecret>,
    /// The cluster's admin secret, for an operator's client: proved instead of `secret`, it
    /// allows the admin requests (locks, sessions, revoke).
    pub admin_secret: Option<dlm_transport_tcp::ClusterSecret>,
    /// TLS to the nodes, if they serve it (feature `tls`).
    #[cfg(feature = "tls")]
    pub tls: Option<dlm_transport_tcp::ClientTls>,
}

#[cfg(feature = "tcp")]
impl ClusterAccess {
    /// The cluster `id`, without a secret or TLS.
    pub fn new(id: u64) -> ClusterAccess {
        ClusterAccess {
            id,
            secret: None,
            admin_secret: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// With the cluster's shared secret.
    pub fn secret(mut self, secret: dlm_transport_tcp::ClusterSecret) -> ClusterAccess {
        self.secret = Some(secret);
        self
    }

    /// With the cluster's admin secret (for operators; see [`ServerBuilder::admin_secret`]).
    pub fn admin_secret(mut self, secret: dlm_transport_tcp::ClusterSecret) -> ClusterAccess {
        self.admin_secret = Some(secret);
        self
    }

    /// Over TLS (feature `tls`): the client checks each node's certificate against the CA in
    /// `tls`, and presents its own if `tls` has one (for nodes that require mutual TLS).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: dlm_transport_tcp::ClientTls) -> ClusterAccess {
        self.tls = Some(tls);
        self
    }
}

#[cfg(feature = "tcp")]
impl From<u64> for ClusterAccess {
    fn from(id: u64) -> ClusterAccess {
        ClusterAccess::new(id)
    }
}

/// Like [`connect_tcp`], with a cluster (an id, or a [`ClusterAccess`] with its secret) and a
/// chance to adjust the client's settings.
///
/// ```no_run
/// # fn run(secret: dlm::ClusterSecret) -> Result<(), Box<dyn std::error::Error>> {
/// use dlm::{connect_tcp_with, ClusterAccess, DEFAULT_CLUSTER_ID};
/// let nodes = [(1, "127.0.0.1:7001".parse()?)];
/// let plain = connect_tcp_with(nodes, DEFAULT_CLUSTER_ID, |_| {});
/// let access = ClusterAccess::new(DEFAULT_CLUSTER_ID).secret(secret);
/// let guarded = connect_tcp_with(nodes, access, |cfg| cfg.lease = std::time::Duration::from_secs(5));
/// # let _ = (plain, guarded);
/// # Ok(()) }
/// ```
#[cfg(feature = "tcp")]
pub fn connect_tcp_with(
    nodes: impl IntoIterator<Item = (u64, SocketAddr)>,
    cluster: impl Into<ClusterAccess>,
    tune: impl FnOnce(&mut dlm_core::runtime::ClientConfig),
) -> dlm_core::runtime::Client<dlm_transport_tcp::TcpClient> {
    use dlm_transport_tcp::{TcpClient, TcpClientConfig};
    let cluster = cluster.into();
    let nodes: std::collections::HashMap<NodeId, SocketAddr> =
        nodes.into_iter().map(|(id, a)| (NodeId(id), a)).collect();
    let mut cfg = dlm_core::runtime::ClientConfig::new(nodes.keys().copied());
    cfg.nodes.sort();
    tune(&mut cfg);
    let mut tcp = TcpClientConfig::new(cluster.id, nodes);
    tcp.secret = cluster.secret;
    tcp.admin_secret = cluster.admin_secret;
    #[cfg(feature = "tls")]
    {
        tcp.tls = cluster.tls;
    }
    let transport = TcpClient::new(tcp);
    dlm_core::runtime::Client::new(transport, cfg)
}

/// A client on an in-memory network of the nodes `members`.
#[cfg(feature = "mem")]
pub fn connect_mem(
    network: &dlm_transport_mem::MemNetwork,
    members: impl IntoIterator<Item = u64>,
) -> dlm_core::runtime::Client<dlm_transport_mem::MemClient> {
    connect_mem_with(network, members, |_| {})
}

/// Like [`connect_mem`], with a chance to adjust the client's settings (lease, deadlines,
/// back-off), as [`connect_tcp_with`] gives over TCP.
#[cfg(feature = "mem")]
pub fn connect_mem_with(
    network: &dlm_transport_mem::MemNetwork,
    members: impl IntoIterator<Item = u64>,
    configure: impl FnOnce(&mut dlm_core::runtime::ClientConfig),
) -> dlm_core::runtime::Client<dlm_transport_mem::MemClient> {
    let mut cfg = dlm_core::runtime::ClientConfig::new(members.into_iter().map(NodeId));
    configure(&mut cfg);
    dlm_core::runtime::Client::new(network.client(), cfg)
}
