//! A crowd of buyers for a few units: every buyer opens a cart, reserves one
//! unit and, if that succeeds, checks out, all at once. What a flash sale
//! does to a store whose connections are fewer than its buyers; the
//! PostgreSQL store's tests and the crowd bench run it directly and through
//! a connection pooler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{BackendErrorKind, Error};
use crate::facade::Shop;
use crate::ids::{IdempotencyKey, Quantity, Sku};
use crate::money::Currency;

/// How one buyer's attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerOutcome {
    /// An order was placed.
    Ordered,
    /// Refused: the stock was gone (`InsufficientStock`).
    SoldOut,
    /// Refused: a bounded wait ran out (`BackendErrorKind::Busy`).
    Busy,
    /// Anything else, as text: what must not happen.
    Failed(String),
}

/// The buyers of one crowd: each outcome with the time from the crowd's
/// start to that buyer's answer.
#[derive(Debug, Clone, Default)]
pub struct CrowdReport {
    /// Every buyer's outcome and answer time.
    pub buyers: Vec<(BuyerOutcome, Duration)>,
    /// From the start to the last answer.
    pub elapsed: Duration,
}

impl CrowdReport {
    /// How many buyers ended with `outcome`.
    pub fn count(&self, outcome: &BuyerOutcome) -> usize {
        self.buyers.iter().filter(|(o, _)| o == outcome).count()
    }

    /// The failures (neither an order nor a refusal), as text.
    pub fn failures(&self) -> Vec<String> {
        self.buyers
            .iter()
            .filter_map(|(o, _)| match o {
                BuyerOutcome::Failed(text) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// The `q` quantile (0 to 1, nearest rank) of the refusals' answer
    /// times (sold out or busy), or `None` without refusals.
    pub fn refusal_quantile(&self, q: f64) -> Option<Duration> {
        let mut times: Vec<Duration> = self
            .buyers
            .iter()
            .filter(|(o, _)| matches!(o, BuyerOutcome::SoldOut | BuyerOutcome::Busy))
            .map(|(_, t)| *t)
            .collect();
        times.sort_unstable();
        let last = times.len().checked_sub(1)?;
        #[allow(clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let rank = ((q.clamp(0.0, 1.0) * times.len() as f64).ceil() as usize).saturating_sub(1);
        times.get(rank.min(last)).copied()
    }
}

/// Runs `buyers` buyers at once against `sku` on `shop`: each creates an
/// AUD cart, sets one unit of `sku` and, when that succeeds, checks out.
/// A buyer's time runs from the moment all are released to its answer.
pub async fn crowd(shop: &Shop, sku: &Sku, buyers: usize) -> CrowdReport {
    let gate = Arc::new(tokio::sync::Barrier::new(buyers + 1));
    let mut tasks = Vec::with_capacity(buyers);
    for i in 0..buyers {
        let (shop, sku, gate) = (shop.clone(), sku.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let start = Instant::now();
            let outcome = buy(&shop, &sku, i).await;
            (outcome, start.elapsed())
        }));
    }
    gate.wait().await;
    let start = Instant::now();
    let mut report = CrowdReport::default();
    for task in tasks {
        report.buyers.push(match task.await {
            Ok(answer) => answer,
            Err(e) => (BuyerOutcome::Failed(format!("task: {e}")), Duration::ZERO),
        });
    }
    report.elapsed = start.elapsed();
    report
}

/// How often the buyer holding the unit tries to check out while told busy.
const CHECKOUT_ATTEMPTS: u32 = 250;

async fn buy(shop: &Shop, sku: &Sku, i: usize) -> BuyerOutcome {
    let attempt = async {
        let cart = shop.create_cart(Currency::AUD).await?;
        shop.set_line(cart.id, sku, Quantity::ONE).await?;
        // A key of its own: crowds repeat on one shop.
        let key = IdempotencyKey::parse(format!("crowd-{}-{i}", uuid::Uuid::new_v4().simple()))?;
        // The buyer holding the unit checks out, and retries when told busy
        // (a 503 with Retry-After over HTTP): the crowd may still be
        // crowding the store.
        let mut attempts = 0;
        loop {
            match shop.checkout(cart.id, &key).await {
                Err(Error::Backend(b))
                    if b.kind() == BackendErrorKind::Busy && attempts < CHECKOUT_ATTEMPTS =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => break other.map(|_| ()),
            }
        }
    };
    match attempt.await {
        Ok(()) => BuyerOutcome::Ordered,
        Err(Error::InsufficientStock { .. }) => BuyerOutcome::SoldOut,
        Err(Error::Backend(b)) if b.kind() == BackendErrorKind::Busy => BuyerOutcome::Busy,
        Err(other) => BuyerOutcome::Failed(other.to_string()),
    }
}
