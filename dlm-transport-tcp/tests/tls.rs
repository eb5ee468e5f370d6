//! TLS on the transport: peers link over mutual TLS (checked by address or by host name),
//! clients are served, callers that speak plain TCP to a TLS node (or TLS to a plain one) are
//! told why, garbage and stalled TLS handshakes close only their connection, and the cluster
//! secret still works on top.
#![cfg(feature = "tls")]

mod common;

use common::noise::noise;
use common::pki::{Ca, Issued};
use common::*;
use dlm_core::runtime::{ClientTransport, Incoming, Transport, TransportError};
use dlm_core::NodeId;
use dlm_transport_tcp::{
    ClientCerts, ClientTls, ClusterSecret, NodeTls, PeerAddr, TcpClient, TcpClientConfig,
    TcpConfig, TcpTransport, TlsIdentity, TlsRoots,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn identity(issued: &Issued) -> TlsIdentity {
    TlsIdentity::from_pem(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()).unwrap()
}

fn roots(ca: &Ca) -> TlsRoots {
    TlsRoots::from_pem(ca.pem.as_bytes()).unwrap()
}

/// Node `id`'s config with mutual TLS, its certificate naming `names`.
fn tls_config(id: u64, ca: &Ca, names: &[&str]) -> TcpConfig {
    let mut c = config(id);
    let tls = NodeTls::mutual(identity(&ca.issue(names)), roots(ca), ClientCerts::Required);
    c.tls = Some(tls.unwrap());
    c
}

fn tls_client(addr: SocketAddr, ca: &Ca) -> TcpClient {
    let mut c = TcpClientConfig::new(CLUSTER, HashMap::from([(NodeId(1), addr)]));
    let tls = ClientTls::with_identity(roots(ca), identity(&ca.issue(&["a client"])));
    c.tls = Some(tls.unwrap());
    TcpClient::new(c)
}

/// A TLS client with the right certificates still gets its answer.
async fn still_serving(addr: SocketAddr, ca: &Ca) {
    let response = within(tls_client(addr, ca).call(NodeId(1), request(100)))
        .await
        .unwrap();
    assert_eq!(response, answer(&request(100)));
}

/// Waits until peer messages flow from `a` (node 1) to `b` (node 2).
async fn messages_flow(a: &TcpTransport, b: &mut TcpTransport) {
    for t in 1..=3 {
        a.send(msg(1, 2, t)).await;
        assert_eq!(within(b.recv()).await, Some(Incoming::Peer(msg(1, 2, t))));
    }
}

#[tokio::test]
async fn peers_link_over_mutual_tls_checked_by_address() {
    let ca = Ca::new("cluster CA");
    let mut a = TcpTransport::bind(tls_config(1, &ca, &["127.0.0.1"]))
        .await
        .unwrap();
    let mut b = TcpTransport::bind(tls_config(2, &ca, &["127.0.0.1"]))
        .await
        .unwrap();
    a.set_peer(NodeId(2), b.local_addr());
    b.set_peer(NodeId(1), a.local_addr());
    messages_flow(&a, &mut b).await;
    b.send(msg(2, 1, 9)).await;
    assert_eq!(within(a.recv()).await, Some(Incoming::Peer(msg(2, 1, 9))));
}

#[tokio::test]
async fn a_peer_given_by_host_name_is_checked_by_that_name() {
    let ca = Ca::new("cluster CA");
    let a = TcpTransport::bind(tls_config(1, &ca, &["127.0.0.1"]))
        .await
        .unwrap();
    // Node 2's certificate names only "localhost": dialed by name, it passes.
    let mut b = TcpTransport::bind(tls_config(2, &ca, &["localhost"]))
        .await
        .unwrap();
    let port = b.local_addr().port();
    a.set_peer(NodeId(2), PeerAddr::Host(format!("localhost:{port}")));
    messages_flow(&a, &mut b).await;
}

#[tokio::test]
async fn a_plain_client_is_told_the_node_serves_tls_only() {
    let ca = Ca::new("cluster CA");
    let node = TcpTransport::bind(tls_config(1, &ca, &["127.0.0.1"]))
        .await
        .unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    match within(client_for(&[(1, addr)]).call(NodeId(1), request(1))).await {
        Err(TransportError::Handshake(why)) => assert!(why.contains("TLS only"), "{why}"),
        other => panic!("a plain client got {other:?}"),
    }
    still_serving(addr, &ca).await;
}

#[tokio::test]
async fn a_tls_client_to_a_plain_node_is_told_why() {
    let ca = Ca::new("cluster CA");
    let node = TcpTransport::bind(config(1)).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    match within(tls_client(addr, &ca).call(NodeId(1), request(1))).await {
        Err(TransportError::Connection { reason, .. }) => {
            assert!(reason.contains("does it serve TLS?"), "{reason}")
        }
        other => panic!("a TLS client to a plain node got {other:?}"),
    }
    // The plain node still serves plain clients.
    let response = within(client_for(&[(1, addr)]).call(NodeId(1), request(2))).await;
    assert_eq!(response.unwrap(), answer(&request(2)));
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_closes_only_that_connection() {
    let ca = Ca::new("cluster CA");
    let node = TcpTransport::bind(tls_config(1, &ca, &["127.0.0.1"]))
        .await
        .unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    // A TLS client opened before the garbage keeps working through it.
    let before = tls_client(addr, &ca);
    within(before.call(NodeId(1), request(1))).await.unwrap();
    let mut tls_looking = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    tls_looking.extend(noise(3, 64));
    let garbage = [
        noise(1, 4096),
        vec![0xff; 64],
        b"GET / HTTP/1.1\r\nHost: dlm\r\n\r\n".to_vec(),
        tls_looking,
    ];
    for bytes in garbage {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        // The node may close before reading it all; a failed write is fine.
        let _ = raw.write_all(&bytes).await;
        within(closed_by_node(&mut raw)).await;
    }
    let response = within(before.call(NodeId(1), request(2))).await.unwrap();
    assert_eq!(response, answer(&request(2)));
    still_serving(addr, &ca).await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_closed_at_the_handshake_time_out() {
    let ca = Ca::new("cluster CA");
    let mut cfg = tls_config(1, &ca, &["127.0.0.1"]);
    cfg.handshake_timeout = Duration::from_millis(200);
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    // The start of a TLS record, then nothing.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0x16, 0x03, 0x01, 0x00, 0x80])
        .await
        .unwrap();
    within(closed_by_node(&mut raw)).await;
    still_serving(addr, &ca).await;
}

#[tokio::test]
async fn the_cluster_secret_still_applies_on_top_of_tls() {
    let ca = Ca::new("cluster CA");
    let secret = |text: &str| ClusterSecret::new(text).unwrap();
    let mut cfg = tls_config(1, &ca, &["127.0.0.1"]);
    cfg.secret = Some(secret("the secret under TLS, 1234"));
    let node = TcpTransport::bind(cfg).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    let client_with = |text: &str| {
        let mut c = TcpClientConfig::new(CLUSTER, HashMap::from([(NodeId(1), addr)]));
        let tls = ClientTls::with_identity(roots(&ca), identity(&ca.issue(&["a client"])));
        c.tls = Some(tls.unwrap());
        c.secret = Some(secret(text));
        TcpClient::new(c)
    };
    let wrong = client_with("not the secret under TLS, 99");
    match within(wrong.call(NodeId(1), request(1))).await {
        Err(TransportError::Handshake(why)) => assert!(why.contains("wrong secret"), "{why}"),
        other => panic!("a client with the wrong secret got {other:?}"),
    }
    let right = client_with("the secret under TLS, 1234");
    let response = within(right.call(NodeId(1), request(2))).await.unwrap();
    assert_eq!(response, answer(&request(2)));
}

/// Copies on extra connections (`Duplicates`) go over the same mutual TLS as the first
/// connection: a peer's every message arrives twice, and a client's requests arrive on two
/// connections, each past the node's certificate check.
#[tokio::test]
async fn extra_connections_for_copies_use_mutual_tls_too() {
    use dlm_transport_tcp::Duplicates;
    use std::collections::HashSet;
    let two = Duplicates::Always { connections: 2 };
    let ca = Ca::new("cluster CA");
    let mut sender = tls_config(1, &ca, &["127.0.0.1"]);
    sender.duplicates = two;
    let a = TcpTransport::bind(sender).await.unwrap();
    let mut b = TcpTransport::bind(tls_config(2, &ca, &["127.0.0.1"]))
        .await
        .unwrap();
    a.set_peer(NodeId(2), b.local_addr());
    a.send(msg(1, 2, 1)).await;
    for _ in 0..2 {
        assert_eq!(within(b.recv()).await, Some(Incoming::Peer(msg(1, 2, 1))));
    }

    let mut client = TcpClientConfig::new(CLUSTER, HashMap::from([(NodeId(2), b.local_addr())]));
    let tls = ClientTls::with_identity(roots(&ca), identity(&ca.issue(&["a client"])));
    client.tls = Some(tls.unwrap());
    client.duplicates = two;
    let client = std::sync::Arc::new(TcpClient::new(client));
    // The extra connection opens in the background from the first call on.
    let mut conns = HashSet::new();
    let mut seq = 0;
    while conns.len() < 2 {
        assert!(seq < 200, "no request came on a second connection");
        seq += 1;
        let calling = client.clone();
        let call = tokio::spawn(async move { calling.call(NodeId(2), request(seq)).await });
        loop {
            let Some(Incoming::Client { conn, request }) = within(b.recv()).await else {
                continue;
            };
            conns.insert(conn);
            if request.seq.0 == seq {
                b.reply(conn, answer(&request)).await;
                break;
            }
        }
        assert_eq!(within(call).await.unwrap().unwrap().seq.0, seq);
    }
    assert_eq!(b.client_connections(), 2);
}
