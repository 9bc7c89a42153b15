//! The admin API, behind bearer API keys bound to one tenant with scopes:
//! products, stock, promotions, settings, orders, refunds and the sweep.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commerce_core::order::{RefundAmount, RefundRequest};
use commerce_core::{
    ApiKeyRecord, ApiScope, CustomerId, IdempotencyKey, NewProduct, OrderCursor, OrderFilter,
    OrderStatus, PromotionId, PromotionSpec, Quantity, RefundId, Shop, ShopSettings, Sku,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Http;
use crate::problem::Problem;
use crate::storefront::{ApiJson, ApiPath};

/// The admin API's routes, with their OpenAPI operations.
pub(crate) fn routes() -> OpenApiRouter<Arc<Http>> {
    OpenApiRouter::new()
        .routes(routes!(products, create_product))
        .routes(routes!(replace_product))
        .routes(routes!(stock, count_stock))
        .routes(routes!(adjustments))
        .routes(routes!(receive))
        .routes(routes!(promotions))
        .routes(routes!(put_promotion, remove_promotion))
        .routes(routes!(settings, put_settings))
        .routes(routes!(list_orders))
        .routes(routes!(order))
        .routes(routes!(order_events))
        .routes(routes!(feed))
        .routes(routes!(cancel))
        .routes(routes!(fulfil))
        .routes(routes!(refunds, refund))
        .routes(routes!(sweep))
        .routes(routes!(keys, issue_key))
        .routes(routes!(revoke_key))
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

/// Every product.
#[utoipa::path(
    get,
    path = "/products",
    tag = "catalog",
    operation_id = "admin_list_products",
    responses(
        (status = 200, description = "The products.", body = Vec<commerce_core::Product>),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn products(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Catalog)?;
    Ok(json(StatusCode::OK, &shop.products().await?))
}

/// Adds a product.
#[utoipa::path(
    post,
    path = "/products",
    tag = "catalog",
    operation_id = "admin_create_product",
    request_body = NewProduct,
    responses(
        (status = 201, description = "The product.", body = commerce_core::Product),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 409, description = "A SKU belongs to another product (`sku_taken`)."),
        (status = 422, description = "The product is not valid (`invalid_product`, `invalid_text`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn create_product(
    admin: Admin,
    ApiJson(body): ApiJson<NewProduct>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Catalog)?;
    Ok(json(StatusCode::CREATED, &shop.add_product(body).await?))
}

/// Replaces a product (or adds it under this id).
#[utoipa::path(
    put,
    path = "/products/{product}",
    tag = "catalog",
    operation_id = "admin_replace_product",
    params(
        ("product" = String, Path, description = "The product's id."),
    ),
    request_body = NewProduct,
    responses(
        (status = 200, description = "The product.", body = commerce_core::Product),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 409, description = "A SKU belongs to another product (`sku_taken`)."),
        (status = 422, description = "The product is not valid (`invalid_product`, `invalid_text`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
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

// ----- stock ----------------------------------------------------------------

/// A SKU's stock: on hand, held, allocated, available.
#[utoipa::path(
    get,
    path = "/stock/{sku}",
    tag = "inventory",
    operation_id = "admin_stock",
    params(
        ("sku" = String, Path, description = "The variant's SKU."),
    ),
    responses(
        (status = 200, description = "The stock level.", body = commerce_core::StockLevel),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn stock(admin: Admin, ApiPath(line): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Inventory)?;
    Ok(json(StatusCode::OK, &shop.stock(&sku(&line)?).await?))
}

/// A SKU's stock history.
#[utoipa::path(
    get,
    path = "/stock/{sku}/adjustments",
    tag = "inventory",
    operation_id = "admin_stock_adjustments",
    params(
        ("sku" = String, Path, description = "The variant's SKU."),
    ),
    responses(
        (status = 200, description = "Every adjustment, oldest first.", body = Vec<commerce_core::StockAdjustment>),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn adjustments(admin: Admin, ApiPath(line): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Inventory)?;
    Ok(json(
        StatusCode::OK,
        &shop.stock_adjustments(&sku(&line)?).await?,
    ))
}

/// Stock arriving.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Receipt {
    /// Units received (at least 1).
    quantity: u32,
    /// A note for the stock history.
    note: Option<String>,
}

/// Stock arriving. With an `Idempotency-Key` header (a delivery note
/// line, say) the receipt counts once however often it is sent.
#[utoipa::path(
    post,
    path = "/stock/{sku}/receipts",
    tag = "inventory",
    operation_id = "admin_receive_stock",
    params(
        ("sku" = String, Path, description = "The variant's SKU."),
        ("idempotency-key" = Option<String>, Header, description = "A reference (a delivery note line, say): the receipt counts once however often it is sent."),
    ),
    request_body = Receipt,
    responses(
        (status = 200, description = "The stock level.", body = commerce_core::StockLevel),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 422, description = "The count would overflow (`stock_overflow`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
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

/// A stock count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Count {
    /// Units counted on hand.
    on_hand: u32,
    /// A note for the stock history.
    note: Option<String>,
}

/// Records a stock count: the units on hand.
#[utoipa::path(
    put,
    path = "/stock/{sku}",
    tag = "inventory",
    operation_id = "admin_count_stock",
    params(
        ("sku" = String, Path, description = "The variant's SKU."),
    ),
    request_body = Count,
    responses(
        (status = 200, description = "The stock level.", body = commerce_core::StockLevel),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 409, description = "Fewer than are held or allocated (`stock_below_held`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
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

/// Every promotion.
#[utoipa::path(
    get,
    path = "/promotions",
    tag = "promotions",
    operation_id = "admin_list_promotions",
    responses(
        (status = 200, description = "The promotions.", body = Vec<commerce_core::Promotion>),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn promotions(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Promotions)?;
    Ok(json(StatusCode::OK, &shop.promotions().await?))
}

/// Adds or replaces a promotion (its `id` must be the path's).
#[utoipa::path(
    put,
    path = "/promotions/{promotion}",
    tag = "promotions",
    operation_id = "admin_put_promotion",
    params(
        ("promotion" = String, Path, description = "The promotion's id."),
    ),
    request_body = PromotionSpec,
    responses(
        (status = 200, description = "The promotion.", body = commerce_core::Promotion),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 422, description = "The promotion is not valid (`invalid_promotion`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
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

/// Removes a promotion.
#[utoipa::path(
    delete,
    path = "/promotions/{promotion}",
    tag = "promotions",
    operation_id = "admin_remove_promotion",
    params(
        ("promotion" = String, Path, description = "The promotion's id."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 404, description = "No such promotion (`not_found`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn remove_promotion(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Promotions)?;
    let id = PromotionId::parse(&id).map_err(|e| Problem::invalid("/promotion", e.to_string()))?;
    if shop.remove_promotion(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found())
    }
}

/// The shop's settings.
#[utoipa::path(
    get,
    path = "/settings",
    tag = "settings",
    operation_id = "admin_settings",
    responses(
        (status = 200, description = "The settings.", body = ShopSettings),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn settings(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Settings)?;
    Ok(json(StatusCode::OK, &shop.settings().await?))
}

/// Replaces the shop's settings.
#[utoipa::path(
    put,
    path = "/settings",
    tag = "settings",
    operation_id = "admin_put_settings",
    request_body = ShopSettings,
    responses(
        (status = 200, description = "The settings.", body = ShopSettings),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 422, description = "The settings are not valid (`invalid_settings`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn put_settings(
    admin: Admin,
    ApiJson(body): ApiJson<ShopSettings>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Settings)?;
    Ok(json(StatusCode::OK, &shop.put_settings(body).await?))
}

// ----- orders ---------------------------------------------------------------

/// The order listing's filters and page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OrderQuery {
    /// Only orders with this status.
    status: Option<OrderStatus>,
    /// Only this customer's orders.
    customer: Option<CustomerId>,
    /// Only orders placed at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    placed_from: Option<Timestamp>,
    /// Only orders placed before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    placed_before: Option<Timestamp>,
    /// How many orders (1 to 100, default 20).
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of orders and the cursor of the next one.
#[derive(Debug, Serialize, ToSchema)]
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

/// Orders, newest first, a keyset page at a time.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    operation_id = "admin_list_orders",
    params(
        OrderQuery,
    ),
    responses(
        (status = 200, description = "A page of orders.", body = OrderList),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
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

/// An order.
#[utoipa::path(
    get,
    path = "/orders/{order}",
    tag = "orders",
    operation_id = "admin_order",
    params(
        ("order" = String, Path, description = "The order's id."),
    ),
    responses(
        (status = 200, description = "The order.", body = commerce_core::Order),
        (status = 404, description = "No such order (`not_found`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn order(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    Ok(json(StatusCode::OK, &shop.order(order_id(&id)?).await?))
}

/// An order's audit log.
#[utoipa::path(
    get,
    path = "/orders/{order}/events",
    tag = "orders",
    operation_id = "admin_order_events",
    params(
        ("order" = String, Path, description = "The order's id."),
    ),
    responses(
        (status = 200, description = "The events, oldest first.", body = Vec<commerce_core::OrderEvent>),
        (status = 404, description = "No such order (`not_found`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn order_events(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    Ok(json(
        StatusCode::OK,
        &shop.order_events(order_id(&id)?).await?,
    ))
}

/// Why an order is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Cancel {
    /// The reason, kept in the audit log.
    reason: String,
}

/// Cancels an unpaid order, releasing its stock and promotion uses.
#[utoipa::path(
    post,
    path = "/orders/{order}/cancel",
    tag = "orders",
    operation_id = "admin_cancel_order",
    params(
        ("order" = String, Path, description = "The order's id."),
    ),
    request_body = Cancel,
    responses(
        (status = 200, description = "The order.", body = commerce_core::Order),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 404, description = "No such order (`not_found`)."),
        (status = 409, description = "Its status does not allow it (`invalid_transition`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn cancel(
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Cancel>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    let order = shop.cancel_order(order_id(&id)?, body.reason).await?;
    Ok(json(StatusCode::OK, &order))
}

/// Marks a paid order fulfilled.
#[utoipa::path(
    post,
    path = "/orders/{order}/fulfil",
    tag = "orders",
    operation_id = "admin_fulfil_order",
    params(
        ("order" = String, Path, description = "The order's id."),
    ),
    responses(
        (status = 200, description = "The order.", body = commerce_core::Order),
        (status = 404, description = "No such order (`not_found`)."),
        (status = 409, description = "Its status does not allow it (`invalid_transition`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn fulfil(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    Ok(json(
        StatusCode::OK,
        &shop.fulfil_order(order_id(&id)?).await?,
    ))
}

/// An order's refunds.
#[utoipa::path(
    get,
    path = "/orders/{order}/refunds",
    tag = "refunds",
    operation_id = "admin_order_refunds",
    params(
        ("order" = String, Path, description = "The order's id."),
    ),
    responses(
        (status = 200, description = "The refunds.", body = Vec<commerce_core::order::Refund>),
        (status = 404, description = "No such order (`not_found`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn refunds(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Refunds)?;
    Ok(json(
        StatusCode::OK,
        &shop.order_refunds(order_id(&id)?).await?,
    ))
}

/// A refund request: `id` makes it idempotent (a retry with the same id
/// and amount returns the same refund).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRefund {
    /// Makes the request idempotent (default: a new id).
    id: Option<RefundId>,
    /// How much: the whole remainder, an amount, or lines.
    amount: RefundAmount,
}

#[utoipa::path(
    post,
    path = "/orders/{order}/refunds",
    tag = "refunds",
    operation_id = "admin_refund_order",
    params(
        ("order" = String, Path, description = "The order's id."),
    ),
    request_body = NewRefund,
    responses(
        (status = 201, description = "The refund, settled.", body = commerce_core::order::Refund),
        (status = 202, description = "The refund, pending at the provider (the sweep retries it).", body = commerce_core::order::Refund),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 404, description = "No such order (`not_found`)."),
        (status = 409, description = "More than is refundable (`refund_exceeds_refundable`, `refund_exceeds_line`), or the order is not paid."),
        (status = 422, description = "The amount or the id is not valid (`invalid_refund_amount`, `refund_id_reused`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
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
#[derive(Debug, Serialize, ToSchema)]
struct Swept {
    /// Lapsed holds released.
    reservations_removed: usize,
    /// Unpaid orders expired.
    orders_expired: Vec<commerce_core::OrderId>,
    /// Pending refunds sent again.
    refunds_retried: usize,
    /// Pending refunds the provider confirmed.
    refunds_confirmed: usize,
}

/// Releases lapsed holds, expires unpaid orders past their window and
/// retries pending refunds.
#[utoipa::path(
    post,
    path = "/sweep",
    tag = "orders",
    operation_id = "admin_sweep",
    responses(
        (status = 200, description = "What the sweep did.", body = Swept),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
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

// ----- the feed -------------------------------------------------------------

/// Where to read the feed from.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// The `next` of the previous page (or an event's `position`); from the
    /// first event when absent.
    after: Option<String>,
    /// How many events (1 to 500, default 100).
    limit: Option<usize>,
}

/// A page of the tenant's event feed.
#[derive(Debug, Serialize, ToSchema)]
struct FeedView {
    /// The events, in feed order.
    data: Vec<commerce_core::order::FeedItem>,
    /// Where to read on from (`after` of the next request).
    next: Option<commerce_core::order::FeedPosition>,
}

fn feed_position(text: &str) -> Result<commerce_core::order::FeedPosition, Problem> {
    text.trim()
        .parse()
        .map_err(|_| Problem::invalid("/after", "not a feed position this API gave"))
}

/// Every order event of the shop, from a position: JSON pages, or with
/// `Accept: text/event-stream` a live stream whose event ids are feed
/// positions (a reconnect with `Last-Event-ID` resumes after it). Read
/// from the store: restart-proof, and every event exactly once in order.
#[utoipa::path(
    get,
    path = "/events",
    tag = "orders",
    operation_id = "admin_feed",
    params(
        FeedQuery,
        ("last-event-id" = Option<String>, Header, description = "On a stream: the last position seen; the stream resumes after it."),
    ),
    responses(
        (status = 200, description = "A page of the feed; with `Accept: text/event-stream` a stream of its events.",
            content(
                (FeedView = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "`after` or `Last-Event-ID` is not a feed position (`invalid_parameter`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn feed(
    State(http): State<Arc<Http>>,
    admin: Admin,
    headers: axum::http::HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?.clone();
    let Query(query) = query?;
    let resume = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| Problem::invalid("/after", "not text"))
        })
        .transpose()?;
    let after = query
        .after
        .as_deref()
        .or(resume)
        .map(feed_position)
        .transpose()?;
    if crate::events::wants_stream(&headers) {
        return Ok(crate::events::feed_stream(http, shop, after));
    }
    let page = shop.events_since(after, query.limit.unwrap_or(100)).await?;
    Ok(json(
        StatusCode::OK,
        &FeedView {
            data: page.items,
            next: page.next,
        },
    ))
}

// ----- keys -----------------------------------------------------------------

/// An admin key as listed: never the key or its hash.
#[derive(Debug, Serialize, ToSchema)]
struct KeyView {
    /// The public key id.
    id: String,
    /// A name for people.
    name: String,
    /// What it may do.
    scopes: Vec<ApiScope>,
    /// When it was issued.
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When it was last used, if ever.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<Timestamp>,
}

impl From<ApiKeyRecord> for KeyView {
    fn from(record: ApiKeyRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            scopes: record.scopes.into_iter().collect(),
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// A key to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// A name for people ("warehouse sync").
    name: String,
    /// What it may do: at most the scopes of the key that issues it.
    scopes: Vec<ApiScope>,
}

/// A key just issued: `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
struct IssuedKey {
    /// The key (`ck_…`): store it now, it cannot be read again.
    key: String,
    /// The key as listed.
    record: KeyView,
}

/// The shop's admin keys (revoked ones included).
#[utoipa::path(
    get,
    path = "/keys",
    tag = "keys",
    operation_id = "admin_list_keys",
    responses(
        (status = 200, description = "The keys.", body = Vec<KeyView>),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
    )
)]
async fn keys(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Keys)?;
    let keys: Vec<KeyView> = shop
        .api_keys()
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(json(StatusCode::OK, &keys))
}

/// Issues a key with at most the calling key's scopes. Several keys may be
/// active at once: issue the new one, deploy it, revoke the old one.
#[utoipa::path(
    post,
    path = "/keys",
    tag = "keys",
    operation_id = "admin_issue_key",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key, shown once.", body = IssuedKey),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The calling key lacks the `keys` scope or a scope it asks for (`insufficient_scope` with `required_scope`)."),
        (status = 422, description = "The name is not valid (`invalid_text`)."),
    )
)]
async fn issue_key(admin: Admin, ApiJson(body): ApiJson<NewKey>) -> Result<Response, Problem> {
    admin.require(ApiScope::Keys)?;
    for scope in &body.scopes {
        admin.require(*scope)?;
    }
    let issued = admin.shop.issue_api_key(&body.name, body.scopes).await?;
    Ok(json(
        StatusCode::CREATED,
        &IssuedKey {
            key: issued.key,
            record: KeyView::from(issued.record),
        },
    ))
}

/// Revokes a key: it stops working at once.
#[utoipa::path(
    delete,
    path = "/keys/{key}",
    tag = "keys",
    operation_id = "admin_revoke_key",
    params(("key" = String, Path, description = "The key's public id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, description = "No valid admin key (`unauthorized`, with `WWW-Authenticate`)."),
        (status = 403, description = "The key lacks the scope (`insufficient_scope` with `required_scope`)."),
        (status = 404, description = "No such active key (`not_found`)."),
    )
)]
async fn revoke_key(admin: Admin, ApiPath(id): ApiPath<String>) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Keys)?;
    if shop.revoke_api_key(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found())
    }
}
