//! The crate's errors, and how they become the core's [`GatewayError`].

use commerce_core::GatewayError;

/// A Stripe call that did not succeed, classified.
///
/// The [`PaymentGateway`](commerce_core::PaymentGateway) implementation turns
/// it into the core's [`GatewayError`] (see the `From` implementation); the
/// inherent methods of [`StripeGateway`](crate::StripeGateway) return it as is
/// for callers who want the details.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Stripe refused the request: a 4xx answer other than a rate limit or a
    /// conflict (bad parameters, a card error, an idempotency key reused
    /// with other parameters...). Sending it again will not help.
    #[error("Stripe refused the request (HTTP {status}, {kind}{}): {message}", code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default())]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Stripe's error type (`invalid_request_error`, `card_error`,
        /// `idempotency_error`...).
        kind: String,
        /// Stripe's error code, when it gave one (`charge_already_refunded`...).
        code: Option<String>,
        /// Stripe's message.
        message: String,
    },
    /// Stripe could not be reached or answered with a failure that may pass
    /// (a timeout, a connection error, 409, 429 or 5xx), on every attempt.
    /// Every attempt carried the same idempotency key, so sending the same
    /// request again later is safe.
    #[error("Stripe unavailable after {attempts} attempt(s): {message}")]
    Unavailable {
        /// How many attempts were made.
        attempts: u32,
        /// The HTTP status of the last attempt, when there was an answer.
        status: Option<u16>,
        /// What went wrong the last time.
        message: String,
    },
    /// The order or refund cannot be expressed as a Stripe request: a
    /// currency Stripe (or this crate) does not handle, an amount a
    /// three-decimal currency cannot carry, a payment window outside the
    /// 30 minutes to 24 hours Checkout accepts, a refund without a payment
    /// reference...
    #[error("not supported by the Stripe gateway: {0}")]
    Unsupported(String),
    /// Stripe answered with something this crate cannot read.
    #[error("unreadable answer from Stripe: {0}")]
    InvalidResponse(String),
    /// The client is misconfigured (a secret key that is not a valid header
    /// value, say).
    #[error("Stripe client configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether sending the same request again (with the same idempotency
    /// key) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Stripe's error code, for a [`Rejected`](Error::Rejected) request.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Rejected { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

impl From<Error> for GatewayError {
    fn from(error: Error) -> Self {
        match error {
            Error::Rejected { .. } => GatewayError::Rejected {
                message: error.to_string(),
            },
            Error::Unavailable { .. } => GatewayError::Transient {
                message: error.to_string(),
            },
            Error::Unsupported(message) => GatewayError::Unsupported { message },
            Error::InvalidResponse(_) | Error::Config(_) => GatewayError::Other {
                message: error.to_string(),
                source: Some(Box::new(error)),
            },
        }
    }
}

/// A [`StripeGateway`](crate::StripeGateway) that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No webhook signing secret was given: webhooks could never be verified.
    #[error("at least one webhook signing secret (whsec_...) is required")]
    NoWebhookSecret,
    /// A webhook signing secret is empty.
    #[error("a webhook signing secret is empty")]
    EmptyWebhookSecret,
    /// No success URL was given: Stripe Checkout needs one.
    #[error("a success URL is required")]
    NoSuccessUrl,
    /// The payment window is outside what Stripe Checkout accepts.
    #[error("{0}")]
    PaymentWindow(String),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// The HTTP client could not be built (a secret key that is not a valid
    /// header value, say).
    #[error("the Stripe client could not be built: {0}")]
    Client(String),
}
