//! The storefront's checkout (exactly once per `Idempotency-Key`) and
//! order reads.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use commerce_core::{CheckoutRequest, Error, IdempotencyKey, Money, Order, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Http;
use crate::events::{order_stream, wants_stream};
use crate::problem::Problem;
use crate::tenant::TenantShop;

use super::carts::resolve_customer;
use super::{
    ApiPath, CartParams, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, OrderParams, cart_id, location,
    order_id, private,
};

// ----- checkout and orders --------------------------------------------------

/// What the buyer was shown.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckoutBody {
    expected_total: Option<Money>,
}

/// Where to send the buyer to pay.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PaymentView {
    session_id: String,
    redirect_url: String,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

/// The order a checkout placed and where to pay it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CheckoutView {
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
        (status = 409, description = "The total changed (`price_changed` with `expected`, `actual` and the new `pricing`), stock ran out, a hold lapsed, or the shop is not accepting orders (`not_accepting_orders`)."),
        (status = 413, description = "The body is too large (`body_too_large`)."),
        (status = 422, description = "The key was used for another cart (`idempotency_key_reused`), the cart is empty, or an age verification is needed."),
    )
)]
pub(super) async fn checkout(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    uri: OriginalUri,
    headers: HeaderMap,
    ApiPath(CartParams { cart }): ApiPath<CartParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body?;
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
pub(super) async fn order(
    TenantShop(shop): TenantShop,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
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
pub(super) async fn order_events(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(OrderParams { order: id }): ApiPath<OrderParams>,
) -> Result<Response, Problem> {
    let order = order_id(&id)?;
    if wants_stream(&headers) {
        return order_stream(http, shop, order, &headers).await;
    }
    let events = shop.order_events(order).await?;
    Ok(private(StatusCode::OK, &events))
}
