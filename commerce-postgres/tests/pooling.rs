//! Behind a transaction pooler and under a crowd: nothing outlives a
//! transaction, waits are bounded and typed, and a crowd larger than the
//! pool gets orders and refusals, never a backend error.
//!
//! The pooled tests need PgBouncer in transaction pooling (`bash
//! .ci/pgbouncer.sh`) named by `COMMERCE_PGBOUNCER_URL`; under `CI=true`
//! they fail without it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use commerce_core::testkit::crowd::{BuyerOutcome, crowd};
use commerce_core::testkit::{Harness, StoreFactory};
use commerce_core::{BackendErrorKind, Currency, Error, Quantity, Store};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{APP_ROLE, PgStore, PgStoreOptions, ReservationStrategy};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// Hands out one store.
struct Fixed(Arc<PgStore>);

#[async_trait]
impl StoreFactory for Fixed {
    async fn new_store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
}

fn skip(factory: &PgFactory) -> bool {
    if let Some(reason) = factory.unavailable() {
        eprintln!("SKIPPED: {reason}");
        return true;
    }
    false
}

/// Through PgBouncer with one server connection shared by every client of
/// the login (`commerce_pooling_one`): the store, logged in as a superuser
/// and switching to `commerce_app` in each transaction, runs a whole
/// checkout while another client of the same login prepares named
/// statements and reads the session between the store's transactions. The
/// other client always finds the session as the login left it (its role,
/// no tenant, no timeouts), and every write of the store ran as
/// `commerce_app` (an audit trigger records who wrote).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_outlives_a_transaction_behind_the_pooler() {
    let factory = PgFactory::through_pooler(ReservationStrategy::SingleStatement).await;
    if skip(&factory) {
        return;
    }
    let admin_url: PgConnectOptions = factory.admin_url().unwrap().parse().unwrap();
    let mut admin = PgConnection::connect_with(&admin_url).await.unwrap();
    let name = "commerce_pooling_one";
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut db = PgConnection::connect_with(&admin_url.clone().database(name))
        .await
        .unwrap();
    commerce_postgres::MIGRATOR.run(&mut db).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE audit (who text NOT NULL, what text NOT NULL); \
         GRANT INSERT ON audit TO commerce_app; \
         CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO audit VALUES (current_user, TG_TABLE_NAME); RETURN NULL; END $$; \
         CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON carts \
         FOR EACH STATEMENT EXECUTE FUNCTION audit(); \
         CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON skus \
         FOR EACH STATEMENT EXECUTE FUNCTION audit(); \
         CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON orders \
         FOR EACH STATEMENT EXECUTE FUNCTION audit();",
    )
    .execute(&mut db)
    .await
    .unwrap();

    let superuser = url_for(factory.pooler_url().unwrap(), name, "postgres");
    let store = PgStore::connect_with(
        &with_flag(&superuser),
        PgStoreOptions {
            set_role: Some(APP_ROLE.to_owned()),
            max_connections: 2,
            ..PgStoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(store.pooled(), "pgbouncer=true in the URL sets pooled mode");
    let mut other = PgConnection::connect(&superuser).await.unwrap();
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let sku = h.stocked("GPU-POOL", 10_000, 5).await;
    for i in 0..5 {
        // The other client: a named statement (sqlx's default) on the one
        // server connection, then the session as it finds it.
        let (user, tenant, lock_timeout): (String, Option<String>, String) = sqlx::query_as(
            "SELECT current_user::text, nullif(current_setting('app.tenant_id', true), ''), \
             current_setting('lock_timeout')",
        )
        .fetch_one(&mut other)
        .await
        .unwrap();
        assert_eq!(
            (user.as_str(), tenant, lock_timeout.as_str()),
            ("postgres", None, "0"),
            "round {i}"
        );
        let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
        h.shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
        h.shop
            .checkout(cart.id, &format!("pool-{i}").parse().unwrap())
            .await
            .unwrap();
    }
    let writers: Vec<(String, i64)> =
        sqlx::query_as("SELECT who, count(*) FROM audit GROUP BY who ORDER BY who")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(writers.len(), 1, "{writers:?}");
    assert_eq!(writers[0].0, APP_ROLE, "{writers:?}");
    assert!(writers[0].1 >= 15, "{writers:?}");
    store.pool().close().await;
    other.close().await.unwrap();
    db.close().await.unwrap();
}

/// A second connection holds the SKU's row lock: a reservation fails as
/// `Busy` within the lock timeout, having written nothing, on every
/// strategy, and succeeds once the lock is gone.
async fn held_row_lock_is_busy(factory: PgFactory) {
    let lock_timeout = Duration::from_millis(300);
    let (store, admin) = factory
        .store_with(|options| options.lock_timeout = lock_timeout)
        .await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let sku = h.stocked("GPU-LOCKED", 10_000, 3).await;
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();

    let mut tx = admin.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM skus WHERE tenant_id = 'shop-a' AND sku = $1 FOR UPDATE")
        .bind(sku.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    let started = Instant::now();
    let refused = h.shop.set_line(cart.id, &sku, Quantity::ONE).await;
    let waited = started.elapsed();
    match refused {
        Err(Error::Backend(b)) if b.kind() == BackendErrorKind::Busy => {
            assert!(b.is_retryable());
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(
        waited >= lock_timeout && waited < lock_timeout + Duration::from_secs(2),
        "waited {waited:?} for a lock timeout of {lock_timeout:?}"
    );
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!(level.reserved, 0, "a busy reservation holds nothing");
    tx.rollback().await.unwrap();
    h.shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_row_lock_makes_a_reservation_busy_on_every_strategy() {
    for strategy in [
        ReservationStrategy::SingleStatement,
        ReservationStrategy::AdvisoryLock,
        ReservationStrategy::Grouped,
    ] {
        let factory = PgFactory::from_env(strategy).await;
        if skip(&factory) {
            return;
        }
        held_row_lock_is_busy(factory).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_row_lock_makes_a_reservation_busy_through_the_pooler() {
    let factory = PgFactory::through_pooler(ReservationStrategy::SingleStatement).await;
    if skip(&factory) {
        return;
    }
    held_row_lock_is_busy(factory).await;
}

/// 10,000 buyers for one unit on a pool of 10 with the default bounded
/// waits: exactly one order; every other buyer is told sold out or busy;
/// nothing else.
async fn crowd_for_one_unit(factory: PgFactory) {
    let (store, admin) = factory.store_with_default_waits(10).await;
    admin.close().await;
    let h = Harness::new(&Fixed(Arc::new(store.clone()))).await;
    let sku = h.stocked("GPU-CROWD", 10_000, 1).await;
    let report = crowd(&h.shop, &sku, 10_000).await;
    let (ordered, sold_out, busy) = (
        report.count(&BuyerOutcome::Ordered),
        report.count(&BuyerOutcome::SoldOut),
        report.count(&BuyerOutcome::Busy),
    );
    eprintln!(
        "{} buyers ({}): {ordered} ordered, {sold_out} sold out, {busy} busy in {:?}; \
         refusals p50 {:?}, p99 {:?}",
        report.buyers.len(),
        if store.pooled() { "pooled" } else { "direct" },
        report.elapsed,
        report.refusal_quantile(0.5),
        report.refusal_quantile(0.99),
    );
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(ordered, 1);
    assert_eq!(ordered + sold_out + busy, 10_000);
    assert_eq!(h.shop.stock(&sku).await.unwrap().allocated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_buyers_for_one_unit_on_a_pool_of_ten() {
    let factory = PgFactory::from_env(ReservationStrategy::default()).await;
    if skip(&factory) {
        return;
    }
    crowd_for_one_unit(factory).await;
}

/// The grouped strategy: requests waiting in the SKU's queue count among
/// the operations in flight, so the crowd is refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_buyers_for_one_unit_grouped() {
    let factory = PgFactory::from_env(ReservationStrategy::Grouped).await;
    if skip(&factory) {
        return;
    }
    crowd_for_one_unit(factory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_buyers_for_one_unit_through_the_pooler() {
    let factory = PgFactory::through_pooler(ReservationStrategy::default()).await;
    if skip(&factory) {
        return;
    }
    crowd_for_one_unit(factory).await;
}

/// `url` on database `name` as `user`.
fn url_for(url: &str, name: &str, user: &str) -> String {
    let options: PgConnectOptions = url.parse().unwrap();
    options
        .database(name)
        .username(user)
        .to_url_lossy()
        .to_string()
}

fn with_flag(url: &str) -> String {
    format!(
        "{url}{}pgbouncer=true",
        if url.contains('?') { '&' } else { '?' }
    )
}

/// The deployment check names each thing wrong, and nothing for the
/// documented deployment (a login that is only a member of commerce_app,
/// migrations run by the owner, the pooler declared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_names_what_is_wrong() {
    use commerce_postgres::{Finding, check};
    let factory = PgFactory::through_pooler(ReservationStrategy::default()).await;
    if skip(&factory) {
        return;
    }
    let admin_url = factory.admin_url().unwrap().to_owned();
    let (name, admin) = factory.fresh_database().await;
    let login = "commerce_login";

    // The documented deployment: nothing to fix, direct or pooled.
    let direct = url_for(&admin_url, &name, login);
    let report = check(&direct, None).await.unwrap();
    assert!(report.is_ok(), "{report}");
    let pooled = url_for(factory.pooler_url().unwrap(), &name, login);
    let report = check(&with_flag(&pooled), None).await.unwrap();
    assert!(report.is_ok() && report.pooled, "{report}");
    // The pooler undeclared.
    let report = check(&pooled, None).await.unwrap();
    assert!(
        matches!(
            report.findings.as_slice(),
            [Finding::PoolerWithoutFlag {
                server_port: 5432,
                ..
            }]
        ),
        "{report}"
    );

    // A superuser login, switching to commerce_app or not.
    let superuser = url_for(&admin_url, &name, "postgres");
    for role in [None, Some(APP_ROLE)] {
        let report = check(&superuser, role).await.unwrap();
        assert!(
            report.findings.contains(&Finding::LoginIsSuperuser {
                role: "postgres".into()
            }),
            "{report}"
        );
        assert_eq!(report.findings.len(), 1, "{report}");
    }

    // A login with BYPASSRLS, and one that owns a table.
    sqlx::raw_sql(
        "DO $$ BEGIN CREATE ROLE commerce_check_bypass LOGIN BYPASSRLS IN ROLE commerce_app; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         DO $$ BEGIN CREATE ROLE commerce_check_owner LOGIN IN ROLE commerce_app; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         ALTER TABLE promotions OWNER TO commerce_check_owner",
    )
    .execute(&admin)
    .await
    .unwrap();
    let report = check(&url_for(&admin_url, &name, "commerce_check_bypass"), None)
        .await
        .unwrap();
    assert_eq!(
        report.findings,
        [Finding::LoginBypassesRls {
            role: "commerce_check_bypass".into()
        }],
        "{report}"
    );
    let report = check(&url_for(&admin_url, &name, "commerce_check_owner"), None)
        .await
        .unwrap();
    assert_eq!(
        report.findings,
        [Finding::LoginOwnsTables {
            role: "commerce_check_owner".into(),
            tables: vec!["promotions".into()]
        }],
        "{report}"
    );
    sqlx::raw_sql("ALTER TABLE promotions OWNER TO postgres")
        .execute(&admin)
        .await
        .unwrap();

    // Row-level security not forced, a grant revoked, a migration missing.
    sqlx::raw_sql(
        "ALTER TABLE carts NO FORCE ROW LEVEL SECURITY; \
         REVOKE DELETE ON orders FROM commerce_app; \
         DELETE FROM _sqlx_migrations WHERE version = 10",
    )
    .execute(&admin)
    .await
    .unwrap();
    let report = check(&direct, None).await.unwrap();
    assert_eq!(
        report.findings,
        [
            Finding::RowLevelSecurityNotForced {
                table: "carts".into()
            },
            Finding::MissingGrant {
                object: "orders".into(),
                privilege: "DELETE".into()
            },
            Finding::MigrationsBehind { missing: vec![10] },
        ],
        "{report}"
    );
    admin.close().await;

    // A database never migrated.
    let mut server = PgConnection::connect(&admin_url).await.unwrap();
    let bare = format!("{name}_bare");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {bare}")))
        .execute(&mut server)
        .await
        .unwrap();
    let report = check(&url_for(&admin_url, &bare, login), None)
        .await
        .unwrap();
    assert!(
        matches!(report.findings.as_slice(), [Finding::MigrationsBehind { missing }] if missing.len() == commerce_postgres::MIGRATOR.iter().count()),
        "{report}"
    );
}

/// A login that is a `NOINHERIT` member of commerce_app may not run the
/// one-call functions itself (`EXECUTE` is checked as a statement starts,
/// before the role switch): with `set_role` the store sends them inside a
/// transaction that switched first, and every path works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noinherit_login_switching_role_runs_the_hot_paths() {
    let factory = PgFactory::from_env(ReservationStrategy::default()).await;
    if skip(&factory) {
        return;
    }
    let admin_url = factory.admin_url().unwrap().to_owned();
    let (name, admin) = factory.fresh_database().await;
    sqlx::raw_sql(
        "DO $$ BEGIN CREATE ROLE commerce_check_noinherit LOGIN NOINHERIT IN ROLE commerce_app; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let store = PgStore::connect_with(
        &url_for(&admin_url, &name, "commerce_check_noinherit"),
        PgStoreOptions {
            set_role: Some(APP_ROLE.to_owned()),
            ..PgStoreOptions::default()
        },
    )
    .await
    .unwrap();
    let h = Harness::new(&Fixed(Arc::new(store))).await;
    let sku = h.stocked("GPU-NOINHERIT", 10_000, 2).await;
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    h.shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    let priced = h.shop.price_cart(cart.id).await.unwrap();
    assert_eq!(priced.lines.len(), 1);
    h.shop
        .checkout(cart.id, &"noinherit-1".parse().unwrap())
        .await
        .unwrap();
}

/// Timeouts past what PostgreSQL takes are refused at start, not on every
/// transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_postgresql_cannot_take_is_refused_at_start() {
    let factory = PgFactory::from_env(ReservationStrategy::default()).await;
    if skip(&factory) {
        return;
    }
    let refused = PgStore::connect_with(
        factory.admin_url().unwrap(),
        PgStoreOptions {
            set_role: Some(APP_ROLE.to_owned()),
            lock_timeout: Duration::MAX,
            ..PgStoreOptions::default()
        },
    )
    .await;
    match refused {
        Err(Error::InvalidConfig(message)) => {
            assert!(message.contains("lock_timeout"), "{message}")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// The grouped strategy through the pooler, where a group's call runs
/// inside an explicit transaction: racers for a few units get exactly that
/// many winners, the group's answers each their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_reservations_through_the_pooler_never_oversell() {
    let factory = PgFactory::through_pooler(ReservationStrategy::Grouped).await;
    if skip(&factory) {
        return;
    }
    commerce_core::testkit::five_units_fifty_racers_have_five_winners(&factory).await;
    commerce_core::testkit::a_thousand_racers_for_fifty_units_have_fifty_winners(&factory).await;
}
