//! A bundle's runbooks (Markdown) as HTML for the dossier: headings, paragraphs,
//! lists, quotes, code blocks and spans, emphasis; links and images as text.
//!
//! Invariant: no HTML of the input reaches the page. Raw HTML is text; every piece of
//! the input goes through [`super::html::esc`]; a link or image becomes its text and
//! its address, shown, never an `href` or `src` (an address from a bundle is not
//! something the page follows or loads, whatever its scheme). The only attribute
//! written is an ordered list's `start`, made of digits this module parsed.

use super::html::esc;
use std::fmt::Write;

/// A list being built: ordered (with its first number) or not, and its items' HTML.
struct List {
    ordered: Option<u64>,
    items: Vec<String>,
}

/// The renderer's state over the lines of one document.
struct Blocks {
    out: String,
    para: Vec<String>,
    list: Option<List>,
    quote: Vec<String>,
    /// A heading level added to the document's own (it sits inside a section).
    shift: usize,
}

impl Blocks {
    fn flush_para(&mut self) {
        if self.para.is_empty() {
            return;
        }
        let text = self.para.join(" ");
        self.para.clear();
        match self.list.as_mut().and_then(|l| l.items.last_mut()) {
            Some(item) => {
                item.push(' ');
                item.push_str(&inline(&text));
            }
            None => {
                let _ = write!(self.out, "<p>{}</p>", inline(&text));
            }
        }
    }

    fn flush_list(&mut self) {
        self.flush_para();
        if let Some(list) = self.list.take() {
            let open = match list.ordered {
                Some(1) => "<ol>".to_string(),
                Some(n) => format!("<ol start=\"{n}\">"),
                None => "<ul>".to_string(),
            };
            self.out.push_str(&open);
            for item in list.items {
                let _ = write!(self.out, "<li>{item}</li>");
            }
            self.out.push_str(if list.ordered.is_some() {
                "</ol>"
            } else {
                "</ul>"
            });
        }
    }

    fn flush_quote(&mut self) {
        if !self.quote.is_empty() {
            let text = self.quote.join(" ");
            self.quote.clear();
            let _ = write!(self.out, "<blockquote>{}</blockquote>", inline(&text));
        }
    }

    fn flush_all(&mut self) {
        self.flush_quote();
        self.flush_list();
        self.flush_para();
    }

    fn code_block(&mut self, lines: &[&str]) {
        self.flush_all();
        let _ = write!(
            self.out,
            "<pre class=\"md\"><code>{}</code></pre>",
            esc(&lines.join("\n"))
        );
    }
}

/// A list item's marker: `- `, `* `, `+ ` or `N. `/`N) `, and the text after it.
fn list_item(line: &str) -> Option<(Option<u64>, &str)> {
    let t = line.trim_start();
    for m in ["- ", "* ", "+ "] {
        if let Some(rest) = t.strip_prefix(m) {
            return Some((None, rest));
        }
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        let rest = &t[digits..];
        if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some((t[..digits].parse().ok(), rest));
        }
    }
    None
}

/// The number of leading spaces (a tab counts four).
fn indent(line: &str) -> usize {
    let mut n = 0;
    for c in line.chars() {
        match c {
            ' ' => n += 1,
            '\t' => n += 4,
            _ => break,
        }
    }
    n
}

/// `markdown` as HTML; headings start at level `1 + shift`.
pub(crate) fn render(markdown: &str, shift: usize) -> String {
    let mut b = Blocks {
        out: String::new(),
        para: vec![],
        list: None,
        quote: vec![],
        shift,
    };
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    let mut after_blank = true;
    while i < lines.len() {
        let line = lines[i].trim_end();
        let t = line.trim_start();
        if let Some(fence) = ["```", "~~~"].into_iter().find(|f| t.starts_with(f)) {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim_start().starts_with(fence))
                .unwrap_or(lines.len());
            b.code_block(&lines[i + 1..end]);
            i = end + 1;
            after_blank = false;
            continue;
        }
        if t.is_empty() {
            b.flush_para();
            b.flush_quote();
            after_blank = true;
            i += 1;
            continue;
        }
        if after_blank && indent(line) >= 4 && b.para.is_empty() {
            let base = indent(line);
            let mut end = i;
            while end < lines.len()
                && (lines[end].trim().is_empty() || indent(lines[end]) >= base.min(4))
            {
                end += 1;
            }
            while end > i && lines[end - 1].trim().is_empty() {
                end -= 1;
            }
            let body: Vec<&str> = lines[i..end]
                .iter()
                .map(|l| l.get(base.min(indent(l))..).unwrap_or(""))
                .collect();
            // A code block inside a list item stays in it (the list goes on after).
            let html = format!(
                "<pre class=\"md\"><code>{}</code></pre>",
                esc(&body.join("\n"))
            );
            b.flush_para();
            match b.list.as_mut().and_then(|l| l.items.last_mut()) {
                Some(item) => item.push_str(&html),
                None => {
                    b.flush_all();
                    b.out.push_str(&html);
                }
            }
            i = end;
            after_blank = false;
            continue;
        }
        block_line(&mut b, line, t, after_blank);
        after_blank = false;
        i += 1;
    }
    b.flush_all();
    b.out
}

/// One line that is not code: a heading, rule, quote, list item or paragraph text.
fn block_line(b: &mut Blocks, line: &str, t: &str, after_blank: bool) {
    let hashes = t.bytes().take_while(|&c| c == b'#').count();
    if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
        b.flush_all();
        let level = (hashes + b.shift).min(6);
        let text = t[hashes..].trim().trim_end_matches('#').trim();
        let _ = write!(b.out, "<h{level}>{}</h{level}>", inline(text));
        return;
    }
    let first = t.chars().next();
    let rule = matches!(first, Some('-' | '*' | '_'))
        && t.chars().all(|x| Some(x) == first || x == ' ')
        && t.chars().filter(|&x| Some(x) == first).count() >= 3;
    if rule {
        b.flush_all();
        b.out.push_str("<hr>");
        return;
    }
    if let Some(rest) = t.strip_prefix('>') {
        b.flush_list();
        b.flush_para();
        b.quote.push(rest.trim().to_string());
        return;
    }
    if let Some((number, rest)) = list_item(line).filter(|_| indent(line) < 4) {
        b.flush_para();
        b.flush_quote();
        let same_kind = b
            .list
            .as_ref()
            .is_some_and(|l| l.ordered.is_some() == number.is_some());
        if !same_kind {
            b.flush_list();
            b.list = Some(List {
                ordered: number,
                items: vec![],
            });
        }
        if let Some(list) = b.list.as_mut() {
            list.items.push(inline(rest));
        }
        return;
    }
    if b.list.is_some() && after_blank && indent(line) < 2 {
        b.flush_list();
    }
    b.para.push(t.to_string());
}

/// How far ahead a code span, emphasis or link is looked for: a longer one is text
/// (so a paragraph of unmatched marks costs linear time).
const WINDOW: usize = 1024;

/// `text[..WINDOW]`, cut at a character.
fn window(text: &str) -> &str {
    let mut end = text.len().min(WINDOW);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Inline Markdown: code spans, strong and emphasis, links and images as text.
pub(crate) fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut plain_from = 0;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or(' ');
        let found = match c {
            '\\' => rest[1..]
                .chars()
                .next()
                .filter(char::is_ascii_punctuation)
                .map(|p| (1 + p.len_utf8(), esc(&p.to_string()))),
            '`' => code_span(rest),
            '[' | '!' => link(rest),
            '*' | '_' => emphasis(rest, text[..i].chars().next_back()),
            _ => None,
        };
        match found {
            Some((len, html)) => {
                out.push_str(&esc(&text[plain_from..i]));
                out.push_str(&html);
                i += len;
                plain_from = i;
            }
            None => i += c.len_utf8(),
        }
    }
    out.push_str(&esc(&text[plain_from..]));
    out
}

/// A code span at the start of `rest`: its length in bytes and its HTML.
fn code_span(rest: &str) -> Option<(usize, String)> {
    let ticks = rest.bytes().take_while(|&b| b == b'`').count();
    let fence = &rest[..ticks];
    let end = window(&rest[ticks..]).find(fence)?;
    let body = &rest[ticks..ticks + end];
    Some((
        2 * ticks + end,
        format!("<code>{}</code>", esc(body.trim())),
    ))
}

/// `**strong**`, `__strong__`, `*em*`, `_em_` at the start of `rest` (`before`: the
/// character before it): its length in bytes and its HTML. Underscores inside a word
/// (`os_proposal_approvals`) are not emphasis.
fn emphasis(rest: &str, before: Option<char>) -> Option<(usize, String)> {
    let in_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    for (mark, tag) in [("**", "strong"), ("__", "strong"), ("*", "em"), ("_", "em")] {
        let Some(after) = rest.strip_prefix(mark) else {
            continue;
        };
        if mark.starts_with('_') && in_word(before) {
            continue;
        }
        if after.starts_with([' ', '*', '_']) || after.is_empty() {
            continue;
        }
        let Some(end) = window(after).find(mark) else {
            continue;
        };
        let body = &after[..end];
        let next = after[end + mark.len()..].chars().next();
        if body.is_empty() || body.ends_with(' ') || (mark.starts_with('_') && in_word(next)) {
            continue;
        }
        return Some((
            2 * mark.len() + end,
            format!("<{tag}>{}</{tag}>", inline(body)),
        ));
    }
    None
}

/// `[text](address)` or `![alt](address)` at the start of `rest`, as text with the
/// address shown: its length in bytes and its HTML.
fn link(rest: &str) -> Option<(usize, String)> {
    let (image, body) = match rest.strip_prefix("![") {
        Some(b) => (true, b),
        None => (false, rest.strip_prefix('[')?),
    };
    let near = window(body);
    let close = near.find("](")?;
    let text = &near[..close];
    // The address ends at the `)` that balances its own parentheses.
    let mut depth = 0usize;
    let end = near[close + 2..]
        .char_indices()
        .find_map(|(i, c)| match c {
            '(' => {
                depth += 1;
                None
            }
            ')' if depth == 0 => Some(i),
            ')' => {
                depth -= 1;
                None
            }
            _ => None,
        })?;
    let address = &near[close + 2..close + 2 + end];
    if text.contains('[') {
        return None;
    }
    let len = usize::from(image) + 1 + close + 2 + end + 1;
    let shown = if image {
        format!("[image: {}]", inline(text))
    } else {
        inline(text)
    };
    Some((
        len,
        format!(
            "{shown} <span class=\"url\">⟨{}⟩</span>",
            esc(address.trim())
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_inline_forms_render() {
        let md = "# Title\n\nSome *em* and **strong** and `code <b>` in os_proposal_approvals.\n\n1. one\n2. two\n   more of two\n\n       indented code\n\n3. three\n\n- a\n- b\n\n> quoted\n\n```\nfenced <x>\n```\n\n---\n";
        let html = render(md, 2);
        assert!(html.starts_with("<h3>Title</h3>"), "{html}");
        assert!(html.contains("<p>Some <em>em</em> and <strong>strong</strong> and <code>code &lt;b&gt;</code> in os_proposal_approvals.</p>"), "{html}");
        assert!(html.contains("<ol><li>one</li><li>two more of two<pre class=\"md\"><code>indented code</code></pre></li><li>three</li></ol>"), "{html}");
        assert!(html.contains("<ul><li>a</li><li>b</li></ul>"), "{html}");
        assert!(html.contains("<blockquote>quoted</blockquote>"), "{html}");
        assert!(
            html.contains("<pre class=\"md\"><code>fenced &lt;x&gt;</code></pre>"),
            "{html}"
        );
        assert!(html.ends_with("<hr>"), "{html}");
    }

    #[test]
    fn raw_html_and_links_are_text() {
        let md = "<script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) ![logo](http://evil.example/x.png) <a href=\"javascript:x\">a</a>";
        let html = render(md, 0);
        for bad in ["<script", "<img", "<a ", "<a>"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(
            html.contains("click <span class=\"url\">⟨javascript:alert(1)⟩</span>"),
            "{html}"
        );
        assert!(
            html.contains("[image: logo] <span class=\"url\">⟨http://evil.example/x.png⟩</span>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn a_numbered_list_after_a_break_keeps_its_numbers() {
        let html = render("1. one\n\nbreak\n\n4. four\n", 0);
        assert!(
            html.contains("<ol start=\"4\"><li>four</li></ol>"),
            "{html}"
        );
    }
}
