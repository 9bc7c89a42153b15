//! A local fake of the Stripe API (axum on an ephemeral loopback port) that
//! records every request and answers with realistic bodies, plus helpers to
//! build an engine on it and sign webhooks.
//!
//! The fake emulates Stripe's idempotency layer: a key seen before with the
//! same parameters replays the saved answer; with other parameters it is an
//! `idempotency_error`. Injected failures happen "before execution", as a
//! load balancer's 5xx would, so they are not saved.

// Helpers of integration tests: a failed expectation panics the test, and
// each test binary uses a different subset of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    reason = "test helpers: panicking is how they fail a test"
)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use commerce_core::testkit::{PAYMENT_WINDOW, START_UNIX, TTL};
use commerce_core::{
    Clock, Commerce, Config, InMemoryStore, ManualClock, TenantId, WebhookRequest,
};
use commerce_stripe::{SIGNATURE_HEADER, StripeGateway, StripeGatewayBuilder, signature_header};
use serde_json::{Value, json};

/// The webhook signing secret the tests' gateways trust.
pub const WEBHOOK_SECRET: &str = "whsec_test_commerce_stripe_fake";
/// The secret key the tests' gateways use.
pub const SECRET_KEY: &str = "sk_test_commerce_stripe_fake";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The form-encoded body, decoded, in order.
    pub form: Vec<(String, String)>,
    pub raw_body: String,
}

impl Recorded {
    /// The value of form field `name` (`line_items[0][quantity]`...).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The parameters, sorted (the order of map keys in a form body varies).
    pub fn params(&self) -> Vec<(String, String)> {
        let mut params = self.form.clone();
        params.sort();
        params
    }

    /// The form field `name`, which must be there.
    pub fn get(&self, name: &str) -> &str {
        self.field(name)
            .unwrap_or_else(|| panic!("no form field {name} in {:?}", self.form))
    }
}

#[derive(Debug, Clone)]
struct Saved {
    fingerprint: String,
    status: StatusCode,
    body: Value,
}

#[derive(Debug, Clone)]
struct Injected {
    path: String,
    status: Option<StatusCode>,
    body: String,
    delay: Duration,
}

#[derive(Debug, Default)]
struct FakeState {
    requests: Vec<Recorded>,
    idempotency: HashMap<String, Saved>,
    injected: VecDeque<Injected>,
    sessions: HashMap<String, Value>,
    session_order: Vec<String>,
    refunds: Vec<Value>,
    /// Refunded amount per payment intent.
    refunded: HashMap<String, i64>,
    /// Captured amount per payment intent (set when a session is paid).
    captured: HashMap<String, (i64, String)>,
    counter: u64,
}

/// The fake Stripe API.
#[derive(Debug, Clone)]
pub struct FakeStripe {
    /// `http://127.0.0.1:{port}/`.
    pub base: String,
    state: Arc<Mutex<FakeState>>,
}

fn stripe_error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!("https://stripe.com/docs/error-codes/{code}"));
    }
    (
        status,
        [
            ("content-type", "application/json"),
            ("request-id", "req_fake"),
        ],
        json!({ "error": error }).to_string(),
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("request-id", "req_fake"),
        ],
        body.to_string(),
    )
        .into_response()
}

impl FakeStripe {
    /// Starts the fake on an ephemeral loopback port, on the current runtime.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .route("/v1/checkout/sessions/{id}", get(retrieve_session))
            .fallback(not_found)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, state }
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests to `path` (`/v1/refunds`...).
    pub fn requests_to(&self, method: Method, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// How many distinct Checkout Sessions exist.
    pub fn session_count(&self) -> usize {
        self.state.lock().unwrap().sessions.len()
    }

    /// How many distinct refunds exist.
    pub fn refund_count(&self) -> usize {
        self.state.lock().unwrap().refunds.len()
    }

    /// The Checkout Session `id`, as Stripe would return it.
    pub fn session(&self, id: &str) -> Value {
        self.state.lock().unwrap().sessions[id].clone()
    }

    /// The next `times` requests to `path` fail with `status` and a Stripe
    /// error body, before reaching the idempotency layer.
    pub fn fail_next(&self, path: &str, status: u16, times: usize) {
        let body = json!({ "error": {
            "type": "api_error",
            "message": "An unknown error occurred (injected by the fake)."
        }})
        .to_string();
        self.inject(path, Some(status), body, Duration::ZERO, times);
    }

    /// The next `times` requests to `path` fail with `status` and a body that
    /// is not a Stripe error (a proxy's page).
    pub fn fail_next_with_html(&self, path: &str, status: u16, times: usize) {
        let body = "<html><body>502 Bad Gateway</body></html>".to_owned();
        self.inject(path, Some(status), body, Duration::ZERO, times);
    }

    /// The next `times` requests to `path` are answered only after `delay`
    /// (and then normally).
    pub fn delay_next(&self, path: &str, delay: Duration, times: usize) {
        self.inject(path, None, String::new(), delay, times);
    }

    fn inject(&self, path: &str, status: Option<u16>, body: String, delay: Duration, times: usize) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..times {
            state.injected.push_back(Injected {
                path: path.to_owned(),
                status: status.map(|s| StatusCode::from_u16(s).unwrap()),
                body: body.clone(),
                delay,
            });
        }
    }

    /// Marks the session paid, as Stripe would once the buyer paid, and
    /// returns it with its new payment intent.
    pub fn pay_session(&self, id: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        state.counter += 1;
        let intent = format!("pi_test_{:04}", state.counter);
        let session = state.sessions.get_mut(id).unwrap();
        session["payment_status"] = json!("paid");
        session["status"] = json!("complete");
        session["payment_intent"] = json!(intent);
        let amount = session["amount_total"].as_i64().unwrap();
        let currency = session["currency"].as_str().unwrap().to_owned();
        let session = session.clone();
        state.captured.insert(intent, (amount, currency));
        session
    }
}

async fn record(
    state: &Arc<Mutex<FakeState>>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Recorded, Option<Injected>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let raw_body = String::from_utf8(body.to_vec()).unwrap();
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&raw_body).unwrap();
    let recorded = Recorded {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        idempotency_key: header("idempotency-key"),
        stripe_version: header("stripe-version"),
        authorization: header("authorization"),
        content_type: header("content-type"),
        form,
        raw_body,
    };
    let injected = {
        let mut state = state.lock().unwrap();
        state.requests.push(recorded.clone());
        let position = state.injected.iter().position(|i| i.path == recorded.path);
        position.and_then(|p| state.injected.remove(p))
    };
    if let Some(injected) = &injected
        && !injected.delay.is_zero()
    {
        tokio::time::sleep(injected.delay).await;
    }
    (recorded, injected.filter(|i| i.status.is_some()))
}

/// Runs `execute` under Stripe's idempotency rules for `recorded`.
fn idempotent(
    state: &Arc<Mutex<FakeState>>,
    recorded: &Recorded,
    execute: impl FnOnce(&mut FakeState) -> (StatusCode, Value),
) -> Response {
    let mut state = state.lock().unwrap();
    // Stripe compares the parameters, not the bytes: the order of a
    // map's keys in the form body does not matter.
    let mut params = recorded.form.clone();
    params.sort();
    let fingerprint = format!("{} {} {params:?}", recorded.method, recorded.path);
    if let Some(saved) = recorded
        .idempotency_key
        .as_ref()
        .and_then(|key| state.idempotency.get(key))
    {
        if saved.fingerprint != fingerprint {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than the one you used if you \
                 meant to execute a different request.",
            );
        }
        let mut response = json_response(saved.status, &saved.body);
        response
            .headers_mut()
            .insert("idempotent-replayed", "true".parse().unwrap());
        return response;
    }
    let (status, body) = execute(&mut state);
    if let Some(key) = &recorded.idempotency_key {
        state.idempotency.insert(
            key.clone(),
            Saved {
                fingerprint,
                status,
                body: body.clone(),
            },
        );
    }
    json_response(status, &body)
}

fn metadata_of(recorded: &Recorded, prefix: &str) -> Value {
    let mut metadata = serde_json::Map::new();
    for (key, value) in &recorded.form {
        if let Some(name) = key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.strip_suffix(']'))
        {
            metadata.insert(name.to_owned(), json!(value));
        }
    }
    Value::Object(metadata)
}

async fn create_session(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (recorded, injected) = record(&state, method, &uri, &headers, &body).await;
    if let Some(injected) = injected {
        return (injected.status.unwrap(), injected.body).into_response();
    }
    idempotent(&state, &recorded, |state| {
        let mut amount_total = 0_i64;
        let mut currency = None;
        for i in 0.. {
            let Some(unit) = recorded.field(&format!("line_items[{i}][price_data][unit_amount]"))
            else {
                break;
            };
            let quantity: i64 = recorded
                .get(&format!("line_items[{i}][quantity]"))
                .parse()
                .unwrap();
            amount_total += unit.parse::<i64>().unwrap() * quantity;
            currency = recorded
                .field(&format!("line_items[{i}][price_data][currency]"))
                .map(str::to_owned);
        }
        if recorded.field("mode") != Some("payment") || currency.is_none() {
            return (
                StatusCode::BAD_REQUEST,
                json!({ "error": { "type": "invalid_request_error",
                    "message": "Missing required param: line_items." } }),
            );
        }
        state.counter += 1;
        let id = format!("cs_test_{:04}", state.counter);
        let mut session: Value = serde_json::from_str(SESSION_TEMPLATE).unwrap();
        let fields = [
            ("id", json!(id)),
            ("amount_subtotal", json!(amount_total)),
            ("amount_total", json!(amount_total)),
            ("cancel_url", json!(recorded.field("cancel_url"))),
            (
                "client_reference_id",
                json!(recorded.field("client_reference_id")),
            ),
            ("created", json!(START_UNIX)),
            ("currency", json!(currency)),
            (
                "expires_at",
                json!(recorded.get("expires_at").parse::<i64>().unwrap()),
            ),
            ("metadata", metadata_of(&recorded, "metadata")),
            ("success_url", json!(recorded.field("success_url"))),
            (
                "url",
                json!(format!(
                    "https://checkout.stripe.com/c/pay/{id}#fidkdWxOYHwnPyd1blpxYHZxWjA0"
                )),
            ),
        ];
        for (name, value) in fields {
            session[name] = value;
        }
        state.sessions.insert(id.clone(), session.clone());
        state.session_order.push(id);
        (StatusCode::OK, session)
    })
}

/// A Checkout Session as the API returns it, with the fields the fake fills
/// in per request left null, and one field from a newer API version.
const SESSION_TEMPLATE: &str = r#"{
  "id": null,
  "object": "checkout.session",
  "adaptive_pricing": { "enabled": false },
  "after_expiration": null,
  "allow_promotion_codes": null,
  "amount_subtotal": null,
  "amount_total": null,
  "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
  "billing_address_collection": null,
  "cancel_url": null,
  "client_reference_id": null,
  "client_secret": null,
  "collected_information": null,
  "consent": null,
  "consent_collection": null,
  "created": null,
  "currency": null,
  "currency_conversion": null,
  "custom_fields": [],
  "custom_text": {
    "after_submit": null,
    "shipping_address": null,
    "submit": null,
    "terms_of_service_acceptance": null
  },
  "customer": null,
  "customer_creation": "if_required",
  "customer_details": null,
  "customer_email": null,
  "discounts": [],
  "expires_at": null,
  "invoice": null,
  "invoice_creation": {
    "enabled": false,
    "invoice_data": {
      "account_tax_ids": null,
      "custom_fields": null,
      "description": null,
      "footer": null,
      "issuer": null,
      "metadata": {},
      "rendering_options": null
    }
  },
  "livemode": false,
  "locale": null,
  "metadata": {},
  "mode": "payment",
  "payment_intent": null,
  "payment_link": null,
  "payment_method_collection": "if_required",
  "payment_method_configuration_details": null,
  "payment_method_options": { "card": { "request_three_d_secure": "automatic" } },
  "payment_method_types": ["card"],
  "payment_status": "unpaid",
  "phone_number_collection": { "enabled": false },
  "recovered_from": null,
  "saved_payment_method_options": null,
  "setup_intent": null,
  "shipping_address_collection": null,
  "shipping_cost": null,
  "shipping_options": [],
  "status": "open",
  "submit_type": null,
  "subscription": null,
  "success_url": null,
  "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
  "ui_mode": "hosted",
  "url": null,
  "wallet_options": null,
  "a_field_from_a_newer_api_version": { "anything": true }
}"#;

async fn retrieve_session(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(id): Path<String>,
) -> Response {
    let state = state.lock().unwrap();
    match state.sessions.get(&id) {
        Some(session) => json_response(StatusCode::OK, session),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such checkout.session: '{id}'"),
        ),
    }
}

async fn create_refund(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (recorded, injected) = record(&state, method, &uri, &headers, &body).await;
    if let Some(injected) = injected {
        return (injected.status.unwrap(), injected.body).into_response();
    }
    idempotent(&state, &recorded, |state| {
        let error = |status: StatusCode, code: &str, message: String| {
            (
                status,
                json!({ "error": { "type": "invalid_request_error", "code": code,
                    "message": message, "param": "payment_intent" } }),
            )
        };
        let Some(intent) = recorded.field("payment_intent").map(str::to_owned) else {
            return error(
                StatusCode::BAD_REQUEST,
                "parameter_missing",
                "Must provide payment_intent or charge.".into(),
            );
        };
        let Some((captured, currency)) = state.captured.get(&intent).cloned() else {
            return error(
                StatusCode::NOT_FOUND,
                "resource_missing",
                format!("No such payment_intent: '{intent}'"),
            );
        };
        let already = state.refunded.get(&intent).copied().unwrap_or(0);
        if already >= captured {
            return error(
                StatusCode::BAD_REQUEST,
                "charge_already_refunded",
                format!("Charge for PaymentIntent {intent} has already been refunded."),
            );
        }
        let amount = recorded
            .field("amount")
            .map_or(captured - already, |a| a.parse().unwrap());
        if amount > captured - already {
            return error(
                StatusCode::BAD_REQUEST,
                "amount_too_large",
                format!("Refund amount ({amount}) is greater than unrefunded amount."),
            );
        }
        state.refunded.insert(intent.clone(), already + amount);
        state.counter += 1;
        let refund = json!({
            "id": format!("re_test_{:04}", state.counter),
            "object": "refund",
            "amount": amount,
            "balance_transaction": format!("txn_test_{:04}", state.counter),
            "charge": format!("ch_test_for_{intent}"),
            "created": START_UNIX,
            "currency": currency,
            "destination_details": null,
            "metadata": metadata_of(&recorded, "metadata"),
            "payment_intent": intent,
            "reason": null,
            "receipt_number": null,
            "source_transfer_reversal": null,
            "status": "succeeded",
            "transfer_reversal": null
        });
        state.refunds.push(refund.clone());
        (StatusCode::OK, refund)
    })
}

async fn list_refunds(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap();
    let (_, injected) = record(&state, method, &uri, &headers, &Bytes::new()).await;
    if let Some(injected) = injected {
        return (injected.status.unwrap(), injected.body).into_response();
    }
    let state = state.lock().unwrap();
    let data: Vec<Value> = state
        .refunds
        .iter()
        .rev()
        .filter(|r| {
            query
                .get("payment_intent")
                .is_none_or(|pi| r["payment_intent"] == json!(pi))
        })
        .cloned()
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "object": "list", "data": data, "has_more": false, "url": "/v1/refunds" }),
    )
}

async fn not_found(method: Method, uri: Uri) -> Response {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        &format!("Unrecognized request URL ({method}: {}).", uri.path()),
    )
}

/// A gateway builder pointed at the fake, with fast retries.
pub fn gateway_builder(fake: &FakeStripe) -> StripeGatewayBuilder {
    StripeGateway::builder(SECRET_KEY)
        .webhook_secret(WEBHOOK_SECRET)
        .api_base(&fake.base)
        .success_url("https://shop.example/orders/{ORDER_ID}/paid?session={CHECKOUT_SESSION_ID}")
        .cancel_url("https://shop.example/{TENANT}/cart")
        .payment_window(PAYMENT_WINDOW)
        .timeout(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(5))
}

/// An engine on a new in-memory store with a Stripe gateway on `fake`, a
/// manual clock at the testkit's start, and the testkit's TTL and window.
pub fn engine(gateway: StripeGateway) -> (Commerce, ManualClock) {
    let clock = ManualClock::at_unix(START_UNIX);
    let commerce = Commerce::builder()
        .store(InMemoryStore::new())
        .gateway(gateway)
        .clock(clock.clone())
        .config(
            Config::default()
                .with_reservation_ttl(TTL)
                .with_payment_window(PAYMENT_WINDOW),
        )
        .build()
        .unwrap();
    (commerce, clock)
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// A Stripe event envelope of `event_type` about `object`, as Stripe would
/// send it (with fields this crate does not read).
pub fn event_body(id: &str, event_type: &str, object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "api_version": commerce_stripe::STRIPE_API_VERSION,
        "created": START_UNIX,
        "data": { "object": object, "previous_attributes": null },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type
    }))
    .unwrap()
}

/// `body` signed with the tests' secret at `clock`'s time.
pub fn signed(body: &[u8], clock: &impl Clock) -> WebhookRequest {
    let header = signature_header(WEBHOOK_SECRET, clock.now().timestamp(), body);
    WebhookRequest::new(body.to_vec()).with_header(SIGNATURE_HEADER, header)
}

/// Adds a product `name` with one SKU priced `price` (with `options`) to
/// `shop` and receives `on_hand` units of it.
pub async fn product(
    shop: &commerce_core::Shop,
    sku: &str,
    name: &str,
    price: commerce_core::Money,
    on_hand: u32,
    options: &[(&str, &str)],
) -> commerce_core::Sku {
    use commerce_core::{Category, NewProduct, Quantity, Sku, TaxCategory, Variant};
    let sku = Sku::parse(sku).unwrap();
    let mut variant = Variant::new(sku.clone(), price);
    for (key, value) in options {
        variant = variant.with_option(*key, *value);
    }
    shop.add_product(NewProduct {
        name: name.into(),
        category: Category::parse("goods").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        variants: vec![variant],
        published: true,
    })
    .await
    .unwrap();
    shop.receive_stock(&sku, Quantity::new(on_hand).unwrap(), None)
        .await
        .unwrap();
    sku
}

/// A cart in `currency` holding each `(sku, quantity)`.
pub async fn cart(
    shop: &commerce_core::Shop,
    currency: commerce_core::Currency,
    lines: &[(&commerce_core::Sku, u32)],
) -> commerce_core::CartId {
    let cart = shop.create_cart(currency).await.unwrap();
    for (sku, quantity) in lines {
        shop.set_line(
            cart.id,
            sku,
            commerce_core::Quantity::new(*quantity).unwrap(),
        )
        .await
        .unwrap();
    }
    cart.id
}

/// The checkout idempotency key `key`.
pub fn key(key: &str) -> commerce_core::IdempotencyKey {
    commerce_core::IdempotencyKey::parse(key).unwrap()
}

/// Σ unit_amount × quantity over the line items of a recorded checkout request.
pub fn line_items_total(request: &Recorded) -> i64 {
    (0..)
        .map_while(|i| {
            let unit = request.field(&format!("line_items[{i}][price_data][unit_amount]"))?;
            let quantity = request.get(&format!("line_items[{i}][quantity]"));
            Some(unit.parse::<i64>().unwrap() * quantity.parse::<i64>().unwrap())
        })
        .sum()
}
