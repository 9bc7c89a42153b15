//! Property tests.
//!
//! 1. Allocation: the parts of [`allocate_minor`] / [`Money::allocate`] sum
//!    exactly to the total, keep its sign, are deterministic, give zero
//!    weights nothing, and each is within one minor unit of the exact share.
//! 2. Money arithmetic never overflows silently and agrees with an `i128`
//!    model; `Display` round-trips through [`Money::from_decimal_str`].
//! 3. Random operation sequences on the in-memory store, checked step by
//!    step against a small model: the no-oversell invariant, the outcome of
//!    every cart, checkout, payment, cancellation and sweep, and refunds.
//!
//! Failure persistence is off so that a failing run writes no
//! `proptest-regressions` file next to this one; the failing input is printed.

// clippy.toml allows these in `#[test]` functions only; the model and the
// step helpers below are test code too, and a panic there is a test failure.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "test-only helpers: a panic is a failing test"
)]

use std::collections::HashMap;
use std::time::Duration;

use commerce_core::money::allocate_minor;
use commerce_core::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// Strategies for money
// ---------------------------------------------------------------------------

/// Any `i64`, with the edges and small values over-represented.
fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => any::<i64>(),
        2 => -1_000_i64..=1_000,
        1 => Just(i64::MIN),
        1 => Just(i64::MIN + 1),
        1 => Just(i64::MAX),
        1 => Just(i64::MAX - 1),
        1 => Just(0_i64),
    ]
}

/// Any `u64` weight, with zero, small and huge values over-represented.
fn weight() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0_u64..=3,
        2 => any::<u64>(),
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(0_u64),
        1 => (1_u64 << 63)..=u64::MAX,
    ]
}

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(Currency::ALL)
}

fn money_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// 1. Allocation
// ---------------------------------------------------------------------------

/// Checks everything [`allocate_minor`] promises for `total` over `weights`
/// (which must hold a non-zero weight).
fn check_allocation(total: i64, weights: &[u64], parts: &[i64]) -> Result<(), TestCaseError> {
    prop_assert_eq!(parts.len(), weights.len(), "one part per weight");

    let sum: i128 = parts.iter().copied().map(i128::from).sum();
    prop_assert_eq!(sum, i128::from(total), "parts must sum to the total");

    let weight_sum: u128 = weights.iter().copied().map(u128::from).sum();
    let magnitude = u128::from(total.unsigned_abs());
    for (index, (&part, &weight)) in parts.iter().zip(weights).enumerate() {
        if weight == 0 {
            prop_assert_eq!(part, 0, "zero weight at {} got {}", index, part);
        }
        prop_assert!(
            part == 0 || part.signum() == total.signum(),
            "part {} = {} has not the sign of {}",
            index,
            part,
            total
        );

        // |part·W − total·w| < W, checked exactly. part·W can reach about
        // 2^131, past i128, so split total·w = q·W + r with 0 ≤ r < W
        // (|total|·w < 2^127 fits u128). Both part and total·w have the sign
        // of total, so |part·W − total·w| = |(|part| − q)·W − r|, which is
        // below W iff |part| = q, or |part| = q + 1 and r > 0.
        let exact = magnitude * u128::from(weight);
        let q = exact / weight_sum;
        let r = exact % weight_sum;
        let p = u128::from(part.unsigned_abs());
        prop_assert!(
            p == q || (p == q + 1 && r > 0),
            "part {} = {} is not within 1 of {}·{}/{} (floor {}, remainder {})",
            index,
            part,
            total,
            weight,
            weight_sum,
            q,
            r
        );

        // When W fits in u64 the products fit in i128: check the same bound
        // directly as well.
        if let Ok(w_sum) = u64::try_from(weight_sum) {
            let w_sum = i128::from(w_sum);
            let lhs = i128::from(part) * w_sum;
            let rhs = i128::from(total) * i128::from(weight);
            let diff = lhs.checked_sub(rhs).map(i128::unsigned_abs);
            prop_assert!(
                diff.is_some_and(|d| d < weight_sum),
                "|{}·{} − {}·{}| is not below {}",
                part,
                weight_sum,
                total,
                weight,
                weight_sum
            );
        }
    }

    // The documented tie-break: among equal weights (equal remainders) the
    // earlier part gets the extra unit, so it is never smaller in magnitude.
    for i in 0..weights.len() {
        for j in i + 1..weights.len() {
            if weights[i] == weights[j] {
                let (a, b) = (parts[i].unsigned_abs(), parts[j].unsigned_abs());
                prop_assert!(
                    a == b || a == b + 1,
                    "equal weights at {} and {} got {} and {}",
                    i,
                    j,
                    parts[i],
                    parts[j]
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(money_config(1024))]

    #[test]
    fn allocation_is_exact_fair_and_deterministic(
        total in amount(),
        weights in prop::collection::vec(weight(), 1..=20)
            .prop_filter("needs a non-zero weight", |w| w.iter().any(|&x| x != 0)),
        currency in currency(),
    ) {
        let parts = allocate_minor(total, &weights);
        prop_assert!(parts.is_ok(), "allocate_minor({}, {:?}) = {:?}", total, weights, parts);
        let parts = parts.unwrap();
        check_allocation(total, &weights, &parts)?;

        prop_assert_eq!(allocate_minor(total, &weights), Ok(parts.clone()), "deterministic");

        let money = Money::new(total, currency).allocate(&weights);
        let expected: Vec<Money> = parts.iter().map(|&p| Money::new(p, currency)).collect();
        prop_assert_eq!(money, Ok(expected), "Money::allocate agrees with allocate_minor");
    }

    #[test]
    fn allocation_without_weights_is_refused(
        total in amount(),
        zeros in 0_usize..=20,
        currency in currency(),
    ) {
        let weights = vec![0_u64; zeros];
        prop_assert_eq!(allocate_minor(total, &weights), Err(MoneyError::NoWeights));
        prop_assert_eq!(
            Money::new(total, currency).allocate(&weights),
            Err(MoneyError::NoWeights)
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Checked money arithmetic
// ---------------------------------------------------------------------------

/// What a checked operation must return given the exact `i128` result.
fn expect_fit(exact: i128, currency: Currency) -> Result<Money, MoneyError> {
    i64::try_from(exact)
        .map(|minor| Money::new(minor, currency))
        .map_err(|_| MoneyError::Overflow)
}

/// Checks `Money::sum(currency, items)` against an `i128` fold.
///
/// The exact total decides, whatever the running totals do: in range it is
/// the answer, out of range it is `Overflow`, and an amount in another
/// currency is `CurrencyMismatch` naming the first one.
fn check_sum(
    currency: Currency,
    items: &[Money],
    got: &Result<Money, MoneyError>,
) -> Result<(), TestCaseError> {
    let expected = match items.iter().find(|m| m.currency() != currency) {
        Some(foreign) => Err(MoneyError::CurrencyMismatch {
            left: currency,
            right: foreign.currency(),
        }),
        None => expect_fit(items.iter().map(|m| i128::from(m.minor())).sum(), currency),
    };
    prop_assert_eq!(got, &expected, "sum of {:?} in {}", items, currency);
    Ok(())
}

proptest! {
    #![proptest_config(money_config(1024))]

    #[test]
    fn checked_arithmetic_matches_i128(a in amount(), b in amount(), currency in currency()) {
        let (x, y) = (Money::new(a, currency), Money::new(b, currency));
        let (wa, wb) = (i128::from(a), i128::from(b));

        prop_assert_eq!(x.checked_add(y), expect_fit(wa + wb, currency), "{} + {}", a, b);
        prop_assert_eq!(x.checked_sub(y), expect_fit(wa - wb, currency), "{} - {}", a, b);
        prop_assert_eq!(x.checked_mul(b), expect_fit(wa * wb, currency), "{} * {}", a, b);
        prop_assert_eq!(x.checked_neg(), expect_fit(-wa, currency), "-{}", a);
        // Nothing above changes the currency or the operands.
        prop_assert_eq!((x.minor(), x.currency()), (a, currency));
    }

    #[test]
    fn mixing_currencies_is_refused(
        a in amount(),
        b in amount(),
        (left, right) in (currency(), currency()).prop_filter("distinct", |(l, r)| l != r),
    ) {
        let (x, y) = (Money::new(a, left), Money::new(b, right));
        let mismatch = Err(MoneyError::CurrencyMismatch { left, right });
        prop_assert_eq!(x.checked_add(y), mismatch.clone());
        prop_assert_eq!(x.checked_sub(y), mismatch);
    }

    #[test]
    fn sum_matches_an_i128_fold(
        currency in currency(),
        items in prop::collection::vec(
            (amount(), prop::option::weighted(0.05, currency())),
            0..8,
        ),
    ) {
        let items: Vec<Money> = items
            .into_iter()
            .map(|(minor, other)| Money::new(minor, other.unwrap_or(currency)))
            .collect();
        let got = Money::sum(currency, items.iter().copied());
        check_sum(currency, &items, &got)?;
        prop_assert_eq!(Money::sum(currency, items.iter().copied()), got, "deterministic");
    }

    /// `Display` is `"CODE amount"`; the amount parses back to the same money,
    /// `i64::MIN` included.
    #[test]
    fn display_round_trips_through_from_decimal_str(
        minor in amount(),
        currency in currency(),
    ) {
        let money = Money::new(minor, currency);
        let shown = money.to_string();
        let (code, decimal) = shown.split_once(' ').unwrap();
        prop_assert_eq!(code, currency.code());
        prop_assert_eq!(Money::from_decimal_str(decimal, currency), Ok(money), "{}", shown);
    }
}

// ---------------------------------------------------------------------------
// 3. No oversell under random operation sequences
// ---------------------------------------------------------------------------

const START: i64 = 1_767_225_600;
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

async fn run(initial: [u32; SKUS], carts: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = ManualClock::at_unix(START);
    let gateway = TestGateway::default();
    let commerce = Commerce::builder()
        .store(InMemoryStore::new())
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
                let mut stale = 0;
                for cart in &mut model.carts {
                    for reservation in &mut cart.reservations {
                        if reservation.is_some_and(|(_, expires_at)| expires_at <= now) {
                            *reservation = None;
                            stale += 1;
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
                prop_assert_eq!(
                    report.reservations_removed,
                    stale,
                    "{}: reservations removed",
                    ctx
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
    let cart = &mut model.carts[c];
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

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_oversell_under_random_operations(
        initial in prop::array::uniform3(0_u32..=4),
        carts in 1_usize..=6,
        ops in ops(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(initial, carts, ops))?;
    }
}
