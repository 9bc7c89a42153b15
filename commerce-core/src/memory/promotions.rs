//! Promotions, their usage, and the shop settings.

use async_trait::async_trait;

use crate::error::Result;

use super::{
    CustomerId, HashMap, Promotion, PromotionId, PromotionStore, PromotionUsage, SettingsStore,
    ShopSettings, TenantStores,
};

#[async_trait]
impl PromotionStore for TenantStores {
    async fn put_promotion(&self, promotion: &Promotion) -> Result<()> {
        self.lock()
            .promotions
            .insert(promotion.id().clone(), promotion.clone());
        Ok(())
    }

    async fn remove_promotion(&self, id: &PromotionId) -> Result<bool> {
        Ok(self.lock().promotions.remove(id).is_some())
    }

    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>> {
        Ok(self.read().promotions.get(id).cloned())
    }

    async fn promotions(&self) -> Result<Vec<Promotion>> {
        let mut all: Vec<Promotion> = self.read().promotions.values().cloned().collect();
        all.sort_by(|a, b| {
            a.priority()
                .cmp(&b.priority())
                .then_with(|| a.id().cmp(b.id()))
        });
        Ok(all)
    }

    async fn usage(
        &self,
        promotions: &[PromotionId],
        customer: Option<&CustomerId>,
    ) -> Result<HashMap<PromotionId, PromotionUsage>> {
        let d = self.read();
        Ok(promotions
            .iter()
            .filter_map(|id| {
                let counts = d.usage.get(id)?;
                let by_customer = customer
                    .and_then(|c| counts.by_customer.get(c))
                    .copied()
                    .unwrap_or(0);
                Some((
                    id.clone(),
                    PromotionUsage {
                        total: counts.total,
                        by_customer,
                    },
                ))
            })
            .collect())
    }
}

#[async_trait]
impl SettingsStore for TenantStores {
    async fn settings(&self) -> Result<Option<ShopSettings>> {
        Ok(self.read().settings.clone())
    }

    async fn put_settings(&self, settings: &ShopSettings) -> Result<()> {
        self.lock().settings = Some(settings.clone());
        Ok(())
    }
}

/// The default: each part under its own lock, which in memory costs less
/// than the pricing it feeds.
impl crate::store::PricingStore for TenantStores {}
