//! The auditor's login (`airlock setup --auditor NAME`): a login that may read
//! airlock's ledger in this database and nothing more, for `audit`, `status` and
//! `dossier --db` ([`super::reader`]), so that an auditor never holds the deploy login.
//!
//! It is created (`LOGIN`, no superuser, no `CREATEROLE`, `NOINHERIT`, no password) or
//! an existing one checked: no power beyond its own rights (as a deploy login,
//! `deploy::bundle_role::powers_sql`) and no membership in the deploy login
//! or the role bundle SQL runs as (either would let it write). Then granted: CONNECT on
//! the database, USAGE on schema `airlock` and SELECT on `airlock.ledger`; USAGE on
//! `airlock_conf` with its set-up record (a fleet pattern accepts the database on it,
//! [`crate::session::fleet_member`]) and the function that answers the configuration
//! file's value of a setting any session may change ([`crate::session::inherited`]).
//!
//! Invariant: the caller is `airlock setup`, in its one transaction; a refusal here
//! changes nothing.

use crate::{quote_ident, sql_err, DbError};
use schemars::JsonSchema;
use serde::Serialize;

/// What setup did for the auditor's login.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AuditorReport {
    /// The login.
    pub login: String,
    /// Created by this run (false: it existed and was checked).
    pub created: bool,
}

/// Whether `auditor` exists, and what it could do beyond reading: its powers, and
/// membership in the deploy login or the bundle role.
const FACTS: &str = "SELECT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1), \
    coalesce((SELECT {powers} FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1), ARRAY[]::pg_catalog.text[]) \
    || pg_catalog.array_remove(ARRAY[ \
         CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1) \
               AND pg_catalog.pg_has_role($1, $2, 'MEMBER') THEN pg_catalog.format('may act as the deploy login %s', $2) END, \
         CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1) \
               AND pg_catalog.pg_has_role($1, $3, 'MEMBER') THEN pg_catalog.format('may act as %s, the role bundle SQL runs as', $3) END \
       ], NULL)";

/// The auditor's login, and the two it must not be able to act as.
#[derive(Clone, Copy)]
pub struct Who<'a> {
    pub auditor: &'a str,
    /// The deploy login.
    pub login: &'a str,
    /// The role bundle SQL runs as.
    pub role: &'a str,
}

fn refuse(message: String) -> DbError {
    DbError::Setup {
        message,
        hint: "name a new login for the auditor (--auditor), or take those away first (ALTER ROLE … NOSUPERUSER NOCREATEROLE; REVOKE the roles that give them)".into(),
    }
}

/// Check `auditor` (refused: nothing changed) and say whether it must be created.
/// `powers` is the SQL array of what a role `r` could reach beyond its own rights
/// (setup's, `deploy::bundle_role::powers_sql` of `r.oid`).
pub fn check(
    tx: &mut postgres::Transaction<'_>,
    who: Who<'_>,
    powers: &str,
) -> Result<bool, DbError> {
    let Who {
        auditor,
        login,
        role,
    } = who;
    if auditor == login || auditor == role {
        return Err(refuse(format!(
            "the auditor's login {auditor:?} is the deploy login or the role bundle SQL runs as: an auditor's login may only read the ledger; nothing changed"
        )));
    }
    let sql = FACTS.replace("{powers}", powers);
    let row = tx
        .query_typed_one(
            &sql,
            &[
                (&auditor, postgres::types::Type::TEXT),
                (&login, postgres::types::Type::TEXT),
                (&role, postgres::types::Type::TEXT),
            ],
        )
        .map_err(|e| sql_err("reading the auditor login's powers", &e))?;
    let (exists, powers): (bool, Vec<String>) = (row.get(0), row.get(1));
    if !powers.is_empty() {
        return Err(refuse(format!(
            "role {auditor:?} {}: an auditor's login may only read the ledger; nothing changed",
            powers.join(", ")
        )));
    }
    Ok(!exists)
}

/// The statements that make `auditor` (created when `create`) a reader of the ledger
/// of `database`, run once the ledger exists.
pub fn statements(auditor: &str, database: &str, create: bool) -> Vec<String> {
    let a = quote_ident(auditor);
    let mut out = vec![];
    if create {
        out.push(format!(
            "CREATE ROLE {a} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD NULL"
        ));
    }
    out.push(format!(
        "GRANT CONNECT ON DATABASE {} TO {a}",
        quote_ident(database)
    ));
    out.push(format!("GRANT USAGE ON SCHEMA airlock TO {a}"));
    out.push(format!("GRANT SELECT ON TABLE airlock.ledger TO {a}"));
    out.push(format!("GRANT USAGE ON SCHEMA airlock_conf TO {a}"));
    out.push(format!(
        "GRANT EXECUTE ON FUNCTION airlock_conf.file_setting(pg_catalog.text) TO {a}"
    ));
    out.extend(super::login_kept::set_up_statements(auditor));
    out
}
