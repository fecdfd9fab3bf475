//! What the target's catalog holds that reaches beyond its database: the extensions
//! that open another database or the server's files (`dblink`, `postgres_fdw`,
//! `file_fdw`, `adminpack`), and foreign servers and tables of a wrapper that can
//! reach something (one with a handler). The parse tree names what a bundle's files
//! call ([`airlock_sql::reaches_in`]); it cannot see SQL built at run time, procedures,
//! or the triggers and functions the database already holds, which may use these: so
//! `plan` names them beside the statements, and `rehearse` refuses a target that has
//! them (a clone has them too, pointing where the target's point).
//!
//! Invariant: one read-only query, schema-qualified, on a session under airlock's
//! pins; a way out is named by what the catalog says, never guessed from names.

use crate::{sql_err, DbError};
use airlock_sql::Reach;

/// The ways out of the database the catalog shows, as [`Reach`]es without a file.
const QUERY: &str = "\
SELECT w.what FROM (
  SELECT 1 AS k, e.extname::pg_catalog.text AS n,
         'extension ' OPERATOR(pg_catalog.||) e.extname::pg_catalog.text OPERATOR(pg_catalog.||)
         CASE WHEN e.extname OPERATOR(pg_catalog.=) ANY ('{dblink,postgres_fdw}'::pg_catalog.name[])
              THEN ' installed (another database)' ELSE ' installed (the server''s files)' END AS what
    FROM pg_catalog.pg_extension e
   WHERE e.extname OPERATOR(pg_catalog.=) ANY ('{dblink,postgres_fdw,file_fdw,adminpack}'::pg_catalog.name[])
  UNION ALL
  SELECT 2, s.srvname::pg_catalog.text,
         'foreign server ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(s.srvname::pg_catalog.text)
         OPERATOR(pg_catalog.||) ' of wrapper ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(w.fdwname::pg_catalog.text)
         OPERATOR(pg_catalog.||) ' (outside the database)'
    FROM pg_catalog.pg_foreign_server s
    JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw
   WHERE w.fdwhandler OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
  UNION ALL
  SELECT 3, c.oid::pg_catalog.regclass::pg_catalog.text,
         'foreign table ' OPERATOR(pg_catalog.||) c.oid::pg_catalog.regclass::pg_catalog.text
         OPERATOR(pg_catalog.||) ' (outside the database)'
    FROM pg_catalog.pg_foreign_table f
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) f.ftrelid
    JOIN pg_catalog.pg_foreign_server s ON s.oid OPERATOR(pg_catalog.=) f.ftserver
    JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw
   WHERE w.fdwhandler OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
) w ORDER BY w.k, w.n";

/// What the text after the catalog's finding says: why it counts though the bundle
/// does not name it.
const UNSEEN: &str =
    "; SQL built at run time, procedures, triggers and functions can use it where lint cannot see";

/// The ways out of the database the target's catalog holds ([`QUERY`]).
pub(crate) fn in_catalog(client: &mut postgres::Client) -> Result<Vec<Reach>, DbError> {
    let rows = client
        .query(QUERY, &[])
        .map_err(|e| sql_err("reading what the target's catalog reaches beyond it", &e))?;
    Ok(rows
        .iter()
        .map(|r| Reach {
            file: String::new(),
            line: 0,
            statement: format!("the target's catalog: {}{UNSEEN}", r.get::<_, String>(0)),
        })
        .collect())
}
