//! One dlm node over TCP.
//!
//! ```sh
//! cargo run --release --example server -- --id 1 --listen 127.0.0.1:7001 \
//!     --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --data-dir /tmp/dlm-1
//! ```
//!
//! Guarded files appear under `DIR/files/`. Stops cleanly on SIGINT or SIGTERM; exits with
//! status 1 and the reason if the node stops on its own (a full disk, say). With
//! `--secret-file`, peers and clients must know the same secret.

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Run one dlm node.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// This node's id (lower ids are preferred as leader).
    #[arg(long)]
    id: u64,
    /// Where to listen for peers and clients.
    #[arg(long)]
    listen: SocketAddr,
    /// Another member, as ID=ADDR (repeat for each).
    #[arg(long = "peer", value_parser = support::parse_member)]
    peers: Vec<(u64, SocketAddr)>,
    /// Where to keep the write-ahead log, snapshots and guarded files.
    #[arg(long)]
    data_dir: PathBuf,
    /// Base election time-out in milliseconds.
    #[arg(long, default_value_t = 300)]
    election_ms: u64,
    /// Heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Lock-delay after a lease expires, in milliseconds (leases themselves are chosen by
    /// each client when it acquires, up to --lease-ms).
    #[arg(long, default_value_t = 0)]
    lock_delay_ms: u64,
    /// Longest lease this node grants as leader, in milliseconds; clients asking for more are
    /// refused (default: the cluster's limit, 300000).
    #[arg(long)]
    lease_ms: Option<u64>,
    /// File holding the cluster's shared secret (at least 16 bytes; a trailing newline is
    /// ignored). Peers and clients must then use the same secret.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// File holding a secret for members only (at least 16 bytes): peers then prove this one
    /// instead of --secret-file's, so a client cannot pose as a node. Same on every node.
    #[arg(long, value_name = "PATH")]
    peer_secret_file: Option<PathBuf>,
}

// One node per process: a single-threaded runtime avoids cross-thread wake-ups (BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    support::init_tracing();
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("server: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = dlm::Server::builder()
        .id(args.id)
        .data_dir(&args.data_dir)
        .election_timeout(Duration::from_millis(args.election_ms))
        .heartbeat_interval(Duration::from_millis(args.heartbeat_ms))
        .lock_delay(Duration::from_millis(args.lock_delay_ms));
    if let Some(ms) = args.lease_ms {
        builder = builder.lease_cap(Duration::from_millis(ms));
    }
    for (id, addr) in &args.peers {
        builder = builder.peer(*id, *addr);
    }
    if let Some(path) = &args.secret_file {
        builder = builder.secret(support::read_secret_file(path)?);
    }
    if let Some(path) = &args.peer_secret_file {
        builder = builder.peer_secret(support::read_secret_file(path)?);
    }
    let server = builder.serve_tcp(args.listen).await?;
    tracing::info!(id = args.id, addr = ?server.local_addr(), dir = %args.data_dir.display(), "serving");
    // A node that stops on its own (a full disk, a storage error) ends the process with an
    // error, so that a supervisor restarts it instead of keeping a deaf process alive.
    tokio::select! {
        signal = wait_for_signal() => signal?,
        stopped = server.stopped() => return Err(stopped.into()),
    }
    tracing::info!("stopping");
    server.shutdown().await?;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
