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
mod run;
mod steps;

use run::*;
use steps::*;

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
