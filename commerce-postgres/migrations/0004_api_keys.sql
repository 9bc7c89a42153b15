-- Admin API keys, stored as SHA-256 hashes (the key itself is shown once
-- and never stored), under the same row-level security as every other
-- tenant table.
CREATE TABLE api_keys (
    tenant_id      text        NOT NULL,
    id             text        NOT NULL,
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz,
    revoked_at     timestamptz,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO commerce_app;
