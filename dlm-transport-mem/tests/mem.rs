//! The in-process network: delivery and each fault control.

use dlm_core::message::{PeerBody, PeerMessage};
use dlm_core::runtime::{ClientTransport, Incoming, Transport, TransportError};
use dlm_core::NodeId;
use dlm_core::{ClientId, ClientRequest, ClientResponse, Op, Reply, Seq, Term};
use dlm_transport_mem::{LinkFaults, MemNetwork, MemNode};
use std::time::Duration;

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);

fn msg(from: NodeId, to: NodeId, term: u64) -> PeerMessage {
    PeerMessage {
        from,
        to,
        term: Term(term),
        body: PeerBody::TimeoutNow,
    }
}

fn request(seq: u64) -> ClientRequest {
    ClientRequest {
        client: ClientId(7),
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: Op::Status,
    }
}

fn drain(node: &mut MemNode) -> Vec<Incoming> {
    std::iter::from_fn(|| node.try_recv()).collect()
}

/// Plays a node that answers every client request with `Released`.
fn spawn_echo(mut node: MemNode) {
    tokio::spawn(async move {
        while let Some(incoming) = node.recv().await {
            if let Incoming::Client { conn, request } = incoming {
                let response = ClientResponse {
                    client: request.client,
                    seq: request.seq,
                    result: Ok(Reply::Released),
                };
                node.reply(conn, response).await;
            }
        }
    });
}

#[tokio::test(start_paused = true)]
async fn peer_messages_flow_both_ways() {
    let net = MemNetwork::new(1);
    let mut a = net.node(A);
    let mut b = net.node(B);
    a.send(msg(A, B, 1)).await;
    b.send(msg(B, A, 2)).await;
    assert_eq!(drain(&mut b), vec![Incoming::Peer(msg(A, B, 1))]);
    assert_eq!(drain(&mut a), vec![Incoming::Peer(msg(B, A, 2))]);
}

#[tokio::test(start_paused = true)]
async fn client_call_gets_the_nodes_answer() {
    let net = MemNetwork::new(1);
    spawn_echo(net.node(A));
    let client = net.client();
    let response = client.call(A, request(5)).await.unwrap();
    assert_eq!(response.seq, Seq(5));
    assert_eq!(response.result, Ok(Reply::Released));
    assert_eq!(
        client.call(NodeId(9), request(6)).await,
        Err(TransportError::UnknownNode(NodeId(9)))
    );
}

#[tokio::test(start_paused = true)]
async fn many_concurrent_calls_are_matched_by_seq() {
    let net = MemNetwork::new(3);
    spawn_echo(net.node(A));
    // Random delays reorder the answers; each call must still get its own.
    net.set_default_faults(LinkFaults {
        delay: (Duration::from_millis(1), Duration::from_millis(50)),
        ..LinkFaults::NONE
    });
    let client = net.client();
    let calls = (1..=32).map(|s| client.call(A, request(s)));
    let answers = futures::future::join_all(calls).await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap().seq, Seq(i as u64 + 1));
    }
}

#[tokio::test(start_paused = true)]
async fn drop_one_loses_everything_and_zero_nothing() {
    let net = MemNetwork::new(1);
    let a = net.node(A);
    let mut b = net.node(B);
    net.set_drop(A, B, 1.0);
    for t in 0..10 {
        a.send(msg(A, B, t)).await;
    }
    assert!(drain(&mut b).is_empty());
    assert_eq!(net.stats().dropped, 10);
    net.set_drop(A, B, 0.0);
    a.send(msg(A, B, 11)).await;
    assert_eq!(drain(&mut b).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn partial_drop_is_seeded() {
    let run = |seed| async move {
        let net = MemNetwork::new(seed);
        let a = net.node(A);
        let mut b = net.node(B);
        net.set_drop(A, B, 0.5);
        for t in 0..200 {
            a.send(msg(A, B, t)).await;
        }
        drain(&mut b)
    };
    let first = run(9).await;
    assert!(first.len() > 50 && first.len() < 150, "{}", first.len());
    assert_eq!(first, run(9).await);
}

#[tokio::test(start_paused = true)]
async fn duplicate_one_delivers_twice() {
    let net = MemNetwork::new(1);
    let a = net.node(A);
    let mut b = net.node(B);
    net.set_duplicate(A, B, 1.0);
    a.send(msg(A, B, 1)).await;
    let got = drain(&mut b);
    assert_eq!(got, vec![Incoming::Peer(msg(A, B, 1)); 2]);
}

#[tokio::test(start_paused = true)]
async fn a_duplicated_answer_reaches_the_call_once() {
    let net = MemNetwork::new(1);
    spawn_echo(net.node(A));
    let client = net.client();
    net.set_duplicate(A, client.endpoint(), 1.0);
    assert!(client.call(A, request(1)).await.is_ok());
    assert!(client.call(A, request(2)).await.is_ok());
    assert_eq!(net.stats().duplicated, 2);
}

#[tokio::test(start_paused = true)]
async fn cut_is_one_way_and_heals() {
    let net = MemNetwork::new(1);
    let mut a = net.node(A);
    let mut b = net.node(B);
    net.cut(A, B);
    a.send(msg(A, B, 1)).await;
    b.send(msg(B, A, 2)).await;
    assert!(drain(&mut b).is_empty());
    assert_eq!(drain(&mut a).len(), 1);
    net.heal(A, B);
    a.send(msg(A, B, 3)).await;
    assert_eq!(drain(&mut b).len(), 1);
    net.cut_both(A, B);
    a.send(msg(A, B, 4)).await;
    b.send(msg(B, A, 5)).await;
    assert!(drain(&mut a).is_empty() && drain(&mut b).is_empty());
    net.heal_both(A, B);
    b.send(msg(B, A, 6)).await;
    assert_eq!(drain(&mut a).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn isolate_cuts_peers_and_clients_until_rejoin() {
    let net = MemNetwork::new(1);
    let mut a = net.node(A);
    let mut b = net.node(B);
    let client = net.client();
    net.isolate(A);
    a.send(msg(A, B, 1)).await;
    b.send(msg(B, A, 2)).await;
    let lost = tokio::time::timeout(Duration::from_secs(5), client.call(A, request(1))).await;
    assert!(
        lost.is_err(),
        "a call to an isolated node must not be answered"
    );
    assert!(drain(&mut a).is_empty() && drain(&mut b).is_empty());
    net.rejoin(A);
    b.send(msg(B, A, 3)).await;
    assert_eq!(drain(&mut a), vec![Incoming::Peer(msg(B, A, 3))]);
    spawn_echo(a);
    assert!(client.call(A, request(2)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn delay_holds_a_message_back_for_its_time() {
    let net = MemNetwork::new(1);
    let a = net.node(A);
    let mut b = net.node(B);
    let d = Duration::from_millis(100);
    net.set_delay(A, B, d, d);
    let start = tokio::time::Instant::now();
    a.send(msg(A, B, 1)).await;
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.recv().await, Some(Incoming::Peer(msg(A, B, 1))));
    // Virtual time: the paused clock advanced exactly to the delivery.
    assert_eq!(start.elapsed(), d);
    assert_eq!(net.stats().delivered, 1);
}
