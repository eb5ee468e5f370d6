//! An in-test network for the runtime tests: tokio channels between nodes and clients, with
//! optional seeded loss and duplication of every message.
#![allow(dead_code)]

use async_trait::async_trait;
use dlm_core::message::PeerMessage;
use dlm_core::runtime::{ClientTransport, Incoming, Transport, TransportError};
use dlm_core::{ClientRequest, ClientResponse, ConnId, NodeId};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

struct Inner {
    nodes: HashMap<NodeId, mpsc::UnboundedSender<Incoming>>,
    pending: HashMap<ConnId, oneshot::Sender<ClientResponse>>,
    next_conn: u64,
    rng: Xoshiro256PlusPlus,
    drop_permille: u64,
    dup_permille: u64,
    drop_replies: bool,
    client_calls: HashMap<NodeId, u64>,
}

/// The network. Clones share it.
#[derive(Clone)]
pub struct Net(Arc<Mutex<Inner>>);

impl Net {
    pub fn new(seed: u64) -> Net {
        Net(Arc::new(Mutex::new(Inner {
            nodes: HashMap::new(),
            pending: HashMap::new(),
            next_conn: 1,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            drop_permille: 0,
            dup_permille: 0,
            drop_replies: false,
            client_calls: HashMap::new(),
        })))
    }

    /// Loss and duplication of every message, in thousandths.
    pub fn set_faults(&self, drop_permille: u64, dup_permille: u64) {
        let mut n = self.0.lock().unwrap();
        n.drop_permille = drop_permille;
        n.dup_permille = dup_permille;
    }

    /// Drop every reply to clients (a node that persisted but never answered).
    pub fn set_drop_replies(&self, drop: bool) {
        self.0.lock().unwrap().drop_replies = drop;
    }

    /// Client requests delivered to `node` so far.
    pub fn client_calls(&self, node: NodeId) -> u64 {
        self.0
            .lock()
            .unwrap()
            .client_calls
            .get(&node)
            .copied()
            .unwrap_or(0)
    }

    /// A (re)connected node endpoint.
    pub fn node(&self, id: NodeId) -> NodeNet {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0.lock().unwrap().nodes.insert(id, tx);
        NodeNet {
            net: self.clone(),
            rx,
        }
    }

    /// A client endpoint.
    pub fn client(&self) -> ClientNet {
        ClientNet { net: self.clone() }
    }

    /// How many copies of a message to deliver: 0, 1 or 2.
    fn copies(inner: &mut Inner) -> usize {
        let roll = inner.rng.next_u64() % 1000;
        if roll < inner.drop_permille {
            0
        } else if roll < inner.drop_permille + inner.dup_permille {
            2
        } else {
            1
        }
    }

    fn deliver(&self, to: NodeId, incoming: Incoming) -> Result<(), TransportError> {
        let mut inner = self.0.lock().unwrap();
        let copies = Self::copies(&mut inner);
        let tx = inner
            .nodes
            .get(&to)
            .cloned()
            .ok_or(TransportError::UnknownNode(to))?;
        for _ in 0..copies {
            let _ = tx.send(incoming.clone());
        }
        Ok(())
    }
}

/// A node's side.
pub struct NodeNet {
    net: Net,
    rx: mpsc::UnboundedReceiver<Incoming>,
}

#[async_trait]
impl Transport for NodeNet {
    async fn send(&self, msg: PeerMessage) {
        let _ = self.net.deliver(msg.to, Incoming::Peer(msg));
    }

    async fn reply(&self, conn: ConnId, response: ClientResponse) {
        let mut inner = self.net.0.lock().unwrap();
        if inner.drop_replies || Net::copies(&mut inner) == 0 {
            return;
        }
        if let Some(tx) = inner.pending.remove(&conn) {
            let _ = tx.send(response);
        }
    }

    async fn recv(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }
}

/// A client's side.
pub struct ClientNet {
    net: Net,
}

#[async_trait]
impl ClientTransport for ClientNet {
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError> {
        let (tx, rx) = oneshot::channel();
        let conn = {
            let mut inner = self.net.0.lock().unwrap();
            let conn = ConnId(inner.next_conn);
            inner.next_conn += 1;
            inner.pending.insert(conn, tx);
            *inner.client_calls.entry(node).or_default() += 1;
            conn
        };
        self.net.deliver(node, Incoming::Client { conn, request })?;
        rx.await.map_err(|_| TransportError::Closed)
    }
}
