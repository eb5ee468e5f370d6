//! The embedding API: start a node with a builder, connect a client with one call.

#[cfg(any(feature = "tcp", feature = "mem"))]
mod connect;
#[cfg(feature = "tcp")]
mod join;
#[cfg(feature = "tcp")]
mod join_record;

#[cfg(feature = "mem")]
pub use connect::{connect_mem, connect_mem_with};
#[cfg(feature = "tcp")]
pub use connect::{connect_tcp, connect_tcp_with, ClusterAccess};

#[cfg(feature = "tcp")]
pub use join::{JoinError, JOIN_WITHIN};

use crate::data_dir::{self, DataDirError, Owner};
use dlm_core::runtime::{
    spawn_server, FileStorage, MemStorage, ServerError, ServerHandle, ServerOptions, StorageError,
};
use dlm_core::{Config, ConfigError, NodeId, NodeStatus};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The cluster id used when none is given. Nodes and clients of different clusters refuse each
/// other at the handshake.
pub const DEFAULT_CLUSTER_ID: u64 = 0x646c_6d00_0000_0001;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `id` was not set.
    #[error("the node id is not set (ServerBuilder::id)")]
    MissingId,
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory could not be opened or recovered.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The node could not start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The TCP transport could not start.
    #[cfg(feature = "tcp")]
    #[error(transparent)]
    Tcp(#[from] dlm_transport_tcp::TcpError),
    /// The data directory belongs to another node, or says nothing readable about whose it is.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The node was given its own id as a peer. It would otherwise count itself once, and a
    /// three-node list given to each node as-is would make every node wait for a vote from a
    /// member that is itself.
    #[error("node {0} is listed as its own peer: list only the other members")]
    SelfAsPeer(NodeId),
    /// The metrics listener could not bind its address.
    #[cfg(feature = "metrics")]
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsBindError),
    /// Joining a running cluster failed (see [`ServerBuilder::join`]).
    #[cfg(feature = "tcp")]
    #[error(transparent)]
    Join(#[from] JoinError),
    /// The same peer id was given two different addresses.
    #[error("peer {id} is given two addresses, {first} and {second}: every member needs one id")]
    ConflictingPeer {
        /// The peer.
        id: NodeId,
        /// The address given first.
        first: String,
        /// The address given later.
        second: String,
    },
}

/// Where a peer listens, as given to the builder.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PeerAt {
    Socket(SocketAddr),
    Host(String),
}

impl std::fmt::Display for PeerAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAt::Socket(addr) => addr.fmt(f),
            PeerAt::Host(host) => f.write_str(host),
        }
    }
}

/// Builds a node: its id, its peers, where it keeps its data, and how it is tuned.
///
/// Without [`ServerBuilder::data_dir`] the node keeps its log in memory and loses it when it
/// stops: fine for tests, wrong for anything that must survive a crash.
#[derive(Debug, Default)]
pub struct ServerBuilder {
    id: Option<NodeId>,
    peers: BTreeMap<NodeId, Option<PeerAt>>,
    /// A peer id given a second, different address: reported by [`ServerBuilder::config`].
    conflicting_peer: Option<(NodeId, PeerAt, PeerAt)>,
    data_dir: Option<PathBuf>,
    cluster_id: Option<u64>,
    #[cfg(feature = "tcp")]
    secret: Option<dlm_transport_tcp::ClusterSecret>,
    #[cfg(feature = "tcp")]
    peer_secret: Option<dlm_transport_tcp::ClusterSecret>,
    #[cfg(feature = "metrics")]
    metrics: Option<SocketAddr>,
    #[cfg(feature = "tcp")]
    admin_secret: Option<dlm_transport_tcp::ClusterSecret>,
    #[cfg(feature = "tls")]
    tls: Option<dlm_transport_tcp::NodeTls>,
    tuning: Vec<Tuning>,
    /// Where others reach this node, if not where it listens (see [`ServerBuilder::advertise`]).
    advertise: Option<String>,
    /// A member to ask to be added through, for a node joining a running cluster.
    #[cfg(feature = "tcp")]
    join: Option<join::Join>,
}

#[derive(Debug)]
enum Tuning {
    Election(Duration),
    Heartbeat(Duration),
    LockDelay(Duration),
    LeaseCap(Duration),
    Seed(u64),
    SnapshotEvery(u64),
    WatchHistory(usize),
}

impl ServerBuilder {
    /// This node's id (lower ids are preferred as leader).
    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(NodeId(id));
        self
    }

    /// Another member of the cluster and where it listens. Starting fails if `id` is this
    /// node's own, or was given another address.
    pub fn peer(self, id: u64, addr: SocketAddr) -> Self {
        self.peer_at(NodeId(id), PeerAt::Socket(addr))
    }

    /// Another member of the cluster, by host name and port (`"node2:7001"`), looked up
    /// again at every connection attempt, so that a peer whose address changes is found
    /// again. As [`ServerBuilder::peer`] otherwise.
    pub fn peer_host(self, id: u64, host_port: impl Into<String>) -> Self {
        self.peer_at(NodeId(id), PeerAt::Host(host_port.into()))
    }

    fn peer_at(mut self, id: NodeId, at: PeerAt) -> Self {
        if let Some(Some(first)) = self.peers.insert(id, Some(at.clone())) {
            if first != at && self.conflicting_peer.is_none() {
                self.conflicting_peer = Some((id, first, at));
            }
        }
        self
    }

    /// Another member of the cluster reached without addresses (the in-memory network).
    pub fn member(mut self, id: u64) -> Self {
        self.peers.entry(NodeId(id)).or_insert(None);
        self
    }

    /// Keep the write-ahead log, snapshots and the mirrored files (`<dir>/files/`) here.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The cluster's id (default [`DEFAULT_CLUSTER_ID`]).
    pub fn cluster_id(mut self, id: u64) -> Self {
        self.cluster_id = Some(id);
        self
    }

    /// The cluster's shared secret (TCP only; default none): peers and clients must then prove
    /// they know it, and this node proves it to them. Give every node and client the same one.
    #[cfg(feature = "tcp")]
    pub fn secret(mut self, secret: dlm_transport_tcp::ClusterSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// A secret for members only (TCP only; default none): peers then prove this one instead
    /// of [`ServerBuilder::secret`], so a client that knows the client secret cannot pose as a
    /// node. Give every node the same one, and no client.
    #[cfg(feature = "tcp")]
    pub fn peer_secret(mut self, secret: dlm_transport_tcp::ClusterSecret) -> Self {
        self.peer_secret = Some(secret);
        self
    }

    /// Serve metrics in the Prometheus text format at `GET http://<addr>/metrics` (feature
    /// `metrics`; default: no listener). Port 0 picks one: see [`Server::metrics_addr`]. The
    /// listener is bounded (see [`crate::metrics`]), so that a flood of scrapes cannot starve
    /// the node. Starting fails if the address cannot be bound.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }

    /// A secret for operators (TCP only; default none): a client that proves it may list locks
    /// and sessions and revoke grants; other clients are refused those with
    /// `Rejection::NotAuthorized`. Without it those requests are open to every client only
    /// while authentication is off altogether (no [`ServerBuilder::secret`] and no mutual
    /// TLS either). Give every
    /// node the same one, and only operators' clients. It needs
    /// [`ServerBuilder::peer_secret`] as well (the start fails otherwise), or a client could
    /// connect as a member and bypass it.
    #[cfg(feature = "tcp")]
    pub fn admin_secret(mut self, secret: dlm_transport_tcp::ClusterSecret) -> Self {
        self.admin_secret = Some(secret);
        self
    }

    /// TLS on every connection to and from this node (TCP only, feature `tls`; default
    /// none). The node then serves TLS only and dials its peers with TLS, verifying them
    /// against the CA of [`NodeTls::mutual`](dlm_transport_tcp::NodeTls::mutual) by the host
    /// they were given as ([`ServerBuilder::peer_host`]) or else by IP address. A secret set
    /// as well still applies, inside TLS.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: dlm_transport_tcp::NodeTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Base election time-out (default 300 ms); also the check-quorum window.
    pub fn election_timeout(mut self, d: Duration) -> Self {
        self.tuning.push(Tuning::Election(d));
        self
    }

    /// Heartbeat interval (default 50 ms).
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.tuning.push(Tuning::Heartbeat(d));
        self
    }

    /// Time a lock stays ungranted after its lease expired (default 0).
    pub fn lock_delay(mut self, d: Duration) -> Self {
        self.tuning.push(Tuning::LockDelay(d));
        self
    }

    /// Longest lease this node grants while it leads (default: none below the cluster's limit
    /// of 300 s). A longer acquire is refused with
    /// [`Rejection::BadLease`](crate::Rejection::BadLease) naming the cap. Each member may have
    /// its own: followers apply whatever the leader granted, and a lease granted by an earlier
    /// leader is kept as it was given. Starting fails unless it lies within the cluster's lease
    /// limits (100 ms to 300 s).
    pub fn lease_cap(mut self, d: Duration) -> Self {
        self.tuning.push(Tuning::LeaseCap(d));
        self
    }

    /// Take a snapshot, and compact the log behind it, every `entries` applied entries
    /// (default 10,000). Fewer means a shorter log to replay and to send a lagging follower,
    /// at the cost of serializing the lock table more often. Starting fails if it is 0.
    pub fn snapshot_every(mut self, entries: u64) -> Self {
        self.tuning.push(Tuning::SnapshotEvery(entries));
        self
    }

    /// Keep the last `events` lock events for watches (default 10,000, a few dozen bytes
    /// each). A watcher further behind than that, after a long disconnection say, is sent the
    /// lock's current state marked compacted instead of the events it missed.
    pub fn watch_history(mut self, events: usize) -> Self {
        self.tuning.push(Tuning::WatchHistory(events));
        self
    }

    /// Where the other members and clients reach this node, as `host:port` (TCP only; default:
    /// the address it listens on, unless that is a wildcard such as `0.0.0.0`, which nobody
    /// can dial). It goes into the cluster's configuration, which the others dial.
    pub fn advertise(mut self, host_port: impl Into<String>) -> Self {
        self.advertise = Some(host_port.into());
        self
    }

    /// Join a running cluster through the member listening at `host_port` (TCP only), instead
    /// of being given the peers: the node finds the leader through that member, starts outside
    /// the configuration (it never stands for election there), asks to be added as a learner
    /// at its own address (see [`ServerBuilder::advertise`]), and catches up by snapshot and
    /// log. Starting fails with [`StartError::Join`] if no leader answers within
    /// [`JOIN_WITHIN`] or the cluster refuses. A node that was given peers cannot join.
    ///
    /// The voters found are recorded in the data directory before the first start, and every
    /// later start of that directory begins from them at once, with or without `join` (with
    /// it, the membership asked for is made sure of in the background): a restart never waits
    /// for a leader, and never begins as a cluster of one.
    #[cfg(feature = "tcp")]
    pub fn join(mut self, host_port: impl Into<String>) -> Self {
        self.join = Some(join::Join {
            via: host_port.into(),
            promote: false,
            within: JOIN_WITHIN,
        });
        self
    }

    /// With [`ServerBuilder::join`]: also ask to be promoted to voter once caught up, and
    /// start only then (within `within` in all).
    #[cfg(feature = "tcp")]
    pub fn promote_after_join(mut self, within: Duration) -> Self {
        if let Some(join) = &mut self.join {
            join.promote = true;
            join.within = within;
        }
        self
    }

    /// Seed of the election jitter (default: the node id).
    pub fn seed(mut self, seed: u64) -> Self {
        self.tuning.push(Tuning::Seed(seed));
        self
    }

    /// The node configuration this builder describes. Fails when the id is missing, the node
    /// is listed as its own peer, a peer has two addresses, or the tuning is unusable. An
    /// even number of members is allowed but logged as a warning: four nodes tolerate one
    /// failure, as three do.
    pub fn config(&self) -> Result<Config, StartError> {
        let id = self.id.ok_or(StartError::MissingId)?;
        if self.peers.contains_key(&id) {
            return Err(StartError::SelfAsPeer(id));
        }
        if let Some((id, first, second)) = &self.conflicting_peer {
            return Err(StartError::ConflictingPeer {
                id: *id,
                first: first.to_string(),
                second: second.to_string(),
            });
        }
        let members = self.peers.keys().copied().chain([id]);
        let mut cfg = Config::new(id, members);
        cfg.addresses = self
            .peers
            .iter()
            .filter_map(|(id, at)| Some((*id, at.as_ref()?.to_string())))
            .collect();
        self.tuned(cfg)
    }

    /// `cfg` with this builder's tuning, checked.
    fn tuned(&self, mut cfg: Config) -> Result<Config, StartError> {
        for tuning in &self.tuning {
            match *tuning {
                Tuning::Election(d) => cfg.election_timeout = d,
                Tuning::Heartbeat(d) => cfg.heartbeat_interval = d,
                Tuning::LockDelay(d) => cfg.lock_delay = d,
                Tuning::LeaseCap(d) => cfg.lease_cap = Some(d),
                Tuning::Seed(s) => cfg.seed = s,
                Tuning::SnapshotEvery(n) => cfg.snapshot_every = n,
                Tuning::WatchHistory(n) => cfg.watch_history = n,
            }
        }
        cfg.validate()?;
        let size = cfg.members.len();
        if size.is_multiple_of(2) {
            tracing::warn!(
                members = size,
                "an even-sized cluster tolerates no more failures than one node fewer, and \
                 needs one more vote for every commit"
            );
        }
        Ok(cfg)
    }

    /// Binds the metrics socket, if asked for, starts the node, then serves its metrics.
    async fn start<T: dlm_core::runtime::Transport>(
        self,
        cfg: Config,
        transport: T,
        addr: Option<SocketAddr>,
    ) -> Result<Server, StartError> {
        #[cfg(feature = "metrics")]
        let metrics = match self.metrics {
            Some(at) => Some(crate::metrics::MetricsSocket::bind(at).await?),
            None => None,
        };
        let handle = self.spawn(cfg, transport).await?;
        Ok(Server {
            #[cfg(feature = "metrics")]
            metrics: metrics.map(|socket| socket.serve(handle.metrics())),
            handle,
            addr,
        })
    }

    async fn spawn<T: dlm_core::runtime::Transport>(
        &self,
        cfg: Config,
        transport: T,
    ) -> Result<ServerHandle, StartError> {
        let handle = match &self.data_dir {
            Some(dir) => {
                // Opened first: it takes the directory's lock, so two processes cannot claim
                // the same directory at once.
                let storage = FileStorage::open(dir.join("raft"))?;
                let owner = Owner {
                    node: cfg.id,
                    cluster: self.cluster_id.unwrap_or(DEFAULT_CLUSTER_ID),
                };
                data_dir::claim(dir, owner)?;
                let opts = ServerOptions {
                    files_dir: Some(dir.join("files")),
                };
                spawn_server(cfg, storage, transport, opts).await?
            }
            None => {
                let opts = ServerOptions::default();
                spawn_server(cfg, MemStorage::new(), transport, opts).await?
            }
        };
        Ok(handle)
    }

    /// Starts the node, listening for peers and clients on `listen` (port 0 picks one); with
    /// [`ServerBuilder::join`], joins the cluster too.
    #[cfg(feature = "tcp")]
    pub async fn serve_tcp(self, listen: SocketAddr) -> Result<Server, StartError> {
        if let Some(dir) = &self.data_dir {
            if let Some(record) = join_record::JoinRecord::read(dir)? {
                return self.serve_rejoining(listen, record).await;
            }
        }
        if let Some(join) = self.join.clone() {
            return self.serve_joining(listen, join).await;
        }
        let cfg = self.config()?;
        let transport = self.bind_tcp(cfg.id, listen).await?;
        let addr = transport.local_addr();
        let mut cfg = cfg;
        if let Some(me) = self.advertised(addr) {
            cfg.addresses.insert(cfg.id, me);
        }
        self.start(cfg, transport, Some(addr)).await
    }

    /// The TCP transport of node `id`, listening on `listen`, linked to the peers given.
    #[cfg(feature = "tcp")]
    async fn bind_tcp(
        &self,
        id: NodeId,
        listen: SocketAddr,
    ) -> Result<dlm_transport_tcp::TcpTransport, StartError> {
        use dlm_transport_tcp::{TcpConfig, TcpTransport};
        let mut tcp = TcpConfig::new(id, listen, self.cluster_id.unwrap_or(DEFAULT_CLUSTER_ID));
        tcp.secret = self.secret.clone();
        tcp.peer_secret = self.peer_secret.clone();
        tcp.admin_secret = self.admin_secret.clone();
        #[cfg(feature = "tls")]
        {
            tcp.tls = self.tls.clone();
        }
        tcp.peers = self
            .peers
            .iter()
            .filter_map(|(id, at)| {
                let at = match at.as_ref()? {
                    PeerAt::Socket(addr) => dlm_transport_tcp::PeerAddr::Socket(*addr),
                    PeerAt::Host(host) => dlm_transport_tcp::PeerAddr::Host(host.clone()),
                };
                Some((*id, at))
            })
            .collect();
        Ok(TcpTransport::bind(tcp).await?)
    }

    /// How this node's own client reaches the cluster (for joining): its secrets.
    #[cfg(feature = "tcp")]
    fn access(&self) -> ClusterAccess {
        let mut access = ClusterAccess::new(self.cluster_id.unwrap_or(DEFAULT_CLUSTER_ID));
        access.secret = self.secret.clone();
        access.admin_secret = self.admin_secret.clone();
        access
    }

    /// Where others reach this node listening on `listen`: the advertised address, else the
    /// listening one unless it is a wildcard.
    #[cfg(feature = "tcp")]
    fn advertised(&self, listen: SocketAddr) -> Option<String> {
        match &self.advertise {
            Some(at) => Some(at.clone()),
            None if listen.ip().is_unspecified() => None,
            None => Some(listen.to_string()),
        }
    }

    /// Starts the node on an in-memory network (tests, benches, demos).
    #[cfg(feature = "mem")]
    pub async fn serve_mem(
        self,
        network: &dlm_transport_mem::MemNetwork,
    ) -> Result<Server, StartError> {
        let cfg = self.config()?;
        let transport = network.node(cfg.id);
        self.start(cfg, transport, None).await
    }
}

/// A running node.
#[derive(Debug)]
pub struct Server {
    handle: ServerHandle,
    addr: Option<SocketAddr>,
    /// Stops with the server (dropped with it).
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::MetricsListener>,
}

impl Server {
    /// Starts describing a node.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Where it listens (TCP only).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Where its metrics listener listens, if [`ServerBuilder::metrics`] asked for one.
    #[cfg(feature = "metrics")]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }

    /// Reads its counters and gauges directly, with or without a listener (what a scrape
    /// reports; see [`dlm_core::runtime::MetricsReader`]).
    pub fn metrics(&self) -> dlm_core::runtime::MetricsReader {
        self.handle.metrics()
    }

    /// Its latest status (role, term, leader, commit index).
    pub fn status(&self) -> NodeStatus {
        self.handle.status().borrow().clone()
    }

    /// Resolves when the node has stopped, with the reason (see
    /// [`ServerHandle::stopped`]): a supervisor waits on this beside its shutdown signal and
    /// exits non-zero when the node stopped on its own.
    pub fn stopped(
        &self,
    ) -> impl std::future::Future<Output = dlm_core::runtime::Stopped> + Send + 'static {
        self.handle.stopped()
    }

    /// A receiver that sees every status change (to await an election, say).
    pub fn watch_status(&self) -> tokio::sync::watch::Receiver<NodeStatus> {
        self.handle.status()
    }

    /// Stops the node; its data directory stays for a restart. A leader first hands leadership
    /// to its most caught-up member (for at most an election time-out), so a planned restart
    /// costs clients a round trip rather than an election.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.handle.shutdown().await
    }

    /// Stops the node at once, as a crash would look to the rest of the cluster: no hand-over.
    /// For failover tests and demos.
    pub async fn kill(self) {
        self.handle.kill().await
    }
}
