//! The only changes `import` makes to a migration's bytes, each reported: pop's
//! template options rendered as pop renders them (and a project's own `$%NAME%$`
//! placeholders, from the same `--option NAME=VALUE`), and the preamble of a psql script
//! that creates its database and connects to it (`DROP DATABASE IF EXISTS x; CREATE
//! DATABASE x; \c x`), left out, since no transaction can run it.
//!
//! Invariant: what is not one of these two exact forms is left byte for byte (`lint`
//! then judges it); a template option that names a key the user did not give is an
//! error, never left in place.

use super::{layout_error, ImportError};
use airlock_sql::pg_query::{self, NodeEnum};

/// A script's bytes after `import`'s changes, and what was changed (empty: as it is).
pub(super) struct Adapted {
    pub bytes: Vec<u8>,
    pub changes: Vec<String>,
}

/// Apply both changes to `bytes` (of `file`); the preamble only to an up script.
pub(super) fn adapt(
    file: &str,
    bytes: Vec<u8>,
    options: &[(String, String)],
    up: bool,
) -> Result<Adapted, ImportError> {
    let mut changes = vec![];
    let bytes = render_options(file, bytes, options, &mut changes)?;
    let mut bytes = render_placeholders(file, bytes, options, &mut changes)?;
    if up {
        if let Some((start, db, line)) = database_preamble(&bytes) {
            bytes.drain(..start);
            changes.push(format!(
                "from the line after `\\c {db}` (line {line}): the lines before it create database `{db}`, which no transaction can do; create it first (`createdb {db}`) and apply the bundle to it"
            ));
        }
    }
    Ok(Adapted { bytes, changes })
}

/// How many places each option's value was put in, in the order first met.
#[derive(Default)]
struct Rendered(Vec<(String, usize)>);

impl Rendered {
    fn one(&mut self, key: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n += 1,
            None => self.0.push((key.to_string(), 1)),
        }
    }

    /// A line of `changes` for each option rendered: `line(key, value, places)`.
    fn say(
        self,
        options: &[(String, String)],
        changes: &mut Vec<String>,
        line: impl Fn(&str, &str, usize) -> String,
    ) {
        for (key, n) in self.0 {
            let value = &options.iter().find(|(k, _)| *k == key).expect("found").1;
            changes.push(line(&key, value, n));
        }
    }
}

/// `{{ index .Options "KEY" }}` (pop's template for its connection options, e.g.
/// supabase's `Namespace`): the KEY's value from `options`.
fn render_options(
    file: &str,
    bytes: Vec<u8>,
    options: &[(String, String)],
    changes: &mut Vec<String>,
) -> Result<Vec<u8>, ImportError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rendered = Rendered::default();
    let mut at = 0;
    while let Some(open) = find(&bytes[at..], b"{{").map(|i| at + i) {
        let Some(close) = find(&bytes[open..], b"}}").map(|i| open + i) else {
            break;
        };
        let Some(key) = option_key(&bytes[open + 2..close]) else {
            // Not pop's option form (an array literal `'{{1,2}}'`, say): left as is.
            out.extend_from_slice(&bytes[at..open + 2]);
            at = open + 2;
            continue;
        };
        let Some((_, value)) = options.iter().find(|(k, _)| *k == key) else {
            return Err(layout_error(
                file,
                format!("pop template `{{{{ index .Options \"{key}\" }}}}`: give its value with --option {key}=VALUE (pop renders it before running the file)"),
            ));
        };
        out.extend_from_slice(&bytes[at..open]);
        out.extend_from_slice(value.as_bytes());
        rendered.one(&key);
        at = close + 2;
    }
    out.extend_from_slice(&bytes[at..]);
    rendered.say(options, changes, |key, value, n| {
        format!("pop's `{{{{ index .Options \"{key}\" }}}}` rendered as `{value}` ({n} place(s))")
    });
    Ok(out)
}

/// A project's own template placeholders, `$%NAME%$` (NAME a letter or `_`, then
/// letters, digits and `_`; never a dollar quote, whose tag has no `%`): each NAME's
/// value from `options`; one without a value is refused, named.
fn render_placeholders(
    file: &str,
    bytes: Vec<u8>,
    options: &[(String, String)],
    changes: &mut Vec<String>,
) -> Result<Vec<u8>, ImportError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rendered = Rendered::default();
    let mut at = 0;
    while let Some(open) = find(&bytes[at..], b"$%").map(|i| at + i) {
        let name_len = (bytes[open + 2..].iter())
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        let end = open + 2 + name_len;
        let is_placeholder =
            name_len > 0 && !bytes[open + 2].is_ascii_digit() && bytes[end..].starts_with(b"%$");
        if !is_placeholder {
            out.extend_from_slice(&bytes[at..open + 2]);
            at = open + 2;
            continue;
        }
        let name = String::from_utf8_lossy(&bytes[open + 2..end]).into_owned();
        let Some((_, value)) = options.iter().find(|(k, _)| *k == name) else {
            let line = 1 + bytes[..open].iter().filter(|&&b| b == b'\n').count();
            return Err(layout_error(
                file,
                format!("line {line}: template placeholder `$%{name}%$`, which the project's tool fills in before running the file: give its value with --option {name}=VALUE"),
            ));
        };
        out.extend_from_slice(&bytes[at..open]);
        out.extend_from_slice(value.as_bytes());
        rendered.one(&name);
        at = end + 2;
    }
    out.extend_from_slice(&bytes[at..]);
    rendered.say(options, changes, |name, value, n| {
        format!("placeholder `$%{name}%$` rendered as `{value}` ({n} place(s))")
    });
    Ok(out)
}

/// KEY of ` index .Options "KEY" ` (the inside of `{{ }}`), or None.
fn option_key(inside: &[u8]) -> Option<String> {
    let inside = std::str::from_utf8(inside).ok()?;
    let words: Vec<&str> = inside.split_whitespace().collect();
    match words.as_slice() {
        ["index", ".Options", quoted] => {
            let key = quoted.strip_prefix('"')?.strip_suffix('"')?;
            (!key.is_empty() && !key.contains(['"', '\\'])).then(|| key.to_string())
        }
        _ => None,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where the script starts after a preamble that only drops and creates database NAME
/// and then connects to it (`\c NAME` / `\connect NAME`, alone on its line, the first
/// meta-command): (offset of the line after `\c`, NAME, that `\c` line's number).
fn database_preamble(bytes: &[u8]) -> Option<(usize, String, usize)> {
    let mut start = 0;
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let text = std::str::from_utf8(line).ok()?.trim();
        if let Some(rest) = text.strip_prefix('\\') {
            let mut words = rest.split_whitespace();
            let name = match (words.next(), words.next(), words.next()) {
                (Some("c" | "connect"), Some(db), None) => db.trim_end_matches(';'),
                _ => return None,
            };
            let name = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .unwrap_or(name);
            let prefix = std::str::from_utf8(&bytes[..start]).ok()?;
            return only_creates(prefix, name)
                .then(|| (start + line.len(), name.to_string(), i + 1));
        }
        start += line.len();
    }
    None
}

/// `sql` is only `DROP DATABASE … name` and `CREATE DATABASE name …` (at least the
/// create), with comments.
fn only_creates(sql: &str, name: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return false;
    };
    let mut created = false;
    for raw in &parsed.protobuf.stmts {
        match raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::CreatedbStmt(s)) if s.dbname == name => created = true,
            Some(NodeEnum::DropdbStmt(s)) if s.dbname == name => {}
            _ => return false,
        }
    }
    created
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Vec<(String, String)> {
        vec![("Namespace".into(), "auth".into())]
    }

    #[test]
    fn pop_options_are_rendered_and_other_braces_left() {
        let src = "CREATE TABLE {{ index .Options \"Namespace\" }}.users (id int);\nCOMMENT ON TABLE {{index .Options \"Namespace\" }}.users IS 'x';\nSELECT '{{1,2},{3,4}}'::int[][];\n";
        let a = adapt("m.up.sql", src.as_bytes().to_vec(), &opts(), true).unwrap();
        assert_eq!(
            String::from_utf8(a.bytes).unwrap(),
            "CREATE TABLE auth.users (id int);\nCOMMENT ON TABLE auth.users IS 'x';\nSELECT '{{1,2},{3,4}}'::int[][];\n"
        );
        assert_eq!(a.changes.len(), 1);
        assert!(
            a.changes[0].contains("`auth` (2 place(s))"),
            "{:?}",
            a.changes
        );
    }

    #[test]
    fn an_option_not_given_is_an_error() {
        let src = "CREATE TABLE {{ index .Options \"Namespace\" }}.users (id int);\n";
        let e = adapt("m.up.sql", src.as_bytes().to_vec(), &[], true)
            .err()
            .unwrap();
        assert!(e.to_string().contains("--option Namespace=VALUE"), "{e}");
    }

    #[test]
    fn a_create_database_preamble_is_cut_after_its_connect_line() {
        let src = "/* header */\nDROP DATABASE IF EXISTS shop;\n\nCREATE DATABASE shop;\n\n\\c shop;\n\nCREATE TABLE t (id int);\n";
        let a = adapt("s.sql", src.as_bytes().to_vec(), &[], true).unwrap();
        assert_eq!(
            String::from_utf8(a.bytes).unwrap(),
            "\nCREATE TABLE t (id int);\n"
        );
        assert!(
            a.changes[0].contains("`\\c shop` (line 6)"),
            "{:?}",
            a.changes
        );
    }

    #[test]
    fn anything_else_before_the_connect_line_keeps_the_file_whole() {
        for src in [
            "CREATE DATABASE shop;\nCREATE TABLE t (id int);\n\\c shop\n",
            "CREATE DATABASE shop;\n\\c other\n",
            "DROP DATABASE IF EXISTS shop;\n\\c shop\n",
            "\\set ON_ERROR_STOP 1\nCREATE DATABASE shop;\n\\c shop\n",
            "/* \n\\c shop\n */ CREATE DATABASE shop;\n",
        ] {
            let a = adapt("s.sql", src.as_bytes().to_vec(), &[], true).unwrap();
            assert_eq!(a.bytes, src.as_bytes(), "{src}");
            assert!(a.changes.is_empty());
        }
        // A down script keeps its bytes whatever they are.
        let src = b"CREATE DATABASE shop;\n\\c shop\n".to_vec();
        assert_eq!(adapt("s.sql", src.clone(), &[], false).unwrap().bytes, src);
    }
}
