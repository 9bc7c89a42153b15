-- The commerce schema. Every table carries tenant_id and every primary key
-- and index leads with it, so the schema can be distributed by tenant.
-- Amounts are BIGINT minor units beside a three-letter currency code; the
-- JSONB documents hold the full domain snapshots (orders, events, refunds,
-- promotions, settings) as commerce-core serializes them.

CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE products (
    tenant_id      text        NOT NULL,
    id             uuid        NOT NULL,
    name           text        NOT NULL,
    doc            jsonb       NOT NULL,
    search_text    text        NOT NULL,
    -- The words, taken as lexemes without parsing: commerce-core splits
    -- them (runs of ASCII letters and digits, lower-cased) for every store.
    search         tsvector    GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_text, ' '))) STORED,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX products_search ON products USING gin (tenant_id, search);

-- One row per SKU ever in the catalog: its stock record.
-- held = units of every reservation and allocation row of the SKU (live or
-- not yet reclaimed); it makes the single-statement reservation possible.
CREATE TABLE skus (
    tenant_id      text        NOT NULL,
    sku            text        NOT NULL,
    product_id     uuid,
    price_minor    bigint,
    currency       text,
    on_hand        integer     NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    held           integer     NOT NULL DEFAULT 0 CHECK (held >= 0),
    PRIMARY KEY (tenant_id, sku)
);

CREATE TABLE stock_adjustments (
    tenant_id      text        NOT NULL,
    sku            text        NOT NULL,
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, sku, seq)
);

CREATE TABLE carts (
    tenant_id      text        NOT NULL,
    id             uuid        NOT NULL,
    checked_out_order uuid,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE cart_lines (
    tenant_id      text        NOT NULL,
    cart_id        uuid        NOT NULL,
    sku            text        NOT NULL,
    quantity       integer     NOT NULL CHECK (quantity > 0),
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant_id, cart_id, sku)
);

CREATE TABLE reservations (
    tenant_id      text        NOT NULL,
    sku            text        NOT NULL,
    cart_id        uuid        NOT NULL,
    quantity       integer     NOT NULL CHECK (quantity > 0),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sku, cart_id)
);
CREATE INDEX reservations_expiry ON reservations (tenant_id, expires_at);
-- The live holds of one SKU, summed by the advisory-lock strategy and by
-- every availability check, from the index alone.
CREATE INDEX reservations_live ON reservations (tenant_id, sku, expires_at) INCLUDE (quantity, cart_id);
CREATE INDEX reservations_cart ON reservations (tenant_id, cart_id);

CREATE TABLE allocations (
    tenant_id      text        NOT NULL,
    sku            text        NOT NULL,
    order_id       uuid        NOT NULL,
    quantity       integer     NOT NULL CHECK (quantity > 0),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sku, order_id)
);
CREATE INDEX allocations_order ON allocations (tenant_id, order_id);
CREATE INDEX allocations_live ON allocations (tenant_id, sku, expires_at) INCLUDE (quantity, order_id);

CREATE TABLE orders (
    tenant_id      text        NOT NULL,
    id             uuid        NOT NULL,
    idempotency_key text       NOT NULL,
    cart_id        uuid        NOT NULL,
    status         text        NOT NULL,
    total_minor    bigint      NOT NULL,
    currency       text        NOT NULL,
    payment_expires_at timestamptz NOT NULL,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT orders_idempotency_key UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX orders_awaiting_payment ON orders (tenant_id, payment_expires_at) WHERE status = 'awaiting_payment';

CREATE TABLE order_events (
    tenant_id      text        NOT NULL,
    order_id       uuid        NOT NULL,
    seq            integer     NOT NULL,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, order_id, seq)
);

-- The claim of each payment event id: exactly-once application.
CREATE TABLE payment_events (
    tenant_id      text        NOT NULL,
    event_id       text        NOT NULL,
    order_id       uuid        NOT NULL,
    received_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE TABLE refunds (
    tenant_id      text        NOT NULL,
    id             text        NOT NULL,
    order_id       uuid        NOT NULL,
    amount_minor   bigint      NOT NULL,
    currency       text        NOT NULL,
    pending        boolean     NOT NULL,
    requested_at   timestamptz NOT NULL,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX refunds_pending ON refunds (tenant_id, requested_at) WHERE pending;

CREATE TABLE promotions (
    tenant_id      text        NOT NULL,
    id             text        NOT NULL,
    priority       integer     NOT NULL,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE promotion_usage (
    tenant_id      text        NOT NULL,
    promotion_id   text        NOT NULL,
    total          integer     NOT NULL,
    PRIMARY KEY (tenant_id, promotion_id)
);

CREATE TABLE promotion_customer_usage (
    tenant_id      text        NOT NULL,
    promotion_id   text        NOT NULL,
    customer_id    text        NOT NULL,
    used           integer     NOT NULL,
    PRIMARY KEY (tenant_id, promotion_id, customer_id)
);

CREATE TABLE shop_settings (
    tenant_id      text        NOT NULL,
    doc            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id)
);
