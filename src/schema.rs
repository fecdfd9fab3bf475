//! JSON Schemas for bundle.toml, manifest.json, receipts and every `--json` output,
//! generated from the same types the code serializes. `schemas/` holds the committed
//! copies; a test fails when they drift (re-bless with `AIRLOCK_BLESS=1 cargo test`).

use schemars::schema::RootSchema;
use schemars::schema_for;

/// The version of the `--json` documents' field names, in every document
/// (`json_version`): 2 names the bundle `bundle_name`/`bundle_version` in every
/// command and every output path `out`; 1 (no field) was before.
pub const JSON_VERSION: u32 = 2;

/// What `main` adds to every `--json` document: `ok` (the exit code is 0),
/// `exit_code`, as error documents have them, and `json_version`.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct Envelope {
    ok: bool,
    exit_code: crate::exit::Exit,
    /// The version of the documents' field names ([`JSON_VERSION`]).
    json_version: u32,
}

/// Every `--json` document also carries the envelope and the run's server notices
/// (`main` adds them).
fn with_notices(mut root: RootSchema) -> RootSchema {
    for extra in [
        schema_for!(Envelope),
        schema_for!(crate::db::notices::Notices),
        schema_for!(crate::commands::carried::CarriedField),
        schema_for!(crate::project::ProjectField),
    ] {
        if let (Some(obj), Some(more)) = (root.schema.object.as_mut(), extra.schema.object) {
            obj.required.extend(more.required.iter().cloned());
            obj.properties.extend(more.properties);
        }
        root.definitions.extend(extra.definitions);
    }
    root
}

pub fn all() -> Vec<(&'static str, RootSchema)> {
    let mut all = files();
    for (name, schema) in all.iter_mut() {
        let document = !matches!(
            *name,
            "bundle.toml.schema.json"
                | "manifest.schema.json"
                | "receipt.schema.json"
                | "error.schema.json"
                | "trust.toml.schema.json"
        );
        if document {
            *schema = with_notices(std::mem::take(schema));
        }
    }
    all
}

fn files() -> Vec<(&'static str, RootSchema)> {
    use crate::commands::*;
    vec![
        ("bundle.toml.schema.json", schema_for!(crate::spec::Spec)),
        (
            "manifest.schema.json",
            schema_for!(crate::manifest::Manifest),
        ),
        (
            "receipt.schema.json",
            schema_for!(crate::db::apply::Receipt),
        ),
        ("error.schema.json", schema_for!(crate::report::ErrorDoc)),
        (
            "trust.toml.schema.json",
            schema_for!(crate::trust::TrustToml),
        ),
        ("keygen.schema.json", schema_for!(keygen::KeygenReport)),
        ("trust-id.schema.json", schema_for!(trust::KeyIdReport)),
        (
            "trust-list.schema.json",
            schema_for!(trust::TrustListReport),
        ),
        (
            "trust-change.schema.json",
            schema_for!(trust::TrustChangeReport),
        ),
        (
            "trust-sign.schema.json",
            schema_for!(trust::TrustSignReport),
        ),
        (
            "trust-update.schema.json",
            schema_for!(trust::TrustUpdateReport),
        ),
        ("new.schema.json", schema_for!(new::NewReport)),
        ("lint.schema.json", schema_for!(lint::LintReport)),
        ("import.schema.json", schema_for!(import::ImportReport)),
        ("pack.schema.json", schema_for!(pack::PackReport)),
        ("sign.schema.json", schema_for!(sign::SignReport)),
        ("verify.schema.json", schema_for!(verify::BundleReport)),
        ("inspect.schema.json", schema_for!(verify::BundleReport)),
        ("extract.schema.json", schema_for!(extract::ExtractReport)),
        ("runbook.schema.json", schema_for!(runbook::RunbookReport)),
        ("sql.schema.json", schema_for!(show_sql::SqlReport)),
        ("dossier.schema.json", schema_for!(dossier::DossierReport)),
        ("approve.schema.json", schema_for!(approve::ApproveReport)),
        ("gate.schema.json", schema_for!(gate::GateOutcome)),
        ("plan.schema.json", schema_for!(gate::PlanOutcome)),
        (
            "plan-rollback.schema.json",
            schema_for!(gate::RollbackPlanOutcome),
        ),
        ("apply.schema.json", schema_for!(apply::ReceiptOutcome)),
        ("rollback.schema.json", schema_for!(apply::ReceiptOutcome)),
        ("reissue.schema.json", schema_for!(reissue::ReissueReport)),
        (
            "rehearse.schema.json",
            schema_for!(rehearse::RehearseOutcome),
        ),
        ("setup.schema.json", schema_for!(setup::SetupOutcome)),
        ("status.schema.json", schema_for!(status::StatusReport)),
        (
            "fingerprint.schema.json",
            schema_for!(status::FingerprintReport),
        ),
        (
            "fingerprint-diff.schema.json",
            schema_for!(status::FingerprintDiff),
        ),
        ("audit.schema.json", schema_for!(audit::AuditReport)),
        ("demo.schema.json", schema_for!(demo::DemoReport)),
        (
            "completions.schema.json",
            schema_for!(completions::GeneratedText),
        ),
        ("man.schema.json", schema_for!(completions::GeneratedText)),
    ]
}

pub fn render(s: &RootSchema) -> String {
    let mut t = serde_json::to_string_pretty(s).expect("schema serializes");
    t.push('\n');
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let bless = std::env::var("AIRLOCK_BLESS").is_ok();
        for (name, schema) in super::all() {
            let text = super::render(&schema);
            let path = dir.join(name);
            if bless {
                std::fs::write(&path, &text).expect("write schema");
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "schemas/{name} is out of date; run AIRLOCK_BLESS=1 cargo test --lib schema"
            );
        }
    }
}
