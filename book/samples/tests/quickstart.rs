//! The quickstart, run: a buyer creates a cart, reserves the last unit,
//! checks out and pays (a signed webhook, delivered twice, applied once),
//! all over a real socket; and the production engine opens on PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failing test"
)]

use std::time::Duration;

use commerce_book::quickstart::{Settings, engine, production, service};
use commerce_core::payment::{PaymentEvent, PaymentEventKind, TestGateway};
use commerce_core::{
    Category, Clock, Currency, Money, NewProduct, OrderId, OrderStatus, PaymentEventId, Quantity,
    Sku, SystemClock, TaxCategory, TenantId, Variant,
};
use commerce_postgres::ReservationStrategy;
use commerce_postgres::testkit::PgFactory;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const SECRET: &str = "book-quickstart-secret";

/// One request to `base`: the status, the headers and the JSON body.
async fn send(
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_reserves_checks_out_and_pays_over_http() {
    let commerce = engine(SECRET).unwrap();
    let shop = commerce.shop(&TenantId::parse("my-shop").unwrap());
    let sku = Sku::parse("LAMP-1").unwrap();
    shop.add_product(NewProduct {
        name: "Desk lamp".into(),
        category: Category::parse("lighting").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        published: true,
        variants: vec![Variant::new(sku.clone(), Money::new(4_500, Currency::AUD))],
    })
    .await
    .unwrap();
    shop.receive_stock(&sku, Quantity::new(1).unwrap(), None)
        .await
        .unwrap();

    let app = service(commerce.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // A cart, and the last lamp reserved in it.
    let cart_body = json!({"currency": "AUD"}).to_string().into_bytes();
    let (status, cart) = send(&base, Method::POST, "/api/store/carts", &[], cart_body).await;
    assert_eq!(status, StatusCode::CREATED, "{cart}");
    let cart_id = cart["cart"]["id"].as_str().unwrap().to_owned();
    let line = json!({"quantity": 1}).to_string().into_bytes();
    let path = format!("/api/store/carts/{cart_id}/lines/{sku}");
    let (status, held) = send(&base, Method::PUT, &path, &[], line).await;
    assert_eq!(status, StatusCode::OK, "{held}");
    // A second buyer finds it held.
    let (_, other) = send(
        &base,
        Method::POST,
        "/api/store/carts",
        &[],
        json!({"currency": "AUD"}).to_string().into_bytes(),
    )
    .await;
    let other_path = format!(
        "/api/store/carts/{}/lines/{sku}",
        other["cart"]["id"].as_str().unwrap()
    );
    let (status, refused) = send(
        &base,
        Method::PUT,
        &other_path,
        &[],
        json!({"quantity": 1}).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");

    // Checkout, with the total the buyer was shown.
    let checkout = json!({"expected_total": {"amount": 4_500, "currency": "AUD"}});
    let (status, placed) = send(
        &base,
        Method::POST,
        &format!("/api/store/carts/{cart_id}/checkout"),
        &[("idempotency-key", "quickstart-1")],
        checkout.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let order: OrderId = placed["order"]["id"].as_str().unwrap().parse().unwrap();

    // The payment webhook, delivered twice: applied once.
    let event = PaymentEvent {
        id: PaymentEventId::parse("evt_quickstart").unwrap(),
        tenant: TenantId::parse("my-shop").unwrap(),
        order,
        kind: PaymentEventKind::Succeeded {
            amount: Money::new(4_500, Currency::AUD),
            payment_ref: Some("pay_quickstart".into()),
        },
    };
    for _ in 0..2 {
        let request = TestGateway::new(SECRET).webhook(&event, SystemClock.now());
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, body) = send(
            &base,
            Method::POST,
            "/webhooks/payments",
            &headers,
            request.body().to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let paid = shop.order(order).await.unwrap();
    assert_eq!(paid.status(), OrderStatus::Paid);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_production_engine_opens_on_postgres() {
    let factory = PgFactory::from_env(ReservationStrategy::default()).await;
    let Some(admin_url) = factory.admin_url().map(str::to_owned) else {
        eprintln!("PostgreSQL is not reachable: skipped outside CI");
        return;
    };
    let (name, admin) = factory.fresh_database().await;
    admin.close().await;
    let (server, _) = admin_url.rsplit_once('/').expect("a URL with a database");
    let settings = Settings {
        database_url: format!("{server}/{name}"),
        stripe_secret_key: "sk_test_book".into(),
        stripe_webhook_secret: "whsec_book".into(),
    };
    let commerce = tokio::time::timeout(Duration::from_secs(30), production(&settings))
        .await
        .expect("connects within 30 s")
        .unwrap();
    let shop = commerce.shop(&TenantId::parse("my-shop").unwrap());
    assert!(
        shop.admin_products(None, 10)
            .await
            .unwrap()
            .products
            .is_empty()
    );
}
