//! Copies of messages on extra connections (`Duplicates`): each peer message and each client
//! request goes out on every connection the policy asks for, the extra connections
//! authenticate as the first, and a client takes one answer per call however many come.
//! (When the adaptive policy switches copies on and off is tested in the crate's unit tests.)

mod common;

use common::*;
use dlm_core::runtime::{ClientTransport, Incoming, Transport};
use dlm_core::{ClientRequest, ClientResponse, ConnId, NodeId, Reply, Seq};
use dlm_transport_tcp::{ClusterSecret, Duplicates, TcpClient, TcpClientConfig, TcpTransport};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

const TWO: Duplicates = Duplicates::Always { connections: 2 };
const SECRET: &str = "orchid lantern basalt meadow 4471";

fn secret() -> ClusterSecret {
    ClusterSecret::new(SECRET).unwrap()
}

fn two_lane_client(addr: SocketAddr) -> TcpClient {
    let mut c = TcpClientConfig::new(CLUSTER, HashMap::from([(NodeId(1), addr)]));
    c.secret = Some(secret());
    c.duplicates = TWO;
    TcpClient::new(c)
}

/// The next client request the node hears.
async fn next_request(node: &mut TcpTransport) -> (ConnId, ClientRequest) {
    loop {
        if let Some(Incoming::Client { conn, request }) = within(node.recv()).await {
            return (conn, request);
        }
    }
}

fn released(request: &ClientRequest) -> ClientResponse {
    answer(request)
}

/// An answer that tells which copy it answered.
fn at_offset(request: &ClientRequest, offset: u64) -> ClientResponse {
    ClientResponse {
        result: Ok(Reply::Appended { offset }),
        ..answer(request)
    }
}

#[tokio::test]
async fn every_peer_message_goes_out_on_two_authenticated_connections() {
    let mut sender = config(1);
    sender.secret = Some(secret());
    sender.duplicates = TWO;
    let mut receiver = config(2);
    receiver.secret = Some(secret());
    let a = TcpTransport::bind(sender).await.unwrap();
    let mut b = TcpTransport::bind(receiver).await.unwrap();
    a.set_peer(NodeId(2), b.local_addr());
    for term in 1..=3 {
        a.send(msg(1, 2, term)).await;
    }
    // Each message twice, once per connection; the two connections may interleave.
    let mut got = HashMap::new();
    for _ in 0..6 {
        if let Some(Incoming::Peer(m)) = within(b.recv()).await {
            *got.entry(m.term.0).or_insert(0) += 1;
        }
    }
    assert_eq!(got, HashMap::from([(1, 2), (2, 2), (3, 2)]));
}

#[tokio::test]
async fn a_call_goes_out_on_two_connections_and_takes_one_answer() {
    let mut node_config = config(1);
    node_config.secret = Some(secret());
    let mut node = TcpTransport::bind(node_config).await.unwrap();
    let client = Arc::new(two_lane_client(node.local_addr()));
    // The extra connection opens in the background, from the first call on: answer calls
    // until a request comes on a second connection (with the secret: it authenticated too).
    let mut conns = HashSet::new();
    let mut seq = 0;
    // Bounded, so that a client that never opens it fails the test rather than hangs it.
    while conns.len() < 2 {
        assert!(seq < 200, "no request came on a second connection");
        seq += 1;
        let calling = client.clone();
        let call = tokio::spawn(async move { calling.call(NodeId(1), request(seq)).await });
        loop {
            let (conn, request) = next_request(&mut node).await;
            conns.insert(conn);
            // Copies of earlier calls may still come in.
            if request.seq == Seq(seq) {
                node.reply(conn, released(&request)).await;
                break;
            }
        }
        assert_eq!(within(call).await.unwrap().unwrap().seq, Seq(seq));
    }
    let warm_up = seq;
    // Now every call goes out on both connections. Answer each copy, differently: the call
    // returns one of them, and the others (each copied to both connections by the node) are
    // ignored, not taken for the answer of the next call.
    for round in 0..3 {
        seq += 1;
        let calling = client.clone();
        let call = tokio::spawn(async move { calling.call(NodeId(1), request(seq)).await });
        let mut copies = HashSet::new();
        while copies.len() < 2 {
            let (conn, request) = next_request(&mut node).await;
            if request.seq.0 <= warm_up {
                continue;
            }
            assert_eq!(request.seq, Seq(seq), "round {round}");
            assert!(copies.insert(conn), "two copies on one connection");
            let token = if copies.len() == 1 {
                100 + seq
            } else {
                200 + seq
            };
            node.reply(conn, at_offset(&request, token)).await;
        }
        assert_eq!(copies, conns);
        let response = within(call).await.unwrap().unwrap();
        assert_eq!(response.seq, Seq(seq));
        let Ok(Reply::Appended { offset }) = response.result else {
            panic!("unexpected answer {response:?}");
        };
        assert!(offset == 100 + seq || offset == 200 + seq, "{offset}");
    }
    assert_eq!(node.client_connections(), 2);
}
