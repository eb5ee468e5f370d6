//! The operators' calls on a 3-node in-memory cluster (no authentication, so every client may
//! make them): the lock and session listings show holder, token, lease left and waiters; a
//! revoke hands the lock to the next waiter under a newer token and the old holder's append is
//! refused as revoked; bad input gets a typed refusal and the cluster keeps serving.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::{MemClient, MemNetwork};
use dlm::{Client, ClientError, LossReason, Rejection, Role};
use std::time::Duration;

const MEMBERS: [u64; 3] = [1, 2, 3];

fn client(net: &MemNetwork, seed: u64) -> Client<MemClient> {
    support::mem_client(net, &MEMBERS, seed)
}

#[tokio::test(start_paused = true)]
async fn an_operator_lists_and_revokes_and_the_old_holder_is_fenced() {
    let net = MemNetwork::new(7);
    let servers = support::serve_mem(&net, &MEMBERS).await;
    support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    let (holder, waiter, admin) = (client(&net, 1), client(&net, 2), client(&net, 3));

    let guard = holder.lock("jobs/a").await.unwrap();
    let old = guard.token();
    let waiting = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.lock("jobs/a").await }
    });
    // The waiter is queued once the listing shows it (no sleeps: ask until it does).
    let row = loop {
        let locks = admin.locks("jobs/").await.unwrap();
        if locks.first().is_some_and(|l| l.waiting == 1) {
            break locks[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let held = row.holder().cloned().unwrap();
    assert_eq!((held.client, held.token), (holder.id(), old));
    assert!(held.lease_left.is_some_and(|left| left <= held.lease));
    assert_eq!(row.waiters, vec![waiter.id()]);
    assert!(admin.locks("other/").await.unwrap().is_empty());
    let sessions = admin.sessions().await.unwrap();
    let of_holder = sessions.iter().find(|s| s.client == holder.id()).unwrap();
    assert_eq!(of_holder.held, vec![dlm::LockName::from("jobs/a")]);
    let of_waiter = sessions.iter().find(|s| s.client == waiter.id()).unwrap();
    assert_eq!(of_waiter.waiting_for, vec![dlm::LockName::from("jobs/a")]);

    assert_eq!(admin.revoke("jobs/a").await.unwrap(), (holder.id(), old));
    let next = waiting.await.unwrap().unwrap();
    assert!(next.token() > old, "{} after {old}", next.token());
    let refused = holder
        .append(&guard, "jobs/a.log", b"late\n".to_vec())
        .await;
    assert_eq!(
        refused,
        Err(ClientError::Rejected(Rejection::Revoked { token: old }))
    );
    // The holder's next keep-alive tells it why the lock went (paused time: no waiting).
    assert_eq!(guard.lost().await, LossReason::Revoked);
    assert_eq!(guard.loss(), Some(LossReason::Revoked));
    waiter
        .append(&next, "jobs/a.log", b"on time\n".to_vec())
        .await
        .unwrap();

    // Bad input: typed refusals, and the cluster still serves.
    assert_eq!(
        admin.revoke("no-such-lock").await,
        Err(ClientError::Rejected(Rejection::NotHeld))
    );
    assert!(matches!(
        admin.locks_page("", None, 0).await,
        Err(ClientError::Rejected(Rejection::Invalid(_)))
    ));
    assert!(matches!(
        admin.revoke("").await,
        Err(ClientError::Rejected(Rejection::BadName { .. }))
    ));
    let members = admin.members().await;
    assert_eq!(members.len(), 3);
    let leaders = members
        .iter()
        .filter(|(_, s)| s.as_ref().is_ok_and(|s| s.role == Role::Leader))
        .count();
    assert_eq!(leaders, 1);
    waiter.release(next).await.unwrap();
    assert!(admin.locks("").await.unwrap().is_empty());
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
