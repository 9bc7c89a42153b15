//! The storefront API: catalog reads, carts, pricing, checkout and orders,
//! one endpoint per facade use case.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use commerce_core::{
    Cart, CartId, CheckoutRequest, CouponCode, Currency, Error, IdempotencyKey, Money, Order,
    OrderId, PricedCart, ProductId, Quantity, Reservation, Shop, Sku, Timestamp,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Http;
use crate::events::{order_stream, wants_stream};
use crate::problem::Problem;
use crate::tenant::TenantShop;

/// The header a checkout must carry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header a replayed checkout answers with.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

const CATALOG_CACHE: &str = "public, s-maxage=60, stale-while-revalidate=600";

mod catalog;

pub(crate) use catalog::product_cursor;
use catalog::{list_products, product, product_availability};

pub(crate) fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/products", get(list_products))
        .route("/products/{product}", get(product))
        .route("/carts", post(create_cart))
        .route("/carts/{cart}", get(cart))
        .route(
            "/carts/{cart}/lines/{sku}",
            put(set_line).delete(remove_line),
        )
        .route("/carts/{cart}/renew", post(renew))
        .route(
            "/carts/{cart}/codes/{code}",
            put(add_code).delete(remove_code),
        )
        .route("/carts/{cart}/price", get(price))
        .route("/carts/{cart}/age-verification", post(verify_age))
        .route("/carts/{cart}/checkout", post(checkout))
        .route("/orders/{order}", get(order))
        .route("/orders/{order}/events", get(order_events))
        .route(
            "/products/{product}/availability",
            get(product_availability),
        )
}

// ----- extractors -----------------------------------------------------------

/// JSON whose rejections are problems.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(value)| ApiJson(value))
            .map_err(Problem::from)
    }
}

/// Path parameters whose rejections are problems; each parameter is parsed
/// by the core's own parser, so a malformed id is a 400 naming it.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(Problem::from)
    }
}

fn parse<T>(
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, Error>,
) -> Result<T, Problem> {
    parse(value).map_err(|e| Problem::invalid(format!("/{field}"), e.to_string()))
}

/// A malformed cart id is a cart that does not exist (ids are
/// capabilities: a client learns nothing from the difference).
fn cart_id(value: &str) -> Result<CartId, Problem> {
    value
        .parse::<CartId>()
        .map_err(|_| Problem::from(Error::not_found(commerce_core::Entity::Cart, value)))
}

fn order_id(value: &str) -> Result<OrderId, Problem> {
    value
        .parse::<OrderId>()
        .map_err(|_| Problem::from(Error::not_found(commerce_core::Entity::Order, value)))
}

fn product_id(value: &str) -> Result<ProductId, Problem> {
    value
        .parse::<ProductId>()
        .map_err(|_| Problem::from(Error::not_found(commerce_core::Entity::Product, value)))
}

fn sku(value: &str) -> Result<Sku, Problem> {
    parse("sku", value, |v| Ok(Sku::parse(v)?))
}

// ----- responses ------------------------------------------------------------

/// A JSON body that must not be cached.
fn private<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON body shared caches may keep, with an `ETag` that answers a
/// matching `If-None-Match` with 304.
fn public<T: Serialize>(request: &HeaderMap, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let etag = format!("\"{}\"", hex::encode(digest.get(..16).unwrap_or_default()));
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CATALOG_CACHE),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// The path of a sibling resource: `uri` ends with `suffix` (the route
/// template as matched, inside the router), and the router is nested at what
/// comes before it.
fn location(uri: &OriginalUri, suffix: &str, resource: &str) -> Option<HeaderValue> {
    let path = uri.0.path();
    let base = path.strip_suffix(suffix)?;
    HeaderValue::from_str(&format!("{base}{resource}")).ok()
}

// ----- carts ----------------------------------------------------------------

/// A cart with its reservations and its current pricing: the answer to
/// every cart read and mutation.
#[derive(Debug, Serialize)]
pub(crate) struct CartView {
    cart: Cart,
    reservations: Vec<ReservationView>,
    pricing: PricedCart,
}

#[derive(Debug, Serialize)]
struct ReservationView {
    sku: Sku,
    quantity: Quantity,
    expires_at: Timestamp,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        Self {
            sku: r.sku,
            quantity: r.quantity,
            expires_at: r.expires_at,
        }
    }
}

async fn cart_view(shop: &Shop, cart: Cart) -> Result<CartView, Problem> {
    let reservations = shop
        .scope()
        .inventory()
        .cart_reservations(cart.id)
        .await?
        .into_iter()
        .map(ReservationView::from)
        .collect();
    let pricing = shop.price_cart(cart.id).await?;
    Ok(CartView {
        cart,
        reservations,
        pricing,
    })
}

/// Sets the cart's customer from the embedder's resolver when it differs.
async fn resolve_customer(
    http: &Http,
    shop: &Shop,
    headers: &HeaderMap,
    cart: CartId,
) -> Result<(), Problem> {
    let Some(resolver) = &http.customers else {
        return Ok(());
    };
    let customer = resolver.customer(headers, shop.tenant()).await;
    let current = shop.cart(cart).await?;
    if current.customer != customer && current.is_open() {
        shop.set_customer(cart, customer).await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCart {
    currency: Currency,
}

async fn create_cart(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    uri: OriginalUri,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewCart>,
) -> Result<Response, Problem> {
    let cart = shop.create_cart(body.currency).await?;
    resolve_customer(&http, &shop, &headers, cart.id).await?;
    let cart = shop.cart(cart.id).await?;
    let view = cart_view(&shop, cart).await?;
    let mut response = private(StatusCode::CREATED, &view);
    if let Some(value) = location(&uri, "/carts", &format!("/carts/{}", view.cart.id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn cart(
    TenantShop(shop): TenantShop,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    let cart = shop.cart(cart_id(&id)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetLine {
    quantity: u32,
}

async fn set_line(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath((cart, line)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetLine>,
) -> Result<Response, Problem> {
    let (cart, line) = (cart_id(&cart)?, sku(&line)?);
    let quantity =
        Quantity::new(body.quantity).map_err(|e| Problem::invalid("/quantity", e.to_string()))?;
    resolve_customer(&http, &shop, &headers, cart).await?;
    let cart = shop.set_line(cart, &line, quantity).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

async fn remove_line(
    TenantShop(shop): TenantShop,
    ApiPath((cart, line)): ApiPath<(String, String)>,
) -> Result<Response, Problem> {
    let (cart, line) = (cart_id(&cart)?, sku(&line)?);
    let cart = shop.remove_line(cart, &line).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

async fn renew(
    TenantShop(shop): TenantShop,
    ApiPath(cart): ApiPath<String>,
) -> Result<Response, Problem> {
    let cart = shop.renew_reservations(cart_id(&cart)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

fn coupon(value: &str) -> Result<CouponCode, Problem> {
    parse("code", value, |v| Ok(CouponCode::parse(v)?))
}

async fn add_code(
    TenantShop(shop): TenantShop,
    ApiPath((cart, code)): ApiPath<(String, String)>,
) -> Result<Response, Problem> {
    let cart = shop.add_code(cart_id(&cart)?, &coupon(&code)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

async fn remove_code(
    TenantShop(shop): TenantShop,
    ApiPath((cart, code)): ApiPath<(String, String)>,
) -> Result<Response, Problem> {
    let cart = shop.remove_code(cart_id(&cart)?, &coupon(&code)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

async fn price(
    TenantShop(shop): TenantShop,
    ApiPath(cart): ApiPath<String>,
) -> Result<Response, Problem> {
    let priced = shop.price_cart(cart_id(&cart)?).await?;
    Ok(private(StatusCode::OK, &priced))
}

async fn verify_age(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(cart): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, Problem> {
    let cart = cart_id(&cart)?;
    shop.cart(cart).await?;
    let verified = http.ages.verify(&headers, shop.tenant(), &body).await?;
    let cart = shop
        .record_age_verification(cart, verified.method, verified.verified_by)
        .await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

// ----- checkout and orders --------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    expected_total: Option<Money>,
}

/// Where to send the buyer to pay.
#[derive(Debug, Serialize)]
struct PaymentView {
    session_id: String,
    redirect_url: String,
    expires_at: Timestamp,
}

#[derive(Debug, Serialize)]
struct CheckoutView {
    order: Order,
    created: bool,
    payment: Option<PaymentView>,
}

async fn checkout(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    uri: OriginalUri,
    headers: HeaderMap,
    ApiPath(cart): ApiPath<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let cart = cart_id(&cart)?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_missing",
                "Idempotency-Key missing",
                "a checkout needs an Idempotency-Key header",
            )
        })?
        .to_str()
        .map_err(|_| Problem::invalid("/idempotency_key", "not printable ASCII"))
        .and_then(|value| {
            IdempotencyKey::parse(value)
                .map_err(|e| Problem::invalid("/idempotency_key", e.to_string()))
        })?;
    let body: CheckoutBody = if body.iter().all(u8::is_ascii_whitespace) {
        CheckoutBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::invalid("", e.to_string()))?
    };
    let mut request = CheckoutRequest::new(key);
    match body.expected_total {
        Some(total) => request = request.expecting_total(total),
        None if http.require_expected_total => {
            return Err(Problem::invalid(
                "/expected_total",
                "send the grand total the buyer was shown",
            ));
        }
        None => {}
    }
    resolve_customer(&http, &shop, &headers, cart).await?;
    let checkout = match shop.checkout_with(cart, &request).await {
        Ok(checkout) => checkout,
        Err(error @ Error::PriceChanged { .. }) => {
            // The new pricing comes with the refusal: one round trip to
            // show it and confirm.
            let pricing = shop.price_cart(cart).await.ok();
            return Err(Problem::from(error).with("pricing", pricing));
        }
        Err(error) => return Err(error.into()),
    };
    let view = CheckoutView {
        created: checkout.created,
        payment: checkout.session.map(|session| PaymentView {
            session_id: session.id,
            redirect_url: session.redirect_url,
            expires_at: session.expires_at,
        }),
        order: checkout.order,
    };
    let status = if view.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = private(status, &view);
    let headers = response.headers_mut();
    let suffix = format!("/carts/{cart}/checkout");
    if let Some(value) = location(&uri, &suffix, &format!("/orders/{}", view.order.id)) {
        headers.insert(header::LOCATION, value);
    }
    if !view.created {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn order(
    TenantShop(shop): TenantShop,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    let order = shop.order(order_id(&id)?).await?;
    Ok(private(StatusCode::OK, &order))
}

/// The order's audit log: JSON, or with `Accept: text/event-stream` a live
/// stream whose event ids are the log's sequence numbers.
async fn order_events(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    let order = order_id(&id)?;
    if wants_stream(&headers) {
        return order_stream(http, shop, order, &headers).await;
    }
    let events = shop.order_events(order).await?;
    Ok(private(StatusCode::OK, &events))
}
