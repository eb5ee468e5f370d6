//! Connections whose other end falls silent without closing, as when packets are dropped with no
//! reset (a pulled cable, a black-holing switch): they are closed and replaced, rather than
//! left to TCP's retransmission back-off. The silent ends here are raw sockets that complete
//! the handshake and then read without ever writing or closing. Real time bounds only the hang
//! guards; no assertion depends on how fast anything is.

mod common;

use common::*;
use dlm_core::runtime::{ClientTransport, Incoming, Transport, TransportError};
use dlm_core::{ClientRequest, NodeId};
use dlm_transport_tcp::wire::{self, HelloAnswer, HelloRole};
use dlm_transport_tcp::{TcpClient, TcpClientConfig, TcpTransport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Accepts one connection and plays a node that accepts its hello; returns the caller's role.
async fn accept_hello(listener: &TcpListener) -> (TcpStream, HelloRole) {
    let (mut stream, _) = listener.accept().await.unwrap();
    let hello: wire::Hello = wire::read_frame(&mut stream, wire::HANDSHAKE_MAX_FRAME)
        .await
        .unwrap()
        .expect("a hello");
    let accepted = wire::encode_frame(&HelloAnswer::Accepted, wire::HANDSHAKE_MAX_FRAME).unwrap();
    stream.write_all(&accepted).await.unwrap();
    (stream, hello.role)
}

/// Reads and discards whatever arrives, never writing, until the other end closes.
fn drain_silently(mut stream: TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        // Held open until the other end goes; dropping it now is no signal to anyone.
        drop(stream);
    })
}

#[tokio::test]
async fn a_link_to_a_peer_that_falls_silent_is_dialed_again_on_a_fresh_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = TcpTransport::bind(config(1)).await.unwrap();
    node.set_peer(NodeId(2), listener.local_addr().unwrap());

    let (mut first, role) = within(accept_hello(&listener)).await;
    assert_eq!(role, HelloRole::Peer(NodeId(1)));
    // The link speaks first even with nothing to send, so that the peer can hear it...
    let mut signal = [0u8; 4];
    within(first.read_exact(&mut signal)).await.unwrap();
    assert_eq!(signal, wire::PING);
    node.send(msg(1, 2, 1)).await;
    // ...but this peer never answers, nor closes: the link must give it up by itself.
    let _silent = drain_silently(first);

    let (_second, role) = within(accept_hello(&listener)).await;
    assert_eq!(role, HelloRole::Peer(NodeId(1)));
}

#[tokio::test]
async fn an_inbound_peer_connection_silent_after_the_handshake_is_closed() {
    let node = TcpTransport::bind(config(1)).await.unwrap();
    let (mut raw, answer) =
        raw_handshake(node.local_addr(), &hello(HelloRole::Peer(NodeId(2)))).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    // A peer that never pinged is sent nothing, and is closed for its silence.
    let mut got = Vec::new();
    within(async {
        let mut buf = [0u8; 256];
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn the_node_answers_a_peer_ping_with_a_pong_every_ping_interval() {
    let mut cfg = config(1);
    // Long enough that this test's own pace cannot get it closed for silence.
    cfg.silence_timeout = Duration::from_secs(3600);
    let node = TcpTransport::bind(cfg).await.unwrap();
    let (mut raw, answer) =
        raw_handshake(node.local_addr(), &hello(HelloRole::Peer(NodeId(2)))).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    raw.write_all(&wire::PING).await.unwrap();
    // One ping, and the signals keep coming.
    for _ in 0..3 {
        let mut signal = [0u8; 4];
        within(raw.read_exact(&mut signal)).await.unwrap();
        assert_eq!(signal, wire::PONG);
    }
}

/// A client of one fake node, with the default liveness settings.
fn client_of(addr: SocketAddr) -> TcpClient {
    TcpClient::new(TcpClientConfig::new(
        CLUSTER,
        HashMap::from([(NodeId(1), addr)]),
    ))
}

#[tokio::test]
async fn a_client_connection_silent_while_a_call_waits_is_failed_and_replaced() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Arc::new(client_of(listener.local_addr().unwrap()));

    let first_call = {
        let client = client.clone();
        tokio::spawn(async move { client.call(NodeId(1), request(1)).await })
    };
    let (first, role) = within(accept_hello(&listener)).await;
    assert_eq!(role, HelloRole::Client);
    let _silent = drain_silently(first);
    let result = within(first_call).await.unwrap();
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

    // The retry does not go back into the silent socket.
    let retry = {
        let client = client.clone();
        tokio::spawn(async move { client.call(NodeId(1), request(1)).await })
    };
    let (second, role) = within(accept_hello(&listener)).await;
    assert_eq!(role, HelloRole::Client);
    // This one answers, and the retried call gets its answer.
    within(answer_one(second)).await;
    let result = within(retry).await.unwrap();
    assert_eq!(result, Ok(answer(&request(1))));
}

/// Plays a node that answers the first request on `stream`, ignoring the client's pings.
async fn answer_one(mut stream: TcpStream) {
    let request: ClientRequest = wire::read_frame(&mut stream, usize::MAX)
        .await
        .unwrap()
        .expect("a request");
    let frame = wire::encode_frame(&answer(&request), usize::MAX).unwrap();
    stream.write_all(&frame).await.unwrap();
    // Kept open until the client is done with it.
    drain_silently(stream);
}

#[tokio::test]
async fn a_call_the_node_holds_longer_than_the_silence_bound_still_gets_its_answer() {
    // As a waiting acquire does: the node answers pings meanwhile, so the connection lives.
    let mut node = TcpTransport::bind(config(1)).await.unwrap();
    // The default bound, 300 ms.
    let client = Arc::new(client_of(node.local_addr()));
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.call(NodeId(1), request(7)).await })
    };
    let Some(Incoming::Client { conn, request }) = within(node.recv()).await else {
        panic!("expected a client request");
    };
    // Held for more than three silence bounds before the answer.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    node.reply(conn, answer(&request)).await;
    let result = within(call).await.unwrap();
    assert_eq!(result, Ok(answer(&request)));
    assert_eq!(node.client_connections(), 1);
}
