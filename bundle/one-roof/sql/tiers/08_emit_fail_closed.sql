-- Tier 8 - emit fail-closed. External event emission stays OFF, and turning it on
-- now requires dropping an explicit guard: a separate, separately approved release.
CREATE FUNCTION one_roof.refuse_emit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key = 'emit_enabled' AND NEW.value <> 'false' THEN
        RAISE EXCEPTION 'event emission is fail-closed by one-roof-phase1; enabling it needs its own ratified release';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER one_roof_emit_fail_closed
    BEFORE INSERT OR UPDATE ON governance.settings
    FOR EACH ROW EXECUTE FUNCTION one_roof.refuse_emit();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM governance.settings WHERE key = 'emit_enabled' AND value <> 'false') THEN
        RAISE EXCEPTION 'emit_enabled is on; the release expects it off';
    END IF;
    RAISE NOTICE 'emit fail-closed: guard installed, emission off';
END $$;
