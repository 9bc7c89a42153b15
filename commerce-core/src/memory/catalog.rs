//! Products and search.

use std::ops::Bound;

use async_trait::async_trait;

use crate::error::Result;

use super::{
    CatalogStore, Error, Page, Product, ProductId, ProductPage, ProductQuery, Sku, SkuOffer,
    TenantStores, search_terms, searchable_words,
};

#[async_trait]
impl CatalogStore for TenantStores {
    async fn put_product(&self, product: &Product) -> Result<()> {
        let mut d = self.lock();
        for variant in product.variants() {
            if d.stock
                .get(variant.sku())
                .and_then(|entry| entry.offer)
                .is_some_and(|owner| owner.product != product.id())
            {
                return Err(Error::SkuTaken {
                    sku: variant.sku().clone(),
                });
            }
        }
        if let Some(old) = d.products.remove(&product.id()) {
            for variant in old.variants() {
                if let Some(entry) = d.stock.get_mut(variant.sku()) {
                    entry.offer = None;
                }
            }
        }
        for variant in product.variants() {
            let offer = SkuOffer {
                product: product.id(),
                currency: variant.price().currency(),
                published: product.is_published(),
            };
            d.stock.entry(variant.sku().clone()).or_default().offer = Some(offer);
        }
        d.products.insert(product.id(), product.clone());
        Ok(())
    }

    async fn set_published(&self, id: ProductId, published: bool) -> Result<Option<Product>> {
        let mut d = self.lock();
        let data = &mut *d;
        let Some(product) = data.products.get_mut(&id) else {
            return Ok(None);
        };
        product.set_published(published);
        for variant in product.variants() {
            if let Some(offer) = data
                .stock
                .get_mut(variant.sku())
                .and_then(|entry| entry.offer.as_mut())
            {
                offer.published = published;
            }
        }
        Ok(Some(product.clone()))
    }

    async fn product(&self, id: ProductId) -> Result<Option<Product>> {
        Ok(self.read().products.get(&id).cloned())
    }

    async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>> {
        let d = self.read();
        Ok(d.stock
            .get(sku)
            .and_then(|entry| entry.offer)
            .and_then(|offer| d.products.get(&offer.product))
            .cloned())
    }

    async fn products_by_skus(&self, skus: &[Sku]) -> Result<Vec<Option<Product>>> {
        let d = self.read();
        Ok(skus
            .iter()
            .map(|sku| {
                d.stock
                    .get(sku)
                    .and_then(|entry| entry.offer)
                    .and_then(|offer| d.products.get(&offer.product))
                    .cloned()
            })
            .collect())
    }

    async fn products_page(&self, query: &ProductQuery) -> Result<ProductPage> {
        let d = self.read();
        let start = query.after.map_or(Bound::Unbounded, Bound::Excluded);
        let probe = usize::try_from(query.page_size())
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let products = d
            .products
            .range((start, Bound::Unbounded))
            .map(|(_, product)| product)
            .filter(|product| query.admits(product))
            .take(probe)
            .cloned()
            .collect();
        Ok(ProductPage::from_probe(query, products))
    }

    async fn search(&self, query: &str, page: Page) -> Result<Vec<Product>> {
        let terms = search_terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.read();
        // Rank: how many of the product's words a term matches, summed.
        let mut hits: Vec<(usize, &Product)> = d
            .products
            .values()
            .filter(|product| product.is_published())
            .filter_map(|product| {
                let words = searchable_words(product);
                let mut rank = 0;
                for term in &terms {
                    let matched = words
                        .iter()
                        .filter(|w| w.starts_with(term.as_str()))
                        .count();
                    if matched == 0 {
                        return None;
                    }
                    rank += matched;
                }
                Some((rank, product))
            })
            .collect();
        hits.sort_by(|(ra, a), (rb, b)| {
            rb.cmp(ra)
                .then_with(|| a.name().cmp(b.name()))
                .then_with(|| a.id().cmp(&b.id()))
        });
        let limit = page.limit.clamp(1, Page::MAX_LIMIT) as usize;
        Ok(hits
            .into_iter()
            .skip(page.offset as usize)
            .take(limit)
            .map(|(_, product)| product.clone())
            .collect())
    }
}
