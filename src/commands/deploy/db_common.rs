//! Setup shared by the commands that touch a database.

use crate::cli::{ApprovalArgs, DbArgs, ParamArgs, TrustArgs};
use crate::commands::common::{judge_time, load_trust, verdicts};
use crate::db::conn::{self, ConnSpec};
use crate::db::ratify::Approvals;
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
    let store = crate::commands::release::carried::load_trust_for_bundle(&trust.trust, bundle)?;
    let at = judge_time(None)?;
    let vb = if streaming {
        VerifiedBundle::load_streaming(bundle, &store, at, Default::default(), &verdicts())?
    } else {
        VerifiedBundle::load(bundle, &store, at, &verdicts())?
    };
    let p = crate::db::parse_params(&params.params, &vb.manifest().params)?;
    let spec = conn::resolve_for(db.db.as_deref(), &vb.manifest().target.database)?;
    Ok((vb, spec, p))
}

/// The approvals `--approval` names (maybe none), with the trust store that judges
/// them and the rows of a bundle's approvals table. A path that cannot be read is a
/// usage error before anything connects; an approval that reads but does not count is
/// judged (and refused) later.
pub fn approvals(args: &ApprovalArgs, trust: &TrustArgs) -> Result<Approvals> {
    crate::approval::read_approvals(&args.approvals).map_err(|e| {
        crate::Error::usage(
            e.to_string(),
            Some("name approval files written by `airlock approve` (FILE, with FILE.minisig beside it) or a directory of them".into()),
        )
    })?;
    Ok(Approvals {
        store: load_trust(&trust.trust)?,
        paths: args.approvals.clone(),
    })
}
