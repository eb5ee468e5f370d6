//! Why TLS failed: at set-up ([`TlsConfigError`]) or on a connection ([`TlsError`]).

use rustls::{AlertDescription, CertificateError};
use std::io;
use std::path::{Path, PathBuf};

/// TLS settings that cannot be used: a file unreadable, PEM without what it should hold, a key
/// that does not match its certificate, a name that is neither a DNS name nor an IP address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// PEM text did not hold what it should.
    #[error("{what}: {why}")]
    Pem {
        /// What was being read (e.g. "the CA", or a file name).
        what: String,
        /// What was wrong.
        why: String,
    },
    /// rustls refused the certificate and key (a key that does not match, an unsupported
    /// algorithm).
    #[error("unusable certificate or key: {0}")]
    Rejected(String),
    /// Not a DNS name or an IP address.
    #[error("{name:?} is not a DNS name or an IP address to check in a certificate: {why}")]
    ServerName {
        /// The name given.
        name: String,
        /// Why it does not parse.
        why: String,
    },
    /// The node has peers but no CA to verify them with.
    #[error(
        "TLS between nodes needs a CA to verify the peers' certificates (NodeTls::mutual, \
         --tls-ca); a node with server certificates only must have no peers"
    )]
    NoCaForPeers,
}

impl TlsConfigError {
    pub(crate) fn rustls(e: rustls::Error) -> TlsConfigError {
        TlsConfigError::Rejected(e.to_string())
    }

    /// Names the files in a PEM error.
    pub(crate) fn in_file(self, cert: &Path, key: &Path) -> TlsConfigError {
        match self {
            TlsConfigError::Pem { what, why } if what == "the private key" => TlsConfigError::Pem {
                what: format!("{} ({what})", key.display()),
                why,
            },
            TlsConfigError::Pem { what, why } => TlsConfigError::Pem {
                what: format!("{} ({what})", cert.display()),
                why,
            },
            other => other,
        }
    }
}

/// Why a TLS connection failed, in terms of what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The other side's certificate is not signed by a CA this side trusts.
    #[error("certificate not trusted: {0} (is this side given the CA that signed it?)")]
    NotTrusted(String),
    /// The other side's certificate does not name the host this side checked.
    #[error("certificate name mismatch: {0}")]
    NameMismatch(String),
    /// The other side's certificate is unusable otherwise (expired, not yet valid, not for
    /// this purpose...).
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// The caller presented no certificate where one is required.
    #[error("no certificate presented, and this node requires one (mutual TLS)")]
    NoCertificate,
    /// The other side refused this side's certificate, or its lack of one.
    #[error("refused by the other side: {0}")]
    RefusedByPeer(String),
    /// The other side does not speak TLS (a plain TCP node or client, or garbage).
    #[error("the other side does not speak TLS ({0})")]
    NotTls(String),
    /// Any other failure of the TLS protocol.
    #[error("{0}")]
    Protocol(String),
}

impl TlsError {
    /// The TLS cause of `e`, if rustls put one there.
    pub(crate) fn of_io(e: &io::Error) -> Option<TlsError> {
        let rustls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
        Some(TlsError::from(rustls))
    }
}

impl From<&rustls::Error> for TlsError {
    fn from(e: &rustls::Error) -> TlsError {
        use rustls::Error as E;
        match e {
            E::InvalidCertificate(cert) => certificate(cert),
            E::NoCertificatesPresented => TlsError::NoCertificate,
            E::AlertReceived(alert) => TlsError::RefusedByPeer(alert_reason(*alert)),
            E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
                TlsError::NotTls(e.to_string())
            }
            other => TlsError::Protocol(other.to_string()),
        }
    }
}

fn certificate(e: &CertificateError) -> TlsError {
    use CertificateError as C;
    match e {
        C::UnknownIssuer => TlsError::NotTrusted("signed by an unknown CA".into()),
        C::BadSignature => TlsError::NotTrusted("its signature does not verify".into()),
        C::NotValidForNameContext {
            expected,
            presented,
        } => TlsError::NameMismatch(format!(
            "it is not valid for {} (it names {}); check the name dialed, or set the name to \
             check",
            expected.to_str(),
            presented
                .iter()
                .map(|name| unquoted(name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        C::NotValidForName => TlsError::NameMismatch(
            "it is not valid for the name checked; check the name dialed, or set the name to \
             check"
                .into(),
        ),
        other => TlsError::BadCertificate(format!("{other:?}")),
    }
}

/// `x` out of `DnsName("x")` or `IpAddress(x)`, as webpki lists the names a certificate has.
fn unquoted(name: &str) -> &str {
    let inner = match name.split_once('(') {
        Some((_, rest)) => rest.strip_suffix(')').unwrap_or(rest),
        None => name,
    };
    inner.trim_matches('"')
}

fn alert_reason(alert: AlertDescription) -> String {
    use AlertDescription as A;
    match alert {
        A::CertificateRequired => {
            "it requires a certificate from this side (mutual TLS: give one)".into()
        }
        A::UnknownCA => "it does not trust this side's certificate (unknown CA)".into(),
        A::BadCertificate | A::CertificateUnknown | A::UnsupportedCertificate => {
            format!("it refused this side's certificate ({alert:?})")
        }
        A::CertificateExpired => "it says this side's certificate has expired".into(),
        A::DecodeError | A::UnexpectedMessage => {
            format!(
                "it could not read this side's handshake ({alert:?}): is this side speaking TLS?"
            )
        }
        other => format!("alert {other:?}"),
    }
}
