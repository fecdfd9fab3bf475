//! `airlock lint`: check a source directory without writing anything.

use crate::cli::LintArgs;
use crate::error::Result;
use crate::report::{Outcome, Report};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub struct LintReport {
    pub ok: bool,
    /// The bundle's name, as `plan`, `apply` and `sql` call it.
    pub bundle_name: String,
    /// The bundle's version, as `plan`, `apply` and `sql` call it.
    pub bundle_version: String,
    /// The older spelling of `bundle_name` (kept for one release).
    pub name: String,
    /// The older spelling of `bundle_version` (kept for one release).
    pub version: String,
    pub sequence: u64,
    pub files: Vec<String>,
    pub tiers: usize,
    pub gates: usize,
    /// A bundle for a fleet: its `[target] database` (names and patterns; see
    /// `fleet_line`); absent for a bundle for one database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_database: Option<crate::spec::TargetDatabase>,

    pub warnings: Vec<String>,
    /// What the SQL files hold that lint accepted and skipped, `FILE:LINE: …`: psql
    /// meta-commands airlock subsumes (`\\set ON_ERROR_STOP 1`…), `BEGIN;` … `COMMIT;`
    /// wrappers run inside airlock's own transaction, a UTF-8 byte-order mark.
    pub notes: Vec<String>,
    /// Statements of the tier and rollback files that reach beyond the target
    /// database (the cluster's shared catalogs, another database, the server's files
    /// or the server itself), as PostgreSQL's parser reads them: `rehearse` refuses
    /// such a bundle, a clone cannot isolate them.
    pub reaches_beyond: Vec<crate::sql_lint::Reach>,
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
        s.push_str(&fleet_line(self.target_database.as_ref()));
        for w in &self.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
        for n in &self.notes {
            s.push_str(&format!("\nnote: {n}"));
        }
        s.push_str(&reach_lines(&self.reaches_beyond));
        s
    }
}

/// The line lint and pack print for a bundle for a fleet: the names and patterns the
/// name guard will accept (nothing for a bundle for one database).
pub fn fleet_line(target: Option<&crate::spec::TargetDatabase>) -> String {
    match target {
        Some(t) => format!(
            "\n  target: {} (a fleet: the name guard accepts any database matching one; the connection must name it)",
            t.describe()
        ),
        None => String::new(),
    }
}

/// The lines `plan` prints for statements that reach beyond the database (lint and
/// pack say it with the same words, before anything runs).
pub fn reach_lines(reaches: &[crate::sql_lint::Reach]) -> String {
    let mut s = String::new();
    for r in reaches {
        s.push_str(&format!("\nreaches beyond its database: {r}"));
    }
    if !reaches.is_empty() {
        s.push_str("\n(reaches beyond this database, into the cluster, another database or the server: rehearse refuses this bundle, a clone cannot isolate it)");
    }
    s
}

pub fn run(args: LintArgs) -> Result<Outcome> {
    let l = crate::spec::lint(&args.source)?;
    Ok(Box::new(LintReport {
        ok: true,
        bundle_name: l.spec.bundle.name.clone(),
        bundle_version: l.spec.bundle.version.clone(),
        name: l.spec.bundle.name.clone(),
        version: l.spec.bundle.version.clone(),
        sequence: l.spec.bundle.sequence,
        files: l.files.iter().map(|f| f.to_string()).collect(),
        tiers: l.spec.tier.len(),
        gates: l.spec.gate.len(),
        target_database: l.spec.target.database.fleet(),
        warnings: l.warnings,
        notes: l.notes,
        reaches_beyond: l.reaches_beyond,
    }))
}
