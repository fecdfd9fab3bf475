//! A composite value's text, as PostgreSQL's `record_out` writes it, split into its
//! fields and written again: the schema description's definitions are such texts
//! (`ROW(…)::text`), and a view's definition inside one is normalised across
//! PostgreSQL majors ([`view_as_16`]).
//!
//! Invariant: `write(&split(t)?) == t` for every text `record_out` writes (a field is
//! quoted when empty or holding `"`, `\`, `(`, `)`, `,` or white space, with `"` and
//! `\` doubled inside; NULL is nothing at all).

/// The fields of `text` (`(a,"b c",)`), NULL as `None`; `None` when it is no record.
pub(crate) fn split(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    let mut fields = vec![];
    let mut chars = inner.chars().peekable();
    loop {
        let mut value = String::new();
        let mut present = false;
        while let Some(&c) = chars.peek() {
            match c {
                ',' => break,
                '"' => {
                    present = true;
                    chars.next();
                    loop {
                        match chars.next()? {
                            '"' if chars.peek() == Some(&'"') => {
                                chars.next();
                                value.push('"');
                            }
                            '"' => break,
                            '\\' => value.push(chars.next()?),
                            other => value.push(other),
                        }
                    }
                }
                '\\' => {
                    present = true;
                    chars.next();
                    value.push(chars.next()?);
                }
                other => {
                    present = true;
                    chars.next();
                    value.push(other);
                }
            }
        }
        fields.push(present.then_some(value));
        if chars.next().is_none() {
            return Some(fields);
        }
    }
}

/// `fields` as `record_out` writes them.
pub(crate) fn write(fields: &[Option<String>]) -> String {
    let mut out = String::from("(");
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Some(v) = f else { continue };
        let quote = v.is_empty()
            || v.chars().any(|c| {
                matches!(c, '"' | '\\' | '(' | ')' | ',')
                    || matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
            });
        if !quote {
            out.push_str(v);
            continue;
        }
        out.push('"');
        for c in v.chars() {
            if c == '"' || c == '\\' {
                out.push(c);
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push(')');
    out
}

/// Where a relation's definition holds `pg_get_viewdef` (fingerprint.sql, the
/// relations of `named`: relkind, persistence, owner, privileges, options, TOAST
/// options, access method, tablespace, replica identity, row security (2), typed
/// table's type, partition key, partition bound, parents, then the view's query).
const VIEWDEF_FIELD: usize = 15;

/// The definition `def` of a view or materialized view (the description's
/// `ROW(ROW(…)::text, comment, labels, extensions)::text`) with its query as
/// PostgreSQL 16 prints it ([`airlock_sql::view_def_as_16`]); `def` as it was when it
/// is not such a text.
pub(crate) fn view_as_16(def: &str) -> String {
    let normalised = || {
        let mut outer = split(def)?;
        let mut relation = split(outer.first()?.as_deref()?)?;
        let query = relation.get_mut(VIEWDEF_FIELD)?.as_mut()?;
        *query = airlock_sql::view_def_as_16(query);
        outer[0] = Some(write(&relation));
        Some(write(&outer))
    };
    normalised().unwrap_or_else(|| def.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_texts_split_and_write_back_as_they_were() {
        for t in [
            "(a,b,c)",
            "(,,)",
            r#"("","a b","x""y","back\\slash","(,)")"#,
            "(\"(v,p,root,{root=arwdDxt/root},,,,,n,f,f,,,,,\"\" SELECT orders.id,\n    orders.total\n   FROM public.orders;\"\",,)\",,,)",
        ] {
            let fields = split(t).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(write(&fields), t);
        }
        assert_eq!(split("(,x)").unwrap(), vec![None, Some("x".into())]);
    }

    #[test]
    fn a_fifteen_view_definition_reads_as_sixteens() {
        let fifteen = "(\"(v,p,root,,,,,,n,f,f,,,,,\"\" SELECT orders.id,\n    orders.total\n   FROM public.orders\n  WHERE (orders.total > (100)::numeric);\"\",,)\",,,)";
        let sixteen = "(\"(v,p,root,,,,,,n,f,f,,,,,\"\" SELECT id,\n    total\n   FROM public.orders\n  WHERE (total > (100)::numeric);\"\",,)\",,,)";
        assert_eq!(view_as_16(fifteen), sixteen);
        assert_eq!(view_as_16(sixteen), sixteen);
    }
}
