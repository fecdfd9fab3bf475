//! The signed trust store a bundle carries (`pack --trust-update`), applied to the
//! host's store before the bundle is judged with it, by every command that judges a
//! bundle for this host (verify, sql, runbook, extract, approve, gate, plan, apply,
//! rollback, rehearse); never by `inspect` or `audit`, which only read.
//!
//! Invariant: the store a bundle is judged with is the host's store after the carried
//! update was applied (when newer and approved by the host's roots), so a revocation
//! shipped with release N+1 takes effect before N+1's own signatures count; a carried
//! store that is not signed by its own roots refuses the bundle (exit 4), and nothing
//! of it is installed.

use crate::commands::common::load_trust_admitted;
use crate::error::Result;
use crate::trust::TrustStore;
use crate::trust_rotation::Accepted;
use crate::trust_update::Applied;
pub use crate::trust_update::CarriedNote;
use std::path::Path;
use std::sync::Mutex;

/// `trust_update` beside every document's other fields (the schema's view of it).
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
pub struct CarriedField {
    /// What the signed trust store the bundle carries did to this host's store.
    trust_update: Option<CarriedNote>,
}

static NOTE: Mutex<Option<CarriedNote>> = Mutex::new(None);

/// What this run's bundle did to the host's store, once (the renderer takes it).
pub fn take() -> Option<CarriedNote> {
    NOTE.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The trust store at `trust` as every command reads it ([`load_trust`]), after the
/// signed store `bundle` carries was applied to it.
pub fn load_trust_for_bundle(trust: &Path, bundle: &Path) -> Result<TrustStore> {
    Ok(load_trust_for_bundle_admitted(trust, bundle)?.0)
}

/// [`load_trust_for_bundle`], with what the host's memory said of the store.
pub fn load_trust_for_bundle_admitted(
    trust: &Path,
    bundle: &Path,
) -> Result<(TrustStore, Accepted)> {
    let (store, accepted) = load_trust_admitted(trust)?;
    let Some(carried) = crate::archive::head::carried_trust_store(bundle)? else {
        return Ok((store, accepted));
    };
    let applied = crate::trust_update::apply(&store, &carried, chrono::Utc::now())?;
    let note = CarriedNote {
        store: store.path.clone(),
        line: applied.line(&store.path),
        applied: applied.clone(),
    };
    *NOTE.lock().unwrap_or_else(|p| p.into_inner()) = Some(note);
    match applied {
        // Read again as every command reads it: the host remembers the new version.
        Applied::Updated { .. } => load_trust_admitted(trust),
        _ => Ok((store, accepted)),
    }
}
