//! `dlm server`: one node of a cluster over TCP.

use crate::addr::{self, Member};
use crate::server_config::{merge, FileSettings, FlagSettings, Settings};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// A TOML file with any of these settings (`id`, `listen`, `peers = ["2=host:port", ...]`,
    /// `data_dir`, `cluster_id`, `election_ms`, `heartbeat_ms`, `lock_delay_ms`, `lease_ms`,
    /// `secret_file`, `peer_secret_file`); a flag given as well wins.
    #[arg(long, value_name = "PATH")]
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
}

impl ServerArgs {
    fn settings(self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        let flags = FlagSettings {
            id: self.id,
            listen: self.listen,
            peers: self.peers,
            data_dir: self.data_dir,
            cluster_id: self.cluster_id,
            election_ms: self.election_ms,
            heartbeat_ms: self.heartbeat_ms,
            lock_delay_ms: self.lock_delay_ms,
            lease_ms: self.lease_ms,
            secret_file: self.secret_file,
            peer_secret_file: self.peer_secret_file,
        };
        merge(flags, file)
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: info for dlm, warn elsewhere).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,dlm=info,dlm_core=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Reads a cluster secret: the file's bytes, less one trailing newline (so that a file written
/// by `echo` or an editor works).
pub fn read_secret_file(path: &Path) -> Result<dlm::ClusterSecret, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    dlm::ClusterSecret::new(bytes).map_err(|e| format!("secret file {}: {e}", path.display()))
}

pub async fn run(args: ServerArgs) -> Result<i32, String> {
    let args = args.settings()?;
    init_tracing();
    let listen = addr::resolve(&args.listen).await?;
    let mut builder = dlm::Server::builder()
        .id(args.id)
        .cluster_id(args.cluster_id)
        .data_dir(&args.data_dir)
        .election_timeout(Duration::from_millis(args.election_ms))
        .heartbeat_interval(Duration::from_millis(args.heartbeat_ms))
        .lock_delay(Duration::from_millis(args.lock_delay_ms));
    if let Some(ms) = args.lease_ms {
        builder = builder.lease_cap(Duration::from_millis(ms));
    }
    for peer in &args.peers {
        builder = builder.peer_host(peer.id, peer.host_port.clone());
    }
    if let Some(path) = &args.secret_file {
        builder = builder.secret(read_secret_file(path)?);
    }
    if let Some(path) = &args.peer_secret_file {
        builder = builder.peer_secret(read_secret_file(path)?);
    }
    let server = builder
        .serve_tcp(listen)
        .await
        .map_err(|e| format!("node {} cannot start: {e}", args.id))?;
    tracing::info!(id = args.id, addr = ?server.local_addr(), dir = %args.data_dir.display(), "serving");
    tokio::select! {
        signal = wait_for_signal() => signal.map_err(|e| format!("signals: {e}"))?,
        stopped = server.stopped() => return Err(format!("node {}: {stopped}", args.id)),
    }
    tracing::info!("stopping");
    server
        .shutdown()
        .await
        .map_err(|e| format!("node {} stopped on an error: {e}", args.id))?;
    Ok(0)
}

async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
