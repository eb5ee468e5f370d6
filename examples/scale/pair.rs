//! Two driven nodes of one cluster, their messages handed across directly: node 1 (which the
//! election stagger makes the first to stand) and node 2, whose own work is timed apart.

use super::driven::{Driven, Error};
use dlm::message::PeerBody;
use dlm::{Config, NodeId};
use std::path::Path;
use std::time::{Duration, Instant};

/// The configuration of member `id` of the pair, snapshots off.
pub fn member(id: u64) -> Config {
    let mut cfg = Config::new(NodeId(id), [NodeId(1), NodeId(2)]);
    cfg.snapshot_every = u64::MAX / 2;
    cfg
}

/// What it took for the second node to get where it was asked to.
pub struct Caught {
    /// Wall time from node 1's election on.
    pub since_election: Duration,
    /// Wall time spent in node 2's own calls (opening it included), from the start.
    pub second_busy: Duration,
    /// Snapshot chunks node 1 sent, and their bytes.
    pub chunks: u64,
    pub chunk_bytes: u64,
}

/// Opens both nodes and exchanges their messages, the clock moving 10 ms at a time when they
/// have nothing to say, until `done(node 2)` holds once node 1 leads.
pub fn catch_up(
    first: &Path,
    second: &Path,
    done: impl Fn(&Driven) -> bool,
) -> Result<Caught, Error> {
    let mut busy = Duration::ZERO;
    let timed = |busy: &mut Duration, started: Instant| *busy += started.elapsed();
    let (mut leader, _) = Driven::open(first, member(1))?;
    let started = Instant::now();
    let (mut follower, _) = Driven::open(second, member(2))?;
    timed(&mut busy, started);
    let step = Duration::from_millis(10);
    let mut elected = None;
    let (mut chunks, mut chunk_bytes) = (0u64, 0u64);
    for _ in 0..2000 {
        let mut to_follower = leader.tick(step)?;
        let started = Instant::now();
        let mut to_leader = follower.tick(step)?;
        timed(&mut busy, started);
        while !(to_follower.is_empty() && to_leader.is_empty()) {
            if elected.is_none() && leader.node.is_leader() {
                elected = Some(Instant::now());
            }
            let started = Instant::now();
            for msg in to_follower.drain(..) {
                if let PeerBody::InstallSnapshot { data, .. } = &msg.body {
                    chunks += 1;
                    chunk_bytes += data.len() as u64;
                }
                follower.deliver(msg);
            }
            to_leader.extend(follower.drain()?);
            timed(&mut busy, started);
            for msg in to_leader.drain(..) {
                leader.deliver(msg);
            }
            to_follower.extend(leader.drain()?);
        }
        if let Some(elected) = elected {
            if done(&follower) {
                return Ok(Caught {
                    since_election: elected.elapsed(),
                    second_busy: busy,
                    chunks,
                    chunk_bytes,
                });
            }
        }
    }
    Err("node 2 never caught up".into())
}
