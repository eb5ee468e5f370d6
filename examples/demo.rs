//! The dlm demo: a 3-node cluster over TCP on 127.0.0.1 with temporary data directories. Eight
//! clients contend for two locks and append lines to the files those locks guard. Halfway, the
//! leader is killed; a new one is elected and the clients carry on. The killed node is then
//! restarted from its data directory and catches up. At the end every node's files on disk must
//! hold exactly the acknowledged appends, once each, in token order.
//!
//! Run: `cargo run --release --example demo` (exits 0 only if every check passes).

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use dlm::{Server, StartError};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Run the dlm demo.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Locks (and guarded files).
    #[arg(long, default_value_t = 2)]
    locks: usize,
    /// Lock cycles per client.
    #[arg(long, default_value_t = 40)]
    cycles: usize,
}

/// One acknowledged append.
#[derive(Clone, Debug)]
struct Acked {
    token: u64,
    offset: u64,
    data: Vec<u8>,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => println!("\nok: every node holds exactly the acknowledged appends"),
        Err(e) => {
            println!("\nFAILED: {e}");
            std::process::exit(1);
        }
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    members: Vec<(u64, SocketAddr)>,
    servers: BTreeMap<u64, Server>,
}

impl Cluster {
    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    async fn start_node(&mut self, id: u64) -> Result<(), StartError> {
        let addr = self
            .members
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, a)| *a)
            .ok_or(StartError::MissingId)?;
        let mut builder = Server::builder().id(id).data_dir(self.data_dir(id));
        for (peer, peer_addr) in &self.members {
            if *peer != id {
                builder = builder.peer(*peer, *peer_addr);
            }
        }
        let server = builder.serve_tcp(addr).await?;
        self.servers.insert(id, server);
        Ok(())
    }

    /// The leader, once the live nodes agree on one.
    async fn wait_for_leader(&self, timeout: Duration) -> Result<(u64, u64), Failure> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for (id, server) in &self.servers {
                let s = server.status();
                if s.role == dlm::Role::Leader {
                    return Ok((*id, s.term.get()));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("no leader elected in time".into())
    }

    /// Waits until every live node has applied everything the leader committed.
    async fn wait_until_converged(&self, timeout: Duration) -> Result<u64, Failure> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let statuses: Vec<_> = self.servers.values().map(|s| s.status()).collect();
            let commit = statuses
                .iter()
                .filter(|s| s.role == dlm::Role::Leader)
                .map(|s| s.commit)
                .max();
            if let Some(commit) = commit {
                if statuses.iter().all(|s| s.applied == commit) {
                    return Ok(commit.get());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("nodes did not converge in time".into())
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    let members: Vec<(u64, SocketAddr)> = (1..=3)
        .map(|id| Ok((id, TcpListener::bind("127.0.0.1:0")?.local_addr()?)))
        .collect::<std::io::Result<_>>()?;
    let mut cluster = Cluster {
        dir: tempfile::Builder::new().prefix("dlm-demo-").tempdir()?,
        members: members.clone(),
        servers: BTreeMap::new(),
    };
    println!(
        "starting 3 nodes on {}",
        members
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for id in 1..=3 {
        cluster.start_node(id).await?;
    }
    let (first_leader, first_term) = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    println!("node {first_leader} leads (term {first_term})");

    let total = (args.clients * args.cycles) as u64;
    let acked_count = Arc::new(AtomicU64::new(0));
    let acked: Arc<Mutex<BTreeMap<String, Vec<Acked>>>> = Arc::default();
    println!(
        "{} clients x {} cycles on {} locks: lock, append a line, release",
        args.clients, args.cycles, args.locks
    );
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let client = dlm::connect_tcp_with(members.clone(), dlm::DEFAULT_CLUSTER_ID, |c| {
            c.lease = Duration::from_secs(5);
            c.deadline = Duration::from_secs(20);
        });
        let (acked, acked_count) = (acked.clone(), acked_count.clone());
        let lock = format!("lock-{}", i % args.locks.max(1));
        let file = format!("{lock}.log");
        let cycles = args.cycles;
        tasks.push(tokio::spawn(async move {
            for cycle in 0..cycles {
                let guard = client
                    .lock_timeout(lock.as_str(), Duration::from_secs(20))
                    .await?;
                let token = guard.token().get();
                let data = format!("client {i} cycle {cycle} token {token}\n").into_bytes();
                let offset = client.append(&guard, file.as_str(), data.clone()).await?;
                acked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(file.clone())
                    .or_default()
                    .push(Acked {
                        token,
                        offset,
                        data,
                    });
                acked_count.fetch_add(1, Ordering::Relaxed);
                client.release(guard).await?;
            }
            Ok::<(), dlm::ClientError>(())
        }));
    }

    // Halfway through, kill the leader.
    while acked_count.load(Ordering::Relaxed) < total / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (victim, term) = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    println!(
        "{} of {total} appends acknowledged: killing the leader, node {victim} (term {term})",
        acked_count.load(Ordering::Relaxed)
    );
    let killed_at = Instant::now();
    if let Some(server) = cluster.servers.remove(&victim) {
        // As a crash would: no hand-over, so the others have to notice and elect.
        server.kill().await;
    }
    let (new_leader, new_term) = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    println!(
        "node {new_leader} leads (term {new_term}) after {} ms; clients carry on",
        killed_at.elapsed().as_millis()
    );

    for task in tasks {
        task.await??;
    }
    println!("all {total} cycles done");
    println!("restarting node {victim} from its data directory");
    cluster.start_node(victim).await?;
    let commit = cluster
        .wait_until_converged(Duration::from_secs(15))
        .await?;
    println!("all 3 nodes applied up to index {commit}");
    // The lowest-id live node is the preferred leader: once node 1 has caught up, the leader
    // hands over to it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut leader, mut term) = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    while leader != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        (leader, term) = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    }
    println!(
        "node {leader} leads (term {term}){}",
        if leader == 1 {
            ": leadership is back with the lowest id"
        } else {
            ""
        }
    );

    let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    verify(&cluster, &acked)?;
    for server in std::mem::take(&mut cluster.servers).into_values() {
        server.shutdown().await?;
    }
    println!("finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Every node's mirrored files must be exactly the acknowledged appends, in offset order, with
/// tokens strictly increasing (appends to one file are made by successive holders of its lock).
fn verify(cluster: &Cluster, acked: &BTreeMap<String, Vec<Acked>>) -> Result<(), Failure> {
    for (file, appends) in acked {
        let mut appends = appends.clone();
        appends.sort_by_key(|a| a.offset);
        let mut expected = Vec::new();
        let mut last_token = 0;
        for a in &appends {
            if a.offset != expected.len() as u64 {
                return Err(format!(
                    "{file}: acknowledged offsets have a gap or overlap at {}",
                    a.offset
                )
                .into());
            }
            if a.token <= last_token {
                return Err(format!("{file}: token {} after token {last_token}", a.token).into());
            }
            last_token = a.token;
            expected.extend_from_slice(&a.data);
        }
        for id in cluster.servers.keys() {
            let path = file_path(&cluster.data_dir(*id), file);
            let on_disk =
                std::fs::read(&path).map_err(|e| format!("node {id}: {}: {e}", path.display()))?;
            if on_disk != expected {
                return Err(format!(
                    "node {id}: {file} differs from the acknowledged appends ({} vs {} bytes)",
                    on_disk.len(),
                    expected.len()
                )
                .into());
            }
        }
        let first = appends.first().map_or(0, |a| a.token);
        println!(
            "{file}: {} appends, {} bytes, tokens {first}..{last_token} strictly increasing, identical on nodes {:?}",
            appends.len(),
            expected.len(),
            cluster.servers.keys().collect::<Vec<_>>()
        );
    }
    Ok(())
}

fn file_path(data_dir: &Path, file: &str) -> PathBuf {
    data_dir
        .join("files")
        .join(dlm::runtime::escape_file_name(file))
}
