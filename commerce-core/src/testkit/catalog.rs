//! Catalog and tenancy: search, and tenants that never see each other.

use crate::cart::CartLimits;
use crate::clock::Clock;
use crate::text::{TextField, TextReason};

use super::{
    Category, Currency, Entity, Error, Harness, Money, NewProduct, OrderStatus, PaymentEvent,
    Quantity, Sku, StoreFactory, TaxCategory, Variant, idempotency_key, qty,
};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_catalog {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] catalog:
            tenants_are_isolated,
            product_search_matches_prefixes_and_pages,
            hostile_product_text_is_refused,
            products_by_skus_answer_each_sku_in_order,
        }
    };
}

/// Tenant A's handle cannot see or change tenant B's products, stock, carts
/// or orders, and the same SKU in two tenants is two stocks.
pub async fn tenants_are_isolated(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-SHARED-NAME", 100_000, 1).await;
    let order = h.order_for(&sku, 1, "tenant-a-order").await;
    let cart = h.cart_with(&h.stocked("CPU-A", 10_000, 1).await, 1).await;
    let product = h.shop.products(None, 10).await.unwrap().products[0].id();

    let b = h.other_shop("shop-b");
    assert!(
        b.admin_products(None, 10)
            .await
            .unwrap()
            .products
            .is_empty()
    );
    let not_found = |r: Result<_, Error>, entity| matches!(r, Err(Error::NotFound { entity: e, .. }) if e == entity);
    assert!(not_found(
        b.product(product).await.map(|_| ()),
        Entity::Product
    ));
    assert!(not_found(b.cart(cart.id).await.map(|_| ()), Entity::Cart));
    assert!(not_found(
        b.order(order.id).await.map(|_| ()),
        Entity::Order
    ));
    assert!(not_found(
        b.order_events(order.id).await.map(|_| ()),
        Entity::Order
    ));
    assert!(not_found(b.stock(&sku).await.map(|_| ()), Entity::Sku));
    assert!(not_found(
        b.receive_stock(&sku, qty(5), None).await.map(|_| ()),
        Entity::Sku
    ));
    assert!(not_found(
        b.set_line(cart.id, &sku, Quantity::ONE).await.map(|_| ()),
        Entity::Cart
    ));
    assert!(not_found(
        b.scope()
            .carts()
            .set_line(
                cart.id,
                &sku,
                Quantity::ONE,
                CartLimits::default(),
                h.clock.now(),
                h.clock.now()
            )
            .await
            .map(|_| ()),
        Entity::Cart
    ));
    assert!(not_found(
        b.cancel_order(order.id, "not yours").await.map(|_| ()),
        Entity::Order
    ));
    let foreign = PaymentEvent {
        tenant: b.tenant().clone(),
        ..h.paid(&order, "evt_foreign")
    };
    assert!(not_found(
        b.apply_payment_event(&foreign).await.map(|_| ()),
        Entity::Order
    ));
    assert!(matches!(
        b.apply_payment_event(&h.paid(&order, "evt_cross")).await,
        Err(Error::TenantMismatch { .. })
    ));

    // The same SKU text in tenant B is B's own stock.
    Harness::stocked_in(&b, sku.as_str(), 1, 7).await;
    let b_cart = b.create_cart(Currency::AUD).await.unwrap();
    assert!(not_found(
        b.set_line(cart.id, &sku, Quantity::ONE).await.map(|_| ()),
        Entity::Cart
    ));
    b.set_line(b_cart.id, &sku, qty(7)).await.unwrap();
    assert_eq!(b.stock(&sku).await.unwrap().reserved, 7);
    let a_level = h.shop.stock(&sku).await.unwrap();
    assert_eq!(
        (a_level.on_hand, a_level.allocated, a_level.reserved),
        (1, 1, 0)
    );
    assert_eq!(
        h.shop.order(order.id).await.unwrap().status(),
        OrderStatus::AwaitingPayment
    );
    assert!(
        b.scope()
            .orders()
            .order_by_idempotency_key(&idempotency_key("tenant-a-order"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Full-text search: every word must prefix-match a word of the name,
/// category or SKUs, case-insensitively, without stemming; results page
/// without overlap; other tenants' products never appear.
pub async fn product_search_matches_prefixes_and_pages(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let add = |name: &'static str, category: &'static str, sku: &'static str| {
        let shop = h.shop.clone();
        async move {
            shop.add_product(NewProduct {
                name: name.into(),
                category: Category::parse(category).unwrap(),
                tax_category: TaxCategory::parse("standard").unwrap(),
                age_restricted: false,
                variants: vec![Variant::new(
                    Sku::parse(sku).unwrap(),
                    Money::new(100, Currency::AUD),
                )],
                published: true,
            })
            .await
            .unwrap()
        }
    };
    add("GeForce RTX 3090 Founders Edition", "gpu", "GPU-3090-FE").await;
    add("GeForce RTX 3080", "gpu", "GPU-3080").await;
    add("Radeon RX 6800 XT", "gpu", "GPU-6800XT").await;
    add("Ryzen 9 5950X", "cpu", "CPU-5950X").await;
    let other = h.other_shop("shop-b");
    Harness::stocked_in(&other, "GPU-GEFORCE-B", 100, 0).await;

    let names = |found: Vec<crate::catalog::Product>| {
        let mut names: Vec<String> = found.iter().map(|p| p.name().to_owned()).collect();
        names.sort();
        names
    };
    let page = crate::catalog::Page::first(50);
    assert_eq!(
        names(h.shop.search_products("geforce", page).await.unwrap()),
        vec!["GeForce RTX 3080", "GeForce RTX 3090 Founders Edition"]
    );
    assert_eq!(
        names(h.shop.search_products("GEFOR rtx 309", page).await.unwrap()),
        vec!["GeForce RTX 3090 Founders Edition"]
    );
    assert_eq!(
        names(h.shop.search_products("gpu", page).await.unwrap()).len(),
        3,
        "categories are searched"
    );
    assert_eq!(
        names(h.shop.search_products("5950x", page).await.unwrap()),
        vec!["Ryzen 9 5950X"]
    );
    assert!(
        h.shop
            .search_products("founders geforce nvidia", page)
            .await
            .unwrap()
            .is_empty(),
        "every word must match"
    );
    assert!(
        h.shop
            .search_products("  --  ", page)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        h.shop
            .search_products("editions", page)
            .await
            .unwrap()
            .is_empty(),
        "prefix, not stem"
    );
    assert!(
        !names(h.shop.search_products("b", page).await.unwrap())
            .contains(&"Item GPU-GEFORCE-B".to_owned())
    );

    let first = h
        .shop
        .search_products("gpu", crate::catalog::Page::first(2))
        .await
        .unwrap();
    let second = h
        .shop
        .search_products("gpu", crate::catalog::Page::first(2).next())
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (2, 1));
    assert!(
        second
            .iter()
            .all(|p| first.iter().all(|q| q.id() != p.id())),
        "pages do not overlap"
    );
}

/// Product text not every store can keep is refused by the core with the
/// same typed error whatever the store, and nothing is stored: a NUL
/// character in a name, an option name or an option value, a search word of
/// 3,000 bytes (PostgreSQL's search takes at most 2,047), a name past its
/// length. A word of exactly 2,047 bytes is kept and found.
pub async fn hostile_product_text_is_refused(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let product = |name: String, option: &str, value: &str| NewProduct {
        name,
        category: Category::parse("hardware").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        variants: vec![
            Variant::new(
                Sku::parse("HOSTILE-1").unwrap(),
                Money::new(100, Currency::AUD),
            )
            .with_option(option, value),
        ],
        published: true,
    };
    let word = "z".repeat(3_000);
    let cases = [
        (
            product("Hostile\0GPU".into(), "size", "M"),
            TextField::ProductName,
            TextReason::NulByte { offset: 7 },
        ),
        (
            product(format!("Hostile GPU {word}"), "size", "M"),
            TextField::ProductName,
            TextReason::WordTooLong {
                length: 3_000,
                max: 2_047,
            },
        ),
        (
            product("Hostile GPU ".repeat(500), "size", "M"),
            TextField::ProductName,
            TextReason::TooLong {
                length: 5_999,
                max: 4_096,
            },
        ),
        (
            product("Hostile GPU".into(), "si\0ze", "M"),
            TextField::OptionName,
            TextReason::NulByte { offset: 2 },
        ),
        (
            product("Hostile GPU".into(), "size", "M\0"),
            TextField::OptionValue,
            TextReason::NulByte { offset: 1 },
        ),
    ];
    for (new, field, reason) in cases {
        match h.shop.add_product(new).await {
            Err(Error::InvalidText {
                field: found_field,
                reason: found_reason,
            }) => assert_eq!((found_field, found_reason), (field, reason)),
            other => panic!("expected InvalidText {{ {field}, {reason} }}, got {other:?}"),
        }
    }
    assert!(
        h.shop
            .admin_products(None, 10)
            .await
            .unwrap()
            .products
            .is_empty(),
        "nothing stored"
    );
    let page = crate::catalog::Page::first(10);
    assert!(
        h.shop
            .search_products("hostile", page)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        h.shop.stock(&Sku::parse("HOSTILE-1").unwrap()).await,
        Err(Error::NotFound {
            entity: Entity::Sku,
            ..
        })
    ));

    let longest = "y".repeat(crate::text::MAX_WORD_LEN);
    let kept = h
        .shop
        .add_product(product(format!("Hostile GPU {longest}"), "size", "M"))
        .await
        .unwrap();
    let found = h.shop.search_products(&longest, page).await.unwrap();
    assert_eq!(
        found.iter().map(|p| p.id()).collect::<Vec<_>>(),
        vec![kept.id()]
    );
}

/// `products_by_skus` answers one entry per SKU asked, in the order asked:
/// the product of each SKU (a product with two variants answers for both;
/// an unpublished one too), `None` for a SKU no product of the tenant has,
/// a SKU asked twice answered twice; another tenant's SKU is `None`.
pub async fn products_by_skus_answer_each_sku_in_order(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let a = h.stocked("BATCH-A", 1_000, 1).await;
    let b = h.stocked("BATCH-B", 2_000, 1).await;
    let product = h
        .shop
        .add_product(NewProduct {
            name: "Two variants".into(),
            category: Category::parse("batch").unwrap(),
            tax_category: TaxCategory::parse("standard").unwrap(),
            age_restricted: false,
            variants: vec![
                Variant::new(
                    Sku::parse("BATCH-S").unwrap(),
                    Money::new(500, Currency::AUD),
                )
                .with_option("size", "S"),
                Variant::new(
                    Sku::parse("BATCH-M").unwrap(),
                    Money::new(600, Currency::AUD),
                )
                .with_option("size", "M"),
            ],
            published: false,
        })
        .await
        .unwrap();
    let other = h.other_shop("shop-b");
    let foreign = Harness::stocked_in(&other, "BATCH-FOREIGN", 100, 1).await;
    let missing = Sku::parse("BATCH-NONE").unwrap();
    let asked = [
        b.clone(),
        Sku::parse("BATCH-M").unwrap(),
        missing,
        a.clone(),
        Sku::parse("BATCH-S").unwrap(),
        b.clone(),
        foreign,
    ];
    let found = h
        .shop
        .scope()
        .catalog()
        .products_by_skus(&asked)
        .await
        .unwrap();
    assert_eq!(found.len(), asked.len());
    for (sku, product) in asked.iter().zip(&found) {
        let one = h.shop.scope().catalog().product_by_sku(sku).await.unwrap();
        assert_eq!(product, &one, "{sku}");
    }
    let ids: Vec<Option<_>> = found.iter().map(|p| p.as_ref().map(|p| p.id())).collect();
    assert_eq!(ids[1], Some(product.id()));
    assert_eq!(ids[4], Some(product.id()));
    assert_eq!(ids[2], None);
    assert_eq!(ids[6], None);
    assert_eq!(ids[0], ids[5]);
    assert_ne!(ids[0], ids[3]);
    assert!(
        h.shop
            .scope()
            .catalog()
            .products_by_skus(&[])
            .await
            .unwrap()
            .is_empty()
    );
}
