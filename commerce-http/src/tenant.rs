//! Which tenant a storefront request is for, and the hooks the embedder
//! supplies for what an anonymous client must never set itself.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use commerce_core::{CustomerContext, Shop, TenantId};

use crate::Http;
use crate::problem::Problem;

/// How a storefront request names its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantResolver {
    /// One shop: every request is for this tenant.
    Fixed(TenantId),
    /// A path parameter of the route the router is nested under, such as
    /// `store` in `.nest("/s/{store}/api/store", http.storefront())`.
    ///
    /// Nest the storefront under a prefix that holds the parameter, and
    /// give [`ApiMounts`](crate::ApiMounts) the same prefix so the OpenAPI
    /// document declares it. Every route reads its own parameters by name
    /// (`cart`, `sku`, `code`, `key`, `order`, `product`; the admin API's
    /// also `promotion`), so the prefix may hold others; name the tenant's
    /// something else. A value that is not a tenant id is a 404, and so
    /// is an id the tenant does not have: a cart of one shop is 404 under
    /// another's path.
    ///
    /// The admin API can be nested under the same prefix, but its tenant
    /// is the one its API key is bound to, whatever the path says.
    ///
    /// ```
    /// use axum::Router;
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use commerce_core::Commerce;
    /// use commerce_http::{ApiMounts, CommerceHttp, TenantResolver};
    /// use tower::ServiceExt as _;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let http = CommerceHttp::builder(Commerce::in_memory())
    ///     .tenants(TenantResolver::PathParam("store".into()))
    ///     .build();
    /// let mounts = ApiMounts {
    ///     storefront: "/s/{store}/api/store".into(),
    ///     ..ApiMounts::default()
    /// };
    /// let app: Router = Router::new()
    ///     .nest(&mounts.storefront, http.storefront())
    ///     .nest(&mounts.admin, http.admin())
    ///     .merge(http.openapi_route("/openapi.json", &mounts));
    ///
    /// // A cart of the shop `corner-shop`, read at the path it answers with.
    /// let open = Request::post("/s/corner-shop/api/store/carts")
    ///     .header("content-type", "application/json")
    ///     .body(Body::from(r#"{"currency": "AUD"}"#))?;
    /// let opened = app.clone().oneshot(open).await?;
    /// assert_eq!(opened.status(), StatusCode::CREATED);
    /// let cart = opened.headers()["location"].to_str()?.to_owned();
    /// assert!(cart.starts_with("/s/corner-shop/api/store/carts/"));
    /// let read = app.clone().oneshot(Request::get(&cart).body(Body::empty())?).await?;
    /// assert_eq!(read.status(), StatusCode::OK);
    ///
    /// // Another shop does not have it.
    /// let elsewhere = cart.replacen("/s/corner-shop/", "/s/other-shop/", 1);
    /// let read = app.oneshot(Request::get(&elsewhere).body(Body::empty())?).await?;
    /// assert_eq!(read.status(), StatusCode::NOT_FOUND);
    /// # Ok(())
    /// # }
    /// ```
    PathParam(String),
    /// A request header (`X-Tenant`, say) set by a trusted proxy.
    Header(String),
    /// The host name: `{tenant}.{suffix}` (`suffix` without a leading dot).
    HostSuffix(String),
    /// A publishable key in the `x-publishable-key` header (safe in a
    /// browser: it only names the shop), looked up in this map.
    PublishableKey(std::collections::BTreeMap<String, TenantId>),
}

/// The header a storefront sends its publishable key in.
pub const PUBLISHABLE_KEY: &str = "x-publishable-key";

impl TenantResolver {
    /// The tenant `parts` names, or why there is none. An unknown or
    /// malformed tenant is a 404: a client learns nothing of which tenants
    /// exist.
    pub fn resolve(
        &self,
        parts: &Parts,
        params: Option<&RawPathParams>,
    ) -> Result<TenantId, Problem> {
        let unknown = || Problem::not_found().with("reason", "unknown tenant");
        let named = match self {
            TenantResolver::Fixed(tenant) => return Ok(tenant.clone()),
            TenantResolver::PathParam(name) => params
                .and_then(|params| params.iter().find(|(key, _)| key == name))
                .map(|(_, value)| value.to_owned()),
            TenantResolver::Header(name) => parts
                .headers
                .get(name.as_str())
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            TenantResolver::HostSuffix(suffix) => parts
                .headers
                .get(axum::http::header::HOST)
                .and_then(|value| value.to_str().ok())
                .map(|host| host.split(':').next().unwrap_or(host))
                .and_then(|host| host.strip_suffix(suffix.as_str()))
                .and_then(|rest| rest.strip_suffix('.'))
                .map(str::to_owned),
            TenantResolver::PublishableKey(_) => None,
        };
        if let TenantResolver::PublishableKey(keys) = self {
            return parts
                .headers
                .get(PUBLISHABLE_KEY)
                .and_then(|value| value.to_str().ok())
                .and_then(|key| keys.get(key).cloned())
                .ok_or_else(unknown);
        }
        named
            .and_then(|name| TenantId::parse(name).ok())
            .ok_or_else(unknown)
    }
}

/// Who is buying, as the embedder's own session says. Called on every cart
/// write; the cart's customer is set when it differs. Customer groups can
/// unlock promotions, so this is never taken from the request body.
#[async_trait]
pub trait CustomerResolver: Send + Sync + 'static {
    /// The customer of this request, if the embedder knows one.
    async fn customer(&self, headers: &HeaderMap, tenant: &TenantId) -> Option<CustomerContext>;
}

/// A verified age, as the embedder's verifier records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeVerified {
    /// How it was checked (`"id-scan"`).
    pub method: String,
    /// Who or what checked it.
    pub verified_by: String,
}

/// Decides whether a buyer's age is verified, from the request the
/// storefront sends to `POST /carts/{cart}/age-verification`. The default
/// ([`RefuseAgeVerification`]) refuses every request.
#[async_trait]
pub trait AgeVerifier: Send + Sync + 'static {
    /// The verification to record, or the problem to answer with.
    async fn verify(
        &self,
        headers: &HeaderMap,
        tenant: &TenantId,
        body: &serde_json::Value,
    ) -> Result<AgeVerified, Problem>;
}

/// The default [`AgeVerifier`]: no verification can be recorded over the
/// storefront API (403).
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseAgeVerification;

#[async_trait]
impl AgeVerifier for RefuseAgeVerification {
    async fn verify(
        &self,
        _headers: &HeaderMap,
        _tenant: &TenantId,
        _body: &serde_json::Value,
    ) -> Result<AgeVerified, Problem> {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "age_verification_unavailable",
            "Age verification unavailable",
            "this shop verifies ages in person, not over this API",
        ))
    }
}

/// The shop of the request's tenant.
pub(crate) struct TenantShop(pub(crate) Shop);

impl FromRequestParts<Arc<Http>> for TenantShop {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, http: &Arc<Http>) -> Result<Self, Problem> {
        let params = match &http.tenants {
            TenantResolver::PathParam(_) => {
                RawPathParams::from_request_parts(parts, http).await.ok()
            }
            _ => None,
        };
        let tenant = http.tenants.resolve(parts, params.as_ref())?;
        Ok(TenantShop(http.commerce.shop(&tenant)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::builder().uri("/carts");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn each_resolver_finds_its_tenant_or_answers_404() {
        let fixed = TenantResolver::Fixed(tenant("one"));
        assert_eq!(fixed.resolve(&parts(&[]), None).unwrap(), tenant("one"));

        let header = TenantResolver::Header("x-tenant".into());
        assert_eq!(
            header
                .resolve(&parts(&[("x-tenant", "shop-a")]), None)
                .unwrap(),
            tenant("shop-a")
        );
        assert_eq!(
            header.resolve(&parts(&[]), None).unwrap_err().status(),
            StatusCode::NOT_FOUND
        );
        assert!(
            header
                .resolve(&parts(&[("x-tenant", "Not A Slug")]), None)
                .is_err()
        );

        let host = TenantResolver::HostSuffix("shops.example".into());
        assert_eq!(
            host.resolve(&parts(&[("host", "grocer.shops.example:8080")]), None)
                .unwrap(),
            tenant("grocer")
        );
        assert!(
            host.resolve(&parts(&[("host", "shops.example")]), None)
                .is_err()
        );
        assert!(
            host.resolve(&parts(&[("host", "evil.example")]), None)
                .is_err()
        );

        let keys = TenantResolver::PublishableKey(
            [("pk_live_grocer".to_owned(), tenant("grocer"))].into(),
        );
        assert_eq!(
            keys.resolve(&parts(&[(PUBLISHABLE_KEY, "pk_live_grocer")]), None)
                .unwrap(),
            tenant("grocer")
        );
        assert!(
            keys.resolve(&parts(&[(PUBLISHABLE_KEY, "pk_other")]), None)
                .is_err()
        );
    }
}
