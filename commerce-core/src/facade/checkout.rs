//! Checkout: the pure planning of a checkout and the use case around it.

use crate::cart::{Cart, CartStatus};
use crate::error::{Error, Result};
use crate::ids::{CartId, IdempotencyKey, OrderId, Sku};
use crate::money::Money;
use crate::order::{Order, OrderCommand, OrderDraft, OrderStatus, Redemption};
use crate::payment::PaymentSession;
use crate::pricing::{NotApplied, PricedCart, PromotionOutcome};
use crate::promotion::Promotion;

use super::Shop;

/// What a checkout asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// Makes the checkout idempotent: a repeat returns the same order.
    pub idempotency_key: IdempotencyKey,
    /// The grand total the buyer was shown; when set and the price is now
    /// different, checkout is refused with [`Error::PriceChanged`].
    pub expected_total: Option<Money>,
}

impl CheckoutRequest {
    /// A request with `key` and no expected total.
    pub fn new(key: IdempotencyKey) -> Self {
        Self {
            idempotency_key: key,
            expected_total: None,
        }
    }

    /// Refuse the checkout unless the grand total is still `total`.
    pub fn expecting_total(mut self, total: Money) -> Self {
        self.expected_total = Some(total);
        self
    }
}

/// The result of a checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The order, awaiting payment (or further along, on a repeated checkout).
    pub order: Order,
    /// Where to send the buyer to pay, while the order awaits payment.
    pub session: Option<PaymentSession>,
    /// `false` when an earlier checkout with the same idempotency key made
    /// the order.
    pub created: bool,
}

/// Plans the checkout of `cart` priced as `priced` with `promotions` (the
/// promotions it was priced with): the refusals the facade makes before
/// anything is placed, and the redemptions to count with the order.
///
/// Pure, and the whole checkout policy of the facade:
///
/// - a cart with no lines is [`Error::EmptyCart`];
/// - an age-restricted line without an age verification on the cart is
///   [`Error::AgeVerificationRequired`] (the store checks it again, so it
///   cannot be skipped);
/// - a coupon code entered on the cart whose promotion can no longer be
///   redeemed (used up, or by this customer) is
///   [`Error::PromotionExhausted`]: a refusal, not a silent full price;
/// - an `expected_total` other than the grand total is
///   [`Error::PriceChanged`];
/// - otherwise the redemptions: one per applied limited promotion, for the
///   cart's customer, with the limits the cart was priced with.
pub fn plan_checkout(
    cart: &Cart,
    priced: &PricedCart,
    promotions: &[Promotion],
    expected_total: Option<Money>,
) -> Result<Vec<Redemption>> {
    if cart.lines.is_empty() {
        return Err(Error::EmptyCart(cart.id));
    }
    let restricted: Vec<Sku> = priced
        .lines
        .iter()
        .filter(|line| line.age_restricted)
        .map(|line| line.sku.clone())
        .collect();
    if !restricted.is_empty() && cart.age_verification.is_none() {
        return Err(Error::AgeVerificationRequired { skus: restricted });
    }
    for report in &priced.promotions {
        let per_customer = match report.outcome {
            PromotionOutcome::NotApplied(NotApplied::UsageExhausted { .. }) => false,
            PromotionOutcome::NotApplied(NotApplied::CustomerLimitReached { .. }) => true,
            _ => continue,
        };
        let entered = promotions
            .iter()
            .filter(|p| p.id() == &report.promotion)
            .flat_map(|p| p.conditions())
            .any(|c| c.codes().into_iter().any(|code| cart.codes.contains(code)));
        if entered {
            return Err(Error::PromotionExhausted {
                promotion: report.promotion.clone(),
                per_customer,
            });
        }
    }
    if let Some(expected) = expected_total
        && expected != priced.totals.grand_total
    {
        return Err(Error::PriceChanged {
            expected,
            actual: priced.totals.grand_total,
        });
    }
    let customer = cart.customer.as_ref().and_then(|c| c.id.clone());
    Ok(priced
        .applied_promotions()
        .filter(|report| report.limited)
        .filter_map(|report| promotions.iter().find(|p| p.id() == &report.promotion))
        .map(|promotion| Redemption {
            promotion: promotion.id().clone(),
            customer: customer.clone(),
            usage_limit: promotion.usage_limit(),
            per_customer_limit: promotion.per_customer_limit(),
        })
        .collect())
}

impl Shop {
    /// Places the cart's order and opens a payment session for it:
    /// [`checkout_with`](Self::checkout_with) without an expected total.
    pub async fn checkout(&self, cart: CartId, key: &IdempotencyKey) -> Result<Checkout> {
        self.checkout_with(cart, &CheckoutRequest::new(key.clone()))
            .await
    }

    /// Places the cart's order and opens a payment session for it.
    ///
    /// The cart is priced again with the same function as the preview and
    /// planned with [`plan_checkout`]. The order snapshots every line's
    /// discounts and taxes and the promotions applied, and the limited
    /// promotions are redeemed in the same atomic step as the order is
    /// placed (and given back if it is cancelled or expires unpaid).
    ///
    /// Idempotent on the request's key: a repeated checkout (sequential or
    /// concurrent) returns the same order with `created = false`, and
    /// creates its payment session if an earlier attempt could not.
    ///
    /// Refused with [`plan_checkout`]'s refusals;
    /// [`Error::PromotionExhausted`] also when a limited promotion the price
    /// relies on was used up meanwhile (nothing is placed or charged: the
    /// buyer removes the code or accepts the new price);
    /// [`Error::ReservationLapsed`] when a line's reservation expired
    /// ([`renew_reservations`](Self::renew_reservations) first);
    /// [`Error::CartCheckedOut`], [`Error::IdempotencyKeyReused`];
    /// [`Error::NotAcceptingOrders`] while the shop's settings pause it.
    pub async fn checkout_with(&self, cart: CartId, request: &CheckoutRequest) -> Result<Checkout> {
        let key = &request.idempotency_key;
        if let Some(order) = self.scope.orders().order_by_idempotency_key(key).await? {
            if order.cart != cart {
                return Err(Error::IdempotencyKeyReused {
                    key: key.clone(),
                    order: order.id,
                });
            }
            return self.open_session(order, false).await;
        }
        let read = self.pricing_read(cart).await?;
        if let CartStatus::CheckedOut { order } = read.cart.status() {
            // A concurrent checkout with the same key may have just placed it.
            let placed = self.scope.orders().order(order).await?;
            if let Some(placed) = placed.filter(|o| &o.idempotency_key == key) {
                return self.open_session(placed, false).await;
            }
            return Err(Error::CartCheckedOut { cart, order });
        }
        let (current, pricing) = self.price(read).await?;
        if !pricing.accepting_orders {
            return Err(Error::NotAcceptingOrders);
        }
        let priced = pricing.priced;
        let redemptions = plan_checkout(
            &current,
            &priced,
            &pricing.promotions,
            request.expected_total,
        )?;
        let now = self.now();
        let draft = OrderDraft {
            id: OrderId::new(),
            tenant: self.tenant().clone(),
            cart,
            idempotency_key: key.clone(),
            customer: current.customer.as_ref().and_then(|c| c.id.clone()),
            priced,
            redemptions,
            payment_expires_at: self.commerce.expiry(now, self.commerce.inner.window)?,
        };
        let placement = self.scope.orders().place_order(&draft, now).await?;
        self.open_session(placement.order, placement.created).await
    }

    async fn open_session(&self, order: Order, created: bool) -> Result<Checkout> {
        if order.status() != OrderStatus::AwaitingPayment {
            return Ok(Checkout {
                order,
                session: None,
                created,
            });
        }
        if let Some(session) = order.payment_session.clone() {
            return Ok(Checkout {
                session: Some(session),
                order,
                created,
            });
        }
        let session = self
            .commerce
            .inner
            .gateway
            .create_session(&order, self.now())
            .await?;
        let changed = self
            .change(order.id, OrderCommand::AttachSession(session.clone()))
            .await?;
        Ok(Checkout {
            order: changed.order,
            session: Some(session),
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cart::{AgeVerification, CartUpdate};
    use crate::catalog::{NewProduct, Product, Variant};
    use crate::ids::{
        Category, CouponCode, CustomerId, ProductId, PromotionId, Quantity, TaxCategory, TenantId,
    };
    use crate::money::Currency;
    use crate::pricing::{CustomerContext, PricingInput, PricingLine, price};
    use crate::promotion::{Action, Condition, PromotionSpec, PromotionUsage};
    use crate::tax::TaxConfig;

    fn aud(minor: i64) -> Money {
        Money::new(minor, Currency::AUD)
    }

    struct Case {
        cart: Cart,
        products: Vec<Product>,
        promotions: Vec<Promotion>,
        usage: std::collections::HashMap<PromotionId, PromotionUsage>,
    }

    impl Case {
        fn new() -> Self {
            let now = chrono::DateTime::UNIX_EPOCH;
            Self {
                cart: Cart::new(
                    CartId::new(),
                    TenantId::parse("shop").unwrap(),
                    Currency::AUD,
                    now,
                ),
                products: vec![],
                promotions: vec![],
                usage: Default::default(),
            }
        }

        fn line(mut self, sku: &str, minor: i64, age_restricted: bool) -> Self {
            let sku = Sku::parse(sku).unwrap();
            let new = NewProduct {
                name: sku.as_str().into(),
                category: Category::parse("gpus").unwrap(),
                tax_category: TaxCategory::parse("standard").unwrap(),
                age_restricted,
                variants: vec![Variant::new(sku.clone(), aud(minor))],
                published: true,
            };
            self.products
                .push(Product::new(ProductId::new(), new).unwrap());
            self.cart
                .put_line(
                    &sku,
                    Quantity::new(1).unwrap(),
                    chrono::DateTime::UNIX_EPOCH,
                )
                .unwrap();
            self
        }

        fn coupon(mut self, code: &str, limit: u32, used: u32) -> Self {
            let id = PromotionId::parse(code.to_ascii_lowercase()).unwrap();
            let code = CouponCode::parse(code).unwrap();
            self.promotions.push(
                Promotion::new(PromotionSpec {
                    id: id.clone(),
                    name: "ten off".into(),
                    priority: 1,
                    exclusive: false,
                    group: None,
                    conditions: vec![Condition::Coupon { code: code.clone() }],
                    action: Action::AmountOffCart { amount: aud(1000) },
                    cap: None,
                    max_units_per_line: None,
                    usage_limit: None,
                    per_customer_limit: Some(limit),
                })
                .unwrap(),
            );
            self.usage.insert(
                id,
                PromotionUsage {
                    total: used,
                    by_customer: used,
                },
            );
            self.cart
                .apply(&CartUpdate::AddCode(code), chrono::DateTime::UNIX_EPOCH)
                .unwrap();
            self.cart
                .apply(
                    &CartUpdate::SetCustomer(Some(CustomerContext {
                        id: Some(CustomerId::parse("c1").unwrap()),
                        ..CustomerContext::default()
                    })),
                    chrono::DateTime::UNIX_EPOCH,
                )
                .unwrap();
            self
        }

        fn plan(&self, expected: Option<Money>) -> Result<Vec<Redemption>> {
            let mut input = PricingInput::new(
                Currency::AUD,
                TaxConfig::untaxed(),
                chrono::DateTime::UNIX_EPOCH,
            );
            for (line, product) in self.cart.lines.iter().zip(&self.products) {
                input
                    .lines
                    .push(PricingLine::from_product(product, &line.sku, line.quantity).unwrap());
            }
            input.promotions = self.promotions.clone();
            input.codes = self.cart.codes.clone();
            input.customer = self.cart.customer.clone().unwrap_or_default();
            input.usage = self.usage.clone();
            let priced = price(&input).unwrap();
            plan_checkout(&self.cart, &priced, &self.promotions, expected)
        }
    }

    #[test]
    fn an_empty_cart_is_refused() {
        assert!(matches!(Case::new().plan(None), Err(Error::EmptyCart(_))));
    }

    #[test]
    fn an_age_restricted_line_needs_a_verification() {
        let mut case = Case::new()
            .line("wine", 3000, true)
            .line("gpu", 50_000, false);
        assert!(matches!(
            case.plan(None),
            Err(Error::AgeVerificationRequired { skus }) if skus == vec![Sku::parse("wine").unwrap()]
        ));
        case.cart
            .apply(
                &CartUpdate::VerifyAge(AgeVerification {
                    method: "id-scan".into(),
                    verified_by: "staff".into(),
                    verified_at: chrono::DateTime::UNIX_EPOCH,
                }),
                chrono::DateTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_eq!(case.plan(None).unwrap(), vec![]);
    }

    #[test]
    fn an_entered_coupon_that_is_used_up_is_refused_not_ignored() {
        let case = Case::new().line("gpu", 50_000, false).coupon("TEN", 1, 1);
        assert!(matches!(
            case.plan(None),
            Err(Error::PromotionExhausted {
                per_customer: true,
                ..
            })
        ));
    }

    #[test]
    fn a_changed_price_is_refused_with_both_totals() {
        let case = Case::new().line("gpu", 50_000, false);
        assert!(matches!(
            case.plan(Some(aud(49_000))),
            Err(Error::PriceChanged { expected, actual }) if expected == aud(49_000) && actual == aud(50_000)
        ));
        assert!(case.plan(Some(aud(50_000))).is_ok());
    }

    #[test]
    fn an_applied_limited_promotion_is_redeemed_for_the_customer() {
        let case = Case::new().line("gpu", 50_000, false).coupon("TEN", 2, 1);
        let redemptions = case.plan(None).unwrap();
        assert_eq!(redemptions.len(), 1);
        assert_eq!(redemptions[0].promotion, PromotionId::parse("ten").unwrap());
        assert_eq!(
            redemptions[0].customer,
            Some(CustomerId::parse("c1").unwrap())
        );
        assert_eq!(redemptions[0].per_customer_limit, Some(2));
    }
}
