-- Tier 1 - structure. Effect-inert: new schema and empty tables only; no coverage
-- changes (gap stays 210). Gate-free: may ship while the gate is BLOCKED.
CREATE SCHEMA one_roof;
COMMENT ON SCHEMA one_roof IS 'One-Roof governance phase 1 (airlock bundle one-roof-phase1)';

CREATE TABLE one_roof.axes (
    axis        text PRIMARY KEY,
    description text NOT NULL,
    active      boolean NOT NULL DEFAULT false
);

CREATE TABLE one_roof.ownership (
    collection  text NOT NULL REFERENCES governance.governed_collections (collection),
    scope       text NOT NULL REFERENCES governance.scopes (scope),
    authority   text NOT NULL REFERENCES governance.authorities (code),
    axis        text NOT NULL REFERENCES one_roof.axes (axis),
    status      text NOT NULL CHECK (status IN ('candidate', 'active')),
    ratified_by text,
    label       text,
    PRIMARY KEY (collection, scope)
);
CREATE INDEX ownership_authority_idx ON one_roof.ownership (authority);

CREATE TABLE one_roof.containment (
    collection text PRIMARY KEY REFERENCES governance.governed_collections (collection),
    contained  boolean NOT NULL
);
