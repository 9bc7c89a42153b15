//! The storefront API: catalog reads, carts, pricing, checkout and orders,
//! one endpoint per facade use case.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commerce_core::{CartId, Error, OrderId, ProductId, Sku};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Http;
use crate::problem::Problem;

/// The header a checkout must carry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header a replayed checkout answers with.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

const CATALOG_CACHE: &str = "public, s-maxage=60, stale-while-revalidate=600";

mod carts;
mod catalog;
mod checkout;

pub(crate) use catalog::product_cursor;

/// The storefront's routes, with their OpenAPI operations.
pub(crate) fn routes() -> OpenApiRouter<Arc<Http>> {
    OpenApiRouter::new()
        .routes(routes!(catalog::list_products))
        .routes(routes!(catalog::product))
        .routes(routes!(catalog::product_availability))
        .routes(routes!(carts::create_cart))
        .routes(routes!(carts::cart))
        .routes(routes!(carts::set_line, carts::remove_line))
        .routes(routes!(carts::renew))
        .routes(routes!(carts::add_code, carts::remove_code))
        .routes(routes!(carts::set_attribute, carts::remove_attribute))
        .routes(routes!(carts::price))
        .routes(routes!(carts::verify_age))
        .routes(routes!(checkout::checkout))
        .routes(routes!(checkout::order))
        .routes(routes!(checkout::order_events))
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

/// A route's own path parameters, read by name, whose rejections are
/// problems; the handler parses each with the core's own parser, so a
/// malformed value answers as that parser says (a 404 for an id, a 400
/// naming the field otherwise).
///
/// `T` is one of the [`NamedParams`] structs below, never a bare value or
/// a tuple: axum's `Path` reads those by position, and a router nested
/// under a parameter of its own (`.nest("/s/{store}", storefront)` for
/// [`TenantResolver::PathParam`](crate::TenantResolver::PathParam)) sees
/// that parameter too. A struct is read by field name and ignores the
/// others.
pub(crate) struct ApiPath<T>(pub(crate) T);

/// Path parameters read by name: a struct whose fields are the `{name}`s
/// of the route's template. Implemented by `path_params!` only, so a
/// positional `ApiPath<String>` does not compile.
pub(crate) trait NamedParams: serde::de::DeserializeOwned + Send {}

/// Declares structs of named path parameters (each a `String`, parsed by
/// the handler).
macro_rules! path_params {
    ($($(#[$doc:meta])* $name:ident { $($field:ident),+ $(,)? })*) => {$(
        $(#[$doc])*
        #[derive(serde::Deserialize)]
        pub(crate) struct $name {
            $(pub(crate) $field: String,)+
        }

        impl NamedParams for $name {}
    )*};
}

path_params! {
    /// `{product}`.
    ProductParams { product }
    /// `{cart}`.
    CartParams { cart }
    /// `{cart}` and a line's `{sku}`.
    LineParams { cart, sku }
    /// `{cart}` and a coupon `{code}`.
    CodeParams { cart, code }
    /// `{cart}` and an attribute's `{key}`.
    AttributeParams { cart, key }
    /// `{order}`.
    OrderParams { order }
    /// `{sku}` (admin stock).
    SkuParams { sku }
    /// `{promotion}` (admin).
    PromotionParams { promotion }
    /// An admin key's `{key}`.
    KeyParams { key }
}

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: NamedParams,
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

pub(crate) fn order_id(value: &str) -> Result<OrderId, Problem> {
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
pub(crate) fn private<T: Serialize>(status: StatusCode, body: &T) -> Response {
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
