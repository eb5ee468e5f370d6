//! TLS settings of a node ([`NodeTls`]) and of a client ([`ClientTls`]), and the PEM files
//! they are read from ([`TlsIdentity`], [`TlsRoots`]).

use super::error::TlsConfigError;
use dlm_core::NodeId;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The `ring` provider, named rather than taken from the process default: a default is
/// ambiguous (and rustls panics) when another crate in the embedder's build enables aws-lc-rs.
///
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which only its
/// aws-lc-rs provider has; that one needs cmake and a C toolchain setup that this project's
/// builds (and CI) do not have. X25519 and the NIST curves remain.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain (this side's certificate first, then any intermediates) and its
/// private key.
#[derive(Clone)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl TlsIdentity {
    /// From PEM text: `cert` holds the chain (one or more `CERTIFICATE` blocks), `key` the key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<TlsIdentity, TlsConfigError> {
        let chain = certificates(CertificateDer::pem_slice_iter(cert), "the certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsConfigError::Pem {
            what: "the private key".into(),
            why: e.to_string(),
        })?;
        Ok(TlsIdentity {
            chain,
            key: Arc::new(key),
        })
    }

    /// From PEM files, as [`TlsIdentity::from_pem`].
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsConfigError> {
        TlsIdentity::from_pem(&read(cert)?, &read(key)?).map_err(|e| e.in_file(cert, key))
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TlsIdentity({} certificates, key hidden)",
            self.chain.len()
        )
    }
}

/// The certificate authorities trusted to sign the other side's certificate.
#[derive(Clone)]
pub struct TlsRoots(Arc<RootCertStore>);

impl TlsRoots {
    /// From PEM text holding one or more `CERTIFICATE` blocks.
    pub fn from_pem(pem: &[u8]) -> Result<TlsRoots, TlsConfigError> {
        let mut store = RootCertStore::empty();
        for cert in certificates(CertificateDer::pem_slice_iter(pem), "the CA")? {
            store.add(cert).map_err(|e| TlsConfigError::Pem {
                what: "the CA".into(),
                why: e.to_string(),
            })?;
        }
        Ok(TlsRoots(Arc::new(store)))
    }

    /// From a PEM file, as [`TlsRoots::from_pem`].
    pub fn from_pem_file(path: &Path) -> Result<TlsRoots, TlsConfigError> {
        TlsRoots::from_pem(&read(path)?).map_err(|e| e.in_file(path, path))
    }
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsRoots({} authorities)", self.0.len())
    }
}

/// Whether a node asks clients for a certificate (members always present theirs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCerts {
    /// Mutual TLS: a client without a certificate signed by the node's CA is refused.
    #[default]
    Required,
    /// A client may connect without a certificate; one that presents a certificate must
    /// present a valid one.
    Optional,
}

/// A node's TLS: the certificate it serves (to clients and to the peers that dial it) and,
/// with a CA, mutual TLS.
///
/// With a CA ([`NodeTls::mutual`]), nodes verify each other both ways: a node dialing a peer
/// presents its own certificate as a client certificate and checks the peer's against the CA,
/// and the peer checks it in turn. A caller that says it is a member is refused unless it
/// presented a valid certificate. Any certificate the CA signed is good for a member; to keep
/// clients (which may hold certificates from the same CA) from posing as members, give the
/// nodes a member secret as well (`TcpConfig::peer_secret`).
///
/// The name checked in a peer's certificate is the host of its address: the host name of a
/// [`crate::PeerAddr::Host`], the IP address of a [`crate::PeerAddr::Socket`]. Give every node
/// a certificate whose subject alternative names include what its peers dial (a DNS name, an
/// IP address, or both).
#[derive(Clone)]
pub struct NodeTls {
    pub(crate) server: Arc<ServerConfig>,
    /// For dialing peers; none without a CA (nothing to verify them with).
    pub(crate) dial: Option<Arc<ClientConfig>>,
    pub(crate) clients: Option<ClientCerts>,
}

impl NodeTls {
    /// Server certificates only: clients verify the node, the node asks them for nothing.
    /// Without a CA the node cannot verify peers, so this fits a one-node cluster; a
    /// transport with peers refuses to start with it.
    pub fn new(identity: TlsIdentity) -> Result<NodeTls, TlsConfigError> {
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::rustls)?
            .with_no_client_auth();
        Ok(NodeTls {
            server: Arc::new(finish_server(server, &identity)?),
            dial: None,
            clients: None,
        })
    }

    /// Mutual TLS with the CA `ca`: peers are verified both ways, and clients according to
    /// `clients`.
    pub fn mutual(
        identity: TlsIdentity,
        ca: TlsRoots,
        clients: ClientCerts,
    ) -> Result<NodeTls, TlsConfigError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(ca.0.clone(), provider());
        let verifier = match clients {
            ClientCerts::Required => verifier,
            ClientCerts::Optional => verifier.allow_unauthenticated(),
        }
        .build()
        .map_err(|e| TlsConfigError::Pem {
            what: "the CA".into(),
            why: e.to_string(),
        })?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::rustls)?
            .with_client_cert_verifier(verifier);
        let dial = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::rustls)?
            .with_root_certificates(ca.0)
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(TlsConfigError::rustls)?;
        Ok(NodeTls {
            server: Arc::new(finish_server(server, &identity)?),
            dial: Some(Arc::new(dial)),
            clients: Some(clients),
        })
    }
}

fn finish_server(
    builder: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    identity: &TlsIdentity,
) -> Result<ServerConfig, TlsConfigError> {
    let mut server = builder
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(TlsConfigError::rustls)?;
    // Connections live long and clients keep no sessions across restarts: tickets would be
    // bytes sent for nothing.
    server.send_tls13_tickets = 0;
    Ok(server)
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("mutual", &self.dial.is_some())
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

/// A client's TLS: the CA its nodes' certificates are checked against, optionally its own
/// certificate (for nodes that require mutual TLS), and which name to check.
///
/// The name checked in a node's certificate is, in order: the one set for that node
/// ([`ClientTls::node_name`]), the one set for all ([`ClientTls::server_name`]), or the IP
/// address dialed.
#[derive(Clone)]
pub struct ClientTls {
    pub(crate) config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    node_names: HashMap<NodeId, ServerName<'static>>,
}

impl NodeTls {
    /// A client's TLS that dials like this node dials its peers: it verifies nodes with the
    /// node's CA and presents the node's certificate where asked (a node's own client, when it
    /// joins a cluster). None without a CA, as there is nothing to verify nodes with.
    pub fn member_client(&self) -> Option<ClientTls> {
        let dial = self.dial.as_ref()?;
        Some(ClientTls::with_config(ClientConfig::clone(dial)))
    }
}

impl ClientTls {
    /// Verifies nodes against `ca`; presents no certificate of its own.
    pub fn new(ca: TlsRoots) -> Result<ClientTls, TlsConfigError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::rustls)?
            .with_root_certificates(ca.0)
            .with_no_client_auth();
        Ok(ClientTls::with_config(config))
    }

    /// Verifies nodes against `ca`, and presents `identity` to nodes that ask (mutual TLS).
    pub fn with_identity(ca: TlsRoots, identity: TlsIdentity) -> Result<ClientTls, TlsConfigError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::rustls)?
            .with_root_certificates(ca.0)
            .with_client_auth_cert(identity.chain, identity.key.clone_key())
            .map_err(TlsConfigError::rustls)?;
        Ok(ClientTls::with_config(config))
    }

    fn with_config(config: ClientConfig) -> ClientTls {
        ClientTls {
            config: Arc::new(config),
            server_name: None,
            node_names: HashMap::new(),
        }
    }

    /// Checks this name (a DNS name or an IP address) in every node's certificate, for a
    /// cluster whose nodes share one name.
    pub fn server_name(mut self, name: &str) -> Result<ClientTls, TlsConfigError> {
        self.server_name = Some(server_name(name)?);
        Ok(self)
    }

    /// Checks this name (a DNS name or an IP address) in `node`'s certificate: the host name
    /// it was given as, say, since the client dials addresses.
    pub fn node_name(mut self, node: NodeId, name: &str) -> Result<ClientTls, TlsConfigError> {
        self.node_names.insert(node, server_name(name)?);
        Ok(self)
    }

    /// The name to check when dialing `node` at `addr`.
    pub(crate) fn name_for(&self, node: NodeId, addr: SocketAddr) -> ServerName<'static> {
        self.node_names
            .get(&node)
            .or(self.server_name.as_ref())
            .cloned()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .field("node_names", &self.node_names)
            .finish_non_exhaustive()
    }
}

/// A DNS name or an IP address, as checked in a certificate.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, TlsConfigError> {
    ServerName::try_from(name.to_owned()).map_err(|e| TlsConfigError::ServerName {
        name: name.to_owned(),
        why: e.to_string(),
    })
}

fn certificates<'a>(
    found: impl Iterator<Item = Result<CertificateDer<'static>, rustls_pki_types::pem::Error>> + 'a,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem_error = |why: String| TlsConfigError::Pem {
        what: what.to_owned(),
        why,
    };
    let certs = found
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}
