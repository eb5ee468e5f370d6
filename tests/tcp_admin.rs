//! Admin requests over TCP with authentication on: a connection that proved the client secret
//! is refused them (`Rejection::NotAuthorized`, with the reason) but still serves its other
//! requests; one that proved the admin secret may list and revoke; a wrong admin secret is
//! refused at the handshake; a node without an admin secret serves admin requests to nobody;
//! with authentication off, every client may.
#![cfg(feature = "tcp")]

mod support;

use dlm::tcp::auth::{NEEDS_ADMIN_SECRET, NODE_PROOF_BAD_ADMIN, NO_ADMIN_SECRET};
use dlm::{ClientError, ClusterAccess, ClusterSecret, Rejection, Server, DEFAULT_CLUSTER_ID};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

const CLIENT: &str = "the admin test's client secret";
const ADMIN: &str = "the admin test's operator secret";

fn secret(text: &str) -> ClusterSecret {
    ClusterSecret::new(text).unwrap()
}

/// One node with the client secret and, if given, the admin secret.
async fn start(client: Option<&str>, admin: Option<&str>) -> (Vec<(u64, SocketAddr)>, Server) {
    let members = support::local_members(1);
    let mut builder = Server::builder().id(1);
    if let Some(client) = client {
        builder = builder.secret(secret(client));
    }
    if let Some(admin) = admin {
        builder = builder
            .admin_secret(secret(admin))
            .peer_secret(secret("the members' own secret"));
    }
    let server = builder.serve_tcp(members[0].1).await.unwrap();
    let servers = BTreeMap::from([(1, server)]);
    support::wait_for_leader(&servers, Duration::from_secs(10)).await;
    let server = servers.into_values().next().unwrap();
    (members, server)
}

fn client(
    members: &[(u64, SocketAddr)],
    client: Option<&str>,
    admin: Option<&str>,
) -> dlm::Client<dlm::tcp::TcpClient> {
    let mut access = ClusterAccess::new(DEFAULT_CLUSTER_ID);
    if let Some(client) = client {
        access = access.secret(secret(client));
    }
    if let Some(admin) = admin {
        access = access.admin_secret(secret(admin));
    }
    dlm::connect_tcp_with(members.to_vec(), access, |cfg| {
        support::tune(cfg);
        cfg.deadline = Duration::from_secs(30);
    })
}

fn not_authorized(why: &str) -> ClientError {
    ClientError::Rejected(Rejection::NotAuthorized(why.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_admin_secret_allows_admin_requests() {
    let (members, server) = start(Some(CLIENT), Some(ADMIN)).await;
    let user = client(&members, Some(CLIENT), None);
    let guard = user.lock("l").await.unwrap();
    assert_eq!(
        user.locks("").await.map(|_| ()),
        Err(not_authorized(NEEDS_ADMIN_SECRET))
    );
    assert_eq!(
        user.sessions().await.map(|_| ()),
        Err(not_authorized(NEEDS_ADMIN_SECRET))
    );
    assert_eq!(
        user.revoke("l").await.map(|_| ()),
        Err(not_authorized(NEEDS_ADMIN_SECRET))
    );
    // The refusal did not stop the connection or the node: the user's lock is still good.
    user.append(&guard, "l.log", b"still mine\n".to_vec())
        .await
        .unwrap();

    let operator = client(&members, None, Some(ADMIN));
    let locks = operator.locks("").await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].holder().map(|h| h.token), Some(guard.token()));
    assert_eq!(
        operator.revoke("l").await.unwrap(),
        (user.id(), guard.token())
    );
    assert_eq!(
        user.append(&guard, "l.log", b"too late\n".to_vec()).await,
        Err(ClientError::Rejected(Rejection::Revoked {
            token: guard.token()
        }))
    );

    let impostor = client(&members, None, Some(CLIENT));
    match impostor.locks("").await {
        Err(ClientError::Refused(reason)) => {
            assert!(reason.contains(NODE_PROOF_BAD_ADMIN), "{reason}")
        }
        other => panic!("an operator with the client secret got {other:?}"),
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_an_admin_secret_serves_admin_requests_only_without_authentication() {
    let (members, server) = start(Some(CLIENT), None).await;
    // An operator's connection proves the client secret there, and is a client.
    let operator = client(&members, None, Some(CLIENT));
    assert_eq!(
        operator.locks("").await.map(|_| ()),
        Err(not_authorized(NO_ADMIN_SECRET))
    );
    // One that brings an admin secret there is told the node may have none.
    let operator = client(&members, None, Some(ADMIN));
    match operator.locks("").await {
        Err(ClientError::Refused(reason)) => {
            assert!(reason.contains(NODE_PROOF_BAD_ADMIN), "{reason}")
        }
        other => panic!("an operator with an admin secret the node lacks got {other:?}"),
    }
    server.shutdown().await.unwrap();

    let (members, server) = start(None, None).await;
    let anyone = client(&members, None, None);
    let guard = anyone.lock("open").await.unwrap();
    assert_eq!(anyone.locks("").await.unwrap().len(), 1);
    assert_eq!(
        anyone.revoke("open").await.unwrap(),
        (anyone.id(), guard.token())
    );
    server.shutdown().await.unwrap();
}

/// An admin secret without a members-only one would be a lock with the key beside it: a
/// client knowing the client secret could say it is a member and write to the log. The node
/// refuses to start, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_secret_without_a_peer_secret_is_refused_at_start() {
    let members = support::local_members(1);
    let refused = Server::builder()
        .id(1)
        .secret(secret(CLIENT))
        .admin_secret(secret(ADMIN))
        .serve_tcp(members[0].1)
        .await;
    match refused {
        Err(e) => assert!(
            e.to_string().contains(dlm::tcp::ADMIN_NEEDS_PEER_SECRET),
            "{e}"
        ),
        Ok(_) => panic!("a node started with an admin secret and no peer secret"),
    }
}
