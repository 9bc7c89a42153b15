//! Payments: the gateway trait, the domain payment events it produces, and a
//! deterministic test gateway that needs no keys and no network.

mod test_gateway;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{OrderId, PaymentEventId, TenantId};
use crate::money::Money;
use crate::order::{Order, Refund};

/// A hosted payment page the buyer is sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentSession {
    /// The provider's session id.
    pub id: String,
    /// Where to redirect the buyer.
    pub redirect_url: String,
    /// When the provider will stop accepting payment on it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

/// What the provider says happened to an order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentEventKind {
    /// The buyer paid `amount`.
    Succeeded {
        /// The amount and currency paid.
        amount: Money,
        /// The provider's reference of the payment (used to refund it).
        payment_ref: Option<String>,
    },
    /// A payment attempt failed.
    Failed {
        /// The provider's reason.
        reason: String,
    },
    /// The payment session expired unpaid.
    SessionExpired,
    /// The provider refunded the payment.
    Refunded {
        /// The amount refunded.
        amount: Money,
    },
}

/// A domain payment event: one provider event about one order. Its `id` is
/// the provider's event id, on which exactly-once application is keyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentEvent {
    /// The provider's event id.
    pub id: PaymentEventId,
    /// The tenant the order belongs to.
    pub tenant: TenantId,
    /// The order.
    pub order: OrderId,
    /// What happened.
    pub kind: PaymentEventKind,
}

/// An incoming webhook delivery: its headers and raw body, exactly as
/// received (signatures are computed over the raw bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookRequest {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl WebhookRequest {
    /// A delivery with `body` and no headers yet.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What a verified webhook means.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookOutcome {
    /// An event the core acts on.
    Event(PaymentEvent),
    /// A genuine event the core does not act on; acknowledge it.
    Ignored {
        /// The provider's event type.
        event_type: String,
    },
}

/// A webhook that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature header is missing or empty.
    #[error("missing webhook signature")]
    MissingSignature,
    /// The signature header cannot be parsed.
    #[error("malformed webhook signature header")]
    MalformedSignature,
    /// No signature matches the body under any configured secret.
    #[error("webhook signature does not match")]
    BadSignature,
    /// The signed timestamp is too far from the clock.
    #[error(
        "webhook timestamp is {age_seconds}s from now, beyond the {tolerance_seconds}s tolerance"
    )]
    TimestampOutOfTolerance {
        /// Seconds between the signed timestamp and now (negative: in the future).
        age_seconds: i64,
        /// The tolerance.
        tolerance_seconds: i64,
    },
    /// The signature holds but the body is not an event that can be read.
    #[error("malformed webhook body: {0}")]
    MalformedBody(String),
}

/// A failure of the payment provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The provider refused the request (bad parameters, card declined...).
    #[error("payment provider refused the request: {message}")]
    Rejected {
        /// The provider's message.
        message: String,
    },
    /// A failure that may pass (timeout, rate limit, server error). The same
    /// request, with the same idempotency key, may be retried.
    #[error("transient payment provider failure: {message}")]
    Transient {
        /// What happened.
        message: String,
    },
    /// The gateway cannot serve this order (a payment window the provider
    /// does not accept, a currency it does not support...).
    #[error("unsupported by the payment gateway: {message}")]
    Unsupported {
        /// What is unsupported.
        message: String,
    },
    /// Anything else, with its cause.
    #[error("payment gateway error: {message}")]
    Other {
        /// What happened.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl GatewayError {
    /// Whether retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, GatewayError::Transient { .. })
    }
}

/// The provider's confirmation of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundReceipt {
    /// The provider's refund reference.
    pub provider_ref: String,
}

/// A payment provider.
///
/// # Behavior
///
/// - [`create_session`](Self::create_session) must be idempotent per order: a
///   retried call for the same order must not create a second payable
///   session (send an idempotency key derived from the order id).
/// - [`parse_webhook`](Self::parse_webhook) verifies the delivery's
///   signature against `now` (from the core's clock) before reading it, and
///   never treats an unknown event type or field as an error.
/// - [`confirm_session`](Self::confirm_session) reads a session back for a
///   buyer returning from it; the event it returns has an id of its own
///   that a repeated confirmation repeats, so that confirmations and the
///   provider's webhook apply the payment once between them.
/// - [`refund`](Self::refund) sends [`Refund::id`] as the idempotency key; a
///   refund the provider reports as already made is a success.
#[async_trait]
pub trait PaymentGateway: Send + Sync + fmt::Debug + 'static {
    /// Creates a payment session for `order`, expiring at the order's
    /// payment window. `now` is the engine's clock: a provider that measures
    /// a session's life from its creation (Stripe: 30 minutes to 24 hours)
    /// checks what is left of the window against it.
    async fn create_session(
        &self,
        order: &Order,
        now: Timestamp,
    ) -> Result<PaymentSession, GatewayError>;

    /// Verifies and reads a webhook delivery.
    async fn parse_webhook(
        &self,
        request: &WebhookRequest,
        now: Timestamp,
    ) -> Result<WebhookOutcome, WebhookError>;

    /// Reads back the payment session `session_id` a buyer returned from
    /// (the storefront's success page) and returns the payment event it
    /// amounts to: `None` until it is paid, or when it is not a session of
    /// this gateway. A `session_id` comes from a URL: refuse anything that
    /// is not a well-formed session id before sending it anywhere.
    async fn confirm_session(&self, session_id: &str)
    -> Result<Option<PaymentEvent>, GatewayError>;

    /// Refunds a payment.
    async fn refund(&self, refund: &Refund) -> Result<RefundReceipt, GatewayError>;
}

/// A shared, type-erased gateway.
pub type DynPaymentGateway = dyn PaymentGateway;

pub use test_gateway::{TEST_SIGNATURE_HEADER, TEST_WEBHOOK_TOLERANCE_SECONDS, TestGateway};
