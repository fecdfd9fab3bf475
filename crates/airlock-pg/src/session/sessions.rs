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
    // pg_stat_activity is read once per transaction unless cleared: as it is now.
    client.batch_execute("SELECT pg_catalog.pg_stat_clear_snapshot()")?;
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
            "SELECT a.pid, coalesce(pg_catalog.format('%s', a.usename), '?'), coalesce(a.application_name, ''),
                    pg_catalog.to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
               FROM pg_catalog.pg_stat_activity a
              WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
                AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
                AND a.application_name OPERATOR(pg_catalog.=) 'airlock'
              ORDER BY a.backend_start LIMIT 5",
            &[],
        )
        .map_err(|e| sql_err("looking for other airlock sessions", &e))?;
    // Another role's session keeps its start from this login (NULL).
    Ok(session_lines(&rows, |r| match r.get(3) {
        Some::<String>(since) => format!("connected since {since}"),
        None => "its state is hidden from this login".into(),
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
    // One round trip (no statement prepared first): plan asks it once.
    let rows = tx
        .query_typed(
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

/// The sessions of this database, other than this one, with a transaction open (one
/// of them holds the lock a statement waited for), as this login sees them: at most
/// five, oldest first. PostgreSQL hides another role's `state`, `xact_start`,
/// `backend_start` and `query` from a login that is no member of it and lacks
/// `pg_read_all_stats` (the deploy login `airlock setup` makes): such a session is
/// still found, by the lock every open transaction holds on its own virtual
/// transaction id (`pg_locks` shows every session's locks to every login), and named
/// by what the login does see: pid, role, `application_name`, whether it holds a
/// snapshot or has written, the tables it holds locks on.
pub(crate) fn open_transactions(client: &mut impl GenericClient) -> OpenTransactions {
    let rows = match client.query(OPEN_TRANSACTIONS, &[]) {
        Ok(rows) => rows,
        Err(e) => return OpenTransactions::unknown(&e),
    };
    let hidden: Vec<i32> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(3))
        .map(|r| r.get(0))
        .collect();
    let login = match hidden.is_empty() {
        true => String::new(),
        false => match client.query_one("SELECT pg_catalog.format('%s', SESSION_USER)", &[]) {
            Ok(row) => row.get(0),
            Err(e) => return OpenTransactions::unknown(&e),
        },
    };
    OpenTransactions {
        sessions: session_lines(&rows, open_transaction),
        more: rows
            .first()
            .map_or(0, |r| r.get::<_, i64>(10) as usize)
            .saturating_sub(rows.len()),
        hidden,
        login,
        failed: None,
    }
}

/// Who [`open_transactions`] finds: pid, role, application_name, state hidden, since,
/// state, query, has written, holds a snapshot, the tables it holds locks on, how many
/// in all.
const OPEN_TRANSACTIONS: &str = "SELECT a.pid, coalesce(a.usename::pg_catalog.text, '?'), coalesce(a.application_name, ''),
            a.state IS NULL,
            coalesce(pg_catalog.to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),
            coalesce(a.state, ''), pg_catalog.left(coalesce(a.query, ''), 80),
            a.backend_xid IS NOT NULL, a.backend_xmin IS NOT NULL,
            (SELECT pg_catalog.string_agg(h.lock, ', ' ORDER BY h.lock)
               FROM (SELECT DISTINCT pg_catalog.format('%s on %I.%I', l.mode, n.nspname, c.relname) AS lock
                       FROM pg_catalog.pg_locks l
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.relation
                       JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                      WHERE l.pid OPERATOR(pg_catalog.=) a.pid AND l.granted
                        AND l.locktype OPERATOR(pg_catalog.=) 'relation'
                        AND l.database OPERATOR(pg_catalog.=) a.datid
                        AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema,pg_toast}'::pg_catalog.name[])
                      LIMIT 4) h),
            pg_catalog.count(*) OVER ()
       FROM pg_catalog.pg_stat_activity a
      WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
        AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
        AND (a.xact_start IS NOT NULL
             OR EXISTS (SELECT FROM pg_catalog.pg_locks v
                         WHERE v.pid OPERATOR(pg_catalog.=) a.pid AND v.granted
                           AND v.locktype OPERATOR(pg_catalog.=) 'virtualxid'))
      ORDER BY a.xact_start NULLS LAST, a.pid LIMIT 5";

/// What one row of [`OPEN_TRANSACTIONS`] says of its session.
fn open_transaction(r: &postgres::Row) -> String {
    let holds: Option<String> = r.get(9);
    let holds = holds.map(|h| format!("; holds {h}")).unwrap_or_default();
    if r.get::<_, bool>(3) {
        let (wrote, snapshot): (bool, bool) = (r.get(7), r.get(8));
        let what = match (wrote, snapshot) {
            (true, _) => ", which has written",
            (false, true) => ", holding a snapshot",
            (false, false) => "",
        };
        return format!("its state is hidden from this login; a transaction open{what}{holds}");
    }
    let since: String = r.get(4);
    let state: String = r.get(5);
    let query: String = r.get(6);
    format!("transaction open since {since}, {state}: {query:?}{holds}")
}

/// The sessions with a transaction open when a statement's lock wait ran out, as the
/// login saw them ([`open_transactions`]): what a lock-timeout error names, and what
/// its hint says to do about the ones whose state the login cannot see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenTransactions {
    /// One line per session ([`session_lines`]), at most five, oldest first.
    pub sessions: Vec<String>,
    /// Sessions beyond the five named.
    pub more: usize,
    /// The pids among them whose state is hidden from the login.
    pub hidden: Vec<i32>,
    /// The login (when some are hidden): who would need `pg_read_all_stats`.
    pub login: String,
    /// The question failed (why): nothing is claimed of who is there.
    pub failed: Option<String>,
}

impl OpenTransactions {
    fn unknown(e: &postgres::Error) -> OpenTransactions {
        OpenTransactions {
            failed: Some(crate::pg_message(e)),
            ..OpenTransactions::default()
        }
    }

    /// What the error and each retry line say of who was there.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.failed {
            return format!("which sessions have a transaction open could not be asked ({why})");
        }
        if self.sessions.is_empty() {
            return "no other session has a transaction open now".into();
        }
        let more = match self.more {
            0 => String::new(),
            n => format!("; and {n} more"),
        };
        format!(
            "sessions with a transaction open: {}{more}",
            self.sessions.join("; ")
        )
    }
}

/// What to do about a statement's lock wait that ran out, by who was in the way
/// (`None`: nobody was asked): wait for or end the sessions named, and, for those whose
/// state the login cannot see, how to see what they run.
pub fn lock_timeout_hint(in_the_way: Option<&OpenTransactions>) -> String {
    let plan = "`airlock plan` shows which locks each statement takes";
    let end = "give it longer with --lock-timeout or more tries with --lock-retries, or end the session (SELECT pg_terminate_backend(PID)) if it should not hold the lock";
    let w = match in_the_way {
        None => return format!("nothing was changed: run it again once the session holding the lock has finished ({plan}), {end}"),
        Some(w) if w.failed.is_some() || w.sessions.is_empty() => {
            return format!("nothing was changed: run it again (the session that held the lock may have finished since; {plan}), {end}")
        }
        Some(w) => w,
    };
    let mut hint = format!("nothing was changed: run it again once that session has finished (its pid is above; {plan}), {end}");
    if !w.hidden.is_empty() {
        let pids: Vec<String> = w.hidden.iter().map(|p| p.to_string()).collect();
        hint.push_str(&format!(
            ". PostgreSQL hides what pid {0} runs from the login {1:?} (another role's session): look as a role that may see it (a superuser in psql: SELECT pid, usename, state, xact_start, query FROM pg_stat_activity WHERE pid IN ({0})), or let the login see every session's state and query: GRANT pg_read_all_stats TO {2}",
            pids.join(", "),
            w.login,
            crate::quote_ident(&w.login),
        ));
    }
    hint
}

/// The sessions `pids` (those still there), each as [`session_lines`] gives it with
/// what it runs now (or that the login may not see it: another role's session).
pub(crate) fn by_pid(client: &mut impl GenericClient, pids: &[i32]) -> Vec<String> {
    let rows = client.query(
        "SELECT a.pid, coalesce(a.usename::pg_catalog.text, '?'), coalesce(a.application_name, ''),
                CASE WHEN a.state IS NOT NULL THEN pg_catalog.left(coalesce(a.query, ''), 80) END
           FROM pg_catalog.pg_stat_activity a
          WHERE a.pid OPERATOR(pg_catalog.=) ANY ($1) ORDER BY a.pid",
        &[&pids],
    );
    match rows {
        Ok(rows) if !rows.is_empty() => session_lines(&rows, |r| match r.get(3) {
            Some::<String>(query) => format!("now: {query:?}"),
            None => "its state is hidden from this login".into(),
        }),
        _ => pids.iter().map(|p| format!("pid {p}")).collect(),
    }
}
