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

/// A grouped store on a fresh database (its pool of `connections` when
/// given) and a harness on it; `None` when PostgreSQL is not configured
/// (the factory fails instead under `CI=true`).
async fn grouped(connections: Option<u32>) -> Option<(PgStore, Harness)> {
    let factory = factory(ReservationStrategy::Grouped).await?;
    let (store, admin) = factory
        .store_with(|options| {
            if let Some(n) = connections {
                options.max_connections = n;
            }
        })
        .await;
    admin.close().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    Some((store, h))
}

/// `commerce_set_line` (migration 0015) renewing a cart's lapsed hold on a
/// SKU whose stock its lapsed holds take: the refusal reclaims them, the
/// cart's own among them, and the renewal then counts once; a renewal still
/// short after the reclaim is refused with the real available count and
/// leaves the lapsed holds and the counter as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_that_reclaims_its_own_lapsed_hold_counts_it_once() {
    let Some(factory) = factory(ReservationStrategy::SingleStatement).await else {
        return;
    };
    let (store, admin) = factory.store_with(|_| {}).await;
    admin.close().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let sku = h.stocked("RENEW-OWN", 1_000, 2).await;
    let short = h.stocked("RENEW-SHORT", 1_000, 2).await;
    let renewing = h.cart_with(&sku, 1).await.id;
    let _lapsing = h.cart_with(&sku, 1).await.id;
    let refused = h.cart_with(&short, 1).await;
    h.clock.advance(std::time::Duration::from_secs(16 * 60));
    let _live = h.cart_with(&short, 1).await.id;

    let renewed = h
        .shop
        .set_line(renewing, &sku, Quantity::new(2).unwrap())
        .await
        .unwrap();
    assert_eq!(renewed.lines.len(), 1);
    assert_eq!(renewed.lines[0].quantity.get(), 2);
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 2);

    match h
        .shop
        .set_line(refused.id, &short, Quantity::new(3).unwrap())
        .await
    {
        Err(Error::InsufficientStock {
            requested,
            available,
            ..
        }) => assert_eq!((requested, available), (3, 1)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let unchanged = h.shop.cart(refused.id).await.unwrap();
    assert_eq!(
        unchanged.updated_at, refused.updated_at,
        "the refused cart changed"
    );
    assert_eq!(unchanged.lines[0].quantity.get(), 1);
    for (sku, held, rows) in counters(&store).await {
        assert_eq!(held, rows, "{sku}: the counter drifted from the holds");
    }
    let held: Vec<(String, i64)> = counters(&store)
        .await
        .into_iter()
        .map(|(sku, held, _)| (sku, held))
        .collect();
    assert_eq!(
        held,
        vec![("RENEW-OWN".to_owned(), 2), ("RENEW-SHORT".to_owned(), 2)],
        "the renewal counted once; the refusal kept the lapsed hold"
    );
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
async fn sweeps_racing_renewals(strategy: ReservationStrategy, sku_count: usize) {
    let Some(factory) = factory(strategy).await else {
        return;
    };
    let store = factory.store().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let mut skus = Vec::new();
    for i in 0..sku_count {
        skus.push(h.stocked(&format!("GPU-SWEEP-{i}"), 1_000, 1_000).await);
    }
    let mut failures = Vec::new();
    for _round in 0..5 {
        // Every cart holds a unit of every SKU; all of them lapse.
        let (first, rest) = skus.split_first().unwrap();
        let mut carts = Vec::new();
        for _ in 0..40 {
            let cart = h.cart_with(first, 1).await.id;
            for sku in rest {
                h.shop.set_line(cart, sku, Quantity::ONE).await.unwrap();
            }
            carts.push(cart);
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
            for sku in &skus {
                let (shop, sku) = (h.shop.clone(), sku.clone());
                let units = Quantity::new(1 + u32::try_from(i % 3).unwrap()).unwrap();
                tasks.push(tokio::spawn(async move {
                    match shop.set_line(cart, &sku, units).await {
                        Ok(_) => Vec::new(),
                        Err(e) => vec![format!("set_line: {e}")],
                    }
                }));
            }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sweeps_racing_renewals_keep_the_counter_and_never_deadlock() {
    sweeps_racing_renewals(ReservationStrategy::SingleStatement, 1).await;
}

/// The same across four SKUs on the grouped strategy, whose renewals of
/// different SKUs run in batches, and of one SKU in groups, while the
/// sweeps take the lapsed holds they replace.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sweeps_racing_batched_renewals_keep_the_counter_and_never_deadlock() {
    sweeps_racing_renewals(ReservationStrategy::Grouped, 4).await;
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

/// One group that mixes every case the group's call handles, on a store of
/// one connection (the first request runs alone and the rest queue behind
/// it, so they go as one group): carts whose holds have lapsed asking for
/// more (the reclaim takes their own lapsed holds, which the group then
/// reads again), carts changing a live hold, new carts, a cart that does
/// not exist and a checked-out cart. More is asked than is left, so some
/// are refused. Every answer is the cart's own, the units granted never
/// exceed the stock, each granted cart's line equals its hold and its
/// clock moved, a refused cart is left as it was, and the counter equals
/// the holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_group_mixes_changes_new_carts_lapsed_holds_and_refusals() {
    let Some((store, h)) = grouped(Some(1)).await else {
        return;
    };
    let sku = h.stocked("GPU-GROUP", 1_000, 30).await;
    let other = h.stocked("GPU-OTHER", 1_000, 10).await;
    let mut lapsed = Vec::new();
    for _ in 0..10 {
        lapsed.push(h.cart_with(&sku, 1).await.id);
    }
    h.clock.advance(std::time::Duration::from_secs(16 * 60));
    let mut live = Vec::new();
    for _ in 0..10 {
        live.push(h.cart_with(&sku, 1).await.id);
    }
    // Checked out: its line of another SKU is bought.
    let bought = h.cart_with(&other, 1).await;
    h.shop
        .checkout(
            bought.id,
            &commerce_core::IdempotencyKey::parse("group-bought").unwrap(),
        )
        .await
        .unwrap();
    let mut asks: Vec<(commerce_core::CartId, u32)> = Vec::new();
    asks.extend(lapsed.iter().take(5).map(|&cart| (cart, 2)));
    asks.extend(live.iter().take(5).map(|&cart| (cart, 3)));
    for _ in 0..15 {
        asks.push((h.shop.create_cart(Currency::AUD).await.unwrap().id, 1));
    }
    asks.push((commerce_core::CartId::new(), 1));
    asks.push((bought.id, 1));

    let mut clocks = std::collections::HashMap::new();
    for &(cart, _) in &asks[..25] {
        clocks.insert(cart, h.shop.cart(cart).await.unwrap().updated_at);
    }
    h.clock.advance(std::time::Duration::from_secs(1));
    let barrier = Arc::new(tokio::sync::Barrier::new(asks.len()));
    let tasks: Vec<_> = asks
        .iter()
        .map(|&(cart, units)| {
            let (shop, sku, barrier) = (h.shop.clone(), sku.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                shop.set_line(cart, &sku, Quantity::new(units).unwrap())
                    .await
            })
        })
        .collect();
    let mut granted = Vec::new();
    let mut refused = 0;
    for (task, &(cart, units)) in tasks.into_iter().zip(&asks) {
        match task.await.unwrap() {
            Ok(answer) => {
                assert_eq!(answer.id, cart, "an answer for another cart");
                let line = answer.lines.iter().find(|l| l.sku == sku).unwrap();
                assert_eq!(line.quantity.get(), units);
                granted.push((cart, units));
            }
            Err(Error::InsufficientStock {
                requested,
                available,
                ..
            }) => {
                assert_eq!(requested, units);
                assert!(available < units, "refused {units} with {available} left");
                refused += 1;
            }
            Err(Error::NotFound { .. }) => assert_ne!(cart, bought.id),
            Err(Error::CartCheckedOut { .. }) => assert_eq!(cart, bought.id),
            Err(other) => panic!("cart {cart}: {other}"),
        }
    }
    assert!(refused > 0, "more was asked than was left");
    // The lapsed holds not in the group were reclaimed; what is held now
    // is what the live carts kept and what the group was granted.
    let level = h.shop.stock(&sku).await.unwrap();
    assert!(level.reserved <= 30, "{level:?}");
    for (sku_name, held, rows) in counters(&store).await {
        assert_eq!(held, rows, "{sku_name}: the counter drifted from the holds");
    }
    // Each granted cart holds what its line says; a live hold of any cart
    // asked about equals its line.
    assert!(!granted.is_empty());
    for &(cart, _) in &asks[..25] {
        let line = h
            .shop
            .cart(cart)
            .await
            .unwrap()
            .lines
            .iter()
            .find(|l| l.sku == sku)
            .map_or(0, |l| l.quantity.get());
        let held: u32 = h
            .shop
            .scope()
            .inventory()
            .cart_reservations(cart)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.sku == sku && r.expires_at > h.clock.now())
            .map(|r| r.quantity.get())
            .sum();
        let updated_at = h.shop.cart(cart).await.unwrap().updated_at;
        if let Some(&(_, units)) = granted.iter().find(|(c, _)| *c == cart) {
            assert_eq!((line, held), (units, units), "cart {cart}");
            assert_eq!(updated_at, h.clock.now(), "cart {cart}: its clock");
        } else {
            if held > 0 {
                assert_eq!(held, line, "cart {cart}");
            }
            assert_eq!(
                updated_at, clocks[&cart],
                "cart {cart}: refused, yet changed"
            );
        }
    }
}

/// One call of `commerce_set_line_batch` (migration 0013), the batch of lone
/// reservations across SKUs: every request answered by its position, two
/// requests of one SKU decided in the order given, a refusal or a missing
/// cart stopping nothing, one cart on two SKUs getting both lines, and the
/// counters equal to the holds after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_batch_answers_each_request_across_skus_by_its_position() {
    let Some((store, h)) = grouped(None).await else {
        return;
    };
    let a = h.stocked("BATCH-A", 1_000, 1).await;
    let b = h.stocked("BATCH-B", 1_000, 5).await;
    let c = h.stocked("BATCH-C", 1_000, 2).await;
    let first = h.shop.create_cart(Currency::AUD).await.unwrap();
    let second = h.shop.create_cart(Currency::AUD).await.unwrap();
    let third = h.shop.create_cart(Currency::AUD).await.unwrap();
    let fourth = h.shop.create_cart(Currency::AUD).await.unwrap();
    let fifth = h.shop.create_cart(Currency::AUD).await.unwrap();
    let d = h.stocked("BATCH-D", 1_000, 4).await;
    let e = h.stocked("BATCH-E", 1_000, 1).await;
    let missing = commerce_core::CartId::new();
    h.clock.advance(std::time::Duration::from_secs(1));
    let now = h.clock.now();
    let expires = now + std::time::Duration::from_secs(15 * 60);
    // (cart, SKU, units), in the order given.
    let asks: Vec<(uuid::Uuid, &str, i32)> = vec![
        (third.id.as_uuid(), c.as_str(), 3),
        (first.id.as_uuid(), a.as_str(), 1),
        (third.id.as_uuid(), "BATCH-NONE", 1),
        (missing.as_uuid(), b.as_str(), 1),
        (second.id.as_uuid(), a.as_str(), 1),
        (first.id.as_uuid(), b.as_str(), 2),
        // A cart and a SKU of their own in the batch: decided by the
        // counter alone, granted, and refused (then decided again alone).
        (fourth.id.as_uuid(), d.as_str(), 3),
        (fifth.id.as_uuid(), e.as_str(), 2),
    ];
    let n = asks.len();
    let clock = serde_json::to_value(now).unwrap();
    let lines = |cart: commerce_core::Cart| {
        cart.lines
            .iter()
            .map(|l| (l.sku.as_str().to_owned(), l.quantity.get()))
            .collect::<Vec<_>>()
    };
    let rows: Vec<(i32, String, Option<i64>)> = sqlx::query_as(
        "SELECT ordinal, outcome, available FROM commerce_set_line_batch(\
         'shop-a', $1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(asks.iter().map(|a| a.1).collect::<Vec<_>>())
    .bind(asks.iter().map(|a| a.0).collect::<Vec<_>>())
    .bind(asks.iter().map(|a| a.2).collect::<Vec<_>>())
    .bind(vec![50_i32; n])
    .bind(vec![100_i32; n])
    .bind(vec![expires; n])
    .bind(vec![now; n])
    .bind(vec![sqlx::types::Json(clock); n])
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "insufficient".to_owned(), Some(2)),
            (2, "ok".to_owned(), None),
            (3, "no_sku".to_owned(), None),
            (4, "no_cart".to_owned(), None),
            (5, "insufficient".to_owned(), Some(0)),
            (6, "ok".to_owned(), None),
            (7, "ok".to_owned(), None),
            (8, "insufficient".to_owned(), Some(1)),
        ]
    );
    let granted = h.shop.cart(fourth.id).await.unwrap();
    assert_eq!(granted.updated_at, now, "the granted cart's clock");
    assert_eq!(lines(granted), vec![("BATCH-D".to_owned(), 3)]);
    let refused = h.shop.cart(fifth.id).await.unwrap();
    assert_eq!(
        refused.updated_at, fifth.updated_at,
        "the refused cart changed"
    );
    assert!(lines(refused).is_empty());
    assert_eq!(h.shop.stock(&d).await.unwrap().reserved, 3);
    assert_eq!(h.shop.stock(&e).await.unwrap().reserved, 0);
    assert_eq!(
        lines(h.shop.cart(first.id).await.unwrap()),
        vec![("BATCH-A".to_owned(), 1), ("BATCH-B".to_owned(), 2)]
    );
    assert!(lines(h.shop.cart(second.id).await.unwrap()).is_empty());
    assert!(lines(h.shop.cart(third.id).await.unwrap()).is_empty());
    assert_eq!(h.shop.stock(&a).await.unwrap().reserved, 1);
    assert_eq!(h.shop.stock(&b).await.unwrap().reserved, 2);
    assert_eq!(h.shop.stock(&c).await.unwrap().reserved, 0);
    for (sku, held, rows) in counters(&store).await {
        assert_eq!(held, rows, "{sku}: the counter drifted from the holds");
    }
}

/// Reservations of many SKUs racing on one connection, so that all but the
/// first wait and run in batches, half of the SKUs sold out before: one
/// winner per unit of stock, every answer the caller's own, and the
/// counters equal to the holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_lone_reservations_never_oversell() {
    let Some((store, h)) = grouped(Some(1)).await else {
        return;
    };
    let mut skus = Vec::new();
    for i in 0..12 {
        skus.push(h.stocked(&format!("BATCH-{i:02}"), 1_000, 2).await);
    }
    // Every other SKU sold out before the race.
    let holder = h.shop.create_cart(Currency::AUD).await.unwrap().id;
    for sku in skus.iter().step_by(2) {
        h.shop
            .set_line(holder, sku, Quantity::new(2).unwrap())
            .await
            .unwrap();
    }
    // Four carts per SKU, one unit each; one cart asks for three SKUs.
    let shared = h.shop.create_cart(Currency::AUD).await.unwrap().id;
    let mut asks = Vec::new();
    for (i, sku) in skus.iter().enumerate() {
        for j in 0..4 {
            let cart = if j == 0 && i < 3 {
                shared
            } else {
                h.shop.create_cart(Currency::AUD).await.unwrap().id
            };
            asks.push((cart, sku.clone()));
        }
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(asks.len()));
    let tasks: Vec<_> = asks
        .iter()
        .map(|(cart, sku)| {
            let (shop, cart, sku, barrier) = (h.shop.clone(), *cart, sku.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                shop.set_line(cart, &sku, Quantity::ONE).await
            })
        })
        .collect();
    let mut winners = std::collections::HashMap::<String, u32>::new();
    for (task, (cart, sku)) in tasks.into_iter().zip(&asks) {
        match task.await.unwrap() {
            Ok(answer) => {
                assert_eq!(answer.id, *cart, "an answer for another cart");
                assert!(answer.lines.iter().any(|l| l.sku == *sku));
                *winners.entry(sku.as_str().to_owned()).or_default() += 1;
            }
            Err(Error::InsufficientStock { available, .. }) => assert_eq!(available, 0),
            Err(other) => panic!("cart {cart}: {other}"),
        }
    }
    for (i, sku) in skus.iter().enumerate() {
        let won = if i % 2 == 0 { None } else { Some(&2) };
        assert_eq!(winners.get(sku.as_str()), won, "{sku}");
        assert_eq!(h.shop.stock(sku).await.unwrap().reserved, 2, "{sku}");
    }
    for (sku, held, rows) in counters(&store).await {
        assert_eq!(held, rows, "{sku}: the counter drifted from the holds");
    }
}
