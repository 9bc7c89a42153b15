//! Promotion redemptions given back: an order cancelled or expired unpaid
//! returns the coupon use it took, once, and the limits hold throughout.

use super::{
    Arc, Barrier, CouponCode, Currency, Error, Harness, Money, Order, OrderStatus, PAYMENT_WINDOW,
    PromotionId, PromotionUsage, Shop, Sku, StoreFactory, customer, idempotency_key,
    limited_coupon,
};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_redemptions {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] redemptions:
            cancelling_gives_back_the_redemption,
            expiring_gives_back_the_redemption,
            a_release_racing_the_last_use_keeps_the_limit,
            a_release_is_never_applied_twice,
        }
    };
}

const COUPON: &str = "welcome";

/// The usage of the coupon, in total and by `customer_id`.
async fn usage(shop: &Shop, customer_id: &str) -> PromotionUsage {
    let id = PromotionId::parse(COUPON).unwrap();
    let customer = crate::ids::CustomerId::parse(customer_id).unwrap();
    shop.scope()
        .promotions()
        .usage(std::slice::from_ref(&id), Some(&customer))
        .await
        .unwrap()
        .get(&id)
        .copied()
        .unwrap_or_default()
}

/// Checks out one unit of `sku` for `customer_id` with the coupon entered.
async fn checkout_with_coupon(
    h: &Harness,
    sku: &Sku,
    customer_id: &str,
    key: &str,
) -> crate::error::Result<Order> {
    let cart = h.cart_with(sku, 1).await;
    h.shop
        .add_code(cart.id, &CouponCode::parse(COUPON).unwrap())
        .await
        .unwrap();
    h.shop
        .set_customer(cart.id, customer(customer_id))
        .await
        .unwrap();
    Ok(h.shop.checkout(cart.id, &idempotency_key(key)).await?.order)
}

/// A single-use-per-customer coupon: the customer's order takes it, the
/// next cart is refused with `CustomerLimitReached`; once the order is
/// cancelled, the same customer's next checkout gets the discount again.
pub async fn cancelling_gives_back_the_redemption(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-WELCOME", 10_000, 5).await;
    h.shop
        .put_promotion(limited_coupon(COUPON, COUPON, None, Some(1)))
        .await
        .unwrap();
    let first = checkout_with_coupon(&h, &sku, "casey", "first")
        .await
        .unwrap();
    assert_eq!(first.total(), Money::new(8_000, Currency::AUD));
    assert_eq!(usage(&h.shop, "casey").await.by_customer, 1);
    let refused = checkout_with_coupon(&h, &sku, "casey", "second").await;
    assert!(
        matches!(
            refused,
            Err(Error::PromotionExhausted {
                per_customer: true,
                ..
            })
        ),
        "{refused:?}"
    );
    let cancelled = h.shop.cancel_order(first.id, "changed mind").await.unwrap();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(
        usage(&h.shop, "casey").await,
        PromotionUsage {
            total: 0,
            by_customer: 0
        }
    );
    let again = checkout_with_coupon(&h, &sku, "casey", "third")
        .await
        .unwrap();
    assert_eq!(again.total(), Money::new(8_000, Currency::AUD));
    assert_eq!(usage(&h.shop, "casey").await.by_customer, 1);
}

/// An order that expires unpaid gives its coupon use back (and its stock);
/// a payment that arrives after all takes the use again, while a paid,
/// fulfilled or refunded order keeps it.
pub async fn expiring_gives_back_the_redemption(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-EXPIRE", 10_000, 5).await;
    h.shop
        .put_promotion(limited_coupon(COUPON, COUPON, Some(10), Some(1)))
        .await
        .unwrap();
    let order = checkout_with_coupon(&h, &sku, "drew", "expiring")
        .await
        .unwrap();
    h.clock.advance(PAYMENT_WINDOW);
    let report = h.shop.sweep().await.unwrap();
    assert_eq!(report.orders_expired, vec![order.id]);
    assert_eq!(usage(&h.shop, "drew").await, PromotionUsage::default());
    // The late payment finds the stock still there: paid, and the use is
    // taken again.
    let outcome = h.deliver(&h.paid(&order, "evt_late")).await;
    assert_eq!(outcome, crate::order::PaymentOutcome::Paid);
    assert_eq!(
        usage(&h.shop, "drew").await,
        PromotionUsage {
            total: 1,
            by_customer: 1
        }
    );
    h.shop.fulfil_order(order.id).await.unwrap();
    h.shop.refund_order(order.id).await.unwrap();
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Refunded
    );
    assert_eq!(
        usage(&h.shop, "drew").await,
        PromotionUsage {
            total: 1,
            by_customer: 1
        },
        "a paid order keeps its redemption through fulfilment and refund"
    );
}

/// A coupon with one use, taken by an order. The order is cancelled while
/// 10 other buyers check out with the coupon entered: at most one of them
/// gets it, and the usage count says exactly how many did.
pub async fn a_release_racing_the_last_use_keeps_the_limit(factory: &dyn StoreFactory) {
    const RACERS: usize = 10;
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-LAST", 10_000, RACERS as u32 + 1).await;
    h.shop
        .put_promotion(limited_coupon(COUPON, COUPON, Some(1), None))
        .await
        .unwrap();
    let holder = checkout_with_coupon(&h, &sku, "holder", "holder")
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(RACERS + 1));
    let mut racers = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        let cart = h.cart_with(&sku, 1).await;
        h.shop
            .add_code(cart.id, &CouponCode::parse(COUPON).unwrap())
            .await
            .unwrap();
        let (shop, barrier) = (h.shop.clone(), barrier.clone());
        racers.push(tokio::spawn(async move {
            barrier.wait().await;
            shop.checkout(cart.id, &idempotency_key(&format!("racer-{i}")))
                .await
        }));
    }
    let (shop, gate) = (h.shop.clone(), barrier.clone());
    let cancel = tokio::spawn(async move {
        gate.wait().await;
        shop.cancel_order(holder.id, "released").await
    });
    let mut with_coupon = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(checkout) => {
                assert_eq!(checkout.order.promotions.len(), 1);
                with_coupon += 1;
            }
            Err(Error::PromotionExhausted { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        cancel.await.unwrap().unwrap().status(),
        OrderStatus::Cancelled
    );
    assert!(with_coupon <= 1, "{with_coupon} checkouts got one use");
    assert_eq!(usage(&h.shop, "holder").await.total, with_coupon);
}

/// Two orders hold a coupon with two uses; one is paid. After the payment
/// window closes, 5 cancellations of the unpaid one race 5 sweeps: one of
/// them changes it, and the usage drops by exactly one.
pub async fn a_release_is_never_applied_twice(factory: &dyn StoreFactory) {
    const EACH: usize = 5;
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-TWICE", 10_000, 5).await;
    h.shop
        .put_promotion(limited_coupon(COUPON, COUPON, Some(2), None))
        .await
        .unwrap();
    let unpaid = checkout_with_coupon(&h, &sku, "a", "unpaid").await.unwrap();
    let paid = checkout_with_coupon(&h, &sku, "b", "paid").await.unwrap();
    h.deliver(&h.paid(&paid, "evt_paid")).await;
    assert_eq!(usage(&h.shop, "a").await.total, 2);
    h.clock.advance(PAYMENT_WINDOW);
    let barrier = Arc::new(Barrier::new(2 * EACH));
    let mut cancels = Vec::new();
    let mut sweeps = Vec::new();
    for _ in 0..EACH {
        let (shop, gate) = (h.shop.clone(), barrier.clone());
        cancels.push(tokio::spawn(async move {
            gate.wait().await;
            shop.cancel_order(unpaid.id, "raced").await
        }));
        let (shop, gate) = (h.shop.clone(), barrier.clone());
        sweeps.push(tokio::spawn(async move {
            gate.wait().await;
            shop.sweep().await
        }));
    }
    for cancel in cancels {
        match cancel.await.unwrap() {
            Ok(order) => assert_eq!(order.status(), OrderStatus::Cancelled),
            Err(Error::InvalidTransition { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    for sweep in sweeps {
        sweep.await.unwrap().unwrap();
    }
    let after = h.shop.order(unpaid.id).await.unwrap();
    assert!(
        matches!(
            after.status(),
            OrderStatus::Cancelled | OrderStatus::Expired
        ),
        "{:?}",
        after.status()
    );
    assert_eq!(
        usage(&h.shop, "a").await.total,
        1,
        "the unpaid order's use came back once; the paid one keeps its own"
    );
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!((level.on_hand, level.allocated), (4, 0));
}
