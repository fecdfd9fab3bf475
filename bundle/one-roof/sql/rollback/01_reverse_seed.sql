-- Rollback 1 - reverse the seed. Undoes any applied prefix of the tiers' data and
-- the guard on governance.settings. Idempotent: a no-op when nothing is applied.
DO $$
BEGIN
    IF to_regclass('one_roof.ownership') IS NOT NULL THEN
        DELETE FROM one_roof.containment;
        DELETE FROM one_roof.ownership;
        DELETE FROM one_roof.axes;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'one_roof_emit_fail_closed'
                AND tgrelid = 'governance.settings'::regclass) THEN
        DROP TRIGGER one_roof_emit_fail_closed ON governance.settings;
    END IF;
END $$;
