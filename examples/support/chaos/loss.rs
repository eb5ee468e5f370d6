//! Packet loss on every link of a [`Lab`]: the chaos workload (acquire → append one unique
//! line → release) for one phase without loss and one with, then heal, settle and run the chaos
//! checks (every acknowledged append present once at its offset, tokens only grow).

use super::check::Violation;
use super::workload::{self, ClientLog};
use crate::support::failover::Lab;
use std::time::Duration;
use tokio::time::Instant;

/// What a loss run did and found.
#[derive(Debug)]
pub struct LossRun {
    pub percent: u32,
    /// Complete cycles per second without loss, then with it.
    pub clean_rate: f64,
    pub lossy_rate: f64,
    pub clean_cycles: u64,
    pub lossy_cycles: u64,
    pub acked_appends: usize,
    /// Whether one more cycle per lock went through after the loss was turned off.
    pub probe_ok: bool,
    pub violations: Vec<Violation>,
}

impl LossRun {
    /// Lossy throughput as a fraction of the loss-free one.
    pub fn ratio(&self) -> f64 {
        if self.clean_rate > 0.0 {
            self.lossy_rate / self.clean_rate
        } else {
            0.0
        }
    }
}

async fn phase(
    clients: &[dlm::Client<dlm::tcp::TcpClient>],
    locks: usize,
    length: Duration,
    name: &str,
) -> (Vec<ClientLog>, f64) {
    let began = Instant::now();
    let until = began + length;
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::spawn(workload::run_client(
                c.clone(),
                format!("{name} client {i}"),
                i % locks,
                until,
            ))
        })
        .collect();
    let mut logs = Vec::new();
    for t in tasks {
        if let Ok(log) = t.await {
            logs.push(log);
        }
    }
    // A cycle under way at the end still finishes: rate over the time actually taken.
    let secs = began.elapsed().as_secs_f64();
    let cycles: u64 = logs.iter().map(|l| l.cycles).sum();
    (logs, cycles as f64 / secs.max(1e-3))
}

/// Runs `clients` clients on `locks` locks for `length` without loss, then `length` with
/// `percent`% loss on every packet, then checks.
pub async fn run(
    lab: &mut Lab,
    clients: usize,
    locks: usize,
    length: Duration,
    percent: u32,
    seed: u64,
) -> Result<LossRun, String> {
    let locks = locks.max(1);
    let conns: Vec<_> = (0..clients)
        .map(|i| workload::connect(&lab.members, seed * 1000 + i as u64, Duration::from_secs(5)))
        .collect();
    let (clean, clean_rate) = phase(&conns, locks, length, &format!("s{seed} clean")).await;
    lab.net.set_loss(percent)?;
    let lossy = phase(&conns, locks, length, &format!("s{seed} lossy")).await;
    lab.net.set_loss(0)?;
    let (lossy, lossy_rate) = lossy;

    let probe = workload::connect(&lab.members, seed * 1000 + 999, Duration::from_secs(5));
    let mut probe_log = ClientLog {
        who: format!("s{seed} probe"),
        ..ClientLog::default()
    };
    let mut line = 0;
    let settle_by = Instant::now() + Duration::from_secs(20);
    let mut probe_ok = true;
    for lock in 0..locks {
        while workload::one_cycle(&probe, &mut probe_log, lock, &mut line)
            .await
            .is_err()
        {
            if Instant::now() > settle_by {
                probe_ok = false;
                break;
            }
        }
    }
    let clean_cycles = clean.iter().map(|l| l.cycles).sum();
    let lossy_cycles = lossy.iter().map(|l| l.cycles).sum();
    let mut logs = clean;
    logs.extend(lossy);
    logs.push(probe_log);
    let copies = super::settle(&lab.cluster, &probe, locks, settle_by).await;
    let violations = super::check_all(&logs, &copies, locks);
    let acked_appends = logs
        .iter()
        .flat_map(|l| &l.attempts)
        .filter(|a| matches!(a.outcome, workload::Outcome::Acked(_)))
        .count();
    Ok(LossRun {
        percent,
        clean_rate,
        lossy_rate,
        clean_cycles,
        lossy_cycles,
        acked_appends,
        probe_ok,
        violations,
    })
}
