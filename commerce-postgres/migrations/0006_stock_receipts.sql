-- Receipts made with a caller reference count once per SKU and reference:
-- the claim of the reference and the change of on-hand are one
-- transaction.
CREATE TABLE stock_receipts (
    tenant_id      text        NOT NULL,
    sku            text        NOT NULL,
    reference      text        NOT NULL,
    received_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sku, reference)
);

ALTER TABLE stock_receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE stock_receipts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON stock_receipts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON stock_receipts TO commerce_app;
