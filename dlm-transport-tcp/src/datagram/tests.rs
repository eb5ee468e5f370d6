//! Datagrams between real sockets: a message that comes by datagram alone reaches the node
//! (the TCP connection beside it carries nothing), an answer goes back the same way, and a
//! datagram that is not bound to an open, authenticated connection is dropped and counted.

use super::packet::{Binding, DatagramKey, Kind};
use super::Datagrams;
use crate::auth::ClusterSecret;
use crate::handshake::{self, Carrier, Connected};
use crate::liveness::Liveness;
use crate::wire::HelloRole;
use crate::{TcpConfig, TcpTransport};
use dlm_core::message::{PeerBody, PeerMessage};
use dlm_core::runtime::{Incoming, Transport};
use dlm_core::{ClientId, ClientRequest, ClientResponse, NodeId, Op, Reply, Seq, Term};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

const CLUSTER: u64 = 9;
const SECRET: &str = "quartz meridian lantern 8812";

/// A guard against hangs only; no test depends on how fast anything is.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test step hung")
}

async fn node(secret: Option<&str>, datagrams: Datagrams) -> TcpTransport {
    let mut config = TcpConfig::new(NodeId(1), "127.0.0.1:0".parse().unwrap(), CLUSTER);
    config.secret = secret.map(|s| ClusterSecret::new(s).unwrap());
    config.datagrams = datagrams;
    TcpTransport::bind(config).await.unwrap()
}

/// Connects to `addr` as `role`, asking for datagrams, and sends nothing on the connection.
async fn dial(addr: SocketAddr, role: HelloRole, secret: Option<&str>) -> Connected {
    let secret = secret.map(|s| ClusterSecret::new(s).unwrap());
    let limit = Duration::from_secs(10);
    let live = Liveness::new(Duration::from_millis(50), Duration::ZERO);
    let carrier = Carrier::Plain;
    handshake::connect(
        addr,
        &carrier,
        CLUSTER,
        secret.as_ref(),
        role,
        limit,
        limit,
        &live,
        true,
    )
    .await
    .unwrap()
}

fn message(from: u64, term: u64) -> PeerMessage {
    PeerMessage {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(term),
        body: PeerBody::TimeoutNow,
    }
}

fn request(seq: u64) -> ClientRequest {
    ClientRequest {
        client: ClientId(5),
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: Op::Status,
    }
}

fn peer_datagram(binding: &Binding, msg: &PeerMessage) -> Vec<u8> {
    binding
        .seal(Kind::Peer, &postcard::to_allocvec(msg).unwrap())
        .unwrap()
}

async fn next_peer_message(node: &mut TcpTransport) -> PeerMessage {
    loop {
        if let Some(Incoming::Peer(msg)) = within(node.recv()).await {
            return msg;
        }
    }
}

#[tokio::test]
async fn a_peer_message_sent_only_as_a_datagram_reaches_the_node() {
    for secret in [None, Some(SECRET)] {
        let mut node = node(secret, Datagrams::Always { copies: 1 }).await;
        let addr = node.local_addr();
        // The connection stays open and silent: whatever arrives came by datagram.
        let connected = dial(addr, HelloRole::Peer(NodeId(2)), secret).await;
        let binding = connected
            .datagrams
            .clone()
            .expect("the node offered no token");
        assert_eq!(binding.key.is_some(), secret.is_some());
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.send_to(&peer_datagram(&binding, &message(2, 7)), addr)
            .await
            .unwrap();
        assert_eq!(next_peer_message(&mut node).await, message(2, 7));
        let stats = node.datagram_stats().unwrap();
        assert_eq!((stats.delivered, stats.forged, stats.unknown), (1, 0, 0));
        drop(connected);
    }
}

#[tokio::test]
async fn datagrams_with_a_wrong_token_or_tag_are_dropped_and_counted() {
    let mut node = node(Some(SECRET), Datagrams::Always { copies: 1 }).await;
    let addr = node.local_addr();
    let connected = dial(addr, HelloRole::Peer(NodeId(2)), Some(SECRET)).await;
    let binding = connected.datagrams.clone().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // One who saw the token but has no key; a guessed token with the right key; garbage; a
    // message naming another sender. Then a good one, which must be the first the node gets.
    let no_key = Binding {
        token: binding.token,
        key: None,
    };
    let wrong_key = Binding {
        token: binding.token,
        key: DatagramKey::new(&[1; 32]),
    };
    let guessed = Binding {
        token: [0; 16],
        key: binding.key.clone(),
    };
    let bad = [
        peer_datagram(&no_key, &message(2, 1)),
        peer_datagram(&wrong_key, &message(2, 2)),
        peer_datagram(&guessed, &message(2, 3)),
        b"not a dlm datagram".to_vec(),
        peer_datagram(&binding, &message(3, 4)),
    ];
    for datagram in &bad {
        udp.send_to(datagram, addr).await.unwrap();
    }
    udp.send_to(&peer_datagram(&binding, &message(2, 5)), addr)
        .await
        .unwrap();
    assert_eq!(next_peer_message(&mut node).await, message(2, 5));
    let stats = node.datagram_stats().unwrap();
    assert_eq!(
        (stats.forged, stats.unknown, stats.malformed, stats.refused),
        (2, 1, 1, 1)
    );
    assert_eq!(stats.delivered, 1);
    // Once the connection has closed, its own datagrams are strangers.
    drop(connected);
    let after = async {
        loop {
            udp.send_to(&peer_datagram(&binding, &message(2, 6)), addr)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            if node.datagram_stats().unwrap().unknown > 1 {
                return;
            }
        }
    };
    within(after).await;
    assert_eq!(node.datagram_stats().unwrap().delivered, 1);
}

#[tokio::test]
async fn a_request_sent_only_as_a_datagram_is_answered_by_datagram_too() {
    let mut node = node(Some(SECRET), Datagrams::Always { copies: 1 }).await;
    let addr = node.local_addr();
    let connected = dial(addr, HelloRole::Client, Some(SECRET)).await;
    let binding = connected.datagrams.clone().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let payload = postcard::to_allocvec(&request(3)).unwrap();
    let datagram = binding.seal(Kind::Request, &payload).unwrap();
    udp.send_to(&datagram, addr).await.unwrap();
    let (conn, got) = loop {
        if let Some(Incoming::Client { conn, request }) = within(node.recv()).await {
            break (conn, request);
        }
    };
    assert_eq!(got, request(3));
    let answer = ClientResponse {
        client: got.client,
        seq: got.seq,
        result: Ok(Reply::Released),
    };
    node.reply(conn, answer.clone()).await;
    let mut buf = [0u8; 2048];
    let (len, from) = within(udp.recv_from(&mut buf)).await.unwrap();
    assert_eq!(from, addr);
    let (kind, token) = super::packet::header(&buf[..len]).unwrap();
    assert_eq!((kind, token), (Kind::Response, binding.token));
    let opened = binding.open(&buf[..len]).unwrap();
    let decoded: ClientResponse = postcard::from_bytes(opened).unwrap();
    assert_eq!(decoded, answer);
}

#[tokio::test]
async fn a_node_with_datagrams_never_offers_none_and_binds_nothing() {
    let node = node(None, Datagrams::Never).await;
    assert_eq!(node.datagram_stats(), None);
    let connected = dial(node.local_addr(), HelloRole::Peer(NodeId(2)), None).await;
    assert!(connected.datagrams.is_none());
}

#[tokio::test]
async fn a_node_whose_udp_port_is_taken_runs_without_datagrams() {
    // Another socket holds the UDP port first; the node still starts.
    let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let at = taken.local_addr().unwrap();
    let mut config = TcpConfig::new(NodeId(1), at, CLUSTER);
    config.datagrams = Datagrams::Always { copies: 1 };
    let node = match TcpTransport::bind(config).await {
        Ok(node) => node,
        // The TCP port of that number is taken too, by chance: nothing to check here.
        Err(crate::TcpError::Bind { .. }) => return,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(node.datagram_stats(), None);
    let connected = dial(node.local_addr(), HelloRole::Peer(NodeId(2)), None).await;
    assert!(connected.datagrams.is_none());
}
