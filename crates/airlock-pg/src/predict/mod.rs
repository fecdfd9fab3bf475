//! `plan`'s predictions: which tier statements the data now in the target will make
//! fail (a duplicate under a new primary key or unique index, a NULL under a new NOT
//! NULL, a row a new or validated CHECK or foreign key rejects, a value a new column
//! type cannot hold, an enum label a recreated type drops while rows hold it, a
//! DROP that other objects depend on), and what the release destroys (rows of
//! dropped, truncated or emptied tables and columns, what a CASCADE reaches, values a
//! type change rounds away), asked of the target before anything runs; and whether
//! the release declared what it destroys (`[[tier]] destroys`).
//!
//! Invariant: read only (one transaction, always rolled back; each question of the
//! data in a savepoint of its own under `transaction_read_only`, each question of the
//! catalog proven by the door to call nothing a role defines), each question of the data
//! bounded by `--predict-timeout` (its own statement_timeout, never airlock's statements
//! around it: see [`crate::door::QUESTION_TIMEOUT`]) and every wait for a lock by it
//! too (lock_timeout), and only tables the release's statements name are read (what a
//! CASCADE reaches beyond them is sized from the catalog's statistics, never
//! scanned). A table the release creates, or whose rows it changes before the
//! statement, is named as not predictable here, never queried; a question cut short is
//! a warning, never a silent GO. Every question of the data goes through the one door
//! ([`crate::door`]): nothing a database role defines runs (a CHECK, USING or WHERE
//! that calls an operator, function or cast a role made is "cannot tell here",
//! naming it). The transaction is not READ ONLY as a whole because the door's proof
//! creates (and rolls back) a temporary view; each question is.

mod ask;
mod cast;
mod catalog;
mod count;
mod declared;
pub mod foreign;
mod reach;
mod referenced;
mod sample;
mod state;
mod stats;
mod walk;
mod widening;

pub(crate) use catalog::qualified;

use crate::pg_message;
use crate::session::hermetic::render_search_path;
use airlock_bundle::verified::{reader_of, VerifiedBundle};
use airlock_sql::DataStep;
use schemars::JsonSchema;
use serde::Serialize;
use std::time::Duration;

/// Why the predictions could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("reading {file} back: {message}")]
    Read { file: String, message: String },
    #[error("{context}: {message}")]
    Sql { context: String, message: String },
}

fn sql_err(context: &str, e: &postgres::Error) -> PredictError {
    PredictError::Sql {
        context: context.into(),
        message: pg_message(e),
    }
}

/// What the data says about one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It would fail on the rows there now.
    Fails,
    /// The rows there now let it through.
    Passes,
    /// The question was cut short by `--predict-timeout`: cannot tell in time.
    TimedOut,
    /// Not asked: the release creates the table or changes its rows first, or the
    /// statement's form cannot be asked about simply (`reason` says which).
    NotPredictable,
    /// Not asked because of code a database role attached to what the question reads
    /// (a function, an operator, an index expression…: `reason` names it and its
    /// owner): airlock runs none of it, so it cannot tell. Never GO (issue 86).
    CannotTell,
}

impl Outcome {
    /// Whether the data answered (it fails or passes): the others were not asked, or
    /// not to the end, and carry no count.
    pub fn answered(self) -> bool {
        matches!(self, Outcome::Fails | Outcome::Passes)
    }
}

/// One data-dependent statement and what the data says.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct Prediction {
    pub tier: String,
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub relation: String,
    pub outcome: Outcome,
    /// Offending rows (or duplicate rows, or dependent objects of a DROP, or the one
    /// object a DROP finds missing), when asked;
    /// absent for a failure whose rows could not be counted in time (at least one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// Up to 5 offending keys (the primary key's values when the table has one, else
    /// the row's ctid; escaped, each at most 64 characters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// What was asked, or why nothing was.
    pub reason: String,
    /// The full question cut short on a big table: how long it would take and the
    /// `--predict-timeout` that would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_question: Option<FullQuestion>,
}

/// How long a full question cut short by `--predict-timeout` would take: the table's
/// estimated rows at the rate a sample of it was read through the door.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct FullQuestion {
    /// The table's estimated rows (`pg_class.reltuples`, as of its last ANALYZE or VACUUM).
    pub rows: i64,
    /// Rows a second the sample was read and grouped at.
    pub rows_per_second: f64,
    /// The full question's estimated time in seconds (the sample's rate, slowed by the
    /// cost of grouping every row; at least the timeout it was cut short by).
    pub estimated_seconds: f64,
    /// A `--predict-timeout` that would let it finish (twice the estimate, rounded up),
    /// as the option takes it (`35s`, `3m`, `2h`).
    pub suggested_predict_timeout: String,
}

/// An object a DROP … CASCADE (or the TRUNCATE … CASCADE, DROP TYPE … CASCADE) takes
/// with it, beyond the one it names.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct Dependent {
    /// As PostgreSQL describes it (`view public.v`, `column c of table t`,
    /// `constraint f on table o`).
    pub what: String,
    /// The rows it holds (a table, materialized view, or the table of a dropped
    /// column), from the catalog's statistics (`reltuples`): it is not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
    /// Its bytes from the catalog (pages as of the last VACUUM/ANALYZE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
}

/// What one statement destroys.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct Destroyed {
    pub tier: String,
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub relation: String,
    /// The object destroyed, schema-qualified as `[[tier]] destroys` names it
    /// (`public.doomed`, `public.gone.j` for a column, `app` for a schema).
    pub object: String,
    /// Rows it takes (a dropped column: the rows of its table; a DELETE or UPDATE: the
    /// rows it matches); `None`: not there now, or not counted (`note` says why).
    pub rows: Option<i64>,
    /// Counted exactly (below [`EXACT_BELOW`] estimated rows, and every filtered
    /// count), or the planner's estimate (`reltuples`).
    pub exact: bool,
    /// The table's bytes with indexes and TOAST (DROP TABLE, TRUNCATE, DROP SCHEMA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// Why there is no count (the release creates the table, the count was cut short),
    /// or what changes (a type change's rounded values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What a CASCADE takes with it (at most [`DEPENDENTS_SHOWN`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<Dependent>,
    /// How many dependent objects there are in all (more than listed when above
    /// [`DEPENDENTS_SHOWN`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dependents_total: usize,
    /// The release declares it (`[[tier]] destroys` of its tier names it or what
    /// holds it). Destruction of something there now that is not declared is a
    /// warning at `plan`.
    pub declared: bool,
    /// The object is there now (a table the release creates and then drops destroys
    /// nothing of the target's: not a warning).
    pub existing: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A name `[[tier]] destroys` declares that no statement of its tier destroys.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct NotDestroyed {
    pub tier: String,
    pub name: String,
}

/// `plan`'s predictions, or why they could not be made.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, JsonSchema)]
pub struct Predictions {
    pub predictions: Vec<Prediction>,
    pub destroys: Vec<Destroyed>,
    /// Declared in `[[tier]] destroys` and destroyed by no statement of that tier (a
    /// note: the declaration is stale, or the statement is not one plan reads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_not_destroyed: Vec<NotDestroyed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A long question about to be asked: the full question on a big table.
pub struct Asking<'a> {
    /// The table and what is asked of it.
    pub what: &'a str,
    /// Its estimated time, when a sample of the table measured a rate.
    pub estimate: Option<Duration>,
    /// `--predict-timeout`: it is cut short then.
    pub timeout: Duration,
}

/// Told when a long question starts (`Some`) and when it ends (`None`).
pub type Watcher = Box<dyn Fn(Option<&Asking<'_>>) + Send + Sync>;

static WATCHER: std::sync::OnceLock<Watcher> = std::sync::OnceLock::new();

/// Be told of every long question of this process (`plan` shows it on a terminal);
/// the first watcher set stays.
pub fn watch(w: Watcher) {
    let _ = WATCHER.set(w);
}

/// Tell the watcher, if any.
fn watching(a: Option<&Asking<'_>>) {
    if let Some(w) = WATCHER.get() {
        w(a)
    }
}

/// Tables estimated below this many rows are counted exactly.
pub const EXACT_BELOW: i64 = 100_000;
/// Dependent objects listed per DROP … CASCADE.
pub const DEPENDENTS_SHOWN: usize = 50;

/// The data steps of the tiers `tiers` names, in run order, each with its tier.
pub(crate) fn steps_of(
    vb: &VerifiedBundle,
    tiers: &[String],
) -> Result<Vec<(String, DataStep)>, PredictError> {
    let mut out = Vec::new();
    for tier in vb
        .manifest()
        .spec()
        .tier
        .iter()
        .filter(|t| tiers.contains(&t.name))
    {
        out.extend(steps_of_files(vb, &tier.files, &tier.name)?);
    }
    Ok(out)
}

/// The data steps of `files` (a tier's, or the rollback's), in order, each labelled
/// `label`.
pub(crate) fn steps_of_files(
    vb: &VerifiedBundle,
    files: &[String],
    label: &str,
) -> Result<Vec<(String, DataStep)>, PredictError> {
    let mut out = Vec::new();
    for file in files {
        let read = |message: String| PredictError::Read {
            file: file.clone(),
            message,
        };
        let payload = vb.payload(file).map_err(|e| read(e.to_string()))?;
        let steps = airlock_sql::data_steps_in(file, &mut reader_of(payload))
            .map_err(|e| read(e.to_string()))?;
        out.extend(steps.into_iter().map(|s| (label.to_string(), s)));
    }
    Ok(out)
}

/// Ask the target about the data steps of the rollback `files` (`airlock plan
/// --rollback`): what they would make fail on the rows there now, and what they
/// destroy. As [`predict`], through the door, each question bounded by `timeout`.
pub fn predict_rollback(
    client: &mut postgres::Client,
    vb: &VerifiedBundle,
    files: &[String],
    timeout: Duration,
) -> Predictions {
    let mut run = || -> Result<Predictions, PredictError> {
        let steps = steps_of_files(vb, files, "rollback")?;
        walk_steps(client, vb, steps, timeout)
    };
    run().unwrap_or_else(|e| Predictions {
        error: Some(e.to_string()),
        ..Predictions::default()
    })
}

/// The walk over `steps` in one transaction, rolled back (none opened when no step
/// asks anything).
fn walk_steps(
    client: &mut postgres::Client,
    vb: &VerifiedBundle,
    steps: Vec<(String, DataStep)>,
    timeout: Duration,
) -> Result<Predictions, PredictError> {
    if !steps.iter().any(|(_, s)| asks(&s.step)) {
        return Ok(Predictions::default());
    }
    let mut tx = client
        .build_transaction()
        .start()
        .map_err(|e| sql_err("starting the predictions' transaction", &e))?;
    // The door's own statements are prepared first: airlock's, not a question of the
    // data, so --predict-timeout does not bound them (nor any of airlock's own
    // statements: it bounds each question of the data and each wait for a lock).
    crate::door::open(&mut tx, &format!("{}ms", timeout.as_millis().max(1))).map_err(|e| {
        PredictError::Sql {
            context: "making the door ready for the predictions".into(),
            message: e.to_string(),
        }
    })?;
    let path = vb.manifest().spec().target.search_path();
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {}; SET LOCAL row_security = off; \
         SET LOCAL {} = '{ms}ms'; SET LOCAL lock_timeout = '{ms}ms'",
        render_search_path(&path),
        crate::door::QUESTION_TIMEOUT,
        ms = timeout.as_millis().max(1)
    ))
    .map_err(|e| sql_err("setting the predictions' search_path and timeout", &e))?;
    let mut walk = state::Walk::new(&mut tx, &steps);
    walk.timeout = timeout;
    let out = walk.run(&mut tx, steps);
    tx.rollback()
        .map_err(|e| sql_err("ending the predictions' transaction", &e))?;
    Ok(out)
}

/// The data steps of every tier, read ahead (on a thread of their own while the
/// connection is made): what [`predict`] would read for any subset of the tiers.
pub struct ReadAhead(Result<Vec<(String, DataStep)>, PredictError>);

impl ReadAhead {
    /// Read every tier's data steps.
    pub fn of(vb: &VerifiedBundle) -> ReadAhead {
        let all: Vec<String> = vb
            .manifest()
            .spec()
            .tier
            .iter()
            .map(|t| t.name.clone())
            .collect();
        ReadAhead(steps_of(vb, &all))
    }

    /// The steps of `tiers`, in the order [`steps_of`] gives them; read again when the
    /// read ahead failed (a tier outside `tiers` may be what failed).
    fn steps(
        self,
        vb: &VerifiedBundle,
        tiers: &[String],
    ) -> Result<Vec<(String, DataStep)>, PredictError> {
        match self.0 {
            Ok(all) => Ok(all.into_iter().filter(|(t, _)| tiers.contains(t)).collect()),
            Err(_) => steps_of(vb, tiers),
        }
    }
}

/// Ask the target about the data steps of `tiers`, each question bounded by `timeout`.
/// A release with no such step costs nothing (no transaction is opened). `ahead`: the
/// steps read ahead ([`ReadAhead`]), else read here.
pub fn predict(
    client: &mut postgres::Client,
    vb: &VerifiedBundle,
    tiers: &[String],
    timeout: Duration,
    ahead: Option<ReadAhead>,
) -> Predictions {
    let run = || -> Result<Predictions, PredictError> {
        let steps = match ahead {
            Some(a) => a.steps(vb, tiers)?,
            None => steps_of(vb, tiers)?,
        };
        let mut out = walk_steps(client, vb, steps, timeout)?;
        declared::judge(vb, tiers, &mut out);
        Ok(out)
    };
    run().unwrap_or_else(|e| Predictions {
        error: Some(e.to_string()),
        ..Predictions::default()
    })
}

/// Whether a step is a question for the target (a prediction or a destruction); a
/// release of nothing else (CREATE, INSERT, …) opens no transaction for predictions.
fn asks(step: &airlock_sql::Step) -> bool {
    use airlock_sql::Step as S;
    !matches!(
        step,
        S::Creates
            | S::Writes
            | S::Opaque
            | S::MayCreate
            | S::Calls { .. }
            | S::CreateEnum { .. }
            | S::RenameType { .. }
            | S::Touches
            | S::DropConstraint { .. }
            | S::Check {
                not_valid: true,
                ..
            }
            | S::ForeignKey {
                not_valid: true,
                ..
            }
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_escaped_and_bounded() {
        assert_eq!(super::ask::shown_key("a\nb"), "a\\nb");
        let long = "x".repeat(100);
        assert_eq!(
            super::ask::shown_key(&long).chars().count(),
            super::ask::KEY_CHARS + 1
        );
    }
}
