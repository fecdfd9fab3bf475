//! `ALTER TABLE` subcommands and unique indexes: what each asks of the rows.

use super::expr::{plain, type_ref};
use super::{node, rel, strings, One, Relation, Step, Using};
use pg_query::protobuf::{AlterTableType as At, ConstrType};
use pg_query::NodeEnum as N;

pub(super) fn unique_index(s: &pg_query::protobuf::IndexStmt) -> Step {
    if s.nulls_not_distinct {
        return Step::UniqueOther {
            why: "NULLS NOT DISTINCT".into(),
        };
    }
    let mut columns = Vec::new();
    for p in s.index_params.iter().filter_map(node) {
        match p {
            N::IndexElem(e) if !e.name.is_empty() && e.expr.is_none() => {
                columns.push(e.name.clone())
            }
            _ => {
                return Step::UniqueOther {
                    why: "an index over an expression".into(),
                }
            }
        }
    }
    match s.where_clause.as_deref() {
        None => Step::Unique {
            columns,
            primary: false,
        },
        Some(w) => match plain(w) {
            Some(p) => Step::PartialUnique {
                columns,
                predicate: p.text,
                functions: p.functions,
            },
            None => Step::UniqueOther {
                why: "a partial unique index whose WHERE is not a plain expression over the table's columns".into(),
            },
        },
    }
}

pub(super) fn alter_cmd(c: &pg_query::protobuf::AlterTableCmd, r: &Relation) -> Option<One> {
    let one = |what, step| Some((what, r.clone(), step));
    match At::try_from(c.subtype).ok()? {
        At::AtSetNotNull => one(
            "ALTER TABLE … SET NOT NULL",
            Step::SetNotNull {
                column: c.name.clone(),
            },
        ),
        At::AtDropColumn => one(
            "ALTER TABLE … DROP COLUMN",
            Step::DropColumn {
                column: c.name.clone(),
                if_exists: c.missing_ok,
            },
        ),
        At::AtAddColumn => match c.def.as_deref().and_then(node) {
            Some(N::ColumnDef(col)) if not_null_without_default(col) => one(
                "ALTER TABLE … ADD COLUMN … NOT NULL",
                Step::AddNotNullColumn {
                    column: col.colname.clone(),
                },
            ),
            Some(N::ColumnDef(col)) => one(
                "ALTER TABLE … ADD COLUMN",
                Step::AddColumn {
                    column: col.colname.clone(),
                },
            ),
            _ => None,
        },
        At::AtAddConstraint => match c.def.as_deref().and_then(node) {
            Some(N::Constraint(k)) => add_constraint(k, r),
            _ => None,
        },
        At::AtDropConstraint => one(
            "ALTER TABLE … DROP CONSTRAINT",
            Step::DropConstraint {
                constraint: c.name.clone(),
            },
        ),
        At::AtValidateConstraint => one(
            "ALTER TABLE … VALIDATE CONSTRAINT",
            Step::Validate {
                constraint: c.name.clone(),
            },
        ),
        At::AtAlterColumnType => match c.def.as_deref().and_then(node) {
            Some(N::ColumnDef(col)) => one(
                "ALTER TABLE … ALTER COLUMN … TYPE",
                alter_type(&c.name, col)?,
            ),
            _ => None,
        },
        _ => None,
    }
}

/// `ALTER COLUMN c TYPE t [USING e]`: the new type and how the values get there.
fn alter_type(column: &str, col: &pg_query::protobuf::ColumnDef) -> Option<Step> {
    let to = type_ref(col.type_name.as_ref()?)?;
    let using = match col.raw_default.as_deref() {
        None => Using::Absent,
        Some(e) => match plain(e) {
            Some(p) => {
                // `USING x::t` where t is the new type: x is what is cast.
                let inner = match node(e) {
                    Some(N::TypeCast(tc)) => tc
                        .type_name
                        .as_ref()
                        .and_then(type_ref)
                        .filter(|t| t.names.last() == to.names.last())
                        .and(tc.arg.as_deref())
                        .and_then(plain)
                        .map(|i| i.text),
                    _ => None,
                };
                Using::Plain {
                    expr: p.text,
                    inner,
                    casts: p.casts,
                    functions: p.functions,
                }
            }
            None => Using::Other,
        },
    };
    Some(Step::AlterType {
        column: column.to_string(),
        to,
        using,
    })
}

fn not_null_without_default(col: &pg_query::protobuf::ColumnDef) -> bool {
    let serial = col.type_name.as_ref().is_some_and(|tn| {
        strings(&tn.names).iter().any(|n| {
            matches!(
                n.as_str(),
                "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
            )
        })
    });
    let mut not_null = false;
    let mut filled = serial || col.raw_default.is_some() || !col.identity.is_empty();
    for k in col.constraints.iter().filter_map(node) {
        if let N::Constraint(k) = k {
            match ConstrType::try_from(k.contype) {
                Ok(ConstrType::ConstrNotnull) | Ok(ConstrType::ConstrPrimary) => not_null = true,
                Ok(ConstrType::ConstrDefault)
                | Ok(ConstrType::ConstrIdentity)
                | Ok(ConstrType::ConstrGenerated) => filled = true,
                _ => {}
            }
        }
    }
    not_null && !filled
}

fn add_constraint(k: &pg_query::protobuf::Constraint, r: &Relation) -> Option<One> {
    let one = |what, step| Some((what, r.clone(), step));
    let name = (!k.conname.is_empty()).then(|| k.conname.clone());
    match ConstrType::try_from(k.contype).ok()? {
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique if !k.indexname.is_empty() => None,
        ConstrType::ConstrPrimary => one(
            "ALTER TABLE … ADD PRIMARY KEY",
            Step::Unique {
                columns: strings(&k.keys),
                primary: true,
            },
        ),
        ConstrType::ConstrUnique if k.nulls_not_distinct => one(
            "ALTER TABLE … ADD UNIQUE",
            Step::UniqueOther {
                why: "NULLS NOT DISTINCT".into(),
            },
        ),
        ConstrType::ConstrUnique => one(
            "ALTER TABLE … ADD UNIQUE",
            Step::Unique {
                columns: strings(&k.keys),
                primary: false,
            },
        ),
        ConstrType::ConstrCheck => {
            let p = k.raw_expr.as_deref().and_then(plain);
            one(
                "ALTER TABLE … ADD CHECK",
                Step::Check {
                    name,
                    functions: p.as_ref().map(|p| p.functions.clone()).unwrap_or_default(),
                    expr: p.map(|p| p.text),
                    not_valid: k.skip_validation,
                },
            )
        }
        ConstrType::ConstrForeign => one(
            "ALTER TABLE … ADD FOREIGN KEY",
            Step::ForeignKey {
                name,
                columns: strings(&k.fk_attrs),
                references: rel(&k.pktable),
                ref_columns: strings(&k.pk_attrs),
                match_full: k.fk_matchtype == "f",
                not_valid: k.skip_validation,
            },
        ),
        _ => None,
    }
}
