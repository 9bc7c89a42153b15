//! Payments exactly once: repeated and concurrent deliveries, late payments, mismatches, refunds retried.

use super::{
    Currency, Duration, Harness, Money, Order, OrderEventKind, OrderStatus, PAYMENT_WINDOW,
    PaymentEvent, PaymentEventKind, PaymentOutcome, RefundStatus, Sku, StoreFactory,
};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_payments {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] payments:
            payment_event_repeated_sequentially_applies_once,
            payment_event_repeated_concurrently_applies_once,
            late_payment_after_resale_is_refunded_once,
            late_payment_with_stock_still_there_takes_it,
            mismatched_payment_is_recorded_not_applied,
            failed_refund_is_retried_by_sweep,
            return_confirmations_and_the_webhook_apply_the_payment_once,
        }
    };
}

/// The order is paid, its one unit sold once, one paid event in its log.
async fn assert_sold_once(h: &Harness, order: &Order, sku: &Sku) {
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Paid
    );
    let level = h.shop.stock(sku).await.unwrap();
    assert_eq!((level.on_hand, level.allocated), (0, 0));
    assert_eq!(h.sold(&h.shop, sku).await, 1, "stock decremented once");
    let received = h
        .count_events(order, |k| {
            matches!(k, OrderEventKind::PaymentReceived { .. })
        })
        .await;
    assert_eq!(received, 1, "one paid event in the log");
}

async fn assert_paid_once(h: &Harness, order: &Order, sku: &Sku, outcomes: &[PaymentOutcome]) {
    let paid = outcomes
        .iter()
        .filter(|o| **o == PaymentOutcome::Paid)
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == PaymentOutcome::Duplicate)
        .count();
    assert_eq!((paid, duplicates), (1, outcomes.len() - 1), "{outcomes:?}");
    assert_sold_once(h, order, sku).await;
    let recorded = h
        .count_events(order, |k| {
            matches!(k, OrderEventKind::DuplicatePaymentEvent { .. })
        })
        .await;
    assert_eq!(recorded, outcomes.len() - 1, "duplicates recorded");
    assert!(h.gateway.refund_calls().is_empty());
}

/// The same payment success event delivered three times in a row: paid
/// once, stock decremented once, one paid event, two duplicates recorded.
pub async fn payment_event_repeated_sequentially_applies_once(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-PAY-SEQ", 120_000, 1).await;
    let order = h.order_for(&sku, 1, "pay-seq").await;
    let event = h.paid(&order, "evt_seq");
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(h.deliver(&event).await);
    }
    assert_eq!(outcomes[0], PaymentOutcome::Paid);
    assert_paid_once(&h, &order, &sku, &outcomes).await;

    // A repeat of the event id that names another order is still the same
    // event: a duplicate, recorded on the order it was applied to.
    let other_sku = h.stocked("GPU-PAY-SEQ-2", 10_000, 1).await;
    let other = h.order_for(&other_sku, 1, "pay-seq-2").await;
    let renamed = PaymentEvent {
        order: other.id,
        ..event.clone()
    };
    let other_log = h.shop.order_events(other.id).await.unwrap();
    assert_eq!(h.deliver(&renamed).await, PaymentOutcome::Duplicate);
    assert_eq!(h.shop.order_events(other.id).await.unwrap(), other_log);
    assert_eq!(
        h.shop.order(other.id).await.unwrap().status(),
        OrderStatus::AwaitingPayment
    );
    let recorded = h
        .count_events(&order, |k| {
            matches!(k, OrderEventKind::DuplicatePaymentEvent { .. })
        })
        .await;
    assert_eq!(recorded, 3);
}

/// The same payment success event delivered three times at once: exactly
/// one delivery applies it.
pub async fn payment_event_repeated_concurrently_applies_once(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-PAY-CONC", 120_000, 1).await;
    let order = h.order_for(&sku, 1, "pay-conc").await;
    let event = h.paid(&order, "evt_conc");
    let outcomes = h.deliver_concurrently(&event, 3).await;
    assert_paid_once(&h, &order, &sku, &outcomes).await;
}

/// A payment that arrives after the order's allocation lapsed and the unit
/// was sold to another cart: the order is oversold-refunded and exactly one
/// refund is sent, even when the payment is delivered three times at once.
pub async fn late_payment_after_resale_is_refunded_once(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-ONE-OFF", 99_900, 1).await;
    let slow = h.order_for(&sku, 1, "slow-buyer").await;
    h.clock.advance(PAYMENT_WINDOW);
    // No sweep: the lapse alone frees the unit.
    let fast = h.order_for(&sku, 1, "fast-buyer").await;
    assert_eq!(
        h.deliver(&h.paid(&fast, "evt_fast")).await,
        PaymentOutcome::Paid
    );

    let late = h.paid(&slow, "evt_late");
    let outcomes = h.deliver_concurrently(&late, 3).await;
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
    let calls = h.gateway.refund_calls();
    assert_eq!(calls.len(), 1, "exactly one refund call");
    assert_eq!(calls[0].id, oversold[0].id);
    assert_eq!(calls[0].amount, slow.total());
    assert_eq!(calls[0].order, slow.id);
    assert!(
        matches!(oversold[0].status, RefundStatus::Succeeded { .. }),
        "the outcome reports the refund as it stands after sending"
    );

    let after = h.shop.order(slow.id).await.unwrap();
    assert_eq!(after.status(), OrderStatus::OversoldRefunded);
    assert_eq!(
        h.count_events(&slow, |k| matches!(k, OrderEventKind::Oversold { .. }))
            .await,
        1
    );
    assert_eq!(
        h.count_events(&slow, |k| matches!(
            k,
            OrderEventKind::RefundSucceeded { .. }
        ))
        .await,
        1
    );
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!((level.on_hand, level.allocated, level.reserved), (0, 0, 0));
    assert_eq!(h.sold(&h.shop, &sku).await, 1, "the unit was sold once");
    assert!(
        h.shop
            .scope()
            .orders()
            .pending_refunds(10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A payment that arrives after the allocation lapsed (and the order was
/// expired by the sweep) takes the stock if it is still there.
pub async fn late_payment_with_stock_still_there_takes_it(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("CPU-LATE", 30_000, 1).await;
    let order = h.order_for(&sku, 1, "late-but-lucky").await;
    h.clock.advance(PAYMENT_WINDOW + Duration::from_secs(60));
    let report = h.shop.sweep().await.unwrap();
    assert_eq!(report.orders_expired, vec![order.id]);
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Expired
    );
    assert_eq!(
        h.shop.stock(&sku).await.unwrap().available(),
        1,
        "expiry released the unit"
    );

    assert_eq!(
        h.deliver(&h.paid(&order, "evt_late_ok")).await,
        PaymentOutcome::Paid
    );
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Paid
    );
    assert_eq!(h.shop.stock(&sku).await.unwrap().on_hand, 0);
    assert!(h.gateway.refund_calls().is_empty());
}

/// A payment whose amount or currency does not match the order does not
/// mark it paid and is recorded for review; a correct one afterwards does.
pub async fn mismatched_payment_is_recorded_not_applied(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-MISMATCH", 50_000, 1).await;
    let order = h.order_for(&sku, 1, "mismatch").await;
    let short = PaymentEvent {
        kind: PaymentEventKind::Succeeded {
            amount: Money::new(order.total().minor() - 1, Currency::AUD),
            payment_ref: None,
        },
        ..h.paid(&order, "evt_short")
    };
    let foreign = PaymentEvent {
        kind: PaymentEventKind::Succeeded {
            amount: Money::new(order.total().minor(), Currency::USD),
            payment_ref: None,
        },
        ..h.paid(&order, "evt_usd")
    };
    for event in [&short, &foreign] {
        assert!(
            matches!(h.deliver(event).await, PaymentOutcome::Mismatch { expected, .. } if expected == order.total())
        );
    }
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::AwaitingPayment
    );
    assert_eq!(h.shop.stock(&sku).await.unwrap().on_hand, 1);
    assert_eq!(
        h.count_events(&order, |k| matches!(
            k,
            OrderEventKind::PaymentMismatch { .. }
        ))
        .await,
        2
    );
    assert_eq!(
        h.deliver(&h.paid(&order, "evt_right")).await,
        PaymentOutcome::Paid
    );
}

/// A refund the gateway fails stays pending, is logged, and the sweep sends
/// it again with the same id until it succeeds.
pub async fn failed_refund_is_retried_by_sweep(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-RETRY", 60_000, 1).await;
    let slow = h.order_for(&sku, 1, "retry-slow").await;
    h.clock.advance(PAYMENT_WINDOW);
    let fast = h.order_for(&sku, 1, "retry-fast").await;
    assert_eq!(
        h.deliver(&h.paid(&fast, "evt_retry_fast")).await,
        PaymentOutcome::Paid
    );

    h.gateway.fail_next_refunds(1);
    assert!(matches!(
        h.deliver(&h.paid(&slow, "evt_retry_slow")).await,
        PaymentOutcome::Oversold { .. }
    ));
    let pending = h.shop.scope().orders().pending_refunds(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        h.count_events(&slow, |k| matches!(k, OrderEventKind::RefundFailed { .. }))
            .await,
        1
    );

    let report = h.shop.sweep().await.unwrap();
    assert_eq!((report.refunds_retried, report.refunds_confirmed), (1, 1));
    let calls = h.gateway.refund_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].id, calls[1].id,
        "the retry reuses the idempotency key"
    );
    assert!(
        h.shop
            .scope()
            .orders()
            .pending_refunds(10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.shop.sweep().await.unwrap().refunds_retried, 0);
}

/// The buyer's return from the payment page is confirmed through the
/// facade, the one way in beside webhooks: nothing while unpaid; once paid,
/// three confirmations (a reloaded success page) race three deliveries of
/// the provider's webhook, and the payment is applied once.
pub async fn return_confirmations_and_the_webhook_apply_the_payment_once(
    factory: &dyn StoreFactory,
) {
    const EACH: usize = 3;
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-RETURN", 10_000, 1).await;
    let order = h.order_for(&sku, 1, "return").await;
    let session = h
        .shop
        .order(order.id)
        .await
        .unwrap()
        .payment_session
        .unwrap();
    assert_eq!(h.commerce.confirm_return(&session.id).await.unwrap(), None);
    let paid_session = h.gateway.pay_session(&order).unwrap();
    assert_eq!(paid_session, session.id);
    let webhook = h.paid(&order, "evt_return_webhook");
    let barrier = super::Arc::new(super::Barrier::new(2 * EACH));
    let mut tasks = Vec::new();
    for i in 0..2 * EACH {
        let (h, barrier, webhook, session) = (
            h.clone(),
            barrier.clone(),
            webhook.clone(),
            session.id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            if i % 2 == 0 {
                h.deliver(&webhook).await
            } else {
                match h.commerce.confirm_return(&session).await.unwrap() {
                    Some(super::WebhookHandled::Applied(applied)) => applied.outcome,
                    other => panic!("expected an applied payment, got {other:?}"),
                }
            }
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let paid = outcomes
        .iter()
        .filter(|o| **o == PaymentOutcome::Paid)
        .count();
    assert_eq!(paid, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            PaymentOutcome::Paid | PaymentOutcome::Duplicate | PaymentOutcome::Ignored { .. }
        )),
        "{outcomes:?}"
    );
    assert_sold_once(&h, &order, &sku).await;
}
