//! Orders: idempotent checkout, the state machine, expiry, cancellation, merchant refunds, the price snapshot, age verification.

use super::promotions::limited_coupon;
use crate::clock::Clock;

use super::{
    Arc, Barrier, CartStatus, Category, CheckoutRequest, Currency, Duration, Error, Harness, Money,
    NewProduct, OrderDraft, OrderEventKind, OrderId, OrderStatus, PAYMENT_WINDOW, PaymentEvent,
    PaymentEventKind, PaymentOutcome, Quantity, RefundStatus, ShopSettings, Sku, StoreFactory,
    TaxCategory, TaxConfig, Variant, idempotency_key, qty,
};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_orders {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] orders:
            unpaid_order_expires_and_releases_stock,
            checkout_with_same_key_makes_one_order,
            invalid_transition_is_refused_without_event,
            cancelled_order_releases_stock_and_refunds_late_payment,
            merchant_refund_of_paid_order,
            age_restricted_items_need_a_recorded_verification,
            placed_order_keeps_its_price_snapshot,
            hostile_cancel_reason_is_refused,
            orders_are_listed_newest_first_by_keyset,
            a_paused_shop_places_no_order_and_keeps_its_switches,
            a_fulfilment_note_is_kept_in_the_log,
        }
    };
}

/// An order awaiting payment expires when its window closes; the sweep
/// releases its allocation and logs it.
pub async fn unpaid_order_expires_and_releases_stock(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-UNPAID", 80_000, 1).await;
    let order = h.order_for(&sku, 1, "unpaid").await;
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!(
        (level.reserved, level.allocated, level.available()),
        (0, 1, 0)
    );
    let allocations = h
        .shop
        .scope()
        .inventory()
        .order_allocations(order.id)
        .await
        .unwrap();
    assert_eq!(allocations.len(), 1);
    assert_eq!(allocations[0].expires_at, order.payment_expires_at);

    h.clock.advance(PAYMENT_WINDOW - Duration::from_secs(1));
    assert!(h.shop.sweep().await.unwrap().orders_expired.is_empty());
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.shop.sweep().await.unwrap().orders_expired, vec![order.id]);
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Expired
    );
    assert!(
        h.shop
            .scope()
            .inventory()
            .order_allocations(order.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.shop.stock(&sku).await.unwrap().available(), 1);
    assert_eq!(
        h.count_events(&order, |k| matches!(k, OrderEventKind::Expired { .. }))
            .await,
        1
    );
}

/// Checkout twice with the same idempotency key makes one order, whether the
/// calls are sequential or concurrent; the key cannot be reused for another
/// cart.
pub async fn checkout_with_same_key_makes_one_order(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("TEE-NAVY-L", 4_500, 10).await;
    let cart = h.cart_with(&sku, 2).await;
    let key = idempotency_key("checkout-1");
    let first = h.shop.checkout(cart.id, &key).await.unwrap();
    let second = h.shop.checkout(cart.id, &key).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.order.id, second.order.id);
    assert_eq!(first.session, second.session);
    assert_eq!(h.gateway.sessions_created(), vec![first.order.id]);
    assert_eq!(first.order.total(), Money::new(9_000, Currency::AUD));
    assert_eq!(h.shop.stock(&sku).await.unwrap().allocated, 2);

    let other = h.cart_with(&sku, 1).await;
    assert!(matches!(
        h.shop.checkout(other.id, &key).await,
        Err(Error::IdempotencyKeyReused { order, .. }) if order == first.order.id
    ));

    let racing = h.cart_with(&sku, 3).await;
    let key = idempotency_key("checkout-2");
    let barrier = Arc::new(Barrier::new(5));
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (shop, key, barrier) = (h.shop.clone(), key.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                shop.checkout(racing.id, &key).await
            })
        })
        .collect();
    let mut orders = Vec::new();
    let mut created = 0;
    for task in tasks {
        let checkout = task.await.unwrap().unwrap();
        created += usize::from(checkout.created);
        orders.push(checkout.order.id);
    }
    assert_eq!(created, 1, "one checkout creates the order");
    assert!(orders.iter().all(|id| *id == orders[0]));
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!((level.reserved, level.allocated), (1, 5));
}

/// An invalid state transition is refused with the from and to statuses and
/// leaves no event.
pub async fn invalid_transition_is_refused_without_event(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-FSM", 70_000, 2).await;
    let order = h.order_for(&sku, 1, "fsm").await;
    let before = h.shop.order_events(order.id).await.unwrap();
    assert!(matches!(
        h.shop.fulfil_order(order.id).await,
        Err(Error::InvalidTransition {
            from: OrderStatus::AwaitingPayment,
            to: OrderStatus::Fulfilled,
            ..
        })
    ));
    assert!(matches!(
        h.shop.refund_order(order.id).await,
        Err(Error::InvalidTransition {
            from: OrderStatus::AwaitingPayment,
            to: OrderStatus::Refunded,
            ..
        })
    ));
    assert_eq!(
        h.shop.order_events(order.id).await.unwrap(),
        before,
        "no event appended"
    );
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::AwaitingPayment
    );

    assert_eq!(
        h.deliver(&h.paid(&order, "evt_fsm")).await,
        PaymentOutcome::Paid
    );
    let before = h.shop.order_events(order.id).await.unwrap();
    assert!(matches!(
        h.shop.cancel_order(order.id, "changed my mind").await,
        Err(Error::InvalidTransition {
            from: OrderStatus::Paid,
            to: OrderStatus::Cancelled,
            ..
        })
    ));
    assert_eq!(h.shop.order_events(order.id).await.unwrap(), before);
    h.shop.fulfil_order(order.id).await.unwrap();
    let log = h.shop.order_events(order.id).await.unwrap();
    let seqs: Vec<u32> = log.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as u32).collect::<Vec<_>>(),
        "gapless sequence"
    );
    let last = log.last().unwrap();
    assert_eq!(
        (last.from, last.to),
        (OrderStatus::Paid, OrderStatus::Fulfilled)
    );
}

/// Cancelling an unpaid order releases its stock; a payment that still
/// arrives for it is refunded exactly once.
pub async fn cancelled_order_releases_stock_and_refunds_late_payment(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("CPU-CANCEL", 25_000, 1).await;
    let order = h.order_for(&sku, 1, "cancel").await;
    let cancelled = h.shop.cancel_order(order.id, "buyer asked").await.unwrap();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(h.shop.stock(&sku).await.unwrap().available(), 1);
    let event = h.paid(&order, "evt_after_cancel");
    assert!(matches!(
        h.deliver(&event).await,
        PaymentOutcome::RefundedAfterCancellation { .. }
    ));
    assert_eq!(h.deliver(&event).await, PaymentOutcome::Duplicate);
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Refunded
    );
    assert_eq!(h.gateway.refund_calls().len(), 1);
    assert_eq!(
        h.shop.stock(&sku).await.unwrap().on_hand,
        1,
        "nothing was sold"
    );
}

/// A merchant refund of a paid order goes to the gateway once, for what a
/// partial refund made at the provider left, and marks the order refunded;
/// a second one is refused.
pub async fn merchant_refund_of_paid_order(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-RETURN", 45_000, 1).await;
    let order = h.order_for(&sku, 1, "refund-me").await;
    assert_eq!(
        h.deliver(&h.paid(&order, "evt_refund_me")).await,
        PaymentOutcome::Paid
    );
    // A partial refund made at the provider: recorded, the order stays paid.
    let partial = PaymentEvent {
        kind: PaymentEventKind::Refunded {
            amount: Money::new(5_000, Currency::AUD),
        },
        ..h.paid(&order, "evt_partial_refund")
    };
    assert_eq!(h.deliver(&partial).await, PaymentOutcome::RefundRecorded);
    let after = h.shop.order(order.id).await.unwrap();
    assert_eq!(after.status(), OrderStatus::Paid);
    assert_eq!(
        after.refundable(&[]).unwrap(),
        Money::new(40_000, Currency::AUD)
    );

    let refund = h.shop.refund_order(order.id).await.unwrap();
    assert!(matches!(refund.status, RefundStatus::Succeeded { .. }));
    assert_eq!(
        refund.amount,
        Money::new(40_000, Currency::AUD),
        "what is left"
    );
    assert_eq!(refund.payment_ref, Some(format!("pay_{}", order.id)));
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Refunded
    );
    assert!(matches!(
        h.shop.refund_order(order.id).await,
        Err(Error::InvalidTransition {
            from: OrderStatus::Refunded,
            ..
        })
    ));
    assert_eq!(h.gateway.refund_calls().len(), 1);
}

/// Checkout refuses a cart holding age-restricted items until an age
/// verification is recorded for it, and the store refuses it too, so the
/// check cannot be bypassed.
pub async fn age_restricted_items_need_a_recorded_verification(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let wine = Sku::parse("SHIRAZ-750").unwrap();
    h.shop
        .add_product(NewProduct {
            name: "Barossa Shiraz 750ml".into(),
            category: Category::parse("wine").unwrap(),
            tax_category: TaxCategory::parse("standard").unwrap(),
            age_restricted: true,
            variants: vec![Variant::new(wine.clone(), Money::new(2_500, Currency::AUD))],
            published: true,
        })
        .await
        .unwrap();
    h.shop.receive_stock(&wine, qty(10), None).await.unwrap();
    let bread = h.stocked("BREAD", 450, 10).await;
    let cart = h.cart_with(&wine, 2).await;
    h.shop
        .set_line(cart.id, &bread, Quantity::ONE)
        .await
        .unwrap();

    match h.shop.checkout(cart.id, &idempotency_key("wine-1")).await {
        Err(Error::AgeVerificationRequired { skus }) => assert_eq!(skus, vec![wine.clone()]),
        other => panic!("expected AgeVerificationRequired, got {other:?}"),
    }
    // Straight to the store with a well-formed draft: refused as well.
    let (priced, now) = (h.shop.price_cart(cart.id).await.unwrap(), h.clock.now());
    let draft = OrderDraft {
        id: OrderId::new(),
        tenant: h.shop.tenant().clone(),
        cart: cart.id,
        idempotency_key: idempotency_key("wine-bypass"),
        customer: None,
        priced,
        redemptions: Vec::new(),
        payment_expires_at: now + chrono::TimeDelta::minutes(30),
    };
    assert!(matches!(
        h.shop.scope().orders().place_order(&draft, now).await,
        Err(Error::AgeVerificationRequired { .. })
    ));
    assert!(h.shop.cart(cart.id).await.unwrap().is_open());

    let verified = h
        .shop
        .record_age_verification(cart.id, "licence checked at collection", "staff:jo")
        .await
        .unwrap();
    let record = verified.age_verification.unwrap();
    assert_eq!(
        (record.method.as_str(), record.verified_at),
        ("licence checked at collection", h.clock.now())
    );
    let order = h
        .shop
        .checkout(cart.id, &idempotency_key("wine-1"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.total(), Money::new(5_450, Currency::AUD));
    assert!(matches!(
        h.shop.cart(cart.id).await.unwrap().status(),
        CartStatus::CheckedOut { order: o } if o == order.id
    ));
}

/// A placed order keeps the prices, discounts and taxes it was placed with:
/// changing the product's price, the promotion and the tax rules later
/// changes nothing in it. Checkout refuses a total the buyer was not shown.
pub async fn placed_order_keeps_its_price_snapshot(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    h.shop
        .put_settings(ShopSettings::with_tax(TaxConfig::australia_gst()))
        .await
        .unwrap();
    let sku = h.stocked("GPU-SNAPSHOT", 11_000, 5).await;
    let mut spec = limited_coupon("snapshot", "SNAP", None, None);
    spec.conditions.clear();
    h.shop.put_promotion(spec.clone()).await.unwrap();

    let cart = h.cart_with(&sku, 1).await;
    let shown = h.shop.price_cart(cart.id).await.unwrap().totals.grand_total;
    assert_eq!(shown, Money::new(8_800, Currency::AUD));

    // The price changes between the preview and the checkout.
    let product = h.shop.products(None, 10).await.unwrap().products.remove(0);
    let mut repriced = product.variants()[0].clone();
    repriced = Variant::new(repriced.sku().clone(), Money::new(12_000, Currency::AUD));
    h.shop
        .put_product(
            product.id(),
            NewProduct {
                name: product.name().into(),
                category: product.category().clone(),
                tax_category: product.tax_category().clone(),
                age_restricted: false,
                variants: vec![repriced],
                published: true,
            },
        )
        .await
        .unwrap();
    let request = CheckoutRequest::new(idempotency_key("snap-1")).expecting_total(shown);
    match h.shop.checkout_with(cart.id, &request).await {
        Err(Error::PriceChanged { expected, actual }) => {
            assert_eq!(
                (expected, actual),
                (shown, Money::new(9_600, Currency::AUD))
            );
        }
        other => panic!("expected PriceChanged, got {other:?}"),
    }
    assert!(
        h.shop.cart(cart.id).await.unwrap().is_open(),
        "nothing placed"
    );

    let request = CheckoutRequest::new(idempotency_key("snap-1"))
        .expecting_total(Money::new(9_600, Currency::AUD));
    let placed = h.shop.checkout_with(cart.id, &request).await.unwrap().order;
    assert_eq!(
        placed.lines[0].unit_price,
        Money::new(12_000, Currency::AUD)
    );
    assert_eq!(
        placed.lines[0].discount_total,
        Money::new(2_400, Currency::AUD)
    );
    assert_eq!(
        placed.lines[0].tax.amount,
        Money::new(873, Currency::AUD),
        "96.00 × 10/110 = 8.727"
    );
    assert_eq!(placed.promotions[0].promotion.as_str(), "snapshot");

    // Everything changes afterwards...
    h.shop.remove_promotion(&spec.id).await.unwrap();
    h.shop.put_settings(ShopSettings::default()).await.unwrap();
    h.shop
        .put_product(
            product.id(),
            NewProduct {
                name: "renamed".into(),
                category: product.category().clone(),
                tax_category: product.tax_category().clone(),
                age_restricted: false,
                variants: vec![Variant::new(sku.clone(), Money::new(1, Currency::AUD))],
                published: true,
            },
        )
        .await
        .unwrap();
    // ...and the order does not.
    assert_eq!(h.shop.order(placed.id).await.unwrap(), placed);
}

/// A cancel reason with a NUL byte (which PostgreSQL cannot store) is
/// refused by the core with `InvalidText` on every store: the order stays
/// awaiting payment, its stock allocated, its log unchanged.
pub async fn hostile_cancel_reason_is_refused(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-HOSTILE", 10_000, 1).await;
    let order = h.order_for(&sku, 1, "hostile").await;
    let before = h.shop.order_events(order.id).await.unwrap().len();
    let refused = h.shop.cancel_order(order.id, "changed\0mind").await;
    assert!(
        matches!(
            refused,
            Err(Error::InvalidText {
                field: crate::text::TextField::CancelReason,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::AwaitingPayment
    );
    assert_eq!(h.shop.order_events(order.id).await.unwrap().len(), before);
    assert_eq!(h.shop.stock(&sku).await.unwrap().allocated, 1);
}

/// Five orders a minute apart, two of them paid: listed newest first two
/// at a time, every order once; filtered by status and by time; an order
/// placed between two pages does not disturb the pages after the cursor.
pub async fn orders_are_listed_newest_first_by_keyset(factory: &dyn StoreFactory) {
    use crate::store::{OrderCursor, OrderFilter};
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-LIST", 10_000, 10).await;
    let mut placed = Vec::new();
    for i in 0..5 {
        placed.push(h.order_for(&sku, 1, &format!("list-{i}")).await);
        h.clock.advance(Duration::from_secs(60));
    }
    for order in &placed[1..3] {
        h.deliver(&h.paid(order, &format!("evt-{}", order.id)))
            .await;
    }
    let all = OrderFilter::default();
    let first = h.shop.orders(&all, None, 2).await.unwrap();
    let ids = |orders: &[crate::order::Order]| orders.iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(ids(&first.orders), vec![placed[4].id, placed[3].id]);
    let cursor = first.next.unwrap();
    // A new order between pages sorts before the cursor: not seen again.
    let newest = h.order_for(&sku, 1, "list-new").await;
    let second = h.shop.orders(&all, Some(&cursor), 2).await.unwrap();
    assert_eq!(ids(&second.orders), vec![placed[2].id, placed[1].id]);
    let third = h.shop.orders(&all, second.next.as_ref(), 2).await.unwrap();
    assert_eq!(ids(&third.orders), vec![placed[0].id]);
    assert_eq!(third.next, None);
    let paid = OrderFilter {
        status: Some(OrderStatus::Paid),
        ..OrderFilter::default()
    };
    let paid = h.shop.orders(&paid, None, 10).await.unwrap();
    assert_eq!(ids(&paid.orders), vec![placed[2].id, placed[1].id]);
    let window = OrderFilter {
        placed_from: Some(placed[1].placed_at),
        placed_before: Some(placed[3].placed_at),
        ..OrderFilter::default()
    };
    let window = h.shop.orders(&window, None, 10).await.unwrap();
    assert_eq!(ids(&window.orders), vec![placed[2].id, placed[1].id]);
    let everything = h.shop.orders(&all, None, 200).await.unwrap();
    assert_eq!(everything.orders.len(), 6);
    assert_eq!(everything.orders[0].id, newest.id);
    assert_eq!(OrderCursor::after(&everything.orders[5]).id, placed[0].id);
    assert!(
        h.other_shop("shop-b")
            .orders(&all, None, 10)
            .await
            .unwrap()
            .orders
            .is_empty()
    );
}

/// A shop whose settings say it is not accepting orders refuses checkout
/// with `NotAcceptingOrders` and places nothing (the cart stays open, its
/// hold stays); an order placed before the pause still answers its key.
/// The settings' switches are stored and read back as they were written.
pub async fn a_paused_shop_places_no_order_and_keeps_its_switches(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-PAUSED", 30_000, 2).await;
    let before = h.order_for(&sku, 1, "before-pause").await;

    let mut settings = h.shop.settings().await.unwrap();
    settings.accepting_orders = false;
    settings.switches.insert("show_sold_items".into(), true);
    settings.switches.insert("banner.sale".into(), false);
    h.shop.put_settings(settings.clone()).await.unwrap();
    assert_eq!(h.shop.settings().await.unwrap(), settings);

    let cart = h.cart_with(&sku, 1).await;
    let refused = h
        .shop
        .checkout(cart.id, &idempotency_key("during-pause"))
        .await;
    assert!(
        matches!(refused, Err(Error::NotAcceptingOrders)),
        "{refused:?}"
    );
    assert_eq!(
        h.shop.cart(cart.id).await.unwrap().status(),
        CartStatus::Open
    );
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!((level.reserved, level.allocated), (1, 1));
    let replayed = h
        .shop
        .checkout(before.cart, &idempotency_key("before-pause"))
        .await
        .unwrap();
    assert_eq!(replayed.order.id, before.id);

    settings.accepting_orders = true;
    h.shop.put_settings(settings).await.unwrap();
    let placed = h
        .shop
        .checkout(cart.id, &idempotency_key("during-pause"))
        .await
        .unwrap();
    assert!(placed.created);
}

/// A note given when an order is handed over ("photo ID checked") is kept
/// in its `Fulfilled` event on every store; a note no store can keep is
/// refused and the order stays paid.
pub async fn a_fulfilment_note_is_kept_in_the_log(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("WINE-NOTE", 2_500, 2).await;
    let order = h.order_for(&sku, 1, "noted").await;
    h.deliver(&h.paid(&order, "evt_noted")).await;
    let refused = h.shop.fulfil_order_with_note(order.id, "ID\0checked").await;
    assert!(
        matches!(refused, Err(Error::InvalidText { .. })),
        "{refused:?}"
    );
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::Paid
    );
    let fulfilled = h
        .shop
        .fulfil_order_with_note(order.id, "photo ID checked by Sam")
        .await
        .unwrap();
    assert_eq!(fulfilled.status(), OrderStatus::Fulfilled);
    let last = h.shop.order_events(order.id).await.unwrap().pop().unwrap();
    assert_eq!(
        last.kind,
        OrderEventKind::Fulfilled {
            note: Some("photo ID checked by Sam".into())
        }
    );
}
