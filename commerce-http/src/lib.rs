//! HTTP routers over the `commerce` engine, for axum 0.8.
//!
//! [`CommerceHttp`] wraps a [`Commerce`] value and hands out routers with
//! their state applied, generic over the embedder's own state type, to
//! `nest` and `merge` into the embedder's service:
//!
//! - [`storefront`](CommerceHttp::storefront): catalog reads, carts (each
//!   answer carries the cart's reservations and current pricing), pricing
//!   previews, checkout (with `Idempotency-Key`) and order reads;
//! - [`webhooks`](CommerceHttp::webhooks): the inbound payment webhook,
//!   verified by the gateway and applied exactly once;
//! - [`admin`](CommerceHttp::admin): products, stock, promotions,
//!   settings, orders, refunds, the sweep and admin keys, behind bearer
//!   API keys bound to one tenant with scopes;
//! - [`health`](CommerceHttp::health): liveness and readiness (which
//!   touches the store);
//! - [`openapi`](CommerceHttp::openapi): the OpenAPI 3.1 document of all
//!   of them, generated from the same registrations that build the
//!   routers ([`openapi_route`](CommerceHttp::openapi_route) serves it).
//!
//! Every refusal is an RFC 9457 problem document ([`Problem`]) with a
//! stable `code` and the data the engine's refusal carries. The crate
//! starts no server and installs no global subscriber; [`recommended_layers`]
//! is the layer stack it suggests.
//!
//! ```
//! use axum::Router;
//! use commerce_core::{Commerce, TenantId};
//! use commerce_http::{ApiMounts, CommerceHttp, TenantResolver, recommended_layers};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let commerce = Commerce::in_memory();
//! let http = CommerceHttp::builder(commerce)
//!     .tenants(TenantResolver::Fixed(TenantId::parse("corner-shop")?))
//!     .build();
//! let mounts = ApiMounts::default(); // /api/store, /api/admin, /webhooks/payments
//! let app: Router = Router::new()
//!     .nest(&mounts.storefront, http.storefront())
//!     .nest(&mounts.admin, http.admin())
//!     .merge(http.webhooks(&mounts.webhooks))
//!     .merge(http.health())
//!     .merge(http.openapi_route("/openapi.json", &mounts))
//!     .layer(recommended_layers());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod admin;
mod events;
mod openapi;
mod problem;
mod storefront;
mod tenant;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use commerce_core::payment::WebhookRequest;
use commerce_core::{Commerce, TenantId, WebhookHandled};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use openapi::ApiMounts;
pub use problem::{PROBLEM_JSON, Problem};
pub use storefront::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use tenant::{
    AgeVerified, AgeVerifier, CustomerResolver, PUBLISHABLE_KEY, RefuseAgeVerification,
    TenantResolver,
};

/// The storefront's default body limit: carts and checkouts are small.
pub const STOREFRONT_BODY_LIMIT: usize = 64 * 1024;
/// The webhook route's body limit.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// What the routers share.
pub(crate) struct Http {
    commerce: Commerce,
    tenants: TenantResolver,
    customers: Option<Arc<dyn CustomerResolver>>,
    ages: Arc<dyn AgeVerifier>,
    require_expected_total: bool,
    body_limit: usize,
    poll_interval: Duration,
}

/// Builds a [`CommerceHttp`].
pub struct CommerceHttpBuilder {
    http: Http,
}

impl CommerceHttpBuilder {
    /// How storefront requests name their tenant (default: the fixed
    /// tenant `"default"`).
    pub fn tenants(mut self, resolver: TenantResolver) -> Self {
        self.http.tenants = resolver;
        self
    }

    /// Who is buying, from the embedder's own session (default: nobody).
    pub fn customers(mut self, resolver: impl CustomerResolver) -> Self {
        self.http.customers = Some(Arc::new(resolver));
        self
    }

    /// How the storefront's age-verification route decides (default:
    /// [`RefuseAgeVerification`]).
    pub fn age_verifier(mut self, verifier: impl AgeVerifier) -> Self {
        self.http.ages = Arc::new(verifier);
        self
    }

    /// Whether a checkout must carry the total the buyer was shown
    /// (default: `true`; without it the engine cannot refuse a changed
    /// price).
    pub fn require_expected_total(mut self, required: bool) -> Self {
        self.http.require_expected_total = required;
        self
    }

    /// The storefront's body limit (default [`STOREFRONT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.http.body_limit = bytes;
        self
    }

    /// How often live streams read the store again (default: one second).
    /// Streams read from the store, so they see changes made by other
    /// instances of the service and holds that lapse.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.http.poll_interval = interval;
        self
    }

    /// The routers' shared configuration.
    pub fn build(self) -> CommerceHttp {
        CommerceHttp {
            http: Arc::new(self.http),
        }
    }
}

/// The HTTP adapter: hands out routers over one [`Commerce`]. Cheap to
/// clone.
#[derive(Clone)]
pub struct CommerceHttp {
    http: Arc<Http>,
}

impl std::fmt::Debug for CommerceHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommerceHttp")
            .field("tenants", &self.http.tenants)
            .field("require_expected_total", &self.http.require_expected_total)
            .finish_non_exhaustive()
    }
}

impl CommerceHttp {
    /// A builder over `commerce`.
    pub fn builder(commerce: Commerce) -> CommerceHttpBuilder {
        CommerceHttpBuilder {
            http: Http {
                commerce,
                tenants: default_tenants(),
                customers: None,
                ages: Arc::new(RefuseAgeVerification),
                require_expected_total: true,
                body_limit: STOREFRONT_BODY_LIMIT,
                poll_interval: Duration::from_secs(1),
            },
        }
    }

    /// The storefront API, to nest where the embedder likes
    /// (`/api/store`, say, or `/s/{store}/api/store` with
    /// [`TenantResolver::PathParam`]): `GET /products` (published products only:
    /// the list in id order, keyset pages of `limit` by `cursor`, the
    /// previous page's `next_cursor`; with `q`, search results best first,
    /// pages by `offset`), `GET /products/{product}` (404 when unpublished),
    /// `POST /carts`, `GET /carts/{cart}`, `PUT|DELETE
    /// /carts/{cart}/lines/{sku}`, `POST /carts/{cart}/renew`, `PUT|DELETE
    /// /carts/{cart}/codes/{code}`, `GET /carts/{cart}/price`, `POST
    /// /carts/{cart}/age-verification`, `POST /carts/{cart}/checkout`,
    /// `GET /orders/{order}`, `GET /orders/{order}/events` and `GET
    /// /products/{product}/availability` (JSON, or Server-Sent Events with
    /// `Accept: text/event-stream`).
    pub fn storefront<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (router, _) = storefront::routes().split_for_parts();
        router
            .fallback(fallback)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(self.http.body_limit))
            .with_state(self.http.clone())
    }

    /// The admin API, to nest where the embedder likes (`/api/admin`,
    /// say), behind bearer API keys (`Authorization: Bearer ck_…`, issued
    /// with [`Shop::issue_api_key`](commerce_core::Shop::issue_api_key)):
    /// each key is bound to one tenant and holds scopes. 401 with
    /// `WWW-Authenticate` without a valid key; 403 with `required_scope`
    /// when the key lacks the route's scope.
    ///
    /// `GET|POST /products` (the list includes unpublished products;
    /// keyset pages by `cursor`), `PUT /products/{product}`, `PUT
    /// /products/{product}/published` (catalog);
    /// `GET|PUT /stock/{sku}`, `GET /stock/{sku}/adjustments`, `POST
    /// /stock/{sku}/receipts` (inventory); `GET /promotions`, `PUT|DELETE
    /// /promotions/{promotion}` (promotions); `GET|PUT /settings`
    /// (settings); `GET /orders` (filters `status`, `customer`,
    /// `placed_from`, `placed_before`; keyset pages by `cursor`), `GET
    /// /orders/{order}`, `GET /orders/{order}/events`, `GET /events` (the
    /// tenant's feed of every order event, in pages from a position or as
    /// Server-Sent Events whose ids are positions),
    /// `POST /orders/{order}/cancel`, `POST /orders/{order}/fulfil`, `POST
    /// /sweep` (orders); `GET|POST /orders/{order}/refunds` (refunds);
    /// `GET|POST /keys`, `DELETE /keys/{key}` (keys: a key issues others
    /// with at most its own scopes, so keys rotate without a deploy).
    pub fn admin<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (router, _) = admin::routes().split_for_parts();
        router
            .fallback(fallback)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(self.http.body_limit))
            .with_state(self.http.clone())
    }

    /// The inbound payment webhook at `path` (outside tenant resolution:
    /// the event names its tenant). 200 for applied, duplicate, ignored
    /// and unknown-order events; 400 for a delivery the gateway rejects;
    /// 5xx for a store failure, so the provider delivers again.
    pub fn webhooks<S>(&self, path: &str) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route(path, post(webhook))
            .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
            .with_state(self.http.clone())
    }

    /// `GET /healthz` (the process answers) and `GET /readyz` (the store
    /// answers a read).
    pub fn health<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (router, _) = health_routes().split_for_parts();
        router.with_state(self.http.clone())
    }

    /// A task that sweeps every tenant with work every `interval`
    /// ([`Commerce::sweep_all`]: lapsed holds released, unpaid orders past
    /// their window expired, pending refunds retried), logging what it did
    /// and each tenant it could not sweep. It runs until dropped; spawn it
    /// once per deployment or on every instance (sweeps are idempotent and
    /// safe to race):
    ///
    /// ```no_run
    /// # async fn run(http: commerce_http::CommerceHttp) {
    /// let sweeper = tokio::spawn(http.sweeper(std::time::Duration::from_secs(30)));
    /// # let _ = sweeper;
    /// # }
    /// ```
    pub fn sweeper(&self, interval: Duration) -> impl Future<Output = ()> + Send + 'static {
        let http = self.http.clone();
        async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match http.commerce.sweep_all().await {
                    Ok(report) => {
                        for (tenant, swept) in &report.swept {
                            tracing::info!(
                                tenant = %tenant,
                                reservations_removed = swept.reservations_removed,
                                orders_expired = swept.orders_expired.len(),
                                refunds_retried = swept.refunds_retried,
                                refunds_confirmed = swept.refunds_confirmed,
                                "swept"
                            );
                        }
                        for (tenant, error) in &report.failed {
                            tracing::warn!(tenant = %tenant, error = %error, "sweep failed");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "sweep: cannot list the tenants with work");
                    }
                }
            }
        }
    }

    /// The OpenAPI 3.1 document of the routers, mounted as `mounts` says
    /// (with the tenant parameter the configured [`TenantResolver`] reads,
    /// the admin API's bearer scheme, and every refusal documented as a
    /// [`Problem`]). Generated from the same registrations that build the
    /// routers.
    pub fn openapi(&self, mounts: &ApiMounts) -> utoipa::openapi::OpenApi {
        openapi::document(&self.http.tenants, mounts)
    }

    /// `GET path` answering [`openapi`](Self::openapi) as JSON.
    pub fn openapi_route<S>(&self, path: &str, mounts: &ApiMounts) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let document = self.openapi(mounts);
        let body = Bytes::from(document.to_json().unwrap_or_default());
        Router::new().route(
            path,
            get(move || {
                let body = body.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            axum::http::HeaderValue::from_static("application/json"),
                        )],
                        body,
                    )
                }
            }),
        )
    }
}

/// Liveness and readiness, with their OpenAPI operations.
pub(crate) fn health_routes() -> utoipa_axum::router::OpenApiRouter<Arc<Http>> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(ready))
}

/// The webhook route's OpenAPI operation, at `path`.
pub(crate) fn webhook_document(path: &str) -> utoipa::openapi::OpenApi {
    let routes: utoipa_axum::router::OpenApiRouter<Arc<Http>> =
        utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(webhook));
    utoipa::openapi::OpenApi::default().nest_with_path_composer(
        path,
        routes.into_openapi(),
        |base, _| base.to_owned(),
    )
}

/// The fixed tenant `"default"` (a unit test checks it parses; were it
/// not to, requests would need an `x-tenant` header rather than panic).
fn default_tenants() -> TenantResolver {
    match TenantId::parse("default") {
        Ok(tenant) => TenantResolver::Fixed(tenant),
        Err(_) => TenantResolver::Header("x-tenant".into()),
    }
}

async fn fallback() -> Problem {
    Problem::not_found()
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        "this resource does not answer that method",
    )
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive.", body = String, content_type = "text/plain")))]
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

/// The store answers a read.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready.", body = String, content_type = "text/plain"),
        (status = 503, description = "The store cannot be reached (`unavailable`)."),
    ))]
async fn ready(State(http): State<Arc<Http>>) -> Response {
    let probe = TenantId::parse("readiness-probe").map(|tenant| http.commerce.shop(&tenant));
    match probe {
        Ok(shop) => match shop.settings().await {
            Ok(_) => (StatusCode::OK, "ready").into_response(),
            Err(error) => Problem::from(error).into_response(),
        },
        Err(_) => Problem::internal().into_response(),
    }
}

/// What the webhook route answers a delivery it took.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Received {
    /// Always `true`.
    received: bool,
    /// What the delivery did: an applied outcome, `ignored` or
    /// `unknown_order`.
    outcome: String,
}

/// A payment provider's delivery, verified by the gateway and applied
/// exactly once.
#[utoipa::path(post, path = "/webhook", tag = "webhooks",
    request_body(content = String, description = "The provider's event, exactly as signed.", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken: applied, a duplicate, ignored, or for an unknown order.", body = Received),
        (status = 400, description = "The gateway rejected the delivery (`webhook_rejected`)."),
        (status = 413, description = "The body is too large (`body_too_large`)."),
        (status = 503, description = "The store failed: the provider should deliver again."),
    ))]
async fn webhook(
    State(http): State<Arc<Http>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    let mut request = WebhookRequest::new(body.to_vec());
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            request = request.with_header(name.as_str(), value);
        }
    }
    match http.commerce.handle_webhook(&request).await {
        Ok(handled) => {
            let outcome = match handled {
                WebhookHandled::Applied(applied) => format!("{:?}", applied.outcome),
                WebhookHandled::Ignored { .. } => "ignored".to_owned(),
                WebhookHandled::UnknownOrder { .. } => "unknown_order".to_owned(),
                _ => "handled".to_owned(),
            };
            (
                StatusCode::OK,
                axum::Json(Received {
                    received: true,
                    outcome,
                }),
            )
                .into_response()
        }
        // A rejected delivery is a 400; a store failure a 5xx, so the
        // provider delivers again.
        Err(error) => Problem::from(error).into_response(),
    }
}

type PanicHandler = fn(Box<dyn std::any::Any + Send + 'static>) -> Response;
type MakeSpan = fn(&axum::http::Request<axum::body::Body>) -> tracing::Span;
type Classifier =
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>;

/// The stack [`recommended_layers`] returns (a `tower::Layer`).
pub type RecommendedLayers = tower::layer::util::Stack<
    CatchPanicLayer<PanicHandler>,
    tower::layer::util::Stack<
        TimeoutLayer,
        tower::layer::util::Stack<
            PropagateRequestIdLayer,
            tower::layer::util::Stack<
                TraceLayer<Classifier, MakeSpan>,
                tower::layer::util::Stack<
                    SetSensitiveRequestHeadersLayer,
                    tower::layer::util::Stack<
                        SetRequestIdLayer<MakeRequestUuid>,
                        tower::layer::util::Identity,
                    >,
                >,
            >,
        >,
    >,
>;

/// The layer stack the crate recommends, outermost first: a request id
/// (`x-request-id`, generated when absent, echoed back), a trace span per
/// request named by method and matched route (never the raw path, which
/// holds cart and order ids), sensitive headers hidden from traces,
/// panics answered with a problem 500, and a 10-second timeout (503).
/// Apply it with `.layer(recommended_layers())`; add CORS, compression and
/// limits of your own as your service needs.
pub fn recommended_layers() -> RecommendedLayers {
    let request_id = HeaderName::from_static("x-request-id");
    tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
            HeaderName::from_static("idempotency-key"),
        ]))
        .layer(TraceLayer::new_for_http().make_span_with(span as MakeSpan))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(10),
        ))
        .layer(CatchPanicLayer::custom(panicked as PanicHandler))
        .into_inner()
}

/// A CORS layer for the storefront router, allowing browser calls from
/// `origins` only (exact origins such as `https://shop.example`; an origin
/// that does not parse is skipped): the storefront's methods, the headers
/// it reads (`content-type`, `idempotency-key`, `x-publishable-key`,
/// `last-event-id`), and the headers a client needs to see (`location`,
/// `etag`, `idempotent-replayed`, `x-request-id`). Apply it to the
/// storefront router alone: the admin API is for servers and the webhook
/// for the payment provider.
pub fn cors(origins: &[&str]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(PUBLISHABLE_KEY),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(Duration::from_secs(600))
}

fn span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", axum::extract::MatchedPath::as_str);
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %request.method(), route, request_id = id)
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Problem::internal().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tenant_parses() {
        assert!(matches!(default_tenants(), TenantResolver::Fixed(t) if t.as_str() == "default"));
    }
}
