//! Applying one committed command. Every branch is deterministic and total: a request that
//! cannot be carried out gets a typed refusal, and leaves the state as it was.

use super::validate::check_request;
use super::{Outcome, Rules, Sessions, Slot, StateMachine};
use crate::command::Command;
use crate::protocol::{ClientRequest, ClientResponse, Op, Rejection, Reply, MAX_PENDING};
use crate::types::{ClientId, Seq};

/// What a request is answered.
pub(super) type Answer = Result<Reply, Rejection>;

impl StateMachine {
    /// Applies one committed command, pushing what happened onto `out`.
    pub fn apply(&mut self, command: &Command, rules: &Rules, out: &mut Vec<Outcome>) {
        let first = out.len();
        self.apply_command(command, rules, out);
        self.forget_freed_values(&out[first..]);
    }

    fn apply_command(&mut self, command: &Command, rules: &Rules, out: &mut Vec<Outcome>) {
        match command {
            Command::Noop => {}
            Command::Client(request) => self.apply_request(request, rules, out),
            Command::Expire {
                lock,
                token,
                renewals,
            } => self.expire(lock, *token, Some(*renewals), rules, out),
            Command::LiftDelay { lock } => {
                if let Some(state) = self.locks.get_mut(lock) {
                    state.delayed = false;
                }
                self.grant_next(lock, out);
            }
            Command::CancelWait { lock, client, seq } => {
                let timed_out = Some(Rejection::TimedOut);
                self.remove_waiter(lock, *client, Some(*seq), timed_out, out);
            }
            Command::ExpireSession { client } => self.expire_session(*client, rules, out),
            Command::Membership {
                config,
                client,
                seq,
            } => {
                // The node adopted it when it was appended; this is the committed record, and
                // the operator's answer. It opens no session and is not cached: a retry is
                // checked again against the configuration it then finds.
                self.membership = Some(config.clone());
                let answer = Ok(Reply::Reconfigured(config.clone()));
                out.push(reply(*client, *seq, answer));
            }
        }
    }

    fn apply_request(&mut self, request: &ClientRequest, rules: &Rules, out: &mut Vec<Outcome>) {
        let ClientRequest {
            client,
            seq,
            acked_below,
            pending,
            op,
        } = request;
        let (client, seq) = (*client, *seq);
        let cached = op.is_cached();
        let limits = &rules.limits;

        if !pending_is_valid(pending) {
            let refusal = Rejection::Invalid(format!(
                "more than {MAX_PENDING} pending seqs, or not in ascending order"
            ));
            out.push(reply(client, seq, Err(refusal)));
            return;
        }
        if !self.sessions.contains_key(&client) {
            // A client that has acknowledged answers had a session; if it is gone, it expired,
            // and replaying the client's requests against a fresh one could apply them twice.
            let refusal = if acknowledges_any(*acked_below, pending) {
                Some(Rejection::SessionExpired)
            } else if self.sessions.len() >= limits.max_sessions {
                Some(Rejection::TooManySessions {
                    max: limits.max_sessions,
                })
            } else {
                None
            };
            if let Some(refusal) = refusal {
                out.push(reply(client, seq, Err(refusal)));
                return;
            }
            self.sessions.insert(client, Default::default());
        }
        let Some(session) = self.sessions.get_mut(&client) else {
            return;
        };
        session.acknowledge(*acked_below, pending);
        if session.is_acked(seq) {
            out.push(reply(client, seq, Err(Rejection::SeqBelowWatermark)));
            return;
        }
        out.push(Outcome::Touched { client });
        if cached {
            match session.slots.get(&seq) {
                Some(Slot::Done(answer)) => {
                    out.push(reply(client, seq, answer.clone()));
                    return;
                }
                // Still queued: the retry is re-attached by the leader, never enqueued twice.
                Some(Slot::Waiting(_)) => return,
                // Named pending before it arrived: its slot is already counted.
                Some(Slot::Expected) => {}
                None if session.slots.len() >= limits.max_unacked => {
                    let refusal = Rejection::TooManyUnacked {
                        max: limits.max_unacked,
                    };
                    out.push(reply(client, seq, Err(refusal)));
                    return;
                }
                None => {}
            }
        }

        let answer = match check_request(op, limits) {
            Err(refusal) => Some(Err(refusal)),
            Ok(()) => self.execute(client, seq, op, rules, out),
        };
        match answer {
            Some(answer) => self.answer(client, seq, answer, cached, out),
            None => {
                if let (Some(session), Some(acquire)) =
                    (self.sessions.get_mut(&client), op.as_acquire())
                {
                    session
                        .slots
                        .insert(seq, Slot::Waiting(acquire.lock.clone()));
                }
            }
        }
    }

    /// Carries out a validated operation. `None` means the acquire was queued.
    fn execute(
        &mut self,
        client: ClientId,
        seq: Seq,
        op: &Op,
        rules: &Rules,
        out: &mut Vec<Outcome>,
    ) -> Option<Answer> {
        let limits = &rules.limits;
        Some(match op {
            Op::Acquire { .. } | Op::AcquireAs { .. } => {
                let acquire = op.as_acquire()?;
                return self.acquire(client, seq, acquire, limits, out);
            }
            Op::Release { lock, token } => self.release(client, lock, *token, out),
            Op::Cancel { lock, seq: acquire } => Ok(Reply::Cancelled(
                self.withdraw(client, seq, lock, *acquire, out),
            )),
            Op::KeepAlive => Ok(self.renew(client, out)),
            Op::Append {
                lock,
                token,
                file,
                data,
            } => self.append(client, lock, *token, file, data, limits, out),
            Op::Read { file, offset } => self.read(file, *offset, limits),
            Op::Revoke { lock } => self.revoke(lock, out),
            Op::Proclaim { lock, token, value } => self.proclaim(client, lock, *token, value),
            // Membership changes travel as `Command::Membership`, never as a client command.
            Op::Status
            | Op::Locks { .. }
            | Op::Sessions { .. }
            | Op::Members
            | Op::AddLearner { .. }
            | Op::Promote { .. }
            | Op::Remove { .. }
            | Op::WatchLock { .. }
            | Op::TailFile { .. } => Err(Rejection::Invalid("not a replicated operation".into())),
        })
    }

    /// Records the answer to `(client, seq)` in its session (when cached) and reports it.
    pub(super) fn answer(
        &mut self,
        client: ClientId,
        seq: Seq,
        answer: Answer,
        cached: bool,
        out: &mut Vec<Outcome>,
    ) {
        record_answer(&mut self.sessions, client, seq, answer, cached, out);
    }
}

/// Records the answer to `(client, seq)` in its session (when cached) and reports it; for
/// callers that hold a borrow of another part of the state machine.
pub(super) fn record_answer(
    sessions: &mut Sessions,
    client: ClientId,
    seq: Seq,
    answer: Answer,
    cached: bool,
    out: &mut Vec<Outcome>,
) {
    if cached {
        if let Some(session) = sessions.get_mut(&client) {
            session.slots.insert(seq, Slot::Done(answer.clone()));
        }
    }
    out.push(reply(client, seq, answer));
}

/// Whether a request's pending seqs are few enough and in ascending order (the session's
/// acknowledgement looks them up by bisection).
pub(crate) fn pending_is_valid(pending: &[Seq]) -> bool {
    pending.len() <= MAX_PENDING && pending.windows(2).all(|w| w[0] < w[1])
}

/// Whether a request acknowledges any seq: one below `acked_below` that is not pending.
fn acknowledges_any(acked_below: Seq, pending: &[Seq]) -> bool {
    let below = pending
        .iter()
        .filter(|s| (Seq(1)..acked_below).contains(s))
        .count();
    acked_below.0.saturating_sub(1) > below as u64
}

fn reply(client: ClientId, seq: Seq, result: Answer) -> Outcome {
    Outcome::Reply(ClientResponse {
        client,
        seq,
        result,
    })
}
