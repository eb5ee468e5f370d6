//! `Election::campaign(value)` with a value over `MAX_VALUE` (4 KiB) fails at once with
//! `ValueTooLarge`, before it queues. Checked only by the proclaim that follows the win, the
//! candidate waited its whole turn (behind a leader that may hold for days), won, was shown to
//! observers as a leader with no value, then failed and resigned.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::MemNetwork;
use dlm::{LockChange, WatchUpdate};

#[tokio::test(start_paused = true)]
async fn a_campaign_with_an_oversized_value_fails_before_it_wins() {
    let net = MemNetwork::new(61);
    let servers = support::serve_mem(&net, &[1]).await;
    let (leader, candidate, observer) = (
        support::mem_client(&net, &[1], 1),
        support::mem_client(&net, &[1], 2),
        support::mem_client(&net, &[1], 3),
    );
    let mut watch = observer.watch_lock("primary");
    watch.next().await.unwrap();
    let leading = leader
        .election("primary")
        .campaign(b"node-a".to_vec())
        .await
        .unwrap();
    let campaign = tokio::spawn({
        let candidate = candidate.clone();
        async move {
            candidate
                .election("primary")
                .campaign(vec![b'x'; dlm::MAX_VALUE + 1])
                .await
                .map(|_| ())
        }
    });
    // The campaign ends while the current leader still leads: it never waited its turn.
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), campaign)
        .await
        .expect("the campaign fails without waiting for the leader to step down")
        .unwrap();
    assert!(
        matches!(
            result,
            Err(dlm::ClientError::Rejected(dlm::Rejection::ValueTooLarge { max }))
                if max == dlm::MAX_VALUE
        ),
        "an oversized value is refused as such: {result:?}"
    );
    leading.resign().await.unwrap();
    let mut granted_to_candidate = false;
    while let Ok(Ok(update)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.next()).await
    {
        if let WatchUpdate::Event(e) = update {
            if let LockChange::Granted { client, .. } = e.change {
                granted_to_candidate |= client == candidate.id().tag();
            }
        }
    }
    assert!(
        !granted_to_candidate,
        "the candidate with a value it can never proclaim was made leader first ({result:?})"
    );
    drop(servers);
}
