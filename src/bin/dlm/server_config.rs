//! `dlm server`'s settings: command-line flags over an optional TOML file (`--config`), so a
//! deployment can keep one file per node and still override a setting for one run.
//!
//! ```toml
//! id = 1
//! listen = "0.0.0.0:7001"
//! peers = ["2=node2:7001", "3=node3:7001"]
//! data_dir = "/var/lib/dlm"
//! # optional: cluster_id, election_ms, heartbeat_ms, lock_delay_ms, lease_ms,
//! # secret_file, peer_secret_file, admin_secret_file, metrics = "127.0.0.1:9464",
//! # tls_cert, tls_key, tls_ca, tls_optional_client_cert, advertise, join, promote
//! ```

use crate::addr::{self, Member};
use clap::Args;
use dlm::DEFAULT_CLUSTER_ID;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The settings, as flags and as keys of the `--config` file alike (unknown keys refused: a
/// typo must not pass as a default).
#[derive(Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerArgs {
    /// A TOML file with any of these settings (`id`, `listen`, `peers = ["2=host:port", ...]`,
    /// `data_dir`, `cluster_id`, `election_ms`, `heartbeat_ms`, `lock_delay_ms`, `lease_ms`,
    /// `secret_file`, `peer_secret_file`, `admin_secret_file`, `metrics`, `tls_cert`, `tls_key`,
    /// `tls_ca`, `tls_optional_client_cert`, `advertise`, `join`, `promote`); a flag given as
    /// well wins.
    #[arg(long, value_name = "PATH")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// This node's id (lower ids are preferred as leader).
    #[arg(long)]
    id: Option<u64>,
    /// Where to listen for peers and clients, as HOST:PORT.
    #[arg(long)]
    listen: Option<String>,
    /// Another member, as ID=HOST:PORT (repeat for each; not this node itself). A host name is
    /// looked up again at every connection attempt, so a peer that moves is found again.
    #[arg(long = "peer", value_parser = addr::parse_member)]
    #[serde(default)]
    peers: Vec<Member>,
    /// Where to keep the write-ahead log, snapshots and guarded files. It records which node
    /// of which cluster owns it, and refuses to serve another.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The cluster's id (every node and client of a cluster the same) [default: dlm's].
    #[arg(long)]
    cluster_id: Option<u64>,
    /// Base election time-out in milliseconds [default: 300].
    #[arg(long)]
    election_ms: Option<u64>,
    /// Heartbeat interval in milliseconds [default: 50].
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Lock-delay after a lease expires, in milliseconds [default: 0].
    #[arg(long)]
    lock_delay_ms: Option<u64>,
    /// Longest lease this node grants as leader, in milliseconds [default: the cluster's
    /// limit, 300000].
    #[arg(long)]
    lease_ms: Option<u64>,
    /// File holding the cluster's shared secret (at least 16 bytes; a trailing newline is
    /// ignored). Peers and clients must then use the same secret.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// File holding a secret for members only: peers then prove this one instead of
    /// --secret-file's, so a client cannot pose as a node. Same on every node.
    #[arg(long, value_name = "PATH")]
    peer_secret_file: Option<PathBuf>,
    /// Serve Prometheus metrics at GET http://ADDR/metrics, ADDR as HOST:PORT [default: no
    /// listener]. Bind it to a private address: it has no authentication.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// File holding the operators' secret: only clients that prove it may list locks and
    /// sessions or revoke (with --secret-file and without this, no client may). Same on every
    /// node.
    #[arg(long, value_name = "PATH")]
    admin_secret_file: Option<PathBuf>,
    /// This node's certificate chain (PEM; its own certificate first). With --tls-key, every
    /// connection to and from this node is TLS. The certificate must name (as a subject
    /// alternative name) the host its peers and clients dial: a DNS name, an IP address, or
    /// both.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The CA (PEM, one or more certificates) that signs the cluster's certificates: mutual
    /// TLS. Nodes verify each other against it, and clients must present a certificate it
    /// signed (unless --tls-optional-client-cert). Needed by a node with peers.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// With --tls-ca, also serve clients that present no certificate (members must still
    /// present theirs).
    #[arg(long, requires = "tls_ca")]
    #[serde(default)]
    tls_optional_client_cert: bool,
    /// Where the other members and clients reach this node, as HOST:PORT [default: the
    /// --listen address, unless it is a wildcard such as 0.0.0.0]. It goes into the cluster's
    /// configuration.
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Join a running cluster through the member at HOST:PORT instead of naming peers: start
    /// outside the configuration, ask to be added as a learner at the --advertise address,
    /// and catch up. Safe to keep on later starts (a member is not added again).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "peers")]
    join: Option<String>,
    /// With --join: also ask to be promoted to voter once caught up, and serve only then.
    #[arg(long, requires = "join")]
    #[serde(default)]
    promote: bool,
}

impl ServerArgs {
    /// The flags over the `--config` file, if one was given.
    pub fn settings(self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => load(path)?,
            None => ServerArgs::default(),
        };
        merge(self, file)
    }
}

/// Reads and parses a config file; the error names the file and, for a syntax error, the place.
fn load(path: &Path) -> Result<ServerArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

fn parse(text: &str) -> Result<ServerArgs, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// Everything a node needs, after flags and file are merged.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub id: u64,
    pub listen: String,
    pub peers: Vec<Member>,
    pub data_dir: PathBuf,
    pub cluster_id: u64,
    pub election_ms: u64,
    pub heartbeat_ms: u64,
    pub lock_delay_ms: u64,
    pub lease_ms: Option<u64>,
    pub secret_file: Option<PathBuf>,
    pub peer_secret_file: Option<PathBuf>,
    pub metrics: Option<String>,
    pub admin_secret_file: Option<PathBuf>,
    pub tls: Option<TlsFiles>,
    pub advertise: Option<String>,
    pub join: Option<String>,
    pub promote: bool,
}

/// The TLS files of a node.
#[derive(Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub optional_client_cert: bool,
}

/// The TLS settings, checked for what only makes sense together.
fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    optional_client_cert: bool,
) -> Result<Option<TlsFiles>, String> {
    match (cert, key) {
        (Some(cert), Some(key)) => {
            if optional_client_cert && ca.is_none() {
                return Err(
                    "tls_optional_client_cert needs tls_ca: without a CA no client \
                            certificate is asked for anyway"
                        .into(),
                );
            }
            Ok(Some(TlsFiles {
                cert,
                key,
                ca,
                optional_client_cert,
            }))
        }
        (None, None) if ca.is_none() && !optional_client_cert => Ok(None),
        (None, None) => Err("tls_ca and tls_optional_client_cert need tls_cert and tls_key".into()),
        (Some(_), None) => Err("tls_cert needs tls_key (the certificate's private key)".into()),
        (None, Some(_)) => Err("tls_key needs tls_cert (the certificate it belongs to)".into()),
    }
}

/// A flag wins over the file; the peer list is taken whole from the flags if any `--peer` is
/// given, else from the file.
fn merge(flags: ServerArgs, file: ServerArgs) -> Result<Settings, String> {
    let missing = |what: &str| format!("{what} is not set (give the flag or put it in --config)");
    Ok(Settings {
        id: flags.id.or(file.id).ok_or_else(|| missing("--id"))?,
        listen: flags
            .listen
            .or(file.listen)
            .ok_or_else(|| missing("--listen"))?,
        peers: if flags.peers.is_empty() {
            file.peers
        } else {
            flags.peers
        },
        data_dir: flags
            .data_dir
            .or(file.data_dir)
            .ok_or_else(|| missing("--data-dir"))?,
        cluster_id: flags
            .cluster_id
            .or(file.cluster_id)
            .unwrap_or(DEFAULT_CLUSTER_ID),
        election_ms: flags.election_ms.or(file.election_ms).unwrap_or(300),
        heartbeat_ms: flags.heartbeat_ms.or(file.heartbeat_ms).unwrap_or(50),
        lock_delay_ms: flags.lock_delay_ms.or(file.lock_delay_ms).unwrap_or(0),
        lease_ms: flags.lease_ms.or(file.lease_ms),
        secret_file: flags.secret_file.or(file.secret_file),
        peer_secret_file: flags.peer_secret_file.or(file.peer_secret_file),
        metrics: flags.metrics.or(file.metrics),
        admin_secret_file: flags.admin_secret_file.or(file.admin_secret_file),
        tls: tls_files(
            flags.tls_cert.or(file.tls_cert),
            flags.tls_key.or(file.tls_key),
            flags.tls_ca.or(file.tls_ca),
            flags.tls_optional_client_cert || file.tls_optional_client_cert,
        )?,
        advertise: flags.advertise.or(file.advertise),
        join: flags.join.or(file.join),
        promote: flags.promote || file.promote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        id = 1
        listen = "0.0.0.0:7001"
        peers = ["2=node2:7001", "3=node3:7001"]
        data_dir = "/var/lib/dlm"
        election_ms = 600
        metrics = "127.0.0.1:9464"
        admin_secret_file = "/etc/dlm/admin"
    "#;

    #[test]
    fn the_file_fills_in_what_the_flags_leave_out() {
        let flags = ServerArgs {
            election_ms: Some(900),
            ..ServerArgs::default()
        };
        let s = merge(flags, parse(FILE).unwrap()).unwrap();
        assert_eq!((s.id, s.listen.as_str()), (1, "0.0.0.0:7001"));
        assert_eq!(s.peers.len(), 2);
        assert_eq!(s.peers[1].host_port, "node3:7001");
        assert_eq!(s.election_ms, 900, "a flag wins over the file");
        assert_eq!((s.heartbeat_ms, s.cluster_id), (50, DEFAULT_CLUSTER_ID));
        assert_eq!(s.metrics.as_deref(), Some("127.0.0.1:9464"));
        let flags = ServerArgs {
            metrics: Some("0.0.0.0:9100".into()),
            ..ServerArgs::default()
        };
        let s = merge(flags, parse(FILE).unwrap()).unwrap();
        assert_eq!(s.metrics.as_deref(), Some("0.0.0.0:9100"), "a flag wins");
        assert_eq!(s.admin_secret_file, Some(PathBuf::from("/etc/dlm/admin")));
    }

    #[test]
    fn bad_files_and_missing_settings_are_named() {
        let typo = parse("id = 1\nelection_msec = 5\n").unwrap_err();
        assert!(typo.contains("election_msec"), "{typo}");
        let syntax = parse("id = \n").unwrap_err();
        assert!(syntax.contains("line 1"), "{syntax}");
        let wrong_type = parse("id = \"one\"\n").unwrap_err();
        assert!(wrong_type.contains("id"), "{wrong_type}");
        let bad_peer = parse("peers = [\"2-node2\"]").unwrap_err();
        assert!(bad_peer.contains("ID=HOST:PORT"), "{bad_peer}");
        assert!(
            parse("config = \"x\"").is_err(),
            "a file cannot name another file"
        );
        let none = merge(ServerArgs::default(), ServerArgs::default()).unwrap_err();
        assert!(none.contains("--id"), "{none}");
    }

    #[test]
    fn tls_files_come_from_the_file_and_must_go_together() {
        let tls = format!(
            "{FILE}\ntls_cert = \"/etc/dlm/node.pem\"\ntls_key = \"/etc/dlm/node.key\"\n\
             tls_ca = \"/etc/dlm/ca.pem\"\ntls_optional_client_cert = true\n"
        );
        let s = merge(ServerArgs::default(), parse(&tls).unwrap()).unwrap();
        let files = s.tls.unwrap();
        assert_eq!(files.cert, PathBuf::from("/etc/dlm/node.pem"));
        assert_eq!(files.ca, Some(PathBuf::from("/etc/dlm/ca.pem")));
        assert!(files.optional_client_cert);
        assert_eq!(
            merge(ServerArgs::default(), parse(FILE).unwrap())
                .unwrap()
                .tls,
            None
        );

        let lone_cert = format!("{FILE}\ntls_cert = \"/etc/dlm/node.pem\"\n");
        let e = merge(ServerArgs::default(), parse(&lone_cert).unwrap()).unwrap_err();
        assert!(e.contains("tls_key"), "{e}");
        let lone_ca = format!("{FILE}\ntls_ca = \"/etc/dlm/ca.pem\"\n");
        let e = merge(ServerArgs::default(), parse(&lone_ca).unwrap()).unwrap_err();
        assert!(e.contains("need tls_cert"), "{e}");
        let no_ca =
            format!("{FILE}\ntls_cert = \"a\"\ntls_key = \"b\"\ntls_optional_client_cert = true\n");
        let e = merge(ServerArgs::default(), parse(&no_ca).unwrap()).unwrap_err();
        assert!(e.contains("needs tls_ca"), "{e}");
    }
}
