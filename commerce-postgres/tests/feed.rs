//! PostgreSQL-specific guarantees of the event feed and the sweep listing:
//! an event whose transaction commits after a later-numbered one is not
//! skipped, existing events get positions in the order they happened, and
//! the tenant listing runs as the application role.

// Helpers outside #[test] fns fail the test on error, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use commerce_core::order::{FeedItem, FeedPosition};
use commerce_core::testkit::{Harness, StoreFactory};
use commerce_core::{
    Clock, ManualClock, OrderEvent, OrderEventKind, OrderId, OrderStatus, Shop, Store, TenantId,
};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{APP_ROLE, MIGRATOR, PgStore, PgStoreOptions, ReservationStrategy};
use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;

async fn factory() -> Option<PgFactory> {
    let factory = PgFactory::from_env(ReservationStrategy::default()).await;
    if let Some(reason) = factory.unavailable() {
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return None;
    }
    Some(factory)
}

/// Hands out one store.
struct Fixed(Arc<PgStore>);

#[async_trait]
impl StoreFactory for Fixed {
    async fn new_store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
}

/// The URL of database `name` on the factory's server.
fn database_url(factory: &PgFactory, name: &str) -> String {
    factory
        .admin_url()
        .unwrap()
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{name}"))
        .unwrap()
}

async fn app_store(factory: &PgFactory, name: &str) -> PgStore {
    PgStore::connect_with(
        &database_url(factory, name),
        PgStoreOptions {
            set_role: Some(APP_ROLE.to_owned()),
            ..PgStoreOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Reads `shop`'s feed from `after` until it holds `count` items (other
/// transactions on the server may hold it back for a moment).
async fn read(shop: &Shop, mut after: Option<FeedPosition>, count: usize) -> Vec<FeedItem> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut items = Vec::new();
    while items.len() < count {
        let page = shop.events_since(after, 100).await.unwrap();
        if page.items.is_empty() {
            assert!(Instant::now() < deadline, "the feed stopped at {items:?}");
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10)))
                .await
                .unwrap();
        }
        after = page.next;
        items.extend(page.items);
    }
    items
}

/// A transaction inserts an event (the older transaction) and stays open
/// while a checkout commits events of a later one: the feed hands
/// out none of them until the first transaction ends, then both, the first
/// one's event first. A reader that followed by position alone would have
/// moved past the first event before it committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_committed_after_a_later_positioned_one_is_not_skipped() {
    let Some(factory) = factory().await else {
        return;
    };
    let store = factory.store().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let sku = h.stocked("GPU-GAP", 50_000, 5).await;
    let first = h.order_for(&sku, 1, "gap-first").await;
    let before = h.shop.order_events(first.id).await.unwrap();
    let seen = read(&h.shop, None, before.len()).await;
    let last = seen.last().map(|i| i.position);

    // The slow transaction: a (planted) event for the first order.
    let mut conn = store.pool().acquire().await.unwrap();
    let mut slow = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'shop-a', true)")
        .execute(&mut *slow)
        .await
        .unwrap();
    let planted_position: i64 = sqlx::query_scalar(
        "INSERT INTO order_events (tenant_id, order_id, seq, doc) \
         SELECT tenant_id, order_id, 100, jsonb_set(doc, '{seq}', '100') FROM order_events \
         WHERE order_id = $1 AND seq = 1 RETURNING position",
    )
    .bind(first.id.as_uuid())
    .fetch_one(&mut *slow)
    .await
    .unwrap();

    let second = h.order_for(&sku, 1, "gap-second").await;
    let second_events = h.shop.order_events(second.id).await.unwrap();
    assert!(!second_events.is_empty());
    let held = h.shop.events_since(last, 100).await.unwrap();
    assert!(
        held.items.is_empty(),
        "nothing is handed out while an older transaction may still add events: {held:?}"
    );
    assert_eq!(held.next, last);

    slow.commit().await.unwrap();
    let items = read(&h.shop, last, 1 + second_events.len()).await;
    assert_eq!((items[0].order(), items[0].seq()), (first.id, 100));
    assert_eq!(
        items[0].position.index(),
        u64::try_from(planted_position).unwrap()
    );
    let rest: Vec<&OrderEvent> = items[1..].iter().map(|i| &i.event).collect();
    assert_eq!(rest, second_events.iter().collect::<Vec<_>>());
    // The later transaction's events come after, whatever their index
    // (an index counts within its transaction).
    for item in &items[1..] {
        assert!(item.position > items[0].position);
    }
}

/// Events stored before the feed existed get positions in the order they
/// happened (commit part 0), per tenant; new events follow them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn existing_events_get_positions_in_the_order_they_happened() {
    let Some(factory) = factory().await else {
        return;
    };
    let name = format!("commerce_test_{}", uuid::Uuid::new_v4().simple());
    let admin_url = factory.admin_url().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url(&factory, &name))
        .await
        .unwrap();
    MIGRATOR.run_to(6, &pool).await.unwrap();

    let clock = ManualClock::at_unix(commerce_core::testkit::START_UNIX);
    let t0 = clock.now();
    let at = |minutes: i64| t0 + chrono::TimeDelta::minutes(minutes);
    let (x, y, z) = (OrderId::new(), OrderId::new(), OrderId::new());
    // Inserted out of time order, across two tenants.
    let rows = [
        ("shop-a", x, 1, at(2)),
        ("shop-b", z, 1, at(0)),
        ("shop-a", y, 1, at(1)),
        ("shop-a", x, 2, at(3)),
    ];
    for (tenant, order, seq, when) in rows {
        let event = OrderEvent {
            order,
            seq,
            at: when,
            from: OrderStatus::Paid,
            to: OrderStatus::Fulfilled,
            kind: OrderEventKind::Fulfilled { note: None },
        };
        sqlx::query(
            "INSERT INTO order_events (tenant_id, order_id, seq, doc) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant)
        .bind(order.as_uuid())
        .bind(i32::try_from(seq).unwrap())
        .bind(sqlx::types::Json(serde_json::to_value(&event).unwrap()))
        .execute(&pool)
        .await
        .unwrap();
    }
    MIGRATOR.run(&pool).await.unwrap();
    pool.close().await;

    let store = app_store(&factory, &name).await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let a = read(&h.shop, None, 3).await;
    let order: Vec<(OrderId, u32)> = a.iter().map(|i| (i.order(), i.seq())).collect();
    assert_eq!(order, [(y, 1), (x, 1), (x, 2)]);
    assert!(a.iter().all(|i| i.position.commit() == 0));
    let b = read(&h.other_shop("shop-b"), None, 1).await;
    assert_eq!((b[0].order(), b[0].position.commit()), (z, 0));

    let sku = h.stocked("GPU-AFTER", 50_000, 1).await;
    let placed = h.order_for(&sku, 1, "after-migration").await;
    let new = read(&h.shop, a.last().map(|i| i.position), 1).await;
    assert_eq!(new[0].order(), placed.id);
    // A later transaction: after every migrated event, whatever its index
    // (positions now count within a transaction).
    assert!(new[0].position.commit() > 0);
    assert!(new[0].position.commit() > b[0].position.commit());
}

/// Transaction ids compare as numbers, not as text: an event of
/// transaction 9 comes before one of transaction 10 whatever their
/// positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_orders_transactions_numerically() {
    let Some(factory) = factory().await else {
        return;
    };
    let (name, admin) = factory.fresh_database().await;
    let clock = ManualClock::at_unix(commerce_core::testkit::START_UNIX);
    let (late, early) = (OrderId::new(), OrderId::new());
    for (order, xid) in [(late, "10"), (early, "9")] {
        let event = OrderEvent {
            order,
            seq: 1,
            at: clock.now(),
            from: OrderStatus::Paid,
            to: OrderStatus::Fulfilled,
            kind: OrderEventKind::Fulfilled { note: None },
        };
        sqlx::query(
            "INSERT INTO order_events (tenant_id, order_id, seq, doc, xid) \
             VALUES ('shop-a', $1, 1, $2, $3::text::xid8)",
        )
        .bind(order.as_uuid())
        .bind(sqlx::types::Json(serde_json::to_value(&event).unwrap()))
        .bind(xid)
        .execute(&admin)
        .await
        .unwrap();
    }
    admin.close().await;
    let store = app_store(&factory, &name).await;
    let h = Harness::new(&Fixed(Arc::new(store))).await;
    let items = read(&h.shop, None, 2).await;
    let commits: Vec<(u64, OrderId)> = items
        .iter()
        .map(|i| (i.position.commit(), i.order()))
        .collect();
    assert_eq!(commits, [(9, early), (10, late)]);
    assert!(items[0].position.index() > items[1].position.index());
}

/// The application role lists tenants through the function, sees only
/// ids, and still cannot read another tenant's rows directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_application_role_lists_tenants_but_reads_only_its_own_rows() {
    let Some(factory) = factory().await else {
        return;
    };
    let store = factory.store().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    for shop in [h.shop.clone(), h.other_shop("shop-b")] {
        let sku = Harness::stocked_in(&shop, "GPU-LIST", 10_000, 2).await;
        let cart = shop
            .create_cart(commerce_core::Currency::AUD)
            .await
            .unwrap();
        shop.set_line(cart.id, &sku, commerce_core::Quantity::ONE)
            .await
            .unwrap();
    }
    h.clock.advance(Duration::from_secs(16 * 60));
    let listed = store
        .tenants_with_work(h.commerce.now(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed,
        [
            TenantId::parse("shop-a").unwrap(),
            TenantId::parse("shop-b").unwrap()
        ]
    );
    // The store's transactions run as commerce_app, which sees no row
    // unpinned: the listing above came through the function alone.
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("SELECT set_config('role', 'commerce_app', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(role, APP_ROLE);
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 0, "unpinned, the role still sees no rows");
}
