//! The grouped strategy's server-side calls read their carts by key.
//!
//! `commerce_set_lines` (a group of one SKU) and `commerce_set_line_batch`
//! (a batch across SKUs) run with generic plans, made once per connection
//! (`plan_cache_mode = force_generic_plan`). A generic plan that joins the
//! request arrays to `carts` or `cart_lines` can choose to read every row
//! of the tenant and filter, and a reservation then costs a scan of the
//! tenant's carts. Their statements are written so the planner has no
//! such choice: lateral probes by key, and the carts' clocks written
//! through their row ids (`commerce_write_carts`). This test calls both
//! functions, as the store's role, for two carts of a tenant with 2,000,
//! and counts the rows the transaction read from each table (the
//! statistics PostgreSQL keeps per transaction, `pg_stat_get_xact_*`):
//! a plan that scans fails it. It checks twice, each on a new connection
//! (so the plans are made again): before an explicit `ANALYZE`, and after
//! it.

// Helpers outside #[test] fns fail the test on error, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use commerce_core::testkit::{Harness, StoreFactory};
use commerce_core::{CartId, Commerce, Currency, Sku, TenantId};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{APP_ROLE, ReservationStrategy};
use sqlx::{Connection, PgConnection, PgPool};

const TENANT: &str = "plans";

/// Carts of the tenant besides the two the calls reserve on, each with a
/// line.
const OTHER_CARTS: i64 = 2_000;

/// At most this many rows read from a table (its heap and its indexes)
/// for two requests: a handful per request, far below a scan of the
/// tenant's carts or lines.
const MOST_ROWS: i64 = 24;

/// The tables whose reads are counted.
const TABLES: [&str; 4] = ["carts", "cart_lines", "skus", "reservations"];

/// A fresh database with two SKUs in stock, two new carts, and
/// `OTHER_CARTS` more carts of the same tenant with a line each, all made
/// through a shop; and an administrative pool on the database.
async fn fixture() -> Option<([Sku; 2], [CartId; 2], PgPool)> {
    let factory = PgFactory::from_env(ReservationStrategy::Grouped).await;
    if let Some(reason) = factory.unavailable() {
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return None;
    }
    let (store, admin) = factory.store_and_admin().await;
    let commerce = Commerce::builder()
        .shared_store(Arc::new(store))
        .build()
        .unwrap();
    let shop = commerce.shop(&TenantId::parse(TENANT).unwrap());
    let skus = [
        Harness::stocked_in(&shop, "PLAN-1", 1_000, 100).await,
        Harness::stocked_in(&shop, "PLAN-2", 1_000, 100).await,
    ];
    let carts = [
        shop.create_cart(Currency::AUD).await.unwrap().id,
        shop.create_cart(Currency::AUD).await.unwrap().id,
    ];
    sqlx::query(
        "INSERT INTO carts (tenant_id, id, doc) \
         SELECT c.tenant_id, gen_random_uuid(), c.doc \
         FROM carts c, generate_series(1, $2) \
         WHERE c.tenant_id = $1 AND c.id = $3",
    )
    .bind(TENANT)
    .bind(OTHER_CARTS)
    .bind(carts[0].as_uuid())
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity) \
         SELECT c.tenant_id, c.id, 'OTHER', 1 FROM carts c \
         WHERE c.tenant_id = $1 AND c.id <> ALL($2)",
    )
    .bind(TENANT)
    .bind(uuids(&carts))
    .execute(&admin)
    .await
    .unwrap();
    Some((skus, carts, admin))
}

fn uuids(carts: &[CartId]) -> Vec<sqlx::types::Uuid> {
    carts.iter().map(CartId::as_uuid).collect()
}

/// Rows this transaction has read from `table`: by sequential scans, by
/// index scans from its heap, and from its indexes.
async fn rows_read(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT sum(pg_stat_get_xact_tuples_returned(c.oid) \
                  + pg_stat_get_xact_tuples_fetched(c.oid))::bigint \
         FROM pg_class c \
         WHERE c.oid = $1::regclass \
            OR c.oid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = $1::regclass)",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Runs `call` (a query whose rows carry an `outcome`) as the store's
/// role in a transaction on a new connection, and rolls it back: the
/// outcomes, and the rows read from each of [`TABLES`].
async fn reads_of(
    admin: &PgPool,
    call: &str,
    skus: &[Sku],
    carts: &[CartId],
) -> (Vec<String>, Vec<i64>) {
    let mut conn = PgConnection::connect_with(&admin.connect_options())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {APP_ROLE}")))
        .execute(&mut *tx)
        .await
        .unwrap();
    let sku_names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
    let outcomes: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(call.to_owned()))
        .bind(TENANT)
        .bind(&sku_names)
        .bind(uuids(carts))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let mut reads = Vec::new();
    for table in TABLES {
        reads.push(rows_read(&mut tx, table).await);
    }
    tx.rollback().await.unwrap();
    (outcomes, reads)
}

/// A batch of two requests (two SKUs, one cart each).
const BATCH: &str = "SELECT b.outcome FROM commerce_set_line_batch($1, $2, $3, \
     ARRAY[1, 1], ARRAY[100, 100], ARRAY[1000, 1000], \
     ARRAY[now() + interval '15 minutes', now() + interval '15 minutes'], \
     ARRAY[now(), now()], ARRAY['\"2026-12-08T00:00:00Z\"', '\"2026-12-08T00:00:00Z\"']::jsonb[]) AS b \
     ORDER BY b.ordinal";

/// A group of two requests (the first SKU, both carts).
const GROUP: &str = "SELECT g.outcome FROM commerce_set_lines($1, ($2)[1], $3, \
     ARRAY[1, 1], ARRAY[100, 100], ARRAY[1000, 1000], \
     ARRAY[now() + interval '15 minutes', now() + interval '15 minutes'], \
     now(), ARRAY['\"2026-12-08T00:00:00Z\"', '\"2026-12-08T00:00:00Z\"']::jsonb[]) AS g";

fn check(what: &str, when: &str, outcomes: &[String], reads: &[i64]) {
    assert_eq!(outcomes, ["ok", "ok"], "{what} {when}: outcomes");
    for (table, read) in TABLES.iter().zip(reads) {
        assert!(
            *read <= MOST_ROWS,
            "{what} {when}: {read} rows read from {table} for two requests \
             (at most {MOST_ROWS}): a plan scans the tenant's rows"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_calls_read_their_carts_by_key() {
    let Some((skus, carts, admin)) = fixture().await else {
        return;
    };
    for when in ["before ANALYZE", "after ANALYZE"] {
        if when == "after ANALYZE" {
            sqlx::query("ANALYZE").execute(&admin).await.unwrap();
        }
        let (outcomes, reads) = reads_of(&admin, BATCH, &skus, &carts).await;
        eprintln!("batch {when}: rows read from {TABLES:?}: {reads:?}");
        check("commerce_set_line_batch", when, &outcomes, &reads);
        let (outcomes, reads) = reads_of(&admin, GROUP, &skus, &carts).await;
        eprintln!("group {when}: rows read from {TABLES:?}: {reads:?}");
        check("commerce_set_lines", when, &outcomes, &reads);
    }
    // Each call was rolled back: the two carts are still empty.
    let lines: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM cart_lines WHERE tenant_id = $1 AND cart_id = ANY($2)",
    )
    .bind(TENANT)
    .bind(uuids(&carts))
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(lines, 0);
}
