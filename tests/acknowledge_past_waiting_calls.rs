//! A call that stays in flight a long time does not stop the same client's other calls.
//!
//! Each request acknowledges the answers the client has received, so that every node may
//! forget them; a session may hold at most `Limits::max_unacked` (1024) answers it has not
//! acknowledged. A `LockWatch` long-poll waits at the leader, and a `lock` (or an
//! `Election::campaign`) waits in a queue, while the same `Client` (or a clone: they share the
//! session) goes on taking and releasing other locks. Neither may hold back the acknowledgement
//! of those answers: a watch is not cached by the service, so it holds nothing back (it is
//! asked again under a fresh seq when the client has moved on), and a waiting acquire is named
//! pending in each request (`ClientRequest::pending`), so that the answers after it are
//! acknowledged while its own stays with the service. Here 1,100 acquire/release pairs, more
//! than the limit, go through while a watch or a lock waits.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::MemNetwork;

#[tokio::test(start_paused = true)]
async fn a_waiting_watch_does_not_stop_the_clients_other_calls() {
    let net = MemNetwork::new(41);
    let servers = support::serve_mem(&net, &[1]).await;
    let client = support::mem_client(&net, &[1], 1);
    let mut watch = client.watch_lock("quiet");
    watch.next().await.unwrap();
    // The next poll waits at the leader: nothing ever happens to "quiet".
    let polling = tokio::spawn(async move { watch.next().await.map(|_| ()) });
    tokio::task::yield_now().await;
    for i in 0..1_100 {
        let guard = match client.try_lock(format!("l{i}")).await {
            Ok(guard) => guard,
            Err(e) => panic!("acquire {i} while a watch polls: {e}"),
        };
        if let Err(e) = client.release(guard).await {
            panic!("release {i} while a watch polls (the lock stays held): {e}");
        }
    }
    polling.abort();
    drop(servers);
}

/// The same with a waiting `lock` instead of a watch: the waiting acquire is outstanding for as
/// long as it waits, so it holds the watermark longer still (this predates watches).
#[tokio::test(start_paused = true)]
async fn a_waiting_lock_does_not_stop_the_clients_other_calls() {
    let net = MemNetwork::new(42);
    let servers = support::serve_mem(&net, &[1]).await;
    let (client, other) = (
        support::mem_client(&net, &[1], 1),
        support::mem_client(&net, &[1], 2),
    );
    let held = other.lock("busy").await.unwrap();
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.lock("busy").await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    for i in 0..1_100 {
        let guard = match client.try_lock(format!("l{i}")).await {
            Ok(guard) => guard,
            Err(e) => panic!("acquire {i} while a lock waits: {e}"),
        };
        if let Err(e) = client.release(guard).await {
            panic!("release {i} while a lock waits (the lock stays held): {e}");
        }
    }
    waiting.abort();
    drop(held);
    drop(servers);
}
