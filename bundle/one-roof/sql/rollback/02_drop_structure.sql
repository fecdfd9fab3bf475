-- Rollback 2 - drop the structure (tables, views, guard function). Idempotent.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'one_roof') THEN
        DROP SCHEMA one_roof CASCADE;
    END IF;
END $$;
