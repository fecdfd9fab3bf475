//! Small text helpers for every layer: a short form of a hex id, text bounded to a
//! number of bytes (database-supplied text in human output), text clipped to a
//! number of characters at a word.
//!
//! Invariant: pure functions of their arguments; they never panic on any UTF-8 input
//! (cuts fall on character boundaries).

/// The most bytes of one line of human output, and of one piece of database-supplied
/// text (a gate reason, a probe value, a notice) in a human message. The `--json`
/// documents keep such text whole: a program reads them, in linear time, and the
/// whole text is the evidence.
pub const MAX_LINE_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes (at a character boundary), followed by
/// `… (N bytes more)` when anything was cut.
pub fn bound(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}… ({} bytes more)",
        &text[..end],
        text.len() - end
    ))
}

/// At most `max` characters, cut at a word boundary and marked with an ellipsis.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let end = cut.rfind(' ').filter(|&i| i > max / 2).unwrap_or(cut.len());
    format!("{}…", cut[..end].trim_end_matches([',', ';', ':', ' ']))
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// A name from outside airlock (a file name, a change name) on one line: every
/// control character shown escaped (`\n`, `\r`, `\t`, `\x1b`…), so a name holding a
/// newline cannot start a line of its own in a report (a forged "not brought over:"
/// line) and an escape sequence cannot reach the terminal. Whole human output is made
/// terminal-safe after this; this is what keeps a name to its one line.
pub fn one_line_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` as one word of a shell command: as it is when the shell reads it so, else in
/// single quotes.
pub fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:+=@%,~".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_stays_on_its_line() {
        assert_eq!(super::one_line_name("a.sql"), "a.sql");
        assert_eq!(
            super::one_line_name("a\nb\r\t\u{1b}[2J\u{85}"),
            "a\\nb\\r\\t\\x1b[2J\\x85"
        );
    }
}
