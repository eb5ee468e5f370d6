//! End-to-end smoke tests of the core through its public API, with a trivial in-test network.

mod common;

use common::poll_synchronously;
use dlm_core::*;
use std::collections::VecDeque;
use std::time::Duration;

fn req(client: u128, seq: u64, op: Op) -> ClientRequest {
    ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op,
    }
}

fn acquire(lock: &str, wait: Option<Duration>) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease: Duration::from_secs(1),
        wait,
    }
}

struct Cluster {
    nodes: Vec<Node>,
    wire: VecDeque<message::PeerMessage>,
    replies: Vec<(ConnId, ClientResponse)>,
    now: Time,
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|id| Node::new(Config::new(*id, ids.clone()), Recovered::default()).unwrap())
            .collect();
        Cluster {
            nodes,
            wire: VecDeque::new(),
            replies: Vec::new(),
            now: Time::ZERO,
        }
    }

    fn drain(&mut self) {
        loop {
            for node in &mut self.nodes {
                while let Some(effect) = poll_synchronously(node, self.now) {
                    match effect {
                        Effect::Send(msg) => self.wire.push_back(msg),
                        Effect::Reply { conn, response } => self.replies.push((conn, response)),
                        _ => {}
                    }
                }
            }
            let Some(msg) = self.wire.pop_front() else {
                return;
            };
            let to = (msg.to.0 - 1) as usize;
            self.nodes[to].handle(self.now, Input::Peer(msg));
        }
    }

    fn run_until(&mut self, t: Time) {
        while self.now < t {
            let next = self
                .nodes
                .iter()
                .map(|n| n.next_deadline())
                .min()
                .unwrap()
                .max(self.now)
                .min(t);
            self.now = next;
            for node in &mut self.nodes {
                node.handle(next, Input::Tick);
            }
            self.drain();
            if next == t {
                break;
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.is_leader())
    }

    fn request(&mut self, node: usize, conn: u64, request: ClientRequest) {
        self.nodes[node].handle(
            self.now,
            Input::Client {
                conn: ConnId(conn),
                request,
            },
        );
        self.drain();
    }
}

#[test]
fn single_node_grants_queues_and_hands_off() {
    let mut c = Cluster::new(1);
    c.run_until(Time::from_millis(1));
    assert_eq!(c.leader(), Some(0));
    c.request(0, 1, req(1, 1, acquire("a", None)));
    c.request(0, 2, req(2, 1, acquire("a", Some(Duration::from_secs(10)))));
    c.request(0, 3, req(3, 1, acquire("a", None)));
    let token = match &c.replies[0].1.result {
        Ok(Reply::Granted { token, .. }) => *token,
        other => panic!("{other:?}"),
    };
    assert_eq!(c.replies[1].1.result, Err(Rejection::Busy));
    c.request(
        0,
        1,
        req(
            1,
            2,
            Op::Release {
                lock: "a".into(),
                token,
            },
        ),
    );
    assert_eq!(
        c.replies[2].1.result,
        Ok(Reply::Granted {
            token: FencingToken(2),
            lease: Duration::from_secs(1)
        })
    );
    assert_eq!(c.replies[2].0, ConnId(2));
    assert_eq!(c.replies[3].1.result, Ok(Reply::Released));
}

#[test]
fn three_nodes_elect_lowest_id_and_replicate() {
    let mut c = Cluster::new(3);
    c.run_until(Time::from_millis(2_000));
    assert_eq!(c.leader(), Some(0));
    c.request(0, 1, req(1, 1, acquire("a", None)));
    let Ok(Reply::Granted { token, .. }) = c.replies[0].1.result.clone() else {
        panic!("{:?}", c.replies)
    };
    c.request(
        0,
        1,
        req(
            1,
            2,
            Op::Append {
                lock: "a".into(),
                token,
                file: "f".into(),
                data: b"hello".to_vec(),
            },
        ),
    );
    assert_eq!(c.replies[1].1.result, Ok(Reply::Appended { offset: 0 }));
    c.run_until(Time::from_millis(2_200));
    for node in &c.nodes {
        assert_eq!(node.state_machine().file("f").unwrap().data, b"hello");
    }
    // The lease runs out without keep-alives: the leader expires it.
    c.run_until(Time::from_millis(4_000));
    assert!(c.nodes[0].state_machine().lock("a").is_none());
}
