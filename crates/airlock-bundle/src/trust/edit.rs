//! Changing a trust store by command (`airlock trust add`, `airlock trust revoke`)
//! instead of by hand.
//!
//! Invariant: a store is never left in a state the reader refuses. Each edit is made
//! on a staged copy (the store's `*.pub` files and `trust.toml` in a private temporary
//! directory), loaded there by the same [`TrustStore::load`] every command uses, and
//! only then put in place: a new `.pub` first (never over an existing file), then
//! `trust.toml` by one atomic rename. `trust.toml`'s comments and layout are kept.
//!
//! A versioned store (see `trust_rotation`) that was signed gets the next version with
//! its first change, and its signatures are removed: it needs its root keys' signatures
//! again (`airlock trust sign`) before any command uses it.

use crate::minisign::{MinisignError, PublicKey};
use crate::trust::{is_key_name, Role, TrustError, TrustStore, POLICY_FILE};
use chrono::{DateTime, SecondsFormat, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The store as it is, or as the edit would leave it, is refused by the reader.
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("{}: {source}", path.display())]
    Key {
        path: PathBuf,
        source: MinisignError,
    },
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: airlock_base::bounded::ReadError,
    },
    /// The public key is in the store already (as `file`).
    #[error("key {key_id} is already in trust store {} (as {}); nothing changed", store.display(), file.display())]
    AlreadyThere {
        store: PathBuf,
        key_id: String,
        file: PathBuf,
    },
    /// Another key's file has the name the new key would get.
    #[error("trust store {} already has a file {}; nothing changed", store.display(), name)]
    NameTaken { store: PathBuf, name: String },
    #[error("trust store {} has no key {key_id}; nothing changed", store.display())]
    NoSuchKey { store: PathBuf, key_id: String },
    #[error("key {key_id} is already revoked{}; nothing changed", from.map(|t| format!(" from {}", stamp(t))).unwrap_or_default())]
    AlreadyRevoked {
        key_id: String,
        from: Option<DateTime<Utc>>,
    },
    /// A value given on the command line that trust.toml may not hold.
    #[error("{0}; nothing changed")]
    Value(String),
    #[error("trust.toml in {}: {message}", store.display())]
    Policy { store: PathBuf, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl EditError {
    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            EditError::Trust(e) => Some(e.hint()),
            EditError::AlreadyThere { .. } => Some(
                "`airlock trust list STORE` shows its role and window; change them in trust.toml"
                    .into(),
            ),
            EditError::NameTaken { name, .. } => Some(format!(
                "give the new key another file name (copy it to e.g. KEYID.pub first); {name} stays as it is"
            )),
            EditError::NoSuchKey { .. } => {
                Some("`airlock trust list STORE` shows the store's key ids".into())
            }
            EditError::Read { source, .. } => source.hint(),
            _ => None,
        }
    }

    /// Whether the fault is in what was given (a usage error), not in the machine.
    pub fn is_usage(&self) -> bool {
        !matches!(self, EditError::Io { .. })
    }
}

/// RFC 3339 in UTC, seconds, `Z`: how times are written into trust.toml.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The public key in a `.pub` file (its key id is what `[keys.ID]` names).
pub fn read_public(path: &Path) -> Result<PublicKey, EditError> {
    Ok(read_public_file(path)?.0)
}

/// The public key in a `.pub` file and the file's text (read once, capped).
fn read_public_file(path: &Path) -> Result<(PublicKey, String), EditError> {
    let text = airlock_base::bounded::read_capped_string(path, airlock_base::bounded::PUBLIC_KEY)
        .map_err(|source| EditError::Read {
        path: path.into(),
        source,
    })?;
    let key = PublicKey::parse(&text).map_err(|source| EditError::Key {
        path: path.into(),
        source,
    })?;
    Ok((key, text))
}

/// What a new key's `[keys.ID]` entry says.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub role: Role,
    pub groups: Vec<String>,
    pub name: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
}

/// A key put into a store.
#[derive(Clone, Debug)]
pub struct Added {
    pub key_id: String,
    pub file: PathBuf,
    /// Whether the store directory was made for it.
    pub created_store: bool,
}

/// Put the public key at `public` into the store at `store` (a directory, made when
/// missing) with the policy `new`. Refused, with nothing changed: a key already there
/// (by bytes or id), a file name taken, a policy the reader would refuse.
pub fn add(store: &Path, public: &Path, new: &NewKey) -> Result<Added, EditError> {
    let (key, pub_text) = read_public_file(public)?;
    let key_id = key.key_id.to_string();
    check_new(new)?;
    let created_store = !store.exists();
    let current = current_store(store)?;
    if let Some(k) = current.as_ref().and_then(|s| {
        s.keys
            .iter()
            .find(|k| k.key.key == key.key || k.key.key_id == key.key_id)
    }) {
        return Err(EditError::AlreadyThere {
            store: store.into(),
            key_id,
            file: k.file.clone(),
        });
    }
    let name = public
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pub"))
        .unwrap_or_else(|| format!("{key_id}.pub"));
    if store.join(&name).exists() {
        return Err(EditError::NameTaken {
            store: store.into(),
            name,
        });
    }
    let mut doc = policy_document(store)?;
    next_version(&mut doc, current.as_ref());
    if new.role == Role::Root && doc.get("version").is_none() {
        // The first root key makes the store one rotated by signature.
        doc["version"] = toml_edit::value(1);
        doc["root_threshold"] = toml_edit::value(1);
        doc["issued"] = toml_edit::value(crate::trust::rfc3339(Utc::now()));
    }
    let entry = key_entry(&mut doc, &key_id);
    if new.role != Role::Release {
        entry["role"] = toml_edit::value(new.role.as_str());
    }
    if !new.groups.is_empty() {
        let mut groups = toml_edit::Array::new();
        for g in &new.groups {
            groups.push(g.as_str());
        }
        entry["groups"] = toml_edit::value(groups);
    }
    if let Some(n) = &new.name {
        entry["name"] = toml_edit::value(n.as_str());
    }
    if let Some(t) = new.not_before {
        entry["not_before"] = toml_edit::value(stamp(t));
    }
    if let Some(t) = new.not_after {
        entry["not_after"] = toml_edit::value(stamp(t));
    }
    let staged = Staged::of(
        store,
        Some((&name, pub_text.as_bytes())),
        None,
        &doc.to_string(),
    )?;
    staged.check()?;
    if created_store {
        std::fs::create_dir_all(store).map_err(|e| EditError::Io {
            context: format!("cannot create {}", store.display()),
            source: e,
        })?;
    }
    let file = store.join(&name);
    write_new(&file, pub_text.as_bytes())?;
    if let Err(e) = replace_policy(store, &doc.to_string()) {
        let _ = std::fs::remove_file(&file);
        if created_store {
            let _ = std::fs::remove_dir(store);
        }
        return Err(e);
    }
    drop_signatures(store)?;
    Ok(Added {
        key_id,
        file,
        created_store,
    })
}

/// A key revoked in a store.
#[derive(Clone, Debug)]
pub struct Revoked {
    pub key_id: String,
    pub file: PathBuf,
    pub from: Option<DateTime<Utc>>,
}

/// Revoke the key with id `key_id` in `store`: for good (`from` None: it never counts
/// again, whenever a bundle was signed) or from a time (earlier signatures need
/// evidence, as for `not_after`).
pub fn revoke(
    store: &Path,
    key_id: &str,
    from: Option<DateTime<Utc>>,
    reason: Option<&str>,
) -> Result<Revoked, EditError> {
    let current = current_store(store)?.ok_or_else(|| EditError::NoSuchKey {
        store: store.into(),
        key_id: key_id.trim().to_ascii_uppercase(),
    })?;
    let wanted = key_id.trim().to_ascii_uppercase();
    let key = current
        .find_id(&wanted)
        .ok_or_else(|| EditError::NoSuchKey {
            store: store.into(),
            key_id: wanted.clone(),
        })?;
    if let Some(at) = key.policy.revoked {
        return Err(EditError::AlreadyRevoked {
            key_id: wanted,
            from: at,
        });
    }
    if let Some(r) = reason {
        if r.trim().is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control) {
            return Err(EditError::Value(format!(
                "--reason {r:?} must be one line of at most 200 printable characters"
            )));
        }
    }
    let mut doc = policy_document(store)?;
    next_version(&mut doc, Some(&current));
    let entry = key_entry(&mut doc, &wanted);
    entry["revoked"] = match from {
        None => toml_edit::value(true),
        Some(t) => toml_edit::value(stamp(t)),
    };
    if let Some(r) = reason {
        entry["revoked_reason"] = toml_edit::value(r);
    }
    let staged = Staged::of(store, None, None, &doc.to_string())?;
    staged.check()?;
    replace_policy(store, &doc.to_string())?;
    drop_signatures(store)?;
    Ok(Revoked {
        key_id: wanted,
        file: key.file.clone(),
        from,
    })
}

/// A key taken out of a store.
#[derive(Clone, Debug)]
pub struct Removed {
    pub key_id: String,
    pub file: PathBuf,
}

/// Take the key with id `key_id` out of `store`: its `.pub` file and its `[keys.ID]`
/// entry, so that from the store's next version on it is no key of the store at all
/// (the old roots of a new root set; a key that was added by mistake). Unlike a
/// revocation nothing remembers it: what it signed proves nothing with this store
/// (keep `trust revoke --from` for a release key whose earlier bundles must go on
/// verifying). Refused, nothing changed, when the store would be refused after it (its
/// last root key, fewer root keys than `root_threshold`, fewer release keys than
/// `threshold`).
pub fn remove(store: &Path, key_id: &str) -> Result<Removed, EditError> {
    let wanted = key_id.trim().to_ascii_uppercase();
    let no_such = || EditError::NoSuchKey {
        store: store.into(),
        key_id: wanted.clone(),
    };
    let current = current_store(store)?.ok_or_else(no_such)?;
    let key = current.find_id(&wanted).ok_or_else(no_such)?;
    let file = key.file.clone();
    let roots = current.keys.iter().filter(|k| k.policy.role == Role::Root);
    if key.policy.role == Role::Root && roots.count() == 1 {
        return Err(EditError::Value(format!(
            "key {wanted} is the store's only root key: a versioned store needs one (add the new root keys first, then remove the old ones)"
        )));
    }
    let mut doc = policy_document(store)?;
    next_version(&mut doc, Some(&current));
    if let Some(keys) = doc.get_mut("keys").and_then(|k| k.as_table_like_mut()) {
        keys.remove(&wanted);
    }
    let staged = Staged::of(store, None, file.file_name(), &doc.to_string())?;
    staged.check()?;
    // The key's file goes first: until trust.toml follows, its `[keys.ID]` entry names
    // a key that is not there, which the reader refuses (never a root key left behind
    // as a release key).
    let bytes = std::fs::read(&file).map_err(|source| EditError::Io {
        context: format!("cannot read {}", file.display()),
        source,
    })?;
    std::fs::remove_file(&file).map_err(|source| EditError::Io {
        context: format!("cannot remove {}", file.display()),
        source,
    })?;
    if let Err(e) = replace_policy(store, &doc.to_string()) {
        let _ = write_new(&file, &bytes);
        return Err(e);
    }
    drop_signatures(store)?;
    Ok(Removed {
        key_id: wanted,
        file,
    })
}

/// The store as the reader loads it; `None` for a directory that does not exist yet or
/// holds no key. A single `.pub` file is no store to edit.
fn current_store(store: &Path) -> Result<Option<TrustStore>, EditError> {
    if !store.exists() {
        return Ok(None);
    }
    if !store.is_dir() {
        return Err(EditError::Value(format!(
            "{} is a file: a trust store to change is a directory of *.pub files and trust.toml",
            store.display()
        )));
    }
    let has_key = std::fs::read_dir(store)
        .map_err(|source| EditError::Io {
            context: format!("cannot read {}", store.display()),
            source,
        })?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".pub"));
    if !has_key {
        return Ok(None);
    }
    Ok(Some(TrustStore::load(store)?))
}

/// Set the store-wide policy: `threshold` (distinct release keys a bundle needs) and
/// `require_signed_receipts`, written at the top of trust.toml (a line appended after a
/// `[keys.ID]` table would belong to that key, and be refused).
pub fn set_policy(store: &Path, set: &StorePolicy) -> Result<(), EditError> {
    let Some(current) = current_store(store)? else {
        return Err(EditError::Value(format!(
            "{} holds no key yet: add one first (airlock trust add)",
            store.display()
        )));
    };
    let (threshold, require_signed_receipts) = (set.threshold, set.require_signed_receipts);
    if threshold == Some(0) {
        return Err(EditError::Value(
            "--threshold 0 would trust anything; use 1 or more".into(),
        ));
    }
    let mut doc = policy_document(store)?;
    if set.version.is_none() {
        next_version(&mut doc, Some(&current));
    }
    if let Some(n) = threshold {
        doc["threshold"] = toml_edit::value(i64::from(n));
    }
    if let Some(b) = require_signed_receipts {
        doc["require_signed_receipts"] = toml_edit::value(b);
    }
    if let Some(v) = set.version {
        let v = i64::try_from(v)
            .map_err(|_| EditError::Value(format!("--store-version {v} is too large")))?;
        doc["version"] = toml_edit::value(v);
    }
    if let Some(k) = set.root_threshold {
        doc["root_threshold"] = toml_edit::value(i64::from(k));
    }
    if let Some(t) = set.expires {
        doc["expires"] = toml_edit::value(stamp(t));
    }
    let staged = Staged::of(store, None, None, &doc.to_string())?;
    staged.check()?;
    replace_policy(store, &doc.to_string())?;
    drop_signatures(store)
}

/// The store-wide fields `airlock trust set` changes (None: unchanged).
#[derive(Clone, Debug, Default)]
pub struct StorePolicy {
    pub threshold: Option<u32>,
    pub require_signed_receipts: Option<bool>,
    pub version: Option<u64>,
    pub root_threshold: Option<u32>,
    pub expires: Option<DateTime<Utc>>,
}

/// A versioned store whose root keys signed it as it is: its first change starts the
/// next version, issued now (a store already changed since it was signed keeps its
/// number and time).
fn next_version(doc: &mut toml_edit::DocumentMut, current: Option<&TrustStore>) {
    let Some(store) = current else { return };
    let Some(rot) = &store.rotation else { return };
    if crate::trust::rotation::check_self(store, Utc::now()).is_ok() {
        doc["version"] = toml_edit::value(rot.version as i64 + 1);
        doc["issued"] = toml_edit::value(crate::trust::rfc3339(Utc::now()));
    }
}

/// The store's signatures, which no longer cover it after a change.
fn drop_signatures(store: &Path) -> Result<(), EditError> {
    let dir = store.join(crate::trust::rotation::SIGNATURES_DIR);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EditError::Io {
            context: format!("cannot remove {}", dir.display()),
            source: e,
        }),
    }
}

fn check_new(new: &NewKey) -> Result<(), EditError> {
    if let Some(n) = &new.name {
        if !is_key_name(n) {
            return Err(EditError::Value(format!(
                "--name {n:?} must be one line of at most 100 printable characters"
            )));
        }
    }
    if !new.groups.is_empty() && new.role != Role::Approver {
        return Err(EditError::Value(format!(
            "--group names approvers for [ratification] required_groups; a {} key takes none (add --role approver)",
            new.role.as_str()
        )));
    }
    if let Some(g) = new.groups.iter().find(|g| !crate::spec::is_group_name(g)) {
        return Err(EditError::Value(format!(
            "--group {g:?} must be lowercase letters, digits, _ and - (e.g. l4)"
        )));
    }
    if let (Some(a), Some(b)) = (new.not_before, new.not_after) {
        if b <= a {
            return Err(EditError::Value(format!(
                "--not-after {} is not after --not-before {}",
                stamp(b),
                stamp(a)
            )));
        }
    }
    Ok(())
}

/// trust.toml of `store` as an editable document (empty when there is none).
fn policy_document(store: &Path) -> Result<toml_edit::DocumentMut, EditError> {
    let path = store.join(POLICY_FILE);
    if !path.exists() {
        return Ok(toml_edit::DocumentMut::new());
    }
    let text =
        airlock_base::bounded::read_capped_string(&path, airlock_base::bounded::TRUST_POLICY)
            .map_err(|source| EditError::Read {
                path: path.clone(),
                source,
            })?;
    text.parse()
        .map_err(|e: toml_edit::TomlError| EditError::Policy {
            store: store.into(),
            message: e.to_string(),
        })
}

/// The `[keys.ID]` table of `doc`, made (at the end) when missing.
fn key_entry<'a>(doc: &'a mut toml_edit::DocumentMut, id: &str) -> &'a mut toml_edit::Table {
    let keys = doc.entry("keys").or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    let keys = keys
        .as_table_mut()
        .expect("trust.toml's keys is a table (the reader checked)");
    keys.entry(id)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .expect("[keys.ID] is a table (the reader checked)")
}

/// A copy of a store with one edit made, in a private temporary directory.
struct Staged {
    dir: tempfile::TempDir,
}

impl Staged {
    fn of(
        store: &Path,
        new_pub: Option<(&str, &[u8])>,
        omit: Option<&std::ffi::OsStr>,
        policy: &str,
    ) -> Result<Staged, EditError> {
        let io = |context: String| move |source| EditError::Io { context, source };
        let dir = tempfile::tempdir().map_err(io("cannot make a staging directory".into()))?;
        if store.is_dir() {
            for entry in
                std::fs::read_dir(store).map_err(io(format!("cannot read {}", store.display())))?
            {
                let entry = entry.map_err(io(format!("cannot read {}", store.display())))?;
                let name = entry.file_name();
                if name.to_string_lossy().ends_with(".pub") && Some(name.as_os_str()) != omit {
                    std::fs::copy(entry.path(), dir.path().join(&name))
                        .map_err(io(format!("cannot copy {}", entry.path().display())))?;
                }
            }
        }
        if let Some((name, bytes)) = new_pub {
            std::fs::write(dir.path().join(name), bytes)
                .map_err(io("cannot stage the key".into()))?;
        }
        std::fs::write(dir.path().join(POLICY_FILE), policy)
            .map_err(io("cannot stage trust.toml".into()))?;
        Ok(Staged { dir })
    }

    /// The reader's verdict on the staged store (errors name the staged copy's files
    /// by name only).
    fn check(&self) -> Result<(), EditError> {
        TrustStore::load(self.dir.path()).map(|_| ()).map_err(|e| {
            EditError::Value(format!(
                "the store would be refused after this change: {}",
                e.to_string()
                    .replace(&format!("{}/", self.dir.path().display()), "")
            ))
        })
    }
}

/// Write a new file (never over an existing one), mode 0644, synced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), EditError> {
    write_file(path, bytes, false)
}

/// Replace `store`/trust.toml with `text` by one atomic rename.
fn replace_policy(store: &Path, text: &str) -> Result<(), EditError> {
    write_file(&store.join(POLICY_FILE), text.as_bytes(), true)
}

/// `bytes` into `path` through a synced temporary file beside it, mode 0644, renamed
/// in place (over an existing file only when `replace`); the directory synced after.
fn write_file(path: &Path, bytes: &[u8], replace: bool) -> Result<(), EditError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |source| EditError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    set_public_mode(tmp.path()).map_err(io)?;
    if replace {
        tmp.persist(path).map_err(|e| io(e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| io(e.error))?;
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn set_public_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}
