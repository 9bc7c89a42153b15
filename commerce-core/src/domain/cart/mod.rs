//! Carts: a buyer's lines in one currency, each backed by a reservation,
//! a few bounded attributes ([`AttributeKey`]), and the limits on its lines
//! ([`CartLimits`]).

mod attributes;
mod limits;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{CartId, CouponCode, OrderId, Quantity, Sku, TenantId};
use crate::money::Currency;
use crate::pricing::CustomerContext;
use crate::text::{TextField, check_text};

pub use attributes::{AttributeKey, CartAttributeError, MAX_ATTRIBUTES};
pub use limits::CartLimits;

/// A record that the buyer's age was checked, by whom and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgeVerification {
    /// How it was checked (`"id-scan"`, `"document-check at collection"`).
    pub method: String,
    /// Who or what checked it (a staff member, a verification service).
    pub verified_by: String,
    /// When it was recorded (set by the facade from its clock).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub verified_at: Timestamp,
}

/// A change to a cart other than its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CartUpdate {
    /// Enter a coupon code.
    AddCode(CouponCode),
    /// Remove a coupon code.
    RemoveCode(CouponCode),
    /// Set (or clear) who is buying.
    SetCustomer(Option<CustomerContext>),
    /// Record that the buyer's age was verified.
    VerifyAge(AgeVerification),
    /// Set the attribute `key` to `value`, replacing its value if it has
    /// one, or remove it (`None`; removing an absent key changes nothing).
    SetAttribute {
        /// The attribute.
        key: AttributeKey,
        /// Its new value, or `None` to remove it.
        value: Option<String>,
    },
}

impl CartUpdate {
    /// Checks the free text the update carries with [`check_text`]: an age
    /// verification's method and verifier (refused with
    /// [`Error::InvalidText`]), an attribute's value (refused with
    /// [`CartAttributeError::InvalidValue`], naming the key).
    pub fn check(&self) -> Result<()> {
        match self {
            CartUpdate::VerifyAge(verification) => {
                check_text(TextField::AgeVerificationMethod, &verification.method)?;
                check_text(TextField::AgeVerifiedBy, &verification.verified_by)?;
            }
            CartUpdate::SetAttribute {
                key,
                value: Some(value),
            } => {
                check_text(TextField::CartAttributeValue, value).map_err(|error| match error {
                    Error::InvalidText { reason, .. } => CartAttributeError::InvalidValue {
                        key: key.clone(),
                        reason,
                    }
                    .into(),
                    other => other,
                })?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether a cart can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CartStatus {
    /// Lines can be set and removed.
    Open,
    /// The cart became an order and is frozen.
    CheckedOut {
        /// The order.
        order: OrderId,
    },
}

/// One line of a cart: a SKU and a quantity (never zero).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartLine {
    /// The SKU.
    pub sku: Sku,
    /// How many units (at least one).
    pub quantity: Quantity,
}

/// A cart. Every line's SKU appears once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cart {
    /// The identifier.
    pub id: CartId,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The one currency its prices are in.
    pub currency: Currency,
    /// The lines, in the order they were first added.
    pub lines: Vec<CartLine>,
    /// The coupon codes entered.
    #[serde(default)]
    pub codes: BTreeSet<CouponCode>,
    /// Who is buying, when known.
    #[serde(default)]
    pub customer: Option<CustomerContext>,
    /// The age verification, when one is recorded.
    #[serde(default)]
    pub age_verification: Option<AgeVerification>,
    /// At most [`MAX_ATTRIBUTES`] attributes: read them with
    /// [`attributes`](Self::attributes), change them with
    /// [`CartUpdate::SetAttribute`].
    #[serde(default)]
    attributes: BTreeMap<AttributeKey, String>,
    /// Open or checked out: read it with [`status`](Self::status).
    status: CartStatus,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

impl Cart {
    /// A new empty open cart.
    pub fn new(id: CartId, tenant: TenantId, currency: Currency, now: Timestamp) -> Self {
        Self {
            id,
            tenant,
            currency,
            lines: Vec::new(),
            codes: BTreeSet::new(),
            customer: None,
            age_verification: None,
            attributes: BTreeMap::new(),
            status: CartStatus::Open,
            created_at: now,
            updated_at: now,
        }
    }

    /// The line for `sku`, if any.
    pub fn line(&self, sku: &Sku) -> Option<&CartLine> {
        self.lines.iter().find(|line| &line.sku == sku)
    }

    /// The attributes, by key (at most [`MAX_ATTRIBUTES`]). Placing an
    /// order copies them to it ([`Order::attributes`](crate::Order::attributes)).
    pub fn attributes(&self) -> &BTreeMap<AttributeKey, String> {
        &self.attributes
    }

    /// Open or checked out. Only [`place`](crate::order::place) checks a
    /// cart out.
    pub fn status(&self) -> CartStatus {
        self.status
    }

    /// `Ok` while lines and details can change; a checked-out cart is
    /// [`Error::CartCheckedOut`]. Every store asks before changing a cart.
    pub fn ensure_open(&self) -> Result<()> {
        match self.status {
            CartStatus::Open => Ok(()),
            CartStatus::CheckedOut { order } => Err(Error::CartCheckedOut {
                cart: self.id,
                order,
            }),
        }
    }

    /// Freezes the cart as checked out by `order`.
    pub(crate) fn check_out(&mut self, order: OrderId, now: Timestamp) -> Result<()> {
        self.ensure_open()?;
        self.status = CartStatus::CheckedOut { order };
        self.updated_at = now;
        Ok(())
    }

    /// Sets the line for `sku` to `quantity` (zero removes it). This changes
    /// only the value; stores call it inside their atomic `set_line`. A
    /// checked-out cart is [`Error::CartCheckedOut`].
    pub fn put_line(&mut self, sku: &Sku, quantity: Quantity, now: Timestamp) -> Result<()> {
        self.ensure_open()?;
        if quantity.is_zero() {
            self.lines.retain(|line| &line.sku != sku);
        } else if let Some(line) = self.lines.iter_mut().find(|line| &line.sku == sku) {
            line.quantity = quantity;
        } else {
            self.lines.push(CartLine {
                sku: sku.clone(),
                quantity,
            });
        }
        self.updated_at = now;
        Ok(())
    }

    /// Applies `update`. This changes only the value; stores call it inside
    /// their atomic `update_cart`. A checked-out cart is
    /// [`Error::CartCheckedOut`]; an update that does not pass
    /// [`CartUpdate::check`] is refused; a new attribute past
    /// [`MAX_ATTRIBUTES`] is [`CartAttributeError::TooMany`]. Every refusal
    /// changes nothing.
    pub fn apply(&mut self, update: &CartUpdate, now: Timestamp) -> Result<()> {
        self.ensure_open()?;
        update.check()?;
        match update {
            CartUpdate::AddCode(code) => {
                self.codes.insert(code.clone());
            }
            CartUpdate::RemoveCode(code) => {
                self.codes.remove(code);
            }
            CartUpdate::SetCustomer(customer) => self.customer = customer.clone(),
            CartUpdate::VerifyAge(verification) => {
                self.age_verification = Some(verification.clone());
            }
            CartUpdate::SetAttribute {
                key,
                value: Some(value),
            } => {
                if !self.attributes.contains_key(key) && self.attributes.len() >= MAX_ATTRIBUTES {
                    return Err(CartAttributeError::TooMany {
                        key: key.clone(),
                        max: MAX_ATTRIBUTES,
                    }
                    .into());
                }
                self.attributes.insert(key.clone(), value.clone());
            }
            CartUpdate::SetAttribute { key, value: None } => {
                self.attributes.remove(key);
            }
        }
        self.updated_at = now;
        Ok(())
    }

    /// Whether lines can still change.
    pub fn is_open(&self) -> bool {
        self.status == CartStatus::Open
    }
}
