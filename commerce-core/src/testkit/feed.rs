//! The tenant's event feed: every order event once, in order, by pages of
//! any size, confined to its tenant, and without gaps for a reader that
//! follows racing writers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Arc, Barrier, Duration, Harness, OrderStatus, StoreFactory, idempotency_key};
use crate::facade::{FeedPage, Shop};
use crate::ids::OrderId;
use crate::order::{FeedItem, FeedPosition, OrderEvent};
use crate::store::{OrderCursor, OrderFilter};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_feed {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] feed:
            feed_pages_give_every_event_once_in_order,
            feed_is_confined_to_its_tenant,
            feed_follower_racing_writers_misses_nothing,
        }
    };
}

/// How long a reader waits for the feed to catch up with events already
/// committed (a store may hand an event out a little after its commit).
const CATCH_UP: Duration = Duration::from_secs(60);

/// Waits `duration` without holding a runtime worker (the kit's tokio has
/// no timer).
async fn pause(duration: Duration) {
    tokio::task::spawn_blocking(move || std::thread::sleep(duration))
        .await
        .unwrap();
}

/// Every order event of `shop`, read order by order.
pub(crate) async fn all_events(shop: &Shop) -> Vec<OrderEvent> {
    let mut events = Vec::new();
    let mut after: Option<OrderCursor> = None;
    loop {
        let page = shop
            .orders(&OrderFilter::default(), after.as_ref(), 200)
            .await
            .unwrap();
        for order in &page.orders {
            events.extend(shop.order_events(order.id).await.unwrap());
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return events,
        }
    }
}

/// Follows the feed of `shop` from `after` in pages of `limit`, as a
/// consumer would (reading on from the last position, waiting briefly on an
/// empty page), until it has read `count` items; panics after [`CATCH_UP`].
pub(crate) async fn follow(
    shop: &Shop,
    mut after: Option<FeedPosition>,
    limit: usize,
    count: usize,
) -> Vec<FeedItem> {
    let deadline = std::time::Instant::now() + CATCH_UP;
    let mut items = Vec::new();
    while items.len() < count {
        let page = shop.events_since(after, limit).await.unwrap();
        assert!(page.items.len() <= limit.clamp(1, FeedPage::MAX_ITEMS));
        assert_eq!(page.next, page.items.last().map(|i| i.position).or(after));
        if page.items.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the feed stopped after {} of {count} events",
                items.len()
            );
            pause(Duration::from_millis(10)).await;
        }
        after = page.next;
        items.extend(page.items);
    }
    items
}

/// Asserts that `items` hold every event of `expected` exactly once, with
/// strictly increasing positions and each order's events in `seq` order.
pub fn assert_feed_matches(items: &[FeedItem], expected: &[OrderEvent]) {
    for pair in items.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions strictly increase: {} then {}",
            pair[0].position,
            pair[1].position
        );
    }
    let mut last_seq: HashMap<OrderId, u32> = HashMap::new();
    let mut seen = HashSet::new();
    for item in items {
        assert_eq!(
            (item.order(), item.seq()),
            (item.event.order, item.event.seq)
        );
        assert!(
            seen.insert((item.order(), item.seq())),
            "event {}#{} handed out twice",
            item.order(),
            item.seq()
        );
        let previous = last_seq.insert(item.order(), item.seq()).unwrap_or(0);
        assert_eq!(item.seq(), previous + 1, "an order's events in seq order");
    }
    let read: HashMap<(OrderId, u32), &OrderEvent> = items
        .iter()
        .map(|i| ((i.order(), i.seq()), &i.event))
        .collect();
    let stored: HashMap<(OrderId, u32), &OrderEvent> =
        expected.iter().map(|e| ((e.order, e.seq), e)).collect();
    assert_eq!(read.len(), items.len());
    assert_eq!(read, stored, "the feed holds exactly the stored events");
}

/// Orders placed, paid (one twice), cancelled and expired: the feed read in
/// pages of 1, 2, 3, 7 and the largest size gives every stored event once,
/// in the same order each time; reading on from any position gives the
/// rest; reading from the end gives nothing and keeps the position.
pub async fn feed_pages_give_every_event_once_in_order(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-FEED", 50_000, 20).await;
    let open = h.order_for(&sku, 1, "feed-open").await;
    let paid = h.order_for(&sku, 2, "feed-paid").await;
    h.deliver(&h.paid(&paid, "evt_feed_paid")).await;
    let cancelled = h.order_for(&sku, 1, "feed-cancelled").await;
    h.shop
        .cancel_order(cancelled.id, "changed mind")
        .await
        .unwrap();
    let twice = h.order_for(&sku, 1, "feed-twice").await;
    let event = h.paid(&twice, "evt_feed_twice");
    h.deliver(&event).await;
    h.deliver(&event).await;
    h.clock.advance(super::PAYMENT_WINDOW);
    assert_eq!(h.shop.sweep().await.unwrap().orders_expired, vec![open.id]);

    let expected = all_events(&h.shop).await;
    assert!(
        expected.len() >= 9,
        "2 + 2 + 2 + 3 events at least: {expected:?}"
    );
    let reference = follow(&h.shop, None, FeedPage::MAX_ITEMS, expected.len()).await;
    assert_feed_matches(&reference, &expected);
    for limit in [1, 2, 3, 7] {
        let items = follow(&h.shop, None, limit, expected.len()).await;
        assert_eq!(items, reference, "pages of {limit}");
    }

    for (k, item) in reference.iter().enumerate() {
        let rest = follow(&h.shop, Some(item.position), 4, reference.len() - k - 1).await;
        assert_eq!(rest.as_slice(), &reference[k + 1..]);
    }
    let last = reference.last().unwrap().position;
    let end = h.shop.events_since(Some(last), 100).await.unwrap();
    assert!(end.items.is_empty());
    assert_eq!(end.next, Some(last));
    let one = h.shop.events_since(None, 0).await.unwrap();
    assert_eq!(one.items.len(), 1, "a limit of 0 reads one");
    let status = h.shop.order(open.id).await.unwrap().status();
    assert_eq!(status, OrderStatus::Expired);
}

/// Two tenants' orders interleave; each tenant's feed holds exactly its own
/// events, and no order of the other.
pub async fn feed_is_confined_to_its_tenant(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let b = h.other_shop("shop-b");
    let sku_a = h.stocked("GPU-A", 50_000, 5).await;
    let sku_b = Harness::stocked_in(&b, "GPU-B", 50_000, 5).await;
    for n in 0..3 {
        h.order_for(&sku_a, 1, &format!("a-{n}")).await;
        let cart = b.create_cart(crate::money::Currency::AUD).await.unwrap();
        b.set_line(cart.id, &sku_b, super::qty(1)).await.unwrap();
        let order = b
            .checkout(cart.id, &idempotency_key(&format!("b-{n}")))
            .await
            .unwrap()
            .order;
        if n == 1 {
            b.cancel_order(order.id, "tenant b cancels").await.unwrap();
        }
    }
    let expected_a = all_events(&h.shop).await;
    let expected_b = all_events(&b).await;
    assert!(expected_a.len() >= 3 && expected_b.len() >= 4);
    let feed_a = follow(&h.shop, None, 2, expected_a.len()).await;
    let feed_b = follow(&b, None, 2, expected_b.len()).await;
    assert_feed_matches(&feed_a, &expected_a);
    assert_feed_matches(&feed_b, &expected_b);
    let orders_b: HashSet<OrderId> = expected_b.iter().map(|e| e.order).collect();
    assert!(feed_a.iter().all(|i| !orders_b.contains(&i.order())));
    let tail_a = h
        .shop
        .events_since(feed_a.last().map(|i| i.position), 100)
        .await
        .unwrap();
    assert!(tail_a.items.is_empty(), "nothing of tenant b follows");
}

/// Four tasks place orders and pay or cancel them while a reader follows
/// the feed from its last position in pages of 3, until the writers are
/// done and the feed is quiet: the reader ends with exactly the stored
/// events, none twice, none missed, positions strictly increasing, even
/// though the writers' changes commit in an order their positions need not
/// follow.
pub async fn feed_follower_racing_writers_misses_nothing(factory: &dyn StoreFactory) {
    const WRITERS: usize = 4;
    const ORDERS_EACH: usize = 6;
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-RACE-FEED", 10_000, 1_000).await;
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(WRITERS + 1));

    let reader = {
        let (shop, done, barrier) = (h.shop.clone(), done.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            let mut items: Vec<FeedItem> = Vec::new();
            let mut after = None;
            loop {
                // Read before checking: the last pass after the writers
                // finished is a full one.
                let finished = done.load(Ordering::SeqCst);
                let page = shop.events_since(after, 3).await.unwrap();
                after = page.next;
                let empty = page.items.is_empty();
                items.extend(page.items);
                if empty {
                    if finished {
                        return (items, after);
                    }
                    pause(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (h, sku, barrier) = (h.clone(), sku.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                for n in 0..ORDERS_EACH {
                    let order = h.order_for(&sku, 1, &format!("race-{w}-{n}")).await;
                    if n % 2 == 0 {
                        h.shop.cancel_order(order.id, "racing").await.unwrap();
                    } else {
                        h.deliver(&h.paid(&order, &format!("evt_race_{w}_{n}")))
                            .await;
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (mut items, after) = reader.await.unwrap();

    let expected = all_events(&h.shop).await;
    assert!(expected.len() >= WRITERS * ORDERS_EACH * 2);
    let orders: HashSet<OrderId> = expected.iter().map(|e| e.order).collect();
    assert_eq!(orders.len(), WRITERS * ORDERS_EACH);
    // A store may still be holding back events committed just now: read on
    // from where the reader stopped until it has them all.
    let missing = expected.len().saturating_sub(items.len());
    items.extend(follow(&h.shop, after, 3, missing).await);
    assert_feed_matches(&items, &expected);
    let tail = h
        .shop
        .events_since(items.last().map(|i| i.position), 100)
        .await
        .unwrap();
    assert!(tail.items.is_empty());
}
