//! Merchant refunds: partial, by amount or by line, idempotent by id,
//! never more than was paid, and typed failures.

use super::{
    Arc, Barrier, Currency, Error, Harness, Money, Order, OrderEventKind, OrderStatus, Sku,
    StoreFactory,
};
use crate::ids::RefundId;
use crate::order::{RefundError, RefundFailureKind, RefundLine, RefundRequest};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_refunds {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] refunds:
            partial_refunds_add_up_to_the_payment,
            racing_partial_refunds_never_exceed_the_payment,
            line_refunds_split_a_line_exactly,
            a_failed_refund_keeps_its_typed_failure,
        }
    };
}

fn aud(minor: i64) -> Money {
    Money::new(minor, Currency::AUD)
}

fn id(name: &str) -> RefundId {
    RefundId::parse(name).unwrap()
}

/// A paid order for `quantity` units of a new SKU priced `price`.
async fn paid_order(h: &Harness, sku: &str, price: i64, quantity: u32) -> (Order, Sku) {
    let sku = h.stocked(sku, price, quantity).await;
    let order = h.order_for(&sku, quantity, &format!("order-{sku}")).await;
    h.deliver(&h.paid(&order, &format!("evt-{sku}"))).await;
    (h.shop.order(order.id).await.unwrap(), sku)
}

/// A paid order of 10,000: 3,000 refunded, then the same request again
/// (the same refund, nothing new), the same id for another amount
/// (refused), 8,000 (refused: 7,000 left), then the rest. The order is
/// refunded only then; each refund is in the audit log and was sent once.
pub async fn partial_refunds_add_up_to_the_payment(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let (order, _) = paid_order(&h, "GPU-PARTIAL", 10_000, 1).await;
    let first = RefundRequest::amount(aud(3_000)).with_id(id("refund-1"));
    let refund = h.shop.refund(order.id, first.clone()).await.unwrap();
    assert_eq!(refund.amount, aud(3_000));
    assert!(!refund.is_pending(), "the test gateway confirms at once");
    let after = h.shop.order(order.id).await.unwrap();
    assert_eq!(after.status(), OrderStatus::Paid);
    let refunds = h.shop.order_refunds(order.id).await.unwrap();
    assert_eq!(after.refundable(&refunds).unwrap(), aud(7_000));

    let again = h.shop.refund(order.id, first).await.unwrap();
    assert_eq!(again.id, refund.id);
    let reused = h
        .shop
        .refund(
            order.id,
            RefundRequest::amount(aud(1_000)).with_id(id("refund-1")),
        )
        .await;
    assert!(
        matches!(reused, Err(Error::Refund(RefundError::IdReused { .. }))),
        "{reused:?}"
    );
    let too_much = h
        .shop
        .refund(order.id, RefundRequest::amount(aud(8_000)))
        .await;
    assert!(
        matches!(
            too_much,
            Err(Error::Refund(RefundError::ExceedsRefundable { requested, refundable, .. }))
                if requested == aud(8_000) && refundable == aud(7_000)
        ),
        "{too_much:?}"
    );
    let rest = h
        .shop
        .refund(order.id, RefundRequest::remaining().with_id(id("refund-2")))
        .await
        .unwrap();
    assert_eq!(rest.amount, aud(7_000));
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Refunded
    );
    let nothing_left = h.shop.refund(order.id, RefundRequest::amount(aud(1))).await;
    assert!(
        matches!(nothing_left, Err(Error::InvalidTransition { .. })),
        "{nothing_left:?}"
    );
    let requested = h
        .count_events(&order, |k| {
            matches!(k, OrderEventKind::RefundRequested { .. })
        })
        .await;
    assert_eq!(requested, 2);
    assert_eq!(h.gateway.refund_calls().len(), 2);
}

/// Ten partial refunds of 4,000 race on a paid order of 10,000: exactly two
/// are recorded; the others are refused with what is left, and the order
/// keeps 2,000 refundable.
pub async fn racing_partial_refunds_never_exceed_the_payment(factory: &dyn StoreFactory) {
    const RACERS: usize = 10;
    let h = Harness::new(factory).await;
    let (order, _) = paid_order(&h, "GPU-RACE-REFUND", 10_000, 1).await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (shop, barrier) = (h.shop.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let request = RefundRequest::amount(aud(4_000)).with_id(id(&format!("race-{i}")));
                shop.refund(order.id, request).await
            })
        })
        .collect();
    let (mut made, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(refund) => {
                assert_eq!(refund.amount, aud(4_000));
                made += 1;
            }
            Err(Error::Refund(RefundError::ExceedsRefundable { .. })) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((made, refused), (2, RACERS - 2));
    let refunds = h.shop.order_refunds(order.id).await.unwrap();
    assert_eq!(refunds.len(), 2);
    let after = h.shop.order(order.id).await.unwrap();
    assert_eq!(after.status(), OrderStatus::Paid);
    assert_eq!(after.refundable(&refunds).unwrap(), aud(2_000));
}

/// A line of 3 units priced 1,001 less a 20% coupon refunded one unit at a
/// time: the three refunds sum exactly to the line's total, a fourth unit
/// is refused, and the order is refunded when every unit is.
pub async fn line_refunds_split_a_line_exactly(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-LINES", 1_001, 3).await;
    h.shop
        .put_promotion(super::limited_coupon("twenty", "TWENTY", None, None))
        .await
        .unwrap();
    let cart = h.cart_with(&sku, 3).await;
    h.shop
        .add_code(cart.id, &crate::ids::CouponCode::parse("TWENTY").unwrap())
        .await
        .unwrap();
    let order = h
        .shop
        .checkout(cart.id, &super::idempotency_key("lines"))
        .await
        .unwrap()
        .order;
    h.deliver(&h.paid(&order, "evt-lines")).await;
    let line_total = order.lines[0].total;
    assert_eq!(order.total(), line_total, "no shipping in the harness");
    let unit = || {
        RefundRequest::lines(vec![RefundLine {
            sku: sku.clone(),
            quantity: 1,
        }])
    };
    let mut amounts = Vec::new();
    for _ in 0..3 {
        amounts.push(h.shop.refund(order.id, unit()).await.unwrap().amount);
    }
    assert_eq!(
        Money::sum(Currency::AUD, amounts.iter().copied()).unwrap(),
        line_total
    );
    let spread = amounts.iter().map(|a| a.minor()).max().unwrap()
        - amounts.iter().map(|a| a.minor()).min().unwrap();
    assert!(spread <= 1, "{amounts:?}");
    let fourth = h.shop.refund(order.id, unit()).await;
    assert!(
        matches!(
            fourth,
            Err(Error::InvalidTransition { .. })
                | Err(Error::Refund(RefundError::ExceedsLine {
                    refundable: 0,
                    ..
                }))
        ),
        "{fourth:?}"
    );
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Refunded
    );
}

/// The gateway fails a refund transiently: the refund stays pending with a
/// typed failure, the audit log records its kind, and the sweeper's retry
/// clears it.
pub async fn a_failed_refund_keeps_its_typed_failure(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let (order, _) = paid_order(&h, "GPU-FAILING", 10_000, 1).await;
    h.gateway.fail_next_refunds(1);
    let refund = h
        .shop
        .refund(order.id, RefundRequest::amount(aud(2_500)))
        .await
        .unwrap();
    assert!(refund.is_pending());
    let failure = refund.last_failure.clone().unwrap();
    assert_eq!(failure.kind, RefundFailureKind::Transient);
    let failed = h
        .count_events(&order, |k| {
            matches!(
                k,
                OrderEventKind::RefundFailed {
                    kind: RefundFailureKind::Transient,
                    ..
                }
            )
        })
        .await;
    assert_eq!(failed, 1);
    let report = h.shop.sweep().await.unwrap();
    assert_eq!((report.refunds_retried, report.refunds_confirmed), (1, 1));
    let refunds = h.shop.order_refunds(order.id).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert!(!refunds[0].is_pending());
    assert_eq!(refunds[0].last_failure, None);
}
