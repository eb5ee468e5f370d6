//! A node joins a cluster that runs mutual TLS: its own client verifies the members with the
//! node's CA and presents the node's certificate, checking each member by the host name it is
//! known by, and proves the admin secret that adding a member needs; restarted with `--join`
//! after a first join that was cut short, it does the same in the background.
#![cfg(feature = "tls")]

mod support;

#[path = "../dlm-transport-tcp/tests/common/pki.rs"]
mod pki;

use dlm::{
    ClientCerts, ClientTls, ClusterAccess, ClusterSecret, NodeId, NodeTls, Server, TlsIdentity,
    TlsRoots, DEFAULT_CLUSTER_ID,
};
use pki::{Ca, Issued};
use std::collections::BTreeMap;
use std::time::Duration;

fn identity(issued: &Issued) -> TlsIdentity {
    TlsIdentity::from_pem(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()).unwrap()
}

fn roots(ca: &Ca) -> TlsRoots {
    TlsRoots::from_pem(ca.pem.as_bytes()).unwrap()
}

fn node_tls(ca: &Ca) -> NodeTls {
    let identity = identity(&ca.issue(&["localhost"]));
    NodeTls::mutual(identity, roots(ca), ClientCerts::Required).unwrap()
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

    // Node 5's first join was cut short: its directory holds the record of the voters and
    // nothing else. Restarted with --join it starts at once and, in the background, over
    // TLS as well, gets itself added.
    let (id5, addr5) = (5, support::local_members(1)[0].1);
    let dir5 = dir.path().join("node-5");
    std::fs::create_dir_all(&dir5).unwrap();
    let voters: String = old
        .iter()
        .map(|(id, at)| format!("voter = {id} localhost:{}\n", at.port()))
        .collect();
    std::fs::write(dir5.join("dlm-joined"), voters).unwrap();
    let node5 = secured(Server::builder().id(id5))
        .data_dir(&dir5)
        .advertise(format!("localhost:{}", addr5.port()))
        .join(format!("localhost:{}", old[0].1.port()))
        .serve_tcp(addr5)
        .await
        .unwrap();
    servers.insert(id5, node5);
    let tls = ClientTls::with_identity(roots(&ca), identity(&ca.issue(&["an operator"])))
        .unwrap()
        .server_name("localhost")
        .unwrap();
    let access = ClusterAccess::new(DEFAULT_CLUSTER_ID)
        .tls(tls)
        .admin_secret(secret("operators only, sixteen+"));
    let admin = dlm::connect_tcp_with(old.to_vec(), access, |cfg| {
        support::tune(cfg);
        cfg.deadline = Duration::from_secs(30);
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !admin
        .membership()
        .await
        .is_ok_and(|info| info.config.is_learner(NodeId(id5)))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {id5} was never added from its restart with --join"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
