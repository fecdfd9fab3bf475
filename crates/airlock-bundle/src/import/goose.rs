//! goose: `VERSION_name.sql` files (VERSION a positive number, a counter or a
//! timestamp), applied in numeric version order as goose orders them. A file holds
//! `-- +goose Up` and `-- +goose Down` sections: the Up section is the migration's tier,
//! the Down section its part of the rollback (the rollback runs the Downs newest
//! first). `-- +goose StatementBegin` … `StatementEnd` lines stay in the bytes (they
//! are SQL comments; the splitter apply uses keeps a dollar-quoted body whole), and
//! `-- +goose NO TRANSACTION` marks the migration as run outside a transaction, which
//! import honours (`import.rs`: an online tier, or a commit of its own). A Go
//! migration (`VERSION_name.go`) is compiled into the project's binary: import cannot
//! run it, and the report says so.
//!
//! Invariant: a section is the bytes between its marker line and the next marker line
//! (or the end), as written; what goose refuses (no Up section, a Down before the Up,
//! SQL before the Up, two files of one version, an unmatched StatementBegin) is
//! refused naming the file, and `-- +goose ENVSUB ON` (environment variables goose
//! substitutes at run time) is refused rather than guessed.

use super::folder::Folder;
use super::{layout_error, read, ImportError, LeftBehind, Migration, Script};
use std::collections::BTreeSet;

/// A goose annotation of a line (`-- +goose Up` → `up`), lower-cased, as goose reads it.
pub(super) fn annotation(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let rest = line.strip_prefix("--")?.trim_start();
    let cmd = rest.strip_prefix("+goose")?;
    Some(cmd.trim().to_ascii_lowercase())
}

/// Whether `text` holds a `-- +goose Up` line.
pub(super) fn has_up(text: &[u8]) -> bool {
    text.split(|&b| b == b'\n')
        .any(|l| annotation(l).as_deref() == Some("up"))
}

/// The version of a goose file name (`00001_init.sql`, `20240101120000_x.go`).
fn version(name: &str) -> Option<u64> {
    let (v, _) = name.split_once('_')?;
    v.parse::<u64>().ok().filter(|&n| n > 0)
}

/// Where a section's bytes start and end in its file.
type Span = (usize, usize);

/// A goose file cut at its markers.
struct Sections {
    up: Span,
    down: Option<Span>,
    no_transaction: bool,
}

/// Where each section of `text` lies; what goose refuses, refused.
fn sections(file: &str, text: &[u8]) -> Result<Sections, ImportError> {
    let at = |line: usize, why: &str| layout_error(&format!("{file}:{line}"), why);
    let (mut up, mut down): (Option<Span>, Option<Span>) = (None, None);
    let mut no_transaction = false;
    let mut open_block: Option<usize> = None;
    let mut pos = 0;
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let start = pos;
        pos += line.len();
        let Some(cmd) = annotation(line) else {
            let sql = String::from_utf8_lossy(line);
            let sql = sql.trim();
            if up.is_none() && !sql.is_empty() && !sql.starts_with("--") {
                return Err(at(n, "SQL before `-- +goose Up`: goose refuses a migration that does not start with its Up section"));
            }
            continue;
        };
        match cmd.as_str() {
            "up" if up.is_some() => return Err(at(n, "a second `-- +goose Up`")),
            "up" => up = Some((pos, text.len())),
            "down" if up.is_none() => {
                return Err(at(n, "`-- +goose Down` before `-- +goose Up`"))
            }
            "down" if down.is_some() => return Err(at(n, "a second `-- +goose Down`")),
            "down" => {
                if let Some(u) = up.as_mut() {
                    u.1 = start;
                }
                down = Some((pos, text.len()));
            }
            "statementbegin" if open_block.is_some() => {
                return Err(at(n, "`-- +goose StatementBegin` inside another"))
            }
            "statementbegin" => open_block = Some(n),
            "statementend" if open_block.is_none() => {
                return Err(at(n, "`-- +goose StatementEnd` without a StatementBegin"))
            }
            "statementend" => open_block = None,
            "no transaction" => no_transaction = true,
            "envsub on" | "envsub off" => {
                return Err(at(n, "`-- +goose ENVSUB`: goose substitutes environment variables into the SQL when it runs, which import cannot know; write the values into the file, then import"))
            }
            other => {
                return Err(at(
                    n,
                    &format!("`-- +goose {other}` is no annotation goose knows"),
                ))
            }
        }
        if matches!(cmd.as_str(), "down") {
            if let Some(b) = open_block.take() {
                return Err(at(b, "`-- +goose StatementBegin` without its StatementEnd"));
            }
        }
    }
    if let Some(b) = open_block {
        return Err(at(b, "`-- +goose StatementBegin` without its StatementEnd"));
    }
    let up = up.ok_or_else(|| {
        layout_error(
            file,
            "no `-- +goose Up` line: goose refuses a migration without one",
        )
    })?;
    Ok(Sections {
        up,
        down,
        no_transaction,
    })
}

/// Whether a section holds more than blank lines and `--` comments (a Down section
/// of only a comment is no down script).
fn holds_sql(section: &[u8]) -> bool {
    String::from_utf8_lossy(section).lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with("--")
    })
}

/// What a Go migration is, for the report.
const GO: &str = "a Go migration: goose runs its Go function, compiled into the project's binary, and import cannot run Go. Its change is NOT in the bundle: the tiers written skip this version, so a later migration that relies on it fails (or the schema differs from goose's). Write what it does as SQL (a tier at its place) or apply it with goose first";

/// The goose migrations of the folder, in version order.
pub(super) fn migrations(
    folder: &Folder,
    names: &[String],
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let mut out: Vec<Migration> = vec![];
    let mut seen: std::collections::BTreeMap<u64, String> = Default::default();
    for n in names {
        let (stem, go) = match (n.strip_suffix(".sql"), n.strip_suffix(".go")) {
            (Some(s), _) => (s, false),
            (_, Some(s)) if !s.ends_with("_test") => (s, true),
            _ => continue,
        };
        let Some(v) = version(stem) else {
            continue;
        };
        if let Some(other) = seen.insert(v, n.clone()) {
            return Err(layout_error(
                n,
                format!("a second migration with version {v} (beside {other}): goose refuses duplicate versions; keep one"),
            ));
        }
        used.insert(n.clone());
        if go {
            left.push(LeftBehind {
                refused: false,
                file: n.clone(),
                why: GO.into(),
            });
            continue;
        }
        let text = read(folder, n)?;
        let s = sections(n, &text)?;
        let section = |(a, b): Span, which: &str| Script::Section {
            from: n.clone(),
            bytes: text[a..b].to_vec(),
            how: format!("the {which} section of a goose file, between its markers"),
        };
        out.push(Migration {
            key: vec![v as u128],
            label: stem.into(),
            up: Some(section(s.up, "Up")),
            down: s
                .down
                .filter(|&(a, b)| holds_sql(&text[a..b]))
                .map(|d| section(d, "Down")),
            up_online: s.no_transaction,
            commits_apart: s.no_transaction,
            verify: None,
            no_down_said: false,
            lb: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_cut_at_their_markers_and_what_goose_refuses_is_refused() {
        let text = b"-- a comment first\n-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP FUNCTION f();\n";
        let s = sections("1_f.sql", text).unwrap();
        let up = String::from_utf8_lossy(&text[s.up.0..s.up.1]);
        assert!(up.starts_with("-- +goose StatementBegin\n") && up.ends_with("StatementEnd\n\n"));
        let d = s.down.unwrap();
        assert_eq!(&text[d.0..d.1], b"DROP FUNCTION f();\n");
        assert!(!s.no_transaction);
        let nt = sections(
            "2.sql",
            b"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
        )
        .unwrap();
        assert!(nt.no_transaction && nt.down.is_none());
        for (bad, why) in [
            (
                &b"CREATE TABLE t (a int);\n-- +goose Up\n"[..],
                "SQL before",
            ),
            (
                b"-- +goose Down\nDROP TABLE t;\n-- +goose Up\n",
                "before `-- +goose Up`",
            ),
            (
                b"-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
                "without its StatementEnd",
            ),
            (
                b"-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${X}';\n",
                "ENVSUB",
            ),
            (b"CREATE TABLE t (a int);\n", "SQL before"),
            (b"-- only a comment\n", "no `-- +goose Up`"),
        ] {
            let e = sections("x.sql", bad).err().expect("refused").to_string();
            assert!(e.contains(why), "{e}");
        }
        assert_eq!(version("00012_x.sql"), Some(12));
        assert_eq!(version("0_x.sql"), None);
        assert_eq!(version("main.go"), None);
    }
}
