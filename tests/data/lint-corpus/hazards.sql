-- Statements every artefact must judge alike (scripts/lint-corpus): accepted ones
-- (no output) and refused ones (one problem each, with its line).
CREATE TABLE billing.invoices (id bigint PRIMARY KEY, "begin" date, note text DEFAULT 'a; COMMIT');
REINDEX TABLE billing.invoices;
REINDEX INDEX billing.invoices_pkey;
CLUSTER billing.invoices USING invoices_pkey;
ALTER DATABASE directus SET work_mem = '8MB';
EXPLAIN ANALYZE SELECT 1;
DISCARD PLANS;
ANALYZE billing.invoices;
COMMENT ON TABLE billing.invoices IS 'who; VACUUM';
DO $$ BEGIN RAISE NOTICE 'no commit here'; END $$;
CREATE RULE r AS ON INSERT TO billing.invoices DO ALSO (NOTIFY a; NOTIFY b);
CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false);
INSERT INTO billing.invoices VALUES (1, NULL, E'x\'; COMMIT; --');
VACUUM billing.invoices;
CREATE INDEX CONCURRENTLY invoices_note ON billing.invoices (note);
DROP INDEX CONCURRENTLY billing.invoices_note;
REINDEX SCHEMA billing;
REINDEX TABLE CONCURRENTLY billing.invoices;
ALTER TABLE billing.parts DETACH PARTITION billing.p1 CONCURRENTLY;
COMMIT;
BEGIN;
SAVEPOINT s1;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
SET transaction_read_only = on;
DO $$ BEGIN COMMIT; END $$;
CREATE SUBSCRIPTION s2 CONNECTION 'host=x' PUBLICATION p;
ALTER SUBSCRIPTION s REFRESH PUBLICATION;
CREATE DATABASE other;
CREATE TABLESPACE t LOCATION '/x';
ALTER SYSTEM SET work_mem = '1MB';
CLUSTER;
DISCARD ALL;
SET client_encoding = 'SJIS';
CHECKPOINT;
MERGE INTO billing.invoices i USING (VALUES (1)) v(id) ON i.id = v.id WHEN MATCHED THEN DELETE;
CREATE TABLE (;
-- Accepted by the parser, refused for [target] min_server_version 13 (PostgreSQL 14 syntax):
CREATE FUNCTION billing.f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;
-- Last: a legacy standard_conforming_strings = off file is not read further.
SET standard_conforming_strings = off;
