//! TLS on every connection (feature `tls`), with rustls and its `ring` provider.
//!
//! A connection is TCP first: the socket gets its options ([`crate::liveness`]), then the TLS
//! handshake runs over it, bounded by the handshake time-out, and then dlm's own handshake
//! (hello, and with a [`crate::ClusterSecret`] the proofs of it) inside TLS, as before. So a
//! cluster secret still works on top of TLS, for instance a member secret to keep holders of
//! client certificates from posing as members.
//!
//! A node with TLS ([`NodeTls`]) serves TLS only. A caller that starts with anything but a
//! TLS handshake record is read as a plain dlm caller: its hello is answered with a refusal
//! that says the node wants TLS, and anything else closes the connection with one log line.
//! A node without TLS that receives a TLS handshake says so in its log and closes the
//! connection. Failures are reported as a [`TlsError`] naming the cause (the certificate not
//! trusted, a name mismatch, a certificate refused by the other side...).

mod config;
mod error;

pub use config::{ClientCerts, ClientTls, NodeTls, TlsIdentity, TlsRoots};
pub use error::{TlsConfigError, TlsError};

use crate::address::PeerAddr;
use crate::error::TcpError;
use crate::handshake::looks_like_tls;
use crate::stream::{self, Halves};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// What the listening side found on a new connection.
pub(crate) enum Accepted {
    /// A TLS connection, and whether the caller presented a (verified) certificate.
    Tls { halves: Halves, has_cert: bool },
    /// The caller did not start a TLS handshake.
    Plain(TcpStream),
}

/// Runs the node's side of the TLS handshake on `stream`, within `limit`.
pub(crate) async fn accept(
    stream: TcpStream,
    tls: &NodeTls,
    limit: Duration,
) -> Result<Accepted, TcpError> {
    let handshake = async {
        let mut first = [0u8; 3];
        let seen = stream.peek(&mut first).await?;
        if seen == 0 {
            return Err(TcpError::Refused(
                "connection closed before the handshake".into(),
            ));
        }
        if !looks_like_tls(&first[..seen]) {
            return Ok(Accepted::Plain(stream));
        }
        let stream = tokio_rustls::TlsAcceptor::from(tls.server.clone())
            .accept(stream)
            .await
            .map_err(io_error)?;
        let has_cert = stream.get_ref().1.peer_certificates().is_some();
        Ok(Accepted::Tls {
            halves: stream::tls(stream.into()),
            has_cert,
        })
    };
    timeout(limit, handshake)
        .await
        .map_err(|_| TcpError::Timeout("TLS handshake"))?
}

/// Runs the dialing side's TLS handshake on `stream`, checking `name` in the node's
/// certificate, within `limit`.
pub(crate) async fn connect(
    stream: TcpStream,
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    limit: Duration,
) -> Result<Halves, TcpError> {
    let handshake = tokio_rustls::TlsConnector::from(config.clone()).connect(name, stream);
    let stream = timeout(limit, handshake)
        .await
        .map_err(|_| TcpError::Timeout("TLS handshake"))?
        .map_err(|e| match e.kind() {
            // A node restarting closes too, so this stays a connection error (retried).
            io::ErrorKind::UnexpectedEof => TcpError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the connection during the TLS handshake (does it serve TLS?)",
            )),
            _ => io_error(e),
        })?;
    Ok(stream::tls(stream.into()))
}

/// The name checked in a peer's certificate: its host name if it was given one, else the IP
/// address dialed.
pub(crate) fn peer_name(at: &PeerAddr, addr: SocketAddr) -> ServerName<'static> {
    let by_ip = || ServerName::IpAddress(addr.ip().into());
    let PeerAddr::Host(host_port) = at else {
        return by_ip();
    };
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port.as_str(), |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    config::server_name(host).unwrap_or_else(|_| by_ip())
}

/// An I/O error, or the TLS failure inside it.
fn io_error(e: io::Error) -> TcpError {
    match TlsError::of_io(&e) {
        Some(tls) => TcpError::Tls(tls),
        None => TcpError::Io(e),
    }
}

/// `e`, or the TLS failure that caused it: after a TLS handshake, the other side's verdict on
/// this side's certificate may arrive as the first read of dlm's own handshake fails.
pub(crate) fn reclassify(e: TcpError) -> TcpError {
    let tls = match &e {
        TcpError::Io(io) | TcpError::Frame(crate::wire::FrameError::Io(io)) => TlsError::of_io(io),
        _ => None,
    };
    tls.map_or(e, TcpError::Tls)
}

#[cfg(test)]
mod tests;
