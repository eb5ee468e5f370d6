//! Settings of a node's transport and of a client.

use crate::address::PeerAddr;
use crate::auth::ClusterSecret;
use crate::datagram::Datagrams;
use crate::duplicates::Duplicates;
use crate::tail_probe::TailProbes;
use dlm_core::NodeId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The default largest frame payload: 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;
/// The default ping interval: dlm-core's default heartbeat interval
/// (`dlm_core::Config::heartbeat_interval`, 50 ms). See [`TcpConfig::ping_interval`].
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_millis(50);
/// The default silence bound: dlm-core's default base election timeout
/// (`dlm_core::Config::election_timeout`, 300 ms). See [`TcpConfig::silence_timeout`].
pub const DEFAULT_SILENCE_TIMEOUT: Duration = Duration::from_millis(300);

/// The default minimum TCP retransmission time-out. See [`TcpConfig::rto_min`].
pub const DEFAULT_RTO_MIN: Duration = Duration::from_millis(5);

/// A node's TCP transport settings. Build with [`TcpConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// This node.
    pub id: NodeId,
    /// Where to listen for peers and clients (port 0 picks a free port; see
    /// [`crate::TcpTransport::local_addr`]).
    pub listen: SocketAddr,
    /// The other nodes and where they listen (an entry for `id` itself is ignored). A host
    /// name ([`PeerAddr::Host`]) is resolved at every dial.
    pub peers: HashMap<NodeId, PeerAddr>,
    /// Connections from another cluster are refused.
    pub cluster_id: u64,
    /// With a secret, peers and clients must prove they know it (and this node proves it to
    /// them); callers without it are refused. Every node and client of a cluster needs the same.
    pub secret: Option<ClusterSecret>,
    /// A secret for members only. With it, a caller that says it is a member must prove this
    /// one instead (and this node proves it when it connects to its peers), so a client that
    /// knows `secret` cannot pose as a node. Every node needs the same; clients never get it.
    pub peer_secret: Option<ClusterSecret>,
    /// A secret for operators. A client that proves it may run the admin requests
    /// (`Op::is_admin`: list locks and sessions, revoke); any other client connection is
    /// answered `Rejection::NotAuthorized` for them. Without this and without `secret` or
    /// mutual TLS (authentication off), every client may; with either of those, none may. Needs
    /// `peer_secret` too (the transport refuses to start otherwise): without it a client could
    /// connect as a member instead.
    pub admin_secret: Option<ClusterSecret>,
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// Frames queued per peer before the oldest are dropped.
    pub peer_queue_frames: usize,
    /// Bytes queued per peer (or per client connection) before the oldest frames are dropped.
    pub queue_bytes: usize,
    /// Replies queued per client connection before the oldest are dropped.
    pub conn_queue_frames: usize,
    /// Ceiling of the first wait before reconnecting to a peer; the ceiling doubles on each
    /// failed attempt and each wait is drawn uniformly below it (full jitter, so that nodes
    /// that lost a peer together do not dial it in step). Back to this after a connection on
    /// which the peer was heard.
    pub backoff_min: Duration,
    /// Cap of the reconnection back-off's ceiling. Keep it well below the election timeout:
    /// a peer that comes back must be reached before the cluster gives up waiting for it, and
    /// with a black-holed peer each attempt already waits out a connect time-out.
    pub backoff_max: Duration,
    /// Limit for a TCP connect. A peer link's attempts are also limited to
    /// `silence_timeout` (see there).
    pub connect_timeout: Duration,
    /// Limit for the handshake, both ways.
    pub handshake_timeout: Duration,
    /// Most client connections served at once; past it a client's handshake is refused with
    /// the reason (it may try another node or later). Peers are always admitted, and an
    /// operator's connection (one that proved the admin secret) may take one of four places
    /// beyond this, so a flood of clients cannot lock operators out.
    pub max_clients: usize,
    /// Most connections still in their handshake; past it the oldest is closed, so a flood of
    /// silent sockets cannot hold descriptors for the handshake time-out, nor lock out clients
    /// that send their hello at once.
    pub max_handshaking: usize,
    /// How often the liveness signals ([`crate::wire::PING`], [`crate::wire::PONG`]) go out on
    /// a peer link: from the dialing node whenever it has had nothing else to send for this
    /// long, and from the listening node regardless, since it sends nothing else on that
    /// connection. Each end then has something to hear from a live peer, even an idle one.
    /// Default 50 ms ([`DEFAULT_PING_INTERVAL`]), dlm-core's default heartbeat interval: a
    /// few bytes per link, and a signal every heartbeat. Keep it a third of `silence_timeout`
    /// or less, on every node.
    pub ping_interval: Duration,
    /// How long a peer connection may go without a byte from the other end before it is
    /// taken for dead and closed; the dialing node then connects again on a fresh socket.
    /// Without it a silent drop (a pulled cable, a switch that black-holes packets, no reset)
    /// leaves a link to TCP's retransmission back-off, which kept links dead 10 s and more
    /// after the network healed. It also caps a peer link's `connect_timeout` (a SYN sent into
    /// a black hole is retried by the kernel only after 1 s, then 3 s...; dialing afresh is
    /// quicker), and sets TCP keep-alive and `TCP_USER_TIMEOUT` (twice this) on every
    /// connection as a second line. Zero turns the checks off.
    ///
    /// Default 300 ms ([`DEFAULT_SILENCE_TIMEOUT`]), dlm-core's default base election timeout
    /// (`dlm_core::Config::election_timeout`; a node's full timeout adds
    /// `election_stagger` per rank and up to `election_jitter` at random, 100 ms each by
    /// default, so 300 to 500 ms in a three-node cluster):
    ///
    /// - Long enough not to flap. Six pings in a row must go missing. A stall of this node's
    ///   own cannot trip it, since whatever arrived meanwhile is read before the check; a stall
    ///   of the other end long enough to trip it is one in which that node, as leader, would
    ///   have missed its own heartbeats for an election timeout anyway. A false alarm costs a
    ///   reconnect and the frames being written at that moment, not the queued messages.
    /// - Short enough that a healed link is back within about an election timeout: within
    ///   this plus `backoff_max` plus a round trip, about 0.4 s by default, however long the
    ///   cut lasted, instead of at the kernel's next retransmission, up to two minutes away.
    ///   Under heavy packet loss a link may also be closed when a segment is lost several times
    ///   in a row; the fresh connection starts without TCP's doubled retransmission time-out.
    ///
    /// Scale it with the election timeout, and keep it the same on every node.
    pub silence_timeout: Duration,
    /// When a connection follows each burst of frames with a tiny probe segment, so that a
    /// lost lone message is repaired within a round trip instead of waiting for TCP's
    /// retransmission timer (200 ms at least on Linux). Default [`TailProbes::AfterLoss`]:
    /// only while the socket has retransmitted lately, so a clean network pays nothing.
    pub tail_probes: TailProbes,
    /// Minimum TCP retransmission time-out for every socket (`TCP_RTO_MIN_US`, Linux 6.15 and
    /// later; elsewhere the kernel's floor stays, with a debug log). `None` keeps the kernel's.
    ///
    /// Default 5 ms ([`DEFAULT_RTO_MIN`]). Linux's own floor is 200 ms whatever the round trip,
    /// which does not fit dlm's timing: one lost segment then costs two thirds of the default
    /// silence bound, and the same segment lost twice (200 + 400 ms) outlasts
    /// `TCP_USER_TIMEOUT` (600 ms) and kills the connection. Under 20% loss on every link that
    /// meant peer links closed for silence, elections, and 1% of the loss-free throughput;
    /// with 5 ms, no election and 6-9% (BENCHMARKS.md). The kernel still waits at least its
    /// smoothed round trip plus four deviations, so on a slower path this changes nothing, and
    /// a retransmission that proves spurious is undone by the kernel's detection (F-RTO,
    /// DSACK). dlm's liveness already assumes round trips far below the silence bound; keep
    /// this well under it too.
    pub rto_min: Option<Duration>,
    /// When each message to a peer goes out on more than one connection, so that it is late
    /// only when every copy is lost (see [`Duplicates`]). Default
    /// [`Duplicates::AfterLoss`] with three connections: only while the link has retransmitted
    /// lately (as `tail_probes`), so a clean network dials and copies nothing. Under 20% loss on
    /// every link this lifted throughput from 7% of the loss-free figure to 24% (medians; two
    /// connections: 16%, four: 30%; BENCHMARKS.md, 2026-12-07, fourth session). While it
    /// is on, a link sends that many times the bytes: where loss comes from congestion rather
    /// than a bad link, fewer connections (or [`Duplicates::Never`]) may serve better. The extra
    /// connections are dialed when first needed, with the same handshake as the first, and
    /// closed once the loss has stopped for [`TailProbes::HOLD`]. A node also sends each answer
    /// to a client on every connection that client has open to it, which a client opens only
    /// while it sees loss itself (see [`TcpClientConfig::duplicates`]).
    pub duplicates: Duplicates,
    /// When each message small enough for one datagram (1,200 bytes) is also sent to the peer
    /// as UDP datagrams, which, unlike TCP copies, wait behind no other lost packet.
    /// Default [`Datagrams::AfterLoss`] with two copies: on the same signal as `duplicates`,
    /// so a clean network sends none. Under 20% loss on every link this, beside the three
    /// connections, lifted throughput from 24% of the loss-free figure to 53% (medians;
    /// BENCHMARKS.md, 2026-12-07, sixth session). The node binds a UDP socket on `listen`'s address and port (the
    /// same number as TCP's; if that fails it logs once and runs without datagrams), takes
    /// datagrams only on behalf of open connections that asked for them in their handshake,
    /// under a per-connection random token and, with a secret, an HMAC tag keyed from the
    /// handshake; it copies its answers to a client by datagram only while that client sends
    /// its requests that way. Off under TLS (a datagram would carry in clear what TLS hides).
    /// Firewalls must let UDP through on the listening port, as TCP, for it to help.
    pub datagrams: Datagrams,
    /// TLS on every connection, to and from this node (default none: plain TCP). A node with
    /// TLS serves TLS only, and dials its peers with TLS; see [`crate::NodeTls`].
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::NodeTls>,
}

impl TcpConfig {
    pub(crate) fn liveness(&self) -> crate::liveness::Liveness {
        crate::liveness::Liveness::new(self.ping_interval, self.silence_timeout)
            .with_loss_recovery(self.tail_probes, self.rto_min, self.duplicates)
            .with_datagrams(self.datagrams_in_effect())
    }

    /// `datagrams`, or `Never` under TLS.
    pub(crate) fn datagrams_in_effect(&self) -> Datagrams {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return Datagrams::Never;
        }
        self.datagrams
    }

    /// The secret a member proves, and is asked for: the member secret, or else the shared one.
    pub(crate) fn member_secret(&self) -> Option<ClusterSecret> {
        self.peer_secret.clone().or_else(|| self.secret.clone())
    }

    /// Defaults: no secret, 4 MiB frames, 1024 frames / 64 MiB queued per peer, 1024 replies per
    /// client connection, reconnection back-off 10 ms to 100 ms (a third of the default election
    /// timeout), 2 s connect and 5 s handshake limits, 1024 clients, 128 connections in their
    /// handshake, pings every 50 ms and a 300 ms silence bound, tail probes after losses, a
    /// 5 ms minimum retransmission time-out, three connections per peer and datagram copies
    /// after losses, no peers.
    pub fn new(id: NodeId, listen: SocketAddr, cluster_id: u64) -> TcpConfig {
        TcpConfig {
            id,
            listen,
            peers: HashMap::new(),
            cluster_id,
            secret: None,
            peer_secret: None,
            admin_secret: None,
            max_frame: DEFAULT_MAX_FRAME,
            peer_queue_frames: 1024,
            queue_bytes: 64 * 1024 * 1024,
            conn_queue_frames: 1024,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            max_clients: 1024,
            max_handshaking: 128,
            ping_interval: DEFAULT_PING_INTERVAL,
            silence_timeout: DEFAULT_SILENCE_TIMEOUT,
            tail_probes: TailProbes::default(),
            rto_min: Some(DEFAULT_RTO_MIN),
            duplicates: Duplicates::default(),
            datagrams: Datagrams::default(),
            #[cfg(feature = "tls")]
            tls: None,
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
    /// The cluster's admin secret, for an operator's client: with it, the client proves this
    /// one instead of `secret` (as [`crate::wire::HelloRole::Admin`]), and may run the admin
    /// requests.
    pub admin_secret: Option<ClusterSecret>,
    /// Where each node listens.
    pub nodes: HashMap<NodeId, SocketAddr>,
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// Requests queued per connection before calls fail at once.
    pub queue_frames: usize,
    /// Limit for a TCP connect; also limited to `silence_timeout` (see there).
    pub connect_timeout: Duration,
    /// Limit for the handshake.
    pub handshake_timeout: Duration,
    /// How often a connection pings its node ([`crate::wire::PING`]; the node answers each
    /// with a [`crate::wire::PONG`]) while calls wait on it. Default 50 ms, as
    /// [`TcpConfig::ping_interval`]; keep it a third of `silence_timeout` or less.
    pub ping_interval: Duration,
    /// A connection that has heard nothing from its node for this long while calls wait on it
    /// is closed: those calls fail with a connection error, and the next call opens a fresh
    /// connection, so that a call retried after a time-out does not go back into a socket
    /// that TCP would take minutes to give up. Also caps `connect_timeout`, and sets TCP
    /// keep-alive and `TCP_USER_TIMEOUT` as for a node. Zero turns the check off.
    ///
    /// Default 300 ms, as [`TcpConfig::silence_timeout`] and for the same reasons: a node
    /// answers a ping at once, even while it holds a long-polled call, so a connection silent
    /// that long has lost its path or its node. Scale it with the cluster's election timeout.
    pub silence_timeout: Duration,
    /// As [`TcpConfig::tail_probes`], for this client's requests.
    pub tail_probes: TailProbes,
    /// As [`TcpConfig::rto_min`], for this client's sockets.
    pub rto_min: Option<Duration>,
    /// As [`TcpConfig::duplicates`], for this client's requests: while a connection to a node
    /// has retransmitted lately, each request to that node goes out on this many connections
    /// (the extra ones opened in the background, with the same handshake, and closed once the
    /// loss has stopped and no call waits on them), and the first answer is taken; a later
    /// answer to the same call is ignored. The node answers on every connection the client has
    /// open to it, so answers are copied too. Default three connections after loss.
    pub duplicates: Duplicates,
    /// As [`TcpConfig::datagrams`], for this client's requests: while loss is seen (by
    /// default), each request that fits in a datagram also goes to the node's UDP port, on
    /// behalf of the client's first connection to it, and the node copies its answers back to
    /// the client's UDP socket (one per address family, bound on first use). Off under TLS.
    pub datagrams: Datagrams,
    /// TLS to every node (default none: plain TCP); see [`crate::ClientTls`].
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTls>,
}

impl TcpClientConfig {
    /// Defaults: no secret, 4 MiB frames, 4096 queued requests, 2 s connect and 5 s handshake
    /// limits, pings every 50 ms while calls wait and a 300 ms silence bound, tail probes after
    /// losses, a 5 ms minimum retransmission time-out, three connections per node and datagram
    /// copies after losses.
    pub fn new(cluster_id: u64, nodes: HashMap<NodeId, SocketAddr>) -> TcpClientConfig {
        TcpClientConfig {
            cluster_id,
            secret: None,
            admin_secret: None,
            nodes,
            max_frame: DEFAULT_MAX_FRAME,
            queue_frames: 4096,
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            ping_interval: DEFAULT_PING_INTERVAL,
            silence_timeout: DEFAULT_SILENCE_TIMEOUT,
            tail_probes: TailProbes::default(),
            rto_min: Some(DEFAULT_RTO_MIN),
            duplicates: Duplicates::default(),
            datagrams: Datagrams::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// `datagrams`, or `Never` under TLS.
    pub(crate) fn datagrams_in_effect(&self) -> Datagrams {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return Datagrams::Never;
        }
        self.datagrams
    }

    /// How to carry a connection to `node` at `addr`.
    pub(crate) fn carrier(&self, node: NodeId, addr: SocketAddr) -> crate::handshake::Carrier {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return crate::handshake::Carrier::Tls(tls.config.clone(), tls.name_for(node, addr));
        }
        let _ = (node, addr);
        crate::handshake::Carrier::Plain
    }

    pub(crate) fn liveness(&self) -> crate::liveness::Liveness {
        crate::liveness::Liveness::new(self.ping_interval, self.silence_timeout)
            .with_loss_recovery(self.tail_probes, self.rto_min, self.duplicates)
            .with_datagrams(self.datagrams_in_effect())
    }
}
