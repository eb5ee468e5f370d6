//! # dlm-transport-tcp
//!
//! dlm over TCP with tokio. Every connection starts with a handshake ([`wire::Hello`]: magic
//! number, protocol version, cluster id, and whether the caller is a peer node or a client; with
//! a [`ClusterSecret`] configured, both ends then prove they know it, see [`auth`]);
//! then each frame is a big-endian `u32` length followed by a postcard payload of at most
//! `max_frame` bytes. A frame over the limit, or one that does not decode, closes that connection
//! with a logged error; the node carries on. A length word with its top bit set is instead a
//! liveness signal, [`wire::PING`] or [`wire::PONG`], with no payload.
//!
//! - [`TcpTransport`] is a node's [`dlm_core::runtime::Transport`]: one listener accepts both peers
//!   and clients; each peer gets an outbound link with a bounded queue, reconnecting with
//!   exponential, jittered back-off.
//! - [`TcpClient`] is a [`dlm_core::runtime::ClientTransport`]: one lazily opened connection per
//!   node, many calls pipelined on it, answers matched by `(client, seq)`.
//!
//! With the `tls` feature, [`TcpConfig::tls`] and [`TcpClientConfig::tls`] put every
//! connection under TLS (rustls), optionally mutual; see [`tls`].
//!
//! Packets dropped without a reset (a pulled cable, a black-holing switch) end no TCP
//! connection until the kernel's retransmission back-off gives up, minutes later. So peer
//! links, and client connections while calls wait, exchange liveness signals, and a connection
//! silent for [`TcpConfig::silence_timeout`] is closed and dialed again on a fresh socket, with
//! TCP keep-alive and `TCP_USER_TIMEOUT` as a second line.
// `unsafe` is allowed in `kernel` alone, for two socket options no safe wrapper offers.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod address;
pub mod auth;
mod backoff;
mod client;
mod client_conns;
mod config;
mod datagram;
mod duplicates;
mod error;
mod handshake;
mod kernel;
mod links;
mod liveness;
mod peer;
mod queue;
mod server;
mod stream;
mod tail_probe;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
pub mod wire;

pub use address::PeerAddr;
pub use auth::{ClusterSecret, SecretError};
pub use client::TcpClient;
pub use config::{
    TcpClientConfig, TcpConfig, DEFAULT_PING_INTERVAL, DEFAULT_RTO_MIN, DEFAULT_SILENCE_TIMEOUT,
};
pub use datagram::{DatagramStats, Datagrams};
pub use duplicates::Duplicates;
pub use error::TcpError;
pub use tail_probe::TailProbes;
#[cfg(feature = "tls")]
pub use tls::{ClientCerts, ClientTls, NodeTls, TlsConfigError, TlsError, TlsIdentity, TlsRoots};
pub use transport::{PeerStats, TcpTransport, ADMIN_NEEDS_PEER_SECRET};
pub use wire::FrameError;
