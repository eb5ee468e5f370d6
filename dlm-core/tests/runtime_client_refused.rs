//! A client whose every node refuses it at the handshake fails at once with the reason, rather
//! than retrying until its deadline and reporting the cluster unavailable.
#![cfg(feature = "tokio")]

use async_trait::async_trait;
use dlm_core::runtime::{Client, ClientConfig, ClientError, ClientTransport, TransportError};
use dlm_core::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// Nodes in `refusing` refuse every call at the handshake; the others grant every acquire.
struct Stub {
    refusing: BTreeSet<u64>,
}

#[async_trait]
impl ClientTransport for Stub {
    async fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError> {
        if self.refusing.contains(&node.get()) {
            return Err(TransportError::Handshake(format!(
                "node {node}: cluster id 2 does not match this node's cluster 1"
            )));
        }
        Ok(ClientResponse {
            client: request.client,
            seq: request.seq,
            result: Ok(Reply::Granted {
                token: FencingToken(7),
                lease: Duration::from_secs(60),
            }),
        })
    }
}

fn client(refusing: &[u64]) -> Client<Stub> {
    let mut cfg = ClientConfig::new([1, 2, 3].map(NodeId));
    cfg.seed = Some(1);
    cfg.deadline = Duration::from_secs(30);
    let stub = Stub {
        refusing: refusing.iter().copied().collect(),
    };
    Client::new(stub, cfg)
}

#[tokio::test(start_paused = true)]
async fn every_node_refusing_fails_the_call_with_the_reason() {
    let client = client(&[1, 2, 3]);
    match client.try_lock("l").await {
        Err(ClientError::Refused(reason)) => assert!(reason.contains("cluster id"), "{reason}"),
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("a refused client got a lock"),
    }
}

#[tokio::test(start_paused = true)]
async fn one_node_that_accepts_is_enough() {
    let client = client(&[1, 2]);
    let guard = client.try_lock("l").await.unwrap();
    assert_eq!(guard.token(), FencingToken(7));
}
