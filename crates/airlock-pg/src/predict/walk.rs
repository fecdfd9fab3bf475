//! The release's data steps in run order, each judged on the rows there now unless an
//! earlier statement of the release made them say nothing about it: what the release
//! created, wrote, dropped, renamed or altered before is remembered here.

use super::ask::{self, Answer, Fk};
use super::catalog::{qualified, Catalog};
use super::{count, reach, Destroyed, Outcome, Prediction, Predictions};
use super::super::pg_message;
use airlock_sql::{DataStep, Relation, Step};
use postgres::error::SqlState;
use postgres::Transaction;
use std::collections::{BTreeMap, BTreeSet};

/// What the release did before the statement at hand.
#[derive(Default)]
pub(super) struct Walk {
    pub(super) cat: Catalog,
    /// Tables (and types) it created, by their schema-qualified name.
    created: BTreeMap<Relation, String>,
    /// Tables whose rows it changed (or dropped).
    pub(super) written: BTreeMap<Relation, String>,
    /// A DO block, CALL, EXECUTE or call of a function the database defines: it may
    /// change any row.
    opaque: Option<String>,
    /// Enum types it created, with their labels.
    pub(super) enums: BTreeMap<Relation, Vec<String>>,
    /// Types it renamed: the name now → the name in the target.
    renamed: BTreeMap<Relation, Relation>,
    /// Constraints it added NOT VALID, by (table, name).
    not_valid: BTreeMap<(Relation, String), Step>,
    /// Columns whose type it changed (table, column).
    pub(super) altered: BTreeSet<(Relation, String)>,
    /// Relations, views, functions… it dropped or replaced.
    pub(super) dropped: BTreeSet<Relation>,
    /// Constraints it dropped (table, name).
    pub(super) dropped_constraints: BTreeSet<(Relation, String)>,
    /// The tables the statement at hand names besides its own (a TRUNCATE of several).
    pub(super) same_statement: BTreeSet<Relation>,
}

pub(super) fn at(s: &DataStep) -> String {
    format!("{} at {}:{}", s.statement, s.file, s.line)
}

/// A prediction not yet answered.
pub(super) fn prediction(tier: &str, s: &DataStep, relation: String) -> Prediction {
    Prediction {
        tier: tier.into(),
        file: s.file.clone(),
        line: s.line,
        statement: s.statement.clone(),
        relation,
        outcome: Outcome::NotPredictable,
        count: None,
        keys: vec![],
        reason: String::new(),
    }
}

/// The prediction with what its question answered.
pub(super) fn settle(mut p: Prediction, answer: Result<Answer, postgres::Error>) -> Prediction {
    match answer {
        Ok(Answer::Unasked(why)) => p.reason = why,
        Ok(Answer::Rows { count, keys, what }) => {
            p.outcome = if count != Some(0) {
                Outcome::Fails
            } else {
                Outcome::Passes
            };
            p.count = count;
            p.keys = keys;
            p.reason = what;
        }
        Err(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {
            p.outcome = Outcome::TimedOut;
            p.reason =
                "cannot tell in time (the question was cut short by --predict-timeout)".into();
        }
        Err(e) => p.reason = format!("not predictable here ({})", pg_message(&e)),
    }
    p
}

impl Walk {
    pub(super) fn new(tx: &mut Transaction<'_>, steps: &[(String, DataStep)]) -> Walk {
        Walk {
            cat: Catalog::load(tx, steps),
            ..Walk::default()
        }
    }

    /// The relation as the statement names it, schema-qualified: an unqualified name
    /// is the table the release created in the current schema, else the one the
    /// search_path finds now, else (not there) the current schema's.
    pub(super) fn key(&self, r: &Relation) -> Relation {
        self.key_in(r, self.cat.relation_schema(r))
    }

    pub(super) fn type_key(&self, r: &Relation) -> Relation {
        self.key_in(r, self.cat.type_schema(r))
    }

    fn key_in(&self, r: &Relation, now: Option<Option<&str>>) -> Relation {
        if r.schema.is_some() || self.cat.current.is_empty() {
            return r.clone();
        }
        let here = Relation {
            schema: Some(self.cat.current.clone()),
            name: r.name.clone(),
        };
        if self.created.contains_key(&here) {
            return here;
        }
        match now {
            Some(Some(s)) => Relation {
                schema: Some(s.to_string()),
                name: r.name.clone(),
            },
            _ => here,
        }
    }

    /// Where a statement without a schema creates its object.
    fn created_key(&self, r: &Relation) -> Relation {
        if r.schema.is_some() || self.cat.current.is_empty() {
            return r.clone();
        }
        Relation {
            schema: Some(self.cat.current.clone()),
            name: r.name.clone(),
        }
    }

    /// Whether the relation is there now.
    pub(super) fn exists(
        &self,
        tx: &mut Transaction<'_>,
        r: &Relation,
    ) -> Result<bool, postgres::Error> {
        if let Some(s) = self.cat.relation_schema(r) {
            return Ok(s.is_some());
        }
        let got = ask::rows(
            tx,
            "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
            &[qualified(r).as_str()],
        )?;
        Ok(got.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    pub(super) fn run(
        mut self,
        tx: &mut Transaction<'_>,
        steps: Vec<(String, DataStep)>,
    ) -> Predictions {
        let mut out = Predictions::default();
        for (i, (tier, s)) in steps.iter().enumerate() {
            if self.remember(s) {
                continue;
            }
            match &s.step {
                Step::AlterType { .. } => super::cast::judge(&mut self, tx, tier, s, &mut out),
                Step::DropTable { .. } => {
                    // Every table one DROP names goes at once: none keeps another.
                    for (_, o) in steps[i..].iter().take_while(|(_, o)| same_statement(o, s)) {
                        if matches!(o.step, Step::DropTable { .. }) {
                            let k = self.key(&o.relation);
                            self.dropped.insert(k);
                        }
                    }
                    self.destroying(tx, tier, s, &mut out)
                }
                Step::Truncate { .. } => {
                    self.same_statement = steps[i..]
                        .iter()
                        .chain(steps[..i].iter().rev())
                        .filter(|(_, o)| same_statement(o, s))
                        .map(|(_, o)| self.key(&o.relation))
                        .collect();
                    self.destroying(tx, tier, s, &mut out);
                    self.same_statement.clear();
                }
                Step::DropColumn { .. }
                | Step::DropSchema { .. }
                | Step::DropType { .. }
                | Step::DeleteAll
                | Step::UpdateAll
                | Step::Filtered { .. } => self.destroying(tx, tier, s, &mut out),
                _ => {
                    let p = self.predicted(tx, tier, s);
                    out.predictions.push(p)
                }
            }
        }
        out
    }

    /// Steps that only change what the walk knows; true when `s` was one.
    fn remember(&mut self, s: &DataStep) -> bool {
        match &s.step {
            Step::Creates => {
                let k = self.created_key(&s.relation);
                self.created.insert(k, at(s));
            }
            Step::Writes => {
                let k = self.key(&s.relation);
                self.written.insert(k, at(s));
            }
            Step::Opaque => self.opaque = Some(at(s)),
            Step::Calls { functions } => {
                if let Some(f) = functions.iter().find(|f| !self.cat.builtin(f)) {
                    self.opaque = Some(format!(
                        "call of {f} at {}:{} (a function the database defines, or not there now)",
                        s.file, s.line
                    ));
                }
            }
            Step::CreateEnum { labels } => {
                let k = self.created_key(&s.relation);
                self.enums.insert(k.clone(), labels.clone());
                self.created.insert(k, at(s));
            }
            Step::RenameType { to } => {
                let old = self.type_key(&s.relation);
                let new = Relation {
                    schema: old.schema.clone(),
                    name: to.clone(),
                };
                let original = self.renamed.remove(&old).unwrap_or(old);
                self.renamed.insert(new, original);
            }
            Step::Touches => {
                let k = self.key(&s.relation);
                self.dropped.insert(k);
            }
            Step::DropConstraint { constraint } => {
                let k = self.key(&s.relation);
                self.dropped_constraints.insert((k, constraint.clone()));
            }
            Step::Check {
                not_valid: true,
                name,
                ..
            }
            | Step::ForeignKey {
                not_valid: true,
                name,
                ..
            } => {
                if let Some(n) = name {
                    let k = self.key(&s.relation);
                    self.not_valid.insert((k, n.clone()), s.step.clone());
                }
            }
            _ => return false,
        }
        true
    }

    /// The name of the type in the target (through the release's renames).
    pub(super) fn original_type(&self, k: &Relation) -> Relation {
        self.renamed.get(k).cloned().unwrap_or_else(|| k.clone())
    }

    /// Why the rows there now do not decide a statement on `names`, if they do not.
    pub(super) fn unpredictable(&self, names: &[Relation]) -> Option<String> {
        for n in names {
            if let Some(c) = self.created.get(n) {
                return Some(format!(
                    "not predictable here (the release creates it: {c}; rehearse runs it)"
                ));
            }
            if let Some(w) = self.written.get(n) {
                return Some(format!(
                    "not predictable here (the release changes its rows first: {w}; rehearse runs it)"
                ));
            }
        }
        self.opaque.as_ref().map(|o| {
            format!("not predictable here (an earlier {o} may change any row; rehearse runs it)")
        })
    }

    /// Mark a table's rows as changed by `s` from here on.
    pub(super) fn wrote(&mut self, t: Relation, s: &DataStep) {
        self.written.insert(t, at(s));
    }

    fn predicted(&mut self, tx: &mut Transaction<'_>, tier: &str, s: &DataStep) -> Prediction {
        let t = self.key(&s.relation);
        let p = prediction(tier, s, s.relation.to_string());
        let mut names = vec![t.clone()];
        if let Step::ForeignKey { references, .. } = &s.step {
            names.push(self.key(references));
        }
        if let Some(why) = self.unpredictable(&names) {
            return Prediction { reason: why, ..p };
        }
        let answer = match &s.step {
            Step::Validate { constraint } => self.validate(tx, &t, constraint),
            step => self.ask(tx, &t, step),
        };
        settle(p, answer)
    }

    /// The question that decides `step` on table `t` (schema-qualified), asked.
    fn ask(
        &mut self,
        tx: &mut Transaction<'_>,
        t: &Relation,
        step: &Step,
    ) -> Result<Answer, postgres::Error> {
        if !self.exists(tx, t)? {
            return Ok(Answer::unasked("the table is not there now"));
        }
        let q = qualified(t);
        let (key, keyed_by) = ask::row_key(self.cat.keys(tx, t)?.primary.as_ref());
        match step {
            Step::Unique { columns, primary } => ask::unique(tx, &q, columns, *primary),
            Step::SetNotNull { column } => {
                let c = super::super::quote_ident(column);
                ask::keyed(
                    tx,
                    &format!("SELECT {key} FROM {q} WHERE {c} IS NULL"),
                    format!("rows whose {c} is NULL (keys: {keyed_by})"),
                )
            }
            Step::AddNotNullColumn { .. } => ask::keyed(
                tx,
                &format!("SELECT {key} FROM {q}"),
                format!("rows that would get NULL in a NOT NULL column without a default (keys: {keyed_by})"),
            ),
            Step::Check {
                expr: Some(e),
                functions,
                ..
            } if self.cat.all_builtin(functions) => ask::keyed(
                tx,
                &format!("SELECT {key} FROM {q} WHERE NOT ({e})"),
                format!("rows that violate CHECK ({e}) (keys: {keyed_by})"),
            ),
            Step::Check { expr: Some(_), .. } => Ok(Answer::unasked(
                "the CHECK calls a function that may not be built in",
            )),
            Step::Check { expr: None, .. } => Ok(Answer::unasked(
                "the CHECK is not a plain expression over the table's columns",
            )),
            Step::ForeignKey {
                columns,
                references,
                ref_columns,
                match_full,
                ..
            } => {
                let r = self.key(references);
                if !self.exists(tx, &r)? {
                    return Ok(Answer::unasked("the referenced table is not there now"));
                }
                let fk = Fk {
                    columns,
                    references: (&qualified(&r), &references.to_string()),
                    ref_columns,
                    match_full: *match_full,
                };
                ask::foreign_key(tx, &q, fk)
            }
            Step::UniqueOther { why } => Ok(Answer::unasked(why)),
            _ => Ok(Answer::Unasked("not a data-dependent statement".into())),
        }
    }

    /// `VALIDATE CONSTRAINT`: the constraint the release added NOT VALID earlier, asked
    /// as it was written; else the one in the catalog, as PostgreSQL prints it.
    fn validate(
        &mut self,
        tx: &mut Transaction<'_>,
        t: &Relation,
        name: &str,
    ) -> Result<Answer, postgres::Error> {
        if let Some(step) = self.not_valid.get(&(t.clone(), name.to_string())).cloned() {
            if let Step::ForeignKey { references, .. } = &step {
                let r = self.key(references);
                if let Some(why) = self.unpredictable(&[r]) {
                    return Ok(Answer::Unasked(why));
                }
            }
            return self.ask(tx, t, &step);
        }
        if !self.exists(tx, t)? {
            return Ok(Answer::unasked("the table is not there now"));
        }
        let Some(step) = count::constraint_in_catalog(tx, t, name)? else {
            return Ok(Answer::unasked(format!(
                "no constraint {name} on {} there now",
                airlock_sql::shown(&t.name)
            )));
        };
        match step {
            Ok(step) => self.ask(tx, t, &step),
            Err(answer) => Ok(answer),
        }
    }

    /// A destroying statement: what it takes, counted (and, for a DROP or TRUNCATE,
    /// what it takes with it, or why it would fail).
    fn destroying(
        &mut self,
        tx: &mut Transaction<'_>,
        tier: &str,
        s: &DataStep,
        out: &mut Predictions,
    ) {
        let d = match &s.step {
            Step::DropSchema { cascade } => reach::drop_schema(self, tx, (tier, s), *cascade, out),
            Step::DropType { cascade } => reach::drop_type(self, tx, (tier, s), *cascade, out),
            _ => count::destroyed(self, tx, tier, s, out),
        };
        out.destroys.extend(d);
    }
}

/// Whether two steps come from one statement.
fn same_statement(a: &DataStep, b: &DataStep) -> bool {
    a.file == b.file && a.line == b.line && a.statement == b.statement
}

/// A destruction entry not yet counted.
pub(super) fn destroyed(tier: &str, s: &DataStep, relation: String, object: &[&str]) -> Destroyed {
    Destroyed {
        tier: tier.into(),
        file: s.file.clone(),
        line: s.line,
        statement: s.statement.clone(),
        relation,
        object: object
            .iter()
            .map(|p| airlock_sql::shown(p))
            .collect::<Vec<_>>()
            .join("."),
        rows: None,
        exact: false,
        bytes: None,
        note: None,
        dependents: vec![],
        dependents_total: 0,
        declared: false,
        existing: false,
    }
}
