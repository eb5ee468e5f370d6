//! `LeaderObserver::next` reports where each log entry left the election, never a state
//! inside an entry: a watch page ends after `MAX_EVENTS_PER_PAGE` (256) events wherever that
//! falls, also between the `Released` and the `Granted` of one hand-over entry, and the
//! observer then fetches the rest of the entry before it reports. Folding only what it had
//! fetched, an observer more than a page behind reported `None` (nobody leads) although the
//! election had a leader at every committed entry.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::MemNetwork;
use dlm::{LockChange, WatchUpdate};
use std::time::Duration;

/// Waits until `watch` reports `Queue { waiting: 1 }` (the other candidate is queued).
async fn queued(watch: &mut dlm::LockWatch<dlm::mem::MemClient>) {
    loop {
        if let WatchUpdate::Event(e) = watch.next().await.unwrap() {
            if e.change == (LockChange::Queue { waiting: 1 }) {
                return;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_observer_a_page_behind_never_reports_a_gap_in_a_handover() {
    let net = MemNetwork::new(21);
    let servers = support::serve_mem(&net, &[1]).await;
    let (a, b) = (
        support::mem_client(&net, &[1], 1),
        support::mem_client(&net, &[1], 2),
    );
    let (obs, helper) = (
        support::mem_client(&net, &[1], 3),
        support::mem_client(&net, &[1], 4),
    );
    // One run per alignment of the 4-event hand-over cycle against the 256-event page.
    for shift in 0..4u32 {
        let name = format!("e{shift}");
        let mut observer = obs.election(name.as_str()).observe();
        assert_eq!(observer.next().await.unwrap(), None);
        let mut follow = helper.watch_lock(name.as_str());
        follow.next().await.unwrap();

        let leading = a
            .election(name.as_str())
            .campaign(b"a".to_vec())
            .await
            .unwrap();
        for i in 0..shift {
            leading
                .proclaim(format!("a{i}").into_bytes())
                .await
                .unwrap();
        }
        let mut holder = (a.clone(), leading.into_guard());
        let mut other = b.clone();
        for _ in 0..70 {
            let waiter = tokio::spawn({
                let other = other.clone();
                let name = name.clone();
                async move { other.lock(name.as_str()).await.unwrap() }
            });
            queued(&mut follow).await;
            let (client, guard) = holder;
            client.release(guard).await.unwrap();
            let next = waiter.await.unwrap();
            holder = (other, next);
            other = client;
        }

        // The observer was idle all along: it now reads more than a page of events.
        let last = holder.1.token();
        let mut reported = Vec::new();
        loop {
            let leader = tokio::time::timeout(Duration::from_secs(30), observer.next())
                .await
                .expect("the observer reaches the last leader")
                .unwrap();
            let done = leader.as_ref().is_some_and(|l| l.token == last);
            reported.push(leader);
            if done {
                break;
            }
        }
        assert!(
            reported.iter().all(Option::is_some),
            "alignment {shift}: the observer reported nobody leading at report {:?} of {}, \
             though every committed entry left a leader",
            reported.iter().position(Option::is_none),
            reported.len()
        );
        let (client, guard) = holder;
        client.release(guard).await.unwrap();
    }
    drop(servers);
}
