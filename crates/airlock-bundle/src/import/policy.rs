//! The policy a release hands to the one that follows it (`import --since`): what the
//! team added to the previous release's `bundle.toml` and a migration folder cannot
//! say — its params, its gates (each with its query), its ratification, its target's
//! role, search_path, minimum server version and superuser need, its preflight and
//! verify probes (each with its query), and which gates its tiers named.
//!
//! Tier names never repeat along a train (each migration is the tier of one release),
//! so a gate cannot follow a tier by its name; instead every new tier names each gate
//! some tier of the previous release named (the strictest of its tiers): a gate the
//! team set up is never skipped by a migration written later. A tier where one does
//! not belong has it removed in the `bundle.toml` import wrote.
//!
//! Invariant: only policy is carried. The files carried are the previous release's
//! gate and probe queries, byte for byte as it signed them (read-only questions `lint`
//! judges as such); a tier's or the rollback's SQL is never carried, nor a probe
//! `import` wrote itself (the rollback's, the peer history's, a fresh target's).

use super::IMPORT_PROBES;
use crate::spec::{GateSpec, ParamSpec, ProbeSpec, Ratification};
use std::collections::BTreeMap;

/// `[target]`'s policy keys (not `database`, which `--database` names).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TargetPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_path: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_server_version: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub superuser: bool,
}

/// The previous release's policy, as its verified manifest holds it.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub params: BTreeMap<String, ParamSpec>,
    pub gates: Vec<GateSpec>,
    pub ratification: Option<Ratification>,
    pub target: TargetPolicy,
    pub preflight: Option<ProbeSpec>,
    pub verify: Option<ProbeSpec>,
    /// The gates each tier of the previous release named, tier by tier.
    pub tier_gates: Vec<Vec<String>>,
    /// The bytes of each gate and probe file above, by path, as signed.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// One piece of policy carried, for the import report.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Carried {
    /// Where it is in `bundle.toml`: `params.ticket`, `gate.window`, `ratification`,
    /// `target.role`, `preflight`, `verify`, `tier.gates`.
    pub what: String,
    /// What it says (a file carried, the gates each new tier names…).
    pub detail: String,
}

impl Policy {
    /// The probe files the policy keeps: the team's, never one import writes.
    pub fn is_team_probe(probe: &ProbeSpec) -> bool {
        !IMPORT_PROBES.contains(&probe.file.as_str())
    }

    /// Whether import writes a file of this path itself.
    pub fn written_by_import(path: &str) -> bool {
        IMPORT_PROBES.contains(&path)
    }

    /// The files the carried sections name: each gate's and kept probe's (the
    /// preflight's only when `preflight`: as in [`Policy::sections_toml`]). Read from
    /// the previous bundle with `preflight` true.
    pub fn files_named(&self, preflight: bool) -> Vec<String> {
        let preflight = self.preflight.as_ref().filter(|_| preflight);
        let probes = [preflight, self.verify.as_ref()];
        let mut files: Vec<String> = (self.gates.iter().map(|g| g.file.clone()))
            .chain(probes.into_iter().flatten().map(|p| p.file.clone()))
            .collect();
        // A gate and a probe may share a query file: written once.
        files.sort();
        files.dedup();
        files
    }

    /// The gates every new tier names: each gate some previous tier named, in the order
    /// `[[gate]]` declares them.
    pub fn new_tier_gates(&self) -> Vec<String> {
        (self.gates.iter())
            .filter(|g| self.tier_gates.iter().any(|t| t.contains(&g.name)))
            .map(|g| g.name.clone())
            .collect()
    }

    /// The keys to add to `[target]`, as TOML lines.
    pub fn target_toml(&self) -> String {
        toml::to_string(&self.target).unwrap_or_default()
    }

    /// `[params.*]`, `[[gate]]`, `[ratification]`, `[preflight]` (unless `preflight`
    /// is false: import writes its own) and `[verify]`, as TOML text.
    pub fn sections_toml(&self, preflight: bool) -> String {
        #[derive(serde::Serialize)]
        struct Sections<'a> {
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            params: &'a BTreeMap<String, ParamSpec>,
            #[serde(skip_serializing_if = "<[GateSpec]>::is_empty")]
            gate: &'a [GateSpec],
            #[serde(skip_serializing_if = "Option::is_none")]
            ratification: Option<&'a Ratification>,
            #[serde(skip_serializing_if = "Option::is_none")]
            preflight: Option<&'a ProbeSpec>,
            #[serde(skip_serializing_if = "Option::is_none")]
            verify: Option<&'a ProbeSpec>,
        }
        let sections = Sections {
            params: &self.params,
            gate: &self.gates,
            ratification: self.ratification.as_ref(),
            preflight: self.preflight.as_ref().filter(|_| preflight),
            verify: self.verify.as_ref(),
        };
        toml::to_string(&sections).unwrap_or_default()
    }

    /// What is carried, one entry each, for the report (`preflight`: as above).
    pub fn carried(&self, preflight: bool) -> Vec<Carried> {
        let mut out = vec![];
        let mut add = |what: String, detail: String| out.push(Carried { what, detail });
        for (name, p) in &self.params {
            let required = if p.required { "required" } else { "optional" };
            add(format!("params.{name}"), required.to_string());
        }
        for g in &self.gates {
            add(format!("gate.{}", g.name), format!("its query {}", g.file));
        }
        if let Some(r) = &self.ratification {
            add("ratification".into(), format!("threshold {}", r.threshold));
        }
        let t = &self.target;
        if let Some(role) = &t.role {
            add("target.role".into(), role.clone());
        }
        if let Some(path) = &t.search_path {
            add("target.search_path".into(), path.join(", "));
        }
        if let Some(v) = t.min_server_version {
            add("target.min_server_version".into(), v.to_string());
        }
        if t.superuser {
            add("target.superuser".into(), "true".into());
        }
        for (what, probe) in [("preflight", &self.preflight), ("verify", &self.verify)] {
            if let Some(p) = probe.as_ref().filter(|_| what != "preflight" || preflight) {
                add(
                    what.into(),
                    format!("its query {}, expecting the same", p.file),
                );
            }
        }
        let gates = self.new_tier_gates();
        if !gates.is_empty() {
            add(
                "tier.gates".into(),
                format!(
                    "every new tier names {} (the gates the previous release's tiers named)",
                    gates.join(", ")
                ),
            );
        }
        out
    }
}
