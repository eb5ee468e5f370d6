//! Linearizable reads without the log (read-index). A read is answered from the leader's state
//! machine once two things hold: a majority has acknowledged this leader's term in a round that
//! started after the read arrived (so no newer leader had been elected before it), and the state
//! machine has applied everything committed when it arrived. Nothing is written or synced, so a
//! read costs one round trip to the followers instead of a log entry and a sync on a majority.

use super::leader_timers::LeaderTimers;
use super::members::Members;
use super::output::Output;
use super::progress::{reached_by_quorum, Progress};
use super::queries::answer_read;
use super::role::RoleState;
use super::Node;
use crate::config::Config;
use crate::introspection::MembersInfo;
use crate::membership::MembershipRejection;
use crate::message::PeerBody;
use crate::protocol::{Op, Rejection, Reply};
use crate::state_machine::StateMachine;
use crate::types::{ClientId, ConnId, LogIndex, NodeId, Seq, Term, Time};
use std::collections::{BTreeMap, VecDeque};

/// Introspection queries ([`Op::is_query`]) a leader holds at once; more are refused `Busy`.
/// Each is answered by a scan of a whole table on the node's one thread, and many would build
/// their pages together, so the bound keeps a burst of them (a script's loop, a client
/// pipelining pages) from holding back heartbeats.
pub const MAX_QUERIES_IN_FLIGHT: usize = 8;

/// A read waiting for its round and its index.
#[derive(Clone, Debug)]
struct PendingRead {
    conn: ConnId,
    client: ClientId,
    seq: Seq,
    /// A file read or an introspection query ([`Op::is_query`]).
    op: Op,
    /// Answered once the state machine has applied this far.
    index: LogIndex,
}

/// A leader's reads in flight.
#[derive(Debug, Default)]
pub(super) struct Reads {
    /// Rounds started so far; a round is one ReadIndex to every follower.
    round: u64,
    /// The highest round each follower has acknowledged in this term.
    acked: BTreeMap<NodeId, u64>,
    /// Reads that arrived since the last round started: they go into the next one.
    unsent: Vec<PendingRead>,
    /// Reads in a round, in the order they arrived, with the round.
    in_round: VecDeque<(u64, PendingRead)>,
}

impl Reads {
    /// Takes a read `op` by `client` (request `seq` on `conn`): a file read or an introspection
    /// query. It goes into the next round, and is answered once `index` is applied.
    pub fn add(&mut self, conn: ConnId, client: ClientId, seq: Seq, op: Op, index: LogIndex) {
        self.unsent.push(PendingRead {
            conn,
            client,
            seq,
            op,
            index,
        });
    }

    /// Introspection queries waiting, in or before a round.
    pub fn queries(&self) -> usize {
        let in_round = self.in_round.iter().map(|(_, r)| r);
        self.unsent
            .iter()
            .chain(in_round)
            .filter(|r| r.op.is_query())
            .count()
    }

    /// Every read not yet answered, for a leader that steps down.
    pub fn drain(&mut self) -> impl Iterator<Item = (ConnId, ClientId, Seq)> + '_ {
        let unsent = self.unsent.drain(..);
        let in_round = self.in_round.drain(..).map(|(_, r)| r);
        unsent.chain(in_round).map(|r| (r.conn, r.client, r.seq))
    }
}

/// A leader's read-index rounds, borrowed from its node: its reads, who its followers are,
/// what it has applied, its lock timers (introspection shows lease and idle times), and the
/// output.
pub(super) struct ReadRounds<'a> {
    pub cfg: &'a Config,
    /// The configuration in force: its voters confirm rounds.
    pub members: &'a Members,
    /// The commit index and the last index, for [`Op::Members`].
    pub commit: LogIndex,
    pub last: LogIndex,
    pub term: Term,
    pub now: Time,
    pub applied: LogIndex,
    pub sm: &'a StateMachine,
    pub timers: &'a LeaderTimers,
    pub followers: &'a BTreeMap<NodeId, Progress>,
    pub reads: &'a mut Reads,
    pub out: &'a mut Output,
}

impl ReadRounds<'_> {
    /// Starts a round for the reads that arrived since the last one (called with the flush, so
    /// one round serves every read of a batch), and answers what is ready.
    pub fn start_round(&mut self) {
        if self.reads.unsent.is_empty() {
            return;
        }
        self.reads.round += 1;
        let round = self.reads.round;
        let reads = std::mem::take(&mut self.reads.unsent);
        self.reads
            .in_round
            .extend(reads.into_iter().map(|r| (round, r)));
        let config = &self.members.current;
        for peer in self.followers.keys().filter(|id| config.is_voter(**id)) {
            let body = PeerBody::ReadIndex { round };
            self.out.send(self.cfg.id, *peer, self.term, body);
        }
        self.serve();
    }

    /// `from` confirmed this leader's term up to `round`.
    pub fn on_ack(&mut self, from: NodeId, round: u64) {
        let acked = self.reads.acked.entry(from).or_default();
        *acked = (*acked).max(round);
        self.serve();
    }

    /// Answers every read whose round a majority has confirmed and whose index is applied.
    pub fn serve(&mut self) {
        // Called after every apply: nothing to do without reads in a round.
        if self.reads.in_round.is_empty() {
            return;
        }
        // The highest round confirmed by a majority of the voters, this leader included
        // unless it is removing itself.
        let config = &self.members.current;
        let mut rounds: Vec<u64> = self
            .followers
            .keys()
            .filter(|id| config.is_voter(**id))
            .map(|id| self.reads.acked.get(id).copied().unwrap_or(0))
            .collect();
        if config.is_voter(self.cfg.id) {
            rounds.push(self.reads.round);
        }
        let Some(confirmed) = reached_by_quorum(rounds, config.quorum()) else {
            return;
        };
        let applied = self.applied;
        while self
            .reads
            .in_round
            .front()
            .is_some_and(|(round, read)| *round <= confirmed && read.index <= applied)
        {
            let Some((_, read)) = self.reads.in_round.pop_front() else {
                break;
            };
            let answer = match read.op {
                Op::Members => Ok(Reply::Members(self.members_info())),
                Op::AddLearner { id, addr } => self.repeated_add(id, &addr),
                _ => answer_read(self.cfg, self.sm, self.timers, self.now, &read.op),
            };
            self.out.reply(read.conn, read.client, read.seq, answer);
        }
    }
}

impl ReadRounds<'_> {
    /// What an add asked again once done answers after its round: the configuration in force
    /// if it still has the member at that address. If it changed meanwhile, the operator is
    /// told to ask again, and the next ask is decided afresh.
    fn repeated_add(&self, id: NodeId, addr: &str) -> Result<Reply, Rejection> {
        let config = &self.members.current;
        match config.member(id) {
            Some(member) if member.addr == addr => Ok(Reply::Reconfigured(config.clone())),
            _ => Err(Rejection::Membership(
                MembershipRejection::ChangeInProgress {
                    index: self.members.index(),
                },
            )),
        }
    }

    /// What [`Op::Members`] answers: the configuration in force and each follower's match.
    fn members_info(&self) -> MembersInfo {
        MembersInfo {
            leader: self.cfg.id,
            config: self.members.current.clone(),
            index: self.members.index(),
            committed: self.members.committed(self.commit),
            last_index: self.last,
            matched: self
                .followers
                .iter()
                .map(|(id, p)| (*id, p.matched))
                .collect(),
        }
    }
}

impl Node {
    /// The leader's read-index rounds; None when not leading.
    fn read_rounds(&mut self) -> Option<ReadRounds<'_>> {
        let RoleState::Leader(leader) = &mut self.role else {
            return None;
        };
        Some(ReadRounds {
            cfg: &self.cfg,
            members: &self.members,
            commit: self.commit,
            last: self.log.last().index,
            term: self.term,
            now: self.now,
            applied: self.applied,
            sm: &self.sm,
            timers: &leader.timers,
            followers: &leader.progress,
            reads: &mut leader.reads,
            out: &mut self.out,
        })
    }

    /// Starts a round for the reads that arrived since the last one.
    pub(super) fn start_read_round(&mut self) {
        if let Some(mut rounds) = self.read_rounds() {
            rounds.start_round();
        }
    }

    /// A follower was asked to confirm this leader's term.
    pub(super) fn on_read_index(&mut self, from: NodeId, round: u64) {
        self.heard_from_leader(from);
        self.send(from, PeerBody::ReadIndexAck { round });
    }

    /// A follower confirmed this leader's term up to `round`.
    pub(super) fn on_read_index_ack(&mut self, from: NodeId, round: u64) {
        let now = self.now;
        if let Some(p) = self
            .role
            .leader_mut()
            .and_then(|l| l.progress.get_mut(&from))
        {
            p.last_heard = now;
        }
        if let Some(mut rounds) = self.read_rounds() {
            rounds.on_ack(from, round);
        }
    }

    /// Answers every read that is ready (after an apply).
    pub(super) fn serve_reads(&mut self) {
        if let Some(mut rounds) = self.read_rounds() {
            rounds.serve();
        }
    }
}

#[cfg(test)]
#[path = "read_index_tests.rs"]
mod tests;
