//! `scale sessions`: spawned server processes (TCP, file storage with fsync) and many client
//! sessions, each holding one lock through the shipped client, which keeps its lease alive.
//!
//! Reported: each node's resident memory (`VmRSS` in `/proc/<pid>/status`) before the sessions
//! and once they all hold their lock, and per session; then, over `--hold-secs` of nothing but
//! keep-alives, the log entries committed per second, each process's CPU (`/proc/<pid>/stat`)
//! and the bytes on the wire, from the kernel's own counters of every TCP connection (`ss
//! -tinp`: `bytes_sent` and `bytes_received`, the payload of each side).
//!
//! Sessions share `--conns` TCP connections (a client transport carries any number of
//! sessions), so that 100,000 sessions need not be 100,000 sockets; `--conns 0` gives each
//! session its own connection, to see what a connection costs on top.

use super::driven::Error;
use super::support;
use dlm::runtime::{Client, ClientConfig, ClientTransport, TransportError};
use dlm::tcp::{TcpClient, TcpClientConfig};
use dlm::{ClientRequest, ClientResponse, NodeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cluster::ProcessCluster;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Server processes to start.
    #[arg(long, default_value_t = 1)]
    spawn: u64,
    /// Sessions, each taking and holding its own lock.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// TCP connections the sessions share (0: one per session).
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Lease of every grant, in milliseconds (a keep-alive goes every third of it).
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// Acquires in flight at once while the sessions start.
    #[arg(long, default_value_t = 512)]
    parallel: usize,
    /// Seconds to wait once every lock is held, before reading memory.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
    /// Seconds of keep-alives to measure (0: none).
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// Each session releases its lock once granted: sessions that hold nothing, to tell what
    /// a session costs from what a held lock adds.
    #[arg(long, conflicts_with = "hold_secs")]
    release: bool,
}

/// A client transport shared by many sessions.
#[derive(Clone)]
struct Shared(Arc<TcpClient>);

#[async_trait::async_trait]
impl ClientTransport for Shared {
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError> {
        self.0.call(node, request).await
    }
}

pub fn run(args: Args) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(sessions(args))
}

async fn sessions(args: Args) -> Result<(), Error> {
    let mut cluster = ProcessCluster::new(args.spawn, "dlm-scale-", &[])?;
    cluster.start_all()?;
    let nodes: Vec<(u64, SocketAddr)> = cluster.members().to_vec();
    let pids: Vec<(u64, u32)> = cluster
        .ids()
        .iter()
        .filter_map(|id| cluster.pid(*id).map(|p| (*id, p)))
        .collect();
    let admin = dlm::connect_tcp(nodes.clone());
    // One lock cycle first, so that the nodes' start-up allocations are in the baseline.
    let warm = admin.lock("warm-up").await?;
    admin.release(warm).await?;
    let leader = leader_of(&admin).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before: Vec<u64> = pids
        .iter()
        .map(|(_, p)| rss_kib(*p))
        .collect::<Result<_, _>>()?;
    println!(
        "{} node(s), leader {leader}; RSS before: {} KiB; load average {}",
        args.spawn,
        join(&before),
        super::load_average()
    );

    let transports: Vec<Shared> = (0..args.conns.max(1))
        .map(|_| Shared(Arc::new(tcp_client(&nodes))))
        .collect();
    let lease = Duration::from_millis(args.lease_ms);
    let started = Instant::now();
    let mut guards = Vec::with_capacity(args.sessions);
    let mut clients = Vec::with_capacity(args.sessions);
    for wave in (0..args.sessions)
        .collect::<Vec<_>>()
        .chunks(args.parallel.max(1))
    {
        let mut tasks = Vec::new();
        for &i in wave {
            let transport = if args.conns == 0 {
                Shared(Arc::new(tcp_client(&nodes)))
            } else {
                transports[i % transports.len()].clone()
            };
            let mut cfg = ClientConfig::new(nodes.iter().map(|(id, _)| NodeId(*id)));
            cfg.nodes.sort();
            cfg.lease = lease;
            let client = Client::new(transport, cfg);
            let release = args.release;
            tasks.push(tokio::spawn(async move {
                let guard = match client.try_lock(format!("lock-{i}")).await {
                    Ok(guard) if release => client.release(guard).await.map(|()| None),
                    Ok(guard) => Ok(Some(guard)),
                    Err(e) => Err(e),
                };
                (client, guard)
            }));
        }
        for task in tasks {
            let (client, guard) = task.await?;
            guards.extend(guard?);
            clients.push(client);
        }
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let after: Vec<u64> = pids
        .iter()
        .map(|(_, p)| rss_kib(*p))
        .collect::<Result<_, _>>()?;
    let per_session: Vec<String> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| {
            format!(
                "{:.0}",
                (a.saturating_sub(*b) * 1024) as f64 / args.sessions as f64
            )
        })
        .collect();
    println!(
        "{} sessions {} ({} connections), all granted in {:.1} s; RSS after: {} KiB; per session{}: {} bytes",
        args.sessions,
        if args.release { "that took and released a lock" } else { "holding a lock each" },
        if args.conns == 0 { args.sessions } else { transports.len() },
        took.as_secs_f64(),
        join(&after),
        if args.release { "" } else { " with its lock" },
        per_session.join(" / ")
    );

    if args.hold_secs > 0 {
        keepalive_window(&admin, leader, &pids, args.hold_secs).await?;
        let held: Vec<u64> = pids
            .iter()
            .map(|(_, p)| rss_kib(*p))
            .collect::<Result<_, _>>()?;
        println!("RSS after the keep-alives: {} KiB", join(&held));
    }
    let lost = guards.iter().filter(|g| g.is_lost()).count();
    println!(
        "locks lost during the run: {lost}; load average {}",
        super::load_average()
    );
    drop(guards);
    drop(clients);
    drop(cluster);
    Ok(())
}

/// Measures `secs` of keep-alives: entries, CPU and bytes.
async fn keepalive_window(
    admin: &Client<TcpClient>,
    leader: u64,
    pids: &[(u64, u32)],
    secs: u64,
) -> Result<(), Error> {
    let me = std::process::id();
    let node_pids: Vec<u32> = pids.iter().map(|(_, p)| *p).collect();
    let commit_0 = admin.status(NodeId(leader)).await?.commit;
    let cpu_0 = cpu_all(pids, me)?;
    let wire_0 = wire_bytes(&node_pids, me)?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let commit_1 = admin.status(NodeId(leader)).await?.commit;
    let cpu_1 = cpu_all(pids, me)?;
    let wire_1 = wire_bytes(&node_pids, me)?;
    let elapsed = t0.elapsed().as_secs_f64();
    let entries = (commit_1.0 - commit_0.0) as f64 / elapsed;
    let cores: Vec<String> = cpu_1
        .iter()
        .zip(&cpu_0)
        .map(|((who, a), (_, b))| {
            format!("{who} {:.1}%", 100.0 * (*a - *b).as_secs_f64() / elapsed)
        })
        .collect();
    println!(
        "keep-alives over {elapsed:.1} s: {entries:.0} log entries/s; CPU (% of one core): {}; on the wire: clients {:.0} B/s, between nodes {:.0} B/s; load average {}",
        cores.join(", "),
        wire_1.clients.saturating_sub(wire_0.clients) as f64 / elapsed,
        wire_1.peers.saturating_sub(wire_0.peers) as f64 / elapsed,
        super::load_average()
    );
    Ok(())
}

async fn leader_of(admin: &Client<TcpClient>) -> Result<u64, Error> {
    for (id, status) in admin.cluster_status().await {
        if let Ok(status) = status {
            if status.leader == Some(id) {
                return Ok(id.0);
            }
        }
    }
    Err("no leader".into())
}

fn tcp_client(nodes: &[(u64, SocketAddr)]) -> TcpClient {
    let addrs: HashMap<NodeId, SocketAddr> =
        nodes.iter().map(|(id, a)| (NodeId(*id), *a)).collect();
    TcpClient::new(TcpClientConfig::new(dlm::DEFAULT_CLUSTER_ID, addrs))
}

fn join(values: &[u64]) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Resident memory of `pid`, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no VmRSS"))
}

/// CPU time of each node and of this process (the clients).
fn cpu_all(pids: &[(u64, u32)], me: u32) -> Result<Vec<(String, Duration)>, String> {
    let mut all: Vec<(String, Duration)> = pids
        .iter()
        .map(|(id, p)| Ok((format!("node {id}"), support::watch::cpu_time(*p)?)))
        .collect::<Result<_, String>>()?;
    all.push(("clients".into(), support::watch::cpu_time(me)?));
    Ok(all)
}

/// Payload bytes carried so far by the open TCP connections, both directions.
struct Wire {
    /// Connections of the clients (this process) to the nodes.
    clients: u64,
    /// Connections between nodes.
    peers: u64,
}

/// Sums `bytes_sent + bytes_received` from `ss -tinp` over the sockets of this process (each
/// client connection once) and of the nodes; a node's sockets carry the client connections'
/// bytes once more and each peer connection's twice (once per end).
fn wire_bytes(nodes: &[u32], me: u32) -> Result<Wire, Error> {
    let out = std::process::Command::new("ss")
        .args(["-tinpH", "state", "established"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut mine, mut theirs) = (0u64, 0u64);
    let mut owner: Option<u32> = None;
    for line in text.lines() {
        if let Some(at) = line.find("pid=") {
            owner = line[at + 4..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok());
            continue;
        }
        let bytes = counter(line, "bytes_sent:") + counter(line, "bytes_received:");
        match owner.take() {
            Some(p) if p == me => mine += bytes,
            Some(p) if nodes.contains(&p) => theirs += bytes,
            _ => {}
        }
    }
    // Two reads of the same connection's ends a moment apart may differ by a few bytes; the
    // peers' share is what is left once the client connections are taken out.
    Ok(Wire {
        clients: mine,
        peers: theirs.saturating_sub(mine) / 2,
    })
}

fn counter(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(name))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
