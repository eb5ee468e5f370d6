//! `ServerBuilder::lease_cap` through the facade: a node on the in-memory network refuses a
//! client whose lease is above its cap, grants one at the cap, and will not start with a cap
//! outside the cluster's lease limits.
#![cfg(feature = "mem")]

use dlm::mem::MemNetwork;
use dlm::{Client, ClientConfig, ClientError, ConfigError, Limits, NodeId, Rejection};
use dlm::{Server, StartError};
use std::time::Duration;

const CAP: Duration = Duration::from_secs(2);

#[tokio::test(start_paused = true)]
async fn a_capped_node_refuses_longer_leases_and_grants_the_cap() {
    let net = MemNetwork::new(1);
    let server = Server::builder()
        .id(1)
        .lease_cap(CAP)
        .serve_mem(&net)
        .await
        .unwrap();
    let client_with = |lease| {
        let mut cfg = ClientConfig::new([NodeId(1)]);
        cfg.lease = lease;
        Client::new(net.client(), cfg)
    };
    let greedy = client_with(CAP + Duration::from_millis(1));
    let refused = greedy.lock("a").await.map(|guard| guard.token());
    let bad_lease = Rejection::BadLease {
        min: Limits::default().min_lease,
        max: CAP,
    };
    assert!(
        matches!(&refused, Err(ClientError::Rejected(r)) if *r == bad_lease),
        "{refused:?}"
    );
    let modest = client_with(CAP);
    let guard = modest.lock("a").await.unwrap();
    modest.release(guard).await.unwrap();
    server.shutdown().await.unwrap();
}

#[test]
fn a_cap_outside_the_lease_limits_is_refused_by_the_builder() {
    let limits = Limits::default();
    let config = |cap| Server::builder().id(1).lease_cap(cap).config();
    assert_eq!(config(CAP).map(|cfg| cfg.lease_cap).ok(), Some(Some(CAP)));
    for cap in [limits.min_lease / 2, limits.max_lease * 2] {
        let result = config(cap);
        assert!(
            matches!(result, Err(StartError::Config(ConfigError::Invalid(_)))),
            "{cap:?}: {result:?}"
        );
    }
}
