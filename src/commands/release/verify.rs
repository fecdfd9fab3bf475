//! `airlock verify` and `airlock inspect`: one report type, two levels of detail.

use crate::archive::{read_bundle, read_bundle_observed, Discard, Judge, Limits};
use crate::cli::{InspectArgs, VerifyArgs};
use crate::commands::common::{bundle_progress, judge_time, load_trust, verdicts};
use crate::error::Result;
use crate::manifest::Manifest;
use crate::report::{table, Outcome, Report};
use crate::trust::TrustVerdict;
use airlock_bundle::sql_rules::{Judged, Judgment};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Serialize, schemars::JsonSchema)]
pub struct BundleReport {
    /// VERIFIED (trust store given and satisfied) or UNVERIFIED (structure only).
    pub status: String,
    /// The bundle file.
    pub bundle: PathBuf,
    pub bundle_id: String,
    /// `manifest.bundle.name`, as every command names it.
    pub bundle_name: String,
    /// `manifest.bundle.version`, as every command names it.
    pub bundle_version: String,
    pub manifest: Manifest,
    pub signatures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustVerdict>,
    pub payload_bytes: u64,
    /// `verify`: how the SQL rules came to pass: "judged" (now) or "remembered" (this
    /// build of airlock judged this very bundle on this host before, and it passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql_rules: Option<Judgment>,
    /// `verify`: the trust store's version (absent: it has none, and cannot be rotated
    /// by signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_store_version: Option<u64>,
    #[serde(skip)]
    detailed: bool,
    #[serde(skip)]
    store_line: Option<String>,
}

impl Report for BundleReport {
    fn human(&self) -> String {
        let manifest = &self.manifest;
        let mut out = format!(
            "{}: {} {} (sequence {})\n  bundle id: {}\n  target:    {}\n  files:     {} ({} bytes, every file's SHA-256 checked)",
            crate::style::verdict(&self.status),
            manifest.bundle.name,
            manifest.bundle.version,
            manifest.bundle.sequence,
            self.bundle_id,
            target_line(&manifest.target.database),
            manifest.files.len(),
            self.payload_bytes
        );
        match self.sql_rules {
            Some(Judgment::Remembered) => out.push_str(
                "\n  SQL rules: passed (this build judged this bundle here before; --rejudge judges again)",
            ),
            Some(Judgment::Judged) => {
                out.push_str("\n  SQL rules: passed (every statement judged)")
            }
            None => {}
        }
        if let Some(expires) = &manifest.bundle.expires {
            out.push_str(&format!("\n  expires:   {expires}"));
        }
        if let Some(t) = &manifest.trust_update {
            out.push_str(&format!(
                "\n  carries:   signed trust store version {} ({} file(s)), applied to a host's store before the bundle is judged",
                t.version,
                t.files.len()
            ));
        }
        out.push_str(&self.signatures_lines());
        if let Some(line) = &self.store_line {
            out.push_str(&format!("\n  trust store: {line}"));
        }
        if self.detailed {
            out.push_str(&details(manifest));
        }
        out
    }
}

impl BundleReport {
    /// How the signatures were judged, one line each; or that they were not.
    fn signatures_lines(&self) -> String {
        let Some(trust) = &self.trust else {
            return format!(
                "\n  signatures: {} (NOT checked: no trust store given; pass --trust to verify)",
                if self.signatures.is_empty() {
                    "none".to_string()
                } else {
                    self.signatures.join(", ")
                }
            );
        };
        let mut out = format!(
            "\n  signatures: {} of {} required distinct trusted keys (judged at {})",
            trust.distinct_keys, trust.threshold, trust.judged_at
        );
        for sig in &trust.signatures {
            out.push_str(&format!(
                "\n    {}{} {}{}",
                sig.key_id,
                sig.key_name
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                if sig.counted {
                    "counted"
                } else {
                    "not counted"
                },
                sig.note
                    .as_ref()
                    .map(|n| format!(" - {n}"))
                    .unwrap_or_default()
            ));
        }
        out
    }
}

/// The gates, probes, ratification and rollback, one line each.
fn checks_lines(m: &Manifest) -> String {
    let expect = |e: &crate::spec::Expect| {
        e.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    for g in &m.gate {
        out.push_str(&format!("\n  gate {}: {}", g.name, g.file));
    }
    if let Some(p) = &m.preflight {
        out.push_str(&format!(
            "\n  preflight: {} expects {}",
            p.file,
            expect(&p.expect)
        ));
    }
    if let Some(p) = &m.verify {
        out.push_str(&format!(
            "\n  verify:    {} expects {}",
            p.file,
            expect(&p.expect)
        ));
    }
    if let Some(r) = &m.ratification {
        let mut what = format!("{} signed approval(s) from approver keys", r.threshold);
        if !r.required_groups.is_empty() {
            what.push_str(&format!(
                ", one from each of the groups {}",
                r.required_groups.join(", ")
            ));
        }
        if !r.required.is_empty() {
            what.push_str(&format!(", including keys {}", r.required.join(", ")));
        }
        out.push_str(&format!("\n  ratification: {what}"));
    }
    match &m.rollback {
        Some(r) => {
            let probe = r
                .probe
                .clone()
                .or_else(|| m.preflight.as_ref().map(|p| p.file.clone()))
                .unwrap_or_else(|| "none".into());
            out.push_str(&format!(
                "\n  rollback{}: {}; then probe {probe}",
                if r.online { " (online)" } else { "" },
                r.files.join(" ")
            ));
        }
        None => out.push_str("\n  rollback: none (this bundle cannot be rolled back by airlock)"),
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

/// What `inspect` adds: description, params, tiers, checks, files and runbooks.
/// The target as `verify` and `inspect` show it: `database "app"` (as always), or a
/// fleet: `fleet: the databases matching "tenant_*" (any database matching one)`.
pub fn target_line(target: &crate::spec::TargetDatabase) -> String {
    match target {
        crate::spec::TargetDatabase::Name(n) => format!("database {n:?}"),
        fleet => format!(
            "fleet: {} (the name guard accepts any database matching one, no other)",
            fleet.describe()
        ),
    }
}

fn details(manifest: &Manifest) -> String {
    let mut out = String::new();
    if !manifest.bundle.description.is_empty() {
        out.push_str(&format!("\n\n{}", manifest.bundle.description));
    }
    if !manifest.params.is_empty() {
        out.push_str("\n\nparams:");
        for (name, param) in &manifest.params {
            out.push_str(&format!(
                "\n  {name}{}{}{} - {}",
                if param.required { " (required)" } else { "" },
                param
                    .default
                    .as_ref()
                    .map(|d| format!(" default {d:?}"))
                    .unwrap_or_default(),
                param
                    .pattern
                    .as_ref()
                    .map(|x| format!(" pattern {x}"))
                    .unwrap_or_default(),
                param.description
            ));
        }
    }
    let rows: Vec<Vec<String>> = manifest
        .tier
        .iter()
        .enumerate()
        .map(|(i, tier)| {
            vec![
                (i + 1).to_string(),
                tier.name.clone(),
                if tier.online {
                    "online"
                } else {
                    "in the transaction"
                }
                .to_string(),
                tier.gates.join(","),
                tier.files.join(" "),
            ]
        })
        .collect();
    out.push_str("\n\n");
    out.push_str(&table(&["#", "tier", "runs", "gates", "files"], &rows));
    out.push_str(&checks_lines(manifest));
    let rows: Vec<Vec<String>> = manifest
        .files
        .iter()
        .map(|f| vec![f.path.clone(), f.size.to_string(), f.sha256.clone()])
        .collect();
    out.push_str("\n\n");
    out.push_str(&table(&["file", "bytes", "sha256"], &rows));
    if !manifest.runbook.is_empty() {
        out.push_str("\n\nrunbooks:");
        for runbook in &manifest.runbook {
            out.push_str(&format!(
                "\n  {} - {} ({})",
                runbook.file, runbook.title, runbook.audience
            ));
        }
    }
    out
}

pub fn verify(args: VerifyArgs) -> Result<Outcome> {
    let (store, accepted) = crate::commands::release::carried::load_trust_for_bundle_admitted(
        &args.trust.trust,
        &args.bundle,
    )?;
    let judging = match &args.at {
        Some(_) => crate::trust::Judging::at(Some(judge_time(args.at.as_deref())?)),
        None => crate::trust::Judging::now(),
    };
    // The SQL rules are judged here exactly as before a run (sql_rules), so that a
    // bundle this airlock verifies is one it will run.
    let mut discard = Discard;
    let verdicts = if args.rejudge {
        verdicts().rejudging()
    } else {
        verdicts()
    };
    let mut judged = Judged::new(&mut discard).remembering(&verdicts);
    let op = read_bundle_observed(
        &args.bundle,
        Judge::Judged {
            store: &store,
            judging,
        },
        &Limits::default(),
        &mut judged,
        &bundle_progress(&args.bundle, "verifying"),
    )?;
    let judgment = judged.verdict()?;
    if judgment == Judgment::Judged {
        verdicts.remember(&op.bundle_id);
    }
    let mut report = report(args.bundle, op, "VERIFIED", false);
    report.sql_rules = Some(judgment);
    report.trust_store_version = store.rotation.as_ref().map(|r| r.version);
    report.store_line = Some(match accepted {
        crate::trust_rotation::Accepted::Unversioned => {
            "no version: it cannot be rotated by signature (airlock trust add --role root)".into()
        }
        crate::trust_rotation::Accepted::Same(v) => {
            format!("version {v}, signed by its root keys; the version this host accepted")
        }
        crate::trust_rotation::Accepted::New { version, from: None } => format!(
            "version {version}, signed by its root keys; first seen on this host, remembered"
        ),
        crate::trust_rotation::Accepted::New {
            version,
            from: Some(f),
        } => format!(
            "version {version}, signed by the roots of version {f} this host had accepted; remembered"
        ),
    });
    Ok(Box::new(report))
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

/// `inspect`'s report of a bundle already verified (the dossier renders it).
pub(crate) fn of_verified(bundle: PathBuf, vb: &crate::verified::VerifiedBundle) -> BundleReport {
    report(bundle, vb.opened.clone(), "VERIFIED", true)
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
        bundle_name: op.manifest.bundle.name.clone(),
        bundle_version: op.manifest.bundle.version.clone(),
        manifest: op.manifest,
        trust: op.trust,
        sql_rules: None,
        trust_store_version: None,
        detailed,
        store_line: None,
    }
}
