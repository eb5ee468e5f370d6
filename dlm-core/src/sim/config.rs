//! What a simulation run does: cluster size, clients, phase lengths and which faults are on.

use std::time::Duration;

/// Which faults the chaos phase injects. Every one is on by default; rates are drawn per run
/// from the seed, up to the bounds given here.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Highest message-loss probability (0.0 ..= 1.0).
    pub max_loss: f64,
    /// Messages may be delivered twice.
    pub duplicate: bool,
    /// Messages get random delays, so they arrive out of order.
    pub reorder: bool,
    /// Symmetric and one-way partitions.
    pub partitions: bool,
    /// Nodes crash (losing whatever was not yet persisted) and restart.
    pub crashes: bool,
    /// Nodes pause (no ticks, deliveries held back) for a while.
    pub pauses: bool,
    /// Clients crash: they stop renewing, and their locks must expire.
    pub client_crashes: bool,
    /// Largest clock-rate skew of a node, in parts per million (each node's clock runs at a rate
    /// within `1 ± skew`).
    pub max_skew_ppm: u64,
    /// Membership changes among the faults: the cluster starts with at most three voters (the
    /// other nodes outside it), and an operator adds learners, promotes them and removes
    /// members (the leader included), at times crashing the leader just after. Off by default,
    /// so runs without it replay as before.
    pub membership: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            max_loss: 0.3,
            duplicate: true,
            reorder: true,
            partitions: true,
            crashes: true,
            pauses: true,
            client_crashes: true,
            max_skew_ppm: 20_000,
            membership: false,
        }
    }
}

impl Faults {
    /// No faults at all (scenario tests inject their own).
    pub fn none() -> Faults {
        Faults {
            max_loss: 0.0,
            duplicate: false,
            reorder: false,
            partitions: false,
            crashes: false,
            pauses: false,
            client_crashes: false,
            max_skew_ppm: 0,
            membership: false,
        }
    }
}

/// One simulation run.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Everything random derives from this.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Simulated clients.
    pub clients: usize,
    /// Locks the clients compete for.
    pub locks: usize,
    /// Whether the locks are of every kind ([`crate::sim::client::mode_of`]: exclusive,
    /// read-write, semaphore of 2, by name), or all exclusive (the workload before lock kinds,
    /// to replay its seeds).
    pub kinds: bool,
    /// Length of the chaos phase (virtual time).
    pub chaos: Duration,
    /// Length of the heal phase, with faults off, at the end of which everything must be settled.
    pub heal: Duration,
    /// Faults of the chaos phase.
    pub faults: Faults,
    /// Snapshot every this many applied entries.
    pub snapshot_every: u64,
    /// Entries kept behind a snapshot.
    pub log_retain: u64,
    /// Events kept for a violation report.
    pub history: usize,
    /// How long every node's sync takes; `None` draws one per node from the seed (from none,
    /// a synchronous driver, to a slow disk).
    pub disk_latency: Option<Duration>,
}

impl SimConfig {
    /// A run with every fault on.
    pub fn new(seed: u64, nodes: usize, clients: usize) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            clients,
            locks: 3,
            kinds: true,
            chaos: Duration::from_secs(10),
            heal: Duration::from_secs(20),
            faults: Faults::default(),
            snapshot_every: 200,
            log_retain: 20,
            history: 40,
            disk_latency: None,
        }
    }
}
