//! What reaches nodes and clients: the network's deliveries (held back for a paused node,
//! dropped for a crashed one, a stranded leader woken by its holder's keep-alive), and what
//! clients do in return, recorded and checked. Apart from the scheduling, which only decides
//! when each of these happens.

use super::client::Event;
use super::liveness::{ABANDON_BOUND, ABANDON_SETTLE};
use super::net::Delivery;
use super::{Sim, Stranded, Violation};
use crate::node::Input;
use crate::protocol::{ClientRequest, ClientResponse, Op};
use crate::types::ConnId;

/// How long a successor must have led before the stranded leader is woken: long enough that a
/// keep-alive sent since then, answered from memory, would reach past the successor's view of
/// the lease (it restarts leases at election, and the holder discounts 4.1% of a second).
const SUCCESSOR_LEAD: u64 = 100_000_000;

impl Sim {
    /// Records what client `i` did or learned, checking the invariants it bears on.
    pub(super) fn client_events(&mut self, i: usize, events: Vec<Event>) -> Result<(), Violation> {
        let id = self.clients[i].id();
        for event in events {
            let checked = match event {
                Event::Send { node, request } => {
                    if !request.pending.is_empty() {
                        self.pending_sent += 1;
                    }
                    if let Op::Revoke { lock } = &request.op {
                        self.checker.note_revoke_sent(lock);
                    }
                    if let Op::Append {
                        lock, token, data, ..
                    } = &request.op
                    {
                        self.checker
                            .sent_appends
                            .insert(data.clone(), (request.client, lock.clone(), *token));
                    }
                    self.log(|| {
                        format!(
                            "client {i} → node {}: {:?} {:?}",
                            node + 1,
                            request.seq,
                            request.op
                        )
                    });
                    self.net
                        .send_request(self.now, self.chaos, node, i, request, &mut self.rng);
                    Ok(())
                }
                Event::Confirmed {
                    lock,
                    token,
                    mode,
                    until,
                } => self
                    .checker
                    .token_granted_once(id, &lock, token)
                    .and_then(|()| {
                        self.checker
                            .lease_confirmed(i, &lock, (token, mode), self.now, until)
                    }),
                Event::Dropped { lock, revoked } => {
                    self.checker.lease_dropped(i, &lock, self.now);
                    match revoked {
                        Some(token) => self.checker.told_revoked(token),
                        None => Ok(()),
                    }
                }
                Event::Appended { file, offset, data } => {
                    self.checker.append_acked(file, offset, data, self.now);
                    Ok(())
                }
                Event::Read { file, data, sent } => {
                    self.checker.read_linearizable(&file, &data, sent)
                }
                Event::Revoked { lock, token } => {
                    self.log(|| format!("client {i} revoked {lock:?} from grant {token}"));
                    self.checker.note_revoked(token);
                    Ok(())
                }
                Event::Watched { lock, from, page } => {
                    self.checker.watch_answered(&lock, from, &page)
                }
                Event::Unacknowledged { rejection } => Err((
                    "acknowledges_only_answers",
                    format!("client {i}: a call was refused {rejection:?}"),
                )),
                Event::Abandoned { lock, session } => {
                    self.log(|| format!("client {i} abandons its acquire of {lock:?}"));
                    let settled = self.chaos_end + ABANDON_SETTLE;
                    let due = self.now.max(settled) + ABANDON_BOUND;
                    self.checker.abandoned.push((i, session, lock, due));
                    self.checker.abandoned_due = self.checker.abandoned_due.min(due);
                    Ok(())
                }
            };
            checked.map_err(|b| self.violation(b))?;
        }
        Ok(())
    }

    /// Whether `request` is the stranded holder's keep-alive reaching its stalled leader once a
    /// successor has led for [`SUCCESSOR_LEAD`]: the moment to wake it, so that the keep-alive
    /// is the first thing it handles.
    fn wakes_stranded(&self, node: usize, client: usize, request: &ClientRequest) -> bool {
        let Some(stalled) = self.nodes[node].node.as_ref() else {
            return false;
        };
        self.stranded == Some(Stranded { node, client })
            && self.nodes[node].paused_until > self.now
            && request.op == Op::KeepAlive
            && self.newest_leader.0 > stalled.term()
            && self.now >= self.newest_leader.1 + SUCCESSOR_LEAD
    }

    pub(super) fn deliver(&mut self) -> Result<(), Violation> {
        let Some((at, delivery)) = self.net.pop() else {
            return Ok(());
        };
        match delivery {
            Delivery::Peer(msg) => {
                let to = (msg.to.0 - 1) as usize;
                if self.nodes[to].node.is_none() {
                    return Ok(());
                }
                if self.nodes[to].paused_until > self.now {
                    let later = self.nodes[to].paused_until;
                    self.net.requeue(later, Delivery::Peer(msg));
                    return Ok(());
                }
                let _ = at;
                self.feed(to, Input::Peer(msg))
            }
            Delivery::Request {
                node,
                client,
                request,
            } => {
                if self.nodes[node].node.is_none() {
                    return Ok(());
                }
                if self.wakes_stranded(node, client, &request) {
                    self.log(|| format!("node {} wakes to client {client}'s keep-alive", node + 1));
                    self.nodes[node].paused_until = self.now;
                    self.stranded = None;
                }
                if self.nodes[node].paused_until > self.now {
                    let later = self.nodes[node].paused_until;
                    self.net.requeue(
                        later,
                        Delivery::Request {
                            node,
                            client,
                            request,
                        },
                    );
                    return Ok(());
                }
                let conn = ConnId(client as u64);
                self.feed(node, Input::Client { conn, request })
            }
            Delivery::Response {
                node,
                client,
                response,
            } => self.on_response(node, client, response),
        }
    }

    fn on_response(
        &mut self,
        node: usize,
        i: usize,
        response: ClientResponse,
    ) -> Result<(), Violation> {
        if !self.clients[i].alive || response.client != self.clients[i].id() {
            return Ok(());
        }
        if let Err(b) =
            self.checker
                .dedup_consistent(response.client, response.seq, &response.result)
        {
            return Err(self.violation(b));
        }
        self.log(|| format!("client {i} ← {:?} {:?}", response.seq, response.result));
        let mut events = Vec::new();
        self.clients[i].on_response(self.now, node, response, &mut self.rng, &mut events);
        self.client_events(i, events)
    }
}
