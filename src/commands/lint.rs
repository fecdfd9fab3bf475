//! `airlock lint`: check a source directory without writing anything.

use crate::cli::LintArgs;
use crate::error::Result;
use crate::report::{Outcome, Report};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub struct LintReport {
    pub ok: bool,
    pub name: String,
    pub version: String,
    pub sequence: u64,
    pub files: Vec<String>,
    pub tiers: usize,
    pub gates: usize,
    pub warnings: Vec<String>,
    /// What the SQL files hold that lint accepted and skipped, `FILE:LINE: …`: psql
    /// meta-commands airlock subsumes (`\\set ON_ERROR_STOP 1`…), `BEGIN;` … `COMMIT;`
    /// wrappers run inside airlock's own transaction, a UTF-8 byte-order mark.
    pub notes: Vec<String>,
}

impl Report for LintReport {
    fn human(&self) -> String {
        let mut s = format!(
            "{} {} (sequence {}): OK - {} files, {} tiers, {} gates",
            self.name,
            self.version,
            self.sequence,
            self.files.len(),
            self.tiers,
            self.gates
        );
        for w in &self.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
        for n in &self.notes {
            s.push_str(&format!("\nnote: {n}"));
        }
        s
    }
}

pub fn run(args: LintArgs) -> Result<Outcome> {
    let l = crate::spec::lint(&args.source)?;
    Ok(Box::new(LintReport {
        ok: true,
        name: l.spec.bundle.name.clone(),
        version: l.spec.bundle.version.clone(),
        sequence: l.spec.bundle.sequence,
        files: l.files.iter().map(|f| f.to_string()).collect(),
        tiers: l.spec.tier.len(),
        gates: l.spec.gate.len(),
        warnings: l.warnings,
        notes: l.notes,
    }))
}
