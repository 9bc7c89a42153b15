//! The admin API, behind bearer API keys bound to one tenant with scopes:
//! products, stock, promotions, settings, orders, refunds, the sweep, the
//! tenant's event feed and the keys themselves.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commerce_core::{ApiKeyRecord, ApiScope, Shop, Sku};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod catalog;
mod keys;
mod orders;

use crate::Http;
use crate::problem::Problem;

/// The admin API's routes, with their OpenAPI operations.
pub(crate) fn routes() -> OpenApiRouter<Arc<Http>> {
    OpenApiRouter::new()
        .routes(routes!(catalog::products, catalog::create_product))
        .routes(routes!(catalog::replace_product))
        .routes(routes!(catalog::publish_product))
        .routes(routes!(catalog::stock, catalog::count_stock))
        .routes(routes!(catalog::adjustments))
        .routes(routes!(catalog::receive))
        .routes(routes!(catalog::promotions))
        .routes(routes!(catalog::put_promotion, catalog::remove_promotion))
        .routes(routes!(catalog::settings, catalog::put_settings))
        .routes(routes!(orders::list_orders))
        .routes(routes!(orders::order))
        .routes(routes!(orders::order_events))
        .routes(routes!(orders::feed))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::fulfil))
        .routes(routes!(orders::refunds, orders::refund))
        .routes(routes!(orders::sweep))
        .routes(routes!(keys::keys, keys::issue_key))
        .routes(routes!(keys::revoke_key))
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

fn sku(value: &str) -> Result<Sku, Problem> {
    Sku::parse(value).map_err(|e| Problem::invalid("/sku", e.to_string()))
}
