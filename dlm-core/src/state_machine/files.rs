//! Guarded files: append-only byte strings, each bound to the lock named by its first append.

use super::apply::Answer;
use super::{Outcome, StateMachine};
use crate::config::Limits;
use crate::names::{FileName, LockName};
use crate::protocol::{Rejection, Reply};
use crate::types::{ClientId, FencingToken};
use serde::{Deserialize, Serialize};

/// One guarded file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardedFile {
    /// The lock whose holder may append.
    pub guard: LockName,
    /// The highest token that has appended: anything lower is stale by definition.
    pub last_token: FencingToken,
    /// The contents.
    pub data: Vec<u8>,
}

impl StateMachine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append(
        &mut self,
        client: ClientId,
        lock: &LockName,
        token: FencingToken,
        file: &FileName,
        data: &[u8],
        limits: &Limits,
        out: &mut Vec<Outcome>,
    ) -> Answer {
        if !self.check_holder(lock, client, token)?.is_exclusive() {
            return Err(Rejection::NotExclusive);
        }
        if let Some(existing) = self.files.get(file) {
            if existing.guard != *lock {
                return Err(Rejection::WrongLock {
                    guard: existing.guard.clone(),
                });
            }
            if existing.last_token > token {
                return Err(Rejection::StaleToken { presented: token });
            }
            if existing.data.len() as u64 + data.len() as u64 > limits.max_file {
                return Err(Rejection::FileTooLarge {
                    max: limits.max_file,
                });
            }
        } else if data.len() as u64 > limits.max_file {
            return Err(Rejection::FileTooLarge {
                max: limits.max_file,
            });
        }
        let entry = self
            .files
            .entry(file.clone())
            .or_insert_with(|| GuardedFile {
                guard: lock.clone(),
                last_token: token,
                data: Vec::new(),
            });
        let offset = entry.data.len() as u64;
        entry.data.extend_from_slice(data);
        entry.last_token = token;
        out.push(Outcome::Appended {
            file: file.clone(),
            offset,
            data: data.to_vec(),
        });
        Ok(Reply::Appended { offset })
    }

    pub(crate) fn read(&self, file: &FileName, offset: u64, limits: &Limits) -> Answer {
        let Some(existing) = self.files.get(file) else {
            return Err(Rejection::NoSuchFile);
        };
        let len = existing.data.len() as u64;
        let start = offset.min(len) as usize;
        let end = start
            .saturating_add(limits.max_read)
            .min(existing.data.len());
        Ok(Reply::Data {
            data: existing.data[start..end].to_vec(),
            len,
        })
    }
}
