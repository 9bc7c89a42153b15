//! The conformance kit: the behaviour every store must show.
//!
//! Each scenario is a `pub async fn` over a [`StoreFactory`] that builds a
//! [`Commerce`] on a fresh store, with a [`ManualClock`] and a
//! [`TestGateway`], drives it through the facade and asserts exact outcomes.
//! The races are real: tasks on a multi-threaded runtime, released together
//! by a barrier, counting winners.
//!
//! [`conformance_tests!`](crate::conformance_tests) stamps every scenario
//! into a named `#[tokio::test]`, so a failure names its scenario:
//!
//! ```
//! // In a store crate's tests/conformance.rs (needs `tokio` with the
//! // `macros` and `rt-multi-thread` features as a dev-dependency):
//! commerce_core::conformance_tests!(commerce_core::testkit::InMemoryFactory);
//! # fn main() {}
//! ```
//!
//! The factory expression is evaluated inside each async test, so it may
//! `.await` (to create a database per scenario, say).

// Assertions are this module's purpose: a failed expectation panics the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Barrier;

use rust_decimal::Decimal;

use crate::cart::{Cart, CartStatus};
use crate::catalog::{NewProduct, Variant};
use crate::clock::{Clock, ManualClock};
use crate::error::{Entity, Error};
use crate::facade::{CheckoutRequest, Commerce, Config, Shop, WebhookHandled};
use crate::ids::{
    Category, CouponCode, CustomerId, IdempotencyKey, OrderId, PaymentEventId, PromotionId,
    Quantity, Sku, TaxCategory, TenantId,
};
use crate::inventory::AdjustmentKind;
use crate::memory::InMemoryStore;
use crate::money::{Currency, Money};
use crate::order::OrderDraft;
use crate::order::{Order, OrderEventKind, OrderStatus, PaymentOutcome, RefundStatus};
use crate::payment::{PaymentEvent, PaymentEventKind, TestGateway};
use crate::pricing::{CustomerContext, NotApplied, PromotionOutcome};
use crate::promotion::{Action, Condition, PromotionSpec, PromotionUsage};
use crate::settings::ShopSettings;
use crate::store::Store;
use crate::tax::TaxConfig;

/// Makes fresh, empty stores: one per scenario.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// A new store holding no data.
    async fn new_store(&self) -> Arc<dyn Store>;

    /// Why this factory cannot make stores here (no database configured,
    /// say), or `None` when it can. A stamped test whose factory is
    /// unavailable prints the reason (uncaptured, so it shows) and returns;
    /// a factory must never
    /// report itself unavailable where a skip would hide a failure (under
    /// `CI=true`, it should panic instead).
    fn unavailable(&self) -> Option<String> {
        None
    }

    /// How many random operation sequences
    /// [`random_operations_match_the_model`] runs, each on a store of its
    /// own: 256 unless the factory says otherwise. A factory whose fresh
    /// store is expensive (a new database, say) runs fewer.
    ///
    /// Where the environment variable `COMMERCE_MODEL_CASES` is set, its
    /// value is the count instead, for every factory: raise it for a longer
    /// search, lower it for a quick run.
    fn model_cases(&self) -> u32 {
        256
    }
}

/// The factory of [`InMemoryStore`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemoryFactory;

#[async_trait]
impl StoreFactory for InMemoryFactory {
    async fn new_store(&self) -> Arc<dyn Store> {
        Arc::new(InMemoryStore::new())
    }
}

/// The instant every scenario starts at: 2026-01-01T00:00:00Z.
pub const START_UNIX: i64 = 1_767_225_600;

/// A reservation TTL of 15 minutes, as configured in the harness.
pub const TTL: Duration = Duration::from_secs(15 * 60);

/// A payment window of 30 minutes, as configured in the harness.
pub const PAYMENT_WINDOW: Duration = Duration::from_secs(30 * 60);

/// One scenario's world: an engine on a fresh store, its clock, its gateway
/// and a shop for the tenant `"shop-a"`.
#[derive(Clone, Debug)]
pub struct Harness {
    /// The engine.
    pub commerce: Commerce,
    /// Its clock.
    pub clock: ManualClock,
    /// Its gateway (clones share the record of calls).
    pub gateway: TestGateway,
    /// The shop of tenant `"shop-a"`.
    pub shop: Shop,
}

impl Harness {
    /// A harness on a new store from `factory`.
    pub async fn new(factory: &dyn StoreFactory) -> Self {
        Self::with_config(factory, |config| config).await
    }

    /// A harness whose configuration `configure` adjusts (from the TTL and
    /// payment window above).
    pub async fn with_config(
        factory: &dyn StoreFactory,
        configure: impl FnOnce(Config) -> Config,
    ) -> Self {
        Self::on_store(factory.new_store().await, configure)
    }

    /// A harness on `store` (which the caller may keep, to use it directly).
    pub fn on_store(store: Arc<dyn Store>, configure: impl FnOnce(Config) -> Config) -> Self {
        let clock = ManualClock::at_unix(START_UNIX);
        let gateway = TestGateway::default();
        let commerce = Commerce::builder()
            .shared_store(store)
            .gateway(gateway.clone())
            .clock(clock.clone())
            .config(configure(
                Config::default()
                    .with_reservation_ttl(TTL)
                    .with_payment_window(PAYMENT_WINDOW),
            ))
            .build()
            .expect("the harness configuration is valid");
        let shop = commerce.shop(&tenant("shop-a"));
        Self {
            commerce,
            clock,
            gateway,
            shop,
        }
    }

    /// The shop of another tenant on the same store.
    pub fn other_shop(&self, name: &str) -> Shop {
        self.commerce.shop(&tenant(name))
    }

    /// Adds a product with one SKU priced `price` cents AUD and receives
    /// `on_hand` units of it, in `shop`.
    pub async fn stocked_in(shop: &Shop, sku: &str, price: i64, on_hand: u32) -> Sku {
        let sku = Sku::parse(sku).unwrap();
        shop.add_product(NewProduct {
            name: format!("Item {sku}"),
            category: Category::parse("hardware").unwrap(),
            tax_category: TaxCategory::parse("standard").unwrap(),
            age_restricted: false,
            variants: vec![Variant::new(sku.clone(), Money::new(price, Currency::AUD))],
            published: true,
        })
        .await
        .unwrap();
        if on_hand > 0 {
            shop.receive_stock(&sku, qty(on_hand), Some("initial stock".into()))
                .await
                .unwrap();
        }
        sku
    }

    /// [`stocked_in`](Self::stocked_in) the harness's shop.
    pub async fn stocked(&self, sku: &str, price: i64, on_hand: u32) -> Sku {
        Self::stocked_in(&self.shop, sku, price, on_hand).await
    }

    /// A new AUD cart holding `quantity` of `sku` (which must succeed).
    pub async fn cart_with(&self, sku: &Sku, quantity: u32) -> Cart {
        let cart = self.shop.create_cart(Currency::AUD).await.unwrap();
        self.shop
            .set_line(cart.id, sku, qty(quantity))
            .await
            .unwrap()
    }

    /// A new order for `quantity` of `sku`, placed with key `key`.
    pub async fn order_for(&self, sku: &Sku, quantity: u32, key: &str) -> Order {
        let cart = self.cart_with(sku, quantity).await;
        let checkout = self
            .shop
            .checkout(cart.id, &idempotency_key(key))
            .await
            .unwrap();
        assert!(checkout.created);
        assert_eq!(checkout.order.status(), OrderStatus::AwaitingPayment);
        checkout.order
    }

    /// A payment success event `id` for the order's exact total.
    pub fn paid(&self, order: &Order, id: &str) -> PaymentEvent {
        PaymentEvent {
            id: PaymentEventId::parse(id).unwrap(),
            tenant: order.tenant.clone(),
            order: order.id,
            kind: PaymentEventKind::Succeeded {
                amount: order.total(),
                payment_ref: Some(format!("pay_{}", order.id)),
            },
        }
    }

    /// Delivers `event` as a signed webhook through the facade, returning
    /// the payment outcome.
    pub async fn deliver(&self, event: &PaymentEvent) -> PaymentOutcome {
        let request = self.gateway.webhook(event, self.clock.now());
        match self.commerce.handle_webhook(&request).await.unwrap() {
            WebhookHandled::Applied(applied) => applied.outcome,
            other => panic!("expected an applied event, got {other:?}"),
        }
    }

    /// Delivers `event` `times` times at once, from tasks released together,
    /// returning every outcome.
    pub async fn deliver_concurrently(
        &self,
        event: &PaymentEvent,
        times: usize,
    ) -> Vec<PaymentOutcome> {
        let barrier = Arc::new(Barrier::new(times));
        let tasks: Vec<_> = (0..times)
            .map(|_| {
                let (h, event, barrier) = (self.clone(), event.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    h.deliver(&event).await
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(times);
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    }

    /// Units sold of `sku`, from its adjustment history.
    pub async fn sold(&self, shop: &Shop, sku: &Sku) -> i64 {
        shop.stock_adjustments(sku)
            .await
            .unwrap()
            .iter()
            .filter(|a| matches!(a.kind, AdjustmentKind::Sold { .. }))
            .map(|a| -a.delta)
            .sum()
    }

    /// How many events of `order`'s log match `pred`.
    pub async fn count_events(
        &self,
        order: &Order,
        pred: impl Fn(&OrderEventKind) -> bool,
    ) -> usize {
        self.shop
            .order_events(order.id)
            .await
            .unwrap()
            .iter()
            .filter(|e| pred(&e.kind))
            .count()
    }
}

pub mod api_keys;
pub mod attributes;
pub mod carts;
pub mod catalog;
pub mod crowd;
pub mod feed;
pub mod inventory;
pub mod listing;
pub mod model;
pub mod orders;
pub mod payments;
pub mod promotions;
pub mod redemptions;
pub mod refunds;
pub mod sweep;

pub use api_keys::*;
pub use attributes::*;
pub use carts::*;
pub use catalog::*;
pub use feed::*;
pub use inventory::*;
pub use listing::*;
pub use model::*;
pub use orders::*;
pub use payments::*;
pub use promotions::*;
pub use redemptions::*;
pub use refunds::*;
pub use sweep::*;

pub(crate) fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

pub(crate) fn qty(units: u32) -> Quantity {
    Quantity::new(units).unwrap()
}

pub(crate) fn idempotency_key(key: &str) -> IdempotencyKey {
    IdempotencyKey::parse(key).unwrap()
}

/// Stamps every conformance scenario into a named `#[tokio::test]` on a
/// multi-threaded runtime, one module per area (`inventory::…`,
/// `orders::…`), over the store factory expression `$factory` (evaluated
/// inside each test, so it may `.await`; it is resolved in a child module
/// of the caller, which sees the caller's items).
///
/// The calling crate needs `tokio` (features `macros`, `rt-multi-thread`)
/// among its dev-dependencies.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::__conformance_inventory!(@stamp $factory);
        $crate::__conformance_api_keys!(@stamp $factory);
        $crate::__conformance_carts!(@stamp $factory);
        $crate::__conformance_orders!(@stamp $factory);
        $crate::__conformance_payments!(@stamp $factory);
        $crate::__conformance_promotions!(@stamp $factory);
        $crate::__conformance_catalog!(@stamp $factory);
        $crate::__conformance_listing!(@stamp $factory);
        $crate::__conformance_attributes!(@stamp $factory);
        $crate::__conformance_redemptions!(@stamp $factory);
        $crate::__conformance_refunds!(@stamp $factory);
        $crate::__conformance_feed!(@stamp $factory);
        $crate::__conformance_sweep!(@stamp $factory);
        $crate::__conformance_model!(@stamp $factory);
    };
    (@area [@stamp $factory:expr] $area:ident: $($scenario:ident),* $(,)?) => {
        mod $area {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let factory = $factory;
                    if let Some(reason) = $crate::testkit::StoreFactory::unavailable(&factory) {
                        // Straight to stderr: the test harness captures
                        // eprintln!, and a skip must be seen.
                        use ::std::io::Write as _;
                        let _ = writeln!(::std::io::stderr(), "SKIPPED {}: {reason}", stringify!($scenario));
                        return;
                    }
                    $crate::testkit::$area::$scenario(&factory).await;
                }
            )*
        }
    };
    (@area [@names] $area:ident: $($scenario:ident),* $(,)?) => {
        (stringify!($area), &[$(stringify!($scenario)),*])
    };
}

#[cfg(test)]
mod tests {
    /// The scenarios declared in an area's source: its `pub async fn`s.
    fn declared(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split('(').next())
            .collect()
    }

    #[test]
    fn every_scenario_is_stamped() {
        let areas: [((&str, &[&str]), &str); 14] = [
            (crate::__conformance_feed!(@names), include_str!("feed.rs")),
            (
                crate::__conformance_sweep!(@names),
                include_str!("sweep.rs"),
            ),
            (
                crate::__conformance_api_keys!(@names),
                include_str!("api_keys.rs"),
            ),
            (
                crate::__conformance_inventory!(@names),
                include_str!("inventory.rs"),
            ),
            (
                crate::__conformance_carts!(@names),
                include_str!("carts.rs"),
            ),
            (
                crate::__conformance_orders!(@names),
                include_str!("orders.rs"),
            ),
            (
                crate::__conformance_payments!(@names),
                include_str!("payments.rs"),
            ),
            (
                crate::__conformance_promotions!(@names),
                include_str!("promotions.rs"),
            ),
            (
                crate::__conformance_catalog!(@names),
                include_str!("catalog.rs"),
            ),
            (
                crate::__conformance_listing!(@names),
                include_str!("listing.rs"),
            ),
            (
                crate::__conformance_attributes!(@names),
                include_str!("attributes.rs"),
            ),
            (
                crate::__conformance_redemptions!(@names),
                include_str!("redemptions.rs"),
            ),
            (
                crate::__conformance_refunds!(@names),
                include_str!("refunds.rs"),
            ),
            (
                crate::__conformance_model!(@names),
                include_str!("model/mod.rs"),
            ),
        ];
        let mut declared_areas: Vec<&str> = include_str!("mod.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub mod "))
            .map(|rest| rest.trim_end_matches(';'))
            // A load helper for the stores' own tests and benches, not an
            // area of scenarios.
            .filter(|module| *module != "crowd")
            .collect();
        let mut checked: Vec<&str> = areas.iter().map(|((area, _), _)| *area).collect();
        declared_areas.sort_unstable();
        checked.sort_unstable();
        assert_eq!(declared_areas, checked, "every area module is checked here");
        for ((area, stamped), source) in areas {
            let mut stamped = stamped.to_vec();
            let mut declared = declared(source);
            stamped.sort_unstable();
            declared.sort_unstable();
            assert_eq!(stamped, declared, "the scenarios of testkit/{area}.rs");
        }
    }
}
