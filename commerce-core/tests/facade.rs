//! Facade behaviour that does not depend on the store: configuration,
//! webhook verification and routing, pricing preview.

// Test helpers outside `#[test]` functions unwrap too: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

use commerce_core::{
    Category, Clock, Commerce, Config, Currency, Error, InMemoryStore, ManualClock, Money,
    NewProduct, OrderStatus, PaymentEvent, PaymentEventId, PaymentEventKind, PaymentOutcome,
    Quantity, Sku, TaxCategory, TenantId, TestGateway, Variant, WebhookError, WebhookHandled,
    WebhookRequest,
};

struct World {
    commerce: Commerce,
    clock: ManualClock,
    gateway: TestGateway,
}

fn world() -> World {
    let clock = ManualClock::at_unix(1_767_225_600);
    let gateway = TestGateway::new("whsec_facade");
    let commerce = Commerce::builder()
        .store(InMemoryStore::new())
        .gateway(gateway.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    World {
        commerce,
        clock,
        gateway,
    }
}

async fn product(commerce: &Commerce, tenant: &str, sku: &str, price: &str, on_hand: u32) -> Sku {
    let shop = commerce.shop(&TenantId::parse(tenant).unwrap());
    let sku = Sku::parse(sku).unwrap();
    shop.add_product(NewProduct {
        name: format!("Product {sku}"),
        category: Category::parse("gpu").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        variants: vec![Variant::new(
            sku.clone(),
            Money::from_decimal_str(price, Currency::AUD).unwrap(),
        )],
        published: true,
    })
    .await
    .unwrap();
    shop.receive_stock(&sku, Quantity::new(on_hand).unwrap(), None)
        .await
        .unwrap();
    sku
}

#[test]
fn configuration_is_checked() {
    let zero_ttl = Config::default().with_reservation_ttl(Duration::ZERO);
    assert!(matches!(
        Commerce::builder().config(zero_ttl).build(),
        Err(Error::InvalidConfig(_))
    ));
    let zero_window = Config::default().with_payment_window(Duration::ZERO);
    assert!(matches!(
        Commerce::builder().config(zero_window).build(),
        Err(Error::InvalidConfig(_))
    ));
    let huge = Config::default().with_payment_window(Duration::from_secs(u64::MAX));
    assert!(matches!(
        Commerce::builder().config(huge).build(),
        Err(Error::InvalidConfig(_))
    ));
    let no_batch = Config::default().with_sweep_batch(0);
    assert!(matches!(
        Commerce::builder().config(no_batch).build(),
        Err(Error::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn configured_ttl_and_window_are_used() {
    let clock = ManualClock::at_unix(1_767_225_600);
    let commerce = Commerce::builder()
        .clock(clock.clone())
        .config(
            Config::default()
                .with_reservation_ttl(Duration::from_secs(60))
                .with_payment_window(Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let sku = product(&commerce, "shop", "A", "10.00", 1).await;
    let shop = commerce.shop(&TenantId::parse("shop").unwrap());
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    let held = shop
        .scope()
        .inventory()
        .cart_reservations(cart.id)
        .await
        .unwrap();
    assert_eq!((held[0].expires_at - clock.now()).num_seconds(), 60);
    let order = shop
        .checkout(cart.id, &"k".parse().unwrap())
        .await
        .unwrap()
        .order;
    assert_eq!((order.payment_expires_at - clock.now()).num_seconds(), 3600);
}

#[tokio::test]
async fn webhooks_are_verified_routed_and_acknowledged() {
    let w = world();
    let sku = product(&w.commerce, "shop-one", "GPU-1", "999.95", 1).await;
    let shop = w.commerce.shop(&TenantId::parse("shop-one").unwrap());
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    let order = shop
        .checkout(cart.id, &"checkout-1".parse().unwrap())
        .await
        .unwrap()
        .order;
    assert_eq!(order.total(), Money::new(99_995, Currency::AUD));

    let event = PaymentEvent {
        id: PaymentEventId::parse("evt_webhook").unwrap(),
        tenant: shop.tenant().clone(),
        order: order.id,
        kind: PaymentEventKind::Succeeded {
            amount: order.total(),
            payment_ref: Some("pi_1".into()),
        },
    };

    // Signed with another secret: refused, nothing applied.
    let forged = TestGateway::new("not the secret").webhook(&event, w.clock.now());
    assert!(matches!(
        w.commerce.handle_webhook(&forged).await,
        Err(Error::Webhook(WebhookError::BadSignature))
    ));
    // Unsigned: refused.
    let unsigned = WebhookRequest::new(forged.body().to_vec());
    assert!(matches!(
        w.commerce.handle_webhook(&unsigned).await,
        Err(Error::Webhook(WebhookError::MissingSignature))
    ));
    // Signed too long ago by the engine's clock: refused.
    let stale = w.gateway.webhook(&event, w.clock.now());
    w.clock.advance(Duration::from_secs(301));
    assert!(matches!(
        w.commerce.handle_webhook(&stale).await,
        Err(Error::Webhook(WebhookError::TimestampOutOfTolerance { .. }))
    ));
    assert_eq!(
        shop.order(order.id).await.unwrap().status(),
        OrderStatus::AwaitingPayment
    );

    // An unknown event type with unknown fields is acknowledged and ignored.
    let unknown = w.gateway.signed_raw(
        r#"{"id":"evt_other","type":"customer.updated","livemode":false,"data":{"x":[1,2]}}"#,
        w.clock.now(),
    );
    assert_eq!(
        w.commerce.handle_webhook(&unknown).await.unwrap(),
        WebhookHandled::Ignored {
            event_type: "customer.updated".into()
        }
    );

    // A genuine delivery is applied to the tenant it names.
    let genuine = w.gateway.webhook(&event, w.clock.now());
    match w.commerce.handle_webhook(&genuine).await.unwrap() {
        WebhookHandled::Applied(applied) => {
            assert_eq!(applied.outcome, PaymentOutcome::Paid);
            assert_eq!(applied.order.payment_ref.as_deref(), Some("pi_1"));
        }
        other => panic!("expected applied, got {other:?}"),
    }
}

#[tokio::test]
async fn preview_prices_exactly_what_checkout_charges() {
    let w = world();
    let a = product(&w.commerce, "shop", "TEE-S", "19.99", 10).await;
    let b = product(&w.commerce, "shop", "CAP", "0.01", 10).await;
    let shop = w.commerce.shop(&TenantId::parse("shop").unwrap());
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, &a, Quantity::new(3).unwrap())
        .await
        .unwrap();
    shop.set_line(cart.id, &b, Quantity::new(7).unwrap())
        .await
        .unwrap();
    let preview = shop.price_cart(cart.id).await.unwrap();
    assert_eq!(
        preview.totals.grand_total,
        Money::new(3 * 1999 + 7, Currency::AUD)
    );
    assert_eq!(
        preview
            .lines
            .iter()
            .map(|l| l.total.minor())
            .collect::<Vec<_>>(),
        vec![5997, 7]
    );
    let order = shop
        .checkout(cart.id, &"k".parse().unwrap())
        .await
        .unwrap()
        .order;
    assert_eq!(order.total(), preview.totals.grand_total);
    assert_eq!(order.lines, preview.lines);
}

#[tokio::test]
async fn renewing_lapsed_reservations_allows_checkout() {
    let w = world();
    let sku = product(&w.commerce, "shop", "GPU-R", "100.00", 1).await;
    let shop = w.commerce.shop(&TenantId::parse("shop").unwrap());
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    w.clock.advance(Duration::from_secs(15 * 60));
    assert!(matches!(
        shop.checkout(cart.id, &"k".parse().unwrap()).await,
        Err(Error::ReservationLapsed { .. })
    ));
    shop.renew_reservations(cart.id).await.unwrap();
    let checkout = shop.checkout(cart.id, &"k".parse().unwrap()).await.unwrap();
    assert!(checkout.created);
}

#[tokio::test]
async fn a_genuine_webhook_for_an_unknown_order_is_acknowledged_not_retried() {
    let w = world();
    let event = PaymentEvent {
        id: PaymentEventId::parse("evt_elsewhere").unwrap(),
        tenant: TenantId::parse("shop").unwrap(),
        order: commerce_core::OrderId::new(),
        kind: PaymentEventKind::Succeeded {
            amount: Money::new(100, Currency::AUD),
            payment_ref: None,
        },
    };
    let delivery = w.gateway.webhook(&event, w.clock.now());
    match w.commerce.handle_webhook(&delivery).await.unwrap() {
        WebhookHandled::UnknownOrder {
            event: id, order, ..
        } => {
            assert_eq!((id, order), (event.id.clone(), event.order));
        }
        other => panic!("expected UnknownOrder, got {other:?}"),
    }
    // Nothing was claimed: were the order to appear, the event would apply.
    assert!(matches!(
        w.commerce
            .shop(&event.tenant)
            .apply_payment_event(&event)
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// The test gateway sends buyers to a payment page of the embedder's
/// choosing (an example shop's own fake page).
#[tokio::test]
async fn the_test_gateway_payment_page_is_configurable() {
    let commerce = Commerce::builder()
        .store(InMemoryStore::new())
        .gateway(TestGateway::default().with_payment_page("http://127.0.0.1:3000/pay/"))
        .build()
        .unwrap();
    let sku = product(&commerce, "shop", "GPU-PAGE", "10.00", 1).await;
    let shop = commerce.shop(&TenantId::parse("shop").unwrap());
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    let checkout = shop
        .checkout(
            cart.id,
            &commerce_core::IdempotencyKey::parse("page").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        checkout.session.unwrap().redirect_url,
        format!("http://127.0.0.1:3000/pay/{}", checkout.order.id)
    );
}
