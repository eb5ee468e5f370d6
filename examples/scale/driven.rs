//! A node driven synchronously on real storage, without a runtime or a network: every persist
//! is made durable on the spot (one `persist` call, so one sync, per drain) and reported back,
//! and messages to peers are handed to the caller. What is timed is the node's and the storage's
//! own work, with no transport or scheduler in between.

use dlm::message::PeerMessage;
use dlm::runtime::{FileStorage, Storage};
use dlm::{ClientRequest, Config, ConnId, Effect, Input, Node, Time};
use std::path::Path;
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error>;

/// A node and its storage.
pub struct Driven {
    pub node: Node,
    pub storage: FileStorage,
    pub now: Time,
}

/// How long each step of opening a node took.
pub struct Opened {
    /// `FileStorage::recover`: reading and decoding the snapshot file and every log segment.
    pub recover: Duration,
    /// `Node::new`: decoding the snapshot into a state machine, building the log.
    pub node_new: Duration,
    /// Entries recovered after the snapshot.
    pub entries: usize,
}

impl Driven {
    /// Opens the storage in `dir` and starts a node from what it recovers.
    pub fn open(dir: &Path, cfg: Config) -> Result<(Driven, Opened), Error> {
        let started = Instant::now();
        let mut storage = FileStorage::open(dir)?;
        let recovered = storage.recover()?;
        let recover = started.elapsed();
        let entries = recovered.entries.len();
        let started = Instant::now();
        let node = Node::new(cfg, recovered)?;
        let node_new = started.elapsed();
        let driven = Driven {
            node,
            storage,
            now: Time::ZERO,
        };
        Ok((
            driven,
            Opened {
                recover,
                node_new,
                entries,
            },
        ))
    }

    /// Moves the clock on by `by` and runs the node's timers.
    pub fn tick(&mut self, by: Duration) -> Result<Vec<PeerMessage>, Error> {
        self.now = self.now + by;
        self.node.handle(self.now, Input::Tick);
        self.drain()
    }

    /// Hands the node a peer message.
    pub fn deliver(&mut self, msg: PeerMessage) {
        self.node.handle(self.now, Input::Peer(msg));
    }

    /// Hands the node client requests, all on one connection, then drains.
    pub fn requests(
        &mut self,
        requests: impl IntoIterator<Item = ClientRequest>,
    ) -> Result<(), Error> {
        for request in requests {
            let input = Input::Client {
                conn: ConnId(1),
                request,
            };
            self.node.handle(self.now, input);
        }
        self.drain().map(|_| ())
    }

    /// Executes every effect: persists in one batch (one sync), reported back once durable,
    /// until the node has nothing left to do. Returns the messages for peers, all sent after
    /// the persists before them are durable.
    pub fn drain(&mut self) -> Result<Vec<PeerMessage>, Error> {
        let mut sent = Vec::new();
        loop {
            let mut batch = Vec::new();
            while let Some(effect) = self.node.poll_effect() {
                match effect {
                    Effect::Persist(p) => batch.push(p),
                    Effect::Send(msg) => sent.push(msg),
                    Effect::Reply { .. } | Effect::Applied(_) => {}
                }
            }
            if batch.is_empty() {
                return Ok(sent);
            }
            let position = batch.iter().rev().find_map(|p| p.log_position());
            self.storage.persist(batch)?;
            if let Some(position) = position {
                self.node.handle(self.now, Input::Persisted(position));
            }
        }
    }

    /// Ticks a single-node cluster until it leads.
    pub fn lead_alone(&mut self) -> Result<(), Error> {
        for _ in 0..20 {
            if self.node.is_leader() {
                return Ok(());
            }
            self.tick(Duration::from_millis(500))?;
        }
        Err("the node did not become leader".into())
    }
}

/// The bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
