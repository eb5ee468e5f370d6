//! The leader's side of watches and tails: answer at once when there is something to report,
//! else hold the request until the lock has an event, the file grows, or the wait runs out.

use super::events::EventHistory;
use super::watches::{Parked, Wanted, MAX_WATCH_WAIT};
use super::Node;
use crate::names::{FileName, LockName};
use crate::protocol::{ClientRequest, EventPosition, Op, Rejection, Reply, WatchFrom};
use crate::state_machine::check_request;
use crate::types::ConnId;

impl Node {
    /// A watch or tail at a leader: answered now if there is something to report, else held.
    pub(super) fn on_watch(&mut self, conn: ConnId, request: ClientRequest) {
        let (client, seq) = (request.client, request.seq);
        if let Err(refusal) = check_request(&request.op, &self.cfg.limits) {
            self.reply(conn, client, seq, Err(refusal));
            return;
        }
        let (wanted, wait) = match request.op {
            Op::WatchLock { lock, from, wait } => {
                if let Some(page) = self.history.page(&lock, from, &self.sm, self.applied) {
                    self.reply(conn, client, seq, Ok(Reply::Watched(page)));
                    return;
                }
                // `page` answers a watch from now at once; should one wait, it waits from here.
                let after = match from {
                    WatchFrom::After(after) => after,
                    WatchFrom::Now => EventPosition::end_of(self.applied),
                };
                (Wanted::Lock { lock, after }, wait)
            }
            Op::TailFile { file, offset, wait } => {
                if let Some(answer) = self.tail(&file, offset) {
                    self.reply(conn, client, seq, answer);
                    return;
                }
                (Wanted::File { file, offset }, wait)
            }
            _ => return,
        };
        let max = self.cfg.max_watches;
        let until = self.now + wait.min(MAX_WATCH_WAIT);
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        if leader.watches.holds(client, seq) {
            return;
        }
        if leader.watches.len() >= max {
            self.reply(conn, client, seq, Err(Rejection::TooManyWatches { max }));
            return;
        }
        leader.watches.park(Parked {
            conn,
            client,
            seq,
            wanted,
            until,
        });
    }

    /// The bytes of `file` from `offset`, if there are any yet.
    fn tail(&self, file: &FileName, offset: u64) -> Option<Result<Reply, Rejection>> {
        let len = self.sm.file(file)?.data.len() as u64;
        (len > offset).then(|| self.sm.read(file, offset, &self.cfg.limits))
    }

    /// After entries were applied: answers the watches of locks that had events and the tails
    /// of files that grew.
    pub(super) fn serve_watches(&mut self, locks: &[LockName], files: &[FileName]) {
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        let mut woken = Vec::new();
        for lock in locks {
            woken.extend(leader.watches.take_lock(lock));
        }
        for file in files {
            woken.extend(leader.watches.take_file(file));
        }
        for parked in woken {
            let answer = match &parked.wanted {
                Wanted::Lock { lock, after } => self
                    .history
                    .page(lock, WatchFrom::After(*after), &self.sm, self.applied)
                    .map(|page| Ok(Reply::Watched(page))),
                Wanted::File { file, offset } => self.tail(file, *offset),
            };
            match answer {
                Some(answer) => self.reply(parked.conn, parked.client, parked.seq, answer),
                None => {
                    if let Some(leader) = self.role.leader_mut() {
                        leader.watches.park(parked);
                    }
                }
            }
        }
    }

    /// Answers every watch whose wait has run out with nothing new.
    pub(super) fn expire_watches(&mut self) {
        let now = self.now;
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        if leader.watches.next_deadline() > now {
            return;
        }
        for parked in leader.watches.take_due(now) {
            let answer = self.nothing_new(&parked.wanted);
            self.reply(parked.conn, parked.client, parked.seq, Ok(answer));
        }
    }

    /// The answer to a watch or tail that saw nothing new.
    pub(super) fn nothing_new(&self, wanted: &Wanted) -> Reply {
        match wanted {
            Wanted::Lock { after, .. } => {
                Reply::Watched(EventHistory::nothing_new(*after, self.applied))
            }
            Wanted::File { file, .. } => Reply::Data {
                data: Vec::new(),
                len: self.sm.file(file).map_or(0, |f| f.data.len() as u64),
            },
        }
    }
}
