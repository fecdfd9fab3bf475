//! `airlock reissue`: the receipts of runs interrupted after they committed (a kill,
//! a power loss between a COMMIT and the receipt), written from the ledger and marked
//! as reissued; each delivery recorded so an audit accepts them as what they are.

use crate::cli::{ParamArgs, ReissueArgs};
use crate::commands::deploy::apply::{check_receipt_target, ReceiptDest, ReceiptOutcome, Saver};
use crate::commands::deploy::db_common::prepare;
use crate::commands::deploy::receipt_policy::{check_receipt_policy, receipt_key};
use crate::db::apply::Options;
use crate::error::Result;
use crate::report::{short, Outcome, Report};
use serde::Serialize;

/// What `airlock reissue` wrote.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ReissueReport {
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub database: String,
    /// One receipt per interrupted run, in ledger order (none: every run of the
    /// bundle on this database has its receipt delivered).
    pub reissued: Vec<ReceiptOutcome>,
}

impl Report for ReissueReport {
    fn human(&self) -> String {
        if self.reissued.is_empty() {
            return format!(
                "nothing to reissue: every run of {} {} (bundle {}) on {} has its receipt delivered (or there is none)",
                self.bundle_name,
                self.bundle_version,
                short(&self.bundle_id),
                self.database
            );
        }
        let mut s = format!(
            "REISSUED {} receipt(s) of {} {} (bundle {}) on {}, from the ledger:",
            self.reissued.len(),
            self.bundle_name,
            self.bundle_version,
            short(&self.bundle_id),
            self.database
        );
        for o in &self.reissued {
            let r = &o.receipt;
            let rows: Vec<String> = r.ledger.iter().map(|l| format!("#{}", l.seq)).collect();
            s.push_str(&format!(
                "\n  {} of ledger row(s) {} (tiers {}): {}",
                r.event,
                rows.join(", "),
                if r.tiers.is_empty() {
                    "none completed".to_string()
                } else {
                    r.tiers.join(", ")
                },
                o.receipt_file
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| "not saved".into())
            ));
        }
        s.push_str("\nEach is marked as reissued; an audit accepts it for an interrupted run, never in place of a receipt that was delivered.");
        s
    }
}

pub fn run(args: ReissueArgs) -> Result<Outcome> {
    let (vb, conn, _) = prepare(
        &args.bundle,
        &args.trust,
        &args.db,
        &ParamArgs { params: vec![] },
    )?;
    let dest = ReceiptDest::Dir(args.out.clone());
    check_receipt_target(&dest, args.sign_receipt.is_some())?;
    let key = receipt_key(args.sign_receipt.as_ref(), &args.pass)?;
    check_receipt_policy(&args.trust, key.as_ref(), args.sign_receipt.as_ref())?;
    let saver = Saver::new(
        dest,
        key.as_ref(),
        &args.bundle,
        &args.trust.trust,
        args.sign_receipt.as_ref(),
    );
    // The trust store judges again the approvals a ledger row records.
    let approvals = crate::db::ratify::Approvals {
        store: crate::commands::common::load_trust(&args.trust.trust)?,
        paths: vec![],
    };
    let o = Options {
        conn: &conn,
        expected_db: vb.manifest().target.database.clone(),
        params: Default::default(),
        through: None,
        lock_timeout: args.lock_timeout.clone(),
        lock_retries: 0,
        statement_timeout: args.db.statement_timeout.clone(),
        allow_drift: false,
        resume: false,
        gate_role: None,
        remember: true,
        approvals: Some(&approvals),
        skip_gates: false,
        confirm: None,
        observer: None,
        deliver: Some(&saver),
        // Reissue is how an interrupted run's rows get signed: it decides no tier.
        vouch: None,
    };
    // A key that failed to sign is the error (nothing was recorded), not the ledger.
    let receipts = crate::db::delivery::reissue(&vb, &o).map_err(|e| {
        saver
            .sign_failure()
            .map_or_else(|| e.into(), crate::error::Error::Signer)
    })?;
    let database = receipts
        .first()
        .map(|r| r.database.clone())
        .or_else(|| conn.config.get_dbname().map(str::to_string))
        .unwrap_or_else(|| o.expected_db.describe());
    // The saver kept where each went, in order; its outcomes are taken from the last.
    let mut reissued: Vec<ReceiptOutcome> = receipts
        .into_iter()
        .rev()
        .map(|r| saver.outcome(r))
        .collect();
    reissued.reverse();
    let m = vb.manifest();
    Ok(Box::new(ReissueReport {
        bundle_id: vb.id().into(),
        bundle_name: m.bundle.name.clone(),
        bundle_version: m.bundle.version.clone(),
        database,
        reissued,
    }))
}
