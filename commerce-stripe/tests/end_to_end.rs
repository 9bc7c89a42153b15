//! End to end through the core facade on the in-memory store: a cart checks
//! out, its Checkout Session is created on the fake Stripe, signed webhooks
//! arrive, the order moves and refunds go out exactly once.

// Helpers outside `#[test]` functions fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: panicking is how they fail a test"
)]

mod common;

use std::sync::Arc;

use axum::http::Method;
use commerce_core::testkit::PAYMENT_WINDOW;
use commerce_core::{
    Currency, Money, Order, OrderEventKind, OrderStatus, PaymentOutcome, RefundStatus, Shop,
    WebhookHandled, WebhookRequest,
};
use common::*;
use serde_json::{Value, json};
use tokio::sync::Barrier;

const REFUNDS: &str = "/v1/refunds";

fn outcome(handled: WebhookHandled) -> PaymentOutcome {
    match handled {
        WebhookHandled::Applied(applied) => applied.outcome,
        other => panic!("expected an applied event, got {other:?}"),
    }
}

/// Delivers `request` `times` times at once, from tasks released together.
async fn deliver_concurrently(
    commerce: &commerce_core::Commerce,
    request: &WebhookRequest,
    times: usize,
) -> Vec<PaymentOutcome> {
    let barrier = Arc::new(Barrier::new(times));
    let tasks: Vec<_> = (0..times)
        .map(|_| {
            let (commerce, request, barrier) = (commerce.clone(), request.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                commerce.handle_webhook(&request).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(outcome(task.await.unwrap().unwrap()));
    }
    outcomes
}

async fn count_events(shop: &Shop, order: &Order, pred: impl Fn(&OrderEventKind) -> bool) -> usize {
    shop.order_events(order.id)
        .await
        .unwrap()
        .iter()
        .filter(|e| pred(&e.kind))
        .count()
}

/// A `checkout.session.completed` for a session the fake has marked paid.
fn completed(event_id: &str, session: &Value) -> Vec<u8> {
    event_body(event_id, "checkout.session.completed", session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkout_pay_and_duplicate_deliveries_change_nothing() {
    let fake = FakeStripe::start().await;
    let (commerce, clock) = engine(gateway_builder(&fake).build().unwrap());
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU-3090",
        "RTX 3090",
        Money::new(99_900, Currency::AUD),
        1,
        &[],
    )
    .await;
    let cart = cart(&shop, Currency::AUD, &[(&gpu, 1)]).await;

    let checkout = shop.checkout(cart, &key("buy-1")).await.unwrap();
    let order = checkout.order.clone();
    let session = checkout.session.clone().expect("a Checkout Session");
    assert_eq!(order.status(), OrderStatus::AwaitingPayment);
    assert_eq!(fake.session_count(), 1);
    // The storefront repeats the checkout: same order, same session, no call.
    let again = shop.checkout(cart, &key("buy-1")).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.session, Some(session.clone()));
    assert_eq!(fake.requests().len(), 1);

    // The buyer pays; Stripe signs and sends checkout.session.completed,
    // carrying the metadata the gateway set on the session.
    let paid = fake.pay_session(&session.id);
    assert_eq!(paid["metadata"]["commerce_order_id"], order.id.to_string());
    let request = signed(&completed("evt_paid_1", &paid), &clock);
    let first = outcome(commerce.handle_webhook(&request).await.unwrap());
    assert_eq!(first, PaymentOutcome::Paid);
    let after = shop.order(order.id).await.unwrap();
    assert_eq!(after.status(), OrderStatus::Paid);
    assert_eq!(
        after.payment_ref.as_deref(),
        paid["payment_intent"].as_str()
    );
    let level = shop.stock(&gpu).await.unwrap();
    assert_eq!((level.on_hand, level.allocated, level.reserved), (0, 0, 0));

    // The same delivery 3 more times: once more, then twice at once.
    let again = outcome(commerce.handle_webhook(&request).await.unwrap());
    assert_eq!(again, PaymentOutcome::Duplicate);
    let outcomes = deliver_concurrently(&commerce, &request, 2).await;
    assert_eq!(outcomes, vec![PaymentOutcome::Duplicate; 2]);

    assert_eq!(
        shop.order(order.id).await.unwrap(),
        after,
        "nothing changed"
    );
    let level = shop.stock(&gpu).await.unwrap();
    assert_eq!((level.on_hand, level.allocated, level.reserved), (0, 0, 0));
    assert_eq!(
        count_events(&shop, &order, |k| matches!(
            k,
            OrderEventKind::PaymentReceived { .. }
        ))
        .await,
        1
    );
    assert_eq!(
        count_events(&shop, &order, |k| matches!(
            k,
            OrderEventKind::DuplicatePaymentEvent { .. }
        ))
        .await,
        3
    );
    let sold: i64 = shop
        .stock_adjustments(&gpu)
        .await
        .unwrap()
        .iter()
        .filter(|a| matches!(a.kind, commerce_core::AdjustmentKind::Sold { .. }))
        .map(|a| -a.delta)
        .sum();
    assert_eq!(sold, 1);
    assert!(fake.requests_to(Method::POST, REFUNDS).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_for_an_oversold_order_makes_exactly_one_refund_request() {
    let fake = FakeStripe::start().await;
    let (commerce, clock) = engine(gateway_builder(&fake).build().unwrap());
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU-ONE",
        "Used GPU",
        Money::new(45_000, Currency::AUD),
        1,
        &[],
    )
    .await;

    // A slow buyer checks out, lets the payment window lapse; the unit is
    // sold to a fast buyer meanwhile.
    let slow = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("slow"))
        .await
        .unwrap();
    clock.advance(PAYMENT_WINDOW);
    let fast = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("fast"))
        .await
        .unwrap();
    let fast_paid = fake.pay_session(&fast.session.unwrap().id);
    let fast_request = signed(&completed("evt_fast", &fast_paid), &clock);
    assert_eq!(
        outcome(commerce.handle_webhook(&fast_request).await.unwrap()),
        PaymentOutcome::Paid
    );

    // Then the slow buyer's payment clears, delivered three times at once.
    let slow_session = slow.session.unwrap();
    let slow_paid = fake.pay_session(&slow_session.id);
    let intent = slow_paid["payment_intent"].as_str().unwrap().to_owned();
    let request = signed(&completed("evt_slow", &slow_paid), &clock);
    let outcomes = deliver_concurrently(&commerce, &request, 3).await;
    let oversold: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            PaymentOutcome::Oversold { refund } => Some(refund.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(oversold.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == PaymentOutcome::Duplicate)
            .count(),
        2
    );
    let refund = &oversold[0];
    assert!(
        matches!(&refund.status, RefundStatus::Succeeded { provider_ref } if provider_ref.starts_with("re_test_")),
        "{:?}",
        refund.status
    );

    // Exactly one refund request reached Stripe, for the slow payment.
    let sent = fake.requests_to(Method::POST, REFUNDS);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].idempotency_key.as_deref(), Some(refund.id.as_str()));
    assert_eq!(sent[0].get("payment_intent"), intent);
    assert_eq!(sent[0].get("amount"), "45000");
    assert_eq!(sent[0].get("metadata[commerce_refund_reason]"), "oversold");
    assert_eq!(
        sent[0].get("metadata[commerce_order_id]"),
        slow.order.id.to_string()
    );
    assert_eq!(fake.refund_count(), 1);

    let after = shop.order(slow.order.id).await.unwrap();
    assert_eq!(after.status(), OrderStatus::OversoldRefunded);
    let level = shop.stock(&gpu).await.unwrap();
    assert_eq!((level.on_hand, level.allocated, level.reserved), (0, 0, 0));

    // Stripe then reports the refund it made (charge.refunded): recorded,
    // nothing else moves, still one refund.
    let charge = json!({
        "id": "ch_slow", "object": "charge", "amount": 45_000, "amount_refunded": 45_000,
        "currency": "aud", "payment_intent": intent, "refunded": true,
        "metadata": slow_paid["metadata"].clone()
    });
    let refunded = signed(
        &event_body("evt_slow_refunded", "charge.refunded", &charge),
        &clock,
    );
    let handled = outcome(commerce.handle_webhook(&refunded).await.unwrap());
    assert!(
        matches!(handled, PaymentOutcome::Ignored { .. }),
        "{handled:?}"
    );
    assert_eq!(
        shop.order(slow.order.id).await.unwrap().status(),
        OrderStatus::OversoldRefunded
    );
    assert_eq!(fake.requests_to(Method::POST, REFUNDS).len(), 1);
}

#[tokio::test]
async fn unknown_types_and_unknown_fields_are_acknowledged() {
    let fake = FakeStripe::start().await;
    let (commerce, clock) = engine(gateway_builder(&fake).build().unwrap());

    // An event type from the future, with fields nobody knows about.
    let body = serde_json::to_vec(&json!({
        "id": "evt_future", "object": "event", "api_version": "2031-01-01.zucchini",
        "type": "treasury.quantum_transfer.entangled",
        "context": "acct_123", "reason": { "automation_action": null },
        "data": { "object": { "id": "qt_1", "object": "quantum_transfer", "spin": 0.5 } }
    }))
    .unwrap();
    let handled = commerce
        .handle_webhook(&signed(&body, &clock))
        .await
        .unwrap();
    assert_eq!(
        handled,
        WebhookHandled::Ignored {
            event_type: "treasury.quantum_transfer.entangled".into()
        }
    );

    // A known type in a newer API version, with extra fields at every level,
    // still takes effect.
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(10_000, Currency::AUD),
        1,
        &[],
    )
    .await;
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    let mut session = fake.pay_session(&checkout.session.unwrap().id);
    session["brand_new_object"] = json!({ "nested": { "deeper": [1, 2, 3] } });
    session["payment_status_details"] = json!("a new field");
    let mut body: Value = serde_json::from_slice(&completed("evt_v2", &session)).unwrap();
    body["api_version"] = json!("2031-01-01.zucchini");
    body["new_top_level"] = json!({ "x": 1 });
    body["data"]["new_data_field"] = json!(true);
    let request = signed(&serde_json::to_vec(&body).unwrap(), &clock);
    assert_eq!(
        outcome(commerce.handle_webhook(&request).await.unwrap()),
        PaymentOutcome::Paid
    );

    // Events the core does not act on (a payment intent event, an unpaid
    // completion) are acknowledged too.
    for (event_type, object) in [
        (
            "payment_intent.succeeded",
            json!({ "id": "pi_1", "object": "payment_intent" }),
        ),
        ("checkout.session.completed", {
            let mut unpaid = session.clone();
            unpaid["payment_status"] = json!("unpaid");
            unpaid
        }),
    ] {
        let request = signed(&event_body("evt_other", event_type, &object), &clock);
        assert_eq!(
            commerce.handle_webhook(&request).await.unwrap(),
            WebhookHandled::Ignored {
                event_type: event_type.into()
            }
        );
    }
}

#[tokio::test]
async fn an_expired_session_expires_the_order_and_frees_the_stock() {
    let fake = FakeStripe::start().await;
    let (commerce, clock) = engine(gateway_builder(&fake).build().unwrap());
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(10_000, Currency::AUD),
        1,
        &[],
    )
    .await;
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    let mut session = fake.session(&checkout.session.unwrap().id);
    session["status"] = json!("expired");
    let request = signed(
        &event_body("evt_expired", "checkout.session.expired", &session),
        &clock,
    );
    assert_eq!(
        outcome(commerce.handle_webhook(&request).await.unwrap()),
        PaymentOutcome::Expired
    );
    assert_eq!(
        shop.order(checkout.order.id).await.unwrap().status(),
        OrderStatus::Expired
    );
    assert_eq!(shop.stock(&gpu).await.unwrap().available(), 1);
}

#[tokio::test]
async fn a_merchant_refund_goes_to_stripe_once_and_the_sweep_retries_failures() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).max_retries(0).build().unwrap();
    let (commerce, clock) = engine(gateway);
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(10_000, Currency::AUD),
        1,
        &[],
    )
    .await;
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    let paid = fake.pay_session(&checkout.session.unwrap().id);
    commerce
        .handle_webhook(&signed(&completed("evt_p", &paid), &clock))
        .await
        .unwrap();

    // Stripe is down for the first try: the refund stays pending...
    fake.fail_next(REFUNDS, 503, 1);
    let refund = shop.refund_order(checkout.order.id).await.unwrap();
    assert_eq!(refund.status, RefundStatus::Pending);
    // ...and the sweep sends it again with the same key.
    let report = shop.sweep().await.unwrap();
    assert_eq!((report.refunds_retried, report.refunds_confirmed), (1, 1));
    let sent = fake.requests_to(Method::POST, REFUNDS);
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|r| r.idempotency_key.as_deref() == Some(refund.id.as_str()))
    );
    assert_eq!(fake.refund_count(), 1);
    assert_eq!(
        shop.order(checkout.order.id).await.unwrap().status(),
        OrderStatus::Refunded
    );
}

/// The storefront's success page confirms the payment while the webhook
/// arrives, both several times and at once: the payment is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storefront_confirmation_racing_the_webhook_applies_the_payment_once() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).build().unwrap();
    let (commerce, clock) = engine(gateway.clone());
    let shop = commerce.shop(&tenant("shop-a"));
    let gpu = product(
        &shop,
        "GPU",
        "GPU",
        Money::new(10_000, Currency::AUD),
        1,
        &[],
    )
    .await;
    let checkout = shop
        .checkout(cart(&shop, Currency::AUD, &[(&gpu, 1)]).await, &key("k"))
        .await
        .unwrap();
    let session_id = checkout.session.unwrap().id;

    // Not paid yet: nothing to confirm.
    assert_eq!(
        gateway.confirm_checkout_session(&session_id).await.unwrap(),
        None
    );
    // Not a session id (it comes from a URL): refused, nothing sent.
    let sent = fake.requests().len();
    assert!(matches!(
        gateway.confirm_checkout_session("../refunds").await,
        Err(commerce_stripe::Error::Unsupported(_))
    ));
    assert_eq!(fake.requests().len(), sent);

    let paid = fake.pay_session(&session_id);
    let webhook = signed(&completed("evt_race", &paid), &clock);
    let barrier = Arc::new(Barrier::new(6));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (commerce, webhook, barrier, session_id) = (
            commerce.clone(),
            webhook.clone(),
            barrier.clone(),
            session_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            if i % 2 == 0 {
                outcome(commerce.handle_webhook(&webhook).await.unwrap())
            } else {
                // The success page goes through the facade, like a webhook.
                let handled = commerce
                    .confirm_return(&session_id)
                    .await
                    .unwrap()
                    .expect("paid");
                outcome(handled)
            }
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == PaymentOutcome::Paid)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            PaymentOutcome::Paid | PaymentOutcome::Duplicate | PaymentOutcome::Ignored { .. }
        )),
        "{outcomes:?}"
    );
    let order = shop.order(checkout.order.id).await.unwrap();
    assert_eq!(order.status(), OrderStatus::Paid);
    assert_eq!(
        count_events(&shop, &order, |k| matches!(
            k,
            OrderEventKind::PaymentReceived { .. }
        ))
        .await,
        1
    );
    let level = shop.stock(&gpu).await.unwrap();
    assert_eq!((level.on_hand, level.allocated), (0, 0));
    assert!(fake.requests_to(Method::POST, REFUNDS).is_empty());
}
