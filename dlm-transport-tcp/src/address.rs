//! Where a peer listens: a socket address, or a host name resolved again at every dial.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A peer's address. A [`PeerAddr::Host`] is looked up each time the link dials, so a peer
/// whose address changes (a container rescheduled, a DNS record updated) is found again
/// without restarting this node; a name that does not resolve is retried like a refused
/// connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A fixed address.
    Socket(SocketAddr),
    /// `host:port`, resolved at every dial (the first address found is used).
    Host(String),
}

impl PeerAddr {
    /// The address to dial now.
    pub(crate) async fn resolve(&self) -> io::Result<SocketAddr> {
        match self {
            PeerAddr::Socket(addr) => Ok(*addr),
            PeerAddr::Host(host) => tokio::net::lookup_host(host.as_str())
                .await?
                .next()
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    )
                }),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> PeerAddr {
        PeerAddr::Socket(addr)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Socket(addr) => addr.fmt(f),
            PeerAddr::Host(host) => f.write_str(host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_name_is_resolved_and_an_address_kept() {
        let addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        assert_eq!(PeerAddr::from(addr).resolve().await.unwrap(), addr);
        let host = PeerAddr::Host("localhost:7002".into());
        let resolved = host.resolve().await.unwrap();
        assert!(resolved.ip().is_loopback() && resolved.port() == 7002);
        assert_eq!(host.to_string(), "localhost:7002");
        assert!(PeerAddr::Host("no port".into()).resolve().await.is_err());
    }
}
