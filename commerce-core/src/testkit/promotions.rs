//! Promotions: usage limits under concurrency, per-customer limits, tenant-scoped promotions and settings.

use super::{
    Action, Arc, Barrier, CheckoutRequest, Condition, CouponCode, Currency, CustomerContext,
    CustomerId, Decimal, Error, Harness, Money, NotApplied, PromotionId, PromotionOutcome,
    PromotionSpec, PromotionUsage, ShopSettings, StoreFactory, TaxConfig, idempotency_key, qty,
};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_promotions {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] promotions:
            limited_coupon_last_use_is_redeemed_once,
            per_customer_limit_is_enforced,
            promotions_and_settings_are_tenant_scoped,
            pricing_read_answers_as_the_separate_reads,
            rounding_settings_are_stored_and_price_the_cart,
            every_kind_of_promotion_is_stored_as_written,
        }
    };
}

/// A coupon limited to one use in total, with a 20% discount.
pub(crate) fn limited_coupon(
    id: &str,
    code: &str,
    usage_limit: Option<u32>,
    per_customer_limit: Option<u32>,
) -> PromotionSpec {
    PromotionSpec {
        id: PromotionId::parse(id).unwrap(),
        name: format!("{code}: 20% off"),
        priority: 1,
        exclusive: false,
        group: None,
        conditions: vec![Condition::Coupon {
            code: CouponCode::parse(code).unwrap(),
        }],
        action: Action::PercentOffCart {
            percent: Decimal::from(20),
        },
        cap: None,
        max_units_per_line: None,
        usage_limit,
        per_customer_limit,
    }
}

pub(crate) fn customer(id: &str) -> Option<CustomerContext> {
    Some(CustomerContext {
        id: Some(CustomerId::parse(id).unwrap()),
        ..CustomerContext::default()
    })
}

pub(crate) fn applied(outcome: &PromotionOutcome) -> bool {
    matches!(outcome, PromotionOutcome::Applied { .. })
}

/// The last use of a limited coupon, raced by 20 checkouts that were all
/// shown the discount: exactly one is placed with it; the other 19 are
/// refused with `PromotionExhausted`, place nothing and keep their carts.
/// Priced again, they see the coupon exhausted and pay full price.
pub async fn limited_coupon_last_use_is_redeemed_once(factory: &dyn StoreFactory) {
    const RACERS: usize = 20;
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-COUPON", 10_000, RACERS as u32).await;
    let code = CouponCode::parse("last-one").unwrap();
    h.shop
        .put_promotion(limited_coupon("last-one", "LAST-ONE", Some(1), None))
        .await
        .unwrap();
    let mut carts = Vec::with_capacity(RACERS);
    for _ in 0..RACERS {
        let cart = h.cart_with(&sku, 1).await;
        h.shop.add_code(cart.id, &code).await.unwrap();
        let preview = h.shop.price_cart(cart.id).await.unwrap();
        assert_eq!(
            preview.totals.grand_total,
            Money::new(8_000, Currency::AUD),
            "every buyer is shown the discount"
        );
        carts.push((cart.id, preview.totals.grand_total));
    }
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = carts
        .iter()
        .enumerate()
        .map(|(i, &(cart, shown))| {
            let (shop, barrier) = (h.shop.clone(), barrier.clone());
            tokio::spawn(async move {
                let request = CheckoutRequest::new(idempotency_key(&format!("coupon-{i}")))
                    .expecting_total(shown);
                barrier.wait().await;
                (cart, shop.checkout_with(cart, &request).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (_, Ok(checkout)) => winners.push(checkout.order),
            (
                cart,
                Err(Error::PromotionExhausted {
                    promotion,
                    per_customer: false,
                }),
            ) => {
                assert_eq!(promotion.as_str(), "last-one");
                losers.push(cart);
            }
            (_, Err(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one checkout redeems the last use"
    );
    assert_eq!(losers.len(), RACERS - 1);
    let order = &winners[0];
    assert_eq!(order.total(), Money::new(8_000, Currency::AUD));
    assert_eq!(order.promotions.len(), 1);
    assert_eq!(
        order.promotions[0].discount,
        Money::new(2_000, Currency::AUD)
    );
    let usage = h
        .shop
        .scope()
        .promotions()
        .usage(&[PromotionId::parse("last-one").unwrap()], None)
        .await
        .unwrap();
    assert_eq!(usage.values().map(|u| u.total).sum::<u32>(), 1);
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!(
        (level.allocated, level.reserved),
        (1, RACERS as u32 - 1),
        "the refused placed nothing"
    );

    let loser = losers[0];
    assert!(h.shop.cart(loser).await.unwrap().is_open());
    let preview = h.shop.price_cart(loser).await.unwrap();
    assert_eq!(
        preview.promotions[0].outcome,
        PromotionOutcome::NotApplied(NotApplied::UsageExhausted { limit: 1 })
    );
    assert_eq!(
        preview.totals.grand_total,
        Money::new(10_000, Currency::AUD)
    );
    // With the code still entered, checkout says why rather than charging
    // a price the buyer was not shown.
    assert!(matches!(
        h.shop
            .checkout(loser, &idempotency_key("coupon-retry"))
            .await,
        Err(Error::PromotionExhausted {
            per_customer: false,
            ..
        })
    ));
    h.shop.remove_code(loser, &code).await.unwrap();
    let stale = CheckoutRequest::new(idempotency_key("coupon-retry"))
        .expecting_total(Money::new(8_000, Currency::AUD));
    assert!(matches!(
        h.shop.checkout_with(loser, &stale).await,
        Err(Error::PriceChanged { actual, .. }) if actual == Money::new(10_000, Currency::AUD)
    ));
    let fresh = CheckoutRequest::new(idempotency_key("coupon-retry"))
        .expecting_total(preview.totals.grand_total);
    let order = h.shop.checkout_with(loser, &fresh).await.unwrap().order;
    assert!(order.promotions.is_empty());
}

/// A per-customer limit: the customer's second order does not get the
/// promotion (and two of their checkouts racing for it: one does), another
/// customer's does, an anonymous buyer's never does.
pub async fn per_customer_limit_is_enforced(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("TEE-PROMO", 5_000, 20).await;
    let code = CouponCode::parse("welcome").unwrap();
    h.shop
        .put_promotion(limited_coupon("welcome", "WELCOME", None, Some(1)))
        .await
        .unwrap();
    let cart_for = |who: Option<CustomerContext>| {
        let (h, sku, code) = (h.clone(), sku.clone(), code.clone());
        async move {
            let cart = h.cart_with(&sku, 1).await;
            h.shop.add_code(cart.id, &code).await.unwrap();
            h.shop.set_customer(cart.id, who).await.unwrap();
            cart.id
        }
    };

    let anonymous = cart_for(None).await;
    let preview = h.shop.price_cart(anonymous).await.unwrap();
    assert_eq!(
        preview.promotions[0].outcome,
        PromotionOutcome::NotApplied(NotApplied::CustomerRequired)
    );

    // Two checkouts of one customer race for their one use.
    let first = cart_for(customer("alice")).await;
    let second = cart_for(customer("alice")).await;
    assert!(applied(
        &h.shop.price_cart(second).await.unwrap().promotions[0].outcome
    ));
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [(first, "alice-1"), (second, "alice-2")]
        .into_iter()
        .map(|(cart, key)| {
            let (shop, barrier) = (h.shop.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                shop.checkout(cart, &idempotency_key(key)).await
            })
        })
        .collect();
    let mut placed = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(checkout) => {
                placed += 1;
                assert_eq!(checkout.order.promotions.len(), 1);
                assert_eq!(
                    checkout.order.customer.as_ref().map(CustomerId::as_str),
                    Some("alice")
                );
            }
            Err(Error::PromotionExhausted {
                per_customer: true, ..
            }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((placed, refused), (1, 1));

    let third = cart_for(customer("alice")).await;
    assert_eq!(
        h.shop.price_cart(third).await.unwrap().promotions[0].outcome,
        PromotionOutcome::NotApplied(NotApplied::CustomerLimitReached { limit: 1 })
    );
    let bob = cart_for(customer("bob")).await;
    let order = h
        .shop
        .checkout(bob, &idempotency_key("bob-1"))
        .await
        .unwrap()
        .order;
    assert_eq!(order.promotions.len(), 1);
}

/// Promotions, their usage and settings belong to one tenant.
pub async fn promotions_and_settings_are_tenant_scoped(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let spec = limited_coupon("tenant-a-only", "ONLY-A", Some(5), None);
    h.shop.put_promotion(spec.clone()).await.unwrap();
    h.shop
        .put_settings(ShopSettings::with_tax(TaxConfig::australia_gst()))
        .await
        .unwrap();
    let b = h.other_shop("shop-b");
    assert!(b.promotions().await.unwrap().is_empty());
    assert!(
        b.scope()
            .promotions()
            .promotion(&spec.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(b.settings().await.unwrap(), ShopSettings::default());
    assert!(!b.remove_promotion(&spec.id).await.unwrap());
    assert_eq!(h.shop.promotions().await.unwrap().len(), 1);

    // Replacing keeps one promotion; removing keeps its usage.
    let mut changed = spec.clone();
    changed.name = "renamed".into();
    h.shop.put_promotion(changed).await.unwrap();
    let all = h.shop.promotions().await.unwrap();
    assert_eq!((all.len(), all[0].name()), (1, "renamed"));
    let sku = h.stocked("CPU-TENANT", 1_000, 1).await;
    let cart = h.cart_with(&sku, 1).await;
    h.shop
        .add_code(cart.id, &CouponCode::parse("only-a").unwrap())
        .await
        .unwrap();
    h.shop
        .checkout(cart.id, &idempotency_key("a-1"))
        .await
        .unwrap();
    assert!(h.shop.remove_promotion(&spec.id).await.unwrap());
    let usage = h
        .shop
        .scope()
        .promotions()
        .usage(std::slice::from_ref(&spec.id), None)
        .await
        .unwrap();
    assert_eq!(usage.get(&spec.id).map(|u| u.total), Some(1));
    let usage_b = b
        .scope()
        .promotions()
        .usage(std::slice::from_ref(&spec.id), None)
        .await
        .unwrap();
    assert_eq!(usage_b.get(&spec.id).map_or(0, |u| u.total), 0);
}

/// `pricing_read` answers what the separate reads answer: the cart, the
/// stored settings, each line's product in line order, every promotion, and
/// the usage of the limited ones for the cart's customer (none of the
/// unlimited one); no cart, or another tenant's, is `None`.
pub async fn pricing_read_answers_as_the_separate_reads(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let a = h.stocked("READ-A", 1_500, 10).await;
    let b = h.stocked("READ-B", 2_500, 10).await;
    let settings = ShopSettings {
        shipping_fee: Some(Money::new(900, Currency::AUD)),
        ..ShopSettings::default()
    };
    h.shop.put_settings(settings).await.unwrap();
    h.shop
        .put_promotion(limited_coupon("read-once", "READONCE", Some(5), Some(2)))
        .await
        .unwrap();
    h.shop
        .put_promotion(limited_coupon("read-open", "READOPEN", None, None))
        .await
        .unwrap();
    // One use of each by alice.
    let used = h.cart_with(&a, 1).await;
    for code in ["READONCE", "READOPEN"] {
        h.shop
            .add_code(used.id, &CouponCode::parse(code).unwrap())
            .await
            .unwrap();
    }
    h.shop
        .set_customer(used.id, customer("alice"))
        .await
        .unwrap();
    h.shop
        .checkout(used.id, &idempotency_key("read-used"))
        .await
        .unwrap();

    let cart = h.cart_with(&b, 2).await;
    h.shop.set_line(cart.id, &a, qty(1)).await.unwrap();
    h.shop
        .add_code(cart.id, &CouponCode::parse("READONCE").unwrap())
        .await
        .unwrap();
    let cart = h
        .shop
        .set_customer(cart.id, customer("alice"))
        .await
        .unwrap();
    let scope = h.shop.scope();
    let read = scope
        .pricing()
        .pricing_read(cart.id)
        .await
        .unwrap()
        .expect("the cart's read");
    let once = PromotionId::parse("read-once").unwrap();
    let expected = crate::store::PricingRead::new(
        cart.clone(),
        scope.settings().settings().await.unwrap(),
        scope
            .catalog()
            .products_by_skus(&[b.clone(), a.clone()])
            .await
            .unwrap(),
        scope.promotions().promotions().await.unwrap(),
        scope
            .promotions()
            .usage(
                std::slice::from_ref(&once),
                Some(&CustomerId::parse("alice").unwrap()),
            )
            .await
            .unwrap(),
    );
    assert_eq!(read, expected);
    assert_eq!(read.products.len(), 2);
    assert!(read.products.iter().all(Option::is_some));
    assert_eq!(read.promotions.len(), 2);
    assert_eq!(
        read.usage.get(&once),
        Some(&PromotionUsage {
            total: 1,
            by_customer: 1
        })
    );
    assert_eq!(read.usage.len(), 1, "only the limited promotion's usage");
    assert_eq!(
        read.settings.and_then(|s| s.shipping_fee),
        Some(Money::new(900, Currency::AUD))
    );

    // No such cart; another tenant's cart.
    assert!(
        scope
            .pricing()
            .pricing_read(crate::ids::CartId::new())
            .await
            .unwrap()
            .is_none()
    );
    let other = h.other_shop("shop-b");
    assert!(
        other
            .scope()
            .pricing()
            .pricing_read(cart.id)
            .await
            .unwrap()
            .is_none()
    );
}

/// Every rounding setting (in the tax configuration's `rounding`, the one
/// place) is stored and read back as it was put, and pricing a cart uses
/// them: 10% off two lines of A$1.05, rounded up per line, takes 11¢ from
/// each (22¢), where the default (half-up, once for the promotion) takes 21¢.
pub async fn rounding_settings_are_stored_and_price_the_cart(factory: &dyn StoreFactory) {
    use crate::rounding::{DiscountLevel, Leftover, LineOrder, Rounding, Split, SplitWeights};
    use crate::tax::{RoundingLevel, RoundingMode, ShippingTax};

    let h = Harness::new(factory).await;
    let mut tax = TaxConfig::australia_gst();
    tax.shipping = ShippingTax::Apportioned;
    tax.rounding = Rounding {
        tax_mode: RoundingMode::HalfEven,
        tax_level: RoundingLevel::PerUnit,
        discount_mode: RoundingMode::Up,
        discount_level: DiscountLevel::PerLine,
        split: Split {
            weights: SplitWeights::Net,
            leftover: Leftover::LastLine,
            order: LineOrder::Cart,
        },
    };
    let settings = ShopSettings::with_tax(tax);
    h.shop.put_settings(settings.clone()).await.unwrap();
    assert_eq!(h.shop.settings().await.unwrap(), settings);

    let a = h.stocked("ROUND-A", 105, 10).await;
    let b = h.stocked("ROUND-B", 105, 10).await;
    let cart = h.cart_with(&a, 1).await;
    h.shop.set_line(cart.id, &b, qty(1)).await.unwrap();
    let mut spec = limited_coupon("round-10", "ROUND10", None, None);
    spec.conditions.clear();
    spec.action = Action::PercentOffCart {
        percent: Decimal::TEN,
    };
    h.shop.put_promotion(spec).await.unwrap();
    let priced = h.shop.price_cart(cart.id).await.unwrap();
    assert_eq!(
        priced.totals.discount_total,
        Money::new(22, Currency::AUD),
        "10% of 105 is 10.5, rounded up per line: 11 + 11"
    );
}

/// Promotions using every selector, condition and action kind (nested
/// conditions, an exclusivity group, a limit of units per line, tiers,
/// cheapest units, a bundle) are stored and read back as written.
pub async fn every_kind_of_promotion_is_stored_as_written(factory: &dyn StoreFactory) {
    use crate::ids::{CustomerGroup, PromotionGroup, Sku};
    use crate::promotion::{
        BundleItem, DiscountOrder, Selector, Threshold, Tier, TierReward, UnitsOff,
    };

    let h = Harness::new(factory).await;
    let aud = |minor| Money::new(minor, Currency::AUD);
    let skus: std::collections::BTreeSet<Sku> = ["KIND-A", "KIND-B"]
        .iter()
        .map(|s| Sku::parse(*s).unwrap())
        .collect();
    let mut tiered = limited_coupon("kinds-tiered", "KINDS", None, None);
    tiered.group = Some(PromotionGroup::parse("Loyalty").unwrap());
    tiered.exclusive = true;
    tiered.max_units_per_line = Some(2);
    tiered.conditions = vec![Condition::AnyOf {
        conditions: vec![
            Condition::AllOf {
                conditions: vec![
                    Condition::LineQuantity {
                        selector: Selector::Skus { skus: skus.clone() },
                        quantity: 2,
                        threshold: Threshold::MoreThan,
                    },
                    Condition::FirstOrder,
                ],
            },
            Condition::CustomerGroups {
                groups: [CustomerGroup::parse("staff").unwrap()]
                    .into_iter()
                    .collect(),
            },
        ],
    }];
    tiered.action = Action::Tiered {
        selector: Selector::PriceRange {
            min: Some(aud(500)),
            max: None,
        },
        tiers: vec![
            Tier {
                threshold: aud(5_000),
                reward: TierReward::AmountOff { amount: aud(500) },
            },
            Tier {
                threshold: aud(10_000),
                reward: TierReward::PercentOff {
                    percent: Decimal::from(15),
                },
            },
        ],
    };
    let mut cheapest = limited_coupon("kinds-cheapest", "KINDS2", None, None);
    cheapest.action = Action::CheapestUnits {
        selector: Selector::Skus { skus },
        count: 2,
        off: UnitsOff::Amount { amount: aud(100) },
        order: DiscountOrder::MostExpensiveFirst,
    };
    let mut bundle = limited_coupon("kinds-bundle", "KINDS3", None, None);
    bundle.action = Action::Bundle {
        items: vec![BundleItem {
            selector: Selector::All,
            quantity: 3,
        }],
        price: aud(1_000),
        repeat: true,
        order: DiscountOrder::CheapestFirst,
    };
    for spec in [tiered, cheapest, bundle] {
        h.shop.put_promotion(spec.clone()).await.unwrap();
        let stored = h
            .shop
            .scope()
            .promotions()
            .promotion(&spec.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.spec(), &spec, "{} as written", spec.id);
    }
}
