//! The error vocabulary of the core. Stores and gateways classify their own
//! failures into it.

use std::fmt;

use crate::cart::CartAttributeError;
use crate::ids::{CartId, IdempotencyKey, OrderId, ParseError, PromotionId, Sku, TenantId};
use crate::money::{Currency, Money, MoneyError};
use crate::order::{OrderStatus, RefundError};
use crate::payment::{GatewayError, WebhookError};
use crate::promotion::PromotionError;
use crate::tax::TaxError;
use crate::text::{TextField, TextReason};

/// A `Result` with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of thing that was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A product.
    Product,
    /// A SKU in the catalog.
    Sku,
    /// A cart.
    Cart,
    /// An order.
    Order,
    /// A refund.
    Refund,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Product => "product",
            Entity::Sku => "sku",
            Entity::Cart => "cart",
            Entity::Order => "order",
            Entity::Refund => "refund",
        })
    }
}

/// Everything a use case or a store operation can refuse or fail with.
///
/// Refusals carry the data a caller needs to tell the buyer what happened
/// (for example the real available count). Failures of a backend are
/// [`Error::Backend`]; ask [`Error::is_retryable`] before retrying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// More units were asked for than are available. Nothing was changed.
    #[error("insufficient stock for {sku}: requested {requested}, available {available}")]
    InsufficientStock {
        /// The SKU asked for.
        sku: Sku,
        /// The quantity asked for.
        requested: u32,
        /// What is really available to this cart now (excluding its own hold).
        available: u32,
    },
    /// The thing does not exist in this tenant's scope.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What kind of thing.
        entity: Entity,
        /// Its identifier, as text.
        id: String,
    },
    /// The cart has been checked out and can no longer change.
    #[error("cart {cart} is checked out (order {order})")]
    CartCheckedOut {
        /// The cart.
        cart: CartId,
        /// The order it became.
        order: OrderId,
    },
    /// Checkout of a cart with no lines.
    #[error("cart {0} is empty")]
    EmptyCart(CartId),
    /// A price or amount in one currency met a cart or order in another.
    #[error("currency mismatch: expected {expected}, found {found}")]
    CurrencyMismatch {
        /// The cart's or order's currency.
        expected: Currency,
        /// The currency offered.
        found: Currency,
    },
    /// At checkout, a cart line was not covered by a live reservation of the
    /// cart (it expired). Setting the line again renews it if stock allows.
    #[error("the reservation of {sku} for this cart has expired or does not cover the line")]
    ReservationLapsed {
        /// The line's SKU.
        sku: Sku,
    },
    /// The cart changed between reading it and placing the order. Retry.
    #[error("cart {0} changed during checkout")]
    CartChanged(CartId),
    /// The idempotency key was already used for a checkout of another cart.
    #[error("idempotency key {key} was used for another cart")]
    IdempotencyKeyReused {
        /// The key.
        key: IdempotencyKey,
        /// The order it already names.
        order: OrderId,
    },
    /// The order's state machine does not allow this change. Nothing was
    /// changed and no event was appended.
    #[error("order {order} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The order.
        order: OrderId,
        /// Its current status.
        from: OrderStatus,
        /// The status asked for.
        to: OrderStatus,
    },
    /// A stock correction would leave fewer units on hand than are held by
    /// live reservations and allocations.
    #[error("cannot set {sku} on hand to {requested}: {held} units are held")]
    StockBelowHeld {
        /// The SKU.
        sku: Sku,
        /// The on-hand count asked for.
        requested: u32,
        /// Units held by live reservations and allocations.
        held: u32,
    },
    /// Receiving stock would take the on-hand count past the largest quantity.
    #[error("stock of {sku} would exceed the largest quantity")]
    StockOverflow {
        /// The SKU.
        sku: Sku,
    },
    /// The SKU belongs to another product of this tenant.
    #[error("sku {sku} already belongs to another product")]
    SkuTaken {
        /// The SKU.
        sku: Sku,
    },
    /// A product definition is not acceptable.
    #[error("invalid product: {0}")]
    InvalidProduct(String),
    /// Free text that not every store can keep (a NUL character, a search
    /// word too long for a search index) or longer than the field allows.
    /// Nothing was changed. See [`check_text`](crate::text::check_text).
    #[error("invalid {field}: {reason}")]
    InvalidText {
        /// The field.
        field: TextField,
        /// What is wrong with the text.
        reason: TextReason,
    },
    /// Configuration that cannot work (a zero reservation TTL, say).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A payment event or handle for another tenant reached this tenant's scope.
    #[error("expected tenant {expected}, found {found}")]
    TenantMismatch {
        /// The scope's tenant.
        expected: TenantId,
        /// The tenant the input names.
        found: TenantId,
    },
    /// The cart holds age-restricted items and no age verification is
    /// recorded for it. Record one, then check out again.
    #[error("age verification required for {}", .skus.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    AgeVerificationRequired {
        /// The age-restricted SKUs.
        skus: Vec<Sku>,
    },
    /// The shop's settings say it is not accepting orders
    /// ([`ShopSettings::accepting_orders`](crate::ShopSettings::accepting_orders)).
    /// Nothing was placed; the cart and its holds are as they were.
    #[error("the shop is not accepting orders now")]
    NotAcceptingOrders,
    /// The total the buyer was shown is no longer the price. Show the new
    /// total and ask again.
    #[error("the price changed: the buyer was shown {expected}, the cart now costs {actual}")]
    PriceChanged {
        /// The total the caller said the buyer saw.
        expected: Money,
        /// The total now.
        actual: Money,
    },
    /// A promotion the price relied on has been redeemed as often as it may
    /// (by everyone, or by this customer) since the cart was priced. Nothing
    /// was placed; price the cart again.
    #[error("promotion {promotion} can no longer be redeemed{}", if *.per_customer { " by this customer" } else { "" })]
    PromotionExhausted {
        /// The promotion.
        promotion: PromotionId,
        /// Whether it was the per-customer limit.
        per_customer: bool,
    },
    /// A promotion definition makes no sense.
    #[error(transparent)]
    InvalidPromotion(#[from] PromotionError),
    /// A merchant refund was refused (past what is left, a reused id...).
    /// Nothing was recorded.
    #[error(transparent)]
    Refund(#[from] RefundError),
    /// A cart line past the shop's cart limits
    /// ([`Config::with_cart_limits`](crate::Config::with_cart_limits)).
    /// Nothing was changed.
    #[error("cart {cart} may hold at most {max} {}", if *.per_line { "units per line" } else { "lines" })]
    CartLimit {
        /// The cart.
        cart: CartId,
        /// `true` for the units of one line, `false` for the number of
        /// lines.
        per_line: bool,
        /// The limit.
        max: u32,
    },
    /// A cart attribute was refused: a malformed key, one attribute too
    /// many, or a value past its bounds. Nothing was changed.
    #[error(transparent)]
    CartAttribute(#[from] CartAttributeError),
    /// An order was asked to expire while its payment window is open.
    #[error("order {order} awaits payment until {closes_at}")]
    PaymentWindowOpen {
        /// The order.
        order: OrderId,
        /// When its payment window closes.
        closes_at: crate::clock::Timestamp,
    },
    /// Tax could not be computed (a category without a rate, a failing tax
    /// service). A [`TaxError::Money`] converts to [`Error::Money`] instead,
    /// so that an overflow is one error wherever it happens.
    #[error(transparent)]
    Tax(TaxError),
    /// Money arithmetic failed: an amount does not fit in `i64` minor units
    /// ([`MoneyError::Overflow`], for example a cart too expensive to
    /// price), or currencies were mixed.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Input did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The payment gateway failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// A webhook was refused (bad signature, stale, malformed).
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The store's backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<TaxError> for Error {
    fn from(error: TaxError) -> Self {
        match error {
            TaxError::Money(money) => Error::Money(money),
            other => Error::Tax(other),
        }
    }
}

impl Error {
    /// A [`Error::NotFound`].
    pub fn not_found(entity: Entity, id: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// Whether the same call may succeed if simply retried (a serialization
    /// failure, a deadlock, a transient gateway or connection failure).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Backend(e) => e.is_retryable(),
            Error::Gateway(e) => e.is_retryable(),
            Error::Tax(TaxError::Service { retryable, .. }) => *retryable,
            Error::CartChanged(_) => true,
            _ => false,
        }
    }
}

/// The kind of a backend failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// A uniqueness or integrity conflict (for example a unique violation).
    Conflict,
    /// A transient conflict the backend asks to retry (serialization failure,
    /// deadlock).
    Retryable,
    /// The backend cannot be reached or has no capacity now.
    Unavailable,
    /// A wait the store bounds ran out before the operation did anything
    /// it keeps: no free connection within the acquire timeout, a lock not
    /// granted within the lock timeout, a statement cut off by the
    /// statement timeout. Retry after a short pause; nothing was written.
    Busy,
    /// Anything else: a bug, a schema mismatch, corrupt data.
    Other,
}

/// A failure of a store's backend, classified, with the driver's error kept
/// as the source.
#[derive(Debug, thiserror::Error)]
#[error("store backend error ({kind:?}): {message}")]
pub struct BackendError {
    kind: BackendErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl BackendError {
    /// A backend error of `kind`.
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` (the driver's error) as the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// Whether retrying the operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            BackendErrorKind::Retryable | BackendErrorKind::Unavailable | BackendErrorKind::Busy
        )
    }
}
