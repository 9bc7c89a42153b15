//! Promotions, their usage counts, and shop settings.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use commerce_core::promotion::PromotionUsage;
use commerce_core::store::{PricingRead, PricingStore, PromotionStore, SettingsStore};
use commerce_core::{CartId, CustomerId, Product, Promotion, PromotionId, Result, ShopSettings};

use crate::carts::build_cart;
use crate::error::{corrupt, db};
use crate::{PgTenant, from_doc, to_doc};

#[async_trait]
impl PromotionStore for PgTenant {
    async fn put_promotion(&self, promotion: &Promotion) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO promotions (tenant_id, id, priority, doc) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET priority = EXCLUDED.priority, doc = EXCLUDED.doc",
        )
        .bind(self.tenant())
        .bind(promotion.id().as_str())
        .bind(promotion.priority())
        .bind(to_doc(promotion)?)
        .execute(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await
    }

    async fn remove_promotion(&self, id: &PromotionId) -> Result<bool> {
        let mut tx = self.begin().await?;
        let removed = sqlx::query("DELETE FROM promotions WHERE tenant_id = $1 AND id = $2")
            .bind(self.tenant())
            .bind(id.as_str())
            .execute(&mut tx)
            .await
            .map_err(db)?
            .rows_affected();
        tx.commit().await?;
        Ok(removed > 0)
    }

    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT doc FROM promotions WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant())
                .bind(id.as_str())
                .fetch_optional(&mut tx)
                .await
                .map_err(db)?;
        tx.commit().await?;
        doc.map(|doc| from_doc("a promotion", doc)).transpose()
    }

    async fn promotions(&self) -> Result<Vec<Promotion>> {
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM promotions WHERE tenant_id = $1 ORDER BY priority, id COLLATE \"C\"",
        )
        .bind(self.tenant())
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        docs.into_iter()
            .map(|doc| from_doc("a promotion", doc))
            .collect()
    }

    async fn usage(
        &self,
        promotions: &[PromotionId],
        customer: Option<&CustomerId>,
    ) -> Result<HashMap<PromotionId, PromotionUsage>> {
        let ids: Vec<&str> = promotions.iter().map(PromotionId::as_str).collect();
        let mut tx = self.begin().await?;
        let totals: Vec<(String, i32)> = sqlx::query_as(
            "SELECT promotion_id, total FROM promotion_usage WHERE tenant_id = $1 AND promotion_id = ANY($2)",
        )
        .bind(self.tenant())
        .bind(&ids)
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        let by_customer: Vec<(String, i32)> = match customer {
            Some(customer) => sqlx::query_as(
                "SELECT promotion_id, used FROM promotion_customer_usage \
                 WHERE tenant_id = $1 AND promotion_id = ANY($2) AND customer_id = $3",
            )
            .bind(self.tenant())
            .bind(&ids)
            .bind(customer.as_str())
            .fetch_all(&mut tx)
            .await
            .map_err(db)?,
            None => Vec::new(),
        };
        tx.commit().await?;
        usage_from_rows(totals, by_customer, |_| true)
    }
}

#[async_trait]
impl SettingsStore for PgTenant {
    async fn settings(&self) -> Result<Option<ShopSettings>> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT doc FROM shop_settings WHERE tenant_id = $1")
                .bind(self.tenant())
                .fetch_optional(&mut tx)
                .await
                .map_err(db)?;
        tx.commit().await?;
        doc.map(|doc| from_doc("shop settings", doc)).transpose()
    }

    async fn put_settings(&self, settings: &ShopSettings) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO shop_settings (tenant_id, doc) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET doc = EXCLUDED.doc",
        )
        .bind(self.tenant())
        .bind(to_doc(settings)?)
        .execute(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await
    }
}

/// The answer of `commerce_pricing_read`: the cart's document and lines,
/// the settings, the products in line order, the promotions, the usage
/// totals and the customer's usage.
type PricingRow = (
    Option<serde_json::Value>,
    Option<sqlx::types::Json<Vec<(String, i32)>>>,
    Option<serde_json::Value>,
    Option<sqlx::types::Json<Vec<Option<serde_json::Value>>>>,
    Option<sqlx::types::Json<Vec<serde_json::Value>>>,
    Option<sqlx::types::Json<Vec<(String, i32)>>>,
    Option<sqlx::types::Json<Vec<(String, i32)>>>,
);

/// One call of `commerce_pricing_read` (migration 0009), outside any
/// explicit transaction: one round trip, one snapshot.
#[async_trait]
impl PricingStore for PgTenant {
    async fn pricing_read(&self, cart: CartId) -> Result<Option<PricingRead>> {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(self.hot.pricing_read.clone()))
            .bind(self.tenant())
            .bind(cart.as_uuid());
        let (doc, items, settings, products, promotions, totals, by_customer): PricingRow =
            self.one_call(query).await?;
        let Some(doc) = doc else {
            return Ok(None);
        };
        let missing = |what: &str| corrupt("commerce_pricing_read's answer", format!("no {what}"));
        let cart = build_cart(doc, items.ok_or_else(|| missing("cart lines"))?.0)?;
        let settings = settings
            .map(|doc| from_doc("shop settings", doc))
            .transpose()?;
        let products = products
            .ok_or_else(|| missing("products"))?
            .0
            .into_iter()
            .map(|doc| doc.map(|doc| from_doc("a product", doc)).transpose())
            .collect::<Result<Vec<Option<Product>>>>()?;
        let promotions: Vec<Promotion> = promotions
            .ok_or_else(|| missing("promotions"))?
            .0
            .into_iter()
            .map(|doc| from_doc("a promotion", doc))
            .collect::<Result<_>>()?;
        let limited: HashSet<&PromotionId> = promotions
            .iter()
            .filter(|p| p.is_limited())
            .map(Promotion::id)
            .collect();
        let usage = usage_from_rows(
            totals.ok_or_else(|| missing("usage"))?.0,
            by_customer.ok_or_else(|| missing("customer usage"))?.0,
            |id| limited.contains(id),
        )?;
        Ok(Some(PricingRead::new(
            cart, settings, products, promotions, usage,
        )))
    }
}

/// Usage by promotion from its rows, `(promotion id, total)` and
/// `(promotion id, used by the customer)`, keeping the promotions `keep`
/// accepts.
fn usage_from_rows(
    totals: Vec<(String, i32)>,
    by_customer: Vec<(String, i32)>,
    keep: impl Fn(&PromotionId) -> bool,
) -> Result<HashMap<PromotionId, PromotionUsage>> {
    let count = |n: i32| u32::try_from(n).map_err(|e| corrupt("a usage count", e));
    let id = |id: String| PromotionId::parse(id).map_err(|e| corrupt("a promotion id", e));
    let mut usage: HashMap<PromotionId, PromotionUsage> = HashMap::new();
    for (promotion, total) in totals {
        let promotion = id(promotion)?;
        if keep(&promotion) {
            usage.entry(promotion).or_default().total = count(total)?;
        }
    }
    for (promotion, used) in by_customer {
        let promotion = id(promotion)?;
        if keep(&promotion) {
            usage.entry(promotion).or_default().by_customer = count(used)?;
        }
    }
    Ok(usage)
}
