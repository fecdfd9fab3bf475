//! The one-time setup of a deploy login (`airlock setup`), run by a superuser.
//!
//! Bundle SQL that runs as a role that is no superuser must run on a login that is
//! none either and has no path to one ([`crate::deploy::bundle_role`]): code it fires can
//! always get back to the login. This module makes such a login, once, so that every
//! later `plan`, `apply`, `rollback` and `rehearse` runs on it and never needs a
//! superuser:
//!
//! 1. the login: created (`LOGIN`, no superuser, no `CREATEROLE`, no replication),
//!    or an existing one checked to have no power beyond its own rights;
//! 2. the role bundle SQL runs as (`--role`, default the database's owner, which must
//!    be no superuser) granted to it, so that it may switch to that role;
//! 3. the gate role (`airlock_gate`, created `NOLOGIN` when missing) granted to it;
//!    `CREATEDB` only when asked (`--createdb`: `rehearse` clones the target). Never
//!    the configuration file (`pg_file_settings`: every line of `postgresql.conf`,
//!    secrets included; what an older setup granted of it is revoked): only
//!    `airlock_conf.file_setting(name)`, a superuser's function that answers the
//!    file's value of a setting any session may change (context `user`), which its
//!    sessions put database and role defaults back to ([`crate::session::inherited`]);
//!    And the record that this database was set up for this login
//!    (`airlock_conf.set_up`, a superuser's table naming the database's oid and the
//!    login's): a fleet pattern accepts only such a database on a login that is no
//!    superuser ([`crate::ledger::login_kept::fleet_database_set_up`]);
//! 4. airlock's ledger: the schema `airlock` created for the login, and the ledger
//!    made in it as the login would on a first apply (so it needs no `CREATE` on the
//!    database), then inspected as every deploy inspects it;
//! 5. with `--auditor`: a login that may only read the ledger ([`crate::ledger::auditor`]);
//! 6. proved: the login's powers (and the auditor's) read back, none.
//!
//! The session is a superuser's, and the DDL of steps 3 and 4 fires event triggers: so
//! setup refuses, before anything, while an enabled event trigger runs a function a
//! non-superuser owns (that code could `RESET SESSION AUTHORIZATION` and act as the
//! superuser). The rest of what setup runs (role statements, grants on the database)
//! fires no user code.
//!
//! Invariant: everything happens in one transaction, which commits only after step 5
//! held; a refusal changes nothing.

use crate::{ledger::auditor, ledger::chain as ledger, quote_ident, sql_err, DbError};
use postgres::Client;
use schemars::JsonSchema;
use serde::Serialize;

/// What to set up.
pub struct SetupRequest<'a> {
    /// The deploy login's name.
    pub login: &'a str,
    /// The role bundle SQL runs as; `None`: the database's owner.
    pub role: Option<&'a str>,
    /// The gate role to grant (created NOLOGIN when missing).
    pub gate_role: &'a str,
    /// Give the login CREATEDB (`rehearse` clones the target).
    pub createdb: bool,
    /// Also make (or check) this login a reader of the ledger, nothing more
    /// ([`crate::ledger::auditor`]).
    pub auditor: Option<&'a str>,
}

/// What `airlock setup` did, step by step.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SetupReport {
    /// The database set up (`current_database()`).
    pub database: String,
    /// The deploy login.
    pub login: String,
    /// The login was created by this run (false: it existed and was checked).
    pub login_created: bool,
    /// The role bundle SQL runs as, now granted to the login.
    pub role: String,
    /// The gate role, granted to the login.
    pub gate_role: String,
    /// The gate role was created by this run (NOLOGIN, no grants).
    pub gate_role_created: bool,
    /// The login may create databases (for `rehearse`).
    pub createdb: bool,
    /// What was found of airlock's ledger: created | present.
    pub ledger: String,
    /// The auditor's login (`--auditor`): may read the ledger, nothing more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auditor: Option<crate::ledger::auditor::AuditorReport>,
    /// The statements run, in order (for the operator's records).
    pub statements: Vec<String>,
}

/// The caller's and the login's facts in one round trip.
const FACTS: &str = "SELECT pg_catalog.current_database()::pg_catalog.text, \
   (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER), \
   (SELECT o.rolname::pg_catalog.text FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) d.datdba \
     WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()), \
   EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1), \
   EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $3), \
   EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'airlock'), \
   (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) coalesce($2, \
     (SELECT o.rolname FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) d.datdba \
       WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())))";

fn refuse(message: String, hint: &str) -> DbError {
    DbError::Setup {
        message,
        hint: hint.to_string(),
    }
}

/// Who is who, read before anything changes.
struct Facts {
    database: String,
    caller_superuser: bool,
    /// The role bundle SQL runs as (`--role`, else the database's owner).
    role: String,
    /// Whether that role is a superuser (`None`: there is no such role).
    role_superuser: Option<bool>,
    login_exists: bool,
    gate_exists: bool,
    schema_exists: bool,
    /// [`crate::session::owner_code::EVENT_TRIGGER_CODE`]'s answer.
    event_code: Option<String>,
    /// The owner of a schema `airlock_conf` that is no superuser ([`crate::session::inherited`]).
    conf_squatted: Option<String>,
}

fn read_facts(
    tx: &mut postgres::Transaction<'_>,
    req: &SetupRequest<'_>,
) -> Result<Facts, DbError> {
    let row = tx
        .query_typed_one(
            &format!(
                "{FACTS}, {}, {}",
                crate::session::owner_code::EVENT_TRIGGER_CODE,
                crate::session::inherited::CONF_SQUATTED
            ),
            &[
                (&req.login, postgres::types::Type::TEXT),
                (&req.role, postgres::types::Type::TEXT),
                (&req.gate_role, postgres::types::Type::TEXT),
            ],
        )
        .map_err(|e| sql_err("reading who is who", &e))?;
    let owner: String = row.get(2);
    Ok(Facts {
        database: row.get(0),
        caller_superuser: row.get(1),
        role: req.role.map(str::to_string).unwrap_or(owner),
        role_superuser: row.get(6),
        login_exists: row.get(3),
        gate_exists: row.get(4),
        schema_exists: row.get(5),
        event_code: row.get(7),
        conf_squatted: row.get(8),
    })
}

/// Refused unless a superuser runs it, the role exists and is none, and no event
/// trigger would fire a non-superuser's code on setup's DDL.
fn judge(facts: &Facts) -> Result<(), DbError> {
    let role = &facts.role;
    if !facts.caller_superuser {
        return Err(refuse(
            "airlock setup makes a deploy login and grants it roles: it must run as a superuser, and this connection is not one; nothing changed".to_string(),
            "run it once as a superuser: airlock setup --db \"dbname=… user=postgres\" --login deployer",
        ));
    }
    match facts.role_superuser {
        None => Err(refuse(
            format!("role {role:?} ([target] role, --role) does not exist on this server; nothing changed"),
            "create the application role that owns the schema first (CREATE ROLE app; ALTER DATABASE … OWNER TO app), or name it with --role",
        )),
        Some(true) => Err(refuse(
            format!("bundle SQL would run as {role:?}, a superuser (the database's owner, or --role): a deploy login that may become it is a superuser's session by another name; nothing changed"),
            "give the database (and its schema) to an application role that is no superuser (CREATE ROLE app; ALTER DATABASE … OWNER TO app) and name it with --role, or keep deploying as a superuser with bundles that declare [target] superuser = true",
        )),
        Some(false) => match (&facts.event_code, &facts.conf_squatted) {
            (Some(triggers), _) => Err(DbError::EventTriggers {
                triggers: triggers.clone(),
            }),
            (None, Some(owner)) => Err(refuse(
                format!("the schema airlock_conf, where setup keeps the function that tells the login the configuration file's value of a setting any session may change, is owned by {owner:?}, who is no superuser; nothing changed"),
                "drop that schema, or have a superuser take it (ALTER SCHEMA airlock_conf OWNER TO postgres) after checking what is in it, and run setup again",
            )),
            (None, None) => Ok(()),
        },
    }
}

/// Steps 1 to 3 and the ledger's schema, as statements (the login's own checks apart).
fn statements(req: &SetupRequest<'_>, facts: &Facts) -> Vec<String> {
    let login = quote_ident(req.login);
    let mut out = vec![];
    if !facts.login_exists {
        out.push(format!(
            "CREATE ROLE {login} LOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD NULL"
        ));
    }
    out.push(format!("GRANT {} TO {login}", quote_ident(&facts.role)));
    if !facts.gate_exists {
        out.push(format!(
            "CREATE ROLE {} NOLOGIN",
            quote_ident(req.gate_role)
        ));
    }
    out.push(format!("GRANT {} TO {login}", quote_ident(req.gate_role)));
    out.push(format!(
        "GRANT CONNECT ON DATABASE {} TO {login}",
        quote_ident(&facts.database)
    ));
    // Said either way: a login an older setup gave CREATEDB loses it unless asked.
    if req.createdb {
        out.push(format!("ALTER ROLE {login} CREATEDB"));
    } else if facts.login_exists {
        out.push(format!("ALTER ROLE {login} NOCREATEDB"));
    }
    // The configuration file's values of the settings any session may change, and no
    // other (`inherited`): what the login may ask instead of `pg_file_settings`.
    out.extend(
        crate::session::inherited::CONF_SETUP
            .iter()
            .map(|s| s.to_string()),
    );
    out.push(format!("GRANT USAGE ON SCHEMA airlock_conf TO {login}"));
    out.push(format!(
        "GRANT EXECUTE ON FUNCTION airlock_conf.file_setting(pg_catalog.text) TO {login}"
    ));
    // This database is one the fleet was set up on, for this login: its own oid (a
    // copy made with `CREATE DATABASE … TEMPLATE` carries the row, not the oid).
    out.extend(crate::ledger::login_kept::set_up_statements(req.login));
    if !facts.schema_exists {
        out.push(format!("CREATE SCHEMA airlock AUTHORIZATION {login}"));
    }
    out
}

/// Revoke what setups before issue 66 granted: `pg_file_settings` and the function
/// behind it (harmless when not granted).
fn revoke_file_settings(login: &str) -> Vec<String> {
    let login = quote_ident(login);
    vec![
        format!("REVOKE SELECT ON pg_catalog.pg_file_settings FROM {login}"),
        format!("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_show_all_file_settings() FROM {login}"),
    ]
}

/// Set up `req.login` on the database `client` is connected to (see the module
/// comment). The caller must be a superuser.
pub fn run(client: &mut Client, req: &SetupRequest<'_>) -> Result<SetupReport, DbError> {
    let mut tx = client.transaction().map_err(|e| sql_err("BEGIN", &e))?;
    let facts = read_facts(&mut tx, req)?;
    judge(&facts)?;
    let powers = crate::deploy::bundle_role::powers_sql("r.oid", "r.rolsuper");
    let auditor = match req.auditor {
        Some(a) => {
            let who = auditor::Who {
                auditor: a,
                login: req.login,
                role: &facts.role,
            };
            Some((who, auditor::check(&mut tx, who, &powers)?))
        }
        None => None,
    };
    let mut statements = vec![];
    if facts.login_exists {
        // What an older setup granted: the configuration file's every line (which
        // holds `primary_conninfo` passwords and `archive_command` secrets) is no
        // deploy login's to read. Taken back before the login is judged.
        for sql in revoke_file_settings(req.login) {
            tx.batch_execute(&sql).map_err(|e| sql_err(&sql, &e))?;
            statements.push(sql);
        }
        check_powers(&mut tx, req.login, "already")?;
    }
    let granted = self::statements(req, &facts);
    statements.extend(granted.iter().cloned());
    for sql in &granted {
        tx.batch_execute(sql).map_err(|e| sql_err(sql, &e))?;
    }
    // The ledger, made and inspected as the login would on its first apply.
    let as_login = format!("SET LOCAL SESSION AUTHORIZATION {}", quote_ident(req.login));
    tx.batch_execute(&as_login)
        .map_err(|e| sql_err(&as_login, &e))?;
    let locked = ledger::lock_for_deploy(&mut tx, "30s", &mut |_| Ok(()), &mut None)?;
    tx.batch_execute("RESET SESSION AUTHORIZATION")
        .map_err(|e| sql_err("RESET SESSION AUTHORIZATION", &e))?;
    if locked.created_by.is_some() {
        statements.push(as_login);
        statements.push(ledger::create_in_schema_sql());
        statements.push("RESET SESSION AUTHORIZATION".into());
    }
    if let Some((who, create)) = auditor {
        for sql in auditor::statements(who.auditor, &facts.database, create) {
            tx.batch_execute(&sql).map_err(|e| sql_err(&sql, &e))?;
            statements.push(sql);
        }
        // Proved as the deploy login is: nothing beyond its own rights, now.
        auditor::check(&mut tx, who, &powers)?;
    }
    check_powers(&mut tx, req.login, "now")?;
    let report_auditor = auditor.map(|(who, create)| auditor::AuditorReport {
        login: who.auditor.to_string(),
        created: create,
    });
    tx.commit().map_err(|e| sql_err("COMMIT", &e))?;
    Ok(SetupReport {
        database: facts.database,
        login: req.login.to_string(),
        login_created: !facts.login_exists,
        role: facts.role,
        gate_role: req.gate_role.to_string(),
        gate_role_created: !facts.gate_exists,
        createdb: req.createdb,
        ledger: if locked.created_by.is_some() {
            "created"
        } else {
            "present"
        }
        .to_string(),
        auditor: report_auditor,
        statements,
    })
}

/// Refused when `login` could reach more than its own rights (`when`: "already" for
/// an existing login, "now" for the proof before COMMIT).
fn check_powers(
    tx: &mut postgres::Transaction<'_>,
    login: &str,
    when: &str,
) -> Result<(), DbError> {
    let powers: Vec<String> = tx
        .query_typed_one(
            &format!(
                "SELECT {} FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1",
                crate::deploy::bundle_role::powers_sql("r.oid", "r.rolsuper")
            ),
            &[(&login, postgres::types::Type::TEXT)],
        )
        .map_err(|e| sql_err("reading the login's powers", &e))?
        .get(0);
    if powers.is_empty() {
        return Ok(());
    }
    Err(refuse(
        format!(
            "role {login:?} {when} {}: code that bundle SQL fires could get back to it and use that, so it cannot be a deploy login; nothing changed",
            powers.join(", ")
        ),
        "name a new login (--login), or take those away first (ALTER ROLE … NOSUPERUSER NOCREATEROLE; REVOKE the roles that give them)",
    ))
}
