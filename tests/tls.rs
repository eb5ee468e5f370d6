//! A 3-node cluster over mutual TLS, through the facade, with certificates made at test time:
//! the members verify each other (by host name) and elect a leader, a client with a
//! certificate from the cluster's CA locks, appends and reads, garbage sent instead of a TLS
//! handshake leaves the nodes serving, and clients that cannot get in fail at once with the
//! reason (`ClientError::Refused`): a wrong CA, no client certificate, plain TCP.
#![cfg(feature = "tls")]

#[path = "../dlm-transport-tcp/tests/common/noise.rs"]
mod noise;
mod support;
use noise::noise;

#[path = "../dlm-transport-tcp/tests/common/pki.rs"]
mod pki;

use dlm::{
    ClientCerts, ClientError, ClientTls, ClusterAccess, NodeTls, Server, TlsIdentity, TlsRoots,
    DEFAULT_CLUSTER_ID,
};
use pki::{Ca, Issued};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn identity(issued: &Issued) -> TlsIdentity {
    TlsIdentity::from_pem(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()).unwrap()
}

fn roots(ca: &Ca) -> TlsRoots {
    TlsRoots::from_pem(ca.pem.as_bytes()).unwrap()
}

/// Members `1..=3`, each with a certificate for "localhost" from `ca`, requiring client
/// certificates; peers are given as `localhost:PORT`, so each checks the others by name.
async fn start(ca: &Ca) -> (Vec<(u64, SocketAddr)>, BTreeMap<u64, Server>) {
    let members = support::local_members(3);
    let mut servers = BTreeMap::new();
    for &(id, addr) in &members {
        let tls = NodeTls::mutual(
            identity(&ca.issue(&["localhost"])),
            roots(ca),
            ClientCerts::Required,
        )
        .unwrap();
        let mut builder = Server::builder().id(id).tls(tls);
        for &(peer, peer_addr) in &members {
            if peer != id {
                builder = builder.peer_host(peer, format!("localhost:{}", peer_addr.port()));
            }
        }
        servers.insert(id, builder.serve_tcp(addr).await.unwrap());
    }
    (members, servers)
}

async fn shutdown(servers: BTreeMap<u64, Server>) {
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

/// A client over TLS with `tls`, or plain TCP without; nodes are checked as "localhost".
fn client(
    members: &[(u64, SocketAddr)],
    tls: Option<ClientTls>,
) -> dlm::Client<dlm::tcp::TcpClient> {
    let mut access = ClusterAccess::new(DEFAULT_CLUSTER_ID);
    if let Some(tls) = tls {
        access = access.tls(tls.server_name("localhost").unwrap());
    }
    dlm::connect_tcp_with(members.to_vec(), access, |cfg| {
        support::tune(cfg);
        // Far longer than a refusal may take: failing at the deadline would fail the test.
        cfg.deadline = Duration::from_secs(60);
    })
}

/// A client with a certificate from `ca`.
fn certified(ca: &Ca) -> ClientTls {
    ClientTls::with_identity(roots(ca), identity(&ca.issue(&["a client"]))).unwrap()
}

async fn lock_append_release(client: &dlm::Client<dlm::tcp::TcpClient>, line: &str) {
    let guard = client.lock("l").await.unwrap();
    let data = format!("{line}\n").into_bytes();
    client.append(&guard, "l.log", data).await.unwrap();
    client.release(guard).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_mutual_tls_serves_locks_and_appends_and_shrugs_off_garbage() {
    let ca = Ca::new("dlm test CA");
    let (members, servers) = start(&ca).await;
    support::wait_for_leader(&servers, Duration::from_secs(10)).await;

    let good = client(&members, Some(certified(&ca)));
    lock_append_release(&good, "first, over TLS").await;

    // Garbage where a ClientHello belongs, at every node: each closes that connection.
    let mut tls_looking = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    tls_looking.extend(noise(7, 64));
    for &(_, addr) in &members {
        for bytes in [noise(addr.port().into(), 2048), tls_looking.clone()] {
            let mut raw = TcpStream::connect(addr).await.unwrap();
            // The node may close before reading it all; a failed write is fine.
            let _ = raw.write_all(&bytes).await;
            let mut sink = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(20), raw.read_to_end(&mut sink));
            assert!(
                closed.await.is_ok(),
                "node at {addr} kept a garbage connection"
            );
        }
    }

    // The nodes still serve: the client that was connected, and a new one.
    lock_append_release(&good, "second, after the garbage").await;
    let fresh = client(&members, Some(certified(&ca)));
    lock_append_release(&fresh, "third, from a new client").await;
    let content = fresh.read("l.log").await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&content),
        "first, over TLS\nsecond, after the garbage\nthird, from a new client\n"
    );
    // Mutual TLS authenticates clients: without an admin secret, none is an operator.
    assert_eq!(
        fresh.locks("").await.map(|_| ()),
        Err(ClientError::Rejected(dlm::Rejection::NotAuthorized(
            dlm::tcp::auth::NO_ADMIN_SECRET.to_string()
        )))
    );
    shutdown(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_cannot_get_in_are_refused_with_the_reason() {
    let (ca, other_ca) = (Ca::new("dlm test CA"), Ca::new("another CA"));
    let (members, servers) = start(&ca).await;
    support::wait_for_leader(&servers, Duration::from_secs(10)).await;

    let cases = [
        (
            "the wrong CA",
            Some(ClientTls::with_identity(roots(&other_ca), identity(&ca.issue(&["c"]))).unwrap()),
            "certificate not trusted: signed by an unknown CA",
        ),
        (
            "no client certificate",
            Some(ClientTls::new(roots(&ca)).unwrap()),
            "it requires a certificate from this side",
        ),
        (
            "a certificate from another CA",
            Some(ClientTls::with_identity(roots(&ca), identity(&other_ca.issue(&["c"]))).unwrap()),
            "it does not trust this side's certificate",
        ),
        ("plain TCP", None, "this node serves TLS only"),
    ];
    for (what, tls, why) in cases {
        let began = Instant::now();
        match client(&members, tls).try_lock("l").await.map(|_| ()) {
            Err(ClientError::Refused(reason)) => assert!(reason.contains(why), "{what}: {reason}"),
            other => panic!("a client with {what} got {other:?}"),
        }
        assert!(began.elapsed() < Duration::from_secs(20), "{what}");
    }
    // And the cluster still serves those that can.
    lock_append_release(&client(&members, Some(certified(&ca))), "still here").await;
    shutdown(servers).await;
}
