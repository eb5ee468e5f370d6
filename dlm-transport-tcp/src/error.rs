//! The errors of this crate.

use crate::wire::FrameError;
use std::io;
use std::net::SocketAddr;

/// What went wrong in the TCP transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TcpError {
    /// The listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A socket operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A frame was refused (too large, truncated or undecodable).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The other side refused the handshake (another protocol version, magic or cluster, or
    /// the cluster secret), or broke off the exchange of proofs.
    #[error("handshake refused: {0}")]
    Refused(String),
    /// The node this side connected to did not prove it knows the cluster secret (or this side
    /// has none and the node asks for one), so this side hung up.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The operating system gave no random bytes for a nonce.
    #[error("cannot draw a random nonce: {0}")]
    Random(String),
    /// TLS failed on this connection; says why (the certificate not trusted, a name
    /// mismatch, a certificate refused by the other side...).
    #[cfg(feature = "tls")]
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The TLS settings cannot be used.
    #[cfg(feature = "tls")]
    #[error("TLS settings: {0}")]
    TlsConfig(#[from] crate::tls::TlsConfigError),
    /// The other side took too long.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// The settings cannot be used together; says why.
    #[error("{0}")]
    Settings(&'static str),
}
