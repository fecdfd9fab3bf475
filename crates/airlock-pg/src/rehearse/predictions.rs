//! A rehearsal's predictions: `plan`'s questions asked of the target before anything
//! is cloned (a certain failure stops the rehearsal there, as apply's exit), then,
//! after the apply on the clone, what it measured beside what was predicted (rows and
//! bytes of each table the release destroys or changes, before and after each tier),
//! and the predictions the target could not answer (a table the release creates or
//! changes first, a question cut short) judged by what the tiers did on the clone.
//!
//! Invariant: the target is only read (the predictions' READ ONLY transaction); every
//! measurement is the clone's ([`crate::rehearse::measure`]); a statement is said to have passed
//! or failed on the clone only when the apply there got past it or stopped at it.

use crate::predict::{self, Predictions};
use crate::rehearse::measure::{TableThrough, Tables, TierMeasured};
use crate::session::conn::{self, ConnSpec};
use crate::session::hermetic::render_search_path;
use crate::DbError;
use airlock_base::exit::Exit;
use airlock_bundle::verified::VerifiedBundle;
use airlock_sql::Step;
use schemars::JsonSchema;
use serde::Serialize;
use std::time::Duration;

/// A destruction `plan` predicted, beside what the apply on the clone did to its table.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct Compared {
    pub tier: String,
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub object: String,
    /// What `plan`'s question counted on the target (exact or the estimate).
    pub predicted_rows: Option<i64>,
    pub predicted_exact: bool,
    pub predicted_bytes: Option<i64>,
    /// The table through the statement's tier, measured on the clone (`None`: not
    /// measured; the reason is in `measured`).
    pub measured: Option<TableThrough>,
}

/// How a statement `plan` could not judge went on the clone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnClone {
    /// The apply on the clone got past it.
    Passed,
    /// The apply on the clone stopped at it.
    Failed,
    /// The apply stopped before it (or did not run).
    NotReached,
}

/// A prediction the target could not answer, judged by the rehearsal.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct Judged {
    pub tier: String,
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub relation: String,
    /// Why `plan` could not tell.
    pub predicted: String,
    pub on_clone: OnClone,
}

/// What the rehearsal predicted, measured and judged.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, JsonSchema)]
pub struct Rehearsed {
    /// `plan`'s predictions, asked of the target before the clone.
    pub predictions: Predictions,
    /// Per tier the apply ran and committed on the clone: the tables the release
    /// destroys or changes, rows and bytes before and after it (exact).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measured: Vec<TierMeasured>,
    /// Each predicted destruction beside its table's measurement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compared: Vec<Compared>,
    /// The statements `plan` named not predictable, or could not tell in time, and
    /// what the apply on the clone did with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judged: Vec<Judged>,
}

/// The step "predicted failures", on the target before the clone: the predictions,
/// or the failure that stops the rehearsal (apply's exit for a failing statement).
pub(crate) fn on_target(
    vb: &VerifiedBundle,
    (spec, expected): (&ConnSpec, &airlock_bundle::target_db::TargetDatabase),
    tiers: &[String],
    timeout: Duration,
) -> Result<(Predictions, String), (Exit, String)> {
    let mut c = spec.connect().map_err(|e| (e.exit_code(), e.to_string()))?;
    conn::name_guard(&mut c, expected).map_err(|e| (e.exit_code(), e.to_string()))?;
    let p = predict::predict(&mut c, vb, tiers, timeout, None);
    let row = crate::deploy::predicted::check(&p);
    // What plan cannot tell for code a role attached is what a rehearsal settles: it
    // goes on to the clone (and says what the statement did there).
    let cannot_tell = row.verdict == crate::deploy::checks::CheckVerdict::CannotTell;
    if !row.passed() && !cannot_tell {
        return Err((
            row.exit_code,
            format!(
                "{}; nothing was cloned (the apply on the clone would stop at it too)",
                row.evidence
            ),
        ));
    }
    let destroys = p.destroys.iter().filter(|d| d.existing).count();
    let detail = format!(
        "{}{}{}",
        row.evidence,
        if cannot_tell {
            "; the clone below runs it"
        } else {
            ""
        },
        match destroys {
            0 => String::new(),
            n => format!("; {n} destruction(s) predicted, measured on the clone below"),
        }
    );
    Ok((p, detail))
}

/// The tables to measure on the clone: every existing table a tier statement destroys
/// or changes (its name looked up under the bundle's search_path), at most 100.
pub(crate) fn tables_to_measure(
    vb: &VerifiedBundle,
    clone: (&ConnSpec, &str),
) -> Result<Tables, DbError> {
    let tiers: Vec<String> = vb.manifest().tier.iter().map(|t| t.name.clone()).collect();
    let steps = predict::steps_of(vb, &tiers).map_err(|e| DbError::State(e.to_string()))?;
    let mut names: Vec<String> = steps
        .iter()
        .filter(|(_, s)| {
            matches!(
                s.step,
                Step::DropTable { .. }
                    | Step::DropColumn { .. }
                    | Step::Truncate { .. }
                    | Step::DeleteAll
                    | Step::UpdateAll { .. }
                    | Step::Filtered { .. }
                    | Step::Writes
                    | Step::AlterType { .. }
            )
        })
        .map(|(_, s)| predict::qualified(&s.relation))
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(vec![]);
    }
    let mut c = clone.0.connect()?;
    conn::name_guard_exact(&mut c, clone.1)?;
    let path = vb.manifest().spec().target.search_path();
    let mut tx = c
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| crate::sql_err("BEGIN READ ONLY", &e))?;
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {}",
        render_search_path(&path)
    ))
    .map_err(|e| crate::sql_err("setting the bundle's search_path", &e))?;
    let rows = tx
        .query(
            "SELECT DISTINCT c.oid, n.nspname::text, c.relname::text \
             FROM pg_catalog.unnest($1::text[]) AS x \
             JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(x)::pg_catalog.oid \
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
             WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}'::pg_catalog.\"char\"[]) LIMIT 100",
            &[&names],
        )
        .map_err(|e| crate::sql_err("looking up the tables to measure", &e))?;
    let _ = tx.rollback();
    Ok(rows
        .iter()
        .map(|r| {
            let (schema, name): (String, String) = (r.get(1), r.get(2));
            (
                r.get::<_, u32>(0),
                format!(
                    "{}.{}",
                    airlock_sql::shown(&schema),
                    airlock_sql::shown(&name)
                ),
            )
        })
        .collect())
}

/// Each predicted destruction beside its table's measurement in its tier.
pub(crate) fn compare(p: &Predictions, measured: &[TierMeasured]) -> Vec<Compared> {
    p.destroys
        .iter()
        .filter(|d| d.existing)
        .map(|d| {
            let table = airlock_sql::object_name(&d.object).ok().map(|parts| {
                parts
                    .iter()
                    .take(2)
                    .map(|x| airlock_sql::shown(x))
                    .collect::<Vec<_>>()
                    .join(".")
            });
            let m = measured
                .iter()
                .find(|t| t.tier == d.tier)
                .and_then(|t| t.tables.iter().find(|x| Some(&x.table) == table.as_ref()))
                .cloned();
            Compared {
                tier: d.tier.clone(),
                file: d.file.clone(),
                line: d.line,
                statement: d.statement.clone(),
                object: d.object.clone(),
                predicted_rows: d.rows,
                predicted_exact: d.exact,
                predicted_bytes: d.bytes,
                measured: m,
            }
        })
        .collect()
}

/// The predictions the target could not answer, judged by the apply on the clone:
/// passed when it got past them, failed at the statement it stopped at, not reached
/// after it. `stopped`: where the apply failed (file, the statement's first line), or
/// `None` when it committed every tier; `ran`: whether it ran at all.
pub(crate) fn judge(
    vb: &VerifiedBundle,
    p: &Predictions,
    ran: bool,
    stopped: Option<(&str, usize)>,
) -> Vec<Judged> {
    let m = vb.manifest();
    let order = |file: &str, line: usize| -> (usize, usize, usize) {
        let tier = m
            .tier
            .iter()
            .position(|t| t.files.iter().any(|f| f == file));
        let t = tier.unwrap_or(usize::MAX);
        let f = tier
            .and_then(|t| m.tier[t].files.iter().position(|f| f == file))
            .unwrap_or(0);
        (t, f, line)
    };
    let stop = stopped.map(|(f, l)| order(f, l));
    p.predictions
        .iter()
        .filter(|x| !x.outcome.answered())
        .map(|x| {
            let at = order(&x.file, x.line);
            let on_clone = match stop {
                _ if !ran => OnClone::NotReached,
                None => OnClone::Passed,
                Some(s) if at < s => OnClone::Passed,
                Some(s) if at == s => OnClone::Failed,
                Some(_) => OnClone::NotReached,
            };
            Judged {
                tier: x.tier.clone(),
                file: x.file.clone(),
                line: x.line,
                statement: x.statement.clone(),
                relation: x.relation.clone(),
                predicted: x.reason.clone(),
                on_clone,
            }
        })
        .collect()
}
