//! One door (DESIGN §5.1): every question airlock itself asks of the target's data
//! goes through this module, and nothing a database role defines (a function, an
//! operator, a cast, a type or domain it made, a policy, a view's query) runs while
//! it is asked.
//!
//! Invariant: a question is sent only after a proof, made on the same session under
//! the same search_path and before anything plans it, that it depends on nothing but
//! built-in objects and plain tables. The proof is PostgreSQL's own parse analysis:
//! in a savepoint that is always rolled back, `CREATE TEMP VIEW airlock_door_probe AS
//! <the exact question>`, then the dependencies `pg_depend` recorded for the view's
//! rewrite rule. Built-in (pinned) objects are never recorded there, so any recorded
//! function, operator, cast, type (but an enum, whose I/O and operators are built in),
//! collation or text-search object is code or behaviour a role chose: the answer is
//! "cannot tell here (it calls X, which role R defines)", a warning, never a call.
//! Sort and group operators are recorded too (checked with a default btree operator
//! class of a user type), and so is every relation: each must be a plain or
//! partitioned table whose every partition and inheritance child is one too (a view,
//! a foreign table, a materialized view: cannot tell). A question of the data is then
//! read from the proven view itself (nothing is resolved again between the proof and
//! the answer), with `transaction_read_only` and `row_security = off` (a policy makes
//! it fail instead of running its code), and rolled back. A question of the catalog
//! needs no proof: each is fixed in airlock's source (`predict::ask::Fixed`), and
//! every function, operator, type and relation in it is named in `pg_catalog`, where
//! a role can create nothing (a unit test parses each one), so nothing a role
//! defines is reached from it under any search_path; the bundle supplies only its
//! parameters.
//! Values are made text by their type's output function, `pg_catalog.format('%s',
//! v)` ([`text_of`]), never a cast a type's owner may have created; airlock's own
//! operators and functions are named in `pg_catalog` explicitly. Planning runs code
//! the question never names: the tables' index expressions and predicates, statistics
//! expressions, partition keys and children's constraints are const-folded when a read
//! of them is planned. So the proof also covers the code attached to every relation
//! the question reaches, its ancestors and descendants ([`attached`], catalogs only):
//! anything attached that is not built in makes it "cannot tell here", and nothing of
//! the table is planned. The probe's CREATE VIEW would fire event triggers (which only
//! superusers make); when one is enabled for DDL, nothing is asked.

pub(crate) mod attached;

use crate::pg_message;
use postgres::error::SqlState;
use postgres::Transaction;

/// The name of the probe view (temporary, rolled back with its savepoint).
const PROBE: &str = "airlock_door_probe";

/// What a question depends on that is not built in (a row per object: its
/// description and owner), or the relation it reads that is not a plain table.
const DEPENDENCIES: &str = "WITH RECURSIVE v AS ( \
  SELECT c.oid FROM pg_catalog.pg_class c \
  WHERE c.relname OPERATOR(pg_catalog.=) 'airlock_door_probe' \
    AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() \
), deps AS ( \
  SELECT DISTINCT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d \
  JOIN pg_catalog.pg_rewrite w ON w.oid OPERATOR(pg_catalog.=) d.objid \
  JOIN v ON w.ev_class OPERATOR(pg_catalog.=) v.oid \
  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
    AND NOT (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
         AND d.refobjid OPERATOR(pg_catalog.=) v.oid) \
), tree(oid) AS ( \
  SELECT deps.refobjid FROM deps \
  WHERE deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.oid \
), @ATTACHED@ \
SELECT pg_catalog.pg_describe_object(deps.refclassid, deps.refobjid, 0), \
  pg_catalog.pg_get_userbyid(COALESCE(p.proowner, o.oprowner, t.typowner, l.collowner, \
    cp.proowner, ct.typowner, 0::pg_catalog.oid))::pg_catalog.text \
FROM deps \
LEFT JOIN pg_catalog.pg_proc p ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
  AND p.oid OPERATOR(pg_catalog.=) deps.refobjid \
LEFT JOIN pg_catalog.pg_operator o ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass \
  AND o.oid OPERATOR(pg_catalog.=) deps.refobjid \
LEFT JOIN pg_catalog.pg_type t ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass \
  AND t.oid OPERATOR(pg_catalog.=) deps.refobjid \
LEFT JOIN pg_catalog.pg_collation l ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_collation'::pg_catalog.regclass \
  AND l.oid OPERATOR(pg_catalog.=) deps.refobjid \
LEFT JOIN pg_catalog.pg_cast k ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_cast'::pg_catalog.regclass \
  AND k.oid OPERATOR(pg_catalog.=) deps.refobjid \
LEFT JOIN pg_catalog.pg_proc cp ON cp.oid OPERATOR(pg_catalog.=) k.castfunc \
LEFT JOIN pg_catalog.pg_type ct ON ct.oid OPERATOR(pg_catalog.=) k.castsource \
WHERE deps.refclassid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_class'::pg_catalog.regclass \
  AND deps.refclassid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_constraint'::pg_catalog.regclass \
  AND NOT COALESCE(t.typtype OPERATOR(pg_catalog.=) 'e', false) \
UNION ALL \
SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0) \
  OPERATOR(pg_catalog.||) ' (not a plain table)', pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text \
FROM tree JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tree.oid \
WHERE c.relkind OPERATOR(pg_catalog.<>) 'r' AND c.relkind OPERATOR(pg_catalog.<>) 'p' \
UNION ALL \
SELECT a.what, a.owner FROM attached_code a \
LIMIT 5";

/// Whether the question depends on anything [`DEPENDENCIES`] would name (a row if
/// so): the same test without naming what or whose, so it is cheap to plan (~0.9 ms
/// against ~3.4: PostgreSQL plans a proof's query again at every `EXECUTE`, the
/// probe view made and rolled back around it invalidating the plan). Only when it
/// finds something is [`DEPENDENCIES`] asked, to name it.
const SUSPECT: &str = "WITH RECURSIVE v AS ( \
  SELECT c.oid FROM pg_catalog.pg_class c \
  WHERE c.relname OPERATOR(pg_catalog.=) 'airlock_door_probe' \
    AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() \
), deps AS ( \
  SELECT DISTINCT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d \
  JOIN pg_catalog.pg_rewrite w ON w.oid OPERATOR(pg_catalog.=) d.objid \
  JOIN v ON w.ev_class OPERATOR(pg_catalog.=) v.oid \
  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
    AND NOT (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
         AND d.refobjid OPERATOR(pg_catalog.=) v.oid) \
), tree(oid) AS ( \
  SELECT deps.refobjid FROM deps \
  WHERE deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.oid \
), up(oid) AS ( \
  SELECT tree.oid FROM tree \
  UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid OPERATOR(pg_catalog.=) up.oid \
) \
SELECT 1 FROM deps \
LEFT JOIN pg_catalog.pg_type t ON deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass \
  AND t.oid OPERATOR(pg_catalog.=) deps.refobjid \
WHERE deps.refclassid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_class'::pg_catalog.regclass \
  AND deps.refclassid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_constraint'::pg_catalog.regclass \
  AND NOT COALESCE(t.typtype OPERATOR(pg_catalog.=) 'e', false) \
UNION ALL \
SELECT 1 FROM tree JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tree.oid \
WHERE c.relkind OPERATOR(pg_catalog.<>) 'r' AND c.relkind OPERATOR(pg_catalog.<>) 'p' \
UNION ALL \
SELECT 1 FROM up \
WHERE up.oid OPERATOR(pg_catalog.=) ANY (pg_catalog.current_setting('airlock.door_tainted')::pg_catalog.oid[]) \
   OR up.oid OPERATOR(pg_catalog.>) pg_catalog.current_setting('airlock.door_seen')::pg_catalog.oid \
LIMIT 1";

/// A value as text, by its type's output function (`record_out` for a row,
/// `enum_out` for an enum): the text an I/O cast gives, without the cast a type's
/// owner may have created (`CREATE CAST (tier AS text)`).
pub(crate) fn text_of(expr: &str) -> String {
    format!("pg_catalog.format('%s', {expr})")
}

/// Why a question was not asked: a sentence for the operator, naming what it would
/// have called and who defines it.
pub(crate) type CannotTell = String;

/// How a proof PostgreSQL's parse analysis refused begins (its message follows, then
/// `)`): the question itself is in error (a relation or column that is not there).
pub(crate) const UNPROVABLE: &str =
    "cannot tell here (airlock's proof that the question calls nothing a role defines could not be made: ";

/// The savepoint the proof runs in (its own name: balanced within [`ask`]).
const SAVEPOINT: &str = "airlock_door_proof";

/// What an enabled DDL event trigger makes of the proof's batch: an error naming it,
/// before the probe's CREATE VIEW could fire it (a text that is no integer).
pub(crate) const EVENT_GUARD: &str = "SELECT ('airlock-door event trigger ' OPERATOR(pg_catalog.||) e.evtname::pg_catalog.text \
  OPERATOR(pg_catalog.||) ' of role ' OPERATOR(pg_catalog.||) pg_catalog.pg_get_userbyid(e.evtowner)::pg_catalog.text)::pg_catalog.int4 \
FROM pg_catalog.pg_event_trigger e WHERE e.evtenabled OPERATOR(pg_catalog.<>) 'D' \
  AND e.evtevent OPERATOR(pg_catalog.=) ANY ('{ddl_command_start,ddl_command_end}'::pg_catalog.text[])";

/// The session's prepared [`DEPENDENCIES`] (planning it costs 2.5-8 ms, more than the
/// rest of a proof).
const PREPARED: &str = "airlock_door_dependencies";
/// The session's prepared [`SUSPECT`].
const PREPARED_SUSPECT: &str = "airlock_door_suspect";

/// Make the door ready on this session: [`DEPENDENCIES`] prepared once (a prepared
/// statement is the session's, whatever becomes of the transaction). Called before the
/// first [`ask`]; a proof without it fails closed ("cannot tell here").
///
/// The quick test compares each question's relations with the ones found tainted
/// here, once a transaction: an index or statistics object a role adds to an older
/// table afterwards (while a question waits for its lock) would change neither. So on
/// a superuser's login (where that code would run as the superuser) first every
/// relation a non-superuser could attach code to is held still until the transaction
/// ends ([`owner_code::lock_still`], `SHARE UPDATE EXCLUSIVE`, within
/// `lock_timeout`; reads and row writes go on); a relation made since is above the
/// highest oid seen, suspect anyway. When they cannot be held (one `LOCK` cannot take,
/// too many, the wait ran out) the door does not open: nothing is asked.
///
/// [`owner_code::lock_still`]: crate::session::owner_code::lock_still
pub(crate) fn open(tx: &mut Transaction<'_>, lock_timeout: &str) -> Result<(), crate::DbError> {
    use crate::session::owner_code::{self, Holder};
    if owner_code::login_is_superuser(tx)? {
        let names = owner_code::movable(tx, Holder::Door)?;
        owner_code::lock_still(tx, &names, lock_timeout)?;
    }
    open_prepared(tx).map_err(|e| crate::sql_err("making the door ready", &e))
}

fn open_prepared(tx: &mut Transaction<'_>) -> Result<(), postgres::Error> {
    for (name, sql) in [(PREPARED, DEPENDENCIES), (PREPARED_SUSPECT, SUSPECT)] {
        let there = tx.query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_prepared_statements p \
             WHERE p.name OPERATOR(pg_catalog.=) $1::pg_catalog.text)",
            &[&name],
        )?;
        if !there.get::<_, bool>(0) {
            let sql = sql.replace("@ATTACHED@", attached::CTE);
            tx.batch_execute(&format!("PREPARE {name} AS {sql}"))?;
        }
    }
    // The relations whose own attached code a role defines, once a transaction (the
    // door's quick test compares each question's relations, their ancestors and
    // descendants with them; a relation made since, above the highest oid seen, is
    // suspect too). Local to the transaction, as the door's questions are.
    let row = tx.query_one(attached::TAINTED, &[])?;
    let (tainted, seen): (Vec<u32>, u32) = (row.get(0), row.get(1));
    let tainted: Vec<String> = tainted.iter().map(u32::to_string).collect();
    tx.batch_execute(&format!(
        "SET LOCAL airlock.door_tainted = '{{{}}}'; SET LOCAL airlock.door_seen = '{seen}'",
        tainted.join(",")
    ))?;
    Ok(())
}

/// The setting that bounds each question of the data (`--predict-timeout`): local to
/// the caller's transaction or savepoint, and made the question's own
/// `statement_timeout` only for the question ([`TIMED`]). airlock's own statements
/// around it (the proof, the savepoints, the catalog's questions) are never bounded
/// by it: a bound of a few milliseconds on them cuts one short on a busy server, and
/// a cut `SAVEPOINT` or `ROLLBACK TO` ends the whole transaction, every later
/// question with it (a plan on CI's loaded machine said GO, "not predictable here
/// (current transaction is aborted)").
pub(crate) const QUESTION_TIMEOUT: &str = "airlock.question_timeout";

/// The question's bound, inside its savepoint: [`QUESTION_TIMEOUT`] made the
/// savepoint's `statement_timeout` when it is set (none else: the session's).
const TIMED: &str = "SELECT pg_catalog.set_config('statement_timeout', t.s, true) \
  FROM (SELECT pg_catalog.current_setting('airlock.question_timeout', true) AS s) AS t \
  WHERE t.s OPERATOR(pg_catalog.<>) ''";

/// How many times airlock ends a savepoint whose end was cut short: a bound of a few
/// milliseconds that fired at the end of a question can cancel the statement after it
/// (PostgreSQL keeps a statement timeout that fired until its next check), and a
/// second end always finds the savepoint there to roll back to.
const END_TRIES: usize = 3;

/// Whether `e` is a question cut short: by its bound (`statement_timeout`) or by a
/// lock it waited for (`lock_timeout`): "cannot tell in time", never an answer.
pub(crate) fn cut_short(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::QUERY_CANCELED | &SqlState::LOCK_NOT_AVAILABLE)
    )
}

/// Roll back to savepoint `name` and release it, again when a bound that fired at the
/// end of the question before cancels it ([`END_TRIES`]).
pub(crate) fn end_savepoint(tx: &mut Transaction<'_>, name: &str) -> Result<(), postgres::Error> {
    let sql = format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}");
    let mut tries = 1;
    loop {
        match tx.batch_execute(&sql) {
            Err(e) if cut_short(&e) && tries < END_TRIES => tries += 1,
            other => return other,
        }
    }
}

/// The proof of `sql`: the probe view is the question itself (its columns named
/// uniquely), left in its savepoint, read-only with `row_security` off, when the proof
/// finds nothing: the caller reads it and ends the savepoint ([`end_savepoint`]). One round
/// trip: the savepoint, the event-trigger guard, the probe view, its dependencies
/// and the settings go in one message; a failure rolls the savepoint back in a
/// second.
fn probe(tx: &mut Transaction<'_>, sql: &str) -> Result<Option<CannotTell>, postgres::Error> {
    let batch = format!(
        "SAVEPOINT {SAVEPOINT}; {EVENT_GUARD}; CREATE TEMPORARY VIEW {PROBE} AS {sql}; \
         EXECUTE {PREPARED_SUSPECT}; SET LOCAL transaction_read_only = on; SET LOCAL row_security = off"
    );
    let got = match tx.simple_query(&batch) {
        Ok(got) => got,
        Err(e) => {
            end_savepoint(tx, SAVEPOINT)?;
            let message = e.as_db_error().map(|d| d.message().to_string());
            if let Some(m) = message.as_deref() {
                if let Some(i) = m.find("airlock-door event trigger ") {
                    let what = m[i + "airlock-door ".len()..].trim_end_matches('"');
                    return Ok(Some(format!(
                        "cannot tell here ({what} would run on airlock's probe)"
                    )));
                }
            }
            // Cut short (a lock another session holds, the timeout): the question's
            // own answer, "cannot tell in time".
            if cut_short(&e) {
                return Err(e);
            }
            return Ok(Some(format!("{UNPROVABLE}{})", pg_message(&e))));
        }
    };
    if !got
        .iter()
        .any(|m| matches!(m, postgres::SimpleQueryMessage::Row(_)))
    {
        return Ok(None);
    }
    // Something is there: name it (still in the savepoint, the probe view in place).
    let described = tx.simple_query(&format!("EXECUTE {PREPARED}"));
    if described.is_err() {
        end_savepoint(tx, SAVEPOINT)?;
    }
    let named: Vec<String> = described?
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(format!(
                "{}, which role {} defines",
                r.get(0).unwrap_or("?"),
                r.get(1).unwrap_or("?")
            )),
            _ => None,
        })
        .collect();
    end_savepoint(tx, SAVEPOINT)?;
    if named.is_empty() {
        return Ok(Some(
            "cannot tell here (it depends on something not built in that airlock could not name)"
                .into(),
        ));
    }
    Ok(Some(format!(
        "cannot tell here (it calls {}; airlock runs nothing a database role defines)",
        named.join("; ")
    )))
}

/// Ask `sql` (no parameters; each column named uniquely) of the target's data: made
/// the probe view, proven, then read from that view in the proof's savepoint,
/// read-only with `row_security` off, and rolled back. `Ok(Err(why))`: not asked, and
/// why.
pub(crate) fn ask(
    tx: &mut Transaction<'_>,
    sql: &str,
) -> Result<Result<Vec<postgres::Row>, CannotTell>, postgres::Error> {
    if let Some(why) = probe(tx, sql)? {
        return Ok(Err(why));
    }
    // The question is read from the proven view: its rewrite rule holds the objects
    // the proof read, so nothing is resolved again (a role that plants an operator
    // between the proof and the question changes nothing). Only the read is bounded
    // by the question's timeout ([`TIMED`]).
    let r = tx
        .batch_execute(TIMED)
        .and_then(|()| tx.query("SELECT * FROM pg_temp.airlock_door_probe", &[]));
    end_savepoint(tx, SAVEPOINT)?;
    r.map(Ok)
}

/// The savepoint [`run_proven`] runs in.
const RUN: &str = "airlock_door_run";

/// A DO block of airlock's own that evaluates `sql` (already proven by [`ask`] on
/// the same expressions), in a read-only savepoint with `row_security` off, bounded
/// as a question ([`TIMED`]), rolled back: its error, if any.
pub(crate) fn run_proven(tx: &mut Transaction<'_>, body: &str) -> Result<(), postgres::Error> {
    tx.batch_execute(&format!("SAVEPOINT {RUN}"))?;
    let r = tx
        .batch_execute("SET LOCAL transaction_read_only = on; SET LOCAL row_security = off")
        .and_then(|()| tx.batch_execute(TIMED))
        .and_then(|()| tx.batch_execute(body));
    end_savepoint(tx, RUN)?;
    r
}
