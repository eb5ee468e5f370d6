//! `scale learner`: what a learner added at run time costs to catch up from a large state.
//!
//! 1. A single node (driven synchronously, [`super::driven`]) grants `--locks` locks, one to
//!    each of as many sessions, snapshots right after the last grant, then appends `--entries`
//!    keep-alives of those sessions behind the snapshot (with the default `log_retain` of 1,000
//!    entries, a learner needs the snapshot and then the log tail).
//! 2. The node restarts as leader on a copy of its directory and is asked to add node 2 as a
//!    learner (`Op::AddLearner`, through the log). Node 2 starts with an empty directory,
//!    outside the configuration, and the two exchange messages directly until node 2 has
//!    applied the leader's last entry. Timed from the add's commit; counted: snapshot chunks and
//!    their bytes, AppendEntries and their encoded bytes (the wire's postcard frames).
//!
//! The clock is simulated (the node's timers move 10 ms whenever nobody has anything to say);
//! the wall time is the two nodes' own work (encoding, persisting with fsync, decoding,
//! applying), so it is a lower bound for a real network.

use super::driven::{Driven, Error};
use dlm::message::{PeerBody, PeerMessage};
use dlm::{ClientId, ClientRequest, Config, NodeId, Op, Seq};
use std::path::Path;
use std::time::{Duration, Instant};

/// What to build.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sessions, each holding one lock, in the snapshot.
    #[arg(long, default_value_t = 100_000)]
    locks: u64,
    /// Keep-alive entries appended behind the snapshot.
    #[arg(long, default_value_t = 10_000)]
    entries: u64,
    /// Times the catch-up is run.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

pub fn run(args: Args) -> Result<(), Error> {
    let tmp = tempfile::Builder::new().prefix("dlm-learner-").tempdir()?;
    let root = tmp.path();
    let node_dir = root.join("node");
    build(&args, &node_dir)?;
    println!("load average: {}", super::load_average());
    for _ in 0..args.repeat {
        let leader = root.join("leader");
        super::recovery::copy_dir(&node_dir, &leader)?;
        let learner = root.join("learner");
        catch_up(&leader, &learner)?;
        std::fs::remove_dir_all(&leader)?;
        std::fs::remove_dir_all(&learner)?;
    }
    println!("load average after: {}", super::load_average());
    Ok(())
}

/// Grants the locks (the snapshot follows the last grant) and appends the keep-alives.
fn build(args: &Args, dir: &Path) -> Result<(), Error> {
    let n = args.locks;
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = n + 1;
    let (mut node, _) = Driven::open(dir, cfg)?;
    node.lead_alone()?;
    let acquires = super::recovery::one_lock_per_session(n);
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
    super::recovery::feed(&mut node, acquires.chain(keepalives))?;
    println!(
        "built: {n} sessions each holding a lock, snapshot {} bytes, then {} keep-alives (last index {})",
        std::fs::metadata(dir.join("snapshot"))?.len(),
        args.entries,
        node.node.last_log().index
    );
    Ok(())
}

/// Restarts the node in `leader_dir` alone, adds node 2 (empty, in `learner_dir`) as a learner,
/// and passes messages until node 2 has applied everything.
fn catch_up(leader_dir: &Path, learner_dir: &Path) -> Result<(), Error> {
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = u64::MAX / 2;
    let (mut leader, _) = Driven::open(leader_dir, cfg)?;
    leader.lead_alone()?;
    leader.requests([ClientRequest {
        client: ClientId(u128::MAX),
        seq: Seq(1),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: Op::AddLearner {
            id: NodeId(2),
            addr: "learner-2".into(),
        },
    }])?;
    if !leader.node.membership().is_learner(NodeId(2)) {
        return Err("the learner was not added".into());
    }
    let target = leader.node.last_log().index;
    let started = Instant::now();
    // Outside the configuration it is given: it waits to be sent the log.
    let (mut learner, _) = Driven::open(learner_dir, Config::new(NodeId(2), [NodeId(1)]))?;
    let mut count = Count::default();
    let step = Duration::from_millis(10);
    for _ in 0..20_000 {
        let mut to_learner = leader.tick(step)?;
        let mut to_leader = learner.tick(step)?;
        while !(to_learner.is_empty() && to_leader.is_empty()) {
            for msg in to_learner.drain(..) {
                count.note(&msg)?;
                learner.deliver(msg);
            }
            to_leader.extend(learner.drain()?);
            for msg in to_leader.drain(..) {
                leader.deliver(msg);
            }
            to_learner.extend(leader.drain()?);
        }
        if learner.node.applied_index() >= target {
            println!(
                "learner caught up to index {target} in {:.0} ms: {} snapshot chunks ({} bytes of snapshot), {} AppendEntries ({} entries); {} bytes on the wire in all",
                started.elapsed().as_secs_f64() * 1e3,
                count.chunks,
                count.snapshot_bytes,
                count.appends,
                count.entries,
                count.wire_bytes
            );
            return Ok(());
        }
    }
    Err("the learner never caught up".into())
}

/// What the leader sent the learner.
#[derive(Default)]
struct Count {
    chunks: u64,
    snapshot_bytes: u64,
    appends: u64,
    entries: u64,
    wire_bytes: u64,
}

impl Count {
    fn note(&mut self, msg: &PeerMessage) -> Result<(), Error> {
        self.wire_bytes += dlm::tcp::wire::encode_frame(msg, usize::MAX)?.len() as u64;
        match &msg.body {
            PeerBody::InstallSnapshot { data, .. } => {
                self.chunks += 1;
                self.snapshot_bytes += data.len() as u64;
            }
            PeerBody::AppendEntries { entries, .. } => {
                self.appends += 1;
                self.entries += entries.len() as u64;
            }
            _ => {}
        }
        Ok(())
    }
}
