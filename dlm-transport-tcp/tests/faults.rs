//! The TCP transport under bad input and failures: the node refuses cleanly and keeps serving.

mod common;

use common::*;
use dlm_core::message::{PeerBody, PeerMessage};
use dlm_core::runtime::{ClientTransport, Incoming, Transport, TransportError};
use dlm_core::{FencingToken, FileName, LockName, LogPosition, NodeId, Op, Term};
use dlm_transport_tcp::wire::{self, HelloAnswer, HelloRole};
use dlm_transport_tcp::{TcpClient, TcpClientConfig, TcpTransport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// A node that echoes, and a fresh client's call to it succeeds: the node is still serving.
async fn still_serving(addr: SocketAddr) {
    let client = client_for(&[(1, addr)]);
    let response = within(client.call(NodeId(1), request(100))).await.unwrap();
    assert_eq!(response, answer(&request(100)));
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_only_that_connection() {
    let mut cfg = config(1);
    cfg.max_frame = 1024;
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);

    // A client whose own limit is larger sends a request the node must refuse.
    let big = TcpClient::new(TcpClientConfig::new(
        CLUSTER,
        HashMap::from([(NodeId(1), addr)]),
    ));
    let mut req = request(1);
    req.op = Op::Append {
        lock: LockName::new("l"),
        token: FencingToken(1),
        file: FileName::new("f"),
        data: vec![7; 4096],
    };
    let result = within(big.call(NodeId(1), req)).await;
    assert!(
        matches!(result, Err(TransportError::Connection { .. })),
        "{result:?}"
    );

    // The same happens on a raw connection announcing a huge frame.
    let (mut raw, answer) = raw_handshake(addr, &hello(HelloRole::Client)).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    raw.write_all(&1_000_000u32.to_be_bytes()).await.unwrap();
    within(closed_by_node(&mut raw)).await;

    still_serving(addr).await;
}

#[tokio::test]
async fn garbage_bytes_are_refused_and_the_node_stays_up() {
    let node = TcpTransport::bind(config(1)).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    within(closed_by_node(&mut raw)).await;
    // A length that fits but a payload that is not a Hello.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    within(closed_by_node(&mut raw)).await;
    still_serving(addr).await;
}

#[tokio::test]
async fn a_truncated_frame_is_refused_and_the_node_stays_up() {
    let node = TcpTransport::bind(config(1)).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    // Truncated handshake.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0, 0, 0, 40, 1, 2]).await.unwrap();
    raw.shutdown().await.unwrap();
    within(closed_by_node(&mut raw)).await;
    // Truncated request after a good handshake.
    let (mut raw, answer) = raw_handshake(addr, &hello(HelloRole::Client)).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    raw.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
    raw.shutdown().await.unwrap();
    within(closed_by_node(&mut raw)).await;
    still_serving(addr).await;
}

#[tokio::test]
async fn a_client_of_another_cluster_gets_a_handshake_error() {
    let node = TcpTransport::bind(config(1)).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    let stranger = TcpClient::new(TcpClientConfig::new(
        CLUSTER + 1,
        HashMap::from([(NodeId(1), addr)]),
    ));
    match within(stranger.call(NodeId(1), request(1))).await {
        Err(TransportError::Handshake(reason)) => assert!(reason.contains("cluster"), "{reason}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    still_serving(addr).await;
}

#[tokio::test]
async fn wrong_version_or_magic_is_refused_with_a_reason() {
    let node = TcpTransport::bind(config(1)).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    let mut old = hello(HelloRole::Client);
    old.version = wire::PROTOCOL_VERSION + 1;
    let (mut raw, answer) = raw_handshake(addr, &old).await;
    match answer {
        Some(HelloAnswer::Refused(reason)) => assert!(reason.contains("version"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    within(closed_by_node(&mut raw)).await;
    // Version 1's hello had no challenge, so it does not decode as ours; its version still does.
    let v1 = (wire::MAGIC, 1u16, CLUSTER, HelloRole::Client);
    let frame = wire::encode_frame(&v1, wire::HANDSHAKE_MAX_FRAME).unwrap();
    let (mut raw, answer) = raw_first_frame(addr, frame).await;
    match answer {
        Some(HelloAnswer::Refused(reason)) => {
            assert!(reason.contains("protocol version 1"), "{reason}")
        }
        other => panic!("expected a refusal of version 1, got {other:?}"),
    }
    within(closed_by_node(&mut raw)).await;
    let mut alien = hello(HelloRole::Peer(NodeId(2)));
    alien.magic ^= 1;
    let (_, answer) = raw_handshake(addr, &alien).await;
    assert!(matches!(answer, Some(HelloAnswer::Refused(r)) if r.contains("magic")));
    still_serving(addr).await;
}

/// Binds `addr` again, retrying while the old listener's task is still being torn down.
async fn rebind(id: u64, addr: SocketAddr) -> TcpTransport {
    let mut cfg = config(id);
    cfg.listen = addr;
    for _ in 0..200 {
        match TcpTransport::bind(cfg.clone()).await {
            Ok(t) => return t,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    panic!("cannot bind {addr} again");
}

#[tokio::test]
async fn peer_link_and_client_reconnect_after_the_listener_restarts() {
    let a = TcpTransport::bind(config(1)).await.unwrap();
    let mut b = TcpTransport::bind(config(2)).await.unwrap();
    let b_addr = b.local_addr();
    a.set_peer(NodeId(2), b_addr);
    a.send(msg(1, 2, 1)).await;
    assert_eq!(within(b.recv()).await, Some(Incoming::Peer(msg(1, 2, 1))));
    let client = client_for(&[(2, b_addr)]);
    drop(b);

    let b = rebind(2, b_addr).await;
    let b_addr = b.local_addr();
    let mut b = b;
    // Messages written into the dying connection may be lost; keep sending until one arrives.
    let mut received = None;
    for term in 2..500 {
        a.send(msg(1, 2, term)).await;
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(50), b.recv()).await {
            received = got;
            break;
        }
    }
    assert!(matches!(received, Some(Incoming::Peer(m)) if m.from == NodeId(1)));

    spawn_echo(b);
    // The client's old connection is dead: its next calls reconnect.
    let mut ok = false;
    for seq in 1..50 {
        if within(client.call(NodeId(2), request(seq))).await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "client never reconnected to {b_addr}");
}

#[tokio::test]
async fn a_peer_that_never_reads_makes_the_queue_drop_not_grow() {
    // A fake peer that completes the handshake and then never reads again.
    // A small, fixed receive buffer (no autotuning) so the kernel holds little on its side.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8192).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(8).unwrap();
    let fake = listener.local_addr().unwrap();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let _: Option<wire::Hello> = wire::read_frame(&mut stream, wire::HANDSHAKE_MAX_FRAME)
            .await
            .unwrap();
        let ok = wire::encode_frame(&HelloAnswer::Accepted, 64).unwrap();
        stream.write_all(&ok).await.unwrap();
        let _ = held_rx.await;
        drop(stream);
    });
    let mut cfg = config(1);
    cfg.peer_queue_frames = 8;
    let node = TcpTransport::bind(cfg).await.unwrap();
    node.set_peer(NodeId(2), fake);
    let sent = 300u64;
    for i in 0..sent {
        node.send(PeerMessage {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(1),
            body: PeerBody::InstallSnapshot {
                last: LogPosition::default(),
                size: 1 << 30,
                offset: i * 65536,
                data: vec![1; 65536],
            },
        })
        .await;
        if i % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let stats = node.peer_stats(NodeId(2)).unwrap();
    assert!(stats.queued <= 8, "{stats:?}");
    // At most ~4 MiB (64 frames) fit in the socket buffers; most of the ~19 MiB must be dropped.
    assert!(stats.dropped > sent / 2, "{stats:?}");
    let _ = held_tx.send(());
}

#[tokio::test]
async fn client_connections_past_the_limit_are_refused_with_a_reason_but_peers_are_not() {
    let mut cfg = config(1);
    cfg.max_clients = 2;
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);

    let (first, answer) = raw_handshake(addr, &hello(HelloRole::Client)).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    let (_second, answer) = raw_handshake(addr, &hello(HelloRole::Client)).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    let (_third, answer) = raw_handshake(addr, &hello(HelloRole::Client)).await;
    assert!(
        matches!(&answer, Some(HelloAnswer::Refused(r)) if r.contains("too many client connections")),
        "{answer:?}"
    );
    let (_peer, answer) = raw_handshake(addr, &hello(HelloRole::Peer(NodeId(2)))).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));

    // A closed client connection gives its place back.
    drop(first);
    within(admitted_eventually(addr)).await;
}

#[tokio::test]
async fn past_the_handshake_limit_the_oldest_silent_connection_makes_room() {
    let mut cfg = config(1);
    cfg.max_handshaking = 2;
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);

    // Two silent connections fill the handshake places (the default time-out is 5 s).
    let mut oldest = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    // A client that says hello at once still gets in: the oldest silent one is closed for it.
    let (_client, answer) = raw_handshake(addr, &hello(HelloRole::Client)).await;
    assert_eq!(answer, Some(HelloAnswer::Accepted));
    within(closed_by_node(&mut oldest)).await;
    // Full again with a third silent one, the next newcomer pushes out the second.
    let _third = TcpStream::connect(addr).await.unwrap();
    still_serving(addr).await;
    within(closed_by_node(&mut second)).await;
}

/// Retries a client handshake until the node accepts one; a closed or reset connection (the
/// node still full) is just another try.
async fn admitted_eventually(addr: SocketAddr) {
    loop {
        if let Ok(mut stream) = TcpStream::connect(addr).await {
            let frame =
                wire::encode_frame(&hello(HelloRole::Client), wire::HANDSHAKE_MAX_FRAME).unwrap();
            if stream.write_all(&frame).await.is_ok() {
                let answer = wire::read_frame(&mut stream, wire::HANDSHAKE_MAX_FRAME).await;
                if matches!(answer, Ok(Some(HelloAnswer::Accepted))) {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
