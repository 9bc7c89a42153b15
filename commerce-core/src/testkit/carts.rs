//! Carts: what setting a line refuses.

use super::{Currency, Entity, Error, Harness, Quantity, Sku, StoreFactory, idempotency_key, qty};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_carts {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] carts:
            cart_refusals,
            hostile_age_verification_text_is_refused,
            cart_limits_hold_against_hoarding,
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
