//! Whether the receipts a deploy will write would count: the trust store's receipt
//! policy, judged the same way by `apply`, `rollback`, `reissue` and `plan`'s
//! receipt-policy row (so all say the same, with the same exit code), and the
//! `--sign-receipt` key read as they read it.

use crate::commands::common::load_trust;
use crate::commands::signing_key::{how_to_add, load_secret_key, SigningKey};
use crate::error::{Error, Result};
use crate::trust::Role;
use airlock_keys::KeySpec;

/// Before anything changes: a receipt the trust store would not count is refused.
/// `require_signed_receipts` needs `--sign-receipt` with one of its operator keys; a
/// key the store lists must be an operator key, unrevoked and valid now, whether or
/// not signing is required (its signature would never count). `plan` judges with this
/// same function (its receipt-policy row), so both say the same with the same exit
/// code. Ok: what was checked, in one line.
pub(crate) fn receipt_policy(
    store: &crate::trust::TrustStore,
    key: Option<(&crate::minisign::PublicKey, &KeySpec)>,
) -> Result<String> {
    let store_name = store.path.display().to_string();
    let Some((public, spec)) = key else {
        if store.require_signed_receipts {
            return Err(Error::usage(
                format!("trust store {store_name} requires signed receipts (require_signed_receipts = true); nothing was changed"),
                Some("pass --sign-receipt KEY with an operator key listed in the trust store".into()),
            ));
        }
        return Ok(format!(
            "receipts unsigned: trust store {store_name} does not require signed receipts"
        ));
    };
    let id = &public.key_id;
    let Some(entry) = store.find_key(public) else {
        if store.require_signed_receipts {
            return Err(Error::usage(
                format!("receipt key {spec} ({id}) is not in trust store {store_name}, so its receipts would not count; nothing was changed"),
                Some(format!("{}; or sign with an operator key listed there", how_to_add(spec, &store.path, "operator", id))),
            ));
        }
        return Ok(format!(
            "receipts signed with {id}, a key trust store {store_name} does not list (its signature would not count there)"
        ));
    };
    let now = chrono::Utc::now();
    let p = &entry.policy;
    let why = if p.role != Role::Operator {
        Some(format!(
            "has role {} in trust store {store_name}; receipts count only from operator keys",
            p.role.as_str()
        ))
    } else if matches!(p.revoked, Some(None)) || matches!(p.revoked, Some(Some(t)) if t <= now) {
        Some(format!("is revoked in trust store {store_name}"))
    } else if p.not_before.is_some_and(|nb| now < nb) || p.not_after.is_some_and(|na| now > na) {
        Some(format!(
            "is outside its validity window in trust store {store_name}"
        ))
    } else {
        None
    };
    match why {
        None => Ok(format!(
            "receipts signed with operator key {id} of trust store {store_name}"
        )),
        Some(why) => Err(Error::usage(
            format!("receipt key {spec} ({id}) {why}: its signature would not count; nothing was changed"),
            Some(
                "sign receipts with a current operator key (role = \"operator\" in trust.toml)"
                    .into(),
            ),
        )),
    }
}

/// [`receipt_policy`] for a deploy: the trust store read from its path, and returned
/// (what else the deploy judges with it: which ledger rows an operator signed).
pub(crate) fn check_receipt_policy(
    trust: &crate::cli::TrustArgs,
    key: Option<&SigningKey>,
    spec: Option<&KeySpec>,
) -> Result<crate::trust::TrustStore> {
    let store = load_trust(&trust.trust)?;
    let public = key.map(SigningKey::public);
    receipt_policy(&store, public.as_ref().zip(spec))?;
    Ok(store)
}

/// The key a `--sign-receipt` names, read as apply reads it.
pub(crate) fn receipt_key(
    spec: Option<&KeySpec>,
    pass: &crate::cli::PassphraseArgs,
) -> Result<Option<SigningKey>> {
    spec.map(|s| load_secret_key(s, pass)).transpose()
}
