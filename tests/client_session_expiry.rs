//! A long-lived client that stays idle past the session time-to-live (default 600 s) must be
//! able to lock again: `Rejection::SessionExpired` says "start again with a new client id".
//! In-memory cluster under paused tokio time, so the idle period costs nothing.
#![cfg(feature = "mem")]

mod support;

use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_client_idle_past_the_session_ttl_can_lock_again() {
    let net = dlm::mem::MemNetwork::new(1);
    let servers = support::start_mem_cluster(&net, &[1, 2, 3]).await;
    let client = dlm::connect_mem(&net, [1, 2, 3]);
    let guard = client.lock("a").await.unwrap();
    client.release(guard).await.unwrap();
    // Past the TTL and the sweep that follows it (every TTL / 4).
    tokio::time::sleep(Duration::from_secs(1000)).await;
    let guard = client.lock("a").await.unwrap();
    client.release(guard).await.unwrap();
    for server in servers {
        server.shutdown().await.unwrap();
    }
}
