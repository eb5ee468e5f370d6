//! Shared locks and semaphores through the async client on a 3-node in-memory cluster:
//! readers share and a writer waits for them, a waiting writer holds back a later reader,
//! a semaphore admits its permits and hands a freed one to the next waiter, a dropped waiting
//! acquire leaves nothing behind, and the wrong kind, the wrong size and a reader's append are
//! refused by name.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::{MemClient, MemNetwork};
use dlm::{Client, ClientError, LockKind, Mode, Rejection};
use std::time::Duration;

const MEMBERS: [u64; 3] = [1, 2, 3];

fn client(net: &MemNetwork, seed: u64) -> Client<MemClient> {
    support::mem_client(net, &MEMBERS, seed)
}

/// Waits until the listing shows `waiting` acquires queued on `lock`.
async fn until_waiting(admin: &Client<MemClient>, lock: &str, waiting: u64) {
    loop {
        let locks = admin.locks(lock).await.unwrap();
        if locks.first().is_some_and(|l| l.waiting == waiting) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn readers_share_a_writer_waits_and_holds_back_later_readers() {
    let net = MemNetwork::new(11);
    let servers = support::serve_mem(&net, &MEMBERS).await;
    support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    let (a, b, w, late) = (
        client(&net, 1),
        client(&net, 2),
        client(&net, 3),
        client(&net, 4),
    );
    let ra = a.rwlock("cfg").read().await.unwrap();
    let rb = b.rwlock("cfg").try_read().await.unwrap();
    assert!(rb.token() > ra.token(), "each grant its own token");
    assert!(matches!(
        w.rwlock("cfg").try_write().await,
        Err(ClientError::Busy)
    ));
    let writing = tokio::spawn({
        let w = w.clone();
        async move { w.rwlock("cfg").write().await }
    });
    until_waiting(&a, "cfg", 1).await;
    // A later reader queues behind the writer instead of joining the readers.
    assert!(matches!(
        late.rwlock("cfg").try_read().await,
        Err(ClientError::Busy)
    ));
    let row = a.locks("cfg").await.unwrap().remove(0);
    assert_eq!(row.kind, LockKind::Shared);
    let modes: Vec<Mode> = row.holders.iter().map(|h| h.mode).collect();
    assert_eq!(modes, vec![Mode::Read, Mode::Read]);

    // A reader may not append; once both readers leave, the writer may.
    let refused = a.append(&ra, "cfg.log", b"no".to_vec()).await;
    assert!(matches!(
        refused,
        Err(ClientError::Rejected(Rejection::NotExclusive))
    ));
    a.release(ra).await.unwrap();
    b.release(rb).await.unwrap();
    let wg = writing.await.unwrap().unwrap();
    assert_eq!(w.append(&wg, "cfg.log", b"yes".to_vec()).await.unwrap(), 0);

    // The wrong kind is refused while the name exists.
    let wrong = a.try_lock("cfg").await;
    assert!(matches!(
        wrong,
        Err(ClientError::Rejected(Rejection::WrongKind {
            kind: LockKind::Shared
        }))
    ));
    w.release(wg).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_semaphore_admits_its_permits_and_hands_one_on() {
    let net = MemNetwork::new(12);
    let servers = support::serve_mem(&net, &MEMBERS).await;
    support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    let clients: Vec<_> = (1..=4).map(|seed| client(&net, seed)).collect();
    let sem = |i: usize| clients[i].semaphore("pool", 2);
    assert_eq!(sem(0).permits(), 2);
    let p0 = sem(0).acquire().await.unwrap();
    let p1 = sem(1).try_acquire().await.unwrap();
    assert!(matches!(sem(2).try_acquire().await, Err(ClientError::Busy)));
    assert!(matches!(
        clients[2].semaphore("pool", 3).try_acquire().await,
        Err(ClientError::Rejected(Rejection::WrongKind {
            kind: LockKind::Semaphore { permits: 2 }
        }))
    ));
    let waiting = tokio::spawn({
        let s = sem(2);
        async move { s.acquire().await }
    });
    until_waiting(&clients[0], "pool", 1).await;
    // A timed acquire behind it gives up (the leader's time-out and the client's own race,
    // as for `lock_timeout`), and leaves the queue as it found it.
    let timed_out = sem(3).acquire_timeout(Duration::from_millis(200)).await;
    assert!(
        matches!(
            timed_out,
            Err(ClientError::TimedOut | ClientError::Unavailable(_))
        ),
        "{timed_out:?}"
    );
    until_waiting(&clients[0], "pool", 1).await;

    clients[0].release(p0).await.unwrap();
    let p2 = waiting.await.unwrap().unwrap();
    assert!(p2.token() > p1.token());
    let row = clients[1].locks("pool").await.unwrap().remove(0);
    assert_eq!(row.holding, 2);
    assert_eq!(row.waiting, 0);
    clients[1].release(p1).await.unwrap();
    clients[2].release(p2).await.unwrap();
    assert!(clients[1].locks("pool").await.unwrap().is_empty());
}
