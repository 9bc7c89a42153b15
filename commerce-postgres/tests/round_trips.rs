//! Round trips and transactions per use case, counted on the wire.
//!
//! The store talks to PostgreSQL through a small TCP proxy in this test
//! that reads the frontend protocol: every `Sync` (the end of an extended
//! query) and every simple `Query` is one round trip, and every `BEGIN` one
//! transaction. The ceilings below are today's figures: a change that adds
//! a round trip to the hot path fails here.

// Helpers outside #[test] fns fail the test on error, like the tests do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use commerce_core::testkit::StoreFactory;
use commerce_core::{
    Category, Commerce, Currency, IdempotencyKey, Money, NewProduct, Quantity, Shop, Sku,
    TaxCategory, TenantId, Variant,
};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{APP_ROLE, PgStore, PgStoreOptions, ReservationStrategy};
use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy saw the clients send.
#[derive(Default)]
struct Wire {
    round_trips: AtomicU64,
    transactions: AtomicU64,
}

impl Wire {
    fn take(&self) -> (u64, u64) {
        (
            self.round_trips.swap(0, Ordering::SeqCst),
            self.transactions.swap(0, Ordering::SeqCst),
        )
    }
}

/// Reads the frontend messages of one connection as they pass.
struct Counter {
    wire: Arc<Wire>,
    buffer: Vec<u8>,
    started: bool,
}

impl Counter {
    fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        loop {
            // The startup message has no type byte; every later one does.
            let header = usize::from(self.started);
            if self.buffer.len() < header + 4 {
                return;
            }
            let length = u32::from_be_bytes(self.buffer[header..header + 4].try_into().unwrap());
            let total = header + length as usize;
            if self.buffer.len() < total {
                return;
            }
            let message: Vec<u8> = self.buffer.drain(..total).collect();
            if !self.started {
                self.started = true;
                continue;
            }
            let body = &message[5..];
            if std::env::var_os("ROUND_TRIPS_TRACE").is_some() {
                eprintln!(
                    "> {} {}",
                    message[0] as char,
                    String::from_utf8_lossy(body)
                        .chars()
                        .take(90)
                        .collect::<String>()
                );
            }
            match message[0] {
                b'S' => {
                    self.wire.round_trips.fetch_add(1, Ordering::SeqCst);
                }
                b'Q' => {
                    self.wire.round_trips.fetch_add(1, Ordering::SeqCst);
                    self.count_begin(body);
                }
                // Parse: the statement's name, NUL, then its text.
                b'P' => {
                    if let Some(end) = body.iter().position(|b| *b == 0) {
                        self.count_begin(&body[end + 1..]);
                    }
                }
                _ => {}
            }
        }
    }

    fn count_begin(&self, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        if text.trim_start().to_ascii_uppercase().starts_with("BEGIN") {
            self.wire.transactions.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A proxy to `upstream` on a local port; its address.
async fn proxy(upstream: String, wire: Arc<Wire>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let mut counter = Counter {
                wire: wire.clone(),
                buffer: Vec::new(),
                started: false,
            };
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 16 * 1024];
                while let Ok(n) = client_read.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    counter.feed(&chunk[..n]);
                    if server_write.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            });
        }
    });
    address
}

/// A shop on a fresh database, its store connected through the proxy with
/// one connection (so nothing runs in parallel with what is counted).
async fn shop(strategy: ReservationStrategy) -> Option<(Shop, Arc<Wire>)> {
    let factory = PgFactory::from_env(strategy).await;
    if let Some(reason) = factory.unavailable() {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
        return None;
    }
    let (name, admin) = factory.fresh_database().await;
    admin.close().await;
    let options: PgConnectOptions = factory.admin_url().unwrap().parse().unwrap();
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let wire = Arc::new(Wire::default());
    let address = proxy(upstream, wire.clone()).await;
    // Trust authentication, as the test servers use: no password to carry.
    let url = format!(
        "postgres://{}@{address}/{name}?sslmode=disable",
        options.get_username()
    );
    let store = PgStore::connect_with(
        &url,
        PgStoreOptions {
            strategy,
            set_role: Some(APP_ROLE.to_owned()),
            max_connections: 1,
            ..PgStoreOptions::default()
        },
    )
    .await
    .unwrap();
    let commerce = Commerce::builder()
        .shared_store(Arc::new(store))
        .build()
        .unwrap();
    Some((
        commerce.shop(&TenantId::parse("round-trips").unwrap()),
        wire,
    ))
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

async fn stocked(shop: &Shop, sku: &str) -> Sku {
    let sku = Sku::parse(sku).unwrap();
    shop.add_product(NewProduct {
        name: format!("Item {sku}"),
        category: Category::parse("hardware").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        variants: vec![Variant::new(sku.clone(), Money::new(1_000, Currency::AUD))],
        published: true,
    })
    .await
    .unwrap();
    shop.receive_stock(&sku, qty(1_000), None).await.unwrap();
    sku
}

/// The round trips and transactions of `set_line`, `price_cart` and
/// `checkout` on a cart of `lines` lines, each measured after the same call
/// on another cart (so statements are prepared and the connection is open).
async fn measure(shop: &Shop, wire: &Wire, skus: &[Sku], key: &str) -> [(u64, u64); 3] {
    let mut figures = [(0, 0); 3];
    for round in 0..2 {
        let cart = shop.create_cart(Currency::AUD).await.unwrap();
        for sku in &skus[1..] {
            shop.set_line(cart.id, sku, qty(1)).await.unwrap();
        }
        wire.take();
        shop.set_line(cart.id, &skus[0], qty(1)).await.unwrap();
        figures[0] = wire.take();
        shop.price_cart(cart.id).await.unwrap();
        figures[1] = wire.take();
        let key = IdempotencyKey::parse(format!("{key}-{round}")).unwrap();
        shop.checkout(cart.id, &key).await.unwrap();
        figures[2] = wire.take();
    }
    figures
}

/// Counts the use cases on a store with `strategy`; the figures.
async fn count(strategy: ReservationStrategy) -> Option<([(u64, u64); 3], [(u64, u64); 3])> {
    let (shop, wire) = shop(strategy).await?;
    let mut skus = Vec::new();
    for i in 0..5 {
        skus.push(stocked(&shop, &format!("RT-{i}")).await);
    }
    let one = measure(&shop, &wire, &skus[..1], "one").await;
    let five = measure(&shop, &wire, &skus, "five").await;
    eprintln!(
        "{strategy:?}: round trips (transactions): set_line {} ({}); \
         price_cart 1 line {} ({}), 5 lines {} ({}); checkout 1 line {} ({}), 5 lines {} ({})",
        five[0].0,
        five[0].1,
        one[1].0,
        one[1].1,
        five[1].0,
        five[1].1,
        one[2].0,
        one[2].1,
        five[2].0,
        five[2].1
    );
    // Setting a line costs the same on any cart.
    assert_eq!(one[0], five[0], "set_line costs the same on any cart");
    Some((one, five))
}

// The round trips of `set_line` with the single-statement strategy (as
// with the default, grouped one for a reservation alone): one call of
// `commerce_set_line` outside any explicit transaction (no `BEGIN`: the
// call is its own transaction); then sqlx's ping as the connection goes
// back to the pool, after the caller has its answer.
#[tokio::test]
async fn set_line_is_one_round_trip() {
    let Some((_, five)) = count(ReservationStrategy::SingleStatement).await else {
        return;
    };
    assert_eq!(five[0], (2, 0), "set_line: (round trips, BEGINs)");
}

#[tokio::test]
async fn set_line_is_one_transaction_with_the_advisory_lock_too() {
    let Some((_, five)) = count(ReservationStrategy::AdvisoryLock).await else {
        return;
    };
    assert_eq!(five[0].1, 1, "set_line runs one transaction");
    assert!(five[0].0 <= 10, "set_line: {} round trips", five[0].0);
}

// Pricing reads everything it needs (the cart, its lines' products, the
// settings, the promotions and their usage) in one call of
// `commerce_pricing_read`, and checkout turns every hold into an
// allocation in two statements: both cost the same on a cart of one line
// as on a cart of five (`price_cart` one round trip and sqlx's ping, no
// explicit transaction; `checkout` 26 round trips in 3 transactions, where
// it took 40 in 7 before the pricing read).
#[tokio::test]
async fn pricing_and_checkout_cost_the_same_whatever_the_lines() {
    let Some((one, five)) = count(ReservationStrategy::SingleStatement).await else {
        return;
    };
    assert_eq!(one[1], five[1], "price_cart: {one:?} {five:?}");
    assert_eq!(one[2], five[2], "checkout: {one:?} {five:?}");
    assert_eq!(five[1], (2, 0), "price_cart: (round trips, BEGINs)");
    assert!(five[2].0 <= 26 && five[2].1 <= 3, "checkout: {five:?}");
}

/// 64 reservations of one SKU at once, on a store with one connection: the
/// first runs alone and the others wait for it, then go as one group, each
/// group one round trip (one call of `commerce_set_lines`, its own
/// transaction), so a handful of round trips answer all 64. Each request keeps its own
/// answer: four carts priced in another currency are refused with
/// `CurrencyMismatch` and a cart that does not exist with `NotFound`, in
/// the same groups as the 59 that hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_reservations_share_transactions_and_keep_their_own_answers() {
    let Some((shop, wire)) = shop(ReservationStrategy::Grouped).await else {
        return;
    };
    let sku = stocked(&shop, "RT-GROUP").await;
    let mut carts = Vec::new();
    for i in 0..64 {
        let currency = if i % 16 == 5 {
            Currency::USD
        } else {
            Currency::AUD
        };
        carts.push(shop.create_cart(currency).await.unwrap().id);
    }
    carts[63] = commerce_core::CartId::new();
    wire.take();
    let barrier = Arc::new(tokio::sync::Barrier::new(carts.len()));
    let tasks: Vec<_> = carts
        .iter()
        .map(|&cart| {
            let shop = shop.clone();
            let sku = sku.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                shop.set_line(cart, &sku, qty(1)).await
            })
        })
        .collect();
    let mut held = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(cart) => {
                assert_eq!(cart.lines.len(), 1);
                held += 1;
            }
            Err(commerce_core::Error::CurrencyMismatch { .. }) => assert_eq!(i % 16, 5),
            Err(commerce_core::Error::NotFound { .. }) => assert_eq!(i, 63),
            Err(other) => panic!("request {i}: {other}"),
        }
    }
    let (round_trips, transactions) = wire.take();
    eprintln!("64 grouped reservations: {round_trips} round trips, {transactions} BEGINs");
    assert_eq!(held, 59);
    assert!(
        round_trips <= 8,
        "64 reservations of one SKU took {round_trips} round trips"
    );
    assert_eq!(
        transactions, 0,
        "a group is one call, not an explicit transaction"
    );
    let level = shop.stock(&sku).await.unwrap();
    assert_eq!(level.reserved, 59);
}
