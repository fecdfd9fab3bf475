//! `airlock import --history CONN`: the Liquibase preconditions of the changesets the
//! target lacks, decided on the target itself (issue 89, item 9), as the real
//! Liquibase decides them when it updates that database: a `sqlCheck` about its rows
//! is answered by its rows, never by an empty replay.
//!
//! Invariant: the target is only read. A catalog check is one of import's fixed
//! catalog queries (under `search_path = pg_catalog`); a `sqlCheck` goes through the
//! door (`airlock::db::predict::foreign`): nothing a role defines runs, nothing is
//! written, each in a read-only transaction rolled back. A check that reads what a
//! changeset earlier in this import writes or names cannot be answered by the target
//! before that changeset has run: a schema check is then decided on the replay
//! (`--fresh-on`, which runs the changesets in order), anything else is refused by
//! name.

use crate::commands::release::import_fresh::{catalog_query, check_error, Fresh};
use crate::db::conn;
use crate::db::predict::foreign::{self, Answer};
use crate::error::Result;
use airlock_bundle::import::{sql_check_answer, Check, CheckError, Held, PreconditionTarget};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// How long a catalog lock the door takes may wait (a superuser's login).
const LOCK_TIMEOUT: &str = "10s";

/// The target, and the replay for what this import builds before a check.
pub struct OnTarget {
    client: RefCell<postgres::Client>,
    shown: String,
    replay: Option<Fresh>,
    /// Each changeset this import runs, so far: (label, its SQL).
    before: RefCell<Vec<(String, String)>>,
    /// The replay's tables that held a row before this import's first changeset ran
    /// there (what the applied changesets put in them).
    replay_rows: RefCell<Option<BTreeSet<String>>>,
    /// Tables a decision on the replay assumed hold no row on the target (quoted).
    assumed: RefCell<BTreeSet<String>>,
    /// Each `sqlCheck` answered on the target, and its answer: asked again by the
    /// bundle's preflight at apply.
    answered: RefCell<Vec<(String, String, bool)>>,
}

impl OnTarget {
    /// A session on the database `conn_str` names (the one `--history` reads).
    pub fn open(conn_str: &str, replay: Option<Fresh>) -> Result<OnTarget> {
        let spec = conn::resolve(Some(conn_str), "")?;
        let client = spec.connect()?;
        Ok(OnTarget {
            client: RefCell::new(client),
            shown: format!("the target ({}), read-only", spec.shown),
            replay,
            before: RefCell::new(vec![]),
            replay_rows: RefCell::new(None),
            assumed: RefCell::new(BTreeSet::new()),
            answered: RefCell::new(vec![]),
        })
    }

    /// The first changeset of this import, so far, that writes or names one of the
    /// objects `check` reads, or defines a function it calls; `Err`: what the check
    /// reads cannot be told.
    fn written_before(&self, check: &Check) -> std::result::Result<Option<String>, String> {
        let before = self.before.borrow();
        if before.is_empty() {
            return Ok(None);
        }
        let (objects, functions) = check.reads()?;
        Ok(before
            .iter()
            .find(|(_, sql)| {
                let sql = sql.to_lowercase();
                objects.iter().any(|o| names(&sql, o)) || functions.iter().any(|f| defines(&sql, f))
            })
            .map(|(label, _)| label.clone()))
    }

    /// A `sqlCheck` (`sql`) reading what a changeset earlier in this import writes,
    /// decided on the replay when that is exact: every table it reads, and every table
    /// the changesets of this import that name one of them name, holds only this
    /// import's rows (it is not on the target yet, or it is empty there and was empty
    /// on the replay before this import's changesets). Those on the target are
    /// remembered: the bundle's preflight checks they are still empty. Else why not.
    fn on_replay(&self, sql: &str) -> std::result::Result<(), String> {
        let reads = |text: &str| -> std::result::Result<BTreeSet<(String, String)>, String> {
            Ok(airlock_sql::reads_of(text)?
                .relations
                .into_iter()
                .map(|(s, r)| (s.unwrap_or_else(|| "public".into()), r))
                .collect())
        };
        // What the check reads, and, until nothing is added, every table an earlier
        // changeset of this import names beside one of those (an INSERT … SELECT
        // fills one table from another, which may be filled from a third).
        let mut tables = reads(sql)?;
        let before = self.before.borrow();
        let mut taken = vec![false; before.len()];
        loop {
            let mut grown = false;
            for (i, (label, text)) in before.iter().enumerate() {
                let lower = text.to_lowercase();
                if !taken[i] && tables.iter().any(|(_, t)| names(&lower, t)) {
                    taken[i] = true;
                    grown = true;
                    tables.extend(reads(text).map_err(|e| format!("{label}: {e}"))?);
                }
            }
            if !grown {
                break;
            }
        }
        drop(before);
        let replay_rows = self.replay_rows.borrow().clone().unwrap_or_default();
        let mut assumed = vec![];
        for (schema, table) in &tables {
            let shown = format!("{schema}.{table}");
            if replay_rows.contains(table) {
                return Err(format!("{shown} held rows before this import's changesets (the applied changesets put them there), which the target's may not match"));
            }
            if !self.has_table(schema, table)? {
                continue;
            }
            let quoted = format!(
                "{}.{}",
                crate::db::quote_ident(schema),
                crate::db::quote_ident(table)
            );
            let probe = format!("SELECT count(*) FROM (SELECT 1 FROM {quoted} LIMIT 1) AS one");
            let mut c = self.client.borrow_mut();
            match foreign::first_column(&mut c, &probe, "public", LOCK_TIMEOUT)
                .map_err(|e| e.to_string())?
            {
                Answer::Rows(v) if v == [Some("0".to_string())] => assumed.push(quoted),
                Answer::Rows(_) => {
                    return Err(format!(
                        "{shown} holds rows on the target, which the replay has not"
                    ))
                }
                Answer::Failed(why) | Answer::NotAsked(why) => {
                    return Err(format!("whether {shown} holds rows on the target: {why}"))
                }
            }
        }
        self.assumed.borrow_mut().extend(assumed);
        Ok(())
    }

    /// Whether the target has the table `schema.table` (a catalog query).
    fn has_table(&self, schema: &str, table: &str) -> std::result::Result<bool, String> {
        let mut c = self.client.borrow_mut();
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(|e| crate::db::pg_message(&e))?;
        tx.batch_execute("SET LOCAL search_path = pg_catalog")
            .map_err(|e| crate::db::pg_message(&e))?;
        let row = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'f', 'v', 'm'))",
                &[&schema, &table],
            )
            .map_err(|e| crate::db::pg_message(&e))?;
        let _ = tx.rollback();
        Ok(row.get(0))
    }

    fn ask_catalog(&self, check: &Check) -> std::result::Result<bool, CheckError> {
        let (sql, params) = catalog_query(check);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let mut c = self.client.borrow_mut();
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(check_error)?;
        tx.batch_execute("SET LOCAL search_path = pg_catalog")
            .map_err(check_error)?;
        let row = tx.query_one(sql, &refs).map_err(check_error)?;
        let _ = tx.rollback();
        Ok(row.get(0))
    }

    fn ask_sql(&self, expected: &str, sql: &str) -> std::result::Result<bool, CheckError> {
        let mut c = self.client.borrow_mut();
        let answer = foreign::first_column(&mut c, sql, "public", LOCK_TIMEOUT)
            .map_err(|e| CheckError::Stop(e.to_string()))?;
        match answer {
            Answer::Rows(values) => {
                let holds = sql_check_answer(&values, expected)?;
                (self.answered.borrow_mut()).push((sql.to_string(), expected.to_string(), holds));
                Ok(holds)
            }
            Answer::Failed(message) => Err(CheckError::Error(message)),
            Answer::NotAsked(why) => Err(CheckError::TooSoon(format!(
                "the target was not asked: {why}; decide it yourself and write the changeset's outcome into the changelog (remove the precondition, or the changeset), then import"
            ))),
        }
    }
}

/// Whether `sql` (lower case) names `name` as a whole word.
fn names(sql: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    !name.is_empty()
        && sql.match_indices(&name).any(|(i, _)| {
            !sql[..i].chars().next_back().is_some_and(ident)
                && !sql[i + name.len()..].chars().next().is_some_and(ident)
        })
}

/// Whether `sql` (lower case) creates, replaces or drops a function or procedure
/// named `name` (schema-qualified or not).
fn defines(sql: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    sql.match_indices(&name).any(|(i, _)| {
        if sql[..i].chars().next_back().is_some_and(ident)
            || sql[i + name.len()..].chars().next().is_some_and(ident)
        {
            return false;
        }
        // Back over a quote and a schema qualifier to the word before.
        let head = sql[..i].trim_end_matches('"');
        let head = match head.strip_suffix('.') {
            Some(h) => h.trim_end_matches(|c: char| ident(c) || c == '"'),
            None => head,
        };
        let head = head.trim_end();
        head.ends_with("function") || head.ends_with("procedure")
    })
}

impl PreconditionTarget for OnTarget {
    fn describe(&self) -> String {
        match &self.replay {
            Some(r) => format!(
                "{}; a schema check on what this import's own changesets build before it: {}",
                self.shown,
                r.describe()
            ),
            None => self.shown.clone(),
        }
    }

    fn run(
        &self,
        label: &str,
        sql: &[u8],
        online: bool,
        applied: bool,
    ) -> std::result::Result<(), String> {
        if let Some(r) = &self.replay {
            if !applied && self.replay_rows.borrow().is_none() {
                *self.replay_rows.borrow_mut() = Some(r.tables_with_rows()?);
            }
            r.run(label, sql, online, applied)?;
        }
        if !applied {
            let text = String::from_utf8_lossy(sql).into_owned();
            self.before.borrow_mut().push((label.to_string(), text));
        }
        Ok(())
    }

    fn held(&self) -> Vec<Held> {
        let mut held = vec![];
        let assumed = self.assumed.borrow();
        if !assumed.is_empty() {
            let rows: Vec<String> = (assumed.iter())
                .map(|t| {
                    format!("(SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1) AS airlock_one)")
                })
                .collect();
            held.push(Held {
                key: "rows_in_tables_assumed_empty".into(),
                expr: rows.join(" + "),
                expect: "0".into(),
                why: "Tables whose rows a Liquibase precondition's decision assumed are only this bundle's: none yet.".into(),
            });
        }
        // Each sqlCheck the target answered, asked again at apply: the answer (one
        // value, as text, equal to the expected one) must be the one import saw.
        for (i, (sql, expected, holds)) in self.answered.borrow().iter().enumerate() {
            held.push(Held {
                key: format!("liquibase_sql_check_{}", i + 1),
                expr: format!(
                    "coalesce((SELECT pg_catalog.format('%s', airlock_q.airlock_c) FROM ({sql}) AS airlock_q(airlock_c)) OPERATOR(pg_catalog.=) {}, false)",
                    crate::db::quote_literal(expected)
                ),
                expect: holds.to_string(),
                why: format!(
                    "A Liquibase sqlCheck import asked of the target, asked again: {}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ),
            });
        }
        held
    }

    fn holds(&self, check: &Check) -> std::result::Result<bool, CheckError> {
        if conn::interrupted() {
            return Err(CheckError::Stop("interrupted (Ctrl-C)".into()));
        }
        let schema_check = !matches!(check, Check::SqlCheck { .. });
        match self.written_before(check) {
            Ok(None) => {}
            Ok(Some(label)) => {
                let why = match (&self.replay, check) {
                    (Some(r), _) if schema_check => return r.holds(check),
                    (Some(r), Check::SqlCheck { sql, .. }) => match self.on_replay(sql) {
                        Ok(()) => return r.holds(check),
                        Err(why) => why,
                    },
                    _ if schema_check => "add --fresh-on CONN to decide a schema check on a replay of the changesets in order".to_string(),
                    _ => "add --fresh-on CONN to decide it on a replay when what it reads holds only this import's rows".to_string(),
                };
                return Err(CheckError::TooSoon(format!(
                    "it reads what {label}, earlier in this import, writes or names, so the target cannot answer it before that changeset has run ({why}); apply the changesets before it first (Liquibase, or an airlock release of them), then import again with --history"
                )));
            }
            Err(e) => {
                return Err(CheckError::TooSoon(format!(
                    "import cannot tell what it reads ({e}), so not whether a changeset earlier in this import changes it; apply the changesets before it first, then import again with --history"
                )))
            }
        }
        match check {
            Check::SqlCheck { expected, sql } => self.ask_sql(expected, sql),
            _ => self.ask_catalog(check),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{defines, names};

    #[test]
    fn a_name_is_found_as_a_whole_word_only() {
        assert!(names("insert into public.item values (1)", "item"));
        assert!(names("create table \"item\" (a int)", "Item"));
        assert!(!names("create table items (a int)", "item"));
        assert!(!names("create table line_item (a int)", "item"));
    }

    #[test]
    fn a_function_is_defined_when_created_replaced_or_dropped() {
        assert!(defines(
            "create or replace function public.weight(x int)",
            "weight"
        ));
        assert!(defines("create function \"weight\"(x int)", "weight"));
        assert!(defines("drop function weight", "weight"));
        assert!(!defines("select weight(x) from t", "weight"));
        assert!(!defines("create function weights(x int)", "weight"));
    }
}
