-- The data of the pgbench comparison (run.sh), on a database migrated with
-- commerce-postgres/migrations: one tenant, one published product, 10,000
-- SKUs with stock to spare, 400,000 empty carts, a login role that is a
-- member of commerce_app (row-level security applies to it), and the
-- limit's counters.
DO $$ BEGIN
    CREATE ROLE commerce_pgbench LOGIN IN ROLE commerce_app;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
INSERT INTO products (tenant_id, id, name, doc, search_text)
VALUES ('t', '00000000-0000-0000-0000-000000000001', 'p', '{}', 'p');
INSERT INTO skus (tenant_id, sku, product_id, price_minor, currency, on_hand, held)
SELECT 't', 'SKU-' || g, '00000000-0000-0000-0000-000000000001', 100, 'AUD', 1000000, 0
FROM generate_series(1, 10000) g;
INSERT INTO carts (tenant_id, id, doc)
SELECT 't', ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
       jsonb_build_object('currency', 'AUD', 'updated_at', '2026-12-07T00:00:00Z', 'lines', '[]'::jsonb)
FROM generate_series(1, 400000) g;
CREATE TABLE counters (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
INSERT INTO counters SELECT g FROM generate_series(1, 10000) g;
GRANT ALL ON counters TO commerce_app;
