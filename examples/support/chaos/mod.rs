//! A chaos run: a local cluster of server processes, clients appending under locks, and a seeded
//! schedule of SIGKILL+restart and SIGSTOP+SIGCONT faults; then heal, settle and check that no
//! acknowledged append was lost or duplicated and that fencing tokens only grew.
//!
//! Shared by `examples/chaos.rs` and `tests/chaos_short.rs` (included with `#[path]`; it expects
//! the example support module at `crate::support`).
#![allow(dead_code)]

pub mod check;
pub mod faults;
pub mod loss;
mod report;
pub mod workload;

use crate::support::cluster::ProcessCluster;
use check::{FileStats, Violation};
use faults::{Fault, FaultParams, FaultReport};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use workload::{Attempt, ClientLog, Outcome};

/// Longer than any client call can take (wait + deadline, three calls a cycle).
const HANG: Duration = Duration::from_secs(60);

/// Longest a fresh cluster may take to serve its first cycle.
const STARTUP: Duration = Duration::from_secs(20);

/// How a run goes.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Faults and load last this long; healing and checking come after.
    pub secs: u64,
    pub nodes: u64,
    pub clients: usize,
    pub locks: usize,
    /// Longest fault.
    pub max_fault: Duration,
    /// How long one client call may take before it gives up (unanswered).
    pub client_deadline: Duration,
    /// Also crash the whole cluster now and then (see [`faults::FaultKind::CrashAll`]).
    pub crash_all: bool,
    /// How long the healed cluster gets to serve the probe and bring every mirror up to date.
    pub settle: Duration,
    /// Keep the cluster's directory even when every check passes.
    pub keep: bool,
    /// Arguments the current executable needs to run as a node (see `support::cluster`).
    pub node_args: Vec<String>,
}

/// What a run did and found.
#[derive(Debug)]
pub struct Summary {
    pub options: Options,
    pub planned: Vec<Fault>,
    pub faults: FaultReport,
    pub cycles: u64,
    pub grants: usize,
    /// Append attempts by outcome: acked, refused, unsure.
    pub appends: BTreeMap<&'static str, usize>,
    /// Unanswered appends that turned out to have committed.
    pub unsure_present: usize,
    pub errors: BTreeMap<String, u64>,
    /// Whether the final probe (one cycle per lock on the healed cluster) went through.
    pub probe_ok: bool,
    pub files: BTreeMap<String, FileStats>,
    pub violations: Vec<Violation>,
    /// The cluster's directory, when kept.
    pub kept: Option<PathBuf>,
    pub elapsed: Duration,
}

impl Summary {
    /// Violations by kind.
    pub fn violation_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for v in &self.violations {
            *counts.entry(v.kind).or_default() += 1;
        }
        counts
    }
}

/// The fault schedule of a run (a pure function of the options).
pub fn plan_of(opts: &Options) -> Vec<Fault> {
    let params = FaultParams {
        quiet_start: Duration::from_secs(1),
        until: Duration::from_secs(opts.secs),
        gap: (Duration::from_millis(200), Duration::from_millis(1500)),
        length: (Duration::from_millis(300), opts.max_fault),
        max_faulty: (opts.nodes.saturating_sub(1) / 2) as usize,
        crash_all: opts.crash_all,
    };
    let ids: Vec<u64> = (1..=opts.nodes).collect();
    faults::plan(opts.seed, &ids, &params)
}

/// Runs one chaos run; `Err` only if the cluster could not be set up at all.
pub async fn run(opts: Options) -> Result<Summary, String> {
    let began = Instant::now();
    let node_args: Vec<&str> = opts.node_args.iter().map(String::as_str).collect();
    let mut cluster = ProcessCluster::new(opts.nodes, "dlm-chaos-", &node_args)
        .map_err(|e| format!("cluster: {e}"))?;
    cluster.start_all().map_err(|e| format!("start: {e}"))?;
    let members = cluster.members().to_vec();
    let locks = opts.locks.max(1);
    let planned = plan_of(&opts);

    // The clock starts once the cluster serves, so start-up is not counted as errors.
    let probe = workload::connect(
        &members,
        opts.seed.wrapping_mul(1000) + 999,
        Duration::from_secs(5),
    );
    let mut probe_log = ClientLog {
        who: "probe".into(),
        ..ClientLog::default()
    };
    let mut line = 0;
    let ready_by = Instant::now() + STARTUP;
    while workload::one_cycle(&probe, &mut probe_log, 0, &mut line)
        .await
        .is_err()
    {
        if Instant::now() > ready_by {
            return Err(format!("the cluster did not serve within {STARTUP:?}"));
        }
    }

    let start = std::time::Instant::now();
    let until = Instant::from_std(start) + Duration::from_secs(opts.secs);
    let schedule = planned.clone();
    let player = std::thread::spawn(move || {
        let report = faults::play(&mut cluster, &schedule, start);
        (cluster, report)
    });
    let tasks: Vec<_> = (0..opts.clients)
        .map(|i| {
            let client = workload::connect(
                &members,
                opts.seed.wrapping_mul(1000) + i as u64,
                opts.client_deadline,
            );
            tokio::spawn(workload::run_client(
                client,
                format!("client {i}"),
                i % locks,
                until,
            ))
        })
        .collect();
    // A line every few seconds, so that a long run is seen to be alive.
    let total = opts.secs;
    let ticker = tokio::spawn(async move {
        let every = Duration::from_secs(5);
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            ticks.tick().await;
            let done = start.elapsed().as_secs().min(total);
            eprintln!("chaos: {done} of {total} s under faults");
        }
    });
    // Every client call has a deadline, so a client still busy long after the end is hung.
    let hung_by = until + HANG;
    let mut logs = Vec::new();
    let mut violations = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(hung_by, task).await {
            Ok(log) => logs.push(log.map_err(|e| format!("client task: {e}"))?),
            Err(_) => {
                abort.abort();
                violations.push(Violation {
                    kind: "hang",
                    detail: format!("client {i} was still in a call {HANG:?} after the end"),
                });
            }
        }
    }
    ticker.abort();
    eprintln!("chaos: faults over; settling and checking every copy");
    let (mut cluster, mut report) = tokio::task::spawn_blocking(move || player.join())
        .await
        .map_err(|e| format!("fault thread: {e}"))?
        .map_err(|_| "fault thread panicked".to_string())?;

    // The cluster is whole again: one more cycle per lock must go through.
    let settle_by = Instant::now() + opts.settle;
    for lock in 0..locks {
        while workload::one_cycle(&probe, &mut probe_log, lock, &mut line)
            .await
            .is_err()
        {
            if Instant::now() > settle_by {
                violations.push(Violation {
                    kind: "no-progress",
                    detail: format!("the healed cluster did not complete a cycle on lock-{lock}"),
                });
                break;
            }
        }
    }
    let probe_ok = !violations.iter().any(|v| v.kind == "no-progress");
    logs.push(probe_log);

    let copies = settle(&cluster, &probe, locks, settle_by).await;
    faults::watch_crashes(&mut cluster, &BTreeMap::new(), &mut report);
    violations.extend(check_all(&logs, &copies, locks));
    let files = file_stats(&logs, &copies, locks);
    for crash in &report.crashes {
        violations.push(Violation {
            kind: "server-crash",
            detail: crash.clone(),
        });
    }
    for failure in &report.failures {
        violations.push(Violation {
            kind: "fault-injection-failed",
            detail: failure.clone(),
        });
    }

    let mut appends = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for log in &logs {
        for a in &log.attempts {
            let key = match a.outcome {
                Outcome::Acked(_) => "acked",
                Outcome::Refused(_) => "refused",
                Outcome::Unsure(_) => "unsure",
            };
            *appends.entry(key).or_default() += 1;
        }
        for (kind, n) in &log.errors {
            let key = if log.who == "probe" {
                format!("probe {kind}")
            } else {
                kind.clone()
            };
            *errors.entry(key).or_default() += n;
        }
    }
    let kept = (opts.keep || !violations.is_empty()).then(|| cluster.keep());
    drop(cluster);
    Ok(Summary {
        planned,
        faults: report,
        cycles: logs
            .iter()
            .filter(|l| l.who != "probe")
            .map(|l| l.cycles)
            .sum(),
        grants: logs.iter().map(|l| l.grants.len()).sum(),
        appends,
        unsure_present: files.values().map(|f| f.unsure_present).sum(),
        errors,
        probe_ok,
        files,
        violations,
        kept,
        elapsed: began.elapsed(),
        options: opts,
    })
}

/// Per lock: the linearizable read of its file (if it answered) and every node's mirror.
pub struct Copies {
    pub read: Option<Vec<u8>>,
    pub nodes: BTreeMap<u64, Vec<u8>>,
}

/// Waits (until `by`) for every node's mirror to equal a linearizable read of each file.
pub async fn settle(
    cluster: &ProcessCluster,
    probe: &dlm::Client<dlm::tcp::TcpClient>,
    locks: usize,
    by: Instant,
) -> BTreeMap<usize, Copies> {
    loop {
        let mut all = BTreeMap::new();
        for lock in 0..locks {
            let file = workload::file_name(lock);
            let read = probe.read(file.as_str()).await.ok();
            let nodes = cluster
                .ids()
                .into_iter()
                .map(|id| {
                    let bytes = std::fs::read(cluster.file_path(id, &file)).unwrap_or_default();
                    (id, bytes)
                })
                .collect();
            all.insert(lock, Copies { read, nodes });
        }
        let converged = all.values().all(|c| {
            c.read
                .as_ref()
                .is_some_and(|r| c.nodes.values().all(|n| n == r))
        });
        if converged || Instant::now() > by {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn attempts_of(logs: &[ClientLog], lock: usize) -> Vec<&Attempt> {
    logs.iter()
        .flat_map(|l| &l.attempts)
        .filter(|a| a.lock == lock)
        .collect()
}

pub fn check_all(
    logs: &[ClientLog],
    copies: &BTreeMap<usize, Copies>,
    locks: usize,
) -> Vec<Violation> {
    let per_client: Vec<(&str, &[workload::Grant])> = logs
        .iter()
        .map(|l| (l.who.as_str(), l.grants.as_slice()))
        .collect();
    let mut out = check::check_tokens(&per_client);
    for lock in 0..locks {
        let file = workload::file_name(lock);
        let attempts = attempts_of(logs, lock);
        let Some(c) = copies.get(&lock) else { continue };
        match &c.read {
            Some(read) => {
                out.extend(check::check_file(&format!("{file} (read)"), read, &attempts).1)
            }
            None => out.push(Violation {
                kind: "unreadable",
                detail: format!("{file}: the healed cluster did not answer a read"),
            }),
        }
        for (id, bytes) in &c.nodes {
            if c.read.as_ref() == Some(bytes) {
                continue;
            }
            out.push(Violation {
                kind: "mirror-diverged",
                detail: format!(
                    "{file} on node {id}: {} bytes, the cluster reads {} bytes",
                    bytes.len(),
                    c.read.as_ref().map_or(0, Vec::len)
                ),
            });
            out.extend(check::check_file(&format!("{file} on node {id}"), bytes, &attempts).1);
        }
    }
    out
}

fn file_stats(
    logs: &[ClientLog],
    copies: &BTreeMap<usize, Copies>,
    locks: usize,
) -> BTreeMap<String, FileStats> {
    (0..locks)
        .filter_map(|lock| {
            let read = copies.get(&lock)?.read.as_ref()?;
            let attempts = attempts_of(logs, lock);
            let (stats, _) = check::check_file("", read, &attempts);
            Some((workload::file_name(lock), stats))
        })
        .collect()
}
