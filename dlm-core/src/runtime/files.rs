//! Mirrors guarded files into `<dir>/<escaped name>` as appends are applied. The mirror is a
//! convenience copy (not synced): the replicated state machine is the truth, and the mirror is
//! rebuilt from it at start-up and after a snapshot is installed.

use crate::names::FileName;
use crate::node::Applied;
use crate::state_machine::StateMachine;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Most files kept open between appends.
const OPEN_FILES: usize = 256;

/// Longest escaped name kept verbatim; longer ones are shortened and suffixed with a hash.
const MAX_FILE_NAME: usize = 200;

/// The on-disk name for a client-chosen file name. Every byte outside `[A-Za-z0-9_.-]` is
/// percent-encoded, and so is a leading dot, so that a name can never be `.`, `..`, contain
/// `/` or NUL, or otherwise escape the directory.
pub fn escape_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    if out.len() > MAX_FILE_NAME {
        // FNV-1a: stable across runs and platforms, unlike std's hasher.
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        out.truncate(MAX_FILE_NAME - 17);
        // Never cut an escape in half.
        while out.len() > 2 && out.as_bytes()[out.len() - 3..].contains(&b'%') {
            out.pop();
        }
        out.push_str(&format!("~{hash:016x}"));
    }
    out
}

/// The mirror directory of one node.
#[derive(Debug)]
pub struct FileMirror {
    dir: PathBuf,
    /// Open files and their length, so that the common append is a single write.
    open: HashMap<FileName, (File, u64)>,
}

impl FileMirror {
    /// A mirror in `dir` (created if needed).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FileMirror> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(FileMirror {
            dir,
            open: HashMap::new(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `file` is mirrored.
    pub fn path_of(&self, file: &FileName) -> PathBuf {
        self.dir.join(escape_file_name(file.as_str()))
    }

    /// Applies one applied effect; `sm` is the node's state machine (for a restore).
    pub fn apply(&mut self, applied: &Applied, sm: &StateMachine) -> std::io::Result<()> {
        match applied {
            Applied::Appended { file, offset, data } => self.write_at(file, *offset, data),
            Applied::Restored => self.rebuild(sm),
        }
    }

    /// Replaces the whole directory with the files of `sm`.
    pub fn rebuild(&mut self, sm: &StateMachine) -> std::io::Result<()> {
        self.open.clear();
        for item in fs::read_dir(&self.dir)? {
            let item = item?;
            if item.file_type()?.is_file() {
                fs::remove_file(item.path())?;
            }
        }
        for (name, file) in sm.files() {
            fs::write(self.path_of(name), &file.data)?;
        }
        Ok(())
    }

    /// Writes `data` at `offset` and cuts anything beyond it, so that re-applying entries after a
    /// restart lines up with what is already there.
    fn write_at(&mut self, file: &FileName, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if !self.open.contains_key(file) {
            if self.open.len() >= OPEN_FILES {
                self.open.clear();
            }
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.path_of(file))?;
            let len = f.metadata()?.len();
            self.open.insert(file.clone(), (f, len));
        }
        let Some((f, len)) = self.open.get_mut(file) else {
            return Ok(());
        };
        if *len != offset {
            f.set_len(offset)?;
        }
        f.seek(SeekFrom::Start(offset))?;
        let written = f.write_all(data);
        if written.is_err() {
            // The length is unknown now; reopen next time.
            self.open.remove(file);
        } else {
            *len = offset + data.len() as u64;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::escape_file_name;

    #[test]
    fn names_cannot_escape() {
        assert_eq!(escape_file_name("log-1.txt"), "log-1.txt");
        assert_eq!(escape_file_name(".."), "%2E.");
        assert_eq!(escape_file_name("."), "%2E");
        assert_eq!(escape_file_name("a/../b"), "a%2F..%2Fb");
        assert_eq!(escape_file_name("a\0b"), "a%00b");
        assert_eq!(escape_file_name("%"), "%25");
        let long = escape_file_name(&"/".repeat(256));
        assert!(long.len() <= 200 && !long.contains('/'));
        assert_ne!(long, escape_file_name(&"/".repeat(255)));
    }
}
