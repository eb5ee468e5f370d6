//! Where one commit's time goes: a 3-node cluster in this process over loopback TCP, each node
//! with its data directory on disk, and one client appending to a file under a held lock, one
//! append at a time (one commit each, as in loadgen's scenario a). The nodes' probe events
//! (`dlm::runtime::PROBE_TARGET`) are timed here on one clock and split into the steps of each
//! commit:
//!
//! client send → leader has the request → leader sends the entries → follower has them →
//! follower's sync starts → ... done → follower acks → leader has the ack → leader replies →
//! client has the answer.
//!
//! ```sh
//! cargo run --release --example breakdown -- --ops 3000
//! cargo run --release --example breakdown -- --ops 3000 --dir /var/tmp   # another disk
//! ```
//!
//! Unlike `loadgen --spawn 3`, nodes and client share one process and one runtime (two worker
//! threads), so wake-ups cost less than across processes; the steps, not the total, are the
//! point.

use clap::Parser;
use dlm::runtime::PROBE_TARGET;
use dlm::{connect_tcp_with, Server, DEFAULT_CLUSTER_ID};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

#[path = "support/mod.rs"]
mod support;

#[derive(Parser, Debug)]
#[command(about = "Where one commit's time goes, step by step")]
struct Args {
    /// Appends measured (after the warm-up).
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Appends done first and not measured.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Bytes per append.
    #[arg(long, default_value_t = 64)]
    bytes: usize,
    /// Where the nodes' data directories go (a temporary directory inside it).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// One probe event: when, on which node, which step, the other node, and the index or seq.
#[derive(Clone, Debug, Default)]
struct Step {
    when: Option<Instant>,
    node: u64,
    step: &'static str,
    peer: u64,
    at: u64,
}

impl Visit for Step {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "node" => self.node = value,
            "peer" => self.peer = value,
            "at" => self.at = value,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.step = STEPS.iter().copied().find(|s| *s == value).unwrap_or("?");
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

const STEPS: [&str; 8] = [
    "append_out",
    "append_in",
    "ack_out",
    "ack_in",
    "request_in",
    "reply_out",
    "sync_start",
    "sync_done",
];

/// Collects the probe's events with the time each was seen.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Step>>>);

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut step = Step {
            when: Some(Instant::now()),
            ..Step::default()
        };
        event.record(&mut step);
        if step.step == "?" {
            return;
        }
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(step);
    }
}

fn free_addresses() -> std::io::Result<Vec<(u64, SocketAddr)>> {
    (1..=3)
        .map(|id| Ok((id, TcpListener::bind("127.0.0.1:0")?.local_addr()?)))
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let recorder = Recorder::default();
    tracing_subscriber::registry()
        .with(
            recorder
                .clone()
                .with_filter(Targets::new().with_target(PROBE_TARGET, tracing::Level::TRACE)),
        )
        .init();

    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("dlm-breakdown-")
        .tempdir_in(&base)?;
    // The floor on the same disk and loopback, right before: one commit needs at least two
    // round trips and one sync.
    let floor_dir = dir.path().to_path_buf();
    let floor =
        tokio::task::spawn_blocking(move || support::floor::Floor::measure(&floor_dir, 5_000, 300))
            .await??;
    let members = free_addresses()?;
    let mut servers = Vec::new();
    for &(id, addr) in &members {
        let mut builder = Server::builder()
            .id(id)
            .data_dir(dir.path().join(format!("node-{id}")));
        for &(peer, peer_addr) in members.iter().filter(|(p, _)| *p != id) {
            builder = builder.peer(peer, peer_addr);
        }
        servers.push(builder.serve_tcp(addr).await?);
    }
    let client = connect_tcp_with(members.clone(), DEFAULT_CLUSTER_ID, |_| {});
    let guard = client.lock("breakdown").await?;
    let data = vec![b'x'; args.bytes];
    let mut calls = Vec::with_capacity(args.ops);
    for i in 0..args.warmup + args.ops {
        let sent = Instant::now();
        client.append(&guard, "breakdown.log", data.clone()).await?;
        if i >= args.warmup {
            calls.push((sent, Instant::now()));
        }
    }
    client.release(guard).await?;
    for server in servers {
        server.shutdown().await?;
    }

    let mut steps = std::mem::take(&mut *recorder.0.lock().unwrap_or_else(PoisonError::into_inner));
    steps.sort_by_key(|s| s.when);
    report(&args, &calls, &steps);
    println!(
        "floor: loopback round trip {:.1} µs, 4 KiB append + fdatasync {:.1} µs; one commit \
         {:.1} µs",
        floor.rtt_us,
        floor.fsync_us,
        floor.commit().as_secs_f64() * 1e6
    );
    Ok(())
}

/// The names of the stages, in order, each the time from the step before.
const STAGES: [&str; 9] = [
    "client send → leader has the request",
    "leader has it → leader sends the entries",
    "sent → follower has them",
    "follower has them → its sync starts",
    "follower's sync (start → done)",
    "follower's sync done → it acks",
    "ack sent → leader has it",
    "leader has the ack → it replies",
    "leader replies → client has the answer",
];

/// The times of one commit's steps, found in the events seen during its call.
/// Also the leader's own sync, and whether the commit waited for it (it ended after the
/// follower's ack arrived).
fn stages(call: (Instant, Instant), steps: &[Step]) -> Option<([Duration; 9], Duration, bool)> {
    let (sent, answered) = call;
    let start = steps.partition_point(|s| s.when < Some(sent));
    let end = steps.partition_point(|s| s.when <= Some(answered));
    let window = &steps[start..end];
    let find = |from: usize, ok: &dyn Fn(&Step) -> bool| {
        window[from..]
            .iter()
            .position(ok)
            .map(|i| (from + i, window[from + i].when))
    };
    let (i_req, t_req) = find(0, &|s| s.step == "request_in")?;
    let leader = window[i_req].node;
    let (i_out, t_out) = find(i_req, &|s| s.step == "append_out" && s.node == leader)?;
    let index = window[i_out].at;
    // The follower whose ack reached the leader first made the majority.
    let (i_ack, t_ack) = find(i_out, &|s| {
        s.step == "ack_in" && s.node == leader && s.at >= index
    })?;
    let follower = window[i_ack].peer;
    let (i_in, t_in) = find(i_out, &|s| {
        s.step == "append_in" && s.node == follower && s.at >= index
    })?;
    let (i_ss, t_ss) = find(i_in, &|s| s.step == "sync_start" && s.node == follower)?;
    let (i_sd, t_sd) = find(i_ss, &|s| s.step == "sync_done" && s.node == follower)?;
    let (_, t_ao) = find(i_sd, &|s| {
        s.step == "ack_out" && s.node == follower && s.at >= index
    })?;
    let (_, t_reply) = find(i_ack, &|s| s.step == "reply_out" && s.node == leader)?;
    let (i_lss, t_lss) = find(i_req, &|s| s.step == "sync_start" && s.node == leader)?;
    let (_, t_lsd) = find(i_lss, &|s| s.step == "sync_done" && s.node == leader)?;
    let times = [
        Some(sent),
        t_req,
        t_out,
        t_in,
        t_ss,
        t_sd,
        t_ao,
        t_ack,
        t_reply,
        Some(answered),
    ];
    let times: Option<Vec<Instant>> = times.into_iter().collect();
    let times = times?;
    let mut out = [Duration::ZERO; 9];
    for (i, d) in out.iter_mut().enumerate() {
        *d = times[i + 1].saturating_duration_since(times[i]);
    }
    let (t_lss, t_lsd) = (t_lss?, t_lsd?);
    Some((
        out,
        t_lsd.saturating_duration_since(t_lss),
        t_lsd > times[7],
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn report(args: &Args, calls: &[(Instant, Instant)], steps: &[Step]) {
    let mut per_stage: Vec<Vec<Duration>> = vec![Vec::new(); STAGES.len()];
    let mut leader_sync = Vec::new();
    let mut totals: Vec<Duration> = calls.iter().map(|(s, a)| *a - *s).collect();
    let (mut matched, mut waited) = (0, 0);
    for &call in calls {
        if let Some((stage, sync, waited_for_leader)) = stages(call, steps) {
            matched += 1;
            waited += usize::from(waited_for_leader);
            for (all, d) in per_stage.iter_mut().zip(stage) {
                all.push(d);
            }
            leader_sync.push(sync);
        }
    }
    totals.sort();
    for all in &mut per_stage {
        all.sort();
    }
    leader_sync.sort();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for s in steps {
        *kinds.entry(s.step).or_default() += 1;
    }
    println!(
        "{} appends of {} bytes, {} with every step seen; probe events: {kinds:?}",
        calls.len(),
        args.bytes,
        matched
    );
    println!("{:<44} {:>10} {:>10}", "stage", "median µs", "p90 µs");
    let mut sum = 0.0;
    for (name, all) in STAGES.iter().zip(&per_stage) {
        let median = us(percentile(all, 0.5));
        sum += median;
        println!(
            "{name:<44} {median:>10.1} {:>10.1}",
            us(percentile(all, 0.9))
        );
    }
    println!("{:<44} {sum:>10.1}", "sum of the medians");
    println!(
        "{:<44} {:>10.1} {:>10.1}",
        "whole call (client's clock)",
        us(percentile(&totals, 0.5)),
        us(percentile(&totals, 0.9))
    );
    println!(
        "{:<44} {:>10.1} {:>10.1}",
        "leader's own sync (in parallel)",
        us(percentile(&leader_sync, 0.5)),
        us(percentile(&leader_sync, 0.9))
    );
    println!("commits that waited for the leader's own sync after the ack: {waited} of {matched}");
}
