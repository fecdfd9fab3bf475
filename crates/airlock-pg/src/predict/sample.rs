//! A big table's unique key, NOT NULL, CHECK, foreign key or narrowing type change
//! (issue 77; [`rows`]: any statement that rejects the rows a test is true of): the statistics first
//! ([`super::stats`]), then a sample of the table read through the door, then the full
//! question; and when the full question is cut short by `--predict-timeout`, how long it
//! would take and the timeout that would do.
//!
//! The sample is `TABLESAMPLE SYSTEM (p) REPEATABLE (77)`: whole blocks, chosen at
//! random (the same ones while the table's blocks are the same), so it reads about
//! `p`% of the table's pages, where BERNOULLI reads every page to choose rows and costs
//! nearly what the full question does. It holds about 1% of the table's rows, at
//! least [`SAMPLE_MIN`] and at most [`SAMPLE_MAX`], and is bounded in time as well
//! ([`budget`]). A duplicate key (or a NULL) inside the sample is rows of the table,
//! so it proves a NO-GO on its own, the rows not all counted; a sample that shows
//! nothing proves nothing, and the full question is asked. Only the full question's
//! answer says a statement passes.
//!
//! Invariant: statistics never decide; only rows read through the door do. The
//! estimate of a full question cut short is the table's estimated rows at the rate
//! the sample was read (slowed by [`GROUPING_COST`]): a suggestion, never a verdict.

use super::ask::{self, Answer};
use super::stats::{self, Column};
use super::FullQuestion;
use postgres::Transaction;
use std::time::{Duration, Instant};

/// The share of a big table a sample reads, unless that is fewer than [`SAMPLE_MIN`]
/// rows or more than [`SAMPLE_MAX`].
const SAMPLE_SHARE: f64 = 0.01;
/// Rows a sample reads, at least (all of a table this small or smaller).
const SAMPLE_MIN: f64 = 50_000.0;
/// Rows a sample reads, at most (~1 s of the server's time measured here).
const SAMPLE_MAX: f64 = 500_000.0;
/// The seed of `REPEATABLE`: the same blocks from one run to the next.
const SEED: u32 = 77;
/// Grouping every row of a big table costs more a row than grouping a sample (the
/// hash table outgrows `work_mem`): measured 1.45x to 1.75x at 5,000,000 rows (15.1 s
/// under load, against 53,000 sampled rows in 0.11 s).
const GROUPING_COST: f64 = 1.75;
/// A suggested `--predict-timeout` is this many times the estimate.
const MARGIN: f64 = 2.0;

/// What a sample found: a NO-GO, or nothing; and the rate it was read at (rows a
/// second; `None`: not asked, or cut short).
struct Sampled {
    found: Option<Answer>,
    rate: Option<f64>,
}

/// The sample's `TABLESAMPLE` clause for a table of `rows` estimated rows, and the
/// rows it reads (about).
fn clause(rows: f64) -> (String, f64) {
    let want = (rows * SAMPLE_SHARE)
        .clamp(SAMPLE_MIN, SAMPLE_MAX)
        .min(rows);
    let percent = (want / rows * 100.0).clamp(0.0001, 100.0);
    (
        format!("TABLESAMPLE SYSTEM ({percent:.4}) REPEATABLE ({SEED})"),
        rows * percent / 100.0,
    )
}

/// How long a sample may take: half of `--predict-timeout`, at least 1 s and at most
/// 5 s, never more than the timeout itself.
fn budget(timeout: Duration) -> Duration {
    (timeout / 2)
        .clamp(Duration::from_secs(1), Duration::from_secs(5))
        .min(timeout)
}

/// Ask `sql` (a question of a sample reading about `rows` rows) through the door
/// within [`budget`]: its rows and the rate (`None`: not asked, or cut short).
fn ask_sample(
    tx: &mut Transaction<'_>,
    sql: &str,
    rows: f64,
    timeout: Duration,
) -> Result<Option<(Vec<postgres::Row>, f64)>, postgres::Error> {
    let mut sp = tx.transaction()?;
    sp.batch_execute(&format!(
        "SET LOCAL {} = '{}ms'",
        crate::door::QUESTION_TIMEOUT,
        budget(timeout).as_millis().max(1)
    ))?;
    let started = Instant::now();
    let got = ask::data(&mut sp, sql);
    let took = started.elapsed().as_secs_f64().max(0.001);
    sp.rollback()?;
    match got {
        Ok(Ok(got)) => Ok(Some((got, rows / took))),
        // Not asked, cut short or refused (a table TABLESAMPLE cannot read): it proves
        // nothing, and the full question is asked.
        Ok(Err(_)) | Err(_) => Ok(None),
    }
}

/// A new unique key (a primary key: or a NULL in it; a partial one: among the rows
/// its `predicate` keeps) on table `q`: a big table's statistics, its sample, then the
/// full question ([`ask::unique`]); a small table's full question only.
pub(super) fn unique(
    tx: &mut Transaction<'_>,
    q: &str,
    columns: &[String],
    (primary, predicate): (bool, Option<&str>),
    timeout: Duration,
) -> Result<Answer, postgres::Error> {
    let Some(col) = columns.first().and_then(|c| stats::of(tx, q, c)) else {
        return ask::unique(tx, q, columns, (primary, predicate));
    };
    if let ([column], None) = (columns, predicate) {
        if let Some(found) = stats::unique(tx, q, column, (primary, &col))? {
            return Ok(found);
        }
    }
    let sampled = unique_in_sample(tx, q, columns, (primary, predicate), (&col, timeout))?;
    if let Some(found) = sampled.found {
        return Ok(found);
    }
    let what = format!("duplicates of ({})", ask::cols(columns, "").join(", "));
    let answer = watched(tx, (q, &what, &col), sampled.rate, timeout, |tx| {
        ask::unique(tx, q, columns, (primary, predicate))
    });
    full(answer, q, &col, sampled.rate, timeout)
}

/// Duplicates (and, for a primary key, NULLs) of `columns` among the rows of a sample
/// of `q`, grouped as the full question groups them.
fn unique_in_sample(
    tx: &mut Transaction<'_>,
    q: &str,
    columns: &[String],
    (primary, predicate): (bool, Option<&str>),
    (col, timeout): (&Column, Duration),
) -> Result<Sampled, postgres::Error> {
    let (sample, rows) = clause(col.rows);
    let c = ask::cols(columns, "");
    let mut filter: Vec<String> = if primary {
        vec![]
    } else {
        c.iter().map(|c| format!("{c} IS NOT NULL")).collect()
    };
    if let Some(p) = predicate {
        filter.push(format!("({p})"));
    }
    let filter = if filter.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filter.join(" AND "))
    };
    let nulls: Vec<String> = c.iter().map(|c| format!("{c} IS NULL")).collect();
    let nulls = format!("pg_catalog.bool_or({})", nulls.join(" OR "));
    let sql = format!(
        "SELECT k, z FROM (SELECT {} AS k, {nulls} AS z FROM {q} {sample}{filter} GROUP BY {} \
         HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1{}) AS airlock_s LIMIT {}",
        ask::key_expr(columns, ""),
        c.join(", "),
        if primary {
            format!(" OR {nulls}")
        } else {
            String::new()
        },
        ask::KEYS_SHOWN
    );
    let Some((got, rate)) = ask_sample(tx, &sql, rows, timeout)? else {
        return Ok(Sampled {
            found: None,
            rate: None,
        });
    };
    let keys: Vec<String> = got
        .iter()
        .map(|r| match r.get::<_, Option<bool>>(1) {
            Some(true) => "NULL".to_string(),
            _ => format!(
                "{} ×2+",
                ask::shown_key(r.get::<_, Option<&str>>(0).unwrap_or("NULL"))
            ),
        })
        .collect();
    // A duplicated key is shown `k ×2+`, a NULL as `NULL`.
    let dups = keys.iter().filter(|k| *k != "NULL").count();
    let mut what = vec![];
    if dups > 0 {
        what.push(format!(
            "rows (at least 2) under {dups} duplicated key(s) of ({}){}",
            c.join(", "),
            predicate.map_or(String::new(), |p| format!(" among the rows WHERE {p}"))
        ));
    }
    if dups < keys.len() {
        what.push(format!(
            "rows (at least 1) with a NULL key column ({})",
            c.join(", ")
        ));
    }
    let found = (!keys.is_empty()).then(|| Answer::Rows {
        count: None,
        what: format!("{}: {}", what.join(", and "), in_sample(q, col, rows)),
        keys,
    });
    Ok(Sampled {
        found,
        rate: Some(rate),
    })
}

/// How a NO-GO found in a sample was found, for the reason.
fn in_sample(q: &str, col: &Column, rows: f64) -> String {
    format!(
        "found in a sample of the table read through the door (TABLESAMPLE SYSTEM, ~{rows:.0} \
         of its ~{:.0} rows; pg_stats named none); the rows were not all counted{}",
        col.rows,
        col.stale(q)
    )
}

/// A new NOT NULL on `column` of table `q`: a big table's statistics, its sample, then
/// the full question; a small table's full question only. `key`: how rows are named
/// (its SQL, and what it is shown as).
pub(super) fn null(
    tx: &mut Transaction<'_>,
    q: &str,
    column: &str,
    (key, keyed_by): (&str, &str),
    timeout: Duration,
) -> Result<Answer, postgres::Error> {
    let c = crate::quote_ident(column);
    let test = stats::Test {
        column: Some(column),
        test: format!("airlock_t.{c} IS NULL"),
        what: format!("rows whose {c} is NULL"),
    };
    rows(
        tx,
        q,
        (&test, (key, keyed_by)),
        timeout,
        |tx, col| stats::null(tx, q, column, (key, keyed_by), col),
        |tx| {
            ask::keyed(
                tx,
                &format!("SELECT {key} FROM {q} WHERE {c} IS NULL"),
                format!("rows whose {c} is NULL (keys: {keyed_by})"),
            )
        },
    )
}

/// A statement that rejects the rows `t` tests true (a new NOT NULL, CHECK, foreign key,
/// a narrowing type change) on table `q`: a big table's statistics (`first`: the NULLs
/// pg_stats counts; else [`stats::rejected`]), then a sample of it, then `question`,
/// the full question, its estimate said when it is cut short; a small table's full
/// question only. `key`: how rows are named (its SQL, and what it is shown as).
pub(super) fn rows(
    tx: &mut Transaction<'_>,
    q: &str,
    (t, (key, keyed_by)): (&stats::Test<'_>, (&str, &str)),
    timeout: Duration,
    first: impl FnOnce(&mut Transaction<'_>, &Column) -> Result<Option<Answer>, postgres::Error>,
    question: impl FnOnce(&mut Transaction<'_>) -> Result<Answer, postgres::Error>,
) -> Result<Answer, postgres::Error> {
    let Some(col) = t.column.and_then(|c| stats::of(tx, q, c)) else {
        return question(tx);
    };
    if let Some(found) = first(tx, &col)? {
        return Ok(found);
    }
    let (sample, rows) = clause(col.rows);
    let sql = format!(
        "SELECT {key} AS airlock_k FROM {q} AS airlock_t {sample} WHERE ({}) LIMIT {}",
        t.test,
        ask::KEYS_SHOWN
    );
    let mut rate = None;
    if let Some((got, r)) = ask_sample(tx, &sql, rows, timeout)? {
        if !got.is_empty() {
            return Ok(Answer::Rows {
                count: None,
                keys: ask::shown_keys(&got),
                what: format!(
                    "{} (at least 1; keys: {keyed_by}): {}",
                    t.what,
                    in_sample(q, &col, rows)
                        .replace("pg_stats named none", "pg_stats counted none")
                ),
            });
        }
        rate = Some(r);
    }
    let answer = watched(tx, (q, &t.what, &col), rate, timeout, question);
    full(answer, q, &col, rate, timeout)
}

/// A statement that rejects the rows `t` tests true, named by the statistics first
/// ([`stats::rejected`]); as [`rows`].
pub(super) fn rejected(
    tx: &mut Transaction<'_>,
    q: &str,
    (t, key): (&stats::Test<'_>, (&str, &str)),
    timeout: Duration,
    question: impl FnOnce(&mut Transaction<'_>) -> Result<Answer, postgres::Error>,
) -> Result<Answer, postgres::Error> {
    rows(
        tx,
        q,
        (t, key),
        timeout,
        |tx, col| stats::rejected(tx, q, t, key, col),
        question,
    )
}

/// `ask`, the full question on big table `q` (what it asks), its watcher told while it
/// runs ([`super::watch`]) with its estimate.
fn watched(
    tx: &mut Transaction<'_>,
    (q, what, col): (&str, &str, &Column),
    rate: Option<f64>,
    timeout: Duration,
    ask: impl FnOnce(&mut Transaction<'_>) -> Result<Answer, postgres::Error>,
) -> Result<Answer, postgres::Error> {
    let what = format!("{q}: {what} over ~{:.0} rows", col.rows);
    super::watching(Some(&super::Asking {
        what: &what,
        estimate: rate.map(|r| Duration::from_secs_f64(col.rows / r * GROUPING_COST)),
        timeout,
    }));
    let answer = ask(tx);
    super::watching(None);
    answer
}

/// The full question's answer on a big table: with the statistics' age when they are
/// older than the data, and, cut short, how long it would take.
fn full(
    answer: Result<Answer, postgres::Error>,
    q: &str,
    col: &Column,
    rate: Option<f64>,
    timeout: Duration,
) -> Result<Answer, postgres::Error> {
    match answer {
        Ok(Answer::Rows { count, keys, what }) => Ok(Answer::Rows {
            count,
            keys,
            what: what + &col.stale(q),
        }),
        Err(e) if crate::door::cut_short(&e) => {
            let full = rate.map(|r| estimate(col.rows, r, timeout));
            let mut why = format!(
                "cannot tell in time (the question was cut short by --predict-timeout {})",
                shown(timeout)
            );
            if let Some(f) = &full {
                why.push_str(&format!(
                    "; the full question over the table's ~{} rows would take about {} \
                     (at ~{:.0} rows/s, measured on a sample of it): --predict-timeout {} would do",
                    f.rows,
                    shown(Duration::from_secs_f64(f.estimated_seconds)),
                    f.rows_per_second,
                    f.suggested_predict_timeout
                ));
            }
            why.push_str(&col.stale(q));
            Ok(Answer::Cut { why, full })
        }
        other => other,
    }
}

/// The full question's estimated time over `rows` at `rate` rows a second (at least
/// the `timeout` that cut it short), and the `--predict-timeout` that would do.
fn estimate(rows: f64, rate: f64, timeout: Duration) -> FullQuestion {
    let seconds = (rows / rate * GROUPING_COST).max(timeout.as_secs_f64());
    FullQuestion {
        rows: rows as i64,
        rows_per_second: rate.round(),
        estimated_seconds: (seconds * 10.0).ceil() / 10.0,
        suggested_predict_timeout: rounded_up(seconds * MARGIN),
    }
}

/// `seconds` rounded up as `--predict-timeout` takes it: to 5 s under a minute, to the
/// minute under an hour, else to the hour.
fn rounded_up(seconds: f64) -> String {
    let s = seconds.max(1.0).ceil() as u64;
    if s <= 60 {
        format!("{}s", s.div_ceil(5) * 5)
    } else if s <= 3600 {
        format!("{}m", s.div_ceil(60))
    } else {
        format!("{}h", s.div_ceil(3600))
    }
}

/// A duration as a person reads it (`250ms`, `2s`, `1.5s`, `3m 20s`).
fn shown(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 60.0 {
        let t = format!("{:.1}", s);
        format!("{}s", t.trim_end_matches(".0"))
    } else {
        let s = s.ceil() as u64;
        format!("{}m {}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_reads_a_bounded_share() {
        let (c, rows) = clause(5_000_000.0);
        assert_eq!(c, "TABLESAMPLE SYSTEM (1.0000) REPEATABLE (77)");
        assert!((rows - 50_000.0).abs() < 1.0);
        assert!((clause(200_000.0).1 - 50_000.0).abs() < 1.0);
        assert!((clause(1e9).1 - 500_000.0).abs() < 1.0);
        assert!((clause(30_000.0).1 - 30_000.0).abs() < 1.0);
    }

    #[test]
    fn a_suggested_timeout_is_rounded_up_as_the_option_takes_it() {
        assert_eq!(rounded_up(0.2), "5s");
        assert_eq!(rounded_up(31.2), "35s");
        assert_eq!(rounded_up(61.0), "2m");
        assert_eq!(rounded_up(7200.5), "3h");
        assert_eq!(
            budget(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
        assert_eq!(budget(Duration::from_secs(5)), Duration::from_millis(2500));
        assert_eq!(budget(Duration::from_secs(600)), Duration::from_secs(5));
        assert_eq!(shown(Duration::from_secs(2)), "2s");
        assert_eq!(shown(Duration::from_millis(250)), "250ms");
        assert_eq!(shown(Duration::from_millis(15_600)), "15.6s");
        assert_eq!(shown(Duration::from_secs(200)), "3m 20s");
    }

    #[test]
    fn the_estimate_is_at_least_the_timeout_that_cut_it() {
        let f = estimate(5_000_000.0, 480_000.0, Duration::from_secs(2));
        assert_eq!(f.estimated_seconds, 18.3);
        assert_eq!(f.suggested_predict_timeout, "40s");
        let f = estimate(100_000.0, 1e6, Duration::from_secs(5));
        assert_eq!(f.estimated_seconds, 5.0);
        assert_eq!(f.suggested_predict_timeout, "10s");
    }
}
