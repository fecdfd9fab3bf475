//! The index an online step builds, as the catalog holds it: found by the name the
//! step gives it in its table's schema, and judged against what the step promised
//! (that table, that definition as PostgreSQL itself writes it, VALID and READY). The
//! online runner asks before a build (run it, or it is there already, or an INVALID
//! leftover of it goes first, or the name is someone else's) and after it (record the
//! step, or not); the drift check asks what a stopped run left.
//!
//! Invariant: an index is the step's only when it is on the step's table with the
//! step's definition; only such an index, INVALID, and built by no other session, is
//! ever dropped; anything else holding the name is named with its owner, never
//! touched. Every check runs in a transaction (or savepoint) that is rolled back.

use crate::{pg_message, sql_err, DbError};
use airlock_bundle::verified::VerifiedBundle;
use airlock_sql::{IndexBuild, OnlineStep};
use postgres::{Client, Transaction};

/// Every statement of `files` (verified bytes), in order, with its file.
pub(crate) fn steps_of(
    vb: &VerifiedBundle,
    files: &[String],
) -> Result<Vec<(String, OnlineStep, String)>, DbError> {
    let mut out = vec![];
    for f in files {
        let bytes = vb
            .read_all(f)
            .map_err(|e| DbError::Unverified(Box::new(e)))?;
        let steps = airlock_sql::online_steps(f, &bytes).map_err(|p| DbError::Sql {
            context: format!("{}:{}", p.file, p.line),
            message: format!("{} (an online step)", p.message),
        })?;
        for s in steps {
            let text =
                String::from_utf8_lossy(&bytes[s.start as usize..s.end as usize]).into_owned();
            out.push((f.clone(), s, text));
        }
    }
    Ok(out)
}

/// What holds the name a step's index gets, in its table's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// The step's table is not there (along the bundle's search_path).
    NoTable,
    /// Nothing: the step builds it.
    Nothing,
    /// The step's own index: on its table, with its definition.
    Ours(Ours),
    /// Something else: what it is (kind, name, table) and its owner.
    Other { what: String, owner: String },
}

/// The step's own index as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ours {
    /// Qualified (`schema.name`), as the fingerprint names it.
    pub name: String,
    /// VALID and READY: usable, and counted as built.
    pub valid: bool,
    /// The other sessions that may be building it now (pids): a build in progress,
    /// or one a killed run's server session still runs.
    pub builders: Vec<i32>,
}

/// The name lookup: the table (qualified), then what holds the index's name in the
/// table's schema: qualified name, kind, owner, the table it is an index on (if it
/// is one), whether that is the step's table, valid and ready, its definition, and
/// the sessions that may be building it: those running a `CREATE INDEX` of it or on
/// its table, or one whose progress this login may not read (`relid` hidden), which
/// counts as building it (a leftover is dropped only when nobody may be building it).
const LOOKUP: &str = "WITH tbl AS (
    SELECT c.oid, c.relnamespace, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.relname OPERATOR(pg_catalog.=) $1 AND n.nspname OPERATOR(pg_catalog.=) ANY ($2)
       AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}'::pg_catalog.\"char\"[])
     ORDER BY pg_catalog.array_position($2, n.nspname::pg_catalog.text) LIMIT 1)
SELECT tbl.name, o.name, o.kind, o.owner, o.on_table, o.ours, o.valid, o.def, o.builders
  FROM tbl LEFT JOIN LATERAL (
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name,
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence'
                WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'c' THEN 'composite type'
                WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table'
                WHEN 'I' THEN 'partitioned index' ELSE 'relation' END AS kind,
           pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text AS owner,
           (SELECT pg_catalog.format('%I.%I', tn.nspname, t.relname) FROM pg_catalog.pg_class t
              JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.relnamespace
             WHERE t.oid OPERATOR(pg_catalog.=) x.indrelid) AS on_table,
           coalesce(x.indrelid OPERATOR(pg_catalog.=) tbl.oid, false) AS ours,
           coalesce(x.indisvalid AND x.indisready, false) AS valid,
           CASE WHEN x.indexrelid IS NOT NULL THEN pg_catalog.pg_get_indexdef(c.oid) END AS def,
           ARRAY(SELECT p.pid FROM pg_catalog.pg_stat_progress_create_index p
                  WHERE p.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
                    AND p.datid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                    AND (p.index_relid OPERATOR(pg_catalog.=) c.oid
                         OR p.relid OPERATOR(pg_catalog.=) tbl.oid OR p.relid IS NULL)
                 ORDER BY 1) AS builders
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      LEFT JOIN pg_catalog.pg_index x ON x.indexrelid OPERATOR(pg_catalog.=) c.oid
     WHERE c.relnamespace OPERATOR(pg_catalog.=) tbl.relnamespace AND c.relname OPERATOR(pg_catalog.=) $3) o ON true";

/// What holds `b`'s name now, judged in a transaction of its own (rolled back).
pub(crate) fn held(
    client: &mut Client,
    b: &IndexBuild,
    search_path: &[String],
) -> Result<Held, DbError> {
    let mut tx = client
        .transaction()
        .map_err(|e| sql_err("BEGIN (checking an online step's index)", &e))?;
    let held = held_in(&mut tx, b, search_path);
    let _ = tx.rollback();
    held
}

/// [`held`] inside the caller's transaction, in a savepoint rolled back after.
pub(crate) fn held_in(
    tx: &mut Transaction<'_>,
    b: &IndexBuild,
    search_path: &[String],
) -> Result<Held, DbError> {
    let context = format!("checking the index {} an online step builds", b.index);
    let mut sp = tx.transaction().map_err(|e| sql_err(&context, &e))?;
    // The bundle's search_path: the step's unqualified names (its table, the
    // functions of its expressions) resolve as they did when it ran.
    sp.batch_execute(&format!(
        "SET LOCAL search_path TO {}",
        crate::session::hermetic::render_search_path(search_path)
    ))
    .map_err(|e| sql_err(&context, &e))?;
    let schemas: Vec<String> = match &b.schema {
        Some(s) => vec![s.clone()],
        None => search_path.to_vec(),
    };
    let rows = sp
        .query(LOOKUP, &[&b.table, &schemas, &b.index])
        .map_err(|e| sql_err(&context, &e))?;
    let Some(row) = rows.first() else {
        return Ok(Held::NoTable);
    };
    let table: String = row.get(0);
    let Some(name) = row.get::<_, Option<String>>(1) else {
        return Ok(Held::Nothing);
    };
    let (kind, owner): (String, String) = (row.get(2), row.get(3));
    let on_table: Option<String> = row.get(4);
    let what = match (&on_table, row.get::<_, bool>(5)) {
        (Some(t), false) => format!("the {kind} {name} on {t}, not on {table}"),
        (Some(_), true) => {
            let def: String = row.get(7);
            if same_definition(&mut sp, b, &table, &def).map_err(|e| sql_err(&context, &e))? {
                return Ok(Held::Ours(Ours {
                    name,
                    valid: row.get(6),
                    builders: row.get(8),
                }));
            }
            format!("the {kind} {name} on {table} with another definition ({def})")
        }
        (None, _) => format!("the {kind} {name}"),
    };
    Ok(Held::Other { what, owner })
}

/// Whether `def` (an index's `pg_get_indexdef`) is what `b` builds: the step's build
/// made on an empty copy of `table` (a temporary table, in the caller's savepoint),
/// and PostgreSQL's text of both compared, names aside.
fn same_definition(
    sp: &mut Transaction<'_>,
    b: &IndexBuild,
    table: &str,
    def: &str,
) -> Result<bool, postgres::Error> {
    sp.batch_execute(&format!(
        "CREATE TEMPORARY TABLE {} (LIKE {table}); {}",
        airlock_sql::SHAPE_TABLE,
        b.shape
    ))?;
    let shape: String = sp
        .query_one(
            &format!(
                "SELECT pg_catalog.pg_get_indexdef('pg_temp.{}'::pg_catalog.regclass)",
                airlock_sql::SHAPE_INDEX
            ),
            &[],
        )?
        .get(0);
    Ok(airlock_sql::same_index_definition(def, &shape))
}

/// The refusal when the name a step's index gets is held by something else.
pub(crate) fn name_held(at: &str, index: &str, what: &str, owner: &str) -> DbError {
    DbError::State(format!(
        "{at}: the name {index} is held by {what}, owned by role {owner:?}; this step's index cannot be built under that name, and airlock records nothing of it\n\
         hint: find out who made it and why; drop or rename it (its owner or a superuser), or give the step's index another name in a new release"
    ))
}

/// The INVALID index `ours` (the step's own, built by nobody now) dropped
/// (`DROP INDEX CONCURRENTLY`) in the bundle's session; the error says what to run.
pub(crate) fn drop_invalid(client: &mut Client, ours: &Ours, at: &str) -> Result<String, DbError> {
    let name = &ours.name;
    match client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")) {
        Ok(()) => Ok(format!("dropped the INVALID index {name} an earlier, failed or interrupted build of this step left; built it again")),
        Err(e) => {
            let message = format!(
                "an earlier build of this step left the INVALID index {name}, and dropping it failed ({}); the step is not done and nothing of it is recorded: run DROP INDEX CONCURRENTLY {name}; then apply again",
                pg_message(&e)
            );
            let context = at.to_string();
            Err(match crate::sqlstate(&e) {
                Some("55P03") => DbError::lock_timeout(context, message),
                _ => DbError::Sql { context, message },
            })
        }
    }
}

/// The INVALID indexes the steps of `tier` not yet done would build (left by a run
/// that stopped during a build, and built by nobody now): `DROP INDEX CONCURRENTLY …;`
/// for each, to name in a refusal.
pub(crate) fn leftover_commands(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    files: &[String],
    from: usize,
    search_path: &[String],
) -> Vec<String> {
    leftovers(tx, vb, files, from, search_path)
        .into_iter()
        .map(|name| format!("DROP INDEX CONCURRENTLY {name};"))
        .collect()
}

/// The INVALID indexes the steps of `tier` not yet done would build, left by a run
/// that stopped during a build and built by nobody now (each the step's own: its
/// name and definition).
pub(crate) fn leftovers(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    files: &[String],
    from: usize,
    search_path: &[String],
) -> Vec<String> {
    own_builds(tx, vb, files, from, search_path, false)
}

/// The indexes the steps of `tier` not yet done build that are there already,
/// finished (VALID, READY, the step's definition, built by nobody now): a run that
/// stopped while its build went on (killed, the connection lost) left them.
pub(crate) fn finished_builds(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    files: &[String],
    from: usize,
    search_path: &[String],
) -> Vec<String> {
    own_builds(tx, vb, files, from, search_path, true)
}

/// The names of the indexes steps `from..` of `files` build that are there as the
/// steps' own, built by nobody now, and VALID or not as `valid` asks.
fn own_builds(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    files: &[String],
    from: usize,
    search_path: &[String],
    valid: bool,
) -> Vec<String> {
    let Ok(steps) = steps_of(vb, files) else {
        return vec![];
    };
    steps
        .iter()
        .skip(from)
        .filter_map(|(_, s, _)| s.builds.as_ref())
        .filter_map(|b| match held_in(tx, b, search_path) {
            Ok(Held::Ours(o)) if o.valid == valid && o.builders.is_empty() => Some(o.name),
            _ => None,
        })
        .collect()
}
