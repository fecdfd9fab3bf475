//! Settings that decide how SQL text is lexed: `standard_conforming_strings` (whether a
//! backslash escapes a quote in `'…'`) and `client_encoding` (which bytes make one
//! character). The lexer reads every bundle file with the first on and UTF-8, and
//! execution keeps the server there for every message (`db::exec`'s trailer). A file
//! that changes either would mean, to psql, something other than what lint read; so
//! lint refuses a change it can see: `SET`/`SET LOCAL`/`SET NAMES` to another value,
//! `set_config('standard_conforming_strings', …)` with another value, and any other
//! statement naming them (a `DO` block, a function body), which could change them later.
//! What lint cannot see (a name built at run time) the trailer puts back before the
//! server lexes the next message.
//!
//! Invariant: a script that passes lint sets these settings only to the values lint
//! lexed it with (pg_dump's own `SET standard_conforming_strings = on;` and `SET
//! client_encoding = 'UTF8';` pass).

/// (setting, values that keep what the lexer assumes), lowercase. `default` is the
/// session's value, which airlock's own session pins.
const LEXING: [(&str, &[&str]); 2] = [
    (
        "standard_conforming_strings",
        &["on", "true", "yes", "1", "default"],
    ),
    ("client_encoding", &["utf8", "utf-8", "unicode", "default"]),
];

/// How the refusal of a legacy file's `SET standard_conforming_strings = off` begins.
pub(crate) const LEGACY_OFF: &str = "sets standard_conforming_strings off: a legacy file";

fn refusal(setting: &str, what: &str) -> String {
    format!(
        "{what} {setting}, which decides how the rest of the file is lexed: airlock reads and runs bundle SQL with standard_conforming_strings on and client_encoding UTF8, so the server would not run what lint checked. Remove it (a dump with standard_conforming_strings off: dump it again with a current pg_dump)"
    )
}

/// The setting `word` names, if it decides lexing (`names`: SET NAMES).
fn lexing_setting(word: &str) -> Option<&'static (&'static str, &'static [&'static str])> {
    let w = word.trim_matches('"').to_ascii_lowercase();
    let w = if w == "names" {
        "client_encoding".into()
    } else {
        w
    };
    LEXING.iter().find(|(name, _)| *name == w)
}

fn allowed(values: &[&str], value: &str) -> bool {
    let v = value.trim_matches('\'').to_ascii_lowercase();
    values.contains(&v.as_str())
}

/// A statement whose text lint keeps (not DML): a problem if it changes, or names, a
/// setting that decides lexing, other than setting it to what lint assumed.
pub(crate) fn statement_problem(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '=' || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    // SET [SESSION | LOCAL] name {TO | =} value  /  SET [SESSION | LOCAL] NAMES value
    if words.first() == Some(&"set") {
        let rest = match words.get(1) {
            Some(&"session") | Some(&"local") => &words[2..],
            _ => &words[1..],
        };
        if let Some((name, values)) = rest.first().and_then(|w| lexing_setting(w)) {
            let value = match rest.get(1) {
                Some(&"to") => rest.get(2),
                _ if rest[0] == "names" => rest.get(1),
                other => other,
            };
            let plain = rest.len() == if rest.get(1) == Some(&"to") { 3 } else { 2 };
            return match value {
                Some(v) if plain && allowed(values, v) => None,
                Some(v)
                    if *name == "standard_conforming_strings"
                        && matches!(v.trim_matches('\'').to_ascii_lowercase().as_str(), "off" | "false" | "no" | "0") =>
                {
                    Some(format!("{LEGACY_OFF}, as pg_dump wrote them before PostgreSQL 9.1, in which a backslash escapes a quote inside '…' ('O\\'Reilly'). airlock reads and runs every file with it on, as the server has by default since 9.1, and does not guess what the rest means: it is not read. Dump the database again with a current pg_dump (or convert such strings: 'O''Reilly', or E'O\\'Reilly')"))
                }
                _ => Some(refusal(name, "sets")),
            };
        }
    }
    // RESET name / RESET ALL go back to the session's value, which airlock pins.
    if words.first() == Some(&"reset") {
        return None;
    }
    LEXING
        .iter()
        .find(|(name, _)| lower.contains(name))
        .map(|(name, _)| refusal(name, "names (and so may change)"))
}

/// The bytes after a `set_config` word kept to judge the call (its first two
/// arguments fit in far less).
const TAIL: usize = 256;

/// Finds `set_config` words in the Normal text of DML statements and keeps what
/// follows each, to judge the call when the statement ends.
#[derive(Default)]
pub(crate) struct SetConfigWatch {
    /// Bytes of `SET_CONFIG` matched so far.
    matched: usize,
    /// The previous Normal byte was part of a word.
    prev_word: bool,
    /// The calls found in this statement: (line, bytes after the word).
    calls: Vec<(usize, Vec<u8>)>,
    /// The last call is still being kept.
    keeping: bool,
}

const NEEDLE: &[u8] = b"SET_CONFIG";

impl SetConfigWatch {
    /// The next byte of a DML statement; `normal`: outside constants and comments;
    /// `word`: the byte can be part of an identifier (the lexer's rule).
    pub(crate) fn byte(&mut self, b: u8, normal: bool, word: bool, line: usize) {
        if self.keeping {
            let tail = &mut self.calls.last_mut().expect("keeping a call").1;
            tail.push(b);
            self.keeping = tail.len() < TAIL;
        }
        if !normal {
            self.matched = 0;
            self.prev_word = false;
            return;
        }
        if self.matched == NEEDLE.len() {
            self.matched = 0;
            if !word {
                if self.calls.len() >= 64 {
                    self.calls.remove(0);
                }
                self.calls.push((line, vec![b]));
                self.keeping = true;
            }
        }
        let up = b.to_ascii_uppercase();
        if up == NEEDLE[self.matched] && (self.matched > 0 || !self.prev_word) {
            self.matched += 1;
        } else {
            self.matched = usize::from(up == NEEDLE[0] && !self.prev_word);
        }
        self.prev_word = word;
    }

    /// No match nor kept call under way: a byte other than `s`/`S` changes nothing
    /// but `prev_word`.
    pub(crate) fn idle(&self) -> bool {
        self.matched == 0 && !self.keeping
    }

    /// The last byte fed was (`word`) or was not part of a word: all that a byte
    /// changes while the watch is [`idle`](Self::idle) and the byte is no `s`/`S`.
    pub(crate) fn after(&mut self, word: bool) {
        self.prev_word = word;
    }

    /// [`byte`](Self::byte) for each byte of `run`, none of them Normal text (inside
    /// a constant or comment); the same state after, faster: once the watch is idle,
    /// the rest of the run changes nothing but `prev_word`.
    pub(crate) fn quoted(&mut self, run: &[u8], line: usize) {
        for &b in run {
            if self.idle() {
                self.prev_word = false;
                return;
            }
            self.byte(b, false, false, line);
        }
    }

    /// Whether the statement held a `set_config` call (most hold none: nothing to judge).
    pub(crate) fn saw_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The statement ended: a problem for each call that changes a lexing setting.
    pub(crate) fn finish(&mut self) -> Vec<(usize, String)> {
        let calls = std::mem::take(&mut self.calls);
        *self = SetConfigWatch::default();
        calls
            .into_iter()
            .filter_map(|(line, tail)| call_problem(&tail).map(|m| (line, m)))
            .collect()
    }
}

/// `( 'name' , value …`: the first two arguments of a `set_config` call, as written.
/// A name that is not a plain literal cannot be judged here (execution's trailer puts
/// any change back); a lexing setting with any value but a plain allowed literal is
/// refused.
fn call_problem(tail: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    let rest = text.trim_start().strip_prefix('(')?.trim_start();
    let rest = rest.strip_prefix('\'')?;
    let (name, rest) = rest.split_once('\'')?;
    let (setting, values) = lexing_setting(name)?;
    let value = rest
        .trim_start()
        .strip_prefix(',')
        .map(str::trim_start)
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split_once('\''))
        .map(|(v, _)| v);
    match value {
        Some(v) if allowed(values, v) => None,
        _ => Some(refusal(setting, "set_config changes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_pg_dump_writes_passes_and_every_other_change_is_refused() {
        for ok in [
            "SET standard_conforming_strings = on",
            "SET client_encoding = 'UTF8'",
            "SET LOCAL standard_conforming_strings TO on",
            "SET NAMES 'utf8'",
            "RESET standard_conforming_strings",
            "SET search_path = public",
            "CREATE TABLE t (standard int)",
        ] {
            assert_eq!(statement_problem(ok), None, "{ok}");
        }
        for bad in [
            "SET standard_conforming_strings = off",
            "SET LOCAL standard_conforming_strings TO off",
            "SET SESSION standard_conforming_strings = 'off'",
            "set Standard_Conforming_Strings to false",
            "SET client_encoding = 'SJIS'",
            "SET NAMES 'SJIS'",
            "SET standard_conforming_strings = on, off",
            "DO $$ BEGIN EXECUTE 'SET standard_conforming_strings = off'; END $$",
            "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ SELECT set_config('client_encoding', 'SJIS', false) $$",
        ] {
            assert!(statement_problem(bad).is_some(), "{bad}");
        }
    }

    fn calls(sql: &str) -> Vec<(usize, String)> {
        let mut w = SetConfigWatch::default();
        for &b in sql.as_bytes() {
            w.byte(
                b,
                true,
                b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80,
                1,
            );
        }
        w.finish()
    }

    /// The state a watch is in, to compare two.
    fn state(w: &SetConfigWatch) -> (usize, bool, Vec<(usize, Vec<u8>)>, bool) {
        (w.matched, w.prev_word, w.calls.clone(), w.keeping)
    }

    proptest::proptest! {
        /// `quoted` leaves the watch exactly as `byte` for each byte would, whatever
        /// came before (Normal text, a match under way, a call being kept).
        #[test]
        fn quoted_text_is_its_bytes(
            runs in proptest::collection::vec(
                (proptest::collection::vec(
                    proptest::sample::select(b"sSeEtT_cCoOnNfFiIgG( ,'x1\xc3".to_vec()),
                    0..40,
                ), proptest::bool::weighted(0.7)),
                0..12,
            )
        ) {
            let (mut fast, mut slow) = (SetConfigWatch::default(), SetConfigWatch::default());
            for (line, (run, normal)) in runs.iter().enumerate() {
                for &b in run {
                    let word = crate::lex::lexer::is_word_byte(b);
                    slow.byte(b, *normal, word, line);
                    if *normal {
                        fast.byte(b, true, word, line);
                    }
                }
                if !normal {
                    fast.quoted(run, line);
                }
                proptest::prop_assert_eq!(state(&fast), state(&slow));
            }
            proptest::prop_assert_eq!(fast.finish(), slow.finish());
        }
    }

    #[test]
    fn set_config_calls_of_lexing_settings_are_judged() {
        assert!(calls("SELECT pg_catalog.set_config('search_path', '', false)").is_empty());
        assert!(calls("SELECT set_config('standard_conforming_strings', 'on', false)").is_empty());
        assert!(calls("SELECT set_config(name, 'off', false)").is_empty());
        assert!(calls("SELECT my_set_config('standard_conforming_strings', 'off')").is_empty());
        assert_eq!(
            calls("SELECT SET_CONFIG ( 'standard_conforming_strings' , 'off', false)").len(),
            1
        );
        assert_eq!(
            calls("SELECT set_config('client_encoding', current_setting('x'), true)").len(),
            1
        );
    }
}
