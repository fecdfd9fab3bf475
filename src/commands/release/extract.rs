//! `airlock extract`: verify fully into a temp dir beside --out, then rename.

use crate::archive::{extract, Judge, Limits};
use crate::cli::ExtractArgs;
use crate::commands::common::{bundle_progress, judge_time};
use crate::error::Result;
use crate::report::{Outcome, Report};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Serialize, schemars::JsonSchema)]
pub struct ExtractReport {
    /// The directory written (`--out`).
    pub out: PathBuf,
    pub bundle_id: String,
    pub files: usize,
}

impl Report for ExtractReport {
    fn human(&self) -> String {
        format!(
            "verified and extracted {} files to {}\n  bundle id: {}\n  auditors: cd {} && sha256sum -c SHA256SUMS",
            self.files,
            self.out.display(),
            self.bundle_id,
            self.out.display()
        )
    }
}

pub fn run(args: ExtractArgs) -> Result<Outcome> {
    let store =
        crate::commands::release::carried::load_trust_for_bundle(&args.trust.trust, &args.bundle)?;
    let at = judge_time(None)?;
    let op = extract(
        &args.bundle,
        Judge::Trust { store: &store, at },
        &Limits::default(),
        &args.out,
        &bundle_progress(&args.bundle, "extracting"),
    )?;
    Ok(Box::new(ExtractReport {
        out: args.out,
        bundle_id: op.bundle_id,
        files: op.manifest.files.len(),
    }))
}
