//! A dotted SQL object name as a release writes it where no statement holds it
//! (`[[tier]] destroys = ["public.doomed", "app", "public.gone.note"]`): its parts,
//! folded as PostgreSQL folds them.
//!
//! Invariant: a name parses to 1 to 3 non-empty identifiers, each plain (folded to
//! lower case) or double-quoted (kept as written, `""` for a quote), or is refused
//! with the reason.

/// The parts of `name`: schema, schema.table, or schema.table.column.
pub fn object_name(name: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut rest = name;
    loop {
        let (part, after) = identifier(rest).ok_or_else(|| {
            format!(
                "{name:?} is not a dotted SQL name (schema, schema.table or schema.table.column)"
            )
        })?;
        parts.push(part);
        match after.strip_prefix('.') {
            Some(more) => rest = more,
            None if after.is_empty() => break,
            None => {
                return Err(format!(
                    "{name:?}: unexpected {:?} after a name",
                    after.chars().next().unwrap_or_default()
                ))
            }
        }
    }
    if parts.len() > 3 {
        return Err(format!(
            "{name:?} has {} parts; name a schema, schema.table or schema.table.column",
            parts.len()
        ));
    }
    Ok(parts)
}

/// One identifier at the start of `s`, and what follows it.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(q) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if q[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                    continue;
                }
                return (!out.is_empty()).then(|| (out, &q[i + 1..]));
            }
            out.push(c);
        }
        return None;
    }
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_alphanumeric() || *c == '_' || (*i > 0 && *c == '$')))
        .map_or(s.len(), |(i, _)| i);
    let word = &s[..end];
    let first = word.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    Some((word.to_lowercase(), &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::object_name;

    #[test]
    fn names_fold_as_postgresql_folds_them() {
        assert_eq!(object_name("public.Doomed").unwrap(), ["public", "doomed"]);
        assert_eq!(object_name("\"A.b\".\"x\"\"y\"").unwrap(), ["A.b", "x\"y"]);
        assert_eq!(object_name("app").unwrap(), ["app"]);
        assert_eq!(object_name("s.t.c").unwrap(), ["s", "t", "c"]);
        for bad in [
            "", "a.", ".a", "a..b", "a.b.c.d", "1abc", "a b", "\"\"", "a;drop",
        ] {
            assert!(object_name(bad).is_err(), "{bad:?}");
        }
    }
}
