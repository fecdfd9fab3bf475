//! `airlock verify` and `airlock inspect`: one report type, two levels of detail.

use super::common::{bundle_progress, judge_time, load_trust};
use crate::archive::{read_bundle, read_bundle_observed, Discard, Judge, Limits};
use crate::cli::{InspectArgs, VerifyArgs};
use crate::error::Result;
use crate::manifest::Manifest;
use crate::report::{table, Outcome, Report};
use crate::trust::TrustVerdict;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Serialize, schemars::JsonSchema)]
pub struct BundleReport {
    /// VERIFIED (trust store given and satisfied) or UNVERIFIED (structure only).
    pub status: String,
    pub bundle: PathBuf,
    pub bundle_id: String,
    pub manifest: Manifest,
    pub signatures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustVerdict>,
    pub payload_bytes: u64,
    #[serde(skip)]
    detailed: bool,
}

impl Report for BundleReport {
    fn human(&self) -> String {
        let m = &self.manifest;
        let mut s = format!(
            "{}: {} {} (sequence {})\n  bundle id: {}\n  target:    database {:?}\n  files:     {} ({} bytes, every SHA-256 checked)",
            crate::style::verdict(&self.status),
            m.bundle.name,
            m.bundle.version,
            m.bundle.sequence,
            self.bundle_id,
            m.target.database,
            m.files.len(),
            self.payload_bytes
        );
        if let Some(e) = &m.bundle.expires {
            s.push_str(&format!("\n  expires:   {e}"));
        }
        match &self.trust {
            Some(v) => {
                s.push_str(&format!(
                    "\n  signatures: {} of {} required distinct trusted keys (judged at {})",
                    v.distinct_keys, v.threshold, v.judged_at
                ));
                for c in &v.signatures {
                    s.push_str(&format!(
                        "\n    {} {}{}",
                        c.key_id,
                        if c.counted { "counted" } else { "not counted" },
                        c.note
                            .as_ref()
                            .map(|n| format!(" - {n}"))
                            .unwrap_or_default()
                    ));
                }
            }
            None => s.push_str(&format!(
                "\n  signatures: {} (NOT checked: no trust store given; pass --trust to verify)",
                if self.signatures.is_empty() {
                    "none".to_string()
                } else {
                    self.signatures.join(", ")
                }
            )),
        }
        if self.detailed {
            if !m.bundle.description.is_empty() {
                s.push_str(&format!("\n\n{}", m.bundle.description));
            }
            if !m.params.is_empty() {
                s.push_str("\n\nparams:");
                for (k, p) in &m.params {
                    s.push_str(&format!(
                        "\n  {k}{}{} - {}",
                        if p.required { " (required)" } else { "" },
                        p.pattern
                            .as_ref()
                            .map(|x| format!(" pattern {x}"))
                            .unwrap_or_default(),
                        p.description
                    ));
                }
            }
            let rows: Vec<Vec<String>> = m
                .tier
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    vec![
                        (i + 1).to_string(),
                        t.name.clone(),
                        t.gates.join(","),
                        t.files.join(" "),
                    ]
                })
                .collect();
            s.push_str("\n\n");
            s.push_str(&table(&["#", "tier", "gates", "files"], &rows));
            let rows: Vec<Vec<String>> = m
                .files
                .iter()
                .map(|f| vec![f.path.clone(), f.size.to_string(), f.sha256.clone()])
                .collect();
            s.push_str("\n\n");
            s.push_str(&table(&["file", "bytes", "sha256"], &rows));
            if !m.runbook.is_empty() {
                s.push_str("\n\nrunbooks:");
                for r in &m.runbook {
                    s.push_str(&format!("\n  {} - {} ({})", r.file, r.title, r.audience));
                }
            }
        }
        s
    }
}

pub fn verify(args: VerifyArgs) -> Result<Outcome> {
    let store = load_trust(&args.trust.trust)?;
    let judging = match &args.at {
        Some(_) => crate::trust::Judging::at(Some(judge_time(args.at.as_deref())?)),
        None => crate::trust::Judging::now(),
    };
    let op = read_bundle_observed(
        &args.bundle,
        Judge::Judged {
            store: &store,
            judging,
        },
        &Limits::default(),
        &mut Discard,
        &bundle_progress(&args.bundle, "verifying"),
    )?;
    Ok(Box::new(report(args.bundle, op, "VERIFIED", false)))
}

pub fn inspect(args: InspectArgs) -> Result<Outcome> {
    let op = match &args.trust {
        Some(t) => {
            let store = load_trust(t)?;
            let at = chrono::Utc::now();
            read_bundle(
                &args.bundle,
                Judge::Trust { store: &store, at },
                &Limits::default(),
                &mut Discard,
            )?
        }
        None => read_bundle(
            &args.bundle,
            Judge::StructureOnly,
            &Limits::default(),
            &mut Discard,
        )?,
    };
    let status = if args.trust.is_some() {
        "VERIFIED"
    } else {
        "UNVERIFIED"
    };
    Ok(Box::new(report(args.bundle, op, status, true)))
}

fn report(
    bundle: PathBuf,
    op: crate::archive::Opened,
    status: &str,
    detailed: bool,
) -> BundleReport {
    BundleReport {
        status: status.into(),
        bundle,
        payload_bytes: op.manifest.payload_size(),
        signatures: op
            .signatures
            .iter()
            .map(|(_, s)| s.key_id.to_string())
            .collect(),
        bundle_id: op.bundle_id,
        manifest: op.manifest,
        trust: op.trust,
        detailed,
    }
}
