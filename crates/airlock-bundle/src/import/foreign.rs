//! What import cannot read as the layout it was asked for, recognised rather than
//! imported wrong: another migration tool's markers in a script (goose's `-- +goose
//! Up`, dbmate's `-- migrate:up`, sql-migrate's `-- +migrate Up`, micrate's, tern's
//! `---- create above / drop below ----`, shmig's `-- ==== UP ====`, a Liquibase
//! formatted SQL header), a Liquibase XML/YAML changelog (`databaseChangeLog`) under
//! another layout than Liquibase's, and a JSON one under any. Read as plain psql
//! scripts, such a file runs its undo right after its change, or runs an `sqlFile`
//! fragment as if it were the whole history; so import refuses it, naming the tool,
//! the file and the line, and writes nothing.
//!
//! Invariant: only what a tool gives meaning to counts: a marker is a whole comment
//! line (`--` at its start), and a changelog is a `.xml`/`.yaml`/`.yml`/`.json` file
//! naming `databaseChangeLog`; the layout that reads a marker is never refused for it.

use super::folder::Folder;
use super::{goose, liquibase, Layout};

/// A file refused for what it is: the tool it belongs to, where, and the next step.
#[derive(Debug)]
pub(super) struct Foreign {
    pub tool: &'static str,
    /// `file:line`.
    pub at: String,
    pub why: String,
}

/// A tool's marker in a line: the tool and the layout that reads it, if any.
fn marker(line: &[u8]) -> Option<(&'static str, Option<Layout>)> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let rest = text.strip_prefix("--")?.trim_start();
    if goose::annotation(line).is_some() {
        return Some(("goose", Some(Layout::Goose)));
    }
    let lower = rest.to_ascii_lowercase();
    if lower.starts_with("migrate:up") || lower.starts_with("migrate:down") {
        return Some(("dbmate", Some(Layout::Dbmate)));
    }
    if lower.starts_with("+migrate up") || lower.starts_with("+migrate down") {
        return Some(("sql-migrate", None));
    }
    if lower.starts_with("+micrate up") || lower.starts_with("+micrate down") {
        return Some(("micrate", None));
    }
    // tern's one separator line between a file's up and down parts.
    if lower.starts_with("-- create above / drop below") {
        return Some(("tern", None));
    }
    if lower == "==== up ====" || lower == "==== down ====" {
        return Some(("shmig", None));
    }
    None
}

/// The next step for a file of `tool`.
fn next(tool: &str, layout: Option<Layout>) -> String {
    match layout {
        Some(l) => format!("import the folder with `--from {}`", l.name()),
        None => format!("import reads no {tool} layout: give each migration's Up section its own file (a folder of psql scripts, or golang-migrate's `N_name.up.sql`/`.down.sql`), then import"),
    }
}

/// Another tool's marker in a script (its bytes as `layout` cut them); `at` names
/// the script's line N (`file:N`, or where a section's line N lies).
pub(super) fn in_script(
    layout: Layout,
    bytes: &[u8],
    at: impl Fn(usize) -> String,
) -> Option<Foreign> {
    if layout != Layout::Liquibase && liquibase::sql::is_changelog(bytes) {
        return Some(Foreign {
            tool: "Liquibase",
            at: at(1),
            why: format!("a Liquibase formatted SQL changelog: read as a plain script, every changeset would run (those for other databases too) and its rollback would be lost; {}", next("Liquibase", Some(Layout::Liquibase))),
        });
    }
    let mut n = 0;
    for line in bytes.split(|&b| b == b'\n') {
        n += 1;
        let Some((tool, reads)) = marker(line) else {
            continue;
        };
        if reads == Some(layout) {
            continue;
        }
        return Some(Foreign {
            tool,
            at: at(n),
            why: format!(
                "`{}` is {tool}'s marker: read as a {} layout, the file's up and down sections would run one after the other as one script (the change undone as soon as it is made); {}",
                String::from_utf8_lossy(line).trim(),
                layout.name(),
                next(tool, reads)
            ),
        });
    }
    None
}

/// A Liquibase changelog among the folder's files `names` that `layout` does not
/// read: a JSON one always, an XML/YAML one unless `layout` is Liquibase's.
pub(super) fn changelog(folder: &Folder, names: &[String], layout: Layout) -> Option<Foreign> {
    for n in names {
        let lower = n.to_ascii_lowercase();
        let json = lower.ends_with(".json");
        if !json && ![".xml", ".yaml", ".yml"].iter().any(|e| lower.ends_with(e)) {
            continue;
        }
        if !json && layout == Layout::Liquibase {
            continue;
        }
        let Ok(bytes) = folder.read(n) else {
            continue;
        };
        let Some(i) = bytes.windows(17).position(|w| w == b"databaseChangeLog") else {
            continue;
        };
        let line = bytes[..i].iter().filter(|&&b| b == b'\n').count() + 1;
        let why = if json {
            "a Liquibase JSON changelog (`databaseChangeLog`): import reads Liquibase's XML, YAML and formatted SQL changelogs, not JSON; have Liquibase write the SQL it runs (`liquibase update-sql` on an empty database), or convert the changelog to XML or YAML, then import".to_string()
        } else {
            format!("a Liquibase changelog (`databaseChangeLog`): read as a {} layout, the folder's .sql files would be taken for the whole history (an `sqlFile` fragment among them), out of the changelog's order; {}", layout.name(), next("Liquibase", Some(Layout::Liquibase)))
        };
        return Some(Foreign {
            tool: "Liquibase",
            at: format!("{n}:{line}"),
            why,
        });
    }
    None
}
