//! A single in-process node driven through the sans-IO core API, printing what happens: clients
//! queue for a lock, a lease expires, and a stale fencing token is refused.
//!
//! Run: `cargo run --release --example sans_io`

use dlm::{
    ClientId, ClientRequest, ClientResponse, Config, ConnId, Effect, FencingToken, Input, Node,
    NodeId, Op, Recovered, Rejection, Reply, Seq, Time,
};
use std::time::Duration;

struct Demo {
    node: Node,
    now: Time,
    seqs: [u64; 4],
}

impl Demo {
    fn drain(&mut self) -> Vec<(ConnId, ClientResponse)> {
        let mut replies = Vec::new();
        while let Some(effect) = self.node.poll_effect() {
            match effect {
                Effect::Reply { conn, response } => replies.push((conn, response)),
                // A real driver writes and syncs here; this one keeps nothing, and reports the
                // persist durable at once so that the leader may count its own copy.
                Effect::Persist(persist) => {
                    if let Some(position) = persist.log_position() {
                        self.node.handle(self.now, Input::Persisted(position));
                    }
                }
                Effect::Send(_) | Effect::Applied(_) => {}
            }
        }
        replies
    }

    fn ask(&mut self, client: usize, op: Op) -> Vec<(ConnId, ClientResponse)> {
        self.seqs[client] += 1;
        let request = ClientRequest {
            client: ClientId(client as u128 + 1),
            seq: Seq(self.seqs[client]),
            acked_below: Seq(self.seqs[client]),
            pending: Vec::new(),
            op,
        };
        self.node.handle(
            self.now,
            Input::Client {
                conn: ConnId(client as u64),
                request,
            },
        );
        self.drain()
    }

    fn advance(&mut self, by: Duration) -> Vec<(ConnId, ClientResponse)> {
        let until = self.now + by;
        let mut replies = Vec::new();
        loop {
            let next = self.node.next_deadline().max(self.now);
            if next > until {
                break;
            }
            self.now = next;
            self.node.handle(self.now, Input::Tick);
            replies.extend(self.drain());
        }
        self.now = until;
        replies
    }
}

fn show(replies: &[(ConnId, ClientResponse)]) {
    for (conn, response) in replies {
        let what = match &response.result {
            Ok(Reply::Granted { token, lease }) => {
                format!("granted, token {token}, lease {lease:?}")
            }
            Ok(other) => format!("{other:?}"),
            Err(refusal) => format!("refused: {refusal}"),
        };
        println!("  client {} <- {what}", conn.0 + 1);
    }
}

fn token_of(replies: &[(ConnId, ClientResponse)]) -> Option<FencingToken> {
    replies.iter().find_map(|(_, r)| match r.result {
        Ok(Reply::Granted { token, .. }) => Some(token),
        _ => None,
    })
}

fn main() {
    let node = Node::new(Config::single(NodeId(1)), Recovered::default()).expect("valid config");
    let mut demo = Demo {
        node,
        now: Time::ZERO,
        seqs: [0; 4],
    };
    demo.advance(Duration::from_millis(1));
    println!("node 1 is leader: {}", demo.node.is_leader());

    let lease = Duration::from_secs(2);
    let forever = Some(Duration::MAX);
    println!("\nclient 1 takes lock \"db\"; clients 2 and 3 queue behind it:");
    let mut r = demo.ask(
        0,
        Op::Acquire {
            lock: "db".into(),
            lease,
            wait: forever,
        },
    );
    let t1 = token_of(&r).expect("client 1 is granted");
    r.extend(demo.ask(
        1,
        Op::Acquire {
            lock: "db".into(),
            lease,
            wait: forever,
        },
    ));
    r.extend(demo.ask(
        2,
        Op::Acquire {
            lock: "db".into(),
            lease,
            wait: forever,
        },
    ));
    r.extend(demo.ask(
        3,
        Op::Acquire {
            lock: "db".into(),
            lease,
            wait: None,
        },
    ));
    show(&r);
    println!("  (client 4 tried without waiting and was told busy)");

    println!("\nclient 1 appends to \"journal\" under token {t1}, then releases:");
    let data = b"client 1 was here\n".to_vec();
    let append = Op::Append {
        lock: "db".into(),
        token: t1,
        file: "journal".into(),
        data,
    };
    let mut r = demo.ask(0, append);
    r.extend(demo.ask(
        0,
        Op::Release {
            lock: "db".into(),
            token: t1,
        },
    ));
    show(&r);
    let t2 = token_of(&r).expect("client 2 is next");

    println!("\nclient 2 holds token {t2} but stops renewing; 2 s later its lease expires:");
    let r = demo.advance(Duration::from_millis(2_100));
    show(&r);

    println!("\nclient 2 wakes up and appends with its old token {t2}:");
    let data = b"client 2 was here\n".to_vec();
    let r = demo.ask(
        1,
        Op::Append {
            lock: "db".into(),
            token: t2,
            file: "journal".into(),
            data,
        },
    );
    show(&r);
    let refused = matches!(
        r.first().map(|(_, resp)| &resp.result),
        Some(Err(Rejection::StaleToken { .. } | Rejection::NotHolder))
    );

    let journal = demo
        .node
        .state_machine()
        .file("journal")
        .map(|f| f.data.clone())
        .unwrap_or_default();
    println!(
        "\njournal holds {} bytes: {:?}",
        journal.len(),
        String::from_utf8_lossy(&journal)
    );
    if refused && journal == b"client 1 was here\n" {
        println!("ok: FIFO hand-off, lease expiry and fencing all behaved");
    } else {
        println!("FAILED: the stale append was not refused");
        std::process::exit(1);
    }
}
