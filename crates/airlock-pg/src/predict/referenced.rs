//! A DELETE of rows other tables reference through a foreign key: with `ON DELETE NO
//! ACTION` or `RESTRICT` the statement fails on the first such row (a prediction,
//! `fails`, naming the referencing rows); with `ON DELETE CASCADE` those rows go with
//! it (a destruction of the referencing table, counted). The story it guards: a
//! rollback's `DELETE` of the rows a release seeded, after the application wrote rows
//! referencing them.
//!
//! Invariant: the foreign keys come from a fixed question of the catalog; the rows from
//! one question of the data through the door, asked only when the DELETE's WHERE is a
//! plain expression of built-in functions, and only of a referencing table the release
//! has not dropped or changed before the statement.

use super::ask::{self, Answer, Fixed};
use super::catalog::qualified;
use super::state::{destroyed, prediction, settle, Walk};
use super::Predictions;
use crate::quote_ident;
use airlock_sql::{DataStep, Relation};
use postgres::Transaction;

/// The foreign keys referencing table `$1`: the referencing table's schema and name,
/// the constraint, its ON DELETE action, its columns and the referenced ones, in order.
pub(super) const FOREIGN_KEYS: Fixed = Fixed::new(
    "SELECT n.nspname, r.relname, k.conname, k.confdeltype, \
       ARRAY(SELECT a.attname FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(num, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid \
              AND a.attnum OPERATOR(pg_catalog.=) u.num ORDER BY u.i), \
       ARRAY(SELECT a.attname FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(num, i) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.confrelid \
              AND a.attnum OPERATOR(pg_catalog.=) u.num ORDER BY u.i) \
     FROM pg_catalog.pg_constraint k \
     JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) k.conrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) r.relnamespace \
     WHERE k.contype OPERATOR(pg_catalog.=) 'f' \
       AND k.confrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) \
       AND k.conrelid OPERATOR(pg_catalog.<>) k.confrelid \
     ORDER BY 1, 2, 3",
);

/// The DELETE `s` of table `t` (its WHERE `filter`, `None`: every row): what the rows
/// referencing the deleted ones make of it.
pub(super) fn judge(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    tier: &str,
    s: &DataStep,
    t: &Relation,
    filter: Option<&str>,
    out: &mut Predictions,
) {
    let Ok(fks) = ask::rows(tx, FOREIGN_KEYS, &[qualified(t).as_str()]) else {
        return;
    };
    for fk in fks {
        let child = Relation {
            schema: Some(fk.get::<_, String>(0)),
            name: fk.get(1),
        };
        if w.unpredictable(std::slice::from_ref(&child)).is_some() {
            continue;
        }
        let (name, action): (String, i8) = (fk.get(2), fk.get(3));
        let action = (action as u8 as char).to_string();
        let (columns, referenced): (Vec<String>, Vec<String>) = (fk.get(4), fk.get(5));
        let q = qualified(t);
        let cq = qualified(&child);
        let joined: Vec<String> = columns
            .iter()
            .zip(&referenced)
            .map(|(c, r)| format!("{q}.{} = airlock_child.{}", quote_ident(r), quote_ident(c)))
            .collect();
        let filter = filter.map_or(String::new(), |f| format!("({f}) AND "));
        let (key, keyed_by) = match w.cat.keys(tx, &child) {
            Ok(k) => match k.primary.as_ref().filter(|pk| !pk.is_empty()) {
                Some(pk) => (
                    ask::key_expr(pk, "airlock_child."),
                    pk.iter()
                        .map(|c| airlock_sql::shown(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                None => (
                    crate::door::text_of("airlock_child.ctid"),
                    "ctid".to_string(),
                ),
            },
            Err(_) => continue,
        };
        let select = format!(
            "SELECT {key} FROM {cq} AS airlock_child WHERE EXISTS (SELECT FROM {q} WHERE {filter}{})",
            joined.join(" AND ")
        );
        match action.as_str() {
            // NO ACTION, RESTRICT: the DELETE fails on a referencing row.
            "a" | "r" => {
                let p = prediction(tier, s, s.relation.to_string());
                let answer = ask::keyed(
                    tx,
                    &select,
                    format!(
                        "rows of {} reference rows it deletes (foreign key {}, ON DELETE {}): the DELETE fails on them (keys: {keyed_by})",
                        child,
                        airlock_sql::shown(&name),
                        if action == "a" { "NO ACTION" } else { "RESTRICT" }
                    ),
                );
                out.predictions.push(settle(p, answer));
            }
            // CASCADE: they go with it.
            "c" => cascaded(tx, (tier, s), &child, &name, &select, out),
            _ => {}
        }
    }
}

/// The rows an `ON DELETE CASCADE` takes with the DELETE `s`: a destruction of the
/// referencing table, counted by `select` (one key a referencing row).
fn cascaded(
    tx: &mut Transaction<'_>,
    (tier, s): (&str, &DataStep),
    child: &Relation,
    name: &str,
    select: &str,
    out: &mut Predictions,
) {
    let object = [child.schema.as_deref().unwrap_or_default(), &child.name];
    let mut d = destroyed(tier, s, child.to_string(), &object);
    d.existing = true;
    match ask::keyed(tx, select, String::new()) {
        Ok(Answer::Rows { count, .. }) => {
            d.rows = count;
            d.exact = count.is_some();
            d.note = Some(format!(
                "rows referencing the deleted ones, through foreign key {} ON DELETE CASCADE",
                airlock_sql::shown(name)
            ));
        }
        Ok(Answer::Unasked(why) | Answer::Barred(why) | Answer::Cut { why, .. }) => {
            d.note = Some(why.replace("not predictable here", "not counted"))
        }
        Err(e) => d.note = Some(format!("not counted ({})", crate::pg_message(&e))),
    }
    if d.rows != Some(0) {
        out.destroys.push(d);
    }
}
