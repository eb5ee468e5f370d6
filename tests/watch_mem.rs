//! Watches, tails and elections on a 3-node in-memory cluster under paused time: events in
//! commit order and each once, also across a leader change; the same history from every
//! leader; a watcher behind the window told so; a tail that waits for the next append; an
//! election whose observers follow each leader and value.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::MemNetwork;
use dlm::{
    ClientId, EventPosition, FencingToken, Leader, LockChange, LockView, LogIndex, Mode, Server,
    WatchUpdate,
};
use std::time::Duration;

const MEMBERS: [u64; 3] = [1, 2, 3];

fn granted(client: ClientId, token: FencingToken) -> LockChange {
    LockChange::Granted {
        client: client.tag(),
        token,
        mode: Mode::Exclusive,
    }
}

async fn next_event(watch: &mut dlm::LockWatch<dlm::mem::MemClient>) -> LockChange {
    match watch.next().await.unwrap() {
        WatchUpdate::Event(event) => event.change,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_watch_sees_every_event_once_in_order_across_a_leader_change() {
    let net = MemNetwork::new(11);
    let mut servers = support::serve_mem(&net, &MEMBERS).await;
    let (a, b) = (
        support::mem_client(&net, &MEMBERS, 1),
        support::mem_client(&net, &MEMBERS, 2),
    );
    let watcher = support::mem_client(&net, &MEMBERS, 3);
    let mut watch = watcher.watch_lock("job");
    match watch.next().await.unwrap() {
        WatchUpdate::State {
            view, compacted, ..
        } => assert_eq!((view, compacted), (LockView::default(), false)),
        other => panic!("a watch from now starts with the state: {other:?}"),
    }

    let guard_a = a.lock("job").await.unwrap();
    let token_a = guard_a.token();
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.lock("job").await.unwrap() }
    });
    assert_eq!(next_event(&mut watch).await, granted(a.id(), token_a));
    assert_eq!(
        next_event(&mut watch).await,
        LockChange::Queue { waiting: 1 }
    );
    a.release(guard_a).await.unwrap();
    let guard_b = waiter.await.unwrap();
    let token_b = guard_b.token();
    assert_eq!(
        next_event(&mut watch).await,
        LockChange::Released { token: token_a }
    );
    assert_eq!(next_event(&mut watch).await, granted(b.id(), token_b));
    assert_eq!(
        next_event(&mut watch).await,
        LockChange::Queue { waiting: 0 }
    );

    // The leader dies; the watch goes on at the next one from where it was.
    let (leader, _) = support::wait_for_leader(&servers, Duration::from_secs(5)).await;
    servers.remove(&leader).unwrap().kill().await;
    b.release(guard_b).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        LockChange::Released { token: token_b }
    );

    // The new leader tells the whole history the same way, from the first entry on.
    let mut replay = watcher.watch_lock_from("job", EventPosition::end_of(LogIndex(0)));
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(next_event(&mut replay).await);
    }
    assert_eq!(
        seen,
        vec![
            granted(a.id(), token_a),
            LockChange::Queue { waiting: 1 },
            LockChange::Released { token: token_a },
            granted(b.id(), token_b),
            LockChange::Queue { waiting: 0 },
            LockChange::Released { token: token_b },
        ]
    );
    assert_eq!(replay.position(), watch.position());
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_watcher_behind_the_window_gets_the_state_marked_compacted() {
    let net = MemNetwork::new(12);
    let server = Server::builder()
        .id(1)
        .watch_history(4)
        .serve_mem(&net)
        .await
        .unwrap();
    let client = support::mem_client(&net, &[1], 1);
    let mut watch = client.watch_lock("job");
    watch.next().await.unwrap();
    let behind = watch.position().unwrap();
    for _ in 0..5 {
        let guard = client.lock("job").await.unwrap();
        client.release(guard).await.unwrap();
    }
    let guard = client.lock("job").await.unwrap();
    let mut late = client.watch_lock_from("job", behind);
    match late.next().await.unwrap() {
        WatchUpdate::State {
            view, compacted, ..
        } => {
            assert!(compacted, "the events it missed are gone: it must be told");
            assert_eq!(view.holders.len(), 1);
            assert_eq!(view.holders[0].token, guard.token());
        }
        other => panic!("expected the state, got {other:?}"),
    }
    // And it goes on with the events after that state.
    client.release(guard).await.unwrap();
    assert!(matches!(
        next_event(&mut late).await,
        LockChange::Released { .. }
    ));
    server.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tail_returns_what_is_there_and_waits_for_the_next_append() {
    let net = MemNetwork::new(13);
    let servers = support::serve_mem(&net, &MEMBERS).await;
    let writer = support::mem_client(&net, &MEMBERS, 1);
    let reader = support::mem_client(&net, &MEMBERS, 2);
    let guard = writer.lock("log").await.unwrap();
    writer
        .append(&guard, "log.txt", b"a\n".to_vec())
        .await
        .unwrap();
    let wait = Duration::from_secs(30);
    assert_eq!(
        reader.tail("log.txt", 0, wait).await.unwrap(),
        (b"a\n".to_vec(), 2)
    );
    let pending = tokio::spawn({
        let reader = reader.clone();
        async move { reader.tail("log.txt", 2, wait).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!pending.is_finished(), "nothing was appended yet");
    writer
        .append(&guard, "log.txt", b"b\n".to_vec())
        .await
        .unwrap();
    assert_eq!(pending.await.unwrap(), (b"b\n".to_vec(), 4));
    // Nothing more within the wait: no bytes, the length as it is.
    let short = Duration::from_secs(1);
    assert_eq!(
        reader.tail("log.txt", 4, short).await.unwrap(),
        (Vec::new(), 4)
    );
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn observers_follow_each_leader_and_what_it_proclaims() {
    let net = MemNetwork::new(14);
    let servers = support::serve_mem(&net, &MEMBERS).await;
    let (one, two) = (
        support::mem_client(&net, &MEMBERS, 1),
        support::mem_client(&net, &MEMBERS, 2),
    );
    let observer = support::mem_client(&net, &MEMBERS, 3);
    let mut leaders = observer.election("primary").observe();
    assert_eq!(leaders.next().await.unwrap(), None);

    let first = one
        .election("primary")
        .campaign(b"one".to_vec())
        .await
        .unwrap();
    let leader = |client: ClientId, token, value: Option<&[u8]>| Leader {
        client: client.tag(),
        token,
        value: value.map(<[u8]>::to_vec),
    };
    // Granted, then proclaimed: the observer sees both steps.
    assert_eq!(
        leaders.next().await.unwrap(),
        Some(leader(one.id(), first.token(), None))
    );
    assert_eq!(
        leaders.next().await.unwrap(),
        Some(leader(one.id(), first.token(), Some(b"one")))
    );
    let second = tokio::spawn({
        let two = two.clone();
        async move {
            two.election("primary")
                .campaign(b"two".to_vec())
                .await
                .unwrap()
        }
    });
    first.proclaim(b"uno".to_vec()).await.unwrap();
    assert_eq!(
        leaders.next().await.unwrap(),
        Some(leader(one.id(), first.token(), Some(b"uno")))
    );
    let first_token = first.token();
    first.resign().await.unwrap();
    let second = second.await.unwrap();
    assert!(second.token() > first_token);
    // The resignation and the next grant are one entry: no leaderless moment in between.
    assert_eq!(
        leaders.next().await.unwrap(),
        Some(leader(two.id(), second.token(), None))
    );
    assert_eq!(
        leaders.next().await.unwrap(),
        Some(leader(two.id(), second.token(), Some(b"two")))
    );
    second.resign().await.unwrap();
    assert_eq!(leaders.next().await.unwrap(), None);
    // The same history as a stream, from a fresh observer: nobody leads now.
    use futures::StreamExt;
    let mut stream = Box::pin(observer.election("primary").observe().into_stream());
    assert_eq!(stream.next().await.map(Result::unwrap), Some(None));
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

/// A client id is its session's credential (with a grant's token, a request acts as that
/// holder), and anyone may watch: so a watch names holders by tag, in its events and in the
/// state it starts with, and nothing it answers carries the holder's id.
#[tokio::test(start_paused = true)]
async fn a_watch_names_holders_by_tag_and_never_by_their_id() {
    let net = MemNetwork::new(51);
    let servers = support::serve_mem(&net, &[1]).await;
    let owner = support::mem_client(&net, &[1], 1);
    let watcher = support::mem_client(&net, &[1], 2);
    let mut watch = watcher.watch_lock("payroll");
    watch.next().await.unwrap();
    let guard = owner.lock("payroll").await.unwrap();
    let id = owner.id().0.to_string();
    let event = next_event(&mut watch).await;
    assert_eq!(event, granted(owner.id(), guard.token()));
    let json = serde_json::to_string(&event).unwrap();
    assert!(
        !json.contains(&id),
        "a watch event carries the holder's id: {json}"
    );
    let view = match watcher.watch_lock("payroll").next().await.unwrap() {
        WatchUpdate::State { view, .. } => view,
        other => panic!("a watch from now starts with the state: {other:?}"),
    };
    assert_eq!(view.holders[0].client, owner.id().tag());
    let json = serde_json::to_string(&view).unwrap();
    assert!(
        !json.contains(&id),
        "a watch's state carries the holder's id: {json}"
    );
    drop(guard);
    drop(servers);
}
