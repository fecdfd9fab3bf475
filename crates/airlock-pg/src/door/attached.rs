//! The planner's part of the door (DESIGN §5.1): code a role attached to a table that
//! PostgreSQL runs when it merely *plans* a read of it, though the question never names
//! it. Loading a table for the planner const-folds its indexes' expressions and
//! predicates, its statistics objects' expressions, its partition key, and (under
//! constraint exclusion) its and its children's CHECK constraints: an IMMUTABLE
//! function there runs, as the session's login, the first time any query of the table
//! is planned, `SELECT count(*) FROM ONLY t` included.
//!
//! Invariant: before airlock plans a read of a relation whose attached code it has not
//! proven built in, [`CTE`] (catalogs only: nothing of the relation is planned) finds
//! every object PostgreSQL records as depending on that relation, on its ancestors or
//! on its descendants (`pg_depend`, so a kind of object a later major adds is judged
//! too), and every object those depend on that is not built in. Left out are only the
//! kinds a read cannot run: triggers and rules on writes (they fire on INSERT, UPDATE,
//! DELETE), column defaults and stored generated columns (computed on writes), policies
//! (airlock's reads set `row_security = off`, or are a superuser's, which bypasses
//! them: a policy makes such a read fail, never run), functions whose body names the
//! relation (they run when called, and a call is the question's own dependency) and
//! the relation's row type. Anything else attached that names a function, operator,
//! cast, operator class or family, type (but an enum or a row type), text-search
//! object or any other object not built in, owned by a role that is neither a
//! superuser nor the session's own login (or of a catalog with no owner a role could
//! be), is code a role chose: the read is not asked, and the answer names it and its
//! owner. Collations (libc's or ICU's rules, no code of a role's) and the objects a
//! relation is built from (columns, other relations, constraints, schemas,
//! extensions) are not code. A superuser's own code (an extension's functions and
//! operator classes: a trusted extension's objects are the bootstrap superuser's) and
//! the login's own are trusted as the login itself is.
//!
//! Limit: an operator class a superuser made is trusted with the functions it names,
//! whoever owns them (a superuser chose them).

/// The relations `tree` reaches: itself, its ancestors and its descendants (`reach`).
macro_rules! reach {
    () => {
        "\
up(oid) AS ( \
  SELECT tree.oid FROM tree \
  UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid OPERATOR(pg_catalog.=) up.oid \
), down(oid) AS ( \
  SELECT tree.oid FROM tree \
  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN down ON i.inhparent OPERATOR(pg_catalog.=) down.oid \
), reach(oid) AS ( \
  SELECT up.oid FROM up UNION SELECT down.oid FROM down \
), "
    };
}

/// What is attached to each relation of `reach`, and the code it names (`attached`,
/// `attached_ref`, `attached_owned`, `attached_code`).
macro_rules! attached {
    () => {
        "attached(classid, objid, rel) AS ( \
  SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, reach.oid, reach.oid FROM reach \
  UNION \
  SELECT d.classid, d.objid, reach.oid FROM reach JOIN pg_catalog.pg_depend d \
      ON d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
     AND d.refobjid OPERATOR(pg_catalog.=) reach.oid \
   WHERE CASE \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass THEN EXISTS (SELECT FROM pg_catalog.pg_index x \
       WHERE x.indexrelid OPERATOR(pg_catalog.=) d.objid AND x.indrelid OPERATOR(pg_catalog.=) reach.oid) \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN EXISTS (SELECT FROM pg_catalog.pg_constraint k \
       WHERE k.oid OPERATOR(pg_catalog.=) d.objid AND k.conrelid OPERATOR(pg_catalog.=) reach.oid) \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN EXISTS (SELECT FROM pg_catalog.pg_rewrite w \
       WHERE w.oid OPERATOR(pg_catalog.=) d.objid AND w.ev_class OPERATOR(pg_catalog.=) reach.oid \
         AND w.ev_type OPERATOR(pg_catalog.=) '1') \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN EXISTS (SELECT FROM pg_catalog.pg_attrdef a \
       JOIN pg_catalog.pg_attribute t ON t.attrelid OPERATOR(pg_catalog.=) a.adrelid AND t.attnum OPERATOR(pg_catalog.=) a.adnum \
       WHERE a.oid OPERATOR(pg_catalog.=) d.objid AND t.attgenerated OPERATOR(pg_catalog.=) 'v') \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN false \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass THEN false \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass THEN false \
     WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass THEN false \
     ELSE true END \
), attached_ref(rel, classid, objid, refclassid, refobjid) AS ( \
  SELECT DISTINCT a.rel, a.classid, a.objid, d.refclassid, d.refobjid FROM attached a JOIN pg_catalog.pg_depend d \
      ON d.classid OPERATOR(pg_catalog.=) a.classid AND d.objid OPERATOR(pg_catalog.=) a.objid \
   WHERE NOT (a.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
              AND a.objid OPERATOR(pg_catalog.=) a.rel AND d.objsubid OPERATOR(pg_catalog.<>) 0) \
     AND d.refclassid OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog.pg_class'::pg_catalog.regclass, \
       'pg_catalog.pg_namespace'::pg_catalog.regclass, 'pg_catalog.pg_collation'::pg_catalog.regclass, \
       'pg_catalog.pg_extension'::pg_catalog.regclass, 'pg_catalog.pg_constraint'::pg_catalog.regclass]::pg_catalog.oid[]) \
     AND NOT EXISTS (SELECT FROM pg_catalog.pg_type y \
       WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass \
         AND y.oid OPERATOR(pg_catalog.=) d.refobjid AND y.typtype OPERATOR(pg_catalog.=) ANY ('{e,c}'::pg_catalog.char[])) \
), attached_owned(rel, what, owner) AS ( \
  SELECT r.rel, pg_catalog.pg_describe_object(r.refclassid, r.refobjid, 0) OPERATOR(pg_catalog.||) ', in ' \
           OPERATOR(pg_catalog.||) pg_catalog.pg_describe_object(r.classid, r.objid, 0), \
         COALESCE(p.proowner, o.oprowner, y.typowner, oc.opcowner, of.opfowner, \
           tc.cfgowner, td.dictowner, cp.proowner, cy.typowner, \
           CASE WHEN r.refclassid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_am'::pg_catalog.regclass, \
             'pg_catalog.pg_ts_parser'::pg_catalog.regclass, 'pg_catalog.pg_ts_template'::pg_catalog.regclass]::pg_catalog.oid[]) \
             THEN '10'::pg_catalog.oid END) \
    FROM attached_ref r \
    LEFT JOIN pg_catalog.pg_proc p ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
      AND p.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_operator o ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass \
      AND o.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_type y ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass \
      AND y.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_opclass oc ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_opclass'::pg_catalog.regclass \
      AND oc.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_opfamily of ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_opfamily'::pg_catalog.regclass \
      AND of.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_ts_config tc ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_ts_config'::pg_catalog.regclass \
      AND tc.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_ts_dict td ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_ts_dict'::pg_catalog.regclass \
      AND td.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_cast k ON r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_cast'::pg_catalog.regclass \
      AND k.oid OPERATOR(pg_catalog.=) r.refobjid \
    LEFT JOIN pg_catalog.pg_proc cp ON cp.oid OPERATOR(pg_catalog.=) k.castfunc \
    LEFT JOIN pg_catalog.pg_type cy ON cy.oid OPERATOR(pg_catalog.=) k.castsource \
), attached_code(rel, what, owner) AS ( \
  SELECT a.rel, a.what, CASE WHEN a.owner IS NULL THEN 'unknown' \
    ELSE pg_catalog.format('%s', pg_catalog.pg_get_userbyid(a.owner)) END FROM attached_owned a \
   WHERE a.owner IS NULL OR NOT EXISTS (SELECT FROM pg_catalog.pg_roles w WHERE w.oid OPERATOR(pg_catalog.=) a.owner \
     AND (w.rolsuper OR w.rolname OPERATOR(pg_catalog.=) SESSION_USER)) \
)"
    };
}

/// A CTE body fragment (to follow `WITH RECURSIVE …, ` and a CTE `tree(oid)` of the
/// relations the read reaches) that defines `attached_code(rel, what, owner)`: one row
/// per object not built in that code attached to a relation of `tree`, its ancestors
/// or descendants depends on, described as PostgreSQL describes it (`rel`: the
/// relation it is attached to).
pub(crate) const CTE: &str = concat!(reach!(), attached!());

/// Every relation of the database whose own attached code (not its family's) a role
/// defines, and the highest relation oid there now: what the door's quick test of a
/// question compares the relations it reaches with (`TAINTED` and `SEEN` in
/// [`super::open`]). Catalogs only.
pub(crate) const TAINTED: &str = concat!("WITH RECURSIVE reach(oid) AS ( \
  SELECT c.oid FROM pg_catalog.pg_class c \
  WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m,f}'::pg_catalog.char[]) \
    AND c.relnamespace OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog'::pg_catalog.regnamespace, \
      'information_schema'::pg_catalog.regnamespace, 'pg_toast'::pg_catalog.regnamespace]::pg_catalog.oid[]) \
), ", attached!(), " \
SELECT COALESCE(pg_catalog.array_agg(DISTINCT c.rel), '{}'::pg_catalog.oid[]), \
  (SELECT pg_catalog.max(k.oid) FROM pg_catalog.pg_class k) \
FROM attached_code c");

/// The relations of `$1` (an `oid[]`) whose attached code is not built in, with what
/// it is and whose: catalogs only, nothing of those relations planned.
const FIND: &str =
    "WITH RECURSIVE tree(oid) AS (SELECT pg_catalog.unnest($1::pg_catalog.oid[])), @CTE@ \
SELECT DISTINCT c.what, c.owner FROM attached_code c ORDER BY 1 LIMIT 20";

/// One object not built in that a relation's attached code uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// `function app.k(), in index app.accounts_k`.
    pub what: String,
    pub owner: String,
}

impl std::fmt::Display for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, which role {} defines", self.what, self.owner)
    }
}

/// What code not built in is attached to the relations `oids` (see the module
/// comment): read from the catalogs only, so nothing of theirs runs.
pub fn find(
    client: &mut impl postgres::GenericClient,
    oids: &[u32],
) -> Result<Vec<Attached>, postgres::Error> {
    if oids.is_empty() {
        return Ok(vec![]);
    }
    let sql = FIND.replace("@CTE@", CTE);
    let rows = client.query(sql.as_str(), &[&oids])?;
    Ok(rows
        .iter()
        .map(|r| Attached {
            what: r.get(0),
            owner: r.get(1),
        })
        .collect())
}

/// `found` as one clause: "function app.k(), in index app.accounts_k, which role app
/// defines; …".
pub fn describe(found: &[Attached]) -> String {
    found
        .iter()
        .map(Attached::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
