//! The checks at the end of a chaos run.
//!
//! Files. Every append carries a line no other append carries, so a guarded file can be taken
//! apart line by line. What the service promises, and so what is checked:
//! - an acknowledged append is in the file exactly once, at the offset it was acknowledged at;
//! - a refused append (stale token, not the holder, ...) is not in the file at all;
//! - an append that got no answer may be in the file, but at most once;
//! - nothing else is in the file, and it ends with a whole append;
//! - the tokens along a file strictly grow (each grant appends at most once, and an append is
//!   applied only under its lock's current grant, whose token is larger than every earlier one);
//! - every node's mirror ends up equal to a linearizable read of the file.
//!
//! Tokens. Per client, grants come back with strictly growing tokens; per lock, no token is
//! granted twice; and a grant acknowledged before another acquire was even sent has a smaller
//! token than the grant that acquire gets (the counter lives in the replicated state).

use super::workload::{Attempt, Grant, Outcome};
use std::collections::{BTreeMap, HashMap};

/// One broken promise.
#[derive(Clone, Debug)]
pub struct Violation {
    pub kind: &'static str,
    pub detail: String,
}

fn violation(kind: &'static str, detail: String) -> Violation {
    Violation { kind, detail }
}

/// What one file holds, beyond the acknowledged appends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    pub bytes: usize,
    pub appends: usize,
    /// Appends that got no answer but are in the file (they committed).
    pub unsure_present: usize,
}

/// Checks one copy (`label`) of the file guarded by one lock against that lock's `attempts`.
pub fn check_file(
    label: &str,
    content: &[u8],
    attempts: &[&Attempt],
) -> (FileStats, Vec<Violation>) {
    let by_data: HashMap<&[u8], usize> = attempts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.data.as_slice(), i))
        .collect();
    let mut found: Vec<Option<u64>> = vec![None; attempts.len()];
    let mut out = Vec::new();
    let mut stats = FileStats {
        bytes: content.len(),
        ..FileStats::default()
    };
    let mut offset = 0u64;
    let mut last_token: Option<u64> = None;
    for line in content.split_inclusive(|b| *b == b'\n') {
        let at = offset;
        offset += line.len() as u64;
        if !line.ends_with(b"\n") {
            out.push(violation(
                "torn-tail",
                format!(
                    "{label}: ends with a partial append at {at}: {:?}",
                    lossy(line)
                ),
            ));
            break;
        }
        let Some(&i) = by_data.get(line) else {
            out.push(violation(
                "unknown-data",
                format!(
                    "{label}: at {at}, data no client appended: {:?}",
                    lossy(line)
                ),
            ));
            continue;
        };
        let a = attempts[i];
        if let Some(first) = found[i] {
            out.push(violation(
                "duplicated",
                format!("{label}: {:?} at {first} and again at {at}", lossy(&a.data)),
            ));
            continue;
        }
        found[i] = Some(at);
        stats.appends += 1;
        if last_token.is_some_and(|t| t >= a.token) {
            out.push(violation(
                "file-token-order",
                format!(
                    "{label}: at {at}, token {} after token {}",
                    a.token,
                    last_token.unwrap_or(0)
                ),
            ));
        }
        last_token = Some(a.token);
        match &a.outcome {
            Outcome::Acked(acked) if *acked != at => out.push(violation(
                "wrong-offset",
                format!(
                    "{label}: {:?} acknowledged at {acked}, found at {at}",
                    lossy(&a.data)
                ),
            )),
            Outcome::Refused(e) => out.push(violation(
                "refused-but-applied",
                format!(
                    "{label}: {:?} was refused ({e}) yet is at {at}",
                    lossy(&a.data)
                ),
            )),
            Outcome::Unsure(_) => stats.unsure_present += 1,
            Outcome::Acked(_) => {}
        }
    }
    for (a, at) in attempts.iter().zip(&found) {
        if let (Outcome::Acked(acked), None) = (&a.outcome, at) {
            out.push(violation(
                "lost",
                format!(
                    "{label}: {:?} acknowledged at {acked} is missing",
                    lossy(&a.data)
                ),
            ));
        }
    }
    (stats, out)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

/// The token promises over every client's grants (`per_client`: each in acknowledgement order).
pub fn check_tokens(per_client: &[(&str, &[Grant])]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (who, grants) in per_client {
        for pair in grants.windows(2) {
            if pair[1].token <= pair[0].token {
                out.push(violation(
                    "client-token-order",
                    format!(
                        "{who}: token {} on lock-{} acknowledged after token {} on lock-{}",
                        pair[1].token, pair[1].lock, pair[0].token, pair[0].lock
                    ),
                ));
            }
        }
    }
    let mut by_lock: BTreeMap<usize, Vec<(&str, &Grant)>> = BTreeMap::new();
    for (who, grants) in per_client {
        for g in grants.iter() {
            by_lock.entry(g.lock).or_default().push((who, g));
        }
    }
    for (lock, mut grants) in by_lock {
        let mut holders: HashMap<u64, &str> = HashMap::new();
        for (who, g) in &grants {
            if let Some(other) = holders.insert(g.token, who) {
                out.push(violation(
                    "token-granted-twice",
                    format!(
                        "lock-{lock}: token {} granted to {other} and to {who}",
                        g.token
                    ),
                ));
            }
        }
        // Real-time order: sort by acknowledgement, keep a running maximum of tokens, and
        // compare each grant with every grant acknowledged before its acquire was sent.
        grants.sort_by_key(|(_, g)| g.acked);
        let mut running_max = Vec::with_capacity(grants.len());
        let mut max = 0;
        for (_, g) in &grants {
            max = max.max(g.token);
            running_max.push(max);
        }
        for (who, g) in &grants {
            let before = grants.partition_point(|(_, e)| e.acked < g.sent);
            if before > 0 && running_max[before - 1] >= g.token {
                out.push(violation(
                    "token-regression",
                    format!(
                        "lock-{lock}: {who} got token {} though token {} was granted before it asked",
                        g.token,
                        running_max[before - 1]
                    ),
                ));
            }
        }
    }
    out
}
