-- Finalized-state probe, checked inside the apply transaction before COMMIT:
-- every governed collection owned in every scope (gap 0), one authority per
-- collection (conflict 0), no unlabelled or unratified row (divergent 0),
-- all 35 contained, emission still off.
SELECT k::text AS key, v::text AS value
  FROM (VALUES
    ('ownership', (SELECT count(*) FROM one_roof.ownership)),
    ('gap', (SELECT count(*) FROM governance.governed_collections) * (SELECT count(*) FROM governance.scopes)
            - (SELECT count(*) FROM one_roof.ownership WHERE status = 'active')),
    ('conflict', (SELECT count(*) FROM (SELECT collection FROM one_roof.ownership GROUP BY collection HAVING count(DISTINCT authority) > 1) x)),
    ('divergent', (SELECT count(*) FROM one_roof.ownership WHERE label IS NULL OR ratified_by IS NULL)),
    ('containment', (SELECT count(*) FROM one_roof.containment WHERE contained)),
    ('emit', (SELECT count(*) FROM governance.settings WHERE key = 'emit_enabled' AND value = 'true'))
  ) AS kv(k, v);
