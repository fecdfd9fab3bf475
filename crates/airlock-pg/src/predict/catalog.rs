//! What the predictions need to know of the target's catalog, asked once for all the
//! release's statements: where each relation, type and schema they name is now (its
//! schema, so an unqualified name and a qualified one are the same table), which
//! functions they call are built in, and (per table, when asked) its keys.

use super::ask::{rows, Fixed};
use crate::quote_ident;
use airlock_sql::{DataStep, Relation, Step, Using};
use postgres::Transaction;
use std::collections::BTreeMap;

/// A table's primary key and its unique keys over plain columns (none partial).
#[derive(Clone, Default)]
pub(super) struct Keys {
    pub primary: Option<Vec<String>>,
    pub unique: Vec<Vec<String>>,
}

#[derive(Default)]
pub(super) struct Catalog {
    /// `current_schema()`: where an unqualified CREATE puts its object.
    pub current: String,
    /// Each relation name as written (qualified SQL) → its schema when it exists now.
    relations: BTreeMap<String, Option<String>>,
    /// The relations found, by schema and name → what each is (`pg_class.relkind`).
    existing: BTreeMap<Relation, String>,
    types: BTreeMap<String, Option<String>>,
    /// Schemas that exist now.
    schemas: BTreeMap<String, bool>,
    /// Each function name called → every function of that name the call could reach
    /// is built in (and there is one).
    functions: BTreeMap<Relation, bool>,
    keys: BTreeMap<Relation, Keys>,
}

/// The name, every part quoted (a hostile name stays a name).
pub(crate) fn qualified(r: &Relation) -> String {
    match &r.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&r.name)),
        None => quote_ident(&r.name),
    }
}

/// A type as the server can look it up (its name parts quoted; `[]` for arrays).
pub(super) fn type_name(t: &airlock_sql::TypeRef) -> Relation {
    let mut names = t.names.clone();
    let name = names.pop().unwrap_or_default();
    Relation {
        schema: names.pop(),
        name,
    }
}

fn unqualified(name: &str) -> Relation {
    Relation {
        schema: None,
        name: name.to_string(),
    }
}

/// Every name the steps ask about, by kind.
#[derive(Default)]
struct Named {
    relations: Vec<String>,
    types: Vec<String>,
    schemas: Vec<String>,
    functions: Vec<Relation>,
}

fn named(steps: &[(String, DataStep)]) -> Named {
    let mut n = Named::default();
    for (_, s) in steps {
        let r = &s.relation;
        match &s.step {
            Step::DropSchema { .. } => n.schemas.push(r.name.clone()),
            Step::DropType { .. } | Step::CreateEnum { .. } | Step::RenameType { .. } => {
                n.types.push(qualified(r))
            }
            Step::Opaque => {}
            Step::Calls { functions } => n.functions.extend(functions.iter().cloned()),
            Step::ForeignKey { references, .. } => {
                n.relations.push(qualified(r));
                n.relations.push(qualified(references));
            }
            Step::AlterType { to, using, .. } => {
                n.relations.push(qualified(r));
                n.types.push(qualified(&type_name(to)));
                if let Using::Plain { functions, .. } = using {
                    n.functions.extend(functions.iter().map(|f| unqualified(f)));
                }
            }
            Step::Check { functions, .. } | Step::Filtered { functions, .. } => {
                n.relations.push(qualified(r));
                n.functions.extend(functions.iter().map(|f| unqualified(f)));
            }
            _ => n.relations.push(qualified(r)),
        }
    }
    for v in [&mut n.relations, &mut n.types, &mut n.schemas] {
        v.sort();
        v.dedup();
    }
    n.functions.sort();
    n.functions.dedup();
    n
}

/// Where each name is now: relations (`$1`, and what each is), types (`$2`), schemas
/// (`$3`), whether functions (schemas `$4`, names `$5`) are all built in, and the
/// current schema.
pub(super) const NAMES: Fixed = Fixed::new(
    "SELECT 'r', x, ns.nspname::pg_catalog.text, NULL::pg_catalog.bool, c.relname::pg_catalog.text, \
       pg_catalog.format('%s', c.relkind) \
       FROM pg_catalog.unnest($1::pg_catalog.text[]) AS x \
       LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(x) \
       LEFT JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace \
     UNION ALL SELECT 't', x, ns.nspname::pg_catalog.text, NULL, NULL, NULL FROM pg_catalog.unnest($2::pg_catalog.text[]) AS x \
       LEFT JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) pg_catalog.to_regtype(x) \
       LEFT JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) t.typnamespace \
     UNION ALL SELECT 's', x, NULL, EXISTS (SELECT 1 FROM pg_catalog.pg_namespace ns \
         WHERE ns.nspname OPERATOR(pg_catalog.=) x), NULL, NULL \
       FROM pg_catalog.unnest($3::pg_catalog.text[]) AS x \
     UNION ALL SELECT 'f', f.i::pg_catalog.text, NULL, \
       (SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AND pg_catalog.bool_and(p.oid OPERATOR(pg_catalog.<) 16384) \
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) p.pronamespace \
        WHERE p.proname OPERATOR(pg_catalog.=) f.n AND CASE WHEN f.s OPERATOR(pg_catalog.=) '' \
          THEN ns.nspname OPERATOR(pg_catalog.=) ANY (pg_catalog.current_schemas(true)) \
          ELSE ns.nspname OPERATOR(pg_catalog.=) f.s END), NULL, NULL \
       FROM ROWS FROM (pg_catalog.unnest($4::pg_catalog.text[]), pg_catalog.unnest($5::pg_catalog.text[])) \
         WITH ORDINALITY AS f(s, n, i) \
     UNION ALL SELECT 'c', pg_catalog.current_schema()::pg_catalog.text, NULL, NULL, NULL, NULL",
);

/// The primary and unique keys of table `$1` over plain columns (none partial).
pub(super) const KEYS: Fixed = Fixed::new(
    "SELECT i.indisprimary, pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.n) \
     FROM pg_catalog.pg_index i \
     CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n) \
     JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid \
       AND a.attnum OPERATOR(pg_catalog.=) k.attnum \
     WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND i.indisunique AND i.indpred IS NULL \
       AND i.indexprs IS NULL AND i.indimmediate \
     GROUP BY i.indexrelid, i.indisprimary",
);

impl Catalog {
    /// Ask once for every name the steps use (one round trip; a failure leaves the
    /// catalog empty, and each question then asks for itself).
    pub(super) fn load(tx: &mut Transaction<'_>, steps: &[(String, DataStep)]) -> Catalog {
        let n = named(steps);
        let fschemas: Vec<String> = n
            .functions
            .iter()
            .map(|f| f.schema.clone().unwrap_or_default())
            .collect();
        let fnames: Vec<String> = n.functions.iter().map(|f| f.name.clone()).collect();
        let got = rows_typed(
            tx,
            NAMES,
            &[&n.relations, &n.types, &n.schemas, &fschemas, &fnames],
        );
        let mut cat = Catalog::default();
        let Ok(got) = got else { return cat };
        for r in got {
            let (kind, name): (&str, Option<String>) = (r.get(0), r.get(1));
            let name = name.unwrap_or_default();
            match kind {
                "r" => {
                    let (schema, relname): (Option<String>, Option<String>) = (r.get(2), r.get(4));
                    if let (Some(s), Some(n)) = (&schema, relname) {
                        let relation = Relation {
                            schema: Some(s.clone()),
                            name: n,
                        };
                        cat.existing
                            .insert(relation, r.get::<_, Option<String>>(5).unwrap_or_default());
                    }
                    cat.relations.insert(name, schema);
                }
                "t" => drop(cat.types.insert(name, r.get(2))),
                "s" => drop(
                    cat.schemas
                        .insert(name, r.get::<_, Option<bool>>(3) == Some(true)),
                ),
                "f" => {
                    let i = name.parse::<usize>().unwrap_or(0);
                    if let Some(f) = i.checked_sub(1).and_then(|i| n.functions.get(i)) {
                        cat.functions
                            .insert(f.clone(), r.get::<_, Option<bool>>(3) == Some(true));
                    }
                }
                _ => cat.current = name,
            }
        }
        cat
    }

    /// The schema of the relation as written, when it exists now (`None`: not there,
    /// or not asked).
    pub(super) fn relation_schema(&self, r: &Relation) -> Option<Option<&str>> {
        if let Some((found, _)) = self.existing.get_key_value(r) {
            return Some(found.schema.as_deref());
        }
        if let Some(asked) = self.relations.get(&qualified(r)) {
            return Some(asked.as_deref());
        }
        // A name the release creates is asked as written (unqualified) and then
        // looked up in the current schema: nothing by that name on the search path
        // (which holds the current schema) means nothing there either.
        match r.schema.as_deref() {
            Some(s) if !self.current.is_empty() && s == self.current => {
                let bare = Relation {
                    schema: None,
                    name: r.name.clone(),
                };
                match self.relations.get(&qualified(&bare)) {
                    Some(None) => Some(None),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// What the relation as written is now (`pg_class.relkind`), when the catalog was
    /// asked about it and it is there (`None`: not there, or not asked).
    pub(super) fn relation_kind(&self, r: &Relation) -> Option<&str> {
        let schema = self.relation_schema(r)??;
        let found = Relation {
            schema: Some(schema.to_string()),
            name: r.name.clone(),
        };
        self.existing.get(&found).map(String::as_str)
    }

    pub(super) fn type_schema(&self, r: &Relation) -> Option<Option<&str>> {
        self.types.get(&qualified(r)).map(|s| s.as_deref())
    }

    pub(super) fn schema_exists(&self, name: &str) -> bool {
        self.schemas.get(name).copied().unwrap_or(false)
    }

    /// Whether every function a call of `f` could reach is built in (unknown: no).
    pub(super) fn builtin(&self, f: &Relation) -> bool {
        self.functions.get(f).copied().unwrap_or(false)
    }

    /// Whether none of these unqualified function names could reach a function the
    /// database defines.
    pub(super) fn all_builtin(&self, names: &[String]) -> bool {
        names.iter().all(|n| self.builtin(&unqualified(n)))
    }

    /// The table's keys (asked once per table).
    pub(super) fn keys(
        &mut self,
        tx: &mut Transaction<'_>,
        table: &Relation,
    ) -> Result<Keys, postgres::Error> {
        if let Some(k) = self.keys.get(table) {
            return Ok(k.clone());
        }
        let got = rows(tx, KEYS, &[qualified(table).as_str()])?;
        let mut keys = Keys::default();
        for r in got {
            let cols: Vec<String> = r.get(1);
            if r.get::<_, bool>(0) {
                keys.primary = Some(cols.clone());
            }
            keys.unique.push(cols);
        }
        self.keys.insert(table.clone(), keys.clone());
        Ok(keys)
    }
}

/// [`rows`] with text-array parameters.
pub(super) fn rows_typed(
    tx: &mut Transaction<'_>,
    q: Fixed,
    params: &[&Vec<String>],
) -> Result<Vec<postgres::Row>, postgres::Error> {
    let typed: Vec<(&(dyn postgres::types::ToSql + Sync), postgres::types::Type)> = params
        .iter()
        .map(|p| {
            (
                *p as &(dyn postgres::types::ToSql + Sync),
                postgres::types::Type::TEXT_ARRAY,
            )
        })
        .collect();
    let mut sp = tx.transaction()?;
    let r = sp.query_typed(q.sql(), &typed);
    sp.rollback()?;
    r
}

/// Column `$2` of table `$1`: its type as SQL, its type's oid and category.
pub(super) const COLUMN: Fixed = Fixed::new(
    "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, pg_catalog.format('%s', t.typcategory) \
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid \
     WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND a.attname OPERATOR(pg_catalog.=) $2 \
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped",
);

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(schema: Option<&str>, name: &str) -> Relation {
        Relation {
            schema: schema.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn a_name_absent_from_the_search_path_is_absent_from_the_current_schema() {
        let mut cat = Catalog {
            current: "public".into(),
            ..Catalog::default()
        };
        cat.relations.insert(qualified(&rel(None, "t")), None);
        cat.relations
            .insert(qualified(&rel(None, "u")), Some("other".into()));
        // Not there as written, so not in the current schema either: no question.
        assert_eq!(cat.relation_schema(&rel(Some("public"), "t")), Some(None));
        // Found elsewhere on the path, or another schema, or never asked: unknown.
        assert_eq!(cat.relation_schema(&rel(Some("public"), "u")), None);
        assert_eq!(cat.relation_schema(&rel(Some("app"), "t")), None);
        assert_eq!(cat.relation_schema(&rel(Some("public"), "v")), None);
        // Without a current schema nothing is inferred.
        cat.current.clear();
        assert_eq!(cat.relation_schema(&rel(Some("public"), "t")), None);
    }
}
