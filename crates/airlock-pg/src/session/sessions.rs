//! Who else is in the database: the other sessions a refusal or a wait names (who
//! holds the deploy lock, who runs online steps, who keeps the ledger's creation or a
//! statement waiting), each rendered the same way by [`session_lines`].
//!
//! Invariant: read-only catalog queries about other sessions; never a lock, never a
//! write, and never this session itself.

use crate::{sql_err, DbError};
use postgres::GenericClient;

/// The `pg_locks` rows (`l`, joined to `pg_stat_activity a`) of another session's
/// hold of the online key, whoever holds it: the whole key, or its high half with any
/// low half.
pub(crate) const ONLINE_HOLDS: &str = "l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted
    AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
    AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
    AND l.classid::pg_catalog.int8 OPERATOR(pg_catalog.=) 1634300524
    AND ((l.objsubid OPERATOR(pg_catalog.=) 1 AND l.objid::pg_catalog.int8 OPERATOR(pg_catalog.=) 1868786481)
         OR l.objsubid OPERATOR(pg_catalog.=) 2)";

/// The hold counts: its session's login may write the ledger.
pub(crate) const BY_A_LEDGER_WRITER: &str =
    "coalesce(pg_catalog.has_table_privilege(a.usesysid, c.oid, 'INSERT'), false)";

/// The sessions running online steps: airlock runs holding the online key
/// ([`ONLINE_HOLDS`], by a login that may write the ledger).
pub(crate) fn online_holders(client: &mut impl GenericClient) -> Result<Vec<String>, DbError> {
    online_sessions(client, true)
        .map(|rows| {
            session_lines(&rows, |r| {
                let query: String = r.get(3);
                format!("running airlock's online steps; now: {query:?}")
            })
        })
        .map_err(|e| sql_err("finding who runs online steps", &e))
}

/// The sessions holding the online key that are not airlock runs (their login may
/// not write the ledger): ignored by every deploy, named in a notice.
pub(crate) fn online_squatters(client: &mut impl GenericClient) -> Vec<String> {
    match online_sessions(client, false) {
        Ok(rows) => session_lines(&rows, |_| {
            "holds airlock's online-steps key but may not write airlock.ledger, so it is no airlock run: ignored".into()
        }),
        Err(_) => vec![],
    }
}

/// The sessions holding the online key whose login may (`writers`) or may not write
/// the ledger: pid, role, application_name, query.
fn online_sessions(
    client: &mut impl GenericClient,
    writers: bool,
) -> Result<Vec<postgres::Row>, postgres::Error> {
    let (holds, writer) = (ONLINE_HOLDS, BY_A_LEDGER_WRITER);
    client.query(
        &format!(
            "SELECT DISTINCT l.pid, coalesce(a.usename::text, '?'), coalesce(a.application_name, ''), coalesce(pg_catalog.left(a.query, 80), '')
               FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
              CROSS JOIN (SELECT pg_catalog.to_regclass('airlock.ledger')::pg_catalog.oid AS oid) c
              WHERE {holds} AND {writer} OPERATOR(pg_catalog.=) $1
              ORDER BY l.pid"
        ),
        &[&writers],
    )
}

/// One line per session row whose first columns are pid, role and application_name:
/// `pid P, role "R", application_name "A" (WHAT)`.
pub(crate) fn session_lines(
    rows: &[postgres::Row],
    what: impl Fn(&postgres::Row) -> String,
) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let pid: i32 = r.get(0);
            let role: String = r.get(1);
            let app: String = r.get(2);
            format!(
                "pid {pid}, role {role:?}, application_name {app:?} ({})",
                what(r)
            )
        })
        .collect()
}

/// The other sessions of airlock (`application_name` airlock) on this database: a
/// run between its transactions holds no lock, only its connection.
pub(crate) fn airlock_sessions(tx: &mut postgres::Transaction<'_>) -> Result<Vec<String>, DbError> {
    let rows = tx
        .query(
            "SELECT a.pid, coalesce(a.usename::pg_catalog.text, '?'), coalesce(a.application_name, ''),
                    pg_catalog.to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
               FROM pg_catalog.pg_stat_activity a
              WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
                AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
                AND a.application_name OPERATOR(pg_catalog.=) 'airlock'
              ORDER BY a.backend_start LIMIT 5",
            &[],
        )
        .map_err(|e| sql_err("looking for other airlock sessions", &e))?;
    Ok(session_lines(&rows, |r| {
        format!("connected since {}", r.get::<_, String>(3))
    }))
}

/// Who may be keeping the ledger's creation waiting: the sessions in this database
/// with a write transaction open (the catalogs do not say which one created the
/// uncommitted schema or table).
pub(crate) fn creation_holders(tx: &mut postgres::Transaction<'_>) -> Result<Vec<String>, DbError> {
    let rows = tx
        .query(
            "SELECT a.pid, coalesce(a.usename::pg_catalog.text, '?'), coalesce(a.application_name, '')
               FROM pg_catalog.pg_stat_activity a
              WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
                AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
                AND a.backend_xid IS NOT NULL
              ORDER BY a.xact_start, a.pid",
            &[],
        )
        .map_err(|e| sql_err("finding who keeps the ledger's creation waiting", &e))?;
    Ok(session_lines(&rows, |_| {
        "a write transaction open while this first apply creates the ledger".into()
    }))
}

/// Who holds a lock that keeps airlock from taking the deploy lock.
pub(crate) fn lock_holders(tx: &mut postgres::Transaction<'_>) -> Result<Vec<String>, DbError> {
    let rows = tx
        .query(
            "SELECT l.pid, coalesce(a.usename::text, '?'), coalesce(a.application_name, ''), l.mode, l.locktype
               FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
              WHERE l.granted AND l.pid <> pg_catalog.pg_backend_pid()
                AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                AND l.locktype = 'relation' AND l.relation = (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'airlock' AND c.relname = 'ledger')
                AND l.mode IN ('RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
              ORDER BY l.pid",
            &[],
        )
        .map_err(|e| sql_err("finding who holds the deploy lock", &e))?;
    Ok(session_lines(&rows, |r| {
        let mode: String = r.get(3);
        let kind: String = r.get(4);
        format!("{kind} {mode}")
    }))
}

/// The sessions of this database, other than airlock's, with a transaction open (one
/// of them holds the lock the statement waited for), oldest first: at most five.
pub(crate) fn open_transactions(client: &mut impl GenericClient) -> Vec<String> {
    let rows = client.query(
        "SELECT a.pid, coalesce(a.usename::pg_catalog.text, '?'), coalesce(a.application_name, ''),
                pg_catalog.to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                coalesce(a.state, ''), pg_catalog.left(coalesce(a.query, ''), 80)
           FROM pg_catalog.pg_stat_activity a
          WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
            AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
            AND a.xact_start IS NOT NULL
          ORDER BY a.xact_start LIMIT 5",
        &[],
    );
    match rows {
        Ok(rows) => session_lines(&rows, |r| {
            let since: String = r.get(3);
            let state: String = r.get(4);
            let query: String = r.get(5);
            format!("transaction open since {since}, {state}: {query:?}")
        }),
        Err(_) => vec![],
    }
}

/// The sessions `pids` (those still there), each as [`session_lines`] gives it with
/// what it runs now.
pub(crate) fn by_pid(client: &mut impl GenericClient, pids: &[i32]) -> Vec<String> {
    let rows = client.query(
        "SELECT a.pid, coalesce(a.usename::pg_catalog.text, '?'), coalesce(a.application_name, ''),
                pg_catalog.left(coalesce(a.query, ''), 80)
           FROM pg_catalog.pg_stat_activity a
          WHERE a.pid OPERATOR(pg_catalog.=) ANY ($1) ORDER BY a.pid",
        &[&pids],
    );
    match rows {
        Ok(rows) if !rows.is_empty() => session_lines(&rows, |r| {
            let query: String = r.get(3);
            format!("now: {query:?}")
        }),
        _ => pids.iter().map(|p| format!("pid {p}")).collect(),
    }
}
