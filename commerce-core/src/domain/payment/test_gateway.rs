//! The deterministic test gateway: no keys, no network.

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

use super::{
    GatewayError, PaymentEvent, PaymentEventKind, PaymentGateway, PaymentSession, RefundReceipt,
    WebhookError, WebhookOutcome, WebhookRequest,
};

/// The header the [`TestGateway`] signs its webhooks in.
pub const TEST_SIGNATURE_HEADER: &str = "test-signature";

/// How far a [`TestGateway`] webhook timestamp may be from the clock.
pub const TEST_WEBHOOK_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
/// - Sessions are `test_session_{order id}` at `https://pay.invalid/checkout/{order id}`
///   (or under the base given to [`with_payment_page`](Self::with_payment_page)).
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
    payment_page: Arc<str>,
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
            payment_page: Arc::from("https://pay.invalid/checkout"),
            state: Arc::default(),
        }
    }

    /// The same gateway sending buyers to `{base}/{order id}` (an example
    /// shop's own fake payment page, say) instead of
    /// `https://pay.invalid/checkout/{order id}`. A trailing `/` is
    /// ignored.
    pub fn with_payment_page(mut self, base: &str) -> Self {
        self.payment_page = Arc::from(base.trim_end_matches('/'));
        self
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
            redirect_url: format!("{}/{}", self.payment_page, order.id),
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
