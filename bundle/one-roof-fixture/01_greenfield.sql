-- One-Roof greenfield fixture: the production state the 2026-06-03 release found.
-- A Directus database with the governance substrate but no ownership asserted:
-- 35 governed collections x 6 responsibility scopes = ownership gap 210,
-- zero ratified approvals (gate BLOCKED), external event emission off.
-- Plain SQL, no psql meta-commands: loaded by `airlock demo` and by the tests.

CREATE SCHEMA governance;

CREATE TABLE governance.os_proposals (
    code   text PRIMARY KEY,
    title  text NOT NULL,
    level  text NOT NULL CHECK (level IN ('L1', 'L2', 'L3', 'L4')),
    status text NOT NULL DEFAULT 'open'
);

-- A row here is a human L2/L4 ratification. Only people write it.
CREATE TABLE governance.os_proposal_approvals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proposal    text NOT NULL REFERENCES governance.os_proposals (code),
    approver    text NOT NULL,
    approved_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE governance.authorities (
    code text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE governance.scopes (
    scope       text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE governance.governed_collections (
    collection text PRIMARY KEY,
    domain     text NOT NULL CHECK (domain IN ('council', 'kg', 'dot', 'moit')),
    label      text NOT NULL
);

CREATE TABLE governance.settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

INSERT INTO governance.os_proposals (code, title, level) VALUES
    ('APR-BOOT-AUTHMODEL-1', 'Authorization model: sovereign accountability for governed collections', 'L4');

INSERT INTO governance.authorities (code, name) VALUES
    ('GOV-COUNCIL', 'Governing council'),
    ('GOV-KG-SYS',  'Knowledge-graph system stewardship'),
    ('GOV-DOT',     'Department of transport'),
    ('GOV-MOIT',    'Ministry of information technology');

INSERT INTO governance.scopes (scope, description) VALUES
    ('accountable', 'answers for the collection'),
    ('responsible', 'does the work'),
    ('consulted',   'asked before changes'),
    ('informed',    'told after changes'),
    ('steward',     'keeps the data correct'),
    ('custodian',   'keeps the data safe');

INSERT INTO governance.governed_collections (collection, domain, label) VALUES
    ('law_documents', 'council', 'Law documents'),
    ('law_versions', 'council', 'Law versions'),
    ('council_minutes', 'council', 'Council minutes'),
    ('council_members', 'council', 'Council members'),
    ('council_votes', 'council', 'Council votes'),
    ('sign_off_requests', 'council', 'Sign-off requests'),
    ('sign_off_records', 'council', 'Sign-off records'),
    ('policy_register', 'council', 'Policy register'),
    ('policy_exceptions', 'council', 'Policy exceptions'),
    ('kg_entities', 'kg', 'Knowledge-graph entities'),
    ('kg_relations', 'kg', 'Knowledge-graph relations'),
    ('kg_sources', 'kg', 'Knowledge-graph sources'),
    ('kg_embeddings', 'kg', 'Knowledge-graph embeddings'),
    ('kg_topics', 'kg', 'Knowledge-graph topics'),
    ('kg_labels', 'kg', 'Knowledge-graph labels'),
    ('kg_ingest_runs', 'kg', 'Ingest runs'),
    ('kg_quality_checks', 'kg', 'Quality checks'),
    ('kg_snapshots', 'kg', 'Snapshots'),
    ('dot_routes', 'dot', 'Routes'),
    ('dot_permits', 'dot', 'Permits'),
    ('dot_inspections', 'dot', 'Inspections'),
    ('dot_incidents', 'dot', 'Incidents'),
    ('dot_assets', 'dot', 'Assets'),
    ('dot_contracts', 'dot', 'Contracts'),
    ('dot_birth_registry', 'dot', 'Registrations'),
    ('dot_handlers', 'dot', 'Handlers'),
    ('moit_services', 'moit', 'Services'),
    ('moit_endpoints', 'moit', 'API endpoints'),
    ('moit_credentials', 'moit', 'Credentials'),
    ('moit_audit_log', 'moit', 'Audit log'),
    ('moit_billing_invoices', 'moit', 'Billing invoices'),
    ('moit_billing_accounts', 'moit', 'Billing accounts'),
    ('moit_event_types', 'moit', 'Event types'),
    ('moit_notifications', 'moit', 'Notifications'),
    ('moit_ui_screens', 'moit', 'UI screens');

INSERT INTO governance.settings (key, value) VALUES
    ('emit_enabled', 'false'),
    ('release_channel', 'production');

-- Unrelated application data, so the fixture looks like a real Directus database.
CREATE TABLE public.directus_users (
    id    integer PRIMARY KEY,
    email text NOT NULL UNIQUE,
    role  text NOT NULL
);
INSERT INTO public.directus_users VALUES
    (1, 'owner@example.org', 'administrator'),
    (2, 'engineer@example.org', 'editor'),
    (3, 'auditor@example.org', 'viewer');

CREATE TABLE public.system_issues (
    id      integer PRIMARY KEY,
    kind    text NOT NULL,
    opened  date NOT NULL,
    summary text NOT NULL
);
INSERT INTO public.system_issues
SELECT i,
       (ARRAY['lint', 'drift', 'latency', 'permission'])[1 + i % 4],
       DATE '2026-01-01' + (i % 150),
       'issue #' || i
  FROM generate_series(1, 500) AS i;
