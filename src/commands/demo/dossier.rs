//! The demo's "write the release dossier" step: `airlock dossier` of the reference
//! release with every input it has then (the database, the rehearsal it saved, both
//! approvals), written into the demo's work directory, where `--keep` leaves it.
//!
//! Invariant: the page is made by the dossier command's own functions from the files
//! an operator would give it (`airlock dossier … --rehearsal … --approval …`), never
//! from the demo's memory: what the demo shows is what the command writes.

use crate::cli::{ApprovalArgs, DossierArgs, ParamArgs, TrustArgs};
use crate::commands::dossier;
use crate::db::conn::ConnSpec;
use crate::db::ratify::Approvals;
use crate::verified::VerifiedBundle;
use std::path::{Path, PathBuf};

/// The page, in the work directory.
pub(crate) const PAGE: &str = "dossier.html";
/// The saved `rehearse --json` it reads.
pub(crate) const REHEARSAL: &str = "rehearsal.json";

/// Write the dossier of `vb` (the demo's bundle file `bundle`, trust store `trust`),
/// asking the database at `target`: the page, and the step's line of what it wrote.
pub(crate) fn write(
    target: &ConnSpec,
    vb: &VerifiedBundle,
    approvals: &Approvals,
    work: &Path,
    bundle: &Path,
    trust: &Path,
    apr: &str,
) -> std::result::Result<(PathBuf, String), String> {
    let args = DossierArgs {
        bundle: bundle.to_path_buf(),
        trust: TrustArgs {
            trust: trust.to_path_buf(),
        },
        out: work.join(PAGE),
        force: true,
        db: None,
        gate_role: None,
        predict_timeout: std::time::Duration::from_secs(5),
        rehearsal: Some(work.join(REHEARSAL)),
        approvals: ApprovalArgs {
            approvals: approvals.paths.clone(),
        },
        receipts: vec![],
        params: ParamArgs {
            params: vec![format!("ratified_apr={apr}")],
        },
        at: None,
    };
    let store = &approvals.store;
    let now = chrono::Utc::now();
    let asked = dossier::ask(&args, store, vb, target, now).map_err(|e| e.to_string())?;
    let report = dossier::write(&args, store, vb, now, Some(asked)).map_err(|e| e.to_string())?;
    let detail = format!(
        "{} ({} bytes, one self-contained page): {}, dossier digest {}",
        report.out.display(),
        report.bytes,
        report.verdict,
        &report.digest[..16]
    );
    Ok((report.out, detail))
}
