//! Server NOTICEs (and WARNINGs, INFOs…) raised while airlock runs: collected here by
//! the connection's callback, then made part of the command's report (`notices` in
//! `--json`, a section of human output unless `--quiet`) instead of raw stderr lines.
//!
//! Invariant: every notice of every connection is counted; at most [`KEPT`] are kept
//! (a tier that raises one per row cannot exhaust memory), and the count of the rest
//! is reported with them.

use serde::Serialize;
use std::sync::Mutex;

/// How many notices one run keeps.
pub const KEPT: usize = 1000;

/// One message the server sent besides results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Notice {
    /// NOTICE, WARNING, INFO, LOG or DEBUG (as the server said it).
    pub severity: String,
    /// SQLSTATE code (00000 for a plain RAISE NOTICE).
    pub sqlstate: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The notices of one run, as reports carry them.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct Notices {
    /// What the server said besides results (RAISE NOTICE, WARNING…), in order; the
    /// first 1000 of a run.
    pub notices: Vec<Notice>,
    /// How many more notices came beyond the first 1000 (not kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub notices_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

static COLLECTED: Mutex<Notices> = Mutex::new(Notices {
    notices: Vec::new(),
    notices_omitted: 0,
});

/// Called by the connection's notice callback.
pub fn record(n: &postgres::error::DbError) {
    let notice = Notice {
        severity: n.severity().to_string(),
        sqlstate: n.code().code().to_string(),
        message: n.message().to_string(),
        detail: n.detail().map(str::to_string),
        hint: n.hint().map(str::to_string),
    };
    let mut all = COLLECTED.lock().unwrap_or_else(|p| p.into_inner());
    if all.notices.len() < KEPT {
        all.notices.push(notice);
    } else {
        all.notices_omitted += 1;
    }
}

/// Everything collected so far; the collector starts empty again.
pub fn take() -> Notices {
    std::mem::take(&mut *COLLECTED.lock().unwrap_or_else(|p| p.into_inner()))
}

impl Notices {
    pub fn is_empty(&self) -> bool {
        self.notices.is_empty() && self.notices_omitted == 0
    }

    /// Human lines: `NOTICE: message` (detail and hint indented below).
    pub fn human(&self) -> String {
        let mut s = format!(
            "server notices ({}):",
            self.notices.len() as u64 + self.notices_omitted
        );
        // Each text bounded: the JSON document keeps it whole.
        let indented = |t: &str, by: &str| {
            airlock_base::text::bound(t, airlock_base::text::MAX_LINE_BYTES)
                .replace('\n', &format!("\n{by}"))
        };
        // The same notice said again (a rehearsal's clone, then the real run) is shown
        // once, with how often; the JSON document keeps each.
        let mut seen: Vec<(&Notice, usize)> = vec![];
        for n in &self.notices {
            match seen.iter_mut().find(|(m, _)| *m == n) {
                Some((_, count)) => *count += 1,
                None => seen.push((n, 1)),
            }
        }
        for (n, count) in seen {
            let times = if count > 1 {
                format!(" ({count} times)")
            } else {
                String::new()
            };
            s.push_str(&format!(
                "\n  {}: {}{times}",
                n.severity,
                indented(&n.message, "    ")
            ));
            if let Some(d) = &n.detail {
                s.push_str(&format!("\n    detail: {}", indented(d, "      ")));
            }
            if let Some(h) = &n.hint {
                s.push_str(&format!("\n    hint: {}", indented(h, "      ")));
            }
        }
        if self.notices_omitted > 0 {
            s.push_str(&format!(
                "\n  … and {} more (only the first {KEPT} are kept)",
                self.notices_omitted
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(message: &str) -> Notice {
        Notice {
            severity: "NOTICE".into(),
            sqlstate: "00000".into(),
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// Issue 68, item 13: the demo's rehearsal and its real run say the same notices;
    /// a person reads each once, with how often (the JSON keeps every one).
    #[test]
    fn the_same_notice_twice_is_shown_once_with_how_often() {
        let n = Notices {
            notices: vec![
                notice("seed: 210 rows"),
                notice("guard on"),
                notice("seed: 210 rows"),
            ],
            notices_omitted: 0,
        };
        let shown = n.human();
        assert_eq!(shown.matches("seed: 210 rows").count(), 1, "{shown}");
        assert!(
            shown.contains("NOTICE: seed: 210 rows (2 times)"),
            "{shown}"
        );
        assert!(shown.starts_with("server notices (3):"), "{shown}");
        assert_eq!(n.notices.len(), 3);
    }
}
