//! The tenant's event feed: every order event of a shop, read from a
//! position, for an admin stream or outbound webhooks.

use crate::error::Result;
use crate::order::{FeedItem, FeedPosition};

use super::Shop;

/// A page of the tenant's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// The events, in position order.
    pub items: Vec<FeedItem>,
    /// Where to read on from: the last item's position, or the position
    /// read from when the page is empty (`None` only while the feed has
    /// handed out nothing to this reader).
    pub next: Option<FeedPosition>,
}

impl FeedPage {
    /// The most items one page holds.
    pub const MAX_ITEMS: usize = 500;
}

impl Shop {
    /// The shop's order events after `after` (from the first when `None`),
    /// at most `limit` of them (clamped to 1 to [`FeedPage::MAX_ITEMS`]), in
    /// position order (see
    /// [`OrderStore::feed`](crate::store::OrderStore::feed)).
    ///
    /// Keep [`FeedPage::next`] and read on from it: every event comes
    /// exactly once, in order, across restarts (the feed is read from the
    /// store), even when changes commit out of order. A full page means
    /// more may follow at once; an empty one that the feed is read to its
    /// end for now.
    ///
    /// An event can appear a little after its change commits: the store
    /// hands it out only once no earlier-positioned event can still appear
    /// (on PostgreSQL, once every transaction that began writing before it
    /// has ended).
    ///
    /// ```
    /// # async fn run() -> commerce_core::Result<()> {
    /// use commerce_core::{Commerce, TenantId};
    /// let shop = Commerce::in_memory().shop(&TenantId::parse("gpu-exchange")?);
    /// let page = shop.events_since(None, 100).await?;
    /// assert!(page.items.is_empty());
    /// let later = shop.events_since(page.next, 100).await?;
    /// assert!(later.items.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn events_since(
        &self,
        after: Option<FeedPosition>,
        limit: usize,
    ) -> Result<FeedPage> {
        let limit = limit.clamp(1, FeedPage::MAX_ITEMS);
        let items = self.scope.orders().feed(after, limit).await?;
        let next = items.last().map(|item| item.position).or(after);
        Ok(FeedPage { items, next })
    }
}
