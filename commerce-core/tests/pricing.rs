//! Table-driven tests of [`commerce_core::pricing::price`], every expected
//! cent worked out by hand in the comments.
//!
//! Every case goes through one helper, [`check`], which compares the whole
//! priced cart (lines, shipping, taxes by rate, totals, and the outcome of
//! every promotion, in evaluation order) with an [`Expected`], and asserts
//! the totals identities the module documents. It also prices the cart with
//! its lines reversed and checks that nothing the documentation promises to
//! be order-independent changed.
//!
//! Conventions in the comments: amounts are in cents; `a/11` is the GST
//! included in a GST-inclusive amount `a` (`a × 10/110`), rounded half-up per
//! line; "spread" is the largest-remainder allocation in SKU order, written
//! `floor rRemainder` per line.
//!
//! The pricing time is 2026-01-01T00:00:00Z (`NOW`).

// clippy.toml allows these in `#[test]` functions only; `check` and the
// builders below are test code too, and a panic there is a failing test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test-only helpers outside #[test] fns: a panic is a failing test"
)]

use std::collections::BTreeSet;

use commerce_core::pricing::{
    CustomerContext, Measured, NotApplied, PricedCart, PricingInput, PricingLine, PromotionOutcome,
    discount, price,
};
use commerce_core::promotion::{
    Action, AmountPer, BundleItem, Condition, DiscountBasis, DiscountOrder, Promotion,
    PromotionSpec, PromotionUsage, Selector, TaxBasis, Threshold, Tier, TierReward, UnitsOff,
};
use commerce_core::rounding::{DiscountLevel, Leftover, LineOrder, SplitWeights};
use commerce_core::tax::{
    PriceBasis, RoundingLevel, RoundingMode, ShippingTax, TaxConfig, TaxError, TaxRate,
};
use commerce_core::{
    Category, Clock, CouponCode, Currency, CustomerGroup, CustomerId, Error, ManualClock, Money,
    ProductId, PromotionGroup, PromotionId, Quantity, Sku, TaxCategory, Timestamp,
};
use rust_decimal::Decimal;

// ===========================================================================
// The expectation and the one helper
// ===========================================================================

/// What a case expects of `price`.
enum Expected {
    /// The cart prices to exactly this.
    Priced(Priced),
    /// Pricing fails with this tax error.
    TaxFails { case: &'static str, error: TaxError },
}

/// The whole priced cart, in cents of the input's currency.
struct Priced {
    /// The case's name, for failure messages.
    case: &'static str,
    /// Every line, in cart order.
    lines: Vec<Line<'static>>,
    /// Shipping, when charged.
    shipping: Option<Ship<'static>>,
    /// The tax per rate, in order of first appearance.
    taxes: Vec<Rate<'static>>,
    /// The cart's totals.
    totals: Sums,
    /// Every promotion, in evaluation order.
    promotions: Vec<Report<'static>>,
}

/// One priced line: its subtotal, its discounts by promotion (in evaluation
/// order), its tax and what the buyer pays for it.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    sku: &'a str,
    subtotal: i64,
    discounts: Vec<(&'a str, i64)>,
    tax: i64,
    total: i64,
}

/// Shipping as priced.
#[derive(Debug, PartialEq)]
struct Ship<'a> {
    amount: i64,
    discounts: Vec<(&'a str, i64)>,
    tax: Option<i64>,
    total: i64,
}

/// The tax of one rate over the invoice.
#[derive(Debug, Clone, PartialEq)]
struct Rate<'a> {
    label: &'a str,
    taxable: i64,
    tax: i64,
}

/// The cart's totals.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sums {
    subtotal: i64,
    discount_total: i64,
    shipping: i64,
    tax_total: i64,
    grand_total: i64,
}

/// What became of one promotion.
#[derive(Debug, PartialEq)]
struct Report<'a> {
    promotion: &'a str,
    outcome: Outcome,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Applied(i64),
    NotApplied(NotApplied),
}

fn line(
    sku: &'static str,
    subtotal: i64,
    discounts: &[(&'static str, i64)],
    tax: i64,
    total: i64,
) -> Line<'static> {
    Line {
        sku,
        subtotal,
        discounts: discounts.to_vec(),
        tax,
        total,
    }
}

fn rate(label: &'static str, taxable: i64, tax: i64) -> Rate<'static> {
    Rate {
        label,
        taxable,
        tax,
    }
}

fn sums(
    subtotal: i64,
    discount_total: i64,
    shipping: i64,
    tax_total: i64,
    grand_total: i64,
) -> Sums {
    Sums {
        subtotal,
        discount_total,
        shipping,
        tax_total,
        grand_total,
    }
}

fn applied(promotion: &'static str, discount: i64) -> Report<'static> {
    Report {
        promotion,
        outcome: Outcome::Applied(discount),
    }
}

fn not_applied(promotion: &'static str, reason: NotApplied) -> Report<'static> {
    Report {
        promotion,
        outcome: Outcome::NotApplied(reason),
    }
}

fn unmet(measured: Measured) -> NotApplied {
    NotApplied::ConditionNotMet { measured }
}

/// Prices `input` and compares the result with `expected`, asserting the
/// documented identities on the way.
fn check(input: PricingInput, expected: Expected) {
    let result = price(&input);
    let want = match expected {
        Expected::TaxFails { case, error } => {
            match result {
                Err(Error::Tax(found)) => assert_eq!(found, error, "{case}: the tax error"),
                other => panic!("{case}: expected Error::Tax({error:?}), got {other:?}"),
            }
            return;
        }
        Expected::Priced(want) => want,
    };
    let case = want.case;
    let cart = result.unwrap_or_else(|e| panic!("{case}: pricing failed: {e}"));
    identities(case, &input, &cart);
    order_independence(case, &input, &cart);

    let cents = |m: Money| {
        assert_eq!(m.currency(), input.currency, "{case}: currency of {m}");
        m.minor()
    };
    let lines: Vec<Line<'_>> = cart
        .lines
        .iter()
        .map(|l| Line {
            sku: l.sku.as_str(),
            subtotal: cents(l.subtotal),
            discounts: l
                .discounts
                .iter()
                .map(|d| (d.promotion.as_str(), cents(d.amount)))
                .collect(),
            tax: cents(l.tax.amount),
            total: cents(l.total),
        })
        .collect();
    assert_eq!(lines, want.lines, "{case}: lines");

    let shipping = cart.shipping.as_ref().map(|s| Ship {
        amount: cents(s.amount),
        discounts: s
            .discounts
            .iter()
            .map(|d| (d.promotion.as_str(), cents(d.amount)))
            .collect(),
        tax: s.tax.as_ref().map(|t| cents(t.amount)),
        total: cents(s.total),
    });
    assert_eq!(shipping, want.shipping, "{case}: shipping");

    // The summary lists rates in order of first appearance in the tax
    // request (SKU order); compare as sets by label.
    let mut taxes: Vec<Rate<'_>> = cart
        .taxes
        .iter()
        .map(|t| Rate {
            label: t.label.as_str(),
            taxable: cents(t.taxable),
            tax: cents(t.tax),
        })
        .collect();
    taxes.sort_by(|a, b| a.label.cmp(b.label));
    let mut want_taxes = want.taxes.clone();
    want_taxes.sort_by(|a, b| a.label.cmp(b.label));
    assert_eq!(taxes, want_taxes, "{case}: taxes by rate");

    let totals = Sums {
        subtotal: cents(cart.totals.subtotal),
        discount_total: cents(cart.totals.discount_total),
        shipping: cents(cart.totals.shipping),
        tax_total: cents(cart.totals.tax_total),
        grand_total: cents(cart.totals.grand_total),
    };
    assert_eq!(totals, want.totals, "{case}: totals");

    let reports: Vec<Report<'_>> = cart
        .promotions
        .iter()
        .map(|r| Report {
            promotion: r.promotion.as_str(),
            outcome: match &r.outcome {
                PromotionOutcome::Applied { discount } => Outcome::Applied(cents(*discount)),
                PromotionOutcome::NotApplied(reason) => Outcome::NotApplied(reason.clone()),
                other => panic!("{case}: an outcome this test does not know: {other:?}"),
            },
        })
        .collect();
    assert_eq!(reports, want.promotions, "{case}: promotions");
}

/// The identities `pricing` documents, on any priced cart.
fn identities(case: &str, input: &PricingInput, cart: &PricedCart) {
    let c = input.currency;
    let sum = |it: &mut dyn Iterator<Item = Money>| Money::sum(c, it).unwrap();
    let inclusive = input.tax.prices == PriceBasis::TaxInclusive;
    assert_eq!(cart.currency, c, "{case}: currency");
    assert_eq!(cart.prices, input.tax.prices, "{case}: price basis");

    // Lines in cart order; subtotal = unit × quantity; discounted =
    // subtotal − discounts ≥ 0; total = discounted (+ tax when exclusive);
    // for inclusive prices net + tax = discounted.
    assert_eq!(cart.lines.len(), input.lines.len(), "{case}: line count");
    for (priced, line) in cart.lines.iter().zip(&input.lines) {
        let sku = &line.sku;
        assert_eq!(&priced.sku, sku, "{case}: lines in cart order");
        assert_eq!(
            priced.subtotal,
            line.unit_price
                .checked_mul(i64::from(line.quantity.get()))
                .unwrap(),
            "{case}: {sku} subtotal = unit × quantity"
        );
        assert_eq!(
            priced.discount_total,
            sum(&mut priced.discounts.iter().map(|d| d.amount)),
            "{case}: {sku} discount_total = Σ discounts"
        );
        assert!(
            priced.discounts.iter().all(|d| d.amount.minor() > 0),
            "{case}: {sku} every discount is positive"
        );
        assert_eq!(
            priced.discounted,
            priced.subtotal.checked_sub(priced.discount_total).unwrap(),
            "{case}: {sku} discounted = subtotal − discount_total"
        );
        assert!(
            !priced.discounted.is_negative(),
            "{case}: {sku} never below zero"
        );
        assert!(
            !priced.tax.amount.is_negative(),
            "{case}: {sku} tax not negative"
        );
        // Each discount on both bases: the entry basis is the amount, and
        // the other carries the tax at the line's rate.
        for d in &priced.discounts {
            let (entry, other) = if inclusive {
                (d.including_tax, d.excluding_tax)
            } else {
                (d.excluding_tax, d.including_tax)
            };
            assert_eq!(entry, d.amount, "{case}: {sku} discount on its entry basis");
            assert!(
                d.including_tax.minor() >= d.excluding_tax.minor() && !other.is_negative(),
                "{case}: {sku} discount with tax at least without"
            );
        }
        // The unit net price is the net over the quantity, to the cent.
        let net = priced.net().unwrap().minor();
        let quantity = i64::from(priced.quantity.get());
        assert!(
            (priced.unit_net_price.minor() * quantity * 2 - net * 2).abs() <= quantity,
            "{case}: {sku} unit net price {} for a net of {net} over {quantity}",
            priced.unit_net_price
        );
        if inclusive {
            assert_eq!(priced.total, priced.discounted, "{case}: {sku} total");
            assert_eq!(
                priced
                    .net()
                    .unwrap()
                    .checked_add(priced.tax.amount)
                    .unwrap(),
                priced.discounted,
                "{case}: {sku} net + tax = discounted"
            );
        } else {
            assert_eq!(
                priced.total,
                priced.discounted.checked_add(priced.tax.amount).unwrap(),
                "{case}: {sku} total = discounted + tax"
            );
        }
    }

    // Shipping: amount = the fee; discounted = amount − discounts.
    assert_eq!(
        cart.shipping.as_ref().map(|s| s.amount),
        input.shipping,
        "{case}: shipping fee"
    );
    if let Some(s) = &cart.shipping {
        assert_eq!(
            s.discount_total,
            sum(&mut s.discounts.iter().map(|d| d.amount)),
            "{case}: shipping discount_total"
        );
        assert_eq!(
            s.discounted,
            s.amount.checked_sub(s.discount_total).unwrap(),
            "{case}: shipping discounted"
        );
        let tax = s.tax.as_ref().map_or(Money::zero(c), |t| t.amount);
        let expected_total = if inclusive {
            s.discounted
        } else {
            s.discounted.checked_add(tax).unwrap()
        };
        assert_eq!(s.total, expected_total, "{case}: shipping total");
    }
    let shipping_total = cart.shipping.as_ref().map(|s| s.total);
    let shipping_tax = cart
        .shipping
        .as_ref()
        .and_then(|s| s.tax.as_ref())
        .map(|t| t.amount);
    let shipping_discount = cart.shipping.as_ref().map(|s| s.discount_total);

    // The cart's totals are the sums of their parts.
    let t = &cart.totals;
    assert_eq!(
        t.subtotal,
        sum(&mut cart.lines.iter().map(|l| l.subtotal)),
        "{case}: subtotal = Σ line subtotals"
    );
    assert_eq!(
        t.shipping,
        input.shipping.unwrap_or(Money::zero(c)),
        "{case}: totals.shipping = the fee"
    );
    assert_eq!(
        t.grand_total,
        sum(&mut cart.lines.iter().map(|l| l.total).chain(shipping_total)),
        "{case}: grand_total = Σ line totals + shipping total"
    );
    assert_eq!(
        t.tax_total,
        sum(&mut cart.lines.iter().map(|l| l.tax.amount).chain(shipping_tax)),
        "{case}: tax_total = Σ line taxes + shipping tax"
    );
    assert_eq!(
        t.tax_total,
        sum(&mut cart.taxes.iter().map(|r| r.tax)),
        "{case}: tax_total = Σ taxes by rate"
    );
    assert_eq!(
        t.discount_total,
        sum(&mut cart
            .lines
            .iter()
            .map(|l| l.discount_total)
            .chain(shipping_discount)),
        "{case}: discount_total = Σ line discounts + shipping discount"
    );
    let taxable_shipping = cart
        .shipping
        .as_ref()
        .filter(|s| s.tax.is_some())
        .map(|s| s.discounted);
    assert_eq!(
        sum(&mut cart.taxes.iter().map(|r| r.taxable)),
        sum(&mut cart
            .lines
            .iter()
            .map(|l| l.discounted)
            .chain(taxable_shipping)),
        "{case}: Σ taxable by rate = Σ discounted lines + taxed shipping"
    );
    let mut expected_grand = t
        .subtotal
        .checked_sub(t.discount_total)
        .unwrap()
        .checked_add(t.shipping)
        .unwrap();
    if !inclusive {
        expected_grand = expected_grand.checked_add(t.tax_total).unwrap();
    }
    assert_eq!(
        t.grand_total, expected_grand,
        "{case}: grand_total = subtotal − discount_total + shipping (+ tax)"
    );

    // Every promotion is reported once, in evaluation order (priority, then
    // id), with its name and whether it is limited; what each applied one
    // took is exactly what the lines and shipping show for it.
    let mut promotions: Vec<&Promotion> = input.promotions.iter().collect();
    promotions.sort_by(|a, b| a.priority().cmp(&b.priority()).then(a.id().cmp(b.id())));
    assert_eq!(
        cart.promotions
            .iter()
            .map(|r| r.promotion.clone())
            .collect::<Vec<_>>(),
        promotions
            .iter()
            .map(|p| p.id().clone())
            .collect::<Vec<_>>(),
        "{case}: reports in evaluation order"
    );
    let mut applied_total = Money::zero(c);
    for (report, promotion) in cart.promotions.iter().zip(&promotions) {
        assert_eq!(report.name, promotion.name(), "{case}: report name");
        assert_eq!(
            report.limited,
            promotion.is_limited(),
            "{case}: {} limited",
            report.promotion
        );
        let given = sum(&mut cart
            .lines
            .iter()
            .flat_map(|l| &l.discounts)
            .chain(cart.shipping.iter().flat_map(|s| &s.discounts))
            .filter(|d| d.promotion == report.promotion)
            .map(|d| d.amount));
        match &report.outcome {
            PromotionOutcome::Applied { discount } => {
                assert_eq!(
                    *discount, given,
                    "{case}: {} discount = Σ its parts",
                    report.promotion
                );
                assert!(discount.minor() > 0, "{case}: an applied discount > 0");
                applied_total = applied_total.checked_add(*discount).unwrap();
            }
            _ => assert!(
                given.is_zero(),
                "{case}: {} did not apply but gave {given}",
                report.promotion
            ),
        }
    }
    assert_eq!(
        applied_total, t.discount_total,
        "{case}: discount_total = Σ applied promotions"
    );
}

/// "Lines are processed in SKU order, so the result does not depend on the
/// order of the cart's lines": the cart reversed gets the same discounts,
/// reports and totals, line for line, taxes included: the tax request is
/// in SKU order too (see `per_invoice_tax_ties_follow_sku_order`).
fn order_independence(case: &str, input: &PricingInput, cart: &PricedCart) {
    // Ties broken by cart order promise no such thing.
    if input.tax.rounding.split.order == LineOrder::Cart {
        return;
    }
    let mut reversed = input.clone();
    reversed.lines.reverse();
    let other = price(&reversed).unwrap_or_else(|e| panic!("{case}: reversed: {e}"));
    assert_eq!(other.totals, cart.totals, "{case}: reversed totals");
    assert_eq!(
        other.promotions, cart.promotions,
        "{case}: reversed reports"
    );
    assert_eq!(other.shipping, cart.shipping, "{case}: reversed shipping");
    for line in &cart.lines {
        let twin = other
            .lines
            .iter()
            .find(|l| l.sku == line.sku)
            .unwrap_or_else(|| panic!("{case}: reversed lost {}", line.sku));
        assert_eq!(
            twin.discounts, line.discounts,
            "{case}: reversed {} discounts",
            line.sku
        );
        assert_eq!(twin.tax, line.tax, "{case}: reversed {} tax", line.sku);
    }
}

// ===========================================================================
// Builders
// ===========================================================================

/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;
const DAY: i64 = 86_400;

/// `NOW + seconds`.
fn at(seconds: i64) -> Timestamp {
    ManualClock::at_unix(NOW + seconds).now()
}

fn aud(cents: i64) -> Money {
    Money::new(cents, Currency::AUD)
}

fn usd(cents: i64) -> Money {
    Money::new(cents, Currency::USD)
}

fn nzd(cents: i64) -> Money {
    Money::new(cents, Currency::NZD)
}

fn percent(value: i64) -> Decimal {
    Decimal::from(value)
}

/// A GST-inclusive Australian cart (GST 10% per line, half-up; shipping
/// taxed at the standard rate).
fn au() -> PricingInput {
    PricingInput::new(Currency::AUD, TaxConfig::australia_gst(), at(0))
}

/// A tax-exclusive Washington cart: 6.5% sales tax, per invoice, half-up;
/// shipping not taxed.
fn us() -> PricingInput {
    PricingInput::new(
        Currency::USD,
        TaxConfig::us_sales_tax("WA", Decimal::new(65, 1)),
        at(0),
    )
}

/// A VAT-inclusive German cart: 19% standard, 7% reduced, per invoice,
/// half-up; shipping at the standard rate.
fn eu() -> PricingInput {
    PricingInput::new(
        Currency::EUR,
        TaxConfig::eu_vat("DE", percent(19), percent(7)),
        at(0),
    )
}

/// A product id known to the test (for `Selector::Product`).
fn product(n: u32) -> ProductId {
    format!("00000000-0000-4000-8000-{n:012}").parse().unwrap()
}

const SHIRAZ: u32 = 1;
const RIESLING: u32 = 2;

fn category(name: &str) -> Selector {
    Selector::Category {
        category: Category::parse(name).unwrap(),
    }
}

fn sku(name: &str) -> Selector {
    Selector::Sku {
        sku: Sku::parse(name).unwrap(),
    }
}

fn min_quantity(selector: Selector, quantity: u32) -> Condition {
    Condition::MinQuantity {
        selector,
        quantity,
        threshold: Threshold::AtLeast,
    }
}

fn more_than_quantity(selector: Selector, quantity: u32) -> Condition {
    Condition::MinQuantity {
        selector,
        quantity,
        threshold: Threshold::MoreThan,
    }
}

fn more_than_subtotal(amount: Money, tax: TaxBasis) -> Condition {
    Condition::MinSubtotal {
        selector: Selector::All,
        amount,
        threshold: Threshold::MoreThan,
        discounts: DiscountBasis::BeforeDiscounts,
        tax,
    }
}

fn min_subtotal(amount: Money, discounts: DiscountBasis, tax: TaxBasis) -> Condition {
    Condition::MinSubtotal {
        selector: Selector::All,
        amount,
        threshold: Threshold::AtLeast,
        discounts,
        tax,
    }
}

fn coupon(code: &str) -> Condition {
    Condition::Coupon {
        code: CouponCode::parse(code).unwrap(),
    }
}

fn window(starts_at: Option<i64>, ends_at: Option<i64>) -> Condition {
    Condition::Window {
        starts_at: starts_at.map(at),
        ends_at: ends_at.map(at),
    }
}

fn percent_off(selector: Selector, value: i64) -> Action {
    Action::PercentOffItems {
        selector,
        percent: percent(value),
    }
}

fn percent_off_cart(value: i64) -> Action {
    Action::PercentOffCart {
        percent: percent(value),
    }
}

fn amount_off_cart(amount: Money) -> Action {
    Action::AmountOffCart { amount }
}

fn amount_off(selector: Selector, amount: Money, per: AmountPer) -> Action {
    Action::AmountOffItems {
        selector,
        amount,
        per,
    }
}

fn buy_get(
    buy: Selector,
    buy_quantity: u32,
    get: Selector,
    get_quantity: u32,
    value: i64,
    repeat: bool,
    order: DiscountOrder,
) -> Action {
    Action::BuyXGetY {
        buy,
        buy_quantity,
        get,
        get_quantity,
        percent: percent(value),
        repeat,
        order,
    }
}

/// A plain promotion: not exclusive, no cap, no limits.
fn spec(id: &str, priority: i32, conditions: Vec<Condition>, action: Action) -> PromotionSpec {
    PromotionSpec {
        id: PromotionId::parse(id).unwrap(),
        name: format!("Promotion {id}"),
        priority,
        exclusive: false,
        group: None,
        conditions,
        action,
        cap: None,
        max_units_per_line: None,
        usage_limit: None,
        per_customer_limit: None,
    }
}

/// Filling in a [`PricingInput`] fluently.
trait Build: Sized {
    /// A line; wine and beer are age-restricted, every product is new.
    fn line(self, sku: &str, category: &str, tax: &str, unit: i64, quantity: u32) -> Self;
    /// A line of a known product.
    fn variant(
        self,
        product: ProductId,
        sku: &str,
        category: &str,
        tax: &str,
        unit: i64,
        quantity: u32,
    ) -> Self;
    fn promo(self, spec: PromotionSpec) -> Self;
    fn code(self, code: &str) -> Self;
    fn shipping(self, cents: i64) -> Self;
    fn with(self, change: impl FnOnce(&mut PricingInput)) -> Self;
}

impl Build for PricingInput {
    fn line(self, sku: &str, category: &str, tax: &str, unit: i64, quantity: u32) -> Self {
        self.variant(ProductId::new(), sku, category, tax, unit, quantity)
    }

    fn variant(
        mut self,
        product: ProductId,
        sku: &str,
        category: &str,
        tax: &str,
        unit: i64,
        quantity: u32,
    ) -> Self {
        self.lines.push(PricingLine {
            sku: Sku::parse(sku).unwrap(),
            product,
            name: sku.to_lowercase(),
            options: Default::default(),
            category: Category::parse(category).unwrap(),
            tax_category: TaxCategory::parse(tax).unwrap(),
            age_restricted: matches!(category, "wine" | "beer"),
            unit_price: Money::new(unit, self.currency),
            quantity: Quantity::new(quantity).unwrap(),
        });
        self
    }

    fn promo(mut self, spec: PromotionSpec) -> Self {
        self.promotions.push(Promotion::new(spec).unwrap());
        self
    }

    fn code(mut self, code: &str) -> Self {
        self.codes.insert(CouponCode::parse(code).unwrap());
        self
    }

    fn shipping(mut self, cents: i64) -> Self {
        self.shipping = Some(Money::new(cents, self.currency));
        self
    }

    fn with(mut self, change: impl FnOnce(&mut PricingInput)) -> Self {
        change(&mut self);
        self
    }
}

fn customer(id: Option<&str>, groups: &[&str], first_order: bool) -> CustomerContext {
    CustomerContext {
        id: id.map(|id| CustomerId::parse(id).unwrap()),
        groups: groups
            .iter()
            .map(|g| CustomerGroup::parse(*g).unwrap())
            .collect::<BTreeSet<_>>(),
        first_order,
    }
}

fn usage(id: &str, total: u32, by_customer: u32) -> impl FnOnce(&mut PricingInput) {
    let id = PromotionId::parse(id).unwrap();
    move |input| {
        input
            .usage
            .insert(id, PromotionUsage { total, by_customer });
    }
}

// ===========================================================================
// Conditions
// ===========================================================================
//
// One AU line, WINE-SHIRAZ 3 × 20.00 = 6000 (GST-inclusive), and promotion
// "p": A$5.00 off the cart under the condition being tested.
//
//   applied:     6000 − 500 = 5500; GST 5500/11 = 500.00 → 500
//   not applied: 6000;              GST 6000/11 = 545.45 → 545

fn wine_cart() -> PricingInput {
    au().line("WINE-SHIRAZ", "wine", "standard", 2000, 3)
}

fn wine_p(conditions: Vec<Condition>) -> PricingInput {
    wine_cart().promo(spec("p", 1, conditions, amount_off_cart(aud(500))))
}

fn wine_applied(case: &'static str) -> Expected {
    Expected::Priced(Priced {
        case,
        lines: vec![line("WINE-SHIRAZ", 6000, &[("p", 500)], 500, 5500)],
        shipping: None,
        taxes: vec![rate("GST", 5500, 500)],
        totals: sums(6000, 500, 0, 500, 5500),
        promotions: vec![applied("p", 500)],
    })
}

fn wine_not_applied(case: &'static str, reason: NotApplied) -> Expected {
    Expected::Priced(Priced {
        case,
        lines: vec![line("WINE-SHIRAZ", 6000, &[], 545, 6000)],
        shipping: None,
        taxes: vec![rate("GST", 6000, 545)],
        totals: sums(6000, 0, 0, 545, 6000),
        promotions: vec![not_applied("p", reason)],
    })
}

#[test]
fn conditions() {
    use DiscountBasis::{AfterDiscounts, BeforeDiscounts};
    use TaxBasis::{AsPriced, ExcludingTax, IncludingTax};
    let staff = || CustomerGroup::parse("staff").unwrap();
    let cases: Vec<(PricingInput, Expected)> = vec![
        // --- MinQuantity: 3 wines in the cart.
        (
            wine_p(vec![min_quantity(category("wine"), 3)]),
            wine_applied("min quantity 3 wines: 3 found, met"),
        ),
        (
            wine_p(vec![min_quantity(category("wine"), 4)]),
            wine_not_applied(
                "min quantity 4 wines: 3 found",
                unmet(Measured::Quantity {
                    required: 4,
                    found: 3,
                }),
            ),
        ),
        (
            wine_p(vec![min_quantity(category("beer"), 1)]),
            wine_not_applied(
                "min quantity 1 beer: none found",
                unmet(Measured::Quantity {
                    required: 1,
                    found: 0,
                }),
            ),
        ),
        // --- Strict thresholds (`>`): 3 wines, 60.00 as priced. "More than
        // 3" is not met by 3 and "more than 2" is; "over 60.00" is not met
        // by 60.00 and "over 59.99" is. The inclusive default of the same
        // figures is met in each case above and below.
        (
            wine_p(vec![more_than_quantity(category("wine"), 3)]),
            wine_not_applied(
                "more than 3 wines: 3 found, not met",
                unmet(Measured::Quantity {
                    required: 3,
                    found: 3,
                }),
            ),
        ),
        (
            wine_p(vec![more_than_quantity(category("wine"), 2)]),
            wine_applied("more than 2 wines: 3 found, met"),
        ),
        (
            wine_p(vec![more_than_quantity(category("beer"), 0)]),
            wine_not_applied(
                "more than 0 beers (any beer): none found",
                unmet(Measured::Quantity {
                    required: 0,
                    found: 0,
                }),
            ),
        ),
        (
            wine_p(vec![min_subtotal(aud(6000), BeforeDiscounts, AsPriced)]),
            wine_applied("AU at least 60.00 as priced: 6000, met"),
        ),
        (
            wine_p(vec![more_than_subtotal(aud(6000), AsPriced)]),
            wine_not_applied(
                "AU over 60.00 as priced: 6000, not met",
                unmet(Measured::Subtotal {
                    required: aud(6000),
                    found: aud(6000),
                }),
            ),
        ),
        (
            wine_p(vec![more_than_subtotal(aud(5999), AsPriced)]),
            wine_applied("AU over 59.99 as priced: 6000, met"),
        ),
        (
            // Excluding tax the cart measures 5454.5454…: over 54.54, and
            // not over 54.55 (the comparison is exact, not on the
            // displayed 5455).
            wine_p(vec![more_than_subtotal(aud(5454), ExcludingTax)]),
            wine_applied("AU over 54.54 excluding tax: 5454.54…, met"),
        ),
        (
            wine_p(vec![more_than_subtotal(aud(5455), ExcludingTax)]),
            wine_not_applied(
                "AU over 54.55 excluding tax: 5454.54…, not met",
                unmet(Measured::Subtotal {
                    required: aud(5455),
                    found: aud(5455),
                }),
            ),
        ),
        // --- MinSubtotal on the GST-inclusive line of 6000:
        //   as priced / including tax: 6000;
        //   excluding tax: 6000 − 6000 × 10/110 = 6000 − 545.4545… = 5454.5454…
        (
            wine_p(vec![min_subtotal(aud(5500), BeforeDiscounts, AsPriced)]),
            wine_applied("AU min subtotal 55.00 as priced: 6000, met"),
        ),
        (
            wine_p(vec![min_subtotal(aud(5500), BeforeDiscounts, IncludingTax)]),
            wine_applied("AU min subtotal 55.00 including tax: 6000, met"),
        ),
        (
            wine_p(vec![min_subtotal(aud(5500), BeforeDiscounts, ExcludingTax)]),
            wine_not_applied(
                "AU min subtotal 55.00 excluding tax: 5454.54…, shown 5455",
                unmet(Measured::Subtotal {
                    required: aud(5500),
                    found: aud(5455),
                }),
            ),
        ),
        (
            // 5454.5454… < 5455: not met, though the displayed (half-up)
            // measure equals the threshold: the comparison is exact.
            wine_p(vec![min_subtotal(aud(5455), BeforeDiscounts, ExcludingTax)]),
            wine_not_applied(
                "AU min subtotal 54.55 excluding tax: exact comparison",
                unmet(Measured::Subtotal {
                    required: aud(5455),
                    found: aud(5455),
                }),
            ),
        ),
        (
            // 5454.5454… ≥ 5454.
            wine_p(vec![min_subtotal(aud(5454), BeforeDiscounts, ExcludingTax)]),
            wine_applied("AU min subtotal 54.54 excluding tax: met"),
        ),
        // --- MinSubtotal before vs after discounts: "first" (priority 1)
        // takes 10% of 6000 = 600, leaving 5400; then "p" (priority 2)
        // needs 55.00.
        //   before: measures 6000 ≥ 5500: p applies, 5400 − 500 = 4900,
        //           GST 4900/11 = 445.45 → 445.
        //   after:  measures 5400 < 5500: p does not apply; 5400,
        //           GST 5400/11 = 490.91 → 491.
        (
            wine_cart()
                .promo(spec("first", 1, vec![], percent_off_cart(10)))
                .promo(spec(
                    "p",
                    2,
                    vec![min_subtotal(aud(5500), BeforeDiscounts, AsPriced)],
                    amount_off_cart(aud(500)),
                )),
            Expected::Priced(Priced {
                case: "min subtotal before discounts",
                lines: vec![line(
                    "WINE-SHIRAZ",
                    6000,
                    &[("first", 600), ("p", 500)],
                    445,
                    4900,
                )],
                shipping: None,
                taxes: vec![rate("GST", 4900, 445)],
                totals: sums(6000, 1100, 0, 445, 4900),
                promotions: vec![applied("first", 600), applied("p", 500)],
            }),
        ),
        (
            wine_cart()
                .promo(spec("first", 1, vec![], percent_off_cart(10)))
                .promo(spec(
                    "p",
                    2,
                    vec![min_subtotal(aud(5500), AfterDiscounts, AsPriced)],
                    amount_off_cart(aud(500)),
                )),
            Expected::Priced(Priced {
                case: "min subtotal after discounts",
                lines: vec![line("WINE-SHIRAZ", 6000, &[("first", 600)], 491, 5400)],
                shipping: None,
                taxes: vec![rate("GST", 5400, 491)],
                totals: sums(6000, 600, 0, 491, 5400),
                promotions: vec![
                    applied("first", 600),
                    not_applied(
                        "p",
                        unmet(Measured::Subtotal {
                            required: aud(5500),
                            found: aud(5400),
                        }),
                    ),
                ],
            }),
        ),
        // --- Coupon: codes are upper-cased when parsed, so "welcome10"
        // entered matches the promotion's "WELCOME10".
        (
            wine_p(vec![coupon("WELCOME10")]).code("welcome10"),
            wine_applied("coupon entered in lower case"),
        ),
        (
            wine_p(vec![coupon("welcome10")]).code(" WELCOME10 "),
            wine_applied("coupon defined in lower case, entered padded"),
        ),
        (
            wine_p(vec![coupon("WELCOME10")]).code("OTHER"),
            wine_not_applied(
                "coupon missing (another entered)",
                NotApplied::CodeMissing {
                    code: CouponCode::parse("WELCOME10").unwrap(),
                },
            ),
        ),
        // --- CustomerGroup.
        (
            wine_p(vec![Condition::CustomerGroup { group: staff() }])
                .with(|i| i.customer = customer(Some("c1"), &["staff", "wholesale"], false)),
            wine_applied("customer in group staff"),
        ),
        (
            wine_p(vec![Condition::CustomerGroup { group: staff() }])
                .with(|i| i.customer = customer(Some("c1"), &["wholesale"], false)),
            wine_not_applied(
                "customer not in group staff",
                unmet(Measured::CustomerGroup { required: staff() }),
            ),
        ),
        // --- FirstOrder.
        (
            wine_p(vec![Condition::FirstOrder]).with(|i| i.customer = customer(None, &[], true)),
            wine_applied("first order"),
        ),
        (
            wine_p(vec![Condition::FirstOrder]),
            wine_not_applied("not the first order", unmet(Measured::FirstOrder)),
        ),
        // --- Window [starts_at, ends_at).
        (
            wine_p(vec![window(Some(1), None)]),
            wine_not_applied(
                "window starts a second from now",
                NotApplied::NotStarted { starts_at: at(1) },
            ),
        ),
        (
            wine_p(vec![window(Some(-2 * DAY), Some(-DAY))]),
            wine_not_applied(
                "window ended yesterday",
                NotApplied::Ended { ended_at: at(-DAY) },
            ),
        ),
        (
            wine_p(vec![window(Some(0), Some(DAY))]),
            wine_applied("window starts now: active at starts_at"),
        ),
        (
            wine_p(vec![window(Some(-DAY), Some(0))]),
            wine_not_applied(
                "window ends now: ended at ends_at",
                NotApplied::Ended { ended_at: at(0) },
            ),
        ),
        (
            wine_p(vec![window(None, Some(1))]),
            wine_applied("window open until a second from now"),
        ),
        // --- All conditions must hold; the window is checked before the
        // coupon, the coupon before the others.
        (
            wine_p(vec![
                min_quantity(category("wine"), 9),
                coupon("LATE"),
                window(None, Some(-1)),
            ]),
            wine_not_applied(
                "window reported before coupon and quantity",
                NotApplied::Ended { ended_at: at(-1) },
            ),
        ),
        (
            wine_p(vec![min_quantity(category("wine"), 9), coupon("LATE")]),
            wine_not_applied(
                "coupon reported before quantity",
                NotApplied::CodeMissing {
                    code: CouponCode::parse("LATE").unwrap(),
                },
            ),
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

// US (tax-exclusive, 6.5%): DRILL 3 × 20.00 = 6000; "p" takes US$5.00 off.
//   applied:     5500; tax 5500 × 6.5% = 357.5 → 358 (half-up); pays 5858
//   not applied: 6000; tax 6000 × 6.5% = 390;                  pays 6390
// Measures: as priced / excluding tax 6000; including tax 6000 + 390 = 6390.
#[test]
fn conditions_us_tax_basis() {
    use TaxBasis::{AsPriced, ExcludingTax, IncludingTax};
    let cart = |amount, tax| {
        us().line("DRILL", "tools", "standard", 2000, 3).promo(spec(
            "p",
            1,
            vec![min_subtotal(
                usd(amount),
                DiscountBasis::BeforeDiscounts,
                tax,
            )],
            amount_off_cart(usd(500)),
        ))
    };
    let applied_p = |case| {
        Expected::Priced(Priced {
            case,
            lines: vec![line("DRILL", 6000, &[("p", 500)], 358, 5858)],
            shipping: None,
            taxes: vec![rate("WA sales tax", 5500, 358)],
            totals: sums(6000, 500, 0, 358, 5858),
            promotions: vec![applied("p", 500)],
        })
    };
    let not_p = |case, required, found| {
        Expected::Priced(Priced {
            case,
            lines: vec![line("DRILL", 6000, &[], 390, 6390)],
            shipping: None,
            taxes: vec![rate("WA sales tax", 6000, 390)],
            totals: sums(6000, 0, 0, 390, 6390),
            promotions: vec![not_applied(
                "p",
                unmet(Measured::Subtotal {
                    required: usd(required),
                    found: usd(found),
                }),
            )],
        })
    };
    let cases = vec![
        (
            cart(6300, AsPriced),
            not_p("US min 63.00 as priced: 6000", 6300, 6000),
        ),
        (
            cart(6300, IncludingTax),
            applied_p("US min 63.00 including tax: 6390, met"),
        ),
        (
            cart(6300, ExcludingTax),
            not_p("US min 63.00 excluding tax: 6000", 6300, 6000),
        ),
        (
            cart(6400, IncludingTax),
            not_p("US min 64.00 including tax: 6390", 6400, 6390),
        ),
        (
            cart(6000, AsPriced),
            applied_p("US min 60.00 as priced: exactly met"),
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

// ===========================================================================
// Selectors
// ===========================================================================
//
// AU cart, in cart order (SKU order in brackets):
//   SHIRAZ-750    wine   std  2000 × 2 = 4000  product SHIRAZ  [5]
//   BREAD         bakery free  450 × 1 =  450                  [2]
//   BEER-LAGER    beer   std   300 × 6 = 1800                  [1]
//   RIESLING-750  wine   std  1800 × 1 = 1800  product RIESLING [3]
//   SHIRAZ-1500   wine   std  3500 × 1 = 3500  product SHIRAZ  [4]
//   subtotal 11550
// 10% off the selection; every line's share is exactly a tenth of it, so
// the spread has no remainders. Undiscounted GST: 4000/11 = 363.64 → 364,
// 1800/11 = 163.64 → 164, 3500/11 = 318.18 → 318. Discounted by 10%:
// 3600/11 = 327.27 → 327, 1620/11 = 147.27 → 147, 3150/11 = 286.36 → 286.

fn selector_cart(selector: Selector) -> PricingInput {
    au().variant(product(SHIRAZ), "SHIRAZ-750", "wine", "standard", 2000, 2)
        .line("BREAD", "bakery", "gst-free", 450, 1)
        .line("BEER-LAGER", "beer", "standard", 300, 6)
        .variant(
            product(RIESLING),
            "RIESLING-750",
            "wine",
            "standard",
            1800,
            1,
        )
        .variant(product(SHIRAZ), "SHIRAZ-1500", "wine", "standard", 3500, 1)
        .promo(spec("ten", 1, vec![], percent_off(selector, 10)))
}

#[test]
fn selectors() {
    let cases = vec![
        (
            // 10% of 11550 = 1155: 400, 45, 180, 180, 350.
            // GST 327 + 0 + 147 + 147 + 286 = 907; pays 11550 − 1155 = 10395.
            selector_cart(Selector::All),
            Expected::Priced(Priced {
                case: "selector All",
                lines: vec![
                    line("SHIRAZ-750", 4000, &[("ten", 400)], 327, 3600),
                    line("BREAD", 450, &[("ten", 45)], 0, 405),
                    line("BEER-LAGER", 1800, &[("ten", 180)], 147, 1620),
                    line("RIESLING-750", 1800, &[("ten", 180)], 147, 1620),
                    line("SHIRAZ-1500", 3500, &[("ten", 350)], 286, 3150),
                ],
                shipping: None,
                // GST taxable 3600 + 1620 + 1620 + 3150 = 9990.
                taxes: vec![rate("GST", 9990, 907), rate("GST-free", 405, 0)],
                totals: sums(11550, 1155, 0, 907, 10395),
                promotions: vec![applied("ten", 1155)],
            }),
        ),
        (
            // 10% of 4000 + 1800 + 3500 = 9300 → 930: 400, 180, 350.
            // GST 327 + 0 + 164 + 147 + 286 = 924; pays 10620.
            selector_cart(category("wine")),
            Expected::Priced(Priced {
                case: "selector Category wine",
                lines: vec![
                    line("SHIRAZ-750", 4000, &[("ten", 400)], 327, 3600),
                    line("BREAD", 450, &[], 0, 450),
                    line("BEER-LAGER", 1800, &[], 164, 1800),
                    line("RIESLING-750", 1800, &[("ten", 180)], 147, 1620),
                    line("SHIRAZ-1500", 3500, &[("ten", 350)], 286, 3150),
                ],
                shipping: None,
                // 3600 + 1800 + 1620 + 3150 = 10170.
                taxes: vec![rate("GST", 10170, 924), rate("GST-free", 450, 0)],
                totals: sums(11550, 930, 0, 924, 10620),
                promotions: vec![applied("ten", 930)],
            }),
        ),
        (
            // 10% of 4000 = 400. GST 327 + 164 + 164 + 318 = 973; pays 11150.
            selector_cart(sku("SHIRAZ-750")),
            Expected::Priced(Priced {
                case: "selector Sku SHIRAZ-750",
                lines: vec![
                    line("SHIRAZ-750", 4000, &[("ten", 400)], 327, 3600),
                    line("BREAD", 450, &[], 0, 450),
                    line("BEER-LAGER", 1800, &[], 164, 1800),
                    line("RIESLING-750", 1800, &[], 164, 1800),
                    line("SHIRAZ-1500", 3500, &[], 318, 3500),
                ],
                shipping: None,
                // 3600 + 1800 + 1800 + 3500 = 10700.
                taxes: vec![rate("GST", 10700, 973), rate("GST-free", 450, 0)],
                totals: sums(11550, 400, 0, 973, 11150),
                promotions: vec![applied("ten", 400)],
            }),
        ),
        (
            // Both SHIRAZ variants: 10% of 4000 + 3500 = 7500 → 750: 400, 350.
            // GST 327 + 164 + 164 + 286 = 941; pays 10800.
            selector_cart(Selector::Product {
                product: product(SHIRAZ),
            }),
            Expected::Priced(Priced {
                case: "selector Product SHIRAZ (two variants)",
                lines: vec![
                    line("SHIRAZ-750", 4000, &[("ten", 400)], 327, 3600),
                    line("BREAD", 450, &[], 0, 450),
                    line("BEER-LAGER", 1800, &[], 164, 1800),
                    line("RIESLING-750", 1800, &[], 164, 1800),
                    line("SHIRAZ-1500", 3500, &[("ten", 350)], 286, 3150),
                ],
                shipping: None,
                // 3600 + 1800 + 1800 + 3150 = 10350.
                taxes: vec![rate("GST", 10350, 941), rate("GST-free", 450, 0)],
                totals: sums(11550, 750, 0, 941, 10800),
                promotions: vec![applied("ten", 750)],
            }),
        ),
        (
            // BREAD or beer: 10% of 450 + 1800 = 2250 → 225: 45, 180.
            // GST 364 + 0 + 147 + 164 + 318 = 993; pays 11325.
            selector_cart(Selector::AnyOf {
                selectors: vec![sku("BREAD"), category("beer")],
            }),
            Expected::Priced(Priced {
                case: "selector AnyOf [Sku BREAD, Category beer]",
                lines: vec![
                    line("SHIRAZ-750", 4000, &[], 364, 4000),
                    line("BREAD", 450, &[("ten", 45)], 0, 405),
                    line("BEER-LAGER", 1800, &[("ten", 180)], 147, 1620),
                    line("RIESLING-750", 1800, &[], 164, 1800),
                    line("SHIRAZ-1500", 3500, &[], 318, 3500),
                ],
                shipping: None,
                // 4000 + 1620 + 1800 + 3500 = 10920.
                taxes: vec![rate("GST", 10920, 993), rate("GST-free", 405, 0)],
                totals: sums(11550, 225, 0, 993, 11325),
                promotions: vec![applied("ten", 225)],
            }),
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

// ===========================================================================
// Actions
// ===========================================================================

#[test]
fn item_and_cart_actions() {
    let cases = vec![
        (
            // Three snacks of 1005 each, in cart order PRETZELS, CHIPS, NUTS.
            // 10% of 3015 = 301.5 → 302 rounded once (per line it would be
            // 100.5 → 101 three times = 303). Spread 302 over equal weights:
            // 302 × 1005/3015 = 100 r2010 each; 2 cents left go to the
            // earliest equal remainders in SKU order: CHIPS 101, NUTS 101,
            // PRETZELS 100.
            // GST: 904/11 = 82.18 → 82 (twice), 905/11 = 82.27 → 82; 246.
            au().line("PRETZELS", "snacks", "standard", 1005, 1)
                .line("CHIPS", "snacks", "standard", 1005, 1)
                .line("NUTS", "snacks", "standard", 1005, 1)
                .promo(spec(
                    "snacks-10",
                    1,
                    vec![],
                    percent_off(category("snacks"), 10),
                )),
            Expected::Priced(Priced {
                case: "percent off items: rounded once, ties to the earlier SKU",
                lines: vec![
                    line("PRETZELS", 1005, &[("snacks-10", 100)], 82, 905),
                    line("CHIPS", 1005, &[("snacks-10", 101)], 82, 904),
                    line("NUTS", 1005, &[("snacks-10", 101)], 82, 904),
                ],
                shipping: None,
                taxes: vec![rate("GST", 2713, 246)],
                totals: sums(3015, 302, 0, 246, 2713),
                promotions: vec![applied("snacks-10", 302)],
            }),
        ),
        (
            // A$2.00 off every apparel unit: SOCKS 3 × 200 = 600 → 3000.
            // GST: HAT 2500/11 = 227.27 → 227; SOCKS 3000/11 = 272.73 → 273;
            // STICKER 600/11 = 54.55 → 55; 555. Pays 6700 − 600 = 6100.
            au().line("HAT", "headwear", "standard", 2500, 1)
                .line("SOCKS", "apparel", "standard", 1200, 3)
                .line("STICKER", "stationery", "standard", 300, 2)
                .promo(spec(
                    "socks-2",
                    1,
                    vec![],
                    amount_off(category("apparel"), aud(200), AmountPer::Unit),
                )),
            Expected::Priced(Priced {
                case: "amount off per unit",
                lines: vec![
                    line("HAT", 2500, &[], 227, 2500),
                    line("SOCKS", 3600, &[("socks-2", 600)], 273, 3000),
                    line("STICKER", 600, &[], 55, 600),
                ],
                shipping: None,
                taxes: vec![rate("GST", 6100, 555)],
                totals: sums(6700, 600, 0, 555, 6100),
                promotions: vec![applied("socks-2", 600)],
            }),
        ),
        (
            // A$5.00 off every STICKER unit: 2 × 500 = 1000 > 600, so 600:
            // the line goes to zero, not below. GST 227 + 3600/11 = 327.27
            // → 327 + 0 = 554. Pays 6100.
            au().line("HAT", "headwear", "standard", 2500, 1)
                .line("SOCKS", "apparel", "standard", 1200, 3)
                .line("STICKER", "stationery", "standard", 300, 2)
                .promo(spec(
                    "sticker-5",
                    1,
                    vec![],
                    amount_off(sku("STICKER"), aud(500), AmountPer::Unit),
                )),
            Expected::Priced(Priced {
                case: "amount off per unit larger than the line: stops at zero",
                lines: vec![
                    line("HAT", 2500, &[], 227, 2500),
                    line("SOCKS", 3600, &[], 327, 3600),
                    line("STICKER", 600, &[("sticker-5", 600)], 0, 0),
                ],
                shipping: None,
                taxes: vec![rate("GST", 6100, 554)],
                totals: sums(6700, 600, 0, 554, 6100),
                promotions: vec![applied("sticker-5", 600)],
            }),
        ),
        (
            // A$10.00 once over the apparel lines, by what they come to, in
            // SKU order CAP 1500, SOCKS 3600, TEE 1999 (Σ 7099):
            //   CAP   1000 × 1500/7099 = 1500000/7099 = 211 r2111
            //   SOCKS 1000 × 3600/7099 = 3600000/7099 = 507 r807
            //   TEE   1000 × 1999/7099 = 1999000/7099 = 281 r4181
            // floors 999; the cent left goes to TEE (largest remainder):
            // 211 + 507 + 282 = 1000. MUG is not apparel.
            // GST: MUG 1000/11 = 90.91 → 91; TEE 1717/11 = 156.09 → 156;
            // SOCKS 3093/11 = 281.18 → 281; CAP 1289/11 = 117.18 → 117; 645.
            au().line("MUG", "homeware", "standard", 1000, 1)
                .line("TEE", "apparel", "standard", 1999, 1)
                .line("SOCKS", "apparel", "standard", 1200, 3)
                .line("CAP", "apparel", "standard", 1500, 1)
                .promo(spec(
                    "apparel-10",
                    1,
                    vec![],
                    amount_off(category("apparel"), aud(1000), AmountPer::Selection),
                )),
            Expected::Priced(Priced {
                case: "amount off per selection: uneven largest-remainder split",
                lines: vec![
                    line("MUG", 1000, &[], 91, 1000),
                    line("TEE", 1999, &[("apparel-10", 282)], 156, 1717),
                    line("SOCKS", 3600, &[("apparel-10", 507)], 281, 3093),
                    line("CAP", 1500, &[("apparel-10", 211)], 117, 1289),
                ],
                shipping: None,
                taxes: vec![rate("GST", 7099, 645)],
                totals: sums(8099, 1000, 0, 645, 7099),
                promotions: vec![applied("apparel-10", 1000)],
            }),
        ),
        (
            // 10% off the cart, GST-free line included: 10% of 1197 + 898 =
            // 2095 → 209.5 → 210 (half-up). Spread in SKU order:
            //   APPLES 210 × 1197/2095 = 251370/2095 = 119 r2065
            //   CHIPS  210 ×  898/2095 = 188580/2095 =  90 r30
            // the cent left goes to APPLES: 120 + 90.
            // GST: APPLES 1077 GST-free 0; CHIPS 808/11 = 73.45 → 73.
            au().line("APPLES", "fruit", "gst-free", 399, 3)
                .line("CHIPS", "snacks", "standard", 449, 2)
                .promo(spec("cart-10", 1, vec![], percent_off_cart(10))),
            Expected::Priced(Priced {
                case: "percent off cart over a GST-free and a taxable line",
                lines: vec![
                    line("APPLES", 1197, &[("cart-10", 120)], 0, 1077),
                    line("CHIPS", 898, &[("cart-10", 90)], 73, 808),
                ],
                shipping: None,
                taxes: vec![rate("GST-free", 1077, 0), rate("GST", 808, 73)],
                totals: sums(2095, 210, 0, 73, 1885),
                promotions: vec![applied("cart-10", 210)],
            }),
        ),
        (
            // 10% of 3 × 695 = 2085 is 208.5: half-up → 209.
            // GST 1876/11 = 170.55 → 171.
            au().line("GIFT", "gifts", "standard", 695, 3).promo(spec(
                "cart-10",
                1,
                vec![],
                percent_off_cart(10),
            )),
            Expected::Priced(Priced {
                case: "discount rounding half-up on an exact half",
                lines: vec![line("GIFT", 2085, &[("cart-10", 209)], 171, 1876)],
                shipping: None,
                taxes: vec![rate("GST", 1876, 171)],
                totals: sums(2085, 209, 0, 171, 1876),
                promotions: vec![applied("cart-10", 209)],
            }),
        ),
        (
            // The same, half-even: 208.5 → 208. GST 1877/11 = 170.64 → 171.
            au().line("GIFT", "gifts", "standard", 695, 3)
                .promo(spec("cart-10", 1, vec![], percent_off_cart(10)))
                .with(|i| i.tax.rounding.discount_mode = RoundingMode::HalfEven),
            Expected::Priced(Priced {
                case: "discount rounding half-even on an exact half",
                lines: vec![line("GIFT", 2085, &[("cart-10", 208)], 171, 1877)],
                shipping: None,
                taxes: vec![rate("GST", 1877, 171)],
                totals: sums(2085, 208, 0, 171, 1877),
                promotions: vec![applied("cart-10", 208)],
            }),
        ),
        (
            // A$10.00 off the cart, in SKU order KETTLE 4999, MUG 2 × 1299 =
            // 2598, TOASTER 3499 (Σ 11096):
            //   KETTLE  1000 × 4999/11096 = 450 r5800
            //   MUG     1000 × 2598/11096 = 234 r1536
            //   TOASTER 1000 × 3499/11096 = 315 r3760
            // floors 999; the cent left goes to KETTLE: 451 + 234 + 315 = 1000.
            // GST: TOASTER 3184/11 = 289.45 → 289; MUG 2364/11 = 214.91 →
            // 215; KETTLE 4548/11 = 413.45 → 413; 917.
            au().line("TOASTER", "appliances", "standard", 3499, 1)
                .line("MUG", "homeware", "standard", 1299, 2)
                .line("KETTLE", "appliances", "standard", 4999, 1)
                .promo(spec("cart-a10", 1, vec![], amount_off_cart(aud(1000)))),
            Expected::Priced(Priced {
                case: "amount off cart allocated over the lines",
                lines: vec![
                    line("TOASTER", 3499, &[("cart-a10", 315)], 289, 3184),
                    line("MUG", 2598, &[("cart-a10", 234)], 215, 2364),
                    line("KETTLE", 4999, &[("cart-a10", 451)], 413, 4548),
                ],
                shipping: None,
                taxes: vec![rate("GST", 10096, 917)],
                totals: sums(11096, 1000, 0, 917, 10096),
                promotions: vec![applied("cart-a10", 1000)],
            }),
        ),
        (
            // A$100.00 off a A$60.00 cart takes 6000, not more.
            wine_cart().promo(spec("big", 1, vec![], amount_off_cart(aud(10_000)))),
            Expected::Priced(Priced {
                case: "amount off cart larger than the cart: stops at zero",
                lines: vec![line("WINE-SHIRAZ", 6000, &[("big", 6000)], 0, 0)],
                shipping: None,
                taxes: vec![rate("GST", 0, 0)],
                totals: sums(6000, 6000, 0, 0, 0),
                promotions: vec![applied("big", 6000)],
            }),
        ),
        (
            // 50% off the cart, capped at A$20.00. Uncapped: 50% of 2499 +
            // 8999 = 11498 is 5749, spread in SKU order:
            //   BITS  5749 × 2499/11498 = 1249 r5749
            //   DRILL 5749 × 8999/11498 = 4499 r5749
            // equal remainders: the cent goes to the earlier, BITS 1250.
            // Capped: 2000 over those parts (1250, 4499; Σ 5749):
            //   BITS  2000 × 1250/5749 = 434 r4934
            //   DRILL 2000 × 4499/5749 = 1565 r815
            // the cent left goes to BITS: 435 + 1565 = 2000.
            // GST: DRILL 7434/11 = 675.82 → 676; BITS 2064/11 = 187.64 → 188.
            au().line("DRILL", "tools", "standard", 8999, 1)
                .line("BITS", "tools", "standard", 2499, 1)
                .promo(PromotionSpec {
                    cap: Some(aud(2000)),
                    max_units_per_line: None,
                    ..spec("half-off", 1, vec![], percent_off_cart(50))
                }),
            Expected::Priced(Priced {
                case: "cap on a promotion's total",
                lines: vec![
                    line("DRILL", 8999, &[("half-off", 1565)], 676, 7434),
                    line("BITS", 2499, &[("half-off", 435)], 188, 2064),
                ],
                shipping: None,
                taxes: vec![rate("GST", 9498, 864)],
                totals: sums(11498, 2000, 0, 864, 9498),
                promotions: vec![applied("half-off", 2000)],
            }),
        ),
        (
            // Free shipping on a A$25.00 book with A$9.95 shipping: the
            // shipping discount is 995, leaving 0 shipping, GST on it 0.
            // BOOK GST 2500/11 = 227.27 → 227.
            au().line("BOOK", "books", "standard", 2500, 1)
                .shipping(995)
                .promo(spec(
                    "ship-free",
                    1,
                    vec![min_subtotal(
                        aud(2000),
                        DiscountBasis::BeforeDiscounts,
                        TaxBasis::AsPriced,
                    )],
                    Action::FreeShipping,
                )),
            Expected::Priced(Priced {
                case: "free shipping",
                lines: vec![line("BOOK", 2500, &[], 227, 2500)],
                shipping: Some(Ship {
                    amount: 995,
                    discounts: vec![("ship-free", 995)],
                    tax: Some(0),
                    total: 0,
                }),
                taxes: vec![rate("GST", 2500, 227)],
                totals: sums(2500, 995, 995, 227, 2500),
                promotions: vec![applied("ship-free", 995)],
            }),
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

// Buy X get Y. AU socks, in cart order (SKU order in brackets), all
// category socks, standard GST:
//   SOCK-WOOL 1499 × 2 = 2998 [3]   GST 2998/11 = 272.55 → 273
//   SOCK-BLUE  800 × 2 = 1600 [1]   GST 1600/11 = 145.45 → 145
//   SOCK-RED  1000 × 2 = 2000 [2]   GST 2000/11 = 181.82 → 182
//   subtotal 6598, 6 units.
// "Buy 2, get 1": each group needs 3 units, so 6 units make at most 2
// groups (g discounted units need 2g others: 6 − g ≥ 2g → g ≤ 2).

fn socks(action: Action) -> PricingInput {
    au().line("SOCK-WOOL", "socks", "standard", 1499, 2)
        .line("SOCK-BLUE", "socks", "standard", 800, 2)
        .line("SOCK-RED", "socks", "standard", 1000, 2)
        .promo(spec("b2g1", 1, vec![], action))
}

#[test]
fn buy_x_get_y() {
    use DiscountOrder::{CheapestFirst, MostExpensiveFirst};
    let all_socks = || category("socks");
    let cases = vec![
        (
            // Once: one BLUE unit free: 1600 × 1/2 = 800.
            // GST: WOOL 273, BLUE 800/11 = 72.73 → 73, RED 182; 528.
            socks(buy_get(
                all_socks(),
                2,
                all_socks(),
                1,
                100,
                false,
                CheapestFirst,
            )),
            Expected::Priced(Priced {
                case: "buy 2 get 1 free, once, cheapest first",
                lines: vec![
                    line("SOCK-WOOL", 2998, &[], 273, 2998),
                    line("SOCK-BLUE", 1600, &[("b2g1", 800)], 73, 800),
                    line("SOCK-RED", 2000, &[], 182, 2000),
                ],
                shipping: None,
                taxes: vec![rate("GST", 5798, 528)],
                totals: sums(6598, 800, 0, 528, 5798),
                promotions: vec![applied("b2g1", 800)],
            }),
        ),
        (
            // Repeat: two groups, the two cheapest units (both BLUE) free:
            // 1600 × 2/2 = 1600. GST 273 + 0 + 182 = 455.
            socks(buy_get(
                all_socks(),
                2,
                all_socks(),
                1,
                100,
                true,
                CheapestFirst,
            )),
            Expected::Priced(Priced {
                case: "buy 2 get 1 free, repeated, cheapest first",
                lines: vec![
                    line("SOCK-WOOL", 2998, &[], 273, 2998),
                    line("SOCK-BLUE", 1600, &[("b2g1", 1600)], 0, 0),
                    line("SOCK-RED", 2000, &[], 182, 2000),
                ],
                shipping: None,
                taxes: vec![rate("GST", 4998, 455)],
                totals: sums(6598, 1600, 0, 455, 4998),
                promotions: vec![applied("b2g1", 1600)],
            }),
        ),
        (
            // Repeat, most expensive first: both WOOL units free: 2998.
            // GST 0 + 145 + 182 = 327.
            socks(buy_get(
                all_socks(),
                2,
                all_socks(),
                1,
                100,
                true,
                MostExpensiveFirst,
            )),
            Expected::Priced(Priced {
                case: "buy 2 get 1 free, repeated, most expensive first",
                lines: vec![
                    line("SOCK-WOOL", 2998, &[("b2g1", 2998)], 0, 0),
                    line("SOCK-BLUE", 1600, &[], 145, 1600),
                    line("SOCK-RED", 2000, &[], 182, 2000),
                ],
                shipping: None,
                taxes: vec![rate("GST", 3600, 327)],
                totals: sums(6598, 2998, 0, 327, 3600),
                promotions: vec![applied("b2g1", 2998)],
            }),
        ),
        (
            // Once, 50% off the most expensive unit: 2998 × 1/2 = 1499, 50%
            // = 749.5 → 750 (half-up). WOOL 2248/11 = 204.36 → 204;
            // GST 204 + 145 + 182 = 531.
            socks(buy_get(
                all_socks(),
                2,
                all_socks(),
                1,
                50,
                false,
                MostExpensiveFirst,
            )),
            Expected::Priced(Priced {
                case: "buy 2 get 1 half price, once, most expensive first",
                lines: vec![
                    line("SOCK-WOOL", 2998, &[("b2g1", 750)], 204, 2248),
                    line("SOCK-BLUE", 1600, &[], 145, 1600),
                    line("SOCK-RED", 2000, &[], 182, 2000),
                ],
                shipping: None,
                taxes: vec![rate("GST", 5848, 531)],
                totals: sums(6598, 750, 0, 531, 5848),
                promotions: vec![applied("b2g1", 750)],
            }),
        ),
        (
            // Buy 2 wines, get 1 cheese free, repeated. Two wines make one
            // group: the cheapest cheese unit (CHEDDAR 650) is free:
            // 1300 × 1/2 = 650. GST: WINE 5000/11 = 454.55 → 455; cheese is
            // GST-free.
            au().line("WINE-SHIRAZ", "wine", "standard", 2500, 2)
                .line("BRIE", "cheese", "gst-free", 899, 1)
                .line("CHEDDAR", "cheese", "gst-free", 650, 2)
                .promo(spec(
                    "wine-cheese",
                    1,
                    vec![],
                    buy_get(
                        category("wine"),
                        2,
                        category("cheese"),
                        1,
                        100,
                        true,
                        CheapestFirst,
                    ),
                )),
            Expected::Priced(Priced {
                case: "buy 2 wines get 1 cheese: one group",
                lines: vec![
                    line("WINE-SHIRAZ", 5000, &[], 455, 5000),
                    line("BRIE", 899, &[], 0, 899),
                    line("CHEDDAR", 1300, &[("wine-cheese", 650)], 0, 650),
                ],
                shipping: None,
                taxes: vec![rate("GST", 5000, 455), rate("GST-free", 1549, 0)],
                totals: sums(7199, 650, 0, 455, 6549),
                promotions: vec![applied("wine-cheese", 650)],
            }),
        ),
        (
            // Four wines make two groups (three cheeses, but 4 wines only
            // buy 2): both CHEDDAR units free, 1300. BRIE stays.
            // GST: WINE 10000/11 = 909.09 → 909.
            au().line("WINE-SHIRAZ", "wine", "standard", 2500, 4)
                .line("BRIE", "cheese", "gst-free", 899, 1)
                .line("CHEDDAR", "cheese", "gst-free", 650, 2)
                .promo(spec(
                    "wine-cheese",
                    1,
                    vec![],
                    buy_get(
                        category("wine"),
                        2,
                        category("cheese"),
                        1,
                        100,
                        true,
                        CheapestFirst,
                    ),
                )),
            Expected::Priced(Priced {
                case: "buy 2 wines get 1 cheese: two groups",
                lines: vec![
                    line("WINE-SHIRAZ", 10000, &[], 909, 10000),
                    line("BRIE", 899, &[], 0, 899),
                    line("CHEDDAR", 1300, &[("wine-cheese", 1300)], 0, 0),
                ],
                shipping: None,
                taxes: vec![rate("GST", 10000, 909), rate("GST-free", 899, 0)],
                totals: sums(12199, 1300, 0, 909, 10899),
                promotions: vec![applied("wine-cheese", 1300)],
            }),
        ),
        (
            // One wine buys nothing: the conditions hold (there are none)
            // but no group is complete.
            au().line("WINE-SHIRAZ", "wine", "standard", 2500, 1)
                .line("CHEDDAR", "cheese", "gst-free", 650, 2)
                .promo(spec(
                    "wine-cheese",
                    1,
                    vec![],
                    buy_get(
                        category("wine"),
                        2,
                        category("cheese"),
                        1,
                        100,
                        true,
                        CheapestFirst,
                    ),
                )),
            Expected::Priced(Priced {
                // GST 2500/11 = 227.27 → 227.
                case: "buy 2 wines get 1 cheese: no complete group",
                lines: vec![
                    line("WINE-SHIRAZ", 2500, &[], 227, 2500),
                    line("CHEDDAR", 1300, &[], 0, 1300),
                ],
                shipping: None,
                taxes: vec![rate("GST", 2500, 227), rate("GST-free", 1300, 0)],
                totals: sums(3800, 0, 0, 227, 3800),
                promotions: vec![not_applied("wine-cheese", NotApplied::NothingToDiscount)],
            }),
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

// "Percentages are taken of the total of the lines they apply to and rounded
// once": buy 2 get 2 half price, once, cheapest first. The two cheapest units
// are SHIRT-A 999 and SHIRT-B 1299 (SHIRT-C's two units are the ones bought).
// Rounded once: 50% of 999 + 1299 = 2298 is exactly 1149, spread in SKU order:
//   SHIRT-A 1149 × 999/2298 = 499 r1149, SHIRT-B 1149 × 1299/2298 = 649 r1149
// equal remainders: the cent goes to the earlier, SHIRT-A: 500 + 649 = 1149.
// (Rounding per line instead gives 499.5 → 500 and 649.5 → 650 = 1150.)
// GST: A 499/11 = 45.36 → 45; B 650/11 = 59.09 → 59; C 5998/11 = 545.27 → 545.
#[test]
fn buy_x_get_y_percentage_is_rounded_once() {
    check(
        au().line("SHIRT-C", "shirts", "standard", 2999, 2)
            .line("SHIRT-B", "shirts", "standard", 1299, 1)
            .line("SHIRT-A", "shirts", "standard", 999, 1)
            .promo(spec(
                "b2g2-half",
                1,
                vec![],
                buy_get(
                    category("shirts"),
                    2,
                    category("shirts"),
                    2,
                    50,
                    false,
                    DiscountOrder::CheapestFirst,
                ),
            )),
        Expected::Priced(Priced {
            case: "buy 2 get 2 half price: rounded once",
            lines: vec![
                line("SHIRT-C", 5998, &[], 545, 5998),
                line("SHIRT-B", 1299, &[("b2g2-half", 649)], 59, 650),
                line("SHIRT-A", 999, &[("b2g2-half", 500)], 45, 499),
            ],
            shipping: None,
            taxes: vec![rate("GST", 7147, 649)],
            totals: sums(8296, 1149, 0, 649, 7147),
            promotions: vec![applied("b2g2-half", 1149)],
        }),
    );
}

// ===========================================================================
// Combination
// ===========================================================================
//
// AU cart: WINE 2000 × 5 = 10000, CHIPS 450 × 2 = 900; subtotal 10900.
// SKU order: CHIPS, WINE.

fn combo_cart() -> PricingInput {
    au().line("WINE", "wine", "standard", 2000, 5)
        .line("CHIPS", "snacks", "standard", 450, 2)
}

#[test]
fn combination() {
    let cases = vec![
        (
            // Compounding. wine-10 (1): 10% of 10000 = 1000. cart-10 (2): 10%
            // of what is left, 9000 + 900 = 9900 → 990, spread exactly: CHIPS
            // 90, WINE 900. Pays 8100 + 810 = 8910, not 10900 − 2090.
            // GST: WINE 8100/11 = 736.36 → 736; CHIPS 810/11 = 73.64 → 74.
            combo_cart()
                .promo(spec("cart-10", 2, vec![], percent_off_cart(10)))
                .promo(spec(
                    "wine-10",
                    1,
                    vec![],
                    percent_off(category("wine"), 10),
                )),
            Expected::Priced(Priced {
                case: "compounding: the second percent applies to what the first left",
                lines: vec![
                    line(
                        "WINE",
                        10000,
                        &[("wine-10", 1000), ("cart-10", 900)],
                        736,
                        8100,
                    ),
                    line("CHIPS", 900, &[("cart-10", 90)], 74, 810),
                ],
                shipping: None,
                taxes: vec![rate("GST", 8910, 810)],
                totals: sums(10900, 1990, 0, 810, 8910),
                promotions: vec![applied("wine-10", 1000), applied("cart-10", 990)],
            }),
        ),
        (
            // Priority: A$10 off first, then 10%.
            // amount-10 (1): 1000 over CHIPS 900, WINE 10000 (Σ 10900):
            //   CHIPS 900000/10900 = 82 r6200, WINE 10000000/10900 = 917 r4700
            //   → CHIPS 83, WINE 917; left 817 + 9083 = 9900.
            // pct-10 (2): 10% of 9900 = 990 over 817, 9083:
            //   CHIPS 990 × 817/9900 = 81 r6930, WINE 990 × 9083/9900 = 908 r2970
            //   → CHIPS 82, WINE 908; left CHIPS 735, WINE 8175.
            // GST: WINE 8175/11 = 743.18 → 743; CHIPS 735/11 = 66.82 → 67.
            combo_cart()
                .promo(spec("pct-10", 2, vec![], percent_off_cart(10)))
                .promo(spec("amount-10", 1, vec![], amount_off_cart(aud(1000)))),
            Expected::Priced(Priced {
                case: "priority: amount off before percent off",
                lines: vec![
                    line(
                        "WINE",
                        10000,
                        &[("amount-10", 917), ("pct-10", 908)],
                        743,
                        8175,
                    ),
                    line("CHIPS", 900, &[("amount-10", 83), ("pct-10", 82)], 67, 735),
                ],
                shipping: None,
                taxes: vec![rate("GST", 8910, 810)],
                totals: sums(10900, 1990, 0, 810, 8910),
                promotions: vec![applied("amount-10", 1000), applied("pct-10", 990)],
            }),
        ),
        (
            // Priorities swapped: 10% first takes 1090 (CHIPS 90, WINE 1000
            // exactly), leaving 810 + 9000 = 9810; then 1000 over those:
            //   CHIPS 810000/9810 = 82 r5580, WINE 9000000/9810 = 917 r4230
            //   → CHIPS 83, WINE 917; left CHIPS 727, WINE 8083.
            // 2090 off in all. GST: WINE 8083/11 = 734.82 → 735; CHIPS
            // 727/11 = 66.09 → 66; 801.
            combo_cart()
                .promo(spec("pct-10", 1, vec![], percent_off_cart(10)))
                .promo(spec("amount-10", 2, vec![], amount_off_cart(aud(1000)))),
            Expected::Priced(Priced {
                case: "priority: percent off before amount off",
                lines: vec![
                    line(
                        "WINE",
                        10000,
                        &[("pct-10", 1000), ("amount-10", 917)],
                        735,
                        8083,
                    ),
                    line("CHIPS", 900, &[("pct-10", 90), ("amount-10", 83)], 66, 727),
                ],
                shipping: None,
                taxes: vec![rate("GST", 8810, 801)],
                totals: sums(10900, 2090, 0, 801, 8810),
                promotions: vec![applied("pct-10", 1090), applied("amount-10", 1000)],
            }),
        ),
        (
            // Equal priorities: by id, "a-pct-10" before "b-amount-10" (added
            // in the other order): the same arithmetic as the case above.
            combo_cart()
                .promo(spec("b-amount-10", 5, vec![], amount_off_cart(aud(1000))))
                .promo(spec("a-pct-10", 5, vec![], percent_off_cart(10))),
            Expected::Priced(Priced {
                case: "equal priorities: ties broken by id",
                lines: vec![
                    line(
                        "WINE",
                        10000,
                        &[("a-pct-10", 1000), ("b-amount-10", 917)],
                        735,
                        8083,
                    ),
                    line(
                        "CHIPS",
                        900,
                        &[("a-pct-10", 90), ("b-amount-10", 83)],
                        66,
                        727,
                    ),
                ],
                shipping: None,
                taxes: vec![rate("GST", 8810, 801)],
                totals: sums(10900, 2090, 0, 801, 8810),
                promotions: vec![applied("a-pct-10", 1090), applied("b-amount-10", 1000)],
            }),
        ),
        (
            // vip-20 is exclusive and applies: 20% of 10900 = 2180 (CHIPS
            // 180, WINE 2000 exactly). Everything after it is excluded, even
            // "later", whose own window has not started.
            // GST: WINE 8000/11 = 727.27 → 727; CHIPS 720/11 = 65.45 → 65.
            combo_cart()
                .promo(spec("cart-10", 2, vec![], percent_off_cart(10)))
                .promo(spec(
                    "later",
                    3,
                    vec![window(Some(DAY), None)],
                    amount_off_cart(aud(100)),
                ))
                .promo(PromotionSpec {
                    exclusive: true,
                    group: None,
                    ..spec("vip-20", 1, vec![], percent_off_cart(20))
                }),
            Expected::Priced(Priced {
                case: "an exclusive promotion that applies stops the later ones",
                lines: vec![
                    line("WINE", 10000, &[("vip-20", 2000)], 727, 8000),
                    line("CHIPS", 900, &[("vip-20", 180)], 65, 720),
                ],
                shipping: None,
                taxes: vec![rate("GST", 8720, 792)],
                totals: sums(10900, 2180, 0, 792, 8720),
                promotions: vec![
                    applied("vip-20", 2180),
                    not_applied(
                        "cart-10",
                        NotApplied::ExcludedBy {
                            promotion: PromotionId::parse("vip-20").unwrap(),
                        },
                    ),
                    not_applied(
                        "later",
                        NotApplied::ExcludedBy {
                            promotion: PromotionId::parse("vip-20").unwrap(),
                        },
                    ),
                ],
            }),
        ),
        (
            // vip-20 needs the code VIP, not entered: it does not apply, so
            // cart-10 does: 1090 (CHIPS 90, WINE 1000). "later" reports its
            // own reason. GST: 9000/11 = 818.18 → 818; 810/11 = 73.64 → 74.
            combo_cart()
                .promo(spec("cart-10", 2, vec![], percent_off_cart(10)))
                .promo(spec(
                    "later",
                    3,
                    vec![window(Some(DAY), None)],
                    amount_off_cart(aud(100)),
                ))
                .promo(PromotionSpec {
                    exclusive: true,
                    group: None,
                    ..spec("vip-20", 1, vec![coupon("VIP")], percent_off_cart(20))
                }),
            Expected::Priced(Priced {
                case: "an exclusive promotion that does not apply stops nothing",
                lines: vec![
                    line("WINE", 10000, &[("cart-10", 1000)], 818, 9000),
                    line("CHIPS", 900, &[("cart-10", 90)], 74, 810),
                ],
                shipping: None,
                taxes: vec![rate("GST", 9810, 892)],
                totals: sums(10900, 1090, 0, 892, 9810),
                promotions: vec![
                    not_applied(
                        "vip-20",
                        NotApplied::CodeMissing {
                            code: CouponCode::parse("VIP").unwrap(),
                        },
                    ),
                    applied("cart-10", 1090),
                    not_applied("later", NotApplied::NotStarted { starts_at: at(DAY) }),
                ],
            }),
        ),
        (
            // An exclusive promotion stops only the ones after it: first-5
            // (0) takes 5% of 10900 = 545 (CHIPS 45, WINE 500), leaving 855 +
            // 9500 = 10355; vip-20 (1) takes 20% of that, 2071 (CHIPS 171,
            // WINE 1900 exactly); cart-10 (2) is excluded.
            // GST: WINE 7600/11 = 690.91 → 691; CHIPS 684/11 = 62.18 → 62.
            combo_cart()
                .promo(spec("cart-10", 2, vec![], percent_off_cart(10)))
                .promo(PromotionSpec {
                    exclusive: true,
                    group: None,
                    ..spec("vip-20", 1, vec![], percent_off_cart(20))
                })
                .promo(spec("first-5", 0, vec![], percent_off_cart(5))),
            Expected::Priced(Priced {
                case: "an exclusive promotion compounds on the earlier ones",
                lines: vec![
                    line(
                        "WINE",
                        10000,
                        &[("first-5", 500), ("vip-20", 1900)],
                        691,
                        7600,
                    ),
                    line("CHIPS", 900, &[("first-5", 45), ("vip-20", 171)], 62, 684),
                ],
                shipping: None,
                taxes: vec![rate("GST", 8284, 753)],
                totals: sums(10900, 2616, 0, 753, 8284),
                promotions: vec![
                    applied("first-5", 545),
                    applied("vip-20", 2071),
                    not_applied(
                        "cart-10",
                        NotApplied::ExcludedBy {
                            promotion: PromotionId::parse("vip-20").unwrap(),
                        },
                    ),
                ],
            }),
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

// ===========================================================================
// Limits, currency, nothing to discount
// ===========================================================================

#[test]
fn limits_currency_and_nothing_to_discount() {
    let limited = |usage_limit, per_customer_limit| PromotionSpec {
        usage_limit,
        per_customer_limit,
        ..spec("p", 1, vec![], amount_off_cart(aud(500)))
    };
    let cases = vec![
        (
            wine_cart()
                .promo(limited(Some(100), None))
                .with(usage("p", 100, 0)),
            wine_not_applied(
                "usage limit 100, used 100",
                NotApplied::UsageExhausted { limit: 100 },
            ),
        ),
        (
            wine_cart()
                .promo(limited(Some(100), None))
                .with(usage("p", 99, 0)),
            wine_applied("usage limit 100, used 99"),
        ),
        (
            wine_cart().promo(limited(Some(1), None)),
            wine_applied("usage limit 1, no usage recorded: never used"),
        ),
        (
            wine_cart()
                .promo(limited(Some(100), Some(1)))
                .with(usage("p", 5, 1))
                .with(|i| i.customer = customer(Some("c1"), &[], false)),
            wine_not_applied(
                "per-customer limit 1, this customer used it once",
                NotApplied::CustomerLimitReached { limit: 1 },
            ),
        ),
        (
            wine_cart()
                .promo(limited(None, Some(2)))
                .with(usage("p", 5, 1))
                .with(|i| i.customer = customer(Some("c1"), &[], false)),
            wine_applied("per-customer limit 2, this customer used it once"),
        ),
        (
            wine_cart().promo(limited(None, Some(1))),
            wine_not_applied(
                "per-customer limit with an anonymous customer",
                NotApplied::CustomerRequired,
            ),
        ),
        (
            // The total limit is checked before the customer.
            wine_cart()
                .promo(limited(Some(3), Some(1)))
                .with(usage("p", 3, 0)),
            wine_not_applied(
                "exhausted and anonymous: exhausted reported",
                NotApplied::UsageExhausted { limit: 3 },
            ),
        ),
        (
            wine_cart().promo(spec("p", 1, vec![], amount_off_cart(nzd(500)))),
            wine_not_applied(
                "NZD amount off on an AUD cart",
                NotApplied::CurrencyMismatch {
                    found: Currency::NZD,
                },
            ),
        ),
        (
            wine_cart().promo(spec(
                "p",
                1,
                vec![min_subtotal(
                    nzd(100),
                    DiscountBasis::BeforeDiscounts,
                    TaxBasis::AsPriced,
                )],
                percent_off_cart(10),
            )),
            wine_not_applied(
                "NZD threshold on an AUD cart",
                NotApplied::CurrencyMismatch {
                    found: Currency::NZD,
                },
            ),
        ),
        (
            wine_cart().promo(PromotionSpec {
                cap: Some(nzd(100)),
                max_units_per_line: None,
                ..spec("p", 1, vec![], percent_off_cart(10))
            }),
            wine_not_applied(
                "NZD cap on an AUD cart",
                NotApplied::CurrencyMismatch {
                    found: Currency::NZD,
                },
            ),
        ),
        (
            // all-free (1) takes all 6000; then there is nothing left for
            // more (2); no shipping is charged for ship-free (3); no beer is
            // in the cart for beer-10 (4). GST on 0 is 0.
            wine_cart()
                .promo(spec(
                    "all-free",
                    1,
                    vec![],
                    percent_off(category("wine"), 100),
                ))
                .promo(spec(
                    "more",
                    2,
                    vec![],
                    amount_off(category("wine"), aud(500), AmountPer::Selection),
                ))
                .promo(spec("ship-free", 3, vec![], Action::FreeShipping))
                .promo(spec(
                    "beer-10",
                    4,
                    vec![],
                    percent_off(category("beer"), 10),
                )),
            Expected::Priced(Priced {
                case: "nothing to discount",
                lines: vec![line("WINE-SHIRAZ", 6000, &[("all-free", 6000)], 0, 0)],
                shipping: None,
                taxes: vec![rate("GST", 0, 0)],
                totals: sums(6000, 6000, 0, 0, 0),
                promotions: vec![
                    applied("all-free", 6000),
                    not_applied("more", NotApplied::NothingToDiscount),
                    not_applied("ship-free", NotApplied::NothingToDiscount),
                    not_applied("beer-10", NotApplied::NothingToDiscount),
                ],
            }),
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

// ===========================================================================
// Tax
// ===========================================================================

#[test]
fn tax_rules() {
    let cases = vec![
        (
            // AU, GST-inclusive, per line half-up; shipping taxed (standard).
            //   APPLES 399 × 3 = 1197 GST-free → 0
            //   CHIPS  449 × 2 =  898 → 898/11 = 81.64 → 82
            //   BREAD  550             GST-free → 0
            //   SOAP  1234             → 1234/11 = 112.18 → 112
            //   shipping 995           → 995/11 = 90.45 → 90
            // GST 82 + 112 + 90 = 284 on 898 + 1234 + 995 = 3127; GST-free
            // 1197 + 550 = 1747. Pays 3879 + 995 = 4874 (GST included).
            au().line("APPLES", "fruit", "gst-free", 399, 3)
                .line("CHIPS", "snacks", "standard", 449, 2)
                .line("BREAD", "bakery", "gst-free", 550, 1)
                .line("SOAP", "household", "standard", 1234, 1)
                .shipping(995),
            Expected::Priced(Priced {
                case: "AU GST inclusive per line, GST-free lines, taxed shipping",
                lines: vec![
                    line("APPLES", 1197, &[], 0, 1197),
                    line("CHIPS", 898, &[], 82, 898),
                    line("BREAD", 550, &[], 0, 550),
                    line("SOAP", 1234, &[], 112, 1234),
                ],
                shipping: Some(Ship {
                    amount: 995,
                    discounts: vec![],
                    tax: Some(90),
                    total: 995,
                }),
                taxes: vec![rate("GST-free", 1747, 0), rate("GST", 3127, 284)],
                totals: sums(3879, 0, 995, 284, 4874),
                promotions: vec![],
            }),
        ),
        (
            // US, tax-exclusive: HAMMER 2599 × 6.5% = 168.935 → 169, added;
            // shipping 799 is not taxed. Pays 2599 + 169 + 799 = 3567.
            us().line("HAMMER", "tools", "standard", 2599, 1)
                .shipping(799),
            Expected::Priced(Priced {
                case: "US exclusive, shipping not taxed",
                lines: vec![line("HAMMER", 2599, &[], 169, 2768)],
                shipping: Some(Ship {
                    amount: 799,
                    discounts: vec![],
                    tax: None,
                    total: 799,
                }),
                taxes: vec![rate("WA sales tax", 2599, 169)],
                totals: sums(2599, 0, 799, 169, 3567),
                promotions: vec![],
            }),
        ),
        (
            // 500 × 6.5% = 32.5 exactly: half-up → 33.
            us().line("TAPE", "tools", "standard", 500, 1),
            Expected::Priced(Priced {
                case: "US tax half-up on an exact half",
                lines: vec![line("TAPE", 500, &[], 33, 533)],
                shipping: None,
                taxes: vec![rate("WA sales tax", 500, 33)],
                totals: sums(500, 0, 0, 33, 533),
                promotions: vec![],
            }),
        ),
        (
            // 32.5 half-even → 32.
            us().line("TAPE", "tools", "standard", 500, 1)
                .with(|i| i.tax.rounding.tax_mode = RoundingMode::HalfEven),
            Expected::Priced(Priced {
                case: "US tax half-even on an exact half",
                lines: vec![line("TAPE", 500, &[], 32, 532)],
                shipping: None,
                taxes: vec![rate("WA sales tax", 500, 32)],
                totals: sums(500, 0, 0, 32, 532),
                promotions: vec![],
            }),
        ),
        (
            // DE VAT, inclusive, per invoice and rate, half-up; shipping at
            // 19%. Cart order CABLE, BOOK, MOUSE, COFFEE, ADAPTER, then
            // shipping.
            // 19%: 999 + 2499 + 499 + 490 = 4487; 4487 × 19/119 =
            //   85253/119 = 716.41 → 716, allocated by amount (Σ 4487):
            //   CABLE   716 × 999/4487  = 159 r1851
            //   MOUSE   716 × 2499/4487 = 398 r3458
            //   ADAPTER 716 × 499/4487  =  79 r2811
            //   shipping 716 × 490/4487 =  78 r854
            //   floors 714; 2 cents to MOUSE and ADAPTER: 159, 399, 80, 78.
            //   (Per line it would be 160 + 399 + 80 + 78 = 717.)
            // 7%: 1999 + 899 = 2898; 2898 × 7/107 = 20286/107 = 189.59 → 190:
            //   BOOK   190 × 1999/2898 = 131 r172
            //   COFFEE 190 × 899/2898  =  58 r2726 → 59
            // Pays 6895 + 490 = 7385 (VAT included), VAT 716 + 190 = 906.
            eu().line("CABLE", "electronics", "standard", 999, 1)
                .line("BOOK", "books", "reduced", 1999, 1)
                .line("MOUSE", "electronics", "standard", 2499, 1)
                .line("COFFEE", "groceries", "reduced", 899, 1)
                .line("ADAPTER", "electronics", "standard", 499, 1)
                .shipping(490),
            Expected::Priced(Priced {
                case: "EU VAT standard and reduced, per invoice",
                lines: vec![
                    line("CABLE", 999, &[], 159, 999),
                    line("BOOK", 1999, &[], 131, 1999),
                    line("MOUSE", 2499, &[], 399, 2499),
                    line("COFFEE", 899, &[], 59, 899),
                    line("ADAPTER", 499, &[], 80, 499),
                ],
                shipping: Some(Ship {
                    amount: 490,
                    discounts: vec![],
                    tax: Some(78),
                    total: 490,
                }),
                taxes: vec![rate("VAT 19%", 4487, 716), rate("VAT 7%", 2898, 190)],
                totals: sums(6895, 0, 490, 906, 7385),
                promotions: vec![],
            }),
        ),
        (
            // The same per line:
            //   CABLE 999 × 19/119 = 18981/119 = 159.50 → 160
            //   MOUSE 2499 × 19/119 = 47481/119 = 399 exactly
            //   ADAPTER 499 × 19/119 = 9481/119 = 79.67 → 80
            //   shipping 490 × 19/119 = 9310/119 = 78.24 → 78   Σ 717
            //   BOOK 1999 × 7/107 = 13993/107 = 130.78 → 131
            //   COFFEE 899 × 7/107 = 6293/107 = 58.81 → 59     Σ 190
            eu().line("CABLE", "electronics", "standard", 999, 1)
                .line("BOOK", "books", "reduced", 1999, 1)
                .line("MOUSE", "electronics", "standard", 2499, 1)
                .line("COFFEE", "groceries", "reduced", 899, 1)
                .line("ADAPTER", "electronics", "standard", 499, 1)
                .shipping(490)
                .with(|i| i.tax.rounding.tax_level = RoundingLevel::PerLine),
            Expected::Priced(Priced {
                case: "EU VAT standard and reduced, per line",
                lines: vec![
                    line("CABLE", 999, &[], 160, 999),
                    line("BOOK", 1999, &[], 131, 1999),
                    line("MOUSE", 2499, &[], 399, 2499),
                    line("COFFEE", 899, &[], 59, 899),
                    line("ADAPTER", 499, &[], 80, 499),
                ],
                shipping: Some(Ship {
                    amount: 490,
                    discounts: vec![],
                    tax: Some(78),
                    total: 490,
                }),
                taxes: vec![rate("VAT 19%", 4487, 717), rate("VAT 7%", 2898, 190)],
                totals: sums(6895, 0, 490, 907, 7385),
                promotions: vec![],
            }),
        ),
        (
            // No rate for "alcohol" in the AU rules, and no fallback.
            au().line("BEER", "beer", "alcohol", 399, 6),
            Expected::TaxFails {
                case: "unknown tax category",
                error: TaxError::UnknownCategory(TaxCategory::parse("alcohol").unwrap()),
            },
        ),
        (
            // A subtotal condition measured without tax needs the rate too.
            au().line("BEER", "beer", "alcohol", 399, 6).promo(spec(
                "p",
                1,
                vec![min_subtotal(
                    aud(100),
                    DiscountBasis::BeforeDiscounts,
                    TaxBasis::ExcludingTax,
                )],
                percent_off_cart(10),
            )),
            Expected::TaxFails {
                case: "unknown tax category in a condition",
                error: TaxError::UnknownCategory(TaxCategory::parse("alcohol").unwrap()),
            },
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

/// Per-invoice tax is allocated back to the lines in tax-request order,
/// which is SKU order, as discounts are: between equal remainders the
/// first line by SKU gets the cent, whatever the cart's order (a shop may
/// ask for cart order instead: `LineOrder::Cart`, see
/// `leftover_cents_and_their_order`).
/// US 6.5% on two lines of 100: 200 × 6.5% = 13, 6.5 each: equal
/// remainders, the cent goes to AAA.
#[test]
fn per_invoice_tax_ties_follow_sku_order() {
    for (first, second) in [("AAA", "ZZZ"), ("ZZZ", "AAA")] {
        let input = us()
            .line(first, "tools", "standard", 100, 1)
            .line(second, "tools", "standard", 100, 1);
        check(
            input,
            Expected::Priced(Priced {
                case: "per-invoice tie to the first line in SKU order, whatever the cart order",
                lines: vec![
                    line(
                        first,
                        100,
                        &[],
                        if first == "AAA" { 7 } else { 6 },
                        if first == "AAA" { 107 } else { 106 },
                    ),
                    line(
                        second,
                        100,
                        &[],
                        if second == "AAA" { 7 } else { 6 },
                        if second == "AAA" { 107 } else { 106 },
                    ),
                ],
                shipping: None,
                taxes: vec![rate("WA sales tax", 200, 13)],
                totals: sums(200, 0, 0, 13, 213),
                promotions: vec![],
            }),
        );
    }
}

// ===========================================================================
// Named scenarios
// ===========================================================================

/// A click-and-collect grocery and bottle-shop order in Australia (prices
/// include GST, no shipping).
///
/// Lines in cart order, with their SKU order:
///
/// | SKU             | category | tax      | unit × qty  | subtotal | SKU order |
/// |-----------------|----------|----------|-------------|---------:|----------:|
/// | FRUIT-APPLES    | fruit    | gst-free |  4.50 × 2   |      900 | 4 |
/// | FRUIT-BANANAS   | fruit    | gst-free |  1.20 × 6   |      720 | 5 |
/// | BREAD-SOURDOUGH | bakery   | gst-free |  6.50 × 1   |      650 | 3 |
/// | SNACK-CHIPS     | snacks   | standard |  4.50 × 2   |      900 | 7 |
/// | SNACK-CHOC      | snacks   | standard |  5.99 × 1   |      599 | 8 |
/// | WINE-SHIRAZ     | wine     | standard | 24.99 × 3   |     7497 | 10 |
/// | WINE-CHARD      | wine     | standard | 18.99 × 2   |     3798 | 9 |
/// | BEER-LAGER      | beer     | standard |  3.50 × 4   |     1400 | 1 |
/// | BEER-PALE       | beer     | standard |  4.20 × 2   |      840 | 2 |
/// | MEAL-PARMA      | meals    | standard | 26.50 × 1   |     2650 | 6 |
///
/// Subtotal 900 + 720 + 650 + 900 + 599 + 7497 + 3798 + 1400 + 840 + 2650 = 19954.
///
/// 1. "wine-5" (priority 1): 5 wines (3 + 2) ≥ 5, so 5% off wine.
///    5% of 3798 + 7497 = 11295 is 564.75 → 565, spread in SKU order:
///    - WINE-CHARD  565 × 3798/11295 = 2145870/11295 = 189 r11115
///    - WINE-SHIRAZ 565 × 7497/11295 = 4235805/11295 = 375 r180
///
///    floors 564; the cent left goes to CHARD: **190 + 375 = 565**.
///    Left: CHARD 3608, SHIRAZ 7122.
/// 2. "beer-6-snacks-20" (priority 2): 6 beers (4 + 2) ≥ 6, so 20% off snacks.
///    20% of 900 + 599 = 1499 is 299.8 → 300, spread:
///    - SNACK-CHIPS 300 × 900/1499 = 270000/1499 = 180 r180
///    - SNACK-CHOC  300 × 599/1499 = 179700/1499 = 119 r1319
///
///    floors 299; the cent left goes to CHOC: **180 + 120 = 300**.
///    Left: CHIPS 720, CHOC 479.
/// 3. "cart-100-10" (priority 3): the subtotal before discounts, 19954, is
///    at least 10000, so 10% off the cart as the first two left it:
///    19954 − 565 − 300 = 19089, 10% = 1908.9 → 1909, spread by what is left:
///
///    | SKU             | left | 1909 × left / 19089          | floor r remainder |
///    |-----------------|-----:|------------------------------|------------------:|
///    | BEER-LAGER      | 1400 |  2672600 / 19089             | 140 r140   |
///    | BEER-PALE       |  840 |  1603560 / 19089             |  84 r84    |
///    | BREAD-SOURDOUGH |  650 |  1240850 / 19089             |  65 r65    |
///    | FRUIT-APPLES    |  900 |  1718100 / 19089             |  90 r90    |
///    | FRUIT-BANANAS   |  720 |  1374480 / 19089             |  72 r72    |
///    | MEAL-PARMA      | 2650 |  5058850 / 19089             | 265 r265   |
///    | SNACK-CHIPS     |  720 |  1374480 / 19089             |  72 r72    |
///    | SNACK-CHOC      |  479 |   914411 / 19089             |  47 r17228 |
///    | WINE-CHARD      | 3608 |  6887672 / 19089             | 360 r15632 |
///    | WINE-SHIRAZ     | 7122 | 13595898 / 19089             | 712 r4530  |
///
///    floors 1907; the 2 cents left go to the largest remainders, CHOC and
///    CHARD: 140, 84, 65, 90, 72, 265, 72, **48**, **361**, 712 = 1909.
///
/// What each line comes to, and its GST (included: amount/11, half-up):
///
/// | SKU             | subtotal − discounts      | pays | GST |
/// |-----------------|---------------------------|-----:|----:|
/// | FRUIT-APPLES    | 900 − 90                  |  810 | 0 (GST-free) |
/// | FRUIT-BANANAS   | 720 − 72                  |  648 | 0 (GST-free) |
/// | BREAD-SOURDOUGH | 650 − 65                  |  585 | 0 (GST-free) |
/// | SNACK-CHIPS     | 900 − 180 − 72            |  648 | 648/11 = 58.91 → 59 |
/// | SNACK-CHOC      | 599 − 120 − 48            |  431 | 431/11 = 39.18 → 39 |
/// | WINE-SHIRAZ     | 7497 − 375 − 712          | 6410 | 6410/11 = 582.73 → 583 |
/// | WINE-CHARD      | 3798 − 190 − 361          | 3247 | 3247/11 = 295.18 → 295 |
/// | BEER-LAGER      | 1400 − 140                | 1260 | 1260/11 = 114.55 → 115 |
/// | BEER-PALE       | 840 − 84                  |  756 | 756/11 = 68.73 → 69 |
/// | MEAL-PARMA      | 2650 − 265                | 2385 | 2385/11 = 216.82 → 217 |
///
/// GST 59 + 39 + 583 + 295 + 115 + 69 + 217 = 1377 on 648 + 431 + 6410 +
/// 3247 + 1260 + 756 + 2385 = 15137; GST-free 810 + 648 + 585 = 2043.
/// Discounts 565 + 300 + 1909 = 2774; the buyer pays 19954 − 2774 = 17180,
/// GST included.
#[test]
fn click_and_collect_basket() {
    let wine = || category("wine");
    let input = au()
        .line("FRUIT-APPLES", "fruit", "gst-free", 450, 2)
        .line("FRUIT-BANANAS", "fruit", "gst-free", 120, 6)
        .line("BREAD-SOURDOUGH", "bakery", "gst-free", 650, 1)
        .line("SNACK-CHIPS", "snacks", "standard", 450, 2)
        .line("SNACK-CHOC", "snacks", "standard", 599, 1)
        .line("WINE-SHIRAZ", "wine", "standard", 2499, 3)
        .line("WINE-CHARD", "wine", "standard", 1899, 2)
        .line("BEER-LAGER", "beer", "standard", 350, 4)
        .line("BEER-PALE", "beer", "standard", 420, 2)
        .line("MEAL-PARMA", "meals", "standard", 2650, 1)
        // Added out of priority order: evaluation sorts them.
        .promo(PromotionSpec {
            name: "Spend $100, get 10% off".into(),
            ..spec(
                "cart-100-10",
                3,
                vec![min_subtotal(
                    aud(10_000),
                    DiscountBasis::BeforeDiscounts,
                    TaxBasis::AsPriced,
                )],
                percent_off_cart(10),
            )
        })
        .promo(PromotionSpec {
            name: "5% off wine when you buy 5".into(),
            ..spec(
                "wine-5",
                1,
                vec![min_quantity(wine(), 5)],
                percent_off(wine(), 5),
            )
        })
        .promo(PromotionSpec {
            name: "Buy 6 beers, 20% off snacks".into(),
            ..spec(
                "beer-6-snacks-20",
                2,
                vec![min_quantity(category("beer"), 6)],
                percent_off(category("snacks"), 20),
            )
        });
    check(
        input,
        Expected::Priced(Priced {
            case: "click and collect basket",
            lines: vec![
                line("FRUIT-APPLES", 900, &[("cart-100-10", 90)], 0, 810),
                line("FRUIT-BANANAS", 720, &[("cart-100-10", 72)], 0, 648),
                line("BREAD-SOURDOUGH", 650, &[("cart-100-10", 65)], 0, 585),
                line(
                    "SNACK-CHIPS",
                    900,
                    &[("beer-6-snacks-20", 180), ("cart-100-10", 72)],
                    59,
                    648,
                ),
                line(
                    "SNACK-CHOC",
                    599,
                    &[("beer-6-snacks-20", 120), ("cart-100-10", 48)],
                    39,
                    431,
                ),
                line(
                    "WINE-SHIRAZ",
                    7497,
                    &[("wine-5", 375), ("cart-100-10", 712)],
                    583,
                    6410,
                ),
                line(
                    "WINE-CHARD",
                    3798,
                    &[("wine-5", 190), ("cart-100-10", 361)],
                    295,
                    3247,
                ),
                line("BEER-LAGER", 1400, &[("cart-100-10", 140)], 115, 1260),
                line("BEER-PALE", 840, &[("cart-100-10", 84)], 69, 756),
                line("MEAL-PARMA", 2650, &[("cart-100-10", 265)], 217, 2385),
            ],
            shipping: None,
            taxes: vec![rate("GST-free", 2043, 0), rate("GST", 15137, 1377)],
            totals: sums(19954, 2774, 0, 1377, 17180),
            promotions: vec![
                applied("wine-5", 565),
                applied("beer-6-snacks-20", 300),
                applied("cart-100-10", 1909),
            ],
        }),
    );
}

/// A Washington (6.5%, prices exclude tax) hardware order where rounding
/// per invoice and per line differ by exactly one cent.
///
/// - HAMMER 12.99: 1299 × 6.5% = 84.435
/// - GLOVES  4.99:  499 × 6.5% = 32.435
/// - MILK    3.49: exempt, no tax
///
/// Per line (half-up): 84.435 → 84 and 32.435 → 32, tax 116.
///
/// Per invoice: (1299 + 499) × 6.5% = 1798 × 6.5% = 116.87 → 117, allocated
/// back by amount: HAMMER 117 × 1299/1798 = 151983/1798 = 84 r951, GLOVES
/// 117 × 499/1798 = 58383/1798 = 32 r847; the cent left goes to HAMMER: 85
/// + 32 = 117.
///
/// Subtotal 1299 + 499 + 349 = 2147; the buyer pays 2147 + 117 = 2264 per
/// invoice, 2147 + 116 = 2263 per line.
#[test]
fn us_basket_rounding_policies() {
    let basket = |level| {
        us().line("HAMMER", "tools", "standard", 1299, 1)
            .line("GLOVES", "apparel", "standard", 499, 1)
            .line("MILK", "groceries", "exempt", 349, 1)
            .with(|i| i.tax.rounding.tax_level = level)
    };
    check(
        basket(RoundingLevel::PerInvoice),
        Expected::Priced(Priced {
            case: "US basket, per invoice",
            lines: vec![
                line("HAMMER", 1299, &[], 85, 1384),
                line("GLOVES", 499, &[], 32, 531),
                line("MILK", 349, &[], 0, 349),
            ],
            shipping: None,
            taxes: vec![rate("WA sales tax", 1798, 117), rate("Exempt", 349, 0)],
            totals: sums(2147, 0, 0, 117, 2264),
            promotions: vec![],
        }),
    );
    check(
        basket(RoundingLevel::PerLine),
        Expected::Priced(Priced {
            case: "US basket, per line",
            lines: vec![
                line("HAMMER", 1299, &[], 84, 1383),
                line("GLOVES", 499, &[], 32, 531),
                line("MILK", 349, &[], 0, 349),
            ],
            shipping: None,
            taxes: vec![rate("WA sales tax", 1798, 116), rate("Exempt", 349, 0)],
            totals: sums(2147, 0, 0, 116, 2263),
            promotions: vec![],
        }),
    );
}

/// The tax request lists the lines in SKU order, whatever order they were
/// added in, and names each: its position in the input (the cart's order)
/// and its SKU; shipping names none.
#[test]
fn tax_request_names_each_line() {
    let input = eu()
        .line("ZINFANDEL", "wine", "standard", 1_500, 1)
        .line("APPLES", "fruit", "reduced", 300, 2)
        .line("MERLOT", "wine", "standard", 2_000, 1)
        .shipping(490);
    let request = discount(&input).unwrap().tax_request();
    let named: Vec<(usize, &str, i64)> = request
        .lines
        .iter()
        .map(|amount| {
            let line = amount.line.as_ref().unwrap();
            (line.position, line.sku.as_str(), amount.amount.minor())
        })
        .collect();
    assert_eq!(
        named,
        vec![
            (1, "APPLES", 600),
            (2, "MERLOT", 2_000),
            (0, "ZINFANDEL", 1_500)
        ]
    );
    assert_eq!(
        request.shipping.as_ref().map(|s| s.line.is_none()),
        Some(true)
    );
}

#[test]
fn a_zero_quantity_threshold_is_a_mistake_only_when_inclusive() {
    let zero = |threshold| {
        Promotion::new(spec(
            "p",
            1,
            vec![Condition::MinQuantity {
                selector: category("beer"),
                quantity: 0,
                threshold,
            }],
            amount_off_cart(aud(500)),
        ))
    };
    // "At least 0" always holds: refused as a mistake.
    assert!(zero(Threshold::AtLeast).is_err());
    // "More than 0" means "any": a real condition.
    assert!(zero(Threshold::MoreThan).is_ok());
}

#[test]
fn thresholds_default_to_inclusive_in_stored_specs() {
    // Promotions stored before thresholds had a comparison read as `>=`.
    let condition: Condition = serde_json::from_value(serde_json::json!({
        "type": "min_quantity",
        "selector": {"type": "all"},
        "quantity": 3
    }))
    .unwrap();
    assert_eq!(
        condition,
        Condition::MinQuantity {
            selector: Selector::All,
            quantity: 3,
            threshold: Threshold::AtLeast,
        }
    );
    let strict = serde_json::to_value(Condition::MinQuantity {
        selector: Selector::All,
        quantity: 3,
        threshold: Threshold::MoreThan,
    })
    .unwrap();
    assert_eq!(strict["threshold"], "more_than");
}

// ===========================================================================
// Rounding conventions (TaxConfig::rounding)
// ===========================================================================

/// An untaxed US cart, so that only the discount conventions show.
fn untaxed_usd() -> PricingInput {
    PricingInput::new(Currency::USD, TaxConfig::untaxed(), at(0))
}

/// A tax-exclusive cart at one `percent` rate (category "standard"),
/// rounded per line half-up: `TaxConfig::us_sales_tax("XX", percent)` with
/// the level set.
fn flat_rate(percent: Decimal, level: RoundingLevel) -> PricingInput {
    let mut tax = TaxConfig::us_sales_tax("XX", percent);
    tax.rounding.tax_level = level;
    PricingInput::new(Currency::USD, tax, at(0))
}

/// Tax rounding modes, per line. 5% of three tax-exclusive lines:
///
/// | line | amount | exact tax | half-up | half-even | half → +∞ | down | up |
/// |------|-------:|----------:|--------:|----------:|----------:|-----:|---:|
/// | A    |     10 |      0.5  |       1 |         0 |         1 |    0 |  1 |
/// | B    |     30 |      1.5  |       2 |         2 |         2 |    1 |  2 |
/// | C    |     21 |      1.05 |       1 |         1 |         1 |    1 |  2 |
///
/// Half toward +∞ is JavaScript's `Math.round` (ECMA-262, "Math.round":
/// of two equally close integers, the one closer to +∞), which for the
/// positive amounts tax has agrees with half-up.
#[test]
fn tax_rounding_modes() {
    for (mode, taxes) in [
        (RoundingMode::HalfUp, [1, 2, 1]),
        (RoundingMode::HalfEven, [0, 2, 1]),
        (RoundingMode::HalfTowardPositiveInfinity, [1, 2, 1]),
        (RoundingMode::Down, [0, 1, 1]),
        (RoundingMode::Up, [1, 2, 2]),
    ] {
        let input = flat_rate(percent(5), RoundingLevel::PerLine)
            .line("A", "any", "standard", 10, 1)
            .line("B", "any", "standard", 30, 1)
            .line("C", "any", "standard", 21, 1)
            .with(|i| i.tax.rounding.tax_mode = mode);
        let tax: i64 = taxes.iter().sum();
        check(
            input,
            Expected::Priced(Priced {
                case: "tax rounding modes",
                lines: vec![
                    line("A", 10, &[], taxes[0], 10 + taxes[0]),
                    line("B", 30, &[], taxes[1], 30 + taxes[1]),
                    line("C", 21, &[], taxes[2], 21 + taxes[2]),
                ],
                shipping: None,
                taxes: vec![rate("XX sales tax", 61, tax)],
                totals: sums(61, 0, 0, tax, 61 + tax),
                promotions: vec![],
            }),
        );
    }
}

/// Discount rounding modes: 50% off a 5¢ line is 2.5¢, and 10% off a 21¢
/// line 2.1¢; rounded once each (one promotion per line).
///
/// | mode      | 2.5 | 2.1 |
/// |-----------|----:|----:|
/// | half-up   |   3 |   2 |
/// | half-even |   2 |   2 |
/// | half → +∞ |   3 |   2 |
/// | down      |   2 |   2 |
/// | up        |   3 |   3 |
#[test]
fn discount_rounding_modes() {
    for (mode, [a, b]) in [
        (RoundingMode::HalfUp, [3, 2]),
        (RoundingMode::HalfEven, [2, 2]),
        (RoundingMode::HalfTowardPositiveInfinity, [3, 2]),
        (RoundingMode::Down, [2, 2]),
        (RoundingMode::Up, [3, 3]),
    ] {
        let input = untaxed_usd()
            .line("A", "any", "standard", 5, 1)
            .line("B", "any", "standard", 21, 1)
            .promo(spec("half-a", 1, vec![], percent_off(sku("A"), 50)))
            .promo(spec("tenth-b", 2, vec![], percent_off(sku("B"), 10)))
            .with(|i| i.tax.rounding.discount_mode = mode);
        check(
            input,
            Expected::Priced(Priced {
                case: "discount rounding modes",
                lines: vec![
                    line("A", 5, &[("half-a", a)], 0, 5 - a),
                    line("B", 21, &[("tenth-b", b)], 0, 21 - b),
                ],
                shipping: None,
                taxes: vec![rate("No tax", 26 - a - b, 0)],
                totals: sums(26, a + b, 0, 0, 26 - a - b),
                promotions: vec![applied("half-a", a), applied("tenth-b", b)],
            }),
        );
    }
}

/// HMRC's invoice-level rule (VAT Notice 700, section 16, "Calculation of
/// VAT on invoices – rounding of amounts"): the VAT of an invoice worked
/// out on its total may be rounded down to a whole penny. Three lines at
/// 20%, prices excluding VAT: 333 + 199 + 1 = 533, VAT 106.6 → down 106
/// (half-up would give 107). Allocated back by amount: 106 × 333/533 =
/// 66.22, × 199/533 = 39.57, × 1/533 = 0.20; floors 66 + 39 + 0 = 105, the
/// penny left to the largest remainder (0.57): 66, 40, 0.
#[test]
fn hmrc_invoice_vat_rounded_down() {
    let mut tax = TaxConfig::untaxed();
    tax.region = "GB".into();
    tax.fallback = None;
    tax.rates.insert(
        TaxCategory::parse("standard").unwrap(),
        TaxRate::taxable("VAT 20%", percent(20)),
    );
    tax.rounding.tax_mode = RoundingMode::Down;
    tax.rounding.tax_level = RoundingLevel::PerInvoice;
    let input = PricingInput::new(Currency::GBP, tax, at(0))
        .line("PENS", "office", "standard", 333, 1)
        .line("PAPER", "office", "standard", 199, 1)
        .line("CLIP", "office", "standard", 1, 1);
    check(
        input,
        Expected::Priced(Priced {
            case: "HMRC invoice VAT rounded down",
            lines: vec![
                line("PENS", 333, &[], 66, 399),
                line("PAPER", 199, &[], 40, 239),
                line("CLIP", 1, &[], 0, 1),
            ],
            shipping: None,
            taxes: vec![rate("VAT 20%", 533, 106)],
            totals: sums(533, 0, 0, 106, 639),
            promotions: vec![],
        }),
    );
}

/// Tax per unit, per line and per invoice: Adobe Commerce's "Tax
/// Calculation Method Based On" setting (Unit Price, Row Total, Total). At
/// 6.5%, prices excluding tax:
///
/// - CUP 3 × 99: per unit 99 × 6.5% = 6.435 → 6, × 3 = **18**; per line
///   297 × 6.5% = 19.305 → **19**.
/// - MUG 3 × 100 with 10¢ off the line: 290 over 3 units is 96, 97, 97;
///   per unit 6.24 → 6, 6.305 → 6, 6.305 → 6 = **18**; per line 290 × 6.5%
///   = 18.85 → **19**.
/// - Per invoice: (297 + 290) × 6.5% = 38.155 → 38, allocated 38 × 297/587
///   = 19.23 and 38 × 290/587 = 18.77; floors 19 + 18, the cent left to
///   MUG (0.77): **19, 19**.
#[test]
fn tax_per_unit_line_and_invoice() {
    let mug_off = amount_off(sku("MUG"), usd(10), AmountPer::Selection);
    for (level, cup, mug) in [
        (RoundingLevel::PerUnit, 18, 18),
        (RoundingLevel::PerLine, 19, 19),
        (RoundingLevel::PerInvoice, 19, 19),
    ] {
        let input = flat_rate(Decimal::new(65, 1), level)
            .line("CUP", "kitchen", "standard", 99, 3)
            .line("MUG", "kitchen", "standard", 100, 3)
            .promo(spec("mug-10", 1, vec![], mug_off.clone()));
        check(
            input,
            Expected::Priced(Priced {
                case: "tax per unit, line, invoice",
                lines: vec![
                    line("CUP", 297, &[], cup, 297 + cup),
                    line("MUG", 300, &[("mug-10", 10)], mug, 290 + mug),
                ],
                shipping: None,
                taxes: vec![rate("XX sales tax", 587, cup + mug)],
                totals: sums(597, 10, 0, cup + mug, 587 + cup + mug),
                promotions: vec![applied("mug-10", 10)],
            }),
        );
    }
}

/// A percentage rounded per promotion or per line. Solidus's percent
/// calculator rounds each line's discount on its own (solidus_promotions,
/// `calculators/percent_spec.rb`: 15% of 10 × 9.99 is 14.985 → 14.99).
/// Two such lines, 15% off the cart:
///
/// - per line: 14.99 + 14.99 = **29.98**;
/// - per promotion: 15% of 199.80 = 29.97 exactly, split 1498.5 each; the
///   tied cent to the first in SKU order: A 1499, B 1498.
#[test]
fn percent_discount_per_promotion_or_per_line() {
    for (level, a, b) in [
        (DiscountLevel::PerLine, 1499, 1499),
        (DiscountLevel::PerPromotion, 1499, 1498),
    ] {
        let input = untaxed_usd()
            .line("A", "any", "standard", 999, 10)
            .line("B", "any", "standard", 999, 10)
            .promo(spec("cart-15", 1, vec![], percent_off_cart(15)))
            .with(|i| i.tax.rounding.discount_level = level);
        check(
            input,
            Expected::Priced(Priced {
                case: "percent per promotion or line",
                lines: vec![
                    line("A", 9990, &[("cart-15", a)], 0, 9990 - a),
                    line("B", 9990, &[("cart-15", b)], 0, 9990 - b),
                ],
                shipping: None,
                taxes: vec![rate("No tax", 19980 - a - b, 0)],
                totals: sums(19980, a + b, 0, 0, 19980 - a - b),
                promotions: vec![applied("cart-15", a + b)],
            }),
        );
    }
}

/// Where the cents of a split go, and in which order. $3.00 off a cart of
/// three lines added in the order Z (43.00), M (14.00), A (23.00): Sylius's
/// own case (`ProportionalIntegerDistributorSpec`: 300 over 4300, 1400,
/// 2300 is [162, 52, 86], in cart order). Exact shares 161.25, 52.5, 86.25.
///
/// | leftover          | order | Z   | M  | A  | why |
/// |-------------------|-------|----:|---:|---:|-----|
/// | largest remainder | SKU   | 161 | 53 | 86 | floors 161 + 52 + 86 = 299; the cent to the largest fraction (M, 0.5) |
/// | first lines       | cart  | 162 | 52 | 86 | nearest (halves down) 161, 52, 86 = 299; the cent to the first in cart order (Z): Sylius |
/// | first lines       | SKU   | 161 | 52 | 87 | the same, to the first in SKU order (A) |
/// | last line         | cart  | 161 | 52 | 87 | floors 299; the last added (A) takes the rest |
/// | last line         | SKU   | 162 | 52 | 86 | the last in SKU order (Z) takes the rest |
#[test]
fn leftover_cents_and_their_order() {
    for (leftover, order, [z, m, a]) in [
        (Leftover::LargestRemainder, LineOrder::Sku, [161, 53, 86]),
        (Leftover::FirstLines, LineOrder::Cart, [162, 52, 86]),
        (Leftover::FirstLines, LineOrder::Sku, [161, 52, 87]),
        (Leftover::LastLine, LineOrder::Cart, [161, 52, 87]),
        (Leftover::LastLine, LineOrder::Sku, [162, 52, 86]),
    ] {
        let input = untaxed_usd()
            .line("Z", "any", "standard", 4300, 1)
            .line("M", "any", "standard", 1400, 1)
            .line("A", "any", "standard", 2300, 1)
            .promo(spec("cart-3", 1, vec![], amount_off_cart(usd(300))))
            .with(|i| {
                i.tax.rounding.split.leftover = leftover;
                i.tax.rounding.split.order = order;
            });
        check(
            input,
            Expected::Priced(Priced {
                case: "leftover cents",
                lines: vec![
                    line("Z", 4300, &[("cart-3", z)], 0, 4300 - z),
                    line("M", 1400, &[("cart-3", m)], 0, 1400 - m),
                    line("A", 2300, &[("cart-3", a)], 0, 2300 - a),
                ],
                shipping: None,
                taxes: vec![rate("No tax", 7700, 0)],
                totals: sums(8000, 300, 0, 0, 7700),
                promotions: vec![applied("cart-3", 300)],
            }),
        );
    }
}

/// The weights of a cart discount when lines carry different rates.
///
/// German VAT (prices include it, per invoice): BOOK 107.00 at 7% and LAMP
/// 119.00 at 19%, both 100.00 net; €10.00 off the cart.
///
/// - As priced (gross here): 1000 × 10700/22600 = 473.45, 1000 ×
///   11900/22600 = 526.55; floors 473 + 526, the cent to LAMP: 473, 527.
///   VAT of 10227 at 7%: 10227 × 7/107 = 669.06 → 669; of 11373 at 19%:
///   11373 × 19/119 = 1815.86 → 1816.
/// - Net: 10000 and 10000, so 500 each. VAT of 10200: 667.29 → 667; of
///   11400: 1820.17 → 1820.
///
/// US sales tax (prices exclude it, 6.5% per invoice): TOOL 100.00 taxed
/// and MILK 100.00 exempt; $10.00 off the cart.
///
/// - As priced (net here): 500 each; tax 9500 × 6.5% = 617.5 → 618.
/// - Gross: 10650 and 10000: 1000 × 10650/20650 = 515.74, 484.26; floors
///   515 + 484, the cent to TOOL: 516, 484; tax 9484 × 6.5% = 616.46 → 616.
#[test]
fn split_weights_net_or_gross() {
    for (weights, book, lamp, book_vat, lamp_vat) in [
        (SplitWeights::AsPriced, 473, 527, 669, 1816),
        (SplitWeights::Gross, 473, 527, 669, 1816),
        (SplitWeights::Net, 500, 500, 667, 1820),
    ] {
        let input = eu()
            .line("BOOK", "books", "reduced", 10700, 1)
            .line("LAMP", "home", "standard", 11900, 1)
            .promo(spec(
                "cart-10",
                1,
                vec![],
                amount_off_cart(Money::new(1000, Currency::EUR)),
            ))
            .with(|i| i.tax.rounding.split.weights = weights);
        check(
            input,
            Expected::Priced(Priced {
                case: "EU split weights",
                lines: vec![
                    line("BOOK", 10700, &[("cart-10", book)], book_vat, 10700 - book),
                    line("LAMP", 11900, &[("cart-10", lamp)], lamp_vat, 11900 - lamp),
                ],
                shipping: None,
                taxes: vec![
                    rate("VAT 7%", 10700 - book, book_vat),
                    rate("VAT 19%", 11900 - lamp, lamp_vat),
                ],
                totals: sums(22600, 1000, 0, book_vat + lamp_vat, 21600),
                promotions: vec![applied("cart-10", 1000)],
            }),
        );
    }
    for (weights, tool, milk, tax) in [
        (SplitWeights::AsPriced, 500, 500, 618),
        (SplitWeights::Net, 500, 500, 618),
        (SplitWeights::Gross, 516, 484, 616),
    ] {
        let input = us()
            .line("TOOL", "tools", "standard", 10000, 1)
            .line("MILK", "groceries", "exempt", 10000, 1)
            .promo(spec("cart-10", 1, vec![], amount_off_cart(usd(1000))))
            .with(|i| i.tax.rounding.split.weights = weights);
        check(
            input,
            Expected::Priced(Priced {
                case: "US split weights",
                lines: vec![
                    line("TOOL", 10000, &[("cart-10", tool)], tax, 10000 - tool + tax),
                    line("MILK", 10000, &[("cart-10", milk)], 0, 10000 - milk),
                ],
                shipping: None,
                taxes: vec![
                    rate("WA sales tax", 10000 - tool, tax),
                    rate("Exempt", 10000 - milk, 0),
                ],
                totals: sums(20000, 1000, 0, tax, 19000 + tax),
                promotions: vec![applied("cart-10", 1000)],
            }),
        );
    }
}

/// Shipping taxed at its own category's rate, at the lines' rates, or not
/// at all. HMRC (VAT Notice 700/24, "Postage and delivery charges") has a
/// delivery charge for goods at different rates apportioned over them.
///
/// Australia (GST 10% included, per line): MEAT 60.00 taxable, FRUIT 40.00
/// GST-free, shipping 10.00.
///
/// - Its own category (standard): 1000/11 = 90.91 → 91.
/// - Apportioned: 600 at GST (600/11 = 54.55 → 55) and 400 GST-free (0):
///   55; reported at the weighted average rate, 6%.
/// - Not taxed: 0.
///
/// The lines: MEAT 6000/11 = 545.45 → 545, FRUIT 0.
#[test]
fn shipping_tax_own_rate_apportioned_or_none() {
    for (shipping_tax, tax, gst_taxable) in [
        (
            ShippingTax::Taxable {
                category: TaxCategory::parse("standard").unwrap(),
            },
            Some(91),
            7000,
        ),
        (ShippingTax::Apportioned, Some(55), 6600),
        (ShippingTax::NotTaxable, None, 6000),
    ] {
        let input = au()
            .line("MEAT", "butcher", "standard", 6000, 1)
            .line("FRUIT", "fruit", "gst-free", 4000, 1)
            .shipping(1000)
            .with(|i| i.tax.shipping = shipping_tax.clone());
        let gst = 545 + tax.unwrap_or(0);
        let mut taxes = vec![rate("GST", gst_taxable, gst)];
        taxes.push(rate(
            "GST-free",
            if shipping_tax == ShippingTax::Apportioned {
                4400
            } else {
                4000
            },
            0,
        ));
        check(
            input.clone(),
            Expected::Priced(Priced {
                case: "shipping tax",
                lines: vec![
                    line("MEAT", 6000, &[], 545, 6000),
                    line("FRUIT", 4000, &[], 0, 4000),
                ],
                shipping: Some(Ship {
                    amount: 1000,
                    discounts: vec![],
                    tax,
                    total: 1000,
                }),
                taxes,
                totals: sums(10000, 0, 1000, gst, 11000),
                promotions: vec![],
            }),
        );
        if shipping_tax == ShippingTax::Apportioned {
            let priced = price(&input).unwrap();
            let shipping = priced.shipping.unwrap().tax.unwrap();
            // The rates in order of first appearance, SKU order (FRUIT, MEAT).
            assert_eq!(shipping.label, "GST-free + GST");
            assert_eq!(shipping.percent, percent(6));
        }
    }
}

// ===========================================================================
// Promotion vocabulary: selectors, nested conditions, exclusivity groups
// ===========================================================================

fn groups(names: &[&str]) -> BTreeSet<CustomerGroup> {
    names
        .iter()
        .map(|g| CustomerGroup::parse(*g).unwrap())
        .collect()
}

/// Selectors by a set of SKUs and by a range of unit prices (bounds
/// inclusive). A 5.00, B 15.00, C 25.00, one each, untaxed.
///
/// 1. "mid" (priority 1): 10% off units priced 15.00 to 25.00, both bounds
///    included: B and C, 10% of 4000 = 400, spread 1500 : 2500 = 150, 250.
/// 2. "set" (priority 2): 1.00 off each unit of A or C: 100 each.
///
/// Discounts 150 + 250 + 200 = 600; pays 4500 − 600 = 3900.
#[test]
fn selectors_by_sku_set_and_price_range() {
    let range = Selector::PriceRange {
        min: Some(usd(1500)),
        max: Some(usd(2500)),
    };
    let set = Selector::Skus {
        skus: ["A", "C"].iter().map(|s| Sku::parse(*s).unwrap()).collect(),
    };
    let input = untaxed_usd()
        .line("A", "any", "standard", 500, 1)
        .line("B", "any", "standard", 1500, 1)
        .line("C", "any", "standard", 2500, 1)
        .promo(spec("mid", 1, vec![], percent_off(range, 10)))
        .promo(spec(
            "set",
            2,
            vec![],
            amount_off(set, usd(100), AmountPer::Unit),
        ));
    check(
        input,
        Expected::Priced(Priced {
            case: "selectors by SKU set and price range",
            lines: vec![
                line("A", 500, &[("set", 100)], 0, 400),
                line("B", 1500, &[("mid", 150)], 0, 1350),
                line("C", 2500, &[("mid", 250), ("set", 100)], 0, 2150),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 3900, 0)],
            totals: sums(4500, 600, 0, 0, 3900),
            promotions: vec![applied("mid", 400), applied("set", 200)],
        }),
    );
}

/// A per-line quantity: "3 of the same shirt", 10% off apparel. Two shirts
/// of each of two sizes make 4 apparel units but at most 2 on one line: not
/// met (a cart-wide `min_quantity` of 3 would be). With 3 of size M: 10% of
/// 2000 + 3000 = 500, spread 200, 300.
#[test]
fn per_line_quantity_condition() {
    let three_same = || Condition::LineQuantity {
        selector: category("apparel"),
        quantity: 3,
        threshold: Threshold::AtLeast,
    };
    let cart = |m| {
        untaxed_usd()
            .line("SHIRT-S", "apparel", "standard", 1000, 2)
            .line("SHIRT-M", "apparel", "standard", 1000, m)
            .promo(spec(
                "three-same",
                1,
                vec![three_same()],
                percent_off(category("apparel"), 10),
            ))
    };
    check(
        cart(2),
        Expected::Priced(Priced {
            case: "per-line quantity not met",
            lines: vec![
                line("SHIRT-S", 2000, &[], 0, 2000),
                line("SHIRT-M", 2000, &[], 0, 2000),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 4000, 0)],
            totals: sums(4000, 0, 0, 0, 4000),
            promotions: vec![not_applied(
                "three-same",
                unmet(Measured::LineQuantity {
                    required: 3,
                    found: 2,
                }),
            )],
        }),
    );
    check(
        cart(3),
        Expected::Priced(Priced {
            case: "per-line quantity met",
            lines: vec![
                line("SHIRT-S", 2000, &[("three-same", 200)], 0, 1800),
                line("SHIRT-M", 3000, &[("three-same", 300)], 0, 2700),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 4500, 0)],
            totals: sums(5000, 500, 0, 0, 4500),
            promotions: vec![applied("three-same", 500)],
        }),
    );
}

/// A customer-group condition over a set of groups, and conditions
/// combined with any/all, nested. One line X 10.00, untaxed.
///
/// - "trade": 20% off for staff or wholesale: a wholesale buyer gets 200; a
///   retail one is in none of the groups.
/// - "either": 5.00 off with the code SAVE5 or for a VIP: neither gives the
///   reasons of both; the code alone, or being a VIP alone, is enough.
/// - "welcome": 10% off for a first order of at least 50.00, or with the
///   code WELCOME: a first order of 10.00 meets neither (the all-of reports
///   its first failing part, the subtotal).
#[test]
fn customer_group_sets_and_nested_any_all() {
    let x = || untaxed_usd().line("X", "any", "standard", 1000, 1);
    let trade = || {
        spec(
            "trade",
            1,
            vec![Condition::CustomerGroups {
                groups: groups(&["staff", "wholesale"]),
            }],
            percent_off_cart(20),
        )
    };
    let priced = |case, off: i64, report| {
        Expected::Priced(Priced {
            case,
            lines: vec![line(
                "X",
                1000,
                &if off > 0 {
                    vec![(report_id(&report), off)]
                } else {
                    vec![]
                },
                0,
                1000 - off,
            )],
            shipping: None,
            taxes: vec![rate("No tax", 1000 - off, 0)],
            totals: sums(1000, off, 0, 0, 1000 - off),
            promotions: vec![report],
        })
    };
    check(
        x().promo(trade())
            .with(|i| i.customer = customer(None, &["wholesale"], false)),
        priced("a group of the set", 200, applied("trade", 200)),
    );
    check(
        x().promo(trade())
            .with(|i| i.customer = customer(None, &["retail"], false)),
        priced(
            "no group of the set",
            0,
            not_applied(
                "trade",
                unmet(Measured::CustomerGroups {
                    required: groups(&["staff", "wholesale"]),
                }),
            ),
        ),
    );

    let either = || {
        spec(
            "either",
            1,
            vec![Condition::AnyOf {
                conditions: vec![
                    coupon("SAVE5"),
                    Condition::CustomerGroup {
                        group: CustomerGroup::parse("vip").unwrap(),
                    },
                ],
            }],
            amount_off_cart(usd(500)),
        )
    };
    check(
        x().promo(either()),
        priced(
            "any of: neither",
            0,
            not_applied(
                "either",
                unmet(Measured::NoneOf {
                    unmet: vec![
                        NotApplied::CodeMissing {
                            code: CouponCode::parse("SAVE5").unwrap(),
                        },
                        unmet(Measured::CustomerGroup {
                            required: CustomerGroup::parse("vip").unwrap(),
                        }),
                    ],
                }),
            ),
        ),
    );
    check(
        x().promo(either()).code("save5"),
        priced("any of: the code", 500, applied("either", 500)),
    );
    check(
        x().promo(either())
            .with(|i| i.customer = customer(None, &["VIP"], false)),
        priced("any of: the group", 500, applied("either", 500)),
    );

    let welcome = || {
        spec(
            "welcome",
            1,
            vec![Condition::AnyOf {
                conditions: vec![
                    Condition::AllOf {
                        conditions: vec![
                            Condition::FirstOrder,
                            min_subtotal(
                                usd(5000),
                                DiscountBasis::BeforeDiscounts,
                                TaxBasis::AsPriced,
                            ),
                        ],
                    },
                    coupon("WELCOME"),
                ],
            }],
            percent_off_cart(10),
        )
    };
    check(
        x().promo(welcome())
            .with(|i| i.customer = customer(None, &[], true)),
        priced(
            "nested all of inside any of",
            0,
            not_applied(
                "welcome",
                unmet(Measured::NoneOf {
                    unmet: vec![
                        unmet(Measured::Subtotal {
                            required: usd(5000),
                            found: usd(1000),
                        }),
                        NotApplied::CodeMissing {
                            code: CouponCode::parse("WELCOME").unwrap(),
                        },
                    ],
                }),
            ),
        ),
    );
    check(
        x().promo(welcome()).code("WELCOME"),
        priced("nested: the code", 100, applied("welcome", 100)),
    );
}

/// The promotion id of a report, for a line's discount.
fn report_id(report: &Report<'static>) -> &'static str {
    report.promotion
}

/// Exclusivity within a named group. X 100.00, untaxed:
///
/// - "loyal-a" (priority 1, exclusive, group "Loyalty"): 10% off, 1000;
/// - "loyal-b" (priority 2, group "loyalty"): 1.00 off: excluded by loyal-a;
/// - "sale" (priority 3, no group): 2.00 off: applies, 200.
///
/// Without the group, loyal-a excludes both.
#[test]
fn exclusivity_within_a_named_group() {
    let grouped = |mut spec: PromotionSpec, group: &str| {
        spec.group = Some(PromotionGroup::parse(group).unwrap());
        spec
    };
    let cart = |group_a: bool| {
        let mut a = spec("loyal-a", 1, vec![], percent_off_cart(10));
        a.exclusive = true;
        if group_a {
            a = grouped(a, "Loyalty");
        }
        untaxed_usd()
            .line("X", "any", "standard", 10_000, 1)
            .promo(a)
            .promo(grouped(
                spec("loyal-b", 2, vec![], amount_off_cart(usd(100))),
                "loyalty",
            ))
            .promo(spec("sale", 3, vec![], amount_off_cart(usd(200))))
    };
    let excluded = NotApplied::ExcludedBy {
        promotion: PromotionId::parse("loyal-a").unwrap(),
    };
    check(
        cart(true),
        Expected::Priced(Priced {
            case: "exclusive within its group",
            lines: vec![line(
                "X",
                10_000,
                &[("loyal-a", 1000), ("sale", 200)],
                0,
                8800,
            )],
            shipping: None,
            taxes: vec![rate("No tax", 8800, 0)],
            totals: sums(10_000, 1200, 0, 0, 8800),
            promotions: vec![
                applied("loyal-a", 1000),
                not_applied("loyal-b", excluded.clone()),
                applied("sale", 200),
            ],
        }),
    );
    check(
        cart(false),
        Expected::Priced(Priced {
            case: "exclusive against everything",
            lines: vec![line("X", 10_000, &[("loyal-a", 1000)], 0, 9000)],
            shipping: None,
            taxes: vec![rate("No tax", 9000, 0)],
            totals: sums(10_000, 1000, 0, 0, 9000),
            promotions: vec![
                applied("loyal-a", 1000),
                not_applied("loyal-b", excluded.clone()),
                not_applied("sale", excluded),
            ],
        }),
    );
}

/// Validation of the new vocabulary: empty sets, a price range without a
/// bound or upside down, and nesting deeper than 8 are refused.
#[test]
fn new_vocabulary_is_validated() {
    let refused = |conditions: Vec<Condition>, action: Action| {
        Promotion::new(spec("bad", 1, conditions, action)).is_err()
    };
    let ten = || percent_off_cart(10);
    assert!(refused(
        vec![Condition::AnyOf { conditions: vec![] }],
        ten()
    ));
    assert!(refused(
        vec![Condition::AllOf { conditions: vec![] }],
        ten()
    ));
    assert!(refused(
        vec![Condition::CustomerGroups {
            groups: BTreeSet::new()
        }],
        ten()
    ));
    assert!(refused(
        vec![],
        percent_off(
            Selector::Skus {
                skus: BTreeSet::new()
            },
            10
        )
    ));
    assert!(refused(
        vec![],
        percent_off(
            Selector::PriceRange {
                min: None,
                max: None
            },
            10
        )
    ));
    assert!(refused(
        vec![],
        percent_off(
            Selector::PriceRange {
                min: Some(usd(500)),
                max: Some(usd(100)),
            },
            10
        )
    ));
    // A price range in another currency than the promotion's amount.
    assert!(refused(
        vec![],
        amount_off(
            Selector::PriceRange {
                min: Some(aud(100)),
                max: None,
            },
            usd(100),
            AmountPer::Unit
        )
    ));
    let mut deep = Condition::FirstOrder;
    for _ in 0..9 {
        deep = Condition::AnyOf {
            conditions: vec![deep],
        };
    }
    assert!(refused(vec![deep.clone()], ten()));
    if let Condition::AnyOf { conditions } = deep {
        assert!(!refused(conditions, ten()), "8 deep is fine");
    }
}

/// The cheapest N units, with nothing to buy. Untaxed: A 3.00 × 2, B 5.00,
/// C 2.00.
///
/// - "two-half": the 2 cheapest units at 50% off: C (2.00) and one A
///   (3.00): exact 100 and 150 (A's line of 600, one of its two units, at
///   50%), 250 in all, no rounding.
/// - "priciest-2": 1.00 off each of the 2 most expensive: B and one A,
///   100 each.
/// - "ten-units": 10% off the cheapest 10: only 4 units match, all of them:
///   10% of 600 + 500 + 200 = 130, spread 60, 50, 20.
#[test]
fn cheapest_units_without_a_purchase() {
    let cart = || {
        untaxed_usd()
            .line("A", "any", "standard", 300, 2)
            .line("B", "any", "standard", 500, 1)
            .line("C", "any", "standard", 200, 1)
    };
    let cheapest = |count, off, order| Action::CheapestUnits {
        selector: Selector::All,
        count,
        off,
        order,
    };
    check(
        cart().promo(spec(
            "two-half",
            1,
            vec![],
            cheapest(
                2,
                UnitsOff::Percent {
                    percent: percent(50),
                },
                DiscountOrder::CheapestFirst,
            ),
        )),
        Expected::Priced(Priced {
            case: "cheapest 2 at half price",
            lines: vec![
                line("A", 600, &[("two-half", 150)], 0, 450),
                line("B", 500, &[], 0, 500),
                line("C", 200, &[("two-half", 100)], 0, 100),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 1050, 0)],
            totals: sums(1300, 250, 0, 0, 1050),
            promotions: vec![applied("two-half", 250)],
        }),
    );
    check(
        cart().promo(spec(
            "priciest-2",
            1,
            vec![],
            cheapest(
                2,
                UnitsOff::Amount { amount: usd(100) },
                DiscountOrder::MostExpensiveFirst,
            ),
        )),
        Expected::Priced(Priced {
            case: "1.00 off the 2 most expensive",
            lines: vec![
                line("A", 600, &[("priciest-2", 100)], 0, 500),
                line("B", 500, &[("priciest-2", 100)], 0, 400),
                line("C", 200, &[], 0, 200),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 1100, 0)],
            totals: sums(1300, 200, 0, 0, 1100),
            promotions: vec![applied("priciest-2", 200)],
        }),
    );
    check(
        cart().promo(spec(
            "ten-units",
            1,
            vec![],
            cheapest(
                10,
                UnitsOff::Percent {
                    percent: percent(10),
                },
                DiscountOrder::CheapestFirst,
            ),
        )),
        Expected::Priced(Priced {
            case: "fewer units than the count",
            lines: vec![
                line("A", 600, &[("ten-units", 60)], 0, 540),
                line("B", 500, &[("ten-units", 50)], 0, 450),
                line("C", 200, &[("ten-units", 20)], 0, 180),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 1170, 0)],
            totals: sums(1300, 130, 0, 0, 1170),
            promotions: vec![applied("ten-units", 130)],
        }),
    );
}

/// Tiered promotions: spend 50.00 get 5.00 off, spend 100.00 get 15.00
/// off; the best tier reached applies. X alone, untaxed.
///
/// | subtotal | tier            | off  |
/// |---------:|-----------------|-----:|
/// |  40.00   | none: 50.00 asked, 40.00 found | 0 |
/// |  50.00   | the first (inclusive) | 500 |
/// |  99.99   | the first       |  500 |
/// | 120.00   | the second      | 1500 |
///
/// And by percent: 5% from 50.00, 10% from 100.00: 120.00 → 1200.
#[test]
fn tiered_promotion_gives_the_best_tier() {
    let amount_tiers = || Action::Tiered {
        selector: Selector::All,
        tiers: vec![
            Tier {
                threshold: usd(5000),
                reward: TierReward::AmountOff { amount: usd(500) },
            },
            Tier {
                threshold: usd(10_000),
                reward: TierReward::AmountOff { amount: usd(1500) },
            },
        ],
    };
    for (subtotal, off) in [(5000, 500), (9999, 500), (12_000, 1500)] {
        check(
            untaxed_usd()
                .line("X", "any", "standard", subtotal, 1)
                .promo(spec("tiers", 1, vec![], amount_tiers())),
            Expected::Priced(Priced {
                case: "tiered amount",
                lines: vec![line("X", subtotal, &[("tiers", off)], 0, subtotal - off)],
                shipping: None,
                taxes: vec![rate("No tax", subtotal - off, 0)],
                totals: sums(subtotal, off, 0, 0, subtotal - off),
                promotions: vec![applied("tiers", off)],
            }),
        );
    }
    check(
        untaxed_usd()
            .line("X", "any", "standard", 4000, 1)
            .promo(spec("tiers", 1, vec![], amount_tiers())),
        Expected::Priced(Priced {
            case: "no tier reached",
            lines: vec![line("X", 4000, &[], 0, 4000)],
            shipping: None,
            taxes: vec![rate("No tax", 4000, 0)],
            totals: sums(4000, 0, 0, 0, 4000),
            promotions: vec![not_applied(
                "tiers",
                unmet(Measured::Subtotal {
                    required: usd(5000),
                    found: usd(4000),
                }),
            )],
        }),
    );
    let percent_tiers = Action::Tiered {
        selector: Selector::All,
        tiers: vec![
            Tier {
                threshold: usd(5000),
                reward: TierReward::PercentOff {
                    percent: percent(5),
                },
            },
            Tier {
                threshold: usd(10_000),
                reward: TierReward::PercentOff {
                    percent: percent(10),
                },
            },
        ],
    };
    check(
        untaxed_usd()
            .line("X", "any", "standard", 12_000, 1)
            .promo(spec("tiers", 1, vec![], percent_tiers)),
        Expected::Priced(Priced {
            case: "tiered percent",
            lines: vec![line("X", 12_000, &[("tiers", 1200)], 0, 10_800)],
            shipping: None,
            taxes: vec![rate("No tax", 10_800, 0)],
            totals: sums(12_000, 1200, 0, 0, 10_800),
            promotions: vec![applied("tiers", 1200)],
        }),
    );
    // Tiers out of order are refused.
    let mut backwards = amount_tiers();
    if let Action::Tiered { tiers, .. } = &mut backwards {
        tiers.reverse();
    }
    assert!(Promotion::new(spec("tiers", 1, vec![], backwards)).is_err());
}

/// What a merchant and an accountant read off a priced line: the unit net
/// price, and each discount both as entered and with (or without) tax.
///
/// - US, 6.5% added: TOOL 3 × 10.00 with 1.00 off. The discount is 100
///   excluding tax (as entered) and 100 + 6.5 → 107 including it. The line's
///   net is 2900: 966.67 a unit → 967.
/// - Australia, GST included: WINE 2 × 22.00 with 10% off: 440 including
///   GST (as entered), 440 − 440/11 = 400 excluding it. The line comes to
///   3960 with 360 of GST: net 3600, 1800 a unit.
#[test]
fn unit_net_price_and_discounts_on_both_bases() {
    let us_cart = us().line("TOOL", "tools", "standard", 1000, 3).promo(spec(
        "tool-1",
        1,
        vec![],
        amount_off(sku("TOOL"), usd(100), AmountPer::Selection),
    ));
    let tool = &price(&us_cart).unwrap().lines[0];
    assert_eq!(tool.discounts[0].amount, usd(100));
    assert_eq!(tool.discounts[0].excluding_tax, usd(100));
    assert_eq!(tool.discounts[0].including_tax, usd(107));
    assert_eq!(tool.unit_net_price, usd(967));

    let au_cart = au().line("WINE", "wine", "standard", 2200, 2).promo(spec(
        "wine-10",
        1,
        vec![],
        percent_off(category("wine"), 10),
    ));
    let wine = &price(&au_cart).unwrap().lines[0];
    assert_eq!(wine.discounts[0].including_tax, aud(440));
    assert_eq!(wine.discounts[0].excluding_tax, aud(400));
    assert_eq!(wine.tax.amount, aud(360));
    assert_eq!(wine.unit_net_price, aud(1800));
}

/// A limit of units per line ("limit 2 per item"). SHIRT 10.00 × 5 and HAT
/// 5.00 × 1, untaxed.
///
/// - 20% off everything, 2 units a line at most: SHIRT 20% of 2 × 1000 =
///   400, HAT 20% of 500 = 100.
/// - 1.00 off each unit, 2 a line at most: SHIRT 200, HAT 100.
/// - 3.00 off the cart over 1 unit a line: covered 1000 + 500, spread 200
///   and 100.
#[test]
fn a_limit_of_units_per_line() {
    let cart = |action, units| {
        let mut limited = spec("limited", 1, vec![], action);
        limited.max_units_per_line = Some(units);
        untaxed_usd()
            .line("SHIRT", "apparel", "standard", 1000, 5)
            .line("HAT", "apparel", "standard", 500, 1)
            .promo(limited)
    };
    for (case, action, units, shirt, hat) in [
        ("percent, 2 a line", percent_off_cart(20), 2, 400, 100),
        (
            "amount a unit, 2 a line",
            amount_off(Selector::All, usd(100), AmountPer::Unit),
            2,
            200,
            100,
        ),
        (
            "amount off the cart, 1 a line",
            amount_off_cart(usd(300)),
            1,
            200,
            100,
        ),
    ] {
        check(
            cart(action, units),
            Expected::Priced(Priced {
                case,
                lines: vec![
                    line("SHIRT", 5000, &[("limited", shirt)], 0, 5000 - shirt),
                    line("HAT", 500, &[("limited", hat)], 0, 500 - hat),
                ],
                shipping: None,
                taxes: vec![rate("No tax", 5500 - shirt - hat, 0)],
                totals: sums(5500, shirt + hat, 0, 0, 5500 - shirt - hat),
                promotions: vec![applied("limited", shirt + hat)],
            }),
        );
    }
    let mut nonsense = spec(
        "bogo",
        1,
        vec![],
        buy_get(
            Selector::All,
            1,
            Selector::All,
            1,
            100,
            false,
            DiscountOrder::CheapestFirst,
        ),
    );
    nonsense.max_units_per_line = Some(2);
    assert!(
        Promotion::new(nonsense).is_err(),
        "no meaning for buy X get Y"
    );
}

/// Bundle prices, untaxed.
///
/// "3 socks for 10.00" (once, cheapest units first): SOCK-A 4.00 × 2 and
/// SOCK-B 5.00 × 2 give A, A, B: 1300 for 1000, 300 off, shared by value:
/// A 800 × 300/1300 = 184.62, B 500 × 300/1300 = 115.38; rounded once
/// (300) and split, the cent to the larger fraction: 185, 115.
///
/// "burger, fries and a drink for 12.00" (repeating): BURGER 8.00 × 2,
/// FRIES 3.50 × 1, DRINK 2.50 × 2 complete one bundle (one fries): 1400 for
/// 1200, 200 off: BURGER 800 × 200/1400 = 114.29, DRINK 250 × 200/1400 =
/// 35.71, FRIES 350 × 200/1400 = 50; floors 114 + 35 + 50 = 199, the cent
/// to DRINK (0.71): 114, 36, 50.
///
/// A bundle priced above what its units cost gives nothing.
#[test]
fn bundle_prices() {
    let socks = Action::Bundle {
        items: vec![BundleItem {
            selector: category("socks"),
            quantity: 3,
        }],
        price: usd(1000),
        repeat: false,
        order: DiscountOrder::CheapestFirst,
    };
    check(
        untaxed_usd()
            .line("SOCK-A", "socks", "standard", 400, 2)
            .line("SOCK-B", "socks", "standard", 500, 2)
            .promo(spec("socks-3", 1, vec![], socks)),
        Expected::Priced(Priced {
            case: "3 socks for 10.00",
            lines: vec![
                line("SOCK-A", 800, &[("socks-3", 185)], 0, 615),
                line("SOCK-B", 1000, &[("socks-3", 115)], 0, 885),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 1500, 0)],
            totals: sums(1800, 300, 0, 0, 1500),
            promotions: vec![applied("socks-3", 300)],
        }),
    );
    let meal = |price| Action::Bundle {
        items: ["burgers", "fries", "drinks"]
            .iter()
            .map(|c| BundleItem {
                selector: category(c),
                quantity: 1,
            })
            .collect(),
        price: usd(price),
        repeat: true,
        order: DiscountOrder::CheapestFirst,
    };
    let diner = |price| {
        untaxed_usd()
            .line("BURGER", "burgers", "standard", 800, 2)
            .line("FRIES", "fries", "standard", 350, 1)
            .line("DRINK", "drinks", "standard", 250, 2)
            .promo(spec("meal", 1, vec![], meal(price)))
    };
    check(
        diner(1200),
        Expected::Priced(Priced {
            case: "a meal deal",
            lines: vec![
                line("BURGER", 1600, &[("meal", 114)], 0, 1486),
                line("FRIES", 350, &[("meal", 50)], 0, 300),
                line("DRINK", 500, &[("meal", 36)], 0, 464),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 2250, 0)],
            totals: sums(2450, 200, 0, 0, 2250),
            promotions: vec![applied("meal", 200)],
        }),
    );
    check(
        diner(1500),
        Expected::Priced(Priced {
            case: "a bundle dearer than its units",
            lines: vec![
                line("BURGER", 1600, &[], 0, 1600),
                line("FRIES", 350, &[], 0, 350),
                line("DRINK", 500, &[], 0, 500),
            ],
            shipping: None,
            taxes: vec![rate("No tax", 2450, 0)],
            totals: sums(2450, 0, 0, 0, 2450),
            promotions: vec![not_applied("meal", NotApplied::NothingToDiscount)],
        }),
    );
}
