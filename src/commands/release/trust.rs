//! `airlock trust`: a trust store by command: a `.pub`'s key id, the keys a store
//! holds and what each may do, adding a key and revoking one (no heredoc into
//! trust.toml).

use crate::cli::{
    TrustAddArgs, TrustCommand, TrustIdArgs, TrustListArgs, TrustRemoveArgs, TrustRevokeArgs,
    TrustSetArgs, TrustSignArgs, TrustUpdateArgs,
};
use crate::error::{Error, Result};
use crate::report::{Outcome, Report};
use crate::trust::{Role, TrustStore, TrustedKey};
use crate::trust_edit::{self, stamp, NewKey};
use chrono::Utc;
use serde::Serialize;
use std::path::PathBuf;

pub fn run(cmd: TrustCommand) -> Result<Outcome> {
    match cmd {
        TrustCommand::Id(a) => id(a),
        TrustCommand::List(a) => list(a),
        TrustCommand::Add(a) => add(a),
        TrustCommand::Revoke(a) => revoke(a),
        TrustCommand::Remove(a) => remove(a),
        TrustCommand::Set(a) => set(a),
        TrustCommand::Sign(a) => sign(a),
        TrustCommand::Update(a) => update(a),
    }
}

/// One `.pub` file's key id.
#[derive(Serialize, schemars::JsonSchema)]
pub struct KeyIdRow {
    pub file: PathBuf,
    /// Minisign key id, uppercase hex: what `[keys.ID]` in trust.toml names.
    pub key_id: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct KeyIdReport {
    pub keys: Vec<KeyIdRow>,
}

impl Report for KeyIdReport {
    fn human(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{}  {}", k.key_id, k.file.display()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn id(args: TrustIdArgs) -> Result<Outcome> {
    let mut keys = vec![];
    for file in args.files {
        not_a_device_key(&file, "airlock trust id PREFIX.pub".into())?;
        let key = trust_edit::read_public(&file)?;
        keys.push(KeyIdRow {
            file,
            key_id: key.key_id.to_string(),
        });
    }
    Ok(Box::new(KeyIdReport { keys }))
}

/// One key of a store and what it may do now.
#[derive(Serialize, schemars::JsonSchema)]
pub struct KeyRow {
    pub key_id: String,
    pub file: PathBuf,
    /// Who holds it (`name` in trust.toml), when the store says.
    pub name: Option<String>,
    /// release, operator or approver.
    pub role: Role,
    pub groups: Vec<String>,
    /// RFC 3339, UTC.
    pub not_before: Option<String>,
    /// RFC 3339, UTC.
    pub not_after: Option<String>,
    /// Revoked for good (`revoked = true`).
    pub revoked: bool,
    /// Revoked from this time (RFC 3339, UTC).
    pub revoked_from: Option<String>,
    pub revoked_reason: Option<String>,
    /// Whether a signature made now would count: `counts`, `revoked`, `retired` or
    /// `not-yet`.
    pub state: &'static str,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct TrustListReport {
    pub store: PathBuf,
    /// Distinct release keys a bundle needs.
    pub threshold: u32,
    pub require_signed_receipts: bool,
    /// The store's version, when it is rotated by signature (absent: it cannot be).
    pub version: Option<u64>,
    /// Root keys that must sign it and the store that replaces it.
    pub root_threshold: Option<u32>,
    /// After this time `trust update` no longer accepts it (RFC 3339).
    pub expires: Option<String>,
    /// Its root keys that signed it as it is (key ids).
    pub signed_by: Vec<String>,
    pub keys: Vec<KeyRow>,
}

impl Report for TrustListReport {
    fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .keys
            .iter()
            .map(|k| {
                let mut what = k.role.as_str().to_string();
                if !k.groups.is_empty() {
                    what.push_str(&format!(" ({})", k.groups.join(", ")));
                }
                let mut window = vec![];
                if let Some(t) = &k.not_before {
                    window.push(format!("from {t}"));
                }
                if let Some(t) = &k.not_after {
                    window.push(format!("until {t}"));
                }
                if k.revoked {
                    window.push("revoked".into());
                }
                if let Some(t) = &k.revoked_from {
                    window.push(format!("revoked from {t}"));
                }
                if let Some(r) = &k.revoked_reason {
                    window.push(format!("({r})"));
                }
                vec![
                    k.key_id.clone(),
                    k.name.clone().unwrap_or_default(),
                    what,
                    k.state.to_string(),
                    window.join(" "),
                    k.file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        let rotation = match (self.version, self.root_threshold) {
            (Some(v), Some(k)) => format!(
                "\nversion {v}{}: changes only by `airlock trust update`; signed by {} of the {k} root key(s) it needs{}",
                self.expires
                    .as_ref()
                    .map(|t| format!(" (expires {t})"))
                    .unwrap_or_default(),
                self.signed_by.len(),
                if self.signed_by.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.signed_by.join(", "))
                }
            ),
            _ => "\nno version: this store cannot be rotated by signature (see `airlock trust add --role root`)".into(),
        };
        format!(
            "trust store {}: threshold {}, {} key(s){}{rotation}\n\n{}",
            self.store.display(),
            self.threshold,
            self.keys.len(),
            if self.require_signed_receipts {
                ", receipts must be signed by an operator key"
            } else {
                ""
            },
            crate::report::table(&["key id", "name", "role", "now", "window", "file"], &rows)
        )
    }
}

fn list(args: TrustListArgs) -> Result<Outcome> {
    let store = TrustStore::load(&args.store)?;
    Ok(Box::new(listing(&store)))
}

fn listing(store: &TrustStore) -> TrustListReport {
    listing_at(store, Utc::now())
}

/// The keys of `store` and what a signature made at `now` would be (the dossier states
/// the time it judges at).
pub(crate) fn listing_at(store: &TrustStore, now: chrono::DateTime<Utc>) -> TrustListReport {
    let keys = store
        .keys
        .iter()
        .map(|k| KeyRow {
            key_id: k.key.key_id.to_string(),
            file: k.file.clone(),
            name: k.policy.name.clone(),
            role: k.policy.role,
            groups: k.policy.groups.clone(),
            not_before: k.policy.not_before.map(stamp),
            not_after: k.policy.not_after.map(stamp),
            revoked: k.policy.revoked == Some(None),
            revoked_from: k.policy.revoked.flatten().map(stamp),
            revoked_reason: k.policy.revoked_reason.clone(),
            state: k.policy.state_at(now),
        })
        .collect();
    let rot = store.rotation.as_ref();
    let signed_by = rot
        .and_then(|r| {
            let roots: Vec<&TrustedKey> = store
                .keys
                .iter()
                .filter(|k| k.policy.role == Role::Root)
                .collect();
            crate::trust_rotation::signed_by(&store.path, r.version, &roots, now).ok()
        })
        .unwrap_or_default();
    TrustListReport {
        store: store.path.clone(),
        threshold: store.threshold,
        require_signed_receipts: store.require_signed_receipts,
        version: rot.map(|r| r.version),
        root_threshold: rot.map(|r| r.root_threshold),
        expires: rot.and_then(|r| r.expires).map(stamp),
        signed_by,
        keys,
    }
}

/// What `trust add` and `trust revoke` did, and the store after it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TrustChangeReport {
    /// `added`, `revoked` or `removed`.
    pub change: &'static str,
    pub key_id: String,
    pub file: PathBuf,
    pub store: TrustListReport,
}

impl Report for TrustChangeReport {
    fn human(&self) -> String {
        let row = self.store.keys.iter().find(|k| k.key_id == self.key_id);
        let what = match self.change {
            "added" => format!(
                "key {} added to {} with role {} ({})",
                self.key_id,
                self.store.store.display(),
                row.map(|r| r.role.as_str()).unwrap_or("release"),
                self.file.display()
            ),
            "removed" => format!(
                "key {} removed from {} ({} deleted): it is no key of the store's next version{}",
                self.key_id,
                self.store.store.display(),
                self.file.display(),
                if self.store.version.is_some() {
                    "; sign it with the root keys (airlock trust sign), then install it (airlock trust update)"
                } else {
                    ""
                }
            ),
            _ => format!(
                "key {} revoked in {}: {}",
                self.key_id,
                self.store.store.display(),
                match row.and_then(|r| r.revoked_from.as_deref()) {
                    Some(t) => format!(
                        "signatures it makes from {t} on never count; older ones need evidence (see airlock audit)"
                    ),
                    None => "it never counts again, whenever it signed".into(),
                }
            ),
        };
        format!("{what}\n\n{}", self.store.human())
    }
}

/// A `.pub` argument that is a token's or agent's key spec (`pkcs11:…`,
/// `ssh-agent:…`): it has no file to read; `keygen --from` makes its `.pub`. Refused
/// before the store is touched, the spec shown as every key spec is (no PIN).
fn not_a_device_key(file: &std::path::Path, then: String) -> Result<()> {
    let spec = airlock_keys::KeySpec::from(file);
    if !spec.is_device() {
        return Ok(());
    }
    Err(Error::usage(
        format!("{spec} is a key on a token or in an agent, not a .pub file"),
        Some(format!(
            "make its .pub with `airlock keygen --from {} --out PREFIX`, then `{then}`",
            spec.runnable()
        )),
    ))
}

fn add(args: TrustAddArgs) -> Result<Outcome> {
    not_a_device_key(
        &args.public_key,
        format!(
            "airlock trust add {} PREFIX.pub --role {}",
            airlock_keys::shell_word(&args.store.display().to_string()),
            Role::from(args.role).as_str()
        ),
    )?;
    let new = NewKey {
        role: args.role.into(),
        groups: args.groups,
        name: args.name,
        not_before: crate::commands::common::time_flag("--not-before", args.not_before.as_deref())?,
        not_after: crate::commands::common::time_flag("--not-after", args.not_after.as_deref())?,
    };
    let added = trust_edit::add(&args.store, &args.public_key, &new)?;
    let store = TrustStore::load(&args.store)?;
    Ok(Box::new(TrustChangeReport {
        change: "added",
        key_id: added.key_id,
        file: added.file,
        store: listing(&store),
    }))
}

fn revoke(args: TrustRevokeArgs) -> Result<Outcome> {
    let from = crate::commands::common::time_flag("--from", args.from.as_deref())?;
    let revoked = trust_edit::revoke(&args.store, &args.key_id, from, args.reason.as_deref())?;
    let store = TrustStore::load(&args.store)?;
    Ok(Box::new(TrustChangeReport {
        change: "revoked",
        key_id: revoked.key_id,
        file: revoked.file,
        store: listing(&store),
    }))
}

fn remove(args: TrustRemoveArgs) -> Result<Outcome> {
    let removed = trust_edit::remove(&args.store, &args.key_id)?;
    let store = TrustStore::load(&args.store)?;
    Ok(Box::new(TrustChangeReport {
        change: "removed",
        key_id: removed.key_id,
        file: removed.file,
        store: listing(&store),
    }))
}

fn set(args: TrustSetArgs) -> Result<Outcome> {
    let set = trust_edit::StorePolicy {
        threshold: args.threshold,
        require_signed_receipts: args.require_signed_receipts,
        version: args.store_version,
        root_threshold: args.root_threshold,
        expires: crate::commands::common::time_flag("--expires", args.expires.as_deref())?,
    };
    if set.threshold.is_none()
        && set.require_signed_receipts.is_none()
        && set.version.is_none()
        && set.root_threshold.is_none()
        && set.expires.is_none()
    {
        return Err(Error::usage(
            "nothing to set",
            Some("give --threshold N, --require-signed-receipts BOOL, --store-version N, --root-threshold K or --expires TIME".into()),
        ));
    }
    trust_edit::set_policy(&args.store, &set)?;
    let store = TrustStore::load(&args.store)?;
    Ok(Box::new(listing(&store)))
}

/// What `trust sign` wrote.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TrustSignReport {
    pub key_id: String,
    pub signature: PathBuf,
    pub store: TrustListReport,
}

impl Report for TrustSignReport {
    fn human(&self) -> String {
        format!(
            "signed {} (version {}) with key {}: {}\n\n{}",
            self.store.store.display(),
            self.store.version.unwrap_or_default(),
            self.key_id,
            self.signature.display(),
            self.store.human()
        )
    }
}

fn sign(args: TrustSignArgs) -> Result<Outcome> {
    let key = crate::commands::signing_key::load_secret_key(&args.key, &args.pass)?;
    let signature = crate::trust_rotation::sign(&args.store, &key)?;
    let store = TrustStore::load(&args.store)?;
    Ok(Box::new(TrustSignReport {
        key_id: key.key_id.to_string(),
        signature,
        store: listing(&store),
    }))
}

/// What `trust update` did.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TrustUpdateReport {
    pub from_version: u64,
    pub to_version: u64,
    /// Root keys of the replaced version that signed the new one.
    pub signed_by_current_roots: Vec<String>,
    /// The new version's own root keys that signed it.
    pub signed_by_new_roots: Vec<String>,
    /// Where the replaced version is kept.
    pub kept_as: PathBuf,
    pub store: TrustListReport,
}

impl Report for TrustUpdateReport {
    fn human(&self) -> String {
        format!(
            "trust store {} updated from version {} to {}: signed by the current roots {} and its own roots {}; version {} kept in {}\n\n{}",
            self.store.store.display(),
            self.from_version,
            self.to_version,
            self.signed_by_current_roots.join(", "),
            self.signed_by_new_roots.join(", "),
            self.from_version,
            self.kept_as.display(),
            self.store.human()
        )
    }
}

fn update(args: TrustUpdateArgs) -> Result<Outcome> {
    let now = Utc::now();
    let current = crate::commands::common::load_trust(&args.trust)?;
    // NEW read where it is first (its errors name it), then the copy that will be
    // installed is the one judged.
    TrustStore::load(&args.new)?;
    let staged = crate::trust_rotation::Staged::of(&args.trust, &args.new)?;
    let new = TrustStore::load(staged.path())?;
    let verdict =
        crate::trust_rotation::judge_update(&current, &new, now).map_err(|e| match e {
            crate::trust_rotation::RotationError::Refused { message, .. } => {
                crate::trust_rotation::RotationError::Refused {
                    store: args.new.clone(),
                    message,
                }
            }
            other => other,
        })?;
    staged.install(&args.trust, verdict.from, &verdict.via)?;
    // The host moves forward with it: every command now reads the new version.
    let installed = crate::commands::common::load_trust(&args.trust)?;
    Ok(Box::new(TrustUpdateReport {
        from_version: verdict.from,
        to_version: verdict.to,
        signed_by_current_roots: verdict.signed_by_current_roots,
        signed_by_new_roots: verdict.signed_by_new_roots,
        kept_as: args
            .trust
            .join(crate::trust_rotation::HISTORY_DIR)
            .join(format!("v{}", verdict.from)),
        store: listing(&installed),
    }))
}
