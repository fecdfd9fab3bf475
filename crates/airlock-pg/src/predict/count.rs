//! Counting what a statement destroys in a table the release names (rows exact below
//! [`EXACT_BELOW`], else the planner's estimate; bytes), and reading a constraint's
//! definition from the catalog for `VALIDATE CONSTRAINT`.

use super::ask::{self, Answer, Fixed};
use super::catalog::qualified;
use super::state::{self, Walk};
use super::{reach, Destroyed, Predictions, EXACT_BELOW};
use crate::pg_message;
use airlock_sql::{DataStep, Relation, Step};
use postgres::Transaction;

/// The estimated rows and the bytes of table `$1`.
pub(super) const SIZE: Fixed = Fixed::new(
    "SELECT c.reltuples::bigint, pg_catalog.pg_total_relation_size(c.oid) \
     FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)",
);

/// Constraint `$2` of table `$1`: its kind, validity, expression, referenced table
/// (schema, name), match type, columns here and there, and whether it calls a
/// function or operator the database defines.
pub(super) const CONSTRAINT: Fixed = Fixed::new(
    "SELECT k.contype::pg_catalog.text, k.convalidated, pg_catalog.pg_get_expr(k.conbin, k.conrelid), \
       (SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
          ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid OPERATOR(pg_catalog.=) k.confrelid), \
       k.confmatchtype::pg_catalog.text, \
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid \
               AND a.attnum OPERATOR(pg_catalog.=) u.n ORDER BY u.i), \
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.confrelid \
               AND a.attnum OPERATOR(pg_catalog.=) u.n ORDER BY u.i), \
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
               WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass \
               AND d.objid OPERATOR(pg_catalog.=) k.oid AND d.refobjid OPERATOR(pg_catalog.>=) 16384 \
               AND d.refclassid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_proc'::pg_catalog.regclass, \
                 'pg_catalog.pg_operator'::pg_catalog.regclass]::pg_catalog.oid[])), \
       (SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) k.confrelid) \
     FROM pg_catalog.pg_constraint k \
     WHERE k.conrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND k.conname OPERATOR(pg_catalog.=) $2",
);

/// Rows (exact below [`EXACT_BELOW`] estimated, else the estimate) and bytes.
pub(super) fn count_rows(
    tx: &mut Transaction<'_>,
    r: &Relation,
) -> Result<Option<(i64, bool, i64)>, postgres::Error> {
    let got = ask::rows(tx, SIZE, &[qualified(r).as_str()])?;
    let Some(row) = got.first() else {
        return Ok(None);
    };
    let (estimate, bytes): (i64, i64) = (row.get(0), row.get(1));
    if (0..EXACT_BELOW).contains(&estimate) || estimate < 0 {
        let n = ask::data(
            tx,
            &format!("SELECT pg_catalog.count(*) FROM {}", qualified(r)),
        )?;
        return Ok(match n {
            Ok(n) => Some((n[0].get(0), true, bytes)),
            // Not a plain table (a policy, a foreign partition…): the estimate.
            Err(_) => Some((estimate.max(0), false, bytes)),
        });
    }
    Ok(Some((estimate, false, bytes)))
}

fn note_of(e: &postgres::Error, what: &str) -> String {
    if crate::door::cut_short(e) {
        format!("cannot {what} in time (--predict-timeout)")
    } else {
        format!("not counted ({})", pg_message(e))
    }
}

/// What a DROP TABLE, DROP COLUMN, TRUNCATE, DELETE or UPDATE takes, counted (and, for
/// a DROP TABLE or TRUNCATE, what it takes with it, or the prediction that it fails).
pub(super) fn destroyed(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    tier: &str,
    s: &DataStep,
    out: &mut Predictions,
) -> Vec<Destroyed> {
    let t = w.key(&s.relation);
    if w.fills_only_added(&t, s) {
        // A backfill of the release's own columns: no value it writes was there before.
        w.wrote(t, s);
        return vec![];
    }
    let (schema, name) = (t.schema.clone().unwrap_or_default(), t.name.clone());
    let mut d = match &s.step {
        Step::DropColumn { column, .. } => state::destroyed(
            tier,
            s,
            format!("{} column {}", s.relation, airlock_sql::shown(column)),
            &[&schema, &name, column],
        ),
        _ => state::destroyed(tier, s, s.relation.to_string(), &[&schema, &name]),
    };
    let unpredictable = w.unpredictable(std::slice::from_ref(&t));
    if unpredictable.is_none() {
        if let Some(gone) = missing(w, tx, (tier, s), &t, d.clone(), out) {
            return gone;
        }
    }
    // The rows other tables reference, for a DELETE judged on the rows there now.
    let deletes = match &s.step {
        Step::DeleteAll => Some(None),
        Step::Filtered {
            delete: true,
            filter: Some(f),
            functions,
            ..
        } if w.cat.all_builtin(functions) => Some(Some(f.clone())),
        _ => None,
    }
    .filter(|_| unpredictable.is_none() && w.exists(tx, &t).unwrap_or(false));
    if let Some(filter) = &deletes {
        super::referenced::judge(w, tx, tier, s, &t, filter.as_deref(), out);
    }
    let filtered = match &s.step {
        Step::Filtered {
            filter,
            pinned,
            functions,
            ..
        } => Some((filter, pinned, functions)),
        _ => None,
    };
    let mut keep = true;
    if let Some(why) = unpredictable {
        d.note = Some(why.replace("not predictable here", "not counted"));
        // Its rows are not the target's by then, but the table is there now.
        d.existing = w.exists(tx, &t).unwrap_or(false);
    } else if let Some((filter, pinned, functions)) = filtered {
        keep = count_filtered(w, tx, &t, (filter, pinned, functions), &mut d);
    } else {
        match count_rows(tx, &t) {
            Ok(Some((rows, exact, bytes))) => {
                d.existing = true;
                d.rows = Some(rows);
                d.exact = exact;
                d.bytes = (!matches!(s.step, Step::DropColumn { .. })).then_some(bytes);
            }
            Ok(None) => d.note = Some("not there now".into()),
            Err(e) => d.note = Some(note_of(&e, "count")),
        }
    }
    if d.existing {
        match &s.step {
            Step::DropTable { cascade, .. } => {
                reach::drop_table(w, tx, (tier, s), *cascade, &mut d, out)
            }
            Step::Truncate { cascade } => reach::truncate(w, tx, (tier, s), *cascade, &mut d, out),
            _ => {}
        }
    }
    if !matches!(s.step, Step::DropColumn { .. }) {
        w.wrote(t, s);
    }
    if keep {
        vec![d]
    } else {
        vec![]
    }
}

/// A DROP TABLE or DROP COLUMN of what is not there at its point in the release (the
/// rows there now decide it): `Some` with what it destroys (nothing, or `d` noted),
/// having pushed the prediction that it fails when nothing earlier makes it.
fn missing(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    (tier, s): (&str, &DataStep),
    t: &Relation,
    mut d: Destroyed,
    out: &mut Predictions,
) -> Option<Vec<Destroyed>> {
    match &s.step {
        Step::DropTable { if_exists, .. } => {
            let p = match w.exists(tx, t) {
                Ok(false) if !if_exists => {
                    w.missing(tier, s, d.object.clone(), "the table is not there now")?
                }
                Ok(true) => {
                    let (what, drop) = not_a_table(w, tx, t)?;
                    let why = format!(
                        "{} is {what}, not a table: the DROP fails ({drop} drops it)",
                        d.object
                    );
                    w.fails(tier, s, d.object.clone(), why)?
                }
                _ => return None,
            };
            out.predictions.push(p);
            Some(vec![])
        }
        Step::DropColumn { column, if_exists } => match column_gone(w, tx, t, column) {
            Some(why) if *if_exists || why == ADDED => Some(vec![]),
            Some(why) => {
                let what = match why {
                    "not there now" => "the column is not there now",
                    _ => "the release drops the column earlier",
                };
                match w.missing(tier, s, d.object.clone(), what) {
                    Some(p) => {
                        out.predictions.push(p);
                        Some(vec![])
                    }
                    None => {
                        d.note = Some(why.into());
                        Some(vec![d])
                    }
                }
            }
            None => {
                w.dropped_columns.insert((t.clone(), column.clone()));
                None
            }
        },
        _ => None,
    }
}

/// What relation `t`, there now, is when it is not a table (DROP TABLE fails on it,
/// IF EXISTS or not), and the DROP that drops it: from the catalog read once for the
/// release, else asked. `None`: a table, or not asked.
fn not_a_table(
    w: &Walk,
    tx: &mut Transaction<'_>,
    t: &Relation,
) -> Option<(&'static str, &'static str)> {
    let kind = match w.cat.relation_kind(t) {
        Some(k) => k.to_string(),
        None => {
            let rows = ask::rows(tx, state::RELATION_KIND, &[&qualified(t)]).ok()?;
            rows.first()?.get(0)
        }
    };
    match kind.as_str() {
        "v" => Some(("a view", "DROP VIEW")),
        "m" => Some(("a materialized view", "DROP MATERIALIZED VIEW")),
        "i" | "I" => Some(("an index", "DROP INDEX")),
        "S" => Some(("a sequence", "DROP SEQUENCE")),
        "f" => Some(("a foreign table", "DROP FOREIGN TABLE")),
        "c" => Some(("a composite type", "DROP TYPE")),
        _ => None,
    }
}

const ADDED: &str = "the release adds it: no value of it was there before";

/// Why a DROP COLUMN of `column` of `t` destroys nothing of the target's, judged from
/// the catalog at its point in the release: the release added the column, or dropped
/// it already, or it is not there now. `None`: it is there, with the target's values.
fn column_gone(
    w: &Walk,
    tx: &mut Transaction<'_>,
    t: &Relation,
    column: &str,
) -> Option<&'static str> {
    let key = (t.clone(), column.to_string());
    if w.added.contains(&key) {
        return Some(ADDED);
    }
    if w.dropped_columns.contains(&key) {
        return Some("the release drops it earlier");
    }
    match w.exists(tx, t) {
        Ok(true) => {}
        Ok(false) => return Some("not there now"),
        Err(_) => return None,
    }
    match ask::rows(tx, super::catalog::COLUMN, &[&qualified(t), column]) {
        Ok(rows) if rows.is_empty() => Some("not there now"),
        _ => None,
    }
}

/// A DELETE or UPDATE with a WHERE: one that pins a unique key of the table changes at
/// most a row per key (not listed: false); else the rows its plain WHERE matches,
/// counted exactly.
fn count_filtered(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    t: &Relation,
    (filter, pinned, functions): (&Option<String>, &Vec<String>, &Vec<String>),
    d: &mut Destroyed,
) -> bool {
    match w.exists(tx, t) {
        Ok(true) => {}
        Ok(false) => {
            d.note = Some("not there now".into());
            return true;
        }
        Err(e) => {
            d.note = Some(note_of(&e, "count"));
            return true;
        }
    }
    if let Ok(keys) = w.cat.keys(tx, t) {
        if keys
            .unique
            .iter()
            .any(|k| k.iter().all(|c| pinned.contains(c)))
        {
            return false;
        }
    }
    d.existing = true;
    let Some(f) = filter.as_ref().filter(|_| w.cat.all_builtin(functions)) else {
        d.note = Some(
            "not counted (its WHERE is not a plain expression over the table's columns)".into(),
        );
        return true;
    };
    let got = ask::data(
        tx,
        &format!("SELECT pg_catalog.count(*) FROM {} WHERE {f}", qualified(t)),
    );
    match got {
        Ok(Ok(r)) => {
            d.rows = Some(r[0].get(0));
            d.exact = true;
        }
        Ok(Err(Answer::Unasked(why) | Answer::Barred(why))) => {
            d.note = Some(format!("not counted: {why}"))
        }
        Ok(Err(_)) => d.note = Some("not counted".into()),
        Err(e) => d.note = Some(note_of(&e, "count")),
    }
    true
}

/// A constraint of table `t` as the catalog holds it, as the step that adds it valid
/// (`Err`: an answer already — valid, or not a form asked about).
pub(super) fn constraint_in_catalog(
    tx: &mut Transaction<'_>,
    t: &Relation,
    name: &str,
) -> Result<Option<Result<Step, Answer>>, postgres::Error> {
    let got = ask::rows(tx, CONSTRAINT, &[qualified(t).as_str(), name])?;
    let Some(r) = got.first() else {
        return Ok(None);
    };
    let (kind, valid): (String, bool) = (r.get(0), r.get(1));
    if valid {
        return Ok(Some(Err(Answer::Rows {
            count: Some(0),
            keys: vec![],
            what: "the constraint is valid already".into(),
        })));
    }
    let user_code: bool = r.get(7);
    Ok(Some(match kind.as_str() {
        "c" if user_code => Err(Answer::Barred(
            "cannot tell here (the CHECK calls a function or operator the database defines; airlock runs nothing a database role defines)".into(),
        )),
        "c" => Ok(Step::Check {
            name: Some(name.to_string()),
            expr: r.get(2),
            functions: vec![],
            not_valid: false,
        }),
        "f" => Ok(Step::ForeignKey {
            name: Some(name.to_string()),
            columns: r.get(5),
            references: Relation {
                schema: r.get(3),
                name: r.get::<_, Option<String>>(8).unwrap_or_default(),
            },
            ref_columns: r.get(6),
            match_full: r.get::<_, String>(4) == "f",
            not_valid: false,
        }),
        _ => Err(Answer::unasked("a constraint of a kind not asked about")),
    }))
}
