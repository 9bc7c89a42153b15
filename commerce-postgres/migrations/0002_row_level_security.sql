-- Tenant isolation by row-level security. Every tenant-scoped table has RLS
-- enabled and forced, with one policy: a row is visible and writable only
-- when its tenant_id equals the transaction's app.tenant_id, which the
-- store sets with set_config('app.tenant_id', $1, true) at the start of
-- every transaction. Unset, current_setting(..., true) is NULL and no row
-- matches.
--
-- The store runs as commerce_app: not a superuser and without BYPASSRLS
-- (superusers and BYPASSRLS roles ignore policies). This migration creates
-- it without a password or login; an operator grants it LOGIN and a
-- password, or grants it to the login role the service uses and the store
-- switches to it (PgStoreOptions::set_role).

DO $$
BEGIN
    CREATE ROLE commerce_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'products', 'skus', 'stock_adjustments', 'carts', 'cart_lines', 'reservations',
        'allocations', 'orders', 'order_events', 'payment_events', 'refunds', 'promotions',
        'promotion_usage', 'promotion_customer_usage', 'shop_settings'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO commerce_app', t);
    END LOOP;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO commerce_app', current_schema());
END
$$;
