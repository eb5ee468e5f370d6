//! The bytes of a preallocated segment (`<first index>.seg`, storage format 4): a header, then
//! records framed as everywhere else (`u32 length | u32 CRC32 | payload`) whose payload starts
//! with a kind byte. Three kinds: an entry; a truncation (entries of this segment from an index
//! on are void); and a commit, which ends every batch written by one sync and says exactly
//! which bytes that batch was, so that recovery can tell the last completed sync from a torn one.

use crate::command::Entry;
use crate::runtime::storage::record::{encode_into, HEADER as FRAME};
use crate::types::LogIndex;

/// The first bytes of every preallocated segment.
const MAGIC: [u8; 8] = *b"dlm-seg\0";
/// The layout version inside the magic's family (one so far).
const VERSION: u32 = 1;
/// Magic, version, nonce, CRC32 of the three.
pub(super) const HEADER_LEN: usize = 8 + 4 + 8 + 4;

const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_COMMIT: u8 = 3;
/// Kind, nonce, seq, start, next index, batch CRC.
const COMMIT_PAYLOAD: usize = 1 + 8 + 8 + 8 + 8 + 4;
/// A commit record's whole size on disk.
pub(super) const COMMIT_LEN: usize = FRAME + COMMIT_PAYLOAD;

/// The record that ends a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Commit {
    /// The segment's nonce: a commit found in stray bytes (a reused disk block, a payload that
    /// imitates one) is not taken for one of this segment's.
    pub nonce: u64,
    /// 1 for the segment's first batch, then one more for each.
    pub seq: u64,
    /// Byte offset where the batch starts (the end of the previous commit, or of the header).
    pub start: u64,
    /// The index after the segment's last entry once the batch is applied.
    pub next: LogIndex,
    /// CRC32 of the batch's bytes from `start` to this record.
    pub batch_crc: u32,
}

/// One record of a preallocated segment.
#[derive(Debug)]
pub(super) enum Record {
    Entry(Entry),
    /// The segment's entries from this index on are void.
    Truncate(LogIndex),
    Commit(Commit),
}

/// The header of a new segment with this nonce.
pub(super) fn header(nonce: u64) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&nonce.to_le_bytes());
    let crc = crc32fast::hash(&out[..20]);
    out[20..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The nonce in a segment's header.
pub(super) fn read_header(data: &[u8]) -> Result<u64, &'static str> {
    let Some(head) = data.get(..HEADER_LEN) else {
        return Err("segment shorter than its header");
    };
    if head[..8] != MAGIC {
        return Err("segment header has the wrong magic");
    }
    if crc32fast::hash(&head[..20]) != u32_at(head, 20) {
        return Err("segment header checksum mismatch");
    }
    if u32_at(head, 8) != VERSION {
        return Err("segment header of an unknown version");
    }
    Ok(u64_at(head, 12))
}

/// Appends an entry record.
pub(super) fn push_entry(entry: &Entry, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    encode_into(&(KIND_ENTRY, entry), out)
}

/// Appends a truncation record.
pub(super) fn push_truncate(from: LogIndex, out: &mut Vec<u8>) {
    let mut payload = [0u8; 9];
    payload[0] = KIND_TRUNCATE;
    payload[1..].copy_from_slice(&from.get().to_le_bytes());
    push_frame(&payload, out);
}

/// Appends a commit record.
pub(super) fn push_commit(c: &Commit, out: &mut Vec<u8>) {
    let mut p = [0u8; COMMIT_PAYLOAD];
    p[0] = KIND_COMMIT;
    p[1..9].copy_from_slice(&c.nonce.to_le_bytes());
    p[9..17].copy_from_slice(&c.seq.to_le_bytes());
    p[17..25].copy_from_slice(&c.start.to_le_bytes());
    p[25..33].copy_from_slice(&c.next.get().to_le_bytes());
    p[33..37].copy_from_slice(&c.batch_crc.to_le_bytes());
    push_frame(&p, out);
}

fn push_frame(payload: &[u8], out: &mut Vec<u8>) {
    // Both payloads are a few dozen bytes.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The record at `off` and the offset after it, or why there is none.
pub(super) fn read_at(data: &[u8], off: usize) -> Result<(Record, usize), &'static str> {
    let rest = data.get(off..).unwrap_or_default();
    if rest.len() < FRAME {
        return Err("partial record header");
    }
    let len = u32_at(rest, 0) as usize;
    if len == 0 {
        return Err("no record (zeros)");
    }
    let Some(payload) = rest.get(FRAME..FRAME.saturating_add(len)) else {
        return Err("partial record");
    };
    if crc32fast::hash(payload) != u32_at(rest, 4) {
        return Err("checksum mismatch");
    }
    let next = off + FRAME + len;
    let body = &payload[1..];
    let record = match payload[0] {
        KIND_ENTRY => match postcard::take_from_bytes::<Entry>(body) {
            Ok((entry, [])) => Record::Entry(entry),
            Ok(_) => return Err("bytes after an entry"),
            Err(_) => return Err("undecodable entry"),
        },
        KIND_TRUNCATE if body.len() == 8 => Record::Truncate(LogIndex(u64_at(body, 0))),
        KIND_COMMIT if len == COMMIT_PAYLOAD => Record::Commit(commit_body(body)),
        _ => return Err("unknown record kind"),
    };
    Ok((record, next))
}

/// A commit of the segment with `nonce` starting exactly at `off`, if there is one (cheap to
/// ask at every offset: most are rejected by the first bytes).
pub(super) fn commit_at(data: &[u8], off: usize, nonce: u64) -> Option<Commit> {
    let rec = data.get(off..off.checked_add(COMMIT_LEN)?)?;
    if u32_at(rec, 0) as usize != COMMIT_PAYLOAD
        || rec[FRAME] != KIND_COMMIT
        || u64_at(rec, FRAME + 1) != nonce
        || crc32fast::hash(&rec[FRAME..]) != u32_at(rec, 4)
    {
        return None;
    }
    Some(commit_body(&rec[FRAME + 1..]))
}

/// Decodes the 36 bytes after a commit's kind byte.
fn commit_body(b: &[u8]) -> Commit {
    Commit {
        nonce: u64_at(b, 0),
        seq: u64_at(b, 8),
        start: u64_at(b, 16),
        next: LogIndex(u64_at(b, 24)),
        batch_crc: u32_at(b, 32),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::types::Term;

    #[test]
    fn records_round_trip_and_a_commit_is_found_only_with_its_nonce() {
        let entry = Entry {
            term: Term(2),
            index: LogIndex(5),
            command: Command::Noop,
        };
        let mut buf = header(77).to_vec();
        push_entry(&entry, &mut buf).unwrap();
        let t = buf.len();
        push_truncate(LogIndex(4), &mut buf);
        let c = buf.len();
        let commit = Commit {
            nonce: 77,
            seq: 1,
            start: HEADER_LEN as u64,
            next: LogIndex(6),
            batch_crc: 9,
        };
        push_commit(&commit, &mut buf);
        assert_eq!(buf.len() - c, COMMIT_LEN);
        assert_eq!(read_header(&buf), Ok(77));
        let Ok((Record::Entry(e), next)) = read_at(&buf, HEADER_LEN) else {
            panic!("entry")
        };
        assert_eq!((e, next), (entry, t));
        assert!(matches!(read_at(&buf, t), Ok((Record::Truncate(LogIndex(4)), n)) if n == c));
        assert!(matches!(read_at(&buf, c), Ok((Record::Commit(got), _)) if got == commit));
        assert_eq!(commit_at(&buf, c, 77), Some(commit));
        assert_eq!(commit_at(&buf, c, 78), None);
        assert_eq!(commit_at(&buf, c + 1, 77), None);
        let mut bad = buf.clone();
        bad[3] ^= 1;
        assert!(read_header(&bad).is_err());
        assert!(read_at(&[0u8; 64], 0).is_err());
    }
}
