//! The release's data steps in run order, each judged on the rows there now unless an
//! earlier statement of the release made them say nothing about it ([`super::state`]):
//! a prediction asked, a destruction counted, a type change tested.

use super::ask::{self, Answer, Fk};
use super::catalog::qualified;
use super::state::{prediction, settle, Walk};
use super::{count, reach, sample, stats, Destroyed, Outcome, Prediction, Predictions};
use airlock_sql::{DataStep, Relation, Step};
use postgres::Transaction;

impl Walk {
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
                | Step::UpdateAll { .. }
                | Step::Filtered { .. } => self.destroying(tx, tier, s, &mut out),
                _ => {
                    let p = self.predicted(tx, tier, s);
                    out.predictions.push(p)
                }
            }
        }
        // A statement that fails destroys nothing (a DROP of two tables, one missing).
        let failing: Vec<&Prediction> = out
            .predictions
            .iter()
            .filter(|p| p.outcome == Outcome::Fails)
            .collect();
        let fails = |d: &Destroyed| {
            failing
                .iter()
                .any(|p| (&p.file, p.line, &p.statement) == (&d.file, d.line, &d.statement))
        };
        let kept = out.destroys.iter().filter(|d| !fails(d)).cloned().collect();
        out.destroys = kept;
        out
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
            Step::Unique { columns, primary } => {
                sample::unique(tx, &q, columns, (*primary, None), self.timeout)
            }
            Step::PartialUnique {
                columns,
                predicate,
                functions,
            } if self.cat.all_builtin(functions) => {
                sample::unique(tx, &q, columns, (false, Some(predicate)), self.timeout)
            }
            Step::PartialUnique { .. } => Ok(Answer::unasked(
                "the partial index's WHERE calls a function that may not be built in",
            )),
            Step::SetNotNull { column } => {
                sample::null(tx, &q, column, (&key, &keyed_by), self.timeout)
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
            } if self.cat.all_builtin(functions) => {
                let column = stats::lone_column(tx, &q, e);
                let test = stats::Test {
                    column: column.as_deref(),
                    test: format!("NOT ({e})"),
                    what: format!("rows that violate CHECK ({e})"),
                };
                let full = |tx: &mut Transaction<'_>| {
                    ask::keyed(
                        tx,
                        &format!("SELECT {key} FROM {q} WHERE NOT ({e})"),
                        format!("rows that violate CHECK ({e}) (keys: {keyed_by})"),
                    )
                };
                sample::rejected(tx, &q, (&test, (&key, &keyed_by)), self.timeout, full)
            }
            Step::Check { expr: Some(_), .. } => Ok(Answer::unasked(
                "the CHECK calls a function that may not be built in, which airlock does not run, \
                 not even over pg_stats' values: rehearse runs it",
            )),
            Step::Check { expr: None, .. } => Ok(Answer::unasked(
                "the CHECK is not a plain expression over the table's columns (a function outside \
                 the built-in ones airlock evaluates, which it does not run, not even over pg_stats' \
                 values): rehearse runs it",
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
                let Some(test) = ask::missing(tx, &fk)? else {
                    return ask::foreign_key(tx, &q, fk);
                };
                let t = stats::Test {
                    column: (columns.len() == 1).then(|| columns[0].as_str()),
                    test,
                    what: format!(
                        "rows whose ({}) has no match in {references}",
                        ask::cols(columns, "").join(", ")
                    ),
                };
                let full = |tx: &mut Transaction<'_>| ask::foreign_key(tx, &q, fk);
                sample::rejected(tx, &q, (&t, (&key, &keyed_by)), self.timeout, full)
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
