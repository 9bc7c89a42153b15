//! The storefront's catalog reads: the product list (keyset pages of
//! published products, or search results by offset), a product, and its
//! availability.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use commerce_core::{Page, Product, ProductId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiPath, ProductParams, private, product_id, public};
use crate::Http;
use crate::events::{VariantAvailability, availability, availability_stream, wants_stream};
use crate::problem::Problem;
use crate::tenant::TenantShop;

/// The catalog listing's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Words to search for (each a prefix of a word of the product).
    q: Option<String>,
    /// How many products (1 to 100, default 20).
    limit: Option<u32>,
    /// Search results (`q`) page by offset: they are ranked.
    offset: Option<u32>,
    /// The list pages by keyset: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of published products: the list in ascending id order, paged by
/// `next_cursor`; or search results (`q`), best first, paged by `offset`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ProductList {
    data: Vec<Product>,
    limit: u32,
    has_more: bool,
    /// The `cursor` of the next page of the list (`null` on the last page
    /// and for search results).
    next_cursor: Option<String>,
    /// The offset of this page of search results (absent for the list).
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u32>,
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
        (status = 400, description = "A query parameter cannot be read, or `offset` without `q`, or `cursor` with it (`invalid_parameter`)."),
    )
)]
pub(super) async fn list_products(
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20).clamp(1, Page::MAX_LIMIT);
    let list = match query.q.as_deref() {
        Some(q) => {
            if query.cursor.is_some() {
                return Err(Problem::invalid(
                    "/cursor",
                    "search results page by offset, not by cursor",
                ));
            }
            let offset = query.offset.unwrap_or(0);
            // One more than asked, to know whether there is more.
            let page = Page {
                offset,
                limit: limit.saturating_add(1).min(Page::MAX_LIMIT),
            };
            let mut data = shop.search_products(q, page).await?;
            let has_more = data.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            data.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            ProductList {
                data,
                limit,
                has_more,
                next_cursor: None,
                offset: Some(offset),
            }
        }
        None => {
            if query.offset.is_some() {
                return Err(Problem::invalid(
                    "/offset",
                    "the product list pages by cursor (the previous page's next_cursor)",
                ));
            }
            let after = query.cursor.as_deref().map(product_cursor).transpose()?;
            let page = shop.products(after, limit).await?;
            ProductList {
                has_more: page.next.is_some(),
                next_cursor: page.next.map(|id| id.to_string()),
                data: page.products,
                limit,
                offset: None,
            }
        }
    };
    Ok(public(&headers, &list))
}

/// A product list cursor: the id of the last product of the previous page.
pub(crate) fn product_cursor(value: &str) -> Result<ProductId, Problem> {
    value
        .parse::<ProductId>()
        .map_err(|_| Problem::invalid("/cursor", "not a cursor this API gave"))
}

/// A product with each variant's availability (and, for a held variant,
/// when it may come back).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ProductView {
    product: Product,
    availability: Vec<VariantAvailability>,
}

/// A published product with each variant's availability; a held variant
/// says when its first hold lapses (`next_release_at`).
#[utoipa::path(
    get,
    path = "/products/{product}",
    tag = "catalog",
    params(("product" = String, Path, description = "The product's id.")),
    responses(
        (status = 200, description = "The product (cacheable; `ETag`).", body = ProductView),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`."),
        (status = 404, description = "No such published product (`not_found`)."),
    )
)]
pub(super) async fn product(
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(ProductParams { product: id }): ApiPath<ProductParams>,
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
/// lapsing is a change). A held variant says when its first hold lapses
/// (`next_release_at`).
#[utoipa::path(
    get,
    path = "/products/{product}/availability",
    tag = "catalog",
    params(("product" = String, Path, description = "The product's id.")),
    responses(
        (status = 200, description = "Each variant's availability (with `next_release_at` while something holds it); with `Accept: text/event-stream` a stream of `availability` events.",
            content(
                (Vec<VariantAvailability> = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 404, description = "No such published product (`not_found`)."),
    )
)]
pub(super) async fn product_availability(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(ProductParams { product: id }): ApiPath<ProductParams>,
) -> Result<Response, Problem> {
    let product = shop.product(product_id(&id)?).await?;
    if wants_stream(&headers) {
        return Ok(availability_stream(http, shop, product));
    }
    let now = availability(&shop, &product).await?;
    Ok(private(StatusCode::OK, &now))
}
