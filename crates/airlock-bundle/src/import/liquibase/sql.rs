//! Liquibase "formatted SQL": `.sql` changelogs whose first line is `--liquibase
//! formatted sql`, each a run of `--changeset author:id [attribute:value…]` blocks.
//! Each changeset becomes a tier (its bytes up to the next `--changeset` line, the
//! `--rollback` comments among them left as they are: comments), in file order and
//! the files in name order (as Liquibase's `includeAll` reads a folder). A changeset
//! with `runInTransaction:false` is marked as run outside a transaction. Its rollback
//! is its `--rollback <sql>` lines (consecutive ones are one script, as Liquibase
//! joins them) or its `/* liquibase rollback … */` block, the text after the marker.
//!
//! Invariant: what Liquibase would not run here is left behind with the reason: a
//! changeset for another database (`dbms:`), one re-run on every update
//! (`runAlways:true`, `runOnChange:true`).

use crate::import::folder::Folder;
use crate::import::{layout_error, read, ImportError, LeftBehind, Migration, Script};

/// Whether `bytes` is a Liquibase formatted SQL changelog (its first line says so).
pub(in crate::import) fn is_changelog(bytes: &[u8]) -> bool {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first).to_ascii_lowercase();
    first
        .trim_start_matches('\u{feff}')
        .strip_prefix("--")
        .is_some_and(|r| r.trim_start().starts_with("liquibase formatted sql"))
}

/// The `logicalFilePath:` of the first line (`--liquibase formatted sql
/// logicalFilePath:a/b.sql`), if it says one.
fn header_logical_path(text: &str) -> Option<String> {
    let first = text.lines().next().unwrap_or_default();
    first
        .split_whitespace()
        .filter_map(|w| w.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("logicalFilePath"))
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// `rest` after the word `word`, in any case (Liquibase reads `--changeSet` too).
fn after_word<'a>(rest: &'a str, word: &str) -> Option<&'a str> {
    let head = rest.get(..word.len())?;
    head.eq_ignore_ascii_case(word).then(|| &rest[word.len()..])
}

/// `--changeset author:id attrs…` of a line: (author:id, attributes).
fn changeset(line: &str) -> Option<(String, Vec<(String, String)>)> {
    let rest = line.trim().strip_prefix("--")?.trim_start();
    let rest = after_word(rest, "changeset")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let id = words.next()?.to_string();
    let attrs = words
        .filter_map(|w| w.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some((id, attrs))
}

/// The SQL of a `--rollback <sql>` line.
fn rollback_line(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start();
    let rest = after_word(rest, "rollback")?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

/// One changeset as read: its id, attributes, first line, bytes and rollback text.
struct Changeset {
    id: String,
    attrs: Vec<(String, String)>,
    line: usize,
    bytes: Vec<u8>,
    rollback: Vec<String>,
    /// `--rollback not required` / `--rollback empty`: nothing to undo, said so.
    nothing_to_undo: bool,
}

/// The changesets of one changelog's text.
fn changesets(file: &str, text: &str) -> Result<Vec<Changeset>, ImportError> {
    let mut out: Vec<Changeset> = vec![];
    let mut in_block = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if let Some((id, attrs)) = changeset(line) {
            if !id.contains(':') {
                return Err(layout_error(
                    &format!("{file}:{}", i + 1),
                    "a changeset is `--changeset author:id`",
                ));
            }
            out.push(Changeset {
                id,
                attrs,
                line: i + 1,
                bytes: vec![],
                rollback: vec![],
                nothing_to_undo: false,
            });
            continue;
        }
        let Some(c) = out.last_mut() else {
            continue;
        };
        let word = line.trim_start().strip_prefix("--").map(str::trim_start);
        if word.is_some_and(|w| w.to_ascii_lowercase().starts_with("precondition")) {
            return Err(layout_error(
                &format!("{file}:{} (changeset {})", i + 1, c.id),
                "formatted SQL preconditions (`--preconditions`, `--precondition-…`), which import does not read: write the changeset in an XML or YAML changelog (import decides those), then import",
            ));
        }
        c.bytes.extend_from_slice(line.as_bytes());
        let trimmed = line.trim();
        if in_block {
            if trimmed == "*/" {
                in_block = false;
            } else {
                c.rollback
                    .push(line.trim_end_matches(['\n', '\r']).to_string());
            }
        } else if trimmed.starts_with("/*")
            && trimmed[2..]
                .trim()
                .eq_ignore_ascii_case("liquibase rollback")
        {
            in_block = true;
        } else if let Some(sql) = rollback_line(line) {
            match sql.to_ascii_lowercase().as_str() {
                "not required" | "empty" => c.nothing_to_undo = true,
                _ => c.rollback.push(sql.to_string()),
            }
        }
    }
    Ok(out)
}

fn attr<'a>(c: &'a Changeset, key: &str) -> Option<&'a str> {
    c.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Why a changeset is not brought over, if it is not.
fn not_here(c: &Changeset) -> Option<String> {
    if let Some(dbms) = attr(c, "dbms").filter(|d| super::preconditions::not_for_postgres(d)) {
        return Some(format!("a changeset for dbms:{dbms}, not PostgreSQL"));
    }
    for key in ["runAlways", "runOnChange"] {
        if attr(c, key).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Some(format!("`{key}:true`: Liquibase re-runs it on later updates; airlock runs a tier once: bring its current text as a tier of the release that changes it"));
        }
    }
    None
}

/// The changesets of the changelogs among `names` (sorted), as migrations; those with
/// no rollback and none said not required go to `no_rollback`.
pub(in crate::import) fn migrations(
    folder: &Folder,
    names: &[String],
    used: &mut std::collections::BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let mut out = vec![];
    for n in names.iter().filter(|n| n.ends_with(".sql")) {
        let bytes = read(folder, n)?;
        if !is_changelog(&bytes) {
            continue;
        }
        used.insert(n.clone());
        out.extend(file_migrations(n, bytes, left)?);
    }
    Ok(out)
}

/// The changesets of the formatted SQL changelog `n` (its `bytes`), as migrations.
pub(in crate::import) fn file_migrations(
    n: &str,
    bytes: Vec<u8>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let text = String::from_utf8(bytes)
        .map_err(|_| layout_error(n, "not UTF-8 (SQL files must be UTF-8)"))?;
    let mut out = vec![];
    let logical = header_logical_path(&text);
    for c in changesets(n, &text)? {
        if let Some(why) = not_here(&c) {
            left.push(LeftBehind {
                refused: false,
                file: format!("{n}:{} ({})", c.line, c.id),
                why,
            });
            continue;
        }
        let online = attr(&c, "runInTransaction").is_some_and(|v| v.eq_ignore_ascii_case("false"));
        let down = (!c.rollback.is_empty()).then(|| Script::Section {
            from: n.to_string(),
            bytes: format!("{}\n", c.rollback.join("\n")).into_bytes(),
            how: format!("the rollback of changeset {} (line {}): its `--rollback` text, without the markers", c.id, c.line),
        });
        if c.nothing_to_undo {
            left.push(LeftBehind {
                refused: false,
                file: format!("{n}:{} ({})", c.line, c.id),
                why: "`--rollback not required`: nothing of it is undone".into(),
            });
        }
        let (author, id) = c.id.split_once(':').unwrap_or(("", &c.id));
        let lb = super::preconditions::ChangeSetId {
            id: id.into(),
            author: author.into(),
            file: n.into(),
            // As Liquibase records it: the changeset's `logicalFilePath:`, else the
            // file's (its first line), else the file's own path.
            path: attr(&c, "logicalFilePath")
                .map(str::to_string)
                .or_else(|| logical.clone())
                .unwrap_or_else(|| n.to_string()),
            at: format!("{n}:{}", c.line),
            pre: None,
            changelog_pre: None,
            ran_before: false,
            sum: Err("a formatted SQL changeset, whose checksum import does not compute as Liquibase does".into()),
            valid: vec![],
            custom: vec![],
            row: super::preconditions::RowText {
                description: "sql".into(),
                ..Default::default()
            },
            with: vec![],
        };
        out.push(Migration {
            key: vec![],
            lb: Some(Box::new(lb)),
            label: c.id.clone(),
            up: Some(Script::Section {
                from: n.to_string(),
                bytes: c.bytes,
                how: format!(
                    "changeset {} (from line {}), as written up to the next changeset",
                    c.id,
                    c.line + 1
                ),
            }),
            down,
            up_online: online,
            commits_apart: false,
            verify: None,
            no_down_said: c.nothing_to_undo,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changesets_and_their_rollbacks() {
        let text = "--liquibase formatted sql\n\n--changeSet ann:1\nCREATE TABLE a (i int);\n--rollback DROP TABLE a;\n\n--changeset bob:2 runInTransaction:false\nCREATE INDEX CONCURRENTLY a_i ON a (i);\n/* liquibase rollback\nDROP INDEX CONCURRENTLY a_i;\n*/\n--changeset bob:3\nSELECT 1;\n--rollback not required\n";
        let c = changesets("c.sql", text).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].id, "ann:1");
        assert_eq!(
            c[0].bytes,
            b"CREATE TABLE a (i int);\n--rollback DROP TABLE a;\n\n"
        );
        assert_eq!(c[0].rollback, vec!["DROP TABLE a;"]);
        assert!(changeset("-- changeset").is_none() && changeset("--changesets a:1").is_none());
        assert_eq!(
            c[1].attrs,
            vec![("runInTransaction".to_string(), "false".to_string())]
        );
        assert_eq!(c[1].rollback, vec!["DROP INDEX CONCURRENTLY a_i;"]);
        assert!(c[2].nothing_to_undo && c[2].rollback.is_empty());
        assert!(is_changelog(b"-- liquibase formatted sql\n"));
        // Preconditions are comments to PostgreSQL, never to Liquibase: refused by line.
        let pre = "--liquibase formatted sql\n--changeset a:1\n--preconditions onFail:MARK_RAN\n--precondition-sql-check expectedResult:0 SELECT count(*) FROM t\nCREATE TABLE t ();\n";
        let e = changesets("c.sql", pre).err().unwrap().to_string();
        assert!(e.contains("c.sql:3 (changeset a:1)"), "{e}");
        assert!(!is_changelog(b"CREATE TABLE t ();\n"));
    }
}
