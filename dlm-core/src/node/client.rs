//! Client requests at the node: status from anyone, everything else only from the leader, which
//! answers retries from the dedup cache and proposes the rest.

use super::Node;
use crate::command::Command;
use crate::protocol::{ClientRequest, Op, Rejection, Reply};
use crate::state_machine::{bad_lease, check_request, Slot};
use crate::types::ConnId;

impl Node {
    pub(super) fn on_client(&mut self, conn: ConnId, request: ClientRequest) {
        let (client, seq) = (request.client, request.seq);
        if request.op == Op::Status {
            let status = self.status();
            self.reply(conn, client, seq, Ok(Reply::Status(status)));
            return;
        }
        let hint = self.leader();
        let Some(leader) = self.role.leader_mut() else {
            self.reply(conn, client, seq, Err(Rejection::NotLeader { hint }));
            return;
        };
        if let Some(transfer) = leader.transfer {
            let hint = Some(transfer.to);
            self.reply(conn, client, seq, Err(Rejection::NotLeader { hint }));
            return;
        }
        // Malformed requests never reach the log.
        if let Err(refusal) = check_request(&request.op, &self.cfg.limits) {
            // A capped node accepts no more than its cap, so the refusal names that range,
            // whichever end the lease missed.
            let refusal = match refusal {
                Rejection::BadLease { .. } => bad_lease(&self.cfg.limits, self.cfg.lease_cap),
                other => other,
            };
            self.reply(conn, client, seq, Err(refusal));
            return;
        }
        leader.timers.touch(client, self.now);
        if let Some(session) = self.sm.session(client) {
            if seq < session.acked_below {
                self.reply(conn, client, seq, Err(Rejection::SeqBelowWatermark));
                return;
            }
            if request.op.is_cached() {
                match session.slots.get(&seq) {
                    Some(Slot::Done(answer)) => {
                        let answer = answer.clone();
                        self.reply(conn, client, seq, answer);
                        return;
                    }
                    Some(Slot::Waiting(_)) => {
                        leader.waiting.insert((client, seq), conn);
                        return;
                    }
                    None => {}
                }
            }
        }
        // The cap is this node's own rule, not a replicated one, so it is checked only here: after
        // the dedup cache, so that a retry still gets its first answer, and never at apply, so
        // that members with different caps cannot diverge. Keep-alives carry no lease: they renew
        // the lease granted at acquire, which must not be shortened under its holder.
        if let (Op::Acquire { lease, .. }, Some(cap)) = (&request.op, self.cfg.lease_cap) {
            // A retry whose first try an earlier leader put in our log gets that try's answer
            // when it applies: refusing it could contradict a grant still to come.
            let in_log = || {
                let unapplied = self.log.range(self.applied.next(), self.log.last().index);
                unapplied.into_iter().any(|e| {
                    matches!(&e.command, Command::Client(r) if r.client == client && r.seq == seq)
                })
            };
            if *lease > cap && !in_log() {
                let refusal = bad_lease(&self.cfg.limits, Some(cap));
                self.reply(conn, client, seq, Err(refusal));
                return;
            }
        }
        // A read by a known session needs no log entry (read-index). A first request opens the
        // session through the log, so that its later requests are recognised.
        if let Op::Read { file, offset } = &request.op {
            if self.sm.session(client).is_some() {
                let (file, offset) = (file.clone(), *offset);
                self.start_read(conn, client, seq, file, offset);
                return;
            }
        }
        // Already proposed and not yet applied: answer the newest connection when it is.
        if leader.waiting.insert((client, seq), conn).is_some() {
            return;
        }
        self.propose(Command::Client(request));
    }
}
