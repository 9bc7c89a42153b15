//! The tenant's event feed, read from `order_events` by (xid, position).
//!
//! Each event row carries the id of the transaction that inserted it
//! (`xid`, an `xid8` set by `pg_current_xact_id()`) and a global identity
//! (`position`). The feed is ordered by both, and a read hands out only
//! rows whose `xid` is below `pg_snapshot_xmin(pg_current_snapshot())`: every
//! transaction that old has ended, so a row can never later appear below a
//! position already handed out, however the writers' commits interleave.
//! (A bigserial alone has the classic gap: it is assigned at insert, and a
//! transaction that took a lower number can commit after a reader has
//! moved past it.)
//!
//! The price is latency, not throughput: an event shows once every
//! transaction that obtained its id before the event's transaction has
//! ended, on the whole server (transaction ids are server-wide). With this
//! store's short transactions that is milliseconds; a long writing
//! transaction anywhere on the server (a migration, a batch job, a session
//! idle in a transaction) holds the feed back until it ends. Read-only
//! transactions hold nothing back.

use commerce_core::Result;
use commerce_core::order::{FeedItem, FeedPosition, OrderEvent};

use crate::error::{corrupt, db};
use crate::{PgTenant, from_doc};

/// Up to `limit` feed rows after `(commit, index)`: every transaction
/// before the oldest running one has ended, so their rows are final.
/// (The text form of `xid` gets its own name: `ORDER BY xid` would otherwise
/// sort by the text.)
const FEED: &str = "SELECT e.xid::text AS commit, e.position, e.doc FROM order_events e \
     WHERE e.tenant_id = $1 AND (e.xid, e.position) > ($2::text::xid8, $3) \
     AND e.xid < pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY e.xid, e.position LIMIT $4";

impl PgTenant {
    /// The tenant's feed after `after`, at most `limit` items.
    pub(crate) async fn read_feed(
        &self,
        after: Option<FeedPosition>,
        limit: usize,
    ) -> Result<Vec<FeedItem>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Backfilled events have xid 0 and positions from 1: (0, 0) is
        // before every row.
        let after = after.unwrap_or(FeedPosition::new(0, 0));
        let index = i64::try_from(after.index()).unwrap_or(i64::MAX);
        let mut tx = self.begin().await?;
        let rows: Vec<(String, i64, serde_json::Value)> = sqlx::query_as(FEED)
            .bind(self.tenant())
            .bind(after.commit().to_string())
            .bind(index)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut tx)
            .await
            .map_err(db)?;
        tx.commit().await?;
        rows.into_iter()
            .map(|(xid, position, doc)| {
                let commit: u64 = xid.parse().map_err(|e| corrupt("a transaction id", e))?;
                let index = u64::try_from(position).map_err(|e| corrupt("a feed position", e))?;
                let event: OrderEvent = from_doc("an order event", doc)?;
                Ok(FeedItem {
                    position: FeedPosition::new(commit, index),
                    event,
                })
            })
            .collect()
    }
}
