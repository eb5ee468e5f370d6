//! The fault schedule: planned up front from the seed (so a seed always means the same faults at
//! the same offsets), then played against the server processes in real time.

use crate::support::cluster::ProcessCluster;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What is done to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL, then restart from the data directory when the fault ends.
    Kill,
    /// SIGSTOP, then SIGCONT when the fault ends.
    Stop,
    /// SIGKILL every node at once, then restart them all: only what was fsynced survives, so
    /// this is what tests durability (a minority crash can lean on the majority's copies).
    CrashAll,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill+restart",
            FaultKind::Stop => "stop+cont",
            FaultKind::CrashAll => "crash-all+restart",
        }
    }
}

/// One planned fault.
#[derive(Clone, Debug)]
pub struct Fault {
    /// From the start of the run.
    pub at: Duration,
    /// The node (0 for [`FaultKind::CrashAll`]).
    pub node: u64,
    pub kind: FaultKind,
    /// How long the node stays down or stopped.
    pub length: Duration,
}

impl Fault {
    fn end(&self) -> Duration {
        self.at + self.length
    }
}

/// How faults are drawn.
#[derive(Clone, Debug)]
pub struct FaultParams {
    /// No fault before this (the cluster elects its first leader).
    pub quiet_start: Duration,
    /// Faults end by this.
    pub until: Duration,
    /// Pause between the end of one fault slot and the next fault, drawn from this range.
    pub gap: (Duration, Duration),
    /// Length of a fault, drawn from this range.
    pub length: (Duration, Duration),
    /// Most nodes down or stopped at once (a minority, so that a quorum stays up).
    pub max_faulty: usize,
    /// Make one fault in five a whole-cluster crash (no progress while it lasts).
    pub crash_all: bool,
}

fn draw(rng: &mut Xoshiro256PlusPlus, (lo, hi): (Duration, Duration)) -> Duration {
    let span = hi.saturating_sub(lo).as_millis() as u64;
    lo + Duration::from_millis(rng.next_u64() % (span + 1))
}

/// The faults for `seed`, never more than `max_faulty` overlapping.
pub fn plan(seed: u64, nodes: &[u64], p: &FaultParams) -> Vec<Fault> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut faults: Vec<Fault> = Vec::new();
    let mut t = p.quiet_start;
    if p.max_faulty == 0 || nodes.is_empty() {
        return faults;
    }
    loop {
        t += draw(&mut rng, p.gap);
        // Wait for a slot: the earliest end among the faults still running at `t`.
        let running: Vec<&Fault> = faults.iter().filter(|f| f.end() > t).collect();
        let busy = running.iter().any(|f| f.kind == FaultKind::CrashAll);
        if busy || running.len() >= p.max_faulty {
            t = running.iter().map(|f| f.end()).min().unwrap_or(t);
            continue;
        }
        if t >= p.until {
            return faults;
        }
        let free: Vec<u64> = nodes
            .iter()
            .copied()
            .filter(|n| !running.iter().any(|f| f.node == *n))
            .collect();
        let node = free[(rng.next_u64() % free.len() as u64) as usize];
        let roll = rng.next_u64() % 10;
        let (kind, node) = if p.crash_all && roll < 2 && running.is_empty() {
            (FaultKind::CrashAll, 0)
        } else if roll % 2 == 0 {
            (FaultKind::Kill, node)
        } else {
            (FaultKind::Stop, node)
        };
        let length = draw(&mut rng, p.length).min(p.until - t);
        faults.push(Fault {
            at: t,
            node,
            kind,
            length,
        });
    }
}

/// What playing the schedule did.
#[derive(Debug, Default)]
pub struct FaultReport {
    /// Faults injected, by kind.
    pub injected: BTreeMap<&'static str, u64>,
    /// Nodes that exited on their own (a crash), with their exit status; each was restarted.
    pub crashes: Vec<String>,
    /// Signals or restarts that failed.
    pub failures: Vec<String>,
}

enum Step {
    Begin(FaultKind),
    End(FaultKind),
}

/// Plays `faults` from `start`, then heals every node (SIGCONT, restart) before returning.
/// Blocking: run it on its own thread.
pub fn play(cluster: &mut ProcessCluster, faults: &[Fault], start: Instant) -> FaultReport {
    let mut steps: Vec<(Duration, u64, Step)> = Vec::new();
    for f in faults {
        steps.push((f.at, f.node, Step::Begin(f.kind)));
        steps.push((f.end(), f.node, Step::End(f.kind)));
    }
    // Ends before begins at the same instant, so the minority bound holds throughout.
    steps.sort_by_key(|(at, node, step)| (*at, matches!(step, Step::Begin(_)), *node));
    let mut report = FaultReport::default();
    let mut open: BTreeMap<u64, FaultKind> = BTreeMap::new();
    for (at, node, step) in steps {
        while start.elapsed() < at {
            watch_crashes(cluster, &open, &mut report);
            std::thread::sleep((at - start.elapsed().min(at)).min(Duration::from_millis(20)));
        }
        let done = match step {
            Step::Begin(kind) => {
                *report.injected.entry(kind.name()).or_default() += 1;
                match kind {
                    FaultKind::Kill => {
                        open.insert(node, kind);
                        cluster.kill(node)
                    }
                    FaultKind::Stop => {
                        open.insert(node, kind);
                        cluster.stop(node)
                    }
                    FaultKind::CrashAll => cluster.ids().into_iter().try_for_each(|id| {
                        open.insert(id, FaultKind::Kill);
                        cluster.kill(id)
                    }),
                }
            }
            Step::End(FaultKind::CrashAll) => cluster.ids().into_iter().try_for_each(|id| {
                open.remove(&id);
                cluster.start(id)
            }),
            Step::End(kind) => {
                open.remove(&node);
                end(cluster, node, kind)
            }
        };
        if let Err(e) = done {
            report.failures.push(format!("node {node}: {e}"));
        }
    }
    for (node, kind) in std::mem::take(&mut open) {
        if let Err(e) = end(cluster, node, kind) {
            report.failures.push(format!("node {node}: {e}"));
        }
    }
    watch_crashes(cluster, &open, &mut report);
    report
}

fn end(cluster: &mut ProcessCluster, node: u64, kind: FaultKind) -> std::io::Result<()> {
    match kind {
        FaultKind::Kill | FaultKind::CrashAll => cluster.start(node),
        FaultKind::Stop => cluster.resume(node),
    }
}

/// Records and restarts nodes that died although nobody killed them.
pub fn watch_crashes(
    cluster: &mut ProcessCluster,
    open: &BTreeMap<u64, FaultKind>,
    report: &mut FaultReport,
) {
    for (node, status) in cluster.exited() {
        report.crashes.push(format!(
            "node {node} exited on its own ({status}); see {}",
            cluster.log_path(node).display()
        ));
        if open.get(&node) != Some(&FaultKind::Kill) {
            if let Err(e) = cluster.start(node) {
                report.failures.push(format!("restart node {node}: {e}"));
            }
        }
    }
}
