//! Copies of small messages as UDP datagrams while the path loses packets.
//!
//! Copies on extra TCP connections ([`crate::duplicates`]) are not independent: each connection
//! stays blocked behind its own lost segment until TCP repairs it, which takes a kernel timer
//! tick at least, so three connections under 20% loss reached 20-33% of the loss-free
//! throughput (median 28%), not the 30% in every run that issue 12 asks for. A datagram waits for nothing: it arrives, or it
//! is lost, on its own. So while loss is seen, every message whose frame fits in one datagram
//! ([`packet::MAX_DATAGRAM`] bytes, never fragmented) is also sent as datagrams (two by
//! default, see [`Datagrams`]), and larger ones keep to TCP; the receiver passes a datagram's
//! message to exactly the same inbound path as a TCP frame's. Copies are safe end to end for
//! the same reasons as extra connections (see `duplicates`): the core takes duplicated,
//! reordered and lost peer messages, the leader deduplicates client requests by
//! `(client, seq)`, and a client takes the first answer.
//!
//! Where: each node binds a UDP socket on the IP and port of its TCP listener (UDP and TCP
//! ports are separate, so nothing new to configure). If that bind fails, the node logs it once
//! and runs without datagrams. A client binds one ephemeral UDP socket per address family, when
//! a connection first gets a token.
//!
//! Which way:
//! - Peer messages go from the node that dialed a link to the one it dialed, on the
//!   token of the link's first connection (each node sends on its own links, so both ways are
//!   covered).
//! - Client requests go to the node's UDP port on the token of the client's first connection
//!   to that node. The node copies its answers to the source address of the last authentic
//!   request datagram on that connection, for [`crate::TailProbes::HOLD`] after it: a client
//!   sends datagrams only while it sees loss, so answers are copied only then too.
//!
//! Security: a datagram is accepted only on behalf of a TCP connection that is open and past
//! its handshake (and so authenticated as that connection was), never on its own:
//! - The connecting side asks for datagrams in its hello; the listening node answers with a
//!   random 128-bit token for that connection, sent on the connection itself, and forgets it
//!   when the connection closes. Someone who cannot read the connection cannot guess it.
//! - With a cluster secret, both ends derive a key from the secret and the handshake's
//!   nonces ([`crate::auth::ClusterSecret::datagram_key`]), and every datagram carries an
//!   HMAC-SHA256 tag under it: datagrams are then better protected than the TCP frames, which
//!   carry no tag (see [`crate::auth`]). Without a secret the token alone binds a datagram to
//!   its connection, as the TCP sequence numbers bind a frame: no weaker than TCP.
//! - A replayed datagram is a duplicate, which everything above tolerates, and only while its
//!   connection is open.
//! - A peer datagram must name the connection's peer as its sender; a client datagram with
//!   an admin request on a connection not allowed them is dropped (its TCP copy is answered
//!   with the refusal).
//! - Under TLS datagrams would carry in clear what TLS encrypts, so a node or client with TLS
//!   configured neither offers nor sends them.
//! - Nothing in a datagram is trusted before its token and tag check out; a datagram that is
//!   malformed, names no open connection, or fails its tag is dropped and counted
//!   ([`DatagramStats`]).

pub(crate) mod client;
pub(crate) mod node;
pub(crate) mod packet;
#[cfg(test)]
mod tests;

/// Whether and when small messages are also sent as UDP datagrams, and how many of each (see
/// the module docs of `datagram` in the source for why and how they are authenticated).
///
/// Unlike copies on TCP connections, datagram copies are lost independently of each other (on
/// a path whose losses are independent): with two, a message's datagrams are all lost 4% of
/// the time under 20% loss rather than 20%. Measured (BENCHMARKS.md, 2026-12-07, sixth
/// session), two copies beside the three TCP connections lifted throughput under 20% loss to
/// about half the loss-free figure, one copy to about 40%. The copies go back to back; where
/// losses come in bursts they are less independent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Datagrams {
    /// `copies` datagrams per message while a connection of the link (or of the client, to
    /// that node) has retransmitted a segment within the last [`crate::TailProbes::HOLD`],
    /// the same signal as [`crate::Duplicates::AfterLoss`]; none on a clean network. Where
    /// the kernel does not report retransmissions (not Linux), never.
    AfterLoss {
        /// Datagrams per message while loss is seen; 0 means 1.
        copies: usize,
    },
    /// Always `copies` datagrams per message (for tests and measurements).
    Always {
        /// Datagrams per message; 0 means 1.
        copies: usize,
    },
    /// Never: no UDP socket is bound, no datagram offered, sent or accepted.
    Never,
}

impl Default for Datagrams {
    /// Two copies after loss: see [`Datagrams::DEFAULT_COPIES`].
    fn default() -> Datagrams {
        Datagrams::AfterLoss {
            copies: Datagrams::DEFAULT_COPIES,
        }
    }
}

impl Datagrams {
    /// Datagrams per message while loss is seen, by default. Measured in BENCHMARKS.md
    /// (2026-12-07, sixth session).
    pub const DEFAULT_COPIES: usize = 2;

    /// Datagrams per message when they are sent at all: at least one, none for `Never`.
    pub(crate) fn copies(self) -> usize {
        match self {
            Datagrams::AfterLoss { copies } | Datagrams::Always { copies } => copies.max(1),
            Datagrams::Never => 0,
        }
    }
}

/// Counts of a node's or a client's datagrams since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramStats {
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams received whose message was passed on (to the node, or to a waiting call).
    pub delivered: u64,
    /// Received and dropped: not a dlm datagram, too large, or its message does not decode.
    pub malformed: u64,
    /// Received and dropped: the token names no open connection (of that kind) here.
    pub unknown: u64,
    /// Received and dropped: the tag is missing or does not verify.
    pub forged: u64,
    /// Received, authentic, and dropped: a peer message naming another sender, an admin
    /// request on a connection not allowed them, or the node's input full.
    pub refused: u64,
}

/// [`DatagramStats`] as they are counted, shared by the tasks that send and receive.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: std::sync::atomic::AtomicU64,
    delivered: std::sync::atomic::AtomicU64,
    malformed: std::sync::atomic::AtomicU64,
    unknown: std::sync::atomic::AtomicU64,
    forged: std::sync::atomic::AtomicU64,
    refused: std::sync::atomic::AtomicU64,
}

impl Counters {
    fn bump(counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn sent(&self) {
        Self::bump(&self.sent);
    }

    pub(crate) fn delivered(&self) {
        Self::bump(&self.delivered);
    }

    pub(crate) fn dropped(&self, why: packet::Dropped) {
        use packet::Dropped;
        Self::bump(match why {
            Dropped::Malformed => &self.malformed,
            Dropped::Unknown => &self.unknown,
            Dropped::Forged => &self.forged,
            Dropped::Refused => &self.refused,
        });
    }

    pub(crate) fn snapshot(&self) -> DatagramStats {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        DatagramStats {
            sent: get(&self.sent),
            delivered: get(&self.delivered),
            malformed: get(&self.malformed),
            unknown: get(&self.unknown),
            forged: get(&self.forged),
            refused: get(&self.refused),
        }
    }
}

/// How long a receiving task waits after a failed receive before the next.
pub(crate) const RECEIVE_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

/// Sends `datagram` `copies` times to `to` on `socket` without waiting: a copy that cannot go
/// at once (the socket's buffer full) is not worth waiting for, as TCP carries the message
/// anyway. A plain non-blocking `sendto`: tokio's `try_send_to` refuses until its reactor has
/// seen the socket writable, which drops the first copies on a fresh socket.
pub(crate) fn send_now(
    socket: &tokio::net::UdpSocket,
    datagram: &[u8],
    to: std::net::SocketAddr,
    counters: &Counters,
    copies: usize,
) {
    let socket = socket2::SockRef::from(socket);
    for _ in 0..copies {
        match socket.send_to(datagram, &to.into()) {
            Ok(_) => counters.sent(),
            Err(e) => {
                tracing::trace!(%to, "datagram not sent: {e}");
                return;
            }
        }
    }
}
