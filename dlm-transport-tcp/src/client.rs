//! [`TcpClient`]: a client's side of the TCP network.

use crate::config::TcpClientConfig;
use crate::error::TcpError;
use crate::handshake;
use crate::liveness::{Heard, Liveness, Noting};
use crate::queue::OutQueue;
use crate::stream::Halves;
use crate::wire::{encode_frame, read_frame_or_signal, Frame, HelloRole, PING};
use async_trait::async_trait;
use dlm_core::runtime::{ClientTransport, TransportError};
use dlm_core::{ClientId, ClientRequest, ClientResponse, NodeId, Seq};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

type Answer = Result<ClientResponse, TransportError>;
type Key = (ClientId, Seq);
/// A node's connection, if open; locked across a connect so that concurrent first calls share it.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Conn>>>>;

/// A client's TCP transport: one connection per node, opened on first use and reopened after a
/// failure, with any number of calls in flight on it. While calls wait, the connection pings
/// its node; one that hears nothing for the silence bound is closed, its calls fail, and the
/// next call opens a fresh one (see [`TcpClientConfig::silence_timeout`]).
pub struct TcpClient {
    config: TcpClientConfig,
    addrs: Mutex<HashMap<NodeId, SocketAddr>>,
    slots: Mutex<HashMap<NodeId, Slot>>,
    next_call: AtomicU64,
}

/// One open connection; dropping it closes the socket.
struct Conn {
    shared: Arc<ConnShared>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ConnShared {
    node: NodeId,
    queue: OutQueue,
    pending: Mutex<Pending>,
    /// Woken when a call starts waiting, so that an idle connection needs no timer.
    busy: Notify,
}

#[derive(Default)]
struct Pending {
    /// Set once the connection has failed; no call may wait on it after that.
    dead: Option<String>,
    calls: HashMap<Key, (u64, oneshot::Sender<Answer>)>,
}

impl ConnShared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_dead(&self) -> bool {
        self.pending().dead.is_some()
    }

    /// Marks the connection dead and fails every call waiting on it.
    fn fail_all(&self, reason: String) {
        let mut pending = self.pending();
        let calls = std::mem::take(&mut pending.calls);
        pending.dead = Some(reason.clone());
        drop(pending);
        for (_, (_, tx)) in calls {
            let _ = tx.send(Err(TransportError::Connection {
                node: self.node,
                reason: reason.clone(),
            }));
        }
    }
}

/// Removes a call's entry when it ends or is cancelled (and only its own entry).
struct CallGuard<'a> {
    shared: &'a ConnShared,
    key: Key,
    call: u64,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.shared.pending();
        if pending
            .calls
            .get(&self.key)
            .is_some_and(|(call, _)| *call == self.call)
        {
            pending.calls.remove(&self.key);
        }
    }
}

impl TcpClient {
    /// A client for the nodes in `config`. Connects nothing until the first call.
    pub fn new(config: TcpClientConfig) -> TcpClient {
        TcpClient {
            addrs: Mutex::new(config.nodes.clone()),
            config,
            slots: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
        }
    }

    /// Adds a node or changes its address (takes effect at the next connection to it).
    pub fn set_addr(&self, node: NodeId, addr: SocketAddr) {
        self.addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node, addr);
    }

    fn addr(&self, node: NodeId) -> Option<SocketAddr> {
        self.addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .copied()
    }

    /// The open connection to `node`, opening one if there is none or the last one failed.
    async fn conn(&self, node: NodeId) -> Result<Arc<Conn>, TransportError> {
        let addr = self.addr(node).ok_or(TransportError::UnknownNode(node))?;
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node)
            .or_default()
            .clone();
        // Held across the connect so that concurrent first calls share one connection.
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            if !conn.shared.is_dead() {
                return Ok(conn.clone());
            }
        }
        let (secret, role) = match &self.config.admin_secret {
            Some(admin) => (Some(admin), HelloRole::Admin),
            None => (self.config.secret.as_ref(), HelloRole::Client),
        };
        let halves = handshake::connect(
            addr,
            &self.config.carrier(node, addr),
            self.config.cluster_id,
            secret,
            role,
            self.config.connect_timeout,
            self.config.handshake_timeout,
            &self.config.liveness(),
        )
        .await
        .map_err(|e| match e {
            TcpError::Refused(reason) => TransportError::Handshake(reason),
            // Retrying cannot make a node's proof verify: fail like a refusal, at once.
            e @ TcpError::Auth(_) => TransportError::Handshake(e.to_string()),
            // Nor a certificate: the same.
            #[cfg(feature = "tls")]
            e @ TcpError::Tls(_) => TransportError::Handshake(e.to_string()),
            other => TransportError::Connection {
                node,
                reason: other.to_string(),
            },
        })?;
        let shared = Arc::new(ConnShared {
            node,
            queue: OutQueue::new(self.config.queue_frames, usize::MAX),
            pending: Mutex::new(Pending::default()),
            busy: Notify::new(),
        });
        let task = tokio::spawn(run(
            shared.clone(),
            halves,
            self.config.max_frame,
            self.config.liveness(),
        ));
        let conn = Arc::new(Conn { shared, task });
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

async fn run(shared: Arc<ConnShared>, (read, write): Halves, max_frame: usize, live: Liveness) {
    let heard = Heard::new();
    let reader = async {
        let mut read = Noting::new(read, &heard);
        loop {
            match read_frame_or_signal::<_, ClientResponse>(&mut read, max_frame).await {
                Ok(Some(Frame::Message(response))) => {
                    let waiter = shared
                        .pending()
                        .calls
                        .remove(&(response.client, response.seq));
                    match waiter {
                        Some((_, tx)) => {
                            let _ = tx.send(Ok(response));
                        }
                        None => {
                            tracing::debug!(node = %shared.node, seq = %response.seq, "answer nobody waits for")
                        }
                    }
                }
                Ok(Some(Frame::Ping | Frame::Pong)) => {}
                Ok(None) => return "closed by the node".to_string(),
                Err(e) => {
                    tracing::error!(node = %shared.node, "closing connection: {e}");
                    return e.to_string();
                }
            }
        }
    };
    let reason = tokio::select! {
        // The reader first: see `liveness::silence`.
        biased;
        reason = reader => reason,
        result = shared.queue.write_loop(write, live.tail_probes) => match result {
            Err(e) => format!("write failed: {e}"),
            Ok(()) => "writer stopped".to_string(),
        },
        reason = watch(&shared, &heard, live) => {
            tracing::warn!(node = %shared.node, "{reason}; closing the connection");
            reason
        }
    };
    shared.fail_all(reason);
}

/// While calls wait, pings the node every ping interval, and gives up on the connection once
/// nothing has been heard for the silence bound; returns why. Silence is counted from when
/// calls started waiting: a node has nothing to say to an idle client.
async fn watch(shared: &ConnShared, heard: &Heard, live: Liveness) -> String {
    loop {
        while shared.pending().calls.is_empty() {
            shared.busy.notified().await;
        }
        heard.now();
        while !shared.pending().calls.is_empty() {
            if let Some(bound) = live.bound() {
                let quiet = heard.quiet_for();
                if quiet >= bound {
                    return format!("no answer from the node for {quiet:?} with calls waiting");
                }
            }
            // Best effort: a full queue means requests are going out, which the node answers.
            let _ = shared.queue.try_push(PING.to_vec());
            tokio::time::sleep(live.ping_interval).await;
        }
    }
}

#[async_trait]
impl ClientTransport for TcpClient {
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError> {
        let conn_error = |reason: String| TransportError::Connection { node, reason };
        let frame = encode_frame(&request, self.config.max_frame)
            .map_err(|e| conn_error(format!("request not sent: {e}")))?;
        let conn = self.conn(node).await?;
        let shared = &conn.shared;
        let key = (request.client, request.seq);
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = shared.pending();
            if let Some(reason) = &pending.dead {
                return Err(conn_error(reason.clone()));
            }
            // A second call with the same key replaces the first, whose receiver then fails.
            pending.calls.insert(key, (call, tx));
        }
        shared.busy.notify_one();
        let _guard = CallGuard { shared, key, call };
        shared
            .queue
            .try_push(frame)
            .map_err(|_| conn_error("send queue full".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(conn_error("call superseded or connection closed".into())))
    }
}
