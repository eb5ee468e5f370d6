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
mod disk;
mod drive;
mod durable;
pub mod invariants;
mod net;
mod phases;
mod rng;

pub use client::{Holding, SimClient, LEASE};
pub use clock::Skew;
pub use config::{Faults, SimConfig};
pub use durable::Durable;
pub use rng::SimRng;

use crate::client::DriftBound;
use crate::config::Config;
use crate::names::LockName;
use crate::node::{Input, Node};
use crate::protocol::ClientRequest;
use crate::protocol::{ClientResponse, Op};
use crate::types::{ConnId, NodeId, Term, Time};
use client::Event;
use disk::Disk;
use invariants::{Broken, Checker};
use net::{Delivery, Net};
use std::collections::VecDeque;
use std::fmt;

/// How long after the heal phase starts clients stop starting new work, so that everything in
/// flight can settle before the final checks.
const QUIESCE: u64 = 6_000_000_000;
/// How long into the heal phase a leader is certain to be elected and known to clients.
const ABANDON_SETTLE: u64 = 2_000_000_000;
/// Once faults stop, a leader is elected within this (several election time-outs of 300 ms:
/// pre-vote, a split vote or two, a restarted node catching up).
const LEADER_BOUND: u64 = 2_000_000_000;
/// Once faults stop, every call outstanding at that moment ends within this: the client's
/// deadline (5 s) after a leader is known.
const CALLS_BOUND: u64 = LEADER_BOUND + 5_000_000_000 + 1_000_000_000;
/// How long after its abandonment (once the cluster has settled) an acquire may still hold
/// its lock: a cancel's round trip and commit, well under a lease.
const ABANDON_BOUND: u64 = 500_000_000;

fn draw_skew(max_ppm: i64, rng: &mut SimRng) -> Skew {
    if max_ppm > 0 {
        Skew(rng.below(2 * max_ppm as u64 + 1) as i64 - max_ppm)
    } else {
        Skew(0)
    }
}

/// A broken invariant, with what is needed to replay it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The seed of the run.
    pub seed: u64,
    /// The invariant.
    pub invariant: &'static str,
    /// What was wrong.
    pub detail: String,
    /// True virtual time (ns) of the step that broke it.
    pub at: u64,
    /// The last events before it, oldest first.
    pub events: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: invariant {} broken at {} ms: {}",
            self.seed,
            self.invariant,
            self.at / 1_000_000,
            self.detail
        )?;
        for event in &self.events {
            writeln!(f, "  {event}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// What a finished run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Hash of every effect in order: the same seed gives the same fingerprint.
    pub fingerprint: u64,
    /// Steps taken.
    pub steps: u64,
    /// Client operations answered.
    pub client_ops: u64,
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
}

/// A stalled leader (node index) and the one client (index) left on its side of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stranded {
    node: usize,
    client: usize,
}

/// How long a successor must have led before the stranded leader is woken: long enough that a
/// keep-alive sent since then, answered from memory, would reach past the successor's view of
/// the lease (it restarts leases at election, and the holder discounts 4.1% of a second).
const SUCCESSOR_LEAD: u64 = 100_000_000;

fn fold(h: &mut u64, v: u64) {
    // One multiply per word (FxHash's step): the fingerprint tells runs apart, it guards nothing.
    *h = (h.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
}

impl Sim {
    /// A simulator for `cfg`, not yet started.
    pub fn new(cfg: SimConfig) -> Result<Sim, Violation> {
        let mut rng = SimRng::new(cfg.seed);
        let ids: Vec<NodeId> = (1..=cfg.nodes as u64).map(NodeId).collect();
        let skew = cfg.faults.max_skew_ppm as i64;
        let mut nodes = Vec::new();
        for id in &ids {
            let mut c = Config::new(*id, ids.clone());
            c.seed = rng.next_u64();
            c.snapshot_every = cfg.snapshot_every;
            c.log_retain = cfg.log_retain;
            c.snapshot_chunk = 512;
            c.limits.max_lease = std::time::Duration::from_secs(10);
            c.session_ttl = std::time::Duration::from_secs(120);
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
        let mut sim = Sim {
            checker: Checker::new(cfg.nodes),
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

    fn violation(&self, broken: Broken) -> Violation {
        Violation {
            seed: self.cfg.seed,
            invariant: broken.0,
            detail: broken.1,
            at: self.now,
            events: self.history.iter().cloned().collect(),
        }
    }

    fn log(&mut self, event: impl FnOnce() -> String) {
        if self.cfg.history == 0 {
            return;
        }
        if self.history.len() == self.cfg.history {
            self.history.pop_front();
        }
        let line = format!("{:>9.3} ms {}", self.now as f64 / 1e6, event());
        self.history.push_back(line);
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

    /// One step of the whole run (phases and faults included).
    fn step(&mut self) -> Result<(), Violation> {
        let end = if self.chaos {
            self.chaos_end
        } else {
            self.heal_end
        };
        if self.chaos && self.now >= self.chaos_end {
            self.log(|| "heal: faults off".into());
            return self.heal();
        }
        let fault_at = if self.chaos {
            self.next_fault
        } else {
            u64::MAX
        };
        if fault_at <= self.now {
            self.fault()?;
            return Ok(());
        }
        let check_at = self.liveness_check_at();
        if check_at <= self.now {
            return self.check_liveness();
        }
        self.step_bounded(end.min(fault_at).min(check_at))
    }

    /// When the next bounded-liveness check of the heal phase is due.
    fn liveness_check_at(&self) -> u64 {
        match self.liveness_checks {
            _ if self.chaos => u64::MAX,
            0 => self.chaos_end + LEADER_BOUND,
            1 => self.chaos_end + CALLS_BOUND,
            _ => u64::MAX,
        }
    }

    /// Liveness with bounds, once faults stop (silent cuts healed, crashed nodes back): a
    /// leader within [`LEADER_BOUND`], and every client call that was outstanding at the heal
    /// ended within [`CALLS_BOUND`].
    fn check_liveness(&mut self) -> Result<(), Violation> {
        let stage = self.liveness_checks;
        self.liveness_checks += 1;
        if stage == 0 && !self.led_since_heal {
            let b = (
                "bounded_liveness",
                format!(
                    "no leader within {} ms of the heal",
                    LEADER_BOUND / 1_000_000
                ),
            );
            return Err(self.violation(b));
        }
        if stage == 1 {
            let healed = self.chaos_end;
            let stuck = self
                .clients
                .iter()
                .find(|c| c.alive && c.calling.as_ref().is_some_and(|call| call.2 < healed));
            if let Some(c) = stuck {
                let b = (
                    "bounded_liveness",
                    format!(
                        "client {} still waits {} ms after the heal on {:?}",
                        c.idx,
                        CALLS_BOUND / 1_000_000,
                        c.calling
                    ),
                );
                return Err(self.violation(b));
            }
        }
        Ok(())
    }

    /// Advances to the next thing that happens, but not past `limit`.
    fn step_bounded(&mut self, limit: u64) -> Result<(), Violation> {
        self.steps += 1;
        let mut next = limit;
        let mut what = Next::Limit;
        if let Some(t) = self.net.next_time() {
            if t < next {
                next = t;
                what = Next::Deliver;
            }
        }
        for (i, sn) in self.nodes.iter().enumerate() {
            let t = match &sn.node {
                None if sn.down_until != u64::MAX => sn.down_until,
                None => continue,
                Some(_) if sn.paused_until > self.now => sn.paused_until,
                Some(node) => {
                    let d = node.next_deadline();
                    if d == Time::MAX {
                        continue;
                    }
                    sn.true_of(d)
                }
            };
            if t < next {
                next = t;
                what = Next::Node(i);
            }
        }
        for (i, sn) in self.nodes.iter().enumerate() {
            // A paused node finishes its sync when it resumes (its entry above wakes it).
            let Some(t) = sn.disk.done_at() else {
                continue;
            };
            if sn.node.is_some() && sn.paused_until <= self.now && t < next {
                next = t;
                what = Next::Disk(i);
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let t = c.next_wake();
            if t < next {
                next = t;
                what = Next::Client(i);
            }
        }
        if next <= self.now {
            self.stuck += 1;
            if self.stuck > 100_000 {
                let b = (
                    "progress",
                    "100000 steps without time advancing".to_string(),
                );
                return Err(self.violation(b));
            }
        } else {
            self.stuck = 0;
        }
        self.now = self.now.max(next);
        match what {
            Next::Limit => Ok(()),
            Next::Deliver => self.deliver(),
            Next::Node(i) => {
                if self.nodes[i].node.is_none() {
                    return self.restart(i);
                }
                self.feed(i, Input::Tick)
            }
            Next::Disk(i) => self.sync_done(i),
            Next::Client(i) => self.client_wake(i),
        }?;
        self.check_abandoned()
    }

    fn client_wake(&mut self, i: usize) -> Result<(), Violation> {
        let quiet = !self.chaos && self.now >= self.chaos_end + QUIESCE;
        let mut events = Vec::new();
        self.clients[i].wake(self.now, quiet, self.cfg.locks, &mut self.rng, &mut events);
        self.client_events(i, events)
    }

    /// Records what client `i` did or learned, checking the invariants it bears on.
    fn client_events(&mut self, i: usize, events: Vec<Event>) -> Result<(), Violation> {
        let id = self.clients[i].id();
        for event in events {
            let checked = match event {
                Event::Send { node, request } => {
                    if let Op::Append {
                        lock, token, data, ..
                    } = &request.op
                    {
                        self.checker
                            .sent_appends
                            .insert(data.clone(), (request.client, lock.clone(), *token));
                    }
                    self.log(|| {
                        format!(
                            "client {i} → node {}: {:?} {:?}",
                            node + 1,
                            request.seq,
                            request.op
                        )
                    });
                    self.net
                        .send_request(self.now, self.chaos, node, i, request, &mut self.rng);
                    Ok(())
                }
                Event::Confirmed { lock, token, until } => self
                    .checker
                    .token_granted_once(id, &lock, token)
                    .and_then(|()| {
                        self.checker
                            .lease_confirmed(i, &lock, token, self.now, until)
                    }),
                Event::Dropped { lock } => {
                    self.checker.lease_dropped(i, &lock, self.now);
                    Ok(())
                }
                Event::Appended { file, offset, data } => {
                    self.checker.append_acked(file, offset, data, self.now);
                    Ok(())
                }
                Event::Read { file, data, sent } => {
                    self.checker.read_linearizable(&file, &data, sent)
                }
                Event::Abandoned { lock, session } => {
                    self.log(|| format!("client {i} abandons its acquire of {lock:?}"));
                    let settled = self.chaos_end + ABANDON_SETTLE;
                    let due = self.now.max(settled) + ABANDON_BOUND;
                    self.checker.abandoned.push((i, session, lock, due));
                    self.checker.abandoned_due = self.checker.abandoned_due.min(due);
                    Ok(())
                }
            };
            checked.map_err(|b| self.violation(b))?;
        }
        Ok(())
    }

    /// No lock stays granted to an acquire its caller abandoned: [`ABANDON_BOUND`] after the
    /// abandonment (or after the heal phase has had [`ABANDON_SETTLE`] to elect a leader, for
    /// one made during the chaos phase), the newest state no longer lists a grant of the lock
    /// to that session that the client does not claim.
    fn check_abandoned(&mut self) -> Result<(), Violation> {
        let now = self.now;
        if now < self.checker.abandoned_due {
            return Ok(());
        }
        let newest = self
            .nodes
            .iter()
            .filter_map(|sn| sn.node.as_ref())
            .max_by_key(|n| n.applied_index());
        let mut broken = None;
        let clients = &self.clients;
        let pending: Vec<(usize, LockName)> = self
            .checker
            .abandoned
            .iter()
            .filter(|a| a.3 > now)
            .map(|a| (a.0, a.2.clone()))
            .collect();
        self.checker.abandoned.retain(|(client, session, lock, due)| {
            if *due > now {
                return true;
            }
            if pending.iter().any(|(c, l)| c == client && l == lock) {
                // A later acquire of the same lock, abandoned too, may hold it now (it could
                // not have been granted while this one's grant stood): its own bound applies.
                return false;
            }
            let holder = newest
                .and_then(|n| n.state_machine().lock(lock))
                .and_then(|l| l.holder.as_ref());
            if let Some(h) = holder.filter(|h| h.client == *session) {
                let c = &clients[*client];
                if c.alive && c.id() == *session && !c.claims(lock, h.token) {
                    broken = Some((
                        "abandoned_acquires_undone",
                        format!(
                            "client {client}'s abandoned acquire of {lock:?} still holds {} {} ms after the bound",
                            h.token,
                            (now - due) / 1_000_000
                        ),
                    ));
                }
            }
            false
        });
        self.checker.abandoned_due = self
            .checker
            .abandoned
            .iter()
            .map(|a| a.3)
            .min()
            .unwrap_or(u64::MAX);
        match broken {
            Some(b) => Err(self.violation(b)),
            None => Ok(()),
        }
    }

    /// Whether `request` is the stranded holder's keep-alive reaching its stalled leader once a
    /// successor has led for [`SUCCESSOR_LEAD`]: the moment to wake it, so that the keep-alive
    /// is the first thing it handles.
    fn wakes_stranded(&self, node: usize, client: usize, request: &ClientRequest) -> bool {
        let Some(stalled) = self.nodes[node].node.as_ref() else {
            return false;
        };
        self.stranded == Some(Stranded { node, client })
            && self.nodes[node].paused_until > self.now
            && request.op == Op::KeepAlive
            && self.newest_leader.0 > stalled.term()
            && self.now >= self.newest_leader.1 + SUCCESSOR_LEAD
    }

    fn deliver(&mut self) -> Result<(), Violation> {
        let Some((at, delivery)) = self.net.pop() else {
            return Ok(());
        };
        match delivery {
            Delivery::Peer(msg) => {
                let to = (msg.to.0 - 1) as usize;
                if self.nodes[to].node.is_none() {
                    return Ok(());
                }
                if self.nodes[to].paused_until > self.now {
                    let later = self.nodes[to].paused_until;
                    self.net.requeue(later, Delivery::Peer(msg));
                    return Ok(());
                }
                let _ = at;
                self.feed(to, Input::Peer(msg))
            }
            Delivery::Request {
                node,
                client,
                request,
            } => {
                if self.nodes[node].node.is_none() {
                    return Ok(());
                }
                if self.wakes_stranded(node, client, &request) {
                    self.log(|| format!("node {} wakes to client {client}'s keep-alive", node + 1));
                    self.nodes[node].paused_until = self.now;
                    self.stranded = None;
                }
                if self.nodes[node].paused_until > self.now {
                    let later = self.nodes[node].paused_until;
                    self.net.requeue(
                        later,
                        Delivery::Request {
                            node,
                            client,
                            request,
                        },
                    );
                    return Ok(());
                }
                let conn = ConnId(client as u64);
                self.feed(node, Input::Client { conn, request })
            }
            Delivery::Response {
                node,
                client,
                response,
            } => self.on_response(node, client, response),
        }
    }

    fn on_response(
        &mut self,
        node: usize,
        i: usize,
        response: ClientResponse,
    ) -> Result<(), Violation> {
        if !self.clients[i].alive || response.client != self.clients[i].id() {
            return Ok(());
        }
        if let Err(b) =
            self.checker
                .dedup_consistent(response.client, response.seq, &response.result)
        {
            return Err(self.violation(b));
        }
        self.log(|| format!("client {i} ← {:?} {:?}", response.seq, response.result));
        let mut events = Vec::new();
        self.clients[i].on_response(self.now, node, response, &mut self.rng, &mut events);
        self.client_events(i, events)
    }
}

enum Next {
    Limit,
    Deliver,
    Node(usize),
    Disk(usize),
    Client(usize),
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
