//! What the core makes of an answer or a failed delivery: hints followed, sessions renewed,
//! calls settled, and a stray grant given back.

use super::*;

impl ClientCore {
    pub(super) fn on_answer(&mut self, node: NodeId, response: ClientResponse) {
        if response.client != self.session {
            return;
        }
        let seq = response.seq;
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        if r.purpose == Purpose::Abandoned {
            // Its cancel decides what becomes of it.
            return;
        }
        match response.result {
            Err(Rejection::NotLeader { hint }) => {
                if r.at != Some(node) {
                    // A late answer to an earlier attempt: the current one speaks for now.
                    return;
                }
                let hint = hint.filter(|h| *h != node && self.cfg.nodes.contains(h));
                let cause = hint.map_or(NodeCause::NoLeader, NodeCause::NotLeader);
                r.causes.insert(node, cause);
                match hint {
                    Some(leader) if r.pinned.is_none() && r.hops < self.cfg.nodes.len() => {
                        r.hops += 1;
                        r.touch_leader(self.now, self.cfg.deadline);
                        self.route.follow(leader);
                        self.send(seq);
                    }
                    Some(_) => {
                        // Hints bounced between nodes as often as there are nodes.
                        r.touch_leader(self.now, self.cfg.deadline);
                        self.route.moved_from(node);
                        self.back_off(seq);
                    }
                    None => {
                        self.route.moved_from(node);
                        self.back_off_election(seq);
                    }
                }
            }
            Err(Rejection::SessionExpired) if !r.renewed => {
                // The service forgot us (idle past its session TTL): nothing of this request
                // was applied. Everything goes again in a fresh session.
                r.renewed = true;
                self.route.answered_by(node);
                self.new_session();
            }
            Err(Rejection::SeqBelowWatermark) if !r.op.is_cached() => {
                // A later request acknowledged past it before it arrived, so nothing came of
                // it: it is asked again under a fresh seq (it is not cached, so that is safe).
                // Whichever node says so: a copy sent to an earlier node, late on the network,
                // is refused just the same after the request moved on to another.
                let seq = self.renumber(seq);
                self.send(seq);
            }
            result => {
                if r.pinned.is_none() {
                    self.route.answered_by(node);
                }
                self.settle(seq, result);
            }
        }
    }

    pub(super) fn on_failed(&mut self, node: NodeId, seq: Seq, cause: NodeCause) {
        let nodes = &self.cfg.nodes;
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        if r.at != Some(node) || r.purpose == Purpose::Abandoned {
            return;
        }
        if r.purpose == Purpose::Probe(node) {
            self.requests.remove(&seq);
            self.probed(node, None);
            return;
        }
        r.causes.insert(node, cause.clone());
        let refused_everywhere = match r.pinned {
            Some(_) => matches!(cause, NodeCause::Refused(_)),
            None => nodes
                .iter()
                .all(|n| matches!(r.causes.get(n), Some(NodeCause::Refused(_)))),
        };
        if let (true, NodeCause::Refused(reason)) = (refused_everywhere, cause) {
            // Another cluster, protocol version or secret: retrying cannot help.
            self.fail(seq, ClientError::Refused(reason));
            return;
        }
        let all_down = nodes.iter().all(|n| {
            matches!(
                r.causes.get(n),
                Some(NodeCause::Connection(_) | NodeCause::Refused(_))
            )
        });
        self.route.moved_from(node);
        if all_down {
            self.back_off(seq);
        } else {
            // A node that cannot be reached (a crashed leader, most likely) is no reason to
            // wait long before asking the others, which may be electing its successor.
            self.back_off_election(seq);
        }
    }

    /// Request `seq` has its final answer.
    pub(super) fn settle(&mut self, seq: Seq, result: Result<Reply, Rejection>) {
        let Some(r) = self.requests.get(&seq) else {
            return;
        };
        self.answered += 1;
        if r.op.is_cached() {
            self.cached_answered = self.cached_answered.max(seq);
        }
        let (purpose, op, first_sent) = (r.purpose.clone(), r.op.clone(), r.first_sent);
        let sent = first_sent.unwrap_or(self.now);
        match purpose {
            Purpose::Call(call) => {
                if let (Some(acquire), Err(Rejection::AlreadyHeld { token })) =
                    (op.as_acquire(), &result)
                {
                    if self.retry_after_stray_grant(seq, acquire.lock, *token) {
                        return;
                    }
                }
                self.requests.remove(&seq);
                self.calls.remove(&call);
                let outcome = self.call_outcome(call, &op, sent, result);
                if let Some(lock) = op_lock(&op) {
                    self.release_deferred(lock);
                }
                if let Some(outcome) = outcome {
                    self.done(call, outcome);
                }
            }
            Purpose::KeepAlive { grants } => {
                self.requests.remove(&seq);
                if let Ok(Reply::KeptAlive { held, revoked }) = result {
                    self.kept_alive(sent, grants, &held, &revoked);
                }
                self.keepalive_ended();
            }
            Purpose::Probe(node) => {
                self.requests.remove(&seq);
                match result {
                    Ok(Reply::Status(status)) => self.probed(node, Some(status)),
                    _ => self.probed(node, None),
                }
            }
            Purpose::Cancel { .. } | Purpose::GiveBack => {
                if let Op::Release { lock, token } = &op {
                    self.held.remove(lock, *token);
                }
                self.drop_request(seq);
            }
            Purpose::Abandoned => {}
        }
    }

    /// An acquire was refused because the session already holds the lock under `token`, a
    /// grant no caller has (an acquire given up on, a release whose answer was lost). Gives
    /// it back by its token and sends the acquire again, once; false if that does not apply.
    pub(super) fn retry_after_stray_grant(
        &mut self,
        seq: Seq,
        lock: &LockName,
        token: FencingToken,
    ) -> bool {
        let stray = !self.held.contains(lock)
            && !self
                .requests
                .iter()
                .any(|(s, r)| *s != seq && r.op.as_acquire().is_some_and(|a| a.lock == lock));
        let Some(r) = self
            .requests
            .get_mut(&seq)
            .filter(|r| stray && !r.gave_back)
        else {
            return false;
        };
        r.gave_back = true;
        r.deferred = true;
        self.renumber(seq);
        self.give_back(lock.clone(), token);
        true
    }

    /// The outcome of call `call`, or `None` if it must wait for a keep-alive first.
    pub(super) fn call_outcome(
        &mut self,
        call: CallId,
        op: &Op,
        sent: Time,
        result: Result<Reply, Rejection>,
    ) -> Option<Result<Done, ClientError>> {
        let reply = match result {
            Ok(reply) => reply,
            Err(rejection) => return Some(Err(rejection.into())),
        };
        Some(match (op, reply) {
            (
                Op::Acquire { lock, .. } | Op::AcquireAs { lock, .. },
                Reply::Granted { token, lease },
            ) => {
                // The lease runs from the grant, which came no earlier than the first send;
                // after a long wait that bound says little, so a keep-alive sent now
                // confirms the grant before it is handed out (or finds it gone).
                let safe_until = self.cfg.drift.safe_until(sent, lease);
                let little_left = safe_until.saturating_since(self.now) < lease / 2;
                let confirm_by = self.now + self.cfg.deadline;
                let confirming = little_left.then_some((call, confirm_by));
                self.held
                    .insert(lock.clone(), token, lease, safe_until, confirming);
                self.keepalive_at = self.keepalive_at.min(self.now + self.cfg.lease / 3);
                if little_left {
                    // A keep-alive already out may predate the grant: this one speaks for it.
                    self.start_keepalive();
                    return None;
                }
                Ok(Done::Granted {
                    lock: lock.clone(),
                    token,
                    safe_until,
                })
            }
            (Op::Release { lock, token }, Reply::Released) => {
                self.held.remove(lock, *token);
                Ok(Done::Released)
            }
            (Op::Append { .. }, Reply::Appended { offset }) => Ok(Done::Appended { offset }),
            (Op::Read { .. } | Op::TailFile { .. }, Reply::Data { data, len }) => {
                Ok(Done::Data { data, len })
            }
            (Op::Proclaim { .. }, Reply::Proclaimed) => Ok(Done::Proclaimed),
            (Op::WatchLock { .. }, Reply::Watched(page)) => Ok(Done::Watched(page)),
            (Op::Status, Reply::Status(status)) => Ok(Done::Status(status)),
            (Op::Locks { .. }, Reply::Locks(page)) => Ok(Done::Locks(page)),
            (Op::Sessions { .. }, Reply::Sessions(page)) => Ok(Done::Sessions(page)),
            (Op::Revoke { .. }, Reply::Revoked { client, token }) => {
                Ok(Done::Revoked { client, token })
            }
            (
                Op::AddLearner { .. } | Op::Promote { .. } | Op::Remove { .. },
                Reply::Reconfigured(config),
            ) => Ok(Done::Reconfigured(config)),
            (Op::Members, Reply::Members(info)) => Ok(Done::Members(info)),
            (_, other) => Err(ClientError::Protocol(format!(
                "unexpected answer {other:?}"
            ))),
        })
    }
}
