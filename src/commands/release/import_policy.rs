//! The policy `import --since` carries: read from the release followed, once it has
//! verified (its signed manifest, and its gate and probe queries as signed).
//!
//! Invariant: nothing is read from an unverified bundle, and no tier or rollback file
//! is read at all (`airlock_bundle::import::Policy` says what policy is).

use crate::error::{Error, Result};
use crate::verified::VerifiedBundle;
use airlock_bundle::import::{Policy, TargetPolicy};

/// The policy of `vb` (the bundle at `path`, for errors).
pub fn of(vb: &VerifiedBundle, path: &std::path::Path) -> Result<Policy> {
    let m = vb.manifest();
    let mut policy = Policy {
        params: m.params.clone(),
        gates: m.gate.clone(),
        ratification: m.ratification.clone(),
        target: TargetPolicy {
            role: m.target.role.clone(),
            search_path: m.target.search_path.clone(),
            min_server_version: m.target.min_server_version,
            superuser: m.target.superuser,
        },
        preflight: m.preflight.clone().filter(Policy::is_team_probe),
        verify: m.verify.clone().filter(Policy::is_team_probe),
        tier_gates: m.tier.iter().map(|t| t.gates.clone()).collect(),
        files: Default::default(),
    };
    for file in policy.files_named(true) {
        let bytes = vb.read_all(&file).map_err(|e| {
            Error::usage(
                format!("{}: reading {file}: {e}", path.display()),
                Some("nothing was written".to_string()),
            )
        })?;
        policy.files.insert(file, bytes);
    }
    Ok(policy)
}
