//! `scale recovery`: what a large state costs to snapshot and to recover, on real files.
//!
//! 1. A single node (driven synchronously, [`super::driven`]) grants `--locks` locks, one to
//!    each of as many sessions, under a 10 s lease, and snapshots right after the last grant.
//! 2. Taking that snapshot again (encoding the state machine, writing and syncing the file) and
//!    installing it (decoding it) is timed on its own, `--repeat` times.
//! 3. The snapshot is sent to a fresh follower: the node restarts as leader of a two-node
//!    cluster on a copy of its directory, and the follower, with an empty directory, gets the
//!    snapshot in chunks, installs and syncs it (timed from the leader's election to the
//!    follower having applied the snapshot).
//! 4. The node restarts with snapshots off and appends `--entries` keep-alives of those
//!    sessions behind the snapshot.
//! 5. Recovery is timed, `--repeat` times: reading the directory back, decoding the snapshot,
//!    and applying every entry once the node leads again. A last run recovers with the default
//!    `snapshot_every` (10,000), as a node configured by default would, which also takes a
//!    snapshot at the end of its replay.
//!
//! The clock is simulated (elections cost no wall time here): a real node also waits its
//! election time-out, 300–500 ms by default, before it leads alone; a follower that recovers
//! applies as soon as its leader tells it what is committed.

use super::driven::{dir_bytes, Driven, Error};
use super::pair;
use dlm::runtime::{FileStorage, Storage};
use dlm::{ClientId, ClientRequest, Config, NodeId, Op, Persist, Seq, Snapshot, StateMachine};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to build and how often to time each step.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sessions, each holding one lock, in the snapshot.
    #[arg(long, default_value_t = 100_000)]
    locks: u64,
    /// Keep-alive entries appended behind the snapshot.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Times each timed step is run.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Where to make the temporary directory (it is removed at the end).
    #[arg(long, conflicts_with = "keep")]
    dir: Option<std::path::PathBuf>,
    /// Build in this directory and keep it; if it already holds a build, only time recovery
    /// (with snapshots off, which leaves the log in place), so that two binaries can be
    /// compared on the same files, runs interleaved.
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
}

const LEASE: Duration = Duration::from_secs(10);
/// Requests handed to the node between two drains (one sync each), as a busy driver would.
const BATCH: usize = 4096;

pub fn run(args: Args) -> Result<(), Error> {
    let (_tmp, root) = match &args.keep {
        Some(keep) => (None, keep.clone()),
        None => {
            let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
            let tmp = tempfile::Builder::new()
                .prefix("dlm-scale-")
                .tempdir_in(parent)?;
            let root = tmp.path().to_path_buf();
            (Some(tmp), root)
        }
    };
    let node_dir = root.join("node");
    println!("load average before: {}", super::load_average());
    if args.keep.is_some() && node_dir.join("snapshot").exists() {
        for _ in 0..args.repeat {
            recover(&node_dir, no_snapshots(), "snapshot_every off")?;
            apply_alone(&node_dir)?;
            recover_as_follower(&node_dir, &root)?;
        }
        println!("load average after: {}", super::load_average());
        return Ok(());
    }
    build_and_time(&args, &root, &node_dir)
}

fn build_and_time(args: &Args, root: &Path, node_dir: &Path) -> Result<(), Error> {
    let n = args.locks;

    // 1. Grant the locks; the snapshot follows the last grant.
    let started = Instant::now();
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = n + 1;
    let (mut node, _) = Driven::open(node_dir, cfg)?;
    node.lead_alone()?;
    let acquires = one_lock_per_session(n);
    feed(&mut node, acquires)?;
    let held = node.node.state_machine().locks().count();
    let sessions = node.node.state_machine().sessions().count();
    if held as u64 != n || sessions as u64 != n {
        return Err(format!("expected {n} locks and sessions, have {held} and {sessions}").into());
    }
    let snapshot_index = node.node.applied_index();
    let snapshot_bytes = std::fs::metadata(node_dir.join("snapshot"))?.len();
    println!(
        "built: {n} sessions each holding a lock, snapshot at index {snapshot_index}: {snapshot_bytes} bytes ({:.1} bytes per lock with its session), in {:.2} s",
        snapshot_bytes as f64 / n as f64,
        started.elapsed().as_secs_f64()
    );

    // 2. Take and install, on their own.
    take_and_install(
        node.node.state_machine(),
        &root.join("scratch"),
        args.repeat,
    )?;
    drop(node);

    // 3. Send to a fresh follower.
    for _ in 0..args.repeat {
        let copy = root.join("leader");
        copy_dir(node_dir, &copy)?;
        let follower = root.join("follower");
        send_to_follower(&copy, &follower, snapshot_index)?;
        std::fs::remove_dir_all(&copy)?;
        std::fs::remove_dir_all(&follower)?;
    }

    // 4. Entries behind the snapshot.
    let started = Instant::now();
    let (mut node, _) = Driven::open(node_dir, no_snapshots())?;
    node.lead_alone()?;
    let keepalives = (0..args.entries).map(|k| {
        let seq = Seq(2 + k / n);
        ClientRequest {
            client: ClientId(u128::from(k % n) + 1),
            seq,
            acked_below: seq,
            pending: Vec::new(),
            op: Op::KeepAlive,
        }
    });
    feed(&mut node, keepalives)?;
    let last = node.node.last_log().index;
    drop(node);
    let wal_bytes = dir_bytes(&node_dir.join("wal"))?;
    println!(
        "appended {} keep-alives behind the snapshot (last index {last}; log {wal_bytes} bytes, {:.1} per entry) in {:.2} s",
        args.entries,
        wal_bytes as f64 / args.entries.max(1) as f64,
        started.elapsed().as_secs_f64()
    );

    // 5. Recover.
    println!("load average: {}", super::load_average());
    for _ in 0..args.repeat {
        recover(node_dir, no_snapshots(), "snapshot_every off")?;
        recover_as_follower(node_dir, root)?;
    }
    if args.keep.is_some() {
        // A snapshot now would compact the kept log away.
        return Ok(());
    }
    recover(node_dir, Config::single(NodeId(1)), "snapshot_every 10000")?;
    println!("load average after: {}", super::load_average());
    Ok(())
}

/// A single node's configuration that never snapshots in these runs.
fn no_snapshots() -> Config {
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = u64::MAX / 2;
    cfg
}

/// Hands `requests` to the node in batches, a millisecond apart (so no lease runs out).
pub fn feed(node: &mut Driven, requests: impl Iterator<Item = ClientRequest>) -> Result<(), Error> {
    let mut requests = requests.peekable();
    while requests.peek().is_some() {
        node.requests(requests.by_ref().take(BATCH))?;
        node.tick(Duration::from_millis(1))?;
    }
    Ok(())
}

fn take_and_install(sm: &StateMachine, scratch: &Path, repeat: usize) -> Result<(), Error> {
    let mut storage = FileStorage::open(scratch)?;
    let last = dlm::LogPosition::new(dlm::Term(1), dlm::LogIndex(1));
    for _ in 0..repeat {
        let started = Instant::now();
        let data = sm.to_bytes()?;
        let encode = started.elapsed();
        let started = Instant::now();
        let snapshot = Arc::new(Snapshot { last, data });
        storage.persist(vec![Persist::Snapshot {
            snapshot: Arc::clone(&snapshot),
            replaces_log: true,
        }])?;
        let write = started.elapsed();
        let started = Instant::now();
        let restored = StateMachine::from_bytes(&snapshot.data)?;
        let decode = started.elapsed();
        if restored.locks().count() != sm.locks().count() {
            return Err("the decoded snapshot lost locks".into());
        }
        let started = Instant::now();
        drop(restored);
        let free = started.elapsed();
        println!(
            "take: encode {:.1} ms + write and sync {:.1} ms; install: decode {:.1} ms (dropping the old state {:.1} ms)",
            ms(encode),
            ms(write),
            ms(decode),
            ms(free)
        );
    }
    Ok(())
}

/// Restarts the node in `leader_dir` as leader of a two-node cluster whose other member starts
/// empty in `follower_dir`, and times the snapshot's way to the follower.
fn send_to_follower(
    leader_dir: &Path,
    follower_dir: &Path,
    index: dlm::LogIndex,
) -> Result<(), Error> {
    let caught = pair::catch_up(leader_dir, follower_dir, |f| {
        f.node.applied_index() >= index
    })?;
    println!(
        "send and install: {} chunks, {} bytes, follower has applied the snapshot {:.1} ms after the leader's election ({:.1} ms of it in the follower)",
        caught.chunks,
        caught.chunk_bytes,
        ms(caught.since_election),
        ms(caught.second_busy)
    );
    Ok(())
}

/// Recovery of a follower: two copies of the node's directory restart as a two-node cluster;
/// node 1 is elected, and node 2 applies its log once it learns what is committed. Timed: node
/// 2's own work, from opening its storage to having applied everything (no timers of a leader).
fn recover_as_follower(node_dir: &Path, root: &Path) -> Result<(), Error> {
    let (first, second) = (root.join("pair-1"), root.join("pair-2"));
    copy_dir(node_dir, &first)?;
    copy_dir(node_dir, &second)?;
    let cpu_started = process_cpu();
    let last = {
        let (probe, _) = Driven::open(&second, pair::member(2))?;
        probe.node.last_log().index
    };
    let probe_cpu = process_cpu().saturating_sub(cpu_started);
    let caught = pair::catch_up(&first, &second, |f| f.node.applied_index() >= last)?;
    println!(
        "recover as a follower: {:.0} ms of the follower's own work (reading, decoding, applying to {last}); both nodes' CPU {:.0} ms",
        ms(caught.second_busy),
        ms(process_cpu().saturating_sub(cpu_started) - probe_cpu)
    );
    std::fs::remove_dir_all(&first)?;
    std::fs::remove_dir_all(&second)?;
    Ok(())
}

fn recover(dir: &Path, cfg: Config, label: &str) -> Result<(), Error> {
    let cpu_started = process_cpu();
    let started = Instant::now();
    let (mut node, opened) = Driven::open(dir, cfg)?;
    let started_apply = Instant::now();
    node.lead_alone()?;
    let last = node.node.last_log().index;
    if node.node.applied_index() < last {
        return Err("the recovered node did not apply its log".into());
    }
    let apply = started_apply.elapsed();
    let total = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_started);
    println!(
        "recover ({label}): {:.0} ms in all ({:.0} ms CPU) = read {:.0} ms ({} entries) + decode snapshot {:.0} ms + lead and apply {:.0} ms (applied to {last})",
        ms(total),
        ms(cpu),
        ms(opened.recover),
        opened.entries,
        ms(opened.node_new),
        ms(apply)
    );
    Ok(())
}

/// The state machine's share of recovery: decoding the snapshot and applying every entry,
/// without a node (so without the leader's timers that a node that leads re-arms meanwhile).
fn apply_alone(dir: &Path) -> Result<(), Error> {
    let mut storage = FileStorage::open(dir)?;
    let recovered = storage.recover()?;
    drop(storage);
    let snapshot = recovered.snapshot.ok_or("no snapshot")?;
    let rules = dlm::Rules {
        limits: dlm::Limits::default(),
        lock_delay: false,
    };
    let cpu_started = process_cpu();
    let started = Instant::now();
    let mut sm = StateMachine::from_bytes(&snapshot.data)?;
    let decoded = started.elapsed();
    let mut out = Vec::new();
    for entry in &recovered.entries {
        sm.apply(&entry.command, &rules, &mut out);
        out.clear();
    }
    let total = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_started);
    println!(
        "state machine alone: decode {:.0} ms + apply {} entries {:.0} ms = {:.0} ms ({:.0} ms CPU)",
        ms(decoded),
        recovered.entries.len(),
        ms(total - decoded),
        ms(total),
        ms(cpu)
    );
    Ok(())
}

pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.metadata()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU time (user + system) of this process so far, all threads.
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; on failure it stays zeroed.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Sessions 1..=n each acquiring its own lock, `lock-{i}`, under the bench's lease.
pub(super) fn one_lock_per_session(n: u64) -> impl Iterator<Item = ClientRequest> {
    (0..n).map(|i| ClientRequest {
        client: ClientId(u128::from(i) + 1),
        seq: Seq(1),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: Op::Acquire {
            lock: format!("lock-{i}").into(),
            lease: LEASE,
            wait: None,
        },
    })
}
