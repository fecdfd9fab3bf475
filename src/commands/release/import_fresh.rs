//! `airlock import --fresh-on CONN`: where Liquibase preconditions are decided for a
//! fresh database. A throwaway database is made on that server; the changesets import
//! keeps run there in order, and each precondition is asked of it (catalog queries,
//! a `sqlCheck`'s SQL) just before its changeset, as Liquibase asks the database it
//! updates.
//!
//! Invariant: the throwaway database is dropped on every path (its guard's `Drop`),
//! and nothing but it is written: the server `CONN` names is only asked to create and
//! drop it.

use crate::db::conn::{self, ConnSpec};
use crate::error::{Error, Result};
use airlock_bundle::import::{sql_check_answer, Check, CheckError, PreconditionTarget};
use std::cell::RefCell;

/// A throwaway database and a session on it.
pub struct Fresh {
    admin: ConnSpec,
    name: String,
    shown: String,
    client: RefCell<Option<postgres::Client>>,
    /// For a release that follows another (`--since`): the target holds rows of its
    /// own, which the replay has not, so a `sqlCheck` about rows is not decided here.
    follows: bool,
}

fn sql_error(context: &str, e: &postgres::Error) -> Error {
    Error::Db(crate::db::DbError::Sql {
        context: context.into(),
        message: crate::db::pg_message(e),
    })
}

impl Fresh {
    /// Make the throwaway database on the server `conn` names.
    pub fn create(conn_str: &str) -> Result<Fresh> {
        let admin = conn::resolve(Some(conn_str), "postgres")?;
        let mut c = admin.connect()?;
        let mut rnd = [0u8; 6];
        getrandom_bytes(&mut rnd);
        let name = format!("airlock_import_{}_{}", std::process::id(), hex::encode(rnd));
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| match e.code() {
                Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => Error::usage(
                    format!(
                        "--fresh-on: the role {} may not create databases, and import decides the preconditions on a throwaway database it makes there: {}",
                        admin.config.get_user().unwrap_or("?"),
                        crate::db::pg_message(&e)
                    ),
                    Some("nothing was written: give that role CREATEDB (ALTER ROLE … CREATEDB), or name in --fresh-on a scratch server and a role that may create databases there".to_string()),
                ),
                _ => sql_error("creating the throwaway database for preconditions", &e),
            })?;
        drop(c);
        let mut fresh = Fresh {
            shown: format!(
                "a fresh database ({name}, made and dropped on {})",
                admin.shown
            ),
            admin,
            name,
            client: RefCell::new(None),
            follows: false,
        };
        let mut client = fresh.admin.with_dbname(&fresh.name).connect()?;
        client
            .batch_execute("SET search_path = public")
            .map_err(|e| sql_error("setting search_path", &e))?;
        fresh.client = RefCell::new(Some(client));
        Ok(fresh)
    }

    fn query_bool(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> std::result::Result<bool, CheckError> {
        let mut c = self.client.borrow_mut();
        let c = c.as_mut().ok_or(CheckError::Stop("no session".into()))?;
        let row = c.query_one(sql, params).map_err(check_error)?;
        Ok(row.get(0))
    }
}

impl Fresh {
    /// The replay of a release that follows another (`--since`).
    pub fn following(mut self) -> Fresh {
        self.follows = true;
        self
    }

    /// The relations `sql` reads that are not the system catalogs', as the replay
    /// resolves them (a name it cannot resolve counts); `Err`: the parser's.
    fn reads_rows(&self, sql: &str) -> std::result::Result<Vec<String>, String> {
        let reads = airlock_sql::reads_of(sql)?;
        let mut c = self.client.borrow_mut();
        let c = c.as_mut().ok_or("no session")?;
        let mut out = vec![];
        for (schema, rel) in reads.relations {
            let name = match &schema {
                Some(s) => format!(
                    "{}.{}",
                    crate::db::quote_ident(s),
                    crate::db::quote_ident(&rel)
                ),
                None => crate::db::quote_ident(&rel),
            };
            let row = c
                .query_one(
                    "SELECT coalesce((SELECT n.nspname IN ('pg_catalog', 'information_schema') FROM pg_catalog.pg_class k \
                     JOIN pg_catalog.pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = pg_catalog.to_regclass($1)), false)",
                    &[&name],
                )
                .map_err(|e| crate::db::pg_message(&e))?;
            if !row.get::<_, bool>(0) {
                out.push(name);
            }
        }
        Ok(out)
    }
}

impl Fresh {
    /// The tables of the throwaway database that hold a row now, by name (its own
    /// changesets made and filled them: nothing a role of the target defines is here).
    pub fn tables_with_rows(
        &self,
    ) -> std::result::Result<std::collections::BTreeSet<String>, String> {
        let mut c = self.client.borrow_mut();
        let c = c.as_mut().ok_or("no session")?;
        let tables = c
            .query(
                "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relname::text FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%'",
                &[],
            )
            .map_err(|e| crate::db::pg_message(&e))?;
        let mut out = std::collections::BTreeSet::new();
        for t in tables {
            let (qualified, name): (String, String) = (t.get(0), t.get(1));
            let row = c
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {qualified})"), &[])
                .map_err(|e| crate::db::pg_message(&e))?;
            if row.get::<_, bool>(0) {
                out.insert(name);
            }
        }
        Ok(out)
    }
}

/// Random bytes for a name nobody else picks.
fn getrandom_bytes(out: &mut [u8]) {
    use std::io::Read;
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(out))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in out.iter_mut().enumerate() {
            *b = (t >> (i * 8)) as u8;
        }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        // Close our own session first: DROP DATABASE refuses a database in use.
        self.client.borrow_mut().take();
        if let Ok(mut c) = self.admin.connect() {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Ctrl-C cancels the statement running; this ends the import at the next one (the
/// guard then drops the throwaway database).
fn stop_if_interrupted() -> std::result::Result<(), CheckError> {
    match conn::interrupted() {
        true => Err(CheckError::Stop("interrupted (Ctrl-C)".into())),
        false => Ok(()),
    }
}

/// An error of the server (the SQL failed: onError decides), or of the session (the
/// import stops).
pub(super) fn check_error(e: postgres::Error) -> CheckError {
    match e.as_db_error() {
        Some(_) if !conn::interrupted() => CheckError::Error(crate::db::pg_message(&e)),
        _ => CheckError::Stop(crate::db::pg_message(&e)),
    }
}

/// The catalog query answering `check` (one boolean), and its parameters. Each
/// `$n::text` only names a parameter's type (the server cannot infer it in `$n IS
/// NULL`): text to text converts nothing and runs no function; `indkey::int2[]` is a
/// built-in binary-coercible cast of catalog data. No user value is cast.
pub(super) fn catalog_query(check: &Check) -> (&'static str, Vec<Option<String>>) {
    let s = |v: &str| Some(v.to_string());
    match check {
        Check::TableExists { schema, table } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'f'))",
            vec![s(schema), s(table)],
        ),
        Check::ColumnExists { schema, table, column } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped)",
            vec![s(schema), s(table), s(column)],
        ),
        Check::IndexExists { schema, table, index, columns } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_class t ON t.oid = x.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = $1 AND ($2::text IS NULL OR t.relname = $2) AND ($3::text IS NULL OR i.relname = $3) AND ($4::text IS NULL OR $4 = (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum)))",
            vec![s(schema), table.clone(), index.clone(), columns.clone()],
        ),
        Check::ForeignKeyExists { schema, table, name } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace WHERE k.contype = 'f' AND n.nspname = $1 AND ($2::text IS NULL OR t.relname = $2) AND k.conname = $3)",
            vec![s(schema), table.clone(), s(name)],
        ),
        Check::PrimaryKeyExists { schema, table, name } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace WHERE k.contype = 'p' AND n.nspname = $1 AND ($2::text IS NULL OR t.relname = $2) AND ($3::text IS NULL OR k.conname = $3))",
            vec![s(schema), table.clone(), name.clone()],
        ),
        Check::UniqueConstraintExists { schema, table, name, columns } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace WHERE k.contype = 'u' AND n.nspname = $1 AND t.relname = $2 AND ($3::text IS NULL OR k.conname = $3) AND ($4::text IS NULL OR $4 = (SELECT string_agg(a.attname, ',' ORDER BY x.ord) FROM unnest(k.conkey) WITH ORDINALITY AS x(attnum, ord) JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.attnum)))",
            vec![s(schema), s(table), name.clone(), columns.clone()],
        ),
        Check::SequenceExists { schema, name } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'S')",
            vec![s(schema), s(name)],
        ),
        Check::ViewExists { schema, name } => (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('v', 'm'))",
            vec![s(schema), s(name)],
        ),
        Check::RunningAs { user } => ("SELECT current_user = $1", vec![s(user)]),
        Check::SqlCheck { .. } => unreachable!("sqlCheck runs its own SQL"),
    }
}

impl PreconditionTarget for Fresh {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn run(
        &self,
        _label: &str,
        sql: &[u8],
        online: bool,
        _applied: bool,
    ) -> std::result::Result<(), String> {
        if conn::interrupted() {
            return Err("interrupted (Ctrl-C)".into());
        }
        let text = std::str::from_utf8(sql).map_err(|_| "not UTF-8".to_string())?;
        let mut c = self.client.borrow_mut();
        let c = c.as_mut().ok_or("no session")?;
        if !online {
            return c.batch_execute(text).map_err(|e| crate::db::pg_message(&e));
        }
        // Outside a transaction, one statement at a time (CREATE INDEX CONCURRENTLY).
        let pieces = airlock_sql::split_all("changeset", sql).map_err(|p| p.to_string())?;
        for p in pieces {
            if let airlock_sql::Piece::Sql { start, end, .. } = p {
                let stmt = &text[start as usize..end as usize];
                c.batch_execute(stmt)
                    .map_err(|e| crate::db::pg_message(&e))?;
            }
        }
        Ok(())
    }

    fn holds(&self, check: &Check) -> std::result::Result<bool, CheckError> {
        stop_if_interrupted()?;
        if let Check::SqlCheck { expected, sql } = check {
            if self.follows {
                let rows = self.reads_rows(sql).map_err(|e| {
                    CheckError::TooSoon(format!("import cannot tell what it reads ({e})"))
                })?;
                if !rows.is_empty() {
                    return Err(CheckError::TooSoon(format!(
                        "it reads {}, and a release that follows another (--since) is for a database with rows of its own, which this replay has not; import does not read that database with --since: check it there, then write its outcome into the changelog (remove the precondition, or the changeset)",
                        rows.join(", ")
                    )));
                }
            }
            let mut c = self.client.borrow_mut();
            let c = c.as_mut().ok_or(CheckError::Stop("no session".into()))?;
            let rows = c.simple_query(sql).map_err(check_error)?;
            let values: Vec<Option<String>> = rows
                .iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
                    _ => None,
                })
                .collect();
            return sql_check_answer(&values, expected);
        }
        let (sql, params) = catalog_query(check);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
            .collect();
        self.query_bool(sql, &refs)
    }
}
