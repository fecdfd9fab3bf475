//! `plan`'s lock plan, as text: every lock of the tiers about to run, then what the
//! GO/NO-GO should look at twice (rendered from `db::lock_plan::LockPlan`, as `--json` is).

use super::plan_predict::Whose;
use crate::db::lock_plan::{attention, LockPlan, PlannedLock, RelSize};
use crate::report::{table, thousands};

/// The lock plan section of `plan`'s human output (empty when no tier locks anything),
/// of the release's tiers or of its rollback.
pub fn human(lp: &LockPlan, whose: Whose) -> String {
    if let Some(e) = &lp.error {
        return format!("\n\nlocks: not read ({e})");
    }
    let warned = lp
        .warning
        .as_ref()
        .map(|w| format!("\n\nwarning: locks: {w}"))
        .unwrap_or_default();
    if lp.locks.is_empty() {
        return warned;
    }
    let rows: Vec<Vec<String>> = lp
        .locks
        .iter()
        .map(|l| {
            vec![
                l.tier.clone(),
                format!("{}:{}", l.lock.file, l.lock.line),
                l.lock.statement.clone(),
                l.lock.relation.clone(),
                l.lock.mode.name().to_string(),
                match l.lock.work {
                    Some(airlock_sql::Work::Rewrite) => "rewrite",
                    Some(airlock_sql::Work::Scan) => "scan",
                    Some(airlock_sql::Work::IndexBuild) => "index build",
                    Some(airlock_sql::Work::EveryRow) => "every row",
                    None if l.note.is_some() => "no rewrite",
                    None => "-",
                }
                .to_string(),
                l.size
                    .as_ref()
                    .map(size_text)
                    .unwrap_or_else(|| "new".into()),
            ]
        })
        .collect();
    let mut s = format!(
        "\n\nlocks (read from {} SQL; sizes now; DML takes ROW EXCLUSIVE and is listed only when it writes every row):\n{}",
        match whose {
            Whose::Release => "the tiers'",
            Whose::Rollback => "the rollback's",
        },
        table(
            &["tier", "where", "statement", "relation", "mode", "work", "size"],
            &rows
        )
    );
    for l in attention(&lp.locks) {
        s.push_str(&format!("\n! {}", why(l, whose)));
    }
    s.push_str(&warned);
    s
}

/// Why a lock needs a second look, in the words of `whose` statements: a release's
/// tiers (held to its commit unless per-tier) or its rollback (one transaction).
pub(crate) fn why(l: &PlannedLock, whose: Whose) -> String {
    let size = l.size.as_ref().map(size_text).unwrap_or_default();
    let blocked = if l.lock.mode.blocks_reads() {
        "reads and writes"
    } else {
        "writes"
    };
    let mut s = match l.lock.work {
        Some(airlock_sql::Work::EveryRow) => format!(
            "{} at {}:{} writes every row of {} ({size}): each row stays locked until the transaction commits (other sessions' updates and deletes of them wait; reads and inserts go on), and the table grows by about its size until VACUUM",
            l.lock.statement, l.lock.file, l.lock.line, l.lock.relation
        ),
        Some(w) if l.lock.flagged() => format!(
            "{} at {}:{} {} {} ({size}) under {}: its {blocked} wait until it finishes",
            l.lock.statement,
            l.lock.file,
            l.lock.line,
            w.describe(),
            l.lock.relation,
            l.lock.mode.name()
        ),
        _ => String::new(),
    };
    if let Some(safer) = l.lock.safer.as_ref().filter(|_| l.lock.flagged()) {
        s.push_str(&format!("; safer: {safer}"));
    }
    if l.held_to_commit {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!(
            "{} on {} ({size}) taken at {}:{} {}",
            l.lock.mode.name(),
            l.lock.relation,
            l.lock.file,
            l.lock.line,
            held_until(l, whose, blocked)
        ));
    }
    s
}

/// How long a lock held to COMMIT is held, and what waits.
fn held_until(l: &PlannedLock, whose: Whose, blocked: &str) -> String {
    let until = match (&l.commits_before, whose) {
        (_, Whose::Rollback) => {
            return format!("is held until the rollback commits, after the statements that follow it: its {blocked} wait that long");
        }
        (Some(online), Whose::Release) => format!(
            "is held until the transaction commits before online tier {online}, after the statements and tiers that follow it until then"
        ),
        (None, Whose::Release) => {
            "is held until the release commits, after the statements and tiers that follow"
                .to_string()
        }
    };
    format!("{until} (transaction = \"single\"): its {blocked} wait that long; per-tier transactions release it at the tier's end")
}

/// `1.2 GB, ~10,000,000 rows`.
/// A relation's size, short: `12.3 MB, ~300,000 rows`.
pub fn size_text(s: &RelSize) -> String {
    let rows = if s.rows < 0 {
        "rows not yet counted".to_string()
    } else {
        format!("~{} rows", thousands(s.rows))
    };
    format!("{}, {rows}", bytes(s.bytes))
}

/// `8 kB`, `1.2 GB`.
pub(crate) fn bytes(b: i64) -> String {
    let b = b.max(0) as f64;
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.0} kB", b / 1e3),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_an_operator_reads_them() {
        assert_eq!(thousands(10_000_000), "10,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(bytes(1_234_000_000), "1.2 GB");
        assert_eq!(bytes(8192), "8 kB");
        let s = RelSize {
            bytes: 8192,
            pages: 0,
            rows: -1,
        };
        assert_eq!(size_text(&s), "8 kB, rows not yet counted");
    }
}
