//! Time-driven work: attempts that went unanswered, calls past their deadline, keep-alives
//! and probes that are due, leases that ran out.

use super::*;

impl ClientCore {
    /// Acts on every request whose time has come, the keep-alive schedule and lease ends.
    pub(super) fn run_timers(&mut self) {
        let now = self.now;
        let due: Vec<Seq> = if self.requests.values().any(|r| r.wake_at() <= now) {
            let due = self.requests.iter().filter(|(_, r)| r.wake_at() <= now);
            due.map(|(seq, _)| *seq).collect()
        } else {
            Vec::new()
        };
        for seq in due {
            let Some(r) = self.requests.get_mut(&seq) else {
                continue;
            };
            if now >= r.give_up_at || now >= r.contact_by {
                self.give_up(seq);
            } else if let Some(node) = r.at.filter(|_| now >= r.silent_at) {
                r.causes.insert(node, NodeCause::Silent);
                if r.pinned.is_some() {
                    self.back_off(seq);
                    continue;
                }
                let leader_known = self.route.leader_known();
                if r.waits() && leader_known {
                    // A waiting acquire is long-polled, so silence is what a busy lock sounds
                    // like: send it again (the leader attaches it to the new attempt), and let
                    // the probes tell whether the leader is still there.
                    r.causes.remove(&node);
                } else if r.silences == 0 && leader_known {
                    // One lost message is the likeliest cause: try the leader once more.
                    r.silences += 1;
                } else {
                    r.silences = 0;
                    self.route.moved_from(node);
                }
                let silences = r.silences;
                r.at = None;
                r.hops = 0;
                if matches!(r.purpose, Purpose::KeepAlive { .. }) {
                    // Renewing is idempotent, so a fresh keep-alive goes out, counting its
                    // renewal from now; the old one may still be answered (it was only slow
                    // to commit) until its answer could no longer renew anything.
                    let lease_end = r.first_sent.map_or(now, |t| t + self.cfg.lease);
                    r.give_up_at = r.give_up_at.min(lease_end);
                    r.retired = true;
                    if !self.held.is_empty() {
                        let fresh = self.start_keepalive();
                        if let Some(fresh) = self.requests.get_mut(&fresh) {
                            // It takes over the silences counted so far, so a silent leader
                            // is left after one more try, as for any other request.
                            fresh.silences = silences;
                        }
                    }
                    continue;
                }
                self.send(seq);
            } else if let Some(node) = r.at.filter(|_| now >= r.probe_at) {
                r.probe_at = Time::MAX;
                self.start_probe(node);
            } else if r.at.is_none() && !r.deferred && now >= r.send_at {
                self.send(seq);
            }
        }
        self.run_keepalive();
        if self.held.earliest_end() > now {
            return;
        }
        let (lost, unconfirmed) = self.held.expire(now);
        for (lock, token) in lost {
            self.out.push_back(ClientOutput::Lost {
                lock,
                token,
                reason: LossReason::LeaseRanOut,
            });
        }
        for (call, lock, token) in unconfirmed {
            self.give_back(lock, token);
            self.done(call, Err(ClientError::GrantExpired));
        }
    }

    /// The call of request `seq` ends with `error`; an acquire that may have reached the
    /// service is withdrawn first.
    pub(super) fn fail(&mut self, seq: Seq, error: ClientError) {
        let Some(r) = self.requests.get(&seq) else {
            return;
        };
        let call = r.call();
        self.drop_request(seq);
        if let Some(call) = call {
            self.calls.remove(&call);
            self.done(call, Err(error));
        }
    }

    /// The request `seq` reached its deadline.
    pub(super) fn give_up(&mut self, seq: Seq) {
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        if let Purpose::Probe(node) = r.purpose {
            self.requests.remove(&seq);
            self.probed(node, None);
            return;
        }
        if let Some(node) = r.at {
            r.causes.entry(node).or_insert(NodeCause::Silent);
        }
        let r = &*r;
        let error = if r.waits() && r.reached && self.now >= r.give_up_at {
            ClientError::TimedOut
        } else {
            let causes = match r.pinned {
                Some(node) => vec![(node, cause_of(&r.causes, node))],
                None => self
                    .cfg
                    .nodes
                    .iter()
                    .map(|n| (*n, cause_of(&r.causes, *n)))
                    .collect(),
            };
            ClientError::Unavailable(Unreachable { causes })
        };
        self.fail(seq, error);
    }
}
