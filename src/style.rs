//! Colour and width for human output on a terminal.
//!
//! Renderers never write escape sequences: they wrap words in private-use marker
//! characters ([`paint`]), and `main` turns the markers into SGR colour codes (or drops
//! them) after `report::terminal_safe` has escaped everything else.
//!
//! Invariant: a colour on the screen always comes from airlock, never from text it
//! shows (a gate reason, a ledger field, a NOTICE). `main` renders a report once
//! without markers; if that text already holds a marker character it came from
//! outside, and the report is shown without colour, every such character escaped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static ON: AtomicBool = AtomicBool::new(false);
static WIDTH: AtomicUsize = AtomicUsize::new(DEFAULT_WIDTH);

/// Table width when stdout is not a terminal (a pipe, a file) and COLUMNS is unset.
pub const DEFAULT_WIDTH: usize = 120;
/// Narrower than this, tables are laid out as if the terminal were this wide.
pub const MIN_WIDTH: usize = 40;

const START: char = '\u{E000}';
const END: char = '\u{E00F}';

/// A colour by meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    /// READY, PASS, VERIFIED, ok: green.
    Good,
    /// BLOCKED, FAIL, MISMATCH: red.
    Bad,
    /// UNVERIFIED, warnings: yellow.
    Warn,
    /// Table headers: bold.
    Strong,
}

impl Paint {
    fn marker(self) -> char {
        match self {
            Paint::Good => '\u{E001}',
            Paint::Bad => '\u{E002}',
            Paint::Warn => '\u{E003}',
            Paint::Strong => '\u{E004}',
        }
    }
    fn sgr(marker: char) -> Option<&'static str> {
        match marker {
            '\u{E001}' => Some("\x1b[1;32m"),
            '\u{E002}' => Some("\x1b[1;31m"),
            '\u{E003}' => Some("\x1b[1;33m"),
            '\u{E004}' => Some("\x1b[1m"),
            _ => None,
        }
    }
}

/// `--color`'s choices.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Whether `--color` (with `NO_COLOR` and stdout being a terminal) asks for colour:
/// `always` and `never` are obeyed; `auto` colours only a terminal, and not when
/// `NO_COLOR` is set to anything non-empty (<https://no-color.org>).
pub fn wanted(choice: Color, stdout_is_terminal: bool, no_color: bool) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => stdout_is_terminal && !no_color,
    }
}

/// `NO_COLOR` is set and not empty.
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Renderers emit markers from now on (`main` only, after the plain rendering).
pub fn set_markers(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// `text` marked to be shown in `paint` (unchanged while markers are off).
pub fn paint(paint: Paint, text: &str) -> String {
    if !ON.load(Ordering::Relaxed) || text.is_empty() {
        return text.to_string();
    }
    format!("{START}{}{text}{END}", paint.marker())
}

/// The colour a verdict word is shown in, if it is one.
pub fn verdict_paint(word: &str) -> Option<Paint> {
    match word {
        "READY" | "GO" | "PASS" | "VERIFIED" | "APPLIED" | "ROLLED BACK" | "OK" | "ok" | "held" => {
            Some(Paint::Good)
        }
        "BLOCKED" | "NO-GO" | "FAIL" | "FAILED" | "MISMATCH" | "BROKEN" | "LOST" | "REFUSED"
        | "lost" => Some(Paint::Bad),
        "UNVERIFIED" | "WARN" | "SKIPPED" | "CANNOT TELL" | "partially-applied" => {
            Some(Paint::Warn)
        }
        _ => None,
    }
}

/// A verdict word, painted by its meaning (other text unchanged).
pub fn verdict(word: &str) -> String {
    match verdict_paint(word) {
        Some(p) => paint(p, word),
        None => word.to_string(),
    }
}

/// Is `c` one of the style markers?
pub fn is_marker(c: char) -> bool {
    (START..=END).contains(&c)
}

/// Characters a reader sees (markers take no room).
pub fn visible_len(text: &str) -> usize {
    text.chars().filter(|c| !is_marker(*c)).count()
}

/// Markers to SGR codes (`colour`), or markers removed.
pub fn render(text: &str, colour: bool) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c == START {
            continue;
        }
        if c == END {
            if colour {
                out.push_str("\x1b[0m");
            }
        } else if is_marker(c) {
            if let (true, Some(code)) = (colour, Paint::sgr(c)) {
                out.push_str(code);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The width tables must fit in: the terminal's columns when stdout is a terminal,
/// else `COLUMNS` if set, else [`DEFAULT_WIDTH`]. Decided once by `main`.
pub fn detect_width() -> usize {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    let w = terminal_columns().or(from_env).unwrap_or(DEFAULT_WIDTH);
    w.max(MIN_WIDTH)
}

#[allow(unsafe_code)] // ioctl(2), libc
fn terminal_columns() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a winsize on success; on failure nothing is read.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            Some(ws.ws_col as usize)
        } else {
            None
        }
    }
}

pub fn set_width(width: usize) {
    WIDTH.store(width.max(MIN_WIDTH), Ordering::Relaxed);
}

/// The width tables are laid out in.
pub fn width() -> usize {
    WIDTH.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Color;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        assert!(wanted(Color::Auto, true, false));
        assert!(!wanted(Color::Auto, false, false));
        assert!(!wanted(Color::Auto, true, true));
        assert!(wanted(Color::Always, false, true));
        assert!(!wanted(Color::Never, true, false));
    }

    #[test]
    fn markers_become_sgr_codes_or_vanish() {
        let marked = format!("{START}{}READY{END} now", Paint::Good.marker());
        assert_eq!(render(&marked, false), "READY now");
        assert_eq!(render(&marked, true), "\x1b[1;32mREADY\x1b[0m now");
        assert_eq!(visible_len(&marked), "READY now".len());
    }
}
