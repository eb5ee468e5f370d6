//! What the client core's outputs mean to the simulated user: requests to send, a call's
//! answer (a grant, an append's offset, a read's data, or a failure), a lease renewed or lost,
//! each turned into the [`Event`]s the simulator checks. Apart from the user's choices of what
//! to call, which are the other half of the model.

use super::{Calling, Event, Holding, SimClient};
use crate::client::{CallId, ClientError, ClientOutput, Done, LossReason};
use crate::protocol::Rejection;
use crate::sim::rng::SimRng;

impl SimClient {
    pub(super) fn drain(&mut self, now: u64, rng: &mut SimRng, events: &mut Vec<Event>) {
        self.core_wake = self.skew.true_of(self.core.next_deadline());
        while let Some(output) = self.core.poll_output() {
            match output {
                ClientOutput::Send { node, request } => {
                    let node = (node.0 as usize).saturating_sub(1);
                    events.push(Event::Send { node, request });
                }
                ClientOutput::Done { call, result } => self.done(now, call, result, rng, events),
                ClientOutput::Renewed {
                    lock,
                    token,
                    safe_until,
                } => {
                    if let Some(h) = &mut self.holding {
                        if h.lock == lock && h.token == token {
                            let until = self.skew.true_of(safe_until);
                            h.safe_until = h.safe_until.max(until);
                            let mode = h.mode;
                            events.push(Event::Confirmed {
                                lock,
                                token,
                                mode,
                                until,
                            });
                        }
                    }
                }
                ClientOutput::Lost {
                    lock,
                    token,
                    reason,
                } => {
                    if self
                        .holding
                        .as_ref()
                        .is_some_and(|h| h.lock == lock && h.token == token)
                    {
                        self.holding = None;
                        let revoked = (reason == LossReason::Revoked).then_some(token);
                        events.push(Event::Dropped { lock, revoked });
                    }
                }
            }
        }
    }

    fn done(
        &mut self,
        now: u64,
        call: CallId,
        result: Result<Done, ClientError>,
        rng: &mut SimRng,
        events: &mut Vec<Event>,
    ) {
        let Some((current, what, started, _)) = self.calling.clone() else {
            return;
        };
        if current != call {
            return;
        }
        self.calling = None;
        self.calls += 1;
        self.wake_at = now + rng.below(20_000_000);
        match (what, result) {
            (
                Calling::Acquire(_, mode),
                Ok(Done::Granted {
                    lock,
                    token,
                    safe_until,
                }),
            ) => {
                let until = self.skew.true_of(safe_until);
                self.holding = Some(Holding {
                    lock: lock.clone(),
                    token,
                    mode,
                    safe_until: until,
                    appends_left: 1 + rng.below(4) as u32,
                });
                events.push(Event::Confirmed {
                    lock,
                    token,
                    mode,
                    until,
                });
            }
            (
                Calling::Acquire(lock, _),
                Err(ClientError::TimedOut | ClientError::Unavailable(_)),
            ) => {
                // An acquire the client gave up on (timed out, unreachable) may have been granted
                // at the very end: the core withdraws it as it would an abandoned one, and the
                // same bound applies. (A refusal from the service, like Busy, left nothing.)
                let session = self.core.session();
                events.push(Event::Abandoned { lock, session });
            }
            (Calling::Append { file, data }, Ok(Done::Appended { offset })) => {
                events.push(Event::Appended { file, offset, data });
            }
            (Calling::Append { .. } | Calling::Proclaim, Err(_)) => {
                // Lost the lock (expired, and maybe granted to someone else).
                if let Some(h) = self.holding.take() {
                    events.push(Event::Dropped {
                        lock: h.lock,
                        revoked: None,
                    });
                }
            }
            (Calling::Read(file), Ok(Done::Data { data, .. })) => {
                events.push(Event::Read {
                    file,
                    data,
                    sent: started,
                });
            }
            (Calling::Watch(lock, from), Ok(Done::Watched(page))) => {
                self.watching.insert(lock.clone(), page.resume);
                events.push(Event::Watched { lock, from, page });
            }
            (Calling::Revoke(lock), Ok(Done::Revoked { token, .. })) => {
                events.push(Event::Revoked { lock, token });
            }
            (
                _,
                Err(ClientError::Rejected(
                    rejection @ (Rejection::SeqBelowWatermark | Rejection::TooManyUnacked { .. }),
                )),
            ) => {
                events.push(Event::Unacknowledged { rejection });
            }
            // No such file is a read of nothing: just as stale if something was acknowledged.
            (Calling::Read(file), Err(ClientError::Rejected(Rejection::NoSuchFile))) => {
                events.push(Event::Read {
                    file,
                    data: Vec::new(),
                    sent: started,
                });
            }
            _ => {}
        }
    }
}
