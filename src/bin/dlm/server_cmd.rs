//! `dlm server`: one node of a cluster over TCP.

use crate::addr;
use crate::server_config::{ServerArgs, TlsFiles};
use std::path::Path;
use std::time::Duration;

/// Logs to stderr, filtered by `RUST_LOG` (default: info for dlm, warn elsewhere). Colours
/// only on a terminal: the journal, a container's log or a file get plain text.
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,dlm=info,dlm_core=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Reads a cluster secret file (see [`dlm::ClusterSecret::from_file`]).
pub fn read_secret_file(path: &Path) -> Result<dlm::ClusterSecret, String> {
    dlm::ClusterSecret::from_file(path).map_err(|e| e.to_string())
}

/// The node's TLS from its files.
fn node_tls(files: &TlsFiles) -> Result<dlm::NodeTls, String> {
    let identity = dlm::TlsIdentity::from_pem_files(&files.cert, &files.key);
    let identity = identity.map_err(|e| format!("TLS: {e}"))?;
    let tls = match &files.ca {
        None => dlm::NodeTls::new(identity),
        Some(ca) => {
            let ca = dlm::TlsRoots::from_pem_file(ca).map_err(|e| format!("TLS: {e}"))?;
            let clients = if files.optional_client_cert {
                dlm::ClientCerts::Optional
            } else {
                dlm::ClientCerts::Required
            };
            dlm::NodeTls::mutual(identity, ca, clients)
        }
    };
    tls.map_err(|e| format!("TLS: {e}"))
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
    if let Some(at) = &args.metrics {
        let at = addr::resolve(at)
            .await
            .map_err(|e| format!("--metrics: {e}"))?;
        builder = builder.metrics(at);
    }
    if let Some(path) = &args.admin_secret_file {
        builder = builder.admin_secret(read_secret_file(path)?);
    }
    if let Some(files) = &args.tls {
        builder = builder.tls(node_tls(files)?);
    }
    if let Some(at) = &args.advertise {
        builder = builder.advertise(at.clone());
    }
    if let Some(via) = &args.join {
        if !args.peers.is_empty() {
            return Err("give either --peer or --join, not both".into());
        }
        builder = builder.join(via.clone());
        if args.promote {
            builder = builder.promote_after_join(dlm::JOIN_WITHIN);
        }
    }
    let server = builder
        .serve_tcp(listen)
        .await
        .map_err(|e| format!("node {} cannot start: {e}", args.id))?;
    tracing::info!(id = args.id, addr = ?server.local_addr(), metrics = ?server.metrics_addr(), dir = %args.data_dir.display(), tls = args.tls.is_some(), "serving");
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
