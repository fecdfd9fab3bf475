//! `plan`'s predictions: which tier statements the data now in the target will make
//! fail (a duplicate under a new primary key or unique index, a NULL under a new NOT
//! NULL, a row a new CHECK or foreign key rejects), and what the release destroys
//! (rows of dropped, truncated or emptied tables), asked of the target before
//! anything runs.
//!
//! Invariant: read only (one READ ONLY transaction, always rolled back), each question
//! bounded by a statement_timeout, and only tables the release's statements name are
//! asked about. A table the release creates, or whose rows it changes before the
//! statement, is named as not predictable here, never queried; a question cut short is
//! a warning, never a silent GO.

use super::session::render_search_path;
use super::{pg_message, quote_ident};
use airlock_bundle::verified::{reader_of, VerifiedBundle};
use airlock_sql::{DataStep, Relation, Step};
use postgres::error::SqlState;
use postgres::Transaction;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why the predictions could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("reading {file} back: {message}")]
    Read { file: String, message: String },
    #[error("{context}: {message}")]
    Sql { context: String, message: String },
}

fn sql_err(context: &str, e: &postgres::Error) -> PredictError {
    PredictError::Sql {
        context: context.into(),
        message: pg_message(e),
    }
}

/// What the data says about one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It would fail on the rows there now.
    Fails,
    /// The rows there now let it through.
    Passes,
    /// The question was cut short by `--predict-timeout`: cannot tell in time.
    TimedOut,
    /// Not asked: the release creates the table or changes its rows first, or the
    /// statement's form cannot be asked about simply (`reason` says which).
    NotPredictable,
}

/// One data-dependent statement and what the data says.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Prediction {
    pub tier: String,
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub relation: String,
    pub outcome: Outcome,
    /// Offending rows (or duplicate rows), when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// Up to 5 offending keys (escaped, each at most 64 characters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// What was asked, or why nothing was.
    pub reason: String,
}

/// What one statement destroys.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Destroyed {
    pub tier: String,
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub relation: String,
    /// Rows it takes (a dropped column: the rows of its table); `None`: not there now.
    pub rows: Option<i64>,
    /// Counted exactly (below [`EXACT_BELOW`] estimated rows), or the planner's
    /// estimate (`reltuples`).
    pub exact: bool,
    /// The table's bytes with indexes and TOAST (DROP TABLE, TRUNCATE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// Why there is no count (the release creates the table, the count was cut short).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `plan`'s predictions, or why they could not be made.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Predictions {
    pub predictions: Vec<Prediction>,
    pub destroys: Vec<Destroyed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Tables estimated below this many rows are counted exactly.
pub const EXACT_BELOW: i64 = 100_000;
const KEYS_SHOWN: i64 = 5;
const KEY_CHARS: usize = 64;

/// The data steps of the tiers `tiers` names, in run order, each with its tier.
fn steps_of(
    vb: &VerifiedBundle,
    tiers: &[String],
) -> Result<Vec<(String, DataStep)>, PredictError> {
    let mut out = Vec::new();
    for tier in vb
        .manifest()
        .spec()
        .tier
        .iter()
        .filter(|t| tiers.contains(&t.name))
    {
        for file in &tier.files {
            let read = |message: String| PredictError::Read {
                file: file.clone(),
                message,
            };
            let payload = vb.payload(file).map_err(|e| read(e.to_string()))?;
            let steps = airlock_sql::data_steps_in(file, &mut reader_of(payload))
                .map_err(|e| read(e.to_string()))?;
            out.extend(steps.into_iter().map(|s| (tier.name.clone(), s)));
        }
    }
    Ok(out)
}

/// Ask the target about the data steps of `tiers`, each question bounded by `timeout`.
pub fn predict(
    client: &mut postgres::Client,
    vb: &VerifiedBundle,
    tiers: &[String],
    timeout: Duration,
) -> Predictions {
    let mut run = || -> Result<Predictions, PredictError> {
        let steps = steps_of(vb, tiers)?;
        if steps.is_empty() {
            return Ok(Predictions::default());
        }
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(|e| sql_err("starting the predictions' read-only transaction", &e))?;
        let path = vb.manifest().spec().target.search_path();
        tx.batch_execute(&format!(
            "SET LOCAL search_path TO {}; SET LOCAL statement_timeout = '{}ms'",
            render_search_path(&path),
            timeout.as_millis().max(1)
        ))
        .map_err(|e| sql_err("setting the predictions' search_path and timeout", &e))?;
        let out = Walk::default().run(&mut tx, steps);
        tx.rollback()
            .map_err(|e| sql_err("ending the predictions' transaction", &e))?;
        Ok(out)
    };
    run().unwrap_or_else(|e| Predictions {
        error: Some(e.to_string()),
        ..Predictions::default()
    })
}

/// What the release did before the statement at hand: the tables it created, the
/// ones whose rows it changed, a DO block or CALL that may change anything.
#[derive(Default)]
struct Walk {
    created: BTreeMap<String, String>,
    written: BTreeMap<String, String>,
    opaque: Option<String>,
    /// Whether each relation the questions name is there now, asked once for all.
    present: BTreeMap<String, bool>,
}

fn at(s: &DataStep) -> String {
    format!("{} at {}:{}", s.statement, s.file, s.line)
}

/// The relation's name, every part quoted (a hostile name stays a name).
fn qualified(r: &Relation) -> String {
    match &r.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&r.name)),
        None => quote_ident(&r.name),
    }
}

impl Walk {
    fn run(mut self, tx: &mut Transaction<'_>, steps: Vec<(String, DataStep)>) -> Predictions {
        let mut out = Predictions::default();
        self.present = present_all(tx, &steps);
        for (tier, s) in steps {
            let key = s.relation.name.clone();
            match &s.step {
                Step::Creates => {
                    self.created.insert(key, at(&s));
                }
                Step::Writes => {
                    self.written.insert(key, at(&s));
                }
                Step::Opaque => self.opaque = Some(at(&s)),
                Step::DropTable
                | Step::DropColumn { .. }
                | Step::Truncate
                | Step::DeleteAll
                | Step::UpdateAll => {
                    out.destroys.push(self.destroyed(tx, &tier, &s));
                    if !matches!(s.step, Step::DropColumn { .. }) {
                        self.written.insert(key, at(&s));
                    }
                }
                _ => out.predictions.push(self.predicted(tx, &tier, &s)),
            }
        }
        out
    }

    /// Why the rows there now do not decide this statement, if they do not.
    fn unpredictable(&self, s: &DataStep) -> Option<String> {
        let names = std::iter::once(&s.relation.name).chain(match &s.step {
            Step::ForeignKey { references, .. } => Some(&references.name),
            _ => None,
        });
        for n in names {
            if let Some(c) = self.created.get(n) {
                return Some(format!(
                    "not predictable here (the release creates it: {c}; rehearse runs it)"
                ));
            }
            if let Some(w) = self.written.get(n) {
                return Some(format!(
                    "not predictable here (the release changes its rows first: {w}; rehearse runs it)"
                ));
            }
        }
        self.opaque.as_ref().map(|o| {
            format!("not predictable here (an earlier {o} may change any row; rehearse runs it)")
        })
    }

    fn predicted(&self, tx: &mut Transaction<'_>, tier: &str, s: &DataStep) -> Prediction {
        let mut p = Prediction {
            tier: tier.into(),
            file: s.file.clone(),
            line: s.line,
            statement: s.statement.clone(),
            relation: s.relation.to_string(),
            outcome: Outcome::NotPredictable,
            count: None,
            keys: vec![],
            reason: String::new(),
        };
        if let Some(why) = self.unpredictable(s) {
            p.reason = why;
            return p;
        }
        match ask(tx, s, &self.present) {
            Ok(Answer::Unasked(why)) => p.reason = why,
            Ok(Answer::Rows { count, keys, what }) => {
                p.outcome = if count > 0 {
                    Outcome::Fails
                } else {
                    Outcome::Passes
                };
                p.count = Some(count);
                p.keys = keys;
                p.reason = what;
            }
            Err(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {
                p.outcome = Outcome::TimedOut;
                p.reason =
                    "cannot tell in time (the question was cut short by --predict-timeout)".into();
            }
            Err(e) => p.reason = format!("not predictable here ({})", pg_message(&e)),
        }
        p
    }

    fn destroyed(&self, tx: &mut Transaction<'_>, tier: &str, s: &DataStep) -> Destroyed {
        let mut d = Destroyed {
            tier: tier.into(),
            file: s.file.clone(),
            line: s.line,
            statement: s.statement.clone(),
            relation: match &s.step {
                Step::DropColumn { column } => {
                    format!("{} column {}", s.relation, quote_ident(column))
                }
                _ => s.relation.to_string(),
            },
            rows: None,
            exact: false,
            bytes: None,
            note: None,
        };
        if let Some(why) = self.unpredictable(s) {
            d.note = Some(why.replace("not predictable here", "not counted"));
            return d;
        }
        match count_rows(tx, &s.relation) {
            Ok(Some((rows, exact, bytes))) => {
                d.rows = Some(rows);
                d.exact = exact;
                d.bytes = (!matches!(s.step, Step::DropColumn { .. })).then_some(bytes);
            }
            Ok(None) => d.note = Some("not there now".into()),
            Err(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {
                d.note = Some("cannot count in time (--predict-timeout)".into())
            }
            Err(e) => d.note = Some(format!("not counted ({})", pg_message(&e))),
        }
        d
    }
}

/// What one question found.
enum Answer {
    Rows {
        count: i64,
        keys: Vec<String>,
        what: String,
    },
    Unasked(String),
}

/// Run `sql` in a savepoint (a question cut short does not end the others). Its
/// parameters are text; it is sent unprepared, with their types (one round trip, not
/// a prepare and an execute).
fn rows(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[&str],
) -> Result<Vec<postgres::Row>, postgres::Error> {
    let typed: Vec<(&(dyn postgres::types::ToSql + Sync), postgres::types::Type)> = params
        .iter()
        .map(|p| {
            (
                p as &(dyn postgres::types::ToSql + Sync),
                postgres::types::Type::TEXT,
            )
        })
        .collect();
    let mut sp = tx.transaction()?;
    let r = sp.query_typed(sql, &typed);
    sp.rollback()?;
    r
}

/// Whether each relation the steps name (and the tables their foreign keys reference)
/// is there now, in one question; an unanswered one is asked again on its own.
fn present_all(tx: &mut Transaction<'_>, steps: &[(String, DataStep)]) -> BTreeMap<String, bool> {
    let mut names: Vec<String> = vec![];
    for (_, s) in steps {
        names.push(qualified(&s.relation));
        if let Step::ForeignKey { references, .. } = &s.step {
            names.push(qualified(references));
        }
    }
    names.sort();
    names.dedup();
    let mut sp = match tx.transaction() {
        Ok(sp) => sp,
        Err(_) => return BTreeMap::new(),
    };
    let got = sp.query_typed(
        "SELECT x, pg_catalog.to_regclass(x) IS NOT NULL FROM pg_catalog.unnest($1::pg_catalog.text[]) AS x",
        &[(&names, postgres::types::Type::TEXT_ARRAY)],
    );
    let _ = sp.rollback();
    got.map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        .unwrap_or_default()
}

/// Whether the relation exists now (as the search_path finds it): from `present`,
/// else asked.
fn exists(
    tx: &mut Transaction<'_>,
    present: &BTreeMap<String, bool>,
    r: &Relation,
) -> Result<bool, postgres::Error> {
    if let Some(&known) = present.get(&qualified(r)) {
        return Ok(known);
    }
    let got = rows(
        tx,
        "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
        &[qualified(r).as_str()],
    )?;
    Ok(got.first().is_some_and(|r| r.get::<_, bool>(0)))
}

/// Rows (exact below [`EXACT_BELOW`] estimated, else the estimate) and bytes.
fn count_rows(
    tx: &mut Transaction<'_>,
    r: &Relation,
) -> Result<Option<(i64, bool, i64)>, postgres::Error> {
    let got = rows(
        tx,
        "SELECT c.reltuples::bigint, pg_catalog.pg_total_relation_size(c.oid) \
         FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)",
        &[qualified(r).as_str()],
    )?;
    let Some(row) = got.first() else {
        return Ok(None);
    };
    let (estimate, bytes): (i64, i64) = (row.get(0), row.get(1));
    if (0..EXACT_BELOW).contains(&estimate) || estimate < 0 {
        let n = rows(tx, &format!("SELECT count(*) FROM {}", qualified(r)), &[])?;
        return Ok(Some((n[0].get(0), true, bytes)));
    }
    Ok(Some((estimate, false, bytes)))
}

/// A key as shown: control characters escaped, at most [`KEY_CHARS`] characters.
fn shown_key(k: &str) -> String {
    let mut s: String = k
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .take(KEY_CHARS + 1)
        .collect();
    if s.chars().count() > KEY_CHARS {
        s = s.chars().take(KEY_CHARS).collect::<String>() + "…";
    }
    s
}

fn cols(columns: &[String], alias: &str) -> Vec<String> {
    columns
        .iter()
        .map(|c| format!("{alias}{}", quote_ident(c)))
        .collect()
}

/// The key of a row as text: one column, or a ROW of several.
fn key_expr(columns: &[String], alias: &str) -> String {
    let c = cols(columns, alias);
    if c.len() == 1 {
        format!("({})::text", c[0])
    } else {
        format!("ROW({})::text", c.join(", "))
    }
}

/// The question that decides the statement, asked.
fn ask(
    tx: &mut Transaction<'_>,
    s: &DataStep,
    present: &BTreeMap<String, bool>,
) -> Result<Answer, postgres::Error> {
    if !exists(tx, present, &s.relation)? {
        return Ok(Answer::Unasked(
            "not predictable here (the table is not there now)".into(),
        ));
    }
    let t = qualified(&s.relation);
    match &s.step {
        Step::Unique { columns, primary } => unique(tx, &t, columns, *primary),
        Step::SetNotNull { column } => {
            let c = quote_ident(column);
            keyed(
                tx,
                &format!("SELECT ctid::text FROM {t} WHERE {c} IS NULL"),
                format!("rows whose {c} is NULL (keys: ctid)"),
            )
        }
        Step::AddNotNullColumn { .. } => keyed(
            tx,
            &format!("SELECT ctid::text FROM {t}"),
            "rows that would get NULL in a NOT NULL column without a default (keys: ctid)".into(),
        ),
        Step::Check { expr: Some(e) } => keyed(
            tx,
            &format!("SELECT ctid::text FROM {t} WHERE NOT ({e})"),
            format!("rows that violate CHECK ({e}) (keys: ctid)"),
        ),
        Step::Check { expr: None } => Ok(Answer::Unasked(
            "not predictable here (the CHECK is not a plain expression over the table's columns)"
                .into(),
        )),
        Step::ForeignKey {
            columns,
            references,
            ref_columns,
        } => foreign_key(tx, &t, (columns, references, ref_columns), present),
        Step::UniqueOther { why } => Ok(Answer::Unasked(format!("not predictable here ({why})"))),
        _ => Ok(Answer::Unasked("not a data-dependent statement".into())),
    }
}

/// Count the rows `select` returns (its one column: a key), and the first keys.
fn keyed(tx: &mut Transaction<'_>, select: &str, what: String) -> Result<Answer, postgres::Error> {
    let got = rows(
        tx,
        &format!(
            "SELECT k, count(*) OVER ()::bigint FROM ({select}) AS airlock_q(k) LIMIT {KEYS_SHOWN}"
        ),
        &[],
    )?;
    Ok(Answer::Rows {
        count: got.first().map_or(0, |r| r.get(1)),
        keys: got
            .iter()
            .map(|r| shown_key(r.get::<_, Option<&str>>(0).unwrap_or("NULL")))
            .collect(),
        what,
    })
}

fn unique(
    tx: &mut Transaction<'_>,
    t: &str,
    columns: &[String],
    primary: bool,
) -> Result<Answer, postgres::Error> {
    let c = cols(columns, "");
    let not_null: Vec<String> = c.iter().map(|c| format!("{c} IS NOT NULL")).collect();
    let got = rows(
        tx,
        &format!(
            "SELECT k, n, count(*) OVER ()::bigint, (sum(n) OVER ())::bigint FROM \
             (SELECT {} AS k, count(*) AS n FROM {t} WHERE {} GROUP BY {} HAVING count(*) > 1) d \
             ORDER BY n DESC LIMIT {KEYS_SHOWN}",
            key_expr(columns, ""),
            not_null.join(" AND "),
            c.join(", ")
        ),
        &[],
    )?;
    let groups: i64 = got.first().map_or(0, |r| r.get(2));
    let dup_rows: i64 = got.first().map_or(0, |r| r.get(3));
    let keys: Vec<String> = got
        .iter()
        .map(|r| {
            format!(
                "{} ×{}",
                shown_key(r.get::<_, Option<&str>>(0).unwrap_or("NULL")),
                r.get::<_, i64>(1)
            )
        })
        .collect();
    let mut what = format!(
        "rows under {groups} duplicated key(s) of ({})",
        c.join(", ")
    );
    let mut count = dup_rows;
    if primary {
        let null: Vec<String> = c.iter().map(|c| format!("{c} IS NULL")).collect();
        let n = rows(
            tx,
            &format!("SELECT count(*) FROM {t} WHERE {}", null.join(" OR ")),
            &[],
        )?;
        let nulls: i64 = n[0].get(0);
        if nulls > 0 {
            what.push_str(&format!(", or with a NULL key column ({nulls})"));
        }
        count += nulls;
    }
    Ok(Answer::Rows { count, keys, what })
}

fn foreign_key(
    tx: &mut Transaction<'_>,
    t: &str,
    (columns, references, ref_columns): (&[String], &Relation, &[String]),
    present: &BTreeMap<String, bool>,
) -> Result<Answer, postgres::Error> {
    if !exists(tx, present, references)? {
        return Ok(Answer::Unasked(
            "not predictable here (the referenced table is not there now)".into(),
        ));
    }
    let r = qualified(references);
    let ref_columns: Vec<String> = if ref_columns.is_empty() {
        rows(
            tx,
            "SELECT a.attname::text FROM pg_catalog.pg_constraint k \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) \
             WHERE k.conrelid = pg_catalog.to_regclass($1) AND k.contype = 'p' \
             ORDER BY pg_catalog.array_position(k.conkey, a.attnum)",
            &[r.as_str()],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect()
    } else {
        ref_columns.to_vec()
    };
    if ref_columns.len() != columns.len() || columns.is_empty() {
        return Ok(Answer::Unasked(
            "not predictable here (the referenced columns could not be matched)".into(),
        ));
    }
    let here = cols(columns, "c.");
    let there = cols(&ref_columns, "p.");
    let not_null: Vec<String> = here.iter().map(|c| format!("{c} IS NOT NULL")).collect();
    let eq: Vec<String> = here
        .iter()
        .zip(&there)
        .map(|(a, b)| format!("{b} = {a}"))
        .collect();
    keyed(
        tx,
        &format!(
            "SELECT {} FROM {t} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {r} p WHERE {})",
            key_expr(columns, "c."),
            not_null.join(" AND "),
            eq.join(" AND ")
        ),
        format!(
            "rows whose ({}) has no match in {references}",
            cols(columns, "").join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_escaped_and_bounded() {
        assert_eq!(super::shown_key("a\nb"), "a\\nb");
        let long = "x".repeat(100);
        assert_eq!(
            super::shown_key(&long).chars().count(),
            super::KEY_CHARS + 1
        );
    }
}

/// `plan`'s `predicted-failures` row: FAIL with apply's exit for a failing statement
/// (1) when the data makes one fail, WARN when a question was cut short or could not
/// be asked at all, OK otherwise.
pub fn check(p: &Predictions) -> super::checks::Check {
    use super::checks::{Check, CheckName, CheckVerdict};
    use airlock_base::exit::Exit;
    let line = |x: &Prediction| {
        let mut s = format!(
            "{}:{} {} on {}: {}",
            x.file, x.line, x.statement, x.relation, x.reason
        );
        if let Some(n) = x.count.filter(|n| *n > 0) {
            s = format!(
                "{}:{} {} on {}: {n} {}",
                x.file, x.line, x.statement, x.relation, x.reason
            );
        }
        if !x.keys.is_empty() {
            s.push_str(&format!(" (first: {})", x.keys.join(", ")));
        }
        s
    };
    let of = |o: Outcome| p.predictions.iter().filter(move |x| x.outcome == o);
    let fails: Vec<String> = of(Outcome::Fails).map(line).collect();
    if !fails.is_empty() {
        return Check::failed_with(
            CheckName::PredictedFailures,
            Exit::Runtime,
            format!("{} statement(s) would fail on the data there now: {}", fails.len(), fails.join("; ")),
            Some("fix the data first (or make the release do it before the statement), then plan again".into()),
        );
    }
    let warn = |evidence: String| Check {
        check: CheckName::PredictedFailures,
        verdict: CheckVerdict::Warn,
        exit_code: Exit::Success,
        evidence,
        hint: None,
    };
    if let Some(e) = &p.error {
        return warn(format!("cannot tell: {e}"));
    }
    let late: Vec<String> = of(Outcome::TimedOut).map(line).collect();
    if !late.is_empty() {
        return warn(format!(
            "cannot tell in time for {} statement(s): {} (raise --predict-timeout, or rehearse)",
            late.len(),
            late.join("; ")
        ));
    }
    let asked = of(Outcome::Passes).count();
    let unasked = of(Outcome::NotPredictable).count();
    Check::ok(
        CheckName::PredictedFailures,
        match (asked, unasked) {
            (0, 0) => "no tier statement depends on the data there now".to_string(),
            (a, 0) => format!("{a} data-dependent statement(s) pass on the data there now"),
            (a, u) => format!("{a} data-dependent statement(s) pass on the data there now; {u} not predictable here (listed below)"),
        },
    )
}
