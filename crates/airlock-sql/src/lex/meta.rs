//! psql's meta-commands in bundle files, judged by psql's own rules: a backslash outside
//! quotes, comments, dollar quotes and COPY data starts one, and it ends at the end of
//! its line (psql reads a file line by line; the arguments never reach the server).
//! Those that only say what airlock's apply does anyway, or only change what psql
//! displays, are skipped with a note; those that change what runs (another database,
//! another file, a file on the client, generated statements, variables) are refused with
//! the psql-free way to say the same thing.
//!
//! Invariant: a meta-command is skipped only when running the file without it, inside
//! one transaction that stops at the first error, does what psql would have done.

/// What to do with one meta-command line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Skipped; the note says what was skipped and why that is safe (none for
    /// pg_dump's `\restrict` lines, which every current dump has).
    Skip(Option<String>),
    /// Refused; the message says why and what to write instead.
    Refuse(String),
}

/// The longest argument text kept to judge a meta-command (the rest of the line is
/// still skipped or refused with it).
pub(crate) const MAX_ARGS: usize = 4096;

/// psql's boolean spellings (`ParseVariableBool`: unique prefixes, `on`/`off`, 1/0);
/// `None` for anything else. An empty value is psql's `on` (`\set ON_ERROR_STOP`).
fn bool_value(v: &str) -> Option<bool> {
    let v = v.to_ascii_lowercase();
    let prefix_of = |word: &str| !v.is_empty() && word.starts_with(v.as_str());
    if v.is_empty() || v == "1" || v == "on" || prefix_of("true") || prefix_of("yes") {
        Some(true)
    } else if v == "0"
        || (v.len() >= 2 && "off".starts_with(v.as_str()))
        || prefix_of("false")
        || prefix_of("no")
    {
        Some(false)
    } else {
        None
    }
}

/// The words of a meta-command's arguments, as psql reads them (`'…'` with `''` and
/// backslash escapes, `"…"` kept with its quotes), or why they cannot be judged.
fn words(args: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(out);
        };
        let mut word = String::new();
        match first {
            '`' => return Err("runs a shell command (a backquoted argument)".into()),
            '\\' => {
                return Err(
                    "is followed by another backslash command on the same line (psql's `\\\\` runs the rest of the line as SQL)"
                        .into(),
                )
            }
            ':' => return Err(INTERPOLATION.into()),
            _ => {}
        }
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\'' => loop {
                    match chars.next() {
                        None => return Err("has an unterminated quoted argument".into()),
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            word.push('\'');
                        }
                        Some('\'') => break,
                        Some('\\') => word.extend(chars.next()),
                        Some(c) => word.push(c),
                    }
                },
                '"' => {
                    word.push('"');
                    loop {
                        match chars.next() {
                            None => return Err("has an unterminated quoted argument".into()),
                            Some('"') => break,
                            Some(c) => word.push(c),
                        }
                    }
                    word.push('"');
                }
                '`' => return Err("runs a shell command (a backquoted argument)".into()),
                _ => word.push(c),
            }
        }
        out.push(word);
    }
}

/// A `:name` reference (psql replaces it with a variable's value before the server
/// sees the text).
pub(crate) const INTERPOLATION: &str = "psql variable interpolation (`:name`, `:'name'`, `:\"name\"`) is not SQL: airlock sends the file as it is, with no psql variables. Write the value in the file, or declare it as a bundle parameter ([params.NAME], given with `--param NAME=VALUE`) and read it with current_setting('airlock.NAME')";

/// psql variables whose value changes what runs, and the value that keeps airlock's
/// behaviour (one transaction, stop at the first error).
const BEHAVIOUR: [(&str, bool, &str); 4] = [
    ("ON_ERROR_STOP", true, "airlock always stops at the first error and rolls everything back"),
    ("AUTOCOMMIT", true, "airlock runs every tier inside its own transaction (psql's AUTOCOMMIT off would open a transaction the file never ends)"),
    ("ON_ERROR_ROLLBACK", false, "airlock never skips a failed statement and carries on: the first error rolls everything back"),
    ("SINGLESTEP", false, "airlock asks no confirmation per statement"),
];

fn judge_set(words: &[String], unset: bool) -> Verdict {
    let Some(name) = words.first() else {
        return Verdict::Skip(Some(
            "`\\set` with no arguments only lists psql's variables".into(),
        ));
    };
    let value: String = words[1..].concat();
    if let Some((var, keeps, why)) = BEHAVIOUR.iter().find(|(v, ..)| v == name) {
        // \unset sets the variable back to psql's default: off for all but AUTOCOMMIT.
        let on = if unset {
            Some(*var == "AUTOCOMMIT")
        } else {
            bool_value(&value)
        };
        let cmd = if unset { "\\unset" } else { "\\set" };
        return if on == Some(*keeps) || (unset && *var == "ON_ERROR_STOP") {
            Verdict::Skip(Some(format!(
                "`{cmd} {var}` is what airlock does anyway: {why}"
            )))
        } else {
            Verdict::Refuse(format!("`{cmd} {var} {value}` asks psql for something airlock does not do: {why}. Remove the line"))
        };
    }
    let cmd = if unset { "\\unset" } else { "\\set" };
    Verdict::Skip(Some(format!(
        "`{cmd} {name}` only sets a psql variable; nothing in the file can read it (a `:{name}` reference would be refused)"
    )))
}

/// Commands that only change what psql prints.
const DISPLAY: [&str; 17] = [
    "\\echo",
    "\\qecho",
    "\\warn",
    "\\timing",
    "\\pset",
    "\\x",
    "\\a",
    "\\t",
    "\\H",
    "\\f",
    "\\C",
    "\\T",
    "\\conninfo",
    "\\errverbose",
    "\\html",
    "\\P",
    "\\y",
];

/// Why a command that changes what runs is refused (`None`: judged on its arguments).
fn refused(name: &str) -> Option<&'static str> {
    match name {
        "\\c" | "\\connect" => Some("connects to another database (or as another user) in the middle of the file; a bundle runs against the one database its [target] names. Make one bundle per database (for another role inside the same database: SET ROLE … in the tier)"),
        "\\i" | "\\include" | "\\ir" | "\\include_relative" | "\\if_exists" => Some("reads another file; airlock runs only the files the bundle names, in order. Name that file in the tier's `files` list instead (`airlock import` does this for a folder of psql scripts)"),
        "\\copy" => Some("reads or writes a file on the machine running psql, which no signature covers. Put the rows in the tier as `COPY table FROM STDIN;` followed by the data and a `\\.` line, as pg_dump writes them"),
        "\\gexec" => Some("runs each value the query returns as a statement, which lint never sees. Write the generated statements in the file, or loop in a DO block with EXECUTE"),
        "\\g" | "\\gx" | "\\gset" | "\\gdesc" | "\\crosstabview" | "\\bind" | "\\bind_named" => Some("sends the query buffer in psql's own way (to a file, into variables, with parameters); end the statement with `;` and keep values in the database"),
        "\\if" | "\\elif" | "\\else" | "\\endif" => Some("runs part of the file on a condition psql evaluates; airlock runs every statement. Put the condition in SQL (a DO block with IF)"),
        "\\lo_import" | "\\lo_export" | "\\lo_unlink" => Some("moves a large object to or from a file on the machine running psql. Write it in SQL: lo_from_bytea(0, '\\x…') (as pg_dump's large-object section does with lo_open/lowrite)"),
        "\\q" | "\\quit" => Some("stops psql reading the file; airlock runs the whole file. Remove it and whatever follows it"),
        "\\!" | "\\o" | "\\out" | "\\w" | "\\write" | "\\cd" | "\\setenv" | "\\prompt" | "\\s" => Some("acts on the machine running psql (a shell, a file, the terminal), outside the transaction. Remove it"),
        _ => None,
    }
}

/// The verdict on meta-command `name` (with its backslash) and the rest of its line.
pub(crate) fn judge(name: &str, args: &str) -> Verdict {
    let name_only = name.trim_end_matches('+');
    let refuse = |why: &str| Verdict::Refuse(format!("psql meta-command `{name}` {why}"));
    if let Some(why) = refused(name_only) {
        return refuse(why);
    }
    let words = match words(args) {
        Ok(w) => w,
        Err(why) if why == INTERPOLATION => return Verdict::Refuse(INTERPOLATION.into()),
        Err(why) => {
            return refuse(&format!(
                "{why}; airlock cannot tell what it would do. Remove it"
            ))
        }
    };
    match name_only {
        "\\set" => judge_set(&words, false),
        "\\unset" => judge_set(&words, true),
        "\\encoding" => match words.first().map(|w| w.to_ascii_lowercase()) {
            None => Verdict::Skip(Some(
                "`\\encoding` with no argument only prints the client encoding".into(),
            )),
            Some(e) if matches!(e.as_str(), "utf8" | "utf-8" | "unicode") => Verdict::Skip(Some(
                "`\\encoding UTF8` is what airlock does anyway: bundle files are UTF-8 and sent as UTF-8".into(),
            )),
            Some(_) => refuse("switches the client encoding, which decides how the rest of the file is read: bundle files are UTF-8. Convert the file to UTF-8 (iconv) and remove the line"),
        },
        n if DISPLAY.contains(&n) => Verdict::Skip(Some(format!(
            "`{name}` only changes what psql prints; airlock prints its own report"
        ))),
        "\\restrict" | "\\unrestrict" => match &words[..] {
            [key] if key.bytes().all(|b| b.is_ascii_alphanumeric()) => Verdict::Skip(None),
            [] => Verdict::Refuse("a `\\restrict`/`\\unrestrict` line without its key".into()),
            _ => Verdict::Refuse("a `\\restrict`/`\\unrestrict` line must be the command and one key of letters and digits, as pg_dump writes it".into()),
        },
        _ => refuse("is not SQL and is not one airlock can skip; airlock sends files to the server as they are. Remove it (skipped with a note: `\\set ON_ERROR_STOP`, `\\unset`, `\\encoding UTF8`, `\\echo`, `\\timing`, `\\pset` and other display settings, pg_dump's `\\restrict`/`\\unrestrict`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped(name: &str, args: &str) -> bool {
        matches!(judge(name, args), Verdict::Skip(_))
    }

    #[test]
    fn what_airlock_does_anyway_is_skipped_and_the_opposite_refused() {
        for (name, args) in [
            ("\\set", "ON_ERROR_STOP 1"),
            ("\\set", "ON_ERROR_STOP on"),
            ("\\set", "ON_ERROR_STOP"),
            ("\\set", "ON_ERROR_STOP 'true'"),
            ("\\set", "AUTOCOMMIT on"),
            ("\\set", "VERBOSITY verbose"),
            ("\\set", "myvar 'x y'"),
            ("\\unset", "ON_ERROR_STOP"),
            ("\\pset", "pager off"),
            ("\\timing", "on"),
            ("\\echo", "'creating tables…'"),
            ("\\encoding", "UTF8"),
            ("\\x", ""),
        ] {
            assert!(skipped(name, args), "{name} {args}");
        }
        for (name, args) in [
            ("\\set", "ON_ERROR_STOP 0"),
            ("\\set", "ON_ERROR_STOP off"),
            ("\\set", "AUTOCOMMIT off"),
            ("\\set", "ON_ERROR_ROLLBACK on"),
            ("\\encoding", "LATIN1"),
            ("\\set", "x `date`"),
            ("\\set", "x :y"),
            ("\\echo", "a \\\\ SELECT 1;"),
            ("\\c", "other"),
            ("\\ir", "CreateTables.sql"),
            ("\\copy", "t FROM 't.csv' CSV"),
            ("\\gexec", ""),
            ("\\if", ":flag"),
            ("\\zz", ""),
        ] {
            assert!(!skipped(name, args), "{name} {args}");
        }
    }

    #[test]
    fn refusals_name_the_psql_free_way() {
        let message = |name, args| match judge(name, args) {
            Verdict::Refuse(m) => m,
            Verdict::Skip(n) => panic!("skipped: {n:?}"),
        };
        assert!(message("\\c", "db").contains("one bundle per database"));
        assert!(message("\\i", "f.sql").contains("`files` list"));
        assert!(message("\\copy", "t from 'x'").contains("COPY table FROM STDIN"));
        assert!(message("\\gexec", "").contains("DO block with EXECUTE"));
        assert!(message("\\set", "x :y").contains("[params.NAME]"));
    }
}
