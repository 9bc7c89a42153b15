//! The routers over real HTTP on an ephemeral port, on the in-memory store
//! and on PostgreSQL (each scenario on a fresh store).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failing test"
)]

use std::sync::Arc;

use axum::Router;
use commerce_core::testkit::{InMemoryFactory, StoreFactory};
use commerce_core::{
    Clock, Commerce, Currency, ManualClock, Money, PaymentEvent, PaymentEventId, PaymentEventKind,
    Sku, TenantId, TestGateway,
};
use commerce_http::{CommerceHttp, TenantResolver};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// Where [`World::with_path_tenants`] nests the storefront and the admin
/// API.
const PATH_STOREFRONT: &str = "/s/{store}/api/store";
const PATH_ADMIN: &str = "/s/{store}/api/admin";

/// A service with the storefront at `/api/store` (tenant from the
/// `x-tenant` header), the webhook at `/webhooks/payments`, and health.
#[derive(Clone)]
struct World {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    commerce: Commerce,
    gateway: TestGateway,
    clock: ManualClock,
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Value,
}

impl World {
    async fn start(factory: &dyn StoreFactory) -> Self {
        Self::on(
            factory.new_store().await,
            ManualClock::at_unix(1_767_225_600),
            TestGateway::default(),
        )
        .await
    }

    /// A service on `store`: a second one on the same store is a second
    /// instance of the same shop.
    async fn on(
        store: Arc<dyn commerce_core::Store>,
        clock: ManualClock,
        gateway: TestGateway,
    ) -> Self {
        Self::serve(
            store,
            clock,
            gateway,
            TenantResolver::Header("x-tenant".into()),
            |http| {
                Router::new()
                    .nest(
                        "/api/store",
                        http.storefront()
                            .layer(commerce_http::cors(&["https://shop.example"])),
                    )
                    .nest("/api/admin", http.admin())
                    .merge(http.webhooks("/webhooks/payments"))
                    .merge(http.health())
            },
        )
        .await
    }

    /// A service whose storefront and admin routers are nested under a
    /// path parameter, `/s/{store}/api/store` and `/s/{store}/api/admin`,
    /// the storefront's tenant read from it
    /// (`TenantResolver::PathParam("store")`).
    async fn with_path_tenants(factory: &dyn StoreFactory) -> Self {
        Self::serve(
            factory.new_store().await,
            ManualClock::at_unix(1_767_225_600),
            TestGateway::default(),
            TenantResolver::PathParam("store".into()),
            |http| {
                Router::new()
                    .nest(PATH_STOREFRONT, http.storefront())
                    .nest(PATH_ADMIN, http.admin())
                    .merge(http.webhooks("/webhooks/payments"))
            },
        )
        .await
    }

    /// Serves the router `app` builds over a service on `store` whose
    /// storefront resolves tenants with `tenants`.
    async fn serve(
        store: Arc<dyn commerce_core::Store>,
        clock: ManualClock,
        gateway: TestGateway,
        tenants: TenantResolver,
        app: impl FnOnce(&CommerceHttp) -> Router,
    ) -> Self {
        let commerce = Commerce::builder()
            .shared_store(store)
            .gateway(gateway.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let http = CommerceHttp::builder(commerce.clone())
            .tenants(tenants)
            .poll_interval(std::time::Duration::from_millis(50))
            .build();
        let app = app(&http).layer(commerce_http::recommended_layers());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build(connector),
            commerce,
            gateway,
            clock,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        tenant: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("x-tenant", tenant)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Opens the event stream at `path` (with `Last-Event-ID: after` when
    /// given).
    async fn stream(&self, path: &str, after: Option<u32>) -> EventStream {
        let after = after.map(|after| after.to_string());
        let headers: Vec<(&str, &str)> = after
            .as_deref()
            .map(|after| ("last-event-id", after))
            .into_iter()
            .collect();
        self.stream_with(path, &headers).await
    }

    /// An SSE stream of `path` for shop-a with `headers`.
    async fn stream_with(&self, path: &str, headers: &[(&str, &str)]) -> EventStream {
        let mut request = Request::builder()
            .uri(format!("{}{path}", self.base))
            .header("x-tenant", "shop-a")
            .header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        EventStream {
            status: response.status(),
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// Places an order for one unit of `sku` (priced `total`) over HTTP.
    /// `POST /carts/{cart}/checkout` with `key` and `body`.
    async fn checkout(&self, cart: &str, key: &str, body: Value) -> Answer {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let headers: &[(&str, &str)] = if key.is_empty() {
            &[]
        } else {
            &[("idempotency-key", key)]
        };
        self.send(
            Method::POST,
            &format!("/api/store/carts/{cart}/checkout"),
            "shop-a",
            headers,
            body,
        )
        .await
    }

    async fn place(&self, sku: &Sku, total: i64, key: &str) -> commerce_core::OrderId {
        let cart = self.new_cart().await;
        self.set_line(&cart, sku, 1).await;
        let placed = self
            .checkout(
                &cart,
                key,
                json!({"expected_total": {"amount": total, "currency": "AUD"}}),
            )
            .await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
        placed.body["order"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Delivers a signed payment webhook for `order` of `total`.
    async fn pay(&self, order: commerce_core::OrderId, total: i64, id: &str) -> Answer {
        let event = PaymentEvent {
            id: PaymentEventId::parse(id).unwrap(),
            tenant: TenantId::parse("shop-a").unwrap(),
            order,
            kind: PaymentEventKind::Succeeded {
                amount: Money::new(total, Currency::AUD),
                payment_ref: Some(format!("pay_{id}")),
            },
        };
        let request = self.gateway.webhook(&event, self.clock.now());
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send(
            Method::POST,
            "/webhooks/payments",
            "",
            &headers,
            request.body().to_vec(),
        )
        .await
    }

    /// PUTs `len` bytes of JSON whitespace to `path` over a raw socket and
    /// returns the status and the response head, whether or not the server
    /// read the whole body.
    async fn oversized_put(&self, path: &str, len: usize) -> (u16, String) {
        self.oversized("PUT", path, "", len).await
    }

    /// `method` with `len` bytes of JSON whitespace to `path` (and the
    /// `extra` header lines, each ending in CRLF) over a raw socket: the
    /// status and the response head.
    async fn oversized(&self, method: &str, path: &str, extra: &str, len: usize) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nx-tenant: shop-a\r\n{extra}\
             content-type: application/json\r\ncontent-length: {len}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(&vec![b' '; len]).await;
        let mut response = vec![0_u8; 4096];
        let read = stream.read(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response[..read]).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> Answer {
        self.send(method, path, "shop-a", &[], body.to_string().into_bytes())
            .await
    }

    /// A product with one SKU, `on_hand` units, in tenant `shop-a`.
    async fn stocked(&self, sku: &str, price: i64, on_hand: u32) -> Sku {
        let shop = self.commerce.shop(&TenantId::parse("shop-a").unwrap());
        commerce_core::testkit::Harness::stocked_in(&shop, sku, price, on_hand).await
    }

    async fn new_cart(&self) -> String {
        let created = self
            .json(Method::POST, "/api/store/carts", json!({"currency": "AUD"}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["cart"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            created.headers["location"].to_str().unwrap(),
            format!("/api/store/carts/{id}")
        );
        id
    }

    async fn set_line(&self, cart: &str, sku: &Sku, quantity: u32) -> Answer {
        self.json(
            Method::PUT,
            &format!("/api/store/carts/{cart}/lines/{sku}"),
            json!({ "quantity": quantity }),
        )
        .await
    }
}

/// A Server-Sent Events response, read frame by frame.
struct EventStream {
    status: StatusCode,
    body: hyper::body::Incoming,
    buffer: String,
}

/// One SSE frame: its id, event name and data.
#[derive(Debug)]
struct Frame {
    id: Option<u32>,
    raw_id: String,
    event: String,
    data: Value,
}

impl EventStream {
    /// The next frame (keep-alive comments skipped), or `None` when the
    /// stream ends; fails after 10 seconds without one.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: None,
                    raw_id: String::new(),
                    event: String::new(),
                    data: Value::Null,
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id:") {
                        frame.id = id.trim().parse().ok();
                        frame.raw_id = id.trim().to_owned();
                        any = true;
                    } else if let Some(event) = line.strip_prefix("event:") {
                        frame.event = event.trim().to_owned();
                        any = true;
                    } else if let Some(data) = line.strip_prefix("data:") {
                        frame.data = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                        any = true;
                    }
                }
                if any {
                    return Some(frame);
                }
                continue;
            }
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), self.body.frame())
                .await
                .expect("a frame within 10 seconds");
            match next {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => return None,
            }
        }
    }
}

fn assert_problem(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.headers["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert_eq!(answer.body["code"], code, "{}", answer.body);
    assert_eq!(answer.body["status"], status.as_u16());
}

/// 200 buyers each PUT the last unit into their own cart at once: exactly
/// one 200; 199 × 409 `insufficient_stock` with `available: 0`.
async fn last_unit_race_has_one_winner(factory: &dyn StoreFactory) {
    const RACERS: usize = 200;
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-LAST", 115_000, 1).await;
    let mut carts = Vec::with_capacity(RACERS);
    for _ in 0..RACERS {
        carts.push(world.new_cart().await);
    }
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = carts
        .into_iter()
        .map(|cart| {
            let (world, sku, barrier) = (world.clone(), sku.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                world.set_line(&cart, &sku, 1).await
            })
        })
        .collect();
    let (mut won, mut refused) = (0, 0);
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.status == StatusCode::OK {
            assert_eq!(answer.body["reservations"][0]["quantity"], 1);
            won += 1;
        } else {
            assert_problem(&answer, StatusCode::CONFLICT, "insufficient_stock");
            assert_eq!(answer.body["available"], 0);
            assert_eq!(answer.body["sku"], "GPU-LAST");
            refused += 1;
        }
    }
    assert_eq!((won, refused), (1, RACERS - 1));
}

/// 20 checkouts of one cart with one `Idempotency-Key` at once: one 201
/// with `Location`, 19 × 200 with `Idempotent-Replayed: true`, one order.
async fn concurrent_checkouts_with_one_key_make_one_order(factory: &dyn StoreFactory) {
    const RACERS: usize = 20;
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-KEY", 50_000, 1).await;
    let cart = world.new_cart().await;
    let set = world.set_line(&cart, &sku, 1).await;
    let total = set.body["pricing"]["totals"]["grand_total"].clone();
    assert_eq!(total, json!({"amount": 50_000, "currency": "AUD"}));
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (world, cart, total, barrier) =
                (world.clone(), cart.clone(), total.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                world
                    .checkout(&cart, "checkout-1", json!({ "expected_total": total }))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut orders = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        let order = answer.body["order"]["id"].as_str().unwrap().to_owned();
        match answer.status {
            StatusCode::CREATED => {
                created += 1;
                assert_eq!(
                    answer.headers["location"].to_str().unwrap(),
                    format!("/api/store/orders/{order}")
                );
                assert!(answer.body["payment"]["redirect_url"].is_string());
            }
            StatusCode::OK => {
                assert_eq!(answer.headers["idempotent-replayed"], "true");
                assert_eq!(answer.body["created"], false);
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
        orders.push(order);
    }
    assert_eq!(created, 1);
    orders.dedup();
    assert_eq!(orders.len(), 1, "one order");
    let read = world
        .json(
            Method::GET,
            &format!("/api/store/orders/{}", orders[0]),
            Value::Null,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["status"], "awaiting_payment");
    assert_eq!(read.headers["cache-control"], "no-store");
}

/// Checkout at the wire: no key is 400, no expected total is 400, a total
/// other than the price is 409 with the new pricing, the same key for
/// another cart is 422.
async fn checkout_refusals_at_the_wire(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-REFUSE", 10_000, 2).await;
    let cart = world.new_cart().await;
    world.set_line(&cart, &sku, 1).await;
    let no_key = world.checkout(&cart, "", json!({})).await;
    assert_problem(&no_key, StatusCode::BAD_REQUEST, "idempotency_key_missing");
    let no_total = world.checkout(&cart, "k1", json!({})).await;
    assert_problem(&no_total, StatusCode::BAD_REQUEST, "invalid_parameter");
    assert_eq!(no_total.body["errors"][0]["pointer"], "/expected_total");
    let wrong = world
        .checkout(
            &cart,
            "k1",
            json!({"expected_total": {"amount": 9_000, "currency": "AUD"}}),
        )
        .await;
    assert_problem(&wrong, StatusCode::CONFLICT, "price_changed");
    assert_eq!(wrong.body["actual"]["amount"], 10_000);
    assert_eq!(
        wrong.body["pricing"]["totals"]["grand_total"]["amount"],
        10_000
    );
    let right = json!({"expected_total": {"amount": 10_000, "currency": "AUD"}});
    let placed = world.checkout(&cart, "k1", right.clone()).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let other = world.new_cart().await;
    world.set_line(&other, &sku, 1).await;
    let reused = world.checkout(&other, "k1", right).await;
    assert_problem(
        &reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert!(
        reused.body.get("order").is_none(),
        "another cart's order is not disclosed"
    );
}

/// A payment webhook delivered 3 times in a row, then 10 times at once:
/// 200 every time, applied once.
async fn webhook_repeats_apply_once(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-HOOK", 20_000, 1).await;
    let order = world.place(&sku, 20_000, "hook").await;
    for _ in 0..3 {
        let answer = world.pay(order, 20_000, "evt_wire").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let barrier = Arc::new(Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (world, barrier) = (world.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                world.pay(order, 20_000, "evt_wire").await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, StatusCode::OK);
    }
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let events = shop.order_events(order).await.unwrap();
    let received = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                commerce_core::OrderEventKind::PaymentReceived { .. }
            )
        })
        .count();
    assert_eq!(received, 1, "applied once");
    assert_eq!(shop.stock(&sku).await.unwrap().on_hand, 0);
    let forged = world
        .send(
            Method::POST,
            "/webhooks/payments",
            "",
            &[("test-signature", "t=1,v1=00")],
            b"{}".to_vec(),
        )
        .await;
    assert_problem(&forged, StatusCode::BAD_REQUEST, "webhook_rejected");
}

/// A cart of tenant A is 404 through tenant B's requests, and an unknown
/// tenant is 404.
async fn tenants_are_isolated_at_the_wire(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let cart = world.new_cart().await;
    let path = format!("/api/store/carts/{cart}");
    let own = world.send(Method::GET, &path, "shop-a", &[], vec![]).await;
    assert_eq!(own.status, StatusCode::OK);
    let other = world.send(Method::GET, &path, "shop-b", &[], vec![]).await;
    assert_problem(&other, StatusCode::NOT_FOUND, "not_found");
    let nobody = world
        .send(Method::GET, &path, "NOT A TENANT", &[], vec![])
        .await;
    assert_problem(&nobody, StatusCode::NOT_FOUND, "not_found");
}

/// Hostile input gets a problem and changes nothing: malformed JSON,
/// unknown fields, negative and huge quantities, an oversized body,
/// invalid UTF-8, an overlong SKU, a malformed id, an unknown route.
async fn hostile_input_gets_problems(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-HOSTILE", 10_000, 5).await;
    let cart = world.new_cart().await;
    let line = format!("/api/store/carts/{cart}/lines/{sku}");
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{\"quantity\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            b"{\"quantity\": 1, \"price\": 0}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            b"{\"quantity\": -1}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            b"{\"quantity\": 99999999999}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            vec![0xff, 0xfe, b'{'],
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            b"{\"quantity\": 4000000000}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            b"{\"quantity\": 999999}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cart_limit",
        ),
        (
            b"{\"quantity\": 6}".to_vec(),
            StatusCode::CONFLICT,
            "insufficient_stock",
        ),
    ];
    for (body, status, code) in cases {
        let answer = world.send(Method::PUT, &line, "shop-a", &[], body).await;
        assert_problem(&answer, status, code);
    }
    // A 10 MB body is refused as soon as its length is known; the client
    // may still be writing, so this one goes over a raw socket.
    let (status, head) = world.oversized_put(&line, 10 * 1024 * 1024).await;
    assert_eq!(status, 413, "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    // The routes that read the raw body answer with the same problem.
    let checkout = format!("/api/store/carts/{cart}/checkout");
    for (path, extra) in [
        (checkout.as_str(), "idempotency-key: too-large\r\n"),
        ("/webhooks/payments", ""),
    ] {
        let (status, head) = world.oversized("POST", path, extra, 10 * 1024 * 1024).await;
        assert_eq!(status, 413, "{path}: {head}");
        assert!(head.contains("application/problem+json"), "{path}: {head}");
    }
    let quantity = world.set_line(&cart, &sku, 1).await;
    assert_eq!(quantity.status, StatusCode::OK);
    let long_sku = format!("/api/store/carts/{cart}/lines/{}", "X".repeat(300));
    let answer = world
        .json(Method::PUT, &long_sku, json!({"quantity": 1}))
        .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "invalid_parameter");
    let bad_id = world
        .json(Method::GET, "/api/store/carts/not-a-uuid", Value::Null)
        .await;
    assert_problem(&bad_id, StatusCode::NOT_FOUND, "not_found");
    let unknown = world
        .json(Method::GET, "/api/store/nothing-here", Value::Null)
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");
    let wrong_method = world
        .json(Method::DELETE, "/api/store/carts", Value::Null)
        .await;
    assert_problem(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    // Nothing but the one good line changed.
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let level = shop.stock(&sku).await.unwrap();
    assert_eq!((level.on_hand, level.reserved), (5, 1));
}

/// Catalog reads are cacheable with an ETag that answers 304; carts are
/// `no-store`; health and readiness answer.
async fn catalog_caching_and_health(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-CACHE", 10_000, 3).await;
    let list = world
        .json(Method::GET, "/api/store/products", Value::Null)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.headers["cache-control"],
        "public, s-maxage=60, stale-while-revalidate=600"
    );
    let etag = list.headers["etag"].to_str().unwrap().to_owned();
    let again = world
        .send(
            Method::GET,
            "/api/store/products",
            "shop-a",
            &[("if-none-match", &etag)],
            vec![],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let id = list.body["data"][0]["id"].as_str().unwrap().to_owned();
    let product = world
        .json(
            Method::GET,
            &format!("/api/store/products/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(product.body["availability"][0]["sku"], sku.as_str());
    assert_eq!(product.body["availability"][0]["available"], 3);
    assert_eq!(
        product.body["availability"][0].get("next_release_at"),
        None,
        "omitted while nothing holds the SKU"
    );
    let cart = world.new_cart().await;
    let read = world
        .json(
            Method::GET,
            &format!("/api/store/carts/{cart}"),
            Value::Null,
        )
        .await;
    assert_eq!(read.headers["cache-control"], "no-store");
    assert!(read.headers.contains_key("x-request-id"));
    for path in ["/healthz", "/readyz"] {
        let answer = world.send(Method::GET, path, "", &[], vec![]).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
}

/// An order's event stream: the log so far, then new events as they are
/// appended; a reconnect with `Last-Event-ID` gets exactly what it missed;
/// the stream ends after a final status and a reconnect is then 204.
async fn order_stream_replays_from_last_event_id(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-STREAM", 30_000, 1).await;
    let order = world.place(&sku, 30_000, "stream").await;
    let path = format!("/api/store/orders/{order}/events");
    let mut stream = world.stream(&path, None).await;
    assert_eq!(stream.status, StatusCode::OK);
    let placed = stream.next().await.unwrap();
    assert_eq!((placed.id, placed.event.as_str()), (Some(1), "placed"));
    let session = stream.next().await.unwrap();
    assert_eq!(
        (session.id, session.event.as_str()),
        (Some(2), "payment_session_created")
    );
    let paid = world.pay(order, 30_000, "evt_stream").await;
    assert_eq!(paid.status, StatusCode::OK);
    let received = stream.next().await.unwrap();
    assert_eq!(
        (received.id, received.event.as_str()),
        (Some(3), "payment_received")
    );
    assert_eq!(received.data["status"], "paid");
    drop(stream);

    let mut resumed = world.stream(&path, Some(2)).await;
    assert_eq!(
        resumed.next().await.unwrap().id,
        Some(3),
        "exactly what it missed"
    );
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    shop.refund_order(order).await.unwrap();
    let refund = resumed.next().await.unwrap();
    assert_eq!(refund.id, Some(4));
    assert_eq!(refund.data["status"], "refunded");
    let mut last = refund.id.unwrap();
    while let Some(frame) = resumed.next().await {
        last = frame.id.unwrap_or(last);
    }
    // The stream ended after the final status; a reconnect is told to stop.
    let after_end = world.stream(&path, Some(last)).await;
    assert_eq!(after_end.status, StatusCode::NO_CONTENT);
}

/// A product's availability stream: a snapshot, a frame when a cart
/// reserves the unit (saying when the hold lapses, `next_release_at`, as
/// the JSON answers do), and a frame when that hold lapses, which no write
/// announces.
async fn availability_stream_notices_a_lapse(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-LAPSE", 30_000, 1).await;
    let list = world
        .json(Method::GET, "/api/store/products", Value::Null)
        .await;
    let product = list.body["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/store/products/{product}/availability");
    let mut stream = world.stream(&path, None).await;
    let first = stream.next().await.unwrap();
    assert_eq!(first.data[0]["available"], 1);
    assert_eq!(
        first.data[0].get("next_release_at"),
        None,
        "nothing holds it"
    );
    let cart = world.new_cart().await;
    let line = world.set_line(&cart, &sku, 1).await;
    assert_eq!(line.status, StatusCode::OK, "{}", line.body);
    let expires_at = line.body["reservations"][0]["expires_at"].clone();
    // The stock and the next release are two reads: a poll between the
    // line's write and its commit may see one and not the other, and the
    // next poll catches up.
    let held = loop {
        let frame = stream.next().await.unwrap();
        if frame.data[0]["available"] == 0 {
            break frame;
        }
    };
    assert_eq!(held.data[0]["state"], "held");
    // 2026-01-01T00:00:00Z plus the default 15-minute reservation TTL.
    assert_eq!(held.data[0]["next_release_at"], "2026-01-01T00:15:00Z");
    assert_eq!(held.data[0]["next_release_at"], expires_at);
    let at: commerce_core::Timestamp = held.data[0]["next_release_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        at,
        world.clock.now() + std::time::Duration::from_secs(15 * 60)
    );

    // The JSON answers say the same.
    let now = world.json(Method::GET, &path, Value::Null).await;
    assert_eq!(now.status, StatusCode::OK);
    assert_eq!(now.body[0]["available"], 0);
    assert_eq!(now.body[0]["next_release_at"], "2026-01-01T00:15:00Z");
    let page = world
        .json(
            Method::GET,
            &format!("/api/store/products/{product}"),
            Value::Null,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.body["availability"][0]["next_release_at"],
        "2026-01-01T00:15:00Z"
    );

    world.clock.advance(std::time::Duration::from_secs(16 * 60));
    let lapsed = stream.next().await.unwrap();
    assert_eq!(lapsed.data[0]["available"], 1, "the lapse is noticed");
    assert_eq!(
        lapsed.data[0].get("next_release_at"),
        None,
        "a lapsed hold is not reported"
    );
}

/// Two instances of the service over one store: an order stream on one
/// sees the payment the other applied, and buyers split across both race
/// for the last unit: one wins.
async fn two_instances_share_one_store(
    first: Arc<dyn commerce_core::Store>,
    second: Arc<dyn commerce_core::Store>,
) {
    const RACERS: usize = 40;
    let clock = ManualClock::at_unix(1_767_225_600);
    let gateway = TestGateway::default();
    let a = World::on(first, clock.clone(), gateway.clone()).await;
    let b = World::on(second, clock, gateway).await;
    let sku = a.stocked("GPU-TWIN", 40_000, 2).await;
    let order = a.place(&sku, 40_000, "twin").await;
    let mut stream = b
        .stream(&format!("/api/store/orders/{order}/events"), Some(2))
        .await;
    assert_eq!(
        a.pay(order, 40_000, "evt_twin").await.status,
        StatusCode::OK
    );
    let received = stream.next().await.unwrap();
    assert_eq!(
        received.event, "payment_received",
        "seen by the other instance"
    );

    let mut carts = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        let world = if i % 2 == 0 { &a } else { &b };
        carts.push((world.clone(), world.new_cart().await));
    }
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = carts
        .into_iter()
        .map(|(world, cart)| {
            let (sku, barrier) = (sku.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                world.set_line(&cart, &sku, 1).await.status
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => won += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(won, 1, "one unit left, one winner across both instances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_in_memory() {
    let store: Arc<dyn commerce_core::Store> = Arc::new(commerce_core::InMemoryStore::new());
    two_instances_share_one_store(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgres() {
    let factory = commerce_postgres::testkit::PgFactory::from_env(
        commerce_postgres::ReservationStrategy::SingleStatement,
    )
    .await;
    if let Some(reason) = StoreFactory::unavailable(&factory) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED two_instances_on_postgres: {reason}"
        );
        return;
    }
    let (first, second) = factory.store_pair().await;
    two_instances_share_one_store(Arc::new(first), Arc::new(second)).await;
}

/// The admin API: 401 with `WWW-Authenticate` without a valid key, 403
/// naming the scope a key lacks; with the right scopes, products, stock,
/// promotions, orders and partial refunds; a key of one tenant never sees
/// another's orders.
async fn admin_api_behind_scoped_keys(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let full = shop
        .issue_api_key("ops", commerce_core::ApiScope::ALL)
        .await
        .unwrap();
    let catalog_only = shop
        .issue_api_key("catalog", [commerce_core::ApiScope::Catalog])
        .await
        .unwrap();
    let admin = |key: &str| format!("Bearer {key}");
    let call = |method: Method, path: String, key: String, body: Value| {
        let world = world.clone();
        async move {
            world
                .send(
                    method,
                    &path,
                    "",
                    &[("authorization", key.as_str())],
                    if body.is_null() {
                        vec![]
                    } else {
                        body.to_string().into_bytes()
                    },
                )
                .await
        }
    };
    let anonymous = world
        .send(Method::GET, "/api/admin/products", "", &[], vec![])
        .await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        anonymous.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = call(
        Method::GET,
        "/api/admin/products".into(),
        admin("ck_shop-a.0000000000000000.00"),
        Value::Null,
    )
    .await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");

    let product = json!({
        "name": "RTX 4090",
        "category": "gpu",
        "tax_category": "standard",
        "age_restricted": false,
        "variants": [{"sku": "GPU-4090", "options": {}, "price": {"amount": 250_000, "currency": "AUD"}}]
    });
    let created = call(
        Method::POST,
        "/api/admin/products".into(),
        admin(&catalog_only.key),
        product,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let forbidden = call(
        Method::POST,
        "/api/admin/stock/GPU-4090/receipts".into(),
        admin(&catalog_only.key),
        json!({"quantity": 2}),
    )
    .await;
    assert_problem(&forbidden, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(forbidden.body["required_scope"], "inventory");
    let received = call(
        Method::POST,
        "/api/admin/stock/GPU-4090/receipts".into(),
        admin(&full.key),
        json!({"quantity": 2, "note": "from a miner"}),
    )
    .await;
    assert_eq!(received.status, StatusCode::OK, "{}", received.body);
    assert_eq!(received.body["on_hand"], 2);
    // A receipt under a reference counts once, however often it is sent.
    for _ in 0..3 {
        let again = world
            .send(
                Method::POST,
                "/api/admin/stock/GPU-4090/receipts",
                "",
                &[
                    ("authorization", &admin(&full.key)),
                    ("idempotency-key", "delivery-7"),
                ],
                json!({"quantity": 3}).to_string().into_bytes(),
            )
            .await;
        assert_eq!(again.body["on_hand"], 5, "{}", again.body);
    }
    let counted = call(
        Method::PUT,
        "/api/admin/stock/GPU-4090".into(),
        admin(&full.key),
        json!({"on_hand": 2, "note": "stock count"}),
    )
    .await;
    assert_eq!(counted.body["on_hand"], 2, "{}", counted.body);

    let order = world
        .place(&Sku::parse("GPU-4090").unwrap(), 250_000, "admin")
        .await;
    world.pay(order, 250_000, "evt_admin").await;
    // A refund amount is tagged: {"type": "amount", "amount": minor units,
    // "currency": ...}.
    let partial = call(
        Method::POST,
        format!("/api/admin/orders/{order}/refunds"),
        admin(&full.key),
        json!({"id": "refund-a", "amount": {"type": "amount", "amount": 50_000, "currency": "AUD"}}),
    )
    .await;
    assert_eq!(partial.status, StatusCode::CREATED, "{}", partial.body);
    assert_eq!(partial.body["amount"]["amount"], 50_000);
    let too_much = call(
        Method::POST,
        format!("/api/admin/orders/{order}/refunds"),
        admin(&full.key),
        json!({"amount": {"type": "amount", "amount": 1_000_000, "currency": "AUD"}}),
    )
    .await;
    assert_problem(&too_much, StatusCode::CONFLICT, "refund_exceeds_refundable");
    assert_eq!(too_much.body["refundable"]["amount"], 200_000);
    let cancel_paid = call(
        Method::POST,
        format!("/api/admin/orders/{order}/cancel"),
        admin(&full.key),
        json!({"reason": "too late"}),
    )
    .await;
    assert_problem(&cancel_paid, StatusCode::CONFLICT, "invalid_transition");

    world.clock.advance(std::time::Duration::from_secs(1));
    let second = world
        .place(&Sku::parse("GPU-4090").unwrap(), 250_000, "admin-2")
        .await;
    let page = call(
        Method::GET,
        "/api/admin/orders?limit=1".into(),
        admin(&full.key),
        Value::Null,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.body["data"][0]["id"],
        second.to_string(),
        "newest first"
    );
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = call(
        Method::GET,
        format!("/api/admin/orders?limit=1&cursor={cursor}"),
        admin(&full.key),
        Value::Null,
    )
    .await;
    assert_eq!(rest.body["data"][0]["id"], order.to_string());
    assert!(rest.body["next_cursor"].is_null());
    let paid = call(
        Method::GET,
        "/api/admin/orders?status=paid".into(),
        admin(&full.key),
        Value::Null,
    )
    .await;
    assert_eq!(paid.body["data"].as_array().unwrap().len(), 1);
    let bad = call(
        Method::GET,
        "/api/admin/orders?cursor=nope".into(),
        admin(&full.key),
        Value::Null,
    )
    .await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "invalid_parameter");

    let other = world.commerce.shop(&TenantId::parse("shop-b").unwrap());
    let other_key = other
        .issue_api_key("b", commerce_core::ApiScope::ALL)
        .await
        .unwrap();
    let across = call(
        Method::GET,
        format!("/api/admin/orders/{order}"),
        admin(&other_key.key),
        Value::Null,
    )
    .await;
    assert_problem(&across, StatusCode::NOT_FOUND, "not_found");
    shop.revoke_api_key(&full.record.id).await.unwrap();
    let revoked = call(
        Method::GET,
        format!("/api/admin/orders/{order}"),
        admin(&full.key),
        Value::Null,
    )
    .await;
    assert_problem(&revoked, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// The storefront answers browsers of the configured origin only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_origin_only() {
    let world = World::start(&InMemoryFactory).await;
    let preflight = |origin: &'static str| {
        let world = world.clone();
        async move {
            world
                .send(
                    Method::OPTIONS,
                    "/api/store/carts",
                    "shop-a",
                    &[
                        ("origin", origin),
                        ("access-control-request-method", "POST"),
                        (
                            "access-control-request-headers",
                            "content-type,idempotency-key",
                        ),
                    ],
                    vec![],
                )
                .await
        }
    };
    let allowed = preflight("https://shop.example").await;
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let methods = allowed.headers["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("PUT"), "{methods}");
    let other = preflight("https://evil.example").await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
    let created = world
        .send(
            Method::POST,
            "/api/store/carts",
            "shop-a",
            &[("origin", "https://shop.example")],
            json!({"currency": "AUD"}).to_string().into_bytes(),
        )
        .await;
    let exposed = created.headers["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("location"), "{exposed}");
}

/// Random bodies, SKUs and cart ids against `PUT
/// /carts/{cart}/lines/{sku}`: every answer is 200 (a well-formed body for
/// the real cart and SKU) or a 4xx problem, never a 5xx; and the cart and
/// the stock end exactly as the accepted requests left them.
#[test]
fn hostile_line_requests_by_property() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (world, sku, cart) = runtime.block_on(async {
        let world = World::start(&InMemoryFactory).await;
        let sku = world.stocked("GPU-PROP", 10_000, 50).await;
        let cart = world.new_cart().await;
        (world, sku, cart)
    });
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<i64>().prop_map(|q| format!("{{\"quantity\": {q}}}").into_bytes()),
        (0_u32..80).prop_map(|q| format!("{{\"quantity\": {q}}}").into_bytes()),
        (0_u32..80, "[a-z]{1,8}").prop_map(|(q, field)| {
            format!("{{\"quantity\": {q}, \"{field}\": 1}}").into_bytes()
        }),
        "[ -~]{0,40}".prop_map(String::into_bytes),
    ];
    let path_sku = prop_oneof![
        4 => Just(sku.as_str().to_owned()),
        1 => "[A-Za-z0-9%._~-]{1,80}",
    ];
    let path_cart = prop_oneof![
        4 => Just(cart.clone()),
        1 => "[a-f0-9-]{1,40}",
    ];
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = std::sync::Mutex::new(0_u32);
    runner
        .run(&(body, path_sku, path_cart), |(body, line, id)| {
            let answer = runtime.block_on(world.send(
                Method::PUT,
                &format!("/api/store/carts/{id}/lines/{line}"),
                "shop-a",
                &[],
                body.clone(),
            ));
            let well_formed: Option<u32> = serde_json::from_slice::<Value>(&body)
                .ok()
                .filter(|v| v.as_object().is_some_and(|o| o.len() == 1))
                .and_then(|v| v["quantity"].as_u64())
                .and_then(|q| u32::try_from(q).ok())
                .filter(|q| *q <= 50);
            let real = line == sku.as_str() && id == cart;
            if answer.status == StatusCode::OK {
                prop_assert!(real, "accepted for another cart or SKU");
                let quantity = well_formed.expect("accepted only a well-formed body");
                *accepted.lock().unwrap() = quantity;
            } else {
                prop_assert!(
                    answer.status.is_client_error(),
                    "{} {}",
                    answer.status,
                    answer.body
                );
                prop_assert_eq!(
                    answer.headers["content-type"].to_str().unwrap(),
                    "application/problem+json"
                );
                prop_assert!(
                    !(real && well_formed.is_some()),
                    "refused a valid request: {}",
                    answer.body
                );
            }
            Ok(())
        })
        .unwrap();
    let expected = *accepted.lock().unwrap();
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let level = runtime.block_on(shop.stock(&sku)).unwrap();
    assert_eq!(
        level.reserved, expected,
        "the stock holds what was last accepted"
    );
    assert_eq!(level.on_hand, 50);
}

/// Admin keys over HTTP: a key with the `keys` scope issues another (shown
/// once, never listed with its hash) with at most its own scopes, lists
/// them, and revokes one, which then stops working: a rotation without a
/// deploy.
async fn admin_keys_rotate_over_http(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let keys_and_catalog = shop
        .issue_api_key(
            "keys",
            [
                commerce_core::ApiScope::Keys,
                commerce_core::ApiScope::Catalog,
            ],
        )
        .await
        .unwrap();
    let bearer = |key: &str| format!("Bearer {key}");
    let send = |method: Method, path: &'static str, key: String, body: Value| {
        let world = world.clone();
        async move {
            let body = if body.is_null() {
                vec![]
            } else {
                body.to_string().into_bytes()
            };
            world
                .send(method, path, "", &[("authorization", key.as_str())], body)
                .await
        }
    };
    let escalate = send(
        Method::POST,
        "/api/admin/keys",
        bearer(&keys_and_catalog.key),
        json!({"name": "greedy", "scopes": ["catalog", "refunds"]}),
    )
    .await;
    assert_problem(&escalate, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(escalate.body["required_scope"], "refunds");

    let issued = send(
        Method::POST,
        "/api/admin/keys",
        bearer(&keys_and_catalog.key),
        json!({"name": "catalog sync", "scopes": ["catalog"]}),
    )
    .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let new_key = issued.body["key"].as_str().unwrap().to_owned();
    let new_id = issued.body["record"]["id"].as_str().unwrap().to_owned();
    let works = send(
        Method::GET,
        "/api/admin/products",
        bearer(&new_key),
        Value::Null,
    )
    .await;
    assert_eq!(works.status, StatusCode::OK, "{}", works.body);

    let listed = send(
        Method::GET,
        "/api/admin/keys",
        bearer(&keys_and_catalog.key),
        Value::Null,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed = listed.body.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|k| k.get("hash").is_none() && k.get("key").is_none())
    );

    let revoke = world
        .send(
            Method::DELETE,
            &format!("/api/admin/keys/{new_id}"),
            "",
            &[("authorization", bearer(&keys_and_catalog.key).as_str())],
            vec![],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    let revoked = send(
        Method::GET,
        "/api/admin/products",
        bearer(&new_key),
        Value::Null,
    )
    .await;
    assert_problem(&revoked, StatusCode::UNAUTHORIZED, "unauthorized");
    let again = world
        .send(
            Method::DELETE,
            &format!("/api/admin/keys/{new_id}"),
            "",
            &[("authorization", bearer(&keys_and_catalog.key).as_str())],
            vec![],
        )
        .await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not_found");
}

/// The tenant's event feed over the admin API: pages that give every event
/// once in order, confined to the key's tenant, and a stream whose ids are
/// positions, resumed by `Last-Event-ID`.
async fn admin_feed_pages_and_streams(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let key = world
        .commerce
        .shop(&TenantId::parse("shop-a").unwrap())
        .issue_api_key("feed", [commerce_core::ApiScope::Orders])
        .await
        .unwrap()
        .key;
    let other = world
        .commerce
        .shop(&TenantId::parse("shop-b").unwrap())
        .issue_api_key("feed", [commerce_core::ApiScope::Orders])
        .await
        .unwrap()
        .key;
    let sku = world.stocked("GPU-FEED", 10_000, 2).await;
    let order = world.place(&sku, 10_000, "feed").await;
    world.pay(order, 10_000, "evt_feed").await;
    let bearer = format!("Bearer {key}");
    let get = |path: String, bearer: String| {
        let world = world.clone();
        async move {
            world
                .send(
                    Method::GET,
                    &path,
                    "",
                    &[("authorization", &bearer)],
                    vec![],
                )
                .await
        }
    };
    // Placed, payment session created, payment received; an event shows
    // once no earlier transaction can still commit, so wait for all three.
    let mut seen: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let query = after
            .as_ref()
            .map_or_else(String::new, |after| format!("&after={after}"));
        let page = get(format!("/api/admin/events?limit=2{query}"), bearer.clone()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().cloned());
        if let Some(next) = page.body["next"].as_str() {
            after = Some(next.to_owned());
        }
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kinds: Vec<&str> = seen
        .iter()
        .map(|item| item["event"]["kind"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["placed", "payment_session_created", "payment_received"]
    );
    let sequence: Vec<u64> = seen
        .iter()
        .map(|item| item["event"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(sequence, [1, 2, 3], "every event once, in order");

    let elsewhere = get("/api/admin/events".into(), format!("Bearer {other}")).await;
    assert_eq!(elsewhere.status, StatusCode::OK);
    assert_eq!(elsewhere.body["data"], json!([]), "another tenant's feed");
    let malformed = get("/api/admin/events?after=nope".into(), bearer.clone()).await;
    assert_problem(&malformed, StatusCode::BAD_REQUEST, "invalid_parameter");

    // The stream resumes after the position it was given.
    let first = seen[0]["position"].as_str().unwrap();
    let mut stream = world
        .stream_with(
            "/api/admin/events",
            &[("authorization", &bearer), ("last-event-id", first)],
        )
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    let next = stream.next().await.unwrap();
    assert_eq!(next.raw_id, seen[1]["position"].as_str().unwrap());
    assert_eq!(next.event, "payment_session_created");
    assert_eq!(next.data["event"]["order"], order.to_string());
}

/// The crate's sweeper task sweeps every tenant: unpaid orders of two
/// shops past their payment window are expired without a request.
async fn the_sweeper_task_sweeps_every_tenant(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-SWEEP", 10_000, 1).await;
    let in_a = world.place(&sku, 10_000, "sweep-a").await;
    let shop_b = world.commerce.shop(&TenantId::parse("shop-b").unwrap());
    let sku_b = commerce_core::testkit::Harness::stocked_in(&shop_b, "GPU-SWEEP", 10_000, 1).await;
    let cart = shop_b.create_cart(Currency::AUD).await.unwrap();
    shop_b
        .set_line(cart.id, &sku_b, commerce_core::Quantity::new(1).unwrap())
        .await
        .unwrap();
    let key = commerce_core::IdempotencyKey::parse("sweep-b").unwrap();
    let in_b = shop_b.checkout(cart.id, &key).await.unwrap().order.id;

    world
        .clock
        .advance(world.commerce.config().payment_window() + std::time::Duration::from_secs(60));
    let sweeper = tokio::spawn(
        CommerceHttp::builder(world.commerce.clone())
            .build()
            .sweeper(std::time::Duration::from_millis(20)),
    );
    let shop_a = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let mut expired = false;
    for _ in 0..250 {
        let a = shop_a.order(in_a).await.unwrap().status();
        let b = shop_b.order(in_b).await.unwrap().status();
        if a == commerce_core::OrderStatus::Expired && b == commerce_core::OrderStatus::Expired {
            expired = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sweeper.abort();
    assert!(expired, "both shops' unpaid orders expired by the sweeper");
    // The units are free again in both shops.
    assert_eq!(shop_a.stock(&sku).await.unwrap().available(), 1);
    assert_eq!(shop_b.stock(&sku_b).await.unwrap().available(), 1);
}

/// The storefront's product list pages by `cursor` over published
/// products only; search pages by `offset`, and mixing the two is a 400;
/// an unpublished product is a 404 to read and to add to a cart; the
/// admin's list pages over every product, and publishing shows it.
async fn product_lists_page_by_cursor(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let mut published = Vec::new();
    let mut hidden = Vec::new();
    for n in 0..5 {
        let sku = world.stocked(&format!("LIST-{n}"), 1_000, 2).await;
        let product = shop.admin_products(None, 200).await.unwrap();
        let id = product
            .products
            .iter()
            .find(|p| p.variant(&sku).is_some())
            .unwrap()
            .id();
        if n % 2 == 1 {
            shop.set_product_published(id, false).await.unwrap();
            hidden.push((id, sku));
        } else {
            published.push(id);
        }
    }
    published.sort();
    let follow = |first: String| {
        let world = world.clone();
        async move {
            let mut seen = Vec::new();
            let mut path = first.clone();
            loop {
                let page = world.json(Method::GET, &path, Value::Null).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                for product in page.body["data"].as_array().unwrap() {
                    seen.push(product["id"].as_str().unwrap().parse().unwrap());
                }
                match page.body["next_cursor"].as_str() {
                    Some(cursor) => {
                        assert_eq!(page.body["has_more"], true);
                        path = format!("{first}&cursor={cursor}");
                    }
                    None => return seen,
                }
            }
        }
    };
    let seen: Vec<commerce_core::ProductId> = follow("/api/store/products?limit=2".into()).await;
    assert_eq!(seen, published);
    for (path, pointer) in [
        ("/api/store/products?offset=2", "/offset"),
        ("/api/store/products?q=item&cursor=x", "/cursor"),
        ("/api/store/products?cursor=nope", "/cursor"),
    ] {
        let refused = world.json(Method::GET, path, Value::Null).await;
        assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_parameter");
        assert_eq!(refused.body["errors"][0]["pointer"], pointer, "{path}");
    }
    let search = world
        .json(
            Method::GET,
            "/api/store/products?q=item&limit=2&offset=2",
            Value::Null,
        )
        .await;
    assert_eq!(search.body["offset"], 2);
    assert_eq!(search.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(search.body["has_more"], false);

    let (hidden_id, hidden_sku) = hidden[0].clone();
    let read = world
        .json(
            Method::GET,
            &format!("/api/store/products/{hidden_id}"),
            Value::Null,
        )
        .await;
    assert_problem(&read, StatusCode::NOT_FOUND, "not_found");
    let cart = world.new_cart().await;
    let refused = world.set_line(&cart, &hidden_sku, 1).await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(shop.stock(&hidden_sku).await.unwrap().reserved, 0);

    let key = shop
        .issue_api_key("catalog", [commerce_core::ApiScope::Catalog])
        .await
        .unwrap();
    let bearer = format!("Bearer {}", key.key);
    let admin = |method: Method, path: String, body: Value| {
        let (world, bearer) = (world.clone(), bearer.clone());
        async move {
            let body = if body.is_null() {
                vec![]
            } else {
                body.to_string().into_bytes()
            };
            world
                .send(method, &path, "", &[("authorization", &bearer)], body)
                .await
        }
    };
    let mut every = Vec::new();
    let mut path = "/api/admin/products?limit=2".to_owned();
    loop {
        let page = admin(Method::GET, path.clone(), Value::Null).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        every.extend(
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["id"].as_str().unwrap().to_owned(), p["published"].clone())),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/admin/products?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(every.len(), 5);
    assert_eq!(every.iter().filter(|(_, p)| p == &json!(false)).count(), 2);
    let published_now = admin(
        Method::PUT,
        format!("/api/admin/products/{hidden_id}/published"),
        json!({"published": true}),
    )
    .await;
    assert_eq!(
        published_now.status,
        StatusCode::OK,
        "{}",
        published_now.body
    );
    assert_eq!(published_now.body["published"], true);
    let shown = follow("/api/store/products?limit=200".into()).await;
    assert_eq!(shown.len(), 4);
    assert!(shown.contains(&hidden_id));
    assert_eq!(
        world.set_line(&cart, &hidden_sku, 1).await.status,
        StatusCode::OK
    );
}

/// Cart attributes at the wire: set, replaced and removed on the cart,
/// refused with 422 naming the key when out of bounds, and carried to the
/// order by checkout.
async fn cart_attributes_reach_the_order(factory: &dyn StoreFactory) {
    let world = World::start(factory).await;
    let sku = world.stocked("GPU-ATTR", 10_000, 1).await;
    let cart = world.new_cart().await;
    world.set_line(&cart, &sku, 1).await;
    let path = format!("/api/store/carts/{cart}/attributes/pickup.slot");
    let set = world
        .json(Method::PUT, &path, json!({"value": "Sat 10:00"}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["cart"]["attributes"]["pickup.slot"], "Sat 10:00");
    let replaced = world
        .json(Method::PUT, &path, json!({"value": "Sat 11:00"}))
        .await;
    assert_eq!(
        replaced.body["cart"]["attributes"]["pickup.slot"],
        "Sat 11:00"
    );
    let email = format!("/api/store/carts/{cart}/attributes/email");
    world
        .json(Method::PUT, &email, json!({"value": "a@example.com"}))
        .await;
    let removed = world.json(Method::DELETE, &email, Value::Null).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(removed.body["cart"]["attributes"].get("email").is_none());

    let bad_key = world
        .json(
            Method::PUT,
            &format!("/api/store/carts/{cart}/attributes/Bad%20Key"),
            json!({"value": "x"}),
        )
        .await;
    assert_problem(
        &bad_key,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_attribute_key",
    );
    let too_long = world
        .json(Method::PUT, &path, json!({"value": "x".repeat(501)}))
        .await;
    assert_problem(
        &too_long,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_attribute_value",
    );

    let placed = world
        .checkout(
            &cart,
            "attributes",
            json!({"expected_total": {"amount": 10_000, "currency": "AUD"}}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    assert_eq!(
        placed.body["order"]["attributes"],
        json!({"pickup.slot": "Sat 11:00"})
    );
    let after = world
        .json(Method::PUT, &path, json!({"value": "Sun"}))
        .await;
    assert_problem(&after, StatusCode::CONFLICT, "cart_checked_out");
}

/// `TenantResolver::PathParam("store")` with the storefront nested at
/// `/s/{store}/api/store` and the admin API at `/s/{store}/api/admin`: each
/// route reads its own path parameters by name, whatever the nesting adds.
/// Two tenants each list, read and watch a product, open a cart, set a
/// line, read the cart, check out, read the order and stream its events;
/// one tenant's cart, order and product are 404 under the other's path;
/// malformed ids answer as they do unnested; and no documented route of
/// either router refuses its path.
async fn path_tenants_nest_under_a_parameter(factory: &dyn StoreFactory) {
    let world = World::with_path_tenants(factory).await;
    let store = |tenant: &str, rest: &str| format!("/s/{tenant}/api/store{rest}");
    let mut placed = Vec::new();
    for tenant in ["shop-a", "shop-b"] {
        let shop = world.commerce.shop(&TenantId::parse(tenant).unwrap());
        let sku_name = format!("GPU-{}", tenant.to_uppercase());
        let sku = commerce_core::testkit::Harness::stocked_in(&shop, &sku_name, 10_000, 2).await;

        let list = world
            .json(Method::GET, &store(tenant, "/products"), Value::Null)
            .await;
        assert_eq!(list.status, StatusCode::OK, "{tenant}: {}", list.body);
        assert_eq!(list.body["data"].as_array().unwrap().len(), 1, "{tenant}");
        let product = list.body["data"][0]["id"].as_str().unwrap().to_owned();
        let page = world
            .json(
                Method::GET,
                &store(tenant, &format!("/products/{product}")),
                Value::Null,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{tenant}: {}", page.body);
        assert_eq!(page.body["product"]["id"], product.as_str());
        assert_eq!(page.body["availability"][0]["available"], 2);
        let availability = store(tenant, &format!("/products/{product}/availability"));
        let now = world.json(Method::GET, &availability, Value::Null).await;
        assert_eq!(now.status, StatusCode::OK, "{tenant}: {}", now.body);
        assert_eq!(now.body[0]["sku"], sku_name.as_str());
        assert_eq!(now.body[0]["available"], 2);
        let mut watch = world.stream(&availability, None).await;
        assert_eq!(watch.status, StatusCode::OK, "{tenant}");
        assert_eq!(watch.next().await.unwrap().data[0]["available"], 2);
        drop(watch);

        let created = world
            .json(
                Method::POST,
                &store(tenant, "/carts"),
                json!({"currency": "AUD"}),
            )
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{tenant}: {}",
            created.body
        );
        let cart = created.body["cart"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            created.headers["location"].to_str().unwrap(),
            store(tenant, &format!("/carts/{cart}"))
        );
        let line = world
            .json(
                Method::PUT,
                &store(tenant, &format!("/carts/{cart}/lines/{sku}")),
                json!({"quantity": 1}),
            )
            .await;
        assert_eq!(line.status, StatusCode::OK, "{tenant}: {}", line.body);
        assert_eq!(line.body["reservations"][0]["sku"], sku_name.as_str());
        let read = world
            .json(
                Method::GET,
                &store(tenant, &format!("/carts/{cart}")),
                Value::Null,
            )
            .await;
        assert_eq!(read.status, StatusCode::OK, "{tenant}: {}", read.body);
        assert_eq!(read.body["cart"]["id"], cart.as_str());
        assert_eq!(read.body["reservations"][0]["quantity"], 1);

        let checkout = world
            .send(
                Method::POST,
                &store(tenant, &format!("/carts/{cart}/checkout")),
                "",
                &[("idempotency-key", "nested")],
                json!({"expected_total": {"amount": 10_000, "currency": "AUD"}})
                    .to_string()
                    .into_bytes(),
            )
            .await;
        assert_eq!(
            checkout.status,
            StatusCode::CREATED,
            "{tenant}: {}",
            checkout.body
        );
        let order = checkout.body["order"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            checkout.headers["location"].to_str().unwrap(),
            store(tenant, &format!("/orders/{order}"))
        );
        let read = world
            .json(
                Method::GET,
                &store(tenant, &format!("/orders/{order}")),
                Value::Null,
            )
            .await;
        assert_eq!(read.status, StatusCode::OK, "{tenant}: {}", read.body);
        assert_eq!(read.body["status"], "awaiting_payment");
        let events = store(tenant, &format!("/orders/{order}/events"));
        let log = world.json(Method::GET, &events, Value::Null).await;
        assert_eq!(log.status, StatusCode::OK, "{tenant}: {}", log.body);
        let mut stream = world.stream(&events, None).await;
        assert_eq!(stream.status, StatusCode::OK, "{tenant}");
        let first = stream.next().await.unwrap();
        assert_eq!((first.id, first.event.as_str()), (Some(1), "placed"));
        drop(stream);
        placed.push((tenant, product, cart, order, sku));
    }

    // Each tenant's resources are its own: tenant A's ids are 404 under
    // tenant B's path (and the other way round), and change nothing.
    for ((owner, product, cart, order, sku), other) in placed.iter().zip(["shop-b", "shop-a"]) {
        for path in [
            format!("/carts/{cart}"),
            format!("/orders/{order}"),
            format!("/orders/{order}/events"),
            format!("/products/{product}"),
            format!("/products/{product}/availability"),
        ] {
            let answer = world
                .json(Method::GET, &store(other, &path), Value::Null)
                .await;
            assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
            let own = world
                .json(Method::GET, &store(owner, &path), Value::Null)
                .await;
            assert_eq!(own.status, StatusCode::OK, "{owner} {path}: {}", own.body);
        }
        let foreign_line = world
            .json(
                Method::PUT,
                &store(other, &format!("/carts/{cart}/lines/{sku}")),
                json!({"quantity": 2}),
            )
            .await;
        assert_problem(&foreign_line, StatusCode::NOT_FOUND, "not_found");
    }
    for tenant in ["shop-a", "shop-b"] {
        let shop = world.commerce.shop(&TenantId::parse(tenant).unwrap());
        let sku = Sku::parse(format!("GPU-{}", tenant.to_uppercase())).unwrap();
        let level = shop.stock(&sku).await.unwrap();
        assert_eq!((level.on_hand, level.allocated), (2, 1), "{tenant}");
    }
    let (_, _, cart, _, _) = &placed[0];
    let unknown = world
        .json(
            Method::GET,
            &format!("/s/no-such-shop/api/store/carts/{cart}"),
            Value::Null,
        )
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");

    // Malformed ids answer as they do unnested.
    let bad_cart = world
        .json(
            Method::GET,
            &store("shop-a", "/carts/not-a-uuid"),
            Value::Null,
        )
        .await;
    assert_problem(&bad_cart, StatusCode::NOT_FOUND, "not_found");
    let bad_order = world
        .json(
            Method::GET,
            &store("shop-a", "/orders/not-a-uuid"),
            Value::Null,
        )
        .await;
    assert_problem(&bad_order, StatusCode::NOT_FOUND, "not_found");
    let bad_sku = world
        .json(
            Method::PUT,
            &store(
                "shop-a",
                &format!("/carts/{cart}/lines/{}", "X".repeat(300)),
            ),
            json!({"quantity": 1}),
        )
        .await;
    assert_problem(&bad_sku, StatusCode::BAD_REQUEST, "invalid_parameter");
    assert_eq!(bad_sku.body["errors"][0]["pointer"], "/sku");

    // The admin API nested under the same parameter: its key names the
    // tenant, and its routes read their own parameters by name.
    let (_, _, _, order, sku) = &placed[0];
    let shop = world.commerce.shop(&TenantId::parse("shop-a").unwrap());
    let key = shop
        .issue_api_key("ops", commerce_core::ApiScope::ALL)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", key.key);
    let admin = |rest: String| format!("/s/shop-a/api/admin{rest}");
    for path in [
        admin(format!("/orders/{order}")),
        admin(format!("/orders/{order}/events")),
        admin(format!("/stock/{sku}")),
    ] {
        let answer = world
            .send(
                Method::GET,
                &path,
                "",
                &[("authorization", bearer.as_str())],
                vec![],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    }

    // Every documented route of both routers, nested: none refuses its
    // path (a path rejection is a 400 `invalid_parameter` at pointer "").
    let http = CommerceHttp::builder(Commerce::in_memory())
        .tenants(TenantResolver::PathParam("store".into()))
        .build();
    let mounts = commerce_http::ApiMounts {
        storefront: PATH_STOREFRONT.into(),
        admin: PATH_ADMIN.into(),
        ..commerce_http::ApiMounts::default()
    };
    let document = serde_json::to_value(http.openapi(&mounts)).unwrap();
    let mut walked = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        if !template.starts_with("/s/") {
            continue;
        }
        let path = template
            .replace("{store}", "shop-a")
            .replace("{cart}", "00000000-0000-4000-8000-000000000000")
            .replace("{order}", "00000000-0000-4000-8000-000000000000")
            .replace("{product}", "00000000-0000-4000-8000-000000000000")
            .replace("{sku}", "GPU-WALK")
            .replace("{code}", "WALK10")
            .replace("{key}", "walk")
            .replace("{promotion}", "walk");
        assert!(!path.contains('{'), "a parameter left in {path}");
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            // No body and no content type: a JSON body is refused with 415,
            // so a 400 at pointer "" can only be the path.
            let request = Request::builder()
                .method(method.clone())
                .uri(format!("{}{path}", world.base))
                .header("authorization", bearer.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = world.client.request(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert!(
                !(status == StatusCode::BAD_REQUEST
                    && body["code"] == "invalid_parameter"
                    && body["errors"][0]["pointer"] == ""),
                "{method} {path} refused its path: {body}"
            );
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {body}"
            );
            walked += 1;
        }
    }
    assert!(walked > 40, "walked {walked} operations");
}

macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(&super::InMemoryFactory).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let factory = commerce_postgres::testkit::PgFactory::from_env(
                        commerce_postgres::ReservationStrategy::SingleStatement,
                    )
                    .await;
                    if let Some(reason) = super::StoreFactory::unavailable(&factory) {
                        use std::io::Write as _;
                        let _ = writeln!(std::io::stderr(), "SKIPPED {}: {reason}", stringify!($scenario));
                        return;
                    }
                    super::$scenario(&factory).await;
                }
            )*
        }
    };
}

on_every_store!(
    last_unit_race_has_one_winner,
    concurrent_checkouts_with_one_key_make_one_order,
    checkout_refusals_at_the_wire,
    webhook_repeats_apply_once,
    tenants_are_isolated_at_the_wire,
    hostile_input_gets_problems,
    catalog_caching_and_health,
    order_stream_replays_from_last_event_id,
    availability_stream_notices_a_lapse,
    admin_api_behind_scoped_keys,
    admin_keys_rotate_over_http,
    admin_feed_pages_and_streams,
    the_sweeper_task_sweeps_every_tenant,
    product_lists_page_by_cursor,
    cart_attributes_reach_the_order,
    path_tenants_nest_under_a_parameter,
);
