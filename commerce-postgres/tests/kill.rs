//! A process killed with `kill -9` in the middle of a stream of group
//! reservations leaves the database consistent: PostgreSQL rolls back the
//! transactions its connections had open, and a group is one transaction,
//! so the SKU's counter equals its holds, every hold has its cart line
//! (and every line on the SKU its hold), and nothing is half-written.
//!
//! The test runs itself as the child: `stream_group_reservations_until_killed`
//! does nothing unless `COMMERCE_KILL_CHILD_URL` is set, in which case it
//! reserves from 32 tasks until it is killed.

// Helpers outside #[test] fns fail the test on error, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use commerce_core::testkit::{Harness, StoreFactory};
use commerce_core::{Commerce, Currency, Error, Quantity, Sku, Store, TenantId};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{APP_ROLE, PgStore, PgStoreOptions, ReservationStrategy};
use sqlx::ConnectOptions as _;
use sqlx::postgres::PgConnectOptions;

const CHILD_URL: &str = "COMMERCE_KILL_CHILD_URL";
const CHILD_SKU: &str = "COMMERCE_KILL_CHILD_SKU";
const TASKS: usize = 32;

/// Hands out one store.
struct Fixed(Arc<PgStore>);

#[async_trait]
impl StoreFactory for Fixed {
    async fn new_store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
}

async fn open(url: &str) -> PgStore {
    PgStore::connect_with(
        url,
        PgStoreOptions {
            strategy: ReservationStrategy::Grouped,
            set_role: Some(APP_ROLE.to_owned()),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(60),
            max_waiting: 1_000_000,
            ..PgStoreOptions::default()
        },
    )
    .await
    .unwrap()
}

/// The child: reserves 1 to 3 units (and now and then lets a line go) on
/// one hot SKU from 32 tasks, forever; prints `ready` once 200 have been
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_group_reservations_until_killed() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let sku = Sku::parse(std::env::var(CHILD_SKU).unwrap()).unwrap();
    let store: Arc<dyn Store> = Arc::new(open(&url).await);
    let commerce = Commerce::builder().shared_store(store).build().unwrap();
    let shop = commerce.shop(&TenantId::parse("shop-a").unwrap());
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let shop = shop.clone();
        let sku = sku.clone();
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0usize.. {
                let cart = shop.create_cart(Currency::AUD).await.unwrap();
                let units = u32::try_from((task + n) % 3).unwrap() + 1;
                match shop
                    .set_line(cart.id, &sku, Quantity::new(units).unwrap())
                    .await
                {
                    Ok(_) | Err(Error::InsufficientStock { .. }) => {}
                    Err(other) => panic!("a reservation failed: {other}"),
                }
                if n % 5 == 0 {
                    shop.set_line(cart.id, &sku, Quantity::ZERO).await.unwrap();
                }
                if answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 200 {
                    println!("ready");
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_group_reservations_leaves_the_database_consistent() {
    let factory = PgFactory::from_env(ReservationStrategy::Grouped).await;
    if let Some(reason) = factory.unavailable() {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return;
    }
    let (name, admin) = factory.fresh_database().await;
    let url = factory
        .admin_url()
        .unwrap()
        .parse::<PgConnectOptions>()
        .unwrap()
        .database(&name)
        .to_url_lossy()
        .to_string();
    let store = Arc::new(open(&url).await);
    let h = Harness::new(&Fixed(store.clone())).await;
    // Enough stock that the child never runs out, and little enough that
    // the counter is checked against it.
    let sku = h.stocked("KILL-HOT", 1_000, 1_000_000).await;

    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "stream_group_reservations_until_killed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_URL, &url)
            .env(CHILD_SKU, sku.as_str())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains("ready"))
        });
        let ready = tokio::time::timeout(Duration::from_secs(120), ready)
            .await
            .expect("the child never got going")
            .unwrap();
        assert!(ready, "round {round}: the child ended before it was ready");
        // Mid-stream: groups are being written as it dies.
        tokio::time::sleep(Duration::from_millis(300 + 200 * round)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // The killed connections' transactions are rolled back once their
        // backends notice; wait for them to go.
        for _ in 0..100 {
            let others: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() \
                 AND usename IS NOT NULL AND state <> 'idle'",
            )
            .bind(&name)
            .fetch_one(&admin)
            .await
            .unwrap();
            if others == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let report = store
            .reconcile(&TenantId::parse("shop-a").unwrap(), false)
            .await
            .unwrap();
        assert!(
            report.is_clean(),
            "round {round}: drift after kill -9: {report:?}"
        );
        let (held, on_hand, holds): (i32, i32, i64) = sqlx::query_as(
            "SELECT s.held, s.on_hand, (SELECT count(*) FROM reservations r \
               WHERE r.tenant_id = s.tenant_id AND r.sku = s.sku) \
             FROM skus s WHERE s.tenant_id = 'shop-a' AND s.sku = $1",
        )
        .bind(sku.as_str())
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(holds > 0, "round {round}: the child made no reservation");
        assert!(
            held <= on_hand,
            "round {round}: oversold: {held} > {on_hand}"
        );
        let unmatched: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ( \
               (SELECT cart_id, quantity FROM reservations WHERE tenant_id = 'shop-a' AND sku = $1 \
                EXCEPT SELECT cart_id, quantity FROM cart_lines WHERE tenant_id = 'shop-a' AND sku = $1) \
               UNION ALL \
               (SELECT cart_id, quantity FROM cart_lines WHERE tenant_id = 'shop-a' AND sku = $1 \
                EXCEPT SELECT cart_id, quantity FROM reservations WHERE tenant_id = 'shop-a' AND sku = $1) \
             ) AS unmatched",
        )
        .bind(sku.as_str())
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(
            unmatched, 0,
            "round {round}: holds and cart lines disagree after kill -9 ({holds} holds)"
        );
    }
}
