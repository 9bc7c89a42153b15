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
-- tables' policies stay as they are. Its owner must bypass row-level
-- security (a superuser or a BYPASSRLS role): a non-superuser owner of the
-- tables is itself confined by FORCE ROW LEVEL SECURITY and would list
-- nothing, so the function refuses to run for one (give it to a BYPASSRLS
-- role with ALTER FUNCTION ... OWNER TO) instead of listing nothing.
CREATE FUNCTION commerce_tenants_with_work(due timestamptz, after_tenant text, max_tenants integer)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET row_security = off
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolbypassrls)
    ) THEN
        RAISE EXCEPTION 'commerce_tenants_with_work is owned by %, which row-level security confines', current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'ALTER FUNCTION commerce_tenants_with_work(timestamptz, text, integer) OWNER TO a role with BYPASSRLS';
    END IF;
    RETURN QUERY
    SELECT due_work.tenant_id FROM (
        SELECT r.tenant_id FROM reservations r WHERE r.expires_at <= due
        UNION
        SELECT o.tenant_id FROM orders o
        WHERE o.status = 'awaiting_payment' AND o.payment_expires_at <= due
        UNION
        SELECT f.tenant_id FROM refunds f WHERE f.pending
    ) due_work
    WHERE after_tenant IS NULL OR due_work.tenant_id > after_tenant
    ORDER BY due_work.tenant_id
    LIMIT max_tenants;
END
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
