//! Carts: what setting a line refuses.

use super::{
    Arc, Barrier, Cart, Currency, Entity, Error, Harness, Quantity, Sku, StoreFactory,
    idempotency_key, qty,
};
use crate::clock::Clock;

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_carts {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] carts:
            cart_refusals,
            the_store_alone_refuses_every_bad_line,
            hostile_age_verification_text_is_refused,
            cart_limits_hold_against_hoarding,
            racing_new_lines_stop_at_the_line_limit,
            a_full_cart_still_changes_its_lines,
        }
    };
}

/// A cart refuses unknown SKUs, prices in another currency, and changes after
/// checkout; an empty cart cannot check out.
pub async fn cart_refusals(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("CPU-5950X", 40_000, 3).await;
    let nzd = h.shop.create_cart(Currency::NZD).await.unwrap();
    assert!(matches!(
        h.shop.set_line(nzd.id, &sku, Quantity::ONE).await,
        Err(Error::CurrencyMismatch {
            expected: Currency::NZD,
            found: Currency::AUD
        })
    ));
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 0);
    assert!(matches!(
        h.shop.checkout(nzd.id, &idempotency_key("empty")).await,
        Err(Error::EmptyCart(id)) if id == nzd.id
    ));
    let unknown = Sku::parse("NOPE").unwrap();
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    assert!(matches!(
        h.shop.set_line(cart.id, &unknown, Quantity::ONE).await,
        Err(Error::NotFound {
            entity: Entity::Sku,
            ..
        })
    ));
    let order = h.order_for(&sku, 1, "k1").await;
    assert!(matches!(
        h.shop.set_line(order.cart, &sku, qty(2)).await,
        Err(Error::CartCheckedOut { order: o, .. }) if o == order.id
    ));
}

/// `CartStore::set_line` called directly (the facade reads nothing before
/// it) refuses, in its documented order and each with nothing held: an
/// unknown cart, a checked-out cart, a line past the limits, an unknown SKU,
/// a SKU priced in another currency, and more than the stock; then a good
/// line is held. (A SKU of an unpublished product:
/// `unpublished_skus_cannot_be_added_to_carts`.)
pub async fn the_store_alone_refuses_every_bad_line(factory: &dyn StoreFactory) {
    use crate::cart::CartLimits;

    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-4090", 250_000, 2).await;
    let carts = h.shop.scope().carts();
    let now = h.clock.now();
    let expires = now + chrono::TimeDelta::minutes(15);
    let limits = CartLimits::new(2, 3);
    let set = |cart, sku: &Sku, n: u32| {
        let sku = sku.clone();
        async move {
            carts
                .set_line(cart, &sku, qty(n), limits, expires, now)
                .await
        }
    };

    let nowhere = crate::ids::CartId::new();
    assert!(matches!(
        set(nowhere, &sku, 1).await,
        Err(Error::NotFound {
            entity: Entity::Cart,
            ..
        })
    ));
    let order = h.order_for(&sku, 1, "done").await;
    assert!(matches!(
        set(order.cart, &sku, 1).await,
        Err(Error::CartCheckedOut { order: o, .. }) if o == order.id
    ));
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    assert!(matches!(
        set(cart.id, &sku, 4).await,
        Err(Error::CartLimit {
            per_line: true,
            max: 3,
            ..
        })
    ));
    // The limits come before the SKU: an unknown SKU past them is a limit.
    assert!(matches!(
        set(cart.id, &Sku::parse("NOPE").unwrap(), 4).await,
        Err(Error::CartLimit { per_line: true, .. })
    ));
    assert!(matches!(
        set(cart.id, &Sku::parse("NOPE").unwrap(), 1).await,
        Err(Error::NotFound {
            entity: Entity::Sku,
            ..
        })
    ));
    let nzd = h.shop.create_cart(Currency::NZD).await.unwrap();
    assert!(matches!(
        set(nzd.id, &sku, 1).await,
        Err(Error::CurrencyMismatch {
            expected: Currency::NZD,
            found: Currency::AUD
        })
    ));
    // One unit is in the order: one is left for this cart, not two.
    assert!(matches!(
        set(cart.id, &sku, 2).await,
        Err(Error::InsufficientStock {
            requested: 2,
            available: 1,
            ..
        })
    ));
    assert_eq!(
        h.shop.stock(&sku).await.unwrap().reserved,
        0,
        "nothing held"
    );
    assert!(h.shop.cart(cart.id).await.unwrap().lines.is_empty());
    assert!(h.shop.cart(nzd.id).await.unwrap().lines.is_empty());

    let held = set(cart.id, &sku, 1).await.unwrap();
    assert_eq!(held.lines.len(), 1);
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 1);
}

/// An age verification whose method or verifier holds a NUL character is
/// refused with the same typed error by the facade and by the store called
/// directly, and the cart keeps no verification.
pub async fn hostile_age_verification_text_is_refused(factory: &dyn StoreFactory) {
    use crate::cart::{AgeVerification, CartUpdate};
    use crate::clock::Clock;
    use crate::text::{TextField, TextReason};

    let h = Harness::new(factory).await;
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    match h
        .shop
        .record_age_verification(cart.id, "id\0scan", "staff")
        .await
    {
        Err(Error::InvalidText {
            field: TextField::AgeVerificationMethod,
            reason: TextReason::NulByte { offset: 2 },
        }) => {}
        other => panic!("expected InvalidText for the method, got {other:?}"),
    }
    let now = h.clock.now();
    let update = CartUpdate::VerifyAge(AgeVerification {
        method: "id-scan".into(),
        verified_by: "\0".into(),
        verified_at: now,
    });
    match h
        .shop
        .scope()
        .carts()
        .update_cart(cart.id, &update, now)
        .await
    {
        Err(Error::InvalidText {
            field: TextField::AgeVerifiedBy,
            reason: TextReason::NulByte { offset: 0 },
        }) => {}
        other => panic!("expected InvalidText for the verifier, got {other:?}"),
    }
    assert_eq!(h.shop.cart(cart.id).await.unwrap().age_verification, None);
    let verified = h
        .shop
        .record_age_verification(cart.id, "id-scan", "Ålesund front desk")
        .await
        .unwrap();
    assert_eq!(
        verified.age_verification.map(|v| v.verified_by),
        Some("Ålesund front desk".to_owned())
    );
}

/// With limits of 2 lines of at most 3 units: a fourth unit on a line and
/// a third line are refused with `CartLimit`, reserve nothing, and leave
/// the cart as it was; changing an existing line stays possible.
pub async fn cart_limits_hold_against_hoarding(factory: &dyn StoreFactory) {
    let h = Harness::with_config(factory, |config| config.with_cart_limits(2, 3)).await;
    let a = h.stocked("LIMIT-A", 1_000, 10).await;
    let b = h.stocked("LIMIT-B", 1_000, 10).await;
    let c = h.stocked("LIMIT-C", 1_000, 10).await;
    let cart = h.cart_with(&a, 3).await;
    let too_many_units = h.shop.set_line(cart.id, &a, qty(4)).await;
    assert!(
        matches!(
            too_many_units,
            Err(Error::CartLimit {
                per_line: true,
                max: 3,
                ..
            })
        ),
        "{too_many_units:?}"
    );
    h.shop.set_line(cart.id, &b, qty(1)).await.unwrap();
    let third_line = h.shop.set_line(cart.id, &c, qty(1)).await;
    assert!(
        matches!(
            third_line,
            Err(Error::CartLimit {
                per_line: false,
                max: 2,
                ..
            })
        ),
        "{third_line:?}"
    );
    assert_eq!(h.shop.stock(&c).await.unwrap().reserved, 0);
    assert_eq!(h.shop.stock(&a).await.unwrap().reserved, 3);
    let changed = h.shop.set_line(cart.id, &b, qty(2)).await.unwrap();
    assert_eq!(changed.lines.len(), 2);
}

/// A cart limited to 4 lines holds 3; 10 tasks, released together, each
/// add a different stocked SKU: exactly one succeeds, every other gets
/// `CartLimit` (the cart, `per_line: false`, `max: 4`), the cart ends with
/// exactly 4 lines, and the refused SKUs hold nothing. Half the racers go
/// through the facade and half call the store directly, so the facade's
/// early check cannot hide a store that does not hold the limit.
pub async fn racing_new_lines_stop_at_the_line_limit(factory: &dyn StoreFactory) {
    const MAX_LINES: usize = 4;
    const RACERS: usize = 10;
    let h = Harness::with_config(factory, |config| config.with_cart_limits(MAX_LINES, 5)).await;
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    for i in 0..MAX_LINES - 1 {
        let sku = h.stocked(&format!("HELD-{i}"), 1_000, 5).await;
        h.shop.set_line(cart.id, &sku, qty(2)).await.unwrap();
    }
    let mut skus = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        skus.push(h.stocked(&format!("RACER-{i}"), 1_000, 5).await);
    }
    let limits = h.commerce.config().cart_limits();
    let now = h.clock.now();
    let expires = now + chrono::TimeDelta::minutes(15);
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = skus
        .iter()
        .enumerate()
        .map(|(i, sku)| {
            let (shop, sku, barrier) = (h.shop.clone(), sku.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                if i % 2 == 0 {
                    shop.set_line(cart.id, &sku, Quantity::ONE).await
                } else {
                    shop.scope()
                        .carts()
                        .set_line(cart.id, &sku, Quantity::ONE, limits, expires, now)
                        .await
                }
            })
        })
        .collect();
    let mut results: Vec<Result<Cart, Error>> = Vec::with_capacity(RACERS);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let winners: Vec<&Sku> = skus
        .iter()
        .zip(&results)
        .filter_map(|(sku, result)| result.as_ref().ok().map(|_| sku))
        .collect();
    let after = h.shop.cart(cart.id).await.unwrap();
    assert_eq!(
        winners.len(),
        1,
        "one new line fits; the cart ended with {} lines",
        after.lines.len()
    );
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        match refused {
            Error::CartLimit {
                cart: c,
                per_line: false,
                max,
            } => {
                assert_eq!(*c, cart.id);
                assert_eq!(*max, MAX_LINES as u32);
            }
            other => panic!("a refused racer got {other:?} instead of CartLimit"),
        }
    }
    assert_eq!(after.lines.len(), MAX_LINES);
    for sku in &skus {
        let reserved = h.shop.stock(sku).await.unwrap().reserved;
        if winners.contains(&sku) {
            assert_eq!(reserved, 1, "the winner {sku} holds its unit");
            assert_eq!(after.line(sku).map(|l| l.quantity), Some(Quantity::ONE));
        } else {
            assert_eq!(reserved, 0, "the refused {sku} holds nothing");
            assert!(after.line(sku).is_none());
        }
    }
}

/// At its line limit a cart refuses a new line, also from the store called
/// directly (with `CartLimit`, holding nothing), while raising, lowering and
/// removing its existing lines all work; once a line is gone, a new one
/// fits again.
pub async fn a_full_cart_still_changes_its_lines(factory: &dyn StoreFactory) {
    let h = Harness::with_config(factory, |config| config.with_cart_limits(2, 5)).await;
    let a = h.stocked("FULL-A", 1_000, 10).await;
    let b = h.stocked("FULL-B", 1_000, 10).await;
    let c = h.stocked("FULL-C", 1_000, 10).await;
    let cart = h.cart_with(&a, 1).await;
    h.shop.set_line(cart.id, &b, qty(1)).await.unwrap();

    let limits = h.commerce.config().cart_limits();
    let now = h.clock.now();
    let expires = now + chrono::TimeDelta::minutes(15);
    let carts = h.shop.scope().carts();
    let new_line = carts
        .set_line(cart.id, &c, Quantity::ONE, limits, expires, now)
        .await;
    assert!(
        matches!(
            new_line,
            Err(Error::CartLimit { cart: id, per_line: false, max: 2 }) if id == cart.id
        ),
        "{new_line:?}"
    );
    let too_many_units = carts
        .set_line(cart.id, &a, qty(6), limits, expires, now)
        .await;
    assert!(
        matches!(
            too_many_units,
            Err(Error::CartLimit { cart: id, per_line: true, max: 5 }) if id == cart.id
        ),
        "{too_many_units:?}"
    );
    assert_eq!(h.shop.stock(&c).await.unwrap().reserved, 0);
    assert_eq!(h.shop.stock(&a).await.unwrap().reserved, 1);

    let raised = h.shop.set_line(cart.id, &a, qty(5)).await.unwrap();
    assert_eq!(raised.line(&a).map(|l| l.quantity), Some(qty(5)));
    assert_eq!(raised.lines.len(), 2);
    assert_eq!(h.shop.stock(&a).await.unwrap().reserved, 5);
    let lowered = h.shop.set_line(cart.id, &a, qty(3)).await.unwrap();
    assert_eq!(lowered.line(&a).map(|l| l.quantity), Some(qty(3)));
    assert_eq!(h.shop.stock(&a).await.unwrap().reserved, 3);

    let removed = h.shop.remove_line(cart.id, &b).await.unwrap();
    assert_eq!(removed.lines.len(), 1);
    assert_eq!(h.shop.stock(&b).await.unwrap().reserved, 0);
    let refilled = h.shop.set_line(cart.id, &c, qty(2)).await.unwrap();
    assert_eq!(refilled.lines.len(), 2);
    assert_eq!(h.shop.stock(&c).await.unwrap().reserved, 2);
}
