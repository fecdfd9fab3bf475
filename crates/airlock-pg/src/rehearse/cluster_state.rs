//! What a rehearsal must leave as it found it outside its clone: the cluster-wide state
//! in PostgreSQL's shared catalogs — roles and memberships, database and role settings
//! (`pg_db_role_setting`), the other databases' rows, tablespaces, subscriptions,
//! replication slots and origins, comments and security labels on shared objects, and
//! parameter privileges — read before the clone and after it is dropped, and compared.
//!
//! Invariant: a snapshot never holds a secret. A role's password and a subscription's
//! connection string enter only as a SHA-256 of the stored value, are compared, and are
//! never shown (a change says "password changed"). Every row of the clone itself (its
//! database row, its settings, its subscriptions) is left out, so the comparison holds
//! whether or not the clone is still there; so are the rows of other rehearsals'
//! clones (`…_rehearse_<pid>`, [`crate::rehearse::cycle::clone_name`]), which concurrent
//! rehearsals create, open to connections and drop while this one runs.

use crate::deploy::options::Observer;
use crate::{quote_ident, sql_err, DbError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One difference between the two snapshots, with the statement that undoes it when
/// one statement can.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterChange {
    /// E.g. `role evil created`, `database app setting work_mem=7MB added`.
    pub what: String,
    /// The SQL that undoes it (run it as a superuser after checking nobody else made
    /// the change), when one statement can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
}

/// `(kind, k1, k2, k3)` → `field=value;…`.
type Key = (String, String, String, String);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    rows: BTreeMap<Key, String>,
}

/// Each row: kind, three key parts ('' when unused), and its value as `name=value`
/// fields joined by `\x1f` (so fields can be compared one by one). `{password}`,
/// `{conninfo}` and `{origins}` are filled in by what the connected role may read: the
/// server checks privileges on every relation a query names, even one a false
/// condition never reads.
const SHARED: &str = r#"
WITH keep AS (SELECT oid, datname FROM pg_catalog.pg_database
  WHERE datname <> $1 AND datname !~ '_rehearse_[0-9]+$')
SELECT 'role', r.rolname::text, '', '', concat_ws(E'\x1f',
  'superuser=' || r.rolsuper, 'inherit=' || r.rolinherit, 'createrole=' || r.rolcreaterole,
  'createdb=' || r.rolcreatedb, 'login=' || r.rolcanlogin, 'replication=' || r.rolreplication,
  'bypassrls=' || r.rolbypassrls, 'connection limit=' || r.rolconnlimit,
  'valid until=' || coalesce(r.rolvaliduntil::text, 'infinity'), 'password=' || {password})
FROM {roles} r
UNION ALL
-- keyed by grantor too: from PostgreSQL 16 on, one role may be granted to another by
-- several grantors, each grant a row with options of its own
SELECT 'membership', g.rolname::text, m.rolname::text, coalesce(gr.rolname::text, am.grantor::text), concat_ws(E'\x1f',
  'admin option=' || am.admin_option,
  -- PostgreSQL 16's INHERIT and SET options (absent before: concat_ws skips NULLs)
  'inherit option=' || (pg_catalog.to_jsonb(am) ->> 'inherit_option'),
  'set option=' || (pg_catalog.to_jsonb(am) ->> 'set_option'),
  'grantor=' || coalesce(gr.rolname::text, am.grantor::text))
FROM pg_catalog.pg_auth_members am
JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
JOIN pg_catalog.pg_roles m ON m.oid = am.member
LEFT JOIN pg_catalog.pg_roles gr ON gr.oid = am.grantor
UNION ALL
SELECT 'setting', coalesce(d.datname::text, ''), coalesce(r.rolname::text, ''),
  split_part(c.item, '=', 1), substr(c.item, length(split_part(c.item, '=', 1)) + 2)
FROM pg_catalog.pg_db_role_setting s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
CROSS JOIN LATERAL unnest(s.setconfig) AS c(item)
WHERE s.setdatabase = 0 OR s.setdatabase IN (SELECT oid FROM keep)
UNION ALL
SELECT 'database', d.oid::text, '', '', concat_ws(E'\x1f', 'name=' || d.datname,
  'owner=' || pg_get_userbyid(d.datdba), 'encoding=' || pg_encoding_to_char(d.encoding),
  'collate=' || d.datcollate, 'ctype=' || d.datctype, 'template=' || d.datistemplate,
  'allow connections=' || d.datallowconn, 'connection limit=' || d.datconnlimit,
  'tablespace=' || coalesce(t.spcname::text, d.dattablespace::text),
  'privileges=' || coalesce(d.datacl::text, 'default'))
FROM pg_catalog.pg_database d LEFT JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace
WHERE d.datname IN (SELECT datname FROM keep)
UNION ALL
SELECT 'tablespace', t.spcname::text, '', '', concat_ws(E'\x1f',
  'owner=' || pg_get_userbyid(t.spcowner), 'location=' || pg_tablespace_location(t.oid),
  'privileges=' || coalesce(t.spcacl::text, 'default'), 'options=' || coalesce(t.spcoptions::text, ''))
FROM pg_catalog.pg_tablespace t
UNION ALL
SELECT 'subscription', d.datname::text, s.subname::text, '', concat_ws(E'\x1f',
  'owner=' || pg_get_userbyid(s.subowner), 'enabled=' || s.subenabled,
  'slot=' || coalesce(s.subslotname::text, 'NONE'), 'publications=' || s.subpublications::text,
  'connection=' || {conninfo})
FROM pg_catalog.pg_subscription s JOIN keep d ON d.oid = s.subdbid
UNION ALL
SELECT 'replication slot', l.slot_name::text, '', '', concat_ws(E'\x1f',
  'type=' || l.slot_type, 'plugin=' || coalesce(l.plugin::text, ''),
  'database=' || coalesce(l.database::text, ''))
FROM pg_catalog.pg_replication_slots l WHERE NOT l.temporary
{origins}
UNION ALL
SELECT 'comment', c.classoid::regclass::text, coalesce(
    CASE c.classoid WHEN 'pg_catalog.pg_authid'::regclass THEN pg_get_userbyid(c.objoid)::text
      WHEN 'pg_catalog.pg_database'::regclass THEN (SELECT datname::text FROM pg_catalog.pg_database WHERE oid = c.objoid)
      WHEN 'pg_catalog.pg_tablespace'::regclass THEN (SELECT spcname::text FROM pg_catalog.pg_tablespace WHERE oid = c.objoid)
    END, c.objoid::text), '', encode(sha256(convert_to(c.description, 'UTF8')), 'hex')
FROM pg_catalog.pg_shdescription c
WHERE NOT (c.classoid = 'pg_catalog.pg_database'::regclass AND c.objoid NOT IN (SELECT oid FROM keep))
UNION ALL
SELECT 'security label', l.classoid::regclass::text, l.objoid::text, l.provider,
  encode(sha256(convert_to(l.label, 'UTF8')), 'hex')
FROM pg_catalog.pg_shseclabel l
WHERE NOT (l.classoid = 'pg_catalog.pg_database'::regclass AND l.objoid NOT IN (SELECT oid FROM keep))
"#;

/// PostgreSQL 15+: `GRANT … ON PARAMETER`.
const PARAMETER_ACL: &str =
    "SELECT 'parameter privileges', p.parname, '', '', coalesce(p.paracl::text, '') \
     FROM pg_catalog.pg_parameter_acl p";

/// The query for what the connected role may read.
fn shared_query(authid: bool, conninfo: bool, origins: bool) -> String {
    let sha = |x: &str| format!("encode(sha256(convert_to(coalesce({x}, ''), 'UTF8')), 'hex')");
    SHARED
        .replace("{roles}", if authid { "pg_catalog.pg_authid" } else { "pg_catalog.pg_roles" })
        .replace("{password}", &if authid { sha("r.rolpassword") } else { "'unreadable'".into() })
        .replace("{conninfo}", &if conninfo { sha("s.subconninfo") } else { "'unreadable'".into() })
        .replace(
            "{origins}",
            if origins {
                "UNION ALL SELECT 'replication origin', o.roname, '', '', '' FROM pg_catalog.pg_replication_origin o"
            } else {
                ""
            },
        )
}

impl Snapshot {
    /// Read the shared catalogs, leaving out every row of `clone` (and of every other
    /// rehearsal's clone). `c` may be connected
    /// to any database: the catalogs read are the cluster's.
    pub fn read(c: &mut impl postgres::GenericClient, clone: &str) -> Result<Snapshot, DbError> {
        Self::read_after(c, clone, "SET search_path = pg_catalog, pg_temp")
    }

    /// [`read`](Self::read) inside a deploy transaction about to commit: deferred
    /// constraint triggers fire first (under the role COMMIT would fire them as), then
    /// the catalogs are read as the login role; every setting is local to the
    /// transaction.
    fn read_inside(tx: &mut postgres::Transaction<'_>, clone: &str) -> Result<Snapshot, DbError> {
        Self::read_after(
            tx,
            clone,
            "SET CONSTRAINTS ALL IMMEDIATE; SET LOCAL SESSION AUTHORIZATION DEFAULT; \
             SET LOCAL ROLE NONE; SET LOCAL search_path = pg_catalog, pg_temp",
        )
    }

    fn read_after(
        c: &mut impl postgres::GenericClient,
        clone: &str,
        setup: &str,
    ) -> Result<Snapshot, DbError> {
        let err = |e: postgres::Error| sql_err("reading the cluster's shared catalogs", &e);
        c.batch_execute(setup).map_err(err)?;
        let may = c
            .query_one(
                "SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT'), \
                 has_column_privilege('pg_catalog.pg_subscription', 'subconninfo', 'SELECT'), \
                 has_table_privilege('pg_catalog.pg_replication_origin', 'SELECT'), \
                 CASE WHEN to_regclass('pg_catalog.pg_parameter_acl') IS NULL THEN false \
                 ELSE has_table_privilege('pg_catalog.pg_parameter_acl', 'SELECT') END",
                &[],
            )
            .map_err(err)?;
        let sql = shared_query(may.get(0), may.get(1), may.get(2));
        let mut rows = c.query(sql.as_str(), &[&clone]).map_err(err)?;
        let has_acl: bool = may.get(3);
        if has_acl {
            rows.extend(c.query(PARAMETER_ACL, &[]).map_err(err)?);
        }
        let mut out = BTreeMap::new();
        for r in rows {
            let key: Key = (r.get(0), r.get(1), r.get(2), r.get(3));
            out.insert(key, r.get::<_, Option<String>>(4).unwrap_or_default());
        }
        Ok(Snapshot { rows: out })
    }

    /// How many rows were read.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The names of the databases in this snapshot.
    fn databases(&self) -> std::collections::BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|(k, v)| k.0 == "database" && !v.contains("\x1fconnection limit=-2\x1f"))
            .filter_map(|(_, v)| v.split('\x1f').next()?.strip_prefix("name="))
            .collect()
    }

    /// What changed from `self` to `after`, in catalog order. Databases created or
    /// dropped meanwhile, and the rows that belong to them, are left out: CREATE and
    /// DROP DATABASE cannot run inside a transaction block (not even from a function),
    /// so they are another session's, not the bundle's (a renamed database is a
    /// change: databases are compared by oid). A database being dropped (connection
    /// limit -2 while DROP DATABASE runs) counts as gone.
    pub fn changes(&self, after: &Snapshot) -> Vec<ClusterChange> {
        self.changes_in(after, |_| true)
    }

    /// [`changes`](Self::changes) of the kinds `kinds` accepts.
    fn changes_in(&self, after: &Snapshot, kinds: impl Fn(&str) -> bool) -> Vec<ClusterChange> {
        self.keyed_changes_in(after, kinds)
            .into_iter()
            .map(|(_, c)| c)
            .collect()
    }

    /// [`changes_in`](Self::changes_in), each with the row it is about.
    fn keyed_changes_in(
        &self,
        after: &Snapshot,
        kinds: impl Fn(&str) -> bool,
    ) -> Vec<(Key, ClusterChange)> {
        let (was, now) = (self.databases(), after.databases());
        let in_both = |k: &Key| {
            kinds(&k.0)
                && match k.0.as_str() {
                    "database" => {
                        let name = |s: &Snapshot| {
                            s.rows.get(k).and_then(|v| {
                                v.split('\x1f')
                                    .next()?
                                    .strip_prefix("name=")
                                    .map(str::to_string)
                            })
                        };
                        matches!((name(self), name(after)), (Some(a), Some(b)) if was.contains(a.as_str()) && now.contains(b.as_str()))
                    }
                    "setting" => {
                        k.1.is_empty() || (was.contains(k.1.as_str()) && now.contains(k.1.as_str()))
                    }
                    "subscription" => was.contains(k.1.as_str()) && now.contains(k.1.as_str()),
                    _ => true,
                }
        };
        let mut out = Vec::new();
        for (k, v) in after.rows.iter().filter(|(k, _)| in_both(k)) {
            match self.rows.get(k) {
                None => out.push((k.clone(), added(k, v))),
                Some(old) if old != v => out.push((k.clone(), changed(k, old, v))),
                Some(_) => {}
            }
        }
        for (k, v) in self.rows.iter().filter(|(k, _)| in_both(k)) {
            if !after.rows.contains_key(k) {
                out.push((k.clone(), removed(k, v)));
            }
        }
        out
    }
}

/// What the cluster does not roll back: a replication slot made in a transaction that
/// then rolled back stays. These are compared across the whole watch.
const NOT_TRANSACTIONAL: &[&str] = &["replication slot"];

/// Watches the cluster around each step that runs bundle SQL, and tells the rehearsal's
/// own changes from other sessions'.
///
/// Attribution: every transaction that commits bundle SQL passes
/// [`crate::deploy::skeleton`]'s `before_commit`, where [`Watched`] reads the shared catalogs on
/// the watch's own connection, inside that transaction (deferred constraints fired
/// first, so nothing of the bundle's runs after), and outside again. The server's
/// visibility rules make the difference exactly what this transaction wrote: a row
/// version whose xmin (or, for a removed row, xmax) is this transaction or one of its
/// subtransactions is seen inside and not outside, while every committed change of
/// any other session is seen on both sides ([`written_inside`] for one committing
/// between the reads). A deleted row is judged the same way before its old version
/// could be vacuumed: inside it is gone, outside it is still there. What changed between the snapshots right before and after a step
/// is then counted when this transaction changed the same row, and otherwise noted as
/// another session's; when a transaction of the step may have ended where no
/// `before_commit` saw it (bundle SQL ran COMMIT or PREPARE TRANSACTION itself),
/// every change of that step counts.
pub struct Watch {
    client: RefCell<Result<postgres::Client, DbError>>,
    clone: String,
    state: RefCell<WatchState>,
}

#[derive(Default)]
struct WatchState {
    first: Option<Snapshot>,
    last: Option<Snapshot>,
    /// The rehearsal's: counted.
    changes: Vec<ClusterChange>,
    /// Other sessions': noted.
    others: Vec<ClusterChange>,
    error: Option<DbError>,
    /// This step's commits, seen from inside: the rows they changed.
    ours: Vec<(Key, ClusterChange)>,
    /// A transaction of this step may have ended unseen.
    unseen: bool,
}

/// What a watch saw: the rehearsal's changes (or why the cluster could not be read),
/// and what other sessions changed meanwhile.
pub struct Seen {
    pub changes: Result<Vec<ClusterChange>, DbError>,
    pub others: Vec<ClusterChange>,
}

fn push_new(v: &mut Vec<ClusterChange>, c: ClusterChange) {
    if !v.contains(&c) {
        v.push(c);
    }
}

impl Watch {
    pub fn new(client: Result<postgres::Client, DbError>, clone: &str) -> Watch {
        Watch {
            client: RefCell::new(client),
            clone: clone.into(),
            state: RefCell::new(WatchState::default()),
        }
    }

    fn read_outside(&self) -> Result<Snapshot, DbError> {
        match &mut *self.client.borrow_mut() {
            Ok(c) => Snapshot::read(c, &self.clone),
            Err(e) => Err(DbError::State(format!(
                "could not connect to read the cluster: {e}"
            ))),
        }
    }

    fn read(&self) -> Option<Snapshot> {
        match self.read_outside() {
            Ok(s) => Some(s),
            Err(e) => {
                self.state.borrow_mut().error.get_or_insert(e);
                None
            }
        }
    }

    /// Run one step between two snapshots.
    pub fn around<T>(&self, step: impl FnOnce() -> T) -> T {
        let before = self.read();
        {
            let mut st = self.state.borrow_mut();
            st.ours.clear();
            st.unseen = false;
        }
        let out = step();
        let after = self.read();
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let ours = std::mem::take(&mut st.ours);
        let mut shown = Vec::new();
        if let (Some(b), Some(a)) = (&before, &after) {
            for (k, c) in b.keyed_changes_in(a, |kind| !NOT_TRANSACTIONAL.contains(&kind)) {
                if st.unseen || ours.iter().any(|(key, _)| *key == k) {
                    push_new(&mut st.changes, c);
                } else {
                    push_new(&mut st.others, c);
                }
                shown.push(k);
            }
        }
        // What the step's own transactions changed counts even where the two
        // snapshots do not show it (another session changed it back meanwhile, or
        // dropped the database it belongs to).
        for (k, c) in ours {
            if !shown.contains(&k) {
                push_new(&mut st.changes, c);
            }
        }
        if st.first.is_none() {
            st.first = before;
        }
        if after.is_some() {
            st.last = after;
        }
        out
    }

    /// Inside a transaction about to commit: what it changed (see [`Watch`]).
    fn inside(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), DbError> {
        let before = self.read_outside()?;
        let inside = Snapshot::read_inside(tx, &self.clone)?;
        let after = self.read_outside()?;
        let mut ours = written_inside(&before, &inside, &after);
        self.state.borrow_mut().ours.append(&mut ours);
        Ok(())
    }

    /// A step's transaction ended where `before_commit` could not see it (bundle SQL
    /// ended it): every change of this step counts.
    pub fn ended_unseen(&self, e: &DbError) {
        if matches!(e, DbError::TransactionEnded { .. }) {
            self.state.borrow_mut().unseen = true;
        }
    }

    /// Every change seen, or why the cluster could not be read. `None`: no step ran.
    pub fn finish(self) -> Option<Seen> {
        let mut st = self.state.into_inner();
        if let Some(e) = st.error.take() {
            return Some(Seen {
                changes: Err(e),
                others: st.others,
            });
        }
        let (first, last) = (st.first.as_ref()?, st.last.as_ref()?);
        // The server ties no slot to the transaction that made it: one another
        // session made while the rehearsal ran counts too (fail closed), and says so.
        for mut c in first.changes_in(last, |kind| NOT_TRANSACTIONAL.contains(&kind)) {
            c.what.push_str(
                " while the rehearsal ran (the server ties no slot to a transaction: if another session made it, rehearse again)",
            );
            st.changes.push(c);
        }
        Some(Seen {
            changes: Ok(st.changes),
            others: st.others,
        })
    }
}

/// What an open transaction wrote, from the shared catalogs read outside it (`before`),
/// inside it, and outside again (`after`): the rows where the inside differs from
/// both outside reads. Another session's commit between the reads changes a row on
/// one outside side only, which then equals the inside (a row this transaction wrote
/// stays locked to others until it commits): not counted. Only two commits of other
/// sessions to the same row, one before and one after the inside read, would count
/// (fail-closed).
fn written_inside(
    before: &Snapshot,
    inside: &Snapshot,
    after: &Snapshot,
) -> Vec<(Key, ClusterChange)> {
    after
        .keyed_changes_in(inside, |kind| !NOT_TRANSACTIONAL.contains(&kind))
        .into_iter()
        .filter(|(k, _)| before.rows.get(k) != inside.rows.get(k))
        .collect()
}

/// A deploy's observer with the watch's look inside each transaction before it
/// commits (see [`Watch`]).
pub struct Watched<'a> {
    pub watch: &'a Watch,
    pub inner: Option<&'a dyn Observer>,
}

impl Observer for Watched<'_> {
    fn start(&self, event: &str, files: usize, bytes: u64) {
        if let Some(o) = self.inner {
            o.start(event, files, bytes);
        }
    }
    fn tier(&self, index: usize, of: usize, name: &str) {
        if let Some(o) = self.inner {
            o.tier(index, of, name);
        }
    }
    fn file(&self, path: &str, bytes: u64) {
        if let Some(o) = self.inner {
            o.file(path, bytes);
        }
    }
    fn file_done(&self, path: &str, bytes: u64) {
        if let Some(o) = self.inner {
            o.file_done(path, bytes);
        }
    }
    fn retry(&self, attempt: u32, of: u32, wait: std::time::Duration, why: &str) {
        if let Some(o) = self.inner {
            o.retry(attempt, of, wait, why);
        }
    }
    fn before_commit(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), DbError> {
        if let Some(o) = self.inner {
            o.before_commit(tx)?;
        }
        self.watch.inside(tx)
    }
    fn committed(&self) {
        if let Some(o) = self.inner {
            o.committed();
        }
    }
    fn time_alone(&self, path: &str) -> std::collections::BTreeSet<u64> {
        self.inner.map(|o| o.time_alone(path)).unwrap_or_default()
    }
    fn statement_timed(
        &self,
        path: &str,
        line: u64,
        started: std::time::Instant,
        took: std::time::Duration,
    ) {
        if let Some(o) = self.inner {
            o.statement_timed(path, line, started, took);
        }
    }
    fn measure(&self, tx: &mut postgres::Transaction<'_>, edge: crate::deploy::options::TierEdge) {
        if let Some(o) = self.inner {
            o.measure(tx, edge);
        }
    }
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `database D`, `role R`, `role R in database D`, or `every database` for a setting.
fn setting_scope(db: &str, role: &str) -> (String, String) {
    match (db.is_empty(), role.is_empty()) {
        (false, true) => (
            format!("database {db}"),
            format!("ALTER DATABASE {}", quote_ident(db)),
        ),
        (true, false) => (
            format!("role {role}"),
            format!("ALTER ROLE {}", quote_ident(role)),
        ),
        (false, false) => (
            format!("role {role} in database {db}"),
            format!(
                "ALTER ROLE {} IN DATABASE {}",
                quote_ident(role),
                quote_ident(db)
            ),
        ),
        (true, true) => ("every role in every database".into(), String::new()),
    }
}

fn change(what: String, undo: Option<String>) -> ClusterChange {
    ClusterChange { what, undo }
}

fn added(k: &Key, v: &str) -> ClusterChange {
    let (kind, a, b, c) = (k.0.as_str(), k.1.as_str(), k.2.as_str(), k.3.as_str());
    match kind {
        "role" => change(
            format!("role {a} created"),
            Some(format!("DROP ROLE {}", quote_ident(a))),
        ),
        "membership" => change(
            format!("role {b} made a member of {a}"),
            Some(format!("REVOKE {} FROM {}", quote_ident(a), quote_ident(b))),
        ),
        "setting" => {
            let (scope, alter) = setting_scope(a, b);
            change(
                format!("{scope} setting {c}={v} added"),
                (!alter.is_empty()).then(|| format!("{alter} RESET {}", quote_ident(c))),
            )
        }
        "tablespace" => change(
            format!("tablespace {a} created"),
            Some(format!("DROP TABLESPACE {}", quote_ident(a))),
        ),
        "subscription" => change(format!("subscription {b} created in database {a}"), None),
        "replication slot" => change(
            format!("replication slot {a} created"),
            Some(format!("SELECT pg_drop_replication_slot({})", literal(a))),
        ),
        "replication origin" => change(
            format!("replication origin {a} created"),
            Some(format!("SELECT pg_replication_origin_drop({})", literal(a))),
        ),
        _ => change(
            format!("{kind} on {a} {b} {c} added").trim_end().into(),
            None,
        ),
    }
}

fn removed(k: &Key, v: &str) -> ClusterChange {
    let (kind, a, b, c) = (k.0.as_str(), k.1.as_str(), k.2.as_str(), k.3.as_str());
    match kind {
        "membership" => change(
            format!("role {b} is no longer a member of {a}"),
            Some(format!("GRANT {} TO {}", quote_ident(a), quote_ident(b))),
        ),
        "setting" => {
            let (scope, alter) = setting_scope(a, b);
            change(
                format!("{scope} setting {c}={v} removed"),
                (!alter.is_empty())
                    .then(|| format!("{alter} SET {} = {}", quote_ident(c), literal(v))),
            )
        }
        "subscription" => change(format!("subscription {b} in database {a} dropped"), None),
        "role" | "tablespace" | "replication slot" | "replication origin" => {
            change(format!("{kind} {a} dropped"), None)
        }
        _ => change(
            format!("{kind} on {a} {b} {c} removed").trim_end().into(),
            None,
        ),
    }
}

fn changed(k: &Key, old: &str, new: &str) -> ClusterChange {
    let (kind, a, b, c) = (k.0.as_str(), k.1.as_str(), k.2.as_str(), k.3.as_str());
    if kind == "setting" {
        let (scope, alter) = setting_scope(a, b);
        return change(
            format!("{scope} setting {c} changed from {old} to {new}"),
            (!alter.is_empty())
                .then(|| format!("{alter} SET {} = {}", quote_ident(c), literal(old))),
        );
    }
    if matches!(kind, "comment" | "security label" | "parameter privileges") {
        return change(
            format!("{kind} on {a} {b} {c}").trim_end().to_string() + " changed",
            None,
        );
    }
    // Name the fields that changed; hashed ones (password, connection) by name only.
    let fields = |s: &str| -> BTreeMap<String, String> {
        s.split('\x1f')
            .map(|f| match f.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (f.to_string(), String::new()),
            })
            .collect()
    };
    let (before, after) = (fields(old), fields(new));
    let mut what: Vec<String> = Vec::new();
    for (name, v) in &after {
        let was = before.get(name).map(String::as_str).unwrap_or("");
        if was != v {
            what.push(if matches!(name.as_str(), "password" | "connection") {
                format!("{name} changed")
            } else {
                format!("{name} {was} -> {v}")
            });
        }
    }
    let object = match kind {
        "database" => format!(
            "database {}",
            before.get("name").map(String::as_str).unwrap_or(a)
        ),
        "membership" => format!("membership of {b} in {a}"),
        "subscription" => format!("subscription {b} in database {a}"),
        _ => format!("{kind} {a}"),
    };
    change(format!("{object} changed: {}", what.join(", ")), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rows: &[(&str, &str, &str, &str, &str)]) -> Snapshot {
        Snapshot {
            rows: rows
                .iter()
                .map(|(k, a, b, c, v)| {
                    (
                        (k.to_string(), a.to_string(), b.to_string(), c.to_string()),
                        v.to_string(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn changes_are_named_with_their_undo_and_never_show_a_password() {
        let before = snap(&[
            ("database", "5", "", "", "name=db"),
            ("role", "app", "", "", "superuser=false\x1fpassword=aaaa"),
            ("setting", "db", "", "search_path", "app"),
        ]);
        let after = snap(&[
            ("database", "5", "", "", "name=db"),
            ("role", "app", "", "", "superuser=true\x1fpassword=bbbb"),
            ("role", "evil", "", "", "superuser=false"),
            ("setting", "db", "", "search_path", "app"),
            ("setting", "db", "", "work_mem", "7MB"),
        ]);
        let got = before.changes(&after);
        let shown: Vec<String> = got
            .iter()
            .map(|c| format!("{} | {}", c.what, c.undo.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            shown,
            vec![
                "role app changed: password changed, superuser false -> true | ".to_string(),
                "role evil created | DROP ROLE \"evil\"".to_string(),
                "database db setting work_mem=7MB added | ALTER DATABASE \"db\" RESET \"work_mem\""
                    .to_string(),
            ]
        );
        assert!(!shown
            .iter()
            .any(|s| s.contains("aaaa") || s.contains("bbbb")));
        assert!(before.changes(&before).is_empty());
    }

    #[test]
    fn only_what_differs_inside_from_both_outside_reads_is_the_transactions() {
        fn role<'a>(name: &'a str, su: &'a str) -> (&'a str, &'a str, &'a str, &'a str, &'a str) {
            ("role", name, "", "", su)
        }
        let before = snap(&[
            role("a", "superuser=false"),
            role("gone", "superuser=false"),
        ]);
        // Inside: the transaction made `mine`, dropped `gone`; another session had
        // made `early` (committed before the inside read, so seen inside too).
        let inside = snap(&[
            role("a", "superuser=false"),
            role("early", "superuser=false"),
            role("mine", "superuser=false"),
        ]);
        // After: `gone` still there (the drop is not committed); `early` seen; another
        // session made `late` and made `a` superuser after the inside read.
        let after = snap(&[
            role("a", "superuser=true"),
            role("early", "superuser=false"),
            role("gone", "superuser=false"),
            role("late", "superuser=false"),
        ]);
        let ours: Vec<String> = written_inside(&before, &inside, &after)
            .into_iter()
            .map(|(_, c)| c.what)
            .collect();
        assert_eq!(ours, ["role mine created", "role gone dropped"]);
    }

    #[test]
    fn databases_another_session_creates_or_drops_are_not_the_bundles() {
        let before = snap(&[
            ("database", "1", "", "", "name=a\x1fowner=x"),
            ("database", "2", "", "", "name=gone\x1fowner=x"),
            ("setting", "gone", "", "work_mem", "1MB"),
        ]);
        let after = snap(&[
            ("database", "1", "", "", "name=b\x1fowner=x"),
            ("database", "3", "", "", "name=new\x1fowner=x"),
            ("setting", "new", "", "work_mem", "1MB"),
        ]);
        let shown: Vec<String> = before.changes(&after).into_iter().map(|c| c.what).collect();
        assert_eq!(shown, vec!["database a changed: name a -> b".to_string()]);
    }
}
