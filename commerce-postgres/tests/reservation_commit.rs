//! Whether a reservation's commit waits for its flush
//! ([`ReservationCommit`]), seen from the server's write-ahead log: right
//! after a call returns, another connection compares how far the log is
//! flushed with how far it is written. A synchronous commit returns once
//! its commit record is flushed, so on a quiet server nothing written is
//! left unflushed; an asynchronous one returns before, and the log writer
//! flushes it within a few hundred milliseconds. A checkout, which spends
//! the holds, always commits synchronously: it flushes every reservation
//! committed before it.
//!
//! In a test binary of its own, one test: the figures are the server's,
//! and other tests' commits would blur them.

// Helpers outside #[test] fns fail the test on error, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use commerce_core::testkit::{Harness, StoreFactory};
use commerce_core::{Commerce, Currency, IdempotencyKey, Quantity, Shop, Sku, TenantId};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{ReservationCommit, ReservationStrategy};
use sqlx::PgPool;

/// Reservations measured per mode.
const CALLS: usize = 40;

/// Whether everything the server has written to its log is flushed.
async fn all_flushed(admin: &PgPool) -> bool {
    sqlx::query_scalar("SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()")
        .fetch_one(admin)
        .await
        .unwrap()
}

/// A shop on a fresh database whose reservations commit as `commit` says,
/// one SKU stocked, and an administrative pool on the same database.
async fn shop(
    strategy: ReservationStrategy,
    commit: ReservationCommit,
) -> Option<(Shop, Sku, PgPool)> {
    let factory = PgFactory::from_env(strategy)
        .await
        .with_reservation_commit(commit);
    if let Some(reason) = factory.unavailable() {
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return None;
    }
    let (store, admin) = factory.store_and_admin().await;
    assert_eq!(store.reservation_commit(), commit);
    let commerce = Commerce::builder()
        .shared_store(Arc::new(store))
        .build()
        .unwrap();
    let shop = commerce.shop(&TenantId::parse("commit").unwrap());
    let sku = Harness::stocked_in(&shop, "C-1", 1_000, 10_000).await;
    Some((shop, sku, admin))
}

/// Of `CALLS` reservations on new carts, how many left the log all
/// flushed as they returned; then whether a checkout did, after a
/// reservation of its own cart.
async fn flushed_after(
    strategy: ReservationStrategy,
    commit: ReservationCommit,
) -> Option<(usize, bool)> {
    let (shop, sku, admin) = shop(strategy, commit).await?;
    let one = Quantity::new(1).unwrap();
    let mut carts = Vec::new();
    for _ in 0..CALLS {
        carts.push(shop.create_cart(Currency::AUD).await.unwrap().id);
    }
    let last = shop.create_cart(Currency::AUD).await.unwrap().id;
    let mut flushed = 0;
    for cart in carts {
        shop.set_line(cart, &sku, one).await.unwrap();
        if all_flushed(&admin).await {
            flushed += 1;
        }
    }
    shop.set_line(last, &sku, one).await.unwrap();
    let key = IdempotencyKey::parse(format!("commit-{commit:?}")).unwrap();
    shop.checkout(last, &key).await.unwrap();
    let checkout_flushed = all_flushed(&admin).await;
    Some((flushed, checkout_flushed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_waits_for_its_flush_only_when_synchronous() {
    for strategy in [
        ReservationStrategy::Grouped,
        ReservationStrategy::SingleStatement,
        ReservationStrategy::AdvisoryLock,
    ] {
        let Some((synchronous, sync_checkout)) =
            flushed_after(strategy, ReservationCommit::Synchronous).await
        else {
            return;
        };
        let (asynchronous, async_checkout) =
            flushed_after(strategy, ReservationCommit::Asynchronous)
                .await
                .unwrap();
        eprintln!(
            "{strategy:?}: log all flushed after {synchronous} of {CALLS} synchronous \
             reservations, {asynchronous} of {CALLS} asynchronous ones"
        );
        // Margins for the server's own writes (autovacuum, the log writer
        // waking on a full page): the two modes are far apart.
        assert!(
            synchronous >= CALLS * 3 / 4,
            "{strategy:?}: a synchronous reservation returned before its flush \
             ({synchronous} of {CALLS} flushed)"
        );
        assert!(
            asynchronous <= CALLS / 4,
            "{strategy:?}: an asynchronous reservation waited for its flush \
             ({asynchronous} of {CALLS} flushed)"
        );
        assert!(
            sync_checkout,
            "{strategy:?}: checkout returned before its flush"
        );
        assert!(
            async_checkout,
            "{strategy:?}: checkout after asynchronous reservations returned before its flush"
        );
    }
}
