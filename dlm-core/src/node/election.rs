//! Elections: pre-vote, votes, stepping up and down, check-quorum, and noting a live leader.

use super::role::{Heard, Leader, RoleState};
use super::votes::{count_vote, Ballot};
use super::Node;
use crate::command::Command;
use crate::message::PeerBody;
use crate::node::leader_timers::LeaderTimers;
use crate::node::progress::Progress;
use crate::protocol::Rejection;
use crate::types::{LogPosition, NodeId, Term};
use rand_core::RngCore;

impl Node {
    /// The voter's side of an election, borrowed from the node.
    fn ballot(&mut self) -> Ballot<'_> {
        Ballot {
            cfg: &self.cfg,
            now: self.now,
            term: self.term,
            last: self.log.last(),
            role: &self.role,
            voted_for: &mut self.voted_for,
            out: &mut self.out,
        }
    }

    pub(super) fn on_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        last: LogPosition,
        transfer: bool,
    ) {
        if self
            .ballot()
            .refuse_stale_or_disruptive(from, term, pre, transfer)
        {
            return;
        }
        if pre {
            self.ballot().answer_pre_vote(from, term, last);
            return;
        }
        if term > self.term {
            self.become_follower(term, None);
        }
        if self.ballot().answer_vote(from, last) {
            self.reset_election_deadline();
        }
    }

    pub(super) fn on_vote_response(&mut self, from: NodeId, term: Term, pre: bool, granted: bool) {
        // Only voters' votes count, in the configuration this node has now.
        let config = &self.members.current;
        if !granted || !count_vote(&mut self.role, self.term, config, from, term, pre) {
            return;
        }
        if pre {
            self.start_election(false);
        } else {
            self.become_leader();
        }
    }

    /// The election time-out passed without word from a leader: ask whether an election could
    /// succeed before disturbing anyone with a new term.
    pub(super) fn start_pre_vote(&mut self) {
        if !self.may_stand() {
            // A learner, or a node whose removal has committed: it never stands, so it can
            // never disturb anyone.
            self.reset_election_deadline();
            return;
        }
        if self.members.current.is_sole_voter(self.cfg.id) {
            self.start_election(false);
            return;
        }
        self.role = RoleState::standing(self.cfg.id, true);
        self.reset_election_deadline();
        let last = self.log.last();
        let term = self.term.next();
        for peer in self.other_voters() {
            let body = PeerBody::RequestVote {
                pre: true,
                last,
                transfer: false,
            };
            self.out.send(self.cfg.id, peer, term, body);
        }
    }

    /// The voters of the configuration in force, this node left out.
    fn other_voters(&self) -> Vec<NodeId> {
        let me = self.cfg.id;
        let voters = self.members.current.voters().iter().map(|m| m.id);
        voters.filter(|id| *id != me).collect()
    }

    /// Whether this node may stand for election: it votes in the configuration in force, or
    /// that configuration removed it but has not committed yet as far as it knows. Such a node
    /// may hold entries the remaining voters lack (it led, appended its own removal, and
    /// crashed): they cannot win without its vote, which it refuses them for being behind, so
    /// it must be able to win in their stead (counting only their votes), finish the change and
    /// then step down. A learner never stands.
    fn may_stand(&self) -> bool {
        let (config, me) = (&self.members.current, self.cfg.id);
        config.is_voter(me) || (!config.contains(me) && !self.members.committed(self.commit))
    }

    pub(super) fn start_election(&mut self, transfer: bool) {
        if !self.may_stand() {
            return;
        }
        self.term = self.term.next();
        self.voted_for = Some(self.cfg.id);
        self.role = RoleState::standing(self.cfg.id, false);
        self.persist_hard_state();
        self.reset_election_deadline();
        if self.members.current.is_sole_voter(self.cfg.id) {
            self.become_leader();
            return;
        }
        let last = self.log.last();
        for peer in self.other_voters() {
            let body = PeerBody::RequestVote {
                pre: false,
                last,
                transfer,
            };
            self.out.send(self.cfg.id, peer, self.term, body);
        }
    }

    fn become_leader(&mut self) {
        let last = self.log.last().index;
        let now = self.now;
        // Every other member, learners included: they receive the log but do not vote.
        let me = self.cfg.id;
        let progress = self
            .members
            .current
            .members()
            .filter(|m| m.id != me)
            .map(|m| (m.id, Progress::new(last, now)))
            .collect();
        let timers = LeaderTimers::rebuild(&self.sm, now, self.cfg.lock_delay);
        let mut leader = Leader::new(progress, timers, now, last);
        // Other voters' votes come only after this node's vote request, which waits for its
        // term and vote to be durable; a sole voter's own vote has no such wait.
        leader.quiet = self.members.current.is_sole_voter(self.cfg.id);
        self.role = RoleState::Leader(Box::new(leader));
        self.timers.lead(now + self.cfg.heartbeat_interval);
        // Entries of earlier terms commit only through an entry of this term.
        self.propose(Command::Noop);
    }

    /// Adopts `term` (if newer) and follows `leader` (if known). A leader stepping down answers
    /// every waiting client with a hint, so they retry elsewhere at once.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
        }
        let was = std::mem::replace(&mut self.role, RoleState::follower(leader, self.now));
        if let RoleState::Leader(old) = was {
            // Entries proposed since the last flush were never persisted nor sent. Without a
            // leader they would never be flushed, yet they would count in this node's votes
            // and, should it lead again, sit unpersisted below entries that are: a crash would
            // then lose a committed entry. Nobody else has them, so drop them.
            if old.flushed < self.log.last().index {
                self.truncate_log_from(old.flushed.next());
            }
            let hint = Err(Rejection::NotLeader { hint: leader });
            for ((client, seq), conn) in old.waiting {
                self.reply(conn, client, seq, hint.clone());
            }
            let mut reads = old.reads;
            for (conn, client, seq) in reads.drain() {
                self.reply(conn, client, seq, hint.clone());
            }
            let mut watches = old.watches;
            for parked in watches.drain() {
                self.reply(parked.conn, parked.client, parked.seq, hint.clone());
            }
        }
        self.reset_election_deadline();
    }

    /// A message only a leader sends came from `from` in our term: follow it (stepping down
    /// from whatever we were), note when we heard it, and put off our own election.
    pub(super) fn heard_from_leader(&mut self, from: NodeId) {
        if self.leader() != Some(from) {
            let term = self.term;
            self.become_follower(term, Some(from));
        }
        self.role = RoleState::Follower {
            leader: Some(Heard {
                id: from,
                at: self.now,
            }),
        };
        self.reset_election_deadline();
    }

    /// Arms the election deadline of a node that does not lead (which has no other deadline):
    /// an election time-out, plus this node's stagger by rank, plus random jitter.
    pub(super) fn reset_election_deadline(&mut self) {
        if self.members.current.is_sole_voter(self.cfg.id) {
            self.timers.follow(self.now);
            return;
        }
        let jitter_nanos = u64::try_from(self.cfg.election_jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = match jitter_nanos {
            0 => 0,
            n => self.rng.next_u64() % n,
        };
        // The lowest-id preference ranks the voters of the configuration in force.
        let rank = self.members.current.rank(self.cfg.id);
        let stagger = self.cfg.election_stagger * u32::try_from(rank).unwrap_or(0);
        let timeout = self.cfg.election_timeout + stagger + std::time::Duration::from_nanos(jitter);
        self.timers.follow(self.now + timeout);
    }

    /// A leader that has not heard from a majority within an election time-out steps down, so a
    /// leader cut off by a partition stops answering clients. Returns whether it is still leader.
    pub(super) fn check_quorum(&mut self) -> bool {
        let Some(leader) = self.role.leader() else {
            return false;
        };
        let window = self.cfg.election_timeout;
        if self.now < leader.since + window {
            return true;
        }
        let now = self.now;
        let config = &self.members.current;
        let me = usize::from(config.is_voter(self.cfg.id));
        let heard = me
            + leader
                .progress
                .iter()
                .filter(|(id, p)| {
                    config.is_voter(**id) && now.saturating_since(p.last_heard) < window
                })
                .count();
        if heard >= config.quorum() {
            return true;
        }
        let term = self.term;
        self.become_follower(term, None);
        false
    }
}
