-- Tier 5 - containment. A collection is contained when every scope has an active
-- owner. Expect 35 of 35.
INSERT INTO one_roof.containment (collection, contained)
SELECT c.collection,
       count(o.scope) FILTER (WHERE o.status = 'active') = (SELECT count(*) FROM governance.scopes)
  FROM governance.governed_collections c
  LEFT JOIN one_roof.ownership o ON o.collection = c.collection
 GROUP BY c.collection;
