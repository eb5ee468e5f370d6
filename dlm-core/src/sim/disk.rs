//! A simulated disk whose syncs take time. The rule of which effects wait for which sync is the
//! runtime driver's own ([`PersistQueue`]); this adds only when a sync finishes and what a crash
//! in the middle of one leaves behind.

use super::durable::Durable;
use crate::node::Persist;
use crate::persist_queue::{PersistQueue, SyncDone};

/// Sync latencies a node's disk is drawn from, in nanoseconds: 0 is a synchronous driver, the
/// others are a fast SSD, a busy one and a slow or shared disk.
pub(super) const LATENCIES: [u64; 4] = [0, 500_000, 3_000_000, 20_000_000];

/// One node's disk.
#[derive(Debug, Default)]
pub(super) struct Disk {
    /// Which effects wait, and what goes into the next sync.
    pub queue: PersistQueue,
    /// How long one sync takes (true ns).
    pub latency: u64,
    /// The batch being synced, and when it is durable.
    writing: Option<(u64, Vec<Persist>)>,
}

impl Disk {
    /// A disk whose syncs take `latency` ns.
    pub fn new(latency: u64) -> Disk {
        Disk {
            latency,
            ..Disk::default()
        }
    }

    /// When the sync under way finishes, if one is.
    pub fn done_at(&self) -> Option<u64> {
        self.writing.as_ref().map(|(at, _)| *at)
    }

    /// Starts the next sync at `now` if none is under way. With no latency it is durable at
    /// once: the result is what it releases, and the caller reports it.
    pub fn start_sync(&mut self, now: u64, durable: &mut Durable) -> Option<SyncDone> {
        if self.writing.is_some() {
            return None;
        }
        let batch = self.queue.start()?;
        self.writing = Some((now + self.latency, batch));
        if self.latency == 0 {
            return Some(self.finish_sync(durable));
        }
        None
    }

    /// The sync under way is durable: its persists reach `durable`.
    pub fn finish_sync(&mut self, durable: &mut Durable) -> SyncDone {
        if let Some((_, batch)) = self.writing.take() {
            for persist in &batch {
                durable.apply(persist);
            }
        }
        self.queue.finish()
    }

    /// The node crashed: the first `survivors` persists of the sync under way had reached the
    /// platter (writes land in order; the rest, and everything not yet started, is lost).
    pub fn crash(&mut self, survivors: usize, durable: &mut Durable) {
        if let Some((_, batch)) = self.writing.take() {
            for persist in batch.iter().take(survivors) {
                durable.apply(persist);
            }
        }
        *self = Disk::new(self.latency);
    }

    /// Persists in the sync under way.
    pub fn writing_len(&self) -> usize {
        self.writing.as_ref().map_or(0, |(_, batch)| batch.len())
    }
}
