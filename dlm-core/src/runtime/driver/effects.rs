//! Carrying out the node's effects: sends and replies at once, persists gathered by the
//! [`crate::PersistQueue`] into syncs (on the node's sync thread for a storage that blocks), and the status
//! after each batch. Apart from the loop, so that the durability bookkeeping reads whole.

use super::probe;
use super::run_loop::time_since;
use super::sync_thread::{SyncTask, SyncThread, Synced};
use super::{Driver, Seen, ServerError};
use crate::node::{Effect, Input};
use crate::protocol::Role;
use crate::runtime::storage::Storage;
use crate::runtime::transport::Transport;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

impl<S: Storage, T: Transport> Driver<S, T> {
    /// Drains the node's effects through the persist queue: what need not wait goes out at
    /// once, persists gather for the next sync, and a sync starts if none is under way.
    pub(super) async fn execute(&mut self) -> Result<(), ServerError> {
        loop {
            self.tell_members();
            while let Some(effect) = self.node.poll_effect() {
                if let Effect::Persist(persist) = &effect {
                    self.metering.persisting(persist, || self.now());
                }
                if let Some(effect) = self.queue.push(effect) {
                    self.perform(effect).await?;
                }
            }
            self.report();
            self.metering.applied(&self.node);
            if !self.start_sync()? {
                return Ok(());
            }
            // A storage that does not block has synced on the spot.
            self.finish_sync().await?;
        }
    }

    /// Starts the next sync if none is under way. Returns true if it is already done (a
    /// storage that does not block syncs in place).
    fn start_sync(&mut self) -> Result<bool, ServerError> {
        if self.syncing.is_some() {
            return Ok(false);
        }
        let Some(batch) = self.queue.start() else {
            return Ok(false);
        };
        let Some(mut storage) = self.storage.take() else {
            return Err(ServerError::Task(
                "storage lost by an earlier failure".into(),
            ));
        };
        let counters = Arc::clone(&self.metering.counters);
        probe::sync(self.node.id(), false);
        if storage.blocking() {
            if self.sync_thread.is_none() {
                let name = format!("dlm-sync-{}", self.node.id());
                let thread = SyncThread::start(name)
                    .map_err(|e| ServerError::Task(format!("sync thread not started: {e}")))?;
                self.sync_thread = Some(thread);
            }
            let Some(thread) = &self.sync_thread else {
                return Err(ServerError::Task("no sync thread".into()));
            };
            match thread.submit(storage, batch, counters, self.holds_storage.clone()) {
                Ok(task) => self.syncing = Some(task),
                Err(storage) => {
                    self.storage = Some(storage);
                    return Err(ServerError::Task("the sync thread has stopped".into()));
                }
            }
            return Ok(false);
        }
        let started = Instant::now();
        let result = storage.persist(batch);
        counters.sync.observe(started.elapsed());
        self.storage = Some(storage);
        result?;
        Ok(true)
    }

    /// A blocking sync finished: release what waited for it, tell the node, run what follows.
    pub(super) async fn synced(&mut self) -> Result<(), ServerError> {
        self.finish_sync().await?;
        self.execute().await
    }

    /// Releases what waited for the sync just finished and reports it durable to the node.
    async fn finish_sync(&mut self) -> Result<(), ServerError> {
        let done = self.queue.finish();
        probe::sync(self.node.id(), true);
        for effect in done.released {
            self.perform(effect).await?;
        }
        if let Some(position) = done.persisted {
            self.node.handle(self.now(), Input::Persisted(position));
        }
        Ok(())
    }

    /// Stops: lets a sync under way finish, and makes what is still gathered durable too, so
    /// that a clean shutdown loses nothing the node handed over. Nothing waiting is released.
    pub(super) async fn stop(&mut self) -> Result<(), ServerError> {
        loop {
            if let Some(task) = self.syncing.take() {
                self.take_back(task.await)?;
            }
            let _ = self.queue.finish();
            if !self.start_sync()? && self.syncing.is_none() {
                return Ok(());
            }
        }
    }

    /// Puts the storage back from a finished sync task and passes on its result.
    pub(super) fn take_back(
        &mut self,
        joined: Result<Synced<S>, oneshot::error::RecvError>,
    ) -> Result<(), ServerError> {
        let synced =
            joined.map_err(|_| ServerError::Task("the sync thread stopped mid-sync".into()))?;
        self.storage = Some(synced.storage);
        synced.result.map_err(ServerError::from)
    }

    async fn perform(&mut self, effect: Effect) -> Result<(), ServerError> {
        match effect {
            Effect::Send(msg) => {
                probe::peer(self.node.id(), &msg, true);
                self.transport.send(msg).await
            }
            Effect::Reply { conn, response } => {
                probe::reply_out(self.node.id(), &response);
                let origin = self.origin;
                self.metering.answered(&response, || time_since(origin));
                self.transport.reply(conn, response).await
            }
            Effect::Applied(applied) => {
                if let Some(mirror) = &mut self.mirror {
                    mirror.apply(&applied, self.node.state_machine())?;
                }
            }
            // The queue keeps every persist for a sync; nothing hands one here.
            Effect::Persist(p) => {
                let _ = self.queue.push(Effect::Persist(p));
            }
        }
        Ok(())
    }

    /// Tells the transport and the metrics the configuration in force whenever it differs from
    /// what they were told last (the first time at start, after recovery), so that the
    /// transport dials new members and lets go of removed ones, and the per-peer metrics show
    /// the members there are.
    fn tell_members(&mut self) {
        let members = self.node.membership();
        if self.members_told.as_ref() != Some(members) {
            tracing::info!(voters = ?ids(members.voters()), learners = ?ids(members.learners()), "configuration in force");
            self.transport.members_changed(members);
            let me = self.node.id();
            let peers = members.members().map(|m| m.id).filter(|id| *id != me);
            self.metering.counters.set_peers(peers);
            self.members_told = Some(members.clone());
        }
    }

    /// Publishes the status and logs role, term and leader changes.
    fn report(&mut self) {
        let now = Seen {
            role: Some(self.node.role()),
            term: self.node.term(),
            leader: self.node.leader(),
        };
        if now != self.seen {
            if now.role != self.seen.role {
                match now.role {
                    Some(Role::Candidate) => {
                        tracing::info!(term = %now.term, "standing for election")
                    }
                    Some(Role::Leader) => tracing::info!(term = %now.term, "became leader"),
                    role => tracing::debug!(?role, term = %now.term, "role changed"),
                }
            }
            if now.leader != self.seen.leader || now.term != self.seen.term {
                tracing::info!(term = %now.term, leader = ?now.leader, "leader changed");
            }
            self.seen = now;
        }
        let status = self.node.status();
        self.status.send_if_modified(|old| {
            let changed = *old != status;
            if changed {
                *old = status;
            }
            changed
        });
    }
}

/// Waits for the sync under way; never resolves without one (the select guards on it).
pub(super) async fn join_sync<S>(
    syncing: &mut Option<SyncTask<S>>,
) -> Result<Synced<S>, oneshot::error::RecvError> {
    match syncing {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

/// The ids of `members`, for a log line.
fn ids(members: &[crate::membership::Member]) -> Vec<u64> {
    members.iter().map(|m| m.id.get()).collect()
}
