//! The middle of the dossier: what changes tier by tier (each statement kind in plain
//! words, the SQL folded below it), what it locks and for how long, what it destroys,
//! and how it is undone.
//!
//! Invariant: the SQL shown is the verified bundle's bytes, escaped and highlighted,
//! at most [`SQL_PER_FILE`] bytes a file and [`SQL_IN_ALL`] in all; a file beyond either
//! is shown by its size and SHA-256 only, and says so. Predictions are rendered from
//! whatever `plan`'s prediction structs hold (every list a table, every field a
//! column), so a new kind of prediction shows without a change here.

use super::chart;
use super::facts::{destroys_data, Dossier, FileChanges, TierChanges};
use super::html::{code, esc, esc_bounded, table};
use super::status::{probe_table, EVIDENCE, ROWS};
use crate::verified::VerifiedBundle;
use std::fmt::Write;
use std::io::Read;

/// The most bytes of one SQL file shown on the page.
pub(super) const SQL_PER_FILE: u64 = 128 << 10;
/// The most bytes of SQL shown on the page in all.
pub(super) const SQL_IN_ALL: u64 = 1 << 20;

/// The SQL budget left for the page.
pub(super) struct Budget(pub(super) u64);

/// A file's SQL folded under its name, size and hash; or, beyond the bounds, only those.
fn sql_block(vb: &VerifiedBundle, f: &FileChanges, budget: &mut Budget) -> String {
    let head = format!(
        "{} ({} bytes, sha256 <code class=\"hash\">{}</code>)",
        code(&f.path),
        f.size,
        esc(&f.sha256)
    );
    if f.size > SQL_PER_FILE || f.size > budget.0 {
        return format!(
            "<p class=\"folded\">SQL: {head}: not shown, {} (<code>airlock sql</code> prints it; its SHA-256 above is checked on every run).</p>",
            if f.size > SQL_PER_FILE {
                format!("over the {} KiB a file the page shows", SQL_PER_FILE >> 10)
            } else {
                format!("the page shows at most {} MiB of SQL in all", SQL_IN_ALL >> 20)
            }
        );
    }
    let mut bytes = Vec::with_capacity(f.size as usize);
    let read = vb
        .payload(&f.path)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            crate::verified::reader_of(p)
                .take(SQL_PER_FILE)
                .read_to_end(&mut bytes)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = read {
        return format!(
            "<p class=\"folded\">SQL: {head}: not read ({})</p>",
            esc(&e)
        );
    }
    budget.0 -= bytes.len() as u64;
    let text = String::from_utf8_lossy(&bytes);
    format!(
        "<details><summary>SQL: {head}</summary><pre class=\"sql\">{}</pre></details>",
        super::sql::highlighted(&text)
    )
}

/// What a set of files' statements do, grouped by kind in the order first seen.
fn summary(files: &[&FileChanges]) -> String {
    let mut kinds: Vec<(String, usize, Vec<String>)> = vec![];
    let mut unread = vec![];
    for f in files {
        let Some(statements) = &f.statements else {
            unread.push(format!(
                "{}: {}",
                code(&f.path),
                esc(f.not_read.as_deref().unwrap_or(""))
            ));
            continue;
        };
        for st in statements {
            let at = match kinds.iter().position(|k| k.0 == st.kind) {
                Some(i) => i,
                None => {
                    kinds.push((st.kind.clone(), 0, vec![]));
                    kinds.len() - 1
                }
            };
            kinds[at].1 += 1;
            if let Some(o) = &st.object {
                if !kinds[at].2.contains(o) {
                    kinds[at].2.push(o.clone());
                }
            }
        }
    }
    let rows: Vec<Vec<String>> = kinds
        .iter()
        .map(|(kind, n, objects)| {
            let shown: Vec<String> = objects.iter().take(12).map(|o| esc(o)).collect();
            let more = objects.len().saturating_sub(12);
            vec![
                esc(airlock_sql::plain_kind(kind)),
                code(kind),
                n.to_string(),
                format!(
                    "{}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ),
            ]
        })
        .collect();
    let mut s = if rows.is_empty() {
        "<p>No statement.</p>".to_string()
    } else {
        table(&["what it does", "SQL", "statements", "on"], &rows, ROWS)
    };
    for u in unread {
        let _ = write!(s, "<p class=\"folded\">{u}</p>");
    }
    s
}

fn tier_block(d: &Dossier, t: &TierChanges, vb: &VerifiedBundle, budget: &mut Budget) -> String {
    let waits = if t.gates.is_empty() {
        "needs no gate: it can run before the release is ratified".to_string()
    } else {
        format!(
            "waits for the gate(s) {}{}",
            esc(&t.gates.join(", ")),
            if t.needs_approvals {
                " and the signed approvals"
            } else {
                ""
            }
        )
    };
    let how = if t.online {
        "online: one statement at a time, outside any transaction, each recorded as it completes"
    } else {
        match d.verification.manifest.bundle.transaction {
            crate::spec::TxMode::Single => "inside the release's one transaction",
            _ => "in its own transaction",
        }
    };
    let files: Vec<&FileChanges> = t.files.iter().collect();
    let mut s = format!(
        "<h3 id=\"tier-{}\">Tier {} of {}: {}</h3><p class=\"meta\">{waits}; runs {how}.</p>{}",
        t.index,
        t.index,
        d.tiers.len(),
        esc(&t.name),
        summary(&files)
    );
    for f in &t.files {
        s.push_str(&sql_block(vb, f, budget));
    }
    s
}

/// What changes, tier by tier; then the checks around them (gates and probes).
pub(super) fn changes(d: &Dossier, vb: &VerifiedBundle, budget: &mut Budget) -> String {
    let mut s = "<p>Each tier's statements in plain words (the words are airlock's; the kinds are read from the SQL by PostgreSQL's parser), with the SQL itself folded below: open it to read every statement.</p>".to_string();
    for t in &d.tiers {
        s.push_str(&tier_block(d, t, vb, budget));
    }
    if !d.checks.is_empty() {
        s.push_str("<h3>The checks around them</h3><p>The gates (read-only questions that say READY or BLOCKED) and the probes (read-only key/value answers compared with what the bundle expects):</p>");
        let m = &d.verification.manifest;
        let expect = |e: &crate::spec::Expect| {
            e.iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut rows: Vec<Vec<String>> = m
            .gate
            .iter()
            .map(|g| {
                vec![
                    format!("gate {}", esc(&g.name)),
                    code(&g.file),
                    String::new(),
                ]
            })
            .collect();
        for (what, p) in [
            ("preflight (before the first tier)", &m.preflight),
            ("verify (before COMMIT)", &m.verify),
        ] {
            if let Some(p) = p {
                rows.push(vec![what.into(), code(&p.file), esc(&expect(&p.expect))]);
            }
        }
        s.push_str(&table(&["check", "file", "expects"], &rows, ROWS));
        for f in &d.checks {
            s.push_str(&sql_block(vb, f, budget));
        }
    }
    s
}

/// What it locks: the rehearsal's measured holds (the timeline), then the lock plan.
pub(super) fn locks(d: &Dossier) -> String {
    let mut s = measured(d);
    s.push_str(&lock_plan(d));
    s
}

/// The rehearsal's measured holds: the timeline and its table.
fn measured(d: &Dossier) -> String {
    let mut s = String::new();
    if let Some(r) = &d.rehearsal {
        match &r.report.lock_impact {
            Some(li) if !li.locks.is_empty() => {
                s.push_str("<p>How long each lock on an existing table was held when the rehearsal applied the release to a clone of the target (measured, not estimated). Each bar starts when its statement was sent.</p>");
                s.push_str(&chart::timeline(li));
                let rows: Vec<Vec<String>> = li
                    .locks
                    .iter()
                    .map(|h| {
                        vec![
                            esc(&h.relation),
                            esc(h.mode.name()),
                            format!(
                                "{} {}",
                                esc(&h.statement),
                                code(&format!("{}:{}", h.file, h.line))
                            ),
                            chart::ms(h.statement_ms),
                            chart::ms(h.held_ms),
                            esc(&crate::commands::deploy::plan_locks::size_text(&h.size)),
                        ]
                    })
                    .collect();
                s.push_str(&table(
                    &[
                        "table",
                        "mode",
                        "statement",
                        "ran",
                        "held",
                        "size on the clone",
                    ],
                    &rows,
                    ROWS,
                ));
                if li.omitted > 0 {
                    let _ = write!(
                        s,
                        "<p>{} more lock(s) were held shorter than those listed.</p>",
                        li.omitted
                    );
                }
                if let Some(e) = &li.error {
                    let _ = write!(s, "<p>Not measured: {}</p>", esc_bounded(e, EVIDENCE));
                }
            }
            Some(li) => {
                let _ = write!(
                    s,
                    "<p>The rehearsal held no lock on a table that existed before it{}.</p>",
                    li.error
                        .as_ref()
                        .map(|e| format!(" (not measured: {})", esc_bounded(e, EVIDENCE)))
                        .unwrap_or_default()
                );
            }
            None => s.push_str(
                "<p>The rehearsal did not apply the release, so it measured no lock.</p>",
            ),
        }
    } else {
        s.push_str("<p>No rehearsal was given (<code>--rehearsal</code>): the holds below are the lock plan, not measured times.</p>");
    }
    s
}

/// The lock plan: `plan`'s with sizes, or the one read from the SQL alone.
fn lock_plan(d: &Dossier) -> String {
    let mut s = String::new();
    let (plan, sized) = match (&d.plan, &d.static_locks) {
        (Some(p), _) => (p.locks.as_ref(), true),
        (None, l) => (l.as_ref(), false),
    };
    let Some(lp) = plan else {
        return s;
    };
    if let Some(e) = &lp.error {
        let _ = write!(
            s,
            "<p>The lock plan could not be read: {}</p>",
            esc_bounded(e, EVIDENCE)
        );
        return s;
    }
    if lp.locks.is_empty() {
        s.push_str("<p>The lock plan: no statement of the release locks a table beyond what plain row changes take (ROW EXCLUSIVE, which blocks no reader and no writer of other rows).</p>");
        return s;
    }
    let _ = write!(
        s,
        "<h3>The lock plan</h3><p>Which existing tables each statement locks, in which mode (read from the SQL by PostgreSQL's parser){}.</p>",
        if sized { "; sizes as the database reported them" } else { "; sizes need <code>--db</code>" }
    );
    let rows: Vec<Vec<String>> = lp
        .locks
        .iter()
        .map(|l| {
            vec![
                esc(&l.tier),
                code(&format!("{}:{}", l.lock.file, l.lock.line)),
                esc(&l.lock.statement),
                esc(&l.lock.relation),
                esc(l.lock.mode.name()),
                esc(l.lock.work.map(|w| w.describe()).unwrap_or("-")),
                l.size
                    .as_ref()
                    .map(|z| esc(&crate::commands::deploy::plan_locks::size_text(z)))
                    .unwrap_or_else(|| if sized { "new".into() } else { "?".into() }),
            ]
        })
        .collect();
    s.push_str(&table(
        &[
            "tier",
            "where",
            "statement",
            "table",
            "mode",
            "work",
            "size",
        ],
        &rows,
        ROWS,
    ));
    let plain: Vec<String> = lp.locks.iter().filter_map(in_plain_words).collect();
    if !plain.is_empty() {
        s.push_str("<p>In plain words:</p><ul>");
        for p in plain.iter().take(ROWS) {
            let _ = write!(s, "<li>{}</li>", esc_bounded(p, EVIDENCE));
        }
        s.push_str("</ul>");
    }
    for l in crate::db::lock_plan::attention(&lp.locks) {
        let _ = write!(
            s,
            "<p class=\"warnbox\">{}</p>",
            esc_bounded(
                &crate::commands::deploy::plan_locks::why(
                    l,
                    crate::commands::deploy::plan_predict::Whose::Release
                ),
                EVIDENCE
            )
        );
    }
    s
}

/// One lock as an approver reads it: who waits, from when, until when (`None`: a lock
/// nobody's reads or writes wait for).
fn in_plain_words(l: &crate::db::lock_plan::PlannedLock) -> Option<String> {
    use crate::sql_lint::LockMode;
    if l.lock.work == Some(airlock_sql::Work::EveryRow) {
        let until = match &l.commits_before {
            Some(online) => format!("the transaction commits, before online tier {online}"),
            None => "its transaction commits".into(),
        };
        return Some(format!(
            "The UPDATE at {}:{} (tier {}) writes every row of {}: sessions that update or delete its rows wait from then until {until} (reads and inserts go on), and the table grows by about its size until VACUUM.",
            l.lock.file, l.lock.line, l.tier, l.lock.relation
        ));
    }
    let who = if l.lock.mode.blocks_reads() {
        "Readers and writers"
    } else if l.lock.mode.blocks_writes() {
        "Writers (readers go on)"
    } else if l.lock.mode == LockMode::ShareUpdateExclusive {
        return Some(format!(
            "{} at {}:{}: readers and writers of {} go on; only other schema changes and VACUUM of it wait while it runs.",
            l.lock.statement, l.lock.file, l.lock.line, l.lock.relation
        ));
    } else {
        return None;
    };
    let size = l
        .size
        .as_ref()
        .map(|z| format!(" ({})", crate::commands::deploy::plan_locks::size_text(z)))
        .unwrap_or_default();
    let work = l
        .lock
        .work
        .map(|w| format!(" (it {})", w.describe().trim_start_matches("it ")))
        .unwrap_or_default();
    let until = match (l.held_to_commit, &l.commits_before) {
        (true, Some(online)) => format!(
            "until the transaction commits, after the statements and tiers that follow it, before online tier {online}"
        ),
        (true, None) => {
            "until the release commits, after every statement and tier that follows it".into()
        }
        (false, _) => "while it runs".into(),
    };
    Some(format!(
        "{who} of {}{size} wait from the {} at {}:{} (tier {}){work} {until}.",
        l.lock.relation, l.lock.statement, l.lock.file, l.lock.line, l.tier
    ))
}

/// `snake_case` as words.
fn words(key: &str) -> String {
    key.replace(['_', '-'], " ")
}

/// One JSON value as a table cell.
fn cell(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => esc_bounded(s, EVIDENCE),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{}: {}", esc(&words(k)), cell(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Every list in a JSON object as a table (its objects' fields the columns, in the
/// order first seen), every other field as a line: a struct rendered without knowing it.
fn generic(value: &serde_json::Value, titles: &[(&str, &str)]) -> String {
    let Some(obj) = value.as_object() else {
        return String::new();
    };
    let mut s = String::new();
    // The fields the titles name first, in their order; then the others (new kinds).
    let mut keys: Vec<&String> = titles
        .iter()
        .filter_map(|(k, _)| obj.get_key_value(*k).map(|(k, _)| k))
        .collect();
    keys.extend(obj.keys().filter(|k| !titles.iter().any(|(t, _)| t == k)));
    for key in keys {
        let v = &obj[key];
        let title = titles
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| words(key), |(_, t)| (*t).to_string());
        match v {
            serde_json::Value::Array(items) if items.is_empty() => {
                let _ = write!(s, "<h3>{}</h3><p>None.</p>", esc(&title));
            }
            serde_json::Value::Array(items) => {
                let mut columns: Vec<&str> = vec![];
                for item in items {
                    for k in item.as_object().into_iter().flat_map(|o| o.keys()) {
                        if !columns.contains(&k.as_str()) && columns.len() < 20 {
                            columns.push(k);
                        }
                    }
                }
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|item| match item.as_object() {
                        Some(o) => columns
                            .iter()
                            .map(|c| o.get(*c).map(cell).unwrap_or_default())
                            .collect(),
                        None => vec![cell(item)],
                    })
                    .collect();
                let headers: Vec<String> = if columns.is_empty() {
                    vec!["".into()]
                } else {
                    columns.iter().map(|c| words(c)).collect()
                };
                let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
                let _ = write!(
                    s,
                    "<h3>{}</h3>{}",
                    esc(&title),
                    table(&headers, &rows, ROWS)
                );
            }
            serde_json::Value::Null => {}
            other => {
                let _ = write!(
                    s,
                    "<p><strong>{}:</strong> {}</p>",
                    esc(&title),
                    cell(other)
                );
            }
        }
    }
    s
}

/// What it destroys and which statements the data would make fail: `plan`'s
/// predictions with a database, the destructive statements read from the SQL without.
pub(super) fn destroys(d: &Dossier) -> String {
    if let Some(p) = d.plan.as_ref().and_then(|p| p.predictions.as_ref()) {
        let value = serde_json::to_value(p).unwrap_or_default();
        return format!(
            "{}<p>Asked of the data in the database now, read-only, each question bounded in time (<code>plan</code>'s predictions): a statement the data would make fail is NO-GO before anything runs; a question cut short is a warning, never a silent GO.</p>{}",
            could_go_wrong(
                p,
                d.rehearsal
                    .as_ref()
                    .and_then(|r| r.report.predictions.as_ref())
                    .map_or(&[][..], |r| &r.judged[..]),
                "release"
            ),
            generic(
                &value,
                &[
                    ("predictions", "Statements the data decides (predicted failures)"),
                    ("destroys", "What the release destroys (rows and bytes, counted now)"),
                    ("error", "Could not predict"),
                ]
            )
        );
    }
    let mut rows = vec![];
    for t in &d.tiers {
        for f in &t.files {
            for st in f
                .statements
                .iter()
                .flatten()
                .filter(|st| destroys_data(&st.kind))
            {
                rows.push(vec![
                    esc(&t.name),
                    code(&format!("{}:{}", f.path, st.line)),
                    code(&st.kind),
                    esc(st.object.as_deref().unwrap_or("")),
                    esc(airlock_sql::plain_kind(&st.kind)),
                ]);
            }
        }
    }
    let mut s = "<p>Read from the SQL only: how many rows and bytes each takes is the database's to say (<code>--db</code> asks it, with the predicted failures).</p>".to_string();
    if rows.is_empty() {
        s.push_str(
            "<p>No statement of the tiers drops, empties, deletes from or retypes anything.</p>",
        );
    } else {
        s.push_str(&table(
            &["tier", "where", "SQL", "on", "what it does"],
            &rows,
            ROWS,
        ));
    }
    s
}

/// "What could go wrong", in plain words, from plan's predictions: each statement the
/// data there now would make fail, and each one nobody could ask about here, with what
/// the rehearsal given (`judged`) saw it do on its clone.
fn could_go_wrong(
    p: &crate::db::predict::Predictions,
    judged: &[airlock_pg::rehearse::predictions::Judged],
    whose: &str,
) -> String {
    use crate::db::predict::Outcome;
    use airlock_pg::rehearse::predictions::OnClone;
    let mut items = vec![];
    for x in &p.predictions {
        let seen = judged
            .iter()
            .find(|j| j.file == x.file && j.line == x.line && j.relation == x.relation)
            .map_or("rehearse runs it on a copy", |j| match j.on_clone {
                OnClone::Passed => "the rehearsal ran it on a copy, where it passed",
                OnClone::Failed => "the rehearsal ran it on a copy, where it FAILED",
                OnClone::NotReached => "the rehearsal stopped before it",
            });
        let at = format!(
            "The {} at {}:{} (tier {})",
            x.statement, x.file, x.line, x.tier
        );
        let line = match x.outcome {
            Outcome::Fails => format!(
                "{at} would fail on the rows in {} now{}: {}{}. The {whose} stops there and nothing of its transaction is kept.",
                x.relation,
                x.count.map(|n| format!(" ({n} of them)")).unwrap_or_default(),
                x.reason,
                if x.keys.is_empty() {
                    String::new()
                } else {
                    format!("; for example {}", x.keys.join(", "))
                }
            ),
            Outcome::TimedOut => format!(
                "{at}: whether the rows in {} let it through could not be asked in time; {seen}.",
                x.relation
            ),
            Outcome::NotPredictable => format!(
                "{at}: whether it succeeds cannot be told here ({}); {seen}.",
                x.reason
            ),
            Outcome::CannotTell => format!(
                "{at}: whether it succeeds cannot be told, because of code a database role attached ({}); airlock runs none of it. Rehearse it, or have the role remove that code; {seen}.",
                x.reason
            ),
            Outcome::Passes => continue,
        };
        items.push(line);
    }
    let title = if whose == "release" {
        "What could go wrong".to_string()
    } else {
        format!("What could go wrong in the {whose}")
    };
    if items.is_empty() {
        return format!("<h3>{title}</h3><p>Nothing the data there now decides: every statement plan asked about passes on the rows in the database now.</p>");
    }
    let mut s = format!("<h3>{title}</h3><ul>");
    for i in items.iter().take(ROWS) {
        let _ = write!(s, "<li>{}</li>", esc_bounded(i, EVIDENCE));
    }
    s.push_str("</ul>");
    s
}

/// How it is undone: the rollback and its probe, and the rehearsal's round trip.
pub(super) fn undo(d: &Dossier, vb: &VerifiedBundle, budget: &mut Budget) -> String {
    let m = &d.verification.manifest;
    let mut s = String::new();
    match &m.rollback {
        Some(r) => {
            let probe = r
                .probe
                .clone()
                .or_else(|| m.preflight.as_ref().map(|p| p.file.clone()));
            let expect = r
                .expect
                .as_ref()
                .or(m.preflight.as_ref().map(|p| &p.expect));
            let _ = write!(
                s,
                "<p><code>airlock rollback</code> runs {} file(s){}, then the probe {} must answer exactly {}; otherwise nothing of it is kept. Rolling back what is not applied changes nothing and says so.</p>",
                r.files.len(),
                if r.online { " online, one statement at a time" } else { " in one transaction" },
                probe.as_deref().map(code).unwrap_or_else(|| "(none)".into()),
                esc(&expect
                    .map(|e| e.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|| "(nothing)".into()))
            );
            let files: Vec<&FileChanges> = d.rollback.iter().collect();
            s.push_str(&summary(&files));
            for f in &d.rollback {
                s.push_str(&sql_block(vb, f, budget));
            }
        }
        None => s.push_str(
            "<p class=\"warnbox\">This bundle has no rollback: airlock cannot undo it.</p>",
        ),
    }
    s.push_str(&rollback_predicted(d));
    s.push_str(&rehearsal(d));
    for r in &d.receipts {
        if let Some(p) = &r.receipt.rollback_probe {
            s.push_str(&probe_table(
                "The rollback probe, as the receipt recorded it",
                p,
            ));
        }
    }
    s
}

/// What `plan --rollback` predicts on the database now (`--db`): what the rollback
/// would destroy, counted, and which of its statements the data would make fail.
fn rollback_predicted(d: &Dossier) -> String {
    if d.verification.manifest.rollback.is_none() {
        return String::new();
    }
    let title = "<h3>What the rollback would do to the data now</h3>";
    let Some(r) = &d.rollback_plan else {
        return format!("{title}<p>Not asked (no <code>--db</code>): <code>airlock plan BUNDLE --rollback --db CONN</code> predicts, read-only, what the rollback destroys and which of its statements the data would make fail.</p>");
    };
    let Some(p) = &r.plan else {
        return format!(
            "{title}<p>Not predicted: {}</p>",
            esc_bounded(r.not_asked.as_deref().unwrap_or(""), EVIDENCE)
        );
    };
    let mut s = format!(
        "<h3>What the rollback would do to the data now: {}</h3><p>As <code>airlock plan BUNDLE --rollback</code> predicts on the database {}, read-only, each question bounded in time: it undoes the tier(s) {} by running {}.</p>",
        esc(&p.verdict),
        esc(&p.database),
        esc(&p.undoes.join(", ")),
        esc(&p.files.join(", "))
    );
    if let Some(e) = &p.predictions.error {
        let _ = write!(
            s,
            "<p class=\"warnbox\">Predictions: cannot tell ({}).</p>",
            esc_bounded(e, EVIDENCE)
        );
    }
    s.push_str(&could_go_wrong(&p.predictions, &[], "rollback"));
    s.push_str("<h3>What the rollback destroys (rows and bytes, counted now)</h3>");
    if p.predictions.destroys.is_empty() {
        s.push_str("<p>Nothing that holds rows.</p>");
        return s;
    }
    let rows: Vec<Vec<String>> = p
        .predictions
        .destroys
        .iter()
        .map(|x| {
            vec![
                code(&format!("{}:{}", x.file, x.line)),
                esc(&x.statement),
                esc(&x.object),
                esc(&super::news::rows_taken(x)),
                x.bytes.map(|b| b.to_string()).unwrap_or_default(),
                if x.dependents_total > 0 {
                    format!("{} more object(s)", x.dependents_total)
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    s.push_str(&table(
        &[
            "where",
            "statement",
            "object",
            "rows",
            "bytes",
            "takes with it",
        ],
        &rows,
        ROWS,
    ));
    s
}

/// The rehearsal's proof: its steps, and the entry and exit fingerprints.
fn rehearsal(d: &Dossier) -> String {
    let Some(r) = &d.rehearsal else {
        return "<h3>The rehearsal</h3><p>Not given: <code>airlock rehearse BUNDLE … --json &gt; rehearsal.json</code> runs the whole cycle on a throw-away clone (apply, re-apply refused, rollback, back to the entry fingerprint), and <code>--rehearsal rehearsal.json</code> puts its proof here.</p>".into();
    };
    let rep = &r.report;
    let mut s = format!(
        "<h3>The rehearsal: {}</h3><p>On a clone of {} ({}{}), {}{}.</p>",
        if rep.ok {
            "PASS, every step held"
        } else {
            "FAIL"
        },
        esc(&rep.target),
        esc(&rep.clone),
        rep.clone_strategy
            .as_ref()
            .map(|c| format!(", {}", esc(c)))
            .unwrap_or_default(),
        match (&rep.started_at, &rep.finished_at) {
            (Some(a), Some(b)) => format!("from {} to {}", esc(a), esc(b)),
            _ => "at a time the report does not say".into(),
        },
        if rep.gates_assumed {
            "; the gate was BLOCKED then, and the rehearsal went past it on the clone only"
        } else {
            ""
        }
    );
    // After `apply --through` the clone began part-applied: its round trip is held to
    // the schema before the first tier (the ledger's), not to the entry.
    let partial = rep
        .steps
        .iter()
        .find(|st| st.step == "exit schema == before the first tier");
    let applied = rep
        .steps
        .iter()
        .find(|st| st.step == "tiers already applied")
        .map(|st| st.detail.as_str())
        .unwrap_or("some");
    match (&rep.entry_fingerprint, &rep.exit_fingerprint, partial) {
        (_, _, Some(st)) if st.verdict == "PASS" => {
            let _ = write!(s, "<p class=\"okbox\">The round trip held. The clone began part-applied (tiers already applied: {}), so the rollback, which undoes every tier, is held to the schema before the bundle's first tier as the ledger recorded it, not to the entry: {}.</p>", esc(applied), esc_bounded(&st.detail, EVIDENCE));
        }
        (_, _, Some(st)) => {
            let _ = write!(s, "<p class=\"warnbox\">The round trip did not hold. The clone began part-applied (tiers already applied: {}); the rollback was to return the schema to where it was before the bundle's first tier: {}.</p>", esc(applied), esc_bounded(&st.detail, EVIDENCE));
        }
        (Some(a), Some(b), None) if a == b => {
            let _ = write!(s, "<p class=\"okbox\">The round trip returned the clone to its entry fingerprint: apply, then rollback, left <code class=\"hash\">{}</code> (schema and every table's rows) exactly as it was.</p>", esc(a));
        }
        (Some(a), Some(b), None) => {
            let _ = write!(s, "<p class=\"warnbox\">The round trip did not return to the entry fingerprint: entry <code class=\"hash\">{}</code>, exit <code class=\"hash\">{}</code>.</p>", esc(a), esc(b));
        }
        _ => s.push_str("<p class=\"warnbox\">The rehearsal did not reach both fingerprints: no round-trip proof.</p>"),
    }
    let rows: Vec<Vec<String>> = rep
        .steps
        .iter()
        .map(|st| {
            vec![
                esc(&st.step),
                esc(&st.verdict),
                chart::ms(st.duration_ms),
                esc_bounded(&st.detail, EVIDENCE),
            ]
        })
        .collect();
    s.push_str(&table(&["step", "verdict", "time", "detail"], &rows, ROWS));
    for c in &rep.cluster_changes {
        let _ = write!(
            s,
            "<p class=\"warnbox\">Changed outside the clone: {}</p>",
            esc_bounded(&c.what, EVIDENCE)
        );
    }
    s
}
