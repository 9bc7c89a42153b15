//! PostgreSQL-specific guarantees: row-level security, the refusal of roles
//! that bypass it, and the reservation counter staying equal to the holds.

// Helpers outside #[test] fns fail the test on error, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use commerce_core::testkit::{self, Harness, StoreFactory};
use commerce_core::{Clock, Currency, Error, Quantity, Store};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{PgStore, ReservationStrategy};
use parking_lot::Mutex;
use sqlx::{Connection, Row};

const TABLES: &[&str] = &[
    "products",
    "skus",
    "stock_adjustments",
    "carts",
    "cart_lines",
    "reservations",
    "allocations",
    "orders",
    "order_events",
    "payment_events",
    "refunds",
    "promotions",
    "promotion_usage",
    "promotion_customer_usage",
    "shop_settings",
];

async fn factory(strategy: ReservationStrategy) -> Option<PgFactory> {
    let factory = PgFactory::from_env(strategy).await;
    if let Some(reason) = factory.unavailable() {
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return None;
    }
    Some(factory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_that_bypasses_row_level_security_is_refused() {
    let Some(factory) = factory(ReservationStrategy::default()).await else {
        return;
    };
    let (name, admin) = factory.fresh_database().await;
    admin.close().await;
    let url = factory
        .admin_url()
        .unwrap()
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{name}"))
        .unwrap();
    // The administrative role is a superuser: the store must not run as it.
    match PgStore::connect(&url).await {
        Err(Error::InvalidConfig(message)) => {
            assert!(message.contains("row-level security"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Two tenants with products, stock, carts, reservations and orders; then a
/// careless query without any tenant filter, pinned to tenant A, sees only
/// A's rows, cannot change B's, and cannot write rows for B; unpinned, it
/// sees nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_level_security_confines_careless_queries_to_the_pinned_tenant() {
    let Some(factory) = factory(ReservationStrategy::default()).await else {
        return;
    };
    let store = factory.store().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    for shop in [h.shop.clone(), h.other_shop("shop-b")] {
        let sku = Harness::stocked_in(&shop, "GPU-RLS", 10_000, 3).await;
        let cart = shop.create_cart(Currency::AUD).await.unwrap();
        shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
        let other = shop.create_cart(Currency::AUD).await.unwrap();
        shop.set_line(other.id, &sku, Quantity::ONE).await.unwrap();
        shop.checkout(
            other.id,
            &format!("order-{}", shop.tenant()).parse().unwrap(),
        )
        .await
        .unwrap();
    }

    // The store's login is an administrator; its transactions switch to
    // commerce_app, as these do.
    let mut conn = store.pool().acquire().await.unwrap();
    // Unpinned: nothing is visible.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('role', 'commerce_app', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    for table in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table} unpinned");
    }
    drop(tx);

    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('role', 'commerce_app', true), \
         set_config('app.tenant_id', 'shop-a', true)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    for table in TABLES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id FROM {table}"
        )))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert!(
            rows.iter().all(|r| r.get::<String, _>(0) == "shop-a"),
            "{table} leaks"
        );
        let b: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = 'shop-b'"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(b, 0, "{table}: shop-b rows visible to shop-a");
    }
    for (table, change) in [
        ("carts", "UPDATE carts SET checked_out_order = NULL"),
        ("orders", "UPDATE orders SET status = 'cancelled'"),
        ("skus", "UPDATE skus SET on_hand = 0"),
        ("reservations", "DELETE FROM reservations"),
        ("products", "DELETE FROM products"),
    ] {
        let touched = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{change} WHERE tenant_id = 'shop-b'"
        )))
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(touched, 0, "{table}: shop-a changed shop-b rows");
    }
    let planted =
        sqlx::query("INSERT INTO skus (tenant_id, sku, on_hand) VALUES ('shop-b', 'PLANTED', 99)")
            .execute(&mut *tx)
            .await;
    assert!(
        planted.is_err(),
        "writing a row for another tenant must be refused"
    );
    drop(tx);

    // Tenant B's data is intact.
    let b = h.other_shop("shop-b");
    let level = b.stock(&"GPU-RLS".parse().unwrap()).await.unwrap();
    assert_eq!((level.on_hand, level.reserved, level.allocated), (3, 1, 1));
}

/// Hands out one store.
struct Fixed(Arc<PgStore>);

#[async_trait]
impl StoreFactory for Fixed {
    async fn new_store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
}

/// Records every store it makes, to inspect them after a scenario.
struct Recording {
    inner: PgFactory,
    stores: Mutex<Vec<PgStore>>,
}

#[async_trait]
impl StoreFactory for Recording {
    async fn new_store(&self) -> Arc<dyn Store> {
        let store = self.inner.store().await;
        self.stores.lock().push(store.clone());
        Arc::new(store)
    }
}

impl Recording {
    /// Asserts that every store made since the last call has its counters
    /// equal to its holds, then closes it; how many it checked.
    async fn check_and_close(&self) -> usize {
        let stores = std::mem::take(&mut *self.stores.lock());
        for store in &stores {
            let rows = counters(store).await;
            assert!(!rows.is_empty());
            for (sku, held, rows_total) in rows {
                assert_eq!(
                    held, rows_total,
                    "{sku}: the counter drifted from the holds"
                );
            }
            store.pool().close().await;
        }
        stores.len()
    }
}

/// For every SKU of the harness tenant: the counter, and the units of its
/// reservation and allocation rows.
async fn counters(store: &PgStore) -> Vec<(String, i64, i64)> {
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'shop-a', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT s.sku, s.held::bigint, \
           (SELECT COALESCE(SUM(quantity), 0)::bigint FROM reservations r WHERE r.tenant_id = s.tenant_id AND r.sku = s.sku) \
         + (SELECT COALESCE(SUM(quantity), 0)::bigint FROM allocations a WHERE a.tenant_id = s.tenant_id AND a.sku = s.sku) \
         FROM skus s ORDER BY s.sku",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap()
}

async fn counter_matches_holds_after_races(strategy: ReservationStrategy) {
    let Some(inner) = factory(strategy).await else {
        return;
    };
    let recording = Recording {
        inner,
        stores: Mutex::new(Vec::new()),
    };
    // Each scenario's stores are checked and closed as it ends: their pools
    // would otherwise keep their connections open for the whole test.
    let mut checked = 0;
    testkit::last_unit_race_has_one_winner(&recording).await;
    checked += recording.check_and_close().await;
    testkit::five_units_fifty_racers_have_five_winners(&recording).await;
    checked += recording.check_and_close().await;
    testkit::a_thousand_racers_for_one_unit_have_one_winner(&recording).await;
    checked += recording.check_and_close().await;
    testkit::a_thousand_racers_for_fifty_units_have_fifty_winners(&recording).await;
    checked += recording.check_and_close().await;
    testkit::random_racers_over_many_skus_never_oversell(&recording).await;
    checked += recording.check_and_close().await;
    testkit::late_payment_after_resale_is_refunded_once(&recording).await;
    checked += recording.check_and_close().await;
    testkit::limited_coupon_last_use_is_redeemed_once(&recording).await;
    checked += recording.check_and_close().await;
    testkit::reservation_expiry_frees_stock_at_ttl_and_sweep_removes_it(&recording).await;
    checked += recording.check_and_close().await;
    assert_eq!(checked, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_matches_holds_after_races_single_statement() {
    counter_matches_holds_after_races(ReservationStrategy::SingleStatement).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_matches_holds_after_races_advisory_lock() {
    counter_matches_holds_after_races(ReservationStrategy::AdvisoryLock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_matches_holds_after_races_grouped() {
    counter_matches_holds_after_races(ReservationStrategy::Grouped).await;
}

/// Sweeps racing renewals of expired reservations: the counter stays equal
/// to the holds, and no operation fails (no deadlock between the sweep's and
/// the reservation's lock orders).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sweeps_racing_renewals_keep_the_counter_and_never_deadlock() {
    let Some(factory) = factory(ReservationStrategy::SingleStatement).await else {
        return;
    };
    let store = factory.store().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let sku = h.stocked("GPU-SWEEP", 1_000, 1_000).await;
    let mut failures = Vec::new();
    for _round in 0..5 {
        let mut carts = Vec::new();
        for _ in 0..40 {
            carts.push(h.cart_with(&sku, 1).await.id);
        }
        h.clock.advance(std::time::Duration::from_secs(16 * 60));
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (scope, now) = (h.shop.scope().clone(), h.clock.now());
            tasks.push(tokio::spawn(async move {
                let mut failed = Vec::new();
                for _ in 0..10 {
                    if let Err(e) = scope.inventory().sweep_reservations(now, 3).await {
                        failed.push(format!("sweep: {e}"));
                    }
                }
                failed
            }));
        }
        for (i, cart) in carts.into_iter().enumerate() {
            let (shop, sku) = (h.shop.clone(), sku.clone());
            let units = Quantity::new(1 + u32::try_from(i % 3).unwrap()).unwrap();
            tasks.push(tokio::spawn(async move {
                match shop.set_line(cart, &sku, units).await {
                    Ok(_) => Vec::new(),
                    Err(e) => vec![format!("set_line: {e}")],
                }
            }));
        }
        for task in tasks {
            failures.extend(task.await.unwrap());
        }
        for (sku, held, rows) in counters(&store).await {
            assert_eq!(held, rows, "{sku}: the counter drifted from the holds");
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The advisory-lock strategy reads on-hand under a row lock: a stock
/// correction committed while a reservation waits is seen, not oversold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn advisory_lock_sees_a_concurrent_stock_correction() {
    let Some(factory) = factory(ReservationStrategy::AdvisoryLock).await else {
        return;
    };
    let store = factory.store().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let sku = h.stocked("GPU-CORRECT", 1_000, 2).await;
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();

    // A correction to zero, holding the SKU row as `correct` does, commits
    // while the reservation is under way.
    let mut conn = store.pool().acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'shop-a', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT on_hand FROM skus WHERE tenant_id = 'shop-a' AND sku = $1 FOR UPDATE")
        .bind(sku.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE skus SET on_hand = 0 WHERE tenant_id = 'shop-a' AND sku = $1")
        .bind(sku.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    let (shop, reserved) = (h.shop.clone(), sku.clone());
    let task = tokio::spawn(async move {
        shop.set_line(cart.id, &reserved, Quantity::new(2).unwrap())
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    match task.await.unwrap() {
        Err(Error::InsufficientStock { available: 0, .. }) => {}
        other => panic!("expected a refusal with nothing available, got {other:?}"),
    }
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!((level.on_hand, level.reserved), (0, 0));
}
