//! The scripted scenario (`click-collect --demo`): two stores seeded from
//! the generated catalog, then a tax invoice with GST per line and
//! GST-free food, each promotion rule either side of its threshold, the
//! age gate refusing and then accepting, a pickup slot carried to the
//! order, the staff desk's ID check, and one store's orders invisible to
//! another. It runs on the in-memory store, or on PostgreSQL when
//! `DATABASE_URL` is set (tenants of their own per run), on a
//! [`ManualClock`] and commerce-core's test gateway.
//!
//! It checks every claim it prints and exits 0 only if all of them held,
//! so CI can run it as a test.

use std::fmt;
use std::sync::Arc;

use commerce_core::pricing::PromotionOutcome;
use commerce_core::{
    AttributeKey, Cart, Commerce, Currency, Error, IdempotencyKey, ManualClock, Money, Order,
    OrderFilter, OrderStatus, Page, PaymentEvent, PaymentEventId, PaymentEventKind, PaymentOutcome,
    Promotion, Quantity, Shop, Sku, Store, TestGateway, WebhookHandled,
};
use shop_kit::Failure;
use shop_kit::store::{self, Tenancy};

use crate::catalog;
use crate::invoice;
use crate::money::dollars;
use crate::panel::{self, Standing};
use crate::rules;
use crate::slots;
use crate::staff;
use crate::stores::Stores;
use crate::web::cart::{AGE_METHOD, AGE_VERIFIED_BY};

/// `--demo --help`.
pub const HELP: &str = "\
click-collect --demo: the scripted scenario, on commerce-core's test gateway
and a manual clock. It seeds two stores from the generated catalog (twice,
to show seeding changes nothing the second time), prints a tax invoice with
GST per line and GST-free food, takes each promotion rule to either side of
its threshold, has the age gate refuse and then accept, carries a pickup
slot to the order, hands a liquor order over after an ID check, and shows a
store's orders are invisible to another store.

Usage: click-collect --demo
       DATABASE_URL=postgres://postgres@127.0.0.1:5432/commerce_example click-collect --demo

Environment:
  DATABASE_URL   unset: the in-memory store. Set: PostgreSQL as this login
                 (migrated first with MIGRATION_DATABASE_URL, default this
                 URL; an administrator is switched to commerce_app in every
                 transaction). Each run's stores are new tenants,
                 <store>-<8 hex digits>, so runs never meet.

Exit status: 0 when every expectation held, 1 when one did not (or the
store failed), 2 when the command line is wrong.";

/// 2026-01-02 00:00 UTC: Friday 10:00 in Brisbane, the stores are open.
const OPENING_TIME: i64 = 1_767_312_000;

const BANANAS: &str = "FRESH-BANANAS";
const SOURDOUGH: &str = "BAKERY-SOURDOUGH";
const SHIRAZ: &str = "WINE-SHIRAZ-BAROSSA";
const SAUV_BLANC: &str = "WINE-SAUVBLANC-MARLBOROUGH";
const PALE_ALE: &str = "BEER-PALE-ALE";
const CHIPS: &str = "SNACK-CHIPS-SEASALT";
const PLATTER: &str = "MEAL-CHEESE-PLATTER";

type AnyResult<T = ()> = Result<T, Failure>;

/// Runs the scenario with the arguments after `--demo`.
pub async fn run(args: Vec<String>) -> AnyResult {
    if let Some(arg) = args.first() {
        eprintln!(
            "error: unknown argument `{arg}`\nUsage: click-collect --demo   (try --demo --help)"
        );
        std::process::exit(2);
    }
    let first = "harbour-st";
    let opened = store::open(&store::Choice::from_env()?, Tenancy::PerRun(first)).await?;
    let suffix = opened
        .tenant
        .as_str()
        .strip_prefix(first)
        .unwrap_or_default()
        .to_owned();
    let stores = Stores::with_suffix(&suffix)?;
    println!("click-collect: a click-and-collect marketplace, test gateway, manual clock");
    println!("{}", opened.description);
    let demo = Demo::open(opened.store, &stores)?;
    let mut expect = Expectations::default();
    println!(
        "(the engine's clock stands at {}, Brisbane time; it moves only when the script says)",
        crate::web::local_date_time(demo.commerce.now())
    );

    seed_stores(&demo, &mut expect).await?;
    let order = gst_invoice_and_age_gate(&demo, &mut expect).await?;
    wine_rule(&demo, &mut expect).await?;
    beer_rule(&demo, &mut expect).await?;
    spend_rule(&demo, &mut expect).await?;
    staff_desk(&demo, &order, &mut expect).await?;
    isolation(&demo, &order, &mut expect).await?;

    println!("\nOK: all {} expectations held.", expect.held);
    Ok(())
}

/// The engine and the handles the scenario keeps on it.
struct Demo {
    commerce: Commerce,
    stores: Stores,
    harbour: Shop,
    laneway: Shop,
    gateway: TestGateway,
    clock: ManualClock,
}

impl Demo {
    fn open(store: Arc<dyn Store>, stores: &Stores) -> AnyResult<Self> {
        let clock = ManualClock::at_unix(OPENING_TIME);
        let gateway = TestGateway::default();
        let commerce = Commerce::builder()
            .shared_store(store)
            .gateway(gateway.clone())
            .clock(clock.clone())
            .build()?;
        let shop = |slug: &str| -> AnyResult<Shop> {
            let store = stores.get(slug).ok_or_else(|| format!("no store {slug}"))?;
            Ok(commerce.shop(&store.tenant))
        };
        Ok(Self {
            harbour: shop("harbour-st")?,
            laneway: shop("laneway-kitchen")?,
            commerce: commerce.clone(),
            stores: stores.clone(),
            gateway,
            clock,
        })
    }

    /// A new cart in `shop` holding `lines`.
    async fn cart(&self, shop: &Shop, lines: &[(&str, u32)]) -> AnyResult<Cart> {
        let mut cart = shop.create_cart(Currency::AUD).await?;
        for (sku, quantity) in lines {
            cart = shop
                .set_line(cart.id, &Sku::parse(*sku)?, Quantity::new(*quantity)?)
                .await?;
        }
        Ok(cart)
    }

    /// Sets `sku` in `cart` to `quantity`.
    async fn set(&self, shop: &Shop, cart: &Cart, sku: &str, quantity: u32) -> AnyResult {
        shop.set_line(cart.id, &Sku::parse(sku)?, Quantity::new(quantity)?)
            .await?;
        Ok(())
    }

    /// Pays `order` as the provider would: a signed webhook, verified and
    /// applied by the engine.
    async fn pay(&self, order: &Order) -> AnyResult<Order> {
        let event = PaymentEvent {
            id: PaymentEventId::parse(format!("evt_paid_{}", order.id))?,
            tenant: order.tenant.clone(),
            order: order.id,
            kind: PaymentEventKind::Succeeded {
                amount: order.total(),
                payment_ref: Some(format!("pay_{}", order.id)),
            },
        };
        let request = self.gateway.webhook(&event, self.commerce.now());
        match self.commerce.handle_webhook(&request).await? {
            WebhookHandled::Applied(applied) if applied.outcome == PaymentOutcome::Paid => {
                Ok(applied.order)
            }
            other => Err(format!("the payment of {} was not applied: {other:?}", order.id).into()),
        }
    }
}

/// The promotion panel of `cart`, as the cart page shows it: `(rule,
/// standing, text)` and the discount each applied rule gave.
async fn panel_of(
    shop: &Shop,
    cart: &Cart,
) -> AnyResult<Vec<(String, Standing, String, Option<Money>)>> {
    let promotions: Vec<Promotion> = shop.promotions().await?;
    let priced = shop.price_cart(cart.id).await?;
    let explained = panel::explain_all(&promotions, Some(&priced.promotions));
    Ok(explained
        .into_iter()
        .map(|e| {
            let discount = priced.promotions.iter().find_map(|r| match &r.outcome {
                PromotionOutcome::Applied { discount } if r.promotion.as_str() == e.promotion => {
                    Some(*discount)
                }
                _ => None,
            });
            (e.promotion, e.standing, e.text, discount)
        })
        .collect())
}

/// The panel line of `rule`, printed, and checked against `standing`,
/// `text` and (when it applies) `discount` cents.
async fn expect_rule(
    shop: &Shop,
    cart: &Cart,
    rule: &str,
    expected: (Standing, &str, Option<i64>),
    expect: &mut Expectations,
) -> AnyResult {
    let panel = panel_of(shop, cart).await?;
    let line = panel.iter().find(|(id, ..)| id == rule);
    let found = line.map(|(_, standing, text, discount)| {
        (*standing, text.as_str(), discount.map(|d| d.minor()))
    });
    if let Some((_, standing, text, _)) = line {
        println!("   panel, {rule}: [{}] {text}", standing.as_str());
    }
    expect.that(found == Some(expected), || {
        format!("{rule}: expected {expected:?}, the panel says {found:?}")
    })
}

/// Step 1: two stores from the generated catalog; seeding again changes nothing.
async fn seed_stores(demo: &Demo, expect: &mut Expectations) -> AnyResult {
    println!(
        "\n1. Seeding the stores from the generated catalog (seed {})",
        shop_kit::cli::DEFAULT_SEED
    );
    let seed = shop_kit::cli::DEFAULT_SEED;
    let harbour = demo.stores.get("harbour-st").ok_or("no harbour-st")?;
    let laneway = demo
        .stores
        .get("laneway-kitchen")
        .ok_or("no laneway-kitchen")?;
    let first = catalog::seed(&demo.harbour, &harbour.info, seed).await?;
    let again = catalog::seed(&demo.harbour, &harbour.info, seed).await?;
    let other = catalog::seed(&demo.laneway, &laneway.info, seed).await?;
    println!(
        "   {}: {} products, {} units received; seeded again: {} products, {} units received",
        harbour.info.name,
        first.products,
        first.units_received,
        again.products,
        again.units_received
    );
    println!(
        "   {}: {} products, {} units received",
        laneway.info.name, other.products, other.units_received
    );
    let mut listed = 0;
    let mut after = None;
    loop {
        let page = demo.harbour.admin_products(after, 200).await?;
        listed += page.products.len();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    expect.that(first.products >= 250 && first.units_received > 0, || {
        format!(
            "{} is seeded with hundreds of stocked products",
            harbour.info.name
        )
    })?;
    expect.that(
        again.units_received == 0 && listed == first.products,
        || {
            format!(
                "seeding twice lists {} products, not {listed}, and receives no stock again",
                first.products
            )
        },
    )?;
    expect.that(other.products < first.products, || {
        "the stores' ranges differ".to_owned()
    })?;

    let shiraz = demo
        .harbour
        .search_products("barossa shiraz", Page::first(5))
        .await?;
    let page_one = demo
        .harbour
        .search_products("wine", Page::first(10))
        .await?;
    let page_two = demo
        .harbour
        .search_products("wine", Page::first(10).next())
        .await?;
    println!(
        "   search \"barossa shiraz\": {} found, first {:?}; \"wine\" pages of 10: {} then {}",
        shiraz.len(),
        shiraz.first().map(|p| p.name()),
        page_one.len(),
        page_two.len()
    );
    expect.that(
        shiraz
            .iter()
            .any(|p| p.variants().iter().any(|v| v.sku().as_str() == SHIRAZ)),
        || "search finds the Barossa shiraz".to_owned(),
    )?;
    expect.that(
        page_one.len() == 10
            && !page_two.is_empty()
            && page_two
                .iter()
                .all(|p| page_one.iter().all(|q| q.id() != p.id())),
        || "search pages through the wines without repeating one".to_owned(),
    )?;
    Ok(())
}

/// Step 2: bananas and sourdough (GST-free), shiraz and chips (10% GST);
/// checkout refused without the age check, accepted with it; the pickup
/// slot reaches the order; the invoice's GST per line, to the cent.
async fn gst_invoice_and_age_gate(demo: &Demo, expect: &mut Expectations) -> AnyResult<Order> {
    println!("\n2. A mixed basket: GST per line, the age gate, a pickup slot");
    let shop = &demo.harbour;
    let cart = demo
        .cart(
            shop,
            &[(BANANAS, 1), (SOURDOUGH, 1), (SHIRAZ, 1), (CHIPS, 1)],
        )
        .await?;
    let slot = slots::offered(demo.commerce.now())
        .into_iter()
        .nth(2)
        .ok_or("no pickup slot offered")?;
    let key = AttributeKey::parse(slots::ATTRIBUTE)?;
    shop.set_cart_attribute(cart.id, &key, Some(slot.value.clone()))
        .await?;
    println!(
        "   pickup slot chosen: {} ({} = {})",
        slot.label,
        slots::ATTRIBUTE,
        slot.value
    );

    let refused = shop
        .checkout(
            cart.id,
            &IdempotencyKey::parse(format!("demo-gst-{}", cart.id))?,
        )
        .await;
    println!("   checkout without the age check -> {}", outcome(&refused));
    expect.that(
        matches!(&refused, Err(Error::AgeVerificationRequired { skus }) if skus.iter().map(Sku::as_str).eq([SHIRAZ])),
        || "checkout refuses the shiraz without an age verification".to_owned(),
    )?;
    let placed_before = shop
        .orders(&OrderFilter::default(), None, 200)
        .await?
        .orders
        .len();
    expect.that(placed_before == 0, || {
        "the refused checkout placed no order".to_owned()
    })?;

    shop.record_age_verification(cart.id, AGE_METHOD, AGE_VERIFIED_BY)
        .await?;
    let checkout = shop
        .checkout(
            cart.id,
            &IdempotencyKey::parse(format!("demo-gst-{}", cart.id))?,
        )
        .await?;
    println!(
        "   after the buyer confirms they are 18 or over -> order {}",
        checkout.order.id
    );
    let order = demo.pay(&checkout.order).await?;
    println!("   paid by webhook: {}", order.status());

    let invoice = invoice::of_order(&order);
    println!("   tax invoice:");
    println!(
        "     {:<38} {:>3} {:>9} {:>7}",
        "item", "qty", "amount", "GST"
    );
    for line in &invoice.lines {
        println!(
            "     {:<38} {:>3} {:>9} {:>7}{}",
            line.name,
            line.quantity,
            line.amount,
            line.gst,
            if line.gst_free { "  GST-free" } else { "" }
        );
    }
    println!(
        "     total {} includes GST of {}",
        invoice.total, invoice.gst
    );
    let gst: Vec<(&str, i64)> = order
        .lines
        .iter()
        .map(|line| (line.sku.as_str(), line.tax.amount.minor()))
        .collect();
    expect.that(
        gst == [(BANANAS, 0), (SOURDOUGH, 0), (SHIRAZ, 227), (CHIPS, 41)],
        || format!("GST per line is 0, 0, 227 and 41 cents, not {gst:?}"),
    )?;
    expect.that(
        order.total().minor() == 4019 && order.totals.tax_total.minor() == 268,
        || {
            format!(
                "the total is $40.19 with $2.68 GST, not {} with {}",
                dollars(&order.total()),
                dollars(&order.totals.tax_total)
            )
        },
    )?;
    let copied = order.attributes().get(&key);
    println!(
        "   the order's pickup slot: {}",
        copied.map_or("none".to_owned(), |v| slots::describe(v))
    );
    expect.that(copied == Some(&slot.value), || {
        "the pickup slot is copied to the order".to_owned()
    })?;
    Ok(order)
}

/// Step 3: 4 wines, then 5.
async fn wine_rule(demo: &Demo, expect: &mut Expectations) -> AnyResult {
    println!("\n3. 5+ wines: 5% off wine");
    let shop = &demo.harbour;
    let cart = demo.cart(shop, &[(SAUV_BLANC, 4)]).await?;
    println!("   4 x Sauvignon Blanc at $18.00");
    expect_rule(
        shop,
        &cart,
        rules::WINE,
        (
            Standing::NotYet,
            "Add 1 more wine to get 5% off wine.",
            None,
        ),
        expect,
    )
    .await?;
    demo.set(shop, &cart, SAUV_BLANC, 5).await?;
    println!("   5 x Sauvignon Blanc ($90.00)");
    expect_rule(
        shop,
        &cart,
        rules::WINE,
        (
            Standing::Applied,
            "Applied: you save $4.50 (5% off wine).",
            Some(450),
        ),
        expect,
    )
    .await?;
    expect_rule(
        shop,
        &cart,
        rules::SPEND,
        (
            Standing::NotYet,
            "Spend $10.00 more to get 10% off the whole basket (your basket is $90.00).",
            None,
        ),
        expect,
    )
    .await
}

/// Step 4: 5 beers with snacks, then 6, then 6 without snacks.
async fn beer_rule(demo: &Demo, expect: &mut Expectations) -> AnyResult {
    println!("\n4. 6+ beers: 20% off snacks");
    let shop = &demo.harbour;
    let cart = demo.cart(shop, &[(PALE_ALE, 5), (CHIPS, 2)]).await?;
    println!("   5 x pale ale, 2 x chips at $4.50");
    expect_rule(
        shop,
        &cart,
        rules::BEER_SNACKS,
        (
            Standing::NotYet,
            "Add 1 more beer to get 20% off snacks.",
            None,
        ),
        expect,
    )
    .await?;
    demo.set(shop, &cart, PALE_ALE, 6).await?;
    println!("   6 x pale ale, 2 x chips");
    expect_rule(
        shop,
        &cart,
        rules::BEER_SNACKS,
        (
            Standing::Applied,
            "Applied: you save $1.80 (20% off snacks).",
            Some(180),
        ),
        expect,
    )
    .await?;
    demo.set(shop, &cart, CHIPS, 0).await?;
    println!("   6 x pale ale, no snacks");
    expect_rule(
        shop,
        &cart,
        rules::BEER_SNACKS,
        (
            Standing::Qualified,
            "You qualify: add snacks to get 20% off snacks.",
            None,
        ),
        expect,
    )
    .await
}

/// Step 5: $99.99, then $100.00; the order keeps the discount and the GST
/// on the discounted amount.
async fn spend_rule(demo: &Demo, expect: &mut Expectations) -> AnyResult {
    println!("\n5. Spend $100+: 10% off the cart");
    let shop = &demo.harbour;
    let cart = demo.cart(shop, &[(PLATTER, 3), (SHIRAZ, 1)]).await?;
    println!("   3 x cheese platter at $25.00 and a $24.99 shiraz: $99.99");
    expect_rule(
        shop,
        &cart,
        rules::SPEND,
        (
            Standing::NotYet,
            "Spend $0.01 more to get 10% off the whole basket (your basket is $99.99).",
            None,
        ),
        expect,
    )
    .await?;
    demo.set(shop, &cart, SHIRAZ, 0).await?;
    demo.set(shop, &cart, PLATTER, 4).await?;
    println!("   4 x cheese platter: $100.00");
    expect_rule(
        shop,
        &cart,
        rules::SPEND,
        (
            Standing::Applied,
            "Applied: you save $10.00 (10% off the whole basket).",
            Some(1000),
        ),
        expect,
    )
    .await?;
    let slot = slots::offered(demo.commerce.now())
        .into_iter()
        .next()
        .ok_or("no slot")?;
    shop.set_cart_attribute(
        cart.id,
        &AttributeKey::parse(slots::ATTRIBUTE)?,
        Some(slot.value),
    )
    .await?;
    let checkout = shop
        .checkout(
            cart.id,
            &IdempotencyKey::parse(format!("demo-spend-{}", cart.id))?,
        )
        .await?;
    let order = checkout.order;
    let invoice = invoice::of_order(&order);
    println!(
        "   ordered: subtotal {}, offers {}, total {} including GST of {}",
        invoice.subtotal, invoice.discount, invoice.total, invoice.gst
    );
    expect.that(
        order.total().minor() == 9000
            && order.totals.tax_total.minor() == 818
            && order
                .promotions
                .iter()
                .map(|p| p.promotion.as_str())
                .eq([rules::SPEND]),
        || "the order is $90.00 with $8.18 GST and the spend rule applied".to_owned(),
    )
}

/// Step 6: the pickup desk refuses to hand liquor over without an ID check.
async fn staff_desk(demo: &Demo, order: &Order, expect: &mut Expectations) -> AnyResult {
    println!("\n6. The pickup desk");
    demo.clock.advance(std::time::Duration::from_secs(60 * 60));
    let shop = &demo.harbour;
    let paid = shop.order(order.id).await?;
    let without = staff::check_hand_over(&paid, "Sam", false);
    let with = staff::check_hand_over(&paid, "Sam", true);
    println!(
        "   Sam hands over order {} without checking ID -> {without:?}; after checking -> {with:?}",
        order.id
    );
    expect.that(without == Err("id") && with.is_ok(), || {
        "an order with liquor is handed over only after an ID check".to_owned()
    })?;
    let fulfilled = shop
        .fulfil_order_with_note(order.id, "photo ID checked by Sam")
        .await?;
    println!("   order {}: {}", order.id, fulfilled.status());
    expect.that(fulfilled.status() == OrderStatus::Fulfilled, || {
        "the order is collected".to_owned()
    })?;
    let noted = shop
        .order_events(order.id)
        .await?
        .last()
        .map(|e| e.kind.clone());
    println!("   its log ends with {noted:?}");
    expect.that(
        noted
            == Some(commerce_core::OrderEventKind::Fulfilled {
                note: Some("photo ID checked by Sam".to_owned()),
            }),
        || "the ID check is kept in the order's audit log".to_owned(),
    )?;
    let again = staff::check_hand_over(&fulfilled, "Sam", true);
    expect.that(again == Err("status"), || {
        "a collected order cannot be handed over twice".to_owned()
    })
}

/// Step 7: another store's staff cannot see or touch the order.
async fn isolation(demo: &Demo, order: &Order, expect: &mut Expectations) -> AnyResult {
    println!("\n7. Each store sees only its own orders");
    let own = demo
        .harbour
        .orders(&OrderFilter::default(), None, 200)
        .await?
        .orders;
    let other = demo
        .laneway
        .orders(&OrderFilter::default(), None, 200)
        .await?
        .orders;
    let read = demo.laneway.order(order.id).await;
    let fulfil = demo.laneway.fulfil_order(order.id).await;
    println!(
        "   harbour-st lists {} orders; laneway-kitchen lists {}; laneway-kitchen reads harbour-st's order -> {}; fulfils it -> {}",
        own.len(),
        other.len(),
        outcome(&read),
        outcome(&fulfil)
    );
    expect.that(own.iter().any(|o| o.id == order.id), || {
        "harbour-st lists its order".to_owned()
    })?;
    expect.that(other.iter().all(|o| o.id != order.id), || {
        "laneway-kitchen's list does not hold harbour-st's order".to_owned()
    })?;
    expect.that(
        matches!(read, Err(Error::NotFound { .. }))
            && matches!(fulfil, Err(Error::NotFound { .. })),
        || "laneway-kitchen can neither read nor change harbour-st's order".to_owned(),
    )
}

/// How a call turned out, in short.
fn outcome<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => "accepted".to_owned(),
        Err(Error::AgeVerificationRequired { skus }) => {
            let skus: Vec<&str> = skus.iter().map(Sku::as_str).collect();
            format!("refused: AgeVerificationRequired for {}", skus.join(", "))
        }
        Err(Error::NotFound { entity, .. }) => format!("NotFound ({entity})"),
        Err(other) => other.to_string(),
    }
}

/// The claims the run checks. The first that does not hold ends the run
/// with exit status 1.
#[derive(Debug, Default)]
struct Expectations {
    held: usize,
}

impl Expectations {
    fn that(&mut self, holds: bool, what: impl FnOnce() -> String) -> AnyResult {
        if holds {
            self.held += 1;
            Ok(())
        } else {
            Err(Box::new(Unmet(what())))
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
        assert!(expect.that(true, String::new).is_ok());
        let unmet = expect.that(false, || "exactly one winner".to_owned());
        assert_eq!(expect.held, 1);
        assert_eq!(
            unmet.map_err(|e| e.to_string()),
            Err("expectation not met: exactly one winner".to_owned())
        );
    }
}
