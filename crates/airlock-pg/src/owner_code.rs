//! Code owned by someone else, sitting where bundle SQL would fire it.
//!
//! A superuser session cannot lend bundle SQL a lesser identity for good: code that
//! fires inside it (a trigger, a rule, a policy, a default…) may run
//! `RESET SESSION AUTHORIZATION` or `RESET ROLE` and is the login superuser again,
//! whatever `SET LOCAL SESSION AUTHORIZATION` or `SET LOCAL ROLE` the tier ran under.
//! So when airlock's session can reach a superuser, it refuses to run bundle SQL while
//! such code, owned by a role that is not a superuser (nor airlock's own login role),
//! sits on any relation of the database: "the relations the release touches" is
//! approximated, fail-closed, by all of them.
//!
//! Counted: triggers (their function's owner; a `WHEN` condition: the table's owner),
//! event triggers (their function's owner), rules, views, row-security policies of
//! tables that enable row security, column defaults and generated columns, check
//! constraints, domain constraints (the domain's owner), index expressions and
//! predicates, and every function or operator such an object calls (by `pg_depend`)
//! owned by such a role. A default or check that is a plain constant, a serial's
//! `nextval('…'::regclass)`, or one of `now()`, `CURRENT_TIMESTAMP`, `CURRENT_DATE`,
//! `LOCALTIMESTAMP`, `gen_random_uuid()` (all resolved in `pg_catalog`) is not code
//! anyone can abuse, and is not counted.
//!
//! Invariant: [`find`] is one query over `pg_catalog`, run as airlock's own role under
//! its pins (`search_path = pg_catalog, pg_temp`, schema-qualified operators), so
//! nothing it reads can be redirected by the code it looks for.

use super::{sql_err, DbError};
use postgres::GenericClient;
use schemars::JsonSchema;
use serde::Serialize;

/// One object whose code a non-superuser owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OwnerCode {
    /// trigger, event trigger, rule, view, policy, default, check, domain check,
    /// index expression, function
    pub kind: String,
    /// The object, schema-qualified (`trigger stamp on public.approvals executing public.pwn()`).
    pub object: String,
    pub owner: String,
}

impl std::fmt::Display for OwnerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (owner {})", self.object, self.owner)
    }
}

/// Expressions that are not code (see the module comment), as `pg_get_expr` prints
/// them under airlock's search_path.
const HARMLESS_EXPR: &str = r#"^(now\(\)|CURRENT_TIMESTAMP|CURRENT_DATE|LOCALTIMESTAMP|gen_random_uuid\(\)|true|false|-?[0-9]+(\.[0-9]+)?|\(-[0-9]+(\.[0-9]+)?\)|nextval\('([^']|'')+'::regclass\)|'([^']|'')*'::[a-z0-9_ ."\[\]]+|NULL::[a-z0-9_ ."\[\]]+)$"#;

/// Cost: most catalog rows are code a superuser owns, which is never listed; naming an
/// object (`regclass`, `regprocedure` output) and decompiling an expression cost far
/// more than reading its row. So the relations and functions untrusted roles own are
/// found first (one scan each), then what calls such a function (by `pg_depend`), and
/// each branch keeps only the rows of those before naming anything; index expressions,
/// many and large, are reached through `pg_index`'s own indexes. At 5,000 tables with
/// 15,000 expression indexes and 5,000 functions, all a superuser's: 38-42 ms a run
/// before, 7-7.5 ms now. `tests/data/owner_code_reference.sql` is the query before: a
/// test holds the two to the same answer.
const QUERY: &str = r#"
WITH trusted AS MATERIALIZED (
  SELECT COALESCE(pg_catalog.array_agg(r.oid), '{}'::pg_catalog.oid[]) AS oids FROM pg_catalog.pg_roles r
  WHERE r.rolsuper OR r.rolname OPERATOR(pg_catalog.=) SESSION_USER
),
-- The relations and functions an untrusted role owns (few, where airlock may run).
untrusted_rel AS MATERIALIZED (
  SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relowner OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[])
),
untrusted_proc AS MATERIALIZED (
  SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.proowner OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[])
),
-- Every object that calls one of those functions (by pg_depend), directly or as an
-- operator's code.
calls(classid, objid, fn, op) AS MATERIALIZED (
  SELECT dep.classid, dep.objid, dep.refobjid, NULL::pg_catalog.oid
    FROM untrusted_proc f
    JOIN pg_catalog.pg_depend dep ON dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
                                 AND dep.refobjid OPERATOR(pg_catalog.=) f.oid
  UNION ALL
  SELECT dep.classid, dep.objid, o.oprcode::pg_catalog.oid, o.oid
    FROM pg_catalog.pg_operator o
    JOIN pg_catalog.pg_depend dep ON dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass::pg_catalog.oid
                                 AND dep.refobjid OPERATOR(pg_catalog.=) o.oid
   WHERE o.oprcode::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (SELECT f.oid FROM untrusted_proc f)
),
-- The code that may be listed: its owner is untrusted, or it calls such a function.
code(kind, object, owner, expr, classid, objid) AS (
  SELECT 'trigger',
         pg_catalog.format('trigger %I on %s executing %s', t.tgname, t.tgrelid::pg_catalog.regclass, t.tgfoid::pg_catalog.regprocedure),
         p.proowner, NULL::pg_catalog.text, 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid, t.oid
    FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) t.tgfoid
   WHERE NOT t.tgisinternal
     AND (t.tgfoid OPERATOR(pg_catalog.=) ANY (SELECT f.oid FROM untrusted_proc f)
          OR t.oid OPERATOR(pg_catalog.=) ANY (SELECT k.objid FROM calls k WHERE k.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid))
  UNION ALL
  SELECT 'trigger',
         pg_catalog.format('WHEN condition of trigger %I on %s', t.tgname, t.tgrelid::pg_catalog.regclass),
         c.relowner, NULL, 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid, t.oid
    FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
   WHERE t.tgqual IS NOT NULL
     AND (t.tgrelid OPERATOR(pg_catalog.=) ANY (SELECT u.oid FROM untrusted_rel u) OR t.oid OPERATOR(pg_catalog.=) ANY (SELECT k.objid FROM calls k WHERE k.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid))
  UNION ALL
  SELECT 'event trigger',
         pg_catalog.format('event trigger %I executing %s', e.evtname, e.evtfoid::pg_catalog.regprocedure),
         p.proowner, NULL, 'pg_catalog.pg_event_trigger'::pg_catalog.regclass::pg_catalog.oid, e.oid
    FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) e.evtfoid
  UNION ALL
  SELECT CASE WHEN r.rulename OPERATOR(pg_catalog.=) '_RETURN' THEN 'view' ELSE 'rule' END,
         CASE WHEN r.rulename OPERATOR(pg_catalog.=) '_RETURN'
              THEN pg_catalog.format('view %s', r.ev_class::pg_catalog.regclass)
              ELSE pg_catalog.format('rule %I on %s', r.rulename, r.ev_class::pg_catalog.regclass) END,
         c.relowner, NULL, 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid, r.oid
    FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.ev_class
   WHERE c.relkind OPERATOR(pg_catalog.<>) 'm'
     AND (r.ev_class OPERATOR(pg_catalog.=) ANY (SELECT u.oid FROM untrusted_rel u) OR r.oid OPERATOR(pg_catalog.=) ANY (SELECT k.objid FROM calls k WHERE k.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid))
  UNION ALL
  SELECT 'policy',
         pg_catalog.format('policy %I on %s', pol.polname, pol.polrelid::pg_catalog.regclass),
         c.relowner, NULL, 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid, pol.oid
    FROM pg_catalog.pg_policy pol JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pol.polrelid
   WHERE c.relrowsecurity
     AND (pol.polrelid OPERATOR(pg_catalog.=) ANY (SELECT u.oid FROM untrusted_rel u) OR pol.oid OPERATOR(pg_catalog.=) ANY (SELECT k.objid FROM calls k WHERE k.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid))
  UNION ALL
  SELECT 'default',
         pg_catalog.format('%s of column %I on %s',
                           CASE WHEN a.attgenerated OPERATOR(pg_catalog.<>) '' THEN 'generation expression' ELSE 'default' END,
                           a.attname, d.adrelid::pg_catalog.regclass),
         c.relowner, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
         'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid, d.oid
    FROM pg_catalog.pg_attrdef d
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.adrelid
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid AND a.attnum OPERATOR(pg_catalog.=) d.adnum
   WHERE d.adrelid OPERATOR(pg_catalog.=) ANY (SELECT u.oid FROM untrusted_rel u) OR d.oid OPERATOR(pg_catalog.=) ANY (SELECT k.objid FROM calls k WHERE k.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid)
  UNION ALL
  SELECT 'check',
         pg_catalog.format('check constraint %I on %s', k.conname, k.conrelid::pg_catalog.regclass),
         c.relowner, pg_catalog.pg_get_expr(k.conbin, k.conrelid),
         'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid, k.oid
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.conrelid
   WHERE k.contype OPERATOR(pg_catalog.=) 'c'
     AND (k.conrelid OPERATOR(pg_catalog.=) ANY (SELECT u.oid FROM untrusted_rel u) OR k.oid OPERATOR(pg_catalog.=) ANY (SELECT x.objid FROM calls x WHERE x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid))
  UNION ALL
  SELECT 'domain check',
         pg_catalog.format('check constraint %I on domain %s', k.conname, k.contypid::pg_catalog.regtype),
         ty.typowner, NULL, 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid, k.oid
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) k.contypid
   WHERE k.contype OPERATOR(pg_catalog.=) 'c'
     AND (ty.typowner OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[]) OR k.oid OPERATOR(pg_catalog.=) ANY (SELECT x.objid FROM calls x WHERE x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid))
  UNION ALL
  -- Index expressions are many, and their rows large: found from the relations and
  -- from the calls, by pg_index's own indexes (an index on both is listed once).
  SELECT 'index expression',
         pg_catalog.format('index %s on %s (expression or predicate)', i.indexrelid::pg_catalog.regclass, i.indrelid::pg_catalog.regclass),
         c.relowner, NULL, 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, i.indexrelid
    FROM (SELECT i.indexrelid, i.indrelid
            FROM untrusted_rel u JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) u.oid
           WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
          UNION
          SELECT i.indexrelid, i.indrelid
            FROM calls k JOIN pg_catalog.pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) k.objid
           WHERE k.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
             AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)) i
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid
),
found(kind, object, owner) AS (
  SELECT x.kind, x.object, x.owner FROM code x
   WHERE x.expr IS NULL OR NOT (x.expr OPERATOR(pg_catalog.~) $1)
  UNION
  SELECT 'function',
         pg_catalog.format('function %s, called by %s', k.fn::pg_catalog.regprocedure, x.object),
         p.proowner
    FROM calls k
    JOIN code x ON x.classid OPERATOR(pg_catalog.=) k.classid AND x.objid OPERATOR(pg_catalog.=) k.objid
    JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) k.fn
   WHERE k.op IS NULL
  UNION
  SELECT 'function',
         pg_catalog.format('function %s of operator %s, called by %s', k.fn::pg_catalog.regprocedure, k.op::pg_catalog.regoperator, x.object),
         p.proowner
    FROM calls k
    JOIN code x ON x.classid OPERATOR(pg_catalog.=) k.classid AND x.objid OPERATOR(pg_catalog.=) k.objid
    JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) k.fn
   WHERE k.op IS NOT NULL
)
SELECT f.kind, f.object, pg_catalog.pg_get_userbyid(f.owner)::pg_catalog.text
  FROM found f
 WHERE f.owner OPERATOR(pg_catalog.<>) ALL ((SELECT t.oids FROM trusted t)::pg_catalog.oid[])
 ORDER BY 2, 1
"#;

/// Every object on the database's relations whose code a role other than a superuser
/// or airlock's own login role owns (see the module comment).
pub fn find(client: &mut impl GenericClient) -> Result<Vec<OwnerCode>, DbError> {
    find_with(client, QUERY)
}

/// [`find`] by a statement prepared once a connection (`cache`, to be used with that
/// connection only): without parameters, PostgreSQL plans it once and keeps the plan,
/// where [`find`] is planned on every call (2–3 ms; a deploy with online tiers asks
/// once for each tier). The same query, its pattern written in as a dollar-quoted
/// literal (whatever `standard_conforming_strings` says).
pub fn find_prepared(
    client: &mut impl GenericClient,
    cache: &mut Option<postgres::Statement>,
) -> Result<Vec<OwnerCode>, DbError> {
    let st = match cache {
        Some(st) => st.clone(),
        None => {
            let text = QUERY.replace("$1", &format!("$re${HARMLESS_EXPR}$re$::pg_catalog.text"));
            let st = client
                .prepare(&text)
                .map_err(|e| sql_err("looking for code owned by non-superusers", &e))?;
            cache.insert(st).clone()
        }
    };
    let rows = client
        .query(&st, &[])
        .map_err(|e| sql_err("looking for code owned by non-superusers", &e))?;
    Ok(rows.iter().map(row).collect())
}

/// [`find`] by another query text with the same parameter and columns (tests hold the
/// query to the one before it, `tests/data/owner_code_reference.sql`).
pub fn find_with(client: &mut impl GenericClient, query: &str) -> Result<Vec<OwnerCode>, DbError> {
    let rows = client
        .query_typed(query, &[(&HARMLESS_EXPR, postgres::types::Type::TEXT)])
        .map_err(|e| sql_err("looking for code owned by non-superusers", &e))?;
    Ok(rows.iter().map(row).collect())
}

fn row(r: &postgres::Row) -> OwnerCode {
    OwnerCode {
        kind: r.get(0),
        object: r.get(1),
        owner: r.get(2),
    }
}

#[cfg(test)]
mod tests {
    use super::HARMLESS_EXPR;

    #[test]
    fn only_constants_and_a_few_builtins_are_harmless() {
        let re = regex::Regex::new(HARMLESS_EXPR).unwrap();
        for ok in [
            "now()",
            "0",
            "(-1)",
            "1.5",
            "'x'::text",
            "'it''s'::character varying",
            "'{}'::text[]",
            "nextval('public.t_id_seq'::regclass)",
            "NULL::integer",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "public.now()",
            "(i > 0)",
            "set_config('role'::text, 'x'::text, true)",
            "nextval('a'::regclass) + public.f()",
            "'x'::text || public.f()",
            "now() + '1 day'::interval",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }
}
