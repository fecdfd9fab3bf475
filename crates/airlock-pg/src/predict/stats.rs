//! A certain NO-GO in seconds on a big table (issue 77): the catalog's statistics
//! (`pg_stats`, as of the last ANALYZE) name the keys a new one-column unique key or
//! NOT NULL is likely to meet twice or as NULL, and a few rows of each, read through
//! the door, confirm them. On a table the catalog estimates at [`EXACT_BELOW`] rows
//! or more, a duplicate key repeated among pg_stats' most common values is found by
//! reading two of its rows, where the full question groups every row. For a new
//! CHECK, foreign key or narrowing type change ([`rejected`]), the values pg_stats saw
//! (most common values, histogram bounds: the lowest and highest bound the column)
//! are tried against the statement's own test as values alone, through the door (so a
//! CHECK calling anything a role defines is not evaluated), and the rows holding the
//! rejected ones are read. A table never analyzed has no statistics: that is said,
//! never taken for "no candidates", and the table is sampled ([`super::sample`]).
//!
//! Invariant: statistics never decide a statement by themselves. Only rows read
//! through the door make a NO-GO (and then the rows are not all counted: the count is
//! left out, the reason says so); when nothing is confirmed, a sample of the table and
//! then the full question are asked ([`super::sample`]), and only the full question's
//! answer can say a statement passes. Statistics older than the data
//! ([`STALE_ABOVE`]) are said in the reason, and decide nothing either. Values
//! come out of `pg_stats` as text only for a column of a built-in type (an array's
//! text runs its element type's output function, which for a type a role made is
//! the role's code).

use super::ask::{self, Answer, Fixed};
use super::EXACT_BELOW;
use crate::quote_ident;
use postgres::Transaction;

/// Most common values confirmed, at most (the most frequent first).
const CANDIDATES: usize = 3;

/// Table `$1`'s estimated rows (-1: never analyzed nor vacuumed), its pages now, column `$2`'s NULL fraction in `pg_stats` (absent:
/// never analyzed, or not readable by this role), and the rows changed since the last
/// ANALYZE. Nothing of the column's values.
pub(super) const STATS: Fixed = Fixed::new(
    "SELECT c.reltuples::pg_catalog.float8, s.null_frac::pg_catalog.float8, \
       u.n_mod_since_analyze::pg_catalog.int8, \
       (pg_catalog.pg_relation_size(c.oid) OPERATOR(pg_catalog./) \
         pg_catalog.current_setting('block_size')::pg_catalog.int8)::pg_catalog.float8 \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
     LEFT JOIN pg_catalog.pg_stats s ON s.schemaname OPERATOR(pg_catalog.=) n.nspname \
       AND s.tablename OPERATOR(pg_catalog.=) c.relname AND s.attname OPERATOR(pg_catalog.=) $2 \
       AND NOT s.inherited \
     LEFT JOIN pg_catalog.pg_stat_user_tables u ON u.relid OPERATOR(pg_catalog.=) c.oid \
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)",
);

/// Column `$2` of table `$1`: its most common values as one array's text (by the
/// element type's output function, `format`, as `door::text_of` writes it; never a
/// cast, not even to `text[]`: [`elements`] reads it) and their frequencies.
/// Asked only when the column's type is built in ([`super::catalog::COLUMN`] first).
pub(super) const COMMON: Fixed = Fixed::new(
    "SELECT pg_catalog.format('%s', s.most_common_vals), s.most_common_freqs \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
     JOIN pg_catalog.pg_stats s ON s.schemaname OPERATOR(pg_catalog.=) n.nspname \
       AND s.tablename OPERATOR(pg_catalog.=) c.relname AND s.attname OPERATOR(pg_catalog.=) $2 \
       AND NOT s.inherited \
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) \
       AND s.most_common_vals IS NOT NULL",
);

/// Column `$2` of table `$1`: the values pg_stats saw, as two arrays' text (as
/// [`COMMON`] reads them): its most common values and its histogram's bounds (the
/// lowest and highest of them bound the rest of the column). Asked only when the
/// column's type is built in.
pub(super) const SEEN: Fixed = Fixed::new(
    "SELECT pg_catalog.format('%s', s.most_common_vals), pg_catalog.format('%s', s.histogram_bounds) \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
     JOIN pg_catalog.pg_stats s ON s.schemaname OPERATOR(pg_catalog.=) n.nspname \
       AND s.tablename OPERATOR(pg_catalog.=) c.relname AND s.attname OPERATOR(pg_catalog.=) $2 \
       AND NOT s.inherited \
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)",
);

/// Values pg_stats saw that are tried against a statement's test, at most.
const SEEN_MAX: usize = 4_000;

/// A table never analyzed of at least this many pages (8 MB at the default block
/// size) is sampled to estimate its rows.
const UNANALYZED_PAGES: f64 = 1_000.0;

/// Rows changed since the last ANALYZE (`n_mod_since_analyze`) above this fraction of
/// the table's estimated rows make its statistics older than the data, and the
/// reasons say so: autovacuum's own default (`autovacuum_analyze_scale_factor` 0.1),
/// past which it would have analyzed the table again.
pub(super) const STALE_ABOVE: f64 = 0.1;

/// What the catalog says of one column of a big table (`None` from [`of`]: a small
/// table, or not there).
pub(super) struct Column {
    /// The table's estimated rows (`reltuples`).
    pub(super) rows: f64,
    null_frac: Option<f64>,
    changed: Option<i64>,
    /// Never analyzed (`reltuples` -1, pg_stats empty): `rows` counted in a sample.
    unanalyzed: bool,
}

impl Column {
    /// The statistics are older than the data ([`STALE_ABOVE`]): a clause to end a
    /// reason with (empty when they are not). They decide nothing by themselves.
    pub(super) fn stale(&self, q: &str) -> String {
        if self.unanalyzed {
            return format!(
                "; the table has no statistics (never analyzed: reltuples -1, pg_stats empty; \
                 ~{:.0} rows estimated from a sample of its pages): ANALYZE {q} makes them",
                self.rows
            );
        }
        match self.changed.filter(|n| *n as f64 > STALE_ABOVE * self.rows) {
            Some(n) => format!(
                "; the statistics are from before {n} changed rows (since the table's last ANALYZE, \
                 pg_stat_user_tables: more than {:.0}% of its ~{:.0}): ANALYZE {q} refreshes them",
                STALE_ABOVE * 100.0,
                self.rows
            ),
            None => String::new(),
        }
    }

    /// How a NO-GO was found, for the reason: by the statistics (and how old they
    /// are), confirmed by `read`, the rows not all counted.
    fn confirmed(&self, q: &str, read: &str) -> String {
        format!(
            "named by the statistics (pg_stats) and confirmed by reading {read}; \
             the table's ~{:.0} rows were not all counted{}",
            self.rows,
            self.stale(q)
        )
    }
}

/// The statistics of `column` of table `q` (qualified SQL), when the catalog estimates
/// the table at [`EXACT_BELOW`] rows or more. A catalog question that fails says
/// nothing: the full question is asked.
pub(super) fn of(tx: &mut Transaction<'_>, q: &str, column: &str) -> Option<Column> {
    let got = ask::rows(tx, STATS, &[q, column]).ok()?;
    let r = got.first()?;
    let (mut rows, pages): (f64, f64) = (r.get(0), r.get(3));
    // No statistics is not "no candidates": the rows are counted in a sample of the
    // table's pages, and the full question is asked as on any big table.
    let unanalyzed = rows < 0.0;
    if unanalyzed {
        rows = if pages >= UNANALYZED_PAGES {
            sampled_rows(tx, q, pages)?
        } else {
            0.0
        };
    }
    (rows >= EXACT_BELOW as f64).then(|| Column {
        rows,
        null_frac: r.get(1),
        changed: r.get(2),
        unanalyzed,
    })
}

/// The rows of a table never analyzed, of `pages` pages: counted in a sample of about
/// 1% of them (at least 100), through the door. `None`: not asked.
fn sampled_rows(tx: &mut Transaction<'_>, q: &str, pages: f64) -> Option<f64> {
    let percent = (100.0 / pages * 100.0).clamp(1.0, 100.0);
    let sql = format!(
        "SELECT pg_catalog.count(*)::pg_catalog.int8 AS airlock_n FROM {q} \
         TABLESAMPLE SYSTEM ({percent:.4}) REPEATABLE (77)"
    );
    let got = ask::data(tx, &sql).ok()?.ok()?;
    let n: i64 = got.first()?.get(0);
    Some(n as f64 * 100.0 / percent)
}

/// A text literal that reads the same whatever `standard_conforming_strings` is.
fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A duplicate under a new unique key of one column (for a primary key, or a NULL in
/// it), found by the statistics and confirmed by its rows. `Ok(None)`: nothing
/// confirmed (ask the full question). A confirmation cut short before any is
/// confirmed is the answer (`Err`): the full question reads more.
pub(super) fn unique(
    tx: &mut Transaction<'_>,
    q: &str,
    column: &str,
    (primary, col): (bool, &Column),
) -> Result<Option<Answer>, postgres::Error> {
    let c = quote_ident(column);
    let mut keys = Vec::new();
    for candidate in candidates(tx, q, column, col) {
        match twice(tx, q, &c, &candidate) {
            Ok(Some(true)) => keys.push(format!("{} ×2+", ask::shown_key(&candidate))),
            Ok(Some(false)) => {}
            // The door would not read it: the full question says why.
            Ok(None) => return Ok(None),
            Err(_) if !keys.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    if !keys.is_empty() {
        return Ok(Some(Answer::Rows {
            count: None,
            what: format!(
                "rows (at least 2) under {} duplicated key(s) of ({c}): {}",
                keys.len(),
                col.confirmed(q, "their rows")
            ),
            keys,
        }));
    }
    if primary && col.null_frac.is_some_and(|f| f > 0.0) && has_null(tx, q, &c)? {
        return Ok(Some(Answer::Rows {
            count: None,
            keys: vec![],
            what: format!(
                "rows (at least 1) with a NULL key column ({c}): {}",
                col.confirmed(q, "a row")
            ),
        }));
    }
    Ok(None)
}

/// Whether two rows of `q` hold `candidate` (as text) in `c`, read through the door
/// (two rows at most: a common value stops the scan early). `None`: not asked.
fn twice(
    tx: &mut Transaction<'_>,
    q: &str,
    c: &str,
    candidate: &str,
) -> Result<Option<bool>, postgres::Error> {
    let sql = format!(
        "SELECT pg_catalog.count(*)::pg_catalog.int8 AS airlock_n FROM \
         (SELECT 1 FROM {q} WHERE {} OPERATOR(pg_catalog.=) {}::pg_catalog.text LIMIT 2) AS airlock_q(o)",
        crate::door::text_of(c),
        literal(candidate)
    );
    Ok(ask::data(tx, &sql)?
        .ok()
        .map(|got| got.first().map_or(0, |r| r.get::<_, i64>(0)) >= 2))
}

/// The most common values of `column` whose estimated rows (frequency × the table's
/// rows) are 2 or more, most frequent first, at most [`CANDIDATES`]: none when its type
/// is not built in (or an array: its values' text is not one element's), or when a
/// catalog question fails.
fn candidates(tx: &mut Transaction<'_>, q: &str, column: &str, col: &Column) -> Vec<String> {
    if built_in(tx, q, column).is_none() {
        return vec![];
    }
    let Some(got) = ask::rows(tx, COMMON, &[q, column]).ok() else {
        return vec![];
    };
    let Some(r) = got.first() else {
        return vec![];
    };
    let (Some(values), Ok(freqs)) = (
        r.try_get::<_, String>(0).ok().as_deref().and_then(elements),
        r.try_get::<_, Vec<f32>>(1),
    ) else {
        return vec![];
    };
    let mut common: Vec<(String, f64)> = values
        .into_iter()
        .zip(freqs)
        .filter_map(|(v, f)| v.map(|v| (v, f64::from(f))))
        .filter(|(_, f)| f * col.rows >= 2.0)
        .collect();
    common.sort_by(|a, b| b.1.total_cmp(&a.1));
    common
        .into_iter()
        .take(CANDIDATES)
        .map(|(v, _)| v)
        .collect()
}

/// The type of `column` of `q` as SQL (`format_type`), when it is built in and not an
/// array (its values' text in pg_stats is then one element's); `None` otherwise, or
/// when the catalog question fails.
fn built_in(tx: &mut Transaction<'_>, q: &str, column: &str) -> Option<String> {
    let got = ask::rows(tx, super::catalog::COLUMN, &[q, column]).ok()?;
    let r = got.first()?;
    let (sql_type, oid, category): (String, u32, String) = (r.get(0), r.get(1), r.get(2));
    (oid < 16384 && category != "A").then_some(sql_type)
}

/// A statement's test of one row, for [`rejected`] and the sample: `test` is true of a
/// row the statement rejects, written over the table aliased `airlock_t` (a lone
/// column of it may be named bare), and raises no error on any value.
pub(super) struct Test<'a> {
    /// The column whose statistics name candidates (`None`: none are looked for).
    pub(super) column: Option<&'a str>,
    pub(super) test: String,
    /// The rows it rejects, for the reason (`rows that violate CHECK (…)`).
    pub(super) what: String,
}

/// Rows a statement rejects, named by the statistics: the values pg_stats saw of the
/// test's column ([`SEEN`]: most common values, histogram bounds) that the test
/// rejects, tried as values alone (no row of the table read), and then the rows that
/// hold them, read through the door. `Ok(None)`: none confirmed (sample, then ask the
/// full question); a confirmation cut short confirms nothing.
pub(super) fn rejected(
    tx: &mut Transaction<'_>,
    q: &str,
    t: &Test<'_>,
    (key, keyed_by): (&str, &str),
    col: &Column,
) -> Result<Option<Answer>, postgres::Error> {
    let Some(column) = t.column else {
        return Ok(None);
    };
    let Some(sql_type) = built_in(tx, q, column) else {
        return Ok(None);
    };
    let seen = seen(tx, q, column);
    if seen.is_empty() {
        return Ok(None);
    }
    let c = quote_ident(column);
    let typed: Vec<String> = seen
        .iter()
        .map(|v| format!("CAST({} AS {sql_type})", literal(v)))
        .collect();
    let values = format!("ARRAY[{}]", typed.join(", "));
    let tried = format!(
        "SELECT {} AS airlock_v FROM pg_catalog.unnest({values}) AS airlock_t({c}) WHERE ({}) LIMIT {}",
        crate::door::text_of(&format!("airlock_t.{c}")),
        t.test,
        ask::KEYS_SHOWN
    );
    let Ok(Ok(got)) = ask::data(tx, &tried) else {
        return Ok(None);
    };
    let named: Vec<String> = got.iter().map(|r| r.get(0)).collect();
    if named.is_empty() {
        return Ok(None);
    }
    let typed: Vec<String> = named
        .iter()
        .map(|v| format!("CAST({} AS {sql_type})", literal(v)))
        .collect();
    let read = format!(
        "SELECT {key} AS airlock_k, {} AS airlock_v FROM {q} AS airlock_t \
         WHERE airlock_t.{c} OPERATOR(pg_catalog.=) ANY (ARRAY[{}]) AND ({}) LIMIT {}",
        crate::door::text_of(&format!("airlock_t.{c}")),
        typed.join(", "),
        t.test,
        ask::KEYS_SHOWN
    );
    let Ok(Ok(got)) = ask::data(tx, &read) else {
        return Ok(None);
    };
    if got.is_empty() {
        return Ok(None);
    }
    let mut values: Vec<String> = got.iter().map(|r| ask::shown_key(r.get(1))).collect();
    values.dedup();
    Ok(Some(Answer::Rows {
        count: None,
        keys: ask::shown_keys(&got),
        what: format!(
            "{} (at least 1; keys: {keyed_by}), holding {}: {}",
            t.what,
            values.join(", "),
            col.confirmed(q, "their rows")
        ),
    }))
}

/// The one column of table `q` an expression (a CHECK's) names, when it names one: its
/// words that are a column of `q` (by the catalog). A guess that only picks whose
/// statistics to read: the rows read through the door decide.
pub(super) fn lone_column(tx: &mut Transaction<'_>, q: &str, expr: &str) -> Option<String> {
    let mut found: Vec<String> = vec![];
    let mut word = String::new();
    let mut quoted = false;
    for ch in expr.chars().chain(std::iter::once(' ')) {
        match ch {
            '"' if quoted => quoted = false,
            '"' => quoted = true,
            c if quoted => word.push(c),
            c if c.is_alphanumeric() || c == '_' => word.push(c.to_ascii_lowercase()),
            _ => {
                let w = std::mem::take(&mut word);
                let column = !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit());
                if column
                    && !found.contains(&w)
                    && ask::rows(tx, super::catalog::COLUMN, &[q, &w]).is_ok_and(|r| !r.is_empty())
                {
                    found.push(w);
                }
            }
        }
    }
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The values pg_stats saw of `column` (most common values, then histogram bounds),
/// at most [`SEEN_MAX`], without NULLs and repeats.
fn seen(tx: &mut Transaction<'_>, q: &str, column: &str) -> Vec<String> {
    let Some(got) = ask::rows(tx, SEEN, &[q, column]).ok() else {
        return vec![];
    };
    let Some(r) = got.first() else {
        return vec![];
    };
    let mut out: Vec<String> = vec![];
    for i in 0..2 {
        let text: Option<String> = r.try_get(i).ok().flatten();
        for v in text
            .as_deref()
            .and_then(elements)
            .unwrap_or_default()
            .into_iter()
            .flatten()
        {
            if !out.contains(&v) && out.len() < SEEN_MAX {
                out.push(v);
            }
        }
    }
    out
}

/// Whether a row of `q` has `c` NULL, read through the door (one row at most).
fn has_null(tx: &mut Transaction<'_>, q: &str, c: &str) -> Result<bool, postgres::Error> {
    let sql = format!("SELECT 1 AS airlock_one FROM {q} WHERE {c} IS NULL LIMIT 1");
    Ok(ask::data(tx, &sql)?.is_ok_and(|got| !got.is_empty()))
}

/// A NULL under a new NOT NULL on a big table, when pg_stats says the column holds
/// some: the first such row, by `key` (its SQL, and what it is shown as). `Ok(None)`:
/// none confirmed (ask the full question).
pub(super) fn null(
    tx: &mut Transaction<'_>,
    q: &str,
    column: &str,
    (key, keyed_by): (&str, &str),
    col: &Column,
) -> Result<Option<Answer>, postgres::Error> {
    if !col.null_frac.is_some_and(|f| f > 0.0) {
        return Ok(None);
    }
    let c = quote_ident(column);
    let sql = format!("SELECT {key} AS airlock_k FROM {q} WHERE {c} IS NULL LIMIT 1");
    let Ok(got) = ask::data(tx, &sql)? else {
        return Ok(None);
    };
    let Some(r) = got.first() else {
        return Ok(None);
    };
    Ok(Some(Answer::Rows {
        count: None,
        keys: vec![ask::shown_key(
            r.get::<_, Option<&str>>(0).unwrap_or("NULL"),
        )],
        what: format!(
            "rows (at least 1) whose {c} is NULL (keys: {keyed_by}): {}",
            col.confirmed(q, "a row")
        ),
    }))
}

/// The elements of a one-dimensional array's text as PostgreSQL's `array_out` writes it
/// (`{a,"b c",NULL}`: an element is quoted when it must be, with `\\` escapes; an
/// unquoted `NULL` is NULL). `None` for anything else: then no value is a candidate.
fn elements(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = vec![];
    if inner.is_empty() {
        return Some(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next()? {
                    '\\' => v.push(chars.next()?),
                    '"' => break,
                    c => v.push(c),
                }
            }
            Some(v)
        } else {
            let mut v = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if matches!(c, '"' | '{' | '}' | '\\') {
                    return None;
                }
                v.push(c);
                chars.next();
            }
            (v != "NULL").then_some(v)
        };
        out.push(value);
        match chars.next() {
            None => return Some(out),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arrays_text_is_read_as_array_out_writes_it() {
        assert_eq!(
            elements(r#"{a,"b c",NULL,"NULL","x\"y","back\\slash",""}"#),
            Some(vec![
                Some("a".into()),
                Some("b c".into()),
                None,
                Some("NULL".into()),
                Some("x\"y".into()),
                Some("back\\slash".into()),
                Some(String::new()),
            ])
        );
        assert_eq!(elements("{}"), Some(vec![]));
        assert_eq!(elements("{{1,2},{3,4}}"), None);
        assert_eq!(elements("[0:1]={a,b}"), None);
        assert_eq!(elements(r#"{"open}"#), None);
    }
}
