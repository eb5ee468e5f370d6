//! Runs the deterministic simulator over a range of seeds, all faults on.
//!
//! `cargo run --release --example simulate --features sim -- --seeds 0..1000 --nodes 3 --clients 8`

use clap::Parser;
use dlm::sim::{run_checked, SimConfig};
use std::ops::Range;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Deterministic simulation of a dlm cluster under faults")]
struct Args {
    /// Seeds to run, as `start..end`.
    #[arg(long, default_value = "0..100", value_parser = parse_range)]
    seeds: Range<u64>,
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Simulated clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Take a snapshot every this many applied entries (small values make lagging followers
    /// need snapshots often).
    #[arg(long, default_value_t = 200)]
    snapshot_every: u64,
    /// Every node's sync takes this many microseconds (default: drawn per node from the seed,
    /// between none and 20 ms).
    #[arg(long)]
    disk_us: Option<u64>,
    /// Membership changes among the faults: start with three voters, the other nodes outside,
    /// and add, promote and remove members (the leader too) during the chaos phase.
    #[arg(long)]
    membership: bool,
    /// Every lock exclusive, as before lock kinds (to replay that workload's seeds); by
    /// default the locks are exclusive, read-write and semaphores (`sim::client::mode_of`).
    #[arg(long)]
    exclusive_only: bool,
    /// Events to show for a violation.
    #[arg(long, default_value_t = 40)]
    history: usize,
    /// Print only the summary line (and violations).
    #[arg(long)]
    quiet: bool,
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected start..end, got {s:?}"))?;
    let a: u64 = a.parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("{b:?}: {e}"))?;
    Ok(a..b)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let (mut seeds, mut steps, mut ops, mut violations) = (0u64, 0u64, 0u64, 0u64);
    let mut revoked = 0u64;
    let mut pending_sent = 0u64;
    let mut watches = (0u64, 0u64, 0u64, 0u64);
    let (mut reconfigured, mut leaders_removed) = (0u64, 0u64);
    for seed in args.seeds.clone() {
        let faults = dlm::sim::Faults {
            membership: args.membership,
            ..Default::default()
        };
        let cfg = SimConfig {
            faults,
            history: args.history,
            snapshot_every: args.snapshot_every,
            log_retain: (args.snapshot_every / 10).max(1),
            disk_latency: args.disk_us.map(Duration::from_micros),
            kinds: !args.exclusive_only,
            ..SimConfig::new(seed, args.nodes, args.clients)
        };
        let result = run_checked(cfg);
        seeds += 1;
        match result {
            Ok(summary) => {
                steps += summary.steps;
                ops += summary.client_ops;
                revoked += summary.revoked;
                pending_sent += summary.pending_sent;
                watches.0 += summary.watches.0;
                watches.1 += summary.watches.1;
                watches.2 += summary.watches.2;
                watches.3 += summary.watches.3;
                reconfigured += summary.reconfigured;
                leaders_removed += summary.leaders_removed;
                if !args.quiet && args.membership {
                    println!(
                        "seed {seed}: fingerprint {:016x} steps {} client ops {} revoked {} reconfigured {} leaders removed {}",
                        summary.fingerprint,
                        summary.steps,
                        summary.client_ops,
                        summary.revoked,
                        summary.reconfigured,
                        summary.leaders_removed
                    );
                } else if !args.quiet {
                    println!(
                        "seed {seed}: fingerprint {:016x} steps {} client ops {} revoked {}",
                        summary.fingerprint, summary.steps, summary.client_ops, summary.revoked
                    );
                }
            }
            Err(violation) => {
                violations += 1;
                println!("VIOLATION {violation}");
                let mut disk = args
                    .disk_us
                    .map(|us| format!(" --disk-us {us}"))
                    .unwrap_or_default();
                if args.membership {
                    disk.push_str(" --membership");
                }
                if args.exclusive_only {
                    disk.push_str(" --exclusive-only");
                }
                println!(
                    "replay: cargo run --release --example simulate --features sim -- --seeds {seed}..{} --nodes {} --clients {} --snapshot-every {}{disk}",
                    seed + 1,
                    args.nodes,
                    args.clients,
                    args.snapshot_every
                );
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wall {secs:.2} s, {:.0} client ops/s",
        ops as f64 / secs.max(1e-9)
    );
    println!(
        "watches checked: {} answers, {} events, {} compacted; {} not checkable",
        watches.0, watches.1, watches.2, watches.3
    );
    println!("requests naming pending seqs: {pending_sent}");
    if args.membership {
        println!(
            "seeds: {seeds}, steps: {steps}, client ops: {ops}, grants revoked: {revoked}, membership changes: {reconfigured}, leaders removed: {leaders_removed}, violations: {violations}"
        );
    } else {
        println!(
            "seeds: {seeds}, steps: {steps}, client ops: {ops}, grants revoked: {revoked}, violations: {violations}"
        );
    }
    if violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
