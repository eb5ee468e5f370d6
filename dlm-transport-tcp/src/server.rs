//! The listening side: one listener per node for peers and clients alike.

use crate::auth::{self, ClusterSecret};
use crate::client_conns::{ClientConns, MOST_CLIENTS_PER_CONN};
use crate::datagram::node::{NodeDatagrams, Role};
use crate::datagram::packet::Binding;
use crate::error::TcpError;
use crate::handshake;
use crate::liveness::{silence, Heard, Liveness, Noting};
use crate::queue::OutQueue;
use crate::stream::{self, ConnWrite, Halves};
use crate::tail_probe::TailProbe;
use crate::wire::{encode_frame, read_frame_or_signal, Frame, HelloRole, PONG};
use dlm_core::message::PeerMessage;
use dlm_core::runtime::Incoming;
use dlm_core::{ClientRequest, ClientResponse, ConnId, NodeId, Op, Rejection};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinSet;

/// What connection tasks share with the transport.
pub(crate) struct Shared {
    pub(crate) id: NodeId,
    pub(crate) cluster_id: u64,
    /// What clients must prove.
    secret: Option<ClusterSecret>,
    /// What callers that say they are members must prove.
    member_secret: Option<ClusterSecret>,
    /// What callers that say they are operators must prove.
    admin_secret: Option<ClusterSecret>,
    pub(crate) max_frame: usize,
    pub(crate) conn_queue_frames: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) handshake_timeout: Duration,
    max_clients: usize,
    max_handshaking: usize,
    live: Liveness,
    /// With it, every connection is TLS.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::NodeTls>,
    /// Whether clients prove who they are (a secret, or a certificate under mutual TLS).
    authenticates_clients: bool,
    /// Client connections admitted and not yet closed.
    clients: Arc<AtomicUsize>,
    pub(crate) incoming: mpsc::Sender<Incoming>,
    conns: Mutex<ClientConns>,
    next_conn: AtomicU64,
    /// The UDP side, if datagrams are on and its socket could be bound.
    pub(crate) datagrams: Option<Arc<NodeDatagrams>>,
}

impl Shared {
    pub(crate) fn new(
        config: &crate::TcpConfig,
        incoming: mpsc::Sender<Incoming>,
        datagrams: Option<Arc<NodeDatagrams>>,
    ) -> Shared {
        Shared {
            id: config.id,
            cluster_id: config.cluster_id,
            secret: config.secret.clone(),
            member_secret: config.member_secret(),
            admin_secret: config.admin_secret.clone(),
            max_frame: config.max_frame,
            conn_queue_frames: config.conn_queue_frames,
            queue_bytes: config.queue_bytes,
            handshake_timeout: config.handshake_timeout,
            max_clients: config.max_clients,
            max_handshaking: config.max_handshaking,
            live: config.liveness(),
            #[cfg(feature = "tls")]
            tls: config.tls.clone(),
            authenticates_clients: config.secret.is_some() || mutual_tls(config),
            clients: Arc::default(),
            incoming,
            conns: Mutex::new(ClientConns::default()),
            next_conn: AtomicU64::new(1),
            datagrams,
        }
    }

    /// What a client connection accepted in `role` may do: with authentication off, anything;
    /// with it on (a client secret, or mutual TLS), admin requests only after proving the
    /// admin secret.
    fn privilege(&self, role: HelloRole) -> Privilege {
        match (role, &self.admin_secret, self.authenticates_clients) {
            (_, None, false) => Privilege::Admin,
            (HelloRole::Admin, Some(_), _) => Privilege::Admin,
            (_, None, true) => Privilege::Client(auth::NO_ADMIN_SECRET),
            (_, Some(_), _) => Privilege::Client(auth::NEEDS_ADMIN_SECRET),
        }
    }

    pub(crate) fn conns(&self) -> MutexGuard<'_, ClientConns> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the node asks clients for certificates: then a client with one is authenticated,
/// and (optional certificates or not) no client is an operator without the admin secret.
fn mutual_tls(config: &crate::TcpConfig) -> bool {
    #[cfg(feature = "tls")]
    {
        config.tls.as_ref().is_some_and(|tls| tls.clients.is_some())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = config;
        false
    }
}

/// Why a client connection may not run an admin request, when it may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Privilege {
    /// Admin requests are carried to the node.
    Admin,
    /// Admin requests are answered `NotAuthorized` with this reason.
    Client(&'static str),
}

/// Accepts connections until aborted; dropping this task's [`JoinSet`] closes every connection.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    // One sender per connection still in its handshake, oldest first; a sender whose
    // connection got past its handshake is closed.
    let mut handshaking: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let evicted = make_room(&mut handshaking, shared.max_handshaking);
                    if evicted {
                        // Debug only: a flood would otherwise flood the log as well.
                        tracing::debug!(node = %shared.id, "too many connections in their handshake; the oldest closed");
                    }
                    let (evict, evicted) = oneshot::channel();
                    handshaking.push_back(evict);
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(node = %shared.id, %addr, "cannot set TCP_NODELAY: {e}");
                    }
                    shared.live.tune(&stream);
                    conns.spawn(serve(shared.clone(), stream, addr, evicted));
                }
                // Typically out of file descriptors: wait a little rather than spin.
                Err(e) => {
                    tracing::error!(node = %shared.id, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Client connections beyond `max_clients` that only an operator's (`HelloRole::Admin`) may
/// take.
pub const ADMIN_PLACES: usize = 4;

/// A client connection's place under `max_clients`, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// Takes a place if fewer than `max` are taken.
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Keeps fewer than `max` connections in their handshake by closing the oldest: a real client
/// sends its hello at once, so it is never the oldest for long, while a flood of silent sockets
/// pushes itself out. Returns whether one was closed.
fn make_room(handshaking: &mut VecDeque<oneshot::Sender<()>>, max: usize) -> bool {
    handshaking.retain(|evict| !evict.is_closed());
    let mut evicted = false;
    while handshaking.len() >= max.max(1) {
        if let Some(oldest) = handshaking.pop_front() {
            evicted |= oldest.send(()).is_ok();
        }
    }
    evicted
}

/// The connection's halves once its TLS handshake, if any, is done, and whether the caller
/// presented a verified certificate (`None` without TLS).
async fn open(shared: &Shared, stream: TcpStream) -> Result<(Halves, Option<bool>), TcpError> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.tls {
        use crate::tls::Accepted;
        return match crate::tls::accept(stream, tls, shared.handshake_timeout).await? {
            Accepted::Tls { halves, has_cert } => Ok((halves, Some(has_cert))),
            Accepted::Plain(stream) => {
                let halves = stream::plain(stream);
                Err(handshake::refuse_plain(halves, shared.handshake_timeout).await)
            }
        };
    }
    #[cfg(not(feature = "tls"))]
    let _ = shared;
    Ok((stream::plain(stream), None))
}

async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    mut evicted: oneshot::Receiver<()>,
) {
    let opened = tokio::select! {
        opened = open(&shared, stream) => opened,
        Ok(()) = &mut evicted => return,
    };
    let ((mut read, mut write), certified) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            tracing::error!(node = %shared.id, %addr, "refused connection: {e}");
            return;
        }
    };
    let mut client_slot = None;
    let admit = |role: &HelloRole| match role {
        HelloRole::Peer(_) if certified == Some(false) => Err(
            "a member must present a certificate this node verifies (mutual TLS with the \
             cluster's CA)"
                .to_string(),
        ),
        HelloRole::Peer(_) => Ok(()),
        HelloRole::Client | HelloRole::Admin => {
            // Operators get a few places beyond the clients', so that a flood of clients in an
            // incident cannot keep out the one who would clear it.
            let reserve = if *role == HelloRole::Admin {
                ADMIN_PLACES
            } else {
                0
            };
            match Slot::take(&shared.clients, shared.max_clients + reserve) {
                Some(slot) => {
                    client_slot = Some(slot);
                    Ok(())
                }
                None => Err(format!(
                    "too many client connections (at most {}); try another node or later",
                    shared.max_clients
                )),
            }
        }
    };
    let offer = shared.datagrams.as_ref().and_then(|d| d.offer());
    let accepted = tokio::select! {
        accepted = handshake::accept(
            &mut read,
            &mut write,
            shared.cluster_id,
            |role: &HelloRole| match role {
                HelloRole::Peer(_) => shared.member_secret.as_ref(),
                HelloRole::Client => shared.secret.as_ref(),
                // Without an admin secret an operator proves the client one, and is a client.
                HelloRole::Admin => shared.admin_secret.as_ref().or(shared.secret.as_ref()),
            },
            shared.handshake_timeout,
            admit,
            offer,
        ) => accepted,
        Ok(()) = &mut evicted => return,
    };
    // Past the handshake: no longer a candidate for eviction.
    drop(evicted);
    let (role, binding) = match accepted {
        Ok(accepted) => accepted,
        Err(e) => {
            let e = handshake::reclassify(e);
            tracing::error!(node = %shared.id, %addr, "refused connection: {e}");
            return;
        }
    };
    match role {
        HelloRole::Peer(peer) => {
            // Datagrams for this connection are taken while it is served.
            let _datagrams = registered(&shared, binding, Role::Peer(peer));
            serve_peer(&shared, (read, write), peer, addr).await
        }
        HelloRole::Client | HelloRole::Admin => {
            let privilege = shared.privilege(role);
            serve_client(&shared, (read, write), addr, privilege, binding).await
        }
    }
    drop(client_slot);
}

/// Takes the datagrams `binding` ties to a connection in `role` until the guard is dropped.
fn registered(
    shared: &Shared,
    binding: Option<Binding>,
    role: Role,
) -> Option<crate::datagram::node::Registered> {
    let endpoint = shared.datagrams.as_ref()?;
    Some(endpoint.register(binding?, role))
}

/// Reads a peer's messages. The peer pings when it has nothing else to send, so a connection
/// that stays silent for the silence bound has lost its path or its peer, and is closed (the
/// peer dials again on its side). Its first ping also asks us to signal back every ping
/// interval, which we do from here, apart from the reading: even while the node is too busy
/// to take the peer's messages, the peer still hears that we are alive.
async fn serve_peer(shared: &Shared, (read, mut write): Halves, peer: NodeId, addr: SocketAddr) {
    tracing::debug!(node = %shared.id, %peer, %addr, "peer connected");
    let heard = Heard::new();
    let pinged = Notify::new();
    let reader = async {
        let mut read = Noting::new(read, &heard);
        loop {
            match read_frame_or_signal::<_, PeerMessage>(&mut read, shared.max_frame).await {
                Ok(Some(Frame::Message(msg))) if msg.from != peer => {
                    tracing::warn!(node = %shared.id, %peer, from = %msg.from, "peer message with a wrong sender dropped");
                }
                Ok(Some(Frame::Message(msg))) => {
                    let _deaf = heard.deaf();
                    if shared.incoming.send(Incoming::Peer(msg)).await.is_err() {
                        return;
                    }
                }
                Ok(Some(Frame::Ping)) => pinged.notify_one(),
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => {
                    tracing::debug!(node = %shared.id, %peer, "peer connection closed");
                    return;
                }
                Err(e) => {
                    tracing::error!(node = %shared.id, %peer, %addr, "closing peer connection: {e}");
                    return;
                }
            }
        }
    };
    tokio::select! {
        // The reader first: see `liveness::silence`.
        biased;
        () = reader => {}
        e = signal_back(&mut write, &pinged, shared.live.ping_interval) => {
            tracing::debug!(node = %shared.id, %peer, "peer connection write failed: {e}");
        }
        () = silence(&heard, shared.live.bound()) => {
            tracing::warn!(node = %shared.id, %peer, %addr, "peer silent for {:?}; connection closed", heard.quiet_for());
        }
    }
}

/// Once the peer has pinged, sends it a [`PONG`] every `interval`; returns only on a write error.
async fn signal_back(write: &mut ConnWrite, pinged: &Notify, interval: Duration) -> io::Error {
    pinged.notified().await;
    loop {
        // The flush pushes a TLS record out; on plain TCP it does nothing.
        if let Err(e) = async {
            write.write_all(&PONG).await?;
            write.flush().await
        }
        .await
        {
            return e;
        }
        tokio::time::sleep(interval).await;
    }
}

/// Unregisters a client connection however its task ends.
struct ConnGuard<'a> {
    shared: &'a Shared,
    conn: ConnId,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.shared.conns().close(self.conn);
    }
}

/// Reads a client's requests and answers its pings. Clients are not checked for silence: one
/// with no call waiting has no reason to speak, and one that vanished is found by the kernel's
/// keep-alive and `TCP_USER_TIMEOUT` (see [`Liveness::tune`]).
async fn serve_client(
    shared: &Shared,
    (mut read, write): Halves,
    addr: SocketAddr,
    privilege: Privilege,
    binding: Option<Binding>,
) {
    let conn = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let queue = Arc::new(OutQueue::new(shared.conn_queue_frames, shared.queue_bytes));
    shared.conns().open(conn, queue.clone());
    let _guard = ConnGuard { shared, conn };
    let admin = privilege == Privilege::Admin;
    // Dropped before the guard above: no datagram is taken for a connection already closed.
    let _datagrams = registered(shared, binding, Role::Client { conn, admin });
    if let Some(registered) = &_datagrams {
        shared.conns().taking_datagrams(conn, registered.token());
    }
    tracing::debug!(node = %shared.id, %conn, %addr, "client connected");
    let reader = async {
        // The clients already noted as speaking on this connection (see `client_conns`).
        let mut spoken = Vec::new();
        loop {
            match read_frame_or_signal::<_, ClientRequest>(&mut read, shared.max_frame).await {
                Ok(Some(Frame::Message(request))) => {
                    if !spoken.contains(&request.client) && spoken.len() < MOST_CLIENTS_PER_CONN {
                        spoken.push(request.client);
                        shared.conns().spoke(conn, request.client);
                    }
                    if let (Privilege::Client(why), true) = (privilege, request.op.is_admin()) {
                        let (op, rejection) = refuse(shared, &queue, request, why);
                        // Counted by the node if its input has room: a flood of refused
                        // requests must not crowd out its work.
                        let _ = shared
                            .incoming
                            .try_send(Incoming::Refused { op, rejection });
                        continue;
                    }
                    let incoming = Incoming::Client { conn, request };
                    if shared.incoming.send(incoming).await.is_err() {
                        return;
                    }
                }
                // Best effort: a full queue has replies on the way, which the client hears.
                Ok(Some(Frame::Ping)) => {
                    let _ = queue.try_push(PONG.to_vec());
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(node = %shared.id, %conn, %addr, "closing client connection: {e}");
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = reader => {}
        result = queue.write_loop(write, TailProbe::new(shared.live.tail_probes)) => {
            if let Err(e) = result {
                tracing::debug!(node = %shared.id, %conn, "client connection write failed: {e}");
            }
        }
    }
    tracing::debug!(node = %shared.id, %conn, "client connection closed");
}

/// Answers an admin request from a connection not allowed it, without the node's help; gives
/// back what was asked and the refusal, for the node's metrics.
fn refuse(shared: &Shared, queue: &OutQueue, request: ClientRequest, why: &str) -> (Op, Rejection) {
    let rejection = Rejection::NotAuthorized(why.to_string());
    let response = ClientResponse {
        client: request.client,
        seq: request.seq,
        result: Err(rejection.clone()),
    };
    match encode_frame(&response, shared.max_frame) {
        Ok(frame) => queue.push_drop_oldest(frame),
        Err(e) => tracing::error!(node = %shared.id, "refusal not sent: {e}"),
    }
    (request.op, rejection)
}
