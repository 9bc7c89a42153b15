-- Products can be unpublished: the storefront's reads, lists and search
-- leave them out and no cart can hold their SKUs. The column mirrors the
-- document's `published` (documents written before it have none and are
-- published, as the column's default says).
ALTER TABLE products ADD COLUMN published boolean NOT NULL DEFAULT true;

-- Product lists are keyset pages by id. The storefront's (published only)
-- reads this index; the admin's (every product) reads the primary key
-- (tenant_id, id). Both lead with tenant_id, which the row-level security
-- policy compares with the transaction's tenant.
CREATE INDEX products_published ON products (tenant_id, id) WHERE published;
