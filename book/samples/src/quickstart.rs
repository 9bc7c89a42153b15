//! The quickstart: the engine embedded in an axum service, on the
//! in-memory store, then on PostgreSQL and Stripe by configuration.

use axum::Router;
use commerce_core::ids::ParseError;
use commerce_core::payment::TestGateway;
use commerce_core::{Commerce, InMemoryStore, TenantId};
use commerce_http::{ApiMounts, CommerceHttp, TenantResolver, recommended_layers};
use commerce_postgres::{APP_ROLE, PgStore, PgStoreOptions};
use commerce_stripe::StripeGateway;

/// A boxed error, for the samples' `?`.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: engine
/// The engine on the in-memory store, with the test payment gateway (its
/// webhooks are signed with `webhook_secret`).
pub fn engine(webhook_secret: &str) -> Result<Commerce, Failure> {
    Ok(Commerce::builder()
        .store(InMemoryStore::new())
        .gateway(TestGateway::new(webhook_secret))
        .build()?)
}
// ANCHOR_END: engine

// ANCHOR: service
/// Carts (each line a stock reservation), checkout and the payment webhook,
/// for one shop, ready to nest in your own axum service.
pub fn service(commerce: Commerce) -> Result<Router, ParseError> {
    let http = CommerceHttp::builder(commerce)
        .tenants(TenantResolver::Fixed(TenantId::parse("my-shop")?))
        .build();
    let mounts = ApiMounts::default(); // /api/store, /api/admin, /webhooks/payments
    Ok(Router::new()
        .nest(&mounts.storefront, http.storefront()) // carts, reservations, checkout
        .merge(http.webhooks(&mounts.webhooks)) // payments, applied exactly once
        .layer(recommended_layers()))
}
// ANCHOR_END: service

// ANCHOR: settings
/// What production needs to know, from the environment or a secret store.
pub struct Settings {
    /// The PostgreSQL URL (`postgres://…`).
    pub database_url: String,
    /// Stripe's secret key (`sk_live_…`, `sk_test_…`).
    pub stripe_secret_key: String,
    /// The signing secret of the Stripe webhook endpoint (`whsec_…`).
    pub stripe_webhook_secret: String,
}

/// The same engine on PostgreSQL and Stripe: only the store and the gateway
/// change; `service` above takes it as it is.
pub async fn production(settings: &Settings) -> Result<Commerce, Failure> {
    // Row-level security binds the store to one tenant at a time: it runs as
    // the application role (see the PostgreSQL chapter).
    let options = PgStoreOptions {
        set_role: Some(APP_ROLE.into()),
        ..PgStoreOptions::default()
    };
    let store = PgStore::connect_with(&settings.database_url, options).await?;
    let gateway = StripeGateway::builder(settings.stripe_secret_key.as_str())
        .webhook_secret(settings.stripe_webhook_secret.as_str())
        .success_url("https://shop.example/orders/{ORDER_ID}/thanks")
        .cancel_url("https://shop.example/cart")
        .build()?;
    Ok(Commerce::builder().store(store).gateway(gateway).build()?)
}
// ANCHOR_END: settings
