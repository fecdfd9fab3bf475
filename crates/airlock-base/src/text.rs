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
