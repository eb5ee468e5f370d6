//! Failover measurements on a local cluster of server processes inside a [`NetLab`]: how long
//! after a heal a quorum commits again, and how long after the leader is lost a waiting client
//! is granted. Shared by `examples/failover.rs` (the benchmark) and `tests/fault_net.rs` (the
//! fault test), which assert only generous bounds on what this measures.

use super::cluster::ProcessCluster;
use super::netfault::NetLab;
use dlm::tcp::TcpClient;
use dlm::{Client, NodeId, Role};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The client every measurement uses: the shipped defaults (1 s attempts, 300 ms leader checks,
/// 10 s deadline), a 10 s lease.
pub type DlmClient = Client<TcpClient>;

/// A cluster whose nodes' traffic can be dropped.
pub struct Lab {
    pub cluster: ProcessCluster,
    pub net: NetLab,
    pub members: Vec<(u64, SocketAddr)>,
    /// Asks statuses and runs quorum probes.
    pub probe: DlmClient,
    next_seed: u64,
}

impl Lab {
    /// Starts `n` nodes (running the current executable with `node_args`). Call from the thread
    /// that entered the namespace ([`NetLab::enter`]), or from a runtime it started.
    pub fn start(n: u64, prefix: &str, node_args: &[&str]) -> Result<Lab, String> {
        let mut cluster =
            ProcessCluster::new(n, prefix, node_args).map_err(|e| format!("cluster: {e}"))?;
        cluster.tag_gids();
        let members = cluster.members().to_vec();
        let ports: Vec<(u64, u16)> = members.iter().map(|(id, a)| (*id, a.port())).collect();
        let net = NetLab::new(&ports)?;
        cluster.start_all().map_err(|e| format!("start: {e}"))?;
        let probe = dlm::connect_tcp_with(members.clone(), dlm::DEFAULT_CLUSTER_ID, |c| {
            c.seed = Some(1)
        });
        Ok(Lab {
            cluster,
            net,
            members,
            probe,
            next_seed: 100,
        })
    }

    /// A new client with the default settings (and its own seed).
    pub fn client(&mut self) -> DlmClient {
        self.next_seed += 1;
        let seed = self.next_seed;
        dlm::connect_tcp_with(self.members.clone(), dlm::DEFAULT_CLUSTER_ID, |c| {
            c.seed = Some(seed)
        })
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|(id, _)| *id).collect()
    }

    /// Waits until every node in `nodes` answers and all name the same leader, which says it
    /// leads; returns it (with its term).
    pub async fn settled_leader(
        &self,
        nodes: &[u64],
        within: Duration,
    ) -> Result<(u64, u64), String> {
        let by = Instant::now() + within;
        loop {
            let last = match agreed_leader(&self.probe, nodes).await {
                Ok(found) => return Ok(found),
                Err(e) => e,
            };
            if Instant::now() > by {
                return Err(format!(
                    "no agreed leader among {nodes:?} within {within:?}: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Lab {
    /// Waits until every node agrees on the same leader in the same term twice, 1 s apart. A
    /// node that comes back is handed the leadership if it has the lowest id (the servers'
    /// `prefer_lowest_id`) soon after it caught up; a trial started before that hand-over would
    /// lose a leader that is about to step down anyway.
    pub async fn stable_leader(&self, within: Duration) -> Result<(u64, u64), String> {
        let ids = self.ids();
        let by = Instant::now() + within;
        let mut seen = self.settled_leader(&ids, within).await?;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = self.settled_leader(&ids, within).await?;
            if now == seen {
                return Ok(now);
            }
            if Instant::now() > by {
                return Err(format!("the leader kept changing for {within:?}"));
            }
            seen = now;
        }
    }
}

async fn agreed_leader(probe: &DlmClient, nodes: &[u64]) -> Result<(u64, u64), String> {
    let asks = nodes.iter().map(|id| probe.status(NodeId(*id)));
    let answers = futures::future::join_all(asks).await;
    let mut named = None;
    let mut term = None;
    for (id, answer) in nodes.iter().zip(answers) {
        let status = answer.map_err(|e| format!("node {id}: {e}"))?;
        let leader = status
            .leader
            .map(|l| l.0)
            .ok_or_else(|| format!("node {id} knows no leader"))?;
        if named.is_some_and(|n| n != leader) {
            return Err(format!("node {id} names {leader}, another node {named:?}"));
        }
        named = Some(leader);
        if status.id.0 == leader && status.role == Role::Leader {
            term = Some(status.term.0);
        }
    }
    match (named, term) {
        (Some(l), Some(t)) => Ok((l, t)),
        _ => Err(format!("the named leader {named:?} does not say it leads")),
    }
}

/// From `from`, starts a `try_lock` on a fresh lock every 25 ms (released at once when
/// granted) and returns how long after `from` the first one was granted: a grant is a commit,
/// so that is when a quorum works again. `None` if nothing was granted within `within`.
pub async fn first_commit(
    client: &DlmClient,
    from: Instant,
    within: Duration,
    tag: &str,
) -> Option<Duration> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut probes = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    let by = from + within;
    let mut i = 0u64;
    let found = loop {
        tokio::select! {
            _ = tick.tick() => {
                if Instant::now() > by {
                    break None;
                }
                i += 1;
                let (client, tx, name) = (client.clone(), tx.clone(), format!("{tag}-{i}"));
                probes.spawn(async move {
                    if let Ok(guard) = client.try_lock(name).await {
                        let _ = tx.send(Instant::now());
                        let _ = client.release(guard).await;
                    }
                });
            }
            Some(at) = rx.recv() => break Some(at.saturating_duration_since(from)),
        }
    };
    // Let the granted probes release (briefly), abandon the rest.
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while probes.join_next().await.is_some() {}
    })
    .await;
    probes.abort_all();
    found
}

/// Keeps `client` cycling lock → release on its own lock until aborted, so that the log grows
/// while a node is cut off (it then has to catch up).
pub fn background_load(client: DlmClient, tag: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match client
                .lock_timeout(tag.as_str(), Duration::from_secs(2))
                .await
            {
                Ok(guard) => {
                    let _ = client.release(guard).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
}

/// How the leader is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderLoss {
    /// SIGKILL of its process (its sockets close: peers and clients see EOF/RST at once).
    Kill,
    /// Every packet to and from it dropped silently.
    Drop,
}

/// What one leader-loss trial saw, each time from the loss.
#[derive(Clone, Debug)]
pub struct LossTrial {
    pub old_leader: u64,
    /// A surviving node first said it leads (status polled every 20 ms).
    pub elected: Option<Duration>,
    /// The holder's release (sent at the loss) came back.
    pub released: Option<Duration>,
    /// The first waiting client was granted.
    pub first_grant: Option<Duration>,
    /// Every waiting client was granted (each releases at once).
    pub all_granted: Option<Duration>,
}

/// Clients for [`leader_loss`]: a holder and waiters, connected before the trials start.
pub struct Waiters {
    pub holder: DlmClient,
    pub waiters: Vec<DlmClient>,
}

impl Waiters {
    pub fn new(lab: &mut Lab, n: usize) -> Waiters {
        Waiters {
            holder: lab.client(),
            waiters: (0..n).map(|_| lab.client()).collect(),
        }
    }
}

/// One trial: with the cluster settled, the holder takes `lock`, the waiters queue behind it,
/// then the leader is lost and the holder releases at once (its client finds the new leader);
/// measures until every waiter was granted (or `within`). Leaves the old leader down/cut:
/// call [`restore`] after.
pub async fn leader_loss(
    lab: &mut Lab,
    clients: &Waiters,
    lock: &str,
    how: LeaderLoss,
    within: Duration,
) -> Result<LossTrial, String> {
    let ids = lab.ids();
    let (leader, term) = lab.stable_leader(Duration::from_secs(30)).await?;
    let guard = clients
        .holder
        .lock_timeout(lock, Duration::from_secs(5))
        .await
        .map_err(|e| format!("holder: {e}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut waiting = JoinSet::new();
    for w in &clients.waiters {
        let (w, tx, lock) = (w.clone(), tx.clone(), lock.to_string());
        waiting.spawn(async move {
            if let Ok(guard) = w.lock_timeout(lock, within + Duration::from_secs(5)).await {
                let _ = tx.send(Instant::now());
                let _ = w.release(guard).await;
            }
        });
    }
    drop(tx);
    // Long enough for every acquire to be queued at the leader.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let lost = Instant::now();
    match how {
        LeaderLoss::Kill => lab
            .cluster
            .kill(leader)
            .map_err(|e| format!("kill {leader}: {e}"))?,
        LeaderLoss::Drop => lab.net.cut(leader)?,
    }
    let holder = clients.holder.clone();
    let release = tokio::spawn(async move {
        let ok = holder.release(guard).await.is_ok();
        ok.then(Instant::now)
    });
    let survivors: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
    let probe = lab.probe.clone();
    let election = tokio::spawn(async move {
        let by = lost + within;
        while Instant::now() < by {
            for id in &survivors {
                let asked =
                    tokio::time::timeout(Duration::from_millis(200), probe.status(NodeId(*id)))
                        .await;
                if let Ok(Ok(s)) = asked {
                    if s.role == Role::Leader && s.term.0 > term {
                        return Some(Instant::now());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    });
    let mut grants = Vec::new();
    let _ = tokio::time::timeout_at(lost + within, async {
        while let Some(at) = rx.recv().await {
            grants.push(at);
            if grants.len() == clients.waiters.len() {
                break;
            }
        }
    })
    .await;
    waiting.abort_all();
    let since = |t: Instant| t.saturating_duration_since(lost);
    let elected = election.await.ok().flatten().map(since);
    let released = tokio::time::timeout(Duration::from_secs(1), release)
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten()
        .map(since);
    Ok(LossTrial {
        old_leader: leader,
        elected,
        released,
        first_grant: grants.first().copied().map(since),
        all_granted: (grants.len() == clients.waiters.len())
            .then(|| grants.last().copied().map(since))
            .flatten(),
    })
}

/// Brings `node` back after [`leader_loss`] (restarts it, or heals its traffic) and waits for
/// the whole cluster to agree on a leader.
pub async fn restore(lab: &mut Lab, node: u64, how: LeaderLoss) -> Result<(), String> {
    match how {
        LeaderLoss::Kill => lab
            .cluster
            .start(node)
            .map_err(|e| format!("restart {node}: {e}"))?,
        LeaderLoss::Drop => lab.net.heal(node)?,
    }
    let ids = lab.ids();
    lab.settled_leader(&ids, Duration::from_secs(30))
        .await
        .map(|_| ())
}

/// One heal trial: with the cluster settled and load running, cut follower `a` for `cut`, then
/// heal `a` and cut the other follower `b` in one rule change, so that only the leader and `a`
/// (whose link was dead for `cut`) can form a quorum; returns how long after the heal a commit
/// went through. Heals `b` before returning.
pub async fn heal_trial(
    lab: &mut Lab,
    cut: Duration,
    pick_second: bool,
    tag: &str,
    within: Duration,
) -> Result<Option<Duration>, String> {
    let ids = lab.ids();
    let (leader, _) = lab.stable_leader(Duration::from_secs(30)).await?;
    let followers: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
    let (a, b) = match (followers.first(), followers.get(1)) {
        (Some(x), Some(y)) if pick_second => (*y, *x),
        (Some(x), Some(y)) => (*x, *y),
        _ => return Err("need three nodes".into()),
    };
    let load_client = lab.client();
    let load = background_load(load_client, format!("{tag}-load"));
    lab.net.cut(a)?;
    tokio::time::sleep(cut).await;
    lab.net.swap(a, b)?;
    let healed = Instant::now();
    let took = first_commit(&lab.probe, healed, within, tag).await;
    load.abort();
    lab.net.heal(b)?;
    Ok(took)
}

/// Median and max of `samples` (`None`s, i.e. misses, count as `None` in the max).
pub fn median_max(samples: &[Option<Duration>]) -> (Option<Duration>, Option<Duration>, usize) {
    let mut got: Vec<Duration> = samples.iter().flatten().copied().collect();
    got.sort_unstable();
    let missed = samples.len() - got.len();
    let median = got.get(got.len() / 2).copied();
    let max = if missed > 0 {
        None
    } else {
        got.last().copied()
    };
    (median, max, missed)
}
