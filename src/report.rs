//! One report, two renderers: every command returns a `Serialize` report; human text
//! and the single `--json` document are both made from it.

use serde::Serialize;

/// A command's result, rendered by `main`.
pub use airlock_base::text::{bound, clip, short, MAX_LINE_BYTES};

pub trait Report: erased::ErasedSerialize {
    /// Human text for stdout (without trailing newline handling; main adds one).
    fn human(&self) -> String;
    /// Exit code for a successful run (0, or 3 for BLOCKED, 5 for a failed rehearsal…).
    fn exit_code(&self) -> crate::exit::Exit {
        crate::exit::Exit::Success
    }
    /// The one line `--quiet` prints (none by default: `--quiet` prints only errors).
    fn quiet_line(&self) -> Option<String> {
        None
    }
}

pub type Outcome = Box<dyn Report>;

/// Bytes of one piece of a `--quiet` line (a gate's reason, a check's evidence): text
/// the database supplied stays one bounded line there, as a table cell is bounded.
const QUIET_PIECE: usize = 1024;

/// `text` on one line (line breaks become spaces), at most [`QUIET_PIECE`] bytes.
pub fn one_line(text: &str) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    bound(&flat, QUIET_PIECE).into_owned()
}

pub mod erased {
    //! Object-safe serialization to a JSON value.
    pub trait ErasedSerialize {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> ErasedSerialize for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// Text from the database (or anything else outside airlock) made safe for a terminal:
/// control characters other than newline and tab, and Unicode format characters
/// (bidi overrides and isolates, zero-width marks: [`is_format`]), are shown escaped
/// (`\x1b`, `\u{202e}`), so an ESC sequence or a right-to-left override in a ledger
/// field, a gate reason or a server NOTICE cannot move the cursor, recolour, or make
/// a line read other than it is. Every line is also bounded ([`MAX_LINE_BYTES`], see
/// [`bound`]), so no text makes human output large or slow.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text, false)
}

/// [`terminal_safe`], keeping airlock's own style markers ([`crate::style`]) for
/// `style::render`. Only for text whose plain rendering held no marker.
pub fn terminal_safe_styled(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text, true)
}

/// Unicode format characters (general category Cf): bidi embeddings, overrides,
/// isolates and marks, zero-width spaces and joiners, invisible operators, tags, the
/// byte order mark… Invisible, and some reorder what a terminal shows.
pub fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

fn escape(text: &str, keep_markers: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || c == '\u{2028}'
            || c == '\u{2029}'
            || is_format(c)
            || (!keep_markers && crate::style::is_marker(c))
    };
    let long_line = || text.split('\n').any(|l| l.len() > MAX_LINE_BYTES);
    if !text.chars().any(unsafe_char) && !long_line() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(1 << 20) + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for c in bound(line, MAX_LINE_BYTES).chars() {
            if unsafe_char(c) {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:04x}}}"));
                }
            } else {
                out.push(c);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The JSON document printed for an error.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorDoc {
    pub ok: bool,
    pub exit_code: crate::exit::Exit,
    /// The version of the documents' field names (`schema`'s `JSON_VERSION`).
    pub json_version: u32,
    pub kind: String,
    /// A ledger refusal (`kind` is `refused`): which one. `already-applied` and
    /// `through-applied` mean nothing is left to do; scripts tell them by this field,
    /// never by the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal_kind: Option<crate::db::refusal::RefusalKind>,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Each problem of a source `lint`/`pack` refused, one by one (the same as the
    /// lines of `error`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// `apply` refused for drift: the objects that changed since the previous apply
    /// (as `plan --json` gives them in `drift_changes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<crate::db::drift::DriftChanges>,
    /// A statement of a bundle file failed: where (file, line and column of the error,
    /// where the statement begins, and its first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<crate::db::files::StatementAt>,
    /// The run stopped after part of it committed (an online step failed after the
    /// tiers before it committed, or a tier of a per-tier apply): what this run
    /// changed, which stays, and where its receipt went. Absent: nothing of this run
    /// committed (its transaction was rolled back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<Committed>,
    /// Server notices raised before the error (see `notices` in the other documents).
    #[serde(flatten)]
    pub notices: crate::db::notices::Notices,
    /// What the signed trust store the bundle carries did to this host's store, when
    /// it was applied before the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_update: Option<crate::trust_update::CarriedNote>,
}

/// What a run that stopped part way committed, from its receipt (outcome `partial`).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Committed {
    /// The tiers this run applied and committed, in order (they stay applied).
    pub tiers: Vec<String>,
    /// The online steps this run completed and recorded (each committed on its own).
    pub online_steps: Vec<crate::db::receipt::StepDone>,
    /// The bundle's tiers not applied on the database now: the next apply runs them.
    pub remaining_tiers: Vec<String>,
    /// Where the receipt of what committed was written, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_file: Option<String>,
}

/// One problem of a source: where, when it is a place in a file, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    /// `FILE:LINE: message`, or a message about no line of a file.
    pub fn parse(text: &str) -> Problem {
        let placed = text.split_once(": ").and_then(|(head, message)| {
            let (file, line) = head.rsplit_once(':')?;
            let line = line.parse().ok()?;
            (!file.is_empty() && !file.contains(' ')).then(|| Problem {
                file: Some(file.to_string()),
                line: Some(line),
                message: message.to_string(),
            })
        });
        placed.unwrap_or_else(|| Problem {
            file: None,
            line: None,
            message: text.to_string(),
        })
    }
}

/// Left-aligned text table, at most as wide as the output ([`crate::style::width`]):
/// when the widest cells do not fit, the widest columns are narrowed and their cells
/// wrapped onto continuation lines (at most [`MAX_CELL_LINES`], then cut with `…`).
/// Header cells are bold and verdict cells coloured when colour is on.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    table_in(headers, rows, crate::style::width())
}

/// A wrapped cell longer than this many lines is cut (the JSON keeps it all).
pub const MAX_CELL_LINES: usize = 12;

/// [`table`] for a given width.
pub fn table_in(headers: &[&str], rows: &[Vec<String>], max_width: usize) -> String {
    table_blocks(headers, rows, max_width)
        .into_iter()
        .filter(|b| !b.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Words (identifiers, paths, hashes) up to this many characters are never split: a
/// column narrows no further than its longest, and a line holding one overflows rather
/// than break it. Longer runs (data, not names) may be split.
pub const NO_SPLIT: usize = 200;

/// [`table`] as blocks: the header line, the rule, then one block per row (several
/// lines when its cells wrap), for callers that add lines after each row. A table too
/// wide for `max_width` even with its columns at their longest word is stacked: each
/// row as `header  value` lines, the header and rule blocks empty.
pub fn table_blocks(headers: &[&str], rows: &[Vec<String>], max_width: usize) -> Vec<String> {
    use crate::style::{self, visible_len, Paint};
    let n = headers.len();
    let clean = |c: &str| c.replace(['\n', '\r'], " ");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..n)
                .map(|i| r.get(i).map(|c| clean(c)).unwrap_or_default())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| visible_len(h)).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(visible_len(c));
        }
    }
    // A column narrows no further than its longest word (up to NO_SPLIT), so words
    // are not split; when the table cannot fit so, each row is stacked instead.
    let longest_word = |c: &str| c.split(' ').map(visible_len).max().unwrap_or(0);
    let floor: Vec<usize> = (0..n)
        .map(|i| {
            let words = rows.iter().map(|r| longest_word(&r[i])).max().unwrap_or(0);
            visible_len(headers[i])
                .clamp(3, 12)
                .max(words.min(NO_SPLIT))
        })
        .collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(&widths) > max_width {
        // Narrow the widest column that may still shrink (the later one on a tie).
        let Some(i) = (0..n)
            .filter(|&i| widths[i] > floor[i])
            .max_by_key(|&i| (widths[i], i))
        else {
            break;
        };
        widths[i] -= 1;
    }
    if total(&widths) > max_width {
        return stacked(headers, &rows, max_width);
    }
    let render_row = |cells: Vec<Vec<String>>, paints: Vec<Option<Paint>>| {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut lines = vec![];
        for l in 0..height {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let part = cell.get(l).map(String::as_str).unwrap_or("");
                let shown = match paints[i] {
                    Some(p) => style::paint(p, part),
                    None => part.to_string(),
                };
                s.push_str(&shown);
                if i + 1 < n {
                    s.push_str(&" ".repeat(widths[i].saturating_sub(visible_len(part)) + 2));
                }
            }
            lines.push(s.trim_end().to_string());
        }
        lines.join("\n")
    };
    let mut out = vec![render_row(
        headers.iter().map(|h| vec![h.to_string()]).collect(),
        vec![Some(Paint::Strong); n],
    )];
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    for r in &rows {
        let cells = r
            .iter()
            .enumerate()
            .map(|(i, c)| wrap(c, widths[i]))
            .collect();
        let paints = r.iter().map(|c| style::verdict_paint(c)).collect();
        out.push(render_row(cells, paints));
    }
    out
}

/// The stacked layout of [`table_blocks`]: per row, one `header  value` line per cell
/// (the value wrapped under itself), rows apart by a blank line.
fn stacked(headers: &[&str], rows: &[Vec<String>], max_width: usize) -> Vec<String> {
    use crate::style::{self, visible_len, Paint};
    let label = headers.iter().map(|h| visible_len(h)).max().unwrap_or(0);
    let room = max_width.saturating_sub(label + 2).max(10);
    let mut out = vec![String::new(), String::new()];
    for (k, r) in rows.iter().enumerate() {
        let mut lines = Vec::new();
        if k > 0 {
            lines.push(String::new());
        }
        for (h, cell) in headers.iter().zip(r) {
            let paint = style::verdict_paint(cell);
            for (j, part) in wrap(cell, room).into_iter().enumerate() {
                let head = if j == 0 {
                    style::paint(Paint::Strong, h)
                } else {
                    String::new()
                };
                let pad =
                    " ".repeat(label.saturating_sub(if j == 0 { visible_len(h) } else { 0 }) + 2);
                let shown = match paint {
                    Some(p) => style::paint(p, &part),
                    None => part,
                };
                lines.push(format!("{head}{pad}{shown}").trim_end().to_string());
            }
        }
        out.push(lines.join("\n"));
    }
    out
}

/// Free text fitted to `width`: a line that fits is kept; a longer one is broken at
/// spaces ([`wrap`] without its cut), its continuation lines indented under the
/// line's text (its leading spaces, and a leading `label: ` such as `hint: `). A word
/// is never split (see [`NO_SPLIT`]).
/// Text for stderr: safe for a terminal, and on one wrapped at spaces to its width (an
/// identifier is never split mid-word by the terminal); in a pipe, one line each.
pub fn for_stderr(text: &str) -> String {
    use std::io::IsTerminal;
    let safe = terminal_safe(text);
    if std::io::stderr().is_terminal() {
        wrap_prose(&safe, crate::style::width())
    } else {
        safe.into_owned()
    }
}

pub fn wrap_prose(text: &str, width: usize) -> String {
    let mut out = Vec::new();
    for line in text.split('\n') {
        if crate::style::visible_len(line) <= width {
            out.push(line.to_string());
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        let body = &line[lead..];
        let label = body
            .find(": ")
            .filter(|&i| i <= 12 && !body[..i].contains(' '))
            // Aligned labels (`release:   x`): the continuation lines up with the value.
            .map_or(0, |i| {
                i + 1 + body[i + 1..].len() - body[i + 1..].trim_start().len()
            });
        let indent = " ".repeat(lead + label);
        let room = width.saturating_sub(lead + label).max(20);
        let mut rest = body;
        let mut first = true;
        while !rest.is_empty() {
            let avail = if first {
                width.saturating_sub(lead).max(20)
            } else {
                room
            };
            let (piece, next) = prose_piece(rest, avail);
            out.push(format!(
                "{}{piece}",
                if first {
                    &line[..lead]
                } else {
                    indent.as_str()
                }
            ));
            rest = next;
            first = false;
        }
    }
    out.join("\n")
}

/// The first line of `text` at most `width` visible characters (a longer first word
/// whole), and what follows it.
fn prose_piece(text: &str, width: usize) -> (&str, &str) {
    if crate::style::visible_len(text) <= width {
        return (text, "");
    }
    let mut best = None;
    let mut seen = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' {
            if seen > width {
                break;
            }
            best = Some(i);
        }
        if !crate::style::is_marker(c) {
            seen += 1;
        }
    }
    let cut = best.filter(|&i| i > 0).or_else(|| text.find(' '));
    match cut {
        Some(i) => (&text[..i], text[i..].trim_start_matches(' ')),
        None => (text, ""),
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a word longer than
/// the line stays whole up to [`NO_SPLIT`] characters, beyond that it is split); more than [`MAX_CELL_LINES`] lines are cut, the last
/// line then ending `… (N bytes more)`. Linear in the part shown: it stops at the
/// line after the last one kept, however long `text` is.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    if text.len() <= width || crate::style::visible_len(text) <= width {
        return vec![text.to_string()];
    }
    let mut lines: Vec<String> = vec![];
    let mut line = String::new();
    let mut used = 0; // characters in `line`
    let mut line_end = 0; // byte offset in `text` where `line`'s content ends
    let mut kept_end = 0; // … where the content of `lines` ends
    let mut cut = false;
    let mut start = 0;
    'words: for word in text.split(' ') {
        let word_start = start;
        start += word.len() + 1;
        let mut rest = word;
        let mut rest_start = word_start;
        while !rest.is_empty() {
            let sep = usize::from(used > 0);
            let room = width.saturating_sub(used + sep);
            match rest.char_indices().nth(room) {
                None => {
                    if sep == 1 {
                        line.push(' ');
                    }
                    line.push_str(rest);
                    used += sep + rest.chars().count();
                    line_end = rest_start + rest.len();
                    break;
                }
                Some(_) if used > 0 => {}
                Some(_) if rest.chars().count() <= NO_SPLIT => {
                    // An identifier, path or hash longer than the line: whole, on a
                    // line of its own that overflows.
                    line.push_str(rest);
                    line_end = rest_start + rest.len();
                    rest = "";
                }
                Some((i, _)) => {
                    // A run longer than any name: split it.
                    line.push_str(&rest[..i]);
                    line_end = rest_start + i;
                    rest = &rest[i..];
                    rest_start += i;
                }
            }
            if lines.len() == MAX_CELL_LINES {
                cut = true;
                break 'words;
            }
            lines.push(std::mem::take(&mut line));
            kept_end = line_end;
            used = 0;
        }
    }
    if !cut && (!line.is_empty() || lines.is_empty()) {
        if lines.len() == MAX_CELL_LINES {
            cut = true;
        } else {
            lines.push(line);
            kept_end = text.len();
        }
    }
    if cut {
        // The last kept line makes room for the marker (a narrow column may overflow).
        let last = lines.last_mut().expect("MAX_CELL_LINES lines");
        let more = |shown_end: usize| format!("… ({} bytes more)", text.len() - shown_end);
        let mut keep: Vec<char> = last.chars().collect();
        let mut shown_end = kept_end;
        while !keep.is_empty() && keep.len() + more(shown_end).chars().count() > width {
            let c = keep.pop().expect("not empty");
            shown_end -= c.len_utf8();
        }
        *last = keep.into_iter().collect::<String>() + &more(shown_end);
    }
    lines
}

/// A count as an operator reads it: `10,000,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn problems_are_split_into_file_line_and_message() {
        let p = super::Problem::parse("sql/t.sql:17: VACUUM cannot run inside a transaction block");
        assert_eq!(
            (p.file.as_deref(), p.line, p.message.as_str()),
            (
                Some("sql/t.sql"),
                Some(17),
                "VACUUM cannot run inside a transaction block"
            )
        );
        let p =
            super::Problem::parse("tier \"axis\" (tier.files) names x.sql, which does not exist");
        assert_eq!((p.file, p.line), (None, None));
    }

    #[test]
    fn format_controls_are_escaped_and_long_lines_bounded() {
        let t = super::terminal_safe("a\u{202e}b\u{2066}c\u{200f}d\u{feff}é");
        assert_eq!(t, "a\\u{202e}b\\u{2066}c\\u{200f}d\\u{feff}é");
        let long = format!("head\n{}\ntail", "é".repeat(10_000));
        let t = super::terminal_safe(&long);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "head");
        assert!(
            lines[1].len() < super::MAX_LINE_BYTES + 40,
            "{}",
            lines[1].len()
        );
        assert!(
            lines[1].ends_with("… (15904 bytes more)"),
            "{}",
            &lines[1][4000..]
        );
        assert_eq!(lines[2], "tail");
        assert_eq!(super::bound("short", 10), "short");
    }

    #[test]
    fn clip_cuts_at_a_word_and_says_so() {
        assert_eq!(super::clip("short enough", 20), "short enough");
        let c = super::clip(
            "every tier of one-roof-phase1 is already applied (ledger seq 1)",
            40,
        );
        assert!(c.chars().count() <= 40, "{c}");
        assert!(c.ends_with('…') && !c.contains("(l…"), "{c}");
    }

    #[test]
    fn a_table_with_a_long_detail_fits_the_width_by_wrapping() {
        let detail = "exit fingerprint 0123456789abcdef differs from entry ".repeat(20);
        let rows = vec![
            vec!["rollback".to_string(), "FAIL".to_string(), detail.clone()],
            vec!["apply".to_string(), "ok".to_string(), "short".to_string()],
        ];
        let t = super::table_in(&["step", "verdict", "detail"], &rows, 80);
        for line in t.lines() {
            assert!(line.chars().count() <= 80, "{} wide: {line}", line.len());
        }
        let shown: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(shown.contains("exit fingerprint 0123456789abcdef"), "{t}");
        assert!(t.lines().count() > 4, "the detail was not wrapped:\n{t}");
        assert!(t.contains("apply     ok"), "{t}");
    }

    #[test]
    fn a_table_too_narrow_for_its_words_is_stacked_and_splits_no_word() {
        let rows = vec![
            vec![
                "one-roof-phase1".to_string(),
                "structure".to_string(),
                "BLOCKED".to_string(),
                "PostgreSQL can only clone a database nobody is connected to: ask them to disconnect".to_string(),
            ],
            vec!["x".into(), "y".into(), "READY".into(), "fine".into()],
        ];
        let headers = ["bundle", "tier", "verdict", "detail"];
        let t = super::table_in(&headers, &rows, 40);
        for line in t.lines() {
            assert!(
                line.chars().count() <= 40,
                "{} wide: {line}\n{t}",
                line.chars().count()
            );
        }
        for word in ["one-roof-phase1", "BLOCKED", "PostgreSQL", "disconnect"] {
            assert!(t.contains(word), "{word} was split:\n{t}");
        }
        assert!(t.starts_with("bundle   one-roof-phase1"), "{t}");
        assert!(
            t.contains("\n\nbundle   x"),
            "rows apart by a blank line:\n{t}"
        );
        // Wide enough, it is a table whose words stay whole too.
        let t = super::table_in(&headers, &rows, 80);
        assert!(t.starts_with("bundle"), "{t}");
        assert!(t.lines().nth(1).unwrap().starts_with("---"), "{t}");
        for word in ["one-roof-phase1", "BLOCKED", "PostgreSQL"] {
            assert!(t.contains(word), "{word} was split:\n{t}");
        }
    }

    #[test]
    fn table_blocks_hold_one_block_per_row_however_it_wraps() {
        let rows = vec![
            vec!["a".to_string(), "word ".repeat(30)],
            vec!["b".to_string(), "short".to_string()],
        ];
        let blocks = super::table_blocks(&["k", "detail"], &rows, 40);
        assert_eq!(blocks.len(), 4, "{blocks:#?}");
        assert!(blocks[2].starts_with("a ") && blocks[2].lines().count() > 1);
        assert!(blocks[3].starts_with("b ") && blocks[3].lines().count() == 1);
    }

    #[test]
    fn wrapping_keeps_names_whole_splits_only_runs_longer_than_any_and_cuts_long_cells() {
        let hash = "ab12".repeat(16);
        assert_eq!(
            super::wrap(&format!("sha256 {hash} ok"), 20),
            vec!["sha256", hash.as_str(), "ok"]
        );
        let run = "y".repeat(super::NO_SPLIT + 1);
        assert!(super::wrap(&run, 100).len() > 1);
        let many = super::wrap(&"word ".repeat(400), 10);
        assert_eq!(many.len(), super::MAX_CELL_LINES);
        assert!(many.last().unwrap().ends_with(" bytes more)"), "{many:?}");
        // What is shown plus what the marker counts is the whole text.
        let text = "x".repeat(1000);
        let w = super::wrap(&text, 40);
        let last = w.last().unwrap();
        let shown: usize = w.iter().map(|l| l.split('…').next().unwrap().len()).sum();
        let more: usize = last
            .split(" (")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(shown + more, 1000, "{w:?}");
        assert_eq!(super::wrap("ab cd", 2), vec!["ab", "cd"]);
    }

    #[test]
    fn prose_wraps_at_spaces_under_its_label_and_splits_no_word() {
        let path = "/var/lib/airlock/bundles/one-roof-phase1-2026.06.03.airlock.tar.gz";
        let text = format!("short line\nhint: run airlock verify {path} --trust keys/ and then look at the table it prints");
        let w = super::wrap_prose(&text, 60);
        let lines: Vec<&str> = w.lines().collect();
        assert_eq!(lines[0], "short line");
        assert!(lines[1].starts_with("hint: run airlock verify"), "{w}");
        assert!(lines[2..].iter().all(|l| l.starts_with("      ")), "{w}");
        assert!(w.contains(path), "the path was split:\n{w}");
        for l in &lines {
            assert!(l.chars().count() <= 60 || l.trim() == path, "{l}");
        }
    }

    #[test]
    fn an_aligned_label_keeps_its_column_on_the_next_line() {
        let w = super::wrap_prose("  release:   a_long_release_name 1.0 (sequence 1)", 40);
        assert_eq!(
            w,
            "  release:   a_long_release_name 1.0\n             (sequence 1)"
        );
    }
}
