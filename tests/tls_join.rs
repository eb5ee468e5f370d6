//! A node joins a cluster that runs mutual TLS: its own client verifies the members with the
//! node's CA and presents the node's certificate, checking each member by the host name it is
//! known by, and proves the admin secret that adding a member needs.
#![cfg(feature = "tls")]

mod support;

#[path = "../dlm-transport-tcp/tests/common/pki.rs"]
mod pki;

use dlm::{ClientCerts, ClusterSecret, NodeTls, Server, TlsIdentity, TlsRoots};
use pki::Ca;
use std::collections::BTreeMap;
use std::time::Duration;

fn node_tls(ca: &Ca) -> NodeTls {
    let issued = ca.issue(&["localhost"]);
    let identity =
        TlsIdentity::from_pem(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()).unwrap();
    let roots = TlsRoots::from_pem(ca.pem.as_bytes()).unwrap();
    NodeTls::mutual(identity, roots, ClientCerts::Required).unwrap()
}

fn secret(text: &str) -> ClusterSecret {
    ClusterSecret::new(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_a_cluster_over_mutual_tls() {
    let ca = Ca::new("dlm test CA");
    let members = support::local_members(4);
    let (old, (id4, addr4)) = (&members[..3], members[3]);
    let secured = |builder: dlm::ServerBuilder| {
        builder
            .tls(node_tls(&ca))
            .peer_secret(secret("members only, sixteen+"))
            .admin_secret(secret("operators only, sixteen+"))
    };
    let mut servers = BTreeMap::new();
    for &(id, addr) in old {
        let mut builder =
            secured(Server::builder().id(id)).advertise(format!("localhost:{}", addr.port()));
        for &(peer, at) in old.iter().filter(|(p, _)| *p != id) {
            builder = builder.peer_host(peer, format!("localhost:{}", at.port()));
        }
        servers.insert(id, builder.serve_tcp(addr).await.unwrap());
    }
    support::wait_until_settled(&servers, Duration::from_secs(20)).await;

    let dir = tempfile::tempdir().unwrap();
    let joined = secured(Server::builder().id(id4))
        .data_dir(dir.path())
        .advertise(format!("localhost:{}", addr4.port()))
        .join(format!("localhost:{}", old[1].1.port()))
        .promote_after_join(Duration::from_secs(60))
        .serve_tcp(addr4)
        .await;
    let joined = match joined {
        Ok(server) => server,
        Err(e) => panic!("node {id4} could not join over TLS: {e}"),
    };
    servers.insert(id4, joined);
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
