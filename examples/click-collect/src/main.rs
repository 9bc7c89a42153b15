//! A click-and-collect marketplace on the `commerce` engine: groceries,
//! liquor and a restaurant counter in one basket, three stores as tenants,
//! GST-inclusive prices with GST per line (fresh food GST-free), three
//! promotion rules explained live on the cart, an age gate the server
//! enforces, pickup slots, and a staff pickup desk.
//!
//! ```text
//! cargo run -p click-collect                      # serve it (in memory)
//! cargo run -p click-collect -- --demo            # the scripted scenario
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop cargo run -p click-collect
//! ```

mod catalog;
mod demo;
mod invoice;
mod money;
mod panel;
mod rules;
mod slots;
mod staff;
mod stores;
mod web;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use commerce_core::{ApiScope, Clock, Commerce, Currency, ManualClock, Shop, SystemClock};
use commerce_http::{ApiMounts, CommerceHttp, TenantResolver, recommended_layers};
use shop_kit::Failure;
use shop_kit::admin::{Account, Admin};
use shop_kit::cli::{COMMON_HELP, Command, Serve};
use shop_kit::payments::{PayPage, Payments};
use shop_kit::store::{self, Choice, Opened, Tenancy};

use crate::stores::{STORES, Stores};

/// The shop's port when `--port` is not given.
const DEFAULT_PORT: u16 = 3001;

/// The name of the admin API key each store issues when the shop starts.
const START_UP_KEY: &str = "click-collect start-up";

/// An order's page, for the payment page and Stripe to send the buyer
/// back to (`{TENANT}` is the store's slug on a served shop).
const ORDER_PAGE: &str = "/s/{TENANT}/orders/{ORDER_ID}";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let command = match shop_kit::cli::parse(std::env::args().skip(1), DEFAULT_PORT) {
        Ok(command) => command,
        Err(message) => {
            eprintln!(
                "error: {message}\nUsage: click-collect [--port N] [--seed N] [--manual-clock] | --demo | seed [--seed N] | reconcile | check   (try --help)"
            );
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::Help => {
            println!(
                "click-collect: a click-and-collect marketplace (groceries, liquor, a restaurant counter)\n\n{COMMON_HELP}\n\n--demo takes:\n{}",
                demo::HELP
            );
            Ok(())
        }
        Command::Demo(args) => demo::run(args).await,
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

/// The store of the environment, with every store as its own tenant
/// (named by its slug: a served shop's data outlives the run).
async fn open() -> Result<(Opened, Stores), Failure> {
    let first = STORES.first().map_or("harbour-st", |s| s.slug);
    let opened = store::open(&Choice::from_env()?, Tenancy::Fixed(first)).await?;
    Ok((opened, Stores::with_suffix("")?))
}

async fn seed_only(seed: u64) -> Result<(), Failure> {
    let (opened, stores) = open().await?;
    let commerce = Commerce::builder().shared_store(opened.store).build()?;
    println!("{}", opened.description);
    for store in stores.all() {
        let seeded = catalog::seed(&commerce.shop(&store.tenant), &store.info, seed).await?;
        println!(
            "{}: {} products listed, {} units of stock received (seed {seed}, tenant {})",
            store.info.name, seeded.products, seeded.units_received, store.tenant
        );
    }
    Ok(())
}

async fn reconcile(repair: bool) -> Result<(), Failure> {
    let tenants: Vec<&str> = STORES.iter().map(|store| store.slug).collect();
    shop_kit::reconcile::command(&tenants, repair).await
}

/// An admin API key with every scope for this run; the keys earlier runs
/// issued are revoked, so they do not pile up on PostgreSQL.
async fn start_up_key(shop: &Shop) -> Result<String, Failure> {
    for old in shop.api_keys().await? {
        if old.name == START_UP_KEY && old.revoked_at.is_none() {
            shop.revoke_api_key(&old.id).await?;
        }
    }
    Ok(shop.issue_api_key(START_UP_KEY, ApiScope::ALL).await?.key)
}

/// The admin pages, with one account per store (named by its slug, for
/// its tenant), all with the password of `SHOP_ADMIN_PASSWORD` or a
/// generated one; and how to say which.
fn admin(commerce: &Commerce, stores: &Stores) -> Result<(Admin, String), Failure> {
    let (password, note) = shop_kit::admin::password_from_env();
    let accounts = stores
        .all()
        .iter()
        .map(|store| Account::new(store.info.slug, store.tenant.clone(), &password))
        .collect::<Result<Vec<_>, _>>()?;
    let admin = Admin::new(
        commerce.clone(),
        accounts,
        "Click & Collect",
        "/",
        Currency::AUD,
    )?;
    Ok((admin, note))
}

async fn serve(options: Serve) -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let (opened, stores) = open().await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let payments = Payments::from_env(&base, ORDER_PAGE)?;
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

    let mut keys = Vec::new();
    for store in stores.all() {
        let shop = commerce.shop(&store.tenant);
        if shop.admin_products(None, 1).await?.products.is_empty() {
            catalog::seed(&shop, &store.info, options.seed).await?;
        }
        keys.push((store.info.slug, start_up_key(&shop).await?));
    }

    // One storefront API per store, each with its tenant fixed, nested at
    // the store's own path. (TenantResolver::PathParam under
    // `/s/{store}/api/store` would be one router, but commerce-http's
    // handlers read their own path parameters by position, so every route
    // with one, `/carts/{cart}` say, answers 400 there.)
    let http = |resolver| {
        CommerceHttp::builder(commerce.clone())
            .tenants(resolver)
            .poll_interval(Duration::from_millis(250))
            .build()
    };
    // The admin API (its keys name their tenant), the webhook (its events
    // name theirs), health and the sweeper need no tenant of their own.
    let shared = http(TenantResolver::PathParam("store".into()));
    let mounts = ApiMounts {
        storefront: "/s/{store}/api/store".into(),
        ..ApiMounts::default()
    };
    let app = Arc::new(web::App::new(
        commerce.clone(),
        stores.clone(),
        manual.clone(),
    ));
    let (admin, admin_note) = admin(&commerce, &stores)?;
    let admin = Arc::new(admin);
    let desk = staff::StaffDesk::new(commerce.clone(), stores.clone()).protected_by(admin.clone());
    let mut router = Router::new()
        .merge(web::routes(app.clone()))
        .merge(staff::staff_routes(Arc::new(desk)))
        .merge(shop_kit::admin::routes(admin))
        .merge(shop_kit::web::assets())
        .nest(&mounts.admin, shared.admin())
        .merge(shared.webhooks(&mounts.webhooks))
        .merge(shared.health())
        .merge(shared.openapi_route("/openapi.json", &mounts));
    for store in stores.all() {
        let storefront = http(TenantResolver::Fixed(store.tenant.clone())).storefront();
        router = router.nest(&format!("/s/{}/api/store", store.info.slug), storefront);
    }
    if let Some(test) = payments.test.clone() {
        router = router.merge(shop_kit::payments::routes(PayPage {
            commerce: commerce.clone(),
            tenants: stores.tenants(),
            gateway: test,
            webhook_url: format!("{base}{}", mounts.webhooks),
            order_page: ORDER_PAGE.to_owned(),
            pages: app.pages.clone(),
        }));
    }
    let router = router
        .layer(axum::middleware::from_fn_with_state(app, web::known_stores))
        .layer(axum::middleware::from_fn(shop_kit::web::security_headers))
        .layer(recommended_layers());
    tokio::spawn(shared.sweeper(Duration::from_secs(1)));

    println!("click-collect: groceries, liquor and a restaurant counter, click and collect");
    println!("{}", opened.description);
    println!("{}", payments.description);
    for store in stores.all() {
        println!("store: {} at {base}/s/{}", store.info.name, store.info.slug);
    }
    if manual.is_some() {
        println!("clock: manual, moved at {base}/dev/clock");
    }
    for (slug, key) in &keys {
        println!("admin API key for {slug} (all scopes): {key}");
    }
    let names: Vec<&str> = stores.all().iter().map(|s| s.info.slug).collect();
    println!(
        "admin pages and each store's pickup desk (/admin/pickups/<store>): sign in at {base}/admin/login as {} ({admin_note})",
        names.join(", ")
    );
    println!("listening on {base}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
