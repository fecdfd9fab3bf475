//! `airlock plan BUNDLE --rollback`: the rollback's own GO/NO-GO, read-only, on the data
//! there now. Which tiers the ledger says it undoes and which rollback files that runs,
//! what those files destroy (tables and columns dropped, rows a DELETE or TRUNCATE
//! removes, counted; rows an ON DELETE CASCADE takes with them), and which statements
//! the data would make fail (rows other tables still reference, a NOT NULL, UNIQUE or
//! CHECK the rollback restores), through the same door as `plan`'s predictions.
//!
//! Invariant: nothing is written; the data is read only after the bundle-role check
//! passed (as `plan`), each question in the door's rolled-back savepoint.

use crate::deploy::lock_plan::{self, LockPlan};
use crate::deploy::options::Options;
use crate::deploy::skeleton::Deploy;
use crate::ledger::chain as ledger;
use crate::predict::{Outcome, Predictions};
use crate::DbError;
use airlock_base::exit::Exit;
use airlock_bundle::verified::VerifiedBundle;
use schemars::JsonSchema;
use serde::Serialize;

/// What `plan --rollback` found.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RollbackPlan {
    pub bundle: String,
    pub version: String,
    pub bundle_id: String,
    pub database: String,
    /// The tiers the ledger says the rollback undoes (applied, or with online steps).
    pub undoes: Vec<String>,
    /// The rollback files that would run, in order.
    pub files: Vec<String>,
    /// What they destroy, and what the data would make fail.
    pub predictions: Predictions,
    /// The locks the rollback files take, with the sizes of their relations now.
    pub locks: LockPlan,
    /// `GO`, `NO-GO` when a statement is predicted to fail, or `CANNOT-TELL` when code
    /// a database role attached kept one from being predicted.
    pub verdict: String,
}

impl RollbackPlan {
    /// A statement the data makes fail: the rollback would stop there, all of it
    /// rolled back.
    pub fn fails(&self) -> bool {
        self.predictions
            .predictions
            .iter()
            .any(|p| p.outcome == Outcome::Fails)
    }

    /// Whether code a database role attached kept a statement from being predicted
    /// (and none is predicted to fail): CANNOT-TELL, exit 8, never GO.
    pub fn cannot_tell(&self) -> bool {
        !self.fails()
            && self
                .predictions
                .predictions
                .iter()
                .any(|p| p.outcome == Outcome::CannotTell)
    }

    /// The verdict and what `rollback --plan` exits with, judged once: NO-GO (1) when
    /// a statement is predicted to fail, CANNOT-TELL (8), else GO (0).
    pub fn judged(&self) -> (&'static str, Exit) {
        if self.fails() {
            ("NO-GO", Exit::Runtime)
        } else if self.cannot_tell() {
            ("CANNOT-TELL", Exit::CannotTell)
        } else {
            ("GO", Exit::Success)
        }
    }
}

/// The rollback plan of `vb` on the database `opts` names.
pub fn plan_rollback(
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    timeout: std::time::Duration,
) -> Result<RollbackPlan, DbError> {
    let m = vb.manifest();
    let rb = m.rollback.as_ref().ok_or(DbError::NoRollback)?;
    let mut deploy = Deploy::start(vb, opts)?;
    let undoes = ledger::state_of(&deploy.session.ledger()?, vb.id()).touched(m);
    if undoes.is_empty() {
        return Err(DbError::Refused(
            crate::refusal::Refusal::NothingToRollBack {
                bundle: m.bundle.name.clone(),
                version: m.bundle.version.clone(),
                database: deploy.session.info.database.clone(),
            },
        ));
    }
    // Nothing reads the target's data before the bundle-role check passed.
    crate::deploy::bundle_role::check(&mut deploy.session.client, &m.spec().target)?;
    let files = rb.files_for(&undoes);
    let predictions =
        crate::predict::predict_rollback(&mut deploy.session.client, vb, &files, timeout);
    let locks = lock_plan::sized(
        &mut deploy.session.client,
        vb,
        lock_plan::of_rollback(vb, &files),
        timeout,
    );
    let mut plan = RollbackPlan {
        bundle: m.bundle.name.clone(),
        version: m.bundle.version.clone(),
        bundle_id: vb.id().to_string(),
        database: deploy.session.info.database.clone(),
        undoes,
        files,
        predictions,
        locks,
        verdict: String::new(),
    };
    plan.verdict = plan.judged().0.into();
    Ok(plan)
}
