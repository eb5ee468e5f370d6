//! [`TcpClient`]: a client's side of the TCP network.

use crate::config::TcpClientConfig;
use crate::datagram::client::{Answers, ClientDatagrams, Path, Routed};
use crate::datagram::{DatagramStats, Datagrams};
use crate::duplicates::LossSignal;
use crate::error::TcpError;
use crate::handshake;
use crate::liveness::{Heard, Liveness, Noting};
use crate::queue::OutQueue;
use crate::stream::Halves;
use crate::tail_probe::TailProbe;
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
/// next call opens a fresh one (see [`TcpClientConfig::silence_timeout`]). While the
/// connections to a node lose packets, requests to it also go out on extra connections, and
/// a call takes the first answer (see [`TcpClientConfig::duplicates`]); small requests also go
/// out as datagrams then, and the node copies its answers back the same way (see
/// [`TcpClientConfig::datagrams`]).
pub struct TcpClient {
    config: TcpClientConfig,
    addrs: Mutex<HashMap<NodeId, SocketAddr>>,
    /// By node and lane: lane 0 is the node's connection, the others the extra ones.
    slots: Mutex<HashMap<(NodeId, usize), Slot>>,
    /// Whether the connections to each node lose packets lately.
    losses: Mutex<HashMap<NodeId, Arc<LossSignal>>>,
    next_call: AtomicU64,
    /// The UDP side, bound when a first connection takes datagrams.
    datagrams: ClientDatagrams,
}

/// One open connection; dropping it closes the socket.
struct Conn {
    shared: Arc<ConnShared>,
    task: JoinHandle<()>,
    /// Its answers by datagram are taken while it is open.
    _routed: Option<Routed>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ConnShared {
    node: NodeId,
    /// Shared by every connection to the node.
    loss: Arc<LossSignal>,
    queue: OutQueue,
    pending: Mutex<Pending>,
    /// Woken when a call starts waiting, so that an idle connection needs no timer.
    busy: Notify,
    /// How its requests go out as datagrams, if the node took them for it.
    datagram: Option<Path>,
}

impl Answers for ConnShared {
    fn answer(&self, response: ClientResponse) {
        let waiter = self
            .pending()
            .calls
            .remove(&(response.client, response.seq));
        // None: the call took a copy that came first, by TCP or on another connection.
        if let Some((_, tx)) = waiter {
            let _ = tx.send(Ok(response));
        }
    }
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
            datagrams: ClientDatagrams::new(config.datagrams.copies()),
            config,
            slots: Mutex::new(HashMap::new()),
            losses: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
        }
    }

    /// This client's datagrams so far (all zero while it has sent none).
    pub fn datagram_stats(&self) -> DatagramStats {
        self.datagrams.stats()
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

    fn slot(&self, node: NodeId, lane: usize) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((node, lane))
            .or_default()
            .clone()
    }

    fn loss(&self, node: NodeId) -> Arc<LossSignal> {
        self.losses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node)
            .or_insert_with(|| {
                let signal = LossSignal::new(self.config.duplicates)
                    .with_datagrams(self.config.datagrams_in_effect());
                Arc::new(signal)
            })
            .clone()
    }

    /// The open connection to `node`, opening one if there is none or the last one failed.
    async fn conn(&self, node: NodeId) -> Result<Arc<Conn>, TransportError> {
        let addr = self.addr(node).ok_or(TransportError::UnknownNode(node))?;
        let slot = self.slot(node, 0);
        // Held across the connect so that concurrent first calls share one connection.
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            if !conn.shared.is_dead() {
                return Ok(conn.clone());
            }
        }
        let loss = self.loss(node);
        let conn = open(&self.config, node, addr, loss, 0, Some(&self.datagrams)).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// The extra connection `lane` to `node` if it is open; if not, opens it in the background
    /// (unless that is under way) and returns none, so that no call waits for a handshake.
    fn spare(&self, node: NodeId, lane: usize) -> Option<Arc<Conn>> {
        let addr = self.addr(node)?;
        // Locked while it connects: then there is none to use yet.
        let mut slot = self.slot(node, lane).try_lock_owned().ok()?;
        if let Some(conn) = slot.as_ref() {
            if !conn.shared.is_dead() {
                return Some(conn.clone());
            }
        }
        let config = self.config.clone();
        let loss = self.loss(node);
        tokio::spawn(async move {
            match open(&config, node, addr, loss, lane, None).await {
                Ok(conn) => *slot = Some(conn),
                Err(e) => tracing::debug!(%node, lane, "extra connection not opened: {e}"),
            }
        });
        None
    }
}

/// Opens connection `lane` to `node` at `addr`: the same handshake and TLS whatever the lane.
/// With `datagrams` (lane 0's), it asks the node to take datagrams for it, if they are on.
async fn open(
    config: &TcpClientConfig,
    node: NodeId,
    addr: SocketAddr,
    loss: Arc<LossSignal>,
    lane: usize,
    datagrams: Option<&ClientDatagrams>,
) -> Result<Arc<Conn>, TransportError> {
    let datagrams = datagrams.filter(|_| config.datagrams_in_effect() != Datagrams::Never);
    let (secret, role) = match &config.admin_secret {
        Some(admin) => (Some(admin), HelloRole::Admin),
        None => (config.secret.as_ref(), HelloRole::Client),
    };
    let connected = handshake::connect(
        addr,
        &config.carrier(node, addr),
        config.cluster_id,
        secret,
        role,
        config.connect_timeout,
        config.handshake_timeout,
        &config.liveness(),
        datagrams.is_some(),
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
    let (halves, binding) = (connected.halves, connected.datagrams);
    let path = match (datagrams, &binding) {
        (Some(datagrams), Some(binding)) => datagrams.path(addr, binding.clone()).await,
        _ => None,
    };
    let shared = Arc::new(ConnShared {
        node,
        loss,
        queue: OutQueue::new(config.queue_frames, usize::MAX),
        pending: Mutex::new(Pending::default()),
        busy: Notify::new(),
        datagram: path,
    });
    let routed = match (datagrams, &binding, &shared.datagram) {
        (Some(datagrams), Some(binding), Some(_)) => {
            let answers: Arc<dyn Answers> = shared.clone();
            Some(datagrams.route(binding, Arc::downgrade(&answers)))
        }
        _ => None,
    };
    let task = tokio::spawn(run(
        shared.clone(),
        halves,
        config.max_frame,
        config.liveness(),
        lane,
    ));
    Ok(Arc::new(Conn {
        shared,
        task,
        _routed: routed,
    }))
}

async fn run(
    shared: Arc<ConnShared>,
    (read, write): Halves,
    max_frame: usize,
    live: Liveness,
    lane: usize,
) {
    let heard = Heard::new();
    let probe = TailProbe::new(live.tail_probes).reporting_to(shared.loss.clone());
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
                        // Typically the later copy of an answer whose call took the first (on
                        // another connection, or this one: the node may answer each copy).
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
        result = shared.queue.write_loop(write, probe) => match result {
            Err(e) => format!("write failed: {e}"),
            Ok(()) => "writer stopped".to_string(),
        },
        () = unneeded(&shared, lane, live), if lane > 0 => {
            tracing::debug!(node = %shared.node, lane, "no loss lately: extra connection closed");
            "extra connection no longer needed".to_string()
        }
        reason = watch(&shared, &heard, live) => {
            tracing::warn!(node = %shared.node, "{reason}; closing the connection");
            reason
        }
    };
    shared.fail_all(reason);
}

/// Ends once extra connection `lane` is no longer needed (no loss seen lately) and no call
/// waits on it.
async fn unneeded(shared: &ConnShared, lane: usize, live: Liveness) {
    loop {
        shared.loss.unneeded(lane).await;
        if shared.pending().calls.is_empty() {
            return;
        }
        tokio::time::sleep(live.ping_interval).await;
    }
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

/// Sends `frame` on `conn` (and as a datagram too if `by_datagram` and the connection has a
/// datagram path) and waits for the answer to `key`.
async fn call_on(conn: &Conn, key: Key, call: u64, frame: Vec<u8>, by_datagram: bool) -> Answer {
    let shared = &conn.shared;
    let conn_error = |reason: String| TransportError::Connection {
        node: shared.node,
        reason,
    };
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
    // After the waiter is in place, so that an answer by datagram finds it.
    if let (true, Some(path), Some(payload)) = (
        by_datagram,
        &shared.datagram,
        frame.get(crate::wire::FRAME_HEADER_LEN..),
    ) {
        path.send(payload);
    }
    shared
        .queue
        .try_push(frame)
        .map_err(|_| conn_error("send queue full".into()))?;
    rx.await
        .unwrap_or_else(|_| Err(conn_error("call superseded or connection closed".into())))
}

/// Sends `frame` on every connection of `conns` and takes the first answer; fails only if
/// every connection does, with the first connection's error. The calls still waiting on the
/// others are dropped, which forgets them, so their answers, when they come, are ignored.
async fn call_on_all(
    node: NodeId,
    conns: &[Arc<Conn>],
    key: Key,
    call: u64,
    frame: Vec<u8>,
    by_datagram: bool,
) -> Answer {
    let mut waiting: Vec<_> = conns
        .iter()
        .enumerate()
        .map(|(lane, conn)| {
            let frame = frame.clone();
            let by_datagram = by_datagram && lane == 0;
            Box::pin(async move { (lane, call_on(conn, key, call, frame, by_datagram).await) })
        })
        .collect();
    let mut failure = None;
    while !waiting.is_empty() {
        let ((lane, answer), _, rest) = futures::future::select_all(waiting).await;
        match answer {
            Ok(response) => return Ok(response),
            Err(e) if lane == 0 || failure.is_none() => failure = Some(e),
            Err(_) => {}
        }
        waiting = rest;
    }
    Err(failure.unwrap_or(TransportError::Connection {
        node,
        reason: "no connection to send on".into(),
    }))
}

#[async_trait]
impl ClientTransport for TcpClient {
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError> {
        let frame = encode_frame(&request, self.config.max_frame).map_err(|e| {
            TransportError::Connection {
                node,
                reason: format!("request not sent: {e}"),
            }
        })?;
        let conn = self.conn(node).await?;
        let key = (request.client, request.seq);
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        let lanes = conn.shared.loss.connections(now);
        let by_datagram = conn.shared.loss.datagrams(now);
        if lanes <= 1 {
            return call_on(&conn, key, call, frame, by_datagram).await;
        }
        let mut conns = vec![conn];
        conns.extend((1..lanes).filter_map(|lane| self.spare(node, lane)));
        call_on_all(node, &conns, key, call, frame, by_datagram).await
    }
}
