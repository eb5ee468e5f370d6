//! Membership changes over real processes (issue 13, item 7): three `dlm server` processes
//! under load (lock, append, release cycles), one SIGKILLed and replaced by a new node (new id,
//! empty data directory: `dlm server --join`, then `dlm members replace`; the leader is the one
//! killed, the worst case), then the cluster
//! grows to five (`--join --promote`) and shrinks back to three (`dlm members remove`, the
//! leader first). Checks that every acknowledged append is on every current member's disk
//! exactly once, at its offset, with tokens growing along each file, and prints the longest gap
//! between acknowledged cycles in each phase (BENCHMARKS.md: `cargo test --release --test
//! replace_processes -- --nocapture`). A few seconds; no timing is asserted.
#![cfg(feature = "cli")]

mod cli_support;
mod support;

use cli_support::{dlm, output, text};
use dlm::tcp::TcpClient;
use dlm::Client;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Acked, Ledger};
use tokio::time::Instant;

/// The `dlm server` processes, SIGKILLed on drop.
struct Nodes {
    dir: tempfile::TempDir,
    addrs: BTreeMap<u64, SocketAddr>,
    children: BTreeMap<u64, Child>,
}

impl Nodes {
    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn nodes_flag(&self, ids: &[u64]) -> String {
        let pairs: Vec<String> = ids
            .iter()
            .map(|id| format!("{id}={}", self.addrs[id]))
            .collect();
        pairs.join(",")
    }

    /// Starts node `id` with `extra` flags after the common ones.
    fn spawn(&mut self, id: u64, extra: &[String]) {
        let log = std::fs::File::create(self.dir.path().join(format!("node-{id}.log"))).unwrap();
        let mut args = vec![
            "server".to_string(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            self.addrs[&id].to_string(),
            "--data-dir".into(),
            self.data_dir(id).display().to_string(),
        ];
        args.extend_from_slice(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = dlm(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.insert(id, child);
    }

    fn start_founder(&mut self, id: u64, founders: &[u64]) {
        let mut extra = Vec::new();
        for peer in founders.iter().filter(|p| **p != id) {
            extra.push("--peer".to_string());
            extra.push(format!("{peer}={}", self.addrs[peer]));
        }
        self.spawn(id, &extra);
    }

    fn start_joiner(&mut self, id: u64, via: u64, promote: bool) {
        let mut extra = vec!["--join".to_string(), self.addrs[&via].to_string()];
        if promote {
            extra.push("--promote".into());
        }
        self.spawn(id, &extra);
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn file(&self, id: u64, file: &str) -> Vec<u8> {
        let path = self
            .data_dir(id)
            .join("files")
            .join(dlm::runtime::escape_file_name(file));
        std::fs::read(&path).unwrap_or_default()
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.children.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
}

/// Lock, append, release until `stop`, recording each acknowledged append and when.
async fn worker(
    client: Client<TcpClient>,
    who: usize,
    lock: String,
    ledger: Ledger,
    acks: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
) {
    let file = format!("{lock}.log");
    let mut cycle = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let Ok(guard) = client
            .lock_timeout(lock.as_str(), Duration::from_secs(10))
            .await
        else {
            continue;
        };
        let token = guard.token().get();
        let data = format!("client {who} cycle {cycle} token {token}\n").into_bytes();
        cycle += 1;
        if let Ok(offset) = client.append(&guard, file.as_str(), data.clone()).await {
            ledger.record(
                &file,
                Acked {
                    token,
                    offset,
                    data,
                },
            );
            acks.lock().unwrap().push(Instant::now());
        }
        let _ = client.release(guard).await;
    }
}

/// The longest time between two acknowledged cycles within `[from, to]` (edges included).
fn longest_gap(acks: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut points: Vec<Instant> = acks
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    points.insert(0, from);
    points.push(to);
    points
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

/// Asks until the configuration's voters are `voters`, committed.
async fn until_voters(admin: &Client<TcpClient>, voters: &[u64], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(info) = admin.membership().await {
            let now: Vec<u64> = info.config.voters().iter().map(|m| m.id.get()).collect();
            if info.committed && now == voters && info.config.learners().is_empty() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "voters never became {voters:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `dlm ARGS --nodes NODES` and checks it succeeded.
async fn dlm_ok(args: &[&str], nodes: &str) -> String {
    let all: Vec<&str> = args.iter().copied().chain(["--nodes", nodes]).collect();
    let out = output(dlm(&all)).await;
    assert!(out.status.success(), "dlm {all:?}: {out:?}");
    text(&out.stdout)
}

fn check_disk(nodes: &Nodes, members: &[u64], ledger: &Ledger) {
    for (file, appends) in ledger.files() {
        let mut sorted = appends.clone();
        sorted.sort_by_key(|a| a.offset);
        for pair in sorted.windows(2) {
            assert!(
                pair[1].token > pair[0].token,
                "{file}: token went back along the file"
            );
        }
        for id in members {
            let disk = nodes.file(*id, &file);
            for a in &appends {
                let at = a.offset as usize;
                assert_eq!(
                    disk.get(at..at + a.data.len()),
                    Some(&a.data[..]),
                    "node {id}: {file}: acknowledged append at {at} missing"
                );
                let once = disk
                    .windows(a.data.len())
                    .filter(|w| *w == &a.data[..])
                    .count();
                assert_eq!(
                    once, 1,
                    "node {id}: {file}: an append is there {once} times"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replace_grow_and_shrink_under_load() {
    let dir = tempfile::Builder::new()
        .prefix("dlm-replace-")
        .tempdir()
        .unwrap();
    let addrs = support::local_members(6).into_iter().collect();
    let mut nodes = Nodes {
        dir,
        addrs,
        children: BTreeMap::new(),
    };
    for id in [1, 2, 3] {
        nodes.start_founder(id, &[1, 2, 3]);
    }
    let all: Vec<(u64, SocketAddr)> = nodes.addrs.iter().map(|(i, a)| (*i, *a)).collect();
    let admin = dlm::connect_tcp_with(all.clone(), dlm::DEFAULT_CLUSTER_ID, |c| {
        c.deadline = Duration::from_secs(30)
    });
    until_voters(&admin, &[1, 2, 3], Duration::from_secs(30)).await;

    let ledger = Ledger::default();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for who in 0..4 {
        let client = dlm::connect_tcp_with(all.clone(), dlm::DEFAULT_CLUSTER_ID, |c| {
            c.seed = Some(100 + who as u64);
            c.deadline = Duration::from_secs(30);
        });
        let lock = format!("lock-{}", who % 2);
        let task = worker(
            client,
            who,
            lock,
            ledger.clone(),
            acks.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(task));
    }
    ledger.reached(200, Duration::from_secs(30)).await;
    let mut phases = Vec::new();

    // SIGKILL the leader and replace it by node 4, joining through a survivor from an empty
    // directory.
    let victim = admin.membership().await.unwrap().leader.get();
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != victim).collect();
    let t0 = Instant::now();
    nodes.kill(victim);
    let at = ledger.count();
    ledger.reached(at + 20, Duration::from_secs(30)).await;
    phases.push((
        format!("SIGKILL leader {victim} (an election)"),
        t0,
        Instant::now(),
    ));
    let t0 = Instant::now();
    nodes.start_joiner(4, survivors[0], false);
    let nodes_flag = nodes.nodes_flag(&[survivors[0], survivors[1], 4]);
    let addr4 = nodes.addrs[&4].to_string();
    let replaced = dlm_ok(
        &["members", "replace", &victim.to_string(), "4", &addr4],
        &nodes_flag,
    )
    .await;
    assert!(replaced.contains("voters "), "{replaced}");
    let mut voters = vec![survivors[0], survivors[1], 4];
    until_voters(&admin, &voters, Duration::from_secs(60)).await;
    let at = ledger.count();
    ledger.reached(at + 100, Duration::from_secs(30)).await;
    phases.push((
        format!("replace {victim} by node 4 (join, then members replace)"),
        t0,
        Instant::now(),
    ));

    // Grow to five: nodes 5 and 6 join and are promoted.
    let t1 = Instant::now();
    nodes.start_joiner(5, survivors[1], true);
    voters.push(5);
    until_voters(&admin, &voters, Duration::from_secs(60)).await;
    nodes.start_joiner(6, 4, true);
    voters.push(6);
    until_voters(&admin, &voters, Duration::from_secs(60)).await;
    let at = ledger.count();
    ledger.reached(at + 100, Duration::from_secs(30)).await;
    phases.push((
        "grow to five (join --promote 5, then 6)".to_string(),
        t1,
        Instant::now(),
    ));

    // Shrink back to three: remove the leader first, then another.
    let t2 = Instant::now();
    let leader = admin.membership().await.unwrap().leader.get();
    let nodes_flag = nodes.nodes_flag(&voters);
    dlm_ok(&["members", "remove", &leader.to_string()], &nodes_flag).await;
    let second = *voters.iter().find(|i| **i != leader).unwrap();
    dlm_ok(&["members", "remove", &second.to_string()], &nodes_flag).await;
    let remaining: Vec<u64> = voters
        .iter()
        .copied()
        .filter(|i| *i != leader && *i != second)
        .collect();
    until_voters(&admin, &remaining, Duration::from_secs(60)).await;
    let at = ledger.count();
    ledger.reached(at + 100, Duration::from_secs(30)).await;
    phases.push((
        format!("shrink to three (remove leader {leader}, then {second})"),
        t2,
        Instant::now(),
    ));
    nodes.kill(leader);
    nodes.kill(second);

    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    // Every current member applies everything the leader committed.
    let user = dlm::connect_tcp_with(
        remaining.iter().map(|id| (*id, nodes.addrs[id])),
        dlm::DEFAULT_CLUSTER_ID,
        |c| c.deadline = Duration::from_secs(30),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let statuses: Vec<_> = user
            .cluster_status()
            .await
            .into_iter()
            .filter_map(|(_, s)| s.ok())
            .collect();
        let commit = statuses.iter().map(|s| s.commit).max();
        if statuses.len() == remaining.len() && statuses.iter().all(|s| Some(s.applied) == commit) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members did not catch up: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check_disk(&nodes, &remaining, &ledger);

    let acks = acks.lock().unwrap().clone();
    println!("acknowledged cycles: {}", ledger.count());
    for (what, from, to) in phases {
        println!(
            "{what}: took {:.2} s, longest gap between acknowledged cycles {} ms",
            (to - from).as_secs_f64(),
            longest_gap(&acks, from, to).as_millis()
        );
    }
}
