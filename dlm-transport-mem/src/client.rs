//! A client's end of the in-process network.

use crate::faults::Endpoint;
use crate::network::{MemNetwork, Payload};
use async_trait::async_trait;
use dlm_core::runtime::{ClientTransport, Incoming, TransportError};
use dlm_core::{ClientId, ClientRequest, ClientResponse, ConnId, NodeId, Seq};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

type Key = (NodeId, ClientId, Seq);

/// The calls a client is waiting on, keyed by the node asked and the request's `(client, seq)`.
#[derive(Clone, Default)]
pub(crate) struct ClientInbox {
    pending: Arc<Mutex<HashMap<Key, Waiter>>>,
    next_call: Arc<AtomicU64>,
}

/// A waiting call: its unique number (so a finished call never removes a newer one with the same
/// key) and where its answer goes.
type Waiter = (u64, oneshot::Sender<ClientResponse>);

impl ClientInbox {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Waiter>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an answer to its waiting call; a duplicate or an answer nobody waits for is dropped.
    pub(crate) fn answer(&self, from: NodeId, response: ClientResponse) {
        let waiter = self.lock().remove(&(from, response.client, response.seq));
        if let Some((_, tx)) = waiter {
            let _ = tx.send(response);
        }
    }
}

/// Removes a call's entry when the call ends or is cancelled, so abandoned calls do not pile up.
struct PendingGuard<'a> {
    inbox: &'a ClientInbox,
    key: Key,
    call: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.inbox.lock();
        if pending
            .get(&self.key)
            .is_some_and(|(call, _)| *call == self.call)
        {
            pending.remove(&self.key);
        }
    }
}

/// A client's transport on a [`crate::MemNetwork`]. A call whose request or answer is lost waits
/// until the caller gives up (time-outs are the caller's business).
pub struct MemClient {
    id: u64,
    net: MemNetwork,
    inbox: ClientInbox,
}

impl MemClient {
    pub(crate) fn new(id: u64, net: MemNetwork, inbox: ClientInbox) -> Self {
        MemClient { id, net, inbox }
    }

    /// This client's end of its links, for the fault controls.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::Client(self.id)
    }
}

impl Drop for MemClient {
    fn drop(&mut self) {
        self.net.forget_client(self.id);
    }
}

#[async_trait]
impl ClientTransport for MemClient {
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError> {
        if !self.net.has_node(node) {
            return Err(TransportError::UnknownNode(node));
        }
        let key = (node, request.client, request.seq);
        let (tx, rx) = oneshot::channel();
        // A second call with the same key replaces the first, whose receiver then fails below.
        let call = self.inbox.next_call.fetch_add(1, Ordering::Relaxed);
        self.inbox.lock().insert(key, (call, tx));
        let _guard = PendingGuard {
            inbox: &self.inbox,
            key,
            call,
        };
        let incoming = Incoming::Client {
            conn: ConnId(self.id),
            request,
        };
        self.net.deliver(
            self.endpoint(),
            Endpoint::Node(node),
            Payload::ToNode(incoming),
        );
        rx.await.map_err(|_| TransportError::Connection {
            node,
            reason: "call superseded by another with the same (client, seq)".into(),
        })
    }
}
