//! Setup shared by the commands that touch a database.

use super::common::{judge_time, load_trust};
use crate::cli::{DbArgs, ParamArgs, TrustArgs};
use crate::db::conn::{self, ConnSpec};
use crate::error::Result;
use crate::verified::VerifiedBundle;
use std::collections::BTreeMap;
use std::path::Path;

/// Verify the bundle (before any connection), check params, resolve the connection.
pub fn prepare(
    bundle: &Path,
    trust: &TrustArgs,
    db: &DbArgs,
    params: &ParamArgs,
) -> Result<(VerifiedBundle, ConnSpec, BTreeMap<String, String>)> {
    prepare_with(bundle, trust, db, params, false)
}

/// [`prepare`] for `apply`: the first large tier file that can run as it streams from
/// the archive is not kept but executed chunk by chunk as each is authenticated
/// ([`VerifiedBundle::load_streaming`]); the run must call
/// [`VerifiedBundle::complete`] before it commits.
pub fn prepare_streaming(
    bundle: &Path,
    trust: &TrustArgs,
    db: &DbArgs,
    params: &ParamArgs,
) -> Result<(VerifiedBundle, ConnSpec, BTreeMap<String, String>)> {
    prepare_with(bundle, trust, db, params, true)
}

fn prepare_with(
    bundle: &Path,
    trust: &TrustArgs,
    db: &DbArgs,
    params: &ParamArgs,
    streaming: bool,
) -> Result<(VerifiedBundle, ConnSpec, BTreeMap<String, String>)> {
    let store = load_trust(&trust.trust)?;
    let at = judge_time(None)?;
    let vb = if streaming {
        VerifiedBundle::load_streaming(bundle, &store, at, Default::default())?
    } else {
        VerifiedBundle::load(bundle, &store, at)?
    };
    let p = crate::db::parse_params(&params.params, &vb.manifest().params)?;
    let spec = conn::resolve(db.db.as_deref(), &vb.manifest().target.database)?;
    Ok((vb, spec, p))
}
