//! A command-line dlm client.
//!
//! ```sh
//! NODES=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! cargo run --release --example client -- --nodes $NODES acquire db --wait-ms 1000 --hold-ms 500
//! cargo run --release --example client -- --nodes $NODES append db journal "hello"
//! cargo run --release --example client -- --nodes $NODES read journal
//! cargo run --release --example client -- --nodes $NODES status
//! # against nodes started with --secret-file
//! cargo run --release --example client -- --nodes $NODES --secret-file /etc/dlm/secret status
//! ```

#[path = "support/mod.rs"]
mod support;

use clap::{Parser, Subcommand};
use dlm::ClusterAccess;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Talk to a dlm cluster.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The members, as ID=ADDR,ID=ADDR,...
    #[arg(long, value_parser = support::parse_members)]
    nodes: support::Members,
    /// Lease to ask for, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// File holding the cluster's shared secret, if its nodes have one (a trailing newline is
    /// ignored).
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Take a lock, hold it, release it; prints the fencing token.
    Acquire {
        /// The lock.
        lock: String,
        /// Wait at most this long (default: try once, fail if busy).
        #[arg(long)]
        wait_ms: Option<u64>,
        /// Hold it this long before releasing.
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
    },
    /// Take a lock, append TEXT (plus a newline) to FILE, release; prints token and offset.
    Append {
        /// The lock guarding the file.
        lock: String,
        /// The file.
        file: String,
        /// The text.
        text: String,
    },
    /// Print a file.
    Read {
        /// The file.
        file: String,
    },
    /// Each node's role, term, leader and commit index.
    Status,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let nodes = args.nodes.0;
    let lease = Duration::from_millis(args.lease_ms);
    let secret = match &args.secret_file {
        Some(path) => Some(support::read_secret_file(path)?),
        None => None,
    };
    let access = ClusterAccess {
        id: dlm::DEFAULT_CLUSTER_ID,
        secret: secret.clone(),
    };
    let status_access = access.clone();
    let client = dlm::connect_tcp_with(nodes.clone(), access, |c| c.lease = lease);
    match args.command {
        Command::Acquire {
            lock,
            wait_ms,
            hold_ms,
        } => {
            let guard = match wait_ms {
                None => client.try_lock(lock.as_str()).await?,
                Some(ms) => {
                    client
                        .lock_timeout(lock.as_str(), Duration::from_millis(ms))
                        .await?
                }
            };
            println!("acquired {lock} with token {}", guard.token());
            tokio::time::sleep(Duration::from_millis(hold_ms)).await;
            client.release(guard).await?;
            println!("released {lock}");
        }
        Command::Append { lock, file, text } => {
            let guard = client
                .lock_timeout(lock.as_str(), Duration::from_secs(10))
                .await?;
            let token = guard.token();
            let offset = client
                .append(&guard, file.as_str(), format!("{text}\n").into_bytes())
                .await?;
            client.release(guard).await?;
            println!("appended to {file} at offset {offset} under token {token}");
        }
        Command::Read { file } => {
            let data = client.read(file.as_str()).await?;
            print!("{}", String::from_utf8_lossy(&data));
        }
        Command::Status => status(&nodes, status_access).await,
    }
    Ok(())
}

/// Asks every node about itself at once, through the client's own status call (each bounded
/// by a 2 s deadline, so that one unreachable node is reported, with why, rather than waited on).
async fn status(nodes: &[(u64, SocketAddr)], access: ClusterAccess) {
    let client = dlm::connect_tcp_with(nodes.to_vec(), access, |c| {
        c.deadline = Duration::from_secs(2);
    });
    for ((id, addr), (_, answer)) in nodes.iter().zip(client.cluster_status().await) {
        match answer {
            Ok(s) => println!(
                "node {id} ({addr}): {:?}, term {}, leader {}, commit {}, applied {}",
                s.role,
                s.term,
                s.leader.map_or("none".to_string(), |l| l.to_string()),
                s.commit,
                s.applied
            ),
            Err(e) => println!("node {id} ({addr}): {e}"),
        }
    }
}
