//! Products, SKUs and full-text search.

use async_trait::async_trait;
use commerce_core::catalog::{search_terms, searchable_words};
use commerce_core::store::CatalogStore;
use commerce_core::{Error, Page, Product, ProductId, ProductPage, ProductQuery, Result, Sku};

use crate::error::db;
use crate::{PgTenant, from_doc, to_doc};

#[async_trait]
impl CatalogStore for PgTenant {
    async fn put_product(&self, product: &Product) -> Result<()> {
        let mut tx = self.begin().await?;
        let skus: Vec<String> = product
            .variants()
            .iter()
            .map(|v| v.sku().to_string())
            .collect();
        // SKUs this product no longer has keep their stock but leave the catalog.
        sqlx::query(
            "UPDATE skus SET product_id = NULL, price_minor = NULL, currency = NULL \
             WHERE tenant_id = $1 AND product_id = $2 AND NOT (sku = ANY($3))",
        )
        .bind(self.tenant())
        .bind(product.id().as_uuid())
        .bind(&skus)
        .execute(&mut tx)
        .await
        .map_err(db)?;
        for variant in product.variants() {
            // Claims the SKU unless another product holds it; concurrent claims
            // wait for each other on the row and the loser sees the winner.
            let claimed = sqlx::query(
                "INSERT INTO skus (tenant_id, sku, product_id, price_minor, currency) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, sku) DO UPDATE \
                 SET product_id = EXCLUDED.product_id, price_minor = EXCLUDED.price_minor, \
                     currency = EXCLUDED.currency \
                 WHERE skus.product_id IS NULL OR skus.product_id = EXCLUDED.product_id \
                 RETURNING sku",
            )
            .bind(self.tenant())
            .bind(variant.sku().as_str())
            .bind(product.id().as_uuid())
            .bind(variant.price().minor())
            .bind(variant.price().currency().code())
            .fetch_optional(&mut tx)
            .await
            .map_err(db)?;
            if claimed.is_none() {
                return Err(Error::SkuTaken {
                    sku: variant.sku().clone(),
                });
            }
        }
        sqlx::query(
            "INSERT INTO products (tenant_id, id, name, doc, search_text, published) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, id) DO UPDATE \
             SET name = EXCLUDED.name, doc = EXCLUDED.doc, search_text = EXCLUDED.search_text, \
                 published = EXCLUDED.published",
        )
        .bind(self.tenant())
        .bind(product.id().as_uuid())
        .bind(product.name())
        .bind(to_doc(product)?)
        .bind(searchable_words(product).join(" "))
        .bind(product.is_published())
        .execute(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await
    }

    async fn set_published(&self, id: ProductId, published: bool) -> Result<Option<Product>> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> = sqlx::query_scalar(
            "UPDATE products SET published = $3, doc = jsonb_set(doc, '{published}', to_jsonb($3)) \
             WHERE tenant_id = $1 AND id = $2 RETURNING doc",
        )
        .bind(self.tenant())
        .bind(id.as_uuid())
        .bind(published)
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        doc.map(|doc| from_doc("a product", doc)).transpose()
    }

    async fn product(&self, id: ProductId) -> Result<Option<Product>> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT doc FROM products WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant())
                .bind(id.as_uuid())
                .fetch_optional(&mut tx)
                .await
                .map_err(db)?;
        tx.commit().await?;
        doc.map(|doc| from_doc("a product", doc)).transpose()
    }

    async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT p.doc FROM skus s JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id \
             WHERE s.tenant_id = $1 AND s.sku = $2",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        doc.map(|doc| from_doc("a product", doc)).transpose()
    }

    async fn products_by_skus(&self, skus: &[Sku]) -> Result<Vec<Option<Product>>> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
        let mut tx = self.begin().await?;
        // One row per SKU asked, in the order asked (`ord`), with its
        // product's document or NULL.
        let docs: Vec<Option<serde_json::Value>> = sqlx::query_scalar(
            "SELECT p.doc FROM unnest($2::text[]) WITH ORDINALITY AS i(sku, ord) \
             LEFT JOIN skus s ON s.tenant_id = $1 AND s.sku = i.sku \
             LEFT JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id \
             ORDER BY i.ord",
        )
        .bind(self.tenant())
        .bind(&names)
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        docs.into_iter()
            .map(|doc| doc.map(|doc| from_doc("a product", doc)).transpose())
            .collect()
    }

    async fn products_page(&self, query: &ProductQuery) -> Result<ProductPage> {
        // Static statements, one per shape, so that each plan (generic ones
        // included) is an index range scan: the partial index of published
        // products, or the primary key.
        let statement = match (query.include_unpublished, query.after.is_some()) {
            (false, false) => {
                "SELECT doc FROM products WHERE tenant_id = $1 AND published ORDER BY id LIMIT $2"
            }
            (false, true) => {
                "SELECT doc FROM products WHERE tenant_id = $1 AND published AND id > $3 \
                 ORDER BY id LIMIT $2"
            }
            (true, false) => "SELECT doc FROM products WHERE tenant_id = $1 ORDER BY id LIMIT $2",
            (true, true) => {
                "SELECT doc FROM products WHERE tenant_id = $1 AND id > $3 ORDER BY id LIMIT $2"
            }
        };
        let mut select = sqlx::query_scalar(statement)
            .bind(self.tenant())
            // One more than the page, to know whether another follows.
            .bind(i64::from(query.page_size()).saturating_add(1));
        if let Some(after) = query.after {
            select = select.bind(after.as_uuid());
        }
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = select.fetch_all(&mut tx).await.map_err(db)?;
        tx.commit().await?;
        let products = docs
            .into_iter()
            .map(|doc| from_doc("a product", doc))
            .collect::<Result<_>>()?;
        Ok(ProductPage::from_probe(query, products))
    }

    async fn search(&self, query: &str, page: Page) -> Result<Vec<Product>> {
        let terms = search_terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // Terms are ASCII letters and digits only, so this is a valid tsquery;
        // it is cast, not parsed, so each term stays one prefix lexeme.
        let tsquery = terms
            .iter()
            .map(|term| format!("{term}:*"))
            .collect::<Vec<_>>()
            .join(" & ");
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM products, CAST($2 AS tsquery) AS q \
             WHERE tenant_id = $1 AND published AND search @@ q \
             ORDER BY ts_rank(search, q) DESC, name COLLATE \"C\", id \
             LIMIT $3 OFFSET $4",
        )
        .bind(self.tenant())
        .bind(tsquery)
        .bind(i64::from(page.limit.clamp(1, Page::MAX_LIMIT)))
        .bind(i64::from(page.offset))
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        docs.into_iter()
            .map(|doc| from_doc("a product", doc))
            .collect()
    }
}
