//! Target `wal_raw`: arbitrary files in a storage directory (log segments, hard state, snapshot),
//! opened and recovered by the production `FileStorage`. Recovery must answer `Ok` (cutting a
//! torn tail) or a typed error. When it answers `Ok`, what it returned must be a consistent log,
//! recovering again must give the same thing (the repair is stable), and the log must take the
//! next entry.
//!
//! Input layout (see [`Disk::parse`], and [`Disk::encode`] for the inverse):
//! `flags: u8` (bit 0 hard state, bit 1 snapshot, bits 2-3 number of segments, bit 4 "framed",
//! bit 5 "preallocated": the segments are `<first>.seg` files of the current format instead of
//! the appended `<first>.wal` of formats 1-3),
//! then for the hard state and the snapshot `len: u16 LE, bytes`, then for each segment
//! `name: u8 (255: a u64 LE follows), len: u16 LE, bytes`. Lengths are cut to what is left.
//! When "framed" is set, the blobs are payloads and get a correct record header (length and
//! CRC32): the hard state and the snapshot one record each, each segment a run of
//! `len: u8, payload` pieces. A checksum is a wall a mutating fuzzer rarely climbs; this lets it
//! reach the decoding and index checks behind it. Framed preallocated segments also get a header
//! (nonce [`NONCE`]), a kind byte before each piece's payload (an entry), and after each piece
//! whose length byte has its top bit set a correct commit closing the batch so far: what a
//! mutating fuzzer could not forge, so that it reaches the commit rules behind them.

use dlm_core::runtime::{FileStorage, Storage};
use dlm_core::{Command, Entry, LockName, LogIndex, Persist, Recovered, Term};
use std::path::Path;

/// The files of one storage directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disk {
    /// Contents of `hardstate`.
    pub hard_state: Option<Vec<u8>>,
    /// Contents of `snapshot`.
    pub snapshot: Option<Vec<u8>>,
    /// `(first index, contents)` of each segment.
    pub segments: Vec<(u64, Vec<u8>)>,
    /// The segments are `wal/<first>.seg` (the current format), not `wal/<first>.wal`.
    pub preallocated: bool,
}

/// The nonce of framed preallocated segments.
pub const NONCE: u64 = 0x5eed_0f_d1_5c;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_le_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ])
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let got = self.take(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(b)
    }
    fn blob(&mut self) -> Vec<u8> {
        let len = self.u16() as usize;
        self.take(len).to_vec()
    }
}

impl Disk {
    /// Reads a disk from fuzzer input; every input gives some disk.
    pub fn parse(data: &[u8]) -> Disk {
        let mut r = Reader(data);
        let flags = r.u8();
        let mut hard_state = (flags & 1 != 0).then(|| r.blob());
        let mut snapshot = (flags & 2 != 0).then(|| r.blob());
        let count = (flags >> 2) & 3;
        let framed = flags & 16 != 0;
        let preallocated = flags & 32 != 0;
        let mut segments: Vec<(u64, Vec<u8>)> = (0..count)
            .map(|_| {
                let first = match r.u8() {
                    255 => r.u64(),
                    small => u64::from(small),
                };
                (first, r.blob())
            })
            .collect();
        if framed {
            hard_state = hard_state.map(|b| record(&b));
            snapshot = snapshot.map(|b| record(&b));
            for (first, blob) in &mut segments {
                *blob = if preallocated {
                    preallocated_segment(*first, blob)
                } else {
                    let mut pieces = Reader(blob);
                    let mut out = Vec::new();
                    while !pieces.0.is_empty() {
                        let len = usize::from(pieces.u8());
                        out.extend(record(pieces.take(len)));
                    }
                    out
                };
            }
        }
        Disk {
            hard_state,
            snapshot,
            segments,
            preallocated,
        }
    }

    /// The input that [`Disk::parse`] reads back as `self` (for writing seeds). Blobs longer than
    /// `u16::MAX` and more than three segments are cut.
    pub fn encode(&self) -> Vec<u8> {
        let count = self.segments.len().min(3) as u8;
        let flags = u8::from(self.hard_state.is_some())
            | (u8::from(self.snapshot.is_some()) << 1)
            | (count << 2)
            | (u8::from(self.preallocated) << 5);
        let mut out = vec![flags];
        let blob = |out: &mut Vec<u8>, b: &[u8]| {
            let b = &b[..b.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        };
        for b in self.hard_state.iter().chain(self.snapshot.iter()) {
            blob(&mut out, b);
        }
        for (first, bytes) in self.segments.iter().take(3) {
            if *first < 255 {
                out.push(*first as u8);
            } else {
                out.push(255);
                out.extend_from_slice(&first.to_le_bytes());
            }
            blob(&mut out, bytes);
        }
        out
    }

    /// Writes the files into `dir` the way `FileStorage` lays them out (in this build's
    /// storage format).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        let wal = dir.join("wal");
        std::fs::create_dir_all(&wal)?;
        let format = format!("dlm storage format {}\n", dlm_core::runtime::STORAGE_FORMAT);
        std::fs::write(dir.join("FORMAT"), format)?;
        if let Some(b) = &self.hard_state {
            std::fs::write(dir.join("hardstate"), b)?;
        }
        if let Some(b) = &self.snapshot {
            std::fs::write(dir.join("snapshot"), b)?;
        }
        let suffix = if self.preallocated { "seg" } else { "wal" };
        for (first, bytes) in &self.segments {
            std::fs::write(wal.join(format!("{first:020}.{suffix}")), bytes)?;
        }
        Ok(())
    }

    /// Reads back the files `FileStorage` keeps in `dir` (for writing seeds).
    pub fn read_from(dir: &Path) -> std::io::Result<Disk> {
        let opt = |p: &Path| std::fs::read(p).ok();
        let mut segments = Vec::new();
        let mut preallocated = false;
        if let Ok(items) = std::fs::read_dir(dir.join("wal")) {
            for item in items {
                let item = item?;
                let name = item.file_name();
                let Some(name) = name.to_str() else {
                    continue;
                };
                let (stem, seg) = match (name.strip_suffix(".seg"), name.strip_suffix(".wal")) {
                    (Some(stem), _) => (stem, true),
                    (None, Some(stem)) => (stem, false),
                    _ => continue,
                };
                let Ok(first) = stem.parse::<u64>() else {
                    continue;
                };
                // One kind for the whole disk: a directory that has both is read as the newer.
                preallocated |= seg;
                segments.push((first, std::fs::read(item.path())?));
            }
        }
        segments.sort();
        Ok(Disk {
            hard_state: opt(&dir.join("hardstate")),
            snapshot: opt(&dir.join("snapshot")),
            segments,
            preallocated,
        })
    }
}

/// One storage record (`u32 LE length, u32 LE CRC32, payload`), as `FileStorage` frames them.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A preallocated segment from `len: u8, payload` pieces: header, then each payload as an
/// entry record, and a commit after each piece whose length byte has its top bit set.
fn preallocated_segment(first: u64, blob: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"dlm-seg\0");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&NONCE.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let mut pieces = Reader(blob);
    let (mut seq, mut start, mut next) = (0u64, out.len(), first);
    while !pieces.0.is_empty() {
        let head = pieces.u8();
        let mut payload = vec![1u8];
        payload.extend_from_slice(pieces.take(usize::from(head & 0x7f)));
        if let Ok(entry) = postcard::from_bytes::<Entry>(&payload[1..]) {
            next = entry.index.get().wrapping_add(1);
        }
        out.extend(record(&payload));
        if head & 0x80 != 0 {
            seq += 1;
            let mut commit = vec![3u8];
            commit.extend_from_slice(&NONCE.to_le_bytes());
            commit.extend_from_slice(&seq.to_le_bytes());
            commit.extend_from_slice(&(start as u64).to_le_bytes());
            commit.extend_from_slice(&next.to_le_bytes());
            commit.extend_from_slice(&crc32fast::hash(&out[start..]).to_le_bytes());
            out.extend(record(&commit));
            start = out.len();
        }
    }
    out
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let disk = Disk::parse(data);
    let dir = crate::scratch_dir();
    disk.write_to(dir.path()).expect("writing the input files");
    let first = {
        let mut storage = FileStorage::open(dir.path()).expect("opening a fresh directory");
        match storage.recover() {
            Ok(r) => r,
            // A typed refusal is a correct answer for damaged data.
            Err(_) => return,
        }
    };
    check_consistent(&first);

    // The repair (a cut torn tail) is durable and stable: a second recovery sees the same.
    let mut storage = FileStorage::open(dir.path()).expect("reopening");
    let second = storage
        .recover()
        .expect("recovering again after a good recovery");
    assert_eq!(second, first, "a second recovery differs from the first");

    // The recovered log takes the next entry, and keeps it.
    let last = first
        .entries
        .last()
        .map(|e| e.position())
        .or(first.snapshot.as_ref().map(|s| s.last))
        .unwrap_or_default();
    // Recovery refuses an entry at `u64::MAX` (it would have no successor), so stop short of it.
    let next = last.index.get().saturating_add(1);
    if next == u64::MAX {
        return;
    }
    let entry = Entry {
        term: Term(last.term.get().max(first.hard_state.term.get())),
        index: LogIndex(next),
        command: Command::LiftDelay {
            lock: LockName::new("fuzz"),
        },
    };
    storage
        .persist(vec![Persist::Entries(vec![entry.clone()])])
        .expect("appending after a good recovery");
    drop(storage);
    let mut storage = FileStorage::open(dir.path()).expect("reopening");
    let third = storage.recover().expect("recovering after an append");
    let mut expected = first;
    expected.entries.push(entry);
    assert_eq!(third, expected, "the appended entry did not come back");
}

/// What recovery hands a node is a log a node can start from.
fn check_consistent(r: &Recovered) {
    for pair in r.entries.windows(2) {
        assert_eq!(
            pair[0].index.get().checked_add(1),
            Some(pair[1].index.get()),
            "recovered entries are not contiguous"
        );
    }
    if let (Some(snap), Some(first)) = (&r.snapshot, r.entries.first()) {
        assert_eq!(
            snap.last.index.get().checked_add(1),
            Some(first.index.get()),
            "recovered entries do not continue the snapshot"
        );
    }
}
