//! The product list and publishing: keyset pages that visit every product
//! once, and unpublished products the storefront never shows or sells.

use std::collections::BTreeSet;

use crate::catalog::{Page, Product, ProductPage, ProductQuery};
use crate::clock::Clock;
use crate::ids::ProductId;

use super::{
    Category, Currency, Entity, Error, Harness, Money, NewProduct, Quantity, Shop, Sku,
    StoreFactory, TaxCategory, Variant, qty,
};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_listing {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] listing:
            product_pages_visit_every_product_once_in_order,
            unpublished_products_are_hidden_from_the_storefront,
            unpublished_skus_cannot_be_added_to_carts,
        }
    };
}

/// A product named `name` with one SKU `sku` at one dollar.
fn product(name: &str, sku: &str) -> NewProduct {
    NewProduct {
        name: name.into(),
        category: Category::parse("hardware").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        variants: vec![Variant::new(
            Sku::parse(sku).unwrap(),
            Money::new(100, Currency::AUD),
        )],
        published: true,
    }
}

/// Follows `next` from the first page of `query` to the end, checking each
/// page's bounds; returns every page.
async fn every_page(shop: &Shop, query: ProductQuery) -> Vec<ProductPage> {
    let mut pages: Vec<ProductPage> = Vec::new();
    let mut after = None;
    loop {
        let page = if query.include_unpublished {
            shop.admin_products(after, query.limit).await.unwrap()
        } else {
            shop.products(after, query.limit).await.unwrap()
        };
        let size = query.page_size() as usize;
        assert!(page.products.len() <= size, "a page holds at most {size}");
        match page.next {
            Some(next) => {
                assert_eq!(page.products.len(), size, "only the last page is short");
                assert_eq!(Some(next), page.products.last().map(Product::id));
            }
            None => assert!(pages.is_empty() || !page.products.is_empty()),
        }
        after = page.next;
        let done = after.is_none();
        pages.push(page);
        assert!(pages.len() <= 100, "paging ends");
        if done {
            return pages;
        }
    }
}

fn ids(pages: &[ProductPage]) -> Vec<ProductId> {
    pages
        .iter()
        .flat_map(|page| page.products.iter().map(Product::id))
        .collect()
}

/// Thirteen products, four of them unpublished, and another tenant's: for
/// page sizes 1 to past the end (and 0, clamped to 1, and 500, clamped to
/// 200), following `next` visits every product exactly once in ascending
/// id order, the storefront's pages the nine published ones only, the
/// admin's all thirteen; no other tenant's product appears. A cursor need
/// not name an existing product, and a product added while a client pages
/// appears exactly when its id sorts after the cursor.
pub async fn product_pages_visit_every_product_once_in_order(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let mut all = BTreeSet::new();
    let mut published = BTreeSet::new();
    for n in 0..13 {
        let mut new = product(&format!("Part {n}"), &format!("PART-{n}"));
        if n % 3 == 1 {
            new = new.unpublished();
        }
        let added = h.shop.add_product(new).await.unwrap();
        all.insert(added.id());
        if added.is_published() {
            published.insert(added.id());
        }
    }
    assert_eq!((all.len(), published.len()), (13, 9));
    let other = h.other_shop("shop-b");
    other
        .add_product(product("Theirs", "PART-0"))
        .await
        .unwrap();

    let all: Vec<ProductId> = all.into_iter().collect();
    let published: Vec<ProductId> = published.into_iter().collect();
    for limit in [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 14, 500] {
        let admin = every_page(&h.shop, ProductQuery::all(limit)).await;
        assert_eq!(ids(&admin), all, "admin pages of {limit}");
        let storefront = every_page(&h.shop, ProductQuery::published(limit)).await;
        assert_eq!(ids(&storefront), published, "storefront pages of {limit}");
        assert!(
            storefront
                .iter()
                .flat_map(|page| &page.products)
                .all(Product::is_published)
        );
    }
    let single = h.shop.admin_products(None, 500).await.unwrap();
    assert_eq!((single.products.len(), single.next), (13, None));

    // A cursor that names no product: the products after it.
    let gone = ProductId::new();
    let after_gone = h.shop.admin_products(Some(gone), 200).await.unwrap();
    let expected: Vec<ProductId> = all.iter().copied().filter(|id| *id > gone).collect();
    assert_eq!(ids(&[after_gone]), expected);

    // A product added between pages: shown exactly when it sorts after the
    // cursor, never twice.
    let first = h.shop.admin_products(None, 5).await.unwrap();
    let cursor = first.next.unwrap();
    let added = h
        .shop
        .add_product(product("Part late", "PART-LATE"))
        .await
        .unwrap();
    let mut seen = ids(std::slice::from_ref(&first));
    let mut after = Some(cursor);
    while let Some(next) = after {
        let page = h.shop.admin_products(Some(next), 5).await.unwrap();
        seen.extend(page.products.iter().map(Product::id));
        after = page.next;
    }
    let mut expected: Vec<ProductId> = all.clone();
    if added.id() > cursor {
        expected.push(added.id());
        expected.sort();
    }
    assert_eq!(seen, expected);

    let theirs = other.admin_products(None, 200).await.unwrap();
    assert_eq!(theirs.products.len(), 1);
    assert_eq!(theirs.products[0].name(), "Theirs");
}

/// An unpublished product is absent from the storefront's list, read and
/// search, and present in the admin's list and read; publishing it shows
/// it everywhere, unpublishing hides it again; replacing it keeps the flag
/// the replacement says. An unknown product cannot be published.
pub async fn unpublished_products_are_hidden_from_the_storefront(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let shown = h
        .shop
        .add_product(product("Quadro RTX 8000", "QUADRO-8000"))
        .await
        .unwrap();
    let hidden = h
        .shop
        .add_product(product("Quadro RTX 6000", "QUADRO-6000").unpublished())
        .await
        .unwrap();
    assert!(shown.is_published() && !hidden.is_published());
    let search = |shop: Shop| async move {
        let found = shop.search_products("quadro", Page::first(50)).await;
        found.unwrap().iter().map(Product::id).collect::<Vec<_>>()
    };
    let listed = |page: ProductPage| page.products.iter().map(Product::id).collect::<Vec<_>>();
    let not_found = |r: Result<Product, Error>| {
        matches!(
            r,
            Err(Error::NotFound {
                entity: Entity::Product,
                ..
            })
        )
    };

    assert_eq!(search(h.shop.clone()).await, vec![shown.id()]);
    assert_eq!(
        listed(h.shop.products(None, 50).await.unwrap()),
        vec![shown.id()]
    );
    let mut both = vec![shown.id(), hidden.id()];
    both.sort();
    assert_eq!(listed(h.shop.admin_products(None, 50).await.unwrap()), both);
    assert!(not_found(h.shop.product(hidden.id()).await));
    let admin_read = h.shop.admin_product(hidden.id()).await.unwrap();
    assert!(!admin_read.is_published(), "the flag is stored");
    assert_eq!(admin_read.name(), "Quadro RTX 6000");
    assert_eq!(h.shop.product(shown.id()).await.unwrap(), shown);

    let made_public = h
        .shop
        .set_product_published(hidden.id(), true)
        .await
        .unwrap();
    assert!(made_public.is_published());
    assert_eq!(h.shop.product(hidden.id()).await.unwrap(), made_public);
    assert_eq!(search(h.shop.clone()).await.len(), 2);
    assert_eq!(listed(h.shop.products(None, 50).await.unwrap()), both);
    // Idempotent.
    assert_eq!(
        h.shop
            .set_product_published(hidden.id(), true)
            .await
            .unwrap(),
        made_public
    );

    let again = h
        .shop
        .set_product_published(shown.id(), false)
        .await
        .unwrap();
    assert!(!again.is_published());
    assert!(not_found(h.shop.product(shown.id()).await));
    assert_eq!(search(h.shop.clone()).await, vec![hidden.id()]);

    // Replacing a product stores the flag the replacement says.
    let replaced = h
        .shop
        .put_product(
            shown.id(),
            product("Quadro RTX 8000 (boxed)", "QUADRO-8000"),
        )
        .await
        .unwrap();
    assert!(replaced.is_published());
    assert_eq!(h.shop.product(shown.id()).await.unwrap(), replaced);
    h.shop
        .put_product(
            shown.id(),
            product("Quadro RTX 8000 (boxed)", "QUADRO-8000").unpublished(),
        )
        .await
        .unwrap();
    assert!(not_found(h.shop.product(shown.id()).await));
    assert_eq!(search(h.shop.clone()).await, vec![hidden.id()]);

    assert!(not_found(
        h.shop.set_product_published(ProductId::new(), true).await
    ));
    // Another tenant cannot publish or read this tenant's product.
    let other = h.other_shop("shop-b");
    assert!(not_found(
        other.set_product_published(shown.id(), true).await
    ));
    assert!(not_found(other.admin_product(shown.id()).await));
    assert!(not_found(h.shop.product(shown.id()).await));
}

/// A cart cannot hold a SKU of an unpublished product: setting its line is
/// refused with `NotFound` of the SKU, by the facade and by the store
/// called directly, and holds nothing. Once published it can be added;
/// unpublished again, the line already held keeps its reservation, cannot
/// be raised, and can be removed (releasing it).
pub async fn unpublished_skus_cannot_be_added_to_carts(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = Sku::parse("A100-80GB").unwrap();
    let hidden = h
        .shop
        .add_product(product("A100 80GB", sku.as_str()).unpublished())
        .await
        .unwrap();
    h.shop.receive_stock(&sku, qty(3), None).await.unwrap();
    let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
    let sku_not_found = |r: Result<crate::cart::Cart, Error>| {
        matches!(
            r,
            Err(Error::NotFound {
                entity: Entity::Sku,
                ..
            })
        )
    };

    assert!(sku_not_found(
        h.shop.set_line(cart.id, &sku, Quantity::ONE).await
    ));
    let now = h.clock.now();
    let expires = now + chrono::TimeDelta::minutes(15);
    let limits = h.commerce.config().cart_limits();
    assert!(sku_not_found(
        h.shop
            .scope()
            .carts()
            .set_line(cart.id, &sku, qty(2), limits, expires, now)
            .await
    ));
    assert_eq!(
        h.shop.stock(&sku).await.unwrap().reserved,
        0,
        "holds nothing"
    );
    assert!(h.shop.cart(cart.id).await.unwrap().lines.is_empty());
    assert!(
        h.shop
            .scope()
            .inventory()
            .cart_reservations(cart.id)
            .await
            .unwrap()
            .is_empty()
    );

    h.shop
        .set_product_published(hidden.id(), true)
        .await
        .unwrap();
    let held = h.shop.set_line(cart.id, &sku, qty(2)).await.unwrap();
    assert_eq!(held.line(&sku).map(|l| l.quantity), Some(qty(2)));
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 2);

    h.shop
        .set_product_published(hidden.id(), false)
        .await
        .unwrap();
    assert_eq!(
        h.shop.stock(&sku).await.unwrap().reserved,
        2,
        "a line held already keeps its reservation"
    );
    assert!(sku_not_found(h.shop.set_line(cart.id, &sku, qty(3)).await));
    assert!(sku_not_found(
        h.shop
            .scope()
            .carts()
            .set_line(cart.id, &sku, qty(3), limits, expires, now)
            .await
    ));
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 2);
    let emptied = h.shop.remove_line(cart.id, &sku).await.unwrap();
    assert!(emptied.lines.is_empty());
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 0);
}
