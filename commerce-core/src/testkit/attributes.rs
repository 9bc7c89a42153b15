//! Cart attributes: a bounded map of key → text on a cart, changed like
//! any cart detail, copied to the order it becomes.

use std::collections::BTreeMap;

use crate::cart::{AttributeKey, CartAttributeError, CartUpdate, MAX_ATTRIBUTES};
use crate::clock::Clock;
use crate::text::TextReason;

use super::{Currency, Error, Harness, OrderStatus, StoreFactory, idempotency_key};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_attributes {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] attributes:
            cart_attributes_are_set_replaced_and_removed,
            cart_attribute_bounds_are_refused,
            cart_attributes_are_copied_to_the_order,
        }
    };
}

fn key(text: &str) -> AttributeKey {
    AttributeKey::parse(text).unwrap()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<AttributeKey, String> {
    pairs
        .iter()
        .map(|(k, v)| (key(k), (*v).to_owned()))
        .collect()
}

/// Setting two attributes, replacing one's value and removing the other
/// leave exactly what was asked; removing an absent key changes nothing; a
/// value of exactly 500 bytes (250 two-byte characters) and an empty value
/// are kept; a read of the cart shows what the changes returned.
pub async fn cart_attributes_are_set_replaced_and_removed(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    assert!(cart.attributes().is_empty());
    let email = key("email");
    let slot = key("pickup.slot");

    h.shop
        .set_cart_attribute(cart.id, &email, Some("ada@example.com".into()))
        .await
        .unwrap();
    let set = h
        .shop
        .set_cart_attribute(cart.id, &slot, Some("Sat 10:00–10:30".into()))
        .await
        .unwrap();
    assert_eq!(
        set.attributes(),
        &map(&[
            ("email", "ada@example.com"),
            ("pickup.slot", "Sat 10:00–10:30")
        ])
    );
    let replaced = h
        .shop
        .set_cart_attribute(cart.id, &email, Some("grace@example.com".into()))
        .await
        .unwrap();
    assert_eq!(replaced.attributes().len(), 2);
    assert_eq!(replaced.attributes()[&email], "grace@example.com");
    let removed = h
        .shop
        .set_cart_attribute(cart.id, &slot, None)
        .await
        .unwrap();
    assert_eq!(
        removed.attributes(),
        &map(&[("email", "grace@example.com")])
    );
    let absent = h
        .shop
        .set_cart_attribute(cart.id, &key("gift-note"), None)
        .await
        .unwrap();
    assert_eq!(absent.attributes(), removed.attributes());

    let longest = "é".repeat(250);
    let kept = h
        .shop
        .set_cart_attribute(cart.id, &key("gift-note"), Some(longest.clone()))
        .await
        .unwrap();
    assert_eq!(kept.attributes()[&key("gift-note")], longest);
    let empty = h
        .shop
        .set_cart_attribute(cart.id, &key("po_number"), Some(String::new()))
        .await
        .unwrap();
    assert_eq!(empty.attributes()[&key("po_number")], "");
    assert_eq!(h.shop.cart(cart.id).await.unwrap(), empty);
}

/// Every bound is refused with its typed error, naming the key and the
/// limit, by the facade and by the store called directly, and changes
/// nothing: a seventeenth key (replacing one of the sixteen stays
/// possible), a value of 501 bytes or 502 (251 two-byte characters), a
/// value holding a NUL character; keys are parsed before anything is sent.
pub async fn cart_attribute_bounds_are_refused(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    for n in 0..MAX_ATTRIBUTES {
        h.shop
            .set_cart_attribute(cart.id, &key(&format!("k{n}")), Some(format!("v{n}")))
            .await
            .unwrap();
    }
    let full = h.shop.cart(cart.id).await.unwrap();
    assert_eq!(full.attributes().len(), 16);

    let one_more = key("seventeenth");
    match h
        .shop
        .set_cart_attribute(cart.id, &one_more, Some("x".into()))
        .await
    {
        Err(Error::CartAttribute(CartAttributeError::TooMany { key: k, max: 16 })) => {
            assert_eq!(k, one_more);
        }
        other => panic!("expected TooMany, got {other:?}"),
    }
    let now = h.clock.now();
    let direct = CartUpdate::SetAttribute {
        key: one_more.clone(),
        value: Some("x".into()),
    };
    assert!(matches!(
        h.shop
            .scope()
            .carts()
            .update_cart(cart.id, &direct, now)
            .await,
        Err(Error::CartAttribute(CartAttributeError::TooMany {
            max: 16,
            ..
        }))
    ));
    assert_eq!(h.shop.cart(cart.id).await.unwrap(), full, "nothing changed");
    let replaced = h
        .shop
        .set_cart_attribute(cart.id, &key("k3"), Some("three".into()))
        .await
        .unwrap();
    assert_eq!(replaced.attributes().len(), 16);
    assert_eq!(replaced.attributes()[&key("k3")], "three");

    let cases = [
        (
            "x".repeat(501),
            TextReason::TooLong {
                length: 501,
                max: 500,
            },
        ),
        (
            "é".repeat(251),
            TextReason::TooLong {
                length: 502,
                max: 500,
            },
        ),
        ("ada\0".to_owned(), TextReason::NulByte { offset: 3 }),
    ];
    let before = h.shop.cart(cart.id).await.unwrap();
    for (value, reason) in cases {
        match h
            .shop
            .set_cart_attribute(cart.id, &key("k5"), Some(value.clone()))
            .await
        {
            Err(Error::CartAttribute(CartAttributeError::InvalidValue { key: k, reason: r })) => {
                assert_eq!((k, r), (key("k5"), reason));
            }
            other => panic!("expected InvalidValue {reason}, got {other:?}"),
        }
        let direct = CartUpdate::SetAttribute {
            key: key("k5"),
            value: Some(value),
        };
        match h
            .shop
            .scope()
            .carts()
            .update_cart(cart.id, &direct, now)
            .await
        {
            Err(Error::CartAttribute(CartAttributeError::InvalidValue { reason: r, .. })) => {
                assert_eq!(r, reason);
            }
            other => panic!("expected InvalidValue {reason} from the store, got {other:?}"),
        }
    }
    assert_eq!(
        h.shop.cart(cart.id).await.unwrap(),
        before,
        "nothing changed"
    );

    for bad in ["", "Email", "9lives", "pickup slot", &"k".repeat(41)] {
        assert!(
            matches!(
                AttributeKey::parse(bad),
                Err(CartAttributeError::InvalidKey { max: 40, .. })
            ),
            "{bad:?}"
        );
    }
    let unknown = crate::ids::CartId::new();
    assert!(matches!(
        h.shop
            .set_cart_attribute(unknown, &key("email"), None)
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// Placing an order copies the cart's attributes to it, as the cart held
/// them at placement; a read of the order (and an idempotent repeat of the
/// checkout) shows them; an order from a cart without attributes has none.
/// After checkout the cart's attributes can neither be set nor removed.
pub async fn cart_attributes_are_copied_to_the_order(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("PICKUP-1", 2_000, 5).await;
    let cart = h.cart_with(&sku, 1).await;
    h.shop
        .set_cart_attribute(cart.id, &key("email"), Some("ada@example.com".into()))
        .await
        .unwrap();
    h.shop
        .set_cart_attribute(cart.id, &key("pickup.slot"), Some("Sat 10:00".into()))
        .await
        .unwrap();
    h.shop
        .set_cart_attribute(cart.id, &key("pickup.slot"), Some("Sat 11:00".into()))
        .await
        .unwrap();
    let expected = map(&[("email", "ada@example.com"), ("pickup.slot", "Sat 11:00")]);

    let key_text = idempotency_key("attributes-1");
    let placed = h.shop.checkout(cart.id, &key_text).await.unwrap();
    assert_eq!(placed.order.status(), OrderStatus::AwaitingPayment);
    assert_eq!(placed.order.attributes(), &expected);
    assert_eq!(
        h.shop.order(placed.order.id).await.unwrap().attributes(),
        &expected,
        "stored with the order"
    );
    let repeat = h.shop.checkout(cart.id, &key_text).await.unwrap();
    assert!(!repeat.created);
    assert_eq!(repeat.order.attributes(), &expected);

    for value in [Some("bob@example.com".to_owned()), None] {
        assert!(matches!(
            h.shop
                .set_cart_attribute(cart.id, &key("email"), value)
                .await,
            Err(Error::CartCheckedOut { order, .. }) if order == placed.order.id
        ));
    }
    assert_eq!(h.shop.cart(cart.id).await.unwrap().attributes(), &expected);
    assert_eq!(
        h.shop.order(placed.order.id).await.unwrap().attributes(),
        &expected
    );

    let plain = h.order_for(&sku, 1, "attributes-2").await;
    assert!(plain.attributes().is_empty());
    assert!(
        h.shop
            .order(plain.id)
            .await
            .unwrap()
            .attributes()
            .is_empty()
    );
}
