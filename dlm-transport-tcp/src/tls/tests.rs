//! The TLS failures come out typed, named for what to fix; the socket under TLS is still
//! reachable for its retransmission count.

#[path = "../../tests/common/pki.rs"]
mod pki;

use super::*;
use crate::handshake::{self, Carrier};
use crate::liveness::Liveness;
use crate::wire::HelloRole;
use crate::{TcpConfig, TcpTransport};
use dlm_core::NodeId;
use pki::{Ca, Issued};

const CLUSTER: u64 = 5;

fn identity(issued: &Issued) -> TlsIdentity {
    TlsIdentity::from_pem(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()).unwrap()
}

fn roots(ca: &Ca) -> TlsRoots {
    TlsRoots::from_pem(ca.pem.as_bytes()).unwrap()
}

/// A node with `tls`, listening on a free port (the handshake needs no running node).
async fn node(tls: NodeTls) -> (TcpTransport, SocketAddr) {
    let mut config = TcpConfig::new(NodeId(1), "127.0.0.1:0".parse().unwrap(), CLUSTER);
    config.tls = Some(tls);
    let node = TcpTransport::bind(config).await.unwrap();
    let addr = node.local_addr();
    (node, addr)
}

async fn dial(addr: SocketAddr, client: &ClientTls) -> Result<Halves, TcpError> {
    dial_as(addr, client, HelloRole::Client).await
}

async fn dial_as(
    addr: SocketAddr,
    client: &ClientTls,
    role: HelloRole,
) -> Result<Halves, TcpError> {
    let carrier = Carrier::Tls(client.config.clone(), client.name_for(NodeId(1), addr));
    let limit = Duration::from_secs(10);
    let live = Liveness::new(Duration::from_millis(50), Duration::ZERO);
    // Asking for datagrams, which a node under TLS never grants (they would travel in clear).
    let connected = handshake::connect(
        addr, &carrier, CLUSTER, None, role, limit, limit, &live, true,
    )
    .await?;
    assert!(
        connected.datagrams.is_none(),
        "a TLS node offered datagrams"
    );
    Ok(connected.halves)
}

#[tokio::test]
async fn a_node_under_tls_takes_no_datagrams_whatever_its_setting() {
    let ca = Ca::new("dlm test CA");
    let mut config = TcpConfig::new(NodeId(1), "127.0.0.1:0".parse().unwrap(), CLUSTER);
    config.tls = Some(NodeTls::new(identity(&ca.issue(&["127.0.0.1"]))).unwrap());
    config.datagrams = crate::Datagrams::Always { copies: 1 };
    let node = TcpTransport::bind(config).await.unwrap();
    assert_eq!(node.datagram_stats(), None);
    // And a dial that asks gets none (checked in `dial_as`).
    assert!(
        dial(node.local_addr(), &ClientTls::new(roots(&ca)).unwrap())
            .await
            .is_ok()
    );
}

#[test]
fn a_client_under_tls_neither_asks_for_nor_sends_datagrams() {
    let ca = Ca::new("dlm test CA");
    let mut config = crate::TcpClientConfig::new(CLUSTER, Default::default());
    config.datagrams = crate::Datagrams::Always { copies: 1 };
    assert_eq!(
        config.datagrams_in_effect(),
        crate::Datagrams::Always { copies: 1 }
    );
    config.tls = Some(ClientTls::new(roots(&ca)).unwrap());
    assert_eq!(config.datagrams_in_effect(), crate::Datagrams::Never);
    assert_eq!(config.liveness().datagrams, crate::Datagrams::Never);
}

#[tokio::test]
async fn a_node_signed_by_another_ca_is_not_trusted() {
    let (ca, other) = (Ca::new("cluster CA"), Ca::new("another CA"));
    let (_node, addr) = node(NodeTls::new(identity(&ca.issue(&["127.0.0.1"]))).unwrap()).await;
    assert!(dial(addr, &ClientTls::new(roots(&ca)).unwrap())
        .await
        .is_ok());
    match dial(addr, &ClientTls::new(roots(&other)).unwrap()).await {
        Err(TcpError::Tls(TlsError::NotTrusted(why))) => assert!(why.contains("unknown CA")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a node signed by another CA was trusted"),
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_name_mismatch() {
    let ca = Ca::new("cluster CA");
    let issued = ca.issue(&["node1.dlm.test"]);
    let (_node, addr) = node(NodeTls::new(identity(&issued)).unwrap()).await;
    // Dialed by address, the address is checked, and the certificate does not name it.
    let by_address = ClientTls::new(roots(&ca)).unwrap();
    match dial(addr, &by_address).await {
        Err(TcpError::Tls(TlsError::NameMismatch(why))) => {
            assert!(
                why.contains("valid for 127.0.0.1 (it names node1.dlm.test)"),
                "{why}"
            )
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a certificate for another name was accepted"),
    }
    let by_name = by_address.node_name(NodeId(1), "node1.dlm.test").unwrap();
    assert!(dial(addr, &by_name).await.is_ok());
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate_or_with_a_foreign_one() {
    let (ca, other) = (Ca::new("cluster CA"), Ca::new("another CA"));
    let tls = NodeTls::mutual(
        identity(&ca.issue(&["127.0.0.1"])),
        roots(&ca),
        ClientCerts::Required,
    )
    .unwrap();
    let (_node, addr) = node(tls).await;
    let client_cert = identity(&ca.issue(&["client"]));
    let good = ClientTls::with_identity(roots(&ca), client_cert).unwrap();
    assert!(dial(addr, &good).await.is_ok());

    let anonymous = ClientTls::new(roots(&ca)).unwrap();
    match dial(addr, &anonymous).await {
        Err(TcpError::Tls(TlsError::RefusedByPeer(why))) => {
            assert!(why.contains("requires a certificate"), "{why}")
        }
        other => panic!("{:?}", other.err()),
    }
    let foreign =
        ClientTls::with_identity(roots(&ca), identity(&other.issue(&["client"]))).unwrap();
    match dial(addr, &foreign).await {
        Err(TcpError::Tls(TlsError::RefusedByPeer(why))) => {
            assert!(why.contains("does not trust"), "{why}")
        }
        other => panic!("{:?}", other.err()),
    }
}

#[tokio::test]
async fn optional_client_certificates_admit_clients_without_one() {
    let ca = Ca::new("cluster CA");
    let identity = identity(&ca.issue(&["127.0.0.1"]));
    let tls = NodeTls::mutual(identity, roots(&ca), ClientCerts::Optional).unwrap();
    let (_node, addr) = node(tls).await;
    assert!(dial(addr, &ClientTls::new(roots(&ca)).unwrap())
        .await
        .is_ok());
}

#[tokio::test]
async fn a_member_must_present_a_certificate_even_where_clients_need_none() {
    let ca = Ca::new("cluster CA");
    let identity_ = identity(&ca.issue(&["127.0.0.1"]));
    let tls = NodeTls::mutual(identity_, roots(&ca), ClientCerts::Optional).unwrap();
    let (_node, addr) = node(tls).await;
    let anonymous = ClientTls::new(roots(&ca)).unwrap();
    match dial_as(addr, &anonymous, HelloRole::Peer(NodeId(2))).await {
        Err(TcpError::Refused(why)) => assert!(why.contains("member must present"), "{why}"),
        other => panic!("{:?}", other.err()),
    }
    let certified = ClientTls::with_identity(roots(&ca), identity(&ca.issue(&["2"]))).unwrap();
    assert!(dial_as(addr, &certified, HelloRole::Peer(NodeId(2)))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_node_without_a_ca_cannot_have_peers() {
    let ca = Ca::new("cluster CA");
    let mut config = TcpConfig::new(NodeId(1), "127.0.0.1:0".parse().unwrap(), CLUSTER);
    config.tls = Some(NodeTls::new(identity(&ca.issue(&["127.0.0.1"]))).unwrap());
    config.peers.insert(
        NodeId(2),
        "127.0.0.1:1".parse::<SocketAddr>().unwrap().into(),
    );
    match TcpTransport::bind(config).await {
        Err(TcpError::TlsConfig(TlsConfigError::NoCaForPeers)) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("bound without a CA for its peers"),
    }
}

#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
#[tokio::test]
async fn the_retransmission_count_is_read_under_tls() {
    use crate::tail_probe::Retransmissions;
    let ca = Ca::new("cluster CA");
    let (_node, addr) = node(NodeTls::new(identity(&ca.issue(&["127.0.0.1"]))).unwrap()).await;
    let (_read, write) = dial(addr, &ClientTls::new(roots(&ca)).unwrap())
        .await
        .unwrap();
    assert!(matches!(write, crate::stream::ConnWrite::Tls(_)));
    assert_eq!(write.retransmitted(), Some(0));
}

#[test]
fn a_peer_is_checked_by_host_name_or_else_by_address() {
    let addr: SocketAddr = "10.1.2.3:7001".parse().unwrap();
    let name = |at: PeerAddr| peer_name(&at, addr).to_str().into_owned();
    assert_eq!(name(PeerAddr::Host("node2.dlm:7001".into())), "node2.dlm");
    assert_eq!(name(PeerAddr::Host("[::1]:7001".into())), "::1");
    assert_eq!(name(PeerAddr::Host("127.0.0.2:7001".into())), "127.0.0.2");
    assert_eq!(name(PeerAddr::Socket(addr)), "10.1.2.3");
}

#[test]
fn bad_pem_is_named() {
    let e = TlsIdentity::from_pem(b"not pem", b"").unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    let ca = Ca::new("cluster CA");
    let e = TlsIdentity::from_pem(ca.pem.as_bytes(), b"").unwrap_err();
    assert!(e.to_string().contains("private key"), "{e}");
    let e = ClientTls::new(roots(&ca))
        .unwrap()
        .server_name("not a name!")
        .unwrap_err();
    assert!(e.to_string().contains("not a name!"), "{e}");
}

#[tokio::test]
async fn a_close_without_close_notify_reads_as_an_end_of_stream() {
    use tokio::io::AsyncReadExt;
    let ca = Ca::new("cluster CA");
    let tls = NodeTls::new(identity(&ca.issue(&["127.0.0.1"]))).unwrap();
    let client = ClientTls::new(roots(&ca)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limit = Duration::from_secs(10);
    let dialing = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        connect(
            stream,
            &client.config,
            client.name_for(NodeId(1), addr),
            limit,
        )
        .await
    };
    let accepting = async {
        let (stream, _) = listener.accept().await.unwrap();
        accept(stream, &tls, limit).await
    };
    let (dialed, accepted) = tokio::join!(dialing, accepting);
    let Ok(Accepted::Tls { halves, has_cert }) = accepted else {
        panic!("no TLS connection accepted");
    };
    assert!(!has_cert);
    // The client goes away without a close_notify: its halves dropped, the socket closed.
    drop(dialed.unwrap());
    let (mut read, _write) = halves;
    let mut rest = Vec::new();
    assert_eq!(read.read_to_end(&mut rest).await.unwrap(), 0);
}
