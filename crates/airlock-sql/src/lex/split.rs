//! Execution's view of a tier file: the same lexer as lint, cut into pieces to send.
//!
//! Invariant: the pieces cover the file's bytes in order, without gaps or overlaps,
//! and every boundary is one lint saw (the same [`Lexer`]); memory stays bounded
//! whatever the file's size (only a COPY statement's own text is held).

use crate::lex::lexer::{Event, Keep, Lexer, Mode};
use crate::SqlProblem;
use std::ops::Range;

/// One piece of a tier file, by byte offsets into the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// `[start, end)` holds one whole SQL statement (with the whitespace and comments
    /// before it, and its `;`): send it as a query. Consecutive `Sql` pieces are
    /// contiguous and may be sent together.
    Sql { start: u64, end: u64, line: usize },
    /// `COPY … FROM STDIN …;` at `stmt` (send it as a query), its data lines at `data`
    /// (send as CopyData, then CopyDone; the `\.` line is not part of it), the whole
    /// construct ending at `end`. `data` may be empty.
    Copy {
        stmt: Range<u64>,
        data: Range<u64>,
        end: u64,
        line: usize,
    },
    /// [`Splitter::streaming`] only: `COPY … FROM STDIN …;` at `stmt` is complete and
    /// its data follows ([`Splitter::copy_progress`] says how much of it is in); the
    /// [`Piece::Copy`] for it comes once the `\.` line is seen.
    CopyBegin { stmt: Range<u64>, line: usize },
    /// Bytes sent nowhere: pg_dump's `\restrict KEY` / `\unrestrict KEY` lines (psql
    /// meta-commands that only guard psql itself; airlock runs no meta-commands), with
    /// the whitespace and comments before them, and whatever blank tail ends the file.
    Skip { start: u64, end: u64 },
}

impl Piece {
    /// Where the piece ends (the next one starts there).
    pub fn end(&self) -> u64 {
        match self {
            Piece::Sql { end, .. } | Piece::Copy { end, .. } | Piece::Skip { end, .. } => *end,
            Piece::CopyBegin { stmt, .. } => stmt.end,
        }
    }
}

/// Cuts a tier file into [`Piece`]s as it streams by.
pub struct Splitter {
    file: String,
    lexer: Lexer,
    /// Where the next piece starts.
    next: u64,
    /// A COPY statement waiting for its data: its range and line.
    copy: Option<(Range<u64>, usize)>,
    problem: Option<SqlProblem>,
    /// Announce each COPY as soon as its statement is complete ([`Piece::CopyBegin`]).
    streaming: bool,
}

impl Splitter {
    /// A splitter for the file named `file` (named in its problems).
    pub fn new(file: &str) -> Self {
        Splitter {
            file: file.into(),
            lexer: Lexer::new(Mode::Script, Keep::Copy),
            next: 0,
            copy: None,
            problem: None,
            streaming: false,
        }
    }

    /// A splitter that also announces each COPY when its statement is complete, so
    /// its data can be sent as it arrives ([`Piece::CopyBegin`]).
    pub fn streaming(file: &str) -> Self {
        Splitter {
            streaming: true,
            ..Self::new(file)
        }
    }

    /// Inside COPY data: where it starts and how far the bytes fed are certainly data.
    pub fn copy_progress(&self) -> Option<(u64, u64)> {
        if self.problem.is_some() {
            return None;
        }
        self.lexer.copy_progress()
    }

    /// Feed the next bytes of the file (any split point); appends completed pieces.
    /// After a problem nothing more is appended, and [`Splitter::finish`] reports it.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Piece>) {
        if self.problem.is_some() {
            return;
        }
        self.lexer.feed(bytes);
        self.drain(out);
    }

    /// End of the file: the last pieces, or the first problem (an unterminated quote or
    /// COPY data, a meta-command, a refused COPY, invalid UTF-8…).
    pub fn finish(mut self, out: &mut Vec<Piece>) -> Result<(), SqlProblem> {
        if self.problem.is_none() {
            self.lexer.finish();
            self.drain(out);
        }
        if let Some(p) = self.problem {
            return Err(p);
        }
        let end = self.lexer.offset();
        if self.next < end {
            out.push(Piece::Skip {
                start: self.next,
                end,
            });
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<Piece>) {
        let mut events = std::mem::take(&mut self.lexer.events);
        for event in events.drain(..) {
            if self.problem.is_some() {
                break;
            }
            match event {
                Event::Statement(s) => {
                    let end = s.end + u64::from(s.semi);
                    if s.copy_in {
                        if self.streaming {
                            out.push(Piece::CopyBegin {
                                stmt: self.next..end,
                                line: s.line,
                            });
                        }
                        self.copy = Some((self.next..end, s.line));
                    } else {
                        out.push(Piece::Sql {
                            start: self.next,
                            end,
                            line: s.line,
                        });
                    }
                    self.next = end;
                }
                Event::CopyData {
                    data_start,
                    data_end,
                    end,
                } => {
                    let (stmt, line) = self.copy.take().expect("COPY data follows its statement");
                    out.push(Piece::Copy {
                        stmt,
                        data: data_start..data_end,
                        end,
                        line,
                    });
                    self.next = end;
                }
                Event::Skip { end } => {
                    out.push(Piece::Skip {
                        start: self.next,
                        end,
                    });
                    self.next = end;
                }
                Event::Note { .. } | Event::Warning { .. } => {}
                Event::Problem { line, message } => {
                    self.problem = Some(SqlProblem {
                        file: self.file.clone(),
                        line,
                        message,
                    });
                }
            }
        }
        self.lexer.events = events;
    }
}

/// [`Splitter`] over a whole file in memory (tests, small files).
pub fn split_all(file: &str, bytes: &[u8]) -> Result<Vec<Piece>, SqlProblem> {
    let mut splitter = Splitter::new(file);
    let mut out = Vec::new();
    splitter.feed(bytes, &mut out);
    splitter.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(src: &str, r: Range<u64>) -> &str {
        &src[r.start as usize..r.end as usize]
    }

    /// Each piece as text: `S:` SQL, `C:` COPY statement `|` data, `K:` skipped.
    fn show(src: &str, pieces: &[Piece]) -> Vec<String> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Sql { start, end, .. } => format!("S:{}", text(src, *start..*end)),
                Piece::Copy { stmt, data, .. } => {
                    format!("C:{}|{}", text(src, stmt.clone()), text(src, data.clone()))
                }
                Piece::Skip { start, end } => format!("K:{}", text(src, *start..*end)),
                Piece::CopyBegin { .. } => unreachable!("not streaming"),
            })
            .collect()
    }

    fn pieces_cover(src: &str, pieces: &[Piece]) {
        let mut at = 0;
        for p in pieces {
            let start = match p {
                Piece::Sql { start, .. } | Piece::Skip { start, .. } => *start,
                Piece::Copy { stmt, data, .. } => {
                    assert_eq!(stmt.start, at);
                    assert!(stmt.end <= data.start && data.start <= data.end);
                    stmt.start
                }
                Piece::CopyBegin { .. } => unreachable!("not streaming"),
            };
            assert_eq!(start, at, "{pieces:?}");
            at = p.end();
        }
        assert_eq!(at, src.len() as u64, "{pieces:?}");
    }

    const DUMP: &str = "\\restrict abcXYZ123\n-- a comment\nSET x = 1;\nCREATE TABLE public.t (\n    a text,\n    begin integer\n);\nCOPY public.t (a, begin) FROM stdin;\nx\\ty\\\\z;\\nw\t1\n\\N\t2\n\\\\.\t3\nCOMMIT;\n\\.\nSELECT 1; SELECT 2;\n\n\\unrestrict abcXYZ123\n\n";

    #[test]
    fn a_pg_dump_is_cut_where_psql_cuts_it() {
        for chunk in [1, 2, 3, 5, 7, 64, 4096] {
            let mut s = Splitter::new("d.sql");
            let mut out = Vec::new();
            for piece in DUMP.as_bytes().chunks(chunk) {
                s.feed(piece, &mut out);
            }
            s.finish(&mut out).unwrap();
            pieces_cover(DUMP, &out);
            assert_eq!(
                show(DUMP, &out),
                [
                    "K:\\restrict abcXYZ123\n",
                    "S:-- a comment\nSET x = 1;",
                    "S:\nCREATE TABLE public.t (\n    a text,\n    begin integer\n);",
                    "C:\nCOPY public.t (a, begin) FROM stdin;|x\\ty\\\\z;\\nw\t1\n\\N\t2\n\\\\.\t3\nCOMMIT;\n",
                    "S:SELECT 1;",
                    "S: SELECT 2;",
                    "K:\n\n\\unrestrict abcXYZ123\n",
                    "K:\n",
                ],
                "chunk {chunk}"
            );
            let lines: Vec<usize> = out
                .iter()
                .filter_map(|p| match p {
                    Piece::Sql { line, .. } | Piece::Copy { line, .. } => Some(*line),
                    Piece::Skip { .. } | Piece::CopyBegin { .. } => None,
                })
                .collect();
            assert_eq!(lines, [3, 4, 8, 14, 14], "chunk {chunk}");
        }
    }

    #[test]
    fn streaming_announces_each_copy_and_never_calls_the_end_marker_data() {
        for chunk in [1, 2, 3, 5, 7, 64, 4096] {
            let mut s = Splitter::streaming("d.sql");
            let mut out = Vec::new();
            // What a streaming executor would have sent as data, from copy_progress.
            let mut sent = String::new();
            let mut begun = None;
            let mut fed = 0;
            for piece in DUMP.as_bytes().chunks(chunk) {
                s.feed(piece, &mut out);
                fed += piece.len() as u64;
                if begun.is_none() {
                    begun = out
                        .iter()
                        .position(|p| matches!(p, Piece::CopyBegin { .. }));
                }
                if let (Some(_), Some((start, safe))) = (begun, s.copy_progress()) {
                    assert!(safe <= fed, "chunk {chunk}");
                    let from = (start as usize).max(sent.len() + start as usize);
                    if safe as usize > from {
                        sent.push_str(&DUMP[from..safe as usize]);
                    }
                }
            }
            s.finish(&mut out).unwrap();
            let begin = out
                .iter()
                .position(|p| matches!(p, Piece::CopyBegin { .. }))
                .expect("CopyBegin");
            let Piece::Copy { stmt, data, .. } = &out[begin + 1] else {
                panic!("chunk {chunk}: {out:?}")
            };
            assert_eq!(
                out[begin],
                Piece::CopyBegin {
                    stmt: stmt.clone(),
                    line: 8
                }
            );
            let data = text(DUMP, data.clone());
            assert!(
                data.starts_with(&sent),
                "chunk {chunk}: {sent:?} vs {data:?}"
            );
            // Bytes may only be sent once they are certainly data.
            assert!(!sent.contains("\\.\n\\."), "chunk {chunk}");
        }
    }

    #[test]
    fn skipped_meta_commands_and_wrappers_are_never_sent() {
        let src = "\u{feff}\\set ON_ERROR_STOP 1\nBEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\n\\unset ON_ERROR_STOP\n";
        for chunk in [1, 2, 3, 5, 64] {
            let mut s = Splitter::new("f.sql");
            let mut out = Vec::new();
            for piece in src.as_bytes().chunks(chunk) {
                s.feed(piece, &mut out);
            }
            s.finish(&mut out).unwrap();
            pieces_cover(src, &out);
            assert_eq!(
                show(src, &out),
                [
                    "K:\u{feff}",
                    "K:\\set ON_ERROR_STOP 1\n",
                    "K:BEGIN;",
                    "S:\nCREATE TABLE t (a int);",
                    "K:\nCOMMIT;",
                    "K:\n\\unset ON_ERROR_STOP\n",
                ],
                "chunk {chunk}"
            );
        }
        // An unbalanced wrapper stops the splitter as lint refuses it.
        let err = split_all("f.sql", b"BEGIN;\nCREATE TABLE t (a int);\n").unwrap_err();
        assert!(err.message.contains("without its COMMIT"), "{err}");
        // A long statement starting with BEGIN's word is no wrapper, and cut as usual.
        let long = format!("END {};\n", "x".repeat(100));
        assert_eq!(split_all("f.sql", long.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn a_file_without_a_final_semicolon_ends_with_its_statement() {
        let src = "SELECT 1;\nSELECT 2 -- no semicolon\n";
        let out = split_all("f.sql", src.as_bytes()).unwrap();
        pieces_cover(src, &out);
        assert_eq!(
            show(src, &out),
            ["S:SELECT 1;", "S:\nSELECT 2 -- no semicolon\n"]
        );
    }

    #[test]
    fn semicolons_inside_parentheses_and_routine_bodies_do_not_cut() {
        let src = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\nCREATE TABLE b (begin int, \"end\" int);\nINSERT INTO b VALUES (1, 2);\n";
        let out = split_all("f.sql", src.as_bytes()).unwrap();
        pieces_cover(src, &out);
        assert_eq!(out.len(), 5, "{:?}", show(src, &out));
        assert!(matches!(out[4], Piece::Skip { .. }));
    }

    #[test]
    fn problems_stop_the_splitter() {
        for (src, what) in [
            ("SELECT 1;\n\\i x.sql\n", "`\\i`"),
            ("COPY t FROM stdin;\n1\n2\n", "no `\\.`"),
            ("COPY t FROM '/etc/passwd';\n", "server"),
            ("COPY t TO STDOUT;\n", "reads data out"),
            ("COPY t FROM stdin; SELECT 1;\n1\n\\.\n", "next line"),
            ("SELECT 'open", "unterminated string"),
            ("\\restrict\n", "key"),
            ("SELECT 1 \\restrict k\n;", "`\\restrict`"),
        ] {
            let err = split_all("f.sql", src.as_bytes()).unwrap_err();
            assert!(err.message.contains(what), "{src:?}: {err}");
        }
    }
}
