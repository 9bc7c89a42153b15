//! A live server of the three routers and their OpenAPI document, for
//! contract tests (CI runs schemathesis against it on both stores) and for
//! trying the API by hand:
//!
//! ```text
//! cargo run -p commerce-http --example serve                 # in memory
//! cargo run -p commerce-http --example serve -- --postgres   # DATABASE_URL
//! ```
//!
//! It seeds one product with stock, issues an admin key with every scope,
//! and prints `listening on http://…`, the document's URL and the key
//! (`--key-file PATH` also writes the key there). `--port` picks the port
//! (default: any free one). On PostgreSQL it migrates the database (the
//! URL's role must own it) and serves as the `commerce_app` role.

use std::sync::Arc;

use axum::Router;
use commerce_core::payment::TestGateway;
use commerce_core::{
    ApiScope, Category, Commerce, Currency, DynStore, InMemoryStore, Money, NewProduct, Quantity,
    Sku, TaxCategory, TenantId, Variant,
};
use commerce_http::{ApiMounts, CommerceHttp, TenantResolver, recommended_layers};
use commerce_postgres::{PgStore, PgStoreOptions};

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    postgres: bool,
    port: u16,
    key_file: Option<String>,
}

fn args() -> Result<Args, Failure> {
    let mut parsed = Args {
        postgres: false,
        port: 0,
        key_file: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--postgres" => parsed.postgres = true,
            "--port" => parsed.port = args.next().ok_or("--port needs a value")?.parse()?,
            "--key-file" => parsed.key_file = Some(args.next().ok_or("--key-file needs a path")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(parsed)
}

async fn store(postgres: bool) -> Result<(Arc<DynStore>, &'static str), Failure> {
    if !postgres {
        return Ok((Arc::new(InMemoryStore::new()), "in memory"));
    }
    let url = std::env::var("DATABASE_URL").map_err(|_| "--postgres needs DATABASE_URL")?;
    // Migrations with the owner's direct URL; the store with DATABASE_URL's
    // login, switched to commerce_app in each transaction when row-level
    // security does not confine it.
    let migration = std::env::var("MIGRATION_DATABASE_URL")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| url.clone());
    let (pooled, migration) = commerce_postgres::pooler_flag(&migration)?;
    if pooled {
        return Err("the migrations need a direct connection: set MIGRATION_DATABASE_URL".into());
    }
    let admin = commerce_postgres::sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&migration)
        .await?;
    commerce_postgres::migrate(&admin).await?;
    admin.close().await;
    let report = commerce_postgres::check(&url, None).await?;
    let store = PgStore::connect_with(
        &url,
        PgStoreOptions {
            set_role: report
                .login_bypasses_rls()
                .then(|| commerce_postgres::APP_ROLE.into()),
            ..PgStoreOptions::default()
        },
    )
    .await?;
    Ok((Arc::new(store), "PostgreSQL"))
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = args()?;
    // Refusals the service logs (store failures, panics) go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let (store, described) = store(args.postgres).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let gateway =
        TestGateway::new("serve-example-webhook-secret").with_payment_page(&format!("{base}/pay"));
    let commerce = Commerce::builder()
        .shared_store(store)
        .gateway(gateway)
        .build()?;

    let tenant = TenantId::parse("default")?;
    let shop = commerce.shop(&tenant);
    let sku = Sku::parse("WIDGET-1")?;
    if shop.admin_products(None, 1).await?.products.is_empty() {
        shop.add_product(NewProduct {
            name: "Widget".into(),
            category: Category::parse("widgets")?,
            tax_category: TaxCategory::parse("standard")?,
            age_restricted: false,
            published: true,
            variants: vec![Variant::new(sku.clone(), Money::new(1_000, Currency::AUD))],
        })
        .await?;
        shop.receive_stock(&sku, Quantity::new(1_000)?, None)
            .await?;
    }
    let key = shop
        .issue_api_key("serve example", ApiScope::ALL)
        .await?
        .key;

    let http = CommerceHttp::builder(commerce)
        .tenants(TenantResolver::Fixed(tenant))
        .build();
    let mounts = ApiMounts::default();
    let app = Router::new()
        .nest(&mounts.storefront, http.storefront())
        .nest(&mounts.admin, http.admin())
        .merge(http.webhooks(&mounts.webhooks))
        .merge(http.health())
        .merge(http.openapi_route("/openapi.json", &mounts))
        .layer(recommended_layers());

    println!("store: {described}");
    println!("listening on {base}");
    println!("openapi: {base}/openapi.json");
    println!("admin key: {key}");
    if let Some(path) = args.key_file {
        std::fs::write(path, &key)?;
    }
    axum::serve(listener, app).await?;
    Ok(())
}
