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
    let store = load_trust(&trust.trust)?;
    let vb = VerifiedBundle::load(bundle, &store, judge_time(None)?)?;
    let p = crate::db::parse_params(&params.params, &vb.manifest().params)?;
    let spec = conn::resolve(db.db.as_deref(), &vb.manifest().target.database)?;
    Ok((vb, spec, p))
}
