//! The deploy login keeps nothing for anyone else (DESIGN §5.1, docs/security.md "The
//! login keeps nothing").
//!
//! Code the database's owner wrote (a trigger, a default, a rule) fires during an apply
//! and may get back to the deploy login (`RESET ROLE`, `RESET SESSION AUTHORIZATION`):
//! for as long as the transaction runs it has the login's rights (and the rest of the
//! tier may run as the login). What it could try to keep from that:
//!
//! - the login itself: every role may set its own password (`ALTER ROLE deployer
//!   PASSWORD '…'`), and a role default for it (`ALTER ROLE deployer SET …`); the
//!   owner could then log in as the login at will;
//! - a membership granted by the login;
//! - an object the login owns (a `SECURITY DEFINER` function that runs as it later, a
//!   table), or a right granted on one (the ledger, its schema), or default privileges;
//! - airlock's ledger (owned by the login): rows updated, deleted, or replaced;
//! - a database the login owns, or any made after the fleet's setup, that a fleet
//!   pattern (`tenant_*`) would then accept.
//!
//! PostgreSQL does not let a non-superuser read `pg_authid` (the password), but it
//! counts, per transaction, the rows every statement of it inserted, updated or
//! deleted in each table, shared catalogs included (`pg_stat_get_xact_tuples_*`, read
//! from the backend's own pending counts: nothing in the transaction can reset them,
//! and a row changed in a savepoint rolled back still counts). Nothing in a deploy
//! transaction of a login that is no superuser changes a role legitimately: the login
//! and the roles it may become have no CREATEROLE (`bundle_role::powers_sql`), so a
//! change of `pg_authid` or `pg_auth_members` there is a role changing its own
//! password or the like. The rest is read from catalogs every role may read:
//! `pg_db_role_setting`, `pg_shdepend` (what the login owns or holds rights on), the
//! ACLs of what it owns, `pg_default_acl`, and the ledger's rows.
//!
//! [`before`] reads them when the deploy transaction begins; [`check`], the last
//! statement before COMMIT (after the deferred constraint triggers ran), refuses the
//! commit when any changed: the transaction is rolled back and everything is what it
//! was. The only things a transaction may add are the ledger's objects on the apply
//! that creates it, checked by [`ledger::inspect`], and the ledger rows appended after
//! the ones it had, the last one airlock's. The fleet rule is checked by the name
//! guard (`session::fleet_member`).
//!
//! Invariant: no deploy transaction of a login that is no superuser commits a change
//! to a role, a membership, a default of the login, what the login owns or granted,
//! or the ledger's earlier rows.

use crate::{ledger::chain as ledger, sql_err, DbError};
use postgres::Transaction;

/// The login's own role defaults (`ALTER ROLE login [IN DATABASE d] SET …`), one
/// string per database (`0` for every database), sorted; and the database each is of.
const LOGIN_SETTINGS: &str = "SELECT coalesce(pg_catalog.array_agg(d.setdatabase::pg_catalog.text \
       OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(d.setconfig, ',') \
       ORDER BY d.setdatabase), ARRAY[]::pg_catalog.text[]), \
       coalesce(pg_catalog.array_agg(d.setdatabase ORDER BY d.setdatabase), ARRAY[]::pg_catalog.oid[]) \
     FROM pg_catalog.pg_db_role_setting d \
    WHERE d.setrole OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER)";

/// Rows of `pg_authid` (1260) and `pg_auth_members` (1261) this transaction inserted,
/// updated or deleted so far.
const ROLE_ROWS: &str = "SELECT \
    pg_catalog.pg_stat_get_xact_tuples_inserted(1260::pg_catalog.oid) OPERATOR(pg_catalog.+) \
    pg_catalog.pg_stat_get_xact_tuples_updated(1260::pg_catalog.oid) OPERATOR(pg_catalog.+) \
    pg_catalog.pg_stat_get_xact_tuples_deleted(1260::pg_catalog.oid), \
    pg_catalog.pg_stat_get_xact_tuples_inserted(1261::pg_catalog.oid) OPERATOR(pg_catalog.+) \
    pg_catalog.pg_stat_get_xact_tuples_updated(1261::pg_catalog.oid) OPERATOR(pg_catalog.+) \
    pg_catalog.pg_stat_get_xact_tuples_deleted(1261::pg_catalog.oid)";

/// Everything the login owns or has granted in this database, one sorted line each:
/// the objects `pg_shdepend` records it owns (or holds rights on), and the rights
/// granted on the schemas, relations, functions and types it owns and by its default
/// privileges. Described by PostgreSQL's own `pg_describe_object`; every value built
/// in, every operator named. Second, aligned: the database each line is about when it
/// is another database (the login owns it or holds rights on it), else 0. Third, the
/// cluster's databases: a line about one that went away, or came, while the
/// transaction ran is not its doing (CREATE and DROP DATABASE run in no transaction).
const LOGIN_HOLDS: &str = "WITH me AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER), \
  here AS (SELECT b.oid FROM pg_catalog.pg_database b WHERE b.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) \
SELECT coalesce(pg_catalog.array_agg(k.x ORDER BY k.x), ARRAY[]::pg_catalog.text[]), \
       coalesce(pg_catalog.array_agg(k.db ORDER BY k.x), ARRAY[]::pg_catalog.oid[]), \
       (SELECT coalesce(pg_catalog.array_agg(b.oid), ARRAY[]::pg_catalog.oid[]) FROM pg_catalog.pg_database b) FROM ( \
  SELECT 'owns ' OPERATOR(pg_catalog.||) coalesce(pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid), s.classid::pg_catalog.text OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) s.objid::pg_catalog.text) \
         OPERATOR(pg_catalog.||) ' (' OPERATOR(pg_catalog.||) s.deptype::pg_catalog.text OPERATOR(pg_catalog.||) ')', \
         CASE WHEN s.classid OPERATOR(pg_catalog.=) 1262::pg_catalog.oid THEN s.objid ELSE 0::pg_catalog.oid END \
    FROM pg_catalog.pg_shdepend s, me \
   WHERE s.refclassid OPERATOR(pg_catalog.=) 1260::pg_catalog.oid AND s.refobjid OPERATOR(pg_catalog.=) me.oid \
     AND (s.dbid OPERATOR(pg_catalog.=) 0::pg_catalog.oid OR s.dbid OPERATOR(pg_catalog.=) (SELECT here.oid FROM here)) \
  UNION ALL SELECT 'grants on schema ' OPERATOR(pg_catalog.||) n.nspname::pg_catalog.text OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) n.nspacl::pg_catalog.text, 0::pg_catalog.oid \
    FROM pg_catalog.pg_namespace n, me WHERE n.nspowner OPERATOR(pg_catalog.=) me.oid AND n.nspacl IS NOT NULL \
  UNION ALL SELECT 'grants on ' OPERATOR(pg_catalog.||) pg_catalog.pg_describe_object(1259::pg_catalog.oid, c.oid, 0) OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) c.relacl::pg_catalog.text, 0::pg_catalog.oid \
    FROM pg_catalog.pg_class c, me WHERE c.relowner OPERATOR(pg_catalog.=) me.oid AND c.relacl IS NOT NULL \
  UNION ALL SELECT 'grants on ' OPERATOR(pg_catalog.||) pg_catalog.pg_describe_object(1255::pg_catalog.oid, p.oid, 0) OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) p.proacl::pg_catalog.text, 0::pg_catalog.oid \
    FROM pg_catalog.pg_proc p, me WHERE p.proowner OPERATOR(pg_catalog.=) me.oid AND p.proacl IS NOT NULL \
  UNION ALL SELECT 'grants on ' OPERATOR(pg_catalog.||) pg_catalog.pg_describe_object(1247::pg_catalog.oid, t.oid, 0) OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) t.typacl::pg_catalog.text, 0::pg_catalog.oid \
    FROM pg_catalog.pg_type t, me WHERE t.typowner OPERATOR(pg_catalog.=) me.oid AND t.typacl IS NOT NULL \
  UNION ALL SELECT 'default privileges (' OPERATOR(pg_catalog.||) d.defaclobjtype::pg_catalog.text OPERATOR(pg_catalog.||) ', schema ' OPERATOR(pg_catalog.||) d.defaclnamespace::pg_catalog.text OPERATOR(pg_catalog.||) '): ' OPERATOR(pg_catalog.||) d.defaclacl::pg_catalog.text, 0::pg_catalog.oid \
    FROM pg_catalog.pg_default_acl d, me WHERE d.defaclrole OPERATOR(pg_catalog.=) me.oid \
) k(x, db)";

/// The ledger's rows by hash, in order, and the rows of it this transaction updated or
/// deleted (`pg_stat_get_xact_tuples_*`); asked only of a ledger [`ledger::inspect`]
/// found to be airlock's own.
const LEDGER_ROWS: &str = "SELECT coalesce((SELECT pg_catalog.array_agg(l.row_hash ORDER BY l.seq) FROM airlock.ledger l), ARRAY[]::pg_catalog.text[]), \
    pg_catalog.pg_stat_get_xact_tuples_updated(c.oid) OPERATOR(pg_catalog.+) pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid) \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
 WHERE n.nspname OPERATOR(pg_catalog.=) 'airlock' AND c.relname OPERATOR(pg_catalog.=) 'ledger'";

/// What airlock's first apply makes the login own (the ledger, [`ledger`]'s CREATE):
/// new in a transaction that found no ledger, and checked by [`ledger::inspect`].
const LEDGER_OWNS: [&str; 3] = [
    "owns schema airlock (o)",
    "owns table airlock.ledger (o)",
    "owns function airlock.ledger_append_only() (o)",
];

/// What [`check`] compares with, read when the transaction began.
pub struct Before {
    /// What the deploy login held (`None`: the login is a superuser, or the bundle's
    /// own role: nothing to hold).
    held: Option<Held>,
    /// The ledger rows this backend had inserted and not yet reported to the
    /// statistics ([`ledger::inserted`]): the count [`check`] starts from.
    ledger_inserted: i64,
}

struct Held {
    settings: Lines,
    holds: Lines,
    /// The cluster's databases then.
    databases: Vec<u32>,
    /// The ledger's row hashes, when there was a ledger (airlock's own).
    ledger: Option<Vec<String>>,
}

/// Read at the start of a deploy transaction, before any bundle SQL.
/// Whether airlock's login is itself the role bundle SQL runs as (`[target] role`, by
/// default the database's owner): then there is no one else the login could keep
/// anything for, and what the tiers create is the login's own by design.
pub fn login_is_bundle_role(
    tx: &mut Transaction<'_>,
    declared: Option<&str>,
) -> Result<bool, DbError> {
    let row = tx
        .query_typed_one(
            "SELECT SESSION_USER::pg_catalog.text OPERATOR(pg_catalog.=) COALESCE($1, \
               (SELECT pg_catalog.pg_get_userbyid(d.datdba)::pg_catalog.text FROM pg_catalog.pg_database d \
                 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))",
            &[(&declared, postgres::types::Type::TEXT)],
        )
        .map_err(|e| sql_err("reading whether the login is the bundle's role", &e))?;
    Ok(row.get::<_, Option<bool>>(0).unwrap_or(false))
}

pub fn before(tx: &mut Transaction<'_>, login_superuser: bool) -> Result<Before, DbError> {
    let ledger_inserted = ledger::inserted(tx)?;
    if login_superuser {
        return Ok(Before {
            held: None,
            ledger_inserted,
        });
    }
    let settings = lines(
        tx,
        LOGIN_SETTINGS,
        "reading the deploy login's role defaults",
    )?;
    let (holds, databases) = holds(tx)?;
    // A ledger that is not airlock's is refused by the deploy itself, later.
    let ledger = match ledger::inspect(tx) {
        Ok(ledger::Presence::Present) => Some(ledger_rows(tx)?.0),
        _ => None,
    };
    Ok(Before {
        held: Some(Held {
            settings,
            holds,
            databases,
            ledger,
        }),
        ledger_inserted,
    })
}

/// Lines of what the login holds, each with the other database it is about (0: none).
struct Lines(Vec<(String, u32)>);

impl Lines {
    /// The lines about this database and the cluster, and about other databases that
    /// were there both when the transaction began (`then`) and now.
    fn kept(&self, then: &[u32], now: &[u32]) -> Vec<&String> {
        self.0
            .iter()
            .filter(|(_, db)| *db == 0 || (then.contains(db) && now.contains(db)))
            .map(|(x, _)| x)
            .collect()
    }
}

fn lines_of(row: &postgres::Row) -> Lines {
    let (x, db): (Vec<String>, Vec<u32>) = (row.get(0), row.get(1));
    Lines(x.into_iter().zip(db).collect())
}

fn lines(tx: &mut Transaction<'_>, sql: &str, what: &str) -> Result<Lines, DbError> {
    let row = tx.query_one(sql, &[]).map_err(|e| sql_err(what, &e))?;
    Ok(lines_of(&row))
}

/// What the login holds ([`LOGIN_HOLDS`]), and the cluster's databases, in one read.
fn holds(tx: &mut Transaction<'_>) -> Result<(Lines, Vec<u32>), DbError> {
    let row = tx
        .query_one(LOGIN_HOLDS, &[])
        .map_err(|e| sql_err("reading what the deploy login owns", &e))?;
    Ok((lines_of(&row), row.get(2)))
}

fn ledger_rows(tx: &mut Transaction<'_>) -> Result<(Vec<String>, i64), DbError> {
    let row = tx
        .query_one(LEDGER_ROWS, &[])
        .map_err(|e| sql_err("reading the ledger's rows", &e))?;
    Ok((row.get(0), row.get(1)))
}

/// Rows this transaction wrote so far in tables that have triggers (the only tables
/// where a row write can queue a trigger event), summed (read as the simple query's
/// text: nothing is cast).
const TRIGGERED_WRITES: &str = "SELECT COALESCE(pg_catalog.sum( \
    pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid) OPERATOR(pg_catalog.+) \
    pg_catalog.pg_stat_get_xact_tuples_updated(c.oid) OPERATOR(pg_catalog.+) \
    pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid)), 0) \
  FROM pg_catalog.pg_class c WHERE c.relhastriggers";

/// How many rounds of deferred triggers [`seal`] fires before it gives up.
const SEAL_ROUNDS: usize = 8;

/// Seal the transaction before its last check, so that the check is the last code
/// that runs in it (DESIGN §5.1, "nothing runs after the last check"):
/// 1. `transaction_read_only` on: whatever code still runs can write no table, role or
///    ledger row (PostgreSQL refuses read-write again in this transaction);
/// 2. the deferred trigger events still queued fire now (`SET CONSTRAINTS ALL
///    IMMEDIATE`), before the check, and again while the firing wrote rows in tables
///    with triggers (a trigger event is queued only by a row written in a table that
///    has a trigger: code that re-deferred constraints and queued more, in a temporary
///    table say, which a read-only transaction may still write): when a round wrote
///    none, nothing is queued for COMMIT. Left for COMMIT, they would run after the
///    check, as the deploy login, free to set its password.
///
/// A firing that tries to write is refused ([`refused_write`]); one that keeps queuing
/// for [`SEAL_ROUNDS`] rounds is refused too. Either way the transaction is rolled back.
pub fn seal(tx: &mut Transaction<'_>) -> Result<(), DbError> {
    let round = |tx: &mut Transaction<'_>, sql: &str| -> Result<String, DbError> {
        let got = tx.simple_query(sql).map_err(|e| {
            refused_write(&e).unwrap_or_else(|| {
                sql_err("firing the deferred triggers before the last check", &e)
            })
        })?;
        Ok(got
            .iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default())
    };
    let mut wrote = round(
        tx,
        &format!("SET LOCAL transaction_read_only = on; {TRIGGERED_WRITES}"),
    )?;
    for _ in 0..SEAL_ROUNDS {
        let now = round(
            tx,
            &format!("SET CONSTRAINTS ALL IMMEDIATE; {TRIGGERED_WRITES}"),
        )?;
        if now == wrote {
            return Ok(());
        }
        wrote = now;
    }
    Err(login_kept(format!(
        "deferred constraint triggers kept queuing more after {SEAL_ROUNDS} rounds of firing them before airlock's last check; \
         what they queue would run at COMMIT, after the check, as the deploy login: refused, rolled back, nothing changed"
    )))
}

/// Code that ran after the transaction was sealed tried to write: said so.
fn refused_write(e: &postgres::Error) -> Option<DbError> {
    (e.code() == Some(&postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION)).then(|| {
        login_kept(format!(
            "code ran after airlock's last statement and tried to change the database as the deploy login: {}. \
             A deferred constraint trigger (queued again by code that ran earlier) fires after the work is done, \
             where airlock would not see what it changes; airlock made the transaction read-only before firing \
             it: refused, rolled back, nothing changed",
            crate::pg_message(e)
        ))
    })
}

/// COMMIT a [`seal`]ed transaction (a write by code that still ran at COMMIT is
/// refused as in [`seal`]).
pub fn commit(tx: Transaction<'_>) -> Result<(), DbError> {
    tx.commit()
        .map_err(|e| refused_write(&e).unwrap_or_else(|| sql_err("COMMIT", &e)))
}

/// The last look before COMMIT: refused when a ledger row was inserted that airlock
/// did not append ([`ledger::ours_only`], whatever the login); and, for a deploy login,
/// when this transaction changed a role, a
/// membership or the login's defaults, gave the login something to own or granted
/// something of what it owns, or changed a row of the ledger it had (see the module
/// comment). `appended`: the row hash of the ledger row airlock appended last (`None`:
/// it appended none, the ledger must be as it was); `ours`: how many rows airlock
/// appended in all (1 for a run; one per receipt `reissue` delivers).
pub fn check(
    tx: &mut Transaction<'_>,
    before: &Before,
    appended: Option<&str>,
    ours: i64,
) -> Result<(), DbError> {
    // Whatever the login: the ledger took airlock's rows and no other.
    ledger::ours_only(tx, before.ledger_inserted, ours)?;
    let Some(held) = &before.held else {
        return Ok(());
    };
    let row = tx
        .query_one(ROLE_ROWS, &[])
        .map_err(|e| sql_err("counting the roles this transaction changed", &e))?;
    let (roles, members): (i64, i64) = (row.get(0), row.get(1));
    let settings = lines(
        tx,
        LOGIN_SETTINGS,
        "reading the deploy login's role defaults",
    )?;
    let (holds, now) = holds(tx)?;
    let then = &held.databases;
    let (settings, had_settings) = (settings.kept(then, &now), held.settings.kept(then, &now));
    let (holds, had) = (holds.kept(then, &now), held.holds.kept(then, &now));
    let mut changed = vec![];
    if roles > 0 {
        changed.push(format!(
            "{roles} row(s) of pg_authid (a role's password, VALID UNTIL or attributes: ALTER ROLE … PASSWORD)"
        ));
    }
    if members > 0 {
        changed.push(format!(
            "{members} row(s) of pg_auth_members (GRANT or REVOKE of a role)"
        ));
    }
    if settings != had_settings {
        changed.push(format!(
            "the deploy login's own defaults (ALTER ROLE … SET), from {had_settings:?} to {settings:?}"
        ));
    }
    let new_ledger = held.ledger.is_none();
    let gained: Vec<&String> = holds
        .iter()
        .filter(|h| !had.contains(h))
        .filter(|h| !(new_ledger && LEDGER_OWNS.contains(&h.as_str())))
        .copied()
        .collect();
    let lost: Vec<&String> = had.iter().filter(|h| !holds.contains(h)).copied().collect();
    if !gained.is_empty() || !lost.is_empty() {
        changed.push(format!(
            "what the deploy login owns or granted (new: {gained:?}; gone: {lost:?})"
        ));
    }
    // The ledger: airlock's own still (owner, trigger, function body), the rows it had
    // unchanged and first, none updated or deleted, the last one airlock's.
    match ledger::inspect(tx) {
        Ok(ledger::Presence::Present) => {
            let (rows, rewritten) = ledger_rows(tx)?;
            let kept = held.ledger.as_ref().is_none_or(|had| rows.starts_with(had));
            let last_ours = match appended {
                Some(hash) => rows.last().map(String::as_str) == Some(hash),
                None => held
                    .ledger
                    .as_ref()
                    .is_some_and(|had| had.len() == rows.len()),
            };
            if !kept || rewritten > 0 || !last_ours {
                changed.push(format!(
                    "airlock's ledger ({rewritten} row(s) updated or deleted; its earlier rows {}; {})",
                    if kept { "kept" } else { "not kept" },
                    if last_ours {
                        "no row added but airlock's"
                    } else {
                        "rows added that airlock did not append"
                    }
                ));
            }
        }
        Ok(_) => changed.push("airlock's ledger (gone)".into()),
        Err(e) => changed.push(format!("airlock's ledger ({e})")),
    }
    if changed.is_empty() {
        return Ok(());
    }
    Err(login_kept(format!(
        "something that ran in this transaction changed what outlives it as the deploy login: {}. Code bundle SQL fires can act as the deploy login, and what it changes there would outlive the run (the owner could set the login's password and log in as it, keep a function that runs as it, rewrite the ledger); refused before COMMIT, rolled back, nothing changed",
        changed.join("; ")
    )))
}

fn login_kept(message: String) -> DbError {
    DbError::LoginKept {
        message,
        hint: "find the code that changes roles (triggers, defaults and rules of the tables the tiers touch; `airlock plan` names the owner's code on them) and remove it; role changes are a superuser's to make, outside a release".into(),
    }
}

/// What `airlock setup` (a superuser) runs in each database it sets up so that a fleet
/// pattern may accept it on `login`: a table of the superuser's in its superuser's
/// schema `airlock_conf`, one row per login set up here, naming this database's oid
/// and the login's. Rows naming another database (a copy of a set-up database made
/// with `CREATE DATABASE … TEMPLATE` carries them) are dropped, this login's row
/// written again. The login may read the table, nothing more.
pub fn set_up_statements(login: &str) -> Vec<String> {
    let ident = crate::quote_ident(login);
    let literal = crate::session::hermetic::quote_literal(login);
    let this_db = "(SELECT d.oid FROM pg_catalog.pg_database d \
                     WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())";
    let this_login = format!(
        "(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) {literal})"
    );
    vec![
        "CREATE TABLE IF NOT EXISTS airlock_conf.set_up (\
           datoid pg_catalog.oid NOT NULL, login pg_catalog.oid NOT NULL)"
            .into(),
        "REVOKE ALL ON TABLE airlock_conf.set_up FROM PUBLIC".into(),
        format!(
            "DELETE FROM ONLY airlock_conf.set_up s \
              WHERE s.datoid OPERATOR(pg_catalog.<>) {this_db} \
                 OR s.login OPERATOR(pg_catalog.=) {this_login}"
        ),
        format!("INSERT INTO airlock_conf.set_up (datoid, login) SELECT {this_db}, {this_login}"),
        format!("GRANT SELECT ON TABLE airlock_conf.set_up TO {ident}"),
    ]
}
