//! Client settings: where the cluster is, the lease asked for, retry pacing, deadlines, and the
//! clock drift a lease is discounted by.

use crate::types::{NodeId, Time};
use std::time::Duration;

/// How much the clocks involved in a lease may disagree, as a rate plus a fixed margin.
///
/// A lease is timed by the leader's clock from when the grant (or renewal) is applied, and by the
/// client's clock from when it sent the request. If the leader's clock runs fast relative to the
/// client's, the leader expires the lease early in the client's time. With a relative rate error
/// of at most `rate_ppm` parts per million, a lease of length `L` sent at `t` certainly lasts
/// until `t + L × (1 − rate) − margin` on the client's clock; the margin covers what a rate does
/// not (timer granularity, a clock step). [`DriftBound::safe_until`] is that formula; the client
/// and the simulator's lease invariant both use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriftBound {
    /// Largest rate at which a server's clock may run fast relative to the client's, in parts
    /// per million (10,000 = 1%).
    pub rate_ppm: u32,
    /// Subtracted on top of the rate.
    pub margin: Duration,
}

impl DriftBound {
    /// The default: 2% plus 10 ms. Crystal oscillators drift by tens of ppm and NTP slews at
    /// 500 ppm at most, so this leaves a wide berth for virtual machines whose clocks are
    /// paused or slewed by the hypervisor.
    pub const DEFAULT: DriftBound = DriftBound {
        rate_ppm: 20_000,
        margin: Duration::from_millis(10),
    };

    /// No drift at all (tests and simulations that model none).
    pub const NONE: DriftBound = DriftBound {
        rate_ppm: 0,
        margin: Duration::ZERO,
    };

    /// Until when a lease of `lease`, granted or renewed by a request first sent at `sent`, is
    /// certainly still in force (never before `sent`).
    pub fn safe_until(&self, sent: Time, lease: Duration) -> Time {
        let lease_ns = lease.as_nanos();
        let kept = lease_ns - lease_ns * u128::from(self.rate_ppm.min(1_000_000)) / 1_000_000;
        let kept = kept.saturating_sub(self.margin.as_nanos());
        sent.saturating_add(Duration::from_nanos(
            u64::try_from(kept).unwrap_or(u64::MAX),
        ))
    }
}

impl Default for DriftBound {
    fn default() -> Self {
        DriftBound::DEFAULT
    }
}

/// How a client talks to the cluster. Start from [`ClientConfig::new`] and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Every node of the cluster.
    pub nodes: Vec<NodeId>,
    /// The lease asked for with every lock.
    pub lease: Duration,
    /// First retry back-off; doubled per attempt up to `backoff_cap`, with full jitter.
    pub backoff_base: Duration,
    /// Longest back-off.
    pub backoff_cap: Duration,
    /// How long one attempt at one node may go unanswered before the next attempt. A waiting
    /// acquire is long-polled at the leader, so for it silence is normal: after this long it
    /// asks another node who leads, and goes back to the leader if it still does.
    pub attempt_timeout: Duration,
    /// How long a call may go without reaching the service before it fails with
    /// [`super::ClientError::Unavailable`]: the whole call for everything but a waiting acquire;
    /// for a waiting acquire, the longest time without word from a leader (its wait in the
    /// queue is bounded by the caller, not by this).
    pub deadline: Duration,
    /// How long a waiting acquire may go without word from its leader before the client asks
    /// that leader whether it still leads (a status probe, answered at once, not through the
    /// log); a probe unanswered for as long sends the acquire to the other nodes. Tie it to
    /// the cluster's election timeout (300 ms by default), so that a waiting client follows a
    /// new leader about as soon as one is elected.
    pub leader_check: Duration,
    /// The clock drift a lease is discounted by (see [`DriftBound`]).
    pub drift: DriftBound,
    /// Seed for the client id and the jitter; `None` lets the driver draw one from the OS.
    pub seed: Option<u64>,
}

impl ClientConfig {
    /// Defaults for a LAN cluster of `nodes`: 10 s leases, 1 s attempts, 10 s deadline.
    pub fn new(nodes: impl IntoIterator<Item = NodeId>) -> ClientConfig {
        ClientConfig {
            nodes: nodes.into_iter().collect(),
            lease: Duration::from_secs(10),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(10),
            leader_check: Duration::from_millis(300),
            drift: DriftBound::DEFAULT,
            seed: None,
        }
    }
}
