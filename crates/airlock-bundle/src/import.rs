//! `airlock import`: an existing migration history as a bundle source. Reads one of the
//! layouts teams arrive with — golang-migrate (`V_name.up.sql` / `.down.sql`), dbmate
//! (`-- migrate:up` / `-- migrate:down` sections), Flyway (`V1__name.sql`, `U1__name.sql`
//! undo), Sqitch (`sqitch.plan` with `deploy/`, `revert/`, `verify/`), or a plain folder
//! of psql scripts in name order — and writes `bundle.toml` with one tier per migration
//! in order, the down scripts in reverse as the rollback, Sqitch's verify scripts as the
//! `[verify]` probe (`sqitch_verify.rs`), and a report of every file brought over (as it
//! is, or cut from a dbmate file) and every one left behind (another database's file
//! among them), with why. With the peer's history table (`Applied`), what it records is
//! left out, and a Flyway script whose checksum (`flyway.rs`) differs from the recorded
//! one is refused.
//!
//! Invariant: a migration's SQL is brought over byte for byte (a dbmate section is the
//! bytes between its markers; a script that creates its database and connects to it
//! is the bytes after its `\c` line), except pop's template actions
//! `{{ index .Options "KEY" }}`, replaced by the value the user gives for KEY, as pop
//! does before running the file; every such change is reported. What airlock would
//! refuse stays in the file and `lint` names it; what airlock accepts as psql writes
//! it (`\set ON_ERROR_STOP`, `BEGIN;` … `COMMIT;`) needs no change. Nothing outside
//! the folder is read, and no link is followed (`folder.rs`): what is refused for
//! that is listed as not brought over, `refused`.

mod adapt;
mod flyway;
mod folder;
mod sqitch_verify;

use folder::{Entry, Folder, NotRead, Refused};

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
    Folder,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::GolangMigrate => "golang-migrate",
            Layout::Dbmate => "dbmate",
            Layout::Flyway => "flyway",
            Layout::Sqitch => "sqitch",
            Layout::Folder => "folder",
        }
    }
}

/// Where a script's bytes come from: files named relative to the folder, `/`-separated.
#[derive(Clone, Debug)]
enum Script {
    /// A whole file.
    File(String),
    /// A dbmate section, already cut from its file.
    Section { from: String, bytes: Vec<u8> },
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
    down_online: bool,
    /// Sqitch's verify script, for the `[verify]` probe.
    verify: Option<String>,
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
}

/// What the source is called and where it applies.
pub struct Naming<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub database: &'a str,
    /// pop's template options (`--option KEY=VALUE`): each `{{ index .Options "KEY" }}`
    /// of a migration becomes VALUE, as pop renders it before running the file.
    pub options: &'a [(String, String)],
    /// What the peer's own history table on the target says is applied already: those
    /// migrations are not written as tiers, and a preflight probe checks that the
    /// table still says exactly that when the bundle is applied.
    pub applied: Option<&'a Applied>,
}

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
    #[error("no migrations found in {dir} as {layout}")]
    Empty { dir: PathBuf, layout: &'static str },
    #[error("{dir} holds no layout import knows (golang-migrate, dbmate, flyway, sqitch, a folder of .sql files)")]
    Unknown { dir: PathBuf },
    #[error("{file}: {why}")]
    Layout { file: String, why: String },
    #[error("{file}: {why}")]
    Refused { file: String, why: &'static str },
    #[error(
        "{path} is {size} bytes, over the {cap}-byte cap for one migration script import reads"
    )]
    TooLarge { path: PathBuf, size: u64, cap: u64 },
    #[error("{table} on the target records every migration of {dir} as applied: nothing is left to import")]
    NothingNew { dir: PathBuf, table: String },
    #[error("{file}: differs from the script Flyway applied ({table} records checksum {recorded}, the file's is {actual}): it was edited after it was applied")]
    Edited {
        file: String,
        table: String,
        recorded: i32,
        actual: i32,
    },
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

/// The layout of `dir`, as its files tell.
pub fn detect(dir: &Path) -> Result<Layout, ImportError> {
    let folder = open(dir)?;
    let names = listing(&folder, &mut vec![])?;
    if names.iter().any(|n| n == "sqitch.plan") {
        return Ok(Layout::Sqitch);
    }
    if names.iter().any(|n| n.ends_with(".up.sql")) {
        return Ok(Layout::GolangMigrate);
    }
    if names.iter().any(|n| flyway_name(n).is_some()) {
        return Ok(Layout::Flyway);
    }
    let sql: Vec<&String> = names.iter().filter(|n| n.ends_with(".sql")).collect();
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

/// Read the migrations of `dir` as `layout`; files not brought over go to `left`.
fn migrations(
    folder: &Folder,
    layout: Layout,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let mut names = listing(folder, left)?;
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
        Layout::Dbmate => dbmate(folder, &names, &mut used, left)?,
        Layout::Flyway => flyway(&names, &mut used, left)?,
        Layout::Sqitch => sqitch(folder, &mut used, left)?,
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
                    down_online: false,
                    verify: None,
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
    if layout != Layout::Folder && layout != Layout::Sqitch {
        out.sort_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(out)
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

fn golang_migrate(
    names: &[String],
    used: &mut BTreeSet<String>,
) -> Result<Vec<Migration>, ImportError> {
    // (version, name) -> (up, down), PostgreSQL's own file first.
    let mut found: std::collections::BTreeMap<(Vec<u128>, String), Migration> = Default::default();
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
            Some((base, d)) if POSTGRES.contains(&d) => (base, Some(d)),
            _ => (stem, None),
        };
        let (version, _) = base.split_once('_').unwrap_or((base, ""));
        let key = version_key(version)
            .ok_or_else(|| layout_error(n, "the version before the first `_` is not a number"))?;
        used.insert(n.clone());
        let m = found
            .entry((key.clone(), base.to_string()))
            .or_insert(Migration {
                key,
                label: base.into(),
                up: None,
                down: None,
                up_online: false,
                down_online: false,
                verify: None,
            });
        let (slot, online) = if up {
            (&mut m.up, &mut m.up_online)
        } else {
            (&mut m.down, &mut m.down_online)
        };
        // A PostgreSQL-specific file wins over a generic one.
        if slot.is_none() || dialect.is_some() {
            *slot = Some(Script::File(n.clone()));
            *online = autocommit;
        }
    }
    Ok(found.into_values().collect())
}

fn dbmate(
    folder: &Folder,
    names: &[String],
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
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
        let options = String::from_utf8_lossy(&text[up_line..up_start]).into_owned();
        if options.contains("transaction:false") {
            left.push(LeftBehind {
                refused: false,
                file: n.clone(),
                why: "`-- migrate:up transaction:false`: dbmate runs it outside a transaction, airlock runs every tier inside one; brought over, and lint says whether it can run there".into(),
            });
        }
        let down = dbmate_marker(&text, b"down");
        let (up_end, down) = match down {
            Some((down_line, down_start)) if down_line > up_line => (
                down_line,
                Some(Script::Section {
                    from: path.clone(),
                    bytes: text[down_start..].to_vec(),
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
            }),
            down: down.filter(
                |d| matches!(d, Script::Section { bytes, .. } if !bytes.trim_ascii().is_empty()),
            ),
            up_online: false,
            down_online: false,
            verify: None,
        });
    }
    Ok(out)
}

fn flyway(
    names: &[String],
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let mut out = vec![];
    for n in names {
        match flyway_name(n) {
            Some(('V', version, name)) => {
                let key = version_key(version).expect("checked by flyway_name");
                let undo = names.iter().find(|u| {
                    matches!(flyway_name(u), Some(('U', v, _)) if version_key(v).as_ref() == Some(&key))
                });
                used.insert(n.clone());
                if let Some(u) = undo {
                    used.insert(u.clone());
                }
                out.push(Migration {
                    key,
                    label: format!("V{version}__{name}"),
                    up: Some(Script::File(n.clone())),
                    down: undo.map(|u| Script::File(u.clone())),
                    up_online: false,
                    down_online: false,
                    verify: None,
                });
            }
            Some(('R', ..)) => left.push(LeftBehind {
                refused: false,
                file: n.clone(),
                why: "a Flyway repeatable migration (re-run whenever it changes); airlock has none: bring its current text as a tier of the release that changes it".into(),
            }),
            _ => {}
        }
    }
    Ok(out)
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
            down_online: false,
            verify: sqitch_script(folder, "verify", name, left),
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
    };
    let (old, new): (Vec<Migration>, Vec<Migration>) =
        migrations.into_iter().partition(|m| done(m));
    for recorded in &applied.checksums {
        let k = key(&recorded.version)?;
        let Some(Script::File(rel)) = old.iter().find(|m| m.key == k).and_then(|m| m.up.as_ref())
        else {
            continue;
        };
        let actual = flyway::checksum(&read(folder, rel)?);
        if actual != recorded.checksum {
            return Err(ImportError::Edited {
                file: rel.clone(),
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
            if let Some(NodeEnum::CreateStmt(s)) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
                if let Some(r) = &s.relation {
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
    }
    out.into_iter().collect()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.into()).to_string()
}

/// Import `dir` (as `layout`) into the new source directory `out`, written whole or
/// not at all (staged beside it, then renamed into place).
pub fn import(
    dir: &Path,
    layout: Layout,
    out: &Path,
    naming: &Naming,
) -> Result<Imported, ImportError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ImportError::OutExists(out.to_path_buf()));
    }
    let folder = open(dir)?;
    let mut left = vec![];
    let mut migrations = migrations(&folder, layout, &mut left)?;
    if migrations.is_empty() {
        return Err(ImportError::Empty {
            dir: dir.to_path_buf(),
            layout: layout.name(),
        });
    }
    if let Some(applied) = naming.applied {
        migrations = not_applied(&folder, migrations, applied, &mut left)?;
        if migrations.is_empty() {
            return Err(ImportError::NothingNew {
                dir: dir.to_path_buf(),
                table: applied.table.clone(),
            });
        }
    }
    let write_err = |source| ImportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staged = tempfile::Builder::new()
        .prefix(".airlock-import-")
        .tempdir_in(parent)
        .map_err(write_err)?;
    let mut written = write_scripts(
        &folder,
        layout,
        &migrations,
        naming.options,
        staged.path(),
        &mut left,
    )?;
    let verify = write_verify(&folder, &migrations, staged.path(), &mut written, &mut left)?;
    let rollback = write_spec(
        staged.path(),
        layout,
        naming,
        &written,
        verify.as_deref(),
        &mut left,
    )?;
    if out.exists() {
        std::fs::remove_dir(out).map_err(write_err)?;
    }
    std::fs::rename(staged.keep(), out).map_err(write_err)?;
    Ok(Imported {
        layout,
        tiers: written.tiers.into_iter().map(|(label, ..)| label).collect(),
        rollback,
        files: written.files,
        left_behind: left,
    })
}

const AUTOCOMMIT_ONLINE: &str = "a pop autocommit migration (run outside a transaction), which cannot run in one: an `online = true` tier, one statement at a time, each recorded as it completes";
const AUTOCOMMIT_TX: &str = "a pop autocommit migration (pop runs it outside a transaction): nothing in it needs that, so it runs in the apply's transaction like the others";

/// An autocommit script that a transaction refuses and an online tier accepts
/// (`CREATE INDEX CONCURRENTLY IF NOT EXISTS`): it becomes an online tier; any other
/// stays transactional (and lint judges it there).
fn needs_online(bytes: &[u8]) -> bool {
    use airlock_sql::{check, SqlRole};
    let Ok(sql) = std::str::from_utf8(bytes) else {
        return false;
    };
    !check("up.sql", sql, SqlRole::Script).is_empty()
        && check("up.sql", sql, SqlRole::Online).is_empty()
}
const AUTOCOMMIT_DOWN: &str = "a pop autocommit down script that cannot run in a transaction: the rollback runs in one, so it is not part of it; run it as an `online = true` tier of the release that needs it";

/// The scripts written into a source.
struct Written {
    files: Vec<Brought>,
    /// (tier name, file, online), in order.
    tiers: Vec<(String, String, bool)>,
    /// The up scripts' bytes (for the rollback probe).
    ups: Vec<Vec<u8>>,
    /// Rollback files, newest first.
    downs: Vec<String>,
}

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

/// Each migration's up script as a tier file, its down script as a rollback file.
fn write_scripts(
    folder: &Folder,
    layout: Layout,
    migrations: &[Migration],
    options: &[(String, String)],
    base: &Path,
    left: &mut Vec<LeftBehind>,
) -> Result<Written, ImportError> {
    let width = migrations.len().to_string().len().max(3);
    let read = |s: &Script, up: bool| adapt::adapt(s.from(), s.bytes(folder)?, options, up);
    let mut w = Written {
        files: vec![],
        tiers: vec![],
        ups: vec![],
        downs: vec![],
    };
    for (i, m) in migrations.iter().enumerate() {
        let stem = format!("{:0width$}_{}", i + 1, slug(&m.label));
        if let Some(up) = &m.up {
            let to = format!("sql/tiers/{stem}.sql");
            let a = read(up, true)?;
            write_file(base, &to, &a.bytes)?;
            w.ups.push(a.bytes);
            let mut changes = a.changes;
            let online = m.up_online && needs_online(&w.ups[w.ups.len() - 1]);
            if m.up_online {
                changes.push(
                    if online {
                        AUTOCOMMIT_ONLINE
                    } else {
                        AUTOCOMMIT_TX
                    }
                    .into(),
                );
            }
            w.files.push(brought(up, "up", &to, changes));
            w.tiers.push((m.label.clone(), to, online));
        }
        match &m.down {
            Some(down) => {
                let to = format!("sql/rollback/{stem}.sql");
                let a = read(down, false)?;
                if m.down_online && needs_online(&a.bytes) {
                    left.push(LeftBehind {
                        refused: false,
                        file: down.from().into(),
                        why: AUTOCOMMIT_DOWN.into(),
                    });
                    continue;
                }
                write_file(base, &to, &a.bytes)?;
                w.files.push(brought(down, "down", &to, a.changes));
                w.downs.push(to);
            }
            None if layout != Layout::Folder => left.push(LeftBehind {
                refused: false,
                file: m.label.clone(),
                why: "no down script: the rollback undoes nothing of this migration (the rollback probe then tells whether that matters)".into(),
            }),
            None => {}
        }
    }
    w.downs.reverse();
    Ok(w)
}

/// Sqitch's verify scripts of the migrations written as tiers, as the `[verify]` probe
/// (`sqitch_verify.rs`): the changes it has a row for, or None when it has none.
fn write_verify(
    folder: &Folder,
    migrations: &[Migration],
    base: &Path,
    written: &mut Written,
    left: &mut Vec<LeftBehind>,
) -> Result<Option<Vec<String>>, ImportError> {
    let mut rows = vec![];
    for m in migrations {
        let Some(file) = m.verify.clone() else {
            continue;
        };
        let bytes = read(folder, &file)?;
        let translated = match std::str::from_utf8(&bytes) {
            Ok(sql) => sqitch_verify::queries(&file, sql),
            Err(_) => Err("not UTF-8 (SQL files must be UTF-8)".to_string()),
        };
        match translated {
            Ok(queries) => rows.push((m.label.clone(), file, queries)),
            Err(why) => left.push(LeftBehind {
                refused: false,
                file,
                why,
            }),
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let sql = sqitch_verify::probe(&rows);
    if let Some(p) =
        airlock_sql::check(sqitch_verify::PROBE_FILE, &sql, airlock_sql::SqlRole::Probe)
            .into_iter()
            .next()
    {
        // Each query passed alone; together they should too. If not, say so, whole.
        for (_, file, _) in rows {
            left.push(LeftBehind {
                refused: false,
                file,
                why: format!("not brought over as part of the verify probe: the probe written from the verify scripts is refused ({p})"),
            });
        }
        return Ok(None);
    }
    write_file(base, sqitch_verify::PROBE_FILE, sql.as_bytes())?;
    let mut keys = vec![];
    for (name, file, queries) in rows {
        written.files.push(Brought {
            from: file,
            to: sqitch_verify::PROBE_FILE.into(),
            change: format!(
                "its {} quer{} as the row `{name}` of the [verify] probe, expected `{}` (every query ran to the end, as `sqitch verify` passes when none raises an error); the probe runs after the last tier as the gate role, which must be able to read what the queries read (`airlock plan` names the grants)",
                queries.len(),
                if queries.len() == 1 { "y" } else { "ies" },
                sqitch_verify::VERIFIED
            ),
        });
        keys.push(name);
    }
    Ok(Some(keys))
}

/// A TOML key: bare when it can be, else quoted.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_str(k)
    }
}

/// `bundle.toml` (and the rollback probe): the rollback files written, if any.
fn write_spec(
    base: &Path,
    layout: Layout,
    naming: &Naming,
    written: &Written,
    verify: Option<&[String]>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<String>, ImportError> {
    let mut toml = format!(
        "# Imported by `airlock import` from a {} layout: one tier per migration, in order.\n\n[bundle]\nname = {}\nversion = {}\nsequence = 1\n\n[target]\ndatabase = {}\n",
        layout.name(),
        toml_str(naming.name),
        toml_str(naming.version),
        toml_str(naming.database)
    );
    if let Some(applied) = naming.applied {
        write_file(
            base,
            "sql/probe/peer_history.sql",
            format!(
                "-- What {} said when `airlock import` read it: the migrations applied before this bundle.\n{}\n",
                applied.table, applied.probe
            )
            .as_bytes(),
        )?;
        toml.push_str(&format!(
            "\n# The migrations before these tiers were applied by the peer tool: its history table must still say so.\n[preflight]\nfile = \"sql/probe/peer_history.sql\"\nexpect = {{ peer_history = {} }}\n",
            toml_str(&applied.value)
        ));
    }
    for (label, file, online) in &written.tiers {
        toml.push_str(&format!(
            "\n[[tier]]\nname = {}\nfiles = [{}]\n{}",
            toml_str(label),
            toml_str(file),
            if *online { "online = true\n" } else { "" }
        ));
    }
    if let Some(keys) = verify {
        let mut keys: Vec<&String> = keys.iter().collect();
        keys.sort();
        let expect: Vec<String> = keys
            .iter()
            .map(|k| format!("{} = {}", toml_key(k), toml_str(sqitch_verify::VERIFIED)))
            .collect();
        toml.push_str(&format!(
            "\n# Sqitch's verify scripts: one row per change, run after the last tier.\n[verify]\nfile = {}\nexpect = {{ {} }}\n",
            toml_str(sqitch_verify::PROBE_FILE),
            expect.join(", ")
        ));
    }
    let tables = created_tables(&written.ups);
    let rollback = if !written.downs.is_empty() && !tables.is_empty() {
        let absent: Vec<String> = tables
            .iter()
            .map(|t| format!("to_regclass({}) IS NULL", sql_literal(t)))
            .collect();
        write_file(
            base,
            "sql/probe/rolled_back.sql",
            format!(
                "-- After the rollback, none of the tables the migrations create exists.\nSELECT 'created_tables_absent'::text AS key, ({})::text AS value\n",
                absent.join("\n    AND ")
            )
            .as_bytes(),
        )?;
        let list: Vec<String> = written.downs.iter().map(|d| toml_str(d)).collect();
        toml.push_str(&format!(
            "\n[rollback]\nfiles = [{}]\nprobe = \"sql/probe/rolled_back.sql\"\nexpect = {{ created_tables_absent = \"true\" }}\n",
            list.join(", ")
        ));
        // Each down undoes its migration's tier (the same stem): rollback after a partial
        // apply runs only those of the tiers that ran.
        let undoes: Vec<String> = (written.downs.iter())
            .filter_map(|d| {
                let up = d.replacen("sql/rollback/", "sql/tiers/", 1);
                let (label, ..) = written.tiers.iter().find(|(_, f, _)| *f == up)?;
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
    write_file(base, "bundle.toml", toml.as_bytes())?;
    Ok(rollback)
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn brought(script: &Script, which: &str, to: &str, changes: Vec<String>) -> Brought {
    let from = script.from().to_string();
    let mut change = match script {
        Script::File(_) => "as-is".to_string(),
        Script::Section { .. } => {
            format!("the {which} section of a dbmate file, between its markers")
        }
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
