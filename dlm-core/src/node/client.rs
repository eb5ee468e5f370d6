//! Client requests at the node: status from anyone, everything else only from the leader, which
//! answers retries from the dedup cache and proposes the rest.

use super::Node;
use crate::command::Command;
use crate::protocol::{ClientRequest, Op, Rejection, Reply};
use crate::state_machine::{check_request, Slot};
use crate::types::ConnId;

impl Node {
    pub(super) fn on_client(&mut self, conn: ConnId, request: ClientRequest) {
        let (client, seq) = (request.client, request.seq);
        if request.op == Op::Status {
            let status = self.status();
            self.reply(conn, client, seq, Ok(Reply::Status(status)));
            return;
        }
        let hint = self.leader_id;
        let Some(leader) = &mut self.leader else {
            self.reply(conn, client, seq, Err(Rejection::NotLeader { hint }));
            return;
        };
        if let Some((target, _)) = leader.transfer {
            let hint = Some(target);
            self.reply(conn, client, seq, Err(Rejection::NotLeader { hint }));
            return;
        }
        // Malformed requests never reach the log.
        if let Err(refusal) = check_request(&request.op, &self.cfg.limits) {
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
        // Already proposed and not yet applied: answer the newest connection when it is.
        if leader.waiting.insert((client, seq), conn).is_some() {
            return;
        }
        self.propose(Command::Client(request));
    }
}
