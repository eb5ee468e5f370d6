//! Peers given by host name (`ServerBuilder::peer_host`, `dlm server --peer 2=node2:7001`):
//! each link looks the name up when it dials, and the cluster forms and serves as with
//! addresses.
#![cfg(feature = "tcp")]

mod support;

use dlm::Server;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_peers_are_host_names_forms_and_serves() {
    let members = support::local_members(3);
    let mut servers = Vec::new();
    for (id, addr) in &members {
        let mut builder = Server::builder().id(*id);
        for (peer, peer_addr) in members.iter().filter(|(p, _)| p != id) {
            builder = builder.peer_host(*peer, format!("localhost:{}", peer_addr.port()));
        }
        servers.push(builder.serve_tcp(*addr).await.unwrap());
    }
    let client = dlm::connect_tcp_with(members.clone(), dlm::DEFAULT_CLUSTER_ID, |c| {
        c.deadline = Duration::from_secs(20);
    });
    let guard = client.lock("by-name").await.unwrap();
    let offset = client
        .append(&guard, "names.log", b"found by name\n".to_vec())
        .await
        .unwrap();
    assert_eq!(offset, 0);
    client.release(guard).await.unwrap();
    // Every node joined: each reports the same leader.
    let leaders: Vec<_> = servers.iter().map(|s| s.status().leader).collect();
    assert!(
        leaders.iter().all(|l| l.is_some() && *l == leaders[0]),
        "{leaders:?}"
    );
    for server in servers {
        server.shutdown().await.unwrap();
    }
}
