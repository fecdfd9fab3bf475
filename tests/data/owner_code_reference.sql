-- The owner-code query (crates/airlock-pg/src/owner_code.rs) before it filtered by
-- owner before naming objects, frozen: tests/least_privilege.rs asserts the query
-- finds exactly what this one finds. Its one parameter: the harmless-expression
-- pattern.
WITH trusted AS (
  SELECT r.oid FROM pg_catalog.pg_roles r
  WHERE r.rolsuper OR r.rolname OPERATOR(pg_catalog.=) SESSION_USER
),
code(kind, object, owner, expr, classid, objid) AS (
  SELECT 'trigger',
         pg_catalog.format('trigger %I on %s executing %s', t.tgname, t.tgrelid::pg_catalog.regclass, t.tgfoid::pg_catalog.regprocedure),
         p.proowner, NULL::pg_catalog.text, 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid, t.oid
    FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) t.tgfoid
   WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'trigger',
         pg_catalog.format('WHEN condition of trigger %I on %s', t.tgname, t.tgrelid::pg_catalog.regclass),
         c.relowner, NULL, 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid, t.oid
    FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
   WHERE t.tgqual IS NOT NULL
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
  UNION ALL
  SELECT 'policy',
         pg_catalog.format('policy %I on %s', pol.polname, pol.polrelid::pg_catalog.regclass),
         c.relowner, NULL, 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid, pol.oid
    FROM pg_catalog.pg_policy pol JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pol.polrelid
   WHERE c.relrowsecurity
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
  UNION ALL
  SELECT 'check',
         pg_catalog.format('check constraint %I on %s', k.conname, k.conrelid::pg_catalog.regclass),
         c.relowner, pg_catalog.pg_get_expr(k.conbin, k.conrelid),
         'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid, k.oid
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.conrelid
   WHERE k.contype OPERATOR(pg_catalog.=) 'c'
  UNION ALL
  SELECT 'domain check',
         pg_catalog.format('check constraint %I on domain %s', k.conname, k.contypid::pg_catalog.regtype),
         ty.typowner, NULL, 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid, k.oid
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) k.contypid
   WHERE k.contype OPERATOR(pg_catalog.=) 'c'
  UNION ALL
  SELECT 'index expression',
         pg_catalog.format('index %s on %s (expression or predicate)', i.indexrelid::pg_catalog.regclass, i.indrelid::pg_catalog.regclass),
         c.relowner, NULL, 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, i.indexrelid
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid
   WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
),
called(kind, object, owner) AS (
  SELECT 'function',
         pg_catalog.format('function %s, called by %s', p.oid::pg_catalog.regprocedure, x.object),
         p.proowner
    FROM code x
    JOIN pg_catalog.pg_depend dep ON dep.classid OPERATOR(pg_catalog.=) x.classid AND dep.objid OPERATOR(pg_catalog.=) x.objid
    JOIN pg_catalog.pg_proc p ON dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid
                             AND p.oid OPERATOR(pg_catalog.=) dep.refobjid
  UNION ALL
  SELECT 'function',
         pg_catalog.format('function %s of operator %s, called by %s', p.oid::pg_catalog.regprocedure, o.oid::pg_catalog.regoperator, x.object),
         p.proowner
    FROM code x
    JOIN pg_catalog.pg_depend dep ON dep.classid OPERATOR(pg_catalog.=) x.classid AND dep.objid OPERATOR(pg_catalog.=) x.objid
    JOIN pg_catalog.pg_operator o ON dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass::pg_catalog.oid
                                 AND o.oid OPERATOR(pg_catalog.=) dep.refobjid
    JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) o.oprcode::pg_catalog.oid
),
found(kind, object, owner) AS (
  SELECT x.kind, x.object, x.owner FROM code x
   WHERE x.expr IS NULL OR NOT (x.expr OPERATOR(pg_catalog.~) $1)
  UNION
  SELECT y.kind, y.object, y.owner FROM called y
)
SELECT f.kind, f.object, pg_catalog.pg_get_userbyid(f.owner)::pg_catalog.text
  FROM found f
 WHERE f.owner OPERATOR(pg_catalog.<>) ALL (SELECT t.oid FROM trusted t)
 ORDER BY 2, 1
