//! A bounded queue of encoded frames in front of a socket, and the task side that writes it out.
//!
//! When full, a node's queues drop the OLDEST frames: the newest peer messages carry the freshest
//! term, commit index and log position, and make older ones redundant (a newer heartbeat or
//! AppendEntries supersedes an older one), while anything lost is recovered by the protocol's own
//! retries. Dropping the newest would instead keep sending stale messages to a peer that has just
//! come back. A client's queue refuses new frames instead, so that the call fails at once rather
//! than waiting on a request that was thrown away.

use crate::tail_probe::{Retransmissions, TailProbe};
use crate::wire::{PING, PONG};
use std::collections::VecDeque;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::Notify;

pub(crate) struct OutQueue {
    state: Mutex<State>,
    wake: Notify,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    dropped: u64,
}

impl OutQueue {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> OutQueue {
        OutQueue {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes,
        }
    }

    /// The bounds it was made with: frames, bytes.
    pub(crate) fn capacity(&self) -> (usize, usize) {
        (self.max_frames, self.max_bytes)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame`, dropping the oldest frames while over a bound (the newest always stays).
    pub(crate) fn push_drop_oldest(&self, frame: Vec<u8>) {
        let mut st = self.lock();
        st.bytes += frame.len();
        st.frames.push_back(frame);
        while st.frames.len() > 1
            && (st.frames.len() > self.max_frames || st.bytes > self.max_bytes)
        {
            if let Some(old) = st.frames.pop_front() {
                st.bytes -= old.len();
                st.dropped += 1;
            }
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Queues `frame` unless the queue is full.
    pub(crate) fn try_push(&self, frame: Vec<u8>) -> Result<(), Vec<u8>> {
        let mut st = self.lock();
        if st.frames.len() >= self.max_frames
            || (!st.frames.is_empty() && st.bytes + frame.len() > self.max_bytes)
        {
            st.dropped += 1;
            return Err(frame);
        }
        st.bytes += frame.len();
        st.frames.push_back(frame);
        drop(st);
        self.wake.notify_one();
        Ok(())
    }

    fn take_all(&self) -> VecDeque<Vec<u8>> {
        let mut st = self.lock();
        st.bytes = 0;
        std::mem::take(&mut st.frames)
    }

    /// Returns once a frame waits (at once if one does). Only for a queue nobody writes out
    /// yet: it takes the wake-up the writer would otherwise get.
    pub(crate) async fn frames_waiting(&self) {
        while self.len() == 0 {
            self.wake.notified().await;
        }
    }

    /// Drops every frame waiting (not counted as dropped: they were copies no longer wanted).
    pub(crate) fn clear(&self) {
        drop(self.take_all());
    }

    /// Frames waiting now.
    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Frames dropped or refused so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Writes frames as they come: everything queued at each wake-up, then one flush, so a burst
    /// costs one syscall rather than one per frame; after a burst that emptied the queue, a
    /// [`PONG`] of its own when `probes` says so (see [`crate::tail_probe`]). Returns only on a
    /// write error.
    pub(crate) async fn write_loop<W>(&self, writer: W, probe: TailProbe) -> io::Result<()>
    where
        W: AsyncWrite + Retransmissions + Unpin,
    {
        self.write_with_pings(writer, None, probe).await
    }

    /// As [`OutQueue::write_loop`], and with `ping` set, also writes [`PING`] first (which asks
    /// a node to signal back) and again whenever nothing was written for that long, so that
    /// the other end always has something to hear. The pings bypass the queue: they are not
    /// messages, and must neither be dropped for nor counted against them.
    pub(crate) async fn write_with_pings<W>(
        &self,
        writer: W,
        ping: Option<Duration>,
        mut probe: TailProbe,
    ) -> io::Result<()>
    where
        W: AsyncWrite + Retransmissions + Unpin,
    {
        let mut writer = BufWriter::with_capacity(64 * 1024, writer);
        if ping.is_some() {
            writer.write_all(&PING).await?;
            writer.flush().await?;
        }
        loop {
            let batch = self.take_all();
            if batch.is_empty() {
                // A push between take_all and here leaves a permit, so no wake-up is lost.
                let Some(interval) = ping else {
                    self.wake.notified().await;
                    continue;
                };
                if tokio::time::timeout(interval, self.wake.notified())
                    .await
                    .is_err()
                {
                    writer.write_all(&PING).await?;
                    writer.flush().await?;
                }
                continue;
            }
            for frame in &batch {
                writer.write_all(frame).await?;
            }
            writer.flush().await?;
            // With more queued, the next burst follows at once and does the probe's work. The
            // probe is asked first: while it is off (a clean network) the queue's lock is not
            // taken a second time per burst.
            if probe.after_burst(tokio::time::Instant::now(), || {
                writer.get_ref().retransmitted()
            }) && self.len() == 0
            {
                writer.write_all(&PONG).await?;
                writer.flush().await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OutQueue;

    #[test]
    fn full_queue_drops_the_oldest_and_keeps_the_newest() {
        let q = OutQueue::new(3, usize::MAX);
        for i in 0..10u8 {
            q.push_drop_oldest(vec![i]);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 7);
        assert_eq!(Vec::from(q.take_all()), vec![vec![7], vec![8], vec![9]]);
    }

    #[test]
    fn byte_bound_applies_but_one_frame_always_fits() {
        let q = OutQueue::new(100, 10);
        q.push_drop_oldest(vec![0; 6]);
        q.push_drop_oldest(vec![1; 6]);
        assert_eq!(q.len(), 1);
        q.push_drop_oldest(vec![2; 50]);
        assert_eq!(Vec::from(q.take_all()), vec![vec![2; 50]]);
    }

    #[tokio::test(start_paused = true)]
    async fn pings_go_first_and_whenever_idle_but_not_between_messages() {
        use crate::wire::PING;
        use std::time::Duration;
        use tokio::io::AsyncReadExt;
        let q = OutQueue::new(16, usize::MAX);
        let (writer, mut reader) = tokio::io::duplex(1024);
        let interval = Duration::from_millis(50);
        let probe = crate::tail_probe::TailProbe::new(crate::tail_probe::TailProbes::Never);
        let writing = q.write_with_pings(writer, Some(interval), probe);
        let reading = async {
            let mut got = [0u8; 4];
            reader.read_exact(&mut got).await.unwrap();
            assert_eq!(got, PING, "the first ping");
            // Busy: a frame every 20 ms for 200 ms, and no ping among them.
            for i in 0..10u8 {
                q.push_drop_oldest(vec![i; 4]);
                reader.read_exact(&mut got).await.unwrap();
                assert_eq!(got, [i; 4]);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Idle: pings again.
            reader.read_exact(&mut got).await.unwrap();
            assert_eq!(got, PING);
        };
        tokio::select! {
            result = writing => panic!("writer ended: {result:?}"),
            () = reading => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_that_empties_the_queue_is_followed_by_a_probe_only_when_asked() {
        use crate::tail_probe::TailProbes;
        use crate::wire::PONG;
        use tokio::io::AsyncReadExt;
        for (probes, want_probe) in [(TailProbes::Always, true), (TailProbes::Never, false)] {
            let q = OutQueue::new(16, usize::MAX);
            let (writer, mut reader) = tokio::io::duplex(1024);
            // Two frames queued before the writer runs: one burst, one probe after it.
            q.push_drop_oldest(vec![1; 4]);
            q.push_drop_oldest(vec![2; 4]);
            let writing = q.write_loop(writer, crate::tail_probe::TailProbe::new(probes));
            let reading = async {
                let mut got = [0u8; 4];
                for want in [[1u8; 4], [2; 4]] {
                    reader.read_exact(&mut got).await.unwrap();
                    assert_eq!(got, want);
                }
                q.push_drop_oldest(vec![3; 4]);
                reader.read_exact(&mut got).await.unwrap();
                if want_probe {
                    assert_eq!(got, PONG, "{probes:?}: the probe after the first burst");
                    reader.read_exact(&mut got).await.unwrap();
                }
                assert_eq!(got, [3; 4], "{probes:?}");
            };
            tokio::select! {
                result = writing => panic!("writer ended: {result:?}"),
                () = reading => {}
            }
        }
    }

    #[test]
    fn try_push_refuses_when_full() {
        let q = OutQueue::new(2, usize::MAX);
        assert!(q.try_push(vec![1]).is_ok());
        assert!(q.try_push(vec![2]).is_ok());
        assert_eq!(q.try_push(vec![3]), Err(vec![3]));
        assert_eq!(q.dropped(), 1);
    }
}
