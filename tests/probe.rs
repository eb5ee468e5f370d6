//! The commit-latency probe (`dlm::runtime::PROBE_TARGET`, used by `examples/breakdown.rs`):
//! one append on a 3-node in-memory cluster shows every step of its commit, on the nodes where
//! they happen and in causal order. If a step's event moved or vanished, the breakdown would
//! silently measure something else.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::MemNetwork;
use dlm::runtime::PROBE_TARGET;
use dlm::{Client, ClientConfig, NodeId};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// (node, step, peer, at) of one probe event.
type Event = (u64, String, u64, u64);
/// The probe events, in the order seen.
type Seen = Arc<Mutex<Vec<Event>>>;

#[derive(Default)]
struct Fields(u64, String, u64, u64);

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "node" => self.0 = value,
            "peer" => self.2 = value,
            "at" => self.3 = value,
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.1 = value.to_owned();
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

struct Recorder(Seen);

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((f.0, f.1, f.2, f.3));
    }
}

#[tokio::test(start_paused = true)]
async fn one_append_shows_every_step_of_its_commit_in_order() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(
        Recorder(seen.clone())
            .with_filter(Targets::new().with_target(PROBE_TARGET, tracing::Level::TRACE)),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let net = MemNetwork::new(3);
    let members = [1, 2, 3];
    let servers = support::serve_mem(&net, &members).await;
    let leader = support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    let mut cfg = ClientConfig::new(members.iter().copied().map(NodeId));
    cfg.seed = Some(1);
    support::tune(&mut cfg);
    let client = Client::new(net.client(), cfg);
    let guard = client.lock("l").await.unwrap();
    // Only the append's commit from here on.
    seen.lock().unwrap().clear();
    client.append(&guard, "f", b"x".to_vec()).await.unwrap();
    let events = seen.lock().unwrap().clone();

    let position = |what: &dyn Fn(&Event) -> bool, from: usize| {
        events[from..]
            .iter()
            .position(what)
            .map(|i| from + i)
            .unwrap_or_else(|| panic!("a step is missing after #{from}: {events:#?}"))
    };
    let request = position(&|e| e.0 == leader && e.1 == "request_in", 0);
    let sent = position(&|e| e.0 == leader && e.1 == "append_out", request);
    let (follower, index) = (events[sent].2, events[sent].3);
    assert_ne!(follower, leader);
    let received = position(
        &|e| e.0 == follower && e.1 == "append_in" && e.2 == leader && e.3 == index,
        sent,
    );
    let synced = position(&|e| e.0 == follower && e.1 == "sync_start", received);
    let done = position(&|e| e.0 == follower && e.1 == "sync_done", synced);
    let acked = position(
        &|e| e.0 == follower && e.1 == "ack_out" && e.2 == leader && e.3 >= index,
        done,
    );
    let heard = position(
        &|e| e.0 == leader && e.1 == "ack_in" && e.2 == follower && e.3 >= index,
        acked,
    );
    position(&|e| e.0 == leader && e.1 == "reply_out", heard);
    position(&|e| e.0 == leader && e.1 == "sync_done", request);

    client.release(guard).await.unwrap();
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
