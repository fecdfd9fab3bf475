//! `airlock sql`: the SQL a run would send, from the verified bundle, without
//! extracting it: each tier's files in run order (or the rollback's), each headed by
//! its tier and file, the gates and probes with them on request.
//!
//! Invariant: only a bundle that verifies against the trust store is shown, and a
//! file is shown as the bundle holds it (terminal-safe escaping aside); a file larger
//! than [`SHOWN_MAX`] is named with its size instead (`airlock extract` writes it).

use crate::cli::SqlArgs;
use crate::commands::common::{judge_time, verdicts};
use crate::error::{Error, Result};
use crate::report::{Outcome, Report};
use crate::verified::VerifiedBundle;
use serde::Serialize;

/// Files larger than this are named, not shown.
pub const SHOWN_MAX: u64 = 1 << 20;

/// One file of the run, where it runs and its text.
#[derive(Serialize, schemars::JsonSchema)]
pub struct SqlFile {
    /// `tier N NAME`, `rollback`, `gate NAME`, `preflight`, `verify`.
    pub part: String,
    /// Whether the part runs online (one statement at a time, outside a transaction).
    pub online: bool,
    pub file: String,
    pub bytes: u64,
    /// The file's text; absent when it is larger than 1 MiB.
    pub sql: Option<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct SqlReport {
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub files: Vec<SqlFile>,
}

impl Report for SqlReport {
    fn human(&self) -> String {
        let mut s = format!(
            "-- {} {} (bundle id {}), verified: the SQL in the order a run sends it",
            self.bundle_name, self.bundle_version, self.bundle_id
        );
        for f in &self.files {
            s.push_str(&format!(
                "\n\n-- {}{}: {} ({} bytes)\n",
                f.part,
                if f.online { " (online)" } else { "" },
                f.file,
                f.bytes
            ));
            match &f.sql {
                Some(text) => s.push_str(text.trim_end()),
                None => s.push_str("-- not shown here (over 1 MiB): airlock extract BUNDLE --trust PATH --out DIR writes it"),
            }
        }
        s
    }
}

pub fn run(args: SqlArgs) -> Result<Outcome> {
    let store =
        crate::commands::release::carried::load_trust_for_bundle(&args.trust.trust, &args.bundle)?;
    let vb = VerifiedBundle::load(&args.bundle, &store, judge_time(None)?, &verdicts())?;
    let m = vb.manifest();
    let mut parts: Vec<(String, bool, String)> = vec![];
    if args.rollback {
        let Some(r) = &m.rollback else {
            return Err(Error::usage("this bundle has no [rollback]", None));
        };
        for f in &r.files {
            parts.push(("rollback".into(), r.online, f.clone()));
        }
    } else {
        if args.checks {
            for g in &m.gate {
                parts.push((format!("gate {}", g.name), false, g.file.clone()));
            }
            if let Some(p) = &m.preflight {
                parts.push(("preflight".into(), false, p.file.clone()));
            }
        }
        let last = match &args.through {
            Some(t) => m.tier.iter().position(|x| x.name == *t).ok_or_else(|| {
                Error::usage(
                    format!("--through {t:?}: this bundle has no such tier"),
                    Some(format!(
                        "its tiers: {}",
                        m.tier
                            .iter()
                            .map(|x| x.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                )
            })?,
            None => m.tier.len().saturating_sub(1),
        };
        for (i, t) in m.tier.iter().enumerate().take(last + 1) {
            for f in &t.files {
                parts.push((format!("tier {} {}", i + 1, t.name), t.online, f.clone()));
            }
        }
        if args.checks {
            if let Some(p) = &m.verify {
                parts.push(("verify".into(), false, p.file.clone()));
            }
        }
    }
    let mut files = vec![];
    for (part, online, file) in parts {
        let bytes = m
            .files
            .iter()
            .find(|e| e.path == file)
            .map_or(0, |e| e.size);
        let sql = if bytes > SHOWN_MAX {
            None
        } else {
            Some(String::from_utf8_lossy(&vb.read_all(&file)?).into_owned())
        };
        files.push(SqlFile {
            part,
            online,
            file,
            bytes,
            sql,
        });
    }
    Ok(Box::new(SqlReport {
        bundle_id: vb.id().into(),
        bundle_name: m.bundle.name.clone(),
        bundle_version: m.bundle.version.clone(),
        files,
    }))
}
