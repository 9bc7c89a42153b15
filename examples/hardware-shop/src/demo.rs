//! The scripted scenario (`hardware-shop --demo`): a handful of used GPUs
//! and CPUs, one unit of each, on commerce-core's test gateway and a
//! [`ManualClock`] the scenario moves by hand. Buyers race for the last
//! unit, a payment webhook arrives twice, a reservation expires, a payment
//! arrives too late. It runs on the in-memory store, or on PostgreSQL when
//! `DATABASE_URL` is set (a tenant of its own per run).
//!
//! ```text
//! cargo run -p hardware-shop -- --demo
//! cargo run -p hardware-shop -- --demo --buyers 50
//! ```
//!
//! It checks every claim it prints and exits 0 only if all of them held, so CI
//! can run it as a test.

use crate::catalog::SHELF;
use crate::{audit, cli};
use shop_kit::store::{self, Tenancy};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use commerce_core::{
    BackendErrorKind, CartId, Category, Commerce, Config, Currency, Error, IdempotencyKey,
    ManualClock, Money, NewProduct, Order, OrderStatus, PaymentApplication, PaymentEvent,
    PaymentEventId, PaymentEventKind, PaymentOutcome, Quantity, RefundReason, Shop, Sku,
    StockLevel, Store, SweepReport, TaxCategory, TenantId, TestGateway, Variant, WebhookHandled,
};

use tokio::sync::Barrier;

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// 2026-01-01 09:00:00 UTC: the shop opens. The engine runs on a
/// [`ManualClock`] that the example moves by hand.
const OPENING_TIME: i64 = 1_767_258_000;

/// Raced for by the crowd of buyers.
const RACED: &str = "GPU-3090-FE";
/// Reserved and abandoned, then bought by someone else.
const ABANDONED: &str = "CPU-5950X";
/// Paid for too late: the oversold path.
const PAID_LATE: &str = "GPU-6800XT";

/// Runs the scenario with the arguments after `--demo`.
pub async fn run(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let buyers = match cli::parse(args) {
        Ok(cli::Command::Run { buyers }) => buyers,
        Ok(cli::Command::Help) => {
            println!("{}", cli::help());
            return Ok(());
        }
        Err(message) => {
            eprintln!("error: {message}\n{}", cli::USAGE);
            std::process::exit(2);
        }
    };

    let opened = store::open(&store::Choice::from_env()?, Tenancy::PerRun(crate::TENANT)).await?;
    println!("hardware-shop: one-of-a-kind used hardware, test gateway");
    println!("{}", opened.description);
    let demo = Demo::open(opened.store, &opened.tenant)?;
    let mut expect = Expectations::default();
    println!("(the engine's clock is a ManualClock the example moves by hand; times are UTC)");

    stock_the_shop(&demo, &mut expect).await?;
    let winner_cart = race(&demo, buyers, &mut expect).await?;
    let winner_order = winner_pays(&demo, winner_cart, &mut expect).await?;
    abandoned_reservation(&demo, &mut expect).await?;
    let late_order = late_payment(&demo, &mut expect).await?;

    println!("\n6. Audit logs (append-only, one line per event)");
    println!("   the winner's order {}:", winner_order.id);
    print!(
        "{}",
        audit::table(&demo.shop.order_events(winner_order.id).await?)
    );
    println!("   Casey's oversold order {}:", late_order.id);
    print!(
        "{}",
        audit::table(&demo.shop.order_events(late_order.id).await?)
    );

    summary(&demo, buyers, &expect).await
}

/// The engine and the handles the example keeps on it.
struct Demo {
    commerce: Commerce,
    shop: Shop,
    gateway: TestGateway,
    clock: ManualClock,
}

impl Demo {
    fn open(store: Arc<dyn Store>, tenant: &TenantId) -> AnyResult<Self> {
        let clock = ManualClock::at_unix(OPENING_TIME);
        let gateway = TestGateway::default();
        let commerce = Commerce::builder()
            .shared_store(store)
            .gateway(gateway.clone())
            .clock(clock.clone())
            .config(Config::default())
            .build()?;
        let shop = commerce.shop(tenant);
        Ok(Self {
            commerce,
            shop,
            gateway,
            clock,
        })
    }

    /// The engine's time, as `09:00`.
    fn time(&self) -> String {
        self.commerce.now().format("%H:%M").to_string()
    }

    /// Lets `minutes` pass on the engine's clock.
    fn wait_minutes(&self, minutes: u64) {
        self.clock
            .advance(std::time::Duration::from_secs(minutes * 60));
    }

    /// The provider's "payment succeeded" event for `order`, for its total.
    fn payment(&self, order: &Order, event_id: &str) -> AnyResult<PaymentEvent> {
        Ok(PaymentEvent {
            id: PaymentEventId::parse(event_id)?,
            tenant: self.shop.tenant().clone(),
            order: order.id,
            kind: PaymentEventKind::Succeeded {
                amount: order.total(),
                payment_ref: Some(format!("pay_{event_id}")),
            },
        })
    }

    /// Delivers `event` as the provider would: a signed webhook request,
    /// verified and applied by the engine.
    async fn deliver(&self, event: &PaymentEvent) -> AnyResult<PaymentApplication> {
        let request = self.gateway.webhook(event, self.commerce.now());
        match self.commerce.handle_webhook(&request).await? {
            WebhookHandled::Applied(applied) => Ok(*applied),
            other => Err(format!("webhook {} was not applied: {other:?}", event.id).into()),
        }
    }

    /// Cart, reservation and checkout of one unit of `sku`.
    async fn check_out(&self, sku: &Sku, key: &str) -> AnyResult<Order> {
        let cart = self.shop.create_cart(Currency::AUD).await?;
        self.shop.set_line(cart.id, sku, Quantity::ONE).await?;
        let checkout = self
            .shop
            .checkout(cart.id, &IdempotencyKey::parse(key)?)
            .await?;
        Ok(checkout.order)
    }

    async fn stock(&self, sku: &Sku) -> AnyResult<StockLevel> {
        Ok(self.shop.stock(sku).await?)
    }
}

fn sku(code: &str) -> AnyResult<Sku> {
    Ok(Sku::parse(code)?)
}

/// A [`SweepReport`] with order ids shown plainly.
fn sweep_line(report: &SweepReport) -> String {
    let expired: Vec<String> = report
        .orders_expired
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "sweep -> reservations_removed: {}, orders_expired: [{}], refunds_retried: {}, refunds_confirmed: {}",
        report.reservations_removed,
        expired.join(", "),
        report.refunds_retried,
        report.refunds_confirmed
    )
}

/// How a call the buyer expects to be refused turned out, in short.
fn refusal<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => "accepted".to_owned(),
        Err(Error::ReservationLapsed { .. }) => "ReservationLapsed".to_owned(),
        Err(Error::InsufficientStock { available, .. }) => {
            format!("InsufficientStock (available {available})")
        }
        Err(other) => other.to_string(),
    }
}

fn level(stock: &StockLevel) -> String {
    format!(
        "on hand {}, reserved {}, allocated {}, available {}",
        stock.on_hand,
        stock.reserved,
        stock.allocated,
        stock.available()
    )
}

/// Step 1: one product per item, one SKU each, one unit of each received.
async fn stock_the_shop(demo: &Demo, expect: &mut Expectations) -> AnyResult {
    println!(
        "\n1. Stocking the shop at {}: one unit of each",
        demo.time()
    );
    for item in &SHELF {
        let sku = sku(item.sku)?;
        let price = Money::from_decimal_str(item.price, Currency::AUD)?;
        demo.shop
            .add_product(NewProduct {
                name: item.name.into(),
                category: Category::parse(item.category)?,
                tax_category: TaxCategory::parse("standard")?,
                age_restricted: false,
                variants: vec![Variant::new(sku.clone(), price)],
                published: true,
            })
            .await?;
        let stock = demo
            .shop
            .receive_stock(&sku, Quantity::ONE, Some(item.note.into()))
            .await?;
        println!(
            "   {:<13} {:<33} {:>12}   on hand {}",
            item.sku,
            item.name,
            price.to_string(),
            stock.on_hand
        );
        expect.that(stock.on_hand == 1 && stock.available() == 1, || {
            format!("{} has one unit available", item.sku)
        })?;
    }
    Ok(())
}

/// Step 2: `buyers` tasks try to put the last RTX 3090 in their carts at the
/// same moment. Returns the winner's cart.
async fn race(demo: &Demo, buyers: usize, expect: &mut Expectations) -> AnyResult<CartId> {
    let raced = sku(RACED)?;
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let (buyers_word, tasks_word) = if buyers == 1 {
        ("buyer", "task")
    } else {
        ("buyers", "tasks")
    };
    println!("\n2. {buyers} {buyers_word} race for the last {RACED}");
    println!(
        "   {buyers} tokio {tasks_word} on {workers} worker threads each open a cart, wait at a start line,"
    );
    println!("   then all ask for the card at once (set_line, quantity 1)");

    // The buyers and this task, the starter, who fires once they are all there.
    let start = Arc::new(Barrier::new(buyers + 1));
    let mut tasks = Vec::with_capacity(buyers);
    for buyer in 1..=buyers {
        let (shop, raced, start) = (demo.shop.clone(), raced.clone(), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            let cart = shop.create_cart(Currency::AUD).await;
            start.wait().await; // even on error, so the others are not kept waiting
            match cart {
                Ok(cart) => {
                    let attempt = shop.set_line(cart.id, &raced, Quantity::ONE).await;
                    (buyer, Some(cart.id), attempt)
                }
                Err(e) => (buyer, None, Err(e)),
            }
        }));
    }

    start.wait().await;

    let mut winners = Vec::new();
    // What the losers were told was available, and how many were told so.
    let mut told: BTreeMap<u32, usize> = BTreeMap::new();
    let mut first_refusal = None;
    // Buyers the store turned away as busy (a crowd far larger than its
    // pool of connections, on PostgreSQL): told to retry, not served.
    let mut busy = 0;
    for task in tasks {
        let (buyer, cart, attempt) = task.await?;
        match (attempt, cart) {
            (Ok(_), Some(cart)) => winners.push((buyer, cart)),
            (Ok(_), None) => return Err("a reservation without a cart".into()),
            (Err(Error::Backend(b)), _) if b.kind() == BackendErrorKind::Busy => busy += 1,
            (Err(refusal), _) => match &refusal {
                Error::InsufficientStock {
                    sku,
                    requested: 1,
                    available,
                } if *sku == raced => {
                    *told.entry(*available).or_default() += 1;
                    first_refusal.get_or_insert_with(|| refusal.to_string());
                }
                _ => return Err(format!("buyer #{buyer} failed unexpectedly: {refusal}").into()),
            },
        }
    }

    let losers: usize = told.values().sum();
    match winners.as_slice() {
        [(buyer, _)] => println!(
            "   winner: buyer #{buyer}; their cart holds the unit for {} minutes",
            demo.commerce.config().reservation_ttl().as_secs() / 60
        ),
        _ => println!("   winners: {} (expected exactly one!)", winners.len()),
    }
    match (&first_refusal, told.keys().collect::<Vec<_>>().as_slice()) {
        (None, _) => println!("   nobody else was racing"),
        (Some(refusal), [available]) => {
            println!(
                "   {losers} lost, each told Error::InsufficientStock {{ available: {available} }}:"
            );
            println!("     \"{refusal}\"");
        }
        (Some(_), _) => {
            let answers: Vec<String> = told
                .iter()
                .map(|(available, n)| format!("{n} told available {available}"))
                .collect();
            println!(
                "   {losers} lost with Error::InsufficientStock: {}",
                answers.join(", ")
            );
        }
    }
    if busy > 0 {
        println!("   {busy} were turned away as busy (503 and Retry-After over HTTP)");
    }
    let stock = demo.stock(&raced).await?;
    println!("   {RACED}: {}", level(&stock));

    expect.that(winners.len() == 1, || {
        format!(
            "exactly one of {buyers} buyers wins (winners: {})",
            winners.len()
        )
    })?;
    expect.that(losers + busy + 1 == buyers, || {
        format!("the other {} buyers lose", buyers - 1)
    })?;
    expect.that(told.keys().all(|available| *available == 0), || {
        "every loser is told 0 available".to_owned()
    })?;
    expect.that(stock.reserved == 1 && stock.available() == 0, || {
        format!("{RACED} is reserved once and no longer available")
    })?;
    winners
        .first()
        .map(|(_, cart)| *cart)
        .ok_or_else(|| "no winner".into())
}

/// Step 3: the winner checks out; the payment webhook arrives twice.
async fn winner_pays(demo: &Demo, cart: CartId, expect: &mut Expectations) -> AnyResult<Order> {
    let raced = sku(RACED)?;
    let key = IdempotencyKey::parse(format!("checkout-{cart}"))?;
    println!("\n3. The winner checks out (idempotency key checkout-<cart id>) and pays");
    let checkout = demo.shop.checkout(cart, &key).await?;
    let order = checkout.order;
    let session = checkout
        .session
        .ok_or("checkout opened no payment session")?;
    println!("   order    {}", order.id);
    println!(
        "   total    {}, to pay by {}",
        order.total(),
        order.payment_expires_at.format("%H:%M")
    );
    println!("   pay at   {}", session.redirect_url);
    expect.that(
        checkout.created && order.status() == OrderStatus::AwaitingPayment,
        || "checkout places an order awaiting payment".to_owned(),
    )?;

    let again = demo.shop.checkout(cart, &key).await?;
    println!(
        "   a retried checkout with the same key returns the same order (created: {})",
        again.created
    );
    expect.that(!again.created && again.order.id == order.id, || {
        "a repeated checkout returns the same order".to_owned()
    })?;

    let event = demo.payment(&order, "evt_rtx3090_paid")?;
    demo.wait_minutes(2);
    let first = demo.deliver(&event).await?;
    println!(
        "   {} webhook {}, delivery 1: {:?} (order {})",
        demo.time(),
        event.id,
        first.outcome,
        first.order.status()
    );
    demo.wait_minutes(1);
    let second = demo.deliver(&event).await?;
    println!(
        "   {} webhook {}, delivery 2: {:?} (acknowledged, nothing changed)",
        demo.time(),
        event.id,
        second.outcome
    );
    let stock = demo.stock(&raced).await?;
    println!("   {RACED}: {}", level(&stock));

    expect.that(
        first.outcome == PaymentOutcome::Paid && first.order.status() == OrderStatus::Paid,
        || "the first delivery marks the order paid".to_owned(),
    )?;
    expect.that(
        second.outcome == PaymentOutcome::Duplicate && second.order.status() == OrderStatus::Paid,
        || "the second delivery is a duplicate".to_owned(),
    )?;
    expect.that(stock.on_hand == 0 && stock.available() == 0, || {
        format!("{RACED} is sold: on hand 0")
    })?;
    Ok(first.order)
}

/// Step 4: Alex reserves a CPU and walks away; the reservation lapses.
async fn abandoned_reservation(demo: &Demo, expect: &mut Expectations) -> AnyResult {
    let cpu = sku(ABANDONED)?;
    let ttl_minutes = demo.commerce.config().reservation_ttl().as_secs() / 60;
    println!("\n4. An abandoned cart gives its item back");
    let alex = demo.shop.create_cart(Currency::AUD).await?;
    demo.shop.set_line(alex.id, &cpu, Quantity::ONE).await?;
    let held = demo.stock(&cpu).await?;
    println!(
        "   {} Alex puts the {ABANDONED} in a cart: {}",
        demo.time(),
        level(&held)
    );
    expect.that(held.reserved == 1 && held.available() == 0, || {
        "Alex's reservation holds the CPU".to_owned()
    })?;

    demo.clock.advance(demo.commerce.config().reservation_ttl());
    let lapsed = demo.stock(&cpu).await?;
    println!(
        "   {} {ttl_minutes} minutes later, before any sweep: {}",
        demo.time(),
        level(&lapsed)
    );
    println!("         (an expired reservation stops counting at once; sweeping only tidies up)");
    expect.that(lapsed.reserved == 0 && lapsed.available() == 1, || {
        "the CPU is available again as soon as the reservation expires".to_owned()
    })?;

    let report = demo.shop.sweep().await?;
    println!("   {}", sweep_line(&report));
    expect.that(
        report.reservations_removed == 1 && report.orders_expired.is_empty(),
        || "the sweep removes exactly Alex's expired reservation".to_owned(),
    )?;

    let blake = demo.check_out(&cpu, "checkout-blake-cpu").await?;
    let paid = demo
        .deliver(&demo.payment(&blake, "evt_blake_paid")?)
        .await?;
    println!(
        "   {} Blake reserves it, checks out and pays: {:?}",
        demo.time(),
        paid.outcome
    );
    expect.that(paid.outcome == PaymentOutcome::Paid, || {
        "Blake buys the CPU".to_owned()
    })?;

    let key = IdempotencyKey::parse("checkout-alex-cpu")?;
    let checkout = demo.shop.checkout(alex.id, &key).await;
    let renew = demo.shop.renew_reservations(alex.id).await;
    println!(
        "   Alex comes back: checkout -> {}, renew -> {}",
        refusal(&checkout),
        refusal(&renew)
    );
    expect.that(
        matches!(checkout, Err(Error::ReservationLapsed { .. }))
            && matches!(renew, Err(Error::InsufficientStock { available: 0, .. })),
        || "Alex's stale cart can neither check out nor renew".to_owned(),
    )?;
    Ok(())
}

/// Step 5: Casey's payment arrives after her order expired and the card was
/// sold to Drew: the rare, visible oversold path.
async fn late_payment(demo: &Demo, expect: &mut Expectations) -> AnyResult<Order> {
    let gpu = sku(PAID_LATE)?;
    let window_minutes = demo.commerce.config().payment_window().as_secs() / 60;
    println!("\n5. The rare, visible oversell: a payment that arrives too late");
    let casey = demo.check_out(&gpu, "checkout-casey-gpu").await?;
    println!(
        "   {} Casey checks out the {PAID_LATE} and has until {} to pay",
        demo.time(),
        casey.payment_expires_at.format("%H:%M")
    );

    demo.wait_minutes(window_minutes + 1);
    let report = demo.shop.sweep().await?;
    println!(
        "   {} the {window_minutes}-minute payment window has closed unpaid",
        demo.time()
    );
    println!("   {}", sweep_line(&report));
    expect.that(report.orders_expired == vec![casey.id], || {
        "the sweep expires Casey's unpaid order".to_owned()
    })?;

    let drew = demo.check_out(&gpu, "checkout-drew-gpu").await?;
    let drew_paid = demo.deliver(&demo.payment(&drew, "evt_drew_paid")?).await?;
    println!(
        "   {} Drew buys the now-free {PAID_LATE} and pays: {:?}",
        demo.time(),
        drew_paid.outcome
    );
    expect.that(drew_paid.outcome == PaymentOutcome::Paid, || {
        "Drew buys the GPU".to_owned()
    })?;

    demo.wait_minutes(1);
    let refunds_before = demo.gateway.refund_calls().len();
    let late = demo
        .deliver(&demo.payment(&casey, "evt_casey_paid")?)
        .await?;
    let PaymentOutcome::Oversold { refund } = &late.outcome else {
        return Err(format!(
            "Casey's late payment: expected Oversold, got {:?}",
            late.outcome
        )
        .into());
    };
    println!(
        "   {} Casey's payment finally arrives: Oversold, order {}",
        demo.time(),
        late.order.status()
    );
    let sent: Vec<_> = demo
        .gateway
        .refund_calls()
        .into_iter()
        .skip(refunds_before)
        .collect();
    println!(
        "   refund {}: {} to Casey (reason {:?}); gateway refund calls: {}",
        refund.id,
        refund.amount,
        refund.reason,
        sent.len()
    );
    let stock = demo.stock(&gpu).await?;
    println!("   {PAID_LATE}: {} (Drew keeps it)", level(&stock));

    let casey_now = demo.shop.order(casey.id).await?;
    expect.that(casey_now.status() == OrderStatus::OversoldRefunded, || {
        "Casey's order is oversold_refunded".to_owned()
    })?;
    expect.that(
        refund.amount == casey.total() && refund.reason == RefundReason::Oversold,
        || "Casey is refunded her full payment".to_owned(),
    )?;
    expect.that(
        sent.len() == 1 && sent.iter().all(|call| call.id == refund.id),
        || "the refund reaches the gateway exactly once".to_owned(),
    )?;
    expect.that(
        demo.shop.order(drew.id).await?.status() == OrderStatus::Paid && stock.on_hand == 0,
        || "Drew's order stays paid".to_owned(),
    )?;
    Ok(casey_now)
}

async fn summary(demo: &Demo, buyers: usize, expect: &Expectations) -> AnyResult {
    let mut left = Vec::new();
    for item in &SHELF {
        if demo.stock(&sku(item.sku)?).await?.on_hand > 0 {
            left.push(item.sku);
        }
    }
    println!("\nSummary");
    println!(
        "   - the race for one card: {buyers} buyer(s), 1 winner, {} refused (sold out, or busy)",
        buyers - 1
    );
    println!("   - the payment webhook came twice and was applied once");
    println!("   - an abandoned reservation freed its CPU the moment it expired");
    println!("   - a payment that came after its order expired and the card resold was refunded");
    println!(
        "   - sold {} of {} items; still on the shelf: {}",
        SHELF.len() - left.len(),
        SHELF.len(),
        left.join(", ")
    );
    println!("OK: all {} expectations held.", expect.held);
    Ok(())
}

/// The claims the run checks. The first that does not hold ends the run
/// with exit status 1.
#[derive(Debug, Default)]
struct Expectations {
    held: usize,
}

impl Expectations {
    fn that(&mut self, holds: bool, what: impl FnOnce() -> String) -> Result<(), Unmet> {
        if holds {
            self.held += 1;
            Ok(())
        } else {
            Err(Unmet(what()))
        }
    }
}

/// An expectation that did not hold.
struct Unmet(String);

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expectation not met: {}", self.0)
    }
}

/// Shown by `main` when it returns the error: the message, not a struct dump.
impl fmt::Debug for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Unmet {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmet_expectation_stops_the_run_with_its_message() {
        let mut expect = Expectations::default();
        assert!(expect.that(true, || unreachable!()).is_ok());
        let unmet = expect.that(false, || "exactly one winner".to_owned());
        assert_eq!(expect.held, 1);
        // `main` returning this error prints `Error: {:?}` and exits with 1.
        let shown = unmet.map_err(|e| format!("{e:?}"));
        assert_eq!(
            shown,
            Err("expectation not met: exactly one winner".to_owned())
        );
    }
}
