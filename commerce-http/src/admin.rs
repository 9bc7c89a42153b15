//! The admin API, behind bearer API keys bound to one tenant with scopes:
//! products, stock, promotions, settings, orders, refunds and the sweep.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use commerce_core::order::{RefundAmount, RefundRequest};
use commerce_core::{
    ApiKeyRecord, ApiScope, CustomerId, IdempotencyKey, NewProduct, OrderCursor, OrderFilter,
    OrderStatus, PromotionId, PromotionSpec, Quantity, RefundId, Shop, ShopSettings, Sku,
    Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::Http;
use crate::problem::Problem;
use crate::storefront::{ApiJson, ApiPath, product_cursor};

pub(crate) fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/products", get(products).post(create_product))
        .route("/products/{product}", put(replace_product))
        .route("/products/{product}/published", put(publish_product))
        .route("/stock/{sku}", get(stock).put(count_stock))
        .route("/stock/{sku}/adjustments", get(adjustments))
        .route("/stock/{sku}/receipts", post(receive))
        .route("/promotions", get(promotions))
        .route(
            "/promotions/{promotion}",
            put(put_promotion).delete(remove_promotion),
        )
        .route("/settings", get(settings).put(put_settings))
        .route("/orders", get(list_orders))
        .route("/orders/{order}", get(order))
        .route("/orders/{order}/events", get(order_events))
        .route("/orders/{order}/cancel", post(cancel))
        .route("/orders/{order}/fulfil", post(fulfil))
        .route("/orders/{order}/refunds", get(refunds).post(refund))
        .route("/sweep", post(sweep))
}

/// The shop and key of an authenticated admin request.
pub(crate) struct Admin {
    shop: Shop,
    key: ApiKeyRecord,
}

impl Admin {
    /// `Ok` when the key holds `scope`; a 403 naming it otherwise.
    fn require(&self, scope: ApiScope) -> Result<&Shop, Problem> {
        if self.key.scopes.contains(&scope) {
            Ok(&self.shop)
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "Insufficient scope",
                format!("this key lacks the {scope} scope"),
            )
            .with("required_scope", scope))
        }
    }
}

/// A 401 that tells the client how to authenticate.
fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"commerce-admin\""),
    );
    response
}

impl FromRequestParts<Arc<Http>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, http: &Arc<Http>) -> Result<Self, Response> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("send an admin API key as a bearer token"))?;
        match http.commerce.authenticate_api_key(presented).await {
            Ok(Some((shop, key))) => Ok(Admin { shop, key }),
            Ok(None) => Err(unauthorized("the API key is not valid")),
            Err(error) => Err(Problem::from(error).into_response()),
        }
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn sku(value: &str) -> Result<Sku, Problem> {
    Sku::parse(value).map_err(|e| Problem::invalid("/sku", e.to_string()))
}

fn order_id(value: &str) -> Result<commerce_core::OrderId, Problem> {
    value.parse().map_err(|_| {
        Problem::from(commerce_core::Error::not_found(
            commerce_core::Entity::Order,
            value,
        ))
    })
}

// ----- catalog --------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A page of products, unpublished ones included, and the cursor of the
/// next one.
#[derive(Debug, Serialize)]
struct ProductList {
    data: Vec<commerce_core::Product>,
    next_cursor: Option<String>,
}

/// Every product, unpublished ones included, in ascending id order: pages
/// of `limit` (default 50, at most 200), the next one at `cursor` (the
/// previous page's `next_cursor`).
async fn products(
    admin: Admin,
    query: Result<Query<ProductQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Catalog)?;
    let Query(query) = query?;
    let after = query.cursor.as_deref().map(product_cursor).transpose()?;
    let page = shop
        .admin_products(after, query.limit.unwrap_or(50))
        .await?;
    Ok(json(
        StatusCode::OK,
        &ProductList {
            data: page.products,
            next_cursor: page.next.map(|id| id.to_string()),
        },
    ))
}

async fn create_product(
    admin: Admin,
    ApiJson(body): ApiJson<NewProduct>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Catalog)?;
    Ok(json(StatusCode::CREATED, &shop.add_product(body).await?))
}

async fn replace_product(
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewProduct>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Catalog)?;
    let id = id
        .parse()
        .map_err(|_| Problem::invalid("/product", "not a product id"))?;
    Ok(json(StatusCode::OK, &shop.put_product(id, body).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Publication {
    published: bool,
}

/// Publishes (`{"published": true}`) or unpublishes a product: unpublished,
/// the storefront neither shows nor sells it.
async fn publish_product(
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Publication>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Catalog)?;
    let id = id
        .parse()
        .map_err(|_| Problem::invalid("/product", "not a product id"))?;
    let product = shop.set_product_published(id, body.published).await?;
    Ok(json(StatusCode::OK, &product))
}

// ----- stock ----------------------------------------------------------------

async fn stock(admin: Admin, ApiPath(line): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Inventory)?;
    Ok(json(StatusCode::OK, &shop.stock(&sku(&line)?).await?))
}

async fn adjustments(admin: Admin, ApiPath(line): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Inventory)?;
    Ok(json(
        StatusCode::OK,
        &shop.stock_adjustments(&sku(&line)?).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Receipt {
    quantity: u32,
    note: Option<String>,
}

/// Stock arriving. With an `Idempotency-Key` header (a delivery note
/// line, say) the receipt counts once however often it is sent.
async fn receive(
    admin: Admin,
    headers: axum::http::HeaderMap,
    ApiPath(line): ApiPath<String>,
    ApiJson(body): ApiJson<Receipt>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Inventory)?;
    let quantity =
        Quantity::new(body.quantity).map_err(|e| Problem::invalid("/quantity", e.to_string()))?;
    let sku = sku(&line)?;
    let level = match headers.get(crate::IDEMPOTENCY_KEY) {
        Some(value) => {
            let reference = value
                .to_str()
                .ok()
                .and_then(|v| IdempotencyKey::parse(v).ok())
                .ok_or_else(|| Problem::invalid("/idempotency_key", "not a valid key"))?;
            shop.receive_stock_once(&sku, quantity, &reference, body.note)
                .await?
        }
        None => shop.receive_stock(&sku, quantity, body.note).await?,
    };
    Ok(json(StatusCode::OK, &level))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Count {
    on_hand: u32,
    note: Option<String>,
}

async fn count_stock(
    admin: Admin,
    ApiPath(line): ApiPath<String>,
    ApiJson(body): ApiJson<Count>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Inventory)?;
    let on_hand =
        Quantity::new(body.on_hand).map_err(|e| Problem::invalid("/on_hand", e.to_string()))?;
    let level = shop.correct_stock(&sku(&line)?, on_hand, body.note).await?;
    Ok(json(StatusCode::OK, &level))
}

// ----- promotions and settings ----------------------------------------------

async fn promotions(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Promotions)?;
    Ok(json(StatusCode::OK, &shop.promotions().await?))
}

async fn put_promotion(
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PromotionSpec>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Promotions)?;
    let id = PromotionId::parse(&id).map_err(|e| Problem::invalid("/promotion", e.to_string()))?;
    if body.id != id {
        return Err(Problem::invalid(
            "/id",
            "the promotion's id must be the one in the path",
        ));
    }
    Ok(json(StatusCode::OK, &shop.put_promotion(body).await?))
}

async fn remove_promotion(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Promotions)?;
    let id = PromotionId::parse(&id).map_err(|e| Problem::invalid("/promotion", e.to_string()))?;
    if shop.remove_promotion(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found())
    }
}

async fn settings(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Settings)?;
    Ok(json(StatusCode::OK, &shop.settings().await?))
}

async fn put_settings(
    admin: Admin,
    ApiJson(body): ApiJson<ShopSettings>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Settings)?;
    Ok(json(StatusCode::OK, &shop.put_settings(body).await?))
}

// ----- orders ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderQuery {
    status: Option<OrderStatus>,
    customer: Option<CustomerId>,
    placed_from: Option<Timestamp>,
    placed_before: Option<Timestamp>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of orders and the cursor of the next one.
#[derive(Debug, Serialize)]
struct OrderList {
    data: Vec<commerce_core::Order>,
    next_cursor: Option<String>,
}

/// A cursor as the client sees it: `{microseconds since the epoch}.{id}`.
fn encode_cursor(cursor: &OrderCursor) -> String {
    format!("{}.{}", cursor.placed_at.timestamp_micros(), cursor.id)
}

fn decode_cursor(text: &str) -> Result<OrderCursor, Problem> {
    let invalid = || Problem::invalid("/cursor", "not a cursor this API gave");
    let (micros, id) = text.split_once('.').ok_or_else(invalid)?;
    let placed_at = micros
        .parse::<i64>()
        .ok()
        .and_then(chrono_from_micros)
        .ok_or_else(invalid)?;
    let id = id.parse().map_err(|_| invalid())?;
    Ok(OrderCursor { placed_at, id })
}

fn chrono_from_micros(micros: i64) -> Option<Timestamp> {
    Timestamp::from_timestamp_micros(micros)
}

async fn list_orders(
    admin: Admin,
    query: Result<Query<OrderQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    let Query(query) = query?;
    let filter = OrderFilter {
        status: query.status,
        customer: query.customer,
        placed_from: query.placed_from,
        placed_before: query.placed_before,
    };
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = shop
        .orders(&filter, cursor.as_ref(), query.limit.unwrap_or(20))
        .await?;
    Ok(json(
        StatusCode::OK,
        &OrderList {
            data: page.orders,
            next_cursor: page.next.as_ref().map(encode_cursor),
        },
    ))
}

async fn order(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    Ok(json(StatusCode::OK, &shop.order(order_id(&id)?).await?))
}

async fn order_events(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    Ok(json(
        StatusCode::OK,
        &shop.order_events(order_id(&id)?).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancel {
    reason: String,
}

async fn cancel(
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Cancel>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    let order = shop.cancel_order(order_id(&id)?, body.reason).await?;
    Ok(json(StatusCode::OK, &order))
}

async fn fulfil(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    Ok(json(
        StatusCode::OK,
        &shop.fulfil_order(order_id(&id)?).await?,
    ))
}

async fn refunds(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Refunds)?;
    Ok(json(
        StatusCode::OK,
        &shop.order_refunds(order_id(&id)?).await?,
    ))
}

/// A refund request: `id` makes it idempotent (a retry with the same id
/// and amount returns the same refund).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRefund {
    id: Option<RefundId>,
    amount: RefundAmount,
}

async fn refund(
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewRefund>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Refunds)?;
    let request = RefundRequest {
        id: body.id.unwrap_or_else(RefundId::new_random),
        amount: body.amount,
    };
    let refund = shop.refund(order_id(&id)?, request).await?;
    // Still pending at the provider: accepted, the sweeper retries it.
    let status = if refund.is_pending() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &refund))
}

/// What one sweep did.
#[derive(Debug, Serialize)]
struct Swept {
    reservations_removed: usize,
    orders_expired: Vec<commerce_core::OrderId>,
    refunds_retried: usize,
    refunds_confirmed: usize,
}

async fn sweep(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    let report = shop.sweep().await?;
    Ok(json(
        StatusCode::OK,
        &Swept {
            reservations_removed: report.reservations_removed,
            orders_expired: report.orders_expired,
            refunds_retried: report.refunds_retried,
            refunds_confirmed: report.refunds_confirmed,
        },
    ))
}
