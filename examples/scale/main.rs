//! Costs as the work grows: memory per session and held lock, keep-alive traffic of many idle
//! holders, and snapshots and recovery of a large state.
//!
//! ```sh
//! # snapshot size, take / send / install, and recovery of 100,000 locks + 1 M entries
//! cargo run --release --example scale -- recovery --locks 100000 --entries 1000000
//! # a learner added at run time catching up from a snapshot of 100,000 held locks
//! cargo run --release --example scale -- learner --locks 100000 --entries 10000
//! # RSS of a spawned node at 10,000 sessions each holding a lock, then 30 s of keep-alives
//! cargo run --release --example scale -- sessions --spawn 1 --sessions 10000 --hold-secs 30
//! ```

#[path = "../support/mod.rs"]
mod support;

mod driven;
mod learner;
mod pair;
mod recovery;
mod sessions;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "What dlm costs as sessions, locks and logs grow")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Snapshot size and the time to take, send, install and recover it, and recovery of a
    /// long log behind it (in process, on real files).
    Recovery(recovery::Args),
    /// Spawned server processes with many sessions each holding a lock: their RSS, and the
    /// keep-alive traffic (log entries, the leader's CPU, bytes on the wire).
    Sessions(sessions::Args),
    /// A learner added at run time catching up from a large snapshot and a log tail: time
    /// and bytes (in process, on real files).
    Learner(learner::Args),
}

fn main() {
    support::cluster::exit_when_served("scale");
    let result = match Args::parse().mode {
        Mode::Recovery(args) => recovery::run(args),
        Mode::Sessions(args) => sessions::run(args),
        Mode::Learner(args) => learner::run(args),
    };
    if let Err(e) = result {
        eprintln!("scale: {e}");
        std::process::exit(1);
    }
}

/// The 1, 5 and 15 minute load averages, from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
