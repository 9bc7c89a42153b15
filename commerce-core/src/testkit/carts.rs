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
