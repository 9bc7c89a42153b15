-- Merchant refunds are decided against every refund of the order (partial
-- refunds never exceed the payment): read them by order.
CREATE INDEX refunds_order ON refunds (tenant_id, order_id, requested_at);
