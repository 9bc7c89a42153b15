//! The storefront API: catalog reads, carts, pricing, checkout and orders,
//! one endpoint per facade use case.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commerce_core::{
    Cart, CartId, CheckoutRequest, CouponCode, Currency, Error, IdempotencyKey, Money, Order,
    OrderId, Page, PricedCart, Product, ProductId, Quantity, Reservation, Shop, Sku, Timestamp,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Http;
use crate::events::{
    VariantAvailability, availability, availability_stream, order_stream, wants_stream,
};
use crate::problem::Problem;
use crate::tenant::TenantShop;

/// The header a checkout must carry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header a replayed checkout answers with.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

const CATALOG_CACHE: &str = "public, s-maxage=60, stale-while-revalidate=600";

/// The storefront's routes, with their OpenAPI operations.
pub(crate) fn routes() -> OpenApiRouter<Arc<Http>> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(product))
        .routes(routes!(product_availability))
        .routes(routes!(create_cart))
        .routes(routes!(cart))
        .routes(routes!(set_line, remove_line))
        .routes(routes!(renew))
        .routes(routes!(add_code, remove_code))
        .routes(routes!(price))
        .routes(routes!(verify_age))
        .routes(routes!(checkout))
        .routes(routes!(order))
        .routes(routes!(order_events))
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

// ----- catalog --------------------------------------------------------------

/// The catalog listing's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Words to search for (each a prefix of a word of the product).
    q: Option<String>,
    /// How many products (1 to 100, default 20).
    limit: Option<u32>,
    /// How many products to skip.
    offset: Option<u32>,
}

/// A page of products.
#[derive(Debug, Serialize, ToSchema)]
struct ProductList {
    data: Vec<Product>,
    offset: u32,
    limit: u32,
    has_more: bool,
}

/// The catalog, or a search of it, a page at a time.
#[utoipa::path(
    get,
    path = "/products",
    tag = "catalog",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of products (cacheable; `ETag`).", body = ProductList),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`."),
        (status = 400, description = "A query parameter cannot be read (`invalid_parameter`)."),
    )
)]
async fn list_products(
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20).clamp(1, Page::MAX_LIMIT);
    let offset = query.offset.unwrap_or(0);
    // One more than asked, to know whether there is more.
    let probe = limit.saturating_add(1);
    let mut data = match query.q.as_deref() {
        Some(q) => {
            let page = Page {
                offset,
                limit: probe.min(Page::MAX_LIMIT),
            };
            shop.search_products(q, page).await?
        }
        None => shop
            .products()
            .await?
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(probe).unwrap_or(usize::MAX))
            .collect(),
    };
    let has_more = data.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    data.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(public(
        &headers,
        &ProductList {
            data,
            offset,
            limit,
            has_more,
        },
    ))
}

/// A product with each variant's availability.
#[derive(Debug, Serialize, ToSchema)]
struct ProductView {
    product: Product,
    availability: Vec<VariantAvailability>,
}

/// A product with each variant's availability.
#[utoipa::path(
    get,
    path = "/products/{product}",
    tag = "catalog",
    params(("product" = String, Path, description = "The product's id.")),
    responses(
        (status = 200, description = "The product (cacheable; `ETag`).", body = ProductView),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`."),
        (status = 404, description = "No such product (`not_found`)."),
    )
)]
async fn product(
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    let product = shop.product(product_id(&id)?).await?;
    let availability = availability(&shop, &product).await?;
    Ok(public(
        &headers,
        &ProductView {
            product,
            availability,
        },
    ))
}

/// A product's availability: JSON now, or with `Accept:
/// text/event-stream` a snapshot then a frame at every change (a hold
/// lapsing is a change).
#[utoipa::path(
    get,
    path = "/products/{product}/availability",
    tag = "catalog",
    params(("product" = String, Path, description = "The product's id.")),
    responses(
        (status = 200, description = "Each variant's availability; with `Accept: text/event-stream` a stream of `availability` events.",
            content(
                (Vec<VariantAvailability> = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 404, description = "No such product (`not_found`)."),
    )
)]
async fn product_availability(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    let product = shop.product(product_id(&id)?).await?;
    if wants_stream(&headers) {
        return Ok(availability_stream(http, shop, product));
    }
    let now = availability(&shop, &product).await?;
    Ok(private(StatusCode::OK, &now))
}

// ----- carts ----------------------------------------------------------------

/// A cart with its reservations and its current pricing: the answer to
/// every cart read and mutation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CartView {
    cart: Cart,
    reservations: Vec<ReservationView>,
    pricing: PricedCart,
}

/// A line's hold on stock, and when it lapses.
#[derive(Debug, Serialize, ToSchema)]
struct ReservationView {
    sku: Sku,
    quantity: Quantity,
    #[schema(value_type = String, format = DateTime)]
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

/// A new cart.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCart {
    currency: Currency,
}

/// Opens a cart.
#[utoipa::path(
    post,
    path = "/carts",
    tag = "carts",
    request_body = NewCart,
    responses(
        (status = 201, description = "The cart, with `Location`.", body = CartView),
        (status = 400, description = "The body cannot be read (`invalid_parameter`, `invalid_json`)."),
    )
)]
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

/// A cart with its holds and its current pricing.
#[utoipa::path(
    get,
    path = "/carts/{cart}",
    tag = "carts",
    params(("cart" = String, Path, description = "The cart's id.")),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 404, description = "No such cart (`not_found`)."),
    )
)]
async fn cart(
    TenantShop(shop): TenantShop,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    let cart = shop.cart(cart_id(&id)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

/// A line's new quantity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetLine {
    quantity: u32,
}

/// Sets a line's quantity (0 removes it), holding the stock it needs.
#[utoipa::path(
    put,
    path = "/carts/{cart}/lines/{sku}",
    tag = "carts",
    params(
        ("cart" = String, Path, description = "The cart's id."),
        ("sku" = String, Path, description = "The variant's SKU."),
    ),
    request_body = SetLine,
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 400, description = "The body or the SKU cannot be read (`invalid_parameter`)."),
        (status = 404, description = "No such cart or SKU (`not_found`)."),
        (status = 409, description = "Not enough stock (`insufficient_stock` with `sku`, `requested` and `available`), or the cart is checked out (`cart_checked_out`)."),
        (status = 422, description = "A limit or rule refuses the line (`cart_limit`, `currency_mismatch`)."),
    )
)]
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

/// Removes a line and its hold.
#[utoipa::path(
    delete,
    path = "/carts/{cart}/lines/{sku}",
    tag = "carts",
    params(
        ("cart" = String, Path, description = "The cart's id."),
        ("sku" = String, Path, description = "The variant's SKU."),
    ),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "The cart is checked out (`cart_checked_out`)."),
    )
)]
async fn remove_line(
    TenantShop(shop): TenantShop,
    ApiPath((cart, line)): ApiPath<(String, String)>,
) -> Result<Response, Problem> {
    let (cart, line) = (cart_id(&cart)?, sku(&line)?);
    let cart = shop.remove_line(cart, &line).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

/// Renews the cart's holds (a lapsed one only if the stock is still free).
#[utoipa::path(
    post,
    path = "/carts/{cart}/renew",
    tag = "carts",
    params(("cart" = String, Path, description = "The cart's id.")),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "A lapsed hold's stock was taken (`insufficient_stock`), or the cart is checked out."),
    )
)]
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

/// Adds a coupon code to the cart's set of codes.
#[utoipa::path(
    put,
    path = "/carts/{cart}/codes/{code}",
    tag = "carts",
    params(
        ("cart" = String, Path, description = "The cart's id."),
        ("code" = String, Path, description = "The coupon code."),
    ),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "The cart is checked out (`cart_checked_out`)."),
        (status = 400, description = "The code cannot be read (`invalid_parameter`)."),
    )
)]
async fn add_code(
    TenantShop(shop): TenantShop,
    ApiPath((cart, code)): ApiPath<(String, String)>,
) -> Result<Response, Problem> {
    let cart = shop.add_code(cart_id(&cart)?, &coupon(&code)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

/// Removes a coupon code from the cart.
#[utoipa::path(
    delete,
    path = "/carts/{cart}/codes/{code}",
    tag = "carts",
    params(
        ("cart" = String, Path, description = "The cart's id."),
        ("code" = String, Path, description = "The coupon code."),
    ),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "The cart is checked out (`cart_checked_out`)."),
    )
)]
async fn remove_code(
    TenantShop(shop): TenantShop,
    ApiPath((cart, code)): ApiPath<(String, String)>,
) -> Result<Response, Problem> {
    let cart = shop.remove_code(cart_id(&cart)?, &coupon(&code)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

/// A pricing preview: every promotion with why it did or did not apply.
#[utoipa::path(
    get,
    path = "/carts/{cart}/price",
    tag = "carts",
    params(("cart" = String, Path, description = "The cart's id.")),
    responses(
        (status = 200, description = "The cart's pricing.", body = PricedCart),
        (status = 404, description = "No such cart (`not_found`)."),
    )
)]
async fn price(
    TenantShop(shop): TenantShop,
    ApiPath(cart): ApiPath<String>,
) -> Result<Response, Problem> {
    let priced = shop.price_cart(cart_id(&cart)?).await?;
    Ok(private(StatusCode::OK, &priced))
}

/// Records an age verification through the embedder's verifier (which
/// reads this body; the default verifier refuses).
#[utoipa::path(
    post,
    path = "/carts/{cart}/age-verification",
    tag = "carts",
    params(("cart" = String, Path, description = "The cart's id.")),
    request_body(content = Object, description = "What the embedder's age verifier reads."),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "The cart is checked out (`cart_checked_out`)."),
        (status = 403, description = "The shop does not verify ages over this API (`age_verification_unavailable`, the default verifier)."),
        (status = 422, description = "The embedder's verifier refused."),
    )
)]
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

/// What the buyer was shown.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    expected_total: Option<Money>,
}

/// Where to send the buyer to pay.
#[derive(Debug, Serialize, ToSchema)]
struct PaymentView {
    session_id: String,
    redirect_url: String,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

/// The order a checkout placed and where to pay it.
#[derive(Debug, Serialize, ToSchema)]
struct CheckoutView {
    order: Order,
    created: bool,
    payment: Option<PaymentView>,
}

/// Places the cart's order, exactly once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/carts/{cart}/checkout",
    tag = "checkout",
    params(
        ("cart" = String, Path, description = "The cart's id."),
        ("idempotency-key" = String, Header, description = "The same key for every retry of this checkout."),
    ),
    request_body(content = CheckoutBody, description = "The grand total the buyer was shown (required unless the service says otherwise)."),
    responses(
        (status = 201, description = "The order, with `Location`.", body = CheckoutView),
        (status = 200, description = "A replay of the key's checkout (`Idempotent-Replayed: true`).", body = CheckoutView,
            headers(("idempotent-replayed" = String, description = "`true`"))),
        (status = 400, description = "No `Idempotency-Key` (`idempotency_key_missing`) or no `expected_total` (`invalid_parameter`)."),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "The total changed (`price_changed` with `expected`, `actual` and the new `pricing`), stock ran out, or a hold lapsed."),
        (status = 422, description = "The key was used for another cart (`idempotency_key_reused`), the cart is empty, or an age verification is needed."),
    )
)]
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

/// An order.
#[utoipa::path(
    get,
    path = "/orders/{order}",
    tag = "orders",
    params(("order" = String, Path, description = "The order's id.")),
    responses(
        (status = 200, description = "The order.", body = Order),
        (status = 404, description = "No such order (`not_found`)."),
    )
)]
async fn order(
    TenantShop(shop): TenantShop,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    let order = shop.order(order_id(&id)?).await?;
    Ok(private(StatusCode::OK, &order))
}

/// The order's audit log: JSON, or with `Accept: text/event-stream` a live
/// stream whose event ids are the log's sequence numbers.
#[utoipa::path(
    get,
    path = "/orders/{order}/events",
    tag = "orders",
    params(
        ("order" = String, Path, description = "The order's id."),
        ("last-event-id" = Option<String>, Header, description = "On a stream: the last sequence number seen; the stream resumes after it."),
    ),
    responses(
        (status = 200, description = "The audit log; with `Accept: text/event-stream` a stream that ends after a terminal status.",
            content(
                (Vec<commerce_core::OrderEvent> = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 404, description = "No such order (`not_found`)."),
    )
)]
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
