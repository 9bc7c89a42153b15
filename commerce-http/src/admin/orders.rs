//! Admin: orders, refunds, the sweep and the tenant's event feed.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use commerce_core::order::{RefundAmount, RefundRequest};
use commerce_core::{
    ApiScope, CustomerId, OrderCursor, OrderFilter, OrderStatus, RefundId, Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Http;
use crate::problem::Problem;
use crate::storefront::{ApiJson, ApiPath, OrderParams, order_id, private as json};

use super::Admin;

// ----- orders ---------------------------------------------------------------

/// The order listing's filters and page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct OrderQuery {
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
pub(super) struct OrderList {
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
    )
)]
pub(super) async fn list_orders(
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
    )
)]
pub(super) async fn order(
    admin: Admin,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
) -> Result<Response, Problem> {
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
    )
)]
pub(super) async fn order_events(
    admin: Admin,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Orders)?;
    Ok(json(
        StatusCode::OK,
        &shop.order_events(order_id(&id)?).await?,
    ))
}

/// Why an order is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Cancel {
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
    )
)]
pub(super) async fn cancel(
    admin: Admin,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
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
    )
)]
pub(super) async fn fulfil(
    admin: Admin,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
) -> Result<Response, Problem> {
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
    )
)]
pub(super) async fn refunds(
    admin: Admin,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
) -> Result<Response, Problem> {
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
pub(super) struct NewRefund {
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
    )
)]
pub(super) async fn refund(
    admin: Admin,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
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
pub(super) struct Swept {
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
    )
)]
pub(super) async fn sweep(admin: Admin) -> Result<Response, Problem> {
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
pub(super) struct FeedQuery {
    /// The `next` of the previous page (or an event's `position`); from the
    /// first event when absent.
    after: Option<String>,
    /// How many events (1 to 500, default 100).
    limit: Option<usize>,
}

/// A page of the tenant's event feed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FeedView {
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
    )
)]
pub(super) async fn feed(
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
