//! The client's keep-alive racing its own acquires and releases, against a scripted one-node
//! "service" whose answers the test holds back and lets go in a chosen order. Paused time, so the
//! interleavings are exact.
#![cfg(feature = "tokio")]

use async_trait::async_trait;
use dlm_core::runtime::{Client, ClientConfig, ClientTransport, LockGuard, TransportError};
use dlm_core::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

const LEASE: Duration = Duration::from_secs(3);

/// A service that applies each request the moment it arrives and answers it once the gate for
/// its kind of request lets it through.
#[derive(Default)]
struct Scripted {
    requests: Mutex<Vec<ClientRequest>>,
    held: Mutex<Vec<(LockName, FencingToken)>>,
    next_token: Mutex<u64>,
    acquire_gate: Gate,
    release_gate: Gate,
    keepalive_gate: Gate,
    cancel_gate: Gate,
    cancel_keeps_grants: AtomicBool,
}

/// Answers pass only while the gate holds permits; a closed gate holds them back.
struct Gate(Semaphore);

impl Default for Gate {
    fn default() -> Self {
        Gate(Semaphore::new(Semaphore::MAX_PERMITS))
    }
}

impl Gate {
    fn close(&self) {
        self.0.forget_permits(Semaphore::MAX_PERMITS);
    }

    fn let_one_through(&self) {
        self.0.add_permits(1);
    }

    fn open(&self) {
        self.0.add_permits(1 << 20);
    }

    async fn pass(&self) {
        if let Ok(permit) = self.0.acquire().await {
            permit.forget();
        }
    }
}

impl Scripted {
    fn apply(&self, op: &Op) -> Result<Reply, Rejection> {
        let mut held = self.held.lock().unwrap();
        match op {
            Op::Acquire { lock, .. } if held.iter().any(|(l, _)| l == lock) => {
                let token = held.iter().find(|(l, _)| l == lock).map(|(_, t)| *t);
                Err(Rejection::AlreadyHeld {
                    token: token.unwrap(),
                })
            }
            Op::Acquire { lock, lease, .. } => {
                let mut next = self.next_token.lock().unwrap();
                *next += 1;
                held.push((lock.clone(), FencingToken(*next)));
                Ok(Reply::Granted {
                    token: FencingToken(*next),
                    lease: *lease,
                })
            }
            Op::Release { lock, token } => {
                let before = held.len();
                held.retain(|(l, t)| !(l == lock && t == token));
                if held.len() < before {
                    Ok(Reply::Released)
                } else {
                    Err(Rejection::NotHolder)
                }
            }
            Op::KeepAlive => Ok(Reply::KeptAlive {
                held: held.clone(),
                revoked: Vec::new(),
            }),
            // A cancel that finds its acquire granted gives the grant back, unless this
            // service is told to act as if the cancel were lost.
            Op::Cancel { lock, .. } => {
                let at = held.iter().position(|(l, _)| l == lock);
                match at {
                    Some(at) if !self.cancel_keeps_grants.load(Ordering::SeqCst) => {
                        let (_, token) = held.remove(at);
                        Ok(Reply::Cancelled(Withdrawn::Released { token }))
                    }
                    _ => Ok(Reply::Cancelled(Withdrawn::Nothing)),
                }
            }
            // The one node leads, whoever asks (the client probes it while an acquire waits).
            Op::Status => Ok(Reply::Status(NodeStatus {
                id: NodeId(1),
                role: Role::Leader,
                term: Term(1),
                leader: Some(NodeId(1)),
                commit: LogIndex(0),
                applied: LogIndex(0),
                last_index: LogIndex(0),
                leader_addr: String::new(),
            })),
            other => Err(Rejection::Invalid(format!("not scripted: {other:?}"))),
        }
    }

    fn gate(&self, op: &Op) -> Option<&Gate> {
        match op {
            Op::Acquire { .. } => Some(&self.acquire_gate),
            Op::Release { .. } => Some(&self.release_gate),
            Op::KeepAlive => Some(&self.keepalive_gate),
            Op::Cancel { .. } => Some(&self.cancel_gate),
            _ => None,
        }
    }

    fn count(&self, matches: impl Fn(&Op) -> bool) -> usize {
        let requests = self.requests.lock().unwrap();
        requests.iter().filter(|r| matches(&r.op)).count()
    }

    /// The distinct seqs of the release requests for `lock`: one per release the client meant.
    fn release_seqs(&self, lock: &str) -> BTreeSet<Seq> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|r| matches!(&r.op, Op::Release { lock: l, .. } if l.as_str() == lock))
            .map(|r| r.seq)
            .collect()
    }

    /// Lets simulated time run until `n` requests matching `matches` have arrived.
    async fn arrived(&self, n: usize, matches: impl Fn(&Op) -> bool) {
        while self.count(&matches) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[derive(Clone, Default)]
struct Net(Arc<Scripted>);

#[async_trait]
impl ClientTransport for Net {
    async fn call(
        &self,
        _node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientResponse, TransportError> {
        self.0.requests.lock().unwrap().push(request.clone());
        let result = self.0.apply(&request.op);
        if let Some(gate) = self.0.gate(&request.op) {
            gate.pass().await;
        }
        Ok(ClientResponse {
            client: request.client,
            seq: request.seq,
            result,
        })
    }
}

fn client(net: &Net) -> Client<Net> {
    let mut cfg = ClientConfig::new([NodeId(1)]);
    cfg.seed = Some(7);
    cfg.lease = LEASE;
    cfg.attempt_timeout = Duration::from_secs(60);
    Client::new(net.clone(), cfg)
}

fn is_keepalive(op: &Op) -> bool {
    matches!(op, Op::KeepAlive)
}

fn is_release(op: &Op) -> bool {
    matches!(op, Op::Release { .. })
}

fn is_acquire(op: &Op) -> bool {
    matches!(op, Op::Acquire { .. })
}

/// Holds `a` and waits until the first keep-alive has reached the service and is held back there.
async fn hold_a_with_a_keepalive_in_flight(net: &Net, c: &Client<Net>) -> LockGuard<Net> {
    let a = c.lock("a").await.unwrap();
    net.0.keepalive_gate.close();
    net.0.arrived(1, is_keepalive).await;
    a
}

#[tokio::test(start_paused = true)]
async fn a_keepalive_answered_during_a_release_does_not_release_again() {
    let net = Net::default();
    let c = client(&net);
    let a = hold_a_with_a_keepalive_in_flight(&net, &c).await;

    // The release reaches the service after the keep-alive was applied, and is held back.
    net.0.release_gate.close();
    let releasing = tokio::spawn({
        let c = c.clone();
        async move { c.release(a).await }
    });
    net.0.arrived(1, is_release).await;
    // The keep-alive's answer (still listing `a`) comes back while the release is unanswered.
    net.0.keepalive_gate.let_one_through();
    tokio::time::sleep(Duration::from_millis(10)).await;
    net.0.release_gate.let_one_through();

    assert_eq!(releasing.await.unwrap(), Ok(()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        net.0.release_seqs("a").len(),
        1,
        "the lock was released twice"
    );
}

#[tokio::test(start_paused = true)]
async fn a_keepalive_answered_before_an_acquire_does_not_give_the_grant_back() {
    let net = Net::default();
    let c = client(&net);
    let _a = hold_a_with_a_keepalive_in_flight(&net, &c).await;

    // The acquire of `b` is applied (so the held-back keep-alive's answer would list it if it
    // were applied later) and its answer is held back.
    net.0.acquire_gate.close();
    let acquiring = tokio::spawn({
        let c = c.clone();
        async move { c.lock("b").await }
    });
    net.0.arrived(2, is_acquire).await;
    // A second keep-alive round, applied after the grant of `b`, answers before the acquire does.
    net.0.keepalive_gate.let_one_through();
    net.0.arrived(2, is_keepalive).await;
    net.0.keepalive_gate.let_one_through();
    tokio::time::sleep(Duration::from_millis(10)).await;
    net.0.acquire_gate.let_one_through();

    let b = acquiring.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        net.0.release_seqs("b").is_empty(),
        "the keep-alive gave back a grant the client was about to receive"
    );
    assert!(!b.is_lost());
}

#[tokio::test(start_paused = true)]
async fn a_keepalive_sent_before_a_grant_does_not_mark_it_lost() {
    let net = Net::default();
    let c = client(&net);
    let _a = hold_a_with_a_keepalive_in_flight(&net, &c).await;

    // `b` is granted and answered while the keep-alive (applied before the grant) is held back.
    let b = c.lock("b").await.unwrap();
    net.0.keepalive_gate.let_one_through();
    tokio::time::sleep(Duration::from_millis(10)).await;

    assert!(
        !b.is_lost(),
        "an answer older than the grant declared it lost"
    );
    assert!(net.0.release_seqs("b").is_empty());
}

fn is_cancel(op: &Op) -> bool {
    matches!(op, Op::Cancel { .. })
}

/// Starts a waiting acquire of `a` whose answer is held back, and gives up on it: the service
/// has granted it, and the client sends a cancel naming it.
async fn abandon_an_acquire_that_was_granted(net: &Net, c: &Client<Net>) {
    net.0.acquire_gate.close();
    let gave_up = tokio::time::timeout(Duration::from_secs(1), c.lock("a")).await;
    assert!(gave_up.is_err());
    net.0.acquire_gate.open();
    net.0.arrived(1, is_cancel).await;
}

#[tokio::test(start_paused = true)]
async fn a_new_acquire_waits_for_the_cancel_of_the_abandoned_one() {
    let net = Net::default();
    let c = client(&net);
    net.0.cancel_gate.close();
    abandon_an_acquire_that_was_granted(&net, &c).await;

    let again = tokio::spawn({
        let c = c.clone();
        async move { c.lock("a").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        net.0.count(is_acquire),
        1,
        "a new acquire raced the withdrawal of the old one"
    );
    net.0.cancel_gate.let_one_through();
    // The cancel gave the abandoned acquire's grant back; the new acquire gets a fresh one.
    assert_eq!(again.await.unwrap().unwrap().token(), FencingToken(2));
    assert_eq!(net.0.count(is_acquire), 2);
}

/// The fallback when a withdrawal did not give the grant back (its cancel was lost for
/// longer than the deadline): the service answers AlreadyHeld with the stray grant (token 1),
/// and the client releases that grant and asks again, so no `lock` call ever returns a token
/// twice.
#[tokio::test(start_paused = true)]
async fn a_stray_grant_is_given_back_and_a_fresh_one_taken() {
    let net = Net::default();
    net.0.cancel_keeps_grants.store(true, Ordering::SeqCst);
    let c = client(&net);
    abandon_an_acquire_that_was_granted(&net, &c).await;

    let guard = c.lock("a").await.unwrap();
    assert_eq!(guard.token(), FencingToken(2));
    assert!(!guard.is_lost());
    assert_eq!(net.0.count(is_acquire), 3);
    c.release(guard).await.unwrap();
    assert_eq!(net.0.release_seqs("a").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_grant_of_an_abandoned_acquire_is_given_back_by_its_cancel() {
    let net = Net::default();
    let c = client(&net);
    abandon_an_acquire_that_was_granted(&net, &c).await;

    let guard = c.lock("a").await.unwrap();
    assert_eq!(guard.token(), FencingToken(2));
    assert_eq!(net.0.count(is_acquire), 2);
    c.release(guard).await.unwrap();
    assert_eq!(net.0.release_seqs("a").len(), 1);
}
