//! The TCP transport: peer links, client calls, pipelining.

mod common;

use common::*;
use dlm_core::runtime::{ClientTransport, Incoming, Transport, TransportError};
use dlm_core::{NodeId, Seq};
use dlm_transport_tcp::TcpTransport;

#[tokio::test]
async fn peer_messages_flow_both_ways() {
    let mut a = TcpTransport::bind(config(1)).await.unwrap();
    let mut b = TcpTransport::bind(config(2)).await.unwrap();
    a.set_peer(NodeId(2), b.local_addr());
    b.set_peer(NodeId(1), a.local_addr());
    for t in 1..=3 {
        a.send(msg(1, 2, t)).await;
    }
    b.send(msg(2, 1, 9)).await;
    for t in 1..=3 {
        assert_eq!(within(b.recv()).await, Some(Incoming::Peer(msg(1, 2, t))));
    }
    assert_eq!(within(a.recv()).await, Some(Incoming::Peer(msg(2, 1, 9))));
}

#[tokio::test]
async fn a_message_to_an_unknown_peer_is_dropped_quietly() {
    let a = TcpTransport::bind(config(1)).await.unwrap();
    a.send(msg(1, 3, 1)).await;
    assert_eq!(a.peer_stats(NodeId(3)), None);
}

#[tokio::test]
async fn client_call_gets_the_reply_the_node_sends() {
    let mut node = TcpTransport::bind(config(1)).await.unwrap();
    let client = client_for(&[(1, node.local_addr())]);
    let call = tokio::spawn(async move { client.call(NodeId(1), request(3)).await });
    let Some(Incoming::Client { conn, request }) = within(node.recv()).await else {
        panic!("expected a client request");
    };
    assert_eq!(request, common::request(3));
    node.reply(conn, answer(&request)).await;
    let response = within(call).await.unwrap().unwrap();
    assert_eq!(response, answer(&request));
}

#[tokio::test]
async fn pipelined_calls_are_matched_by_seq_whatever_the_order() {
    let mut node = TcpTransport::bind(config(1)).await.unwrap();
    let client = std::sync::Arc::new(client_for(&[(1, node.local_addr())]));
    let calls: Vec<_> = (1..=40)
        .map(|s| {
            let client = client.clone();
            tokio::spawn(async move { client.call(NodeId(1), request(s)).await })
        })
        .collect();
    let mut got = Vec::new();
    while got.len() < 40 {
        if let Some(Incoming::Client { conn, request }) = within(node.recv()).await {
            got.push((conn, request));
        }
    }
    // All on one connection, answered in reverse.
    assert!(got.iter().all(|(c, _)| *c == got[0].0));
    assert_eq!(node.client_connections(), 1);
    for (conn, request) in got.iter().rev() {
        node.reply(*conn, answer(request)).await;
    }
    for (i, call) in calls.into_iter().enumerate() {
        let response = within(call).await.unwrap().unwrap();
        assert_eq!(response.seq, Seq(i as u64 + 1));
    }
}

#[tokio::test]
async fn a_call_to_an_unknown_node_fails_at_once() {
    let client = client_for(&[]);
    assert_eq!(
        client.call(NodeId(4), request(1)).await,
        Err(TransportError::UnknownNode(NodeId(4)))
    );
}

#[tokio::test]
async fn a_dead_connection_fails_its_pending_calls() {
    let mut node = TcpTransport::bind(config(1)).await.unwrap();
    let client = std::sync::Arc::new(client_for(&[(1, node.local_addr())]));
    let calls: Vec<_> = (1..=5)
        .map(|s| {
            let client = client.clone();
            tokio::spawn(async move { client.call(NodeId(1), request(s)).await })
        })
        .collect();
    for _ in 0..5 {
        within(node.recv()).await;
    }
    drop(node);
    for call in calls {
        let result = within(call).await.unwrap();
        assert!(
            matches!(
                result,
                Err(TransportError::Connection {
                    node: NodeId(1),
                    ..
                })
            ),
            "{result:?}"
        );
    }
}
