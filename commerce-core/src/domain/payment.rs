//! Payments: the gateway trait, the domain payment events it produces, and a
//! deterministic test gateway that needs no keys and no network.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock::Timestamp;
use crate::ids::{OrderId, PaymentEventId, TenantId};
use crate::money::{Currency, Money};
use crate::order::{Order, Refund};

/// A hosted payment page the buyer is sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSession {
    /// The provider's session id.
    pub id: String,
    /// Where to redirect the buyer.
    pub redirect_url: String,
    /// When the provider will stop accepting payment on it.
    pub expires_at: Timestamp,
}

/// What the provider says happened to an order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The header the [`TestGateway`] signs its webhooks in.
pub const TEST_SIGNATURE_HEADER: &str = "test-signature";

/// How far a [`TestGateway`] webhook timestamp may be from the clock.
pub const TEST_WEBHOOK_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Serialize, Deserialize)]
struct TestWebhookBody {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    payment_ref: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Default)]
struct TestGatewayState {
    sessions: Vec<OrderId>,
    paid_sessions: std::collections::HashMap<String, PaymentEvent>,
    refund_calls: Vec<Refund>,
    failing_refunds: usize,
}

/// A deterministic payment gateway for examples and tests: no keys, no
/// network. Clones share their record of calls.
///
/// - Sessions are `test_session_{order id}` at `https://pay.invalid/checkout/{order id}`.
/// - Webhooks are JSON signed like Stripe's: header `test-signature:
///   t={unix seconds},v1={hex HMAC-SHA256 of "{t}.{body}"}`, within 300 seconds
///   of the clock. [`TestGateway::webhook`] builds a signed delivery of any
///   [`PaymentEvent`]. Event types are `payment.succeeded`, `payment.failed`,
///   `session.expired` and `payment.refunded`; any other type is acknowledged
///   and ignored.
/// - [`pay_session`](Self::pay_session) plays a buyer paying an order's
///   session; [`confirm_session`](PaymentGateway::confirm_session) then
///   reports it with the event id `test-confirmation:{session id}`.
/// - Refunds succeed with `test_refund_{refund id}` and are recorded, so a
///   test can count them; [`fail_next_refunds`](Self::fail_next_refunds) makes
///   the next ones fail transiently.
#[derive(Debug, Clone)]
pub struct TestGateway {
    secret: Arc<[u8]>,
    state: Arc<Mutex<TestGatewayState>>,
}

impl Default for TestGateway {
    fn default() -> Self {
        Self::new("whsec_test")
    }
}

impl TestGateway {
    /// The event id prefix of [`confirm_session`](PaymentGateway::confirm_session)'s events.
    pub const CONFIRMATION_PREFIX: &'static str = "test-confirmation:";

    /// Plays the buyer paying the session of `order` in full: a later
    /// [`confirm_session`](PaymentGateway::confirm_session) of it reports
    /// the payment. Returns the session id.
    pub fn pay_session(&self, order: &Order) -> Result<String, GatewayError> {
        let session = format!("test_session_{}", order.id);
        let id = PaymentEventId::parse(format!("{}{session}", Self::CONFIRMATION_PREFIX)).map_err(
            |e| GatewayError::Other {
                message: e.to_string(),
                source: None,
            },
        )?;
        let event = PaymentEvent {
            id,
            tenant: order.tenant.clone(),
            order: order.id,
            kind: PaymentEventKind::Succeeded {
                amount: order.total(),
                payment_ref: Some(format!("test_payment_{}", order.id)),
            },
        };
        self.state
            .lock()
            .paid_sessions
            .insert(session.clone(), event);
        Ok(session)
    }

    /// A gateway signing webhooks with `secret`.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            secret: Arc::from(secret.as_ref()),
            state: Arc::default(),
        }
    }

    /// HMAC-SHA256 of `"{timestamp}.{body}"` under the secret. HMAC takes
    /// keys of any length, so `None` cannot happen in practice.
    fn mac(&self, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        Some(mac)
    }

    fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        self.mac(timestamp, body)
            .map(|mac| hex::encode(mac.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// A delivery of `event`, signed at `at`.
    pub fn webhook(&self, event: &PaymentEvent, at: Timestamp) -> WebhookRequest {
        let (event_type, amount, payment_ref, reason) = match &event.kind {
            PaymentEventKind::Succeeded {
                amount,
                payment_ref,
            } => (
                "payment.succeeded",
                Some(*amount),
                payment_ref.clone(),
                None,
            ),
            PaymentEventKind::Failed { reason } => {
                ("payment.failed", None, None, Some(reason.clone()))
            }
            PaymentEventKind::SessionExpired => ("session.expired", None, None, None),
            PaymentEventKind::Refunded { amount } => {
                ("payment.refunded", Some(*amount), None, None)
            }
        };
        let body = TestWebhookBody {
            id: event.id.to_string(),
            event_type: event_type.to_owned(),
            tenant: Some(event.tenant.to_string()),
            order: Some(event.order.to_string()),
            amount: amount.map(Money::minor),
            currency: amount.map(|m| m.currency().code().to_owned()),
            payment_ref,
            reason,
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.signed_raw(body, at)
    }

    /// Signs an arbitrary body at `at` (for testing unknown event types).
    pub fn signed_raw(&self, body: impl Into<Vec<u8>>, at: Timestamp) -> WebhookRequest {
        let body = body.into();
        let t = at.timestamp();
        let header = format!("t={t},v1={}", self.signature(t, &body));
        WebhookRequest::new(body).with_header(TEST_SIGNATURE_HEADER, header)
    }

    /// The orders sessions were created for, in call order.
    pub fn sessions_created(&self) -> Vec<OrderId> {
        self.state.lock().sessions.clone()
    }

    /// Every refund call received, in order (including failed ones).
    pub fn refund_calls(&self) -> Vec<Refund> {
        self.state.lock().refund_calls.clone()
    }

    /// Makes the next `count` refund calls fail with a transient error.
    pub fn fail_next_refunds(&self, count: usize) {
        self.state.lock().failing_refunds = count;
    }

    fn verify(&self, request: &WebhookRequest, now: Timestamp) -> Result<(), WebhookError> {
        let header = request
            .header(TEST_SIGNATURE_HEADER)
            .filter(|h| !h.trim().is_empty())
            .ok_or(WebhookError::MissingSignature)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => {
                    timestamp = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| WebhookError::MalformedSignature)?,
                    )
                }
                Some(("v1", value)) => signatures.push(value),
                Some(_) => {}
                None => return Err(WebhookError::MalformedSignature),
            }
        }
        let timestamp = timestamp.ok_or(WebhookError::MalformedSignature)?;
        if signatures.is_empty() {
            return Err(WebhookError::MalformedSignature);
        }
        let matches = signatures.iter().any(|candidate| {
            let Ok(bytes) = hex::decode(candidate) else {
                return false;
            };
            self.mac(timestamp, request.body())
                .is_some_and(|mac| mac.verify_slice(&bytes).is_ok())
        });
        if !matches {
            return Err(WebhookError::BadSignature);
        }
        let age = now.timestamp().saturating_sub(timestamp);
        if age.abs() > TEST_WEBHOOK_TOLERANCE_SECONDS {
            return Err(WebhookError::TimestampOutOfTolerance {
                age_seconds: age,
                tolerance_seconds: TEST_WEBHOOK_TOLERANCE_SECONDS,
            });
        }
        Ok(())
    }
}

fn parse_test_event(body: TestWebhookBody) -> Result<WebhookOutcome, WebhookError> {
    let malformed = |what: &str| WebhookError::MalformedBody(what.to_owned());
    let amount = |body: &TestWebhookBody| -> Result<Money, WebhookError> {
        let minor = body.amount.ok_or_else(|| malformed("missing amount"))?;
        let currency: Currency = body
            .currency
            .as_deref()
            .ok_or_else(|| malformed("missing currency"))?
            .parse()
            .map_err(|_| malformed("unknown currency"))?;
        Ok(Money::new(minor, currency))
    };
    let kind = match body.event_type.as_str() {
        "payment.succeeded" => PaymentEventKind::Succeeded {
            amount: amount(&body)?,
            payment_ref: body.payment_ref.clone(),
        },
        "payment.failed" => PaymentEventKind::Failed {
            reason: body.reason.clone().unwrap_or_default(),
        },
        "session.expired" => PaymentEventKind::SessionExpired,
        "payment.refunded" => PaymentEventKind::Refunded {
            amount: amount(&body)?,
        },
        _ => {
            return Ok(WebhookOutcome::Ignored {
                event_type: body.event_type,
            });
        }
    };
    let id = PaymentEventId::parse(body.id).map_err(|e| malformed(&e.to_string()))?;
    let tenant =
        TenantId::parse(body.tenant.unwrap_or_default()).map_err(|e| malformed(&e.to_string()))?;
    let order = body
        .order
        .unwrap_or_default()
        .parse::<OrderId>()
        .map_err(|e| malformed(&e.to_string()))?;
    Ok(WebhookOutcome::Event(PaymentEvent {
        id,
        tenant,
        order,
        kind,
    }))
}

#[async_trait]
impl PaymentGateway for TestGateway {
    async fn create_session(
        &self,
        order: &Order,
        _now: Timestamp,
    ) -> Result<PaymentSession, GatewayError> {
        self.state.lock().sessions.push(order.id);
        Ok(PaymentSession {
            id: format!("test_session_{}", order.id),
            redirect_url: format!("https://pay.invalid/checkout/{}", order.id),
            expires_at: order.payment_expires_at,
        })
    }

    async fn parse_webhook(
        &self,
        request: &WebhookRequest,
        now: Timestamp,
    ) -> Result<WebhookOutcome, WebhookError> {
        self.verify(request, now)?;
        let body: TestWebhookBody = serde_json::from_slice(request.body())
            .map_err(|e| WebhookError::MalformedBody(e.to_string()))?;
        parse_test_event(body)
    }

    async fn confirm_session(
        &self,
        session_id: &str,
    ) -> Result<Option<PaymentEvent>, GatewayError> {
        Ok(self.state.lock().paid_sessions.get(session_id).cloned())
    }

    async fn refund(&self, refund: &Refund) -> Result<RefundReceipt, GatewayError> {
        let mut state = self.state.lock();
        state.refund_calls.push(refund.clone());
        if state.failing_refunds > 0 {
            state.failing_refunds -= 1;
            return Err(GatewayError::Transient {
                message: "test gateway: refund failure injected".into(),
            });
        }
        Ok(RefundReceipt {
            provider_ref: format!("test_refund_{}", refund.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn event() -> PaymentEvent {
        PaymentEvent {
            id: PaymentEventId::parse("evt_1").unwrap(),
            tenant: TenantId::parse("shop").unwrap(),
            order: OrderId::new(),
            kind: PaymentEventKind::Succeeded {
                amount: Money::new(1000, Currency::AUD),
                payment_ref: Some("pay_1".into()),
            },
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn webhook_round_trip_and_refusals() {
        let gateway = TestGateway::default();
        let clock = ManualClock::at_unix(1_767_225_600);
        let now = clock.now();
        let e = event();
        let request = gateway.webhook(&e, now);
        assert_eq!(
            block_on(gateway.parse_webhook(&request, now)),
            Ok(WebhookOutcome::Event(e.clone()))
        );

        let other = TestGateway::new("another secret");
        assert_eq!(
            block_on(other.parse_webhook(&request, now)),
            Err(WebhookError::BadSignature)
        );

        let mut tampered = request.clone();
        tampered.body.push(b' ');
        assert_eq!(
            block_on(gateway.parse_webhook(&tampered, now)),
            Err(WebhookError::BadSignature)
        );

        let unsigned = WebhookRequest::new(request.body().to_vec());
        assert_eq!(
            block_on(gateway.parse_webhook(&unsigned, now)),
            Err(WebhookError::MissingSignature)
        );
        let garbage =
            WebhookRequest::new(request.body().to_vec()).with_header("Test-Signature", "nonsense");
        assert_eq!(
            block_on(gateway.parse_webhook(&garbage, now)),
            Err(WebhookError::MalformedSignature)
        );

        clock.advance(std::time::Duration::from_secs(301));
        assert!(matches!(
            block_on(gateway.parse_webhook(&request, clock.now())),
            Err(WebhookError::TimestampOutOfTolerance {
                age_seconds: 301,
                ..
            })
        ));
    }

    #[test]
    fn unknown_event_types_are_ignored() {
        let gateway = TestGateway::default();
        let now = ManualClock::at_unix(1_767_225_600).now();
        let request = gateway.signed_raw(
            r#"{"id":"evt_9","type":"customer.created","extra":{"a":1}}"#,
            now,
        );
        assert_eq!(
            block_on(gateway.parse_webhook(&request, now)),
            Ok(WebhookOutcome::Ignored {
                event_type: "customer.created".into()
            })
        );
    }
}
