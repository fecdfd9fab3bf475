//! `airlock import`: an existing migration history as a bundle source. Reads one of the
//! layouts teams arrive with — golang-migrate (`V_name.up.sql` / `.down.sql`, paired by
//! version), dbmate (`-- migrate:up` / `-- migrate:down` sections), Flyway
//! (`V1__name.sql`, `U1__name.sql` undo; several locations: `flyway_locations.rs`),
//! Sqitch (`sqitch.plan` with `deploy/`, `revert/`, `verify/`), Prisma (`prisma.rs`),
//! diesel (`diesel.rs`), Atlas (`atlas.rs`, `atlas.sum` checked), Liquibase formatted
//! SQL and XML/YAML changelogs (`liquibase/`), goose (`goose.rs`),
//! Temporal's versioned schema folders (`temporal.rs`), or a plain folder of psql scripts in name
//! order — and writes `bundle.toml` with one tier per migration in order (a file of
//! statements no transaction runs as an online tier, or cut into several:
//! `online_split.rs`), the down scripts in reverse as the rollback, each Sqitch verify
//! script as a second file of its change's tier (`sqitch_verify.rs`), and a report of
//! every file brought over (as it is, or cut from a dbmate, goose or Liquibase file)
//! and every one left behind (another database's file among them), with why. What
//! import would read wrong (another tool's markers, a Liquibase XML/YAML/JSON
//! changelog) is refused, naming the tool and the file (`foreign.rs`); where the peer
//! commits between migrations and the bundle must too, each tier commits on its own
//! (`commits.rs`). With the peer's history table (`Applied`), what it records is left
//! out, and a Flyway script whose checksum (`flyway.rs`) differs from the recorded one
//! is refused.
//!
//! Invariant: a migration's SQL is brought over byte for byte (a dbmate section is the
//! bytes between its markers; a cut file's parts are its bytes in order; a Liquibase
//! rollback is the text of its `--rollback` comments; a script that creates its
//! database and connects to it is the bytes after its `\c` line), except pop's template actions
//! `{{ index .Options "KEY" }}`, replaced by the value the user gives for KEY, as pop
//! does before running the file; every such change is reported. What airlock would
//! refuse stays in the file and `lint` names it; what airlock accepts as psql writes
//! it (`\set ON_ERROR_STOP`, `BEGIN;` … `COMMIT;`) needs no change. Nothing outside
//! the folder is read, and no link is followed (`folder.rs`): what is refused for
//! that is listed as not brought over, `refused`.

mod adapt;
mod atlas;
mod commits;
mod diesel;
mod flyway;
mod flyway_locations;
mod folder;
mod folder_order;
mod foreign;
mod goose;
mod liquibase;
mod online_split;
mod out_dir;
mod peer_tables;
mod policy;
mod prisma;
mod sqitch_verify;
mod temporal;

use folder::{Entry, Folder, NotRead, Refused};
pub use folder_order::FolderOrder;
/// The most bytes of one SQL file import reads (a migration script, a `customChange`'s
/// mapped SQL): import holds it in memory.
pub const MAX_SCRIPT_BYTES: u64 = folder::MAX_SCRIPT;
pub use liquibase::custom::{CustomChange, CustomChangeUse, CustomChanges};
pub use liquibase::preconditions::{
    sql_check_answer, Check, CheckError, Decided, Held, PreconditionTarget, RanChangeSet,
};
pub use out_dir::{check as check_out, Existing};
pub use policy::{Carried, Policy, TargetPolicy};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layouts `import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    GolangMigrate,
    Dbmate,
    Flyway,
    Sqitch,
    Prisma,
    Diesel,
    Atlas,
    Liquibase,
    Goose,
    Temporal,
    Folder,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::GolangMigrate => "golang-migrate",
            Layout::Dbmate => "dbmate",
            Layout::Flyway => "flyway",
            Layout::Sqitch => "sqitch",
            Layout::Prisma => "prisma",
            Layout::Diesel => "diesel",
            Layout::Atlas => "atlas",
            Layout::Liquibase => "liquibase",
            Layout::Goose => "goose",
            Layout::Temporal => "temporal",
            Layout::Folder => "folder",
        }
    }

    /// Whether the layout orders its migrations by version (else: by its own list,
    /// or by name).
    fn by_version(self) -> bool {
        !matches!(
            self,
            Layout::Folder | Layout::Sqitch | Layout::Atlas | Layout::Liquibase | Layout::Diesel
        )
    }
}

/// Where a script's bytes come from: files named relative to the folder, `/`-separated.
#[derive(Clone, Debug)]
enum Script {
    /// A whole file.
    File(String),
    /// Bytes cut or read from a file already (a dbmate section, a Liquibase changeset,
    /// a file of another Flyway location): `how` says what they are, for the report.
    Section {
        from: String,
        bytes: Vec<u8>,
        how: String,
    },
}

impl Script {
    fn bytes(&self, folder: &Folder) -> Result<Vec<u8>, ImportError> {
        match self {
            Script::File(rel) => read(folder, rel),
            Script::Section { bytes, .. } => Ok(bytes.clone()),
        }
    }

    fn from(&self) -> &str {
        match self {
            Script::File(rel) | Script::Section { from: rel, .. } => rel,
        }
    }

    /// What it is, for a message: the file, or what was cut from it.
    fn name(&self) -> String {
        match self {
            Script::File(rel) => rel.clone(),
            Script::Section { from, how, .. } => format!("{from} ({how})"),
        }
    }

    /// Where line `n` of these bytes is, for a message: `file:n`, or the line of
    /// what was cut from the file.
    fn line(&self, n: usize) -> String {
        match self {
            Script::File(rel) => format!("{rel}:{n}"),
            Script::Section { from, how, .. } => format!("{from} (line {n} of {how})"),
        }
    }
}

/// The bytes of `rel` in the folder (never outside it: `folder.rs`).
fn read(folder: &Folder, rel: &str) -> Result<Vec<u8>, ImportError> {
    folder.read(rel).map_err(|e| match e {
        NotRead::Io(source) => ImportError::Read {
            path: folder.join(rel),
            source,
        },
        NotRead::Refused(why) => ImportError::Refused {
            file: rel.into(),
            why: why.why(),
        },
        NotRead::TooLarge { size } => ImportError::TooLarge {
            path: folder.join(rel),
            size,
            cap: folder::MAX_SCRIPT,
        },
    })
}

/// One migration: its version (for order), a name, its up script and its down.
#[derive(Clone, Debug)]
struct Migration {
    key: Vec<u128>,
    label: String,
    /// None: only a down script (pop/kratos write no file for an empty migration).
    up: Option<Script>,
    down: Option<Script>,
    /// pop's `.autocommit` files: run outside a transaction (an online tier here).
    up_online: bool,
    /// The peer commits it apart from the migrations around it (goose's `NO
    /// TRANSACTION`, dbmate's `transaction:false`), and the bundle must too: an
    /// online tier, or a transaction of its own (`transaction = "per-tier"`).
    commits_apart: bool,
    /// Sqitch's verify script, for the `[verify]` probe.
    verify: Option<String>,
    /// No down script, and the history says none is needed (Liquibase's `--rollback
    /// not required`): not counted among those without one.
    no_down_said: bool,
    /// A Liquibase changeset: what Liquibase knows it by, and its preconditions.
    lb: Option<Box<liquibase::preconditions::ChangeSetId>>,
}

/// One file written into the source.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Brought {
    /// The file it came from, relative to the imported directory.
    pub from: String,
    /// The file written, relative to the source.
    pub to: String,
    /// `as-is`, or what was done (`up section of a dbmate file`…).
    pub change: String,
}

/// A migration an earlier release of the train carried (`--since`), unchanged: not a
/// tier of this one.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct AlreadyReleased {
    pub migration: String,
    /// The release (version) that carried it.
    pub release: String,
}

/// A file of the imported directory not brought over, and why.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct LeftBehind {
    /// The name as the folder (or `sqitch.plan`) has it; human output escapes it.
    pub file: String,
    pub why: String,
    /// Refused for where it is (a link, a path out of the folder, not a regular file):
    /// the source written lacks a migration file the folder names, so `import` does
    /// not end OK (the reason says which; `why` carries it in JSON).
    #[serde(skip)]
    #[schemars(skip)]
    pub refused: bool,
}

impl LeftBehind {
    /// `file`, refused for `why`.
    fn refused(file: impl Into<String>, why: Refused) -> LeftBehind {
        LeftBehind {
            refused: true,
            file: file.into(),
            why: why.why().into(),
        }
    }
}

/// What `import` did.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Imported {
    pub layout: Layout,
    /// The tiers written, in order.
    pub tiers: Vec<String>,
    /// Rollback files (down scripts, newest first), or none.
    pub rollback: Vec<String>,
    pub files: Vec<Brought>,
    pub left_behind: Vec<LeftBehind>,
    /// With `--since`: the migrations earlier releases carried (said once, not once
    /// per migration).
    pub already_released: Vec<AlreadyReleased>,
    /// The migrations with no down script (the rollback undoes nothing of them), in
    /// order: said once, not once per migration.
    pub no_down_script: Vec<String>,
    /// Why the bundle commits each tier on its own (`transaction = "per-tier"`) where
    /// the peer commits between migrations; empty: the apply is one transaction.
    pub splits: Vec<String>,
    /// Statements that change a peer tool's own history table, which airlock never
    /// makes: each a warning naming the file, the line and the table.
    pub peer_tables: Vec<String>,
    /// The down scripts the rollback written leaves out (each in `left_behind`, with
    /// why and what to do): a rollback then leaves their changes behind. Empty when no
    /// rollback was written.
    pub rollback_left_out: Vec<String>,
    /// With `--since`: the policy carried from the release followed (`policy.rs`).
    pub carried: Vec<Carried>,
    /// Each Liquibase changeset with preconditions (or recorded in DATABASECHANGELOG):
    /// what import decided, and why.
    pub preconditions: Vec<Decided>,
    /// The peer tool's history kept in step: what the tiers write in its table (a
    /// Liquibase changelog's DATABASECHANGELOG rows), or None (another layout, or
    /// `--no-peer-history`).
    pub peer_history: Option<PeerHistory>,
    /// Each Liquibase `customChange` of a changeset written as a tier, and what runs
    /// in its place (`airlock.toml`'s `[import.custom_change]`).
    pub custom_changes: Vec<CustomChangeUse>,
}

/// The rows the tiers write in the peer tool's history table, so the peer sees the
/// release as applied; the rollback removes them.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct PeerHistory {
    /// The table (`databasechangelog`, or as `--history` found it).
    pub table: String,
    /// The rows written, one per changeset Liquibase records (`EXECUTED` ones).
    pub executed: usize,
    /// Those of changesets a precondition marks ran (`MARK_RAN`).
    pub mark_ran: usize,
    /// The changesets whose MD5SUM is written NULL (import does not compute their
    /// checksum as Liquibase does): Liquibase writes its own on its next update.
    pub no_md5sum: Vec<String>,
    /// The first tier creates the table (Liquibase's way), and the rollback drops it.
    pub creates_table: bool,
    /// The files written (one per tier that records rows; the rollback's).
    pub files: Vec<String>,
}

/// What the source is called and where it applies.
pub struct Naming<'a> {
    pub name: &'a str,
    /// `[bundle] version`; None: a Liquibase changelog's last `tagDatabase` tag, else
    /// [`DEFAULT_VERSION`].
    pub version: Option<&'a str>,
    pub database: &'a str,
    /// pop's template options (`--option KEY=VALUE`): each `{{ index .Options "KEY" }}`
    /// of a migration becomes VALUE, as pop renders it before running the file.
    pub options: &'a [(String, String)],
    /// What the peer's own history table on the target says is applied already: those
    /// migrations are not written as tiers, and a preflight probe checks that the
    /// table still says exactly that when the bundle is applied.
    pub applied: Option<&'a Applied>,
    /// The release this import follows (`--since`): the migrations it and the releases
    /// before it carried are not written as tiers, and must be in the folder as they
    /// were released.
    pub since: Option<&'a Since>,
    /// Further Flyway locations named after the first folder (`--from flyway DIR…`):
    /// their migrations merged with the first's in version order.
    pub locations: &'a [PathBuf],
    /// Where Liquibase preconditions that depend on the database are decided (a
    /// throwaway database, `--fresh-on`); None: only those the text decides.
    pub preconditions: Option<&'a dyn PreconditionTarget>,
    /// The root Liquibase changelog (`--changelog`, as Liquibase's `--changelog-file`):
    /// its path in the folder; None: the one changelog no other includes.
    pub changelog: Option<&'a str>,
    /// A plain folder's order (`--order`); None: the files' names as text, when the
    /// version order agrees (`folder_order.rs`).
    pub order: Option<FolderOrder>,
    /// A Liquibase changelog: each tier also writes the DATABASECHANGELOG rows
    /// Liquibase writes for its changesets, and the rollback removes them
    /// (`liquibase/history.rs`), so Liquibase sees the release as applied.
    pub peer_history: bool,
    /// The team's mapping of each Liquibase `customChange` class (`airlock.toml`'s
    /// `[import.custom_change]`): its SQL, or skip.
    pub custom_changes: &'a CustomChanges,
}

/// The version of a release nothing names.
pub const DEFAULT_VERSION: &str = "1";

/// The peer's history table on a target, as read by the caller (`--history`).
///
/// Nothing of it reaches airlock's ledger: the bundle starts after the migrations it
/// names, and its preflight (`probe`, which answered `value` when import read it)
/// refuses a target whose table says anything else.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The table read, schema-qualified (`public.flyway_schema_history`).
    pub table: String,
    pub set: AppliedSet,
    /// One read-only query answering `peer_history` and the table's state.
    pub probe: String,
    /// What `probe` answered at import.
    pub value: String,
    /// The checksums the table records for applied scripts (Flyway): each is compared
    /// with the script in the directory.
    pub checksums: Vec<AppliedChecksum>,
    /// Liquibase's default schema on the target (`${database.defaultSchemaName}`): the
    /// schema its DATABASECHANGELOG is in; None for the other layouts.
    pub default_schema: Option<String>,
}

/// The release an import follows (`airlock import --since BUNDLE`), read from that
/// bundle after it verified.
#[derive(Clone, Debug)]
pub struct Since {
    pub name: String,
    pub version: String,
    pub sequence: u64,
    pub bundle_id: String,
    /// Its tiers.
    pub tiers: Vec<String>,
    /// What it and the releases before it carried, in order.
    pub released: Vec<crate::spec::Released>,
    /// Its policy (params, gates, ratification, target role, probes…), carried into
    /// the release that follows it (`policy.rs`).
    pub policy: Policy,
}

/// A script's checksum as the peer's history table records it (Flyway's CRC-32).
#[derive(Clone, Debug)]
pub struct AppliedChecksum {
    pub version: String,
    pub checksum: i32,
}

/// Which migrations a history table records as applied.
#[derive(Clone, Debug)]
pub enum AppliedSet {
    /// These versions (Flyway, dbmate, pop): `1.2`, `20240101000000`.
    Versions(Vec<String>),
    /// Every version up to this one (golang-migrate keeps only the last).
    UpTo(String),
    /// These changes, by name (Sqitch).
    Names(Vec<String>),
    /// These changesets (Liquibase's DATABASECHANGELOG, EXECUTED and MARK_RAN rows).
    ChangeSets(Vec<RanChangeSet>),
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exists and is not empty; import writes a new source directory")]
    OutExists(PathBuf),
    #[error("--force does not replace {out}: {why}")]
    NotReplaceable { out: PathBuf, why: String },
    #[error("no migrations found in {dir} as {layout}")]
    Empty { dir: PathBuf, layout: &'static str },
    #[error("{dir} holds no layout import knows (golang-migrate, dbmate, flyway, sqitch, prisma, diesel, atlas, liquibase, goose, temporal, a folder of .sql files)")]
    Unknown { dir: PathBuf },
    #[error("{file}: {why}")]
    Layout { file: String, why: String },
    /// A plain folder whose files sort one way as text and another as versions, and
    /// no `--order`.
    #[error("{dir}: {first} sorts before {second} as text, after it as a version: which order its scripts were applied in is not written anywhere")]
    OrderUnclear {
        dir: PathBuf,
        first: String,
        second: String,
    },
    /// Liquibase changelogs none of which includes the others, and no `--changelog`.
    #[error("{}: {} root changelogs (none includes the others): Liquibase runs the one its `--changelog-file` names", roots.join(", "), roots.len())]
    SeveralRoots { roots: Vec<String> },
    #[error("{layout} reads one folder; several are read only as Flyway locations (`--from flyway DIR…`)")]
    SeveralFolders { layout: &'static str },
    #[error("{file}: {why}")]
    Refused { file: String, why: &'static str },
    /// Another tool's file import cannot read as the layout asked for.
    #[error("{at}: {why}")]
    Foreign {
        tool: &'static str,
        at: String,
        why: String,
    },
    /// A YAML changelog with an alias (`*name`), refused before it is loaded: aliases
    /// to aliases of a few hundred bytes load as billions of nodes.
    #[error("{at}: a YAML alias{}: import refuses aliases (a few can expand to billions of nodes; a Liquibase changelog has no use for them)", .name.as_ref().map(|n| format!(" (`*{n}`)")).unwrap_or_default())]
    YamlAlias { at: String, name: Option<String> },
    /// A changelog whose elements nest deeper than `max`, refused before it is walked.
    #[error("{at}: elements nested more than {max} deep; a Liquibase changelog nests a few")]
    TooDeep { at: String, max: usize },
    #[error(
        "{path} is {size} bytes, over the {cap}-byte cap for one migration script import reads"
    )]
    TooLarge { path: PathBuf, size: u64, cap: u64 },
    /// Changesets to write as tiers hold `customChange` classes nobody mapped (each
    /// class with where it is used, then the block to fill in: `custom.rs`).
    #[error("{count} Liquibase customChange class(es) a tier would need, which airlock cannot run (Java) and airlock.toml does not map; nothing was written:{text}")]
    UnmappedCustomChange { count: usize, text: String },
    /// More than one refusal of the same run, each named (every one is found before
    /// import refuses, so one run names them all).
    #[error("{} problems, each named (nothing was written):\n{}", errors.len(), errors.iter().enumerate().map(|(i, e)| format!("  {}. {e}", i + 1)).collect::<Vec<_>>().join("\n"))]
    Several { errors: Vec<ImportError> },
    #[error("{migration}: edited since release {release} carried it (SHA-256 {recorded} then, {actual} now); a released migration is never edited")]
    EditedReleased {
        migration: String,
        release: String,
        recorded: String,
        actual: String,
    },
    #[error("{migration} is not in {dir}, though release {release} carried it: a released migration is never removed")]
    ReleasedGone {
        migration: String,
        release: String,
        dir: PathBuf,
    },
    #[error("{migration} is new, but sorts before {last}, which release {release} carried: a new migration goes after every released one")]
    InsertedBefore {
        migration: String,
        last: String,
        release: String,
    },
    #[error("{name} {version} carried none of the migrations in {dir}: it is the release of another history")]
    OtherHistory {
        name: String,
        version: String,
        dir: PathBuf,
    },
    #[error("{name} {version} (or a release before it) carried every migration in {dir}: nothing new to import")]
    NothingNewSince {
        name: String,
        version: String,
        dir: PathBuf,
    },
    #[error("{file}, a gate or probe query of the release this one follows, has the path of a file import writes: its policy cannot be carried")]
    PolicyClash { file: String },
    #[error("{table} on the target records every migration of {dir} as applied: nothing is left to import")]
    NothingNew { dir: PathBuf, table: String },
    /// A Liquibase precondition import cannot decide (`undecided`: no database to ask),
    /// or one that fails with HALT.
    #[error("{at} (changeset {changeset}): {why}")]
    Precondition {
        at: String,
        changeset: String,
        why: String,
        undecided: bool,
    },
    /// A Liquibase precondition the target cannot answer yet: it reads what a
    /// changeset earlier in this import writes or names (`--history`).
    #[error("{at} (changeset {changeset}): {why}")]
    PreconditionTooSoon {
        at: String,
        changeset: String,
        why: String,
    },
    /// A changeset's SQL failed where the preconditions are decided.
    #[error(
        "changeset {changeset} ({at}) failed on the database preconditions are decided on: {why}"
    )]
    PreconditionTarget {
        changeset: String,
        at: String,
        why: String,
    },
    /// A DATABASECHANGELOG row whose MD5SUM is not the changeset's checksum as
    /// Liquibase computes it: the changeset was edited after Liquibase ran it.
    #[error("{at} (changeset {changeset}): edited since Liquibase ran it: DATABASECHANGELOG records MD5SUM {recorded}, the changelog's is {computed}")]
    ChecksumMismatch {
        at: String,
        changeset: String,
        recorded: String,
        computed: String,
    },
    /// A DATABASECHANGELOG row whose MD5SUM import cannot check (an older version's,
    /// or a change whose checksum it does not compute): refused, not taken unchecked.
    #[error("{at} (changeset {changeset}): DATABASECHANGELOG records MD5SUM {recorded}, which import cannot check: {why}")]
    ChecksumUnknown {
        at: String,
        changeset: String,
        recorded: String,
        why: String,
    },
    #[error("{file}: differs from the script Flyway applied ({table} records checksum {recorded}, the file's is {actual}): it was edited after it was applied")]
    Edited {
        file: String,
        table: String,
        recorded: i32,
        actual: i32,
    },
}

impl From<foreign::Foreign> for ImportError {
    fn from(f: foreign::Foreign) -> Self {
        ImportError::Foreign {
            tool: f.tool,
            at: f.at,
            why: f.why,
        }
    }
}

fn open(dir: &Path) -> Result<Folder, ImportError> {
    Folder::open(dir).map_err(|source| ImportError::Read {
        path: dir.to_path_buf(),
        source,
    })
}

/// The regular files of the folder, sorted; every other entry but a folder (a link, a
/// FIFO, a name not UTF-8) goes to `left`, refused when it is named like a script.
fn listing(folder: &Folder, left: &mut Vec<LeftBehind>) -> Result<Vec<String>, ImportError> {
    let entries = folder.entries().map_err(|source| ImportError::Read {
        path: folder.path().to_path_buf(),
        source,
    })?;
    let mut names = vec![];
    for entry in entries {
        match entry {
            Entry::File(name) => names.push(name),
            Entry::Dir(_) => {}
            Entry::Refused(name, why) => {
                let mut l = LeftBehind::refused(name, why);
                l.refused = l.file.ends_with(".sql") || l.file == "sqitch.plan";
                left.push(l);
            }
        }
    }
    Ok(names)
}

/// The subfolders of the folder, sorted.
fn subfolders(folder: &Folder) -> Result<Vec<String>, ImportError> {
    let entries = folder.entries().map_err(|source| ImportError::Read {
        path: folder.path().to_path_buf(),
        source,
    })?;
    Ok(entries
        .into_iter()
        .filter_map(|e| match e {
            Entry::Dir(d) => Some(d),
            _ => None,
        })
        .collect())
}

/// The layout of `dir`, as its files tell.
pub fn detect(dir: &Path) -> Result<Layout, ImportError> {
    let folder = open(dir)?;
    let names = listing(&folder, &mut vec![])?;
    let dirs = subfolders(&folder)?;
    let has = |f: &str| names.iter().any(|n| n == f);
    if let Some(f) = foreign::changelog(&folder, &names, Layout::Liquibase) {
        return Err(f.into());
    }
    if foreign::changelog(&folder, &names, Layout::Folder).is_some() {
        return Ok(Layout::Liquibase);
    }
    if has("sqitch.plan") {
        return Ok(Layout::Sqitch);
    }
    if has(atlas::SUM) {
        return Ok(Layout::Atlas);
    }
    if prisma::detect(&folder, &dirs) {
        return Ok(Layout::Prisma);
    }
    if diesel::detect(&folder, &dirs) {
        return Ok(Layout::Diesel);
    }
    if temporal::detect(&folder, &dirs) {
        return Ok(Layout::Temporal);
    }
    if flyway_locations::detect(&folder) {
        return Ok(Layout::Flyway);
    }
    if names.iter().any(|n| n.ends_with(".up.sql")) {
        return Ok(Layout::GolangMigrate);
    }
    if names.iter().any(|n| flyway_name(n).is_some()) {
        return Ok(Layout::Flyway);
    }
    let sql: Vec<&String> = names.iter().filter(|n| n.ends_with(".sql")).collect();
    for n in &sql {
        if goose::has_up(&read(&folder, n)?) {
            return Ok(Layout::Goose);
        }
    }
    for n in &sql {
        if liquibase::sql::is_changelog(&read(&folder, n)?) {
            return Ok(Layout::Liquibase);
        }
    }
    for n in &sql {
        let text = read(&folder, n)?;
        if dbmate_marker(&text, b"up").is_some() {
            return Ok(Layout::Dbmate);
        }
    }
    if sql.is_empty() {
        return Err(ImportError::Unknown {
            dir: dir.to_path_buf(),
        });
    }
    Ok(Layout::Folder)
}

/// `%project=NAME` of the Sqitch plan of `dir` (read as every file of it is: `folder.rs`).
pub fn sqitch_project(dir: &Path) -> Option<String> {
    let plan = read(&open(dir).ok()?, "sqitch.plan").ok()?;
    String::from_utf8_lossy(&plan)
        .lines()
        .find_map(|l| l.trim().strip_prefix("%project="))
        .map(|p| p.trim().to_string())
}

/// The numbers of a version (`20240101120000`, `1.2`, `2_1`), for order.
fn version_key(v: &str) -> Option<Vec<u128>> {
    v.split(['.', '_'])
        .map(|part| part.parse::<u128>().ok())
        .collect()
}

/// `V1.2__name.sql` / `U1.2__name.sql`: (kind, version, name).
fn flyway_name(file: &str) -> Option<(char, &str, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let kind = stem.chars().next()?;
    if !matches!(kind, 'V' | 'U' | 'R') {
        return None;
    }
    let (version, name) = stem[1..].split_once("__")?;
    if kind != 'R' && version_key(version).is_none() {
        return None;
    }
    Some((kind, version, name))
}

/// Where the line `-- migrate:WHICH` starts and where the line after it starts.
fn dbmate_marker(text: &[u8], which: &[u8]) -> Option<(usize, usize)> {
    let mut at = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let trimmed = line.trim_ascii();
        if let Some(rest) = trimmed.strip_prefix(b"-- migrate:") {
            if rest.starts_with(which) {
                return Some((at, at + line.len()));
            }
        }
        at += line.len();
    }
    None
}

fn layout_error(file: &str, why: impl Into<String>) -> ImportError {
    ImportError::Layout {
        file: file.into(),
        why: why.into(),
    }
}

/// `--option`s, and Liquibase's `database.defaultSchemaName` from the target's
/// connection (`--history`) when no `--option` sets it: the value Liquibase itself
/// would use there.
fn with_default_schema(naming: &Naming) -> Vec<(String, String)> {
    let mut options = naming.options.to_vec();
    const KEY: &str = "database.defaultSchemaName";
    if let Some(s) = naming.applied.and_then(|a| a.default_schema.clone()) {
        if !options.iter().any(|(k, _)| k == KEY) {
            options.push((KEY.to_string(), s));
        }
    }
    options
}

/// A link (or FIFO…) of a Prisma or Diesel folder named like a migration folder is a
/// migration not read: refused, not merely left behind.
fn refuse_unread_folders(left: &mut [LeftBehind]) {
    for l in left {
        let (version, _) = l.file.split_once('_').unwrap_or((&l.file, ""));
        l.refused |= !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '-');
    }
}

/// Read the migrations of `dir` as `layout`; files not brought over go to `left`.
/// `root`: the root Liquibase changelog `--changelog` names, if any.
fn migrations(
    (folder, more, root): (&Folder, &[Folder], Option<&str>),
    (custom, options): (&CustomChanges, &[(String, String)]),
    layout: Layout,
    left: &mut Vec<LeftBehind>,
    (tags, quiet): (
        &mut Vec<String>,
        &mut Vec<liquibase::preconditions::ChangeSetId>,
    ),
) -> Result<Vec<Migration>, ImportError> {
    let before = left.len();
    let mut names = listing(folder, left)?;
    if matches!(layout, Layout::Prisma | Layout::Diesel) {
        refuse_unread_folders(&mut left[before..]);
    }
    if let Some(f) = foreign::changelog(folder, &names, layout) {
        return Err(f.into());
    }
    let mut used = BTreeSet::new();
    // Another database's file is never taken as PostgreSQL's, whatever the layout.
    names.retain(|n| match other_dialect(n) {
        Some(d) => {
            left.push(LeftBehind {
                refused: false,
                file: n.clone(),
                why: format!("for {d}, not PostgreSQL"),
            });
            false
        }
        None => true,
    });
    let mut out = match layout {
        Layout::GolangMigrate => golang_migrate(&names, &mut used)?,
        Layout::Dbmate => dbmate(folder, &names, &mut used)?,
        Layout::Flyway => {
            let scripts = match flyway_locations::scripts(folder, more, &mut used, left)? {
                Some(found) => found,
                None => names
                    .iter()
                    .map(|n| (n.clone(), Script::File(n.clone())))
                    .collect(),
            };
            flyway(scripts, &mut used, left)?
        }
        Layout::Sqitch => sqitch(folder, &mut used, left)?,
        Layout::Prisma => prisma::migrations(folder, &subfolders(folder)?, &mut used, left)?,
        Layout::Diesel => diesel::migrations(folder, &subfolders(folder)?, left)?,
        Layout::Temporal => temporal::migrations(folder, &subfolders(folder)?, &mut used, left)?,
        Layout::Atlas => atlas::migrations(folder, &names, &mut used)?,
        // An XML/YAML changelog, with what it includes; else formatted SQL.
        Layout::Liquibase => {
            match liquibase::changelog::migrations(
                (folder, root),
                (custom, options),
                &names,
                &mut used,
                left,
                (tags, quiet),
            )? {
                Some(found) => found,
                None => liquibase::sql::migrations(folder, &names, &mut used, left)?,
            }
        }
        Layout::Goose => goose::migrations(folder, &names, &mut used, left)?,
        Layout::Folder => names
            .iter()
            .filter(|n| n.ends_with(".sql"))
            .map(|n| {
                used.insert(n.clone());
                Migration {
                    key: vec![],
                    label: n.trim_end_matches(".sql").into(),
                    up: Some(Script::File(n.clone())),
                    down: None,
                    up_online: false,
                    commits_apart: false,
                    verify: None,
                    no_down_said: false,
                    lb: None,
                }
            })
            .collect(),
    };
    for n in &names {
        if !used.contains(n) && !left.iter().any(|l| &l.file == n) {
            left.push(LeftBehind {
                refused: false,
                file: n.clone(),
                why: format!("not a {} migration file", layout.name()),
            });
        }
    }
    if layout.by_version() {
        out.sort_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(out)
}

/// The folders import reads (`dir`, and Flyway's further locations), opened once
/// `out` is judged against them.
fn open_folders(
    dir: &Path,
    layout: Layout,
    (out, existing): (&Path, Existing),
    naming: &Naming,
) -> Result<(Folder, Vec<Folder>), ImportError> {
    if !naming.locations.is_empty() && layout != Layout::Flyway {
        return Err(ImportError::SeveralFolders {
            layout: layout.name(),
        });
    }
    let mut folders = vec![dir];
    folders.extend(naming.locations.iter().map(PathBuf::as_path));
    out_dir::check(out, existing, &folders)?;
    let folder = open(dir)?;
    let more = (naming.locations.iter().map(|d| open(d))).collect::<Result<_, _>>()?;
    Ok((folder, more))
}

/// A plain folder's scripts (read in text order) in the order `--order` names; with
/// none, refused when the version order disagrees (`folder_order.rs`).
fn in_folder_order(
    dir: &Path,
    migrations: &mut [Migration],
    order: Option<FolderOrder>,
) -> Result<(), ImportError> {
    let file = |m: &Migration| match &m.up {
        Some(Script::File(f)) => f.clone(),
        _ => m.label.clone(),
    };
    match order {
        Some(FolderOrder::Text) => {}
        Some(FolderOrder::Version) => {
            migrations.sort_by(|a, b| folder_order::by_version(&file(a), &file(b)));
        }
        None => {
            let names: Vec<String> = migrations.iter().map(file).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if let Some((first, second)) = folder_order::disagreement(&names) {
                return Err(ImportError::OrderUnclear {
                    dir: dir.to_path_buf(),
                    first,
                    second,
                });
            }
        }
    }
    Ok(())
}

/// Dialects other than PostgreSQL's in migration file names (pop/kratos's
/// `V_name.mysql.up.sql`, a folder's `schema.sqlite3.sql`), with pop's synonyms.
const OTHER_DIALECTS: [&str; 11] = [
    "mysql",
    "mariadb",
    "sqlite3",
    "sqlite",
    "cockroach",
    "cockroachdb",
    "crdb",
    "mssql",
    "sqlserver",
    "oracle",
    "clickhouse",
];

/// PostgreSQL's own names in a file name (`V_name.postgres.up.sql`): such a file wins
/// over the generic one of its migration.
const POSTGRES: [&str; 3] = ["postgres", "postgresql", "pg"];

/// The other database a `.sql` file is for, from the word before `.sql` (after
/// `.up`/`.down` and pop's `.autocommit`): `X.cockroach.up.sql`, `X.mysql.sql`.
fn other_dialect(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(".sql")?;
    let stem = stem
        .strip_suffix(".up")
        .or_else(|| stem.strip_suffix(".down"))
        .unwrap_or(stem);
    let stem = stem.strip_suffix(".autocommit").unwrap_or(stem);
    let (_, word) = stem.rsplit_once('.')?;
    OTHER_DIALECTS
        .iter()
        .find(|d| word.eq_ignore_ascii_case(d))
        .map(|_| word)
}

/// golang-migrate (and pop): `VERSION_NAME[.DIALECT][.autocommit].up.sql` and `.down.sql`,
/// paired by VERSION as golang-migrate pairs them (`1_add_a.up.sql` with
/// `1_drop_a.down.sql`); the tier is named after the up file. Two files for one version
/// and direction are refused, as golang-migrate refuses them, except a PostgreSQL one
/// beside a generic one (pop), which wins.
fn golang_migrate(
    names: &[String],
    used: &mut BTreeSet<String>,
) -> Result<Vec<Migration>, ImportError> {
    // version -> the migration, and whether each slot holds a PostgreSQL-specific file.
    let mut found: std::collections::BTreeMap<Vec<u128>, (Migration, [bool; 2])> =
        Default::default();
    for n in names {
        let (stem, up) = match (n.strip_suffix(".up.sql"), n.strip_suffix(".down.sql")) {
            (Some(stem), _) => (stem, true),
            (_, Some(stem)) => (stem, false),
            _ => continue,
        };
        // pop: `NAME[.DIALECT].autocommit.up.sql` runs outside a transaction.
        let (stem, autocommit) = match stem.strip_suffix(".autocommit") {
            Some(s) => (s, true),
            None => (stem, false),
        };
        // Other dialects' files were left out already (`other_dialect`); a word that
        // is no dialect is part of the name, as golang-migrate reads it.
        let (base, dialect) = match stem.rsplit_once('.') {
            Some((base, d)) if POSTGRES.contains(&d) => (base, true),
            _ => (stem, false),
        };
        let (version, _) = base.split_once('_').unwrap_or((base, ""));
        let key = version_key(version)
            .ok_or_else(|| layout_error(n, "the version before the first `_` is not a number"))?;
        used.insert(n.clone());
        let (m, specific) = found.entry(key.clone()).or_insert((
            Migration {
                key,
                label: base.into(),
                up: None,
                down: None,
                up_online: false,
                commits_apart: false,
                verify: None,
                no_down_said: false,
                lb: None,
            },
            [false; 2],
        ));
        if up {
            m.label = base.into();
        }
        let (slot, specific) = if up {
            (&mut m.up, &mut specific[0])
        } else {
            (&mut m.down, &mut specific[1])
        };
        match slot {
            Some(other) if *specific == dialect => {
                return Err(layout_error(
                    n,
                    format!(
                        "a second {} file for version {version} (beside {}): golang-migrate refuses a duplicate migration; keep one",
                        if up { "up" } else { "down" },
                        other.from()
                    ),
                ))
            }
            // A PostgreSQL-specific file wins over a generic one.
            Some(_) if *specific => {}
            _ => {
                *slot = Some(Script::File(n.clone()));
                *specific = dialect;
                if up {
                    m.up_online = autocommit;
                }
            }
        }
    }
    Ok(found.into_values().map(|(m, _)| m).collect())
}

fn dbmate(
    folder: &Folder,
    names: &[String],
    used: &mut BTreeSet<String>,
) -> Result<Vec<Migration>, ImportError> {
    let mut out = vec![];
    for n in names.iter().filter(|n| n.ends_with(".sql")) {
        let path = n.clone();
        let text = read(folder, n)?;
        let Some((up_line, up_start)) = dbmate_marker(&text, b"up") else {
            continue;
        };
        let stem = n.trim_end_matches(".sql");
        let (version, _) = stem.split_once('_').unwrap_or((stem, ""));
        let Some(key) = version_key(version) else {
            continue;
        };
        // `-- migrate:up transaction:false`: dbmate runs it outside a transaction (an
        // online tier when a transaction would refuse it: `online_split.rs`).
        let options = String::from_utf8_lossy(&text[up_line..up_start]).into_owned();
        let outside = options.contains("transaction:false");
        let down = dbmate_marker(&text, b"down");
        let (up_end, down) = match down {
            Some((down_line, down_start)) if down_line > up_line => (
                down_line,
                Some(Script::Section {
                    from: path.clone(),
                    bytes: text[down_start..].to_vec(),
                    how: "the down section of a dbmate file, between its markers".into(),
                }),
            ),
            Some(_) => {
                return Err(layout_error(
                    n,
                    "`-- migrate:down` comes before `-- migrate:up`",
                ))
            }
            None => (text.len(), None),
        };
        used.insert(n.clone());
        out.push(Migration {
            key,
            label: stem.into(),
            up: Some(Script::Section {
                from: path.clone(),
                bytes: text[up_start..up_end].to_vec(),
                how: "the up section of a dbmate file, between its markers".into(),
            }),
            down: down.filter(
                |d| matches!(d, Script::Section { bytes, .. } if !bytes.trim_ascii().is_empty()),
            ),
            up_online: outside,
            commits_apart: outside,
            verify: None,
            no_down_said: false,
            lb: None,
        });
    }
    Ok(out)
}

/// A Flyway version's numbers with trailing zeros dropped: Flyway reads `1`, `1.0` and
/// `1.0.0` as one version.
fn flyway_same(key: &[u128]) -> &[u128] {
    let end = key.iter().rposition(|&n| n != 0).map_or(0, |i| i + 1);
    &key[..end]
}

/// Flyway's versioned migrations among `scripts` (each with its file name), in version
/// order, with their undo scripts; a version found twice (in one location or across
/// several) is refused, as Flyway refuses it.
fn flyway(
    scripts: Vec<(String, Script)>,
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let mut out: Vec<Migration> = vec![];
    for (n, script) in &scripts {
        match flyway_name(n) {
            Some(('V', version, name)) => {
                let key = version_key(version).expect("checked by flyway_name");
                if let Some(other) = out
                    .iter()
                    .find(|m| flyway_same(&m.key) == flyway_same(&key))
                {
                    return Err(layout_error(
                        script.from(),
                        format!(
                            "found more than one migration with version {version} (also {}): Flyway refuses this; keep one",
                            other.up.as_ref().map_or("", |s| s.from())
                        ),
                    ));
                }
                let undo = scripts.iter().find(|(u, _)| {
                    matches!(flyway_name(u), Some(('U', v, _)) if version_key(v).is_some_and(|k| flyway_same(&k) == flyway_same(&key)))
                });
                used.insert(script.from().into());
                if let Some((_, u)) = undo {
                    used.insert(u.from().into());
                }
                out.push(Migration {
                    key,
                    label: format!("V{version}__{name}"),
                    up: Some(script.clone()),
                    down: undo.map(|(_, u)| u.clone()),
                    up_online: false,
                    commits_apart: false,
                    verify: None,
                    no_down_said: false,
                    lb: None,
                });
            }
            Some(('R', ..)) => left.push(LeftBehind {
                refused: false,
                file: script.from().into(),
                why: "a Flyway repeatable migration (re-run whenever it changes); airlock has none: bring its current text as a tier of the release that changes it".into(),
            }),
            _ => {}
        }
    }
    // Every other file of the locations, in one place of the report: left behind.
    for (n, script) in &scripts {
        let from = script.from();
        if used.contains(from) || left.iter().any(|l| l.file == from) {
            continue;
        }
        left.push(LeftBehind {
            refused: false,
            file: from.into(),
            why: flyway_other(n),
        });
    }
    Ok(out)
}

/// Why a file of a Flyway location is not brought over: a Java or Kotlin migration
/// (source or compiled), an undo script without its migration, or not Flyway's.
fn flyway_other(file: &str) -> String {
    let code = [
        (".java", "Java"),
        (".kt", "Kotlin"),
        (".class", "compiled Java/Kotlin"),
    ]
    .into_iter()
    .find(|(ext, _)| file.ends_with(ext));
    match code {
        Some((ext, lang)) if file.starts_with(['V', 'R']) && file[1..].contains("__") => format!(
            "a Flyway {lang} migration ({}): code Flyway runs, which airlock cannot bring over; the bundle lacks what it does, and the tiers after it may depend on it: write its change as SQL (a V…__….sql at its version) and import again, or apply up to it with Flyway first and import the rest (--history)",
            file.trim_end_matches(ext)
        ),
        _ if flyway_name(file).is_some_and(|(k, ..)| k == 'U') => {
            "a Flyway undo script whose version has no migration here".into()
        }
        _ => "not a flyway migration file".into(),
    }
}

fn sqitch(
    folder: &Folder,
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let plan = read(folder, "sqitch.plan")?;
    let plan = String::from_utf8(plan).map_err(|_| layout_error("sqitch.plan", "not UTF-8"))?;
    used.insert("sqitch.plan".into());
    let mut out = vec![];
    let mut seen = BTreeSet::new();
    for (i, line) in plan.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['%', '#', '@']) {
            continue;
        }
        let name = line.split_whitespace().next().unwrap_or_default();
        let at = format!("sqitch.plan:{}", i + 1);
        if !seen.insert(name.to_string()) {
            return Err(layout_error(
                &at,
                format!("`{name}` is reworked (planned twice); import reads plans without reworked changes"),
            ));
        }
        // The change's scripts, each judged in the folder: a name reaching out of it
        // or a link leaves the whole change out (refused), never read.
        let deploy = format!("deploy/{name}.sql");
        match folder.has_file(&deploy) {
            Ok(true) => {}
            Ok(false) => return Err(layout_error(&at, format!("{deploy} does not exist"))),
            Err(why) => {
                left.push(LeftBehind::refused(deploy, why));
                continue;
            }
        }
        out.push(Migration {
            key: vec![],
            label: name.into(),
            up: Some(Script::File(deploy)),
            down: sqitch_script(folder, "revert", name, left).map(Script::File),
            up_online: false,
            commits_apart: false,
            verify: sqitch_script(folder, "verify", name, left),
            no_down_said: false,
            lb: None,
        });
    }
    Ok(out)
}

/// `SUB/NAME.sql` when it is a regular file of the folder; refused (a link…) in `left`.
fn sqitch_script(
    folder: &Folder,
    sub: &str,
    name: &str,
    left: &mut Vec<LeftBehind>,
) -> Option<String> {
    let rel = format!("{sub}/{name}.sql");
    match folder.has_file(&rel) {
        Ok(present) => present.then_some(rel),
        Err(why) => {
            left.push(LeftBehind::refused(rel, why));
            None
        }
    }
}

/// The migrations `applied` does not record; those it does are named in `left`. A
/// version or change the table records that the directory does not have is an error:
/// the directory is behind the database.
fn not_applied(
    folder: &Folder,
    migrations: Vec<Migration>,
    applied: &Applied,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let key = |v: &str| {
        version_key(v).ok_or_else(|| {
            layout_error(
                &applied.table,
                format!("records version `{v}`, which is not a number"),
            )
        })
    };
    let done: Box<dyn Fn(&Migration) -> bool> = match &applied.set {
        AppliedSet::Versions(vs) => {
            let keys = vs.iter().map(|v| key(v)).collect::<Result<Vec<_>, _>>()?;
            if let Some(v) = vs
                .iter()
                .zip(&keys)
                .find(|(_, k)| !migrations.iter().any(|m| &m.key == *k))
            {
                return Err(layout_error(&applied.table, format!("records version `{}`, which the migrations directory does not have: it is behind the database", v.0)));
            }
            Box::new(move |m: &Migration| keys.contains(&m.key))
        }
        AppliedSet::UpTo(v) => {
            let last = key(v)?;
            if !migrations.iter().any(|m| m.key == last) {
                return Err(layout_error(&applied.table, format!("records version `{v}`, which the migrations directory does not have: it is behind the database")));
            }
            Box::new(move |m: &Migration| m.key <= last)
        }
        AppliedSet::Names(names) => {
            if let Some(n) = names
                .iter()
                .find(|n| !migrations.iter().any(|m| &m.label == *n))
            {
                return Err(layout_error(&applied.table, format!("records change `{n}`, which sqitch.plan does not have: it is behind the database")));
            }
            Box::new(move |m: &Migration| names.contains(&m.label))
        }
        // Matched to the changesets (and unknown rows refused) by the preconditions'
        // decision, which marks them.
        AppliedSet::ChangeSets(_) => {
            Box::new(|m: &Migration| m.lb.as_ref().is_some_and(|c| c.ran_before))
        }
    };
    let (old, new): (Vec<Migration>, Vec<Migration>) =
        migrations.into_iter().partition(|m| done(m));
    for recorded in &applied.checksums {
        let k = key(&recorded.version)?;
        let Some(script) = old.iter().find(|m| m.key == k).and_then(|m| m.up.as_ref()) else {
            continue;
        };
        let actual = flyway::checksum(&script.bytes(folder)?);
        if actual != recorded.checksum {
            return Err(ImportError::Edited {
                file: script.from().into(),
                table: applied.table.clone(),
                recorded: recorded.checksum,
                actual,
            });
        }
    }
    for m in old {
        left.push(LeftBehind {
            refused: false,
            file: m.label,
            why: format!("applied on the target already ({} says so): not a tier; the bundle's preflight checks that the table still says exactly what import read", applied.table),
        });
    }
    Ok(new)
}

/// A file name of letters, digits, `_`, `-` and `.` from `label`.
fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The longest file stem import writes: `STEM.NNN.sql` (a cut part) stays within the
/// 100 bytes a ustar header holds for a file's name.
const MAX_STEM: usize = 90;

/// The file stem of the `i`th migration (`NNN_label`, its label made a file name) and
/// whether it was shortened to [`MAX_STEM`] bytes: the number in front keeps each
/// unique, and the report maps each migration to its files.
fn stem_of(i: usize, width: usize, label: &str) -> (String, bool) {
    let mut stem = format!("{:0width$}_{}", i + 1, slug(label));
    // `slug` leaves only ASCII: any byte is a character boundary.
    let cut = stem.len() > MAX_STEM;
    stem.truncate(MAX_STEM);
    (stem, cut)
}

/// The note on a file whose name was shortened ([`stem_of`]).
fn shortened(label: &str) -> String {
    format!(
        "named after migration {label:?}, shortened to {MAX_STEM} bytes (a bundle's file names fit a ustar header's 100)"
    )
}

/// The tables the up scripts create (qualified as written), for the rollback probe.
fn created_tables(scripts: &[Vec<u8>]) -> Vec<String> {
    use airlock_sql::pg_query::{self, NodeEnum};
    let mut out = BTreeSet::new();
    for bytes in scripts {
        let Ok(sql) = std::str::from_utf8(bytes) else {
            continue;
        };
        let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
            continue;
        };
        for raw in &parsed.protobuf.stmts {
            // `CREATE TABLE`, and `CREATE TABLE … AS` / `SELECT … INTO` (a table too).
            let relation = match raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
                Some(NodeEnum::CreateStmt(s)) => s.relation.as_ref(),
                Some(NodeEnum::CreateTableAsStmt(s))
                    if s.objtype() == pg_query::protobuf::ObjectType::ObjectTable =>
                {
                    s.into.as_ref().and_then(|i| i.rel.as_ref())
                }
                Some(NodeEnum::SelectStmt(s)) => {
                    s.into_clause.as_ref().and_then(|i| i.rel.as_ref())
                }
                _ => None,
            };
            if let Some(r) = relation {
                if r.relpersistence != "t" {
                    out.insert(if r.schemaname.is_empty() {
                        r.relname.clone()
                    } else {
                        format!("{}.{}", r.schemaname, r.relname)
                    });
                }
            }
        }
    }
    out.into_iter().collect()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.into()).to_string()
}

/// Import `dir` (as `layout`) into the new source directory `out` (or, as `existing`
/// allows, in place of the source there), written whole or not at all
/// ([`out_dir`]: staged beside it, then renamed into place).
pub fn import(
    dir: &Path,
    layout: Layout,
    (out, existing): (&Path, Existing),
    naming: &Naming,
) -> Result<Imported, ImportError> {
    let (folder, more) = open_folders(dir, layout, (out, existing), naming)?;
    let (mut left, mut tags, mut quiet) = (vec![], vec![], vec![]);
    let options = with_default_schema(naming);
    let mut migrations = migrations(
        (&folder, &more, naming.changelog),
        (naming.custom_changes, &options),
        layout,
        &mut left,
        (&mut tags, &mut quiet),
    )?;
    if layout == Layout::Folder {
        in_folder_order(dir, &mut migrations, naming.order)?;
    }
    // No --bundle-version: a Liquibase changelog's last tag names the release.
    let version = naming.version.map(str::to_string).or_else(|| tags.pop());
    let version = version.unwrap_or_else(|| DEFAULT_VERSION.to_string());
    let naming = &Naming {
        version: Some(&version),
        ..*naming
    };
    if migrations.is_empty() {
        return Err(ImportError::Empty {
            dir: dir.to_path_buf(),
            layout: layout.name(),
        });
    }
    let (mut migrations, decided) = decide(&folder, migrations, layout, naming, &quiet)?;
    let (mut released, already_released) = released(&folder, dir, &mut migrations, naming)?;
    if let Some(applied) = naming.applied {
        let version = naming.version.unwrap_or(DEFAULT_VERSION);
        migrations = without_applied(
            &folder,
            dir,
            migrations,
            (applied, version),
            &mut released,
            &mut left,
        )?;
    }
    let custom_changes = liquibase::custom::of_tiers(&migrations)?;
    let peer = (layout == Layout::Liquibase && naming.peer_history).then(|| PeerTable::of(naming));
    let staged = out_dir::stage(out)?;
    let mut written = write_scripts(
        &folder,
        layout,
        &migrations,
        naming.options,
        (staged.path(), peer.as_ref()),
        &mut left,
    )?;
    write_verify(&folder, &migrations, staged.path(), &mut written, &mut left)?;
    let peer_history = match &peer {
        Some(peer) if !written.peer_rows.is_empty() => {
            Some(peer_rollback(staged.path(), peer, &mut written)?)
        }
        _ => None,
    };
    let (rollback, carried) = write_spec(
        staged.path(),
        layout,
        naming,
        &written,
        (&released, &decided),
        &mut left,
    )?;
    out_dir::put_in_place(staged, out, existing)?;
    let tier_files: Vec<(&str, &[u8])> = (written.tiers.iter().zip(&written.ups))
        .filter_map(|((_, files, _), bytes)| Some((files.first()?.as_str(), bytes.as_slice())))
        .collect();
    let peer_tables = peer_tables::warnings(&tier_files);
    let rollback_left_out = if rollback.is_empty() {
        vec![]
    } else {
        written.left_out
    };
    Ok(Imported {
        layout,
        tiers: written.tiers.into_iter().map(|(label, ..)| label).collect(),
        rollback,
        files: written.files,
        left_behind: left,
        already_released,
        no_down_script: written.no_down,
        splits: written.splits,
        peer_tables,
        rollback_left_out,
        carried,
        preconditions: decided,
        peer_history,
        custom_changes,
    })
}

/// Where the tiers write Liquibase's history, and what it holds already.
struct PeerTable {
    table: String,
    /// The table is made by the first tier (no `--history` read one).
    create: bool,
    /// (id, author, file) of each changeset it records (`--history`).
    recorded: Vec<(String, String, String)>,
}

impl PeerTable {
    fn of(naming: &Naming) -> PeerTable {
        match naming.applied {
            Some(a) => PeerTable {
                table: a.table.clone(),
                create: false,
                recorded: match &a.set {
                    AppliedSet::ChangeSets(rows) => (rows.iter())
                        .map(|r| (r.id.clone(), r.author.clone(), r.filename.clone()))
                        .collect(),
                    _ => vec![],
                },
            },
            // A release that follows another (--since) finds the table its first
            // release (or Liquibase) made.
            None => PeerTable {
                table: "databasechangelog".into(),
                create: naming.since.is_none(),
                recorded: vec![],
            },
        }
    }
}

/// The DATABASECHANGELOG rows of the changesets `m` carries (its own, and those
/// recorded with it that are no tier), written as a file of its last tier.
fn record_peer_rows(
    base: &Path,
    stem: &str,
    m: &Migration,
    peer: &PeerTable,
    w: &mut Written,
) -> Result<(), ImportError> {
    use liquibase::history::Row;
    let Some(lb) = m.lb.as_deref() else {
        return Ok(());
    };
    // FILENAME is the path Liquibase knows the changeset by (its `logicalFilePath`
    // where one is set), not the file it was read from: the report's `from` below.
    let row = |c: &liquibase::preconditions::ChangeSetId, exectype: &'static str| Row {
        id: c.id.clone(),
        author: c.author.clone(),
        filename: c.path.clone(),
        exectype,
        md5sum: c.sum.clone().ok(),
        description: c.row.description.clone(),
        comments: c.row.comments.clone(),
        tag: c.row.tag.clone(),
    };
    let before = lb.with.iter().filter(|r| !r.after);
    let after = lb.with.iter().filter(|r| r.after);
    let rows: Vec<Row> = (before.map(|r| row(&r.cs, r.exectype)))
        .chain([row(lb, "EXECUTED")])
        .chain(after.map(|r| row(&r.cs, r.exectype)))
        .filter(|r| {
            !(peer.recorded.iter()).any(|(i, a, f)| {
                *i == r.id && *a == r.author && liquibase::preconditions::same_file(f, &r.filename)
            })
        })
        .collect();
    // An online tier runs nothing but what is safe to run again (docs/sql.md): its
    // rows go with the next tier that is transactional.
    w.peer_pending.extend(rows);
    match w.tiers.last() {
        Some((.., false)) => {
            let rows = std::mem::take(&mut w.peer_pending);
            let to = format!("{PEER_TIER_DIR}{stem}.sql");
            let how = format!(
                "the DATABASECHANGELOG row(s) Liquibase writes for changeset {}:{}",
                lb.author, lb.id
            );
            peer_file(base, (&to, &lb.file, how), peer, rows, w)
        }
        _ => Ok(()),
    }
}

/// `rows` written as `to` (from the changelog `from`; `how`, what they are), a file
/// of the last tier that is transactional.
fn peer_file(
    base: &Path,
    (to, from, how): (&str, &str, String),
    peer: &PeerTable,
    rows: Vec<liquibase::history::Row>,
    w: &mut Written,
) -> Result<(), ImportError> {
    let Some((_, files, _)) = w.tiers.iter_mut().rev().find(|(.., online)| !online) else {
        return Ok(());
    };
    if rows.is_empty() {
        return Ok(());
    }
    let create = peer.create && w.peer_rows.is_empty();
    write_file(
        base,
        to,
        liquibase::history::record(&peer.table, &rows, create).as_bytes(),
    )?;
    files.push(to.to_string());
    w.files.push(Brought {
        from: from.to_string(),
        to: to.to_string(),
        change: format!(
            "{how}{}, written by the tier (in its transaction){}",
            if rows.len() > 1 {
                format!(" ({} rows)", rows.len())
            } else {
                String::new()
            },
            if create {
                "; it creates the table first, as Liquibase does"
            } else {
                ""
            }
        ),
    });
    w.peer_rows.extend(rows);
    Ok(())
}

/// The rollback's file that removes the rows the tiers write (first of the
/// rollback's files: it undoes every tier), and the report of the whole.
fn peer_rollback(
    base: &Path,
    peer: &PeerTable,
    w: &mut Written,
) -> Result<PeerHistory, ImportError> {
    let rows = &w.peer_rows;
    let mut files: Vec<String> = (w.tiers.iter())
        .flat_map(|(_, f, _)| f.iter().filter(|f| f.starts_with(PEER_TIER_DIR)).cloned())
        .collect();
    // Only into a rollback that is written; an online rollback runs nothing but what
    // is safe to run again: no DELETE.
    if rollback_written(w) && !w.rollback_online {
        write_file(
            base,
            PEER_ROLLBACK,
            liquibase::history::remove(&peer.table, rows, peer.create).as_bytes(),
        )?;
        w.downs.insert(0, PEER_ROLLBACK.to_string());
        files.push(PEER_ROLLBACK.to_string());
    }
    Ok(PeerHistory {
        table: peer.table.clone(),
        executed: rows.iter().filter(|r| r.exectype == "EXECUTED").count(),
        mark_ran: rows.iter().filter(|r| r.exectype == "MARK_RAN").count(),
        no_md5sum: (rows.iter())
            .filter(|r| r.md5sum.is_none())
            .map(|r| format!("{}:{}", r.author, r.id))
            .collect(),
        creates_table: peer.create,
        files,
    })
}

/// The Liquibase changesets of `migrations` that run on the target, their
/// preconditions decided (`liquibase/preconditions.rs`), those DATABASECHANGELOG
/// (`--history`) records marked; `quiet`: the changesets that write no tier.
fn decide(
    folder: &Folder,
    migrations: Vec<Migration>,
    layout: Layout,
    naming: &Naming,
    quiet: &[liquibase::preconditions::ChangeSetId],
) -> Result<(Vec<Migration>, Vec<Decided>), ImportError> {
    let mut decided = vec![];
    if layout != Layout::Liquibase {
        return Ok((migrations, decided));
    }
    let history = match naming.applied.map(|a| &a.set) {
        Some(AppliedSet::ChangeSets(rows)) => Some(rows.as_slice()),
        _ => None,
    };
    let released = naming
        .since
        .map(|s| s.released.as_slice())
        .unwrap_or_default();
    let kept = liquibase::preconditions::decide(
        folder,
        migrations,
        (history, quiet, released),
        naming.preconditions,
        &mut decided,
    )?;
    Ok((kept, decided))
}

/// `migrations` without those the peer's history table says are applied; those are
/// marked in `released` as applied before airlock (released history too: the next
/// `import --since` finds them in place, not inserted).
fn without_applied(
    folder: &Folder,
    dir: &Path,
    migrations: Vec<Migration>,
    (applied, version): (&Applied, &str),
    released: &mut [crate::spec::Released],
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let migrations = not_applied(folder, migrations, applied, left)?;
    if migrations.is_empty() {
        return Err(ImportError::NothingNew {
            dir: dir.to_path_buf(),
            table: applied.table.clone(),
        });
    }
    let kept: std::collections::BTreeSet<&str> =
        migrations.iter().map(|m| m.label.as_str()).collect();
    for r in released.iter_mut() {
        if r.release == version && !kept.contains(r.migration.as_str()) {
            r.release = format!("applied before airlock ({})", applied.table);
        }
    }
    Ok(migrations)
}

/// What a migration the peer runs outside a transaction (pop's `.autocommit`, diesel's
/// `run_in_transaction = false`, Atlas's `txmode none`, Liquibase's
/// `runInTransaction:false`) becomes, when nothing in it needs that.
const OUTSIDE_TX: &str = "run outside a transaction by the peer tool: nothing in it needs that, so it runs in the apply's transaction like the others";
const ONLINE: &str = "a statement of it cannot run inside a transaction (CONCURRENTLY, VACUUM): an `online = true` tier, as written, one statement at a time, each recorded as it completes";

/// Why a down script that cannot run in a transaction is not part of the rollback, and
/// the one thing to do: `own`, its statement that cannot (`file:line: what`); `blocker`,
/// the statement (`file:line`) of the down scripts that keeps the rollback from running
/// online.
fn down_not_online(own: &str, blocker: &str) -> String {
    format!("{own}, and the rollback runs in one: it runs outside a transaction only whole (online), which {blocker} does not allow (a statement not safe to run outside a transaction and again). So the rollback leaves this change in place: run it by hand, right before `airlock rollback` of this release")
}

/// The scripts written into a source.
struct Written {
    files: Vec<Brought>,
    /// (tier name, files, online), in order.
    tiers: Vec<(String, Vec<String>, bool)>,
    /// Each migration's last tier (by label): where its Sqitch verify script goes.
    tier_of: std::collections::BTreeMap<String, usize>,
    /// The up scripts' bytes (for the rollback probe).
    ups: Vec<Vec<u8>>,
    /// The tables the up scripts create ([`created_tables`], parsed once when every
    /// tier is written): what the rollback's probe checks.
    created: Vec<String>,
    /// Rollback files, newest first.
    downs: Vec<String>,
    /// The rollback runs online (a down script needs it, and every one allows it).
    rollback_online: bool,
    /// The migrations with no down script.
    no_down: Vec<String>,
    /// The down scripts the rollback leaves out (as the folder names them): what they
    /// undo stays after a rollback.
    left_out: Vec<String>,
    /// Why the bundle commits each tier on its own (`commits.rs`); empty: one
    /// transaction.
    splits: Vec<String>,
    /// The DATABASECHANGELOG rows the tiers write (`liquibase/history.rs`), in order.
    peer_rows: Vec<liquibase::history::Row>,
    /// Rows of online tiers, for the next transactional tier to write.
    peer_pending: Vec<liquibase::history::Row>,
}

/// The probes `import` writes itself (never the team's policy: `import --since`
/// carries none of them, [`policy`]): the rollback's, the peer history's, and a fresh
/// target's (Liquibase preconditions decided on an empty database).
pub(crate) const ROLLED_BACK_PROBE: &str = "sql/probe/rolled_back.sql";
pub(crate) const PEER_HISTORY_PROBE: &str = "sql/probe/peer_history.sql";
pub(crate) const FRESH_TARGET_PROBE: &str = "sql/probe/fresh_target.sql";
/// Where the tiers' files of Liquibase's history go (`liquibase/history.rs`).
const PEER_TIER_DIR: &str = "sql/liquibase/";
/// The rollback's file that removes the rows the tiers write in Liquibase's history:
/// the first of the rollback's files.
pub const PEER_ROLLBACK: &str = "sql/rollback/000_liquibase_history.sql";

/// Whether [`write_spec`] writes a `[rollback]`: there are down scripts, and a table
/// the migrations create for its probe to check.
fn rollback_written(w: &Written) -> bool {
    !w.downs.is_empty() && !w.created.is_empty()
}

/// Every probe [`write_spec`]'s import writes itself.
pub(crate) const IMPORT_PROBES: [&str; 3] =
    [ROLLED_BACK_PROBE, PEER_HISTORY_PROBE, FRESH_TARGET_PROBE];

/// Write `base/rel` (and its directories).
fn write_file(base: &Path, rel: &str, bytes: &[u8]) -> Result<(), ImportError> {
    let path = base.join(rel);
    let err = |source| ImportError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().expect("a parent")).map_err(err)?;
    std::fs::write(&path, bytes).map_err(err)
}

/// A down script read, before the rollback is decided: where it goes, what it came
/// from, its bytes and changes, whether it needs to run outside a transaction.
struct Down {
    to: String,
    /// Where its bytes come from, to name a line of it.
    at: Script,
    brought: Brought,
    bytes: Vec<u8>,
    outside: bool,
}

/// Each migration's up script as a tier file (or, cut, as consecutive tiers), its down
/// script as a rollback file.
fn write_scripts(
    folder: &Folder,
    layout: Layout,
    migrations: &[Migration],
    options: &[(String, String)],
    (base, peer): (&Path, Option<&PeerTable>),
    left: &mut Vec<LeftBehind>,
) -> Result<Written, ImportError> {
    let width = migrations.len().to_string().len().max(3);
    let read = |s: &Script, up: bool| {
        let bytes = s.bytes(folder)?;
        if let Some(f) = foreign::in_script(layout, &bytes, |n| s.line(n)) {
            return Err(ImportError::from(f));
        }
        adapt::adapt(s.from(), bytes, options, up)
    };
    let mut w = Written {
        files: vec![],
        tiers: vec![],
        ups: vec![],
        created: vec![],
        downs: vec![],
        rollback_online: false,
        no_down: vec![],
        left_out: vec![],
        tier_of: Default::default(),
        splits: vec![],
        peer_rows: vec![],
        peer_pending: vec![],
    };
    let mut downs = vec![];
    for (i, m) in migrations.iter().enumerate() {
        let (stem, cut) = stem_of(i, width, &m.label);
        if let Some(up) = &m.up {
            let mut a = read(up, true)?;
            if cut {
                a.changes.push(shortened(&m.label));
            }
            write_up(base, &stem, m, up, a, &mut w)?;
            if let Some(peer) = peer {
                record_peer_rows(base, &stem, m, peer, &mut w)?;
            }
        }
        match &m.down {
            Some(down) => {
                let to = format!("sql/rollback/{stem}.sql");
                let mut a = read(down, false)?;
                if cut {
                    a.changes.push(shortened(&m.label));
                }
                if let Some(why) = unparsed(&to, &a.bytes) {
                    left.push(LeftBehind {
                        refused: false,
                        file: down.from().into(),
                        why: format!("{why}: it cannot run (the peer's own revert fails on it too), so it is left out of the rollback, which then does not undo this migration (the rollback probe tells whether that matters); fix it and import again"),
                    });
                    w.left_out.push(down.name());
                    continue;
                }
                let outside = !matches!(
                    online_split::runs(&to, &a.bytes),
                    online_split::Runs::Transactional
                );
                downs.push(Down {
                    at: down.clone(),
                    brought: brought(down, &to, a.changes),
                    to,
                    bytes: a.bytes,
                    outside,
                });
            }
            None if layout != Layout::Folder && !m.no_down_said => w.no_down.push(m.label.clone()),
            None => {}
        }
    }
    if let Some(peer) = peer {
        // Online tiers at the end: their rows with the last transactional tier.
        let rows = std::mem::take(&mut w.peer_pending);
        let how = "the DATABASECHANGELOG rows Liquibase writes for the changesets of the online tiers after it".to_string();
        peer_file(
            base,
            (
                &format!("{PEER_TIER_DIR}after_online.sql"),
                "(changelog)",
                how,
            ),
            peer,
            rows,
            &mut w,
        )?;
    }
    write_downs(base, downs, &mut w, left)?;
    let enum_splits = commits::enum_splits(&w.tiers, &w.ups);
    w.splits.extend(enum_splits);
    w.created = created_tables(&w.ups);
    Ok(w)
}

/// The up script `a` of `m` as its tier, or its consecutive tiers when cut.
fn write_up(
    base: &Path,
    stem: &str,
    m: &Migration,
    up: &Script,
    a: adapt::Adapted,
    w: &mut Written,
) -> Result<(), ImportError> {
    use online_split::Runs;
    let to = format!("sql/tiers/{stem}.sql");
    let mut changes = a.changes;
    let online = match online_split::runs(&to, &a.bytes) {
        Runs::Cut(parts) => {
            let n = parts.len();
            for (k, p) in parts.into_iter().enumerate() {
                let to = format!("sql/tiers/{stem}.{}.sql", k + 1);
                write_file(base, &to, &p.bytes)?;
                let mut changes = changes.clone();
                changes.push(format!(
                    "lines {}-{}, part {} of {n}: the file mixes statements that cannot run inside a transaction (CONCURRENTLY) with others, so it is cut at statement boundaries into {n} consecutive tiers, each as written; this part {}",
                    p.lines.0,
                    p.lines.1,
                    k + 1,
                    if p.online { "runs online (`online = true`)" } else { "runs in the apply's transaction" }
                ));
                w.files.push(brought(up, &to, changes));
                w.tier_of.insert(m.label.clone(), w.tiers.len());
                w.tiers
                    .push((format!("{}.{}", m.label, k + 1), vec![to], p.online));
                w.ups.push(p.bytes);
            }
            return Ok(());
        }
        Runs::Online => {
            changes.push(ONLINE.into());
            true
        }
        Runs::Kept(why) => {
            changes.push(format!("not made online: {why}"));
            false
        }
        Runs::Transactional if m.commits_apart => match commits::apart(&to, &a.bytes) {
            commits::Apart::Online => {
                changes.push(commits::ONLINE_APART.into());
                true
            }
            commits::Apart::OwnTransaction(why) => {
                w.splits.push(commits::own_transaction(&m.label, &why));
                false
            }
        },
        Runs::Transactional => {
            if m.up_online {
                changes.push(OUTSIDE_TX.into());
            }
            false
        }
    };
    write_file(base, &to, &a.bytes)?;
    w.files.push(brought(up, &to, changes));
    w.tier_of.insert(m.label.clone(), w.tiers.len());
    w.tiers.push((m.label.clone(), vec![to], online));
    w.ups.push(a.bytes);
    Ok(())
}

/// Why a script does not parse as PostgreSQL (`line N: …`), if it does not.
fn unparsed(file: &str, bytes: &[u8]) -> Option<String> {
    let sql = std::str::from_utf8(bytes).ok()?;
    airlock_sql::check(file, sql, airlock_sql::SqlRole::Script)
        .into_iter()
        .find(|p| p.message.starts_with("does not parse as PostgreSQL"))
        .map(|p| format!("line {}: {}", p.line, p.message))
}

/// The down scripts as the rollback: online when one of them needs it and every one
/// allows it; else those that need it are left behind, with the reason.
fn write_downs(
    base: &Path,
    downs: Vec<Down>,
    w: &mut Written,
    left: &mut Vec<LeftBehind>,
) -> Result<(), ImportError> {
    // Where it is only (lint's reason carries advice for an online tier, which is not
    // what the reader of this report is to do).
    let blocker = downs.iter().find_map(|d| {
        let sql = String::from_utf8_lossy(&d.bytes);
        airlock_sql::check(&d.brought.from, &sql, airlock_sql::SqlRole::Online)
            .into_iter()
            .next()
            .map(|p| d.at.line(p.line))
    });
    let any_outside = downs.iter().any(|d| d.outside);
    w.rollback_online = any_outside && blocker.is_none();
    for d in downs {
        if d.outside && !w.rollback_online {
            left.push(LeftBehind {
                refused: false,
                file: d.brought.from.clone(),
                why: down_not_online(
                    &in_transaction_refusal(&d),
                    blocker.as_deref().unwrap_or(""),
                ),
            });
            w.left_out.push(d.at.name());
            continue;
        }
        write_file(base, &d.to, &d.bytes)?;
        w.files.push(d.brought);
        w.downs.push(d.to);
    }
    w.downs.reverse();
    Ok(())
}

/// The statement of down script `d` that cannot run in a transaction, as
/// `file:line: what` (lint's words, up to its advice).
fn in_transaction_refusal(d: &Down) -> String {
    let sql = String::from_utf8_lossy(&d.bytes);
    let problem = airlock_sql::check(&d.brought.from, &sql, airlock_sql::SqlRole::Script)
        .into_iter()
        .find(|p| p.message.contains("inside a transaction"));
    match problem {
        Some(p) => {
            let what = p.message.split(';').next().unwrap_or_default();
            format!("{}: {what}", d.at.line(p.line))
        }
        None => format!(
            "{}: a statement of it cannot run inside a transaction (CONCURRENTLY)",
            d.at.name()
        ),
    }
}

/// Sqitch's verify scripts of the migrations written as tiers (`sqitch_verify.rs`):
/// each a second file of its change's tier, run right after the deploy script.
fn write_verify(
    folder: &Folder,
    migrations: &[Migration],
    base: &Path,
    written: &mut Written,
    left: &mut Vec<LeftBehind>,
) -> Result<(), ImportError> {
    let width = migrations.len().to_string().len().max(3);
    for (i, m) in migrations.iter().enumerate() {
        let Some(file) = m.verify.clone() else {
            continue;
        };
        let Some(&tier) = written.tier_of.get(&m.label) else {
            continue;
        };
        if written.tiers[tier].2 {
            left.push(LeftBehind {
                refused: false,
                file,
                why: "its change runs as an online tier (one statement at a time, outside a transaction), which holds no queries: run it by hand after the apply".into(),
            });
            continue;
        }
        let bytes = read(folder, &file)?;
        let translated = match std::str::from_utf8(&bytes) {
            Ok(sql) => sqitch_verify::queries(&file, sql),
            Err(_) => Err("not UTF-8 (SQL files must be UTF-8)".to_string()),
        };
        let queries = match translated {
            Ok(q) => q,
            Err(why) => {
                left.push(LeftBehind {
                    refused: false,
                    file,
                    why,
                });
                continue;
            }
        };
        let to = format!("sql/verify/{}.sql", stem_of(i, width, &m.label).0);
        write_file(base, &to, sqitch_verify::script(&file, &queries).as_bytes())?;
        written.tiers[tier].1.push(to.clone());
        written.files.push(Brought {
            from: file,
            to,
            change: format!(
                "its {} quer{}, as written, as the second file of the tier `{}`: run right after the change, in its transaction, as `sqitch deploy --verify` runs it; an error fails the apply",
                queries.len(),
                if queries.len() == 1 { "y" } else { "ies" },
                written.tiers[tier].0
            ),
        });
    }
    Ok(())
}

/// The preflight of a bundle that follows the peer tool's history: its table must
/// still say what import read, and what the Liquibase preconditions decided on the
/// target assumed of it (`held`) must still hold.
fn peer_history_preflight(
    base: &Path,
    applied: &Applied,
    held: &[Held],
) -> Result<String, ImportError> {
    let mut probe = applied.probe.clone();
    let mut expect = format!("peer_history = {}", toml_str(&applied.value));
    for h in held {
        probe.push_str(&format!(
            "\n-- {}\nUNION ALL SELECT {}::text, ({})::text",
            h.why.replace('\n', " "),
            sql_literal(&h.key),
            h.expr
        ));
        expect.push_str(&format!(", {} = {}", h.key, toml_str(&h.expect)));
    }
    write_file(
        base,
        PEER_HISTORY_PROBE,
        format!(
            "-- What {} said when `airlock import` read it: the migrations applied before this bundle.\n{probe}\n",
            applied.table
        )
        .as_bytes(),
    )?;
    Ok(format!(
        "\n# The migrations before these tiers were applied by the peer tool: its history table must still say so.\n[preflight]\nfile = \"{PEER_HISTORY_PROBE}\"\nexpect = {{ {expect} }}\n"
    ))
}

/// `bundle.toml` (and the rollback probe): the rollback files written, if any.
fn write_spec(
    base: &Path,
    layout: Layout,
    naming: &Naming,
    written: &Written,
    (released, decided): (&[crate::spec::Released], &[Decided]),
    left: &mut Vec<LeftBehind>,
) -> Result<(Vec<String>, Vec<Carried>), ImportError> {
    let policy = naming.since.map(|s| &s.policy);
    let mut toml = format!(
        "# Imported by `airlock import` from a {} layout: one tier per migration, in order.\n\n[bundle]\nname = {}\nversion = {}\nsequence = {}\n{}\n[target]\ndatabase = {}\n{}",
        layout.name(),
        toml_str(naming.name),
        toml_str(naming.version.unwrap_or(DEFAULT_VERSION)),
        naming.since.map_or(1, |s| s.sequence.saturating_add(1)),
        if written.splits.is_empty() {
            ""
        } else {
            "# Each tier commits on its own, as the peer commits each migration: see the import report.\ntransaction = \"per-tier\"\n"
        },
        toml_str(naming.database),
        policy.map(Policy::target_toml).unwrap_or_default()
    );
    if let Some(applied) = naming.applied {
        let held = naming.preconditions.map(|p| p.held()).unwrap_or_default();
        toml.push_str(&peer_history_preflight(base, applied, &held)?);
    }
    toml.push_str(&liquibase::preconditions::spec_text(
        base,
        decided,
        // A release that follows another (--since) is for the database that release
        // left, never a fresh one: apply's continuation check holds its schema.
        naming.preconditions.is_some() && naming.applied.is_none() && naming.since.is_none(),
    )?);
    let carried = match policy {
        Some(policy) => carry_policy(base, policy, &mut toml)?,
        None => vec![],
    };
    let gates = policy.map(Policy::new_tier_gates).unwrap_or_default();
    toml.push_str(&tiers_toml(&written.tiers, &gates));
    let tables = &written.created;
    let rollback = if rollback_written(written) {
        let names: Vec<String> = tables.iter().map(|t| sql_literal(t)).collect();
        write_file(
            base,
            ROLLED_BACK_PROBE,
            format!(
                "-- After the rollback, none of the tables the migrations create exists: the\n-- value names those still there (\"none\" when the rollback undid them all).\nSELECT 'created_tables_left'::text AS key,\n    coalesce(string_agg(t, ', ' ORDER BY t), 'none') AS value\nFROM unnest(ARRAY[\n    {}\n]::text[]) AS t\nWHERE to_regclass(t) IS NOT NULL\n",
                names.join(",\n    ")
            )
            .as_bytes(),
        )?;
        let list: Vec<String> = written.downs.iter().map(|d| toml_str(d)).collect();
        toml.push_str(&format!(
            "\n[rollback]\nfiles = [{}]\nprobe = \"{ROLLED_BACK_PROBE}\"\nexpect = {{ created_tables_left = \"none\" }}\n{}",
            list.join(", "),
            if written.rollback_online { "online = true\n" } else { "" }
        ));
        // Each down undoes its migration's tier (the same stem): rollback after a partial
        // apply runs only those of the tiers that ran.
        let undoes: Vec<String> = (written.downs.iter())
            .filter_map(|d| {
                // Liquibase's history put back: it undoes the first tier (which made
                // the table, or wrote the first rows).
                if d == PEER_ROLLBACK {
                    let (label, ..) = written.tiers.first()?;
                    return Some(format!("{} = {}\n", toml_str(d), toml_str(label)));
                }
                // The first tier of its migration: the whole file, or its first cut.
                let up = d.replacen("sql/rollback/", "sql/tiers/", 1);
                let first_cut = format!("{}.1.sql", up.trim_end_matches(".sql"));
                let (label, ..) = written
                    .tiers
                    .iter()
                    .find(|(_, f, _)| f.first().is_some_and(|f0| *f0 == up || *f0 == first_cut))?;
                Some(format!("{} = {}\n", toml_str(d), toml_str(label)))
            })
            .collect();
        if !undoes.is_empty() {
            toml.push_str(&format!("\n[rollback.undoes]\n{}", undoes.concat()));
        }
        written.downs.clone()
    } else {
        if !written.downs.is_empty() {
            left.push(LeftBehind {
                refused: false,
                file: "(rollback)".into(),
                why: "the migrations create no table a probe could check, so no [rollback] was written; the down scripts are in sql/rollback/: add a probe and [rollback]".into(),
            });
        }
        vec![]
    };
    toml.push_str(&train_toml(naming.since, released));
    write_file(base, "bundle.toml", toml.as_bytes())?;
    Ok((rollback, carried))
}

/// The policy of the release followed into the source: its gate and probe files
/// written (refused where import writes a file of that path), its sections appended
/// to `toml` (its preflight only when import writes none); what was carried.
fn carry_policy(
    base: &Path,
    policy: &Policy,
    toml: &mut String,
) -> Result<Vec<Carried>, ImportError> {
    let preflight = !toml.contains("\n[preflight]");
    for file in policy.files_named(preflight) {
        if base.join(&file).exists() || Policy::written_by_import(&file) {
            return Err(ImportError::PolicyClash { file });
        }
        let bytes = policy
            .files
            .get(&file)
            .map(Vec::as_slice)
            .unwrap_or_default();
        write_file(base, &file, bytes)?;
    }
    let sections = policy.sections_toml(preflight);
    if !sections.is_empty() {
        toml.push_str("\n# Carried from the release this one follows (its policy): review it.\n");
        toml.push_str(&sections);
    }
    Ok(policy.carried(preflight))
}

/// `[[tier]]` of each tier written, each naming `gates` (carried: `policy.rs`).
fn tiers_toml(tiers: &[(String, Vec<String>, bool)], gates: &[String]) -> String {
    let gates = if gates.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = gates.iter().map(|g| toml_str(g)).collect();
        format!("gates = [{}]\n", names.join(", "))
    };
    let mut out = String::new();
    for (label, files, online) in tiers {
        let files: Vec<String> = files.iter().map(|f| toml_str(f)).collect();
        out.push_str(&format!(
            "\n[[tier]]\nname = {}\nfiles = [{}]\n{}{}",
            toml_str(label),
            files.join(", "),
            gates,
            if *online { "online = true\n" } else { "" }
        ));
    }
    out
}

/// `[follows]` (with `--since`) and `[[released]]`, as bundle.toml text.
fn train_toml(since: Option<&Since>, released: &[crate::spec::Released]) -> String {
    let mut out = String::new();
    if let Some(since) = since {
        out.push_str(&format!(
            "\n# The release this one follows: plan and apply refuse a database where it is not applied.\n[follows]\nname = {}\nversion = {}\nsequence = {}\nbundle_id = {}\ntiers = [{}]\n",
            toml_str(&since.name),
            toml_str(&since.version),
            since.sequence,
            toml_str(&since.bundle_id),
            since.tiers.iter().map(|t| toml_str(t)).collect::<Vec<_>>().join(", ")
        ));
    }
    if !released.is_empty() {
        out.push_str("\n# Every migration this release and the releases before it carried, as imported:\n# `airlock import --since` this bundle refuses one edited or inserted before them.\n");
    }
    for r in released {
        out.push_str(&format!(
            "[[released]]\nmigration = {}\nsha256 = {}\nrelease = {}\n",
            toml_str(&r.migration),
            toml_str(&r.sha256),
            toml_str(&r.release)
        ));
    }
    out
}

/// SHA-256 (hex) of a migration as import reads it: its up script (and its down
/// script, so an edited down script is an edit too).
fn migration_sha256(folder: &Folder, m: &Migration) -> Result<String, ImportError> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (tag, script) in [(b"up\0", &m.up), (b"dn\0", &m.down)] {
        if let Some(script) = script {
            h.update(tag);
            h.update(script.bytes(folder)?);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Every migration this release and the ones before it carried (`[[released]]`);
/// with `--since`, the migrations the release followed carried are taken out of
/// `migrations` (second: each, with the release that carried it), after checking that
/// each is in the folder as it was released and that no new one sorts before the last
/// released.
fn released(
    folder: &Folder,
    dir: &Path,
    migrations: &mut Vec<Migration>,
    naming: &Naming,
) -> Result<(Vec<crate::spec::Released>, Vec<AlreadyReleased>), ImportError> {
    let mut hashes = Vec::with_capacity(migrations.len());
    for m in migrations.iter() {
        hashes.push(migration_sha256(folder, m)?);
    }
    let mut out = vec![];
    let mut already = vec![];
    let mut first_new = 0;
    if let Some(since) = naming.since {
        first_new = after_released(since, dir, migrations, &hashes)?;
        out.extend(since.released.iter().cloned());
        already.extend(since.released.iter().map(|r| AlreadyReleased {
            migration: r.migration.clone(),
            release: r.release.clone(),
        }));
    }
    for (m, h) in migrations[first_new..].iter().zip(&hashes[first_new..]) {
        out.push(crate::spec::Released {
            migration: m.label.clone(),
            sha256: h.clone(),
            release: naming.version.unwrap_or(DEFAULT_VERSION).to_string(),
        });
    }
    migrations.drain(..first_new);
    Ok((out, already))
}

/// `Ok` when `errors` is empty, the one error, or all of them as [`ImportError::Several`].
pub(crate) fn refuse_all(mut errors: Vec<ImportError>) -> Result<(), ImportError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(ImportError::Several { errors }),
    }
}

/// Where the new migrations start after the ones `since` and the releases before it
/// carried: each of those must be in the folder as released (refused by name when
/// edited or gone), and no new one may sort before the last of them.
fn after_released(
    since: &Since,
    dir: &Path,
    migrations: &[Migration],
    hashes: &[String],
) -> Result<usize, ImportError> {
    let index: std::collections::BTreeMap<&str, usize> = migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.label.as_str(), i))
        .collect();
    if !since
        .released
        .iter()
        .any(|r| index.contains_key(r.migration.as_str()))
    {
        return Err(ImportError::OtherHistory {
            name: since.name.clone(),
            version: since.version.clone(),
            dir: dir.to_path_buf(),
        });
    }
    let mut last: Option<(usize, &crate::spec::Released)> = None;
    let mut errors = vec![];
    for r in &since.released {
        let Some(&i) = index.get(r.migration.as_str()) else {
            errors.push(ImportError::ReleasedGone {
                migration: r.migration.clone(),
                release: r.release.clone(),
                dir: dir.to_path_buf(),
            });
            continue;
        };
        if hashes[i] != r.sha256 {
            errors.push(ImportError::EditedReleased {
                migration: r.migration.clone(),
                release: r.release.clone(),
                recorded: r.sha256.clone(),
                actual: hashes[i].clone(),
            });
        }
        if last.is_none_or(|(j, _)| i > j) {
            last = Some((i, r));
        }
    }
    let (last_i, last_r) = last.expect("one released migration is in the folder");
    let carried: std::collections::BTreeSet<&str> = since
        .released
        .iter()
        .map(|r| r.migration.as_str())
        .collect();
    errors.extend(
        (migrations[..last_i].iter())
            .filter(|m| !carried.contains(m.label.as_str()))
            .map(|m| ImportError::InsertedBefore {
                migration: m.label.clone(),
                last: last_r.migration.clone(),
                release: last_r.release.clone(),
            }),
    );
    refuse_all(errors)?;
    if last_i + 1 == migrations.len() {
        return Err(ImportError::NothingNewSince {
            name: since.name.clone(),
            version: since.version.clone(),
            dir: dir.to_path_buf(),
        });
    }
    Ok(last_i + 1)
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn brought(script: &Script, to: &str, changes: Vec<String>) -> Brought {
    let from = script.from().to_string();
    let mut change = match script {
        Script::File(_) => "as-is".to_string(),
        Script::Section { how, .. } => how.clone(),
    };
    if !changes.is_empty() {
        change = if change == "as-is" {
            changes.join("; ")
        } else {
            format!("{change}; {}", changes.join("; "))
        };
    }
    Brought {
        from,
        to: to.into(),
        change,
    }
}
