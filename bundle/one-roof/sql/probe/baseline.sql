-- Baseline probe: "the target is exactly where we expect". Works before the release
-- created its schema: counts over one_roof.* go through query_to_xml, which only
-- plans its query when the CASE reaches it.
WITH c AS (
  SELECT (SELECT count(*) FROM governance.governed_collections) AS inventory,
         (SELECT count(*) FROM governance.scopes) AS scopes,
         CASE WHEN to_regclass('one_roof.ownership') IS NULL THEN 0
              ELSE (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM one_roof.ownership', false, true, '')))[1]::text::bigint
         END AS ownership,
         CASE WHEN to_regclass('one_roof.ownership') IS NULL THEN 0
              ELSE (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM one_roof.ownership WHERE status = ''active''', false, true, '')))[1]::text::bigint
         END AS active,
         CASE WHEN to_regclass('one_roof.axes') IS NULL THEN 0
              ELSE (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM one_roof.axes WHERE active', false, true, '')))[1]::text::bigint
         END AS axis,
         CASE WHEN to_regclass('one_roof.ownership') IS NULL THEN 0
              ELSE (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM (SELECT collection FROM one_roof.ownership GROUP BY collection HAVING count(DISTINCT authority) > 1) x', false, true, '')))[1]::text::bigint
         END AS conflict,
         (SELECT count(*) FROM governance.settings WHERE key = 'emit_enabled' AND value = 'true') AS emit,
         (SELECT count(*) FROM governance.os_proposal_approvals) AS ospa
)
SELECT k::text AS key, v::text AS value
  FROM c, LATERAL (VALUES
       ('inventory', inventory),
       ('scopes', scopes),
       ('ownership', ownership),
       ('gap', inventory * scopes - active),
       ('conflict', conflict),
       ('axis', axis),
       ('emit', emit),
       ('ospa', ospa)) AS kv(k, v);
