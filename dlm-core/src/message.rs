//! Messages between nodes (the consensus protocol). Serde types, sent by transports as postcard.

use crate::command::Entry;
use crate::types::{LogIndex, LogPosition, NodeId, Term};
use serde::{Deserialize, Serialize};

/// A message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMessage {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would stand in).
    pub term: Term,
    /// What it says.
    pub body: PeerBody,
}

/// The kinds of peer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerBody {
    /// Leader → follower: entries following `prev`, and the leader's commit index. With no entries
    /// it is a heartbeat (and still runs the consistency check).
    AppendEntries {
        /// The entry just before `entries`; the follower must have it.
        prev: LogPosition,
        /// New entries (possibly none).
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: LogIndex,
    },
    /// Follower → leader: the outcome of an AppendEntries.
    AppendResponse {
        /// The `prev.index` of the request answered, so stale answers can be recognised.
        prev_index: LogIndex,
        /// Accepted: the follower's log matches the leader's up to `match_index`.
        /// Rejected: the leader should retry from `hint` (fast back-off).
        outcome: AppendOutcome,
    },
    /// Candidate → all: vote for me (or, when `pre`, would you vote for me?).
    RequestVote {
        /// A pre-vote: nobody changes term or records a vote.
        pre: bool,
        /// The candidate's last log entry, for the up-to-date check.
        last: LogPosition,
        /// Leadership is being transferred to the candidate: skip the sticky-leader check.
        transfer: bool,
    },
    /// Answer to `RequestVote`.
    VoteResponse {
        /// Answers a pre-vote.
        pre: bool,
        /// Vote granted.
        granted: bool,
    },
    /// Leader → follower: one chunk of a snapshot.
    InstallSnapshot {
        /// The last entry the snapshot covers.
        last: LogPosition,
        /// Total size of the snapshot data.
        size: u64,
        /// Where this chunk starts.
        offset: u64,
        /// The chunk.
        data: Vec<u8>,
    },
    /// Follower → leader: how much of the snapshot it has.
    SnapshotResponse {
        /// The snapshot being answered.
        last: LogPosition,
        /// Bytes received so far; equals the size once installed.
        received: u64,
        /// The snapshot is installed.
        done: bool,
    },
    /// Leader → chosen successor: start an election now (leadership transfer).
    TimeoutNow,
    /// Leader → follower: confirm that I still lead in this term (a read-index round).
    ReadIndex {
        /// The round, echoed in the answer.
        round: u64,
    },
    /// Follower → leader: you lead in this term, as of your round `round`.
    ReadIndexAck {
        /// The round answered.
        round: u64,
    },
}

impl PeerBody {
    /// Whether only a leader sends this (in its term): replication, snapshot chunks, a
    /// read-index round, a transfer.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            PeerBody::AppendEntries { .. }
                | PeerBody::InstallSnapshot { .. }
                | PeerBody::TimeoutNow
                | PeerBody::ReadIndex { .. }
        )
    }

    /// Whether sending this tells the receiver something about the sender's storage: an
    /// accepted append, a vote or a vote request (the candidate's own vote), a snapshot answer.
    /// Such a message must not leave before the persists that precede it are durable, or a
    /// crash could take back what it said.
    pub fn promises_storage(&self) -> bool {
        match self {
            PeerBody::AppendResponse { .. } | PeerBody::SnapshotResponse { .. } => true,
            PeerBody::RequestVote { pre, .. } | PeerBody::VoteResponse { pre, .. } => !pre,
            PeerBody::AppendEntries { .. } | PeerBody::InstallSnapshot { .. } => false,
            // Safe without a sync: a newer leader's voters, a majority, have their vote on disk
            // and refuse this term, so no majority can confirm a deposed leader.
            PeerBody::TimeoutNow | PeerBody::ReadIndex { .. } | PeerBody::ReadIndexAck { .. } => {
                false
            }
        }
    }
}

/// Outcome of an AppendEntries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches up to this index.
    Accepted {
        /// Last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// The consistency check failed.
    Rejected {
        /// Index to retry from.
        hint: LogIndex,
    },
}
