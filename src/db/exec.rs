//! Running one bundle file (a tier or rollback file) on the target, from its verified
//! bytes.
//!
//! A small file without COPY data is one simple-query message, the prelude first, so
//! the server parses all of it before running any of it and the file costs one round
//! trip. A large file streams through the lint lexer's [`Splitter`]: consecutive
//! statements are coalesced into messages of about [`ExecLimits::message_bytes`], cut
//! at statement boundaries; each `COPY … FROM stdin` runs through the COPY protocol,
//! its data lines sent in chunks straight from the verified bytes; `\restrict` /
//! `\unrestrict` lines (pg_dump's) are not sent (airlock runs no meta-commands).
//!
//! Invariant: the server receives the file's verified bytes, in order, each statement
//! exactly once, with nothing of it before the prelude; memory stays bounded by the
//! message size (or the largest single statement), whatever the file's size.
//!
//! [`ExecLimits::message_bytes`]: crate::verified::ExecLimits::message_bytes

use crate::sql_lint::{Piece, Splitter};
use crate::verified::Payload;
use postgres::Transaction;
use std::io::{self, Write};

/// Bytes read from the verified file per step (lexing and COPY data).
const CHUNK: usize = 1 << 20;

/// Why a file did not run, and where in it.
#[derive(Debug)]
pub enum FileError {
    /// The server refused a statement; `line` is the file's line when it can be told
    /// (the statement's, or the server's error position).
    Sql {
        line: Option<u64>,
        error: postgres::Error,
    },
    /// Reading the verified bytes back, or bytes that are not UTF-8 text.
    Read(String),
}

/// What [`run_file`] reports as it goes: bytes of the file done so far, of `total`
/// (a hook for progress display).
pub type Observer<'a> = &'a mut dyn FnMut(u64, u64);

/// Run one file behind `prelude` inside `tx`.
pub fn run_file(
    tx: &mut Transaction<'_>,
    prelude: &str,
    file: &str,
    payload: Payload<'_>,
    message_bytes: usize,
    observe: Observer<'_>,
) -> Result<(), FileError> {
    let mut run = Run {
        tx,
        payload,
        message: Message::new(prelude),
        message_bytes,
        cursor: 0,
        cursor_line: 1,
    };
    let total = payload.len();
    let mut splitter = Splitter::new(file);
    let mut pieces = Vec::new();
    let mut buf = vec![0u8; CHUNK.min(total as usize).max(1)];
    let mut pos = 0u64;
    while pos < total {
        let n = payload.read_at(pos, &mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        splitter.feed(&buf[..n], &mut pieces);
        pos += n as u64;
        for piece in pieces.drain(..) {
            run.piece(piece)?;
        }
        observe(run.cursor, total);
    }
    let finished = splitter.finish(&mut pieces);
    for piece in pieces.drain(..) {
        run.piece(piece)?;
    }
    // The re-check at verification refused any problem; should one appear here all
    // the same, the transaction fails before COMMIT.
    finished.map_err(|p| FileError::Read(p.to_string()))?;
    // Whatever follows the last statement (comments, blank lines) rides along.
    run.take_to(total)?;
    run.flush()?;
    observe(total, total);
    Ok(())
}

fn read_err(e: io::Error) -> FileError {
    FileError::Read(format!("reading the verified bytes back: {e}"))
}

/// One simple-query message being built: the prelude (until sent once), then slices
/// of the file, remembered so that a server error position maps to a file line.
struct Message {
    text: Vec<u8>,
    prelude_pending: bool,
    /// (offset in `text`, file line at that offset), one per slice of the file.
    slices: Vec<(usize, u64)>,
    /// Statements in the message, and the line of the first one.
    statements: usize,
    first_line: u64,
}

impl Message {
    fn new(prelude: &str) -> Message {
        Message {
            text: prelude.as_bytes().to_vec(),
            prelude_pending: true,
            slices: vec![],
            statements: 0,
            first_line: 0,
        }
    }

    fn clear(&mut self) {
        self.text.clear();
        self.slices.clear();
        self.statements = 0;
    }

    /// Bytes of file text in the message (the prelude not counted, so a file up to
    /// the message size is always one message).
    fn file_bytes(&self) -> usize {
        self.slices
            .first()
            .map_or(0, |&(at, _)| self.text.len() - at)
    }

    /// Holds file text (not just the prelude, or nothing).
    fn has_file_text(&self) -> bool {
        self.slices.iter().any(|&(at, _)| at < self.text.len())
    }

    /// The file line of the message's character `position` (1-based, as the server
    /// counts in an error), if it falls in file text.
    fn line_at(&self, position: usize) -> Option<u64> {
        let text = std::str::from_utf8(&self.text).ok()?;
        let byte = text.char_indices().nth(position.checked_sub(1)?)?.0;
        let &(at, line) = self.slices.iter().rev().find(|&&(at, _)| at <= byte)?;
        Some(line + bytecount(&self.text[at..byte]))
    }
}

fn bytecount(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

struct Run<'t, 'c, 'p> {
    tx: &'t mut Transaction<'c>,
    payload: Payload<'p>,
    message: Message,
    message_bytes: usize,
    /// Everything before this offset of the file is in a message or was handled.
    cursor: u64,
    cursor_line: u64,
}

impl Run<'_, '_, '_> {
    fn piece(&mut self, piece: Piece) -> Result<(), FileError> {
        match piece {
            Piece::Sql { end, line, .. } => {
                self.take_to(end)?;
                if self.message.statements == 0 {
                    self.message.first_line = line as u64;
                }
                self.message.statements += 1;
                if self.message.file_bytes() >= self.message_bytes {
                    self.flush()?;
                }
            }
            Piece::Skip { start, end } => {
                self.take_to(start)?;
                self.pass_over(end)?;
            }
            Piece::Copy {
                stmt,
                data,
                end,
                line,
            } => {
                // The statements before the COPY (and the prelude) go first.
                self.take_to(stmt.start)?;
                self.flush()?;
                let line = line as u64;
                let mut query = Vec::new();
                self.payload
                    .append_range(stmt.start, stmt.end, &mut query)
                    .map_err(read_err)?;
                self.pass_over(data.start)?;
                let query = String::from_utf8(query)
                    .map_err(|_| FileError::Read(format!("line {line}: not UTF-8")))?;
                self.copy(&query, data.start, data.end, line)?;
                self.pass_over(end)?;
            }
        }
        Ok(())
    }

    /// Stream `from..to` of the file as the data of the COPY `query`.
    /// `line` is the COPY statement's line in the file.
    fn copy(&mut self, query: &str, from: u64, to: u64, line: u64) -> Result<(), FileError> {
        let sql = |error| FileError::Sql {
            line: Some(line),
            error,
        };
        let mut writer = self.tx.copy_in(query).map_err(sql)?;
        let mut buf = vec![0u8; CHUNK.min((to - from) as usize).max(1)];
        let mut pos = from;
        let mut lines = 0;
        while pos < to {
            let want = ((to - pos) as usize).min(buf.len());
            // A failed read drops the writer unfinished, which aborts the COPY
            // (CopyFail): the transaction fails and rolls back.
            let n = self
                .payload
                .read_at(pos, &mut buf[..want])
                .map_err(read_err)?;
            if n == 0 {
                return Err(FileError::Read("the verified bytes ended early".into()));
            }
            if writer.write_all(&buf[..n]).is_err() {
                // The server ended the COPY (an error in the data): `finish` says why.
                break;
            }
            lines += bytecount(&buf[..n]);
            pos += n as u64;
        }
        writer.finish().map_err(sql)?;
        self.cursor = to;
        self.cursor_line += lines;
        Ok(())
    }

    /// Append the file up to `to` to the message.
    fn take_to(&mut self, to: u64) -> Result<(), FileError> {
        if to <= self.cursor {
            return Ok(());
        }
        let at = self.message.text.len();
        self.message.slices.push((at, self.cursor_line));
        self.payload
            .append_range(self.cursor, to, &mut self.message.text)
            .map_err(read_err)?;
        self.cursor_line += bytecount(&self.message.text[at..]);
        self.cursor = to;
        Ok(())
    }

    /// Move past `to` without sending (a COPY's data, a meta-command line).
    fn pass_over(&mut self, to: u64) -> Result<(), FileError> {
        let mut buf = vec![0u8; CHUNK.min((to.saturating_sub(self.cursor)) as usize)];
        while self.cursor < to {
            let want = ((to - self.cursor) as usize).min(buf.len());
            let n = self
                .payload
                .read_at(self.cursor, &mut buf[..want])
                .map_err(read_err)?;
            if n == 0 {
                break;
            }
            self.cursor_line += bytecount(&buf[..n]);
            self.cursor += n as u64;
        }
        Ok(())
    }

    /// Send the message built so far, if it holds any file text. The prelude stays
    /// pending until it can ride with the file's first statements; before a COPY it
    /// goes alone.
    fn flush(&mut self) -> Result<(), FileError> {
        if !self.message.has_file_text() && !self.message.prelude_pending {
            self.message.clear();
            return Ok(());
        }
        let text = std::str::from_utf8(&self.message.text)
            .map_err(|_| FileError::Read("not UTF-8".into()))?;
        if let Err(error) = self.tx.batch_execute(text) {
            let line = error
                .as_db_error()
                .and_then(|d| match d.position() {
                    Some(postgres::error::ErrorPosition::Original(p)) => {
                        self.message.line_at(*p as usize)
                    }
                    _ => None,
                })
                // No position (an error while running): the line is known when the
                // message held one statement.
                .or((self.message.statements == 1).then_some(self.message.first_line));
            return Err(FileError::Sql { line, error });
        }
        self.message.clear();
        self.message.prelude_pending = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_position_maps_to_the_file_line_past_the_prelude_and_multibyte_text() {
        let mut m = Message::new("SET LOCAL x TO 'é'; ");
        // The file from its line 7: two statements, the second on line 9.
        let at = m.text.len();
        m.slices.push((at, 7));
        m.text
            .extend_from_slice("SELECT 'ü';\n\nSELECT nosuch;\n".as_bytes());
        let chars_before = std::str::from_utf8(&m.text[..m.text.len() - "nosuch;\n".len()])
            .unwrap()
            .chars()
            .count();
        assert_eq!(m.line_at(chars_before + 1), Some(9));
        assert_eq!(
            m.line_at(1),
            None,
            "a position in the prelude is no file line"
        );
        assert_eq!(m.file_bytes(), "SELECT 'ü';\n\nSELECT nosuch;\n".len());
    }
}
