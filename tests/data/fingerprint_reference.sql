-- FROZEN REFERENCE: do not edit. This is src/db/fingerprint.sql as it was before
-- the description query was made set-based (issue 16, "apply stays flat"): the
-- query every fingerprint in a ledger so far was computed with. tests/fingerprint.rs
-- runs it next to the current query on every schema state it builds and asserts both
-- describe every object with the same (kind, name, definition), byte for byte, so a
-- faster query can never change a stored fingerprint. It is only ever run by tests.
--
-- The schema fingerprint's description (src/db/fingerprint.rs): one row
-- (kind, name, definition) per object that `pg_dump --schema-only` prints.
--
-- Rules for this text (checked by a unit test with the PostgreSQL parser):
--   * every function is called as pg_catalog.f(...), every operator is written
--     OPERATOR(pg_catalog.op), every type and table is pg_catalog-qualified, and no
--     construct looks an operator up implicitly (no IN, IS DISTINCT FROM, NULLIF,
--     LIKE, simple CASE, JOIN USING): nothing a role could plant in another schema
--     can be picked, whatever search_path says;
--   * no backslash anywhere, so the text means the same under any
--     standard_conforming_strings;
--   * a definition holds names and server-rendered text (pg_get_*def, format_type,
--     reg* output under the pinned search_path), never an OID, a statistic, a
--     sequence value or anything physical. Lists are in a defined order.
--
-- Cost (apply plans it once per connection and runs it twice; a cold backend pays
-- most for planning): every table reference, join and subquery costs planning time,
-- so each branch scans one catalog with filters on that catalog alone, whose OIDs
-- come from ctx (computed once) as InitPlan parameters: a seq scan filter, or the
-- keys of an index scan; names are looked up with pg_identify_object rather than
-- joined. A definition is a row value as text, ROW(...)::text: fields in a fixed
-- order, NULL distinct from an empty string, quoted where needed, so one text
-- means one row; building it costs a tenth of jsonb_build_object. A whole catalog
-- row (to_jsonb(x) minus its OIDs, which takes the columns of any server version)
-- costs ~10 us, so it is only used for catalogs with few rows per schema, and
-- computed only for the rows the scan's filter lets through.
--
-- The words between at-signs are placeholders: LEDGER_* are replaced by literals
-- from fingerprint::LEDGER, PG14_* and PG15_* by fragments for the server's version.
WITH
-- One row. nsps: the schemas pg_dump dumps, every schema but pg_* and
-- information_schema. rels: their relations; col_rels: those whose columns are
-- described (not sequences' or indexes'). The ledger's OIDs (0 when there is none):
-- what airlock creates for its ledger is left out (the ledger module verifies it),
-- with everything attached to it: its columns, constraints, indexes, triggers, and
-- so their comments and ACLs. Rules and policies on the ledger count.
ctx AS MATERIALIZED (
    SELECT s.nsps, s.ledger_nsp, r.rels, r.col_rels,
        COALESCE(r.ledger_rel, 0::pg_catalog.oid) AS ledger_rel,
        ARRAY(SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.proname OPERATOR(pg_catalog.=) ANY (@LEDGER_FUNCTIONS@)
              AND p.pronamespace OPERATOR(pg_catalog.=) s.ledger_nsp
              AND p.pronargs OPERATOR(pg_catalog.=) 0) AS ledger_functions
    FROM (SELECT pg_catalog.array_agg(n.oid) FILTER (
                WHERE pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_'
                  AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema') AS nsps,
            COALESCE(pg_catalog.min(n.oid) FILTER (
                WHERE n.nspname OPERATOR(pg_catalog.=) @LEDGER_SCHEMA@), 0::pg_catalog.oid) AS ledger_nsp
        FROM pg_catalog.pg_namespace n) s
    CROSS JOIN LATERAL (
        SELECT pg_catalog.array_agg(c.oid) AS rels,
            pg_catalog.array_agg(c.oid) FILTER (
                WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,f,c}'::pg_catalog."char"[])
                  AND NOT (c.relnamespace OPERATOR(pg_catalog.=) s.ledger_nsp
                       AND c.relname OPERATOR(pg_catalog.=) @LEDGER_TABLE@)) AS col_rels,
            pg_catalog.min(c.oid) FILTER (
                WHERE c.relnamespace OPERATOR(pg_catalog.=) s.ledger_nsp
                  AND c.relname OPERATOR(pg_catalog.=) @LEDGER_TABLE@) AS ledger_rel
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace OPERATOR(pg_catalog.=) ANY (s.nsps)) r
),
-- One row per object: (catalog, object, sub-object, kind when not pg_identify_object's
-- type, definition).
--
-- Privileges on what initdb made in pg_catalog count where they differ from the
-- initial ones (pg_dump prints those GRANTs and REVOKEs), as kind 'system acl'; they
-- come from the same scans as the dumped schemas' objects. Only objects with an ACL
-- can differ: GRANT and REVOKE never leave an ACL NULL, and initdb records initial
-- privileges for exactly the objects with one.
obj AS (
    -- schemas
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass AS classid, n.oid AS objid,
        0 AS objsubid, NULL::pg_catalog.text AS kind,
        ROW(@NORM(CASE WHEN n.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid
                    AND n.nspowner OPERATOR(pg_catalog.=) @INITIAL_PUBLIC_OWNER@::pg_catalog.oid THEN 'initial'
                ELSE pg_catalog.pg_get_userbyid(n.nspowner)::pg_catalog.text END@|@pg_catalog.pg_get_userbyid(n.nspowner))@,
            @NORM(@ACLDIFF(n.nspacl@|@COALESCE(i.initprivs, pg_catalog.acldefault('n', n.nspowner))@|@'n')@@|@COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner)))@)::pg_catalog.text AS def
    FROM pg_catalog.pg_namespace n
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) n.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE n.oid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
      AND n.oid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_nsp FROM ctx)

    -- extensions (not the ones initdb made); members are marked on each object
    UNION ALL
    SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid, 0, NULL,
        ROW(e.extversion, e.extnamespace::pg_catalog.regnamespace, e.extrelocatable,
            e.extconfig::pg_catalog.regclass[], e.extcondition)::pg_catalog.text
    FROM pg_catalog.pg_extension e
    WHERE e.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid

    -- types: base, shell, enum, domain, range, standalone composite (not row types
    -- of tables, implicit arrays (pg_dump's test) or multiranges: they come with
    -- their owner); and changed privileges of pg_catalog's types
    UNION ALL
    SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0,
        CASE WHEN t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
            THEN 'system acl' END,
        CASE WHEN t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
            THEN t.typacl::pg_catalog.text
            ELSE ROW(pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) ARRAY['oid', 'typname',
                    'typnamespace', 'typowner', 'typrelid', 'typelem', 'typarray', 'typbasetype',
                    'typcollation', 'typdefaultbin', 'typdefault', 'typacl']::pg_catalog.text[],
                pg_catalog.pg_get_userbyid(t.typowner),
                COALESCE(t.typacl, pg_catalog.acldefault('T', t.typowner)),
                CASE WHEN t.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                    THEN pg_catalog.format_type(t.typelem, NULL) END,
                CASE WHEN t.typbasetype OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                    THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
                t.typcollation::pg_catalog.regcollation,
                COALESCE(pg_catalog.pg_get_expr(t.typdefaultbin, 0::pg_catalog.oid), t.typdefault),
                -- enum labels
                CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'e' THEN
                    (SELECT pg_catalog.array_agg(e.enumlabel ORDER BY e.enumsortorder)
                        FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid) END,
                -- range: subtype, collation, operator class, canonical, subtype_diff,
                -- multirange type
                CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'r' THEN
                    (SELECT ROW(pg_catalog.format_type(r.rngsubtype, NULL),
                            r.rngcollation::pg_catalog.regcollation,
                            (pg_catalog.pg_identify_object('pg_catalog.pg_opclass'::pg_catalog.regclass, r.rngsubopc, 0)).identity,
                            r.rngcanonical, r.rngsubdiff,
                            ((pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.->>) 'rngmultitypid')::pg_catalog.oid)::pg_catalog.regtype)::pg_catalog.text
                        FROM pg_catalog.pg_range r WHERE r.rngtypid OPERATOR(pg_catalog.=) t.oid) END
            )::pg_catalog.text END
    FROM pg_catalog.pg_type t
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) t.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE CASE WHEN t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
        THEN t.typacl IS NOT NULL
        ELSE t.typnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
            AND t.typtype OPERATOR(pg_catalog.<>) 'm'
            AND ((SELECT e.typarray FROM pg_catalog.pg_type e
                WHERE e.oid OPERATOR(pg_catalog.=) t.typelem) OPERATOR(pg_catalog.=) t.oid) IS NOT TRUE
            AND (t.typrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                OR (SELECT c.relkind FROM pg_catalog.pg_class c
                    WHERE c.oid OPERATOR(pg_catalog.=) t.typrelid) OPERATOR(pg_catalog.=) 'c') END
      AND CASE WHEN t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
        THEN NOT t.typacl OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('T', t.typowner))
        ELSE true END

    -- tables, partitioned tables, views, materialized views, sequences, foreign
    -- tables, composite types; and changed privileges of pg_catalog's relations
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0,
        CASE WHEN c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
            THEN 'system acl' END,
        CASE WHEN c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
            THEN @NORM(@ACLDIFF(c.relacl@|@COALESCE(i.initprivs, pg_catalog.acldefault('r', c.relowner))@|@'r')@::pg_catalog.text@|@c.relacl::pg_catalog.text)@
            ELSE ROW(c.relkind, c.relpersistence, pg_catalog.pg_get_userbyid(c.relowner),
                @NORM(@ACLDIFF(c.relacl@|@pg_catalog.acldefault((CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END)::pg_catalog."char", c.relowner)@|@(CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END)::pg_catalog."char")@@|@COALESCE(c.relacl, pg_catalog.acldefault(
                    (CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END)::pg_catalog."char",
                    c.relowner)))@,
                c.reloptions,
                -- the TOAST table's options
                CASE WHEN c.reltoastrelid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN
                    (SELECT tc.reloptions FROM pg_catalog.pg_class tc
                        WHERE tc.oid OPERATOR(pg_catalog.=) c.reltoastrelid) END,
                CASE WHEN c.relam OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN
                    (pg_catalog.pg_identify_object('pg_catalog.pg_am'::pg_catalog.regclass, c.relam, 0)).identity END,
                CASE WHEN c.reltablespace OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN
                    (pg_catalog.pg_identify_object('pg_catalog.pg_tablespace'::pg_catalog.regclass, c.reltablespace, 0)).identity END,
                c.relreplident, c.relrowsecurity, c.relforcerowsecurity,
                CASE WHEN c.reloftype OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                    THEN pg_catalog.format_type(c.reloftype, NULL) END,
                CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p'
                    THEN pg_catalog.pg_get_partkeydef(c.oid) END,
                pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                -- inheritance parents
                (SELECT pg_catalog.array_agg(h.inhparent::pg_catalog.regclass ORDER BY h.inhseqno)
                    FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) c.oid),
                CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog."char"[])
                    THEN pg_catalog.pg_get_viewdef(c.oid) END,
                -- a sequence's definition and OWNED BY (or identity) column
                CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN
                    (SELECT ROW(pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                            s.seqmax, s.seqmin, s.seqcache, s.seqcycle,
                            (SELECT pg_catalog.array_agg(pg_catalog.format('%s %s', d.deptype,
                                    (pg_catalog.pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid)).identity)
                                    ORDER BY d.deptype)
                                FROM pg_catalog.pg_depend d
                                WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                  AND d.objid OPERATOR(pg_catalog.=) c.oid
                                  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                  AND d.refobjsubid OPERATOR(pg_catalog.<>) 0
                                  AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog."char"[])))::pg_catalog.text
                        FROM pg_catalog.pg_sequence s WHERE s.seqrelid OPERATOR(pg_catalog.=) c.oid) END,
                -- a foreign table's server and options
                CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'f' THEN
                    (SELECT ROW((pg_catalog.pg_identify_object('pg_catalog.pg_foreign_server'::pg_catalog.regclass, f.ftserver, 0)).identity,
                            f.ftoptions)::pg_catalog.text
                        FROM pg_catalog.pg_foreign_table f WHERE f.ftrelid OPERATOR(pg_catalog.=) c.oid) END
            )::pg_catalog.text END
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) c.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE CASE WHEN c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
        THEN c.relacl IS NOT NULL
        ELSE c.relnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
            AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,f,c}'::pg_catalog."char"[])
            AND c.oid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx) END
      AND CASE WHEN c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
        THEN NOT c.relacl OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('r', c.relowner))
        ELSE true END

    -- columns (their position among the live columns, not attnum; a column has no
    -- privileges by default, whoever owns its table)
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum, NULL,
        ROW(pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
            pg_catalog.format_type(a.atttypid, a.atttypmod),
            a.attnotnull,
            (SELECT pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) FROM pg_catalog.pg_attrdef ad
                WHERE ad.adrelid OPERATOR(pg_catalog.=) a.attrelid
                  AND ad.adnum OPERATOR(pg_catalog.=) a.attnum),
            a.attidentity, a.attgenerated,
            a.attcollation::pg_catalog.regcollation,
            a.attstorage, @PG14_ATTCOMPRESSION@, @STATTARGET(a.attstattarget)@,
            -- pg_attver= is this server build's own per-relation stamp, which
            -- pg_dump leaves out as well
            ARRAY(SELECT u.o FROM pg_catalog.unnest(a.attoptions) WITH ORDINALITY AS u (o, n)
                WHERE NOT pg_catalog.starts_with(u.o, 'pg_attver=') ORDER BY u.n),
            a.attfdwoptions, a.attislocal, a.attinhcount,
            COALESCE(a.attacl, '{}'::pg_catalog.aclitem[]))::pg_catalog.text
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.col_rels FROM ctx)::pg_catalog.oid[])
      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped

    -- changed privileges of pg_catalog's columns
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum, 'system acl',
        a.attacl::pg_catalog.text
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) a.attrelid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) a.attnum
    WHERE a.attacl IS NOT NULL
      AND a.attnum OPERATOR(pg_catalog.>) 0
      AND c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND NOT a.attacl OPERATOR(pg_catalog.=) COALESCE(i.initprivs, '{}'::pg_catalog.aclitem[])

    -- constraints of tables and domains (with the enabled state of the triggers
    -- that implement a foreign key)
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid, 0, NULL,
        ROW(pg_catalog.pg_get_constraintdef(k.oid), k.conislocal, k.coninhcount,
            (SELECT pg_catalog.array_agg(t.tgenabled ORDER BY t.tgenabled)
                FROM pg_catalog.pg_trigger t
                WHERE t.tgconstraint OPERATOR(pg_catalog.=) k.oid AND t.tgisinternal))::pg_catalog.text
    FROM pg_catalog.pg_constraint k
    WHERE k.connamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
      -- (a domain's constraints have conrelid 0, like ledger_rel without a ledger)
      AND (k.conrelid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx)
        OR k.conrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid)
      @NOT_NULL_FILTER@

    -- indexes
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, x.indexrelid, 0, NULL,
        ROW(pg_catalog.pg_get_indexdef(x.indexrelid), i.reloptions,
            x.indisclustered, x.indisreplident, x.indisvalid,
            CASE WHEN i.reltablespace OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN
                (pg_catalog.pg_identify_object('pg_catalog.pg_tablespace'::pg_catalog.regclass, i.reltablespace, 0)).identity END,
            -- statistics targets of the index's columns
            (SELECT pg_catalog.array_agg(@STATTARGET(a.attstattarget)@ ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a
                WHERE a.attrelid OPERATOR(pg_catalog.=) x.indexrelid AND a.attnum OPERATOR(pg_catalog.>) 0),
            -- the partitioned index it is attached to
            (SELECT pg_catalog.array_agg(h.inhparent::pg_catalog.regclass ORDER BY h.inhseqno)
                FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) x.indexrelid))::pg_catalog.text
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) x.indexrelid
    WHERE x.indrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
      AND x.indrelid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx)

    -- triggers (internal ones belong to their constraint)
    UNION ALL
    SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 0, NULL,
        ROW(pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled)::pg_catalog.text
    FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
      AND t.tgrelid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx)
      AND NOT t.tgisinternal

    -- rules (a view's _RETURN rule is its definition)
    UNION ALL
    SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid, 0, NULL,
        ROW(pg_catalog.pg_get_ruledef(r.oid), r.ev_enabled)::pg_catalog.text
    FROM pg_catalog.pg_rewrite r
    WHERE r.ev_class OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
      AND r.rulename OPERATOR(pg_catalog.<>) '_RETURN'

    -- row-level security policies
    UNION ALL
    SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 0, NULL,
        ROW(p.polcmd, p.polpermissive,
            (SELECT pg_catalog.array_agg(CASE WHEN r.role OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                        THEN 'public' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.role)) END
                    ORDER BY r.n)
                FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY AS r (role, n)),
            pg_catalog.pg_get_expr(p.polqual, p.polrelid),
            pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))::pg_catalog.text
    FROM pg_catalog.pg_policy p
    WHERE p.polrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])

    -- functions, procedures, aggregates; and changed privileges of pg_catalog's
    -- functions
    UNION ALL
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0,
        CASE WHEN p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
            THEN 'system acl' END,
        CASE WHEN p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
            THEN p.proacl::pg_catalog.text
            ELSE ROW(pg_catalog.pg_get_userbyid(p.proowner),
                COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner)),
                CASE WHEN p.prokind OPERATOR(pg_catalog.<>) 'a'
                    THEN pg_catalog.pg_get_functiondef(p.oid) END,
                CASE WHEN p.prokind OPERATOR(pg_catalog.=) 'a' THEN
                    (SELECT ROW(pg_catalog.to_jsonb(g) OPERATOR(pg_catalog.-) ARRAY['aggfnoid',
                                'aggtranstype', 'aggmtranstype', 'aggsortop']::pg_catalog.text[],
                            pg_catalog.pg_get_function_arguments(p.oid),
                            pg_catalog.pg_get_function_result(p.oid),
                            p.proparallel,
                            pg_catalog.format_type(g.aggtranstype, NULL),
                            pg_catalog.format_type(g.aggmtranstype, NULL),
                            g.aggsortop::pg_catalog.regoperator)::pg_catalog.text
                        FROM pg_catalog.pg_aggregate g WHERE g.aggfnoid OPERATOR(pg_catalog.=) p.oid) END
            )::pg_catalog.text END
    FROM pg_catalog.pg_proc p
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) p.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE CASE WHEN p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
        THEN p.proacl IS NOT NULL
        ELSE p.pronamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
            AND p.oid OPERATOR(pg_catalog.<>) ALL ((SELECT ctx.ledger_functions FROM ctx)::pg_catalog.oid[]) END
      AND CASE WHEN p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
        THEN NOT p.proacl OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('f', p.proowner))
        ELSE true END

    -- operators
    UNION ALL
    SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid, 0, NULL,
        ROW(pg_catalog.to_jsonb(o) OPERATOR(pg_catalog.-) ARRAY['oid', 'oprname', 'oprnamespace',
                'oprowner', 'oprleft', 'oprright', 'oprresult', 'oprcom', 'oprnegate']::pg_catalog.text[],
            pg_catalog.pg_get_userbyid(o.oprowner),
            pg_catalog.format_type(o.oprresult, NULL),
            o.oprcom::pg_catalog.regoperator,
            o.oprnegate::pg_catalog.regoperator)::pg_catalog.text
    FROM pg_catalog.pg_operator o
    WHERE o.oprnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- operator families with their operators and support functions
    UNION ALL
    SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, f.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(f.opfowner),
            (pg_catalog.pg_identify_object('pg_catalog.pg_am'::pg_catalog.regclass, f.opfmethod, 0)).identity,
            (SELECT pg_catalog.array_agg(m.line ORDER BY m.line COLLATE pg_catalog."C")
                FROM (SELECT pg_catalog.format('%s %s (%s, %s) %s %s', o.amoppurpose, o.amopstrategy,
                        pg_catalog.format_type(o.amoplefttype, NULL),
                        pg_catalog.format_type(o.amoprighttype, NULL),
                        o.amopopr::pg_catalog.regoperator,
                        (pg_catalog.pg_identify_object('pg_catalog.pg_opfamily'::pg_catalog.regclass, o.amopsortfamily, 0)).identity) AS line
                    FROM pg_catalog.pg_amop o WHERE o.amopfamily OPERATOR(pg_catalog.=) f.oid) m),
            (SELECT pg_catalog.array_agg(m.line ORDER BY m.line COLLATE pg_catalog."C")
                FROM (SELECT pg_catalog.format('%s (%s, %s) %s', p.amprocnum,
                        pg_catalog.format_type(p.amproclefttype, NULL),
                        pg_catalog.format_type(p.amprocrighttype, NULL),
                        p.amproc::pg_catalog.regprocedure) AS line
                    FROM pg_catalog.pg_amproc p WHERE p.amprocfamily OPERATOR(pg_catalog.=) f.oid) m))::pg_catalog.text
    FROM pg_catalog.pg_opfamily f
    WHERE f.opfnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- operator classes
    UNION ALL
    SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, c.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(c.opcowner),
            (pg_catalog.pg_identify_object('pg_catalog.pg_am'::pg_catalog.regclass, c.opcmethod, 0)).identity,
            pg_catalog.format_type(c.opcintype, NULL),
            c.opcdefault,
            CASE WHEN c.opckeytype OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN pg_catalog.format_type(c.opckeytype, NULL) END,
            (pg_catalog.pg_identify_object('pg_catalog.pg_opfamily'::pg_catalog.regclass, c.opcfamily, 0)).identity)::pg_catalog.text
    FROM pg_catalog.pg_opclass c
    WHERE c.opcnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- casts (not the ones initdb made)
    UNION ALL
    SELECT 'pg_catalog.pg_cast'::pg_catalog.regclass, k.oid, 0, NULL,
        ROW(CASE WHEN k.castfunc OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN k.castfunc::pg_catalog.regprocedure END,
            k.castcontext, k.castmethod)::pg_catalog.text
    FROM pg_catalog.pg_cast k
    WHERE k.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid

    -- collations
    UNION ALL
    SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, c.oid, 0, NULL,
        ROW(pg_catalog.to_jsonb(c) OPERATOR(pg_catalog.-) ARRAY['oid', 'collname', 'collnamespace',
                'collowner', 'collversion']::pg_catalog.text[],
            pg_catalog.pg_get_userbyid(c.collowner))::pg_catalog.text
    FROM pg_catalog.pg_collation c
    WHERE c.collnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- conversions
    UNION ALL
    SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, c.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(c.conowner),
            pg_catalog.pg_encoding_to_char(c.conforencoding),
            pg_catalog.pg_encoding_to_char(c.contoencoding),
            c.conproc::pg_catalog.regprocedure,
            c.condefault)::pg_catalog.text
    FROM pg_catalog.pg_conversion c
    WHERE c.connamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- text search parsers, templates, dictionaries, configurations
    UNION ALL
    SELECT 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, p.oid, 0, NULL,
        (pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.-) ARRAY['oid', 'prsname', 'prsnamespace']::pg_catalog.text[])::pg_catalog.text
    FROM pg_catalog.pg_ts_parser p
    WHERE p.prsnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
    UNION ALL
    SELECT 'pg_catalog.pg_ts_template'::pg_catalog.regclass, t.oid, 0, NULL,
        (pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) ARRAY['oid', 'tmplname', 'tmplnamespace']::pg_catalog.text[])::pg_catalog.text
    FROM pg_catalog.pg_ts_template t
    WHERE t.tmplnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
    UNION ALL
    SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, d.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(d.dictowner),
            (pg_catalog.pg_identify_object('pg_catalog.pg_ts_template'::pg_catalog.regclass, d.dicttemplate, 0)).identity,
            d.dictinitoption)::pg_catalog.text
    FROM pg_catalog.pg_ts_dict d
    WHERE d.dictnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
    UNION ALL
    SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, c.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(c.cfgowner),
            (pg_catalog.pg_identify_object('pg_catalog.pg_ts_parser'::pg_catalog.regclass, c.cfgparser, 0)).identity,
            (SELECT pg_catalog.array_agg(pg_catalog.format('%s %s %s', tt.alias, m.mapseqno,
                        (pg_catalog.pg_identify_object('pg_catalog.pg_ts_dict'::pg_catalog.regclass, m.mapdict, 0)).identity)
                    ORDER BY m.maptokentype, m.mapseqno)
                FROM pg_catalog.pg_ts_config_map m
                LEFT JOIN pg_catalog.ts_token_type(c.cfgparser) tt ON tt.tokid OPERATOR(pg_catalog.=) m.maptokentype
                WHERE m.mapcfg OPERATOR(pg_catalog.=) c.oid))::pg_catalog.text
    FROM pg_catalog.pg_ts_config c
    WHERE c.cfgnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- foreign-data wrappers, servers, user mappings (options as this role may see them)
    UNION ALL
    SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, w.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(w.fdwowner),
            COALESCE(w.fdwacl, pg_catalog.acldefault('F', w.fdwowner)),
            CASE WHEN w.fdwhandler OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN w.fdwhandler::pg_catalog.regprocedure END,
            CASE WHEN w.fdwvalidator OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN w.fdwvalidator::pg_catalog.regprocedure END,
            w.fdwoptions)::pg_catalog.text
    FROM pg_catalog.pg_foreign_data_wrapper w
    UNION ALL
    SELECT 'pg_catalog.pg_foreign_server'::pg_catalog.regclass, s.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(s.srvowner),
            COALESCE(s.srvacl, pg_catalog.acldefault('S', s.srvowner)),
            (pg_catalog.pg_identify_object('pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, s.srvfdw, 0)).identity,
            s.srvtype, s.srvversion, s.srvoptions)::pg_catalog.text
    FROM pg_catalog.pg_foreign_server s
    UNION ALL
    SELECT 'pg_catalog.pg_user_mapping'::pg_catalog.regclass, u.umid, 0, NULL,
        ROW(u.umoptions)::pg_catalog.text
    FROM pg_catalog.pg_user_mappings u

    -- procedural languages (and changed privileges of the ones initdb made),
    -- transforms, access methods (not the ones initdb made)
    UNION ALL
    SELECT 'pg_catalog.pg_language'::pg_catalog.regclass, l.oid, 0,
        CASE WHEN l.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid THEN 'system acl' END,
        CASE WHEN l.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid
            THEN l.lanacl::pg_catalog.text
            ELSE ROW(pg_catalog.pg_get_userbyid(l.lanowner),
                COALESCE(l.lanacl, pg_catalog.acldefault('l', l.lanowner)),
                l.lanispl, l.lanpltrusted,
                l.lanplcallfoid::pg_catalog.regprocedure,
                l.laninline::pg_catalog.regprocedure,
                l.lanvalidator::pg_catalog.regprocedure)::pg_catalog.text END
    FROM pg_catalog.pg_language l
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) l.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_language'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE l.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
       OR (l.lanacl IS NOT NULL
           AND NOT l.lanacl OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('l', l.lanowner)))
    UNION ALL
    SELECT 'pg_catalog.pg_transform'::pg_catalog.regclass, t.oid, 0, NULL,
        ROW(t.trffromsql::pg_catalog.regprocedure, t.trftosql::pg_catalog.regprocedure)::pg_catalog.text
    FROM pg_catalog.pg_transform t
    UNION ALL
    SELECT 'pg_catalog.pg_am'::pg_catalog.regclass, a.oid, 0, NULL,
        ROW(a.amtype, a.amhandler::pg_catalog.regprocedure)::pg_catalog.text
    FROM pg_catalog.pg_am a
    WHERE a.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid

    -- event triggers
    UNION ALL
    SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass, e.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(e.evtowner), e.evtevent,
            e.evtfoid::pg_catalog.regprocedure, e.evtenabled, e.evttags)::pg_catalog.text
    FROM pg_catalog.pg_event_trigger e

    -- publications and what they publish
    UNION ALL
    SELECT 'pg_catalog.pg_publication'::pg_catalog.regclass, p.oid, 0, NULL,
        ROW(pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.-) ARRAY['oid', 'pubname', 'pubowner']::pg_catalog.text[],
            pg_catalog.pg_get_userbyid(p.pubowner))::pg_catalog.text
    FROM pg_catalog.pg_publication p
    UNION ALL
    SELECT 'pg_catalog.pg_publication_rel'::pg_catalog.regclass, r.oid, 0, NULL,
        @PG15_PUBLICATION_REL@
    FROM pg_catalog.pg_publication_rel r
    @PG15_PUBLICATION_NAMESPACE@

    -- subscriptions of this database (not their connection string: only superusers
    -- may read it)
    UNION ALL
    SELECT 'pg_catalog.pg_subscription'::pg_catalog.regclass, s.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(s.subowner), s.subenabled, s.subslotname,
            s.subsynccommit, s.subpublications
            @PG14_SUBSCRIPTION@ @PG15_SUBSCRIPTION@)::pg_catalog.text
    FROM pg_catalog.pg_subscription s
    WHERE s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
        WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())

    -- extended statistics objects
    UNION ALL
    SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid, 0, NULL,
        ROW(pg_catalog.pg_get_userbyid(s.stxowner),
            pg_catalog.pg_get_statisticsobjdef(s.oid),
            @STATTARGET(s.stxstattarget)@)::pg_catalog.text
    FROM pg_catalog.pg_statistic_ext s
    WHERE s.stxnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- default privileges (global, or in a schema pg_dump dumps)
    UNION ALL
    SELECT 'pg_catalog.pg_default_acl'::pg_catalog.regclass, d.oid, 0, NULL,
        ROW(@NORM(@ACLDIFF(d.defaclacl@|@CASE WHEN d.defaclnamespace OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                THEN pg_catalog.acldefault((CASE WHEN d.defaclobjtype OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE d.defaclobjtype END)::pg_catalog."char", d.defaclrole) ELSE '{}'::pg_catalog.aclitem[] END@|@(CASE WHEN d.defaclobjtype OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE d.defaclobjtype END)::pg_catalog."char")@, d.defaclobjtype@|@d.defaclacl)@)::pg_catalog.text
    FROM pg_catalog.pg_default_acl d
    WHERE d.defaclnamespace OPERATOR(pg_catalog.=) 0::pg_catalog.oid
       OR d.defaclnamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])

    -- changed privileges of the pg_catalog schema
    UNION ALL
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid, 0, 'system acl',
        n.nspacl::pg_catalog.text
    FROM pg_catalog.pg_namespace n
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) n.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE n.oid OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND n.nspacl IS NOT NULL
      AND NOT n.nspacl OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('n', n.nspowner))
)
-- Every object with what is said about it elsewhere: its comment, security labels,
-- the extensions it belongs to (e) and depends on (x).
SELECT COALESCE(o.kind, i.type) AS kind,
    CASE WHEN o.kind IS NULL THEN i.identity ELSE pg_catalog.format('%s %s', i.type, i.identity) END AS name,
    ROW(o.def,
        (SELECT d.description FROM pg_catalog.pg_description d
            WHERE d.objoid OPERATOR(pg_catalog.=) o.objid
              AND d.classoid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
              AND d.objsubid OPERATOR(pg_catalog.=) o.objsubid),
        (SELECT pg_catalog.array_agg(pg_catalog.format('%s: %s', l.provider, l.label)
                ORDER BY l.provider COLLATE pg_catalog."C")
            FROM pg_catalog.pg_seclabel l
            WHERE l.objoid OPERATOR(pg_catalog.=) o.objid
              AND l.classoid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
              AND l.objsubid OPERATOR(pg_catalog.=) o.objsubid),
        (SELECT pg_catalog.array_agg(pg_catalog.format('%s %s', dep.deptype,
                    (pg_catalog.pg_identify_object(dep.refclassid, dep.refobjid, 0)).identity)
                ORDER BY dep.deptype, (pg_catalog.pg_identify_object(dep.refclassid, dep.refobjid, 0)).identity COLLATE pg_catalog."C")
            FROM pg_catalog.pg_depend dep
            WHERE dep.classid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
              AND dep.objid OPERATOR(pg_catalog.=) o.objid
              AND dep.objsubid OPERATOR(pg_catalog.=) o.objsubid
              AND dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
              AND dep.deptype OPERATOR(pg_catalog.=) ANY ('{e,x}'::pg_catalog."char"[]))
    )::pg_catalog.text AS definition
FROM obj o
CROSS JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, o.objsubid) i
