//! The deterministic simulator (feature `sim`): N nodes and M clients in one thread, driven by one
//! seeded generator, virtual time jumping from one deadline or delivery to the next.
//!
//! A run has a chaos phase (message loss, duplication, reordering, partitions, crashes that lose
//! whatever was not persisted, pauses, client crashes, clock-rate skew) and then a heal phase with
//! faults off. The invariants in [`invariants`] are checked after every step; a violation comes
//! back as a [`Violation`] carrying the seed, so the run replays exactly.
//!
//! ```text
//! cargo run --release --example simulate --features sim -- --seeds 0..1000 --nodes 3 --clients 8
//! ```
//!
//! Model, in brief: a node's clock is true time scaled by its rate (1 ± skew); a persist is
//! applied to the node's [`Durable`] copy when it is executed, and a crash strikes in the middle
//! of a drain, so effects not yet executed (persists, sends, replies) are lost and the node
//! restarts from its durable copy. Each client is the shipped [`crate::client::ClientCore`]
//! driven by a model of its user (which calls to make, and when to give up on one, as a dropped
//! future would); its clock runs at its own rate too, and it discounts leases with a
//! [`crate::client::DriftBound`] of twice the largest skew (a fast server, a slow client).

mod client;
mod clock;
mod config;
mod control;
mod deliver;
mod disk;
mod drive;
mod durable;
pub mod invariants;
mod liveness;
mod membership;
mod net;
mod phases;
mod report;
mod rng;
mod schedule;

pub use client::{Holding, SimClient, LEASE};
pub use clock::Skew;
pub use config::{Faults, SimConfig};
pub use durable::Durable;
pub use report::{Summary, Violation};
pub use rng::SimRng;

use crate::client::DriftBound;
use crate::config::Config;
use crate::node::Node;
use crate::types::{NodeId, Term, Time};
use disk::Disk;
use invariants::Checker;
use net::Net;
use report::fold;
use std::collections::VecDeque;

/// Lock events each simulated node keeps for watches: few, so that watchers also meet the
/// compacted answer.
const WATCH_HISTORY: usize = 200;

fn draw_skew(max_ppm: i64, rng: &mut SimRng) -> Skew {
    if max_ppm > 0 {
        Skew(rng.below(2 * max_ppm as u64 + 1) as i64 - max_ppm)
    } else {
        Skew(0)
    }
}

/// One simulated node.
struct SimNode {
    cfg: Config,
    node: Option<Node>,
    durable: Durable,
    disk: Disk,
    /// Its clock's rate.
    skew: Skew,
    paused_until: u64,
    down_until: u64,
    crash_pending: bool,
    /// `Granted` replies this node has sent.
    grants_sent: u64,
    /// Snapshots received from a leader and installed.
    restored: u64,
}

impl SimNode {
    fn local(&self, t: u64) -> Time {
        self.skew.local(t)
    }

    fn true_of(&self, local: Time) -> u64 {
        self.skew.true_of(local)
    }
}

/// The simulator.
pub struct Sim {
    cfg: SimConfig,
    rng: SimRng,
    now: u64,
    nodes: Vec<SimNode>,
    clients: Vec<SimClient>,
    net: Net,
    chaos: bool,
    chaos_end: u64,
    heal_end: u64,
    next_fault: u64,
    checker: Checker,
    history: VecDeque<String>,
    fingerprint: u64,
    steps: u64,
    stuck: u64,
    /// Bounded-liveness checks of the heal phase done so far.
    liveness_checks: u8,
    /// A stalled leader left alone with one lock holder (see the stranding fault), woken by
    /// that holder's first keep-alive after a successor has led for a while.
    stranded: Option<Stranded>,
    /// The highest term seen led so far, and when its leader was first seen (true time).
    newest_leader: (Term, u64),
    /// Whether a leader of the newest term has been seen since the heal (a snapshot at the
    /// bound would miss one that is handing over at that very moment).
    led_since_heal: bool,
    /// The operator's requests so far (membership faults); the next one takes the next seq.
    admin_seq: u64,
    /// Removals the operator asked of the node they named, while it led.
    leaders_removed: u64,
    /// Requests clients sent naming pending seqs (see `ClientRequest::pending`).
    pending_sent: u64,
}

/// A stalled leader (node index) and the one client (index) left on its side of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stranded {
    node: usize,
    client: usize,
}

impl Sim {
    /// A simulator for `cfg`, not yet started.
    pub fn new(cfg: SimConfig) -> Result<Sim, Violation> {
        let mut rng = SimRng::new(cfg.seed);
        let ids: Vec<NodeId> = (1..=cfg.nodes as u64).map(NodeId).collect();
        // With membership faults, the cluster starts with (at most) three voters; the other
        // nodes start outside it and wait to be added.
        let voters: Vec<NodeId> = match cfg.faults.membership {
            true => ids.iter().copied().take(3).collect(),
            false => ids.clone(),
        };
        let skew = cfg.faults.max_skew_ppm as i64;
        let mut nodes = Vec::new();
        for id in &ids {
            let mut c = Config::new(*id, voters.clone());
            c.seed = rng.next_u64();
            c.snapshot_every = cfg.snapshot_every;
            c.log_retain = cfg.log_retain;
            c.snapshot_chunk = 512;
            c.limits.max_lease = std::time::Duration::from_secs(10);
            c.session_ttl = std::time::Duration::from_secs(120);
            // Small, so that watchers fall behind the window and get compacted answers too.
            c.watch_history = WATCH_HISTORY;
            let latency = match cfg.disk_latency {
                Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
                None => disk::LATENCIES[rng.below(disk::LATENCIES.len() as u64) as usize],
            };
            let skew = draw_skew(skew, &mut rng);
            nodes.push(SimNode {
                cfg: c,
                node: None,
                durable: Durable::default(),
                disk: Disk::new(latency),
                skew,
                paused_until: 0,
                down_until: 0,
                crash_pending: false,
                grants_sent: 0,
                restored: 0,
            });
        }
        // A server's clock may run fast by the largest skew while the client's runs slow by as
        // much: clients discount leases by twice that, plus rounding.
        let drift = DriftBound {
            rate_ppm: u32::try_from(2 * cfg.faults.max_skew_ppm + 1_000).unwrap_or(u32::MAX),
            margin: std::time::Duration::from_millis(1),
        };
        let clients = (0..cfg.clients)
            .map(|i| {
                let skew = draw_skew(skew, &mut rng);
                SimClient::new(i, cfg.nodes, skew, drift, &mut rng)
            })
            .collect();
        let chaos_end = u64::try_from(cfg.chaos.as_nanos()).unwrap_or(u64::MAX);
        let heal_end = chaos_end + u64::try_from(cfg.heal.as_nanos()).unwrap_or(u64::MAX);
        let net = Net::new(&cfg.faults, cfg.nodes, &mut rng);
        let mut checker = Checker::with_members(cfg.nodes, crate::Membership::bootstrap(voters));
        if let Some(first) = nodes.first() {
            checker.watch_oracle =
                Some(invariants::WatchOracle::new(crate::state_machine::Rules {
                    limits: first.cfg.limits.clone(),
                    lock_delay: !first.cfg.lock_delay.is_zero(),
                }));
        }
        let mut sim = Sim {
            checker,
            history: VecDeque::new(),
            rng,
            now: 0,
            nodes,
            clients,
            net,
            chaos: true,
            chaos_end,
            heal_end,
            next_fault: 200_000_000,
            fingerprint: 0xcbf2_9ce4_8422_2325,
            steps: 0,
            stuck: 0,
            liveness_checks: 0,
            stranded: None,
            newest_leader: (Term(0), 0),
            led_since_heal: false,
            admin_seq: 0,
            leaders_removed: 0,
            pending_sent: 0,
            cfg,
        };
        for i in 0..sim.nodes.len() {
            sim.start_node(i)?;
        }
        Ok(sim)
    }

    /// Runs both phases and the final checks.
    pub fn run(mut self) -> Result<Summary, Violation> {
        while self.now < self.heal_end {
            self.step()?;
        }
        self.final_checks()?;
        Ok(self.summary())
    }

    /// Runs until true time `t` (nanoseconds), checking invariants after every step.
    pub fn run_until(&mut self, t: u64) -> Result<(), Violation> {
        while self.now < t {
            self.step_bounded(t)?;
        }
        Ok(())
    }

    fn start_node(&mut self, idx: usize) -> Result<(), Violation> {
        let sn = &mut self.nodes[idx];
        let recovered = sn.durable.recover();
        let (hs, snap) = (
            recovered.hard_state,
            recovered.snapshot.as_ref().map(|s| s.last),
        );
        let span = (
            recovered.entries.first().map(|e| e.position()),
            recovered.entries.last().map(|e| e.position()),
        );
        match Node::new(sn.cfg.clone(), recovered) {
            Ok(node) => {
                sn.node = Some(node);
                sn.crash_pending = false;
                self.log(|| {
                    format!(
                        "node {} starts: {hs:?} snapshot {snap:?} entries {span:?}",
                        idx + 1
                    )
                });
                Ok(())
            }
            Err(e) => Err(self.violation(("recovery", format!("node {}: {e}", idx + 1)))),
        }
    }

    fn crash_now(&mut self, idx: usize, down_until: u64) {
        let survivors = self
            .rng
            .below(self.nodes[idx].disk.writing_len() as u64 + 1) as usize;
        let sn = &mut self.nodes[idx];
        sn.disk.crash(survivors, &mut sn.durable);
        sn.node = None;
        sn.crash_pending = false;
        sn.down_until = down_until;
        self.checker.on_crash(idx);
        self.log(|| format!("node {} crashes", idx + 1));
    }
}

/// Runs `cfg` without recording history (fast); on a violation, replays the same seed with the
/// history on, so the report carries the last events. Determinism makes the replay exact.
pub fn run_checked(cfg: SimConfig) -> Result<Summary, Violation> {
    let history = cfg.history;
    let fast = SimConfig {
        history: 0,
        ..cfg.clone()
    };
    match Sim::new(fast).and_then(Sim::run) {
        Ok(summary) => Ok(summary),
        Err(first) if history > 0 => match Sim::new(cfg).and_then(Sim::run) {
            Err(replayed) => Err(replayed),
            // Cannot happen unless the run is not deterministic: say so.
            Ok(_) => Err(Violation {
                invariant: "determinism",
                detail: format!("replay with history passed where the run failed: {first}"),
                ..first
            }),
        },
        Err(first) => Err(first),
    }
}

/// Runs one seed with `nodes` nodes and `clients` clients, every fault on.
pub fn run_seed(seed: u64, nodes: usize, clients: usize) -> Result<Summary, Violation> {
    run_checked(SimConfig::new(seed, nodes, clients))
}
