-- Tier 6 - label alignment. Ownership rows carry the collection's display label and
-- scope, so the UI shows the same words the governance register uses.
UPDATE one_roof.ownership o
   SET label = c.label || ' / ' || o.scope
  FROM governance.governed_collections c
 WHERE c.collection = o.collection;
