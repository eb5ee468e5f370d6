//! Chaos run: a local 3-process TCP cluster (file storage, fsync on) under load, while a seeded
//! schedule SIGKILLs and restarts, or SIGSTOPs and SIGCONTs, a minority of the server processes
//! (and, with `--crash-all`, now and then all of them at once).
//! At the end every node is healed, the cluster must serve one more cycle per lock, and then:
//! every acknowledged append is in every node's file exactly once at its acknowledged offset,
//! nothing refused is there, nothing is there twice, and fencing tokens only grew.
//!
//! ```sh
//! cargo run --release --example chaos -- --secs 60 --seed 1
//! cargo run --release --example chaos -- --secs 20 --seed 7 --clients 16 --locks 4 --json
//! ```
//!
//! Exits non-zero on any violation (and keeps the cluster's directory, with the node logs).

#[path = "support/mod.rs"]
mod support;

#[path = "support/chaos/mod.rs"]
mod chaos;

use clap::Parser;
use std::time::Duration;

/// Inject process faults into a local dlm cluster under load, then check what was acknowledged.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Seconds of load and faults (healing and checking come after).
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Seed of the fault schedule (the same seed gives the same faults at the same times).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Server processes (at most a minority of them is faulty at any time).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Concurrent clients, each with its own connection; client i uses lock i % locks.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Locks, each guarding one file.
    #[arg(long, default_value_t = 4)]
    locks: usize,
    /// Longest fault, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    max_fault_ms: u64,
    /// How long one client call may take, in milliseconds (shorter: more unanswered appends,
    /// whose at-most-once the check then covers).
    #[arg(long, default_value_t = 5000)]
    client_deadline_ms: u64,
    /// Also crash the whole cluster (SIGKILL every node, restart them all) in one fault of
    /// five: no progress while it lasts, but it is what tests that acknowledged means fsynced.
    #[arg(long)]
    crash_all: bool,
    /// Seconds the healed cluster gets to serve the probe and bring every mirror up to date.
    #[arg(long, default_value_t = 30)]
    settle_secs: u64,
    /// Keep the cluster's directory (data and node logs) even if every check passes.
    #[arg(long)]
    keep: bool,
    /// Print the fault schedule before running.
    #[arg(long)]
    show_plan: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn main() {
    support::cluster::exit_when_served("chaos");
    let args = Args::parse();
    if args.nodes == 0 {
        eprintln!("chaos: --nodes must be at least 1");
        std::process::exit(2);
    }
    let opts = chaos::Options {
        seed: args.seed,
        secs: args.secs,
        nodes: args.nodes,
        clients: args.clients,
        locks: args.locks,
        max_fault: Duration::from_millis(args.max_fault_ms.max(300)),
        client_deadline: Duration::from_millis(args.client_deadline_ms),
        crash_all: args.crash_all,
        settle: Duration::from_secs(args.settle_secs),
        keep: args.keep,
        node_args: Vec::new(),
    };
    if args.show_plan {
        for f in chaos::plan_of(&opts) {
            let target = match f.kind {
                chaos::faults::FaultKind::CrashAll => "every node".to_string(),
                _ => format!("node {}", f.node),
            };
            println!(
                "  at {:6.2} s: {target} {} for {:.2} s",
                f.at.as_secs_f64(),
                f.kind.name(),
                f.length.as_secs_f64()
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let summary = match runtime {
        Ok(rt) => rt.block_on(chaos::run(opts)),
        Err(e) => Err(e.to_string()),
    };
    match summary {
        Ok(summary) => {
            if args.json {
                println!("{}", summary.json());
            } else {
                print!("{}", summary.text());
            }
            if !summary.violations.is_empty() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("chaos: {e}");
            std::process::exit(2);
        }
    }
}
