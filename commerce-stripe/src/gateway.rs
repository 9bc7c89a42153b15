//! [`StripeGateway`]: the core's payment gateway on Stripe.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use commerce_core::{
    GatewayError, Order, OrderId, PaymentEvent, PaymentEventId, PaymentEventKind, PaymentGateway,
    PaymentSession, Refund, RefundReason, RefundReceipt, TenantId, Timestamp, WebhookError,
    WebhookOutcome, WebhookRequest,
};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::checkout_session::RetrieveCheckoutSession;
use stripe_core::refund::{CreateRefund, ListRefund};

use crate::amount;
use crate::checkout::{self, check_window};
use crate::error::{BuildError, Error};
use crate::event::{
    self, METADATA_ORDER, METADATA_REFUND, METADATA_REFUND_REASON, METADATA_TENANT,
};
use crate::signature::{self, DEFAULT_TOLERANCE, SIGNATURE_HEADER};

/// The prefix of the payment event id of a storefront confirmation (see
/// [`StripeGateway::confirm_checkout_session`]): the id is the prefix and
/// the Checkout Session id.
pub const CONFIRMATION_EVENT_PREFIX: &str = "stripe-checkout-confirmation:";

/// Stripe's API, as used by default.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com/";

/// The Stripe API version the pinned async-stripe release speaks, and so the
/// version webhook endpoints should be created with.
pub const STRIPE_API_VERSION: &str = "2026-09-30.endive";

/// The payment gateway of [`commerce_core`] on Stripe Checkout.
///
/// - [`create_session`](PaymentGateway::create_session) creates a Checkout
///   Session in payment mode whose total is exactly the order's grand total,
///   expiring with the order's payment window, with the idempotency key
///   `commerce-checkout-{order id}`;
/// - [`parse_webhook`](PaymentGateway::parse_webhook) verifies the
///   `Stripe-Signature` header against every configured signing secret and
///   the engine's clock, then reads the event leniently;
/// - [`refund`](PaymentGateway::refund) refunds the payment with the core's
///   refund id as idempotency key; a payment already refunded counts as done.
///
/// Failures that may pass (timeouts, connection errors, 409, 429, 5xx) are
/// retried a bounded number of times with exponential backoff, always with
/// the same idempotency key.
///
/// Cheap to clone; clones share the HTTP client.
#[derive(Clone)]
pub struct StripeGateway {
    client: Client,
    webhook_secrets: Vec<String>,
    tolerance: Duration,
    max_retries: u32,
    backoff: Duration,
    success_url: String,
    cancel_url: Option<String>,
}

impl fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys.
        f.debug_struct("StripeGateway")
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("tolerance", &self.tolerance)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("success_url", &self.success_url)
            .field("cancel_url", &self.cancel_url)
            .finish_non_exhaustive()
    }
}

/// Builds a [`StripeGateway`]; start from [`StripeGateway::builder`].
#[derive(Clone)]
pub struct StripeGatewayBuilder {
    secret_key: String,
    webhook_secrets: Vec<String>,
    api_base: String,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    tolerance: Duration,
    payment_window: Option<Duration>,
    success_url: Option<String>,
    cancel_url: Option<String>,
}

impl fmt::Debug for StripeGatewayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeGatewayBuilder")
            .field("api_base", &self.api_base)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("payment_window", &self.payment_window)
            .finish_non_exhaustive()
    }
}

impl StripeGatewayBuilder {
    /// Adds a webhook signing secret (`whsec_...`, from the endpoint's page in
    /// the dashboard or from `stripe listen`). Call it once per secret while
    /// rolling an endpoint's secret: a delivery signed by any of them is
    /// accepted.
    pub fn webhook_secret(mut self, secret: impl Into<String>) -> Self {
        self.webhook_secrets.push(secret.into());
        self
    }

    /// Where the buyer lands after paying. `{ORDER_ID}` and `{TENANT}` are
    /// replaced by the order's; Stripe replaces `{CHECKOUT_SESSION_ID}`.
    /// Required.
    pub fn success_url(mut self, url: impl Into<String>) -> Self {
        self.success_url = Some(url.into());
        self
    }

    /// Where the buyer lands after giving up, with the same placeholders as
    /// [`success_url`](Self::success_url). Optional.
    pub fn cancel_url(mut self, url: impl Into<String>) -> Self {
        self.cancel_url = Some(url.into());
        self
    }

    /// The API base URL (default [`DEFAULT_API_BASE`]); tests point it at a
    /// local fake server such as `http://127.0.0.1:4242/`.
    pub fn api_base(mut self, url: impl Into<String>) -> Self {
        let mut url = url.into();
        if !url.ends_with('/') {
            url.push('/');
        }
        self.api_base = url;
        self
    }

    /// The time one attempt may take (default 30 seconds). A timed-out
    /// attempt is retried with the same idempotency key.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a failure that may pass is retried (default 2, so at
    /// most 3 attempts).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The wait before the first retry (default 500 ms); it doubles at each
    /// retry, up to 8 seconds.
    pub fn retry_backoff(mut self, initial: Duration) -> Self {
        self.backoff = initial;
        self
    }

    /// How far a webhook's signed timestamp may be from the engine's clock,
    /// either way (default [`DEFAULT_TOLERANCE`], 300 seconds).
    pub fn webhook_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The payment window the engine is configured with
    /// ([`commerce_core::Config::payment_window`]), checked when building:
    /// Stripe Checkout accepts 30 minutes to 24 hours, so another window is
    /// refused at start-up rather than at the first checkout. Every order's
    /// own window is checked again when its session is created.
    pub fn payment_window(mut self, window: Duration) -> Self {
        self.payment_window = Some(window);
        self
    }

    /// Builds the gateway.
    ///
    /// # Errors
    ///
    /// No webhook secret or an empty one, no success URL, a payment window
    /// Stripe does not accept, a zero timeout or tolerance, or a secret key
    /// the HTTP client refuses.
    pub fn build(self) -> Result<StripeGateway, BuildError> {
        if self.webhook_secrets.is_empty() {
            return Err(BuildError::NoWebhookSecret);
        }
        if self.webhook_secrets.iter().any(|s| s.trim().is_empty()) {
            return Err(BuildError::EmptyWebhookSecret);
        }
        // A secret read from a file or the environment often ends in a newline.
        let webhook_secrets: Vec<String> = self
            .webhook_secrets
            .iter()
            .map(|s| s.trim().to_owned())
            .collect();
        let success_url = self.success_url.ok_or(BuildError::NoSuccessUrl)?;
        if let Some(window) = self.payment_window {
            check_window(window).map_err(BuildError::PaymentWindow)?;
        }
        if self.timeout.is_zero() {
            return Err(BuildError::Invalid("the timeout must not be zero".into()));
        }
        if self.tolerance.is_zero() {
            return Err(BuildError::Invalid(
                "the webhook tolerance must not be zero".into(),
            ));
        }
        if self.secret_key.trim().is_empty() {
            return Err(BuildError::Client("the secret key is empty".into()));
        }
        let client = ClientBuilder::new(self.secret_key)
            .url(self.api_base)
            .timeout(self.timeout)
            .request_strategy(RequestStrategy::Once)
            .app_info(
                env!("CARGO_PKG_NAME"),
                Some(env!("CARGO_PKG_VERSION").to_owned()),
                None,
            )
            .build()
            .map_err(|e| BuildError::Client(e.to_string()))?;
        Ok(StripeGateway {
            client,
            webhook_secrets,
            tolerance: self.tolerance,
            max_retries: self.max_retries,
            backoff: self.backoff,
            success_url,
            cancel_url: self.cancel_url,
        })
    }
}

/// What one failed attempt means.
enum Failure {
    /// May pass: retry with the same key.
    Transient {
        status: Option<u16>,
        message: String,
    },
    /// Will not pass.
    Final(Error),
}

fn classify(error: StripeError) -> Failure {
    match error {
        StripeError::Stripe(api, status) => {
            let message = api.message.clone().unwrap_or_default();
            if matches!(status, 409 | 429) || (500..=599).contains(&status) {
                Failure::Transient {
                    status: Some(status),
                    message: format!("HTTP {status}: {message}"),
                }
            } else {
                Failure::Final(Error::Rejected {
                    status,
                    kind: api.type_.as_str().to_owned(),
                    code: api.code.as_ref().map(|c| c.as_str().to_owned()),
                    message,
                })
            }
        }
        StripeError::Timeout => Failure::Transient {
            status: None,
            message: "timed out".into(),
        },
        StripeError::ClientError(message) => Failure::Transient {
            status: None,
            message,
        },
        // async-stripe reports a failure status whose body is not a Stripe
        // error (a proxy's 502 page, say) with exactly this message.
        StripeError::JSONDeserialize(message) if message == "error deserializing Stripe error" => {
            Failure::Transient {
                status: None,
                message: "an error answer that is not a Stripe error body".into(),
            }
        }
        StripeError::JSONDeserialize(message) => Failure::Final(Error::InvalidResponse(message)),
        StripeError::ConfigError(message) => Failure::Final(Error::Config(message)),
    }
}

fn key(value: &str) -> Result<IdempotencyKey, Error> {
    IdempotencyKey::new(value).map_err(|e| Error::Config(format!("idempotency key: {e}")))
}

fn refund_reason(reason: RefundReason) -> &'static str {
    match reason {
        RefundReason::Oversold => "oversold",
        RefundReason::OrderCancelled => "order_cancelled",
        RefundReason::RequestedByMerchant => "requested_by_merchant",
        _ => "other",
    }
}

impl StripeGateway {
    /// A builder for a gateway using the secret key `secret_key`
    /// (`sk_live_...`, `sk_test_...` or a restricted `rk_...` key).
    pub fn builder(secret_key: impl Into<String>) -> StripeGatewayBuilder {
        StripeGatewayBuilder {
            secret_key: secret_key.into(),
            webhook_secrets: Vec::new(),
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: Duration::from_secs(30),
            max_retries: 2,
            backoff: Duration::from_millis(500),
            tolerance: DEFAULT_TOLERANCE,
            payment_window: None,
            success_url: None,
            cancel_url: None,
        }
    }

    /// Sends one request, retrying failures that may pass with backoff.
    /// `send` must send the same request with the same idempotency key each
    /// time.
    async fn send_with_retries<T, F, Fut>(&self, mut send: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StripeError>>,
    {
        let mut attempts = 0_u32;
        let mut wait = self.backoff;
        loop {
            attempts = attempts.saturating_add(1);
            match send().await.map_err(classify) {
                Ok(output) => return Ok(output),
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Transient { status, message }) => {
                    if attempts > self.max_retries {
                        return Err(Error::Unavailable {
                            attempts,
                            status,
                            message,
                        });
                    }
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2).min(Duration::from_secs(8));
                }
            }
        }
    }

    /// Creates the Checkout Session of `order` (see
    /// [`PaymentGateway::create_session`]), with this crate's error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for an order Stripe cannot take as it is (see
    /// [`Error`]); otherwise what Stripe answered, classified.
    pub async fn create_checkout_session(
        &self,
        order: &Order,
        now: Timestamp,
    ) -> Result<PaymentSession, Error> {
        let plan = checkout::plan(order, now, &self.success_url, self.cancel_url.as_deref())?;
        let request = plan.request();
        let key = key(&checkout::idempotency_key(order))?;
        let session = self
            .send_with_retries(|| {
                request
                    .customize()
                    .request_strategy(RequestStrategy::Idempotent(key.clone()))
                    .send(&self.client)
            })
            .await?;
        let redirect_url = session.url.clone().ok_or_else(|| {
            Error::InvalidResponse(format!("Checkout Session {} has no url", session.id))
        })?;
        let expires_at = Timestamp::from_timestamp(session.expires_at, 0).ok_or_else(|| {
            Error::InvalidResponse(format!(
                "Checkout Session {} expires at an impossible time",
                session.id
            ))
        })?;
        Ok(PaymentSession {
            id: session.id.to_string(),
            redirect_url,
            expires_at,
        })
    }

    /// Reads a Checkout Session back from Stripe, for the storefront's
    /// success page, and returns the payment event it amounts to: `None`
    /// until it is paid (or when it was not created by this library).
    ///
    /// [`Commerce::confirm_return`](commerce_core::Commerce::confirm_return)
    /// calls it (as [`PaymentGateway::confirm_session`]) and applies the
    /// event to its tenant: the one way in for payments, beside webhooks. It races the `checkout.session.completed` webhook
    /// harmlessly: its id is [`CONFIRMATION_EVENT_PREFIX`] and the session
    /// id, so a reloaded success page is a duplicate, and whichever of the
    /// two arrives second finds the order paid and changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for something that is not a Checkout Session id
    /// (it comes from a URL: nothing else is sent); what Stripe answered,
    /// classified; [`Error::InvalidResponse`] for a paid session whose
    /// amount, currency or order cannot be read.
    pub async fn confirm_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<Option<PaymentEvent>, Error> {
        let well_formed = session_id.starts_with("cs_")
            && session_id.len() <= 200
            && session_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !well_formed {
            return Err(Error::Unsupported(format!(
                "{session_id:?} is not a Checkout Session id"
            )));
        }
        let request = RetrieveCheckoutSession::new(session_id);
        let session = self
            .send_with_retries(|| request.customize().send(&self.client))
            .await?;
        if session.payment_status.as_str() != "paid" {
            return Ok(None);
        }
        let metadata = session.metadata.unwrap_or_default();
        let (Some(order), Some(tenant)) =
            (metadata.get(METADATA_ORDER), metadata.get(METADATA_TENANT))
        else {
            return Ok(None);
        };
        let invalid =
            |what: String| Error::InvalidResponse(format!("session {session_id}: {what}"));
        let order: OrderId = order
            .parse()
            .map_err(|e| invalid(format!("order id {order:?}: {e}")))?;
        let tenant = TenantId::parse(tenant.as_str()).map_err(|e| invalid(e.to_string()))?;
        let (Some(total), Some(currency)) = (session.amount_total, session.currency) else {
            return Err(invalid("no amount_total or currency".into()));
        };
        let amount = amount::from_stripe(total, &currency.to_string()).map_err(invalid)?;
        let id = PaymentEventId::parse(format!("{CONFIRMATION_EVENT_PREFIX}{session_id}"))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Some(PaymentEvent {
            id,
            tenant,
            order,
            kind: PaymentEventKind::Succeeded {
                amount,
                payment_ref: session.payment_intent.map(|intent| intent.id().to_string()),
            },
        }))
    }

    /// Verifies and reads a webhook delivery (see
    /// [`PaymentGateway::parse_webhook`]). No network call is made.
    ///
    /// # Errors
    ///
    /// See [`verify_signature`](crate::verify_signature); a genuine body that
    /// is not a Stripe event, or that names an order or tenant that cannot
    /// be parsed, is [`WebhookError::MalformedBody`].
    pub fn verify_webhook(
        &self,
        request: &WebhookRequest,
        now: Timestamp,
    ) -> Result<WebhookOutcome, WebhookError> {
        signature::verify_signature(
            request.header(SIGNATURE_HEADER),
            request.body(),
            &self.webhook_secrets,
            now,
            self.tolerance,
        )?;
        event::parse_event(request.body())
    }

    /// Refunds a payment (see [`PaymentGateway::refund`]), with this crate's
    /// error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the refund has no payment reference or an
    /// amount Stripe cannot take; otherwise what Stripe answered, classified.
    pub async fn refund_payment(&self, refund: &Refund) -> Result<RefundReceipt, Error> {
        let payment = refund.payment_ref.as_deref().ok_or_else(|| {
            Error::Unsupported(format!(
                "refund {} of order {} has no Stripe payment reference",
                refund.id, refund.order
            ))
        })?;
        let amount = amount::to_stripe(refund.amount)?;
        let metadata = HashMap::from([
            (METADATA_REFUND.to_owned(), refund.id.to_string()),
            (
                METADATA_REFUND_REASON.to_owned(),
                refund_reason(refund.reason).to_owned(),
            ),
            (METADATA_ORDER.to_owned(), refund.order.to_string()),
            (METADATA_TENANT.to_owned(), refund.tenant.to_string()),
        ]);
        let request = CreateRefund::new().amount(amount).metadata(metadata);
        let is_charge = payment.starts_with("ch_") || payment.starts_with("py_");
        let request = if is_charge {
            request.charge(payment)
        } else {
            request.payment_intent(payment)
        };
        let key = key(refund.id.as_str())?;
        let result = self
            .send_with_retries(|| {
                request
                    .customize()
                    .request_strategy(RequestStrategy::Idempotent(key.clone()))
                    .send(&self.client)
            })
            .await;
        match result {
            Ok(made) => match made.status.as_deref() {
                Some(status @ ("failed" | "canceled")) => Err(Error::Rejected {
                    status: 200,
                    kind: "refund_failed".into(),
                    code: made.failure_reason.clone(),
                    message: format!("refund {} is {status}", made.id),
                }),
                _ => Ok(RefundReceipt {
                    provider_ref: made.id.to_string(),
                }),
            },
            Err(error) if error.code() == Some("charge_already_refunded") => {
                Ok(self.existing_refund(payment, is_charge).await)
            }
            Err(error) => Err(error),
        }
    }

    /// The receipt of a payment Stripe says is already refunded: its most
    /// recent refund that did not fail, or a marker naming the payment when
    /// the refunds cannot be listed.
    async fn existing_refund(&self, payment: &str, is_charge: bool) -> RefundReceipt {
        let list = ListRefund::new().limit(10);
        let list = if is_charge {
            list.charge(payment)
        } else {
            list.payment_intent(payment)
        };
        let found = self
            .send_with_retries(|| list.customize().send(&self.client))
            .await
            .ok()
            .and_then(|refunds| {
                refunds
                    .data
                    .into_iter()
                    .find(|r| !matches!(r.status.as_deref(), Some("failed" | "canceled")))
            });
        RefundReceipt {
            provider_ref: found.map_or_else(
                || format!("already_refunded:{payment}"),
                |refund| refund.id.to_string(),
            ),
        }
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn create_session(
        &self,
        order: &Order,
        now: Timestamp,
    ) -> Result<PaymentSession, GatewayError> {
        Ok(self.create_checkout_session(order, now).await?)
    }

    async fn parse_webhook(
        &self,
        request: &WebhookRequest,
        now: Timestamp,
    ) -> Result<WebhookOutcome, WebhookError> {
        self.verify_webhook(request, now)
    }

    async fn confirm_session(
        &self,
        session_id: &str,
    ) -> Result<Option<PaymentEvent>, GatewayError> {
        Ok(self.confirm_checkout_session(session_id).await?)
    }

    async fn refund(&self, refund: &Refund) -> Result<RefundReceipt, GatewayError> {
        Ok(self.refund_payment(refund).await?)
    }
}
