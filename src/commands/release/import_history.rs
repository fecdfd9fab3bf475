//! `airlock import --history CONN`: what the peer tool's own history table on the
//! target says is applied (`flyway_schema_history`, golang-migrate's or dbmate's or
//! pop's `schema_migrations`, `sqitch.changes`), read once, so the bundle starts after
//! those migrations and its preflight checks the table still says the same.
//!
//! Invariant: read-only, one query per table, and the preflight probe is the very
//! query whose answer import recorded. airlock's ledger is never written here: it
//! records only what airlock applies.

use crate::db::conn;
use crate::db::DbError;
use crate::error::{Error, Result};
use airlock_bundle::import::{Applied, AppliedChecksum, AppliedSet, Layout, RanChangeSet};
use std::path::Path;

fn sql_error(context: &str, e: &postgres::Error) -> Error {
    Error::Db(DbError::Sql {
        context: context.into(),
        message: crate::db::pg_message(e),
    })
}

/// The one table named `name` (in `schema`, when given) outside the system schemas,
/// schema-qualified and quoted. (`$2::text` names the parameter's type: no value is
/// converted, no function runs.)
fn find_table(c: &mut postgres::Client, name: &str, schema: Option<&str>) -> Result<String> {
    find_table_opt(c, name, schema)?.ok_or_else(|| {
        Error::usage(
            format!("the target has no {name} table: nothing there is recorded as applied"),
            Some("leave out --history to import every migration".to_string()),
        )
    })
}

/// [`find_table`], or None when there is no such table.
fn find_table_opt(
    c: &mut postgres::Client,
    name: &str,
    schema: Option<&str>,
) -> Result<Option<String>> {
    let rows = c
        .query(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = $1 AND c.relkind IN ('r', 'p')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND ($2::text IS NULL OR n.nspname = $2)
             ORDER BY 1",
            &[&name, &schema],
        )
        .map_err(|e| sql_error("finding the history table", &e))?;
    let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    match found.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] => Ok(None),
        many => Err(Error::usage(
            format!(
                "the target has {} tables named {name}: {}",
                many.len(),
                many.join(", ")
            ),
            Some("import reads one history table; drop or rename the stale one".to_string()),
        )),
    }
}

fn has_column(c: &mut postgres::Client, table: &str, column: &str) -> Result<bool> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
               WHERE attrelid = $1::text::pg_catalog.regclass AND attname = $2 AND NOT attisdropped)",
            &[&table, &column],
        )
        .map_err(|e| sql_error("reading the history table's columns", &e))?;
    Ok(row.get(0))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Read what the target `conn` says is applied, for `layout`.
pub fn read(conn_str: &str, layout: Layout, migrations: &Path) -> Result<Applied> {
    let spec = conn::resolve(Some(conn_str), "")?;
    let mut c = spec.connect()?;
    // (table, probe, a query naming failed migrations, whether the table keeps only the last version)
    let mut checksums = vec![];
    let (table, probe, refuse, up_to) = match layout {
        Layout::Flyway => {
            let t = find_table(&mut c, "flyway_schema_history", None)?;
            checksums = flyway_checksums(&mut c, &t)?;
            let probe = format!("SELECT 'peer_history'::text AS key, coalesce(string_agg(version, ',' ORDER BY installed_rank), '') AS value FROM {t} WHERE success AND version IS NOT NULL");
            let refuse = format!(
                "SELECT string_agg(coalesce(version, script), ', ') FROM {t} WHERE NOT success"
            );
            (t, probe, Some(refuse), false)
        }
        Layout::GolangMigrate | Layout::Dbmate => {
            // pop's default name is schema_migration; golang-migrate's, dbmate's and
            // most pop setups' (supabase/auth) is schema_migrations.
            let t = match find_table_opt(&mut c, "schema_migrations", None)? {
                Some(t) => t,
                None => find_table_opt(&mut c, "schema_migration", None)?
                    .map_or_else(|| find_table(&mut c, "schema_migrations", None), Ok)?,
            };
            if has_column(&mut c, &t, "dirty")? {
                // golang-migrate: one row, the last version, and whether it failed half-way.
                let probe = format!("SELECT 'peer_history'::text AS key, coalesce((SELECT version::text FROM {t}), '') AS value");
                let refuse = format!("SELECT string_agg(version::text, ', ') FROM {t} WHERE dirty");
                (t, probe, Some(refuse), true)
            } else {
                let probe = format!("SELECT 'peer_history'::text AS key, coalesce(string_agg(version::text, ',' ORDER BY version::text), '') AS value FROM {t}");
                (t, probe, None, false)
            }
        }
        Layout::Sqitch => {
            let t = find_table(&mut c, "changes", Some("sqitch"))?;
            let project = airlock_bundle::import::sqitch_project(migrations)
                .ok_or_else(|| Error::usage("sqitch.plan names no %project=", None))?;
            let probe = format!("SELECT 'peer_history'::text AS key, coalesce(string_agg(change, ',' ORDER BY committed_at), '') AS value FROM {t} WHERE project = {}", literal(&project));
            (t, probe, None, false)
        }
        Layout::Folder => {
            return Err(Error::usage(
                "a folder of psql scripts has no history table to read",
                Some("leave out --history, or name the layout with --from".to_string()),
            ))
        }
        Layout::Liquibase => return liquibase(&mut c),
        Layout::Prisma
        | Layout::Diesel
        | Layout::Atlas
        | Layout::Goose
        | Layout::Temporal => {
            return Err(Error::usage(
                format!("--history does not read {}'s history table yet", layout.name()),
                Some("leave out --history and import from the first migration not applied (move the applied ones aside)".to_string()),
            ))
        }
    };
    if let Some(q) = refuse {
        let row = c
            .query_one(q.as_str(), &[])
            .map_err(|e| sql_error("reading the history table", &e))?;
        if let Some(failed) = row.get::<_, Option<String>>(0) {
            return Err(Error::usage(
                format!("{table} on the target records a migration that failed half-way ({failed})"),
                Some("repair it with the peer tool first (flyway repair, migrate force), then import".to_string()),
            ));
        }
    }
    let row = c
        .query_one(probe.as_str(), &[])
        .map_err(|e| sql_error("reading the history table", &e))?;
    let value: String = row.get(1);
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let set = match layout {
        Layout::Sqitch => AppliedSet::Names(list(&value)),
        _ if up_to && !value.is_empty() => AppliedSet::UpTo(value.clone()),
        _ => AppliedSet::Versions(list(&value)),
    };
    Ok(Applied {
        table,
        set,
        probe,
        value,
        checksums,
        default_schema: None,
    })
}

/// The checksums Flyway recorded for the SQL migrations it applied (a baseline row or
/// a Java migration has none to compare).
fn flyway_checksums(c: &mut postgres::Client, table: &str) -> Result<Vec<AppliedChecksum>> {
    let sql_only = if has_column(c, table, "type")? {
        " AND type = 'SQL'"
    } else {
        ""
    };
    let rows = c
        .query(
            format!("SELECT version::text, checksum::int4 FROM {table} WHERE success AND version IS NOT NULL AND checksum IS NOT NULL{sql_only} ORDER BY installed_rank").as_str(),
            &[],
        )
        .map_err(|e| sql_error("reading the history table's checksums", &e))?;
    Ok(rows
        .iter()
        .map(|r| AppliedChecksum {
            version: r.get(0),
            checksum: r.get(1),
        })
        .collect())
}

/// Liquibase's DATABASECHANGELOG: its EXECUTED and MARK_RAN rows are the changesets
/// applied (import matches them to the changelog's by id, author and file, refuses a
/// row naming none, and checks each MD5SUM as Liquibase does); the probe is their
/// list, in the order they ran.
fn liquibase(c: &mut postgres::Client) -> Result<Applied> {
    let t = find_table(c, "databasechangelog", None)?;
    let applied = "exectype IN ('EXECUTED', 'MARK_RAN')";
    let rows = c
        .query(
            // As text by format(), not a cast (a cast can run a user's function: DESIGN 5.1).
            format!("SELECT format('%s', id), format('%s', author), format('%s', filename), format('%s', exectype), CASE WHEN md5sum IS NOT NULL THEN format('%s', md5sum) END FROM {t} WHERE {applied} ORDER BY orderexecuted, dateexecuted").as_str(),
            &[],
        )
        .map_err(|e| sql_error("reading databasechangelog", &e))?;
    let ran: Vec<RanChangeSet> = rows
        .iter()
        .map(|r| RanChangeSet {
            id: r.get(0),
            author: r.get(1),
            filename: r.get(2),
            exectype: r.get(3),
            md5sum: r.get(4),
        })
        .collect();
    let probe = format!("SELECT 'peer_history'::text AS key, coalesce(string_agg(author || ':' || id || ' (' || filename || ') ' || exectype, ', ' ORDER BY orderexecuted, dateexecuted), '') AS value FROM {t} WHERE {applied}");
    let value: String = c
        .query_one(probe.as_str(), &[])
        .map_err(|e| sql_error("reading databasechangelog", &e))?
        .get(1);
    // Liquibase's `${database.defaultSchemaName}` on this database: the schema it
    // keeps DATABASECHANGELOG in, its default schema unless it was told another
    // (airlock's own session pins its search_path, so `current_schema()` here is not
    // the one Liquibase's connection has).
    let default_schema: Option<String> = c
        .query_one(
            "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
             WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.text::pg_catalog.regclass",
            &[&t],
        )
        .map_err(|e| sql_error("reading databasechangelog's schema", &e))?
        .get(0);
    Ok(Applied {
        table: t,
        set: AppliedSet::ChangeSets(ran),
        probe,
        value,
        checksums: vec![],
        default_schema,
    })
}
