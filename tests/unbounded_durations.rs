//! A deadline the client makes from a caller's duration saturates (`Duration::MAX` means "as
//! long as it takes", as the acquire waits accept it): `Instant::now() + wait` would panic on
//! overflow and crash the caller's task or the client's own.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::MemNetwork;
use std::time::Duration;

/// `Client::tail(file, offset, Duration::MAX)` returns the bytes already there.
#[tokio::test(start_paused = true)]
async fn tail_with_an_unbounded_wait_returns_the_bytes_already_there() {
    let net = MemNetwork::new(31);
    let servers = support::serve_mem(&net, &[1]).await;
    let client = support::mem_client(&net, &[1], 1);
    let guard = client.lock("job").await.unwrap();
    client
        .append(&guard, "job.log", b"hello".to_vec())
        .await
        .unwrap();
    client.release(guard).await.unwrap();

    let tailing = tokio::spawn({
        let client = client.clone();
        async move { client.tail("job.log", 0, Duration::MAX).await }
    });
    let got = tailing.await;
    assert!(
        got.is_ok(),
        "tail with Duration::MAX panicked: {:?}",
        got.err()
    );
    assert_eq!(got.unwrap().unwrap(), (b"hello".to_vec(), 5));
    drop(servers);
}

/// The same for the client's own deadline (`ClientConfig::deadline`): once every handle is
/// dropped, the client's task goes on for at most that long to finish its background work
/// (here the release of a dropped guard). `Duration::MAX` must not crash the task before the
/// release is sent: the lock is free at once, not after its lease.
#[tokio::test(start_paused = true)]
async fn a_client_with_an_unbounded_deadline_still_releases_when_dropped() {
    let net = MemNetwork::new(32);
    let servers = support::serve_mem(&net, &[1]).await;
    let client = dlm::connect_mem_with(&net, [1], |cfg| {
        support::tune(cfg);
        cfg.lease = Duration::from_secs(60);
        cfg.deadline = Duration::MAX;
    });
    let guard = client.lock("job").await.unwrap();
    drop(guard);
    drop(client);
    let other = support::mem_client(&net, &[1], 2);
    let got = other.lock_timeout("job", Duration::from_secs(5)).await;
    assert!(got.is_ok(), "the dropped guard was released: {got:?}");
    drop(servers);
}
