//! The table of outbound peer links, and how it follows the cluster's configuration: a member
//! with an address is dialed there, one without keeps the address it was given at start-up, and
//! a link to an id that left the configuration is dropped a little later.

use crate::address::PeerAddr;
use crate::peer::{LinkSettings, PeerLink};
use crate::queue::OutQueue;
use dlm_core::{Membership, NodeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a link to a removed member is kept: the leader keeps replicating to a removed
/// member until its first heartbeat after the removal commits, so that the member learns of
/// it and stops standing for election; dropping the link at once would lose that message.
pub(crate) const RETIRE_AFTER: Duration = Duration::from_secs(5);

/// The links, shared with the tasks that retire removed ones.
#[derive(Clone)]
pub(crate) struct Links {
    inner: Arc<Mutex<Table>>,
    settings: LinkSettings,
    queue_frames: usize,
    queue_bytes: usize,
}

pub(crate) struct Table {
    pub(crate) links: HashMap<NodeId, PeerLink>,
    /// Bumped by every configuration: a retirement scheduled under an older one is void.
    generation: u64,
}

impl Links {
    pub(crate) fn new(settings: LinkSettings, queue_frames: usize, queue_bytes: usize) -> Links {
        Links {
            inner: Arc::new(Mutex::new(Table {
                links: HashMap::new(),
                generation: 0,
            })),
            settings,
            queue_frames,
            queue_bytes,
        }
    }

    /// The table (a poisoned lock is taken over: the table is always consistent).
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a peer, or moves it to a new address (its queued messages are kept).
    pub(crate) fn set(&self, id: NodeId, addr: PeerAddr) {
        if id == self.settings.me {
            return;
        }
        let mut table = self.table();
        let queue = match table.links.remove(&id) {
            Some(old) => old.queue.clone(),
            None => Arc::new(OutQueue::new(self.queue_frames, self.queue_bytes)),
        };
        let link = PeerLink::start(id, addr, self.settings.clone(), queue);
        table.links.insert(id, link);
    }

    /// Follows `members`: dials each member with an address it is not linked to there yet,
    /// and schedules the links to ids outside it to be dropped after [`RETIRE_AFTER`] (unless
    /// a later configuration has them again).
    pub(crate) fn follow(&self, members: &Membership) {
        for member in members.members() {
            let Some(addr) = parse(&member.addr) else {
                continue; // Unknown here: keep the start-up address, if any.
            };
            let known = self.table().links.get(&member.id).map(|l| l.addr.clone());
            if known.as_ref() != Some(&addr) {
                tracing::info!(node = %self.settings.me, peer = %member.id, %addr, "linking to member");
                self.set(member.id, addr);
            }
        }
        let (generation, leaving) = {
            let mut table = self.table();
            table.generation += 1;
            let leaving: Vec<NodeId> = table
                .links
                .keys()
                .copied()
                .filter(|id| !members.contains(*id))
                .collect();
            (table.generation, leaving)
        };
        if leaving.is_empty() {
            return;
        }
        let links = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RETIRE_AFTER).await;
            let mut table = links.table();
            if table.generation == generation {
                for id in leaving {
                    tracing::info!(node = %links.settings.me, peer = %id, "link to a former member closed");
                    table.links.remove(&id);
                }
            }
        });
    }
}

/// A member's address as the transport dials it: a socket address, a `host:port` looked up at
/// every dial, or nothing when empty.
pub(crate) fn parse(addr: &str) -> Option<PeerAddr> {
    if addr.is_empty() {
        return None;
    }
    Some(match addr.parse::<SocketAddr>() {
        Ok(socket) => PeerAddr::Socket(socket),
        Err(_) => PeerAddr::Host(addr.to_string()),
    })
}
