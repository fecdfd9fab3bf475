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
-- keys of an index scan. The planner takes such a parameter for ten rows, so
-- nothing here lets it join two large sets blind: joins are to a catalog by its
-- unique key, and what is said about every object (comments, security labels,
-- extension membership) is joined once, to sets computed from catalog statistics.
-- What comes in thousands (relations, their columns, constraints, indexes,
-- triggers, rules, policies: the "named" branches) is named here, as
-- pg_identify_object would name it, and a primary key's or a plain index's
-- definition is written here as pg_get_constraintdef or pg_get_indexdef would
-- write it (those two cost 15-40 us a call, most of the old query's time at
-- 10,000 tables); everything rarer is named by pg_identify_object and rendered by
-- the server. tests/data/fingerprint_reference.sql is the query before this was
-- done: tests assert both describe every object byte for byte the same.
-- A definition is a row value as text, ROW(...)::text: fields in a fixed
-- order, NULL distinct from an empty string, quoted where needed, so one text
-- means one row; building it costs a tenth of jsonb_build_object. A whole catalog
-- row (to_jsonb(x) minus its OIDs, which takes the columns of any server version)
-- costs ~10 us, so it is only used for catalogs with few rows per schema, and
-- computed only for the rows the scan's filter lets through.
--
-- The words between at-signs are placeholders: LEDGER_* are replaced by literals
-- from fingerprint::LEDGER, PG14_* and PG15_* by fragments for the server's version,
-- ONLY* by nothing, or by filters that keep the objects whose OIDs are in $1 (the
-- restricted description, fingerprint::restricted_sql). Each row ends with the key
-- of the object it belongs to (catalog OID * 2^32 + object OID; a column's is its
-- relation's), which is not part of what is hashed.
WITH
-- One row. nsps: the schemas pg_dump dumps, every schema but pg_* and
-- information_schema. rels: their relations; col_rels: those whose columns are
-- described (not sequences' or indexes'). The ledger's OIDs (0 when there is none):
-- what airlock creates for its ledger is left out (the ledger module verifies it),
-- with everything attached to it: its columns, constraints, indexes, triggers, and
-- so their comments and ACLs. Rules and policies on the ledger count.
ctx AS MATERIALIZED (
    SELECT s.nsps, s.ledger_nsp, r.rels, r.col_rels, @ONLY@ AS only,
        COALESCE(r.ledger_rel, 0::pg_catalog.oid) AS ledger_rel,
        ARRAY(SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.proname OPERATOR(pg_catalog.=) ANY (@LEDGER_FUNCTIONS@)
              AND p.pronamespace OPERATOR(pg_catalog.=) s.ledger_nsp
              AND p.pronargs OPERATOR(pg_catalog.=) 0) AS ledger_functions,
        -- the default operator classes initdb made, each with the one type it is
        -- for, as oid * 2^32 + type
        ARRAY(SELECT o.oid::pg_catalog.int8 OPERATOR(pg_catalog.*) 4294967296::pg_catalog.int8
                OPERATOR(pg_catalog.+) o.opcintype::pg_catalog.int8
            FROM pg_catalog.pg_opclass o
            WHERE o.opcdefault AND o.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid) AS default_opclasses
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
        WHERE c.relnamespace OPERATOR(pg_catalog.=) ANY (s.nsps)
          @ONLY_RELS@) r
),
-- What is said about objects elsewhere: security labels, and the extensions each
-- object belongs to (e) or depends on (x).
labels AS MATERIALIZED (
    SELECT l.objoid, l.classoid, l.objsubid,
        pg_catalog.array_agg(pg_catalog.format('%s: %s', l.provider, l.label)
            ORDER BY l.provider COLLATE pg_catalog."C") AS labels
    FROM pg_catalog.pg_seclabel l
    GROUP BY l.objoid, l.classoid, l.objsubid
),
extensions AS MATERIALIZED (
    SELECT dep.classid, dep.objid, dep.objsubid,
        pg_catalog.array_agg(pg_catalog.format('%s %s', dep.deptype, dep.identity)
            ORDER BY dep.deptype, dep.identity COLLATE pg_catalog."C") AS extensions
    -- the extension's name as pg_identify_object writes it (quoted when needed), read
    -- from pg_extension: one lookup per member, not one object identity each
    FROM (SELECT d.classid, d.objid, d.objsubid, d.deptype,
            pg_catalog.quote_ident(x.extname::pg_catalog.text) AS identity
        FROM pg_catalog.pg_depend d
        LEFT JOIN pg_catalog.pg_extension x ON x.oid OPERATOR(pg_catalog.=) d.refobjid
        WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
          AND d.deptype OPERATOR(pg_catalog.=) ANY ('{e,x}'::pg_catalog."char"[])) dep
    GROUP BY dep.classid, dep.objid, dep.objsubid
),
-- One row per object pg_identify_object names (the rarer kinds; "named" below has
-- the rest): (catalog, object, sub-object, kind when not pg_identify_object's type,
-- definition).
--
-- Privileges on what initdb made in pg_catalog count where they differ from the
-- initial ones (pg_dump prints those GRANTs and REVOKEs), as kind 'system acl'; they
-- come from the same scans as the dumped schemas' objects of their kind (relations
-- and columns from scans of their own). Only objects with an ACL
-- can differ: GRANT and REVOKE never leave an ACL NULL, and initdb records initial
-- privileges for exactly the objects with one.
obj AS (SELECT b.* FROM (
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


    -- changed privileges of pg_catalog's relations
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0, 'system acl',
        @NORM(@ACLDIFF(c.relacl@|@COALESCE(i.initprivs, pg_catalog.acldefault('r', c.relowner))@|@'r')@::pg_catalog.text@|@c.relacl::pg_catalog.text)@
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) c.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND c.relacl IS NOT NULL
      AND NOT c.relacl OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('r', c.relowner))

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


    -- constraints of domains
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid, 0, NULL,
        ROW(pg_catalog.pg_get_constraintdef(k.oid), k.conislocal, k.coninhcount,
            (SELECT pg_catalog.array_agg(t.tgenabled ORDER BY t.tgenabled)
                FROM pg_catalog.pg_trigger t
                WHERE t.tgconstraint OPERATOR(pg_catalog.=) k.oid AND t.tgisinternal))::pg_catalog.text
    FROM pg_catalog.pg_constraint k
    WHERE k.connamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
      AND k.conrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
      @NOT_NULL_FILTER@

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
                        CASE WHEN o.amopsortfamily OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN
                            (pg_catalog.pg_identify_object('pg_catalog.pg_opfamily'::pg_catalog.regclass, o.amopsortfamily, 0)).identity END) AS line
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
) b WHERE @ONLY_OBJ@),
-- The objects that come in thousands, with their type and identity written here as
-- pg_identify_object writes them (getRelationTypeDescription; getObjectIdentityParts:
-- a relation's schema and name each through quote_identifier, which is what its
-- regclass output is here, where search_path holds no dumped schema, and what
-- format's %I does): tables, partitioned tables, views, materialized views,
-- sequences, foreign tables, composite types; their columns, constraints of tables,
-- indexes, triggers, rules and policies.
named AS (
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid,
        0 AS objsubid,
        CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) THEN 'table'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 'sequence'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN 'view'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'm' THEN 'materialized view'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'c' THEN 'composite type'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'f' THEN 'foreign table' END AS type,
        c.oid::pg_catalog.regclass::pg_catalog.text AS identity,
        ROW(c.relkind, c.relpersistence, pg_catalog.pg_get_userbyid(c.relowner),
            @NORM(@ACLDIFF(c.relacl@|@pg_catalog.acldefault((CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END)::pg_catalog."char", c.relowner)@|@(CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END)::pg_catalog."char")@@|@COALESCE(c.relacl, pg_catalog.acldefault(
                (CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END)::pg_catalog."char",
                c.relowner)))@,
            c.reloptions,
            -- the TOAST table's options
            tc.reloptions,
            pg_catalog.quote_ident(am.amname),
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
        )::pg_catalog.text AS def
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_class tc ON tc.oid OPERATOR(pg_catalog.=) c.reltoastrelid
    LEFT JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
    WHERE c.oid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
      AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,f,c}'::pg_catalog."char"[])
      AND c.oid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx)

    -- columns (their position among the live columns, not attnum; a column has no
    -- privileges by default, whoever owns its table)
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum,
        pg_catalog.format('%s column', CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) THEN 'table'
                WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 'sequence'
                WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN 'view'
                WHEN c.relkind OPERATOR(pg_catalog.=) 'm' THEN 'materialized view'
                WHEN c.relkind OPERATOR(pg_catalog.=) 'c' THEN 'composite type'
                WHEN c.relkind OPERATOR(pg_catalog.=) 'f' THEN 'foreign table' END),
        pg_catalog.format('%s.%I', a.attrelid::pg_catalog.regclass, a.attname),
        ROW(pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
            pg_catalog.format_type(a.atttypid, a.atttypmod),
            a.attnotnull,
            pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
            a.attidentity, a.attgenerated,
            a.attcollation::pg_catalog.regcollation,
            a.attstorage, @PG14_ATTCOMPRESSION@, @STATTARGET(a.attstattarget)@,
            -- pg_attver= is this server build's own per-relation stamp, which
            -- pg_dump leaves out as well
            CASE WHEN a.attoptions IS NULL THEN '{}'::pg_catalog.text[]
                ELSE ARRAY(SELECT u.o FROM pg_catalog.unnest(a.attoptions) WITH ORDINALITY AS u (o, n)
                    WHERE NOT pg_catalog.starts_with(u.o, 'pg_attver=') ORDER BY u.n) END,
            a.attfdwoptions, a.attislocal, a.attinhcount,
            COALESCE(a.attacl, '{}'::pg_catalog.aclitem[]))::pg_catalog.text
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid OPERATOR(pg_catalog.=) a.attrelid
        AND ad.adnum OPERATOR(pg_catalog.=) a.attnum
    WHERE a.attrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.col_rels FROM ctx)::pg_catalog.oid[])
      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped

    -- constraints of tables (with the enabled state of the triggers that implement a
    -- foreign key); a primary key's definition is written here as
    -- pg_get_constraintdef(oid) writes it, when its index has no INCLUDE columns
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid, 0,
        'table constraint', pg_catalog.format('%I on %s', k.conname, k.conrelid::pg_catalog.regclass),
        ROW(CASE WHEN k.contype OPERATOR(pg_catalog.=) 'p'
                    AND pg_catalog.bool_and(a.attname IS NOT NULL)
                    AND x.indnatts OPERATOR(pg_catalog.<=) pg_catalog.count(*)
                THEN pg_catalog.format('PRIMARY KEY (%s)%s%s%s',
                    pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.n),
                    CASE WHEN k.condeferrable THEN ' DEFERRABLE' END,
                    CASE WHEN k.condeferred THEN ' INITIALLY DEFERRED' END,
                    CASE WHEN NOT k.convalidated THEN ' NOT VALID' END)
                ELSE pg_catalog.pg_get_constraintdef(k.oid) END,
            k.conislocal, k.coninhcount,
            (SELECT pg_catalog.array_agg(t.tgenabled ORDER BY t.tgenabled)
                FROM pg_catalog.pg_trigger t
                WHERE t.tgconstraint OPERATOR(pg_catalog.=) k.oid AND t.tgisinternal))::pg_catalog.text
    FROM pg_catalog.pg_constraint k
    LEFT JOIN pg_catalog.pg_index x ON x.indexrelid OPERATOR(pg_catalog.=) k.conindid
        AND k.contype OPERATOR(pg_catalog.=) 'p'
    LEFT JOIN LATERAL pg_catalog.unnest(CASE WHEN k.contype OPERATOR(pg_catalog.=) 'p' THEN k.conkey END)
        WITH ORDINALITY AS u (attnum, n) ON true
    -- (a subquery, not a join: the planner cannot know how few keys there are)
    LEFT JOIN LATERAL (SELECT (SELECT a.attname FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) k.conrelid
              AND a.attnum OPERATOR(pg_catalog.=) u.attnum) AS attname) a ON true
    WHERE k.connamespace OPERATOR(pg_catalog.=) ANY ((SELECT ctx.nsps FROM ctx)::pg_catalog.oid[])
      AND k.conrelid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
      AND k.conrelid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx)
      @ONLY_CONSTRAINTS@
      @NOT_NULL_FILTER@
    GROUP BY k.oid, k.conname, k.conrelid, k.contype, k.condeferrable, k.condeferred,
        k.convalidated, k.conislocal, k.coninhcount, x.indnatts

    -- indexes, each with its attributes: the key columns' names and whether each is
    -- plain (see below), the included columns' names, the statistics targets
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, x.indexrelid, 0,
        'index', x.indexrelid::pg_catalog.regclass::pg_catalog.text,
        -- pg_get_indexdef(oid)'s text, written here for the plain shape: an index
        -- (not a partitioned one) on columns, without expressions, predicate, storage
        -- options or NULLS NOT DISTINCT, each key column with its own collation, no
        -- ordering options, no operator class options, and the operator class initdb
        -- made the default for exactly the column's type (which GetDefaultOpClass
        -- picks, and pg_get_indexdef leaves out); pg_get_indexdef writes every other.
        ROW(CASE WHEN pg_catalog.bool_and(ta.attname IS NOT NULL
                        AND (k.n OPERATOR(pg_catalog.>) x.indnkeyatts
                            OR (k.opt OPERATOR(pg_catalog.=) 0
                                AND (k.coll OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                                    OR k.coll OPERATOR(pg_catalog.=) ta.attcollation)
                                AND ia.attoptions IS NULL
                                AND (k.opc::pg_catalog.int8 OPERATOR(pg_catalog.*) 4294967296::pg_catalog.int8
                                        OPERATOR(pg_catalog.+) ta.atttypid::pg_catalog.int8)
                                    OPERATOR(pg_catalog.=) ANY ((SELECT ctx.default_opclasses FROM ctx)::pg_catalog.int8[]))))
                    AND i.relkind OPERATOR(pg_catalog.=) 'i'
                    AND x.indexprs IS NULL AND x.indpred IS NULL AND i.reloptions IS NULL
                    @PG15_NULLS_DISTINCT@
                THEN pg_catalog.format('CREATE %sINDEX %I ON %s USING %I (%s%s)',
                    CASE WHEN x.indisunique THEN 'UNIQUE ' END,
                    i.relname, x.indrelid::pg_catalog.regclass, am.amname,
                    pg_catalog.string_agg(pg_catalog.quote_ident(ta.attname), ', ' ORDER BY k.n)
                        FILTER (WHERE k.n OPERATOR(pg_catalog.<=) x.indnkeyatts),
                    CASE WHEN x.indnatts OPERATOR(pg_catalog.>) x.indnkeyatts
                        THEN pg_catalog.format(') INCLUDE (%s',
                            pg_catalog.string_agg(pg_catalog.quote_ident(ta.attname), ', ' ORDER BY k.n)
                                FILTER (WHERE k.n OPERATOR(pg_catalog.>) x.indnkeyatts)) END)
                ELSE pg_catalog.pg_get_indexdef(x.indexrelid) END,
            i.reloptions,
            x.indisclustered, x.indisreplident, x.indisvalid,
            CASE WHEN i.reltablespace OPERATOR(pg_catalog.<>) 0::pg_catalog.oid THEN
                (pg_catalog.pg_identify_object('pg_catalog.pg_tablespace'::pg_catalog.regclass, i.reltablespace, 0)).identity END,
            -- statistics targets of the index's columns
            pg_catalog.array_agg(@STATTARGET(ia.attstattarget)@ ORDER BY k.n),
            -- the partitioned index it is attached to
            (SELECT pg_catalog.array_agg(h.inhparent::pg_catalog.regclass ORDER BY h.inhseqno)
                FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) x.indexrelid))::pg_catalog.text
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) x.indexrelid
    LEFT JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) i.relam
    CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(x.indkey::pg_catalog.int2[]),
            pg_catalog.unnest(x.indclass::pg_catalog.oid[]),
            pg_catalog.unnest(x.indcollation::pg_catalog.oid[]),
            pg_catalog.unnest(x.indoption::pg_catalog.int2[]))
        WITH ORDINALITY AS k (attnum, opc, coll, opt, n)
    LEFT JOIN pg_catalog.pg_attribute ta ON ta.attrelid OPERATOR(pg_catalog.=) x.indrelid
        AND ta.attnum OPERATOR(pg_catalog.=) k.attnum
        AND k.attnum OPERATOR(pg_catalog.<>) 0
    LEFT JOIN pg_catalog.pg_attribute ia ON ia.attrelid OPERATOR(pg_catalog.=) x.indexrelid
        AND ia.attnum OPERATOR(pg_catalog.=) k.n
    WHERE x.indrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
      AND x.indrelid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx)
    GROUP BY x.indexrelid, x.indrelid, x.indnatts, x.indnkeyatts, x.indisunique,
        x.indisclustered, x.indisreplident, x.indisvalid, x.indexprs IS NULL, x.indpred IS NULL,
        @PG15_NULLS_DISTINCT_GROUP@
        i.relname, i.relkind, i.reloptions, i.reltablespace, am.amname

    -- triggers (internal ones belong to their constraint)
    UNION ALL
    SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 0,
        'trigger', pg_catalog.format('%I on %s', t.tgname, t.tgrelid::pg_catalog.regclass),
        ROW(pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled)::pg_catalog.text
    FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
      AND t.tgrelid OPERATOR(pg_catalog.<>) (SELECT ctx.ledger_rel FROM ctx)
      AND NOT t.tgisinternal

    -- rules (a view's _RETURN rule is its definition)
    UNION ALL
    SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, w.oid, 0,
        'rule', pg_catalog.format('%I on %s', w.rulename, w.ev_class::pg_catalog.regclass),
        ROW(pg_catalog.pg_get_ruledef(w.oid), w.ev_enabled)::pg_catalog.text
    FROM pg_catalog.pg_rewrite w
    WHERE w.ev_class OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
      AND w.rulename OPERATOR(pg_catalog.<>) '_RETURN'

    -- row-level security policies
    UNION ALL
    SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 0,
        'policy', pg_catalog.format('%I on %s', p.polname, p.polrelid::pg_catalog.regclass),
        ROW(p.polcmd, p.polpermissive,
            (SELECT pg_catalog.array_agg(CASE WHEN o.role OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                        THEN 'public' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.role)) END
                    ORDER BY o.n)
                FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY AS o (role, n)),
            pg_catalog.pg_get_expr(p.polqual, p.polrelid),
            pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))::pg_catalog.text
    FROM pg_catalog.pg_policy p
    WHERE p.polrelid OPERATOR(pg_catalog.=) ANY ((SELECT ctx.rels FROM ctx)::pg_catalog.oid[])
)
-- Every object with its name (pg_identify_object's, for the kinds not named above)
-- and what is said about it elsewhere: its comment, security labels, the extensions
-- it belongs to (e) and depends on (x).
SELECT COALESCE(o.kind, o.type) AS kind,
    CASE WHEN o.kind IS NULL THEN o.identity ELSE pg_catalog.format('%s %s', o.type, o.identity) END AS name,
    ROW(o.def, d.description, l.labels, e.extensions)::pg_catalog.text AS definition,
    (o.classid::pg_catalog.oid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32)
        OPERATOR(pg_catalog.|) o.objid::pg_catalog.int8 AS key
FROM (SELECT o.classid, o.objid, o.objsubid, o.kind, i.type, i.identity, o.def
        FROM obj o
        CROSS JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, o.objsubid) i
    UNION ALL
    SELECT n.classid, n.objid, n.objsubid, NULL, n.type, n.identity, n.def
        FROM named n) o
LEFT JOIN pg_catalog.pg_description d ON d.objoid OPERATOR(pg_catalog.=) o.objid
    AND d.classoid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
    AND d.objsubid OPERATOR(pg_catalog.=) o.objsubid
LEFT JOIN labels l ON l.objoid OPERATOR(pg_catalog.=) o.objid
    AND l.classoid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
    AND l.objsubid OPERATOR(pg_catalog.=) o.objsubid
LEFT JOIN extensions e ON e.objid OPERATOR(pg_catalog.=) o.objid
    AND e.classid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
    AND e.objsubid OPERATOR(pg_catalog.=) o.objsubid
