//! The gateway against the local fake Stripe server: what it sends, how it
//! retries, and how Stripe's answers come back.

// Helpers outside `#[test]` functions fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: panicking is how they fail a test"
)]

mod common;

use std::time::Duration;

use axum::http::Method;
use commerce_core::promotion::{Action, PromotionSpec};
use commerce_core::testkit::{PAYMENT_WINDOW, START_UNIX};
use commerce_core::{
    Currency, Error as CoreError, GatewayError, Money, OrderId, PaymentGateway, PromotionId,
    Refund, RefundId, RefundReason, RefundStatus, ShopSettings, TaxConfig,
};
use commerce_stripe::{BuildError, Error, STRIPE_API_VERSION};
use common::*;
use rust_decimal::Decimal;

const SESSIONS: &str = "/v1/checkout/sessions";
const REFUNDS: &str = "/v1/refunds";

#[tokio::test]
async fn checkout_session_request_carries_lines_metadata_expiry_and_key() {
    let fake = FakeStripe::start().await;
    let (commerce, _clock) = engine(gateway_builder(&fake).build().unwrap());
    let shop = commerce.shop(&tenant("shop-a"));
    let mut settings = ShopSettings::with_tax(TaxConfig::australia_gst());
    settings.shipping_fee = Some(Money::new(1_000, Currency::AUD));
    shop.put_settings(settings).await.unwrap();
    let shirt = product(
        &shop,
        "TEE-M-NAVY",
        "T-shirt",
        Money::new(1_999, Currency::AUD),
        10,
        &[("size", "M"), ("colour", "navy")],
    )
    .await;
    let mug = product(&shop, "MUG", "Mug", Money::new(500, Currency::AUD), 10, &[]).await;
    let cart = cart(&shop, Currency::AUD, &[(&shirt, 2), (&mug, 1)]).await;

    let checkout = shop.checkout(cart, &key("co-1")).await.unwrap();
    let order = checkout.order;
    // 2 × 19.99 + 5.00 + 10.00 shipping, GST included.
    assert_eq!(order.total(), Money::new(5_498, Currency::AUD));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let sent = &requests[0];
    assert_eq!(
        (sent.method.clone(), sent.path.as_str()),
        (Method::POST, SESSIONS)
    );
    assert_eq!(
        sent.idempotency_key.as_deref(),
        Some(format!("commerce-checkout-{}", order.id).as_str())
    );
    assert_eq!(sent.stripe_version.as_deref(), Some(STRIPE_API_VERSION));
    assert_eq!(
        sent.authorization.as_deref(),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );
    assert_eq!(
        sent.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(sent.get("mode"), "payment");
    let order_id = order.id.to_string();
    assert_eq!(sent.get("client_reference_id"), order_id);
    assert_eq!(sent.get("metadata[commerce_order_id]"), order_id);
    assert_eq!(sent.get("metadata[commerce_tenant]"), "shop-a");
    assert_eq!(
        sent.get("payment_intent_data[metadata][commerce_order_id]"),
        order_id
    );
    assert_eq!(
        sent.get("payment_intent_data[metadata][commerce_tenant]"),
        "shop-a"
    );
    let expires_at = START_UNIX + i64::try_from(PAYMENT_WINDOW.as_secs()).unwrap();
    assert_eq!(sent.get("expires_at"), expires_at.to_string());
    assert_eq!(order.payment_expires_at.timestamp(), expires_at);
    assert_eq!(
        sent.get("success_url"),
        format!("https://shop.example/orders/{order_id}/paid?session={{CHECKOUT_SESSION_ID}}")
    );
    assert_eq!(sent.get("cancel_url"), "https://shop.example/shop-a/cart");

    // One line item per order line, then shipping.
    let item = |i: usize, field: &str| sent.get(&format!("line_items[{i}]{field}")).to_owned();
    assert_eq!(
        item(0, "[price_data][product_data][name]"),
        "T-shirt (colour: navy, size: M)"
    );
    assert_eq!(item(0, "[price_data][unit_amount]"), "1999");
    assert_eq!(item(0, "[quantity]"), "2");
    assert_eq!(item(0, "[price_data][currency]"), "aud");
    assert!(
        item(0, "[price_data][product_data][description]").contains("incl. GST 10%"),
        "{}",
        item(0, "[price_data][product_data][description]")
    );
    assert_eq!(item(1, "[price_data][product_data][name]"), "Mug");
    assert_eq!(item(1, "[price_data][unit_amount]"), "500");
    assert_eq!(item(1, "[quantity]"), "1");
    assert_eq!(item(2, "[price_data][product_data][name]"), "Shipping");
    assert_eq!(item(2, "[price_data][unit_amount]"), "1000");
    assert_eq!(sent.field("line_items[3][quantity]"), None);
    assert_eq!(line_items_total(sent), 5_498);

    // What the gateway returned, from the fake's realistic body.
    let session = checkout.session.expect("a session");
    assert_eq!(session.id, "cs_test_0001");
    assert!(
        session
            .redirect_url
            .starts_with("https://checkout.stripe.com/c/pay/cs_test_0001")
    );
    assert_eq!(session.expires_at, order.payment_expires_at);
    assert_eq!(fake.session("cs_test_0001")["amount_total"], 5_498);
}

/// Promotions split discounts unevenly over lines and US sales tax is added
/// on top: Stripe's total is still exactly the grand total.
#[tokio::test]
async fn discounts_and_added_tax_add_up_to_the_grand_total_exactly() {
    let fake = FakeStripe::start().await;
    let (commerce, _clock) = engine(gateway_builder(&fake).build().unwrap());
    let shop = commerce.shop(&tenant("us-shop"));
    let mut settings = ShopSettings::with_tax(TaxConfig::us_sales_tax("CA", Decimal::new(725, 2)));
    settings.shipping_fee = Some(Money::new(599, Currency::USD));
    shop.put_settings(settings).await.unwrap();
    shop.put_promotion(PromotionSpec {
        id: PromotionId::parse("cart-10").unwrap(),
        name: "10% off everything".into(),
        priority: 1,
        exclusive: false,
        group: None,
        conditions: vec![],
        action: Action::PercentOffCart {
            percent: Decimal::TEN,
        },
        cap: None,
        max_units_per_line: None,
        usage_limit: None,
        per_customer_limit: None,
    })
    .await
    .unwrap();
    let a = product(
        &shop,
        "A",
        "Widget",
        Money::new(333, Currency::USD),
        10,
        &[],
    )
    .await;
    let b = product(
        &shop,
        "B",
        "Gadget",
        Money::new(1_001, Currency::USD),
        10,
        &[],
    )
    .await;
    let c = product(&shop, "C", "Gizmo", Money::new(77, Currency::USD), 10, &[]).await;
    let cart = cart(&shop, Currency::USD, &[(&a, 3), (&b, 1), (&c, 7)]).await;
    let order = shop.checkout(cart, &key("co-us")).await.unwrap().order;
    assert!(!order.totals.discount_total.is_zero());
    assert!(!order.totals.tax_total.is_zero());

    let sent = &fake.requests_to(Method::POST, SESSIONS)[0];
    assert_eq!(line_items_total(sent), order.total().minor());
    let session = fake.session("cs_test_0001");
    assert_eq!(session["amount_total"], order.total().minor());
    assert_eq!(session["currency"], "usd");
    // Every line shows what was taken off and what tax was added.
    for (i, line) in order.lines.iter().enumerate() {
        let description = sent.get(&format!(
            "line_items[{i}][price_data][product_data][description]"
        ));
        assert!(description.contains("discount −USD"), "{description}");
        assert!(description.contains("+ "), "{description}");
        let quantity: u32 = sent
            .get(&format!("line_items[{i}][quantity]"))
            .parse()
            .unwrap();
        let unit: i64 = sent
            .get(&format!("line_items[{i}][price_data][unit_amount]"))
            .parse()
            .unwrap();
        assert_eq!(unit * i64::from(quantity), line.total.minor(), "line {i}");
        if line.total.minor() % i64::from(line.quantity.get()) != 0 {
            // Not divisible: one item for the whole line, named with its quantity.
            assert_eq!(quantity, 1);
            assert!(
                sent.get(&format!("line_items[{i}][price_data][product_data][name]"))
                    .ends_with(&format!("× {}", line.quantity))
            );
        }
    }
}

#[tokio::test]
async fn zero_and_three_decimal_currencies() {
    let fake = FakeStripe::start().await;
    let (commerce, _clock) = engine(gateway_builder(&fake).build().unwrap());
    let shop = commerce.shop(&tenant("jp"));
    let tea = product(
        &shop,
        "TEA",
        "Sencha",
        Money::new(1_200, Currency::JPY),
        5,
        &[],
    )
    .await;
    let order = shop
        .checkout(cart(&shop, Currency::JPY, &[(&tea, 2)]).await, &key("jp-1"))
        .await
        .unwrap()
        .order;
    let sent = &fake.requests_to(Method::POST, SESSIONS)[0];
    // ¥1,200 is sent as 1200: JPY has no minor unit.
    assert_eq!(sent.get("line_items[0][price_data][unit_amount]"), "1200");
    assert_eq!(sent.get("line_items[0][price_data][currency]"), "jpy");
    assert_eq!(line_items_total(sent), order.total().minor());

    // KWD 1.255 cannot be sent (Stripe takes three-decimal amounts only in
    // multiples of 10), but two of them make KWD 2.510, which can: one item.
    let shop = commerce.shop(&tenant("kw"));
    let dates = product(
        &shop,
        "DATES",
        "Dates",
        Money::new(1_255, Currency::KWD),
        5,
        &[],
    )
    .await;
    let order = shop
        .checkout(
            cart(&shop, Currency::KWD, &[(&dates, 2)]).await,
            &key("kw-1"),
        )
        .await
        .unwrap()
        .order;
    let sent = fake.requests_to(Method::POST, SESSIONS).pop().unwrap();
    assert_eq!(sent.get("line_items[0][price_data][currency]"), "kwd");
    assert_eq!(sent.get("line_items[0][price_data][unit_amount]"), "2510");
    assert_eq!(sent.get("line_items[0][quantity]"), "1");
    assert_eq!(line_items_total(&sent), order.total().minor());

    // One of them, KWD 1.255, is refused: nothing is rounded.
    let before = fake.requests().len();
    let err = shop
        .checkout(
            cart(&shop, Currency::KWD, &[(&dates, 1)]).await,
            &key("kw-2"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Gateway(GatewayError::Unsupported { message }) if message.contains("multiples of 10")),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), before, "nothing was sent");
}

#[tokio::test]
async fn a_retried_checkout_never_makes_two_sessions() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).build().unwrap();
    let (commerce, _clock) = engine(gateway.clone());
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(99_900, Currency::AUD),
        1,
        &[],
    )
    .await;
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    // The storefront retries (the answer was lost): the gateway is asked again.
    let again = gateway
        .create_session(&checkout.order, checkout.order.placed_at)
        .await
        .unwrap();
    let third = gateway
        .create_session(&checkout.order, checkout.order.placed_at)
        .await
        .unwrap();
    assert_eq!(Some(&again), checkout.session.as_ref());
    assert_eq!(again, third);
    let sent = fake.requests_to(Method::POST, SESSIONS);
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|r| r.idempotency_key == sent[0].idempotency_key)
    );
    assert!(
        sent.iter().all(|r| r.params() == sent[0].params()),
        "same parameters"
    );
    assert_eq!(fake.session_count(), 1, "Stripe replayed the first answer");
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_key_and_got_past() {
    let fake = FakeStripe::start().await;
    let (commerce, _clock) = engine(gateway_builder(&fake).build().unwrap());
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(99_900, Currency::AUD),
        1,
        &[],
    )
    .await;
    fake.fail_next(SESSIONS, 500, 1);
    fake.fail_next_with_html(SESSIONS, 502, 1);
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    assert_eq!(checkout.session.unwrap().id, "cs_test_0001");
    let sent = fake.requests_to(Method::POST, SESSIONS);
    assert_eq!(sent.len(), 3, "500, then 502, then success");
    let expected = format!("commerce-checkout-{}", checkout.order.id);
    assert!(
        sent.iter()
            .all(|r| r.idempotency_key.as_deref() == Some(expected.as_str()))
    );
    assert_eq!(fake.session_count(), 1);
}

#[tokio::test]
async fn persistent_rate_limiting_gives_up_after_bounded_attempts() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).max_retries(2).build().unwrap();
    let (commerce, _clock) = engine(gateway.clone());
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(99_900, Currency::AUD),
        1,
        &[],
    )
    .await;
    fake.fail_next(SESSIONS, 429, 100);
    let err = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Gateway(GatewayError::Transient { .. })),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(fake.requests_to(Method::POST, SESSIONS).len(), 3);

    // The inherent method gives the details.
    let order = awaiting_order(&shop).await;
    let detailed = gateway
        .create_checkout_session(&order, order.placed_at)
        .await
        .unwrap_err();
    assert!(
        matches!(
            detailed,
            Error::Unavailable {
                attempts: 3,
                status: Some(429),
                ..
            }
        ),
        "{detailed:?}"
    );
    let keys: Vec<_> = fake
        .requests_to(Method::POST, SESSIONS)
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
}

/// The order a failed checkout with key `k` placed (its session could not
/// be created).
async fn awaiting_order(shop: &commerce_core::Shop) -> commerce_core::Order {
    let order = shop
        .scope()
        .orders()
        .order_by_idempotency_key(&key("k"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.payment_session, None);
    order
}

#[tokio::test]
async fn a_timed_out_attempt_is_retried_with_the_same_key() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let (commerce, _clock) = engine(gateway);
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(99_900, Currency::AUD),
        1,
        &[],
    )
    .await;
    fake.delay_next(SESSIONS, Duration::from_secs(2), 1);
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    assert!(checkout.session.is_some());
    let sent = fake.requests_to(Method::POST, SESSIONS);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].idempotency_key, sent[1].idempotency_key);
    // Let the slow first attempt finish on the fake: it replays, it does not
    // make a second session.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.session_count(), 1);
}

#[tokio::test]
async fn payment_windows_stripe_refuses_are_refused_clearly() {
    let fake = FakeStripe::start().await;
    for window in [Duration::from_secs(29 * 60), Duration::from_secs(25 * 3600)] {
        let err = gateway_builder(&fake)
            .payment_window(window)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::PaymentWindow(m) if m.contains("30 minutes to 24 hours")),
            "{err}"
        );
    }
    // An engine whose window is 15 minutes: the order is placed, the session
    // is refused before anything is sent.
    let clock = commerce_core::ManualClock::at_unix(START_UNIX);
    let commerce = commerce_core::Commerce::builder()
        .gateway(gateway_builder(&fake).build().unwrap())
        .clock(clock)
        .config(commerce_core::Config::default().with_payment_window(Duration::from_secs(900)))
        .build()
        .unwrap();
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(99_900, Currency::AUD),
        1,
        &[],
    )
    .await;
    let err = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap_err();
    match err {
        CoreError::Gateway(GatewayError::Unsupported { message }) => {
            assert!(message.contains("payment window of 900s"), "{message}");
            assert!(message.contains("30 minutes to 24 hours"), "{message}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(fake.requests().is_empty());
}

/// A paid session on the fake and a pending refund of `amount` for it.
async fn paid_order_refund(fake: &FakeStripe, id: &str, amount: i64) -> (Refund, String) {
    let gateway = gateway_builder(fake).build().unwrap();
    let (commerce, clock) = engine(gateway);
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(99_900, Currency::AUD),
        1,
        &[],
    )
    .await;
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    let session = fake.pay_session(&checkout.session.unwrap().id);
    let intent = session["payment_intent"].as_str().unwrap().to_owned();
    let refund = Refund {
        id: RefundId::parse(id).unwrap(),
        tenant: tenant("shop-a"),
        order: checkout.order.id,
        amount: Money::new(amount, Currency::AUD),
        reason: RefundReason::RequestedByMerchant,
        payment_ref: Some(intent.clone()),
        status: RefundStatus::Pending,
        lines: vec![],
        last_failure: None,
        requested_at: clock_now(&clock),
    };
    (refund, intent)
}

fn clock_now(clock: &commerce_core::ManualClock) -> commerce_core::Timestamp {
    use commerce_core::Clock;
    clock.now()
}

#[tokio::test]
async fn a_refund_is_sent_with_its_own_id_as_key_and_is_made_once() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).build().unwrap();
    let (refund, intent) = paid_order_refund(&fake, "refund_abc", 99_900).await;
    fake.fail_next(REFUNDS, 503, 1);
    let receipt = gateway.refund(&refund).await.unwrap();
    assert!(receipt.provider_ref.starts_with("re_test_"), "{receipt:?}");
    let again = gateway.refund(&refund).await.unwrap();
    assert_eq!(again, receipt, "a retried refund replays");
    let sent = fake.requests_to(Method::POST, REFUNDS);
    assert_eq!(sent.len(), 3, "503, success, replay");
    for request in &sent {
        assert_eq!(request.idempotency_key.as_deref(), Some("refund_abc"));
        assert_eq!(request.get("payment_intent"), intent);
        assert_eq!(request.get("amount"), "99900");
        assert_eq!(request.get("metadata[commerce_refund_id]"), "refund_abc");
        assert_eq!(
            request.get("metadata[commerce_refund_reason]"),
            "requested_by_merchant"
        );
        assert_eq!(
            request.get("metadata[commerce_order_id]"),
            refund.order.to_string()
        );
    }
    assert_eq!(fake.refund_count(), 1);
}

#[tokio::test]
async fn a_payment_already_refunded_counts_as_done() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).build().unwrap();
    let (first, _) = paid_order_refund(&fake, "refund_first", 99_900).await;
    let made = gateway.refund(&first).await.unwrap();
    // Another refund of the same payment, under another key (made from the
    // dashboard, say, or a second refund id): Stripe says it is already
    // refunded; that is success, reported with the refund that exists.
    let mut second = first.clone();
    second.id = RefundId::parse("refund_second").unwrap();
    let receipt = gateway.refund(&second).await.unwrap();
    assert_eq!(receipt, made);
    assert_eq!(fake.refund_count(), 1);
    assert_eq!(fake.requests_to(Method::GET, REFUNDS).len(), 1);
}

#[tokio::test]
async fn stripe_error_bodies_come_back_typed() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).build().unwrap();
    let (refund, _) = paid_order_refund(&fake, "refund_x", 1_000).await;

    // An unknown payment: 404 resource_missing, not retried.
    let mut unknown = refund.clone();
    unknown.payment_ref = Some("pi_does_not_exist".into());
    unknown.id = RefundId::parse("refund_unknown").unwrap();
    let err = gateway.refund_payment(&unknown).await.unwrap_err();
    match &err {
        Error::Rejected {
            status,
            kind,
            code,
            message,
        } => {
            assert_eq!(*status, 404);
            assert_eq!(kind, "invalid_request_error");
            assert_eq!(code.as_deref(), Some("resource_missing"));
            assert!(message.contains("pi_does_not_exist"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(
        fake.requests_to(Method::POST, REFUNDS).len(),
        1,
        "a refusal is not retried"
    );
    assert!(matches!(
        GatewayError::from(err),
        GatewayError::Rejected { message } if message.contains("resource_missing")
    ));

    // The same refund id with another amount: Stripe's idempotency_error.
    gateway.refund_payment(&refund).await.unwrap();
    let mut changed = refund.clone();
    changed.amount = Money::new(2_000, Currency::AUD);
    let err = gateway.refund_payment(&changed).await.unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { status: 400, kind, .. } if kind == "idempotency_error"),
        "{err:?}"
    );

    // No payment reference at all: nothing to send.
    let mut orphan = refund.clone();
    orphan.payment_ref = None;
    assert!(matches!(
        gateway.refund(&orphan).await,
        Err(GatewayError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn unreachable_stripe_is_transient() {
    // A port nothing listens on (bound, then closed).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let gateway = commerce_stripe::StripeGateway::builder(SECRET_KEY)
        .webhook_secret(WEBHOOK_SECRET)
        .success_url("https://shop.example/ok")
        .api_base(base)
        .max_retries(1)
        .retry_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let refund = Refund {
        id: RefundId::parse("refund_net").unwrap(),
        tenant: tenant("shop-a"),
        order: OrderId::new(),
        amount: Money::new(100, Currency::AUD),
        reason: RefundReason::Oversold,
        payment_ref: Some("pi_1".into()),
        status: RefundStatus::Pending,
        lines: vec![],
        last_failure: None,
        requested_at: clock_now(&commerce_core::ManualClock::at_unix(START_UNIX)),
    };
    let err = gateway.refund_payment(&refund).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                attempts: 2,
                status: None,
                ..
            }
        ),
        "{err:?}"
    );
}
