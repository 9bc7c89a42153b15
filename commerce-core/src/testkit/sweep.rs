//! One sweep for every tenant: each tenant with expired holds, overdue
//! unpaid orders or pending refunds is swept and reported; tenants with
//! nothing to do are not; two sweepers at once never release twice.

use super::{
    Arc, Barrier, Duration, Harness, OrderEventKind, OrderStatus, PAYMENT_WINDOW, StoreFactory,
    TTL, idempotency_key, qty, tenant,
};
use crate::cart::Cart;
use crate::facade::{Shop, SweepAllReport, SweepReport};
use crate::ids::{OrderId, Sku, TenantId};
use crate::money::Currency;
use crate::order::Order;

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_sweep {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] sweep:
            sweep_all_sweeps_every_tenant_with_work,
            tenants_with_work_are_listed_once_by_page,
            concurrent_sweep_all_does_not_double_release,
        }
    };
}

/// A cart of `shop` holding `quantity` of `sku`.
async fn hold(shop: &Shop, sku: &Sku, quantity: u32) -> Cart {
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, sku, qty(quantity)).await.unwrap()
}

/// An order of `shop` for one unit of `sku`, placed with `key`.
async fn place(shop: &Shop, sku: &Sku, key: &str) -> Order {
    let cart = hold(shop, sku, 1).await;
    let checkout = shop.checkout(cart.id, &idempotency_key(key)).await.unwrap();
    assert!(checkout.created);
    checkout.order
}

/// Gives each of `shops` `orders` unpaid orders placed now and, 20 minutes
/// later, `holds` carts holding a unit, then moves the clock 16 minutes on:
/// every order's payment window and every hold has lapsed. Returns each
/// shop's SKU and orders.
async fn overdue_work(
    h: &Harness,
    shops: &[&Shop],
    orders: usize,
    holds: usize,
) -> Vec<(Sku, Vec<OrderId>)> {
    let mut work = Vec::new();
    for (n, shop) in shops.iter().enumerate() {
        let sku = Harness::stocked_in(shop, &format!("GPU-SWEEP-{n}"), 30_000, 10).await;
        let mut placed = Vec::new();
        for k in 0..orders {
            placed.push(place(shop, &sku, &format!("sweep-{n}-{k}")).await.id);
        }
        work.push((sku, placed));
    }
    h.clock.advance(Duration::from_secs(20 * 60));
    for (shop, (sku, _)) in shops.iter().zip(&work) {
        for _ in 0..holds {
            hold(shop, sku, 1).await;
        }
    }
    h.clock.advance(Duration::from_secs(16 * 60));
    assert!(Duration::from_secs(36 * 60) > PAYMENT_WINDOW);
    assert!(Duration::from_secs(16 * 60) > TTL);
    work
}

fn sorted(mut ids: Vec<OrderId>) -> Vec<OrderId> {
    ids.sort_unstable();
    ids
}

/// Two tenants have an expired hold and an overdue unpaid order each; a
/// third has a live hold and an order still within its window. One
/// `sweep_all` releases both tenants' holds and expires both orders,
/// reporting each tenant by id; the third tenant is not reported and keeps
/// its hold and order. A second `sweep_all` reports nothing.
pub async fn sweep_all_sweeps_every_tenant_with_work(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let b = h.other_shop("shop-b");
    let idle = h.other_shop("shop-c");
    let work = overdue_work(&h, &[&h.shop, &b], 1, 1).await;
    let idle_sku = Harness::stocked_in(&idle, "GPU-IDLE", 30_000, 3).await;
    let idle_order = place(&idle, &idle_sku, "idle-order").await;
    hold(&idle, &idle_sku, 1).await;

    let report = h.commerce.sweep_all().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let tenants: Vec<&TenantId> = report.swept.iter().map(|(t, _)| t).collect();
    assert_eq!(tenants, vec![&tenant("shop-a"), &tenant("shop-b")]);
    for ((shop, (sku, orders)), (_, swept)) in [&h.shop, &b].iter().zip(&work).zip(&report.swept) {
        assert_eq!(swept.reservations_removed, 1);
        assert_eq!(&swept.orders_expired, orders);
        let order = shop.order(orders[0]).await.unwrap();
        assert_eq!(order.status(), OrderStatus::Expired);
        let level = shop.stock(sku).await.unwrap();
        assert_eq!(
            (level.reserved, level.allocated, level.available()),
            (0, 0, 10)
        );
    }
    let level = idle.stock(&idle_sku).await.unwrap();
    assert_eq!((level.reserved, level.allocated), (1, 1));
    assert_eq!(
        idle.order(idle_order.id).await.unwrap().status(),
        OrderStatus::AwaitingPayment
    );

    let again = h.commerce.sweep_all().await.unwrap();
    assert!(
        again.swept.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
}

/// The store lists the tenants with work by id, each once however much
/// work it has, page by page; a tenant whose only work is a pending refund
/// is listed; one with nothing to do is not.
pub async fn tenants_with_work_are_listed_once_by_page(factory: &dyn StoreFactory) {
    let store = factory.new_store().await;
    let h = Harness::on_store(store.clone(), |config| config);
    let shops: Vec<Shop> = ["shop-c", "shop-a", "shop-d"]
        .into_iter()
        .map(|name| h.other_shop(name))
        .collect();
    let refs: Vec<&Shop> = shops.iter().collect();
    overdue_work(&h, &refs, 2, 3).await;
    // shop-b: a paid order whose refund the gateway failed: pending.
    let b = h.other_shop("shop-b");
    let sku = Harness::stocked_in(&b, "GPU-REFUND", 30_000, 1).await;
    let order = place(&b, &sku, "refund-pending").await;
    let paid = h.paid(&order, "evt_sweep_refund");
    h.deliver(&paid).await;
    h.gateway.fail_next_refunds(1);
    let refund = b.refund_order(order.id).await.unwrap();
    assert!(refund.is_pending());
    // shop-e: stock and a paid order, nothing to sweep.
    let e = h.other_shop("shop-e");
    let sku = Harness::stocked_in(&e, "GPU-IDLE", 30_000, 1).await;
    let order = place(&e, &sku, "paid").await;
    h.deliver(&h.paid(&order, "evt_sweep_idle")).await;

    let now = h.commerce.now();
    let all = store.tenants_with_work(now, None, 100).await.unwrap();
    let names: Vec<&str> = all.iter().map(TenantId::as_str).collect();
    assert_eq!(names, ["shop-a", "shop-b", "shop-c", "shop-d"]);
    let mut paged = Vec::new();
    let mut after: Option<TenantId> = None;
    loop {
        let page = store
            .tenants_with_work(now, after.as_ref(), 1)
            .await
            .unwrap();
        assert!(page.len() <= 1);
        match page.into_iter().next() {
            Some(t) => {
                paged.push(t.clone());
                after = Some(t);
            }
            None => break,
        }
    }
    assert_eq!(paged, all);
    assert!(
        store
            .tenants_with_work(now, None, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let before = now
        .checked_sub_signed(chrono::TimeDelta::minutes(30))
        .unwrap();
    let early: Vec<String> = store
        .tenants_with_work(before, None, 100)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        early,
        ["shop-b"],
        "only the refund is due 30 minutes earlier"
    );
}

/// Three tenants with two overdue orders and three expired holds each; two
/// `sweep_all`s race. Together they release every hold and expire every
/// order exactly once: the reports add up to the work with no order twice,
/// each order has one `Expired` event, and the stock is whole again.
pub async fn concurrent_sweep_all_does_not_double_release(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let shops = [
        h.shop.clone(),
        h.other_shop("shop-b"),
        h.other_shop("shop-c"),
    ];
    let refs: Vec<&Shop> = shops.iter().collect();
    let work = overdue_work(&h, &refs, 2, 3).await;

    let barrier = Arc::new(Barrier::new(2));
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (commerce, barrier) = (h.commerce.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                commerce.sweep_all().await.unwrap()
            })
        })
        .collect();
    let mut reports: Vec<SweepAllReport> = Vec::new();
    for racer in racers {
        reports.push(racer.await.unwrap());
    }
    for (shop, (sku, orders)) in shops.iter().zip(&work) {
        let mine: Vec<&SweepReport> = reports
            .iter()
            .inspect(|r| assert!(r.failed.is_empty(), "{:?}", r.failed))
            .flat_map(|r| r.swept.iter())
            .filter(|(t, _)| t == shop.tenant())
            .map(|(_, r)| r)
            .collect();
        assert!(!mine.is_empty(), "{} is reported", shop.tenant());
        let removed: usize = mine.iter().map(|r| r.reservations_removed).sum();
        assert_eq!(removed, 3, "each hold released once");
        let expired: Vec<OrderId> = mine
            .iter()
            .flat_map(|r| r.orders_expired.iter().copied())
            .collect();
        assert_eq!(
            sorted(expired),
            sorted(orders.clone()),
            "each order expired once"
        );
        for id in orders {
            let order = shop.order(*id).await.unwrap();
            assert_eq!(order.status(), OrderStatus::Expired);
            let events = shop.order_events(*id).await.unwrap();
            let expiries = events
                .iter()
                .filter(|e| matches!(e.kind, OrderEventKind::Expired { .. }))
                .count();
            assert_eq!(expiries, 1);
        }
        let level = shop.stock(sku).await.unwrap();
        assert_eq!(
            (level.reserved, level.allocated, level.available()),
            (0, 0, 10)
        );
        assert!(
            shop.scope()
                .inventory()
                .sweep_reservations(h.commerce.now(), 100)
                .await
                .unwrap()
                == 0
        );
    }
    let again = h.commerce.sweep_all().await.unwrap();
    assert!(again.swept.is_empty(), "{again:?}");
}
