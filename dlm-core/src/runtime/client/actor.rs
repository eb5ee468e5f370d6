//! The task that owns a client's [`ClientCore`]: it takes calls from the [`super::Client`]
//! handles, runs the transport calls the core asks for, feeds their answers back with the time,
//! ticks the core at its deadlines, and tells each call and each guard what became of it.

use super::guard::HeldLock;
use crate::client::NodeCause;
use crate::client::{CallId, CallOp, ClientCore, ClientError, ClientEvent, ClientOutput, Done};
use crate::names::LockName;
use crate::protocol::ClientResponse;
use crate::runtime::deadline_after;
use crate::runtime::transport::{ClientTransport, TransportError};
use crate::types::{ClientId, NodeId, Seq, Time};
use futures::future::{AbortHandle, Abortable, BoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What a call's future receives: the outcome, and for a grant the state its guard shares with
/// the actor.
pub(super) type Answer = Result<(Done, Option<Arc<HeldLock>>), ClientError>;

/// What the handles ask of the actor.
pub(super) enum Command {
    /// Start a call; the answer goes to `reply`.
    Start {
        call: CallId,
        op: CallOp,
        reply: oneshot::Sender<Answer>,
    },
    /// The caller stopped waiting.
    Abandon(CallId),
}

type Outcome = (
    NodeId,
    ClientId,
    Seq,
    Result<ClientResponse, TransportError>,
);

/// Maps the core's time to the runtime's: the core counts nanoseconds from `epoch`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    pub(super) epoch: Instant,
}

impl Clock {
    pub(super) fn now(&self) -> Time {
        self.core_time(Instant::now())
    }

    pub(super) fn core_time(&self, at: Instant) -> Time {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        Time::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    pub(super) fn instant(&self, t: Time) -> Option<Instant> {
        self.epoch.checked_add(Duration::from_nanos(t.as_nanos()))
    }
}

pub(super) struct Actor<T> {
    pub(super) core: ClientCore,
    pub(super) transport: Arc<T>,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) clock: Clock,
    /// The session id, for [`super::Client::id`].
    pub(super) session: Arc<Mutex<ClientId>>,
    pub(super) replies: HashMap<CallId, oneshot::Sender<Answer>>,
    pub(super) guards: HashMap<LockName, Arc<HeldLock>>,
    /// Transport calls in flight, by request: a new attempt of a request supersedes the last.
    pub(super) attempts: HashMap<(ClientId, Seq), AbortHandle>,
    /// Call ids, shared with the handles.
    pub(super) next_call: Arc<AtomicU64>,
}

impl<T: ClientTransport> Actor<T> {
    pub(super) async fn run(mut self) {
        let mut inflight: FuturesUnordered<BoxFuture<'static, Option<Outcome>>> =
            FuturesUnordered::new();
        let mut open = true;
        let mut closed_at: Option<Instant> = None;
        loop {
            self.drain(&mut inflight);
            // Once every handle is gone, background work (releases of dropped guards,
            // withdrawals) goes on until done, or for a deadline if the cluster is gone too.
            if !open && (self.core.is_idle() || closed_at.is_some_and(|t| Instant::now() >= t)) {
                return;
            }
            let core_wake = self.clock.instant(self.core.next_deadline());
            let wake = core_wake
                .unwrap_or_else(far_future)
                .min(closed_at.unwrap_or_else(far_future));
            // Biased, so that a paused-time test replays exactly; every branch is drained in
            // turn since each is taken at most once per event.
            tokio::select! {
                biased;
                command = self.commands.recv(), if open => match command {
                    Some(command) => self.command(command),
                    None => {
                        open = false;
                        closed_at = Some(deadline_after(self.core.config().deadline));
                    }
                },
                Some(outcome) = inflight.next(), if !inflight.is_empty() => {
                    if let Some((node, client, seq, result)) = outcome {
                        self.attempts.remove(&(client, seq));
                        let event = match result {
                            Ok(response) => ClientEvent::Answer { node, response },
                            Err(e) => ClientEvent::Failed { node, client, seq, cause: cause(e) },
                        };
                        self.core.handle(self.clock.now(), event);
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    self.core.handle(self.clock.now(), ClientEvent::Tick);
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Start { call, op, reply } => {
                if let CallOp::Release { lock, token } = &op {
                    if self.guards.get(lock).is_some_and(|h| h.token == *token) {
                        self.guards.remove(lock);
                    }
                }
                self.replies.insert(call, reply);
                self.core.handle(now, ClientEvent::Start { call, op });
            }
            Command::Abandon(call) => {
                self.replies.remove(&call);
                self.core.handle(now, ClientEvent::Abandon(call));
            }
        }
    }

    /// Carries out every output of the core.
    fn drain(&mut self, inflight: &mut FuturesUnordered<BoxFuture<'static, Option<Outcome>>>) {
        while let Some(output) = self.core.poll_output() {
            match output {
                ClientOutput::Send { node, request } => {
                    let key = (request.client, request.seq);
                    if let Some(previous) = self.attempts.remove(&key) {
                        previous.abort();
                    }
                    let (handle, registration) = AbortHandle::new_pair();
                    self.attempts.insert(key, handle);
                    let transport = self.transport.clone();
                    // An attempt the core has moved on from ends on its own: the core re-sends
                    // (superseding it) or gives up by then.
                    let limit = self.core.config().attempt_timeout.saturating_mul(2);
                    let call = async move {
                        let answer =
                            tokio::time::timeout(limit, transport.call(node, request)).await;
                        answer.ok().map(|result| (node, key.0, key.1, result))
                    };
                    inflight.push(Box::pin(async move {
                        Abortable::new(call, registration).await.ok().flatten()
                    }));
                }
                ClientOutput::Done { call, result } => {
                    let answer = result.map(|done| {
                        let held = match &done {
                            Done::Granted {
                                lock,
                                token,
                                safe_until,
                            } => {
                                let until =
                                    self.clock.instant(*safe_until).unwrap_or_else(far_future);
                                let held = Arc::new(HeldLock::new(*token, until));
                                self.guards.insert(lock.clone(), held.clone());
                                Some(held)
                            }
                            _ => None,
                        };
                        (done, held)
                    });
                    let unanswered = match self.replies.remove(&call) {
                        Some(reply) => reply.send(answer).err(),
                        None => Some(answer),
                    };
                    if let Some(Ok((Done::Granted { lock, token, .. }, _))) = unanswered {
                        // The caller gave up as the grant arrived: nobody has its guard, so
                        // give it back now rather than renew it.
                        self.guards.remove(&lock);
                        let call = CallId(self.next_call.fetch_add(1, Ordering::Relaxed));
                        let now = self.clock.now();
                        let op = CallOp::Release { lock, token };
                        self.core.handle(now, ClientEvent::Start { call, op });
                        self.core.handle(now, ClientEvent::Abandon(call));
                    }
                }
                ClientOutput::Renewed {
                    lock,
                    token,
                    safe_until,
                } => {
                    if let Some(held) = self.guards.get(&lock).filter(|h| h.token == token) {
                        held.confirm(self.clock.instant(safe_until).unwrap_or_else(far_future));
                    }
                }
                ClientOutput::Lost {
                    lock,
                    token,
                    reason,
                } => {
                    if self.guards.get(&lock).is_some_and(|h| h.token == token) {
                        if let Some(held) = self.guards.remove(&lock) {
                            tracing::info!(%lock, %token, "lock lost: {reason}");
                            held.mark_lost(reason);
                        }
                    }
                }
            }
        }
        *self.session.lock().unwrap_or_else(PoisonError::into_inner) = self.core.session();
    }
}

fn far_future() -> Instant {
    Instant::now() + crate::runtime::deadline::FAR
}

fn cause(error: TransportError) -> NodeCause {
    match error {
        TransportError::Handshake(reason) => NodeCause::Refused(reason),
        TransportError::Connection { reason, .. } => NodeCause::Connection(reason),
        TransportError::UnknownNode(node) => {
            NodeCause::Connection(format!("node {node} is unknown to the transport"))
        }
        TransportError::Closed => NodeCause::Connection("transport closed".into()),
    }
}
