-- Tier 7 - read-only UI/API views. Additive: dashboards read these; nothing writes
-- through them.
CREATE VIEW one_roof.v_coverage AS
SELECT c.collection,
       c.label,
       count(o.scope) FILTER (WHERE o.status = 'active') AS scopes_owned,
       (SELECT count(*) FROM governance.scopes) AS scopes_total,
       coalesce(k.contained, false) AS contained
  FROM governance.governed_collections c
  LEFT JOIN one_roof.ownership o ON o.collection = c.collection
  LEFT JOIN one_roof.containment k ON k.collection = c.collection
 GROUP BY c.collection, c.label, k.contained;

CREATE VIEW one_roof.v_ownership AS
SELECT o.collection, o.scope, o.authority, a.name AS authority_name, o.label, o.ratified_by
  FROM one_roof.ownership o
  JOIN governance.authorities a ON a.code = o.authority
 WHERE o.status = 'active';
