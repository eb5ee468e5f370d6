//! The loop that drives the node: wait for input, a deadline, the sync under way or a stop,
//! take the batch already queued, and hand it to the node. Apart from the server's public face
//! in `driver`, so that the loop's policy (batching, back-pressure, hand-over on stop) reads
//! whole.

use super::effects::join_sync;
use super::probe;
use super::{Driver, ServerError};
use crate::message::PeerMessage;
use crate::node::Input;
use crate::protocol::{ClientRequest, Op, Rejection};
use crate::runtime::storage::Storage;
use crate::runtime::transport::{Incoming, Transport};
use crate::types::{ConnId, Time};
use futures::FutureExt;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Most inputs taken from the transport before the effects are executed.
const MAX_BATCH: usize = 4096;

/// Log entries, or bytes, not yet durable past which the driver stops taking input: a stalled
/// disk then holds memory to about this, and check-quorum soon deposes a leader that cannot
/// keep up.
const MAX_BACKLOG_ENTRIES: usize = 65_536;
/// See [`MAX_BACKLOG_ENTRIES`]: 64 MiB, so large appends are bounded too.
const MAX_BACKLOG_BYTES: usize = 64 << 20;

/// The inputs of one turn of the loop, sorted by kind (see [`Driver::feed_batch`]).
#[derive(Default)]
struct Batch {
    peers: Vec<PeerMessage>,
    clients: Vec<(ConnId, ClientRequest)>,
    refused: Vec<(Op, Rejection)>,
}

impl Batch {
    fn push(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Peer(msg) => self.peers.push(msg),
            Incoming::Client { conn, request } => self.clients.push((conn, request)),
            Incoming::Refused { op, rejection } => self.refused.push((op, rejection)),
        }
    }

    fn len(&self) -> usize {
        self.peers.len() + self.clients.len() + self.refused.len()
    }
}

/// The node's time: nanoseconds since the driver's origin.
pub(super) fn time_since(origin: Instant) -> Time {
    let nanos = origin.elapsed().as_nanos();
    Time::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl<S: Storage, T: Transport> Driver<S, T> {
    pub(super) fn now(&self) -> Time {
        time_since(self.origin)
    }

    fn instant_of(&self, t: Time) -> Instant {
        // "No deadline" becomes an hour away: the loop simply wakes up, finds nothing and sleeps.
        let far = Instant::now() + Duration::from_secs(3600);
        let at = self
            .origin
            .checked_add(Duration::from_nanos(t.as_nanos()))
            .unwrap_or(far);
        at.min(far)
    }

    pub(super) async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), ServerError> {
        tracing::info!(
            term = %self.node.term(),
            last = %self.node.last_log().index,
            "node started"
        );
        let result = self.run_loop(&mut stop).await;
        match &result {
            Ok(()) => tracing::info!("node stopped"),
            Err(e) => tracing::error!(error = %e, "node stopped on an error"),
        }
        result
    }

    async fn run_loop(&mut self, stop: &mut oneshot::Receiver<()>) -> Result<(), ServerError> {
        self.node.handle(self.now(), Input::Tick);
        self.execute().await?;
        let mut batch = Batch::default();
        // Set once asked to stop while leading: until then the node hands leadership over.
        let mut leaving: Option<Instant> = None;
        loop {
            if leaving.is_some_and(|until| !self.node.is_leader() || Instant::now() >= until) {
                return self.stop().await;
            }
            let mut deadline = self.instant_of(self.node.next_deadline());
            if let Some(until) = leaving {
                deadline = deadline.min(until);
            }
            let backlog = self.queue.backlog();
            let take_input =
                backlog.entries < MAX_BACKLOG_ENTRIES && backlog.bytes < MAX_BACKLOG_BYTES;
            tokio::select! {
                biased;
                _ = &mut *stop, if leaving.is_none() => {
                    if !self.node.is_leader() || self.node.membership().voters().len() <= 1 {
                        return self.stop().await;
                    }
                    self.node.handle(self.now(), Input::HandOver);
                    if !self.node.is_handing_over() {
                        // Nobody to hand over to: staying would only delay the others' election.
                        return self.stop().await;
                    }
                    leaving = Some(Instant::now() + self.node.config().election_timeout);
                }
                done = join_sync(&mut self.syncing), if self.syncing.is_some() => {
                    self.syncing = None;
                    self.take_back(done)?;
                    self.synced().await?;
                }
                // Before the input, which under load is always ready: a scrape is answered
                // between two batches, never starved.
                Some(ask) = self.gauge_requests.recv() => {
                    let _ = ask.send(self.state_gauges());
                }
                incoming = self.transport.recv(), if take_input => match incoming {
                    Some(incoming) => batch.push(incoming),
                    None => return self.stop().await,
                },
                () = tokio::time::sleep_until(deadline) => {
                    self.node.handle(self.now(), Input::Tick);
                }
            }
            // Take everything already queued, so that it shares this batch's sync.
            while take_input && batch.len() < MAX_BATCH {
                match self.transport.recv().now_or_never() {
                    Some(Some(incoming)) => batch.push(incoming),
                    _ => break,
                }
            }
            self.feed_batch(&mut batch);
            self.execute().await?;
        }
    }

    /// Hands a batch to the node, peer messages first, so that the acknowledgements among them
    /// are counted before the batch's requests are proposed. Any order of messages from
    /// different senders is one the network could have produced; each sender's order is kept.
    fn feed_batch(&mut self, batch: &mut Batch) {
        let now = self.now();
        let id = self.node.id();
        for msg in batch.peers.drain(..) {
            probe::peer(id, &msg, false);
            self.metering.counters.heard_from(msg.from, now);
            self.node.handle(now, Input::Peer(msg));
        }
        for (conn, request) in batch.clients.drain(..) {
            probe::request_in(id, &request);
            self.metering.arrived(&request, now);
            self.node.handle(now, Input::Client { conn, request });
        }
        for (op, rejection) in batch.refused.drain(..) {
            self.metering.refused(&op, rejection);
        }
    }
}
