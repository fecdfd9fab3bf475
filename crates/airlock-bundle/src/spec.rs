//! `bundle.toml`: types, loading, validation (`airlock lint`).
//!
//! Invariant: a `Spec` that passed [`lint`] names only safe, existing, regular files,
//! every SQL file passed the parser rules for its role, and every cross-reference
//! (tier → gate, rollback → probe) resolves. The same section types are embedded,
//! resolved, in `manifest.json`.

use crate::bundle_path::BundlePath;
pub use crate::target_db::TargetDatabase;
use airlock_sql::{self, SqlRole};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `(key, value)` expectations of a probe. Refuses duplicate keys when read from JSON.
pub type Expect = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TxMode {
    /// The whole apply is one transaction.
    #[default]
    Single,
    /// Each tier commits on its own (with its own ledger row).
    PerTier,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleSection {
    /// The release's name; the ledger keeps one history per name.
    pub name: String,
    /// The release's version, as people call it (free text).
    pub version: String,
    /// Order among releases of this name: the ledger refuses a lower sequence than one
    /// already applied (a downgrade).
    pub sequence: u64,
    /// What the release does, for people.
    #[serde(default)]
    pub description: String,
    /// RFC 3339 time (e.g. 2027-01-01T00:00:00Z) after which verify, gate, apply and the
    /// rest refuse the bundle as expired (exit 4); auditors judge it at an earlier time
    /// with `--at`. Covered by the signatures. Without it the bundle never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// single (default): the whole apply is one transaction; per-tier: each tier
    /// commits on its own.
    #[serde(default)]
    pub transaction: TxMode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The database the bundle is for (the name guard compares `current_database()`
    /// with it), or a fleet: a list of exact names and glob patterns (`tenant_*`; `*`
    /// any characters, `?` one, `[a-z]`/`[!a-z]` one of a set) any of which a database
    /// may match. In bundle.toml a name holding `*`, `?` or `[` is a pattern (recorded in
    /// the manifest as a one-entry list); a manifest's plain string is always an exact
    /// name.
    pub database: TargetDatabase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_server_version: Option<i64>,
    /// The search_path every bundle file (tier, rollback, gate, probe) runs under,
    /// whatever the database's or role's defaults; `$user` keeps its meaning. Default
    /// `["public"]` (not PostgreSQL's `["$user", "public"]`: a schema named after the
    /// deploying role would shadow `public`; declare `"$user"` to want it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_path: Option<Vec<String>>,
    /// The role the tier and rollback files run as (airlock switches to it for them
    /// and back for its own statements). Default: the owner of the target database.
    /// The role airlock connects as must be able to become it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `true`: the tier and rollback files need a superuser and run as the role airlock
    /// connects as, which must be one. Not together with `role`. Whenever bundle SQL
    /// could reach a superuser, airlock refuses to run while code owned by a
    /// non-superuser sits on the database's relations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub superuser: bool,
}

/// Names PostgreSQL reserves: no role can carry them.
const RESERVED_ROLES: [&str; 5] = [
    "public",
    "none",
    "current_user",
    "session_user",
    "current_role",
];

/// The search_path bundle SQL runs under when bundle.toml declares none: `public`
/// only, not whatever the database or role was set to, and not PostgreSQL's
/// `"$user"` first: a schema named after the deploying role (or the gate role) is
/// one the database's owner may create, and it would shadow `public`'s tables. A
/// bundle that wants `"$user"` declares it.
pub fn default_search_path() -> Vec<String> {
    vec!["public".into()]
}

impl Target {
    /// The declared search_path, or `["public"]`.
    pub fn search_path(&self) -> Vec<String> {
        self.search_path.clone().unwrap_or_else(default_search_path)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The value a run has when `--param NAME=…` is not given (signed with the bundle;
    /// it must match `pattern`). Approvals consent to it as to a given value. A param
    /// with a default is never missing, so it cannot also be `required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    pub name: String,
    pub file: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    pub file: String,
    #[serde(deserialize_with = "crate::strict_json::strict_map")]
    pub expect: Expect,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    pub name: String,
    pub files: Vec<String>,
    #[serde(default)]
    pub gates: Vec<String>,
    /// An online tier: its statements run one at a time outside any transaction, in
    /// order, each recorded in the ledger as it completes (an interrupted apply goes on
    /// with the next). Only statements safe to run outside a transaction and again
    /// belong here: CREATE INDEX CONCURRENTLY IF NOT EXISTS, DROP INDEX CONCURRENTLY IF
    /// EXISTS, REINDEX … CONCURRENTLY, VALIDATE CONSTRAINT, DETACH PARTITION …
    /// CONCURRENTLY, VACUUM, ANALYZE, ALTER TYPE … ADD VALUE IF NOT EXISTS. An online
    /// tier ends the transaction of the tiers before it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub online: bool,
    /// What this tier means to destroy: schema-qualified names (`public.doomed`, a
    /// schema `app`, a column `public.t.note`), each covering what it holds. `plan`
    /// counts what the tier's statements destroy and warns of destruction of anything
    /// there now that no name here covers; a name nothing destroys is a note. Signed
    /// with the manifest; absent, the manifest's bytes are what they were before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destroys: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackSpec {
    pub files: Vec<String>,
    /// Probe expectation after rollback; defaults to `preflight.expect`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict_json::opt_strict_map"
    )]
    pub expect: Option<Expect>,
    /// Probe file run after rollback; defaults to `preflight.file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// The rollback files run online (one statement at a time, outside a transaction;
    /// the same statements an online tier may hold, e.g. DROP INDEX CONCURRENTLY IF
    /// EXISTS), then the rollback probe. A rollback interrupted half-way runs again
    /// from its first statement.
    #[serde(default, skip_serializing_if = "is_false")]
    pub online: bool,
    /// The tier each rollback file undoes (`[rollback.undoes]`, file = tier name). After
    /// a partial apply (`apply --through`), `rollback` runs a file named here only when
    /// the ledger says its tier ran; a file not named here undoes the whole bundle and
    /// always runs (the meaning of every rollback file before this table existed).
    /// The files run in the order of `files`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::strict_json::strict_map"
    )]
    pub undoes: BTreeMap<String, String>,
}

impl RollbackSpec {
    /// The rollback files to run when the tiers `applied` ran: those that undo one of
    /// them, and those that undo the whole bundle, in the order of `files`.
    pub fn files_for(&self, applied: &[String]) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| self.undoes.get(*f).is_none_or(|t| applied.contains(t)))
            .cloned()
            .collect()
    }

    /// The rollback files that do not run when the tiers `applied` ran (their tiers
    /// did not), each with its tier.
    pub fn files_skipped(&self, applied: &[String]) -> Vec<(String, String)> {
        self.files
            .iter()
            .filter_map(|f| {
                let tier = self.undoes.get(f)?;
                (!applied.contains(tier)).then(|| (f.clone(), tier.clone()))
            })
            .collect()
    }
}

/// `[ratification]`: the signed approvals a gated tier needs besides its gates
/// (`airlock approve`). Approvals count from keys of the trust store with role
/// `approver`, one per distinct public key, each bound to this bundle id, sequence and
/// the run's params.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ratification {
    /// How many distinct approver keys must have approved before a tier with gates
    /// runs (at least 1).
    #[schemars(range(min = 1))]
    pub threshold: u32,
    /// Approver key ids (uppercase hex, as `airlock keygen` prints them) that must be
    /// among those approvals, e.g. the president's key. They count toward the threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Key groups (trust.toml's `groups` on approver keys, e.g. `l4`) each of which
    /// must have at least one approval among those that counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_groups: Vec<String>,
    /// A table (`schema.table`, columns `document` and `signature`, as text) the
    /// operator's application fills with approvals as they arrive: the gate's
    /// read-only transaction reads it, as the gate role, and airlock verifies every
    /// row as it verifies a file. A row counts only by its signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The gates whose tiers need the quorum (e.g. `["ratified"]`); empty: every tier
    /// that names a gate. A tier naming none of them runs on its gates alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
}

/// A key group's name in `[ratification] required_groups` and trust.toml's `groups`.
pub fn is_group_name(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 64
        && g.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Ratification {
    /// Whether a tier guarded by `tier_gates` needs the quorum.
    pub fn guards(&self, tier_gates: &[String]) -> bool {
        !tier_gates.is_empty()
            && (self.gates.is_empty() || tier_gates.iter().any(|g| self.gates.contains(g)))
    }

    /// The `table`'s schema and name, when it is `schema.table` of plain identifiers.
    pub fn table_parts(&self) -> Option<(&str, &str)> {
        let (schema, name) = self.table.as_deref()?.split_once('.')?;
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        (ident(schema) && ident(name)).then_some((schema, name))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookSpec {
    pub file: String,
    pub title: String,
    #[serde(default)]
    pub audience: String,
}

/// `bundle.toml` as written by a release manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub bundle: BundleSection,
    pub target: Target,
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    #[serde(default)]
    pub gate: Vec<GateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<ProbeSpec>,
    pub tier: Vec<TierSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<ProbeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackSpec>,
    #[serde(default)]
    pub runbook: Vec<RunbookSpec>,
    /// Signed approvals the gated tiers need (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratification: Option<Ratification>,
    /// The release this one follows on its train (`airlock import --since`): `plan` and
    /// `apply` refuse a database where that release is not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<Follows>,
    /// Every migration this release and the releases before it carried, in order, by
    /// name and the SHA-256 of its script as imported (`airlock import` writes it):
    /// the next `import --since` refuses a released migration edited since, or a new
    /// one inserted before the last released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<Released>,
}

/// The release a bundle follows (`[follows]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Follows {
    /// Its `[bundle] name`.
    pub name: String,
    /// Its `[bundle] version`.
    pub version: String,
    /// Its `[bundle] sequence`.
    pub sequence: u64,
    /// Its bundle id (the SHA-256 of its manifest, as `airlock verify` prints it).
    pub bundle_id: String,
    /// Its tiers: every one must be applied on a database this release runs on.
    pub tiers: Vec<String>,
}

/// A migration a release carried (`[[released]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Released {
    /// The migration as its tool names it (`V3__orders`, Liquibase's `author:id:file`).
    pub migration: String,
    /// SHA-256 (hex) of its script as `airlock import` read it.
    pub sha256: String,
    /// The `[bundle] version` of the release that carried it.
    pub release: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// `bundle.toml` over its cap (`airlock_base::bounded::SPEC`).
    #[error(transparent)]
    TooLarge(airlock_base::bounded::ReadError),
    #[error("{} problem(s) in {}:\n  {}", problems.len(), source_dir.display(), problems.join("\n  "))]
    Invalid {
        source_dir: PathBuf,
        problems: Vec<String>,
    },
}

/// The outcome of linting a source: the parsed spec plus warnings.
#[derive(Debug)]
pub struct Linted {
    pub spec: Spec,
    pub dir: PathBuf,
    /// Every payload path, sorted (bundle.toml and each named file, once).
    pub files: Vec<BundlePath>,
    /// SHA-256 (hex) and size of each of `files`, from the same read that linted it.
    pub hashes: BTreeMap<String, FileHash>,
    pub warnings: Vec<String>,
    /// What the SQL files hold that lint accepted and skipped (psql meta-commands
    /// airlock subsumes, transaction wrappers, a byte-order mark), `FILE:LINE: …`.
    pub notes: Vec<String>,
    /// The statements of the tier and rollback files that reach beyond the database,
    /// found in the same read (`lint_reach.rs`), in the order the spec names the files.
    pub reaches_beyond: Vec<airlock_sql::Reach>,
}

/// One file read and checked: its problems, its notes and warnings, its hash.
type Checked = (Vec<String>, Noted, FileHash);

/// A file's notes and warnings.
#[derive(Default)]
struct Noted {
    notes: Vec<String>,
    warnings: Vec<String>,
    /// The enum values a script adds, for the later files of its transaction.
    enum_values_added: Vec<airlock_sql::EnumValueAdded>,
    /// What a tier or rollback file reaches beyond the database (None: the file is
    /// neither, or lint refuses it).
    reaches: Option<Vec<airlock_sql::Reach>>,
}

/// A file's SHA-256, size and chunk hashes (files over [`crate::hashing::CHUNK`]).
pub type FileHash = (String, u64, Option<Vec<String>>);

/// Read one file once: check it by every SQL role it has, and hash it (whole and by
/// chunk, in the same pass).
fn read_and_check(
    dir: &Path,
    file: &str,
    roles: &[SqlRole],
    min_server_version: Option<i64>,
) -> Result<Checked, String> {
    use std::io::Read;
    let f = std::fs::File::open(dir.join(file)).map_err(|e| format!("cannot read {file}: {e}"))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = crate::hashing::HashingReader::with_chunks(std::io::BufReader::with_capacity(
        256 * 1024,
        f,
    ));
    let mut problems = vec![];
    let mut noted = Noted::default();
    let read_err = |e: std::io::Error| format!("cannot read {file}: {e}");
    match roles {
        [] => {}
        [role] => {
            let (found, reaches) =
                check_one_role(&mut r, file, *role, min_server_version).map_err(read_err)?;
            if found.problems.is_empty() {
                noted.reaches = reaches.map(|found| crate::lint_reach::settle(dir, file, found));
            }
            problems.extend(found.problems.iter().map(ToString::to_string));
            noted
                .notes
                .extend(found.notes.iter().map(ToString::to_string));
            noted
                .warnings
                .extend(found.warnings.iter().map(ToString::to_string));
            noted.enum_values_added = found.enum_values_added;
        }
        // The same file in several roles (rare): judged from memory by each.
        many => {
            let cap = airlock_base::bounded::SQL_MANY_ROLES;
            let mut bytes = vec![];
            if size <= cap.bytes {
                (&mut r)
                    .take(cap.bytes + 1)
                    .read_to_end(&mut bytes)
                    .map_err(read_err)?;
            }
            if size > cap.bytes || bytes.len() as u64 > cap.bytes {
                return Err(format!(
                    "{file} is named in {} SQL roles and is over {} bytes, the cap for {}: each role judges it from memory; give each role its own file",
                    many.len(),
                    cap.bytes,
                    cap.what
                ));
            }
            for role in many {
                let found =
                    airlock_sql::check_reader_for(file, &mut &bytes[..], *role, min_server_version)
                        .map_err(read_err)?;
                problems.extend(found.iter().map(ToString::to_string));
            }
            if problems.is_empty() && many.iter().copied().any(crate::lint_reach::is_script) {
                let found = airlock_sql::reaches_in(file, &mut &bytes[..]).map_err(read_err)?;
                noted.reaches = Some(found);
            }
        }
    }
    // A checker may stop early (too many problems); the hash still covers every byte.
    std::io::copy(&mut r, &mut std::io::sink()).map_err(read_err)?;
    Ok((problems, noted, r.finish_with_chunks()))
}

/// One file in one role: a tier or rollback file is also searched for what it reaches
/// beyond the database, in the same pass.
fn check_one_role(
    r: &mut dyn std::io::Read,
    file: &str,
    role: SqlRole,
    min_server_version: Option<i64>,
) -> std::io::Result<(airlock_sql::Checked, Option<airlock_sql::Reaches>)> {
    if crate::lint_reach::is_script(role) {
        let online = role == SqlRole::Online;
        let (found, reaches) =
            airlock_sql::check_script_reaching(file, r, online, min_server_version)?;
        return Ok((found, Some(reaches)));
    }
    Ok((
        airlock_sql::check_reader_noted(file, r, role, min_server_version)?,
        None,
    ))
}

/// `f` over `items` on every core, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                *results[i].lock().expect("result slot") = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("result slot")
                .expect("every item ran")
        })
        .collect()
}

pub const SPEC_FILE: &str = "bundle.toml";

/// `bundle.toml`'s text as a spec: a `[target] database` string holding a glob
/// character is a pattern there ([`TargetDatabase::from_source`]).
pub fn parse(path: &Path, text: &str) -> Result<Spec, SpecError> {
    let mut spec: Spec = toml::from_str(text).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    spec.target.database = std::mem::take(&mut spec.target.database).from_source();
    Ok(spec)
}

impl Spec {
    /// Every file the spec names, with the role its SQL must satisfy.
    pub fn named_files(&self) -> Vec<(String, Option<SqlRole>, &'static str)> {
        let mut out = vec![];
        for g in &self.gate {
            out.push((g.file.clone(), Some(SqlRole::Gate), "gate.file"));
        }
        if let Some(p) = &self.preflight {
            out.push((p.file.clone(), Some(SqlRole::Probe), "preflight.file"));
        }
        for t in &self.tier {
            let role = if t.online {
                SqlRole::Online
            } else {
                SqlRole::Script
            };
            for f in &t.files {
                out.push((f.clone(), Some(role), "tier.files"));
            }
        }
        if let Some(v) = &self.verify {
            out.push((v.file.clone(), Some(SqlRole::Probe), "verify.file"));
        }
        if let Some(r) = &self.rollback {
            let role = if r.online {
                SqlRole::Online
            } else {
                SqlRole::Script
            };
            for f in &r.files {
                out.push((f.clone(), Some(role), "rollback.files"));
            }
            if let Some(p) = &r.probe {
                out.push((p.clone(), Some(SqlRole::Probe), "rollback.probe"));
            }
        }
        for r in &self.runbook {
            out.push((r.file.clone(), None, "runbook.file"));
        }
        out
    }

    /// Fill defaults the manifest records explicitly (rollback probe and expectation).
    pub fn resolved(mut self) -> Spec {
        if let Some(r) = self.rollback.as_mut() {
            if r.probe.is_none() {
                r.probe = self.preflight.as_ref().map(|p| p.file.clone());
            }
            if r.expect.is_none() {
                r.expect = self.preflight.as_ref().map(|p| p.expect.clone());
            }
        }
        self
    }

    pub fn tier_index(&self, name: &str) -> Option<usize> {
        self.tier.iter().position(|t| t.name == name)
    }

    /// Rules that need only the spec itself (no files). Shared by `lint` and the
    /// manifest check in the verifier.
    pub fn structural_problems(&self) -> Vec<String> {
        let mut problems = vec![];
        self.bundle_problems(&mut problems);
        self.target_problems(&mut problems);
        self.params_problems(&mut problems);
        self.gates_and_tiers_problems(&mut problems);
        self.train_problems(&mut problems);
        self.ratification_problems(&mut problems);
        self.probes_and_rollback_problems(&mut problems);
        self.file_paths_problems(&mut problems);
        problems
    }

    /// The `[bundle]` table: name, version, sequence, expiry.
    fn bundle_problems(&self, problems: &mut Vec<String>) {
        let name_re = regex::Regex::new(r"^[a-z0-9][a-z0-9._-]*$").expect("static regex");
        if !name_re.is_match(&self.bundle.name) || self.bundle.name.len() > 100 {
            problems.push(format!(
                "bundle.name {:?} must match [a-z0-9][a-z0-9._-]* (at most 100 characters)",
                self.bundle.name
            ));
        }
        if self.bundle.version.trim().is_empty()
            || self.bundle.version.chars().any(char::is_control)
        {
            problems
                .push("bundle.version must be non-empty text without control characters".into());
        }
        if self.bundle.sequence > i64::MAX as u64 {
            problems.push("bundle.sequence is too large".into());
        }
        if let Some(e) = &self.bundle.expires {
            if chrono::DateTime::parse_from_rfc3339(e).is_err() {
                problems.push(format!(
                    "bundle.expires {e:?} is not an RFC 3339 time like 2027-01-01T00:00:00Z"
                ));
            }
        }
    }

    /// The `[target]` table: search path, role, database.
    fn target_problems(&self, problems: &mut Vec<String>) {
        if let Some(path) = &self.target.search_path {
            if path.is_empty() {
                problems.push(
                    "target.search_path is empty; leave it out for the default [\"public\"]".into(),
                );
            }
            for entry in path {
                if entry.is_empty() || entry.len() > 63 || entry.contains('\0') {
                    problems.push(format!("target.search_path entry {entry:?} is not a schema name (1 to 63 bytes, no NUL)"));
                }
            }
        }
        if let Some(role) = &self.target.role {
            if role.is_empty() || role.len() > 63 || role.contains('\0') {
                problems.push(format!(
                    "target.role {role:?} is not a role name (1 to 63 bytes, no NUL)"
                ));
            } else if RESERVED_ROLES.contains(&role.to_ascii_lowercase().as_str()) {
                problems.push(format!(
                    "target.role {role:?} is a name PostgreSQL reserves, not a role"
                ));
            }
            if self.target.superuser {
                problems.push("target.role and target.superuser = true exclude each other: superuser runs bundle SQL as the role airlock connects as; leave one out".into());
            }
        }
        problems.extend(self.target.database.problems());
    }

    /// Parameter names and their patterns.
    fn params_problems(&self, problems: &mut Vec<String>) {
        let ident = regex::Regex::new(r"^[a-z_][a-z0-9_]{0,62}$").expect("static regex");
        for (name, spec) in &self.params {
            if !ident.is_match(name) {
                problems.push(format!("params.{name}: parameter names must match [a-z_][a-z0-9_]* (they become airlock.{name})"));
            }
            if let Some(pat) = &spec.pattern {
                match regex::Regex::new(pat) {
                    Err(e) => problems.push(format!("params.{name}.pattern does not compile: {e}")),
                    Ok(re) => {
                        if let Some(d) = spec.default.as_deref().filter(|d| !re.is_match(d)) {
                            problems.push(format!(
                                "params.{name}.default {d:?} does not match its pattern {pat}"
                            ));
                        }
                    }
                }
            }
            if spec.required && spec.default.is_some() {
                problems.push(format!("params.{name}: a param with a default is never missing; drop `required = true` or the default"));
            }
        }
    }

    /// Gates and tiers: each defined once, tiers named and with files, every gate a
    /// tier requires defined.
    /// `[follows]` and `[[released]]`: hashes that are SHA-256 hex, each migration
    /// once, a release followed with an earlier sequence.
    fn train_problems(&self, problems: &mut Vec<String>) {
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if let Some(f) = &self.follows {
            if !hex64(&f.bundle_id) {
                problems.push(format!(
                    "follows.bundle_id {:?} is not a bundle id (64 hex digits)",
                    f.bundle_id
                ));
            }
            if f.sequence >= self.bundle.sequence {
                problems.push(format!(
                    "follows.sequence {} is not before bundle.sequence {}: a release follows one with a lower sequence",
                    f.sequence, self.bundle.sequence
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for r in &self.released {
            if !hex64(&r.sha256) {
                problems.push(format!(
                    "released migration {:?}: sha256 {:?} is not 64 hex digits",
                    r.migration, r.sha256
                ));
            }
            if !seen.insert(r.migration.as_str()) {
                problems.push(format!(
                    "released migration {:?} is listed twice",
                    r.migration
                ));
            }
        }
    }

    fn gates_and_tiers_problems(&self, problems: &mut Vec<String>) {
        let mut gates = BTreeSet::new();
        for gate in &self.gate {
            if !gates.insert(gate.name.as_str()) {
                problems.push(format!("gate {:?} is defined twice", gate.name));
            }
        }
        if self.tier.is_empty() {
            problems.push("at least one [[tier]] is required".into());
        }
        let mut tiers = BTreeSet::new();
        for tier in &self.tier {
            if !tiers.insert(tier.name.as_str()) {
                problems.push(format!("tier {:?} is defined twice", tier.name));
            }
            if tier.name.is_empty() || tier.name.chars().any(|c| c.is_control() || c == ',') {
                problems.push(format!(
                    "tier name {:?} must be non-empty, without commas or control characters",
                    tier.name
                ));
            }
            if tier.files.is_empty() {
                problems.push(format!("tier {:?} has no files", tier.name));
            }
            for name in &tier.destroys {
                if let Err(e) = airlock_sql::object_name(name) {
                    problems.push(format!("tier {:?} destroys: {e}", tier.name));
                }
            }
            for required in &tier.gates {
                if !gates.contains(required.as_str()) {
                    problems.push(format!(
                        "tier {:?} requires gate {required:?}, which no [[gate]] defines",
                        tier.name
                    ));
                }
            }
        }
    }

    /// `[ratification]`: a threshold of at least 1 that its required keys fit in, key
    /// ids as keygen prints them, and a gated tier for it to guard.
    fn ratification_problems(&self, problems: &mut Vec<String>) {
        let Some(r) = &self.ratification else {
            return;
        };
        if r.threshold == 0 {
            problems.push("ratification.threshold 0 would need no approval; use 1 or more, or leave [ratification] out".into());
        }
        let key_id = regex::Regex::new(r"^[0-9A-F]{16}$").expect("static regex");
        let mut seen = BTreeSet::new();
        for id in &r.required {
            if !key_id.is_match(id) {
                problems.push(format!("ratification.required {id:?} is not a key id (16 uppercase hex digits, as airlock keygen and minisign -V show it)"));
            } else if !seen.insert(id.as_str()) {
                problems.push(format!("ratification.required names key {id} twice"));
            }
        }
        if r.required.len() > r.threshold as usize {
            problems.push(format!(
                "ratification.required names {} keys but threshold is {}: the required keys count toward the threshold; raise it to at least {}",
                r.required.len(),
                r.threshold,
                r.required.len()
            ));
        }
        let mut groups = BTreeSet::new();
        for g in &r.required_groups {
            if !is_group_name(g) {
                problems.push(format!("ratification.required_groups {g:?} is not a group name (lowercase letters, digits, _ and -, as trust.toml's groups)"));
            } else if !groups.insert(g.as_str()) {
                problems.push(format!(
                    "ratification.required_groups names group {g} twice"
                ));
            }
        }
        if r.table.is_some() && r.table_parts().is_none() {
            problems.push(format!("ratification.table {:?} is not `schema.table` (lowercase identifiers): name the table the application stores approvals in, with columns document and signature", r.table.as_deref().unwrap_or_default()));
        }
        for g in &r.gates {
            if !self.gate.iter().any(|d| &d.name == g) {
                problems.push(format!(
                    "ratification.gates names gate {g:?}, which no [[gate]] declares"
                ));
            }
        }
        if !r.gates.is_empty() && !self.tier.iter().any(|t| r.guards(&t.gates)) {
            problems.push(format!("ratification.gates {:?}: no tier names any of them, so no tier would need the approvals", r.gates));
        }
        if self.tier.iter().all(|t| t.gates.is_empty()) {
            problems.push("[ratification] guards the tiers that name a gate, and no tier does: add a [[gate]] (e.g. `SELECT true AS ready`) and name it in the tiers that need the approvals".into());
        }
    }

    /// The probes and the rollback: each with what it needs.
    fn probes_and_rollback_problems(&self, problems: &mut Vec<String>) {
        for (label, probe) in [("preflight", &self.preflight), ("verify", &self.verify)] {
            if let Some(probe) = probe {
                if probe.expect.is_empty() {
                    problems.push(format!(
                        "{label}.expect is empty: a probe must expect at least one key"
                    ));
                }
            }
        }
        if let Some(rollback) = &self.rollback {
            if rollback.files.is_empty() {
                problems.push("rollback.files is empty".into());
            }
            for (file, tier) in &rollback.undoes {
                if !rollback.files.contains(file) {
                    problems.push(format!(
                        "rollback.undoes names {file:?}, which is not in rollback.files"
                    ));
                }
                if !self.tier.iter().any(|t| &t.name == tier) {
                    problems.push(format!(
                        "rollback.undoes: {file:?} undoes tier {tier:?}, and the bundle has no such tier"
                    ));
                }
            }
            if rollback.probe.is_none() && self.preflight.is_none() {
                problems.push("rollback needs a probe: set rollback.probe or [preflight]".into());
            }
            if rollback.expect.is_none() && self.preflight.is_none() {
                problems.push(
                    "rollback needs an expectation: set rollback.expect or preflight.expect".into(),
                );
            }
        }
    }

    /// Every file the spec names: a safe bundle path, not one of the bundle's own, and
    /// not run both online and inside a transaction.
    fn file_paths_problems(&self, problems: &mut Vec<String>) {
        let named = self.named_files();
        let online: BTreeSet<&str> = named
            .iter()
            .filter(|(_, r, _)| *r == Some(SqlRole::Online))
            .map(|(f, _, _)| f.as_str())
            .collect();
        for (file, _, field) in named.iter().filter(|(_, r, _)| *r == Some(SqlRole::Script)) {
            if online.contains(file.as_str()) {
                problems.push(format!("{field} {file:?} runs both online (a tier or rollback with online = true) and inside a transaction; a file is judged and run one way: give each its own file"));
            }
        }
        for (file, _, field) in self.named_files() {
            if let Err(e) = BundlePath::new(&file) {
                problems.push(format!("{field} {file:?}: {e}"));
            } else if crate::bundle_path::is_reserved(&file) {
                problems.push(format!(
                    "{field} {file:?}: this name is reserved for the bundle's own metadata"
                ));
            }
        }
    }
}

/// The file beside `file` (same directory in the source) whose name is nearest to
/// `file`'s, when it is near enough to be a typo (an edit distance of at most a
/// quarter of the name, and at least 2).
fn near_name(dir: &Path, file: &str) -> Option<String> {
    let (parent, name) = match file.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, file),
    };
    let listed = std::fs::read_dir(parent.map_or(dir.to_path_buf(), |p| dir.join(p))).ok()?;
    let limit = (name.chars().count() / 4).max(2);
    listed
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|n| (edit_distance(name, &n), n))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, n)| parent.map_or(n.clone(), |p| format!("{p}/{n}")))
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

impl Spec {
    /// The script files that run in one transaction, in the order they run, for each
    /// transaction an apply (or a rollback) runs: with `transaction = "single"` the
    /// tiers up to the next online tier share one (an online tier runs each statement
    /// in its own, and ends the one before it); with `per-tier` each tier has its own;
    /// the rollback files, unless online, share one.
    pub fn transactions(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = vec![];
        let mut current: Vec<String> = vec![];
        for t in &self.tier {
            if t.online || self.bundle.transaction == TxMode::PerTier {
                out.push(std::mem::take(&mut current));
            }
            if !t.online {
                current.extend(t.files.iter().cloned());
            }
        }
        out.push(current);
        if let Some(r) = self.rollback.as_ref().filter(|r| !r.online) {
            out.push(r.files.clone());
        }
        out.retain(|files| files.len() > 1);
        out
    }
}

/// Warnings for a use of an enum value that an earlier file of the same transaction
/// adds (each file was judged alone first; only a file with such an earlier file is
/// read again).
fn enum_uses_across_files(
    dir: &Path,
    spec: &Spec,
    added: &BTreeMap<String, Vec<airlock_sql::EnumValueAdded>>,
) -> Vec<String> {
    let mut warnings = vec![];
    for files in spec.transactions() {
        let mut earlier: Vec<airlock_sql::EnumValueAdded> = vec![];
        for file in &files {
            if !earlier.is_empty() {
                if let Ok(f) = std::fs::File::open(dir.join(file)) {
                    let mut r = std::io::BufReader::with_capacity(256 * 1024, f);
                    if let Ok(found) = airlock_sql::enum_uses_after(file, &mut r, earlier.clone()) {
                        warnings.extend(found.iter().map(ToString::to_string));
                    }
                }
            }
            if let Some(values) = added.get(file) {
                earlier.extend(values.iter().map(|v| v.clone().from_file(file)));
            }
        }
    }
    warnings
}

/// `bundle.toml`'s text, at most [`airlock_base::bounded::SPEC`] bytes of it.
fn read_spec(path: &Path) -> Result<String, SpecError> {
    use airlock_base::bounded::{read_capped_string, ReadError, SPEC};
    read_capped_string(path, SPEC).map_err(|e| match e {
        ReadError::Io { path, source } => SpecError::Read { path, source },
        too_large => SpecError::TooLarge(too_large),
    })
}

/// Read and check a source directory (`airlock lint`; also the first step of `pack`).
pub fn lint(dir: &Path) -> Result<Linted, SpecError> {
    let spec_path = dir.join(SPEC_FILE);
    let spec = parse(&spec_path, &read_spec(&spec_path)?)?;
    let mut problems = spec.structural_problems();
    let mut files = BTreeSet::new();
    files.insert(SPEC_FILE.to_string());
    // Each file's SQL roles; every file is read once, on any free core.
    let mut roles: BTreeMap<String, Vec<SqlRole>> = BTreeMap::new();
    roles.insert(SPEC_FILE.to_string(), vec![]);
    for (file, role, field) in spec.named_files() {
        if BundlePath::new(&file).is_err() || crate::bundle_path::is_reserved(&file) {
            continue;
        }
        files.insert(file.clone());
        let full = dir.join(&file);
        match std::fs::symlink_metadata(&full) {
            Err(_) => {
                problems.push(missing_file(&spec, dir, &file, field));
                continue;
            }
            Ok(m) if !m.file_type().is_file() => {
                problems.push(format!(
                    "{field} names {file}, which is not a regular file (symlinks are refused)"
                ));
                continue;
            }
            Ok(_) => {}
        }
        let entry = roles.entry(file.clone()).or_default();
        if let Some(role) = role {
            if !entry.contains(&role) {
                entry.push(role);
            }
        }
    }
    let jobs: Vec<(String, Vec<SqlRole>)> = roles.into_iter().collect();
    let mut hashes = BTreeMap::new();
    let mut notes = vec![];
    let mut sql_warnings = vec![];
    let mut enum_values_added = BTreeMap::new();
    let mut reaches = BTreeMap::new();
    for ((file, _), result) in jobs.iter().zip(parallel_map(&jobs, |(file, roles)| {
        read_and_check(dir, file, roles, spec.target.min_server_version)
    })) {
        // Rollback files have no tier to declare online.
        let rollback_only = spec
            .rollback
            .as_ref()
            .is_some_and(|r| r.files.contains(file))
            && !spec.tier.iter().any(|t| t.files.contains(file));
        match result {
            Ok((found, noted, hash)) => {
                problems.extend(found.into_iter().map(|p| {
                    if rollback_only {
                        p.replace(airlock_sql::DECLARE_ONLINE, airlock_sql::ROLLBACK_ONLINE)
                    } else {
                        p
                    }
                }));
                notes.extend(noted.notes);
                sql_warnings.extend(noted.warnings);
                if !noted.enum_values_added.is_empty() {
                    enum_values_added.insert(file.clone(), noted.enum_values_added);
                }
                if let Some(found) = noted.reaches {
                    reaches.insert(file.clone(), found);
                }
                hashes.insert(file.clone(), hash);
            }
            Err(e) => problems.push(e),
        }
    }
    if !enum_values_added.is_empty() {
        sql_warnings.extend(enum_uses_across_files(dir, &spec, &enum_values_added));
    }
    problems.extend(collisions(&files));
    let mut warnings = sql_warnings;
    warnings.extend(unnamed_files(dir, &files));
    if !problems.is_empty() {
        return Err(SpecError::Invalid {
            source_dir: dir.to_path_buf(),
            problems,
        });
    }
    let files = files
        .into_iter()
        .map(|f| BundlePath::new(&f).expect("validated above"))
        .collect();
    let reaches_beyond = crate::lint_reach::in_named_order(&spec.named_files(), reaches);
    Ok(Linted {
        spec,
        dir: dir.to_path_buf(),
        files,
        hashes,
        warnings,
        notes,
        reaches_beyond,
    })
}

/// The problem of a named `file` that is not in `dir`, naming who names it (the tier,
/// else the spec's `field`) and a near name that is there.
fn missing_file(spec: &Spec, dir: &Path, file: &str, field: &str) -> String {
    let who = match spec.tier.iter().find(|t| t.files.iter().any(|f| f == file)) {
        Some(t) => format!("tier {:?} (tier.files)", t.name),
        None => field.to_string(),
    };
    let near = match near_name(dir, file) {
        Some(n) => format!("; did you mean {n}?"),
        None => String::new(),
    };
    format!(
        "{who} names {file}, which does not exist in {}{near}",
        dir.display()
    )
}

/// Named files that are the same path after case/Unicode normalization (a/B.sql vs
/// a/b.sql).
fn collisions(files: &BTreeSet<String>) -> Vec<String> {
    let mut seen = BTreeMap::new();
    let mut out = vec![];
    for f in files {
        let key = crate::bundle_path::collision_key(f);
        if let Some(other) = seen.insert(key, f.clone()) {
            out.push(format!(
                "{f} and {other} are the same path after case/Unicode normalization"
            ));
        }
    }
    out
}

/// The files in the source that bundle.toml does not name (they will not be packed).
fn unnamed_files(dir: &Path, files: &BTreeSet<String>) -> Vec<String> {
    let mut out = vec![];
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel = rel.to_string_lossy().replace('\\', "/");
        if !files.contains(&rel) {
            out.push(format!(
                "{rel} is in the source but not named in bundle.toml; it will not be packed"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_follow_the_tiers_an_apply_runs_together() {
        let spec = |transaction: &str| -> Spec {
            toml::from_str(&format!(
                "[bundle]\nname = \"m\"\nversion = \"1\"\nsequence = 1\ntransaction = \"{transaction}\"\n[target]\ndatabase = \"x\"\n\
                 [[tier]]\nname = \"a\"\nfiles = [\"a1.sql\", \"a2.sql\"]\n\
                 [[tier]]\nname = \"b\"\nfiles = [\"b.sql\"]\n\
                 [[tier]]\nname = \"o\"\nfiles = [\"o.sql\"]\nonline = true\n\
                 [[tier]]\nname = \"c\"\nfiles = [\"c.sql\"]\n\
                 [[tier]]\nname = \"d\"\nfiles = [\"d.sql\"]\n\
                 [rollback]\nfiles = [\"r1.sql\", \"r2.sql\"]\nprobe = \"p.sql\"\nexpect = {{ k = \"v\" }}\n"
            ))
            .unwrap()
        };
        let files = |v: &[&str]| v.iter().map(|f| f.to_string()).collect::<Vec<_>>();
        assert_eq!(
            spec("single").transactions(),
            vec![
                files(&["a1.sql", "a2.sql", "b.sql"]),
                files(&["c.sql", "d.sql"]),
                files(&["r1.sql", "r2.sql"]),
            ]
        );
        assert_eq!(
            spec("per-tier").transactions(),
            vec![files(&["a1.sql", "a2.sql"]), files(&["r1.sql", "r2.sql"])]
        );
    }

    fn spec(ratification: &str, gated: bool) -> Spec {
        let gates = if gated { "[\"g\"]" } else { "[]" };
        toml::from_str(&format!(
            "[bundle]\nname = \"m\"\nversion = \"1\"\nsequence = 1\n[target]\ndatabase = \"x\"\n[[gate]]\nname = \"g\"\nfile = \"sql/g.sql\"\n[[tier]]\nname = \"t\"\nfiles = [\"sql/t.sql\"]\ngates = {gates}\n[ratification]\n{ratification}\n"
        ))
        .unwrap()
    }

    #[test]
    fn ratification_needs_a_threshold_its_required_keys_fit_in_and_a_gated_tier() {
        assert!(
            spec("threshold = 2\nrequired = [\"62340C72430C8DD3\"]", true)
                .structural_problems()
                .is_empty()
        );
        for (text, gated, says) in [
            ("threshold = 0", true, "threshold 0"),
            (
                "threshold = 1\nrequired = [\"62340c72430c8dd3\"]",
                true,
                "not a key id",
            ),
            (
                "threshold = 1\nrequired = [\"62340C72430C8DD3\", \"9F00AA11BB22CC33\"]",
                true,
                "raise it to at least 2",
            ),
            (
                "threshold = 2\nrequired = [\"62340C72430C8DD3\", \"62340C72430C8DD3\"]",
                true,
                "twice",
            ),
            ("threshold = 1", false, "no tier does"),
        ] {
            let problems = spec(text, gated).structural_problems().join("; ");
            assert!(problems.contains(says), "{text}: {problems}");
        }
    }

    #[test]
    fn a_spec_without_ratification_serializes_without_it() {
        let mut s = spec("threshold = 1", true);
        s.ratification = None;
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("ratification"), "{json}");
    }
}
