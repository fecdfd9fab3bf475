-- Tier 3 - ownership seed. THE sovereign accountability assertion: names an
-- authority for each of the 35 governed collections in each of the 6 scopes.
-- Gated on ratification. Records the ratified proposal code, which reaches SQL only
-- as current_setting('airlock.ratified_apr') (unset -> this tier fails closed).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM governance.os_proposals WHERE code = current_setting('airlock.ratified_apr')) THEN
        RAISE EXCEPTION 'ratified_apr % is not a known proposal', current_setting('airlock.ratified_apr');
    END IF;
END $$;

INSERT INTO one_roof.ownership (collection, scope, authority, axis, status, ratified_by)
SELECT c.collection,
       s.scope,
       CASE c.domain
            WHEN 'council' THEN 'GOV-COUNCIL'
            WHEN 'kg'      THEN 'GOV-KG-SYS'
            WHEN 'dot'     THEN 'GOV-DOT'
            WHEN 'moit'    THEN 'GOV-MOIT'
       END,
       'responsibility',
       'candidate',
       current_setting('airlock.ratified_apr')
  FROM governance.governed_collections c
 CROSS JOIN governance.scopes s;

DO $$
BEGIN
    RAISE NOTICE 'ownership seed: % candidate rows for %', (SELECT count(*) FROM one_roof.ownership), current_setting('airlock.ratified_apr');
END $$;
