-- 1. The tenant's event feed.
--
-- Every order event gets a feed position: (xid, position), compared in that
-- order. xid is the inserting transaction's id (pg_current_xact_id(), as
-- xid8: 64 bits, never wraps); position is a global identity, giving the
-- order within a transaction. A reader hands out only events whose xid is
-- older than the oldest transaction still running
-- (pg_snapshot_xmin(pg_current_snapshot())): every such transaction has
-- ended, so no event can still appear below the last position handed out,
-- even when transactions commit out of order. No per-tenant counter: the
-- hot path writes no extra row, only these two columns and one index entry.
--
-- Existing rows: xid 0 (before any real transaction), positions in the
-- order the events happened. The table forces row-level security, which
-- would hide its rows from a migrating role that owns it without being a
-- superuser: it is lifted for the backfill only, inside this migration's
-- transaction and under the ALTER TABLE lock, so no other session sees it.
ALTER TABLE order_events ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE order_events ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
ALTER TABLE order_events ADD COLUMN position bigint;

ALTER TABLE order_events NO FORCE ROW LEVEL SECURITY;
UPDATE order_events e SET position = n.position
FROM (
    SELECT tenant_id, order_id, seq,
           row_number() OVER (ORDER BY (doc->>'at')::timestamptz, order_id, seq) AS position
    FROM order_events
) n
WHERE e.tenant_id = n.tenant_id AND e.order_id = n.order_id AND e.seq = n.seq;
ALTER TABLE order_events FORCE ROW LEVEL SECURITY;

ALTER TABLE order_events ALTER COLUMN position SET NOT NULL;
ALTER TABLE order_events ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('order_events', 'position'),
              COALESCE(max(position), 0) + 1, false)
FROM order_events;

CREATE INDEX order_events_feed ON order_events (tenant_id, xid, position);

-- 2. The tenants the sweeper has work for.
--
-- The application role sees one tenant per transaction (row-level
-- security), so listing tenants across it is this one function's job. It
-- runs as its owner, the migrating role (SECURITY DEFINER), returns only
-- distinct tenant ids, and only the application role may call it. The
-- tables' policies stay as they are. row_security = off makes it fail
-- loudly, rather than list nothing, if its owner is subject to row-level
-- security (a non-superuser owner of tables that force it): then give the
-- function to a role with BYPASSRLS
-- (ALTER FUNCTION commerce_tenants_with_work(timestamptz, text, integer) OWNER TO ...).
CREATE FUNCTION commerce_tenants_with_work(due timestamptz, after_tenant text, max_tenants integer)
RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER
SET row_security = off
AS $$
    SELECT tenant_id FROM (
        SELECT tenant_id FROM reservations WHERE expires_at <= due
        UNION
        SELECT tenant_id FROM orders
        WHERE status = 'awaiting_payment' AND payment_expires_at <= due
        UNION
        SELECT tenant_id FROM refunds WHERE pending
    ) due_work
    WHERE after_tenant IS NULL OR tenant_id > after_tenant
    ORDER BY tenant_id
    LIMIT max_tenants
$$;

-- A SECURITY DEFINER function resolves names with a fixed search path.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION commerce_tenants_with_work(timestamptz, text, integer) '
        'SET search_path = pg_catalog, %I, pg_temp', current_schema());
END
$$;

REVOKE ALL ON FUNCTION commerce_tenants_with_work(timestamptz, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_tenants_with_work(timestamptz, text, integer) TO commerce_app;
