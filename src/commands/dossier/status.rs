//! The top of the dossier: the status in plain words (what the release does, what it
//! waits for, the one decision asked of the reader), the GO/NO-GO matrix, and, after
//! the fact, what ran (receipts).
//!
//! Invariant: the verdict and every "waiting for" come from the matrix rows and the
//! quorum as their commands judged them; the words around them are airlock's, the
//! names and reasons in them are escaped.

use super::facts::{archived, check_name, Dossier, MatrixFrom};
use super::happened::of_receipts;
use super::html::{code, esc, esc_bounded, table};
use super::news::News;
use crate::db::plan::{Check, CheckName, CheckVerdict, PlanVerdict};
use std::fmt::Write;

/// Bytes of one piece of evidence shown (the JSON has all of it).
pub(super) const EVIDENCE: usize = 4000;
/// Rows of a table shown.
pub(super) const ROWS: usize = 500;

/// The one verdict word: APPLIED when the database's ledger shows every tier applied
/// as of the page's time (a page for the archive judges the past), else what the
/// receipts given record (APPLIED, PARTIAL, ROLLED-BACK, NOT-APPLIED), else `plan`'s
/// with a database, NOT-ASKED without.
pub(crate) fn verdict_word(d: &Dossier) -> &'static str {
    if archived(d) {
        return "APPLIED";
    }
    if let Some(h) = of_receipts(d) {
        return h.word;
    }
    match d.plan.as_ref().map(|p| p.verdict) {
        Some(PlanVerdict::Go) => "GO",
        Some(PlanVerdict::Blocked) => "BLOCKED",
        Some(PlanVerdict::NoGo) => "NO-GO",
        Some(PlanVerdict::CannotTell) => "CANNOT-TELL",
        None => "NOT-ASKED",
    }
}

/// `APPLIED at T by OP (ledger row N of database D)`, from the last apply row.
fn applied_said(d: &Dossier) -> String {
    let Some(h) = &d.history else {
        return "APPLIED".into();
    };
    match h.last_apply() {
        Some(r) => format!(
            "APPLIED at {} by {} (ledger row {} of database {}, {}): this page records what happened, as of {}",
            r.at,
            r.operator,
            r.seq,
            h.database,
            match &r.signed_by {
                Some(key) => format!("signed by operator key {key}"),
                None => "unsigned: the ledger the deploy login keeps says so, no operator key vouches for it".into(),
            },
            h.as_of
        ),
        None => format!("APPLIED, as of {}", h.as_of),
    }
}

/// BLOCKED, saying what closes it: the gates that are not open, or, when every gate
/// is open, the signed approvals still missing.
fn blocked_said(d: &Dossier) -> String {
    let Some(g) = d.plan.as_ref().and_then(|p| p.gates.as_ref()) else {
        return "BLOCKED: a gate is closed".into();
    };
    let closed: Vec<&str> = g
        .gates
        .iter()
        .filter(|x| !x.ready)
        .map(|x| x.name.as_str())
        .collect();
    let quorum = g.ratification.as_ref().filter(|q| !q.met);
    match (closed.is_empty(), quorum) {
        (true, Some(q)) => format!(
            "BLOCKED: every gate is open; it waits for the signed approvals ({})",
            q.summary()
        ),
        (false, Some(q)) => format!(
            "BLOCKED: the gate(s) {} are closed, and it waits for the signed approvals ({})",
            closed.join(", "),
            q.summary()
        ),
        (false, None) => format!("BLOCKED: the gate(s) {} are closed", closed.join(", ")),
        (true, None) => "BLOCKED: a gate is closed".into(),
    }
}

/// The worst news as an HTML list (empty when there is none).
fn news_list(news: &News) -> String {
    let lines = news.all();
    if lines.is_empty() {
        return String::new();
    }
    let mut s = "<ul class=\"news\">".to_string();
    for l in &lines {
        let _ = write!(s, "<li><strong>{}</strong></li>", esc_bounded(l, EVIDENCE));
    }
    s.push_str("</ul>");
    s
}

/// The banner under the title: the verdict and where it comes from, then every NO-GO
/// fact the page holds (red when one stops the release or its undoing).
pub(super) fn banner(d: &Dossier) -> String {
    let word = verdict_word(d);
    let news = News::of(d);
    let happened = of_receipts(d).filter(|_| !archived(d));
    let (class, said) = match (word, happened) {
        (_, Some(h)) if h.word == "APPLIED" => ("done", h.said),
        (_, Some(h)) => ("blocked", h.said),
        ("APPLIED", None) => ("done", applied_said(d)),
        ("GO", None) => ("go", "GO: every check apply makes passed".to_string()),
        ("BLOCKED", None) => ("blocked", blocked_said(d)),
        ("NO-GO", None) => ("nogo", "NO-GO: apply would refuse".to_string()),
        ("CANNOT-TELL", None) => (
            "blocked",
            "CANNOT TELL: code a database role attached kept airlock from predicting a statement; rehearse it, or have the role remove that code".to_string(),
        ),
        _ => (
            "unknown",
            "VERIFIED: the bundle's signatures and hashes hold; the database was not asked"
                .to_string(),
        ),
    };
    let class = if news.stops.is_empty() { class } else { "nogo" };
    let when = match &d.database_at {
        Some(t) => format!("database {} as read at {t}", esc(&d.matrix_database())),
        None => format!("verification at {}", esc(&d.generated_at)),
    };
    format!(
        "<div class=\"verdict v-{class}\"><strong>{}</strong> <span>({when})</span>{}</div>",
        esc(&said),
        news_list(&news)
    )
}

/// The release's ledger rows as of the page's time, one line each (empty without
/// `--db` or rows).
fn what_happened(d: &Dossier) -> String {
    let Some(h) = d.history.as_ref().filter(|h| !h.rows.is_empty()) else {
        return String::new();
    };
    let mut s =
        format!(
        "<p>What happened to it on the database {}, as its ledger records it as of {}{}:</p><ul>",
        esc(&h.database),
        esc(&h.as_of),
        if h.later > 0 {
            format!(" ({} later row(s) not shown: they are after this page's time)", h.later)
        } else {
            String::new()
        }
    );
    for r in h.rows.iter().take(ROWS) {
        let tiers = if r.tiers.is_empty() {
            "no tier".to_string()
        } else {
            r.tiers.join(", ")
        };
        let what = match r.event.as_str() {
            "receipt" => format!("receipt delivered for the run of {tiers}"),
            event => format!("{event} of {tiers}"),
        };
        let signed = match (&r.signed_by, r.event.as_str()) {
            (Some(key), _) => format!(", signed by operator key {}", esc(key)),
            (None, "receipt") => String::new(),
            (None, _) => ": unsigned, so it shows only that the chain holds it, not that airlock wrote it nor when".into(),
        };
        let _ = write!(
            s,
            "<li>{} at {} by {} (ledger row {}{signed})</li>",
            esc(&what),
            esc(&r.at),
            esc(&r.operator),
            r.seq
        );
    }
    s.push_str("</ul>");
    if let Some(b) = &h.chain_broken {
        let _ = write!(
            s,
            "<p class=\"warnbox\">The ledger's hash chain breaks at row {}: these rows are as the database says, nothing vouches for them.</p>",
            esc(b)
        );
    }
    s
}

impl Dossier {
    /// The database the plan asked.
    fn matrix_database(&self) -> String {
        self.plan
            .as_ref()
            .map(|p| p.database.clone())
            .unwrap_or_default()
    }
}

/// `name=value, …` of the run's params (`none` when there are none).
fn params_text(d: &Dossier) -> String {
    if d.subject.params.is_empty() {
        return "no params".into();
    }
    d.subject
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--param k=v …` for a command line (shell-quoted where needed).
pub(super) fn param_flags(d: &Dossier) -> String {
    d.subject
        .params
        .iter()
        .map(|(k, v)| format!(" --param {}", shell(&format!("{k}={v}"))))
        .collect()
}

/// A word for a shell: as it is when safe, else single-quoted.
pub(super) fn shell(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// What the release does: its tiers, which run now and which wait.
fn what_it_does(d: &Dossier) -> String {
    let m = &d.verification.manifest;
    let tx = match m.bundle.transaction {
        crate::spec::TxMode::Single => "all in one transaction (all or nothing)",
        _ => "each tier in its own transaction",
    };
    let applied = applied_tiers(d);
    let to_run = |t: &&super::facts::TierChanges| !applied.contains(&t.name);
    let free: Vec<&str> = d
        .tiers
        .iter()
        .take_while(|t| t.gates.is_empty())
        .filter(to_run)
        .map(|t| t.name.as_str())
        .collect();
    let gated: Vec<&str> = d
        .tiers
        .iter()
        .filter(|t| !t.gates.is_empty())
        .filter(to_run)
        .map(|t| t.name.as_str())
        .collect();
    let mut s = format!(
        "<p>It runs {} tier(s), {tx}{}.",
        d.tiers.len(),
        match d.tiers.iter().filter(|t| t.online).count() {
            0 => String::new(),
            n => format!("; {n} online tier(s) run one statement at a time outside it (if an online step fails, what ran before it stays committed and the apply stops there: apply again to go on from that step, or roll back)"),
        }
    );
    if let Some((from, names)) = applied_line(d, &applied) {
        let _ = write!(
            s,
            " Applied already ({from}): {}; an apply runs only the tier(s) after them.",
            esc(&names)
        );
    }
    // Checked against the database: they run now only when nothing but the gates
    // stops apply (the plan's `runnable_now`).
    let now = match &d.plan {
        Some(p) if !p.only_gates_stop() => ", but cannot run before the failing checks pass",
        _ => " and can run now",
    };
    if !free.is_empty() && !gated.is_empty() {
        let _ = write!(
            s,
            " {} ({}) need no gate{now}; the other {} wait for the gate(s)",
            if applied.is_empty() {
                format!("The first {}", free.len())
            } else {
                format!("The next {}", free.len())
            },
            esc(&free.join(", ")),
            gated.len()
        );
        let mut gates: Vec<&str> = d
            .tiers
            .iter()
            .flat_map(|t| t.gates.iter().map(String::as_str))
            .collect();
        gates.sort_unstable();
        gates.dedup();
        let _ = write!(s, " {}", esc(&gates.join(", ")));
        if let Some(r) = &m.ratification {
            let _ = write!(s, " and {} signed approval(s)", r.threshold);
        }
        s.push('.');
    }
    s.push_str("</p>");
    s
}

/// The bundle's tiers applied on the database: as plan read its ledger (`--db`), else
/// as the latest receipt left them (its tiers not remaining), else none known.
fn applied_tiers(d: &Dossier) -> Vec<String> {
    if let Some(p) = &d.plan {
        return p.already_applied.clone();
    }
    match d.receipts.last() {
        Some(r) => d
            .tiers
            .iter()
            .map(|t| t.name.clone())
            .filter(|t| !r.receipt.remaining_tiers.contains(t))
            .collect(),
        None => vec![],
    }
}

/// Where the applied tiers are known from, and their names; `None` when none is.
fn applied_line(d: &Dossier, applied: &[String]) -> Option<(String, String)> {
    if applied.is_empty() {
        return None;
    }
    let from = match (&d.plan, d.receipts.last()) {
        (Some(_), _) => "the database's ledger, as plan read it".to_string(),
        (None, Some(r)) => format!(
            "as the latest receipt, of {}, left them",
            r.receipt.finished_at
        ),
        (None, None) => return None,
    };
    Some((from, applied.join(", ")))
}

/// What the release waits for, one item each.
fn waiting_for(d: &Dossier) -> Vec<String> {
    let mut out = vec![];
    if let Some(p) = &d.plan {
        match p.verdict {
            PlanVerdict::Go => {}
            PlanVerdict::Blocked => {
                for g in p
                    .gates
                    .iter()
                    .flat_map(|g| g.gates.iter())
                    .filter(|g| !g.ready)
                {
                    out.push(format!(
                        "the gate {}: {}",
                        code(&g.name),
                        esc_bounded(&g.reason, EVIDENCE)
                    ));
                }
            }
            PlanVerdict::NoGo | PlanVerdict::CannotTell => {
                if let Some(c) = p.first_failure() {
                    out.push(format!(
                        "{} to pass: {}{}",
                        code(&check_name(c)),
                        esc_bounded(&c.evidence, EVIDENCE),
                        c.hint
                            .as_ref()
                            .map(|h| format!(" <em>What to do:</em> {}", esc_bounded(h, EVIDENCE)))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    if let Some(q) = d.approvals.as_ref().filter(|q| !q.met) {
        out.push(esc(&q.summary()));
    }
    if d.plan.is_none() {
        out.push(
            "the database's own checks, which this page did not ask (no <code>--db</code>)".into(),
        );
    }
    out
}

/// The decision asked of the reader, and the one command for it.
fn decision(d: &Dossier) -> String {
    let bundle = shell(&d.bundle_file);
    let trust = shell(&d.trust_store.store.display().to_string());
    let params = param_flags(d);
    if let Some(r) = d.receipts.last() {
        return format!(
            "<p class=\"decision\">Nothing is asked before anything runs: this page records what ran (the {} receipt of {}). File it with the bundle and the receipt.</p>",
            esc(&r.receipt.event),
            esc(&r.receipt.finished_at)
        );
    }
    let ratification = d.verification.manifest.ratification.is_some();
    if ratification && d.approvals.as_ref().is_none_or(|q| !q.met) {
        let refused = match &d.plan {
            Some(p) if p.verdict == PlanVerdict::NoGo => "<p class=\"warnbox\">No decision can make it run yet: apply would refuse (the matrix's first failing row). Approving does not change that; the operator fixes it. You may still approve what this page shows.</p>",
            _ if !News::of(d).stops.is_empty() => "<p class=\"warnbox\">Read what stops it (at the top of this page) before you decide: approving does not change any of it.</p>",
            _ => "",
        };
        return format!(
            "{refused}<p class=\"decision\">The decision asked of you: whether to approve this release, run with exactly {}. If you agree, run this one command with your approver key:</p><pre class=\"cmd\">airlock approve {} --trust {}{} --key YOUR-KEY.key</pre><p>A key on a token or in ssh-agent is named the same way: <code>--key 'pkcs11:token=…;object=…'</code> or <code>--key ssh-agent:SHA256:…</code> (docs/keys-on-hardware.md). It verifies the bundle again, shows what you approve and prints the dossier digest <code>{}</code>: the same digest means this page is about exactly what you sign (this bundle, these params, the names this trust store gives).</p>",
            esc(&params_text(d)),
            esc(&bundle),
            esc(&trust),
            esc(&params),
            esc(&d.digest)
        );
    }
    let approvals: String = d
        .approvals
        .as_ref()
        .map(|_| " --approval APPROVALS/".to_string())
        .unwrap_or_default();
    let warn = if News::of(d).stops.is_empty() {
        ""
    } else {
        "<p class=\"warnbox\">Read what stops it (at the top of this page) before you decide.</p>"
    };
    match d.plan.as_ref().map(|p| p.verdict) {
        Some(PlanVerdict::Go) => format!(
            "{warn}<p class=\"decision\">The decision asked of you (the operator): whether to apply it now.</p><pre class=\"cmd\">airlock apply {} --trust {} --db CONN{}{}</pre>",
            esc(&bundle),
            esc(&trust),
            esc(&params),
            esc(&approvals)
        ),
        Some(PlanVerdict::Blocked) => "<p class=\"decision\">No decision yet: it waits for the gates above. <code>airlock apply … --wait</code> goes on by itself when they open.</p>".into(),
        Some(PlanVerdict::NoGo) => "<p class=\"decision\">No decision yet: apply would refuse. Fix what the matrix's first failing row names, then make this page again.</p>".into(),
        Some(PlanVerdict::CannotTell) => format!(
            "<p class=\"decision\">No decision yet: airlock cannot tell whether the release succeeds on the data there now (the matrix's first row that did not pass says which statement, and whose code). Rehearse it on a clone, then make this page again with the rehearsal (<code>--rehearsal rehearsal.json</code>):</p><pre class=\"cmd\">airlock rehearse {} --trust {} --db CONN{} --json &gt; rehearsal.json</pre>",
            esc(&bundle),
            esc(&trust),
            esc(&params)
        ),
        None => format!(
            "{warn}<p class=\"decision\">The decision asked of you: whether this release may go ahead. The database's GO/NO-GO is not on this page; the operator asks it read-only:</p><pre class=\"cmd\">airlock plan {} --trust {} --db CONN{}</pre>",
            esc(&bundle),
            esc(&trust),
            esc(&params)
        ),
    }
}

/// The params of the run, each with what the bundle says it is.
fn params_table(d: &Dossier) -> String {
    let m = &d.verification.manifest;
    if m.params.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = m
        .params
        .iter()
        .map(|(name, spec)| {
            let value = match d.subject.params.get(name) {
                Some(v) => code(v),
                None if spec.required => "<strong>not given</strong> (required)".into(),
                None => "not given".into(),
            };
            vec![code(name), value, esc_bounded(&spec.description, EVIDENCE)]
        })
        .collect();
    format!(
        "<p>It runs with these params (an approval consents to exactly these):</p>{}",
        table(
            &["param", "value", "what it is (the bundle says)"],
            &rows,
            ROWS
        )
    )
}

/// The status section.
pub(super) fn status(d: &Dossier) -> String {
    let m = &d.verification.manifest;
    let mut s = format!(
        "<p class=\"lead\"><strong>{} {}</strong> (sequence {}) changes the database <strong>{}</strong>.",
        esc(&m.bundle.name),
        esc(&m.bundle.version),
        m.bundle.sequence,
        esc(&match &m.target.database {
            airlock_bundle::target_db::TargetDatabase::Name(n) => n.clone(),
            fleet => fleet.describe(),
        })
    );
    if !m.bundle.description.is_empty() {
        let _ = write!(s, " {}", esc_bounded(&m.bundle.description, EVIDENCE));
    }
    s.push_str("</p>");
    let news = News::of(d);
    if !news.all().is_empty() {
        let _ = write!(
            s,
            "<div class=\"warnbox\"><p><strong>Read this first</strong> (each is shown in full below):</p>{}</div>",
            news_list(&news)
        );
    }
    s.push_str(&what_happened(d));
    if archived(d) {
        let _ = write!(
            s,
            "<p class=\"decision\">Nothing is asked: the release was applied ({}). This page records what happened; the GO/NO-GO section shows what <code>plan</code> says of a new apply today, for information only.</p>",
            esc(&applied_said(d))
        );
        return s;
    }
    s.push_str(&what_it_does(d));
    s.push_str(&params_table(d));
    let waiting = waiting_for(d);
    if d.receipts.is_empty() {
        if waiting.is_empty() {
            s.push_str("<p>It waits for nothing: every check apply makes passed.</p>");
        } else {
            s.push_str("<p>It is waiting for:</p><ul>");
            for w in waiting {
                let _ = write!(s, "<li>{w}</li>");
            }
            s.push_str("</ul>");
        }
    }
    s.push_str(&decision(d));
    s
}

fn verdict_cell(v: CheckVerdict) -> String {
    let (class, word) = match v {
        CheckVerdict::Ok => ("ok", "OK"),
        CheckVerdict::Blocked => ("blocked", "BLOCKED"),
        CheckVerdict::Fail => ("fail", "FAIL"),
        CheckVerdict::Warn => ("warn", "WARN"),
        CheckVerdict::Skipped => ("skip", "SKIPPED"),
        CheckVerdict::CannotTell => ("warn", "CANNOT TELL"),
    };
    format!("<span class=\"badge b-{class}\">{word}</span>")
}

/// Where a matrix row's evidence comes from.
fn row_source(d: &Dossier, c: &Check) -> String {
    match (c.check, d.matrix.from) {
        (CheckName::Signatures, _) => "bundle + trust store".into(),
        (CheckName::Params, _) => "command line".into(),
        (CheckName::ReceiptPolicy, _) => "trust store".into(),
        (CheckName::Gates, MatrixFrom::Verification) => "approval files".into(),
        (_, MatrixFrom::Verification) => "—".into(),
        (_, MatrixFrom::Database) => "database".into(),
    }
}

/// The GO/NO-GO matrix.
pub(super) fn matrix(d: &Dossier) -> String {
    let mut s = if archived(d) {
        "<p class=\"okbox\">The release was applied (see Status): these rows are what <code>plan</code> says of a new apply today, for information. They are not this page's verdict.</p>".to_string()
    } else {
        String::new()
    };
    s += &match d.matrix.from {
        MatrixFrom::Database => "<p>Every check <code>apply</code> makes, in its order, as <code>airlock plan</code> judged them: the verdict is that of the first row that did not pass.</p>".to_string(),
        MatrixFrom::Verification => "<p class=\"warnbox\"><strong>From verification alone.</strong> The database was not asked (no <code>--db</code>): these rows are what airlock checks before it connects. The database's rows (name guard, ledger, gates, preflight) are not on this page.</p>".to_string(),
    };
    let rows: Vec<Vec<String>> = d
        .matrix
        .checks
        .iter()
        .map(|c| {
            let mut evidence = esc_bounded(&c.evidence, EVIDENCE);
            if let Some(h) = &c.hint {
                let _ = write!(
                    evidence,
                    "<br><em>What to do:</em> {}",
                    esc_bounded(h, EVIDENCE)
                );
            }
            vec![
                format!("<code class=\"nb\">{}</code>", esc(&check_name(c))),
                verdict_cell(c.verdict),
                evidence,
                row_source(d, c),
            ]
        })
        .collect();
    s.push_str(&table(
        &["check", "verdict", "evidence", "source"],
        &rows,
        ROWS,
    ));
    if let Some(g) = d.plan.as_ref().and_then(|p| p.gates.as_ref()) {
        let rows: Vec<Vec<String>> = g
            .gates
            .iter()
            .map(|x| {
                vec![
                    code(&x.name),
                    verdict_cell(if x.ready {
                        CheckVerdict::Ok
                    } else {
                        CheckVerdict::Blocked
                    }),
                    esc_bounded(&x.reason, EVIDENCE),
                ]
            })
            .collect();
        if !rows.is_empty() {
            s.push_str("<h3>The gates, now</h3>");
            s.push_str(&table(
                &["gate", "verdict", "reason (the database's answer)"],
                &rows,
                ROWS,
            ));
        }
    }
    if let Some(p) = d.plan.as_ref().and_then(|p| p.preflight.as_ref()) {
        s.push_str(&probe_table("The preflight probe, now", p));
    }
    s
}

/// A probe's values beside what the bundle expects.
pub(super) fn probe_table(title: &str, p: &crate::db::gate::ProbeReport) -> String {
    let rows: Vec<Vec<String>> = p
        .expected
        .iter()
        .map(|(k, v)| {
            let actual = p
                .values
                .get(k)
                .cloned()
                .unwrap_or_else(|| "(no row)".into());
            let ok = &actual == v;
            vec![
                code(k),
                esc_bounded(v, EVIDENCE),
                esc_bounded(&actual, EVIDENCE),
                verdict_cell(if ok {
                    CheckVerdict::Ok
                } else {
                    CheckVerdict::Fail
                }),
            ]
        })
        .collect();
    format!(
        "<h3>{} ({})</h3>{}",
        esc(title),
        code(&p.file),
        table(&["key", "expected", "actual", ""], &rows, ROWS)
    )
}

/// What ran, from each receipt; then the receipts of runs after the page's time.
pub(super) fn what_ran(d: &Dossier) -> String {
    let mut s = receipts_shown(d);
    if !d.receipts_later.is_empty() {
        let _ = write!(
            s,
            "<p class=\"warnbox\">{} receipt(s) given are of runs finished after this page's time ({}), so not shown as what ran by then: {}.</p>",
            d.receipts_later.len(),
            esc(&d.generated_at),
            esc_bounded(&d.receipts_later.join(", "), EVIDENCE)
        );
    }
    s
}

/// Each receipt's run, as its file says.
fn receipts_shown(d: &Dossier) -> String {
    let mut s = String::new();
    for (i, r) in d.receipts.iter().enumerate() {
        let rc = &r.receipt;
        let signed = match &r.signature {
            Some(sig) if sig.counted => format!(
                "signed by operator key {}{}: its signature counts",
                esc(&sig.key_id),
                sig.key_name.as_ref().map(|n| format!(" ({})", esc(n))).unwrap_or_default()
            ),
            Some(sig) => format!(
                "its signature by key {} does not count: {}",
                esc(&sig.key_id),
                esc(sig.note.as_deref().unwrap_or(""))
            ),
            None => "unsigned: what it says rests on the file alone (<code>airlock audit --db</code> checks it against the ledger)".into(),
        };
        let _ = write!(
            s,
            "<h3 id=\"receipt-{}\">{} {}: {}{}</h3><p>{} on database {} (server {}), by {} as {}, from {} to {} ({} ms); {signed}.</p>",
            i + 1,
            esc(&rc.event),
            i + 1,
            esc(&rc.outcome),
            if rc.reissued.is_some() {
                " (reissued from the ledger)"
            } else {
                ""
            },
            code(&r.file),
            esc(&rc.database),
            rc.server_version_num,
            esc(&rc.operator),
            esc(&rc.session_user),
            esc(&rc.started_at),
            esc(&rc.finished_at),
            rc.duration_ms
        );
        let mut rows = vec![
            vec!["tiers run".into(), esc(&rc.tiers.join(", "))],
            tiers_left(rc),
            vec!["fingerprint before".into(), code(&rc.fingerprint_before)],
            vec!["fingerprint after".into(), code(&rc.fingerprint_after)],
            vec![
                "ledger rows".into(),
                esc(&rc
                    .ledger
                    .iter()
                    .map(|l| format!("seq {} at {} ({})", l.seq, l.at, short16(&l.row_hash)))
                    .collect::<Vec<_>>()
                    .join("; ")),
            ],
            vec!["file sha256".into(), code(&r.sha256)],
        ];
        if let Some(re) = &rc.reissued {
            rows.push(vec!["reissued".into(), reissued_text(re)]);
        }
        s.push_str(&table(&["", ""], &rows, ROWS));
        if let Some(v) = &rc.verify {
            s.push_str(&probe_table("The verify probe, before COMMIT", v));
        }
        if let Some(v) = &rc.rollback_probe {
            s.push_str(&probe_table("The rollback probe", v));
        }
    }
    s
}

/// What is left after the receipt's run, worded for its event: an apply's tiers still
/// to run, or the tiers a rollback left not applied (none of them is applied).
fn tiers_left(rc: &crate::db::receipt::Receipt) -> Vec<String> {
    let names = if rc.remaining_tiers.is_empty() {
        "none".to_string()
    } else {
        rc.remaining_tiers.join(", ")
    };
    if rc.event == "rollback" {
        vec![
            "tiers not applied after it".into(),
            esc(&format!(
                "{names} (rolled back or never run: an apply runs them again)"
            )),
        ]
    } else {
        vec!["tiers still to run".into(), esc(&names)]
    }
}

/// A reissued receipt's mark: when and by whom, why, and what it carries.
fn reissued_text(re: &crate::db::receipt::Reissued) -> String {
    let mut t = format!(
        "written from the ledger at {} by {}: {}",
        re.at, re.by, re.reason
    );
    if !re.from_ledger.is_empty() {
        let _ = write!(
            t,
            "; carries from the ledger: {}",
            re.from_ledger.join("; ")
        );
    }
    if !re.not_recorded.is_empty() {
        let _ = write!(
            t,
            "; not recorded anywhere, so absent: {}",
            re.not_recorded.join("; ")
        );
    }
    esc_bounded(&t, EVIDENCE)
}

fn short16(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}
