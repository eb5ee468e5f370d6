//! Exact-effect tests of the lowest-id preference transfer (`dlm-core/src/node/transfer.rs`, run
//! from `on_timers` in `dlm-core/src/node/mod.rs`) and of TimeoutNow at a follower
//! (`dlm-core/src/node/peer.rs`): a leader hands leadership to a lower-id member once it has led
//! for an election time-out and that member holds the whole log and answers; it repeats
//! TimeoutNow at each heartbeat, sends clients to the successor, proposes nothing (its timers
//! paused) and gives up at the transfer's end. Each test sets a state, feeds one input and
//! compares the whole list of effects.

mod common;

use common::{
    client_seven_holding, drain_unsynced, elect, fresh_node_of_three, keep_alive, leader_of_three,
    peer, pos, req,
};
use dlm_core::message::{AppendOutcome, PeerBody, PeerMessage};
use dlm_core::*;
use std::time::Duration;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A message to node 2 from `from`, in `term`.
fn to_two(from: u64, term: u64, body: PeerBody) -> Input {
    Input::Peer(PeerMessage {
        from: NodeId(from),
        to: NodeId(2),
        term: Term(term),
        body,
    })
}

/// Node `from`'s message to `to` in `term`.
fn send(from: u64, to: u64, term: u64, body: PeerBody) -> Effect {
    Effect::Send(PeerMessage {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body,
    })
}

fn accepted(prev_index: u64, match_index: u64) -> PeerBody {
    PeerBody::AppendResponse {
        prev_index: LogIndex(prev_index),
        outcome: AppendOutcome::Accepted {
            match_index: LogIndex(match_index),
        },
    }
}

/// Node 2 of 3 started from `recovered` (its term is the recovered one), made leader of the next
/// term by node 3's votes, and both followers' acceptance of its Noop; effects drained and
/// nothing reported durable. Returns the node and when it became leader.
fn leader_two(prefer_lowest_id: bool, recovered: Recovered) -> (Node, Time) {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut cfg = Config::new(NodeId(2), ids);
    cfg.prefer_lowest_id = prefer_lowest_id;
    let term = recovered.hard_state.term.0 + 1;
    let mut node = Node::new(cfg, recovered).unwrap();
    let now = elect(&mut node, 3);
    let noop = node.last_log().index.0;
    for from in [1, 3] {
        node.handle(now, to_two(from, term, accepted(noop - 1, noop)));
    }
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(noop));
    (node, now)
}

/// [`leader_two`] of term 1 from empty storage: its log is its Noop (1, 1), held by both.
fn fresh_leader_two() -> (Node, Time) {
    leader_two(true, Recovered::default())
}

/// Node 2's heartbeat to each follower, in term `term`, when both hold its log up to `prev`.
fn heartbeats(term: u64, prev: LogPosition, commit: u64) -> Vec<Effect> {
    let body = PeerBody::AppendEntries {
        prev,
        entries: Vec::new(),
        commit: LogIndex(commit),
    };
    vec![send(2, 1, term, body.clone()), send(2, 3, term, body)]
}

fn timeout_now(term: u64) -> Effect {
    send(2, 1, term, PeerBody::TimeoutNow)
}

/// Both followers of node 2 answer a heartbeat at `at`, holding its log up to `matched`.
fn answer_heartbeats(node: &mut Node, at: Time, term: u64, matched: u64) {
    for from in [1, 3] {
        node.handle(at, to_two(from, term, accepted(matched, matched)));
    }
    assert_eq!(drain_unsynced(node), vec![]);
}

/// [`fresh_leader_two`] once it has asked node 1 to stand, at its heartbeat an election time-out
/// after it began leading (both followers answered the heartbeat before). Returns the node and
/// when it began leading.
fn transferring_leader_two() -> (Node, Time) {
    let (mut node, t0) = fresh_leader_two();
    node.handle(t0 + ms(250), Input::Tick);
    drain_unsynced(&mut node);
    answer_heartbeats(&mut node, t0 + ms(250), 1, 1);
    node.handle(t0 + ms(300), Input::Tick);
    drain_unsynced(&mut node);
    assert!(node.is_handing_over());
    (node, t0)
}

// ---------------------------------------------------------------------------------------------
// At the leader.

/// Guards `if leader.transfer.is_some() || now < leader.since + self.cfg.election_timeout {
/// return; }` in `consider_transfer` and the target rule (`**id < self.cfg.id && p.matched ==
/// last && now.saturating_since(p.last_heard) < fresh`) with `begin_transfer` asking at once: a
/// leader with a caught-up lower-id follower only heartbeats until it has led for an election
/// time-out, and at the first heartbeat after that also sends that follower TimeoutNow.
#[test]
fn the_lower_id_follower_is_asked_to_stand_once_the_leader_has_led_an_election_time_out() {
    let (mut node, t0) = fresh_leader_two();
    node.handle(t0 + ms(250), Input::Tick);
    assert_eq!(drain_unsynced(&mut node), heartbeats(1, pos(1, 1), 1));
    assert!(!node.is_handing_over());
    answer_heartbeats(&mut node, t0 + ms(250), 1, 1);
    node.handle(t0 + ms(300), Input::Tick);
    let mut expected = heartbeats(1, pos(1, 1), 1);
    expected.push(timeout_now(1));
    assert_eq!(drain_unsynced(&mut node), expected);
    assert!(node.is_handing_over());
}

/// Guards `p.matched == last` in `consider_transfer` (a successor lacking entries could not win
/// the election it starts) and that the accept that completes its log starts no transfer by
/// itself (`ask_successor_if_caught_up` does nothing without one): TimeoutNow goes out at the
/// first heartbeat after the lower-id follower holds the whole log.
#[test]
fn a_lower_id_follower_behind_is_asked_only_at_a_heartbeat_once_it_holds_the_whole_log() {
    let (mut node, t0) = fresh_leader_two();
    // Client 7's keep-alive (index 2) goes to both followers; node 3 takes it, node 1 does not.
    node.handle(t0, keep_alive(7));
    drain_unsynced(&mut node);
    node.handle(t0 + ms(250), Input::Tick);
    drain_unsynced(&mut node);
    node.handle(t0 + ms(250), to_two(3, 1, accepted(1, 2)));
    node.handle(t0 + ms(250), to_two(1, 1, accepted(0, 1)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    node.handle(t0 + ms(300), Input::Tick);
    assert_eq!(drain_unsynced(&mut node), heartbeats(1, pos(1, 2), 1));
    assert!(!node.is_handing_over());
    // Node 1 catches up: the keep-alive commits and is answered, and nobody is asked yet.
    node.handle(t0 + ms(300), to_two(1, 1, accepted(1, 2)));
    let kept_alive = Effect::Reply {
        conn: ConnId(7),
        response: ClientResponse {
            client: ClientId(7),
            seq: Seq(1),
            result: Ok(Reply::KeptAlive {
                held: Vec::new(),
                revoked: Vec::new(),
            }),
        },
    };
    assert_eq!(drain_unsynced(&mut node), vec![kept_alive]);
    assert!(!node.is_handing_over());
    node.handle(t0 + ms(350), Input::Tick);
    let mut expected = heartbeats(1, pos(1, 2), 2);
    expected.push(timeout_now(1));
    assert_eq!(drain_unsynced(&mut node), expected);
}

/// Guards `now.saturating_since(p.last_heard) < fresh` (two heartbeats) in `consider_transfer`:
/// a lower-id follower that holds the whole log but has not answered lately is not asked.
/// Node 1 (lower id, whole log) last answers at `t0 + answered_ms`, node 3 at 250 ms: the
/// heartbeat at 300 ms goes out, and node 1 is not asked to stand.
fn node_1_answered_at_is_not_asked(answered_ms: u64) {
    let (mut node, t0) = fresh_leader_two();
    node.handle(t0 + ms(answered_ms), to_two(1, 1, accepted(1, 1)));
    drain_unsynced(&mut node);
    node.handle(t0 + ms(250), to_two(3, 1, accepted(1, 1)));
    drain_unsynced(&mut node);
    node.handle(t0 + ms(300), Input::Tick);
    assert_eq!(drain_unsynced(&mut node), heartbeats(1, pos(1, 1), 1));
    assert!(!node.is_handing_over());
}

#[test]
fn a_lower_id_follower_not_heard_within_two_heartbeats_is_not_asked() {
    // Node 1 last answered 150 ms before the heartbeat; node 3 50 ms before.
    node_1_answered_at_is_not_asked(150);
}

/// The boundary of the same rule: answered exactly two heartbeats before is not "within two
/// heartbeats" (`< fresh`, not `<=`).
#[test]
fn a_lower_id_follower_heard_exactly_two_heartbeats_ago_is_not_asked() {
    node_1_answered_at_is_not_asked(200);
}

/// Guards `if !self.cfg.prefer_lowest_id { return; }` in `consider_transfer`: without the
/// preference a leader keeps leading however caught up a lower-id member is.
#[test]
fn without_the_preference_nobody_is_asked() {
    let (mut node, t0) = leader_two(false, Recovered::default());
    node.handle(t0 + ms(250), Input::Tick);
    drain_unsynced(&mut node);
    answer_heartbeats(&mut node, t0 + ms(250), 1, 1);
    node.handle(t0 + ms(300), Input::Tick);
    assert_eq!(drain_unsynced(&mut node), heartbeats(1, pos(1, 1), 1));
    assert!(!node.is_handing_over());
}

/// Guards `self.repeat_transfer_request()` in `on_timers` (`if transfer.asked { self.send(..,
/// TimeoutNow) }`): TimeoutNow may be lost, so every heartbeat of the transfer asks again, and
/// `consider_transfer` starts no second transfer.
#[test]
fn timeout_now_is_repeated_at_every_heartbeat_of_the_transfer() {
    let (mut node, t0) = transferring_leader_two();
    for at in [350, 400] {
        node.handle(t0 + ms(at), Input::Tick);
        let mut expected = heartbeats(1, pos(1, 1), 1);
        expected.push(timeout_now(1));
        assert_eq!(drain_unsynced(&mut node), expected, "at {at} ms");
    }
}

/// Guards `if let Some(transfer) = leader.transfer { ... NotLeader { hint: Some(transfer.to) } }`
/// in `on_client`: during the transfer every request but status is refused with a hint to the
/// successor, before anything is proposed or read.
#[test]
fn clients_are_sent_to_the_successor_and_nothing_is_proposed() {
    let (mut node, t0) = transferring_leader_two();
    let last = node.last_log();
    let at = t0 + ms(300);
    let to_successor = Err(Rejection::NotLeader {
        hint: Some(NodeId(1)),
    });
    let requests = [
        (7, req(7, 1, Op::KeepAlive)),
        (8, req(8, 1, common::acquire("a", None))),
        (
            9,
            req(
                9,
                1,
                Op::Read {
                    file: "f".into(),
                    offset: 0,
                },
            ),
        ),
    ];
    for (client, request) in requests {
        node.handle(
            at,
            Input::Client {
                conn: ConnId(client as u64),
                request,
            },
        );
        let refused = Effect::Reply {
            conn: ConnId(client as u64),
            response: ClientResponse {
                client: ClientId(client),
                seq: Seq(1),
                result: to_successor.clone(),
            },
        };
        assert_eq!(drain_unsynced(&mut node), vec![refused], "client {client}");
    }
    assert_eq!(node.last_log(), last);
}

/// Guards `if leader.timers_paused() { return; }` in `fire_leader_timers` and `if
/// leader.transfer.is_some_and(|t| now >= t.until) { leader.transfer = None; }` in `on_timers`:
/// a lease that runs out during the transfer is not expired then (nothing new is proposed while
/// the successor catches up); the transfer ends an election time-out after it began, given up
/// before that tick's heartbeat (no last TimeoutNow), and the overdue expiry is proposed on the
/// same tick.
#[test]
fn timers_wait_for_the_end_of_the_transfer() {
    // Client 7 holds lock "a" for 350 ms from when node 2 begins leading (term 2, its Noop at 4).
    let sm = client_seven_holding(ms(350), None);
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(1),
            voted_for: None,
        },
        snapshot: Some(Snapshot {
            last: pos(1, 3),
            data: sm.to_bytes().unwrap(),
        }),
        entries: Vec::new(),
    };
    let (mut node, t0) = leader_two(true, recovered);
    node.handle(t0 + ms(250), Input::Tick);
    drain_unsynced(&mut node);
    answer_heartbeats(&mut node, t0 + ms(250), 2, 4);
    node.handle(t0 + ms(300), Input::Tick);
    drain_unsynced(&mut node);
    assert!(node.is_handing_over());

    let mut heartbeat_and_ask = heartbeats(2, pos(2, 4), 4);
    heartbeat_and_ask.push(timeout_now(2));
    // The lease ran out at 350 ms: nothing is proposed.
    node.handle(t0 + ms(350), Input::Tick);
    assert_eq!(drain_unsynced(&mut node), heartbeat_and_ask);
    node.handle(t0 + ms(500), Input::Tick);
    assert_eq!(drain_unsynced(&mut node), heartbeat_and_ask);
    answer_heartbeats(&mut node, t0 + ms(500), 2, 4);
    // The transfer's end: it is given up first (no last request), and on the same tick the
    // lease that ran out while it lasted is expired.
    let end = t0 + ms(600);
    node.handle(end, Input::Tick);
    let expire = Entry {
        term: Term(2),
        index: LogIndex(5),
        command: Command::Expire {
            lock: "a".into(),
            token: FencingToken(1),
            renewals: 0,
        },
    };
    let append = PeerBody::AppendEntries {
        prev: pos(2, 4),
        entries: vec![expire.clone()],
        commit: LogIndex(4),
    };
    let mut heartbeat_then_expire = heartbeats(2, pos(2, 4), 4);
    heartbeat_then_expire.extend([
        send(2, 1, 2, append.clone()),
        send(2, 3, 2, append),
        Effect::Persist(Persist::Entries(vec![expire])),
    ]);
    assert_eq!(drain_unsynced(&mut node), heartbeat_then_expire);
    assert!(!node.is_handing_over());
    assert!(node.is_leader());
}

/// Guards `leader.no_transfer_before` (set when a transfer runs out, checked in
/// `consider_transfer`): a successor that did not take over is not asked again at the next
/// heartbeat, which would keep the leader paused; it is asked again only after
/// `TRANSFER_RETRY_AFTER` election time-outs (3 s here).
#[test]
fn a_transfer_that_ran_out_is_not_retried_for_a_while() {
    let (mut node, t0) = transferring_leader_two();
    node.handle(t0 + ms(500), Input::Tick);
    drain_unsynced(&mut node);
    answer_heartbeats(&mut node, t0 + ms(500), 1, 1);
    node.handle(t0 + ms(600), Input::Tick);
    drain_unsynced(&mut node);
    assert!(!node.is_handing_over());
    // Every heartbeat is answered at once, node 1 holding the whole log; the leader asks again
    // at its first heartbeat after the back-off.
    let timeout_now = send(2, 1, 1, PeerBody::TimeoutNow);
    let mut at = t0 + ms(600);
    let asked_at = loop {
        answer_heartbeats(&mut node, at, 1, 1);
        at = node.next_deadline();
        node.handle(at, Input::Tick);
        if drain_unsynced(&mut node).contains(&timeout_now) {
            break at;
        }
        assert!(node.is_leader() && !node.is_handing_over());
        assert!(at < t0 + ms(4_000), "never asked again");
    };
    // The transfer ran out at 600 ms; ten election time-outs later, at the heartbeat that
    // falls exactly then (`now < no_transfer_before` lets that one through).
    assert_eq!(asked_at, t0 + ms(3_600), "asked again at {asked_at:?}");
    assert!(node.is_handing_over());
}

/// Guards `leader.transfer = None` at `now >= t.until` in `on_timers`: once the transfer has
/// ended the leader takes client requests again and proposes them.
#[test]
fn after_the_transfer_ends_requests_are_proposed_again() {
    let (mut node, t0) = transferring_leader_two();
    node.handle(t0 + ms(500), Input::Tick);
    drain_unsynced(&mut node);
    answer_heartbeats(&mut node, t0 + ms(500), 1, 1);
    node.handle(t0 + ms(600), Input::Tick);
    drain_unsynced(&mut node);
    assert!(!node.is_handing_over());
    let request = req(7, 1, Op::KeepAlive);
    node.handle(
        t0 + ms(600),
        Input::Client {
            conn: ConnId(7),
            request: request.clone(),
        },
    );
    let entry = Entry {
        term: Term(1),
        index: LogIndex(2),
        command: Command::Client(request),
    };
    let append = PeerBody::AppendEntries {
        prev: pos(1, 1),
        entries: vec![entry.clone()],
        commit: LogIndex(1),
    };
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            send(2, 1, 1, append.clone()),
            send(2, 3, 1, append),
            Effect::Persist(Persist::Entries(vec![entry])),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// At a follower.

/// Node 1 of 3 following node 2, leader of term 1, heard at 10 ms; effects drained.
fn follower_of_two() -> (Node, Time) {
    let mut node = fresh_node_of_three();
    let now = Time::from_millis(10);
    let heartbeat = PeerBody::AppendEntries {
        prev: LogPosition::default(),
        entries: Vec::new(),
        commit: LogIndex(0),
    };
    node.handle(now, peer(2, 1, heartbeat));
    drain_unsynced(&mut node);
    assert_eq!(node.leader(), Some(NodeId(2)));
    (node, now)
}

/// Node 1's vote request to `to` in `term`, sent on a TimeoutNow.
fn transfer_vote(to: u64, term: u64) -> Effect {
    let body = PeerBody::RequestVote {
        pre: false,
        last: LogPosition::default(),
        transfer: true,
    };
    send(1, to, term, body)
}

fn hard_state(term: u64, voted_for: Option<u64>) -> Effect {
    Effect::Persist(Persist::HardState(HardState {
        term: Term(term),
        voted_for: voted_for.map(NodeId),
    }))
}

/// Guards `PeerBody::TimeoutNow => if self.role.followed().is_some_and(|heard| heard.id ==
/// msg.from) { self.start_election(true); }` in `on_peer`: a follower told by its leader starts
/// an election at once, with no pre-vote and well before its election time-out: it persists the
/// next term and its own vote, then asks every peer, marking the requests as a transfer.
#[test]
fn a_follower_told_by_its_leader_stands_at_once() {
    let (mut node, now) = follower_of_two();
    assert!(now + ms(300) <= node.next_deadline());
    node.handle(now, peer(2, 1, PeerBody::TimeoutNow));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            hard_state(2, Some(1)),
            transfer_vote(2, 2),
            transfer_vote(3, 2)
        ]
    );
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));
}

/// Guards the same condition's other side: TimeoutNow from a member that is not this node's
/// leader, to a node that knows no leader, to a leader, or of an older term (`answer_stale`
/// ignores it) does nothing.
#[test]
fn timeout_now_from_anyone_but_the_leader_does_nothing() {
    let (mut node, now) = follower_of_two();
    node.handle(now, peer(3, 1, PeerBody::TimeoutNow));
    node.handle(now, peer(2, 0, PeerBody::TimeoutNow));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!((node.role(), node.term()), (Role::Follower, Term(1)));
    assert_eq!(node.leader(), Some(NodeId(2)));

    let mut leaderless = fresh_node_of_three();
    leaderless.handle(now, Input::Tick);
    leaderless.handle(now, peer(2, 0, PeerBody::TimeoutNow));
    assert_eq!(drain_unsynced(&mut leaderless), vec![]);
    assert_eq!(leaderless.role(), Role::Follower);

    let (mut leader, now) = leader_of_three();
    leader.handle(now, peer(2, 1, PeerBody::TimeoutNow));
    assert_eq!(drain_unsynced(&mut leader), vec![]);
    assert!(leader.is_leader());
}

/// Guards `PeerBody::TimeoutNow` among the `from_leader` messages in `on_peer`: TimeoutNow of a
/// newer term comes from that term's leader, so the node first follows it in that term
/// (persisting the term) and then stands as it asks.
#[test]
fn timeout_now_of_a_newer_term_is_from_that_terms_leader() {
    let (mut node, now) = follower_of_two();
    node.handle(now, peer(3, 2, PeerBody::TimeoutNow));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            hard_state(2, None),
            hard_state(3, Some(1)),
            transfer_vote(2, 3),
            transfer_vote(3, 3)
        ]
    );
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(3)));
}
