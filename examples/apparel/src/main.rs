//! An apparel shop on the `commerce` engine: garments in sizes × colours
//! with stock per variant (sold-out combinations cannot be picked, and the
//! server refuses them anyway), US sales tax added on top of the shelf
//! price, a "3 for 2" promotion, customer accounts with order history and
//! a wishlist, and a checkout that makes one order however often it is
//! sent and asks again when a price changed.
//!
//! ```text
//! cargo run -p apparel                      # serve it at http://127.0.0.1:3002 (in memory)
//! cargo run -p apparel -- --demo            # the scripted scenario
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop cargo run -p apparel
//! ```
//!
//! Customer accounts, wishlists and the development mailbox are this
//! example's own data, kept in memory (see [`accounts`]): the engine has
//! no customer store, only the customer id carts and orders carry.

mod account;
mod accounts;
mod catalog;
mod demo;
#[cfg(test)]
mod tests;
mod web;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use commerce_core::{Clock, Commerce, Currency, ManualClock, SystemClock};
use commerce_http::{ApiMounts, CommerceHttp, TenantResolver, recommended_layers};
use shop_kit::Failure;
use shop_kit::admin::{Account, Admin};
use shop_kit::cli::{COMMON_HELP, Command, Serve};
use shop_kit::payments::{PayPage, Payments};
use shop_kit::store::{self, Choice, Tenancy};
use shop_kit::web::{Chrome, Pages, Signer};

use crate::accounts::{Accounts, Mailbox};

/// The shop's tenant (its data on PostgreSQL outlives the run).
pub const TENANT: &str = "apparel";

/// The shop's name, in every page's header.
const SHOP_NAME: &str = "Loom & Thread";

/// The shop's port when `--port` is not given.
const DEFAULT_PORT: u16 = 3002;

const USAGE: &str = "Usage: apparel [--port N] [--seed N] [--manual-clock] | --demo | seed [--seed N] | reconcile | check   (try --help)";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let command = match shop_kit::cli::parse(std::env::args().skip(1), DEFAULT_PORT) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::Help => {
            println!(
                "apparel: a web shop of garments in sizes and colours, with US sales tax, \
                 \"3 for 2\" and customer accounts\n\n{COMMON_HELP}\n\n--demo takes no \
                 arguments; it exits 1 when an expectation fails."
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

async fn seed_only(seed: u64) -> Result<(), Failure> {
    let opened = store::open(&Choice::from_env()?, Tenancy::Fixed(TENANT)).await?;
    let commerce = Commerce::builder().shared_store(opened.store).build()?;
    let shop = commerce.shop(&opened.tenant);
    let listed = catalog::seed(&shop, seed).await?;
    catalog::configure(&shop).await?;
    println!("{}", opened.description);
    println!(
        "seeded {} garments in {listed} variants (seed {seed}), sales tax and \"3 for 2\" for tenant {}",
        catalog::GARMENTS.len(),
        opened.tenant
    );
    Ok(())
}

/// Compares the stock counters with the holds and orders (shop-kit's
/// `reconcile`), repairing what it can with `--repair`.
async fn reconcile(repair: bool) -> Result<(), Failure> {
    shop_kit::reconcile::command(&[TENANT], repair).await
}

/// The shop's own pages: the storefront, the account pages and the
/// shared assets (the admin pages, the API and the payment page are
/// mounted beside them).
fn shop_pages(app: Arc<web::App>) -> Router {
    Router::new()
        .merge(web::routes(app.clone()))
        .merge(account::routes(app))
        .merge(shop_kit::web::assets())
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
    catalog::configure(&shop).await?;
    let (password, admin_note) = shop_kit::admin::password_from_env();
    let admin = Admin::new(
        commerce.clone(),
        vec![Account::new("admin", opened.tenant.clone(), &password)?],
        SHOP_NAME,
        "/",
        Currency::USD,
    )?;

    let chrome = Chrome::new(SHOP_NAME, "/")
        .link("/", "Shop")
        .link("/cart", "Cart")
        .link("/account", "Account")
        .link("/dev/mailbox", "Mailbox")
        .link("/admin", "Admin");
    let pages = Pages::new(chrome);
    let mailbox = Arc::new(Mailbox::with_clock(commerce.clone()));
    let app = Arc::new(web::App {
        commerce: commerce.clone(),
        shop: shop.clone(),
        pages: pages.clone(),
        clock: manual.clone(),
        accounts: Accounts::new()?,
        notifier: mailbox.clone(),
        mailbox: Some(mailbox),
        signer: Signer::random(),
        base: base.clone(),
    });
    let http = CommerceHttp::builder(commerce.clone())
        .tenants(TenantResolver::Fixed(opened.tenant.clone()))
        .poll_interval(Duration::from_millis(250))
        .build();
    let mounts = ApiMounts::default();
    let mut router = Router::new()
        .merge(shop_pages(app))
        .merge(shop_kit::admin::routes(Arc::new(admin)))
        .nest(&mounts.storefront, http.storefront())
        .nest(&mounts.admin, http.admin())
        .merge(http.webhooks(&mounts.webhooks))
        .merge(http.health())
        .merge(http.openapi_route("/openapi.json", &mounts));
    if let Some(test) = payments.test.clone() {
        router = router.merge(shop_kit::payments::routes(PayPage {
            commerce: commerce.clone(),
            tenants: vec![opened.tenant.clone()],
            gateway: test,
            webhook_url: format!("{base}{}", mounts.webhooks),
            order_page: "/orders/{ORDER_ID}".to_owned(),
            pages,
        }));
    }
    let router = router
        .layer(axum::middleware::from_fn(shop_kit::web::security_headers))
        .layer(recommended_layers());
    tokio::spawn(http.sweeper(Duration::from_secs(1)));

    println!("apparel: garments in sizes and colours, US sales tax, 3 for 2");
    println!("{}", opened.description);
    println!("{}", payments.description);
    if manual.is_some() {
        println!("clock: manual, moved at {base}/dev/clock");
    }
    println!("customer accounts: in memory (lost on restart); email goes to {base}/dev/mailbox");
    println!("admin pages: {base}/admin (name admin, {admin_note})");
    println!("listening on {base}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
