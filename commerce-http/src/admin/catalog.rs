//! Admin: products, stock, promotions and settings.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use commerce_core::{
    ApiScope, IdempotencyKey, NewProduct, PromotionId, PromotionSpec, Quantity, ShopSettings,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::problem::Problem;
use crate::storefront::{
    ApiJson, ApiPath, ProductParams, PromotionParams, SkuParams, private as json, product_cursor,
};

use super::{Admin, sku};

// ----- catalog --------------------------------------------------------------

/// A page of the admin's product list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ProductQuery {
    /// How many products (1 to 200, default 50).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of products, unpublished ones included, and the cursor of the
/// next one.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AdminProductList {
    data: Vec<commerce_core::Product>,
    next_cursor: Option<String>,
}

/// Every product, unpublished ones included, in ascending id order: pages
/// of `limit` (default 50, at most 200), the next one at `cursor` (the
/// previous page's `next_cursor`).
#[utoipa::path(
    get,
    path = "/products",
    tag = "catalog",
    operation_id = "admin_list_products",
    params(ProductQuery),
    responses(
        (status = 200, description = "A page of products.", body = AdminProductList),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
    )
)]
pub(super) async fn products(
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
        &AdminProductList {
            data: page.products,
            next_cursor: page.next.map(|id| id.to_string()),
        },
    ))
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
    )
)]
pub(super) async fn create_product(
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
    )
)]
pub(super) async fn replace_product(
    admin: Admin,
    ApiPath(ProductParams { product: id }): ApiPath<ProductParams>,
    ApiJson(body): ApiJson<NewProduct>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Catalog)?;
    let id = id
        .parse()
        .map_err(|_| Problem::invalid("/product", "not a product id"))?;
    Ok(json(StatusCode::OK, &shop.put_product(id, body).await?))
}

/// Whether a product is on sale.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Publication {
    /// `true` to show and sell it in the storefront.
    published: bool,
}

/// Publishes (`{"published": true}`) or unpublishes a product: unpublished,
/// the storefront neither shows nor sells it.
#[utoipa::path(
    put,
    path = "/products/{product}/published",
    tag = "catalog",
    operation_id = "admin_publish_product",
    params(("product" = String, Path, description = "The product's id.")),
    request_body = Publication,
    responses(
        (status = 200, description = "The product.", body = commerce_core::Product),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 404, description = "No such product (`not_found`)."),
    )
)]
pub(super) async fn publish_product(
    admin: Admin,
    ApiPath(ProductParams { product: id }): ApiPath<ProductParams>,
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
    )
)]
pub(super) async fn stock(
    admin: Admin,
    ApiPath(SkuParams { sku: line }): ApiPath<SkuParams>,
) -> Result<Response, Problem> {
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
    )
)]
pub(super) async fn adjustments(
    admin: Admin,
    ApiPath(SkuParams { sku: line }): ApiPath<SkuParams>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Inventory)?;
    Ok(json(
        StatusCode::OK,
        &shop.stock_adjustments(&sku(&line)?).await?,
    ))
}

/// Stock arriving.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Receipt {
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
    )
)]
pub(super) async fn receive(
    admin: Admin,
    headers: axum::http::HeaderMap,
    ApiPath(SkuParams { sku: line }): ApiPath<SkuParams>,
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
pub(super) struct Count {
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
    )
)]
pub(super) async fn count_stock(
    admin: Admin,
    ApiPath(SkuParams { sku: line }): ApiPath<SkuParams>,
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
    )
)]
pub(super) async fn promotions(admin: Admin) -> Result<Response, Problem> {
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
    )
)]
pub(super) async fn put_promotion(
    admin: Admin,
    ApiPath(PromotionParams { promotion: id }): ApiPath<PromotionParams>,
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
    )
)]
pub(super) async fn remove_promotion(
    admin: Admin,
    ApiPath(PromotionParams { promotion: id }): ApiPath<PromotionParams>,
) -> Result<Response, Problem> {
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
    )
)]
pub(super) async fn settings(admin: Admin) -> Result<Response, Problem> {
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
    )
)]
pub(super) async fn put_settings(
    admin: Admin,
    ApiJson(body): ApiJson<ShopSettings>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Settings)?;
    Ok(json(StatusCode::OK, &shop.put_settings(body).await?))
}
