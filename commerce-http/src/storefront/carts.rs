//! The storefront's carts: lines and their holds, codes, attributes,
//! pricing previews and age verification.

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use commerce_core::{
    Cart, CartId, CouponCode, Currency, Error, PricedCart, Quantity, Reservation, Shop, Sku,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Http;
use crate::problem::Problem;
use crate::tenant::TenantShop;

use super::{
    ApiJson, ApiPath, AttributeParams, CartParams, CodeParams, LineParams, cart_id, location,
    parse, private, sku,
};

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
pub(super) struct ReservationView {
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

pub(super) async fn cart_view(shop: &Shop, cart: Cart) -> Result<CartView, Problem> {
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
pub(super) async fn resolve_customer(
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
pub(super) struct NewCart {
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
        (status = 400, description = "The body cannot be read (`invalid_parameter`)."),
    )
)]
pub(super) async fn create_cart(
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
pub(super) async fn cart(
    TenantShop(shop): TenantShop,
    ApiPath(CartParams { cart: id }): ApiPath<CartParams>,
) -> Result<Response, Problem> {
    let cart = shop.cart(cart_id(&id)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

/// A line's new quantity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetLine {
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
pub(super) async fn set_line(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(LineParams { cart, sku: line }): ApiPath<LineParams>,
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
pub(super) async fn remove_line(
    TenantShop(shop): TenantShop,
    ApiPath(LineParams { cart, sku: line }): ApiPath<LineParams>,
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
pub(super) async fn renew(
    TenantShop(shop): TenantShop,
    ApiPath(CartParams { cart }): ApiPath<CartParams>,
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
pub(super) async fn add_code(
    TenantShop(shop): TenantShop,
    ApiPath(CodeParams { cart, code }): ApiPath<CodeParams>,
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
pub(super) async fn remove_code(
    TenantShop(shop): TenantShop,
    ApiPath(CodeParams { cart, code }): ApiPath<CodeParams>,
) -> Result<Response, Problem> {
    let cart = shop.remove_code(cart_id(&cart)?, &coupon(&code)?).await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

/// An attribute's value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AttributeValue {
    /// At most 500 bytes of text every store can keep.
    value: String,
}

fn attribute_key(value: &str) -> Result<commerce_core::AttributeKey, Problem> {
    commerce_core::AttributeKey::parse(value).map_err(|e| Problem::from(Error::from(e)))
}

/// Sets a cart attribute (a buyer's email, a pickup slot): at most 16
/// per cart; the order keeps them.
#[utoipa::path(
    put,
    path = "/carts/{cart}/attributes/{key}",
    tag = "carts",
    params(
        ("cart" = String, Path, description = "The cart's id."),
        ("key" = String, Path, description = "1 to 40 of `a-z`, `0-9`, `_`, `.`, `-`, starting with a letter."),
    ),
    request_body = AttributeValue,
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 400, description = "The body cannot be read (`invalid_parameter`)."),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "The cart is checked out (`cart_checked_out`)."),
        (status = 422, description = "The key, the value or the count is refused (`invalid_attribute_key`, `invalid_attribute_value`, `too_many_attributes`)."),
    )
)]
pub(super) async fn set_attribute(
    TenantShop(shop): TenantShop,
    ApiPath(AttributeParams { cart, key }): ApiPath<AttributeParams>,
    ApiJson(body): ApiJson<AttributeValue>,
) -> Result<Response, Problem> {
    let (cart, key) = (cart_id(&cart)?, attribute_key(&key)?);
    let cart = shop
        .set_cart_attribute(cart, &key, Some(body.value))
        .await?;
    Ok(private(StatusCode::OK, &cart_view(&shop, cart).await?))
}

/// Removes a cart attribute (nothing changes when it is not set).
#[utoipa::path(
    delete,
    path = "/carts/{cart}/attributes/{key}",
    tag = "carts",
    params(
        ("cart" = String, Path, description = "The cart's id."),
        ("key" = String, Path, description = "The attribute's key."),
    ),
    responses(
        (status = 200, description = "The cart.", body = CartView),
        (status = 404, description = "No such cart (`not_found`)."),
        (status = 409, description = "The cart is checked out (`cart_checked_out`)."),
        (status = 422, description = "The key is not a valid key (`invalid_attribute_key`)."),
    )
)]
pub(super) async fn remove_attribute(
    TenantShop(shop): TenantShop,
    ApiPath(AttributeParams { cart, key }): ApiPath<AttributeParams>,
) -> Result<Response, Problem> {
    let (cart, key) = (cart_id(&cart)?, attribute_key(&key)?);
    let cart = shop.set_cart_attribute(cart, &key, None).await?;
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
pub(super) async fn price(
    TenantShop(shop): TenantShop,
    ApiPath(CartParams { cart }): ApiPath<CartParams>,
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
pub(super) async fn verify_age(
    State(http): State<Arc<Http>>,
    TenantShop(shop): TenantShop,
    headers: HeaderMap,
    ApiPath(CartParams { cart }): ApiPath<CartParams>,
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
