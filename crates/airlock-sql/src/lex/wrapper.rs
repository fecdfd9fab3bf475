//! Transaction wrappers that mean "run this as one transaction": a file-wide `BEGIN;` …
//! `COMMIT;` (psql scripts written for `psql -f`) and the `BEGIN;` … `COMMIT;` pg_dump
//! writes around its large-object (BLOBS) section. airlock's apply is already one
//! transaction, so running what is between them inside it is what they ask for; the
//! wrapper statements themselves are skipped, never sent.
//!
//! Invariant: only a balanced, unnested pair of the plain forms is skipped (`BEGIN`,
//! `BEGIN WORK|TRANSACTION`, `START TRANSACTION`; `COMMIT`, `END`, each with an optional
//! `WORK|TRANSACTION`), as statements of their own; any other transaction control
//! (isolation levels, `ROLLBACK`, `SAVEPOINT`, `COMMIT AND CHAIN`, a `COMMIT` with no
//! `BEGIN`) reaches the classifier and is refused as before. Lint and execution share
//! this state through the one lexer, so they skip the same bytes.

/// One half of a wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wrap {
    Begin,
    Commit,
}

/// A statement's text longer than this is no wrapper (kept only to recognise one).
pub(crate) const MAX_WRAPPER: usize = 64;

/// The statement's text (up to its `;`), if it is exactly one half of a wrapper.
pub(crate) fn recognise(text: &[u8]) -> Option<Wrap> {
    let text = std::str::from_utf8(text).ok()?;
    let words: Vec<String> = text
        .split_ascii_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words[..] {
        ["BEGIN"] | ["BEGIN", "WORK" | "TRANSACTION"] | ["START", "TRANSACTION"] => {
            Some(Wrap::Begin)
        }
        ["COMMIT" | "END"] | ["COMMIT" | "END", "WORK" | "TRANSACTION"] => Some(Wrap::Commit),
        _ => None,
    }
}

/// What lint says of a pair that just closed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Said {
    /// The first pair of a file: what it means here.
    Note(String),
    /// A later pair: psql would have committed the ones before it.
    Warning(String),
}

/// What the lexer does with a statement.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An ordinary statement (a `COMMIT` with no open wrapper is one: refused later).
    Statement,
    /// Skipped, with what lint says when a pair just closed.
    Skip(Option<Said>),
    /// Refused here, at this line.
    Problem(usize, String),
}

/// The open wrapper, if any.
#[derive(Default)]
pub(crate) struct Wrappers {
    /// Line of the `BEGIN` whose `COMMIT` has not come yet.
    open: Option<usize>,
    /// Lines of the first pair of the file, once closed.
    first: Option<(usize, usize)>,
    /// The file is an online tier's (or online rollback's): it runs each statement
    /// outside any transaction, so a wrapper cannot mean what it asks and is refused
    /// (once, at its `COMMIT`, naming both lines) instead of skipped.
    pub(crate) online: bool,
}

impl Wrappers {
    /// The statement at `line` ended; `wrap`: what [`recognise`] made of it.
    pub(crate) fn statement(&mut self, wrap: Option<Wrap>, line: usize) -> Verdict {
        match (wrap, self.open) {
            (None, _) => Verdict::Statement,
            (Some(Wrap::Begin), None) => {
                self.open = Some(line);
                Verdict::Skip(None)
            }
            (Some(Wrap::Begin), Some(first)) => Verdict::Problem(line, format!(
                "a second BEGIN before the COMMIT of the one at line {first}: only a balanced, unnested `BEGIN;` … `COMMIT;` is run as part of airlock's own transaction, and the server would commit at the first COMMIT. Remove the inner pair"
            )),
            (Some(Wrap::Commit), Some(first)) if self.online => {
                self.open = None;
                Verdict::Problem(first, format!(
                    "`BEGIN;` … `COMMIT;` (lines {first}–{line}) in an online tier: an online tier runs each statement on its own, outside any transaction, each recorded as it completes, so these statements cannot run as one transaction. Remove the two lines (the statements then run one by one), or move the statements to a tier without `online = true`, which runs them all-or-nothing"
                ))
            }
            (Some(Wrap::Commit), Some(begin)) => {
                self.open = None;
                Verdict::Skip(Some(match self.first {
                    None => {
                        self.first = Some((begin, line));
                        Said::Note(format!(
                            "lines {begin}–{line}: `BEGIN;` … `COMMIT;` asks for one transaction, which airlock's apply already is; the two statements are skipped and what is between them runs all-or-nothing with the rest of the bundle"
                        ))
                    }
                    Some((a, b)) => Said::Warning(format!(
                        "lines {begin}–{line}: another `BEGIN;` … `COMMIT;` in this file (the first: lines {a}–{b}): psql commits each pair before the next runs, airlock skips the pairs and runs the whole file in its one transaction, so they no longer commit apart: all of it commits, or none. If a pair must commit before the next runs (a batch too large for one transaction, an enum value added for later use), give each its own file in its own tier with [bundle] transaction = \"per-tier\" (each tier then commits on its own)"
                    )),
                }))
            }
            (Some(Wrap::Commit), None) => Verdict::Statement,
        }
    }

    /// The end of the file: a `BEGIN` still open is refused.
    pub(crate) fn finish(&mut self) -> Option<(usize, String)> {
        let online = self.online;
        self.open.take().map(|line| {
            (
                line,
                if online {
                    "BEGIN without its COMMIT in an online tier: an online tier runs each statement on its own, outside any transaction. Remove the BEGIN".into()
                } else {
                    "BEGIN without its COMMIT: only a balanced `BEGIN;` … `COMMIT;` is run as part of airlock's own transaction (psql would leave this one open). Remove the BEGIN, or end the section with COMMIT;".into()
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_plain_forms_are_wrappers() {
        for (text, want) in [
            ("BEGIN", Some(Wrap::Begin)),
            ("begin transaction", Some(Wrap::Begin)),
            ("START\n TRANSACTION", Some(Wrap::Begin)),
            ("COMMIT", Some(Wrap::Commit)),
            ("end work", Some(Wrap::Commit)),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", None),
            ("BEGIN READ ONLY", None),
            ("COMMIT AND CHAIN", None),
            ("ROLLBACK", None),
            ("COMMIT PREPARED 'x'", None),
            ("BEGIN /* c */", None),
        ] {
            assert_eq!(recognise(text.as_bytes()), want, "{text}");
        }
    }

    #[test]
    fn pairs_balance_and_do_not_nest() {
        let mut w = Wrappers::default();
        assert_eq!(w.statement(Some(Wrap::Commit), 1), Verdict::Statement);
        assert_eq!(w.statement(Some(Wrap::Begin), 2), Verdict::Skip(None));
        assert_eq!(w.statement(None, 3), Verdict::Statement);
        assert!(matches!(
            w.statement(Some(Wrap::Begin), 4),
            Verdict::Problem(4, _)
        ));
        assert!(matches!(
            w.statement(Some(Wrap::Commit), 5),
            Verdict::Skip(Some(_))
        ));
        assert_eq!(w.finish(), None);
        w.statement(Some(Wrap::Begin), 6);
        assert_eq!(w.finish().map(|(line, _)| line), Some(6));
    }

    #[test]
    fn an_online_file_refuses_a_wrapper_once_at_its_commit() {
        let mut w = Wrappers {
            online: true,
            ..Wrappers::default()
        };
        assert_eq!(w.statement(Some(Wrap::Begin), 1), Verdict::Skip(None));
        assert_eq!(w.statement(None, 2), Verdict::Statement);
        match w.statement(Some(Wrap::Commit), 3) {
            Verdict::Problem(1, m) => assert!(m.contains("(lines 1–3) in an online tier"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(w.finish(), None);
    }
}
