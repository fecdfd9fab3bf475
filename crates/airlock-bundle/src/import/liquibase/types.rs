//! Names, types and values as Liquibase's PostgreSQL generator writes them (4.x), by
//! its `objectQuotingStrategy`: LEGACY (the default) writes a name bare unless it
//! mixes upper- and lower-case letters, holds a character other than `[A-Za-z0-9_]`,
//! starts with a digit or is a reserved word (`PERSON` is bare, so PostgreSQL makes
//! `person`); QUOTE_ONLY_RESERVED_WORDS quotes only the last three; QUOTE_ALL_OBJECTS
//! quotes every name. Liquibase's portable types become PostgreSQL's (`int` →
//! INTEGER, `datetime` → TIMESTAMP WITHOUT TIME ZONE, `tinyblob`/`binary` → BYTEA,
//! `clob` → TEXT, `blob` → OID, `currency` → DECIMAL, `serial` → INTEGER with an
//! identity); a type it writes as given is kept when PostgreSQL has it and refused by
//! name when only another database has it; a value is quoted as a string literal, or
//! written bare where the column's type is a number or a boolean, as Liquibase does.
//!
//! Invariant: a name is written as Liquibase writes it (checked against `liquibase
//! update-sql` in tests/import_liquibase.rs), except a word PostgreSQL reserves that
//! Liquibase's list lacks, written quoted in the lower case PostgreSQL folds it to
//! (the same name, one that parses); a type reaches a tier only as one PostgreSQL has.

/// Liquibase's objectQuotingStrategy: set on a changelog (for its own changesets) or a
/// changeset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(in crate::import) enum Quoting {
    #[default]
    Legacy,
    QuoteAll,
    OnlyReserved,
}

impl Quoting {
    /// The attribute's value, as Liquibase spells it.
    pub(in crate::import) fn parse(v: &str) -> Option<Quoting> {
        match v.trim() {
            "LEGACY" => Some(Quoting::Legacy),
            "QUOTE_ALL_OBJECTS" => Some(Quoting::QuoteAll),
            "QUOTE_ONLY_RESERVED_WORDS" => Some(Quoting::OnlyReserved),
            _ => None,
        }
    }
}

/// PostgreSQL's reserved words that Liquibase 4.28's list lacks: quoted lower-case.
const RESERVED_BY_POSTGRESQL_ONLY: &[&str] = &["between", "system_user"];

/// The words Liquibase's PostgreSQL dialect reserves (compared case-insensitively).
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

fn quote(n: &str) -> String {
    format!("\"{}\"", n.replace('"', "\"\""))
}

/// A name as Liquibase writes it under `q`.
pub(in crate::import) fn name(n: &str, q: Quoting) -> String {
    let n = n.trim();
    let lower = n.to_ascii_lowercase();
    // Liquibase's `mustQuoteObjectName`: a character a bare name cannot hold (Java's
    // `\W`), a leading digit, a reserved word.
    let must = n.is_empty()
        || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || n.starts_with(|c: char| c.is_ascii_digit())
        || RESERVED.contains(&lower.as_str());
    let mixed = n != n.to_ascii_uppercase() && n != lower;
    let quoted = match q {
        Quoting::QuoteAll => true,
        Quoting::Legacy => mixed || must,
        Quoting::OnlyReserved => must,
    };
    if quoted {
        quote(n)
    } else if RESERVED_BY_POSTGRESQL_ONLY.contains(&lower.as_str()) {
        quote(&lower)
    } else {
        n.to_string()
    }
}

/// `schema.name` (or `name`), each part as Liquibase writes it.
pub(in crate::import) fn qualified(schema: Option<&str>, n: &str, q: Quoting) -> String {
    match schema {
        Some(s) => format!("{}.{}", name(s, q), name(n, q)),
        None => name(n, q),
    }
}

/// A comma-separated list of names (`a, b`), each written as Liquibase does.
pub(in crate::import) fn names(list: &str, q: Quoting) -> String {
    list.split(',')
        .map(|n| name(n, q))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A string literal.
pub(in crate::import) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `(10,2)` → `(10, 2)`.
fn params(p: &str) -> String {
    let inner = p.trim().trim_start_matches('(').trim_end_matches(')');
    format!(
        "({})",
        inner
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Types Liquibase's PostgreSQL generator writes as given that PostgreSQL does not
/// have (other databases' types): a tier holding one fails at apply.
const FOREIGN_TYPES: &[&str] = &[
    "mediumint",
    "long",
    "year",
    "enum",
    "set",
    "datetimeoffset",
    "sql_variant",
    "rowid",
    "urowid",
    "raw",
    "long raw",
    "binary_double",
    "binary_float",
    "object",
    "char varying",
    "tinyint unsigned",
    "smallint unsigned",
    "mediumint unsigned",
    "bigint unsigned",
    "nvarchar2",
    "image",
    "hierarchyid",
];

/// Why a type is refused: Liquibase writes it as given, and PostgreSQL has no such type.
fn no_such_type(t: &str) -> String {
    format!("the type `{t}`: Liquibase writes it for PostgreSQL as given (or as a form PostgreSQL refuses), and PostgreSQL has no such type, so the tier would fail at apply; write the PostgreSQL type in the changelog (`bigint`, `varchar(n)`, `text`, `bytea`, `timestamp`…), then import")
}

/// A Liquibase type as PostgreSQL's (as Liquibase 4.28's `update-sql` writes it for
/// PostgreSQL, type class by type class), and whether it is an identity of itself
/// (`serial`); a type PostgreSQL does not have is refused, named.
pub(in crate::import) fn data_type(t: &str) -> Result<(String, bool), String> {
    let written = t.trim();
    let t = written.strip_prefix("java.sql.Types.").unwrap_or(written);
    let (base, p) = match t.find('(') {
        Some(i) => (t[..i].trim(), Some(&t[i..])),
        None => (t, None),
    };
    let lower = base.to_ascii_lowercase();
    let lower = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    let with = |s: &str| match p {
        Some(p) => format!("{s}{}", params(p)),
        None => s.to_string(),
    };
    // One parameter at most (`float(10,2)` is refused by PostgreSQL).
    let one = |s: &str| match p {
        Some(p) if p.contains(',') => Err(no_such_type(written)),
        _ => Ok(with(s)),
    };
    if FOREIGN_TYPES.contains(&lower.as_str())
        || p.is_some_and(|p| p.contains("[]") || p.to_ascii_lowercase().contains("max"))
    {
        return Err(no_such_type(written));
    }
    let mapped = match lower.as_str() {
        "int" | "integer" | "int4" | "int unsigned" | "integer unsigned" => "INTEGER".into(),
        "bigint" | "int8" => "BIGINT".into(),
        "smallint" | "int2" | "tinyint" => "SMALLINT".into(),
        "serial" | "serial4" => return Ok(("INTEGER".into(), true)),
        "bigserial" | "serial8" => return Ok(("BIGINT".into(), true)),
        "smallserial" | "serial2" => return Ok(("SMALLINT".into(), true)),
        // `varchar2(10 char)`: Oracle's length semantics, which PostgreSQL's is.
        "varchar" | "varchar2" | "nvarchar" | "character varying" => {
            let w = with("VARCHAR");
            let l = w.to_ascii_lowercase();
            match l
                .strip_suffix(" char)")
                .or_else(|| l.strip_suffix(" byte)"))
            {
                Some(kept) => format!("{})", &w[..kept.len()]),
                None => w,
            }
        }
        "char" | "character" => one("CHAR")?,
        "nchar" => one("NCHAR")?,
        "boolean" | "bool" => "BOOLEAN".into(),
        "bit" => one("BIT")?,
        // The precision stays: `timestamp(3)` → TIMESTAMP(3) WITHOUT TIME ZONE.
        "datetime" | "timestamp" | "smalldatetime" | "datetime2" => {
            format!("{} WITHOUT TIME ZONE", one("TIMESTAMP")?)
        }
        "timestamp without time zone" => "TIMESTAMP without time zone".into(),
        "timestamp with time zone" => "TIMESTAMP with time zone".into(),
        "timestamptz" => format!("{} WITH TIME ZONE", one("TIMESTAMP")?),
        "time" => format!("{} WITHOUT TIME ZONE", one("time")?),
        "clob" | "text" | "longtext" | "mediumtext" | "tinytext" | "nclob" | "ntext"
        | "longvarchar" => "TEXT".into(),
        "blob" => "OID".into(),
        "tinyblob" | "mediumblob" | "longblob" | "binary" | "varbinary" | "bytea"
        | "longvarbinary" => "BYTEA".into(),
        "uuid" | "uniqueidentifier" => "UUID".into(),
        "currency" | "money" | "smallmoney" => "DECIMAL".into(),
        "decimal" => with("DECIMAL"),
        "number" | "numeric" => with("numeric"),
        "double" | "double precision" => "DOUBLE PRECISION".into(),
        "float" => one("FLOAT")?,
        "float8" => "FLOAT8".into(),
        "float4" => "FLOAT4".into(),
        "real" => "REAL".into(),
        "date" => "date".into(),
        "interval" => "INTERVAL".into(),
        "jsonb" => "JSONB".into(),
        "json" => "JSON".into(),
        "xml" => "XML".into(),
        _ => match p {
            Some(p) => format!("{base}{}", params(p)),
            None => t.to_string(),
        },
    };
    Ok((mapped, false))
}

/// Whether a PostgreSQL type (as [`data_type`] writes it) takes a bare number.
fn numeric(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    [
        "integer", "bigint", "smallint", "decimal", "numeric", "double", "float", "real",
    ]
    .iter()
    .any(|k| t.starts_with(k))
}

/// A `defaultValue`/`value` for a column of type `t` (None: unknown): a number bare
/// for a number type, TRUE/FALSE for a boolean, else a string literal.
pub(in crate::import) fn value_for(t: Option<&str>, v: &str) -> String {
    match t {
        Some(t) if numeric(t) && v.trim().parse::<f64>().is_ok() => v.trim().to_string(),
        Some("BOOLEAN")
            if matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "false" | "1" | "0"
            ) =>
        {
            boolean(if v.trim() == "1" { "true" } else { v })
        }
        _ => literal(v),
    }
}

/// A date value (`2020-01-02T03:04:05` → `'2020-01-02 03:04:05'`).
pub(in crate::import) fn date(v: &str) -> String {
    literal(&v.replacen('T', " ", 1))
}

/// A boolean value.
pub(in crate::import) fn boolean(v: &str) -> String {
    if v.trim().eq_ignore_ascii_case("true") {
        "TRUE".into()
    } else {
        "FALSE".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_values_as_liquibase_writes_them() {
        let q = Quoting::Legacy;
        assert_eq!(name("person", q), "person");
        assert_eq!(name("PERSON", q), "PERSON");
        assert_eq!(name("MyTable", q), "\"MyTable\"");
        assert_eq!(name("user", q), "\"user\"");
        assert_eq!(name("USER", q), "\"USER\"");
        assert_eq!(name("a$b", q), "\"a$b\"");
        assert_eq!(name("1abc", q), "\"1abc\"");
        assert_eq!(name("BETWEEN", q), "\"between\"");
        assert_eq!(name("MyTable", Quoting::OnlyReserved), "MyTable");
        assert_eq!(name("user", Quoting::OnlyReserved), "\"user\"");
        assert_eq!(name("a", Quoting::QuoteAll), "\"a\"");
        let data_type = |t: &str| super::data_type(t).unwrap();
        assert_eq!(data_type("TINYBLOB(16)").0, "BYTEA");
        assert_eq!(data_type("BINARY(64)").0, "BYTEA");
        assert_eq!(data_type("varchar2(10 CHAR)").0, "VARCHAR(10)");
        assert!(super::data_type("MEDIUMINT").is_err());
        assert!(super::data_type("float(10,2)").is_err());
        assert_eq!(data_type("int").0, "INTEGER");
        assert_eq!(data_type("varchar(255)").0, "VARCHAR(255)");
        assert_eq!(data_type("numeric(5,2)").0, "numeric(5, 2)");
        assert_eq!(data_type("datetime").0, "TIMESTAMP WITHOUT TIME ZONE");
        assert_eq!(data_type("blob").0, "OID");
        // As Liquibase 4.28's update-sql writes them.
        assert_eq!(
            data_type("timestamp(3)").0,
            "TIMESTAMP(3) WITHOUT TIME ZONE"
        );
        assert_eq!(data_type("datetime(6)").0, "TIMESTAMP(6) WITHOUT TIME ZONE");
        assert_eq!(data_type("timestamptz(3)").0, "TIMESTAMP(3) WITH TIME ZONE");
        assert_eq!(data_type("time(3)").0, "time(3) WITHOUT TIME ZONE");
        assert_eq!(data_type("bit(8)").0, "BIT(8)");
        assert_eq!(data_type("int(11)").0, "INTEGER");
        assert_eq!(value_for(Some("BOOLEAN"), "0"), "FALSE");
        assert_eq!(value_for(Some("BOOLEAN"), "1"), "TRUE");
        assert_eq!(data_type("serial"), ("INTEGER".into(), true));
        assert_eq!(data_type("java.sql.Types.VARCHAR(20)").0, "VARCHAR(20)");
        assert_eq!(value_for(Some("INTEGER"), "7"), "7");
        assert_eq!(value_for(Some("VARCHAR(20)"), "7"), "'7'");
        assert_eq!(value_for(Some("BOOLEAN"), "true"), "TRUE");
        assert_eq!(value_for(None, "x'y"), "'x''y'");
    }
}
