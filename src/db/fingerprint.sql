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
--     sequence value or anything physical. Lists are in a defined order;
--   * a whole catalog row (to_jsonb(x)) is read by OID in a subquery, for the rows
--     that are output only: in the scan of a big catalog it costs ~3 us a row.
--
-- The words between at-signs are placeholders: LEDGER_* are replaced by literals
-- from fingerprint::LEDGER, PG15_* by fragments for the server's version.
WITH
-- The schemas pg_dump dumps: every schema but pg_* and information_schema (inlined
-- where used, so that the planner sees how few they are).
nsp AS NOT MATERIALIZED (
    SELECT n.oid FROM pg_catalog.pg_namespace n
    WHERE pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_'
      AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
),
ledger_nsp AS (
    SELECT n.oid FROM pg_catalog.pg_namespace n
    WHERE n.nspname OPERATOR(pg_catalog.=) @LEDGER_SCHEMA@
),
ledger_rel AS (
    SELECT c.oid FROM pg_catalog.pg_class c
    JOIN ledger_nsp ON ledger_nsp.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE c.relname OPERATOR(pg_catalog.=) @LEDGER_TABLE@
),
-- What airlock creates for its ledger (verified by the ledger module, not here).
-- Matched on (catalog, object), so a column, a comment or an ACL of these goes too.
excluded AS (
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass AS classid, l.oid AS objid FROM ledger_nsp l
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, l.oid FROM ledger_rel l
    UNION ALL
    SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, c.reltype FROM pg_catalog.pg_class c
    JOIN ledger_rel l ON l.oid OPERATOR(pg_catalog.=) c.oid
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, x.indexrelid FROM pg_catalog.pg_index x
    JOIN ledger_rel l ON l.oid OPERATOR(pg_catalog.=) x.indrelid
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_constraint k
    JOIN ledger_rel l ON l.oid OPERATOR(pg_catalog.=) k.conrelid
    UNION ALL
    SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_trigger t
    JOIN ledger_rel l ON l.oid OPERATOR(pg_catalog.=) t.tgrelid
    UNION ALL
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid FROM pg_catalog.pg_proc p
    JOIN ledger_nsp l ON l.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE p.pronargs OPERATOR(pg_catalog.=) 0
      AND p.proname OPERATOR(pg_catalog.=) ANY (@LEDGER_FUNCTIONS@)
),
-- One row per object: (catalog, object, sub-object, kind when not pg_identify_object's
-- type, definition).
obj AS (
    -- schemas
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass AS classid, n.oid AS objid,
        0 AS objsubid, NULL::pg_catalog.text AS kind,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(n.nspowner),
            'acl', COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) AS def
    FROM pg_catalog.pg_namespace n JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) n.oid

    -- extensions (not the ones initdb made); members are marked on each object
    UNION ALL
    SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'version', e.extversion,
            'schema', e.extnamespace::pg_catalog.regnamespace,
            'relocatable', e.extrelocatable,
            'config', e.extconfig::pg_catalog.regclass[],
            'conditions', e.extcondition)
    FROM pg_catalog.pg_extension e
    WHERE e.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid

    -- types: base, shell, enum, domain, range, standalone composite (not row types
    -- of tables, implicit arrays or multiranges: they come with their owner)
    UNION ALL
    SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0, NULL,
        (SELECT pg_catalog.to_jsonb(x) OPERATOR(pg_catalog.-) ARRAY['oid', 'typname',
                'typnamespace', 'typowner', 'typrelid', 'typelem', 'typarray', 'typbasetype',
                'typcollation', 'typdefaultbin', 'typdefault', 'typacl']::pg_catalog.text[]
            FROM pg_catalog.pg_type x WHERE x.oid OPERATOR(pg_catalog.=) t.oid)
        OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(t.typowner),
            'acl', COALESCE(t.typacl, pg_catalog.acldefault('T', t.typowner)),
            'element', CASE WHEN t.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN pg_catalog.format_type(t.typelem, NULL) END,
            'base', CASE WHEN t.typbasetype OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
            'collation', t.typcollation::pg_catalog.regcollation,
            'default', COALESCE(pg_catalog.pg_get_expr(t.typdefaultbin, 0::pg_catalog.oid), t.typdefault),
            'labels', (SELECT pg_catalog.array_agg(e.enumlabel ORDER BY e.enumsortorder)
                FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid),
            'range', (SELECT pg_catalog.jsonb_build_object(
                    'subtype', pg_catalog.format_type(r.rngsubtype, NULL),
                    'collation', r.rngcollation::pg_catalog.regcollation,
                    'opclass', (pg_catalog.pg_identify_object('pg_catalog.pg_opclass'::pg_catalog.regclass, r.rngsubopc, 0)).identity,
                    'canonical', r.rngcanonical,
                    'subdiff', r.rngsubdiff,
                    'multirange', ((pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.->>) 'rngmultitypid')::pg_catalog.oid)::pg_catalog.regtype)
                FROM pg_catalog.pg_range r WHERE r.rngtypid OPERATOR(pg_catalog.=) t.oid))
    FROM pg_catalog.pg_type t JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) t.typnamespace
    WHERE t.typtype OPERATOR(pg_catalog.<>) 'm'
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_type a WHERE a.typarray OPERATOR(pg_catalog.=) t.oid)
      AND (t.typrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid OR EXISTS (
          SELECT FROM pg_catalog.pg_class c
          WHERE c.oid OPERATOR(pg_catalog.=) t.typrelid AND c.relkind OPERATOR(pg_catalog.=) 'c'))

    -- tables, partitioned tables, views, materialized views, sequences, foreign
    -- tables, composite types
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'relkind', c.relkind,
            'persistence', c.relpersistence,
            'owner', pg_catalog.pg_get_userbyid(c.relowner),
            'acl', COALESCE(c.relacl, pg_catalog.acldefault(
                (CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END)::pg_catalog."char",
                c.relowner)),
            'options', c.reloptions,
            'toast_options', (SELECT tc.reloptions FROM pg_catalog.pg_class tc
                WHERE tc.oid OPERATOR(pg_catalog.=) c.reltoastrelid),
            'access_method', (SELECT a.amname FROM pg_catalog.pg_am a
                WHERE a.oid OPERATOR(pg_catalog.=) c.relam),
            'tablespace', (SELECT s.spcname FROM pg_catalog.pg_tablespace s
                WHERE s.oid OPERATOR(pg_catalog.=) c.reltablespace),
            'replica_identity', c.relreplident,
            'row_security', c.relrowsecurity,
            'force_row_security', c.relforcerowsecurity,
            'of_type', CASE WHEN c.reloftype OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN pg_catalog.format_type(c.reloftype, NULL) END,
            'partition_key', CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p'
                THEN pg_catalog.pg_get_partkeydef(c.oid) END,
            'partition_bound', pg_catalog.pg_get_expr(c.relpartbound, c.oid),
            'inherits', (SELECT pg_catalog.array_agg(h.inhparent::pg_catalog.regclass ORDER BY h.inhseqno)
                FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) c.oid),
            'view', CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog."char"[])
                THEN pg_catalog.pg_get_viewdef(c.oid) END,
            'sequence', (SELECT (pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.-) ARRAY['seqrelid', 'seqtypid']::pg_catalog.text[])
                    OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('type', pg_catalog.format_type(s.seqtypid, NULL))
                FROM pg_catalog.pg_sequence s WHERE s.seqrelid OPERATOR(pg_catalog.=) c.oid),
            'owned_by', (SELECT pg_catalog.array_agg(pg_catalog.format('%s %s.%s', d.deptype,
                        d.refobjid::pg_catalog.regclass, pg_catalog.quote_ident(a.attname))
                    ORDER BY d.deptype)
                FROM pg_catalog.pg_depend d
                JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.refobjid
                    AND a.attnum OPERATOR(pg_catalog.=) d.refobjsubid
                WHERE c.relkind OPERATOR(pg_catalog.=) 'S'
                  AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND d.objid OPERATOR(pg_catalog.=) c.oid
                  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog."char"[])),
            'foreign', (SELECT pg_catalog.jsonb_build_object('server', s.srvname, 'options', f.ftoptions)
                FROM pg_catalog.pg_foreign_table f
                JOIN pg_catalog.pg_foreign_server s ON s.oid OPERATOR(pg_catalog.=) f.ftserver
                WHERE f.ftrelid OPERATOR(pg_catalog.=) c.oid))
    FROM pg_catalog.pg_class c JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,f,c}'::pg_catalog."char"[])

    -- columns (their position among the live columns, not attnum)
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum, NULL,
        pg_catalog.jsonb_build_object(
            'position', pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
            'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
            'not_null', a.attnotnull,
            'default', pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
            'identity', a.attidentity,
            'generated', a.attgenerated,
            'collation', a.attcollation::pg_catalog.regcollation,
            'storage', a.attstorage,
            'compression', (SELECT pg_catalog.to_jsonb(x) OPERATOR(pg_catalog.->) 'attcompression'
                FROM pg_catalog.pg_attribute x
                WHERE x.attrelid OPERATOR(pg_catalog.=) a.attrelid AND x.attnum OPERATOR(pg_catalog.=) a.attnum),
            'statistics', a.attstattarget,
            -- pg_attver= is this server build's own per-relation stamp, which
            -- pg_dump leaves out as well
            'options', ARRAY(SELECT u.o FROM pg_catalog.unnest(a.attoptions) WITH ORDINALITY AS u (o, n)
                WHERE NOT pg_catalog.starts_with(u.o, 'pg_attver=') ORDER BY u.n),
            'fdw_options', a.attfdwoptions,
            'local', a.attislocal,
            'inherited', a.attinhcount,
            'acl', COALESCE(a.attacl, pg_catalog.acldefault('c', c.relowner)))
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
    JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.relnamespace
    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid OPERATOR(pg_catalog.=) a.attrelid
        AND ad.adnum OPERATOR(pg_catalog.=) a.attnum
    WHERE a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
      AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,f,c}'::pg_catalog."char"[])

    -- constraints of tables and domains (with the enabled state of the triggers
    -- that implement a foreign key)
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'def', pg_catalog.pg_get_constraintdef(k.oid),
            'local', k.conislocal,
            'inherited', k.coninhcount,
            'triggers', (SELECT pg_catalog.array_agg(t.tgenabled ORDER BY t.tgenabled)
                FROM pg_catalog.pg_trigger t
                WHERE t.tgconstraint OPERATOR(pg_catalog.=) k.oid AND t.tgisinternal))
    FROM pg_catalog.pg_constraint k JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) k.connamespace

    -- indexes
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, x.indexrelid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'def', pg_catalog.pg_get_indexdef(x.indexrelid),
            'options', i.reloptions,
            'clustered', x.indisclustered,
            'replica_identity', x.indisreplident,
            'valid', x.indisvalid,
            'tablespace', (SELECT s.spcname FROM pg_catalog.pg_tablespace s
                WHERE s.oid OPERATOR(pg_catalog.=) i.reltablespace),
            'statistics', (SELECT pg_catalog.array_agg(a.attstattarget ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a
                WHERE a.attrelid OPERATOR(pg_catalog.=) x.indexrelid AND a.attnum OPERATOR(pg_catalog.>) 0),
            'attached_to', (SELECT pg_catalog.array_agg(h.inhparent::pg_catalog.regclass ORDER BY h.inhseqno)
                FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) x.indexrelid))
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) x.indexrelid
    JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) i.relnamespace

    -- triggers (internal ones belong to their constraint)
    UNION ALL
    SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'def', pg_catalog.pg_get_triggerdef(t.oid),
            'enabled', t.tgenabled)
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
    JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE NOT t.tgisinternal

    -- rules (a view's _RETURN rule is its definition)
    UNION ALL
    SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'def', pg_catalog.pg_get_ruledef(r.oid),
            'enabled', r.ev_enabled)
    FROM pg_catalog.pg_rewrite r
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.ev_class
    JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE r.rulename OPERATOR(pg_catalog.<>) '_RETURN'

    -- row-level security policies
    UNION ALL
    SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'command', p.polcmd,
            'permissive', p.polpermissive,
            'roles', (SELECT pg_catalog.array_agg(CASE WHEN r.role OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                        THEN 'public' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.role)) END
                    ORDER BY r.n)
                FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY AS r (role, n)),
            'using', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
            'check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_catalog.pg_policy p
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
    JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.relnamespace

    -- functions, procedures, aggregates
    UNION ALL
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(p.proowner),
            'acl', COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner)),
            'def', CASE WHEN p.prokind OPERATOR(pg_catalog.<>) 'a'
                THEN pg_catalog.pg_get_functiondef(p.oid) END,
            'aggregate', (SELECT (pg_catalog.to_jsonb(g) OPERATOR(pg_catalog.-) ARRAY['aggfnoid',
                        'aggtranstype', 'aggmtranstype', 'aggsortop']::pg_catalog.text[])
                    OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                        'arguments', pg_catalog.pg_get_function_arguments(p.oid),
                        'result', pg_catalog.pg_get_function_result(p.oid),
                        'parallel', p.proparallel,
                        'transtype', pg_catalog.format_type(g.aggtranstype, NULL),
                        'mtranstype', pg_catalog.format_type(g.aggmtranstype, NULL),
                        'sortop', g.aggsortop::pg_catalog.regoperator)
                FROM pg_catalog.pg_aggregate g WHERE g.aggfnoid OPERATOR(pg_catalog.=) p.oid))
    FROM pg_catalog.pg_proc p JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) p.pronamespace

    -- operators
    UNION ALL
    SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid, 0, NULL,
        (SELECT pg_catalog.to_jsonb(x) OPERATOR(pg_catalog.-) ARRAY['oid', 'oprname', 'oprnamespace',
                'oprowner', 'oprleft', 'oprright', 'oprresult', 'oprcom', 'oprnegate']::pg_catalog.text[]
            FROM pg_catalog.pg_operator x WHERE x.oid OPERATOR(pg_catalog.=) o.oid)
        OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(o.oprowner),
            'result', pg_catalog.format_type(o.oprresult, NULL),
            'commutator', o.oprcom::pg_catalog.regoperator,
            'negator', o.oprnegate::pg_catalog.regoperator)
    FROM pg_catalog.pg_operator o JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) o.oprnamespace

    -- operator families with their operators and support functions
    UNION ALL
    SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, f.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(f.opfowner),
            'method', (SELECT a.amname FROM pg_catalog.pg_am a WHERE a.oid OPERATOR(pg_catalog.=) f.opfmethod),
            'operators', (SELECT pg_catalog.array_agg(m.line ORDER BY m.line COLLATE pg_catalog."C")
                FROM (SELECT pg_catalog.format('%s %s (%s, %s) %s %s', o.amoppurpose, o.amopstrategy,
                        pg_catalog.format_type(o.amoplefttype, NULL),
                        pg_catalog.format_type(o.amoprighttype, NULL),
                        o.amopopr::pg_catalog.regoperator,
                        (pg_catalog.pg_identify_object('pg_catalog.pg_opfamily'::pg_catalog.regclass, o.amopsortfamily, 0)).identity) AS line
                    FROM pg_catalog.pg_amop o WHERE o.amopfamily OPERATOR(pg_catalog.=) f.oid) m),
            'functions', (SELECT pg_catalog.array_agg(m.line ORDER BY m.line COLLATE pg_catalog."C")
                FROM (SELECT pg_catalog.format('%s (%s, %s) %s', p.amprocnum,
                        pg_catalog.format_type(p.amproclefttype, NULL),
                        pg_catalog.format_type(p.amprocrighttype, NULL),
                        p.amproc::pg_catalog.regprocedure) AS line
                    FROM pg_catalog.pg_amproc p WHERE p.amprocfamily OPERATOR(pg_catalog.=) f.oid) m))
    FROM pg_catalog.pg_opfamily f JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) f.opfnamespace

    -- operator classes
    UNION ALL
    SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, c.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(c.opcowner),
            'method', (SELECT a.amname FROM pg_catalog.pg_am a WHERE a.oid OPERATOR(pg_catalog.=) c.opcmethod),
            'type', pg_catalog.format_type(c.opcintype, NULL),
            'default', c.opcdefault,
            'storage', CASE WHEN c.opckeytype OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN pg_catalog.format_type(c.opckeytype, NULL) END,
            'family', (pg_catalog.pg_identify_object('pg_catalog.pg_opfamily'::pg_catalog.regclass, c.opcfamily, 0)).identity)
    FROM pg_catalog.pg_opclass c JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.opcnamespace

    -- casts (not the ones initdb made)
    UNION ALL
    SELECT 'pg_catalog.pg_cast'::pg_catalog.regclass, k.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'function', CASE WHEN k.castfunc OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN k.castfunc::pg_catalog.regprocedure END,
            'context', k.castcontext,
            'method', k.castmethod)
    FROM pg_catalog.pg_cast k
    WHERE k.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid

    -- collations
    UNION ALL
    SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, c.oid, 0, NULL,
        (SELECT pg_catalog.to_jsonb(x) OPERATOR(pg_catalog.-) ARRAY['oid', 'collname', 'collnamespace',
                'collowner', 'collversion']::pg_catalog.text[]
            FROM pg_catalog.pg_collation x WHERE x.oid OPERATOR(pg_catalog.=) c.oid)
        OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(c.collowner))
    FROM pg_catalog.pg_collation c JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.collnamespace

    -- conversions
    UNION ALL
    SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, c.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(c.conowner),
            'from', pg_catalog.pg_encoding_to_char(c.conforencoding),
            'to', pg_catalog.pg_encoding_to_char(c.contoencoding),
            'function', c.conproc::pg_catalog.regprocedure,
            'default', c.condefault)
    FROM pg_catalog.pg_conversion c JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.connamespace

    -- text search parsers, templates, dictionaries, configurations
    UNION ALL
    SELECT 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, p.oid, 0, NULL,
        pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.-) ARRAY['oid', 'prsname', 'prsnamespace']::pg_catalog.text[]
    FROM pg_catalog.pg_ts_parser p JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) p.prsnamespace
    UNION ALL
    SELECT 'pg_catalog.pg_ts_template'::pg_catalog.regclass, t.oid, 0, NULL,
        pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) ARRAY['oid', 'tmplname', 'tmplnamespace']::pg_catalog.text[]
    FROM pg_catalog.pg_ts_template t JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) t.tmplnamespace
    UNION ALL
    SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, d.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(d.dictowner),
            'template', (pg_catalog.pg_identify_object('pg_catalog.pg_ts_template'::pg_catalog.regclass, d.dicttemplate, 0)).identity,
            'options', d.dictinitoption)
    FROM pg_catalog.pg_ts_dict d JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) d.dictnamespace
    UNION ALL
    SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, c.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(c.cfgowner),
            'parser', (pg_catalog.pg_identify_object('pg_catalog.pg_ts_parser'::pg_catalog.regclass, c.cfgparser, 0)).identity,
            'mapping', (SELECT pg_catalog.array_agg(pg_catalog.format('%s %s %s', tt.alias, m.mapseqno,
                        (pg_catalog.pg_identify_object('pg_catalog.pg_ts_dict'::pg_catalog.regclass, m.mapdict, 0)).identity)
                    ORDER BY m.maptokentype, m.mapseqno)
                FROM pg_catalog.pg_ts_config_map m
                LEFT JOIN pg_catalog.ts_token_type(c.cfgparser) tt ON tt.tokid OPERATOR(pg_catalog.=) m.maptokentype
                WHERE m.mapcfg OPERATOR(pg_catalog.=) c.oid))
    FROM pg_catalog.pg_ts_config c JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) c.cfgnamespace

    -- foreign-data wrappers, servers, user mappings (options as this role may see them)
    UNION ALL
    SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass, w.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(w.fdwowner),
            'acl', COALESCE(w.fdwacl, pg_catalog.acldefault('F', w.fdwowner)),
            'handler', CASE WHEN w.fdwhandler OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN w.fdwhandler::pg_catalog.regprocedure END,
            'validator', CASE WHEN w.fdwvalidator OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
                THEN w.fdwvalidator::pg_catalog.regprocedure END,
            'options', w.fdwoptions)
    FROM pg_catalog.pg_foreign_data_wrapper w
    UNION ALL
    SELECT 'pg_catalog.pg_foreign_server'::pg_catalog.regclass, s.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(s.srvowner),
            'acl', COALESCE(s.srvacl, pg_catalog.acldefault('S', s.srvowner)),
            'wrapper', (SELECT w.fdwname FROM pg_catalog.pg_foreign_data_wrapper w
                WHERE w.oid OPERATOR(pg_catalog.=) s.srvfdw),
            'type', s.srvtype,
            'version', s.srvversion,
            'options', s.srvoptions)
    FROM pg_catalog.pg_foreign_server s
    UNION ALL
    SELECT 'pg_catalog.pg_user_mapping'::pg_catalog.regclass, u.umid, 0, NULL,
        pg_catalog.jsonb_build_object('options', u.umoptions)
    FROM pg_catalog.pg_user_mappings u

    -- procedural languages, transforms, access methods (not the ones initdb made)
    UNION ALL
    SELECT 'pg_catalog.pg_language'::pg_catalog.regclass, l.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(l.lanowner),
            'acl', COALESCE(l.lanacl, pg_catalog.acldefault('l', l.lanowner)),
            'procedural', l.lanispl,
            'trusted', l.lanpltrusted,
            'handler', l.lanplcallfoid::pg_catalog.regprocedure,
            'inline', l.laninline::pg_catalog.regprocedure,
            'validator', l.lanvalidator::pg_catalog.regprocedure)
    FROM pg_catalog.pg_language l
    WHERE l.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
    UNION ALL
    SELECT 'pg_catalog.pg_transform'::pg_catalog.regclass, t.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'from_sql', t.trffromsql::pg_catalog.regprocedure,
            'to_sql', t.trftosql::pg_catalog.regprocedure)
    FROM pg_catalog.pg_transform t
    UNION ALL
    SELECT 'pg_catalog.pg_am'::pg_catalog.regclass, a.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'type', a.amtype,
            'handler', a.amhandler::pg_catalog.regprocedure)
    FROM pg_catalog.pg_am a
    WHERE a.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid

    -- event triggers
    UNION ALL
    SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass, e.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(e.evtowner),
            'event', e.evtevent,
            'function', e.evtfoid::pg_catalog.regprocedure,
            'enabled', e.evtenabled,
            'tags', e.evttags)
    FROM pg_catalog.pg_event_trigger e

    -- publications and what they publish
    UNION ALL
    SELECT 'pg_catalog.pg_publication'::pg_catalog.regclass, p.oid, 0, NULL,
        (pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.-) ARRAY['oid', 'pubname', 'pubowner']::pg_catalog.text[])
        OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(p.pubowner))
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
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(s.subowner),
            'enabled', s.subenabled,
            'slot', s.subslotname,
            'synchronous_commit', s.subsynccommit,
            'publications', s.subpublications
            @PG15_SUBSCRIPTION@)
    FROM pg_catalog.pg_subscription s
    WHERE s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
        WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())

    -- extended statistics objects
    UNION ALL
    SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid, 0, NULL,
        pg_catalog.jsonb_build_object(
            'owner', pg_catalog.pg_get_userbyid(s.stxowner),
            'def', pg_catalog.pg_get_statisticsobjdef(s.oid),
            'statistics', s.stxstattarget)
    FROM pg_catalog.pg_statistic_ext s JOIN nsp ON nsp.oid OPERATOR(pg_catalog.=) s.stxnamespace

    -- default privileges (global, or in a schema pg_dump dumps)
    UNION ALL
    SELECT 'pg_catalog.pg_default_acl'::pg_catalog.regclass, d.oid, 0, NULL,
        pg_catalog.jsonb_build_object('acl', d.defaclacl)
    FROM pg_catalog.pg_default_acl d
    WHERE d.defaclnamespace OPERATOR(pg_catalog.=) 0::pg_catalog.oid
       OR EXISTS (SELECT FROM nsp WHERE nsp.oid OPERATOR(pg_catalog.=) d.defaclnamespace)

    -- privileges on what initdb made in pg_catalog, where they differ from the
    -- initial ones (pg_dump prints those GRANTs and REVOKEs); most have neither an
    -- ACL nor initial privileges
    UNION ALL
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid, 0, 'system acl',
        pg_catalog.jsonb_build_object('acl', COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner)))
    FROM pg_catalog.pg_namespace n
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) n.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE n.oid OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND (n.nspacl IS NOT NULL OR i.initprivs IS NOT NULL)
      AND NOT COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))
          OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('n', n.nspowner))
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0, 'system acl',
        pg_catalog.jsonb_build_object('acl', COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner)))
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) c.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND (c.relacl IS NOT NULL OR i.initprivs IS NOT NULL)
      AND NOT COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))
          OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('r', c.relowner))
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum, 'system acl',
        pg_catalog.jsonb_build_object('acl', COALESCE(a.attacl, pg_catalog.acldefault('c', c.relowner)))
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) a.attrelid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) a.attnum
    WHERE c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND a.attnum OPERATOR(pg_catalog.>) 0
      AND (a.attacl IS NOT NULL OR i.initprivs IS NOT NULL)
      AND NOT COALESCE(a.attacl, pg_catalog.acldefault('c', c.relowner))
          OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('c', c.relowner))
    UNION ALL
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0, 'system acl',
        pg_catalog.jsonb_build_object('acl', COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner)))
    FROM pg_catalog.pg_proc p
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) p.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND (p.proacl IS NOT NULL OR i.initprivs IS NOT NULL)
      AND NOT COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))
          OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('f', p.proowner))
    UNION ALL
    SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0, 'system acl',
        pg_catalog.jsonb_build_object('acl', COALESCE(t.typacl, pg_catalog.acldefault('T', t.typowner)))
    FROM pg_catalog.pg_type t
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) t.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
      AND (t.typacl IS NOT NULL OR i.initprivs IS NOT NULL)
      AND NOT COALESCE(t.typacl, pg_catalog.acldefault('T', t.typowner))
          OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('T', t.typowner))
    UNION ALL
    SELECT 'pg_catalog.pg_language'::pg_catalog.regclass, l.oid, 0, 'system acl',
        pg_catalog.jsonb_build_object('acl', COALESCE(l.lanacl, pg_catalog.acldefault('l', l.lanowner)))
    FROM pg_catalog.pg_language l
    LEFT JOIN pg_catalog.pg_init_privs i ON i.objoid OPERATOR(pg_catalog.=) l.oid
        AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_language'::pg_catalog.regclass
        AND i.objsubid OPERATOR(pg_catalog.=) 0
    WHERE l.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid
      AND (l.lanacl IS NOT NULL OR i.initprivs IS NOT NULL)
      AND NOT COALESCE(l.lanacl, pg_catalog.acldefault('l', l.lanowner))
          OPERATOR(pg_catalog.=) COALESCE(i.initprivs, pg_catalog.acldefault('l', l.lanowner))
)
-- Every object with what is said about it elsewhere: its comment, security labels,
-- the extension it belongs to and the extensions it depends on.
SELECT COALESCE(o.kind, i.type) AS kind,
    CASE WHEN o.kind IS NULL THEN i.identity ELSE pg_catalog.format('%s %s', i.type, i.identity) END AS name,
    pg_catalog.jsonb_strip_nulls(o.def OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
        'comment', (SELECT d.description FROM pg_catalog.pg_description d
            WHERE d.objoid OPERATOR(pg_catalog.=) o.objid
              AND d.classoid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
              AND d.objsubid OPERATOR(pg_catalog.=) o.objsubid),
        'security_labels', (SELECT pg_catalog.array_agg(pg_catalog.format('%s: %s', l.provider, l.label)
                ORDER BY l.provider COLLATE pg_catalog."C")
            FROM pg_catalog.pg_seclabel l
            WHERE l.objoid OPERATOR(pg_catalog.=) o.objid
              AND l.classoid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
              AND l.objsubid OPERATOR(pg_catalog.=) o.objsubid),
        'member_of', (SELECT pg_catalog.array_agg(e.extname ORDER BY e.extname COLLATE pg_catalog."C")
            FROM pg_catalog.pg_depend dep
            JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) dep.refobjid
            WHERE dep.classid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
              AND dep.objid OPERATOR(pg_catalog.=) o.objid
              AND dep.objsubid OPERATOR(pg_catalog.=) o.objsubid
              AND dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
              AND dep.deptype OPERATOR(pg_catalog.=) 'e'),
        'depends_on_extensions', (SELECT pg_catalog.array_agg(e.extname ORDER BY e.extname COLLATE pg_catalog."C")
            FROM pg_catalog.pg_depend dep
            JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) dep.refobjid
            WHERE dep.classid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
              AND dep.objid OPERATOR(pg_catalog.=) o.objid
              AND dep.objsubid OPERATOR(pg_catalog.=) o.objsubid
              AND dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
              AND dep.deptype OPERATOR(pg_catalog.=) 'x')
    ))::pg_catalog.text AS definition
FROM obj o
CROSS JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, o.objsubid) i
WHERE NOT EXISTS (SELECT FROM excluded x
    WHERE x.classid::pg_catalog.oid OPERATOR(pg_catalog.=) o.classid::pg_catalog.oid
      AND x.objid OPERATOR(pg_catalog.=) o.objid)
