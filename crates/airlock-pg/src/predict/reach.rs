//! What a DROP … CASCADE (TABLE, SCHEMA, TYPE) or TRUNCATE … CASCADE takes with it,
//! read from `pg_depend` as PostgreSQL follows it (views through their rules, foreign
//! keys of other tables, owned sequences, columns of a dropped type…), and whether the
//! statement without CASCADE would fail for it.
//!
//! Invariant: what a cascade reaches beyond the object the release names is sized
//! from the catalog's statistics only (never read, never locked); what the release
//! itself dropped, altered or replaced before the statement is not held against it.

use super::ask::{self, Fixed};
use super::catalog::qualified;
use super::state::{self, Walk};
use super::{Dependent, Destroyed, Outcome, Predictions, DEPENDENTS_SHOWN};
use crate::pg_message;
use airlock_sql::{DataStep, Relation};
use postgres::Transaction;

/// One object the cascade reaches.
pub(super) struct Reached {
    pub what: String,
    /// Reached only through a dependency that needs CASCADE (a view, another table's
    /// foreign key, a column of the type): without CASCADE the statement fails.
    pub needs_cascade: bool,
    pub kind: Kind,
    /// Schema, object (table, function, type) and, for a column or a constraint, its
    /// name.
    pub schema: String,
    pub name: String,
    pub sub: Option<String>,
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A relation that holds rows (table, partitioned table, materialized view).
    Data,
    /// A view, sequence, foreign table, function, type…
    Object,
    Column,
    Constraint,
}

/// Where the walk starts: the pg_depend identity of the object dropped.
pub(super) enum Start<'a> {
    Relation(&'a str),
    Schema(&'a str),
    Type(&'a str),
}

/// What dropping object `$2` of catalog `$1` reaches, as PostgreSQL follows it.
pub(super) const DEPENDENTS: Fixed = Fixed::new(
    "WITH RECURSIVE reach(classid, objid, objsubid, need) AS ( \
    SELECT d.classid, d.objid, d.objsubid, d.deptype OPERATOR(pg_catalog.=) 'n' FROM pg_catalog.pg_depend d \
    WHERE d.refclassid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass \
      AND d.refobjid OPERATOR(pg_catalog.=) $2::pg_catalog.oid \
      AND d.deptype OPERATOR(pg_catalog.=) ANY ('{n,a,i}'::pg_catalog.\"char\"[]) \
  UNION \
    SELECT x.classid, x.objid, x.objsubid, r.need OR x.n FROM reach r CROSS JOIN LATERAL ( \
      SELECT d.classid, d.objid, d.objsubid, d.deptype OPERATOR(pg_catalog.=) 'n' AS n FROM pg_catalog.pg_depend d \
      WHERE d.refclassid OPERATOR(pg_catalog.=) r.classid AND d.refobjid OPERATOR(pg_catalog.=) r.objid \
        AND (r.objsubid OPERATOR(pg_catalog.=) 0 OR d.refobjsubid OPERATOR(pg_catalog.=) r.objsubid) \
        AND d.deptype OPERATOR(pg_catalog.=) ANY ('{n,a,i}'::pg_catalog.\"char\"[]) \
      UNION ALL \
      SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, w.ev_class, 0, false FROM pg_catalog.pg_rewrite w \
      WHERE r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
        AND w.oid OPERATOR(pg_catalog.=) r.objid) x \
), seen AS ( \
  SELECT classid, objid, objsubid, pg_catalog.bool_and(need) AS need FROM reach \
  WHERE NOT (classid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND objid OPERATOR(pg_catalog.=) $2::pg_catalog.oid) \
  GROUP BY 1, 2, 3 LIMIT 5000 \
) \
SELECT s.classid::pg_catalog.regclass::pg_catalog.text, s.need, \
  pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid), \
  c.relkind::pg_catalog.text, COALESCE(cn.nspname, kn.nspname, pn.nspname, tn.nspname)::pg_catalog.text, \
  COALESCE(c.relname, kc.relname, p.proname, t.typname)::pg_catalog.text, \
  COALESCE(a.attname, k.conname)::pg_catalog.text, \
  COALESCE(c.reltuples, kc.reltuples)::bigint, \
  (c.relpages::bigint OPERATOR(pg_catalog.*) pg_catalog.current_setting('block_size')::bigint), \
  (t.typrelid OPERATOR(pg_catalog.<>) 0 OR t.typcategory OPERATOR(pg_catalog.=) 'A'), \
  COALESCE(k.conrelid, tg.tgrelid, ad.adrelid, 0)::bigint, s.objid::bigint, s.objsubid, \
  COALESCE(tg.tgisinternal, false) \
FROM seen s \
LEFT JOIN pg_catalog.pg_class c ON s.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
  AND c.oid OPERATOR(pg_catalog.=) s.objid \
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) c.relnamespace \
LEFT JOIN pg_catalog.pg_attribute a ON s.objsubid OPERATOR(pg_catalog.>) 0 AND a.attrelid OPERATOR(pg_catalog.=) c.oid \
  AND a.attnum OPERATOR(pg_catalog.=) s.objsubid \
LEFT JOIN pg_catalog.pg_constraint k ON s.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass \
  AND k.oid OPERATOR(pg_catalog.=) s.objid \
LEFT JOIN pg_catalog.pg_class kc ON kc.oid OPERATOR(pg_catalog.=) k.conrelid \
LEFT JOIN pg_catalog.pg_namespace kn ON kn.oid OPERATOR(pg_catalog.=) COALESCE(kc.relnamespace, k.connamespace) \
LEFT JOIN pg_catalog.pg_proc p ON s.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
  AND p.oid OPERATOR(pg_catalog.=) s.objid \
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid OPERATOR(pg_catalog.=) p.pronamespace \
LEFT JOIN pg_catalog.pg_type t ON s.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass \
  AND t.oid OPERATOR(pg_catalog.=) s.objid \
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.typnamespace \
LEFT JOIN pg_catalog.pg_trigger tg ON s.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass \
  AND tg.oid OPERATOR(pg_catalog.=) s.objid \
LEFT JOIN pg_catalog.pg_attrdef ad ON s.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass \
  AND ad.oid OPERATOR(pg_catalog.=) s.objid \
ORDER BY 3",
);

/// The oid (as text) of relation `$1`, of schema `$1`, of type `$1`.
pub(super) const RELATION_OID: Fixed = Fixed::new(
    "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid::pg_catalog.int8::pg_catalog.text",
);
pub(super) const SCHEMA_OID: Fixed = Fixed::new(
    "SELECT (SELECT ns.oid FROM pg_catalog.pg_namespace ns WHERE ns.nspname OPERATOR(pg_catalog.=) $1)\
     ::pg_catalog.oid::pg_catalog.int8::pg_catalog.text",
);
pub(super) const TYPE_OID: Fixed = Fixed::new(
    "SELECT pg_catalog.to_regtype($1)::pg_catalog.oid::pg_catalog.int8::pg_catalog.text",
);

/// The tables whose foreign keys reference table `$1`, at any depth.
pub(super) const REFERENCING: Fixed = Fixed::new(
    "WITH RECURSIVE refs(oid) AS (SELECT pg_catalog.to_regclass($1)::pg_catalog.oid \
       UNION SELECT k.conrelid FROM pg_catalog.pg_constraint k JOIN refs r ON k.confrelid OPERATOR(pg_catalog.=) r.oid \
       WHERE k.contype OPERATOR(pg_catalog.=) 'f') \
     SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text, c.reltuples::bigint, \
       (c.relpages::bigint OPERATOR(pg_catalog.*) pg_catalog.current_setting('block_size')::bigint), \
       pg_catalog.format('table %s', c.oid::pg_catalog.regclass) \
     FROM refs r JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.oid \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
     WHERE r.oid OPERATOR(pg_catalog.<>) pg_catalog.to_regclass($1) ORDER BY 5 LIMIT 5000",
);

/// Whether type `$1` is there now.
pub(super) const TYPE_EXISTS: Fixed = Fixed::new("SELECT pg_catalog.to_regtype($1) IS NOT NULL");

/// The objects dropping `start` reaches (its own parts left out: indexes, TOAST, its
/// row type, the columns, constraints, triggers and defaults of what goes whole).
pub(super) fn dependents(
    tx: &mut Transaction<'_>,
    start: Start<'_>,
) -> Result<Vec<Reached>, postgres::Error> {
    let (class, oid_sql, name) = match start {
        Start::Relation(n) => ("pg_catalog.pg_class", RELATION_OID, n),
        Start::Schema(n) => ("pg_catalog.pg_namespace", SCHEMA_OID, n),
        Start::Type(n) => ("pg_catalog.pg_type", TYPE_OID, n),
    };
    let oid = ask::rows(tx, oid_sql, &[name])?;
    let Some(oid) = oid.first().and_then(|r| r.get::<_, Option<String>>(0)) else {
        return Ok(vec![]);
    };
    let got = ask::rows(tx, DEPENDENTS, &[class, &oid])?;
    // What goes whole takes its own parts with it.
    let whole: std::collections::BTreeSet<i64> = got
        .iter()
        .filter(|r| r.get::<_, String>(0) == "pg_class" && r.get::<_, i32>(12) == 0)
        .map(|r| r.get::<_, i64>(11))
        .chain(
            oid.parse::<i64>()
                .ok()
                .filter(|_| class == "pg_catalog.pg_class"),
        )
        .collect();
    Ok(got.iter().filter_map(|r| reached(r, &whole)).collect())
}

fn reached(r: &postgres::Row, whole: &std::collections::BTreeSet<i64>) -> Option<Reached> {
    let class: String = r.get(0);
    let relkind: Option<String> = r.get(3);
    let owner: i64 = r.get(10);
    let sub: i32 = r.get(12);
    let kind = match class.as_str() {
        "pg_class" if sub > 0 => {
            let table: i64 = r.get(11);
            if whole.contains(&table) {
                return None;
            }
            Kind::Column
        }
        "pg_class" => match relkind.as_deref() {
            Some("r" | "p" | "m") => Kind::Data,
            Some("i" | "I" | "t" | "c") | None => return None,
            _ => Kind::Object,
        },
        "pg_constraint" if whole.contains(&owner) => return None,
        "pg_constraint" => Kind::Constraint,
        "pg_type" if r.get::<_, Option<bool>>(9) == Some(true) => return None,
        "pg_trigger" if r.get::<_, bool>(13) => return None,
        "pg_trigger" | "pg_attrdef" | "pg_policy" if whole.contains(&owner) => return None,
        "pg_rewrite" | "pg_attrdef" | "pg_index" | "pg_depend" => return None,
        _ => Kind::Object,
    };
    let rows = r.get::<_, Option<i64>>(7).filter(|n| *n >= 0);
    Some(Reached {
        what: r.get(2),
        needs_cascade: r.get(1),
        kind,
        schema: r.get::<_, Option<String>>(4).unwrap_or_default(),
        name: r.get::<_, Option<String>>(5).unwrap_or_default(),
        sub: r.get(6),
        rows: matches!(kind, Kind::Data | Kind::Column)
            .then_some(rows)
            .flatten(),
        bytes: (kind == Kind::Data)
            .then(|| r.get::<_, Option<i64>>(8))
            .flatten(),
    })
}

impl Walk {
    /// A cascade took `x`: later statements do not find it, nor its rows.
    fn taken(&mut self, x: &Reached) {
        let rel = Relation {
            schema: Some(x.schema.clone()),
            name: x.name.clone(),
        };
        match (x.kind, &x.sub) {
            (Kind::Column, Some(c)) => drop(self.altered.insert((rel, c.clone()))),
            (Kind::Constraint, Some(c)) => drop(self.dropped_constraints.insert((rel, c.clone()))),
            (Kind::Data, _) => {
                self.dropped.insert(rel.clone());
                self.written.insert(rel, "a CASCADE".into());
            }
            _ => drop(self.dropped.insert(rel)),
        }
    }

    /// Whether the release already dropped, replaced or altered the object before.
    fn handled(&self, x: &Reached) -> bool {
        let rel = Relation {
            schema: Some(x.schema.clone()),
            name: x.name.clone(),
        };
        match (x.kind, &x.sub) {
            (Kind::Column, Some(c)) => {
                self.dropped.contains(&rel) || self.altered.contains(&(rel, c.clone()))
            }
            (Kind::Constraint, Some(c)) => {
                self.dropped.contains(&rel) || self.dropped_constraints.contains(&(rel, c.clone()))
            }
            _ => self.dropped.contains(&rel),
        }
    }
}

/// The dependents of `start` into the destruction entry, and the failure without
/// CASCADE as a prediction; returns what a CASCADE takes. The statement's own rows are
/// counted already.
fn judge(
    w: &Walk,
    tx: &mut Transaction<'_>,
    (tier, s): (&str, &DataStep),
    (start, cascade): (Start<'_>, bool),
    d: &mut Destroyed,
    out: &mut Predictions,
) -> Vec<Reached> {
    let got = match dependents(tx, start) {
        Ok(g) => g,
        Err(e) => {
            let why = if crate::door::cut_short(&e) {
                "cannot tell in time (--predict-timeout)".to_string()
            } else {
                pg_message(&e)
            };
            let note = format!("what it takes with it not read: {why}");
            d.note = Some(
                d.note
                    .take()
                    .map_or(note.clone(), |n| format!("{n}; {note}")),
            );
            return vec![];
        }
    };
    let left: Vec<Reached> = got.into_iter().filter(|x| !w.handled(x)).collect();
    let blocking: Vec<&Reached> = left.iter().filter(|x| x.needs_cascade).collect();
    if !cascade && !blocking.is_empty() {
        let mut p = state::prediction(tier, s, d.relation.clone());
        p.outcome = Outcome::Fails;
        p.count = Some(blocking.len() as i64);
        p.keys = blocking
            .iter()
            .take(ask::KEYS_SHOWN as usize)
            .map(|x| ask::shown_key(&x.what))
            .collect();
        p.reason = "object(s) depend on it and the statement has no CASCADE".into();
        out.predictions.push(p);
        return vec![];
    }
    if !cascade {
        return vec![];
    }
    listed(d, &left);
    left
}

/// What a cascade takes, into the destruction entry (the first [`DEPENDENTS_SHOWN`]).
fn listed(d: &mut Destroyed, left: &[Reached]) {
    d.dependents_total = left.len();
    d.dependents = left
        .iter()
        .take(DEPENDENTS_SHOWN)
        .map(|x| Dependent {
            what: x.what.clone(),
            rows: x.rows,
            bytes: x.bytes,
        })
        .collect();
}

/// DROP TABLE: what it takes with it (CASCADE), or that it fails without CASCADE.
pub(super) fn drop_table(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    at: (&str, &DataStep),
    cascade: bool,
    d: &mut Destroyed,
    out: &mut Predictions,
) {
    let t = w.key(&at.1.relation);
    for x in judge(
        w,
        tx,
        at,
        (Start::Relation(&qualified(&t)), cascade),
        d,
        out,
    ) {
        w.taken(&x);
    }
}

/// TRUNCATE: the tables whose foreign keys reference it (all truncated with CASCADE;
/// without it, one not truncated by the same statement makes it fail).
pub(super) fn truncate(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    (tier, s): (&str, &DataStep),
    cascade: bool,
    d: &mut Destroyed,
    out: &mut Predictions,
) {
    let t = w.key(&s.relation);
    let got = ask::rows(tx, REFERENCING, &[qualified(&t).as_str()]);
    let Ok(got) = got else {
        d.note = Some("the tables referencing it were not read".into());
        return;
    };
    let left: Vec<Reached> = got
        .iter()
        .map(|r| Reached {
            what: r.get(4),
            needs_cascade: true,
            kind: Kind::Data,
            schema: r.get(0),
            name: r.get(1),
            sub: None,
            rows: Some(r.get::<_, i64>(2)).filter(|n| *n >= 0),
            bytes: r.get(3),
        })
        .filter(|x| !w.handled(x))
        .filter(|x| {
            !w.same_statement.contains(&Relation {
                schema: Some(x.schema.clone()),
                name: x.name.clone(),
            })
        })
        .collect();
    if left.is_empty() {
        return;
    }
    if !cascade {
        let mut p = state::prediction(tier, s, d.relation.clone());
        p.outcome = Outcome::Fails;
        p.count = Some(left.len() as i64);
        p.keys = left
            .iter()
            .take(5)
            .map(|x| ask::shown_key(&x.what))
            .collect();
        p.reason = "table(s) reference it by foreign key and the statement has no CASCADE".into();
        out.predictions.push(p);
        return;
    }
    listed(d, &left);
    for x in &left {
        let t = Relation {
            schema: Some(x.schema.clone()),
            name: x.name.clone(),
        };
        w.wrote(t, s);
    }
}

/// DROP SCHEMA: everything in it (CASCADE; rows and bytes from the catalog's
/// statistics), or that it fails without CASCADE when it is not empty.
pub(super) fn drop_schema(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    (tier, s): (&str, &DataStep),
    cascade: bool,
    out: &mut Predictions,
) -> Vec<Destroyed> {
    let name = s.relation.name.clone();
    let mut d = state::destroyed(tier, s, airlock_sql::shown(&name), &[&name]);
    if let Some(why) = w.unpredictable(&[Relation {
        schema: None,
        name: name.clone(),
    }]) {
        d.note = Some(why.replace("not predictable here", "not counted"));
        return vec![d];
    }
    if !w.cat.schema_exists(&name) {
        d.note = Some("not there now".into());
        return vec![d];
    }
    d.existing = true;
    let left = judge(
        w,
        tx,
        (tier, s),
        (Start::Schema(&name), cascade),
        &mut d,
        out,
    );
    let data = left.iter().filter(|x| x.kind == Kind::Data);
    d.rows = Some(data.clone().filter_map(|x| x.rows).sum());
    d.bytes = Some(data.filter_map(|x| x.bytes).sum());
    d.exact = false;
    for x in &left {
        w.taken(x);
    }
    vec![d]
}

/// DROP TYPE / DROP DOMAIN: the columns (and other objects) of that type, dropped with
/// CASCADE, or the failure without it; a type the release creates destroys nothing
/// of the target's.
pub(super) fn drop_type(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    (tier, s): (&str, &DataStep),
    cascade: bool,
    out: &mut Predictions,
) -> Vec<Destroyed> {
    let k = w.type_key(&s.relation);
    // A type renamed by the release is the target's (under its old name), even when
    // the release then creates one under that old name.
    let renamed = w.renamed.contains_key(&k);
    let original = w.original_type(&k);
    let schema = original.schema.clone().unwrap_or_default();
    let mut d = state::destroyed(tier, s, s.relation.to_string(), &[&schema, &original.name]);
    if !renamed && w.enums.contains_key(&k) {
        d.note = Some("not counted (the release creates it)".into());
        return vec![d];
    }
    if let Some(why) = w.unpredictable(&[]) {
        d.note = Some(why.replace("not predictable here", "not counted"));
        return vec![d];
    }
    let exists = ask::rows(tx, TYPE_EXISTS, &[qualified(&original).as_str()]);
    if !matches!(exists.as_deref(), Ok([r]) if r.get::<_, bool>(0)) {
        d.note = Some("not there now".into());
        return vec![d];
    }
    d.existing = true;
    let left = judge(
        w,
        tx,
        (tier, s),
        (Start::Type(&qualified(&original)), cascade),
        &mut d,
        out,
    );
    let columns = left.iter().filter(|x| x.kind == Kind::Column);
    d.rows = Some(columns.filter_map(|x| x.rows).sum());
    for x in &left {
        w.taken(x);
    }
    vec![d]
}
