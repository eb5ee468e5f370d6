//! The shared network: who is attached, the fault settings of every link, and delivery.

use crate::client::{ClientInbox, MemClient};
use crate::faults::{Endpoint, LinkFaults};
use crate::node::MemNode;
use dlm_core::runtime::Incoming;
use dlm_core::{ClientResponse, NodeId};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// Counts of what the network did, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Copies put on their way to a live receiver (duplicates count twice).
    pub delivered: u64,
    /// Messages lost to a drop probability.
    pub dropped: u64,
    /// Extra copies made by a duplicate probability.
    pub duplicated: u64,
    /// Messages lost to a cut link or an isolated node.
    pub cut: u64,
}

/// A handle on an in-process network. Clones share the same network.
#[derive(Clone)]
pub struct MemNetwork {
    inner: Arc<Mutex<State>>,
}

/// A message on its way somewhere: to a node's inbox or a client's inbox.
pub(crate) enum Payload {
    ToNode(Incoming),
    ToClient {
        from: NodeId,
        response: ClientResponse,
    },
}

struct State {
    rng: Xoshiro256PlusPlus,
    default: LinkFaults,
    links: HashMap<(Endpoint, Endpoint), LinkFaults>,
    cut: HashSet<(Endpoint, Endpoint)>,
    isolated: HashSet<NodeId>,
    nodes: HashMap<NodeId, mpsc::UnboundedSender<Incoming>>,
    clients: HashMap<u64, ClientInbox>,
    next_client: u64,
    stats: NetworkStats,
}

impl MemNetwork {
    /// A network with perfect links, whose random faults are drawn from `seed`.
    pub fn new(seed: u64) -> MemNetwork {
        MemNetwork {
            inner: Arc::new(Mutex::new(State {
                rng: Xoshiro256PlusPlus::seed_from_u64(seed),
                default: LinkFaults::NONE,
                links: HashMap::new(),
                cut: HashSet::new(),
                isolated: HashSet::new(),
                nodes: HashMap::new(),
                clients: HashMap::new(),
                next_client: 1,
                stats: NetworkStats::default(),
            })),
        }
    }

    // A poisoned lock only means a test panicked while holding it; the state is still usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches node `id` and returns its transport. Attaching an id again replaces the earlier
    /// transport (which then receives nothing more), as a restarted node would.
    pub fn node(&self, id: NodeId) -> MemNode {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state().nodes.insert(id, tx);
        MemNode::new(id, self.clone(), rx)
    }

    /// Attaches a new client, with a fresh pseudo-id for its links ([`MemClient::endpoint`]).
    pub fn client(&self) -> MemClient {
        let mut st = self.state();
        let id = st.next_client;
        st.next_client += 1;
        let inbox = ClientInbox::default();
        st.clients.insert(id, inbox.clone());
        drop(st);
        MemClient::new(id, self.clone(), inbox)
    }

    /// The faults of every link without its own settings (initially [`LinkFaults::NONE`]).
    pub fn set_default_faults(&self, faults: LinkFaults) {
        self.state().default = faults;
    }

    /// Sets all the faults of the directed link `from → to`.
    pub fn set_link(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>, faults: LinkFaults) {
        self.state().links.insert((from.into(), to.into()), faults);
    }

    fn edit_link(&self, from: Endpoint, to: Endpoint, edit: impl FnOnce(&mut LinkFaults)) {
        let mut st = self.state();
        let default = st.default;
        edit(st.links.entry((from, to)).or_insert(default));
    }

    /// Sets the loss probability of the directed link `from → to`.
    pub fn set_drop(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>, p: f64) {
        self.edit_link(from.into(), to.into(), |f| f.drop = p);
    }

    /// Sets the duplication probability of the directed link `from → to`.
    pub fn set_duplicate(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>, p: f64) {
        self.edit_link(from.into(), to.into(), |f| f.duplicate = p);
    }

    /// Sets the delay range of the directed link `from → to`.
    pub fn set_delay(
        &self,
        from: impl Into<Endpoint>,
        to: impl Into<Endpoint>,
        min: Duration,
        max: Duration,
    ) {
        self.edit_link(from.into(), to.into(), |f| f.delay = (min, max.max(min)));
    }

    /// Cuts the directed link `from → to`: everything sent on it is lost until [`Self::heal`].
    pub fn cut(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) {
        self.state().cut.insert((from.into(), to.into()));
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both(&self, a: impl Into<Endpoint>, b: impl Into<Endpoint>) {
        let (a, b) = (a.into(), b.into());
        let mut st = self.state();
        st.cut.insert((a, b));
        st.cut.insert((b, a));
    }

    /// Heals the directed link `from → to`.
    pub fn heal(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) {
        self.state().cut.remove(&(from.into(), to.into()));
    }

    /// Heals both directions between `a` and `b`.
    pub fn heal_both(&self, a: impl Into<Endpoint>, b: impl Into<Endpoint>) {
        let (a, b) = (a.into(), b.into());
        let mut st = self.state();
        st.cut.remove(&(a, b));
        st.cut.remove(&(b, a));
    }

    /// Cuts node `id` off from everyone, peers and clients, both ways, until [`Self::rejoin`].
    pub fn isolate(&self, id: NodeId) {
        self.state().isolated.insert(id);
    }

    /// Ends the isolation of node `id` (links cut one by one stay cut).
    pub fn rejoin(&self, id: NodeId) {
        self.state().isolated.remove(&id);
    }

    /// Heals every cut and isolation and resets every link to the default faults.
    pub fn heal_all(&self) {
        let mut st = self.state();
        st.cut.clear();
        st.isolated.clear();
        st.links.clear();
    }

    /// What the network has done so far.
    pub fn stats(&self) -> NetworkStats {
        self.state().stats
    }

    pub(crate) fn has_node(&self, id: NodeId) -> bool {
        self.state().nodes.contains_key(&id)
    }

    pub(crate) fn forget_client(&self, id: u64) {
        self.state().clients.remove(&id);
    }

    /// Sends `payload` from `from` to `to` through the link's faults. Must be called inside a
    /// tokio runtime when the link has a delay.
    pub(crate) fn deliver(&self, from: Endpoint, to: Endpoint, payload: Payload) {
        let mut st = self.state();
        st.stats.sent += 1;
        let isolated = |e: Endpoint| matches!(e, Endpoint::Node(id) if st.isolated.contains(&id));
        if st.cut.contains(&(from, to)) || isolated(from) || isolated(to) {
            st.stats.cut += 1;
            return;
        }
        let faults = st.links.get(&(from, to)).copied().unwrap_or(st.default);
        if chance(&mut st.rng, faults.drop) {
            st.stats.dropped += 1;
            return;
        }
        let copies = if chance(&mut st.rng, faults.duplicate) {
            st.stats.duplicated += 1;
            2
        } else {
            1
        };
        let mut delays = Vec::with_capacity(copies);
        for _ in 0..copies {
            delays.push(pick_delay(&mut st.rng, faults.delay));
        }
        let Some(sink) = st.sink(to) else {
            return;
        };
        st.stats.delivered += copies as u64;
        drop(st);
        let mut payload = Some(payload);
        for (i, delay) in delays.into_iter().enumerate() {
            let copy = if i + 1 == copies {
                payload.take()
            } else {
                payload.as_ref().map(Payload::clone_payload)
            };
            let Some(copy) = copy else { break };
            if delay.is_zero() {
                sink.put(copy);
            } else {
                let sink = sink.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    sink.put(copy);
                });
            }
        }
    }
}

impl State {
    fn sink(&self, to: Endpoint) -> Option<Sink> {
        match to {
            Endpoint::Node(id) => self.nodes.get(&id).cloned().map(Sink::Node),
            Endpoint::Client(id) => self.clients.get(&id).cloned().map(Sink::Client),
        }
    }
}

#[derive(Clone)]
enum Sink {
    Node(mpsc::UnboundedSender<Incoming>),
    Client(ClientInbox),
}

impl Sink {
    fn put(&self, payload: Payload) {
        match (self, payload) {
            // A node that went away simply loses the message, as over a real network.
            (Sink::Node(tx), Payload::ToNode(incoming)) => {
                let _ = tx.send(incoming);
            }
            (Sink::Client(inbox), Payload::ToClient { from, response }) => {
                inbox.answer(from, response);
            }
            // Payload kinds always match their endpoint kind (node.rs and client.rs build them).
            _ => tracing::warn!("mem network: payload sent to the wrong kind of endpoint"),
        }
    }
}

impl Payload {
    fn clone_payload(&self) -> Payload {
        match self {
            Payload::ToNode(i) => Payload::ToNode(i.clone()),
            Payload::ToClient { from, response } => Payload::ToClient {
                from: *from,
                response: response.clone(),
            },
        }
    }
}

fn chance(rng: &mut Xoshiro256PlusPlus, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    if p >= 1.0 {
        return true;
    }
    // 53 random bits give a uniform float in [0, 1).
    let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    x < p
}

fn pick_delay(rng: &mut Xoshiro256PlusPlus, (min, max): (Duration, Duration)) -> Duration {
    if max <= min {
        return min;
    }
    let span = (max - min).as_nanos().min(u64::MAX as u128) as u64;
    min + Duration::from_nanos(rng.next_u64() % (span + 1))
}
