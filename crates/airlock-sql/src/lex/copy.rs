//! COPY in tier files: which COPY statements airlock accepts, and where the inline
//! data of `COPY … FROM STDIN;` ends.
//!
//! psql sends `COPY … FROM STDIN` to the server, then reads the data from the next
//! line of the script, line by line, until a line that is exactly `\.` (with `\n` or
//! `\r\n`) or the end of the file; the data is never read as SQL. psql 15–18 stop at
//! such a line even inside a quoted CSV field, and so does this scanner (the server
//! then reports the unterminated field). The data is sent without the `\.` line.
//!
//! Invariant: only `COPY … FROM STDIN` in text or CSV format is accepted. A server
//! file (`FROM 'file'`), a program (`FROM PROGRAM`), `COPY … TO` anything and binary
//! format are refused: a release's data travels inside the signed bundle, and nothing
//! is read out.

use super::tokens::{tokenize, Tok};

#[derive(Debug, PartialEq, Eq)]
pub(super) enum CopyVerdict {
    /// `COPY … FROM STDIN` in text or CSV format: the data follows.
    FromStdin,
    /// Any other COPY, with the reason.
    Refused(String),
}

/// Judge one COPY statement's text (from `COPY` to before its `;`).
pub(super) fn judge(sql: &str) -> CopyVerdict {
    let refuse = |why: &str| CopyVerdict::Refused(why.to_string());
    let Ok(toks) = tokenize(sql, 1) else {
        return refuse("cannot read this COPY statement");
    };
    let mut depth = 0i64;
    let mut direction = None;
    for (i, t) in toks.iter().enumerate() {
        match &t.tok {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth -= 1,
            Tok::Word(w) if depth == 0 && (w == "FROM" || w == "TO") => {
                direction = Some((w.as_str(), i));
                break;
            }
            _ => {}
        }
    }
    let Some((direction, at)) = direction else {
        return refuse("cannot tell where this COPY reads from (no FROM)");
    };
    if direction == "TO" {
        return refuse("COPY … TO reads data out (to a server file, a program or the client); a release only brings data in: use COPY … FROM STDIN with the rows inline");
    }
    let source = toks.get(at + 1);
    match source.map(|t| &t.tok) {
        Some(Tok::Word(w)) if w == "STDIN" => {}
        Some(Tok::Word(w)) if w == "PROGRAM" => {
            return refuse("COPY … FROM PROGRAM runs a program on the database server; a release's data must travel inside the signed bundle: use COPY … FROM STDIN with the rows inline");
        }
        Some(Tok::Str) => {
            return refuse("COPY … FROM 'file' reads a file on the database server, which the signature does not cover; use COPY … FROM STDIN with the rows inline");
        }
        _ => {
            return refuse(
                "COPY … FROM accepts only STDIN here (the rows inline after the statement)",
            )
        }
    }
    // `COPY BINARY t`, `WITH BINARY`, `(FORMAT binary)`, `(FORMAT 'binary')`,
    // `(FORMAT "binary")`: BINARY is reserved enough never to be a column name.
    let binary = toks.iter().enumerate().any(|(i, t)| match &t.tok {
        Tok::Word(w) => w == "BINARY",
        Tok::Quoted(q) => i > at && q.eq_ignore_ascii_case("binary"),
        Tok::Str => i > at && sql[t.start..t.end].to_ascii_lowercase().contains("binary"),
        _ => false,
    });
    if binary {
        return refuse("COPY in binary format: its data is not lines of text that a script can carry; dump with the default text format (or CSV)");
    }
    CopyVerdict::FromStdin
}

/// Reading the data lines of one COPY.
#[derive(Debug)]
pub(super) struct DataScan {
    /// Offset of the first data byte.
    pub start: u64,
    at_line_start: bool,
    marker: Marker,
    /// Offset of the `\` of a line that may be the end marker.
    marker_at: u64,
}

/// How much of an end-marker line has been seen at the start of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    None,
    Backslash,
    Dot,
    DotCr,
}

/// The end of the data: `data_end` (the `\.` line's start) and `end` (after it).
#[derive(Debug, Clone, Copy)]
pub(super) struct DataEnd {
    pub data_end: u64,
    pub end: u64,
}

pub(super) struct Scanned {
    pub consumed: usize,
    pub newlines: usize,
    pub done: Option<DataEnd>,
}

impl DataScan {
    pub(super) fn new(start: u64) -> Self {
        DataScan {
            start,
            at_line_start: true,
            marker: Marker::None,
            marker_at: start,
        }
    }

    /// Scan `bytes`, which start at file offset `offset`, up to the end of the data.
    pub(super) fn scan(&mut self, bytes: &[u8], offset: u64) -> Scanned {
        let mut i = 0;
        let mut newlines = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.marker {
                Marker::None if !self.at_line_start => match memchr::memchr(b'\n', &bytes[i..]) {
                    Some(n) => {
                        i += n + 1;
                        newlines += 1;
                        self.at_line_start = true;
                    }
                    None => i = bytes.len(),
                },
                Marker::None => {
                    if b == b'\\' {
                        self.marker = Marker::Backslash;
                        self.marker_at = offset + i as u64;
                        i += 1;
                    } else {
                        self.at_line_start = false;
                    }
                }
                Marker::Backslash if b == b'.' => {
                    self.marker = Marker::Dot;
                    i += 1;
                }
                Marker::Dot | Marker::DotCr if b == b'\n' => {
                    return Scanned {
                        consumed: i + 1,
                        newlines: newlines + 1,
                        done: Some(DataEnd {
                            data_end: self.marker_at,
                            end: offset + i as u64 + 1,
                        }),
                    };
                }
                Marker::Dot if b == b'\r' => {
                    self.marker = Marker::DotCr;
                    i += 1;
                }
                // Not the marker: an ordinary line (this byte is read as data).
                _ => {
                    self.marker = Marker::None;
                    self.at_line_start = false;
                }
            }
        }
        Scanned {
            consumed: i,
            newlines,
            done: None,
        }
    }

    /// Where the bytes certainly data end, the scan having reached `offset`: all of
    /// them, or up to the start of a line that may yet be the `\.` marker.
    pub(super) fn safe_end(&self, offset: u64) -> u64 {
        match self.marker {
            Marker::None => offset,
            _ => self.marker_at,
        }
    }

    /// The end of the file at `offset`: a last line `\.` without its newline ends the
    /// data too (the server takes it as the end marker); anything else is unterminated.
    pub(super) fn finish(&self, offset: u64) -> Option<DataEnd> {
        (self.marker == Marker::Dot).then_some(DataEnd {
            data_end: self.marker_at,
            end: offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_copy_from_stdin_in_text_or_csv_is_accepted() {
        for ok in [
            "COPY public.t (a, begin) FROM stdin",
            "COPY t FROM STDIN WITH (FORMAT csv, HEADER true)",
            "copy \"from\" (\"to\") from stdin csv header",
            "COPY t FROM STDIN WITH DELIMITER ',' NULL ''",
            "COPY t (binary_data) FROM stdin",
            "COPY t FROM stdin WHERE a > 1",
        ] {
            assert_eq!(judge(ok), CopyVerdict::FromStdin, "{ok}");
        }
        for (bad, why) in [
            ("COPY t FROM '/etc/passwd'", "server"),
            ("COPY t FROM PROGRAM 'id'", "PROGRAM"),
            ("COPY t TO STDOUT", "reads data out"),
            ("COPY (SELECT 1) TO '/tmp/x'", "reads data out"),
            ("COPY t FROM STDIN WITH (FORMAT binary)", "binary"),
            ("COPY t FROM STDIN (FORMAT 'Binary')", "binary"),
            ("COPY t FROM STDIN (FORMAT \"binary\")", "binary"),
            ("COPY BINARY t FROM STDIN", "binary"),
            ("COPY t FROM STDIN BINARY", "binary"),
            ("COPY t FROM STDOUT", "only STDIN"),
        ] {
            match judge(bad) {
                CopyVerdict::Refused(m) => assert!(m.contains(why), "{bad}: {m}"),
                v => panic!("{bad}: {v:?}"),
            }
        }
    }

    fn scan_all(data: &[u8], chunk: usize) -> (Option<DataEnd>, usize, usize) {
        let mut s = DataScan::new(0);
        let mut at = 0;
        let mut lines = 0;
        for piece in data.chunks(chunk) {
            let r = s.scan(piece, at as u64);
            lines += r.newlines;
            at += r.consumed;
            if r.done.is_some() {
                return (r.done, at, lines);
            }
        }
        (s.finish(at as u64), at, lines)
    }

    #[test]
    fn the_data_ends_at_a_line_that_is_exactly_backslash_dot() {
        let data = b"a\t\\.\n\\.x\n \\.\n\\\\.\n\\.\r\nrest";
        for chunk in 1..8 {
            let (done, at, lines) = scan_all(data, chunk);
            let done = done.unwrap();
            assert_eq!(done.data_end, 17, "chunk {chunk}");
            assert_eq!(done.end, 21);
            assert_eq!(at, 21);
            assert_eq!(lines, 5);
        }
        let (done, _, _) = scan_all(b"1\n\\.", 3);
        assert_eq!(done.map(|d| (d.data_end, d.end)), Some((2, 4)));
        assert!(scan_all(b"1\n2\n", 3).0.is_none());
        assert!(scan_all(b"1\n\\.\r", 3).0.is_none());
    }
}
