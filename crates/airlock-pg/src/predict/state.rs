//! What the walk over the release's data steps knows at each statement: what the
//! release created, wrote, dropped, renamed or altered before it (so a statement is
//! judged on the rows there now only when nothing earlier changed them), how a name
//! resolves to a schema-qualified table, and the entries a statement's judgement
//! makes.

use super::ask::{self, Answer, Fixed};
use super::catalog::{qualified, Catalog};
use super::{Destroyed, Outcome, Prediction};
use crate::pg_message;
use airlock_sql::{DataStep, Relation, Step};
use postgres::error::SqlState;
use postgres::Transaction;
use std::collections::{BTreeMap, BTreeSet};

/// Whether relation `$1` is there now.
pub(super) const RELATION_EXISTS: Fixed =
    Fixed::new("SELECT pg_catalog.to_regclass($1) IS NOT NULL");

/// What relation `$1` is (`pg_class.relkind`), when it is there.
pub(super) const RELATION_KIND: Fixed = Fixed::new(
    "SELECT pg_catalog.format('%s', c.relkind) FROM pg_catalog.pg_class c \
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)",
);

/// What the release did before the statement at hand.
#[derive(Default)]
pub(super) struct Walk {
    pub(super) cat: Catalog,
    /// Tables (and types) it created, by their schema-qualified name.
    pub(super) created: BTreeMap<Relation, String>,
    /// Tables whose rows it changed (or dropped).
    pub(super) written: BTreeMap<Relation, String>,
    /// A DO block, CALL, EXECUTE or call of a function the database defines: it may
    /// change any row.
    pub(super) opaque: Option<String>,
    /// A rename, `SET SCHEMA`, extension… (a statement that may bring a relation or
    /// column in under a name): a DROP of one not there now may find it by then.
    pub(super) may_create: Option<String>,
    /// Enum types it created, with their labels.
    pub(super) enums: BTreeMap<Relation, Vec<String>>,
    /// Types it renamed: the name now → the name in the target.
    pub(super) renamed: BTreeMap<Relation, Relation>,
    /// Constraints it added NOT VALID, by (table, name).
    pub(super) not_valid: BTreeMap<(Relation, String), Step>,
    /// Columns whose type it changed (table, column).
    pub(super) altered: BTreeSet<(Relation, String)>,
    /// Relations, views, functions… it dropped or replaced.
    pub(super) dropped: BTreeSet<Relation>,
    /// Constraints it dropped (table, name).
    pub(super) dropped_constraints: BTreeSet<(Relation, String)>,
    /// The tables the statement at hand names besides its own (a TRUNCATE of several).
    pub(super) same_statement: BTreeSet<Relation>,
    /// Columns it added (table, column): values no row held before the release.
    pub(super) added: BTreeSet<(Relation, String)>,
    /// Columns it dropped (table, column): a later DROP of one destroys nothing.
    pub(super) dropped_columns: BTreeSet<(Relation, String)>,
    /// `--predict-timeout`: each question's bound (a sample's is shorter).
    pub(super) timeout: std::time::Duration,
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
        full_question: None,
    }
}

/// The prediction with what its question answered.
pub(super) fn settle(mut p: Prediction, answer: Result<Answer, postgres::Error>) -> Prediction {
    match answer {
        Ok(Answer::Unasked(why)) => p.reason = why,
        Ok(Answer::Barred(why)) => {
            p.outcome = Outcome::CannotTell;
            p.reason = why;
        }
        Ok(Answer::Cut { why, full }) => {
            p.outcome = Outcome::TimedOut;
            p.reason = why;
            p.full_question = full;
        }
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
        Err(e) if crate::door::cut_short(&e) => {
            p.outcome = Outcome::TimedOut;
            p.reason =
                "cannot tell in time (the question was cut short by --predict-timeout)".into();
        }
        // Not the question's own error but its session's: the transaction is no longer
        // usable, or the connection is gone. Nothing was asked, so never a silent OK.
        Err(e) if broken(&e) => {
            p.outcome = Outcome::TimedOut;
            p.reason = format!(
                "cannot tell (the predictions' session stopped answering before this question: {})",
                pg_message(&e)
            );
        }
        Err(e) => p.reason = format!("not predictable here ({})", pg_message(&e)),
    }
    p
}

/// Whether `e` says the session, not the question, failed: the transaction was ended by
/// an earlier error, or the connection is gone.
fn broken(e: &postgres::Error) -> bool {
    e.as_db_error().is_none() || e.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION)
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
        let got = ask::rows(tx, RELATION_EXISTS, &[qualified(r).as_str()])?;
        Ok(got.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    /// Steps that only change what the walk knows; true when `s` was one.
    pub(super) fn remember(&mut self, s: &DataStep) -> bool {
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
            Step::MayCreate => self.may_create = Some(at(s)),
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
            Step::AddColumn { column } => {
                let k = self.key(&s.relation);
                self.added.insert((k, column.clone()));
            }
            Step::AddNotNullColumn { column } => {
                // Remembered, and still asked (rows there now get NULL).
                let k = self.key(&s.relation);
                self.added.insert((k, column.clone()));
                return false;
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

    /// Whether `s` is an UPDATE that writes only columns the release added to `t`: it
    /// overwrites no value a row held before the release (a backfill).
    pub(super) fn fills_only_added(&self, t: &Relation, s: &DataStep) -> bool {
        let sets = match &s.step {
            Step::UpdateAll { sets } => sets,
            Step::Filtered {
                delete: false,
                sets,
                ..
            } => sets,
            _ => return false,
        };
        !sets.is_empty()
            && sets
                .iter()
                .all(|c| self.added.contains(&(t.clone(), c.clone())))
    }

    /// A DROP (no IF EXISTS) of `object`, which is not there now nor made by anything
    /// earlier in the release: it fails, with `why`. `None` when an earlier statement
    /// may have brought it in under that name (its DROP is then not judged here).
    pub(super) fn missing(
        &self,
        tier: &str,
        s: &DataStep,
        object: String,
        why: &str,
    ) -> Option<Prediction> {
        self.fails(
            tier,
            s,
            object,
            format!("{why}, and nothing earlier in the release makes it: the DROP fails (IF EXISTS, if that is meant)"),
        )
    }

    /// A DROP that fails on `object` as it is now, for `reason`: the prediction, unless
    /// an earlier statement may have brought another object in under its name.
    pub(super) fn fails(
        &self,
        tier: &str,
        s: &DataStep,
        object: String,
        reason: String,
    ) -> Option<Prediction> {
        if self.may_create.is_some() {
            return None;
        }
        let mut p = prediction(tier, s, s.relation.to_string());
        p.outcome = Outcome::Fails;
        p.count = Some(1);
        p.keys = vec![object];
        p.reason = reason;
        Some(p)
    }

    /// Mark a table's rows as changed by `s` from here on.
    pub(super) fn wrote(&mut self, t: Relation, s: &DataStep) {
        self.written.insert(t, at(s));
    }
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
