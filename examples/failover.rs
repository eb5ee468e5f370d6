//! Failover benchmark over real TCP with silent drops (issue 12): a local 3-process cluster in
//! a private network namespace whose packets nftables drops (see `support/netfault.rs`; Linux
//! and root only, it installs `nftables`/`iproute2` with apt-get when missing). Measures, over
//! `--trials` trials each:
//!
//! - `heal`: a follower cut silently for a while (lengths cycle through `--cut-ms`), then healed
//!   while the other follower is cut in the same rule change, so only the leader and the healed
//!   follower can commit: the time from the heal to the first commit (a granted `try_lock`;
//!   probes every 25 ms). Plus `--long-trials` trials with a `--long-cut-secs` cut.
//! - `kill` / `drop`: clients queued on a held lock, the leader SIGKILLed or its traffic dropped,
//!   the holder releasing at once: the time from the loss to the first grant a waiting client
//!   sees (with the new leader's election and the holder's release beside it).
//! - `loss`: `--loss-runs` runs of the chaos workload, `--loss-secs` without loss and as long with
//!   `--loss-percent`% loss on every packet, then the chaos checks.
//!
//! ```sh
//! cargo run --release --example failover -- --trials 20 --long-trials 4
//! cargo run --release --example failover -- --only kill --trials 5
//! ```
//! Clients use the shipped defaults (1 s attempts, 300 ms leader checks); servers too (300 ms
//! election time-out). Exits non-zero if a trial misses entirely or a check fails.

#[path = "support/mod.rs"]
mod support;

#[path = "support/chaos/mod.rs"]
mod chaos;

use clap::Parser;
use std::time::Duration;
use support::failover::{self, median_max, Lab, LeaderLoss, Waiters};
use support::netfault::NetLab;

/// Measure failover times of a local dlm cluster under silent network faults.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Trials per scenario.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Cut lengths of the heal trials, in milliseconds, cycled through.
    #[arg(long, value_delimiter = ',', default_value = "500,2000,5000")]
    cut_ms: Vec<u64>,
    /// Extra heal trials with a long cut.
    #[arg(long, default_value_t = 4)]
    long_trials: usize,
    /// Length of the long cut, in seconds.
    #[arg(long, default_value_t = 15)]
    long_cut_secs: u64,
    /// Waiting clients in the leader-loss trials.
    #[arg(long, default_value_t = 3)]
    waiters: usize,
    /// Loss runs (each on a fresh cluster).
    #[arg(long, default_value_t = 3)]
    loss_runs: usize,
    /// Seconds of each loss phase (and of the loss-free phase before it).
    #[arg(long, default_value_t = 8)]
    loss_secs: u64,
    #[arg(long, default_value_t = 20)]
    loss_percent: u32,
    /// Lower TCP's minimum RTO on loopback to this many ms before the loss runs' clusters start
    /// (diagnostic: how much of the loss cost is TCP's 200 ms floor).
    #[arg(long)]
    rto_min_ms: Option<u32>,
    /// Keep the clusters' directories (data and node logs, `RUST_LOG` applies to the nodes).
    #[arg(long)]
    keep: bool,
    /// Only one scenario: heal, kill, drop or loss.
    #[arg(long)]
    only: Option<String>,
}

/// Longest a measurement waits before it counts as a miss.
const WITHIN: Duration = Duration::from_secs(20);

fn main() {
    support::cluster::exit_when_served("failover");
    let args = Args::parse();
    if let Err(why) = NetLab::enter() {
        eprintln!("failover: cannot make silent faults here: {why}");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("failover: {e}");
            std::process::exit(2);
        }
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("miss".into(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    })
}

fn summary(label: &str, samples: &[Option<Duration>]) -> bool {
    let (median, max, missed) = median_max(samples);
    println!(
        "{label}: {} trials, median {}, max {}{}",
        samples.len(),
        ms(median),
        ms(max),
        if missed > 0 {
            format!(", {missed} missed (> {WITHIN:?})")
        } else {
            String::new()
        }
    );
    missed == 0
}

async fn run(args: Args) -> Result<bool, String> {
    let wants = |s: &str| args.only.as_deref().is_none_or(|o| o == s);
    let mut ok = true;
    if wants("heal") {
        ok &= heal(&args).await?;
    }
    for (name, how) in [("kill", LeaderLoss::Kill), ("drop", LeaderLoss::Drop)] {
        if wants(name) {
            ok &= leader_loss(&args, name, how).await?;
        }
    }
    if wants("loss") {
        ok &= loss(&args).await?;
    }
    Ok(ok)
}

async fn heal(args: &Args) -> Result<bool, String> {
    let mut lab = Lab::start(3, "dlm-failover-", &[])?;
    let mut by_length: Vec<(Duration, Vec<Option<Duration>>)> = Vec::new();
    let lengths: Vec<Duration> = args
        .cut_ms
        .iter()
        .map(|m| Duration::from_millis(*m))
        .cycle()
        .take(args.trials)
        .chain(std::iter::repeat_n(
            Duration::from_secs(args.long_cut_secs),
            args.long_trials,
        ))
        .collect();
    for (i, cut) in lengths.into_iter().enumerate() {
        let took =
            failover::heal_trial(&mut lab, cut, i % 2 == 1, &format!("heal{i}"), WITHIN).await?;
        println!(
            "heal trial {i}: cut {cut:?}, commit {} after the heal",
            ms(took)
        );
        match by_length.iter_mut().find(|(l, _)| *l == cut) {
            Some((_, v)) => v.push(took),
            None => by_length.push((cut, vec![took])),
        }
    }
    let mut ok = true;
    let mut all = Vec::new();
    for (cut, samples) in &by_length {
        ok &= summary(&format!("heal → commit, cut {cut:?}"), samples);
        all.extend(samples.iter().copied());
    }
    summary("heal → commit, all cuts", &all);
    Ok(ok)
}

async fn leader_loss(args: &Args, name: &str, how: LeaderLoss) -> Result<bool, String> {
    let mut lab = Lab::start(3, "dlm-failover-", &[])?;
    let clients = Waiters::new(&mut lab, args.waiters);
    let (mut elected, mut released, mut first) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.trials {
        let t =
            failover::leader_loss(&mut lab, &clients, &format!("{name}{i}"), how, WITHIN).await?;
        println!(
            "{name} trial {i}: leader {} lost; elected {}, holder released {}, first grant {}, all {}",
            t.old_leader,
            ms(t.elected),
            ms(t.released),
            ms(t.first_grant),
            ms(t.all_granted)
        );
        elected.push(t.elected);
        released.push(t.released);
        first.push(t.first_grant);
        failover::restore(&mut lab, t.old_leader, how).await?;
    }
    summary(
        &format!("{name}: loss → new leader says it leads"),
        &elected,
    );
    summary(
        &format!("{name}: loss → holder's release answered"),
        &released,
    );
    Ok(summary(
        &format!("{name}: loss → first grant to a waiting client"),
        &first,
    ))
}

async fn loss(args: &Args) -> Result<bool, String> {
    let mut ok = true;
    let mut ratios = Vec::new();
    for run in 0..args.loss_runs {
        if let Some(ms) = args.rto_min_ms {
            NetLab::set_rto_min(ms)?;
        }
        let mut lab = Lab::start(3, "dlm-failover-", &[])?;
        let ids = lab.ids();
        lab.settled_leader(&ids, WITHIN).await?;
        let r = chaos::loss::run(
            &mut lab,
            8,
            4,
            Duration::from_secs(args.loss_secs),
            args.loss_percent,
            run as u64 + 1,
        )
        .await?;
        println!(
            "loss run {run}: {:.0} cycles/s without loss, {:.0} with {}% loss: {:.0}%; {} appends acknowledged, probe {}, violations {}",
            r.clean_rate,
            r.lossy_rate,
            r.percent,
            r.ratio() * 100.0,
            r.acked_appends,
            if r.probe_ok { "ok" } else { "FAILED" },
            r.violations.len()
        );
        for v in &r.violations {
            println!("  {}: {}", v.kind, v.detail);
        }
        ok &= r.violations.is_empty() && r.probe_ok;
        if args.keep {
            println!("  kept {}", lab.cluster.keep().display());
        }
        ratios.push(r.ratio());
    }
    ratios.sort_by(f64::total_cmp);
    if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
        println!(
            "loss: lossy/loss-free throughput {:.0}%–{:.0}% over {} runs",
            lo * 100.0,
            hi * 100.0,
            ratios.len()
        );
    }
    Ok(ok)
}
