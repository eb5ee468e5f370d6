//! What the cluster tests share, whatever the transport: client tuning, waiting for a leader,
//! lock cycles that record every acknowledged append, the leader-loss scenario, and the checks
//! that a file holds exactly what was acknowledged.
#![allow(dead_code)]

mod ports;
use dlm::runtime::ClientTransport;
use dlm::{Client, ClientConfig, ClientError, Role, Server};
pub use ports::free_port;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Client settings for tests: short enough that a failover is retried within a few seconds.
pub fn tune(cfg: &mut ClientConfig) {
    cfg.lease = Duration::from_secs(2);
    cfg.attempt_timeout = Duration::from_millis(300);
    cfg.deadline = Duration::from_secs(8);
    cfg.backoff_base = Duration::from_millis(10);
    cfg.backoff_cap = Duration::from_millis(200);
}

/// One acknowledged append.
#[derive(Clone, Debug)]
pub struct Acked {
    pub token: u64,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Every acknowledged append, per file, and how many there are.
#[derive(Clone)]
pub struct Ledger {
    files: Arc<Mutex<BTreeMap<String, Vec<Acked>>>>,
    count: Arc<AtomicU64>,
    // Wakes a waiter the moment a count is reached (under paused time a sleep-and-poll loop
    // could see the whole run finish in one tick).
    progress: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            files: Arc::default(),
            count: Arc::default(),
            progress: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl Ledger {
    pub fn record(&self, file: &str, acked: Acked) {
        self.files
            .lock()
            .unwrap()
            .entry(file.to_owned())
            .or_default()
            .push(acked);
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        self.progress.send_replace(n);
    }

    /// Waits until `n` appends are acknowledged, at most `timeout` of tokio time.
    pub async fn reached(&self, n: u64, timeout: Duration) {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} appends not acknowledged within {timeout:?}"))
            .unwrap();
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    pub fn files(&self) -> BTreeMap<String, Vec<Acked>> {
        self.files.lock().unwrap().clone()
    }
}

/// `cycles` rounds of: lock, append one line naming the client, cycle and token, release.
pub async fn run_cycles<T: ClientTransport>(
    client: Client<T>,
    who: usize,
    lock: String,
    cycles: usize,
    ledger: Ledger,
) -> Result<(), ClientError> {
    let file = format!("{lock}.log");
    for cycle in 0..cycles {
        let guard = client
            .lock_timeout(lock.as_str(), Duration::from_secs(10))
            .await?;
        let token = guard.token().get();
        let data = format!("client {who} cycle {cycle} token {token}\n").into_bytes();
        let offset = client.append(&guard, file.as_str(), data.clone()).await?;
        ledger.record(
            &file,
            Acked {
                token,
                offset,
                data,
            },
        );
        client.release(guard).await?;
    }
    Ok(())
}

/// The node that reports itself leader (the one of the highest term if several do), within
/// `timeout` of tokio time.
pub async fn wait_for_leader(servers: &BTreeMap<u64, Server>, timeout: Duration) -> (u64, u64) {
    let deadline = Instant::now() + timeout;
    loop {
        let leader = servers
            .iter()
            .map(|(id, s)| (*id, s.status()))
            .filter(|(_, s)| s.role == Role::Leader)
            .max_by_key(|(_, s)| s.term)
            .map(|(id, s)| (id, s.term.get()));
        if let Some(found) = leader {
            return found;
        }
        assert!(Instant::now() < deadline, "no leader within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every node in `servers` names the same leader in the same term, that leader is
/// one of them, and all have applied its commit index. Returns the leader.
pub async fn wait_until_settled(servers: &BTreeMap<u64, Server>, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let statuses: Vec<_> = servers.values().map(Server::status).collect();
        let first = &statuses[0];
        let agreed = statuses
            .iter()
            .all(|s| s.term == first.term && s.leader == first.leader);
        let commit = statuses
            .iter()
            .find(|s| s.role == Role::Leader)
            .map(|s| s.commit);
        if let (true, Some(leader), Some(commit)) = (agreed, first.leader, commit) {
            if servers.contains_key(&leader.get()) && statuses.iter().all(|s| s.applied == commit) {
                return leader.get();
            }
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not settle within {timeout:?}: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records, for the whole test, which node led in which term, to check that no term ever had
/// two leaders.
#[derive(Clone, Default)]
pub struct LeaderLog {
    seen: Arc<Mutex<BTreeMap<u64, BTreeSet<u64>>>>,
}

impl LeaderLog {
    pub fn watch(&self, server: &Server) {
        let mut rx = server.watch_status();
        let seen = self.seen.clone();
        tokio::spawn(async move {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if s.role == Role::Leader {
                        seen.lock()
                            .unwrap()
                            .entry(s.term.get())
                            .or_default()
                            .insert(s.id.get());
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// Terms that had a leader, with their leaders; panics if any had two.
    pub fn check(&self) -> BTreeMap<u64, u64> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .map(|(term, ids)| {
                assert_eq!(ids.len(), 1, "term {term} had leaders {ids:?}");
                (*term, *ids.iter().next().unwrap())
            })
            .collect()
    }
}

/// The expected content of a file from its acknowledged appends, checking that they tile the
/// file (no gap, no overlap) and that tokens strictly grow along it.
pub fn expected_content(file: &str, appends: &[Acked]) -> Vec<u8> {
    let mut appends = appends.to_vec();
    appends.sort_by_key(|a| a.offset);
    let mut expected = Vec::new();
    let mut last_token = 0;
    for a in &appends {
        assert_eq!(
            a.offset,
            expected.len() as u64,
            "{file}: acknowledged appends leave a gap or overlap"
        );
        assert!(
            a.token > last_token,
            "{file}: token {} after {last_token}",
            a.token
        );
        last_token = a.token;
        expected.extend_from_slice(&a.data);
    }
    expected
}

/// A cluster under test, whatever carries its messages.
pub trait Harness {
    /// The clients' transport.
    type Transport: ClientTransport + 'static;
    /// The running nodes.
    fn servers(&mut self) -> &mut BTreeMap<u64, Server>;
    /// A new client of every member.
    fn client(&self, seed: u64) -> Client<Self::Transport>;
}

/// Scenario 1: clients keep locking and appending while the leader is shut down halfway. Returns
/// the acknowledged appends, the old leader, and the new one; the caller checks the survivors'
/// files against them.
pub async fn leader_loss<H: Harness>(
    h: &mut H,
    clients: usize,
    locks: usize,
    cycles: usize,
) -> (Ledger, u64, u64) {
    let log = LeaderLog::default();
    for server in h.servers().values() {
        log.watch(server);
    }
    let (_, old_term) = wait_for_leader(h.servers(), Duration::from_secs(10)).await;
    let ledger = Ledger::default();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let client = h.client(100 + i as u64);
        let lock = format!("lock-{}", i % locks);
        tasks.push(tokio::spawn(run_cycles(
            client,
            i,
            lock,
            cycles,
            ledger.clone(),
        )));
    }
    let total = (clients * cycles) as u64;
    ledger.reached(total / 2, Duration::from_secs(20)).await;
    let (victim, _) = wait_for_leader(h.servers(), Duration::from_secs(5)).await;
    let server = h.servers().remove(&victim).unwrap();
    // A crash, not a planned stop: the others must notice the silence and elect.
    server.kill().await;
    let at_kill = ledger.count();
    assert!(
        at_kill < total,
        "the cycles finished before the leader died"
    );

    let (new_leader, new_term) = wait_for_leader(h.servers(), Duration::from_secs(10)).await;
    assert_ne!(new_leader, victim, "the dead node cannot lead");
    assert!(new_term > old_term, "a new leader needs a new term");

    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(ledger.count(), total, "every cycle completes");
    assert!(
        ledger.count() > at_kill,
        "appends were acknowledged after the leader died"
    );
    wait_until_settled(h.servers(), Duration::from_secs(10)).await;
    log.check();
    (ledger, victim, new_leader)
}

/// Starts one in-memory node per id in `ids`, each knowing the others as members.
pub async fn start_mem_cluster(net: &dlm::mem::MemNetwork, ids: &[u64]) -> Vec<Server> {
    let mut servers = Vec::new();
    for &id in ids {
        let mut builder = Server::builder().id(id);
        for peer in ids.iter().filter(|p| **p != id) {
            builder = builder.member(*peer);
        }
        servers.push(builder.serve_mem(net).await.unwrap());
    }
    servers
}

/// `n` members numbered from 1, each on a free loopback port ([`free_port`]).
pub fn local_members(n: u64) -> Vec<(u64, std::net::SocketAddr)> {
    (1..=n)
        .map(|id| {
            (
                id,
                std::net::SocketAddr::from(([127, 0, 0, 1], free_port())),
            )
        })
        .collect()
}

/// Starts one node of `members` per id on the in-memory network `net`.
#[cfg(feature = "mem")]
pub async fn serve_mem(net: &dlm::mem::MemNetwork, members: &[u64]) -> BTreeMap<u64, Server> {
    let mut servers = BTreeMap::new();
    for id in members {
        let mut builder = Server::builder().id(*id);
        for peer in members.iter().filter(|p| *p != id) {
            builder = builder.member(*peer);
        }
        servers.insert(*id, builder.serve_mem(net).await.unwrap());
    }
    servers
}

/// A client of nodes `nodes` on the in-memory network `net`, with the tests' tuning and its
/// own seed.
#[cfg(feature = "mem")]
pub fn mem_client(
    net: &dlm::mem::MemNetwork,
    nodes: &[u64],
    seed: u64,
) -> Client<dlm::mem::MemClient> {
    let mut cfg = ClientConfig::new(nodes.iter().copied().map(dlm::NodeId));
    cfg.seed = Some(seed);
    tune(&mut cfg);
    Client::new(net.client(), cfg)
}
