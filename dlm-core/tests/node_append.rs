//! Exact-effect tests of AppendEntries and its answer (`dlm-core/src/node/replication.rs`): the
//! follower's consistency check, append, truncation, commit and apply; the leader's handling of
//! accepts (match, next, commit), rejects (back-off and resend) and stale answers. Each test sets
//! a state, feeds one input and compares the whole list of effects.

mod common;

use common::{
    acquire, append, drain_unsynced, fresh_node_of_three, keep_alive, leader_of_three, noop, noops,
    peer, pos, req, send,
};
use dlm_core::message::{AppendOutcome, PeerBody};
use dlm_core::*;

/// Start time of every follower test: well before the first election deadline.
const START: Time = Time::from_millis(10);
/// Node 1 of 3 restarted from storage in `term`, with no vote and a log of Noops at the given
/// (term, index) positions. Nothing has been fed to it yet.
fn restarted(term: u64, log: &[(u64, u64)]) -> Node {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(term),
            voted_for: None,
        },
        snapshot: None,
        entries: noops(log),
    };
    Node::new(Config::new(NodeId(1), ids), recovered).unwrap()
}

/// An AppendEntries to node 1 from leader `from` of `term`.
fn append_entries(
    from: u64,
    term: u64,
    prev: LogPosition,
    entries: Vec<Entry>,
    commit: u64,
) -> Input {
    let body = PeerBody::AppendEntries {
        prev,
        entries,
        commit: LogIndex(commit),
    };
    peer(from, term, body)
}

/// Node 1's AppendEntries to `to` in `term`.
fn sent_append(to: u64, term: u64, prev: LogPosition, entries: Vec<Entry>, commit: u64) -> Effect {
    let body = PeerBody::AppendEntries {
        prev,
        entries,
        commit: LogIndex(commit),
    };
    send(to, term, body)
}

fn accept(prev_index: u64, match_index: u64) -> PeerBody {
    PeerBody::AppendResponse {
        prev_index: LogIndex(prev_index),
        outcome: AppendOutcome::Accepted {
            match_index: LogIndex(match_index),
        },
    }
}

fn reject(prev_index: u64, hint: u64) -> PeerBody {
    PeerBody::AppendResponse {
        prev_index: LogIndex(prev_index),
        outcome: AppendOutcome::Rejected {
            hint: LogIndex(hint),
        },
    }
}

fn persisted(term: u64, index: u64) -> Input {
    Input::Persisted(pos(term, index))
}

// ---------------------------------------------------------------------------------------------
// At a follower.

/// Guards the accepting path of `on_append_entries`: new entries are appended and persisted in
/// one `Persist::Entries`, `commit.min(matched)` is committed and applied (an `Applied` effect for
/// a file append), and the answer `Accepted { match_index }` comes last and waits for the persist.
/// A newer term in the message is persisted first.
#[test]
fn follower_appends_persists_commits_applies_and_accepts() {
    let mut node = fresh_node_of_three();
    node.handle(START, Input::Tick);
    let entries = vec![
        noop(1, 1),
        Entry {
            term: Term(1),
            index: LogIndex(2),
            command: Command::Client(req(7, 1, acquire("a", None))),
        },
        Entry {
            term: Term(1),
            index: LogIndex(3),
            command: Command::Client(req(7, 2, append("a", 1, "f", b"xy"))),
        },
    ];
    node.handle(START, append_entries(2, 1, pos(0, 0), entries.clone(), 3));
    let effects = drain_unsynced(&mut node);
    assert_eq!(
        effects,
        vec![
            Effect::Persist(Persist::HardState(HardState {
                term: Term(1),
                voted_for: None,
            })),
            Effect::Persist(Persist::Entries(entries)),
            Effect::Applied(Applied::Appended {
                file: "f".into(),
                offset: 0,
                data: b"xy".to_vec(),
            }),
            send(2, 1, accept(0, 3)),
        ]
    );
    assert!(effects[3].waits_for_persist());
    assert_eq!(node.leader(), Some(NodeId(2)));
    assert_eq!(
        (node.commit_index(), node.applied_index()),
        (LogIndex(3), LogIndex(3))
    );
    assert_eq!(node.last_log(), pos(1, 3));
}

/// Guards `let commit = commit.min(matched);`: a follower commits no further than this message
/// proves its log matches the leader's, whatever the leader's commit index.
#[test]
fn follower_commits_no_further_than_the_append_proves() {
    let mut node = restarted(1, &[(1, 1), (1, 2), (1, 3)]);
    node.handle(START, Input::Tick);
    node.handle(START, append_entries(2, 1, pos(1, 1), Vec::new(), 3));
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 1, accept(1, 1))]);
    assert_eq!(node.commit_index(), LogIndex(1));
    // Entries 2 and 3 sit in the log uncommitted: nothing past the commit index is applied.
    assert_eq!(node.applied_index(), LogIndex(1));
}

/// Guards the heartbeat path of `on_append_entries`: an empty AppendEntries from the known
/// leader whose `prev` matches persists nothing, advances the commit index, is accepted up to
/// `prev`, and restarts the election timer (`self.reset_election_deadline()` in
/// `on_append_entries` itself: the leader is already known, so `become_follower` does not run).
#[test]
fn follower_answers_an_empty_heartbeat_without_persisting() {
    let mut node = restarted(1, &[(1, 1), (1, 2)]);
    node.handle(START, Input::Tick);
    node.handle(START, append_entries(2, 1, pos(1, 1), Vec::new(), 0));
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 1, accept(1, 1))]);
    assert_eq!(node.leader(), Some(NodeId(2)));
    let deadline = node.next_deadline();
    let now = Time::from_millis(200);
    assert!(now < deadline);
    node.handle(now, append_entries(2, 1, pos(1, 2), Vec::new(), 2));
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 1, accept(2, 2))]);
    assert_eq!(node.commit_index(), LogIndex(2));
    assert_eq!(node.last_log(), pos(1, 2));
    assert!(
        node.next_deadline() > deadline,
        "the heartbeat left the timer"
    );
}

/// Guards `None => self.log.last().index.next()` in the consistency check: a follower that lacks
/// `prev` rejects, hinting at the index after its last entry, and changes nothing.
#[test]
fn follower_without_the_prev_entry_rejects_with_its_log_end_as_hint() {
    let mut node = restarted(1, &[(1, 1)]);
    node.handle(START, Input::Tick);
    node.handle(START, append_entries(2, 1, pos(1, 3), vec![noop(1, 4)], 3));
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 1, reject(3, 2))]);
    assert_eq!(node.last_log(), pos(1, 1));
    assert_eq!(node.commit_index(), LogIndex(0));
}

/// Guards `Some(conflict) => self.first_index_of_term(prev.index, conflict)`: a follower whose
/// entry at `prev` has another term rejects, hinting at the first index of that conflicting
/// term's run (so the leader skips the whole run in one step), and truncates nothing yet.
#[test]
fn follower_with_a_prev_term_mismatch_rejects_with_the_start_of_the_conflicting_term() {
    let mut node = restarted(3, &[(1, 1), (2, 2), (2, 3)]);
    node.handle(START, Input::Tick);
    node.handle(START, append_entries(2, 3, pos(3, 3), vec![noop(3, 4)], 3));
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 3, reject(3, 2))]);
    assert_eq!(node.last_log(), pos(2, 3));
    assert_eq!(node.commit_index(), LogIndex(0));
}

/// Guards `Some(_) => self.truncate_log_from(entry.index)` and `Some(term) if term == entry.term
/// => continue`: entries already held are skipped, the first conflicting one and everything after
/// it are replaced, and only the new entries are persisted.
#[test]
fn follower_replaces_a_conflicting_suffix_and_persists_only_new_entries() {
    let mut node = restarted(2, &[(1, 1), (1, 2), (1, 3)]);
    node.handle(START, Input::Tick);
    let entries = vec![noop(1, 1), noop(2, 2)];
    node.handle(START, append_entries(2, 2, pos(0, 0), entries, 0));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            Effect::Persist(Persist::Entries(vec![noop(2, 2)])),
            send(2, 2, accept(0, 2)),
        ]
    );
    assert_eq!(node.last_log(), pos(2, 2));
    assert_eq!(node.entry(LogIndex(3)), None);
}

/// Guards that truncation happens only on a conflict (`Some(term) if term == entry.term =>
/// continue`): a delayed, shorter AppendEntries that matches leaves the longer log whole and is
/// accepted only up to what it carried.
#[test]
fn follower_keeps_its_longer_log_on_a_delayed_matching_append() {
    let mut node = restarted(1, &[(1, 1), (1, 2), (1, 3)]);
    node.handle(START, Input::Tick);
    node.handle(START, append_entries(2, 1, pos(0, 0), vec![noop(1, 1)], 0));
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 1, accept(0, 1))]);
    assert_eq!(node.last_log(), pos(1, 3));
}

/// Guards `answer_stale` for AppendEntries: one from an older term is rejected in this node's
/// term (so the stale leader steps down) and changes nothing.
#[test]
fn follower_rejects_an_append_of_an_older_term_in_its_own_term() {
    let mut node = restarted(3, &[(1, 1)]);
    node.handle(START, Input::Tick);
    node.handle(START, append_entries(2, 2, pos(1, 1), vec![noop(2, 2)], 2));
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 3, reject(1, 2))]);
    assert_eq!(node.last_log(), pos(1, 1));
    assert_eq!((node.term(), node.leader()), (Term(3), None));
}

// ---------------------------------------------------------------------------------------------
// At the leader.

/// Node 1 of 3 restarted with entries 1 to 3 of term 1 and elected leader of term 2 by node 2.
/// Its Noop (index 4) went to both followers as a probe after (1, 3) and was persisted, and
/// nothing is reported durable.
fn leader_of_term_two() -> (Node, Time) {
    let mut node = restarted(1, &[(1, 1), (1, 2), (1, 3)]);
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    for pre in [true, false] {
        let granted = PeerBody::VoteResponse { pre, granted: true };
        node.handle(now, peer(2, 2, granted));
        drain_unsynced(&mut node);
    }
    assert!(node.is_leader());
    assert_eq!(node.last_log(), pos(2, 4));
    (node, now)
}

/// Guards `become_leader` + `flush`/`replicate` with `Progress::new` (probe from the end of the
/// log): a new leader's first drain sends its Noop after its last entry to each follower, one
/// probe each, before persisting it.
#[test]
fn leader_of_term_two_sends_its_noop_as_a_probe() {
    let mut node = restarted(1, &[(1, 1), (1, 2), (1, 3)]);
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    let pre = PeerBody::VoteResponse {
        pre: true,
        granted: true,
    };
    node.handle(now, peer(2, 2, pre));
    drain_unsynced(&mut node);
    let vote = PeerBody::VoteResponse {
        pre: false,
        granted: true,
    };
    node.handle(now, peer(2, 2, vote));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            sent_append(2, 2, pos(1, 3), vec![noop(2, 4)], 0),
            sent_append(3, 2, pos(1, 3), vec![noop(2, 4)], 0),
            Effect::Persist(Persist::Entries(vec![noop(2, 4)])),
        ]
    );
}

/// Guards `p.accept(..)` then `self.replicate(from)` in `on_append_response` (with
/// `Progress::accept` leaving probe mode): an accepted probe moves the follower's next index past
/// its match and the entries proposed meanwhile go out at once; and `maybe_commit`'s
/// `matched.push(self.durable.min(leader.flushed))`: the leader's own copy counts only once
/// reported durable, so one follower alone commits nothing, and the report then commits and
/// answers the client.
#[test]
fn leader_advances_on_an_accept_and_commits_with_its_own_durable_copy() {
    let (mut node, now) = leader_of_three();
    // Client 7's keep-alive (index 2) is persisted but not sent: both followers are probed.
    node.handle(now, keep_alive(7));
    let keep_alive_entry = node.entry(LogIndex(2)).unwrap().clone();
    assert_eq!(
        drain_unsynced(&mut node),
        vec![Effect::Persist(Persist::Entries(vec![
            keep_alive_entry.clone()
        ]))]
    );
    node.handle(now, peer(2, 1, accept(0, 1)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(
            2,
            1,
            PeerBody::AppendEntries {
                prev: pos(1, 1),
                entries: vec![keep_alive_entry],
                commit: LogIndex(0),
            }
        )]
    );
    node.handle(now, peer(2, 1, accept(1, 2)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(
        node.commit_index(),
        LogIndex(0),
        "counted its own unsynced copy"
    );
    node.handle(now, persisted(1, 2));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![Effect::Reply {
            conn: ConnId(7),
            response: ClientResponse {
                client: ClientId(7),
                seq: Seq(1),
                result: Ok(Reply::KeptAlive {
                    held: Vec::new(),
                    revoked: Vec::new()
                }),
            },
        }]
    );
    assert_eq!(node.commit_index(), LogIndex(2));
}

/// Guards `p.back_off(hint.min(prev_index))` followed by `self.replicate(from)` in
/// `on_append_response`: a rejection moves the follower's next index back to the hint and a new
/// probe from there goes out at once; a hint above the rejected `prev_index` is capped by it.
#[test]
fn leader_backs_off_to_the_hint_on_a_rejection_and_resends() {
    let (mut node, now) = leader_of_term_two();
    node.handle(now, peer(2, 2, reject(3, 2)));
    let from_two = vec![noop(1, 2), noop(1, 3), noop(2, 4)];
    assert_eq!(
        drain_unsynced(&mut node),
        vec![sent_append(2, 2, pos(1, 1), from_two, 0)]
    );
    node.handle(now, peer(3, 2, reject(3, 9)));
    let from_three = vec![noop(1, 3), noop(2, 4)];
    assert_eq!(
        drain_unsynced(&mut node),
        vec![sent_append(3, 2, pos(1, 2), from_three, 0)]
    );
}

/// Guards `self.next = next.max(self.matched.next())` in `Progress::back_off`: a rejection never
/// sends the leader back below what the follower is known to hold.
#[test]
fn leader_never_backs_off_below_the_match() {
    let (mut node, now) = leader_of_term_two();
    // Node 2 holds entries up to 2: the leader leaves probe mode and sends from its next (4).
    node.handle(now, peer(2, 2, accept(3, 2)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![sent_append(2, 2, pos(1, 3), vec![noop(2, 4)], 0)]
    );
    node.handle(now, peer(2, 2, reject(3, 1)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![sent_append(
            2,
            2,
            pos(1, 2),
            vec![noop(1, 3), noop(2, 4)],
            0
        )]
    );
}

/// Guards `if prev_index < p.matched || p.snapshot.is_some() { return; }`: a rejection of an
/// AppendEntries older than what the follower is known to hold is stale and changes nothing
/// (without the guard the leader would go back to probing and resend entry 5).
#[test]
fn leader_ignores_a_rejection_older_than_the_match() {
    let (mut node, now) = leader_of_term_two();
    node.handle(now, peer(2, 2, accept(3, 4)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    node.handle(now, keep_alive(7));
    let entry = node.entry(LogIndex(5)).unwrap().clone();
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            sent_append(2, 2, pos(2, 4), vec![entry.clone()], 0),
            Effect::Persist(Persist::Entries(vec![entry])),
        ]
    );
    node.handle(now, peer(2, 2, reject(3, 2)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
}

/// Guards `} else if msg.term < self.term { self.answer_stale(msg); return; }` in `on_peer`: an
/// answer from an older term neither counts towards a commit nor triggers a resend.
#[test]
fn leader_ignores_append_responses_of_an_older_term() {
    let (mut node, now) = leader_of_term_two();
    node.handle(now, peer(2, 1, accept(3, 4)));
    node.handle(now, peer(3, 1, accept(3, 4)));
    node.handle(now, peer(3, 1, reject(3, 1)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    node.handle(now, persisted(2, 4));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(node.commit_index(), LogIndex(0), "a stale answer counted");
    // The same answer in the current term commits the Noop and the entries before it.
    node.handle(now, peer(2, 2, accept(3, 4)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(node.commit_index(), LogIndex(4));
}

/// Guards `p.accept(match_index.min(last))`: a follower claiming more than the leader's log is
/// counted as holding the leader's last entry, so the commit rule still finds a majority.
#[test]
fn leader_caps_a_match_index_beyond_its_log() {
    let (mut node, now) = leader_of_term_two();
    node.handle(now, peer(2, 2, accept(3, 9)));
    node.handle(now, peer(3, 2, accept(3, 9)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(node.commit_index(), LogIndex(4));
}

/// Guards the loop of `replicate` (`if !self.send_append(peer, true) { return; }`): a follower
/// past its probe gets as many AppendEntries as `max_inflight` allows at once, each of at most
/// `max_batch_entries`, while a follower still probed, its probe unanswered, gets nothing more.
#[test]
fn leader_pipelines_up_to_max_inflight_appends_at_once() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut cfg = Config::new(NodeId(1), ids);
    cfg.max_batch_entries = 1;
    cfg.max_inflight = 3;
    let mut node = Node::new(cfg, Recovered::default()).unwrap();
    let now = common::elect(&mut node, 2);
    drain_unsynced(&mut node);
    // Node 2 matches the Noop at index 1: no longer probed.
    node.handle(now, common::accepted(2, 1));
    drain_unsynced(&mut node);
    for seq in 1..=4u64 {
        let op = acquire(&format!("lock-{seq}"), None);
        let request = req(9, seq, op);
        node.handle(
            now,
            Input::Client {
                conn: ConnId(seq),
                request,
            },
        );
    }
    let appends_to = |effects: &[Effect], to: u64| -> Vec<Vec<LogIndex>> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(m) if m.to == NodeId(to) => match &m.body {
                    PeerBody::AppendEntries { entries, .. } => {
                        Some(entries.iter().map(|e| e.index).collect())
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    let effects = drain_unsynced(&mut node);
    let idx = |i| vec![LogIndex(i)];
    assert_eq!(
        appends_to(&effects, 2),
        vec![idx(2), idx(3), idx(4)],
        "{effects:#?}"
    );
    assert_eq!(
        appends_to(&effects, 3),
        Vec::<Vec<LogIndex>>::new(),
        "{effects:#?}"
    );
}

/// Guards `prev_index < p.matched` (not `<=`) in the leader's handling of a rejection: a
/// rejection about the very index the follower was known to match is not stale (the follower
/// lost what it had), so the leader backs off and probes again from just above the match.
#[test]
fn leader_probes_again_after_a_rejection_at_the_matched_index() {
    let (mut node, now) = leader_of_three();
    node.handle(now, common::accepted(2, 1));
    let request = req(9, 1, acquire("lock", None));
    node.handle(
        now,
        Input::Client {
            conn: ConnId(1),
            request,
        },
    );
    drain_unsynced(&mut node);
    node.handle(now, peer(2, 1, reject(1, 1)));
    let effects = drain_unsynced(&mut node);
    let probes: Vec<(LogPosition, Vec<LogIndex>)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) if m.to == NodeId(2) => match &m.body {
                PeerBody::AppendEntries { prev, entries, .. } => {
                    Some((*prev, entries.iter().map(|e| e.index).collect()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(probes, vec![(pos(1, 1), vec![LogIndex(2)])], "{effects:#?}");
}
