//! The scripted scenario (`apparel --demo`): the catalog of the web shop
//! on commerce-core's test gateway and a [`ManualClock`], and the claims
//! the shop makes, each checked to the cent:
//!
//! 1. a sold-out size × colour is refused, with the real available count;
//! 2. US sales tax is added on top of the prices, rounded once per order
//!    (and, for contrast, what Australian GST would make of the same cart);
//! 3. "3 for 2" takes the cheapest of three items off;
//! 4. the same checkout sent twice at once makes one order, which the
//!    customer's order history lists;
//! 5. a price changed while the buyer was at checkout is refused with
//!    `PriceChanged` and the new total, and confirming the new total works.
//!
//! It runs on the in-memory store, or on PostgreSQL when `DATABASE_URL` is
//! set (a tenant of its own per run), and exits non-zero when an
//! expectation fails, so CI can run it as a test.

use commerce_core::tax::{TaxRequest, TaxableAmount};
use commerce_core::{
    CheckoutRequest, Commerce, CustomerContext, CustomerId, Error, IdempotencyKey, ManualClock,
    Money, OrderFilter, PricedCart, Quantity, Shop, Sku, TaxCategory, TaxConfig, TestGateway,
};
use shop_kit::Failure;
use shop_kit::store::{self, Choice, Tenancy};

use crate::catalog::{self, GARMENTS, THREE_FOR_TWO};
use crate::web::CURRENCY;

/// 2026-06-01 09:00:00 UTC: the shop opens.
const OPENING_TIME: i64 = 1_780_304_400;

/// What the scenario checked.
#[derive(Default)]
struct Expectations {
    failed: Vec<String>,
    held: usize,
}

impl Expectations {
    fn check(&mut self, claim: &str, held: bool) {
        if held {
            self.held = self.held.saturating_add(1);
            println!("   ✓ {claim}");
        } else {
            println!("   ✗ {claim}");
            self.failed.push(claim.to_owned());
        }
    }

    fn equal<T: PartialEq + std::fmt::Debug>(&mut self, claim: &str, found: T, expected: T) {
        if found == expected {
            self.check(claim, true);
        } else {
            self.check(
                &format!("{claim} (expected {expected:?}, found {found:?})"),
                false,
            );
        }
    }
}

fn usd(cents: i64) -> Money {
    Money::new(cents, CURRENCY)
}

fn sku(text: &str) -> Result<Sku, Error> {
    Ok(Sku::parse(text)?)
}

fn units(n: u32) -> Result<Quantity, Error> {
    Ok(Quantity::new(n)?)
}

/// Runs the scenario with the arguments after `--demo` (it takes none).
pub async fn run(args: Vec<String>) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(format!("--demo takes no arguments, not `{arg}`").into());
    }
    let opened = store::open(&Choice::from_env()?, Tenancy::PerRun(crate::TENANT)).await?;
    println!("apparel --demo: sizes × colours, US sales tax, 3 for 2, one order per checkout");
    println!("{}", opened.description);
    let clock = ManualClock::at_unix(OPENING_TIME);
    let commerce = Commerce::builder()
        .shared_store(opened.store)
        .gateway(TestGateway::default())
        .clock(clock)
        .build()?;
    let shop = commerce.shop(&opened.tenant);
    let variants = catalog::seed(&shop, shop_kit::cli::DEFAULT_SEED).await?;
    catalog::configure(&shop).await?;
    println!(
        "   seeded {} garments in {variants} variants; {} sales tax {}% added to prices; \"3 for 2\"",
        GARMENTS.len(),
        catalog::TAX_STATE,
        catalog::tax_percent()
    );

    let mut expect = Expectations::default();
    sold_out(&shop, &mut expect).await?;
    let two_items = sales_tax(&shop, &mut expect).await?;
    let three_items = three_for_two(&shop, &mut expect).await?;
    one_order(&shop, two_items, &mut expect).await?;
    price_change(&shop, three_items, &mut expect).await?;

    println!();
    if expect.failed.is_empty() {
        println!("all {} expectations held", expect.held);
        Ok(())
    } else {
        Err(format!(
            "{} of {} expectations failed: {}",
            expect.failed.len(),
            expect.failed.len().saturating_add(expect.held),
            expect.failed.join("; ")
        )
        .into())
    }
}

/// 1. A sold-out combination, and more than a variant has.
async fn sold_out(shop: &Shop, expect: &mut Expectations) -> Result<(), Failure> {
    println!("\n1. Variants: stock is per size × colour");
    let cart = shop.create_cart(CURRENCY).await?;
    let refused = shop
        .set_line(cart.id, &sku("TEE-L-WHITE")?, Quantity::ONE)
        .await;
    expect.check(
        "a Classic Tee in L, White (sold out) is refused with 0 available",
        matches!(refused, Err(Error::InsufficientStock { available: 0, .. })),
    );
    let hoodie_xl = shop
        .set_line(cart.id, &sku("HOODIE-XL-NAVY")?, Quantity::ONE)
        .await;
    expect.check(
        "a Pullover Hoodie in XL (sold out in every colour) is refused",
        matches!(
            hoodie_xl,
            Err(Error::InsufficientStock { available: 0, .. })
        ),
    );
    let black_m = sku("TEE-M-BLACK")?;
    let on_hand = shop.stock(&black_m).await?.available();
    let too_many = shop
        .set_line(cart.id, &black_m, units(on_hand.saturating_add(1))?)
        .await;
    expect.check(
        &format!(
            "asking for {} of TEE-M-BLACK, which has {on_hand}, is refused with the real count",
            on_hand.saturating_add(1)
        ),
        matches!(too_many, Err(Error::InsufficientStock { available, .. }) if available == on_hand),
    );
    let held = shop.set_line(cart.id, &black_m, Quantity::ONE).await;
    expect.check("one TEE-M-BLACK is held for the cart", held.is_ok());
    shop.remove_line(cart.id, &black_m).await?;
    Ok(())
}

/// The line of the sales tax, as `(label, tax)`.
fn tax_of(priced: &PricedCart) -> Vec<(String, i64)> {
    priced
        .taxes
        .iter()
        .filter(|t| !t.tax.is_zero())
        .map(|t| (t.label.clone(), t.tax.minor()))
        .collect()
}

/// 2. US sales tax, exact cents; GST for contrast.
async fn sales_tax(
    shop: &Shop,
    expect: &mut Expectations,
) -> Result<commerce_core::CartId, Failure> {
    println!("\n2. US sales tax: added on top of the prices, rounded once per order");
    let cart = shop.create_cart(CURRENCY).await?;
    shop.set_line(cart.id, &sku("TEE-M-BLACK")?, Quantity::ONE)
        .await?;
    shop.set_line(cart.id, &sku("HOODIE-M-BLACK")?, Quantity::ONE)
        .await?;
    let priced = shop.price_cart(cart.id).await?;
    println!(
        "   Classic Tee 24.00 + Pullover Hoodie 58.00 = {}; tax {}; total {}",
        priced.totals.subtotal, priced.totals.tax_total, priced.totals.grand_total
    );
    expect.equal(
        "the subtotal is USD 82.00",
        priced.totals.subtotal,
        usd(8_200),
    );
    expect.equal(
        "the sales tax is 10.25% of 82.00 = 8.405, rounded half-up to USD 8.41",
        tax_of(&priced),
        vec![("WA sales tax".to_owned(), 841)],
    );
    expect.equal(
        "the buyer pays USD 90.41 (the tax is added)",
        priced.totals.grand_total,
        usd(9_041),
    );
    expect.check(
        "2 items: \"3 for 2\" does not apply yet",
        priced
            .promotions
            .iter()
            .any(|p| p.promotion.as_str() == THREE_FOR_TWO && !p.applied()),
    );
    // The same shelf prices under Australian GST: tax-inclusive, so the
    // buyer pays the shelf price and GST is the part of it 10/110 implies,
    // rounded per line.
    let gst = TaxConfig::australia_gst().compute(&TaxRequest {
        currency: CURRENCY,
        lines: vec![
            TaxableAmount::new(TaxCategory::parse("standard")?, usd(2_400)),
            TaxableAmount::new(TaxCategory::parse("standard")?, usd(5_800)),
        ],
        shipping: None,
    })?;
    let gst_total: i64 = gst.lines.iter().map(|l| l.amount.minor()).sum();
    expect.equal(
        "for contrast, GST would be included: 2.18 + 5.27 = 7.45 inside the 82.00",
        gst_total,
        745,
    );
    Ok(cart.id)
}

/// 3. "3 for 2": the cheapest of three is free.
async fn three_for_two(
    shop: &Shop,
    expect: &mut Expectations,
) -> Result<commerce_core::CartId, Failure> {
    println!("\n3. \"3 for 2\": the cheapest of every three items is free");
    let cart = shop.create_cart(CURRENCY).await?;
    shop.set_line(cart.id, &sku("TEE-M-BLACK")?, units(2)?)
        .await?;
    shop.set_line(cart.id, &sku("JEANS-30-INDIGO")?, Quantity::ONE)
        .await?;
    let priced = shop.price_cart(cart.id).await?;
    println!(
        "   2 × Classic Tee 24.00 + Slim Jeans 79.00 = {}; discount {}; tax {}; total {}",
        priced.totals.subtotal,
        priced.totals.discount_total,
        priced.totals.tax_total,
        priced.totals.grand_total
    );
    expect.equal(
        "the subtotal is USD 127.00",
        priced.totals.subtotal,
        usd(12_700),
    );
    expect.equal(
        "one tee (the cheapest unit) is free: USD 24.00 off",
        priced.totals.discount_total,
        usd(2_400),
    );
    let tee_discount = priced
        .lines
        .iter()
        .find(|l| l.sku.as_str() == "TEE-M-BLACK")
        .map(|l| l.discount_total);
    expect.equal(
        "the discount sits on the tee line, not the jeans",
        tee_discount,
        Some(usd(2_400)),
    );
    expect.equal(
        "tax is on the discounted 103.00: 10.5575, so USD 10.56",
        tax_of(&priced),
        vec![("WA sales tax".to_owned(), 1_056)],
    );
    expect.equal(
        "the buyer pays USD 113.56",
        priced.totals.grand_total,
        usd(11_356),
    );
    Ok(cart.id)
}

/// 4. One key, two checkouts at once: one order, in the customer's history.
async fn one_order(
    shop: &Shop,
    cart: commerce_core::CartId,
    expect: &mut Expectations,
) -> Result<(), Failure> {
    println!("\n4. Place order, clicked twice: one order");
    let customer = CustomerId::parse("cust-demo-ann")?;
    shop.set_customer(
        cart,
        Some(CustomerContext {
            id: Some(customer.clone()),
            ..CustomerContext::default()
        }),
    )
    .await?;
    let request = CheckoutRequest::new(IdempotencyKey::parse("checkout-demo-double-click")?)
        .expecting_total(usd(9_041));
    let (first, second) = tokio::join!(
        shop.checkout_with(cart, &request),
        shop.checkout_with(cart, &request)
    );
    let (first, second) = (first?, second?);
    expect.check(
        "both clicks answer with the same order",
        first.order.id == second.order.id,
    );
    expect.equal(
        "exactly one of them created it",
        u8::from(first.created) + u8::from(second.created),
        1,
    );
    let again = shop.checkout_with(cart, &request).await?;
    expect.check(
        "a third send (a refresh) answers with it too",
        again.order.id == first.order.id && !again.created,
    );
    let history = shop
        .orders(
            &OrderFilter {
                customer: Some(customer),
                ..OrderFilter::default()
            },
            None,
            50,
        )
        .await?;
    expect.equal(
        "the customer's order history holds that one order",
        history.orders.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![first.order.id],
    );
    expect.equal(
        "the order keeps the tax it was shown: USD 8.41",
        first.order.totals.tax_total,
        usd(841),
    );
    Ok(())
}

/// 5. The owner changes a price while the buyer is at checkout.
async fn price_change(
    shop: &Shop,
    cart: commerce_core::CartId,
    expect: &mut Expectations,
) -> Result<(), Failure> {
    println!("\n5. A price changes while the buyer is at checkout");
    let shown = shop.price_cart(cart).await?.totals.grand_total;
    let jeans = GARMENTS
        .iter()
        .find(|g| g.code == "JEANS")
        .ok_or("the catalog has no jeans")?;
    shop.put_product(
        catalog::product_id(jeans.code),
        catalog::product_at(jeans, shop_kit::cli::DEFAULT_SEED, usd(8_400))?,
    )
    .await?;
    println!("   the owner raises Slim Jeans from 79.00 to 84.00");
    let request = CheckoutRequest::new(IdempotencyKey::parse("checkout-demo-price-1")?)
        .expecting_total(shown);
    let refused = shop.checkout_with(cart, &request).await;
    let actual = match &refused {
        Err(Error::PriceChanged { expected, actual }) if *expected == shown => Some(*actual),
        _ => None,
    };
    expect.equal(
        "placing the order at the shown USD 113.56 is refused with PriceChanged and the new \
         total: 132.00 − 24.00 = 108.00, + 11.07 tax = USD 119.07",
        actual,
        Some(usd(11_907)),
    );
    let confirmed = CheckoutRequest::new(IdempotencyKey::parse("checkout-demo-price-2")?)
        .expecting_total(usd(11_907));
    let placed = shop.checkout_with(cart, &confirmed).await;
    expect.check(
        "confirming the new total places the order at USD 119.07",
        placed
            .as_ref()
            .is_ok_and(|done| done.created && done.order.total() == usd(11_907)),
    );
    if let Ok(done) = placed {
        expect.equal(
            "the order keeps the 3 for 2 discount (USD 24.00) and the tax (USD 11.07)",
            (
                done.order.totals.discount_total,
                done.order.totals.tax_total,
            ),
            (usd(2_400), usd(1_107)),
        );
    }
    Ok(())
}
