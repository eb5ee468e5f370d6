//! An outbound link to one peer: a bounded queue and a task that keeps a connection up, and
//! while the link loses packets, extra connections that carry copies of its messages (see
//! [`crate::duplicates`]) and copies of its small messages as datagrams (see
//! [`crate::datagram`]), on behalf of the first connection.
//!
//! The link reconnects when the connection ends, when a write fails, and when the peer has
//! been silent for the silence bound (see [`crate::liveness`]): the peer answers the link's
//! first [`crate::wire::PING`] with a [`crate::wire::PONG`] every ping interval, so a live
//! peer is never silent for long, even when the link has nothing to send.

use crate::address::PeerAddr;
use crate::auth::ClusterSecret;
use crate::backoff::Backoff;
use crate::datagram::node::NodeDatagrams;
use crate::datagram::packet::Binding;
use crate::datagram::Datagrams;
use crate::duplicates::LossSignal;
use crate::handshake::{self, Carrier};
use crate::liveness::{silence, Heard, Liveness, Noting};
use crate::queue::OutQueue;
use crate::stream::Halves;
use crate::tail_probe::TailProbe;
use crate::wire::{read_frame_or_signal, Frame, HelloRole};
use crate::TcpError;
use dlm_core::message::PeerMessage;
use dlm_core::NodeId;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The settings a link needs, copied out of the config.
#[derive(Clone)]
pub(crate) struct LinkSettings {
    pub(crate) me: NodeId,
    pub(crate) cluster_id: u64,
    pub(crate) secret: Option<ClusterSecret>,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) live: Liveness,
    /// The node's UDP side, if datagrams are on.
    pub(crate) datagrams: Option<Arc<NodeDatagrams>>,
    /// For TLS to peers: the settings to dial with (the name checked is each peer's).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl LinkSettings {
    /// How to carry a connection to the peer at `at`, resolved to `addr`.
    fn carrier(&self, at: &PeerAddr, addr: std::net::SocketAddr) -> Carrier {
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            return Carrier::Tls(config.clone(), crate::tls::peer_name(at, addr));
        }
        let _ = (at, addr);
        Carrier::Plain
    }
}

/// A peer's queue and the task that drains it, and the extra connections' queues and tasks;
/// dropping the link stops the tasks.
pub(crate) struct PeerLink {
    /// Where it dials.
    pub(crate) addr: PeerAddr,
    pub(crate) queue: Arc<OutQueue>,
    /// Whether a connection is up (handshake done, not yet ended), for metrics.
    pub(crate) up: Arc<AtomicBool>,
    task: JoinHandle<()>,
    /// Whether the link loses packets lately, fed by all its connections' writers.
    loss: Arc<LossSignal>,
    /// The extra connections (lanes 1 and up), each dialed when its queue first has a copy.
    spares: Vec<Spare>,
    /// Where and how to send datagrams: the peer's address and the first connection's
    /// binding, while that connection is up and took datagrams.
    path: DatagramPath,
    datagrams: Option<Arc<NodeDatagrams>>,
}

/// Set by the first connection's task, read by every send.
type DatagramPath = Arc<Mutex<Option<(SocketAddr, Binding)>>>;

fn set(path: &DatagramPath, to: Option<(SocketAddr, Binding)>) {
    *path.lock().unwrap_or_else(|e| e.into_inner()) = to;
}

struct Spare {
    queue: Arc<OutQueue>,
    task: JoinHandle<()>,
}

impl PeerLink {
    pub(crate) fn start(
        peer: NodeId,
        addr: PeerAddr,
        settings: LinkSettings,
        queue: Arc<OutQueue>,
    ) -> PeerLink {
        let up = Arc::new(AtomicBool::new(false));
        let loss = Arc::new(
            LossSignal::new(settings.live.duplicates).with_datagrams(settings.live.datagrams),
        );
        let path = DatagramPath::default();
        let lane = |lane, queue: &Arc<OutQueue>, up| Lane {
            peer,
            at: addr.clone(),
            settings: settings.clone(),
            queue: queue.clone(),
            up,
            loss: loss.clone(),
            lane,
            path: (lane == 0).then(|| path.clone()),
        };
        let spares = (1..settings.live.duplicates.most())
            .map(|n| {
                let queue = Arc::new(OutQueue::new(queue.capacity().0, queue.capacity().1));
                let task = tokio::spawn(run(lane(n, &queue, Arc::default())));
                Spare { queue, task }
            })
            .collect();
        let task = tokio::spawn(run(lane(0, &queue, up.clone())));
        PeerLink {
            addr,
            queue,
            up,
            task,
            loss,
            spares,
            path,
            datagrams: settings.datagrams,
        }
    }

    /// Queues `frame` for the peer, and a copy on each extra connection the link uses now;
    /// sends a copy as a datagram too while the link uses them.
    pub(crate) fn send(&self, frame: Vec<u8>) {
        let now = tokio::time::Instant::now();
        if let (true, Some(endpoint), Some(payload)) = (
            self.loss.datagrams(now),
            &self.datagrams,
            frame.get(crate::wire::FRAME_HEADER_LEN..),
        ) {
            let path = self.path.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((to, binding)) = path.as_ref() {
                endpoint.send_peer(binding, payload, *to);
            }
        }
        let copies = self.loss.connections(now) - 1;
        for spare in self.spares.iter().take(copies) {
            spare.queue.push_drop_oldest(frame.clone());
        }
        self.queue.push_drop_oldest(frame);
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.task.abort();
        for spare in &self.spares {
            spare.task.abort();
        }
    }
}

/// What one connection's task of a link needs.
struct Lane {
    peer: NodeId,
    at: PeerAddr,
    settings: LinkSettings,
    queue: Arc<OutQueue>,
    up: Arc<AtomicBool>,
    loss: Arc<LossSignal>,
    /// 0 for the link's own connection, kept up always; 1 and up for the extra ones.
    lane: usize,
    /// Lane 0's: where it notes the datagram path of its connection.
    path: Option<DatagramPath>,
}

async fn run(lane: Lane) {
    let Lane {
        peer,
        at,
        settings: s,
        queue,
        up,
        loss,
        lane,
        path,
    } = lane;
    let datagrams = path.is_some() && s.datagrams.is_some() && s.live.datagrams != Datagrams::Never;
    let me = s.me;
    let fallback_seed = me.get().rotate_left(32) ^ peer.get() ^ lane as u64;
    let mut backoff = Backoff::random(s.backoff_min, s.backoff_max, fallback_seed);
    // The last refusal logged as an error; the same again is only a debug line, as a link
    // retries several times a second.
    let mut last_refusal: Option<String> = None;
    loop {
        if lane > 0 {
            // An extra connection is dialed only once a copy waits for it.
            queue.frames_waiting().await;
        }
        // Looked up at every dial, so that a peer that moved is found again.
        let limit = s.live.connect_timeout(s.connect_timeout);
        let resolved = match tokio::time::timeout(limit, at.resolve()).await {
            Ok(resolved) => resolved.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {limit:?}")),
        };
        let addr = match resolved {
            Ok(addr) => addr,
            Err(why) => {
                tracing::debug!(node = %me, %peer, %at, "cannot resolve peer: {why}");
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        let connected = handshake::connect(
            addr,
            &s.carrier(&at, addr),
            s.cluster_id,
            s.secret.as_ref(),
            HelloRole::Peer(me),
            s.connect_timeout,
            s.handshake_timeout,
            &s.live,
            datagrams,
        )
        .await;
        match connected {
            Ok(connected) => {
                last_refusal = None;
                let with_datagrams = connected.datagrams.is_some();
                tracing::debug!(node = %me, %peer, %addr, lane, with_datagrams, "connected to peer");
                up.store(true, Ordering::Relaxed);
                if let Some(path) = &path {
                    set(path, connected.datagrams.map(|binding| (addr, binding)));
                }
                let session = serve(connected.halves, &queue, &s.live, &loss, lane).await;
                if let Some(path) = &path {
                    set(path, None);
                }
                up.store(false, Ordering::Relaxed);
                match &session.end {
                    End::Unneeded => {
                        tracing::debug!(node = %me, %peer, lane, "no loss lately: extra connection closed");
                        // Copies queued since are stale by the time another loss needs them.
                        queue.clear();
                        backoff.reset();
                        continue;
                    }
                    End::Silent(quiet) => tracing::warn!(node = %me, %peer, %addr,
                        "peer link silent for {quiet:?}; reconnecting on a fresh socket"),
                    End::Closed => tracing::warn!(node = %me, %peer, "peer link closed"),
                    End::Failed(why) => {
                        tracing::warn!(node = %me, %peer, "peer link failed: {why}")
                    }
                }
                if session.heard_peer {
                    backoff.reset();
                }
            }
            Err(e) if is_refusal(&e) => {
                let why = e.to_string();
                if last_refusal.as_deref() == Some(why.as_str()) {
                    tracing::debug!(node = %me, %peer, %addr, "peer still refuses: {why}");
                } else {
                    tracing::error!(node = %me, %peer, %addr, "cannot link to peer: {why}");
                    last_refusal = Some(why);
                }
            }
            Err(e) => {
                tracing::debug!(node = %me, %peer, %addr, "cannot reach peer: {e}");
            }
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// Whether `e` is the peer (or its certificate) refusing us, which retrying does not mend:
/// logged as an error once, not at every attempt.
fn is_refusal(e: &TcpError) -> bool {
    match e {
        TcpError::Refused(_) | TcpError::Auth(_) => true,
        #[cfg(feature = "tls")]
        TcpError::Tls(_) => true,
        _ => false,
    }
}

/// How a connection to a peer ended.
enum End {
    /// Nothing heard for this long.
    Silent(Duration),
    /// The peer closed it.
    Closed,
    /// A read or write failed, or the peer broke the protocol.
    Failed(String),
    /// An extra connection no longer needed: no loss seen for a while.
    Unneeded,
}

struct Session {
    end: End,
    /// Whether the peer's liveness signal came back at least once: the link worked end to end.
    heard_peer: bool,
}

/// Writes the queue to the peer and listens for its signals until the connection ends.
async fn serve(
    (read, write): Halves,
    queue: &OutQueue,
    live: &Liveness,
    loss: &Arc<LossSignal>,
    lane: usize,
) -> Session {
    let heard = Heard::new();
    let mut heard_peer = false;
    let probe = TailProbe::new(live.tail_probes).reporting_to(loss.clone());
    let unneeded = loss.unneeded(lane);
    let listen = async {
        let mut read = Noting::new(read, &heard);
        loop {
            // The peer sends signals only: a limit of 0 refuses any message.
            match read_frame_or_signal::<_, PeerMessage>(&mut read, 0).await {
                Ok(Some(Frame::Pong | Frame::Ping)) => heard_peer = true,
                Ok(Some(Frame::Message(_))) => {
                    return End::Failed("the peer sent a message on our link".into())
                }
                Ok(None) => return End::Closed,
                Err(e) => return End::Failed(format!("read: {e}")),
            }
        }
    };
    let end = tokio::select! {
        // The reader first: see `liveness::silence`.
        biased;
        end = listen => end,
        result = queue.write_with_pings(write, Some(live.ping_interval), probe) => match result {
            Err(e) => End::Failed(format!("write: {e}")),
            Ok(()) => End::Closed,
        },
        () = silence(&heard, live.bound()) => End::Silent(heard.quiet_for()),
        () = unneeded, if lane > 0 => End::Unneeded,
    };
    Session { end, heard_peer }
}
