//! What a non-superuser owns that could fire in a superuser's session.
//!
//! A superuser session cannot lend bundle SQL a lesser identity for good: code that
//! fires inside it may run `RESET SESSION AUTHORIZATION` and is the superuser again,
//! and a default or check may call a built-in that is dangerous with a superuser's
//! rights (`lo_export`, `pg_read_file`…). So bundle SQL that runs as a superuser runs
//! only while [`find`] finds nothing. [`find`] does not list the places code can sit
//! (every PostgreSQL release may add one); it derives them from what PostgreSQL itself
//! records:
//!
//! 1. **Who owns what.** Every object of the database owned by a role that is neither a
//!    superuser nor airlock's login: `pg_shdepend`'s owner records (PostgreSQL keeps
//!    one for every ownable object but the bootstrap superuser's), and, for predefined
//!    roles (pinned, so never recorded there: a member may hand one an object), the
//!    functions, relations and types they own.
//! 2. **A function of theirs that anything uses.** Every `pg_depend` record on such a
//!    function, whatever the object that depends on it: PostgreSQL records one for every
//!    stored reference to a function (that is how `DROP FUNCTION` knows what it would
//!    break): triggers, event triggers, defaults, generated columns, checks, domains,
//!    partition keys, index expressions, views, rules, policies, operators, casts, types'
//!    and ranges' support functions, aggregates, other functions' bodies, and any kind a
//!    later release adds. Each is listed.
//! 3. **What they wrote that runs for others.** Every object that depends on one of
//!    their relations or types is judged by its catalog: allowed only when it cannot
//!    hold code of its author's (a row or array type, an index, a sequence, a relation,
//!    a key or foreign key, a statistics object, a publication's table), or its
//!    expression is a constant or one of a few built-ins (a default or check: see
//!    [`HARMLESS_EXPR`]; index, partition-key and generated expressions must be
//!    immutable, so only a function of theirs could do harm there, and (2) finds it).
//!    A trigger, a rule or view, a policy on a table with row security, or an object of
//!    any other catalog is listed: refused when in doubt.
//! 4. **Code in what they own itself.** A domain's default (the one expression kept in
//!    an owned object's own row that may call a volatile built-in); and an owned object
//!    of a catalog not known to hold no code is listed.
//!
//! Invariant: [`find`] is one query over `pg_catalog`, run as airlock's own role under
//! its pins (`search_path = pg_catalog, pg_temp`, schema-qualified operators), so
//! nothing it reads can be redirected by the code it looks for.

use crate::{sql_err, DbError};
use postgres::GenericClient;
use schemars::JsonSchema;
use serde::Serialize;

/// One object whose code a non-superuser owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OwnerCode {
    /// function (a non-superuser's, used by the object named), trigger, rule, view,
    /// policy, default, check, domain default, object (of a catalog not known to hold
    /// no code)
    pub kind: String,
    /// The object as PostgreSQL describes it, schema-qualified
    /// (`function public.pwn(), called by trigger stamp on table public.approvals`).
    pub object: String,
    pub owner: String,
}

impl std::fmt::Display for OwnerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (owner {})", self.object, self.owner)
    }
}

/// Expressions that are not code (see the module comment), as `pg_get_expr` prints
/// them under airlock's search_path.
const HARMLESS_EXPR: &str = r#"^(now\(\)|CURRENT_TIMESTAMP|CURRENT_DATE|LOCALTIMESTAMP|gen_random_uuid\(\)|true|false|-?[0-9]+(\.[0-9]+)?|\(-[0-9]+(\.[0-9]+)?\)|nextval\('([^']|'')+'::regclass\)|'([^']|'')*'::[a-z0-9_ ."\[\]]+|NULL::[a-z0-9_ ."\[\]]+)$"#;

/// Cost: the owner records of the database are read by `pg_shdepend`'s index (database,
/// class, object) and what depends on those objects by `pg_depend`'s (referenced class,
/// object); a database where no one but superusers owns anything is answered from the
/// first, empty, step. Names are made only for what is listed.
const QUERY: &str = r#"
WITH trusted AS MATERIALIZED (
  SELECT COALESCE(pg_catalog.array_agg(r.oid), '{}'::pg_catalog.oid[]) AS oids FROM pg_catalog.pg_roles r
  WHERE r.rolsuper OR r.rolname OPERATOR(pg_catalog.=) SESSION_USER
),
-- (1) Every object of this database an untrusted role owns.
owned(classid, objid, owner) AS MATERIALIZED (
  SELECT s.classid, s.objid, s.refobjid
    FROM pg_catalog.pg_shdepend s
   WHERE s.dbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
     AND s.deptype OPERATOR(pg_catalog.=) 'o'
     AND s.objsubid OPERATOR(pg_catalog.=) 0
     AND s.refobjid OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[])
  UNION ALL
  SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid, p.oid, p.proowner FROM pg_catalog.pg_proc p
   WHERE p.proowner OPERATOR(pg_catalog.<) '16384'::pg_catalog.oid
     AND p.proowner OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[])
  UNION ALL
  SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, c.oid, c.relowner FROM pg_catalog.pg_class c
   WHERE c.relowner OPERATOR(pg_catalog.<) '16384'::pg_catalog.oid
     AND c.relowner OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[])
  UNION ALL
  SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, y.oid, y.typowner FROM pg_catalog.pg_type y
   WHERE y.typowner OPERATOR(pg_catalog.<) '16384'::pg_catalog.oid
     AND y.typowner OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[])
),
-- (2) Whatever depends on a function of theirs.
uses(fn, owner, classid, objid, objsubid) AS (
  SELECT o.objid, o.owner, dep.classid, dep.objid, dep.objsubid
    FROM owned o
    JOIN pg_catalog.pg_depend dep ON dep.refclassid OPERATOR(pg_catalog.=) o.classid
                                 AND dep.refobjid OPERATOR(pg_catalog.=) o.objid
   WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
),
-- (3) Whatever depends on a relation or type of theirs, with the code it may hold.
dependent(owner, classid, objid, objsubid) AS (
  SELECT DISTINCT o.owner, dep.classid, dep.objid, dep.objsubid
    FROM owned o
    JOIN pg_catalog.pg_depend dep ON dep.refclassid OPERATOR(pg_catalog.=) o.classid
                                 AND dep.refobjid OPERATOR(pg_catalog.=) o.objid
   WHERE o.classid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_class'::pg_catalog.regclass,
                                                     'pg_catalog.pg_type'::pg_catalog.regclass]::pg_catalog.oid[])
),
judged(kind, classid, objid, objsubid, owner, expr) AS (
  SELECT CASE x.classid
           WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN 'default'
           WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN 'check'
           WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN 'trigger'
           WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
             CASE WHEN (SELECT r.rulename FROM pg_catalog.pg_rewrite r WHERE r.oid OPERATOR(pg_catalog.=) x.objid)
                       OPERATOR(pg_catalog.=) '_RETURN' THEN 'view' ELSE 'rule' END
           WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN 'policy'
           ELSE 'object' END,
         x.classid, x.objid, x.objsubid, x.owner,
         CASE x.classid
           WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN
             (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
               WHERE d.oid OPERATOR(pg_catalog.=) x.objid)
           WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
             (SELECT pg_catalog.pg_get_expr(k.conbin, k.conrelid) FROM pg_catalog.pg_constraint k
               WHERE k.oid OPERATOR(pg_catalog.=) x.objid)
         END
    FROM dependent x
   WHERE NOT (
     -- No code of its author's: a row, array or range type, a relation (an index's,
     -- a partition key's expressions are immutable), an operator, class, family or
     -- cast (their functions are judged by (2)), a function (judged where it is
     -- used), statistics, a publication's table.
     x.classid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_type'::pg_catalog.regclass, 'pg_catalog.pg_class'::pg_catalog.regclass,
        'pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_operator'::pg_catalog.regclass, 'pg_catalog.pg_opclass'::pg_catalog.regclass,
        'pg_catalog.pg_opfamily'::pg_catalog.regclass, 'pg_catalog.pg_amop'::pg_catalog.regclass, 'pg_catalog.pg_amproc'::pg_catalog.regclass,
        'pg_catalog.pg_cast'::pg_catalog.regclass, 'pg_catalog.pg_transform'::pg_catalog.regclass,
        'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, 'pg_catalog.pg_publication_rel'::pg_catalog.regclass]::pg_catalog.oid[])
     -- A generated column (immutable).
     OR (x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid
         AND EXISTS (SELECT FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a
                       ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid AND a.attnum OPERATOR(pg_catalog.=) d.adnum
                      WHERE d.oid OPERATOR(pg_catalog.=) x.objid AND a.attgenerated OPERATOR(pg_catalog.<>) ''))
     -- A key, foreign key, exclusion or not-null constraint.
     OR (x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid
         AND EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.oid OPERATOR(pg_catalog.=) x.objid
                        AND k.contype OPERATOR(pg_catalog.<>) 'c' AND k.conbin IS NULL))
     -- A trigger PostgreSQL made itself (a foreign key's).
     OR (x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid
         AND EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.oid OPERATOR(pg_catalog.=) x.objid AND g.tgisinternal))
     -- A policy on a table without row security, a materialized view's query (refreshed
     -- as its owner, in a restricted operation).
     OR (x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid
         AND EXISTS (SELECT FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
                      WHERE p.oid OPERATOR(pg_catalog.=) x.objid AND NOT c.relrowsecurity))
     OR (x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid
         AND EXISTS (SELECT FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.ev_class
                      WHERE r.oid OPERATOR(pg_catalog.=) x.objid AND c.relkind OPERATOR(pg_catalog.=) 'm'))
   )
  UNION ALL
  -- (4) What they own: a domain's default; a catalog not known to hold no code.
  SELECT CASE WHEN o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid
              THEN 'domain default' ELSE 'object' END,
         o.classid, o.objid, 0, o.owner,
         (SELECT pg_catalog.pg_get_expr(y.typdefaultbin, 0) FROM pg_catalog.pg_type y
           WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid
             AND y.oid OPERATOR(pg_catalog.=) o.objid)
    FROM owned o
   WHERE (o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid
          AND EXISTS (SELECT FROM pg_catalog.pg_type y WHERE y.oid OPERATOR(pg_catalog.=) o.objid AND y.typdefaultbin IS NOT NULL))
      OR o.classid OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog.pg_type'::pg_catalog.regclass, 'pg_catalog.pg_class'::pg_catalog.regclass,
        'pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_namespace'::pg_catalog.regclass, 'pg_catalog.pg_operator'::pg_catalog.regclass,
        'pg_catalog.pg_opclass'::pg_catalog.regclass, 'pg_catalog.pg_opfamily'::pg_catalog.regclass, 'pg_catalog.pg_collation'::pg_catalog.regclass,
        'pg_catalog.pg_conversion'::pg_catalog.regclass, 'pg_catalog.pg_ts_config'::pg_catalog.regclass, 'pg_catalog.pg_ts_dict'::pg_catalog.regclass,
        'pg_catalog.pg_ts_parser'::pg_catalog.regclass, 'pg_catalog.pg_ts_template'::pg_catalog.regclass,
        'pg_catalog.pg_largeobject'::pg_catalog.regclass, 'pg_catalog.pg_largeobject_metadata'::pg_catalog.regclass,
        'pg_catalog.pg_extension'::pg_catalog.regclass, 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass,
        'pg_catalog.pg_foreign_server'::pg_catalog.regclass, 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass,
        'pg_catalog.pg_publication'::pg_catalog.regclass, 'pg_catalog.pg_subscription'::pg_catalog.regclass,
        'pg_catalog.pg_event_trigger'::pg_catalog.regclass, 'pg_catalog.pg_language'::pg_catalog.regclass,
        'pg_catalog.pg_user_mapping'::pg_catalog.regclass, 'pg_catalog.pg_default_acl'::pg_catalog.regclass]::pg_catalog.oid[])
),
found(kind, object, owner) AS (
  SELECT j.kind,
         CASE WHEN j.kind OPERATOR(pg_catalog.=) 'view'
              THEN (SELECT pg_catalog.format('view %s', r.ev_class::pg_catalog.regclass) FROM pg_catalog.pg_rewrite r
                     WHERE r.oid OPERATOR(pg_catalog.=) j.objid)
              ELSE pg_catalog.pg_describe_object(j.classid, j.objid, j.objsubid) END,
         j.owner
    FROM judged j
   WHERE j.expr IS NULL OR NOT (j.expr OPERATOR(pg_catalog.~) $1)
  UNION
  SELECT 'function',
         pg_catalog.format('function %s, called by %s', u.fn::pg_catalog.regprocedure,
                           pg_catalog.pg_describe_object(u.classid, u.objid, u.objsubid)),
         u.owner
    FROM uses u
)
SELECT f.kind, f.object, pg_catalog.pg_get_userbyid(f.owner)::pg_catalog.text
  FROM found f
 ORDER BY 2, 1
"#;

/// Enabled event triggers whose function a non-superuser owns, "; "-joined (NULL when
/// none). They fire on DDL in any session, airlock's own included (its ledger, its
/// temporary functions), so a superuser session refuses to go on while there is one
/// ([`crate::session::hermetic::open_facts`], `airlock setup`): the function's owner could make it
/// `RESET SESSION AUTHORIZATION` and act as that superuser.
pub const EVENT_TRIGGER_CODE: &str = "(SELECT pg_catalog.string_agg(pg_catalog.format('event trigger %I executing %s (owner %s)', \
     e.evtname, e.evtfoid::pg_catalog.regprocedure, pg_catalog.pg_get_userbyid(p.proowner)), '; ' ORDER BY e.evtname) \
   FROM pg_catalog.pg_event_trigger e \
   JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) e.evtfoid \
   JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) p.proowner \
  WHERE e.evtenabled OPERATOR(pg_catalog.<>) 'D' AND NOT r.rolsuper)";

/// The `WITH` of a query about what roles are trusted in a superuser's session:
/// `trusted.oids`, the superusers, airlock's login and `pg_database_owner` when the
/// database's owner is one of those. Shared with [`super::shadows`].
macro_rules! trusted_roles {
    () => {
        r#"
WITH owner_trusted AS MATERIALIZED (
  SELECT r.rolsuper OR r.rolname OPERATOR(pg_catalog.=) SESSION_USER AS yes
    FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) d.datdba
   WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
),
trusted AS MATERIALIZED (
  SELECT COALESCE(pg_catalog.array_agg(r.oid), '{}'::pg_catalog.oid[]) AS oids FROM pg_catalog.pg_roles r
  WHERE r.rolsuper OR r.rolname OPERATOR(pg_catalog.=) SESSION_USER
     OR (r.rolname OPERATOR(pg_catalog.=) 'pg_database_owner' AND (SELECT o.yes FROM owner_trusted o))
)
"#
    };
}
pub(crate) use trusted_roles;

/// The relations a role other than a superuser or airlock's own login role could
/// attach code to while a superuser's statement waits for its lock: the ones it owns,
/// the ones in a schema it owns (it may drop them and make its own in their place),
/// and the ones it (or PUBLIC) may put a trigger on (`pg_database_owner`, which owns
/// `public` since PostgreSQL 15, is the database's owner). Temporary tables of other sessions
/// are left out: no statement of airlock's session can reach them; so are the system
/// catalogs and TOAST tables (no trigger, index or rule goes there without
/// `allow_system_table_mods`, a superuser's setting). So are their own
/// views: `LOCK` on a view locks what it reads with the view's owner's rights (a view
/// over `pg_class` would make every lock fail), and [`find`] lists each such view as
/// code anyway (a read of table rows plans no view). Each named as the
/// server quotes it, and whether `LOCK TABLE` can take it (a table, partitioned table
/// or view) or not (a materialized view, a foreign table).
const MOVABLE: &str = concat!(
    trusted_roles!(),
    r#"
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
       c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v']::pg_catalog."char"[])
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace, trusted t
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f']::pg_catalog."char"[])
   AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
   AND c.relnamespace OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog'::pg_catalog.regnamespace,
         'pg_toast'::pg_catalog.regnamespace]::pg_catalog.oid[])
   AND NOT (c.relkind OPERATOR(pg_catalog.=) 'v' AND c.relowner OPERATOR(pg_catalog.<>) ALL (t.oids))
   AND (c.relowner OPERATOR(pg_catalog.<>) ALL (t.oids)
        OR n.nspowner OPERATOR(pg_catalog.<>) ALL (t.oids)
        OR EXISTS (SELECT FROM pg_catalog.aclexplode(c.relacl) a
                    WHERE a.privilege_type OPERATOR(pg_catalog.=) 'TRIGGER'
                      AND a.grantee OPERATOR(pg_catalog.<>) ALL (t.oids)))
 ORDER BY c.oid
"#
);

/// The most relations [`hold_still`] locks: each lock takes a slot of the server's
/// shared lock table (`max_locks_per_transaction` × connections, 6,400 by default).
pub const HOLD_MAX: usize = 1000;

/// Who wants relations held still, for what its refusal says.
#[derive(Clone, Copy)]
pub enum Holder {
    /// Bundle SQL about to run as a superuser (apply, rollback).
    BundleSql,
    /// A superuser's login about to read tables' rows (`fingerprint --rows/--data`).
    Reader,
    /// airlock's questions of the data (`plan`'s predictions, through the door).
    Door,
}

impl Holder {
    fn what(self) -> &'static str {
        match self {
            Holder::BundleSql => "bundle SQL would run as a superuser",
            Holder::Reader => "this superuser's login would read the tables' rows",
            Holder::Door => "airlock's questions of the data would plan the tables they read",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Holder::BundleSql => "run the bundle's SQL as a role that is no superuser, from a deploy login that is none either ([target] role, and airlock setup --login deployer): code a role attaches then runs with no more than that role's rights",
            Holder::Reader => "read the rows as a login that is no superuser (the tables' owner, or a login that may read them): code a role attaches then runs with no more than that login's rights; the schema fingerprint (no --rows or --data) reads catalogs only",
            Holder::Door => "rehearse the bundle (airlock rehearse) to learn what the data makes fail",
        }
    }
}

/// Whether airlock's login is a superuser: only a superuser's session needs what could
/// fire in it held still (a login that is none runs a role's code with no more than
/// its own rights, and may not lock others' tables in the mode that holds them).
pub fn login_is_superuser(client: &mut impl GenericClient) -> Result<bool, DbError> {
    Ok(client
        .query_one(
            "SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER",
            &[],
        )
        .map_err(|e| sql_err("reading whether airlock's login is a superuser", &e))?
        .get(0))
}

/// The relations a non-superuser could attach code to now ([`MOVABLE`]), each as the
/// server quotes it; refused (a [`DbError::BundleRole`] for `holder`) when one of them
/// cannot be locked (a materialized view or foreign table of theirs) or there are more
/// than [`HOLD_MAX`].
pub fn movable(client: &mut impl GenericClient, holder: Holder) -> Result<Vec<String>, DbError> {
    let rows = client
        .query(MOVABLE, &[])
        .map_err(|e| sql_err("listing the relations a non-superuser could change", &e))?;
    let unlockable: Vec<String> = rows
        .iter()
        .filter(|r| !r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    if unlockable.is_empty() && rows.len() <= HOLD_MAX {
        return Ok(rows.iter().map(|r| r.get(0)).collect());
    }
    let why = if unlockable.is_empty() {
        format!("{} relations a non-superuser could attach code to (more than the {HOLD_MAX} airlock locks)", rows.len())
    } else {
        format!(
            "relations a non-superuser could attach code to that LOCK TABLE cannot hold still (materialized views, foreign tables): {}",
            unlockable.join(", ")
        )
    };
    Err(DbError::BundleRole {
        message: format!(
            "{}, and airlock cannot hold still what could run in that session until it is done: {why}; nothing ran",
            holder.what()
        ),
        hint: holder.hint().into(),
    })
}

/// Lock `names` ([`movable`]'s) in `SHARE UPDATE EXCLUSIVE` mode until the end of the
/// caller's transaction, waiting at most `lock_timeout`: it conflicts with `CREATE
/// TRIGGER`, `CREATE INDEX`, `CREATE STATISTICS`, `CREATE RULE`, `CREATE POLICY`,
/// `ALTER TABLE` and `DROP`, and not with reads and row writes. Takes no snapshot
/// (`LOCK` does not), so a REPEATABLE READ transaction's snapshot taken after it sees
/// the catalogs as they stay. `lock_timeout` is a duration its caller checked
/// (`--lock-timeout`, `--predict-timeout`, or airlock's own).
pub fn lock_still(
    client: &mut impl GenericClient,
    names: &[String],
    lock_timeout: &str,
) -> Result<(), DbError> {
    if names.is_empty() {
        return Ok(());
    }
    client
        .batch_execute(&format!(
            "SET LOCAL lock_timeout TO {}; LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE",
            crate::quote_literal(lock_timeout),
            names.join(", ")
        ))
        .map_err(|e| match crate::sqlstate(&e) {
            Some("55P03") => DbError::lock_timeout(
                "holding still the relations a non-superuser could change (SHARE UPDATE EXCLUSIVE)"
                    .into(),
                crate::pg_message(&e),
            ),
            _ => sql_err(
                "holding still the relations a non-superuser could change",
                &e,
            ),
        })
}

/// How many times the relations are listed and locked before airlock gives up on a
/// list that keeps growing.
pub const HOLD_ROUNDS: usize = 3;

/// The refusal when [`movable`]'s list kept growing for [`HOLD_ROUNDS`] rounds.
pub fn kept_appearing(holder: Holder) -> DbError {
    DbError::BundleRole {
        message: format!(
            "{}, and relations a non-superuser could change kept appearing while airlock locked them; nothing ran",
            holder.what()
        ),
        hint: holder.hint().into(),
    }
}

/// Make [`find`]'s answer hold until the end of the caller's transaction (READ
/// COMMITTED: each statement sees the catalogs as they are): before it is asked, lock
/// every relation a non-superuser could attach code to ([`movable`], [`lock_still`]),
/// listed again after each round of locks until no new one appears (one made
/// meanwhile). A proof made before, or on another connection, says nothing about the
/// statement that waits for its lock while the owner attaches a trigger and commits
/// (issue 86). The relations held.
pub fn hold_still(client: &mut impl GenericClient, lock_timeout: &str) -> Result<usize, DbError> {
    let mut held: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for _ in 0..HOLD_ROUNDS {
        let new: Vec<String> = movable(client, Holder::BundleSql)?
            .into_iter()
            .filter(|n| !held.contains(n))
            .collect();
        if new.is_empty() {
            return Ok(held.len());
        }
        lock_still(client, &new, lock_timeout)?;
        held.extend(new);
    }
    Err(kept_appearing(Holder::BundleSql))
}

/// Everything a role other than a superuser or airlock's own login role owns that
/// could fire in a superuser's session (see the module comment).
pub fn find(client: &mut impl GenericClient) -> Result<Vec<OwnerCode>, DbError> {
    find_with(client, QUERY)
}

/// [`find`] by a statement prepared once a connection (`cache`, to be used with that
/// connection only): without parameters, PostgreSQL plans it once and keeps the plan,
/// where [`find`] is planned on every call (2–3 ms; a deploy with online tiers asks
/// once for each tier). The same query, its pattern written in as a dollar-quoted
/// literal (whatever `standard_conforming_strings` says).
pub fn find_prepared(
    client: &mut impl GenericClient,
    cache: &mut Option<postgres::Statement>,
) -> Result<Vec<OwnerCode>, DbError> {
    let st = match cache {
        Some(st) => st.clone(),
        None => {
            let text = QUERY.replace("$1", &format!("$re${HARMLESS_EXPR}$re$::pg_catalog.text"));
            let st = client
                .prepare(&text)
                .map_err(|e| sql_err("looking for code owned by non-superusers", &e))?;
            cache.insert(st).clone()
        }
    };
    let rows = client
        .query(&st, &[])
        .map_err(|e| sql_err("looking for code owned by non-superusers", &e))?;
    Ok(rows.iter().map(row).collect())
}

/// [`find`] by another query text with the same parameter and columns.
pub fn find_with(client: &mut impl GenericClient, query: &str) -> Result<Vec<OwnerCode>, DbError> {
    let rows = client
        .query_typed(query, &[(&HARMLESS_EXPR, postgres::types::Type::TEXT)])
        .map_err(|e| sql_err("looking for code owned by non-superusers", &e))?;
    Ok(rows.iter().map(row).collect())
}

fn row(r: &postgres::Row) -> OwnerCode {
    OwnerCode {
        kind: r.get(0),
        object: r.get(1),
        owner: r.get(2),
    }
}

#[cfg(test)]
mod tests {
    use super::HARMLESS_EXPR;

    #[test]
    fn only_constants_and_a_few_builtins_are_harmless() {
        let re = regex::Regex::new(HARMLESS_EXPR).unwrap();
        for ok in [
            "now()",
            "0",
            "(-1)",
            "1.5",
            "'x'::text",
            "'it''s'::character varying",
            "'{}'::text[]",
            "nextval('public.t_id_seq'::regclass)",
            "NULL::integer",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "public.now()",
            "(i > 0)",
            "set_config('role'::text, 'x'::text, true)",
            "nextval('a'::regclass) + public.f()",
            "'x'::text || public.f()",
            "now() + '1 day'::interval",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }
}
