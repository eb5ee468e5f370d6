//! The guarded files' checks: appends fenced by the holder's current token, reads that show
//! every append acknowledged before them, and, after the heal, every acknowledged append in
//! every file exactly once. Apart from the lock checks, since they follow the data, not the
//! grants.

use super::{Broken, Checker};
use crate::names::FileName;
use crate::node::Node;
use rustc_hash::FxHashMap as HashMap;

impl Checker {
    /// No append is applied whose token is not the holder's current one: the token was granted
    /// to the appending client for that lock, and no later grant of the lock had been applied
    /// on that node, and a file's tokens never go down.
    pub fn append_fenced(
        &mut self,
        idx: usize,
        file: &FileName,
        data: &[u8],
    ) -> Result<(), Broken> {
        let Some((client, lock, token)) = self.sent_appends.get(data).cloned() else {
            return Err((
                "append_fenced",
                format!("unknown append {data:?} in {file:?}"),
            ));
        };
        match self.grants.get(&token) {
            Some((c, l)) if *c == client && *l == lock => {}
            other => {
                return Err((
                    "append_fenced",
                    format!("{data:?} carried {token} of {other:?}, not granted to {client:?}"),
                ))
            }
        }
        self.append_not_revoked(idx, data, token)?;
        if let Some((seen, _)) = self.holder_tokens[idx].get(&lock) {
            if *seen > token {
                return Err((
                    "append_fenced",
                    format!("{data:?} with {token} applied after grant {seen} of {lock:?}"),
                ));
            }
        }
        let last = self.file_tokens[idx].entry(file.clone()).or_insert(token);
        if *last > token {
            return Err((
                "append_fenced",
                format!("{data:?} with {token} applied after {last} in {file:?}"),
            ));
        }
        *last = token;
        Ok(())
    }

    /// A read of `file` from offset 0, first sent at `sent`, returned `data`: every append
    /// acknowledged before `sent` must be in it at its offset. A stale leader answering from
    /// its own state would miss what a newer leader acknowledged.
    pub fn read_linearizable(&self, file: &FileName, data: &[u8], sent: u64) -> Result<(), Broken> {
        let Some(positions) = self.acked_by_file.get(file) else {
            return Ok(());
        };
        // Acknowledgements are recorded in true-time order: stop at the first one not before.
        for &p in positions {
            let at = self.acked_at[p];
            if at >= sent {
                break;
            }
            let (_, offset, appended) = &self.acked_appends[p];
            let start = *offset as usize;
            if data.get(start..start + appended.len()) != Some(&appended[..]) {
                return Err((
                    "read_linearizable",
                    format!(
                        "read of {file:?} sent at {} ms returned {} bytes without {appended:?} \
                         (at {offset}, acknowledged at {} ms)",
                        sent / 1_000_000,
                        data.len(),
                        at / 1_000_000
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A client was told its append of `data` landed at `offset` in `file`, at true time `at`
    /// (never earlier than the previous acknowledgement recorded).
    pub fn append_acked(&mut self, file: FileName, offset: u64, data: Vec<u8>, at: u64) {
        self.acked_by_file
            .entry(file.clone())
            .or_default()
            .push(self.acked_appends.len());
        self.acked_appends.push((file, offset, data));
        self.acked_at.push(at);
    }

    /// After heal: every acknowledged append is in the node's file exactly once, at its offset.
    pub fn acked_appends_durable(&self, node: &Node) -> Result<(), Broken> {
        let sm = node.state_machine();
        // Every append's data is `<client:seq>`, unique: count each piece of every file once.
        let mut pieces: HashMap<(&FileName, &[u8]), usize> = HashMap::default();
        for (name, file) in sm.files() {
            for piece in file.data.split_inclusive(|b| *b == b'>') {
                *pieces.entry((name, piece)).or_default() += 1;
            }
        }
        for (file, offset, data) in &self.acked_appends {
            let Some(f) = sm.file(file) else {
                return Err((
                    "acked_appends_durable",
                    format!("node {}: {file:?} missing", node.id()),
                ));
            };
            let start = *offset as usize;
            if f.data.get(start..start + data.len()) != Some(&data[..]) {
                return Err((
                    "acked_appends_durable",
                    format!("node {}: {data:?} not at {offset} in {file:?}", node.id()),
                ));
            }
            let count = pieces.get(&(file, &data[..])).copied().unwrap_or(0);
            if count != 1 {
                return Err((
                    "acked_appends_durable",
                    format!("node {}: {data:?} {count} times in {file:?}", node.id()),
                ));
            }
        }
        Ok(())
    }
}
