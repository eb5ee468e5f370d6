//! The summary of a chaos run, as text or as one JSON object.

use super::Summary;
use std::fmt::Write;

/// Most violations spelled out (all are counted).
const SHOWN: usize = 20;

impl Summary {
    /// A few readable lines.
    pub fn text(&self) -> String {
        let o = &self.options;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "chaos: seed {}, {} s, {} nodes, {} clients on {} locks ({:.1} s in all)",
            o.seed,
            o.secs,
            o.nodes,
            o.clients,
            o.locks,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "faults injected: {} (planned {})",
            list(self.faults.injected.iter()),
            self.planned.len()
        );
        let n = |k: &str| self.appends.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "cycles: {} complete, {} grants; appends: {} acknowledged, {} refused, {} unanswered ({} of them committed)",
            self.cycles,
            self.grants,
            n("acked"),
            n("refused"),
            n("unsure"),
            self.unsure_present
        );
        let _ = writeln!(s, "errors: {}", list(self.errors.iter()));
        for (file, f) in &self.files {
            let _ = writeln!(s, "  {file}: {} appends, {} bytes", f.appends, f.bytes);
        }
        let _ = writeln!(
            s,
            "probe after healing: {}",
            if self.probe_ok { "ok" } else { "FAILED" }
        );
        if self.violations.is_empty() {
            let _ = writeln!(
                s,
                "check: ok (every acknowledged append exactly once at its offset on every node; tokens only grew)"
            );
        } else {
            let _ = writeln!(
                s,
                "check: {} VIOLATIONS: {}",
                self.violations.len(),
                list(self.violation_counts().iter())
            );
            for v in self.violations.iter().take(SHOWN) {
                let _ = writeln!(s, "  {}: {}", v.kind, v.detail);
            }
        }
        if let Some(dir) = &self.kept {
            let _ = writeln!(
                s,
                "cluster directory (data and node logs) kept: {}",
                dir.display()
            );
        }
        s
    }

    /// One JSON object.
    pub fn json(&self) -> serde_json::Value {
        let o = &self.options;
        serde_json::json!({
            "seed": o.seed, "secs": o.secs, "nodes": o.nodes, "clients": o.clients, "locks": o.locks,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "faults_planned": self.planned.len(),
            "faults": self.faults.injected,
            "cycles": self.cycles,
            "grants": self.grants,
            "appends": self.appends,
            "unsure_committed": self.unsure_present,
            "errors": self.errors,
            "probe_ok": self.probe_ok,
            "files": self.files.iter().map(|(f, s)| (f.clone(), serde_json::json!({
                "appends": s.appends, "bytes": s.bytes,
            }))).collect::<serde_json::Map<_, _>>(),
            "violations": self.violation_counts(),
            "violation_details": self.violations.iter().take(SHOWN)
                .map(|v| format!("{}: {}", v.kind, v.detail)).collect::<Vec<_>>(),
            "kept": self.kept.as_ref().map(|d| d.display().to_string()),
        })
    }
}

fn list<K: std::fmt::Display, V: std::fmt::Display>(items: impl Iterator<Item = (K, V)>) -> String {
    let parts: Vec<String> = items.map(|(k, v)| format!("{k} {v}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
