//! A one-of-a-kind used-hardware shop on the `commerce` engine: a web shop
//! where every listing is a single unit, so two buyers race for it, a hold
//! counts down, and a payment that arrives after the unit was sold to
//! someone else is refunded automatically.
//!
//! ```text
//! cargo run -p hardware-shop                      # serve it (in memory)
//! cargo run -p hardware-shop -- --demo            # the scripted scenario
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop cargo run -p hardware-shop
//! ```

mod audit;
mod catalog;
mod cli;
mod demo;
mod web;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use commerce_core::{ApiScope, Clock, Commerce, Currency, ManualClock, SystemClock};
use commerce_http::{ApiMounts, CommerceHttp, TenantResolver, recommended_layers};
use shop_kit::Failure;
use shop_kit::admin::{Account, Admin, Switch};
use shop_kit::cli::{COMMON_HELP, Command, Serve};
use shop_kit::payments::{PayPage, Payments};
use shop_kit::store::{self, Choice, Tenancy};
use shop_kit::web::{Chrome, Pages};

/// The shop's tenant (its data on PostgreSQL outlives the run).
pub const TENANT: &str = "gpu-exchange";

/// The shop's name, in every page's header.
const SHOP_NAME: &str = "Next Game Performance";

/// The name of the admin API key the shop issues when it starts.
const START_UP_KEY: &str = "hardware-shop start-up";

/// The shop's port when `--port` is not given.
const DEFAULT_PORT: u16 = 3000;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let command = match shop_kit::cli::parse(std::env::args().skip(1), DEFAULT_PORT) {
        Ok(command) => command,
        Err(message) => {
            eprintln!(
                "error: {message}\nUsage: hardware-shop [--port N] [--seed N] [--manual-clock] | --demo [--buyers N] | seed | reconcile | check   (try --help)"
            );
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::Help => {
            println!(
                "hardware-shop: a one-of-a-kind used-hardware web shop\n\n{COMMON_HELP}\n\n--demo takes:\n{}",
                cli::help()
            );
            Ok(())
        }
        Command::Demo(args) => demo::run(args).await.map_err(|e| e.to_string().into()),
        Command::Serve(options) => serve(options).await,
        Command::Seed { seed } => seed_only(seed).await,
        Command::Reconcile { repair } => reconcile(repair).await,
        Command::Check => shop_kit::store::check_command().await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn seed_only(seed: u64) -> Result<(), Failure> {
    let opened = store::open(&Choice::from_env()?, Tenancy::Fixed(TENANT)).await?;
    let commerce = Commerce::builder().shared_store(opened.store).build()?;
    let listed = catalog::seed(&commerce.shop(&opened.tenant), seed).await?;
    println!("{}", opened.description);
    println!(
        "seeded {listed} listings (seed {seed}) for tenant {}",
        opened.tenant
    );
    Ok(())
}

/// Checks the stock counters against the holds and orders, prints what
/// drifted, repairs what can be repaired with `--repair`, and fails while
/// any drift is left (an on-hand count that disagrees with the stock ledger
/// is left for a stock count to settle: see `shop_kit::reconcile`).
async fn reconcile(repair: bool) -> Result<(), Failure> {
    shop_kit::reconcile::command(&[TENANT], repair).await
}

/// An admin API key with every scope for this run; the keys earlier runs
/// issued are revoked, so they do not pile up on PostgreSQL.
async fn start_up_key(shop: &commerce_core::Shop) -> Result<String, Failure> {
    for old in shop.api_keys().await? {
        if old.name == START_UP_KEY && old.revoked_at.is_none() {
            shop.revoke_api_key(&old.id).await?;
        }
    }
    Ok(shop.issue_api_key(START_UP_KEY, ApiScope::ALL).await?.key)
}

async fn serve(options: Serve) -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let opened = store::open(&Choice::from_env()?, Tenancy::Fixed(TENANT)).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let payments = Payments::from_env(&base, "/orders/{ORDER_ID}")?;
    let manual = options
        .manual_clock
        .then(|| ManualClock::at_unix(SystemClock.now().timestamp()));
    let mut builder = Commerce::builder()
        .shared_store(opened.store)
        .shared_gateway(payments.gateway.clone());
    if let Some(clock) = &manual {
        builder = builder.clock(clock.clone());
    }
    let commerce = builder.build()?;
    let shop = commerce.shop(&opened.tenant);

    let empty = shop.admin_products(None, 1).await?.products.is_empty();
    if empty {
        catalog::seed(&shop, options.seed).await?;
    }
    let notes: HashMap<String, String> = catalog::parts(options.seed)
        .into_iter()
        .map(|part| (part.sku, part.note))
        .collect();
    let key = start_up_key(&shop).await?;
    let (password, admin_note) = shop_kit::admin::password_from_env();
    let admin = Admin::new(
        commerce.clone(),
        vec![Account::new("admin", opened.tenant.clone(), &password)?],
        SHOP_NAME,
        "/",
        Currency::AUD,
    )?
    .with_switches(vec![Switch {
        name: web::SHOW_SOLD_ITEMS,
        label: "Show sold items in the catalog",
        default: true,
    }]);

    let chrome = Chrome::new(SHOP_NAME, "/")
        .link("/", "Shop")
        .link("/cart", "Cart")
        .link("/admin", "Admin");
    let pages = Pages::new(chrome);
    let http = CommerceHttp::builder(commerce.clone())
        .tenants(TenantResolver::Fixed(opened.tenant.clone()))
        .poll_interval(Duration::from_millis(250))
        .build();
    let mounts = ApiMounts::default();
    let mut app = Router::new()
        .merge(web::routes(Arc::new(web::App {
            commerce: commerce.clone(),
            shop: shop.clone(),
            pages: pages.clone(),
            clock: manual.clone(),
            notes,
        })))
        .merge(shop_kit::web::assets())
        .merge(shop_kit::admin::routes(Arc::new(admin)))
        .nest(&mounts.storefront, http.storefront())
        .nest(&mounts.admin, http.admin())
        .merge(http.webhooks(&mounts.webhooks))
        .merge(http.health())
        .merge(http.openapi_route("/openapi.json", &mounts));
    if let Some(test) = payments.test.clone() {
        app = app.merge(shop_kit::payments::routes(PayPage {
            commerce: commerce.clone(),
            tenants: vec![opened.tenant.clone()],
            gateway: test,
            webhook_url: format!("{base}{}", mounts.webhooks),
            order_page: "/orders/{ORDER_ID}".to_owned(),
            pages,
        }));
    }
    let app = app
        .layer(axum::middleware::from_fn(shop_kit::web::security_headers))
        .layer(recommended_layers());
    tokio::spawn(http.sweeper(Duration::from_secs(1)));

    println!("hardware-shop: one-of-a-kind used hardware");
    println!("{}", opened.description);
    println!("{}", payments.description);
    if manual.is_some() {
        println!("clock: manual, moved at {base}/dev/clock");
    }
    println!("admin pages: {base}/admin (name admin, {admin_note})");
    println!("admin API key (all scopes): {key}");
    println!("listening on {base}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
