//! Client requests at the node: status from anyone, everything else only from the leader, which
//! answers retries from the dedup cache and proposes the rest. [`Admission`] borrows what the
//! leader decides with (its configuration, state machine and log) and what a request may
//! change (the leader's waiting requests, reads and session clocks, and the output); it returns
//! the request to propose, if any.

use super::output::Output;
use super::read_index::MAX_QUERIES_IN_FLIGHT;
use super::role::{Leader, RoleState};
use super::Node;
use crate::command::Command;
use crate::config::Config;
use crate::log::Log;
use crate::protocol::{ClientRequest, Op, Rejection, Reply};
use crate::state_machine::{bad_lease, check_request, pending_is_valid, Slot, StateMachine};
use crate::types::{ConnId, LogIndex, Time};

/// A leader's admission of client requests, borrowed from its node.
pub(super) struct Admission<'a> {
    pub cfg: &'a Config,
    pub now: Time,
    pub sm: &'a StateMachine,
    pub log: &'a Log,
    pub applied: LogIndex,
    pub commit: LogIndex,
    pub leader: &'a mut Leader,
    pub out: &'a mut Output,
}

impl Admission<'_> {
    /// Decides what to do with `request` from connection `conn`: refuse it, answer it from the
    /// dedup cache, wait for an earlier copy's answer, take it as a read, or return it to be
    /// proposed.
    pub fn admit(&mut self, conn: ConnId, request: ClientRequest) -> Option<ClientRequest> {
        let (client, seq) = (request.client, request.seq);
        if let Some(transfer) = self.leader.transfer {
            let hint = Some(transfer.to);
            self.out
                .reply(conn, client, seq, Err(Rejection::NotLeader { hint }));
            return None;
        }
        // Malformed requests never reach the log.
        if let Err(refusal) = check_request(&request.op, &self.cfg.limits) {
            // A capped node accepts no more than its cap, so the refusal names that range,
            // whichever end the lease missed.
            let refusal = match refusal {
                Rejection::BadLease { .. } => bad_lease(&self.cfg.limits, self.cfg.lease_cap),
                other => other,
            };
            self.out.reply(conn, client, seq, Err(refusal));
            return None;
        }
        // Introspection opens no session and is never cached: it is read-index only.
        if request.op.is_query() {
            self.take_read(conn, request);
            return None;
        }
        self.leader.timers.touch(client, self.now);
        if !pending_is_valid(&request.pending) {
            let refusal = Rejection::Invalid("malformed pending seqs".into());
            self.out.reply(conn, client, seq, Err(refusal));
            return None;
        }
        if let Some(session) = self.sm.session(client) {
            if session.is_acked(seq) {
                self.out
                    .reply(conn, client, seq, Err(Rejection::SeqBelowWatermark));
                return None;
            }
            if request.op.is_cached() {
                match session.slots.get(&seq) {
                    Some(Slot::Done(answer)) => {
                        self.out.reply(conn, client, seq, answer.clone());
                        return None;
                    }
                    Some(Slot::Waiting(_)) => {
                        self.leader.waiting.insert((client, seq), conn);
                        return None;
                    }
                    Some(Slot::Expected) | None => {}
                }
            }
        }
        // The cap is this node's own rule, not a replicated one, so it is checked only here: after
        // the dedup cache, so that a retry still gets its first answer, and never at apply, so
        // that members with different caps cannot diverge. Keep-alives carry no lease: they renew
        // the lease granted at acquire, which must not be shortened under its holder.
        if let (Some(acquire), Some(cap)) = (request.op.as_acquire(), self.cfg.lease_cap) {
            if acquire.lease > cap && !self.unapplied_in_log(&request) {
                let refusal = bad_lease(&self.cfg.limits, Some(cap));
                self.out.reply(conn, client, seq, Err(refusal));
                return None;
            }
        }
        // A read by a known session needs no log entry (read-index). A first request opens the
        // session through the log, so that its later requests are recognised.
        if matches!(request.op, Op::Read { .. }) && self.sm.session(client).is_some() {
            self.take_read(conn, request);
            return None;
        }
        // Already proposed and not yet applied: answer the newest connection when it is.
        if self.leader.waiting.insert((client, seq), conn).is_some() {
            return None;
        }
        Some(request)
    }

    /// Takes a read or a query as a read-index read. It waits at least for everything committed
    /// now, and for this term's first entry: entries of earlier terms may be committed without
    /// this leader knowing until its own entry commits.
    fn take_read(&mut self, conn: ConnId, request: ClientRequest) {
        let index = self.commit.max(self.leader.term_start);
        let (client, seq) = (request.client, request.seq);
        if request.op.is_query() && self.leader.reads.queries() >= MAX_QUERIES_IN_FLIGHT {
            self.out.reply(conn, client, seq, Err(Rejection::Busy));
            return;
        }
        self.leader.reads.add(conn, client, seq, request.op, index);
    }

    /// Whether an earlier leader already put this very request in the log, not yet applied: a
    /// retry of it gets that try's answer when it applies, and refusing it now could contradict
    /// a grant still to come.
    fn unapplied_in_log(&self, request: &ClientRequest) -> bool {
        let unapplied = self.log.range(self.applied.next(), self.log.last().index);
        unapplied.into_iter().any(|e| {
            matches!(&e.command, Command::Client(r) if r.client == request.client && r.seq == request.seq)
        })
    }
}

impl Node {
    pub(super) fn on_client(&mut self, conn: ConnId, request: ClientRequest) {
        let (client, seq) = (request.client, request.seq);
        if request.op == Op::Status {
            let status = self.status();
            self.reply(conn, client, seq, Ok(Reply::Status(status)));
            return;
        }
        if request.op.is_watch() && self.is_leader() {
            self.on_watch(conn, request);
            return;
        }
        if request.op.is_membership_change() && self.is_leader() {
            self.on_membership_change(conn, request);
            return;
        }
        let hint = self.client_hint();
        let RoleState::Leader(leader) = &mut self.role else {
            self.reply(conn, client, seq, Err(Rejection::NotLeader { hint }));
            return;
        };
        let mut admission = Admission {
            cfg: &self.cfg,
            now: self.now,
            sm: &self.sm,
            log: &self.log,
            applied: self.applied,
            commit: self.commit,
            leader,
            out: &mut self.out,
        };
        if let Some(request) = admission.admit(conn, request) {
            self.propose(Command::Client(request));
        }
    }
}

impl Node {
    /// The leader named to a client this node cannot serve. A node outside its own
    /// configuration (removed, or not yet added) is sent nothing, so the leader it last heard of
    /// may be long gone: it names none. Nor does a learner that has not heard from its leader
    /// for an election time-out (a voter would have stood by then, forgetting it). Otherwise a
    /// client could be sent back and forth between nodes that each name a stale leader, and
    /// never reach the real one.
    fn client_hint(&self) -> Option<crate::types::NodeId> {
        let config = &self.members.current;
        if !config.contains(self.cfg.id) {
            return None;
        }
        let stale = self.role.followed().is_some_and(|heard| {
            !config.is_voter(self.cfg.id) && self.now >= heard.at + self.cfg.election_timeout
        });
        self.leader().filter(|_| !stale)
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
