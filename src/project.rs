//! The project configuration file, `airlock.toml`: the settings a team would otherwise
//! repeat on every command line (the connection, the trust store, the gate role, the
//! receipts folder, the lock timeout), as `flyway.conf` or `atlas.hcl` hold them.
//!
//! Found as `--config FILE`, else `AIRLOCK_CONFIG`, else the first `airlock.toml` in
//! the working directory or a directory above it (`none` for either: no file). Each
//! setting stands in for its environment variable (`AIRLOCK_DB`, `AIRLOCK_TRUST`,
//! `AIRLOCK_GATE_ROLE`, `AIRLOCK_RECEIPTS`, `AIRLOCK_LOCK_TIMEOUT`) when that is not
//! set, so the order is: the command line, then the environment, then the file.
//!
//! Invariant: a file someone else could have written is never read. The file and the
//! directory its name is in must belong to the user running airlock (or root) and be
//! writable by nobody else, and the name must be the file itself, not a symbolic link;
//! otherwise airlock refuses to start (a planted `/tmp/airlock.toml`, or a link swapped
//! between a check and the read, could otherwise point every command below it at
//! another trust store and database). The file is opened once and judged and read
//! through that one descriptor. Unknown keys are refused, never skipped.

use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The file's name, looked for upward from the working directory.
pub const FILE_NAME: &str = "airlock.toml";

/// What `airlock.toml` may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The connection (as `--db`).
    db: Option<String>,
    /// The trust store (as `--trust`), relative to the file's directory.
    trust: Option<PathBuf>,
    /// The role gates and probes run as (as `--gate-role`).
    gate_role: Option<String>,
    /// Where receipts go (as apply's and rollback's `--out`, reissue's `--out`),
    /// relative to the file's directory.
    receipts: Option<PathBuf>,
    /// How long a lock may be waited for (as `--lock-timeout`).
    lock_timeout: Option<String>,
    /// What `airlock import` needs of the project: its mapping of each Liquibase
    /// `customChange` class.
    import: Option<ImportSettings>,
}

/// `[import]`: what `airlock import` needs of the project.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportSettings {
    /// `[import.custom_change]`: each Liquibase `customChange` class (a Java class
    /// airlock cannot run), by its full name: `{ sql = "FILE" }`, the SQL that does
    /// what it does (relative to the file's directory), or `{ skip = "WHY" }`.
    #[serde(default)]
    custom_change: std::collections::BTreeMap<String, CustomChangeSetting>,
}

/// One class's mapping as written: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomChangeSetting {
    sql: Option<PathBuf>,
    skip: Option<String>,
}

/// One `customChange` class's mapping, read from the project file.
#[derive(Debug, Clone)]
pub enum CustomChangeMapping {
    /// The SQL file to run in its place: as written, and resolved.
    Sql { written: PathBuf, path: PathBuf },
    /// Run nothing, for this reason.
    Skip(String),
}

/// The project file's `[import.custom_change]`: the file and each class's mapping.
static CUSTOM_CHANGES: std::sync::OnceLock<(
    PathBuf,
    std::collections::BTreeMap<String, CustomChangeMapping>,
)> = std::sync::OnceLock::new();

/// The project file's `[import.custom_change]` (its path, and each class's mapping),
/// when it has one.
pub fn custom_changes() -> Option<&'static (
    PathBuf,
    std::collections::BTreeMap<String, CustomChangeMapping>,
)> {
    CUSTOM_CHANGES.get()
}

/// `[import.custom_change]` as read: each class with exactly one of `sql` and `skip`
/// (a reason that says something), its `sql` relative to `dir`.
fn custom_changes_of(
    path: &Path,
    dir: &Path,
    set: std::collections::BTreeMap<String, CustomChangeSetting>,
) -> Result<std::collections::BTreeMap<String, CustomChangeMapping>, ProjectError> {
    let mut out = std::collections::BTreeMap::new();
    for (class, m) in set {
        let mapping = match (m.sql, m.skip) {
            (Some(sql), None) => CustomChangeMapping::Sql {
                path: if sql.is_absolute() { sql.clone() } else { dir.join(&sql) },
                written: sql,
            },
            (None, Some(why)) if !why.trim().is_empty() => CustomChangeMapping::Skip(why.trim().to_string()),
            (None, Some(_)) => {
                return Err(ProjectError::new(
                    format!("{}: [import.custom_change] {class:?}: skip says no reason", path.display()),
                    "say why the class need not run (skip = \"acts on rows; none on a fresh database\"), or map it to SQL (sql = \"FILE\")",
                ))
            }
            _ => {
                return Err(ProjectError::new(
                    format!("{}: [import.custom_change] {class:?}: needs exactly one of sql and skip", path.display()),
                    "map the class to the SQL that does what it does (sql = \"FILE\"), or skip it with the reason it need not run (skip = \"WHY\")",
                ))
            }
        };
        out.insert(class, mapping);
    }
    Ok(out)
}

/// `project_config` beside every document's other fields (the schema's view of it).
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
pub struct ProjectField {
    /// The project file this run read (`airlock.toml`) and the settings it supplied.
    project_config: Option<Project>,
}

/// The project file this command's database came from (its `db` setting), once
/// [`Project::narrow`] found the command took it.
static DB_FROM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Where a connection's database name came from, for people: the project file when
/// its `db` gave it, else `from` as the connection resolved it ("--db or AIRLOCK_DB"…).
pub fn db_source(from: &str) -> String {
    match DB_FROM.get() {
        Some(path) if from == "--db or AIRLOCK_DB" => {
            format!("db in {FILE_NAME} ({})", path.display())
        }
        _ => from.to_string(),
    }
}

/// A project file read, and what it supplied.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Project {
    /// The file, as found.
    #[schemars(with = "String")]
    pub path: PathBuf,
    /// The settings this command took from it (not those it has no use for, nor those
    /// a flag or an environment variable gave).
    pub used: Vec<&'static str>,
}

/// Each setting's environment variable.
const VARS: [(&str, &str); 5] = [
    ("db", "AIRLOCK_DB"),
    ("trust", "AIRLOCK_TRUST"),
    ("gate_role", "AIRLOCK_GATE_ROLE"),
    ("receipts", "AIRLOCK_RECEIPTS"),
    ("lock_timeout", "AIRLOCK_LOCK_TIMEOUT"),
];

impl Project {
    /// Keep in `used` only the settings the command the user ran read from the file:
    /// an argument of that (sub)command whose value came from the setting's variable.
    pub fn narrow(&mut self, cmd: &clap::Command, matches: &clap::ArgMatches) {
        let (mut cmd, mut m) = (cmd, matches);
        while let Some((name, sub)) = m.subcommand() {
            match cmd.find_subcommand(name) {
                Some(c) => (cmd, m) = (c, sub),
                None => break,
            }
        }
        self.used.retain(|key| {
            let var = VARS.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            cmd.get_arguments().any(|a| {
                a.get_env().and_then(|e| e.to_str()) == var
                    && m.value_source(a.get_id().as_str())
                        == Some(clap::parser::ValueSource::EnvVariable)
            })
        });
        if self.used.contains(&"db") {
            let _ = DB_FROM.set(self.path.clone());
        }
    }

    /// `airlock.toml (/srv/release/airlock.toml): db, gate_role`.
    pub fn line(&self) -> String {
        format!(
            "settings from {} ({}): {} (a flag or AIRLOCK_* variable wins over each)",
            FILE_NAME,
            self.path.display(),
            self.used.join(", ")
        )
    }
}

/// `cmd` with every argument whose environment variable is set (by the environment,
/// or by `airlock.toml` through [`load`]) no longer required: the usage line of
/// `--help` and of an argument error then shows it as the option it is here
/// (`[OPTIONS]`), not `--trust <PATH>` as if it still had to be typed.
pub fn supplied_not_required(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| {
        let set = a
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| !v.is_empty());
        if set {
            a.required(false)
        } else {
            a
        }
    })
    .mut_subcommands(supplied_not_required)
}

/// Why the project file was not used: airlock does not start (exit 2, `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The name is a symbolic link: a link can point anywhere and be swapped between a
    /// check and a read, so the file is read only as itself. Nothing was read from it.
    #[error("{} is not used: it is a symbolic link{}, and a project file is read only as itself, never through a link", .path.display(), .target.as_ref().map(|t| format!(" (to {})", t.display())).unwrap_or_default())]
    Symlink {
        path: PathBuf,
        target: Option<PathBuf>,
    },
    /// Any other reason, with what to do next.
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
}

impl ProjectError {
    fn new(message: String, hint: &str) -> Self {
        ProjectError::Refused {
            message,
            hint: Some(hint.to_string()),
        }
    }

    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            ProjectError::Symlink { path, .. } => Some(format!(
                "put the file itself at {} (cp --remove-destination \"$(readlink -f {name})\" {name}), or run with --config none",
                path.display(),
                name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            )),
            ProjectError::Refused { hint, .. } => hint.clone(),
        }
    }
}

/// The way around any project file.
const NO_FILE: &str = "or run with --config FILE or --config none";

/// Find the project file for this command line and put its settings where the
/// command-line parser reads them (environment variables not already set).
pub fn load(args: &[OsString]) -> Result<Option<Project>, ProjectError> {
    let Some(path) = locate(args)? else {
        return Ok(None);
    };
    let text = read_owned(&path)?;
    let s: Settings = toml::from_str(&text).map_err(|e| {
        ProjectError::new(
            format!("{}: {}", path.display(), e.message()),
            "the keys are db, trust, gate_role, receipts, lock_timeout and [import.custom_change] (docs/operator.md, \"A project file\"); or run with --config none",
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let relative = |p: PathBuf| {
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    if let Some(import) = s.import {
        let custom = custom_changes_of(&path, dir, import.custom_change)?;
        let _ = CUSTOM_CHANGES.set((path.clone(), custom));
    }
    let mut used = vec![];
    let pairs: [(&'static str, &'static str, Option<OsString>); 5] = [
        ("db", "AIRLOCK_DB", s.db.map(OsString::from)),
        (
            "trust",
            "AIRLOCK_TRUST",
            s.trust.map(|p| relative(p).into()),
        ),
        (
            "gate_role",
            "AIRLOCK_GATE_ROLE",
            s.gate_role.map(OsString::from),
        ),
        (
            "receipts",
            "AIRLOCK_RECEIPTS",
            s.receipts.map(|p| relative(p).into()),
        ),
        (
            "lock_timeout",
            "AIRLOCK_LOCK_TIMEOUT",
            s.lock_timeout.map(OsString::from),
        ),
    ];
    for (key, var, value) in pairs {
        if let (Some(v), None) = (value, std::env::var_os(var)) {
            // Edition 2021, one thread: nothing else reads the environment yet.
            std::env::set_var(var, v);
            used.push(key);
        }
    }
    Ok(Some(Project { path, used }))
}

/// `--config FILE` (before `--`), else `AIRLOCK_CONFIG`, else `airlock.toml` upward.
fn locate(args: &[OsString]) -> Result<Option<PathBuf>, ProjectError> {
    let mut given = None;
    let mut it = args.iter().skip(1).take_while(|a| *a != "--");
    while let Some(a) = it.next() {
        if a == "--config" {
            given = it.next().cloned();
        } else if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            given = Some(v.into());
        }
    }
    let given = given.or_else(|| std::env::var_os("AIRLOCK_CONFIG"));
    if let Some(g) = given {
        if g == "none" || g.is_empty() {
            return Ok(None);
        }
        let p = PathBuf::from(g);
        if !is_there(&p) {
            return Err(ProjectError::new(
                format!(
                    "--config {}: no such file (or AIRLOCK_CONFIG names it)",
                    p.display()
                ),
                "name an existing airlock.toml, or run with --config none",
            ));
        }
        return Ok(Some(p));
    }
    let Ok(mut dir) = std::env::current_dir() else {
        return Ok(None);
    };
    loop {
        let p = dir.join(FILE_NAME);
        if is_there(&p) {
            return Ok(Some(p));
        }
        if !dir.pop() {
            return Ok(None);
        }
    }
}

/// Whether `p` names a file or a symbolic link (to anything, or nothing): what stops the
/// search upward. A link is found here so that it is refused, not passed over for a
/// file further up.
fn is_there(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() || m.is_symlink())
}

/// The file's text, when it and the directory its name is in are the user's (or
/// root's) and nobody else may write them. The file is opened once, never through a
/// symbolic link (`O_NOFOLLOW`) nor waiting on a FIFO (`O_NONBLOCK`); its checks are of
/// what was opened (`fstat`) and its text is read from that descriptor, so nothing can
/// be swapped in between a check and the read.
fn read_owned(path: &Path) -> Result<String, ProjectError> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let me = effective_uid();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ProjectError::Symlink {
                path: path.to_path_buf(),
                target: std::fs::read_link(path).ok(),
            },
            _ => ProjectError::new(format!("{}: {e}", path.display()), NO_FILE),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| ProjectError::new(format!("{}: {e}", path.display()), NO_FILE))?;
    if !meta.is_file() {
        return Err(refused(path, "it is not a regular file"));
    }
    // The directory the name was found in, not that of any file a link would lead to:
    // whoever may write it decides what the name holds.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::metadata(dir)
        .map_err(|e| ProjectError::new(format!("{}: {e}", dir.display()), NO_FILE))?;
    let theirs = |uid: u32| uid != me && uid != 0;
    if theirs(meta.uid()) {
        return Err(refused(
            path,
            &format!("it belongs to user id {}", meta.uid()),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        let mode = meta.mode() & 0o7777;
        return Err(refused(
            path,
            &format!("others may write it (mode {mode:o})"),
        ));
    }
    // A sticky directory (/tmp) lets nobody replace another's file: the file's owner
    // decides. Any other directory must be as much the user's as the file.
    if parent.mode() & 0o1000 == 0 {
        if theirs(parent.uid()) {
            let why = format!("its directory belongs to user id {}", parent.uid());
            return Err(refused(path, &why));
        }
        if parent.mode() & 0o022 != 0 {
            let mode = parent.mode() & 0o7777;
            let why = format!("others may write its directory (mode {mode:o})");
            return Err(refused(path, &why));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| ProjectError::new(format!("{}: {e}", path.display()), NO_FILE))?;
    Ok(text)
}

fn refused(path: &Path, why: &str) -> ProjectError {
    ProjectError::new(
        format!(
            "{} is not used: {why}, so someone else could have written it",
            path.display()
        ),
        "make it yours and writable only by you (chmod go-w), or run with --config FILE or --config none",
    )
}

#[allow(unsafe_code)] // geteuid(2), libc
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}
