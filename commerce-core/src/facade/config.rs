//! The engine's configuration and its builder.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;

use crate::cart::CartLimits;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::memory::InMemoryStore;
use crate::payment::{PaymentGateway, TestGateway};
use crate::store::Store;
use crate::tax::{ConfiguredTax, TaxCalculator};

use super::{Commerce, Inner};

/// Tunable policy. Start from [`Config::default`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// use commerce_core::Config;
/// let config = Config::default().with_reservation_ttl(Duration::from_secs(10 * 60));
/// assert_eq!(config.payment_window(), Duration::from_secs(31 * 60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    reservation_ttl: Duration,
    payment_window: Duration,
    sweep_batch: usize,
    cart_limits: CartLimits,
}

impl Default for Config {
    /// A 15-minute reservation TTL, a 31-minute payment window, sweeps in
    /// batches of 500, carts of at most 100 lines of 1,000 units.
    ///
    /// A Stripe Checkout Session must expire at least 30 minutes after Stripe
    /// creates it, and the session is created just after the order is placed:
    /// the extra minute covers that gap, so the default works with Stripe.
    fn default() -> Self {
        Self {
            reservation_ttl: Duration::from_secs(15 * 60),
            payment_window: Duration::from_secs(31 * 60),
            sweep_batch: 500,
            cart_limits: CartLimits::default(),
        }
    }
}

impl Config {
    /// How long setting a cart line holds its stock.
    pub fn with_reservation_ttl(mut self, ttl: Duration) -> Self {
        self.reservation_ttl = ttl;
        self
    }

    /// How long a placed order holds its stock while awaiting payment.
    pub fn with_payment_window(mut self, window: Duration) -> Self {
        self.payment_window = window;
        self
    }

    /// How many rows one sweep step handles at most.
    pub fn with_sweep_batch(mut self, batch: usize) -> Self {
        self.sweep_batch = batch;
        self
    }

    /// How many lines a cart may hold and how many units one line may
    /// reserve (default 100 lines of at most 1,000 units): bots cannot
    /// hold a shop's stock with one cart. Past either,
    /// [`Shop::set_line`](crate::Shop::set_line) refuses with
    /// [`Error::CartLimit`] and holds nothing.
    ///
    /// Both are enforced by the store inside the atomic step that sets the
    /// line ([`CartStore::set_line`](crate::store::CartStore::set_line)
    /// checks [`CartLimits`] against the locked cart), so concurrent calls
    /// adding distinct SKUs to one cart cannot pass the line count together.
    /// Changing an existing line's quantity or removing a line is never
    /// refused by the line count. Zero for either is refused by
    /// [`CommerceBuilder::build`].
    pub fn with_cart_limits(mut self, max_lines: usize, max_units_per_line: u32) -> Self {
        self.cart_limits = CartLimits::new(max_lines, max_units_per_line);
        self
    }

    /// The cart limits, as the store checks them.
    pub fn cart_limits(&self) -> CartLimits {
        self.cart_limits
    }

    /// The most lines a cart may hold.
    pub fn max_lines(&self) -> usize {
        self.cart_limits.max_lines()
    }

    /// The most units one cart line may reserve.
    pub fn max_units_per_line(&self) -> u32 {
        self.cart_limits.max_units_per_line()
    }

    /// The reservation TTL.
    pub fn reservation_ttl(&self) -> Duration {
        self.reservation_ttl
    }

    /// The payment window.
    pub fn payment_window(&self) -> Duration {
        self.payment_window
    }

    /// The sweep batch size.
    pub fn sweep_batch(&self) -> usize {
        self.sweep_batch
    }

    fn delta(name: &str, d: Duration) -> Result<TimeDelta> {
        TimeDelta::from_std(d)
            .ok()
            .filter(|delta| *delta > TimeDelta::zero() && *delta <= TimeDelta::days(36_525))
            .ok_or_else(|| {
                Error::InvalidConfig(format!("{name} must be positive and at most 100 years"))
            })
    }
}

/// Builds a [`Commerce`]. Unset parts default to the in-memory store, the
/// [`TestGateway`] and the [`SystemClock`].
#[derive(Default)]
pub struct CommerceBuilder {
    store: Option<Arc<dyn Store>>,
    gateway: Option<Arc<dyn PaymentGateway>>,
    clock: Option<Arc<dyn Clock>>,
    tax: Option<Arc<dyn TaxCalculator>>,
    config: Config,
}

impl CommerceBuilder {
    /// The store.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A store already shared.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The payment gateway.
    pub fn gateway(mut self, gateway: impl PaymentGateway) -> Self {
        self.gateway = Some(Arc::new(gateway));
        self
    }

    /// A gateway already shared.
    pub fn shared_gateway(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// The clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The tax calculator (default: [`ConfiguredTax`], each shop's
    /// [`TaxConfig`](crate::TaxConfig)).
    pub fn tax_calculator(mut self, tax: impl TaxCalculator) -> Self {
        self.tax = Some(Arc::new(tax));
        self
    }

    /// The configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Checks the configuration and builds. A zero or absurd TTL or payment
    /// window, a zero cart limit, or a zero sweep batch, is
    /// [`Error::InvalidConfig`].
    pub fn build(self) -> Result<Commerce> {
        let ttl = Config::delta("reservation TTL", self.config.reservation_ttl)?;
        let window = Config::delta("payment window", self.config.payment_window)?;
        if self.config.max_lines() == 0 || self.config.max_units_per_line() == 0 {
            return Err(Error::InvalidConfig(
                "cart limits must be at least 1".into(),
            ));
        }
        if self.config.sweep_batch == 0 {
            return Err(Error::InvalidConfig(
                "sweep batch must be at least 1".into(),
            ));
        }
        Ok(Commerce {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(InMemoryStore::new())),
                gateway: self
                    .gateway
                    .unwrap_or_else(|| Arc::new(TestGateway::default())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                tax: self.tax.unwrap_or_else(|| Arc::new(ConfiguredTax)),
                config: self.config,
                ttl,
                window,
            }),
        })
    }
}
