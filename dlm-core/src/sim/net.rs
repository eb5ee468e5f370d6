//! The simulated network: a queue of deliveries ordered by (time, send order), with loss,
//! duplication, random delay (hence reordering) and one-way cuts between nodes.

use super::config::Faults;
use super::rng::SimRng;
use crate::message::PeerMessage;
use crate::protocol::{ClientRequest, ClientResponse};
use rustc_hash::FxHashSet as HashSet;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something in flight.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// Node to node.
    Peer(PeerMessage),
    /// Client to node.
    Request {
        /// Receiving node (index).
        node: usize,
        /// Sending client (index).
        client: usize,
        /// The request.
        request: ClientRequest,
    },
    /// Node to client.
    Response {
        /// Answering node (index).
        node: usize,
        /// Receiving client (index).
        client: usize,
        /// The answer.
        response: ClientResponse,
    },
}

/// A heap entry: when, in what order, and where the delivery waits in `Net::slots` (the heap
/// moves entries as it sifts, and deliveries are large).
struct Queued {
    at: u64,
    order: u64,
    slot: usize,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap pops the earliest.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// The network.
pub struct Net {
    queue: BinaryHeap<Queued>,
    /// Deliveries in flight, by slot; `free` lists the empty slots.
    slots: Vec<Option<Delivery>>,
    free: Vec<usize>,
    order: u64,
    loss: f64,
    duplicate: bool,
    reorder: bool,
    cuts: HashSet<(usize, usize)>,
    /// (client, node) pairs that cannot reach each other, either way.
    client_cuts: HashSet<(usize, usize)>,
}

const BASE_DELAY: u64 = 500_000;

impl Net {
    /// A network with a loss rate drawn for this run.
    pub fn new(faults: &Faults, _nodes: usize, rng: &mut SimRng) -> Net {
        let mut net = Net {
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            order: 0,
            loss: 0.0,
            duplicate: faults.duplicate,
            reorder: faults.reorder,
            cuts: HashSet::default(),
            client_cuts: HashSet::default(),
        };
        net.reroll_loss(faults, rng);
        net
    }

    /// Draws a new loss rate up to the bound.
    pub fn reroll_loss(&mut self, faults: &Faults, rng: &mut SimRng) {
        self.loss = faults.max_loss * (rng.below(1_001) as f64 / 1_000.0);
    }

    /// Faults off: no loss, duplication, extra delay or cuts.
    pub fn heal(&mut self) {
        self.loss = 0.0;
        self.duplicate = false;
        self.reorder = false;
        self.cuts.clear();
        self.client_cuts.clear();
    }

    /// Cuts messages from node `from` to node `to`.
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cuts.insert((from, to));
    }

    /// Cuts client `client` off from node `node`, both ways.
    pub fn cut_client(&mut self, client: usize, node: usize) {
        self.client_cuts.insert((client, node));
    }

    /// When the next delivery is due.
    pub fn next_time(&self) -> Option<u64> {
        self.queue.peek().map(|q| q.at)
    }

    /// The next delivery.
    pub fn pop(&mut self) -> Option<(u64, Delivery)> {
        let q = self.queue.pop()?;
        let delivery = self.slots.get_mut(q.slot)?.take()?;
        self.free.push(q.slot);
        Some((q.at, delivery))
    }

    /// Puts a delivery back, due at `at` (its receiver is paused).
    pub fn requeue(&mut self, at: u64, delivery: Delivery) {
        self.push(at, delivery);
    }

    fn push(&mut self, at: u64, delivery: Delivery) {
        self.order += 1;
        let order = self.order;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(delivery);
                slot
            }
            None => {
                self.slots.push(Some(delivery));
                self.slots.len() - 1
            }
        };
        self.queue.push(Queued { at, order, slot });
    }

    fn delay(&self, rng: &mut SimRng) -> u64 {
        if !self.reorder {
            return BASE_DELAY;
        }
        let extra = if rng.chance(0.05) {
            rng.below(200_000_000)
        } else {
            rng.below(10_000_000)
        };
        BASE_DELAY + extra
    }

    fn send(&mut self, now: u64, chaos: bool, delivery: Delivery, rng: &mut SimRng) {
        if chaos && rng.chance(self.loss) {
            return;
        }
        if chaos && self.duplicate && rng.chance(0.03) {
            let at = now + self.delay(rng);
            self.push(at, delivery.clone());
        }
        let at = now + self.delay(rng);
        self.push(at, delivery);
    }

    /// Sends a peer message, unless the link is cut.
    pub fn send_peer(&mut self, now: u64, chaos: bool, msg: PeerMessage, rng: &mut SimRng) {
        let from = (msg.from.0 - 1) as usize;
        let to = (msg.to.0 - 1) as usize;
        if self.cuts.contains(&(from, to)) {
            return;
        }
        self.send(now, chaos, Delivery::Peer(msg), rng);
    }

    /// Sends a client request.
    pub fn send_request(
        &mut self,
        now: u64,
        chaos: bool,
        node: usize,
        client: usize,
        request: ClientRequest,
        rng: &mut SimRng,
    ) {
        if self.client_cuts.contains(&(client, node)) {
            return;
        }
        let delivery = Delivery::Request {
            node,
            client,
            request,
        };
        self.send(now, chaos, delivery, rng);
    }

    /// Sends node `node`'s reply to a client.
    #[allow(clippy::too_many_arguments)]
    pub fn send_response(
        &mut self,
        now: u64,
        chaos: bool,
        node: usize,
        client: usize,
        response: ClientResponse,
        rng: &mut SimRng,
    ) {
        if self.client_cuts.contains(&(client, node)) {
            return;
        }
        let delivery = Delivery::Response {
            node,
            client,
            response,
        };
        self.send(now, chaos, delivery, rng);
    }
}
