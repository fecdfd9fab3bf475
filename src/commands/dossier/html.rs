//! Text into HTML, safely: the one way text from outside airlock (the bundle's SQL,
//! names and runbooks, a database's answers, a rehearsal or receipt file) reaches the
//! dossier page.
//!
//! Invariant: [`esc`] output holds no markup of its own making except the visible
//! escapes of invisible characters (`<span class="ctl">\u{202e}</span>`): every `<`,
//! `>`, `&`, `"` and `'` of the input is an entity, so no tag, attribute or entity of
//! the input survives; control characters other than newline and tab, and Unicode
//! format characters (bidi overrides and isolates, zero-width marks), are shown as
//! their escape, so nothing reorders or hides what the page says. Text from outside is
//! never put in an attribute.

use std::fmt::Write;

/// Characters shown as their escape instead of themselves.
fn invisible(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || c == '\u{2028}'
        || c == '\u{2029}'
        || crate::report::is_format(c)
}

/// `text` as HTML text content.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    push_esc(&mut out, text);
    out
}

/// [`esc`] with invisible characters as their bare escape, no element: for SVG text,
/// where an HTML `<span>` would end the SVG.
pub(crate) fn esc_svg(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    escape_into(&mut out, text, false);
    out
}

/// [`esc`], appended to `out`.
pub(crate) fn push_esc(out: &mut String, text: &str) {
    escape_into(out, text, true);
}

/// The escaping itself; `marked`: invisible characters' escapes in a `ctl` span.
fn escape_into(out: &mut String, text: &str, marked: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if invisible(c) => {
                let n = c as u32;
                let shown = if n <= 0xff {
                    format!("\\x{n:02x}")
                } else {
                    format!("\\u{{{n:04x}}}")
                };
                if marked {
                    let _ = write!(out, "<span class=\"ctl\">{shown}</span>");
                } else {
                    out.push_str(&shown);
                }
            }
            c => out.push(c),
        }
    }
}

/// `text` escaped, cut at `max` bytes (at a character) with what was left out said.
pub(crate) fn esc_bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return esc(text);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}<span class=\"more\">… ({} bytes more; the JSON has all of it)</span>",
        esc(&text[..cut]),
        text.len() - cut
    )
}

/// A table: header cells (airlock's own words) and rows of cells already rendered
/// (each made with [`esc`] or from airlock's own markup), at most `max_rows` shown.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], max_rows: usize) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows.iter().take(max_rows) {
        s.push_str("<tr>");
        for cell in row {
            let _ = write!(s, "<td>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    if rows.len() > max_rows {
        let _ = write!(
            s,
            "<p class=\"more\">… and {} more rows (the JSON lists them all)</p>",
            rows.len() - max_rows
        );
    }
    s
}

/// Text in a `<code>` element.
pub(crate) fn code(text: &str) -> String {
    format!("<code>{}</code>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_invisible_characters_from_outside_are_text() {
        let hostile = "</script><img src=x onerror=alert(1)>&amp;\"'\u{202e}evil\u{200b}\x1b[31m";
        let e = esc(hostile);
        assert!(!e.contains("<img") && !e.contains("</script"), "{e}");
        assert!(
            e.starts_with("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;&quot;&#39;")
        );
        assert!(
            e.contains("<span class=\"ctl\">\\u{202e}</span>evil"),
            "{e}"
        );
        assert!(e.contains("<span class=\"ctl\">\\u{200b}</span>"), "{e}");
        assert!(e.contains("<span class=\"ctl\">\\x1b</span>[31m"), "{e}");
        assert!(!e.contains('\u{202e}') && !e.contains('\x1b'));
        assert_eq!(esc("a\n\tb"), "a\n\tb");
        assert_eq!(esc_svg("<a>\u{202e}"), "&lt;a&gt;\\u{202e}");
    }

    #[test]
    fn bounded_text_says_what_it_left_out_and_cuts_at_a_character() {
        let e = esc_bounded("ééé", 3);
        assert!(e.starts_with('é') && e.contains("(4 bytes more"), "{e}");
        assert_eq!(esc_bounded("short", 10), "short");
    }
}
