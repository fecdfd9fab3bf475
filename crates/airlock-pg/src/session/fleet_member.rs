//! The fleet guard: on a login that is no superuser, a database a fleet pattern
//! (`tenant_*`) matches is accepted only when `airlock setup` set it up for that login
//! (DESIGN §5.1), asked at connect, before anything else is read or written.

use crate::{sql_err, DbError};

/// Who connects, whether it owns this database, and the set-up record: the oid of
/// `airlock_conf.set_up` when it is an ordinary table a superuser owns in a schema a
/// superuser owns (else NULL), whether the login may read it, this database's and the
/// login's oids. Reads catalogs only.
const FLEET_FACTS: &str = "SELECT r.rolsuper, d.datdba OPERATOR(pg_catalog.=) r.oid, \
       pg_catalog.format('%s', r.rolname), \
       (SELECT c.oid FROM pg_catalog.pg_class c \
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
          JOIN pg_catalog.pg_roles so ON so.oid OPERATOR(pg_catalog.=) n.nspowner \
          JOIN pg_catalog.pg_roles co ON co.oid OPERATOR(pg_catalog.=) c.relowner \
         WHERE n.nspname OPERATOR(pg_catalog.=) 'airlock_conf' \
           AND c.relname OPERATOR(pg_catalog.=) 'set_up' \
           AND c.relkind OPERATOR(pg_catalog.=) 'r' AND so.rolsuper AND co.rolsuper) AS record, \
       coalesce((SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE') \
                   FROM pg_catalog.pg_namespace n \
                  WHERE n.nspname OPERATOR(pg_catalog.=) 'airlock_conf'), false) \
         AND coalesce(pg_catalog.has_table_privilege(pg_catalog.to_regclass('airlock_conf.set_up'), 'SELECT'), false), \
       d.oid, r.oid \
  FROM pg_catalog.pg_database d, pg_catalog.pg_roles r \
 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() \
   AND r.rolname OPERATOR(pg_catalog.=) SESSION_USER";

/// A fleet pattern (`tenant_*`) accepts, on a login that is no superuser, only a
/// database `airlock setup` set up for that login (DESIGN §5.1: the login cannot make
/// databases a fleet pattern would match):
///
/// - never one the login owns: the login (or whoever acted as it) made it, not the
///   superuser who set the fleet up (setup makes the login, never a database);
/// - only one whose `airlock_conf.set_up` (a superuser's table in a superuser's
///   schema, which no other role can write) names this database's own oid and the
///   login's. A database the application role creates later has none; a copy of a
///   set-up tenant (`CREATE DATABASE tenant_666 TEMPLATE tenant_1`) carries the row,
///   but it names tenant_1's oid.
///
/// Read from catalogs and a superuser's table: nothing a role defines is called. A
/// superuser's connection, and a target named exactly, are not judged here.
pub fn fleet_database_set_up(client: &mut postgres::Client, entry: &str) -> Result<(), DbError> {
    let row = client.query_one(FLEET_FACTS, &[]).map_err(|e| {
        sql_err(
            "reading who owns this database and whether it was set up",
            &e,
        )
    })?;
    let superuser: bool = row.get(0);
    if superuser {
        return Ok(());
    }
    let owned: bool = row.get(1);
    let login: String = row.get(2);
    if owned {
        return Err(DbError::LoginKept {
            message: format!(
                "this database matches the fleet pattern {entry:?} but is owned by the login airlock connects as: a deploy login creates no databases of a fleet (one it made, or code acting as it made, is not one the fleet was set up on); refused, nothing was done"
            ),
            hint: "give the database to its application role and run airlock setup on it as a superuser (ALTER DATABASE … OWNER TO app), or name it in target.database explicitly".into(),
        });
    }
    let record: Option<u32> = row.get(3);
    let readable: bool = row.get(4);
    let (database, role): (u32, u32) = (row.get(5), row.get(6));
    let why = match (record, readable) {
        (None, _) => Some(
            "it holds no record that airlock setup set it up (no table airlock_conf.set_up a superuser owns, in a schema a superuser owns)".to_string(),
        ),
        (Some(_), false) => Some(format!(
            "the login {login:?} may not read its record airlock_conf.set_up: setup was not run on it for this login"
        )),
        (Some(_), true) => {
            let counts = client
                .query_one(
                    &format!(
                        "SELECT pg_catalog.count(*) FILTER (WHERE s.datoid OPERATOR(pg_catalog.=) {database}::pg_catalog.oid), \
                                pg_catalog.count(*) FILTER (WHERE s.datoid OPERATOR(pg_catalog.=) {database}::pg_catalog.oid \
                                                              AND s.login OPERATOR(pg_catalog.=) {role}::pg_catalog.oid) \
                           FROM ONLY airlock_conf.set_up s"
                    ),
                    &[],
                )
                .map_err(|e| sql_err("reading airlock_conf.set_up", &e))?;
            let (this_db, this_login): (i64, i64) = (counts.get(0), counts.get(1));
            match (this_db, this_login) {
                (_, n) if n > 0 => None,
                (0, _) => Some("its record airlock_conf.set_up names another database: it is a copy of one that was set up (CREATE DATABASE … TEMPLATE), not one setup ran on".to_string()),
                _ => Some(format!("its record airlock_conf.set_up names other logins than {login:?}")),
            }
        }
    };
    match why {
        None => Ok(()),
        Some(why) => Err(DbError::LoginKept {
            message: format!(
                "this database matches the fleet pattern {entry:?} but was not set up for this login: {why}. A fleet pattern accepts, on a deploy login, only the databases airlock setup ran on (a database created after the fleet's setup, by the application role or code acting as the login, or copied from a tenant, is none of them); refused, nothing was done"
            ),
            hint: format!(
                "if it is a tenant of this fleet, run airlock setup on it as a superuser (airlock setup --db \"dbname=… user=postgres\" --login {login}), then try again"
            ),
        }),
    }
}
