//! A bundle's SQL on the dossier page: highlighted by the SQL room's own tokenizer
//! (`airlock_sql::highlight`), every span escaped.
//!
//! Invariant: the page shows every byte of the SQL it shows, escaped
//! ([`super::html::esc`]); the only markup added is a `<span class>` of airlock's own
//! around a span. SQL that does not tokenize (COPY data) is shown escaped, plain.

use super::html::push_esc;
use airlock_sql::SqlClass;

/// `sql` as highlighted, escaped HTML (for a `<pre>`).
pub(crate) fn highlighted(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() * 2);
    let Some(spans) = airlock_sql::highlight(sql) else {
        push_esc(&mut out, sql);
        return out;
    };
    for span in spans {
        let text = &sql[span.start..span.end];
        let class = match span.class {
            SqlClass::Keyword => "k",
            SqlClass::Word => "w",
            SqlClass::Quoted => "q",
            SqlClass::Str => "s",
            SqlClass::Number => "n",
            SqlClass::Comment => "c",
            SqlClass::Plain => {
                push_esc(&mut out, text);
                continue;
            }
        };
        out.push_str("<span class=\"");
        out.push_str(class);
        out.push_str("\">");
        push_esc(&mut out, text);
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_byte_is_shown_escaped_in_its_span() {
        let sql = "-- </script><img src=x onerror=alert(1)>\nSELECT '<style>' AS \"x\u{202e}\";";
        let html = super::highlighted(sql);
        assert!(
            !html.contains("<img") && !html.contains("<style") && !html.contains("</script"),
            "{html}"
        );
        assert!(
            html.contains(
                "<span class=\"c\">-- &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</span>"
            ),
            "{html}"
        );
        assert!(html.contains("<span class=\"k\">SELECT</span>"), "{html}");
        assert!(
            html.contains("<span class=\"s\">&#39;&lt;style&gt;&#39;</span>"),
            "{html}"
        );
        assert!(html.contains("\\u{202e}"), "{html}");
        // What does not tokenize is still all there, escaped.
        assert_eq!(super::highlighted("SELECT '<open"), "SELECT &#39;&lt;open");
    }
}
