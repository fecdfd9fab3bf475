//! One report, two renderers: every command returns a `Serialize` report; human text
//! and the single `--json` document are both made from it.

use serde::Serialize;

/// A command's result, rendered by `main`.
pub trait Report: erased::ErasedSerialize {
    /// Human text for stdout (without trailing newline handling; main adds one).
    fn human(&self) -> String;
    /// Exit code for a successful run (0, or 3 for BLOCKED, 5 for a failed rehearsal…).
    fn exit_code(&self) -> u8 {
        0
    }
}

pub type Outcome = Box<dyn Report>;

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
/// control characters other than newline and tab are shown escaped (`\x1b`), so an
/// ESC sequence in a ledger field, a gate reason or a server NOTICE cannot move the
/// cursor, recolour or rewrite what the operator sees.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| (c.is_control() && c != '\n' && c != '\t') || c == '\u{2028}' || c == '\u{2029}';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
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
    std::borrow::Cow::Owned(out)
}

/// The JSON document printed for an error.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorDoc {
    pub ok: bool,
    pub exit_code: u8,
    pub kind: String,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Left-aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.push(line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for r in rows {
        out.push(line(r.clone()));
    }
    out.join("\n")
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

#[cfg(test)]
mod tests {
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
}
