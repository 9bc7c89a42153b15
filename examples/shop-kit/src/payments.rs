//! Which payment gateway a shop runs on, and the local payment page.
//!
//! With `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` both set, buyers pay
//! on Stripe Checkout and Stripe's webhooks arrive at the shop's webhook
//! route. Otherwise the shop runs on commerce-core's [`TestGateway`] and
//! sends buyers to its own payment page, `/pay/{order}`. Paying there posts
//! a signed `payment.succeeded` webhook to the shop's own webhook route over
//! HTTP, so the whole webhook path runs: signature check, exactly-once
//! application, the late-payment refund. Paying twice delivers the same
//! event id twice (a provider's retry), which the engine applies once.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use commerce_core::payment::{PaymentGateway, TestGateway};
use commerce_core::{
    Commerce, Order, OrderId, PaymentEvent, PaymentEventId, PaymentEventKind, TenantId,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::store::SetupError;
use crate::web::{Chrome, PageError, Pages, money};

/// The Stripe secret key's variable.
pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
/// The Stripe webhook signing secret's variable.
pub const STRIPE_WEBHOOK_SECRET: &str = "STRIPE_WEBHOOK_SECRET";

/// The gateway a shop runs on.
pub struct Payments {
    /// The gateway, for [`Commerce::builder`].
    pub gateway: Arc<dyn PaymentGateway>,
    /// The test gateway, when the shop pays on its own page.
    pub test: Option<TestGateway>,
    /// `payments: ...`, for the start-up lines.
    pub description: String,
}

impl Payments {
    /// The gateway the environment asks for. `base` is the shop's URL;
    /// `order_page` the path of an order's page with `{TENANT}` and
    /// `{ORDER_ID}` placeholders, where Stripe sends the buyer back.
    pub fn from_env(base: &str, order_page: &str) -> Result<Self, SetupError> {
        let secret = std::env::var(STRIPE_SECRET_KEY)
            .ok()
            .filter(|v| !v.is_empty());
        let webhook = std::env::var(STRIPE_WEBHOOK_SECRET)
            .ok()
            .filter(|v| !v.is_empty());
        match (secret, webhook) {
            (Some(secret), Some(webhook)) => {
                let back = format!("{base}{order_page}");
                let gateway = commerce_stripe::StripeGateway::builder(secret)
                    .webhook_secret(webhook)
                    .success_url(back.clone())
                    .cancel_url(back)
                    .build()
                    .map_err(|e| SetupError::new("cannot configure Stripe", e))?;
                Ok(Self {
                    gateway: Arc::new(gateway),
                    test: None,
                    description: "payments: Stripe Checkout (STRIPE_SECRET_KEY)".to_owned(),
                })
            }
            (None, None) => {
                let secret = format!("whsec_local_{}", uuid::Uuid::new_v4().simple());
                let gateway = TestGateway::new(secret).with_payment_page(&format!("{base}/pay"));
                Ok(Self {
                    gateway: Arc::new(gateway.clone()),
                    test: Some(gateway),
                    description: format!(
                        "payments: test gateway, paid on the shop's own page {base}/pay/<order>"
                    ),
                })
            }
            _ => Err(SetupError::new(
                "Stripe",
                "set both STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, or neither",
            )),
        }
    }
}

/// What the local payment page needs.
#[derive(Clone)]
pub struct PayPage {
    /// The engine.
    pub commerce: Commerce,
    /// The tenants whose orders it pays (an order id is looked up in each).
    pub tenants: Vec<TenantId>,
    /// The gateway whose secret signs the webhooks.
    pub gateway: TestGateway,
    /// The shop's own webhook route, as a full URL.
    pub webhook_url: String,
    /// An order's page: `{TENANT}` and `{ORDER_ID}` are replaced.
    pub order_page: String,
    /// Error pages.
    pub pages: Pages,
}

impl PayPage {
    fn back(&self, order: &Order) -> String {
        self.order_page
            .replace("{TENANT}", order.tenant.as_str())
            .replace("{ORDER_ID}", &order.id.to_string())
    }

    async fn find(&self, id: &str) -> Result<Order, PageError> {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        for tenant in &self.tenants {
            match self.commerce.shop(tenant).order(id).await {
                Ok(order) => return Ok(order),
                Err(commerce_core::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(PageError::not_found("order"))
    }

    /// Posts `event`, signed now, to the shop's webhook route.
    async fn deliver(&self, event: &PaymentEvent) -> Result<(), PageError> {
        let request = self.gateway.webhook(event, self.commerce.now());
        let mut http = hyper::Request::post(&self.webhook_url);
        for (name, value) in request.headers() {
            http = http.header(name.as_str(), value.as_str());
        }
        let http = http
            .header("content-type", "application/json")
            .body(Full::new(Bytes::copy_from_slice(request.body())))
            .map_err(|e| PageError::internal(&e))?;
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let response = client
            .request(http)
            .await
            .map_err(|e| PageError::internal(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        tracing::error!(%status, body, "the shop's webhook route refused the payment page's webhook");
        Err(PageError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "The payment could not be reported",
            format!("The shop's webhook route answered {status}."),
        ))
    }
}

#[derive(Template)]
#[template(path = "pay.html")]
struct PayView<'a> {
    chrome: &'a Chrome,
    order: String,
    amount: String,
    status: &'static str,
    back: String,
}

#[derive(Deserialize)]
struct PayForm {
    action: String,
}

/// `GET /pay/{order}` (the page) and `POST /pay/{order}` (pay or abandon).
pub fn routes<S: Clone + Send + Sync + 'static>(page: PayPage) -> Router<S> {
    Router::new()
        .route("/pay/{order}", get(show).post(act))
        .with_state(Arc::new(page))
}

async fn show(State(page): State<Arc<PayPage>>, Path(id): Path<String>) -> Response {
    let view = async {
        let order = page.find(&id).await?;
        Ok(PayView {
            chrome: page.pages.chrome(),
            order: order.id.to_string(),
            amount: money(&order.total()),
            status: order.status().as_str(),
            back: page.back(&order),
        })
    };
    page.pages.render(view.await)
}

async fn act(
    State(page): State<Arc<PayPage>>,
    Path(id): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let done = async {
        let order = page.find(&id).await?;
        let (event_id, kind) = match form.action.as_str() {
            "pay" => (
                format!("local-pay:{}", order.id),
                PaymentEventKind::Succeeded {
                    amount: order.total(),
                    payment_ref: Some(format!("local_payment_{}", order.id)),
                },
            ),
            "abandon" => (
                format!("local-expire:{}", order.id),
                PaymentEventKind::SessionExpired,
            ),
            other => return Err(PageError::bad_form(format!("no action `{other}`"))),
        };
        let event = PaymentEvent {
            id: PaymentEventId::parse(event_id).map_err(|e| PageError::internal(&e))?,
            tenant: order.tenant.clone(),
            order: order.id,
            kind,
        };
        page.deliver(&event).await?;
        Ok(page.back(&order))
    };
    page.pages.redirect(done.await)
}
