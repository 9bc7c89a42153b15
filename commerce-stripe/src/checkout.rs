//! From an order to the parameters of a Stripe Checkout Session: a pure
//! function, tested without a server.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use commerce_core::pricing::PricedLine;
use commerce_core::tax::PriceBasis;
use commerce_core::{Money, Order, Timestamp};
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, ProductData,
};

use crate::amount;
use crate::error::Error;
use crate::event::{METADATA_ORDER, METADATA_TENANT};

/// The shortest payment window Stripe Checkout accepts: 30 minutes.
pub const MIN_PAYMENT_WINDOW: Duration = Duration::from_secs(30 * 60);
/// The longest payment window Stripe Checkout accepts: 24 hours.
pub const MAX_PAYMENT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Stripe Checkout takes at most 100 line items in payment mode.
const MAX_LINE_ITEMS: usize = 100;

/// Refuses a payment window Stripe Checkout does not accept.
pub(crate) fn check_window(window: Duration) -> Result<(), String> {
    if (MIN_PAYMENT_WINDOW..=MAX_PAYMENT_WINDOW).contains(&window) {
        Ok(())
    } else {
        Err(format!(
            "a payment window of {}s is outside the 30 minutes to 24 hours a Stripe Checkout \
             Session accepts; set the engine's payment window \
             (commerce_core::Config::with_payment_window) within it",
            window.as_secs()
        ))
    }
}

/// One Checkout line item, before it becomes Stripe's request type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) unit_amount: i64,
    pub(crate) quantity: u64,
}

impl Item {
    fn total(&self) -> Option<i64> {
        i64::try_from(self.quantity)
            .ok()
            .and_then(|q| self.unit_amount.checked_mul(q))
    }
}

/// Everything a Checkout Session for one order is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPlan {
    pub(crate) currency: stripe_types::Currency,
    pub(crate) items: Vec<Item>,
    /// Σ items, in Stripe units: exactly the order's grand total.
    pub(crate) total: i64,
    pub(crate) expires_at: i64,
    pub(crate) metadata: HashMap<String, String>,
    pub(crate) client_reference_id: String,
    pub(crate) success_url: String,
    pub(crate) cancel_url: Option<String>,
    pub(crate) description: String,
}

/// The idempotency key of the Checkout Session of an order.
pub(crate) fn idempotency_key(order: &Order) -> String {
    format!("commerce-checkout-{}", order.id)
}

fn fill(template: &str, order: &Order) -> String {
    template
        .replace("{ORDER_ID}", &order.id.to_string())
        .replace("{TENANT}", order.tenant.as_str())
}

fn line_name(line: &PricedLine) -> String {
    if line.options.is_empty() {
        return line.name.clone();
    }
    let options: Vec<String> = line
        .options
        .iter()
        .map(|(key, value)| format!("{key}: {value}"))
        .collect();
    format!("{} ({})", line.name, options.join(", "))
}

/// What the buyer sees under a line: quantity and unit price, the discount,
/// the tax.
fn line_description(line: &PricedLine, prices: PriceBasis) -> String {
    let mut parts = vec![format!("{} × {}", line.quantity, line.unit_price)];
    if !line.discount_total.is_zero() {
        parts.push(format!("discount −{}", line.discount_total));
    }
    if !line.tax.amount.is_zero() {
        let rate = format!("{} {}%", line.tax.label, line.tax.percent.normalize());
        parts.push(match prices {
            PriceBasis::TaxInclusive => format!("incl. {rate} {}", line.tax.amount),
            PriceBasis::TaxExclusive => format!("+ {rate} {}", line.tax.amount),
        });
    }
    parts.join(", ")
}

/// A line as Checkout items: `quantity` units when the line's total splits
/// evenly into sendable unit amounts, otherwise one item for the whole line.
fn line_item(line: &PricedLine, prices: PriceBasis) -> Result<Item, Error> {
    let total = amount::to_stripe(line.total)?;
    let quantity = u64::from(line.quantity.get());
    let description = Some(line_description(line, prices));
    let per_unit = i64::try_from(quantity)
        .ok()
        .filter(|q| *q > 0 && total % q == 0)
        .map(|q| total / q)
        .filter(|unit| amount::is_sendable(Money::new(*unit, line.total.currency())));
    Ok(match per_unit {
        Some(unit_amount) => Item {
            name: line_name(line),
            description,
            unit_amount,
            quantity,
        },
        None => Item {
            name: format!("{} × {}", line_name(line), line.quantity),
            description,
            unit_amount: total,
            quantity: 1,
        },
    })
}

/// The items: one per order line (and one for shipping), each priced so
/// that Stripe's total is exactly the grand total; or, when an amount
/// cannot be sent on its own (three-decimal currencies) or there are too
/// many lines, a single item for the whole order.
fn items(order: &Order, grand_total: i64) -> Result<Vec<Item>, Error> {
    let per_line = || -> Result<Vec<Item>, Error> {
        let mut items = order
            .lines
            .iter()
            .map(|line| line_item(line, order.prices))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(shipping) = order.shipping.as_ref().filter(|s| !s.total.is_zero()) {
            let mut description = Vec::new();
            if !shipping.discount_total.is_zero() {
                description.push(format!("discount −{}", shipping.discount_total));
            }
            if let Some(tax) = shipping.tax.as_ref().filter(|t| !t.amount.is_zero()) {
                description.push(match order.prices {
                    PriceBasis::TaxInclusive => format!("incl. {} {}", tax.label, tax.amount),
                    PriceBasis::TaxExclusive => format!("+ {} {}", tax.label, tax.amount),
                });
            }
            items.push(Item {
                name: "Shipping".into(),
                description: (!description.is_empty()).then(|| description.join(", ")),
                unit_amount: amount::to_stripe(shipping.total)?,
                quantity: 1,
            });
        }
        Ok(items)
    };
    match per_line() {
        Ok(items)
            if items.len() <= MAX_LINE_ITEMS
                && items
                    .iter()
                    .try_fold(0_i64, |sum, item| sum.checked_add(item.total()?))
                    == Some(grand_total) =>
        {
            Ok(items)
        }
        // A line amount a three-decimal currency cannot carry, too many
        // lines, or (never, by the core's invariants) lines that do not add
        // up: one item for the whole order, whose total is sendable.
        _ => {
            let mut description = String::new();
            for line in &order.lines {
                let _ = write!(description, "{} × {}; ", line.quantity, line_name(line));
            }
            let _ = write!(description, "total {}", order.total());
            Ok(vec![Item {
                name: format!("Order {}", order.id),
                description: Some(description),
                unit_amount: grand_total,
                quantity: 1,
            }])
        }
    }
}

/// Plans the Checkout Session of `order`.
///
/// Refused with [`Error::Unsupported`]: a payment window Stripe does not
/// accept, a currency this crate does not handle, a grand total that is zero
/// or that a three-decimal currency cannot carry.
pub(crate) fn plan(
    order: &Order,
    now: Timestamp,
    success_url: &str,
    cancel_url: Option<&str>,
) -> Result<SessionPlan, Error> {
    // Stripe measures the session's life from its creation: what is left of
    // the order's window now.
    let window = (order.payment_expires_at - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    check_window(window).map_err(Error::Unsupported)?;
    let currency = amount::stripe_currency(order.currency)?;
    let grand_total = amount::to_stripe(order.total())?;
    if grand_total == 0 {
        return Err(Error::Unsupported(format!(
            "order {} has nothing to pay",
            order.id
        )));
    }
    let items = items(order, grand_total)?;
    let metadata = HashMap::from([
        (METADATA_ORDER.to_owned(), order.id.to_string()),
        (METADATA_TENANT.to_owned(), order.tenant.to_string()),
    ]);
    Ok(SessionPlan {
        currency,
        items,
        total: grand_total,
        expires_at: order.payment_expires_at.timestamp(),
        metadata,
        client_reference_id: order.id.to_string(),
        success_url: fill(success_url, order),
        cancel_url: cancel_url.map(|url| fill(url, order)),
        description: format!("Order {}", order.id),
    })
}

impl SessionPlan {
    /// The Stripe request.
    pub(crate) fn request(&self) -> CreateCheckoutSession {
        let line_items: Vec<CreateCheckoutSessionLineItems> = self
            .items
            .iter()
            .map(|item| {
                let mut product = ProductData::new(item.name.clone());
                product.description = item.description.clone();
                let mut price = CreateCheckoutSessionLineItemsPriceData::new(self.currency.clone());
                price.unit_amount = Some(item.unit_amount);
                price.product_data = Some(product);
                let mut line = CreateCheckoutSessionLineItems::new();
                line.price_data = Some(price);
                line.quantity = Some(item.quantity);
                line
            })
            .collect();
        let mut intent = CreateCheckoutSessionPaymentIntentData::new();
        intent.metadata = Some(self.metadata.clone());
        intent.description = Some(self.description.clone());
        let mut request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .line_items(line_items)
            .client_reference_id(self.client_reference_id.clone())
            .metadata(self.metadata.clone())
            .payment_intent_data(intent)
            .expires_at(self.expires_at)
            .success_url(self.success_url.clone());
        if let Some(cancel) = &self.cancel_url {
            request = request.cancel_url(cancel.clone());
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use commerce_core::testkit::{Harness, InMemoryFactory};
    use commerce_core::{Currency, Money};
    use stripe::StripeRequest;

    use super::*;

    async fn order(quantity: u32) -> Order {
        let h = Harness::new(&InMemoryFactory).await;
        let sku = h.stocked("TEE", 1_999, 200).await;
        h.order_for(&sku, quantity, "k").await
    }

    fn set_total(order: &mut Order, total: i64) {
        order.totals.grand_total = Money::new(total, Currency::AUD);
    }

    #[tokio::test]
    async fn an_order_becomes_items_and_a_form_body() {
        let order = order(3).await;
        let plan = plan(
            &order,
            order.placed_at,
            "https://s.example/{ORDER_ID}/ok",
            None,
        )
        .unwrap();
        assert_eq!(
            plan.items,
            vec![Item {
                name: "Item TEE".into(),
                description: Some("3 × AUD 19.99".into()),
                unit_amount: 1_999,
                quantity: 3,
            }]
        );
        assert_eq!(plan.total, 5_997);
        assert_eq!(plan.expires_at, order.payment_expires_at.timestamp());
        assert_eq!(
            plan.success_url,
            format!("https://s.example/{}/ok", order.id)
        );
        assert_eq!(
            idempotency_key(&order),
            format!("commerce-checkout-{}", order.id)
        );

        let built = plan.request().build();
        assert_eq!(built.path, "/checkout/sessions");
        let form: Vec<(String, String)> =
            serde_urlencoded::from_str(&built.body.unwrap_or_default()).unwrap();
        let get = |key: &str| {
            form.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{key} missing from {form:?}"))
        };
        let id = order.id.to_string();
        assert_eq!(get("mode"), "payment");
        assert_eq!(get("line_items[0][price_data][unit_amount]"), "1999");
        assert_eq!(get("line_items[0][quantity]"), "3");
        assert_eq!(get("line_items[0][price_data][currency]"), "aud");
        assert_eq!(get("metadata[commerce_order_id]"), id);
        assert_eq!(
            get("payment_intent_data[metadata][commerce_tenant]"),
            "shop-a"
        );
        assert_eq!(
            get("payment_intent_data[description]"),
            format!("Order {id}")
        );
        assert!(!form.iter().any(|(k, _)| k == "cancel_url"));
    }

    #[tokio::test]
    async fn a_line_that_does_not_split_evenly_is_one_item() {
        let mut order = order(3).await;
        order.lines[0].total = Money::new(5_996, Currency::AUD);
        set_total(&mut order, 5_996);
        let plan = plan(&order, order.placed_at, "https://s.example/ok", None).unwrap();
        assert_eq!(plan.items.len(), 1);
        assert_eq!(plan.items[0].name, "Item TEE × 3");
        assert_eq!(
            (plan.items[0].unit_amount, plan.items[0].quantity),
            (5_996, 1)
        );
    }

    #[tokio::test]
    async fn too_many_lines_or_lines_that_do_not_add_up_make_one_item() {
        let mut order = order(1).await;
        let line = order.lines[0].clone();
        order.lines = vec![line; 101];
        set_total(&mut order, 101 * 1_999);
        let collapsed = plan(&order, order.placed_at, "https://s.example/ok", None).unwrap();
        assert_eq!(collapsed.items.len(), 1);
        assert_eq!(collapsed.items[0].name, format!("Order {}", order.id));
        assert_eq!(
            (collapsed.items[0].unit_amount, collapsed.items[0].quantity),
            (101 * 1_999, 1)
        );

        let mut order = self::order(1).await;
        set_total(&mut order, 2_000);
        let planned = plan(&order, order.placed_at, "https://s.example/ok", None).unwrap();
        assert_eq!(planned.items.len(), 1);
        assert_eq!(planned.total, 2_000, "Stripe is asked for the grand total");
    }

    #[tokio::test]
    async fn refusals() {
        let mut order = order(1).await;
        set_total(&mut order, 0);
        assert!(matches!(
            plan(&order, order.placed_at, "https://s.example/ok", None),
            Err(Error::Unsupported(m)) if m.contains("nothing to pay")
        ));
        for minutes in [29, 24 * 60 + 1] {
            let mut order = self::order(1).await;
            order.payment_expires_at = order.placed_at + chrono::TimeDelta::minutes(minutes);
            assert!(matches!(
                plan(&order, order.placed_at, "https://s.example/ok", None),
                Err(Error::Unsupported(m)) if m.contains("30 minutes to 24 hours")
            ));
        }
        for minutes in [30, 24 * 60] {
            let mut order = self::order(1).await;
            order.payment_expires_at = order.placed_at + chrono::TimeDelta::minutes(minutes);
            assert!(
                plan(&order, order.placed_at, "https://s.example/ok", None).is_ok(),
                "{minutes}"
            );
        }
        // The window is measured from when the session is created: a session
        // created five minutes into a 31-minute window has 26 left, too few.
        let mut order = self::order(1).await;
        order.payment_expires_at = order.placed_at + chrono::TimeDelta::minutes(31);
        let late = order.placed_at + chrono::TimeDelta::minutes(5);
        assert!(matches!(
            plan(&order, late, "https://s.example/ok", None),
            Err(Error::Unsupported(m)) if m.contains("30 minutes to 24 hours")
        ));
    }
}
