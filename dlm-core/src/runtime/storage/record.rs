//! Record framing shared by the log segments, the hard-state file and the snapshot file:
//! `u32 length (LE) | u32 CRC32 of the payload (LE) | postcard payload`.

use serde::Serialize;

/// Bytes before each payload.
pub(crate) const HEADER: usize = 8;

/// Appends one framed record holding `value` to `out`.
pub(crate) fn encode_into<T: Serialize>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let mut buf = postcard::to_extend(value, std::mem::take(out))?;
    let payload = &buf[start + HEADER..];
    let len = u32::try_from(payload.len()).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    *out = buf;
    Ok(())
}

/// What lies at an offset of a buffer of records.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan<'a> {
    /// A whole record with a good checksum; the next one starts at `next`.
    Record {
        /// The payload.
        payload: &'a [u8],
        /// Offset of the next record.
        next: usize,
    },
    /// The buffer ends exactly here.
    End,
    /// The rest of the buffer is an incomplete or unchecked last record (a torn write).
    Torn(&'static str),
    /// A record that is damaged and is followed by more data.
    Corrupt(&'static str),
}

/// Reads the record starting at `off`.
pub(crate) fn scan(buf: &[u8], off: usize) -> Scan<'_> {
    let rest = buf.get(off..).unwrap_or_default();
    if rest.is_empty() {
        return Scan::End;
    }
    // A file system may leave a zero-filled tail after a crash while extending a file.
    if rest.iter().all(|b| *b == 0) {
        return Scan::Torn("zero-filled tail");
    }
    if rest.len() < HEADER {
        return Scan::Torn("partial record header");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let Some(payload) = rest.get(HEADER..HEADER.saturating_add(len)) else {
        return Scan::Torn("partial record payload");
    };
    if crc32fast::hash(payload) != crc {
        if HEADER + len == rest.len() {
            return Scan::Torn("checksum mismatch in the last record");
        }
        // A batch written in one go whose later blocks never reached the disk: this record is
        // cut by the zeros, and so is everything after it.
        if rest[HEADER + len..].iter().all(|b| *b == 0) {
            return Scan::Torn("checksum mismatch before a zero-filled tail");
        }
        return Scan::Corrupt("checksum mismatch");
    }
    Scan::Record {
        payload,
        next: off + HEADER + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tail() {
        let mut buf = Vec::new();
        encode_into(&"hello".to_string(), &mut buf).unwrap();
        encode_into(&7u64, &mut buf).unwrap();
        let Scan::Record { payload, next } = scan(&buf, 0) else {
            panic!("first record")
        };
        assert_eq!(postcard::from_bytes::<String>(payload).unwrap(), "hello");
        assert!(matches!(scan(&buf, next), Scan::Record { .. }));
        for cut in next + 1..buf.len() {
            assert!(
                matches!(scan(&buf[..cut], next), Scan::Torn(_)),
                "cut {cut}"
            );
        }
        let mut bad = buf.clone();
        bad[HEADER] ^= 1;
        assert_eq!(scan(&bad, 0), Scan::Corrupt("checksum mismatch"));
        let mut zeroed = buf.clone();
        zeroed[HEADER + 2..].fill(0);
        assert!(matches!(scan(&zeroed, 0), Scan::Torn(_)));
    }
}
