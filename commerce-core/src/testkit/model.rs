//! Random operation sequences checked step by step against a small model:
//! cart line changes, checkouts (fresh and repeated idempotency keys),
//! payments (direct and through signed webhooks, repeated too),
//! cancellations, clock advances, sweeps and stock receipts. After every
//! step the store must hold the no-oversell invariant and agree with the
//! model on stock, adjustments, orders, carts and refund calls. One latitude:
//! a lapsed reservation may be deleted before the sweep once another cart
//! has reserved its SKU (PostgreSQL's single-statement strategy reclaims
//! lapsed holds lazily), so the sweep's count is checked within bounds.
//!
//! Each case runs on a fresh store. The number of cases is the factory's
//! [`model_cases`](StoreFactory::model_cases). A failure is shrunk by
//! proptest and reported with the minimal failing input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use tokio::sync::{mpsc, oneshot};

use super::StoreFactory;
use crate::cart::CartStatus;
use crate::catalog::{NewProduct, Variant};
use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::facade::{Commerce, Config, Shop, WebhookHandled};
use crate::ids::{
    CartId, Category, IdempotencyKey, OrderId, PaymentEventId, Quantity, RefundId, Sku,
    TaxCategory, TenantId,
};
use crate::inventory::{AdjustmentKind, StockAdjustment, StockLevel};
use crate::money::{Currency, Money};
use crate::order::{OrderStatus, PaymentApplication, PaymentOutcome, RefundReason};
use crate::payment::{PaymentEvent, PaymentEventKind, TestGateway};
use crate::store::Store;

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_model {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] model:
            random_operations_match_the_model,
        }
    };
}

/// The environment variable that, when set, gives the number of cases
/// instead of [`StoreFactory::model_cases`].
const CASES_VAR: &str = "COMMERCE_MODEL_CASES";

/// One generated case, sent from the proptest runner to the scenario's task,
/// with where to send its outcome.
struct Case {
    initial: [u32; SKUS],
    carts: usize,
    ops: Vec<Op>,
    outcome: oneshot::Sender<Result<(), TestCaseError>>,
}

/// Random sequences of cart, checkout, payment, cancellation, clock, sweep
/// and receipt operations, each case on a fresh store, agree with a small
/// model after every step, and never oversell.
///
/// It runs [`StoreFactory::model_cases`] cases (or `COMMERCE_MODEL_CASES`,
/// when set). A failure panics with proptest's minimal failing input.
///
/// The proptest runner is synchronous: it runs on a blocking thread and
/// hands each case to this task, which runs it on a fresh store on the
/// caller's runtime (any flavour) and sends back the outcome.
pub async fn random_operations_match_the_model(factory: &dyn StoreFactory) {
    let cases = match std::env::var(CASES_VAR) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|e| panic!("{CASES_VAR}={value:?} is not a case count: {e}")),
        Err(_) => factory.model_cases(),
    };
    let (cases_tx, mut cases_rx) = mpsc::channel::<Case>(1);
    let runner = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(RunnerConfig {
            cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        });
        let inputs = (prop::array::uniform3(0_u32..=4), 1_usize..=6, ops());
        runner
            .run(&inputs, |(initial, carts, ops)| {
                let (outcome, answer) = oneshot::channel();
                let case = Case {
                    initial,
                    carts,
                    ops,
                    outcome,
                };
                if cases_tx.blocking_send(case).is_err() {
                    return Err(TestCaseError::fail("the scenario stopped taking cases"));
                }
                answer
                    .blocking_recv()
                    .unwrap_or_else(|_| Err(TestCaseError::fail("the case sent no outcome")))
            })
            .map_err(|e| e.to_string())
    });
    // The runner drops its sender when it is done, which ends this loop.
    while let Some(case) = cases_rx.recv().await {
        let store = factory.new_store().await;
        // A task of its own, so that a panic in the case (in the store, say)
        // fails the case, and proptest shrinks it, rather than this test.
        let outcome = tokio::spawn(run(store, case.initial, case.carts, case.ops))
            .await
            .unwrap_or_else(|e| Err(TestCaseError::fail(format!("the case panicked: {e}"))));
        let _ = case.outcome.send(outcome);
    }
    match runner.await {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => panic!("{failure}"),
        Err(e) => panic!("the proptest runner panicked: {e}"),
    }
}

const START: i64 = super::START_UNIX;
/// The reservation TTL the engine is configured with, in seconds.
const TTL: i64 = 15 * 60;
/// The payment window the engine is configured with, in seconds.
const WINDOW: i64 = 30 * 60;
const SKUS: usize = 3;
const PRICES: [i64; SKUS] = [10_000, 25_050, 399];

#[derive(Debug, Clone)]
enum Key {
    /// A key no other checkout used.
    Fresh,
    /// One of a few shared keys, to exercise idempotent repeats and reuse
    /// across carts.
    Shared(u8),
}

#[derive(Debug, Clone)]
enum Op {
    SetLine { cart: Index, sku: usize, qty: u32 },
    Checkout { cart: Index, key: Key },
    Pay { order: Index, webhook: bool },
    PayAgain { webhook: bool },
    Cancel { order: Index },
    Advance { secs: u64 },
    Sweep,
    Receive { sku: usize, qty: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => set_line_op(),
        2 => checkout_op(),
        2 => (any::<Index>(), any::<bool>()).prop_map(|(order, webhook)| Op::Pay { order, webhook }),
        1 => any::<bool>().prop_map(|webhook| Op::PayAgain { webhook }),
        1 => any::<Index>().prop_map(|order| Op::Cancel { order }),
        4 => prop_oneof![0_u64..=1200, Just(300_u64), Just(900_u64), Just(1200_u64)].prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Sweep),
        1 => (0..SKUS, 0_u32..=2).prop_map(|(sku, qty)| Op::Receive { sku, qty }),
    ]
}

fn set_line_op() -> impl Strategy<Value = Op> {
    (any::<Index>(), 0..SKUS, 0_u32..=4).prop_map(|(cart, sku, qty)| Op::SetLine { cart, sku, qty })
}

fn checkout_op() -> impl Strategy<Value = Op> {
    (
        any::<Index>(),
        prop_oneof![Just(Key::Fresh), (0_u8..4).prop_map(Key::Shared)],
    )
        .prop_map(|(cart, key)| Op::Checkout { cart, key })
}

/// Sequences of 1 to 59 operations: either freely mixed, or in phases
/// (fill carts and check out; let the payment windows close; other carts
/// take the stock; pay, repeat, cancel) so that late payments meeting
/// stock that is gone, which a free mix rarely reaches, are common. Both
/// use the same operations.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let phased = (
        prop::collection::vec(set_line_op(), 1..12),
        prop::collection::vec(checkout_op(), 1..8),
        prop::collection::vec(op(), 0..5),
        prop::collection::vec(
            prop_oneof![
                4 => (any::<Index>(), 0..SKUS, 1_u32..=2).prop_map(|(cart, sku, qty)| Op::SetLine { cart, sku, qty }),
                1 => Just(Op::Sweep),
            ],
            1..14,
        ),
        prop::collection::vec(
            prop_oneof![
                3 => (any::<Index>(), any::<bool>()).prop_map(|(order, webhook)| Op::Pay { order, webhook }),
                1 => any::<bool>().prop_map(|webhook| Op::PayAgain { webhook }),
                1 => any::<Index>().prop_map(|order| Op::Cancel { order }),
                1 => (0_u64..=600).prop_map(|secs| Op::Advance { secs }),
                1 => checkout_op(),
            ],
            1..14,
        ),
    )
        .prop_map(|(fill, check_out, mixed, restock, pay)| {
            let mut ops = fill;
            ops.extend(check_out);
            // Two 900 s steps: reservations lapse, then the payment windows
            // of the orders placed so far close (exactly at the boundary for
            // those placed in the same second).
            ops.push(Op::Advance { secs: 900 });
            ops.push(Op::Advance { secs: 900 });
            ops.extend(mixed);
            ops.extend(restock);
            ops.extend(pay);
            ops
        });
    prop_oneof![prop::collection::vec(op(), 1..60), phased]
}

#[derive(Debug)]
struct ModelCart {
    id: CartId,
    /// `(sku, quantity)` in the cart's line order.
    lines: Vec<(usize, u32)>,
    /// The reservation row the store holds per SKU: `(quantity, expires_at)`,
    /// live or not (until a sweep removes it).
    reservations: [Option<(u32, i64)>; SKUS],
    /// Per SKU: the store may already have deleted this cart's lapsed
    /// reservation, because another cart reserved the SKU after it lapsed.
    /// A store may reclaim lapsed holds then (PostgreSQL's single-statement
    /// strategy does, when the counter would otherwise refuse), so a later
    /// sweep may or may not count it.
    reclaimable: [bool; SKUS],
    order: Option<usize>,
}

#[derive(Debug)]
struct ModelOrder {
    id: OrderId,
    cart: usize,
    lines: Vec<(usize, u32)>,
    total: i64,
    expires_at: i64,
    status: OrderStatus,
}

#[derive(Debug)]
struct Model {
    now: i64,
    received: [u32; SKUS],
    sold: [u32; SKUS],
    carts: Vec<ModelCart>,
    orders: Vec<ModelOrder>,
    keys: HashMap<String, usize>,
    /// Refunds sent to the gateway: `(order, reason)`, in order.
    refunds: Vec<(OrderId, RefundReason)>,
    /// The last payment event applied, for `PayAgain`.
    last_event: Option<PaymentEvent>,
}

impl Model {
    fn on_hand(&self, sku: usize) -> u32 {
        self.received[sku] - self.sold[sku]
    }

    /// Live reservations of `sku`, except those of `except_cart`.
    fn reserved(&self, sku: usize, except_cart: Option<usize>) -> u32 {
        self.carts
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except_cart)
            .filter_map(|(_, c)| c.reservations[sku])
            .filter(|&(_, expires_at)| self.now < expires_at)
            .map(|(qty, _)| qty)
            .sum()
    }

    /// Live allocations of `sku`, except that of `except_order`. An order
    /// holds its allocation while it awaits payment; it is live until the
    /// payment window closes (a sweep only expires it once it has closed).
    fn allocated(&self, sku: usize, except_order: Option<usize>) -> u32 {
        self.orders
            .iter()
            .enumerate()
            .filter(|(i, o)| {
                Some(*i) != except_order
                    && o.status == OrderStatus::AwaitingPayment
                    && self.now < o.expires_at
            })
            .flat_map(|(_, o)| o.lines.iter())
            .filter(|(s, _)| *s == sku)
            .map(|(_, qty)| qty)
            .sum()
    }
}

struct World {
    clock: ManualClock,
    gateway: TestGateway,
    commerce: Commerce,
    shop: Shop,
    skus: Vec<Sku>,
}

/// Stock levels and adjustment histories of every SKU.
async fn snapshot(world: &World) -> Result<Vec<(StockLevel, Vec<StockAdjustment>)>, TestCaseError> {
    let mut all = Vec::new();
    for sku in &world.skus {
        all.push((
            world.shop.stock(sku).await?,
            world.shop.stock_adjustments(sku).await?,
        ));
    }
    Ok(all)
}

/// The invariants, and the store agreeing with the model, after every step.
async fn check(world: &World, model: &Model, ctx: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(world.clock.now().timestamp(), model.now, "{}: clock", ctx);
    for (s, sku) in world.skus.iter().enumerate() {
        let level = world.shop.stock(sku).await?;
        let adjustments = world.shop.stock_adjustments(sku).await?;
        let mut received: i64 = 0;
        let mut sold: i64 = 0;
        let mut running: i64 = 0;
        let mut sold_to: Vec<OrderId> = Vec::new();
        for adjustment in &adjustments {
            match &adjustment.kind {
                AdjustmentKind::Received => received += adjustment.delta,
                AdjustmentKind::Sold { order } => {
                    sold -= adjustment.delta;
                    // Only a paid order sells, once per line, its quantity.
                    let line = model
                        .orders
                        .iter()
                        .filter(|o| o.id == *order && o.status == OrderStatus::Paid)
                        .flat_map(|o| o.lines.iter())
                        .find(|(line, _)| *line == s);
                    prop_assert_eq!(
                        line.map(|&(_, qty)| -i64::from(qty)),
                        Some(adjustment.delta),
                        "{}: {} sold to {}",
                        ctx,
                        sku,
                        order
                    );
                    prop_assert!(
                        !sold_to.contains(order),
                        "{}: {} sold twice to {}",
                        ctx,
                        sku,
                        order
                    );
                    sold_to.push(*order);
                }
                _ => prop_assert!(false, "{}: unexpected adjustment {:?}", ctx, adjustment),
            }
            running += adjustment.delta;
            prop_assert_eq!(
                i64::from(adjustment.on_hand_after),
                running,
                "{}: {} history",
                ctx,
                sku
            );
        }
        let reserved = i64::from(level.reserved);
        let allocated = i64::from(level.allocated);

        // The no-oversell invariant.
        prop_assert!(
            reserved + allocated + sold <= received,
            "{}: {} oversold: reserved {} + allocated {} + sold {} > received {}",
            ctx,
            sku,
            reserved,
            allocated,
            sold,
            received
        );
        prop_assert_eq!(
            i64::from(level.on_hand),
            received - sold,
            "{}: {} on hand",
            ctx,
            sku
        );

        // The store agrees with the model.
        prop_assert_eq!(
            received,
            i64::from(model.received[s]),
            "{}: {} received",
            ctx,
            sku
        );
        prop_assert_eq!(sold, i64::from(model.sold[s]), "{}: {} sold", ctx, sku);
        prop_assert_eq!(
            level.reserved,
            model.reserved(s, None),
            "{}: {} reserved",
            ctx,
            sku
        );
        prop_assert_eq!(
            level.allocated,
            model.allocated(s, None),
            "{}: {} allocated",
            ctx,
            sku
        );
        prop_assert_eq!(
            level.available(),
            model.on_hand(s) - model.reserved(s, None) - model.allocated(s, None),
            "{}: {} available",
            ctx,
            sku
        );
    }
    for order in &model.orders {
        let real = world.shop.order(order.id).await?;
        prop_assert_eq!(
            real.status(),
            order.status,
            "{}: status of {}",
            ctx,
            order.id
        );
    }
    for cart in &model.carts {
        let real = world.shop.cart(cart.id).await?;
        let lines: Vec<(Sku, u32)> = real
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity.get()))
            .collect();
        let expected: Vec<(Sku, u32)> = cart
            .lines
            .iter()
            .map(|&(s, q)| (world.skus[s].clone(), q))
            .collect();
        prop_assert_eq!(lines, expected, "{}: lines of cart {}", ctx, cart.id);
        let status = match cart.order {
            Some(o) => CartStatus::CheckedOut {
                order: model.orders[o].id,
            },
            None => CartStatus::Open,
        };
        prop_assert_eq!(real.status(), status, "{}: status of cart {}", ctx, cart.id);
    }
    let refunds: Vec<(OrderId, RefundReason)> = world
        .gateway
        .refund_calls()
        .iter()
        .map(|r| (r.order, r.reason))
        .collect();
    prop_assert_eq!(&refunds, &model.refunds, "{}: refund calls", ctx);
    Ok(())
}

async fn apply(
    world: &World,
    event: &PaymentEvent,
    webhook: bool,
) -> Result<PaymentApplication, TestCaseError> {
    if !webhook {
        return Ok(world.shop.apply_payment_event(event).await?);
    }
    let request = world.gateway.webhook(event, world.clock.now());
    match world.commerce.handle_webhook(&request).await? {
        WebhookHandled::Applied(applied) => Ok(*applied),
        other => Err(TestCaseError::fail(format!(
            "webhook not applied: {other:?}"
        ))),
    }
}

/// Runs one case on `store`, a fresh store.
async fn run(
    store: Arc<dyn Store>,
    initial: [u32; SKUS],
    carts: usize,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let clock = ManualClock::at_unix(START);
    let gateway = TestGateway::default();
    let commerce = Commerce::builder()
        .shared_store(store)
        .gateway(gateway.clone())
        .clock(clock.clone())
        .config(
            Config::default()
                .with_reservation_ttl(std::time::Duration::from_secs(TTL.unsigned_abs()))
                .with_payment_window(std::time::Duration::from_secs(WINDOW.unsigned_abs())),
        )
        .build()?;
    let shop = commerce.shop(&TenantId::parse("prop-shop")?);
    let mut skus = Vec::new();
    for (s, &units) in initial.iter().enumerate() {
        let sku = Sku::parse(format!("SKU-{}", s + 1))?;
        shop.add_product(NewProduct {
            name: format!("Card {}", s + 1),
            category: Category::parse("gpu")?,
            tax_category: TaxCategory::parse("standard")?,
            age_restricted: false,
            variants: vec![Variant::new(
                sku.clone(),
                Money::new(PRICES[s], Currency::AUD),
            )],
        })
        .await?;
        shop.receive_stock(&sku, Quantity::new(units)?, None)
            .await?;
        skus.push(sku);
    }
    let mut model = Model {
        now: START,
        received: initial,
        sold: [0; SKUS],
        carts: Vec::new(),
        orders: Vec::new(),
        keys: HashMap::new(),
        refunds: Vec::new(),
        last_event: None,
    };
    for _ in 0..carts {
        let cart = shop.create_cart(Currency::AUD).await?;
        model.carts.push(ModelCart {
            id: cart.id,
            lines: Vec::new(),
            reservations: [None; SKUS],
            reclaimable: [false; SKUS],
            order: None,
        });
    }
    let world = World {
        clock,
        gateway,
        commerce,
        shop,
        skus,
    };
    check(&world, &model, "setup").await?;

    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        let ctx = ctx.as_str();
        match op {
            Op::SetLine { cart, sku, qty } => {
                set_line(&world, &mut model, ctx, cart.index(carts), *sku, *qty).await?
            }
            Op::Checkout { cart, key } => {
                let key = match key {
                    Key::Fresh => format!("k-op{step}"),
                    Key::Shared(n) => format!("k-{n}"),
                };
                checkout(&world, &mut model, ctx, cart.index(carts), key).await?;
            }
            Op::Pay { order, webhook } => {
                if !model.orders.is_empty() {
                    let o = order.index(model.orders.len());
                    pay(&world, &mut model, ctx, o, step, *webhook).await?;
                }
            }
            Op::PayAgain { webhook } => {
                if let Some(event) = model.last_event.clone() {
                    let before = snapshot(&world).await?;
                    let applied = apply(&world, &event, *webhook).await?;
                    prop_assert_eq!(&applied.outcome, &PaymentOutcome::Duplicate, "{}", ctx);
                    prop_assert_eq!(
                        snapshot(&world).await?,
                        before,
                        "{}: a duplicate changed stock",
                        ctx
                    );
                }
            }
            Op::Cancel { order } => {
                if !model.orders.is_empty() {
                    let o = order.index(model.orders.len());
                    let id = model.orders[o].id;
                    let result = world.shop.cancel_order(id, "property test").await;
                    match model.orders[o].status {
                        OrderStatus::AwaitingPayment | OrderStatus::Expired => {
                            let order = result?;
                            prop_assert_eq!(order.status(), OrderStatus::Cancelled, "{}", ctx);
                            model.orders[o].status = OrderStatus::Cancelled;
                        }
                        from => prop_assert!(
                            matches!(
                                result,
                                Err(Error::InvalidTransition { order, from: f, to: OrderStatus::Cancelled })
                                    if order == id && f == from
                            ),
                            "{}: {:?}",
                            ctx,
                            result
                        ),
                    }
                }
            }
            Op::Advance { secs } => {
                world.clock.advance(Duration::from_secs(*secs));
                model.now += i64::try_from(*secs).unwrap();
            }
            Op::Sweep => {
                let report = world.shop.sweep().await?;
                let now = model.now;
                // Lapsed reservations no other reservation may have
                // reclaimed, and those one may have.
                let (mut stale, mut maybe_reclaimed) = (0, 0);
                for cart in &mut model.carts {
                    for (reservation, reclaimable) in
                        cart.reservations.iter_mut().zip(&mut cart.reclaimable)
                    {
                        if reservation.is_some_and(|(_, expires_at)| expires_at <= now) {
                            if *reclaimable {
                                maybe_reclaimed += 1;
                            } else {
                                stale += 1;
                            }
                            *reservation = None;
                            *reclaimable = false;
                        }
                    }
                }
                let mut expired = Vec::new();
                for order in &mut model.orders {
                    if order.status == OrderStatus::AwaitingPayment && order.expires_at <= now {
                        order.status = OrderStatus::Expired;
                        expired.push(order.id);
                    }
                }
                let mut reported = report.orders_expired.clone();
                reported.sort();
                expired.sort();
                prop_assert_eq!(reported, expired, "{}: orders expired", ctx);
                prop_assert!(
                    (stale..=stale + maybe_reclaimed).contains(&report.reservations_removed),
                    "{}: {} reservations removed, expected {} and up to {} more",
                    ctx,
                    report.reservations_removed,
                    stale,
                    maybe_reclaimed
                );
                prop_assert_eq!(report.refunds_retried, 0, "{}: refunds retried", ctx);
            }
            Op::Receive { sku, qty } => {
                let level = world
                    .shop
                    .receive_stock(&world.skus[*sku], Quantity::new(*qty)?, None)
                    .await?;
                model.received[*sku] += qty;
                prop_assert_eq!(level.on_hand, model.on_hand(*sku), "{}", ctx);
            }
        }
        check(&world, &model, ctx).await?;
    }
    Ok(())
}

async fn set_line(
    world: &World,
    model: &mut Model,
    ctx: &str,
    c: usize,
    s: usize,
    qty: u32,
) -> Result<(), TestCaseError> {
    let cart_id = model.carts[c].id;
    let sku = &world.skus[s];
    let result = world.shop.set_line(cart_id, sku, Quantity::new(qty)?).await;
    if let Some(o) = model.carts[c].order {
        let order_id = model.orders[o].id;
        prop_assert!(
            matches!(&result, Err(Error::CartCheckedOut { cart, order }) if *cart == cart_id && *order == order_id),
            "{}: {:?}",
            ctx,
            result
        );
        return Ok(());
    }
    if qty > 0 {
        let held = model.reserved(s, Some(c)) + model.allocated(s, None);
        let available = model.on_hand(s).saturating_sub(held);
        if qty > available {
            prop_assert!(
                matches!(
                    &result,
                    Err(Error::InsufficientStock { sku: got, requested, available: a })
                        if got == sku && *requested == qty && *a == available
                ),
                "{}: expected InsufficientStock (available {}), got {:?}",
                ctx,
                available,
                result
            );
            return Ok(());
        }
    }
    prop_assert!(result.is_ok(), "{}: expected Ok, got {:?}", ctx, result);
    if qty > 0 {
        let now = model.now;
        for other in &mut model.carts {
            if other.reservations[s].is_some_and(|(_, expires_at)| expires_at <= now) {
                other.reclaimable[s] = true;
            }
        }
    }
    let cart = &mut model.carts[c];
    cart.reclaimable[s] = false;
    if qty == 0 {
        cart.lines.retain(|(line, _)| *line != s);
        cart.reservations[s] = None;
    } else {
        match cart.lines.iter_mut().find(|(line, _)| *line == s) {
            Some(line) => line.1 = qty,
            None => cart.lines.push((s, qty)),
        }
        cart.reservations[s] = Some((qty, model.now + TTL));
    }
    Ok(())
}

async fn checkout(
    world: &World,
    model: &mut Model,
    ctx: &str,
    c: usize,
    key: String,
) -> Result<(), TestCaseError> {
    let cart_id = model.carts[c].id;
    let result = world
        .shop
        .checkout(cart_id, &IdempotencyKey::parse(key.clone())?)
        .await;

    if let Some(&o) = model.keys.get(&key) {
        let order = &model.orders[o];
        if order.cart != c {
            prop_assert!(
                matches!(&result, Err(Error::IdempotencyKeyReused { key: k, order: id }) if k.as_str() == key && *id == order.id),
                "{}: {:?}",
                ctx,
                result
            );
        } else {
            let done = result?;
            prop_assert!(
                !done.created,
                "{}: a repeated checkout created an order",
                ctx
            );
            prop_assert_eq!(done.order.id, order.id, "{}", ctx);
            prop_assert_eq!(done.order.status(), order.status, "{}", ctx);
            prop_assert_eq!(
                done.session.is_some(),
                order.status == OrderStatus::AwaitingPayment,
                "{}: session",
                ctx
            );
        }
        return Ok(());
    }
    if let Some(o) = model.carts[c].order {
        let order_id = model.orders[o].id;
        prop_assert!(
            matches!(&result, Err(Error::CartCheckedOut { cart, order }) if *cart == cart_id && *order == order_id),
            "{}: {:?}",
            ctx,
            result
        );
        return Ok(());
    }
    let cart = &model.carts[c];
    if cart.lines.is_empty() {
        prop_assert!(
            matches!(&result, Err(Error::EmptyCart(id)) if *id == cart_id),
            "{}: {:?}",
            ctx,
            result
        );
        return Ok(());
    }
    let lapsed = cart.lines.iter().find(|&&(s, qty)| {
        !cart.reservations[s]
            .is_some_and(|(reserved, expires_at)| model.now < expires_at && reserved >= qty)
    });
    if let Some(&(s, _)) = lapsed {
        prop_assert!(
            matches!(&result, Err(Error::ReservationLapsed { sku }) if *sku == world.skus[s]),
            "{}: expected ReservationLapsed for {}, got {:?}",
            ctx,
            world.skus[s],
            result
        );
        return Ok(());
    }

    let done = result?;
    let lines = cart.lines.clone();
    let total: i64 = lines
        .iter()
        .map(|&(s, qty)| PRICES[s] * i64::from(qty))
        .sum();
    prop_assert!(done.created, "{}", ctx);
    prop_assert!(done.session.is_some(), "{}: no session", ctx);
    prop_assert_eq!(done.order.status(), OrderStatus::AwaitingPayment, "{}", ctx);
    prop_assert_eq!(
        done.order.total(),
        Money::new(total, Currency::AUD),
        "{}: total",
        ctx
    );
    let got: Vec<(Sku, u32)> = done
        .order
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity.get()))
        .collect();
    let want: Vec<(Sku, u32)> = lines
        .iter()
        .map(|&(s, q)| (world.skus[s].clone(), q))
        .collect();
    prop_assert_eq!(got, want, "{}: order lines", ctx);
    prop_assert_eq!(
        done.order.payment_expires_at.timestamp(),
        model.now + WINDOW,
        "{}",
        ctx
    );

    let index = model.orders.len();
    model.orders.push(ModelOrder {
        id: done.order.id,
        cart: c,
        lines,
        total,
        expires_at: model.now + WINDOW,
        status: OrderStatus::AwaitingPayment,
    });
    model.keys.insert(key, index);
    let cart = &mut model.carts[c];
    cart.order = Some(index);
    cart.reservations = [None; SKUS];
    cart.reclaimable = [false; SKUS];
    Ok(())
}

async fn pay(
    world: &World,
    model: &mut Model,
    ctx: &str,
    o: usize,
    step: usize,
    webhook: bool,
) -> Result<(), TestCaseError> {
    let order = &model.orders[o];
    let amount = Money::new(order.total, Currency::AUD);
    let payment_ref = format!("pay_{step}");
    let event = PaymentEvent {
        id: PaymentEventId::parse(format!("evt_{step}"))?,
        tenant: world.shop.tenant().clone(),
        order: order.id,
        kind: PaymentEventKind::Succeeded {
            amount,
            payment_ref: Some(payment_ref.clone()),
        },
    };
    let before = snapshot(world).await?;
    let applied = apply(world, &event, webhook).await?;
    model.last_event = Some(event.clone());
    let refund_id = RefundId::for_payment_event(&event.id);

    match order.status {
        OrderStatus::AwaitingPayment | OrderStatus::Expired => {
            // The payment takes the stock iff, for every line, what is on
            // hand minus every live reservation and every other order's
            // live allocation covers it.
            let short = order.lines.iter().any(|&(s, qty)| {
                let held = model.reserved(s, None) + model.allocated(s, Some(o));
                model.on_hand(s).saturating_sub(held) < qty
            });
            if short {
                let PaymentOutcome::Oversold { refund } = &applied.outcome else {
                    return Err(TestCaseError::fail(format!(
                        "{ctx}: expected Oversold, got {:?}",
                        applied.outcome
                    )));
                };
                prop_assert_eq!(&refund.id, &refund_id, "{}", ctx);
                prop_assert_eq!(refund.order, order.id, "{}", ctx);
                prop_assert_eq!(refund.amount, amount, "{}", ctx);
                prop_assert_eq!(refund.reason, RefundReason::Oversold, "{}", ctx);
                prop_assert_eq!(
                    applied.order.status(),
                    OrderStatus::OversoldRefunded,
                    "{}",
                    ctx
                );
                // Its allocation had lapsed (a live one always covers the
                // order), so releasing it changes no stock figure.
                prop_assert_eq!(
                    snapshot(world).await?,
                    before,
                    "{}: an oversold payment changed stock",
                    ctx
                );
                model.refunds.push((order.id, RefundReason::Oversold));
                model.orders[o].status = OrderStatus::OversoldRefunded;
            } else {
                prop_assert_eq!(&applied.outcome, &PaymentOutcome::Paid, "{}", ctx);
                prop_assert_eq!(applied.order.status(), OrderStatus::Paid, "{}", ctx);
                prop_assert_eq!(
                    applied.order.payment_ref.as_deref(),
                    Some(payment_ref.as_str()),
                    "{}",
                    ctx
                );
                for &(s, qty) in &model.orders[o].lines {
                    model.sold[s] += qty;
                }
                model.orders[o].status = OrderStatus::Paid;
            }
        }
        OrderStatus::Cancelled => {
            let PaymentOutcome::RefundedAfterCancellation { refund } = &applied.outcome else {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: expected RefundedAfterCancellation, got {:?}",
                    applied.outcome
                )));
            };
            prop_assert_eq!(&refund.id, &refund_id, "{}", ctx);
            prop_assert_eq!(refund.reason, RefundReason::OrderCancelled, "{}", ctx);
            prop_assert_eq!(refund.amount, amount, "{}", ctx);
            prop_assert_eq!(applied.order.status(), OrderStatus::Refunded, "{}", ctx);
            prop_assert_eq!(snapshot(world).await?, before, "{}: stock changed", ctx);
            model.refunds.push((order.id, RefundReason::OrderCancelled));
            model.orders[o].status = OrderStatus::Refunded;
        }
        status => {
            prop_assert!(
                matches!(applied.outcome, PaymentOutcome::Ignored { .. }),
                "{}: expected Ignored, got {:?}",
                ctx,
                applied.outcome
            );
            prop_assert_eq!(applied.order.status(), status, "{}", ctx);
            prop_assert_eq!(snapshot(world).await?, before, "{}: stock changed", ctx);
        }
    }
    Ok(())
}
