//! The marketplace's pages: `/` lists the stores; each store's pages live
//! under `/s/{store}` (its catalog with search and paging, the cart with
//! the live promotion panel, checkout with the age gate and the pickup
//! slot, the order's tax invoice with its live status). The pages call the
//! engine directly; the JSON API (`/s/{store}/api/store`), the admin API
//! and the payment webhook are commerce-http's routers, nested beside
//! them, and the order page's live status reads the API's event stream.

pub mod cart;
mod checkout;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use commerce_core::{
    Cart, CartId, CartStatus, Commerce, Error as EngineError, ManualClock, Page, Product,
    ProductId, Shop, Sku, Timestamp,
};
use serde::Deserialize;
use shop_kit::web::{Chrome, PageError, Pages, cookie, see_other};

use crate::catalog::{Department, GST_FREE};
use crate::money::dollars;
use crate::slots;
use crate::stores::{Store, Stores};

/// Products on a page of the catalog.
pub const PAGE_SIZE: u32 = 24;
/// A week: a cart outlives its holds.
const CART_COOKIE_AGE: u64 = 7 * 24 * 3600;

/// What the pages share.
pub struct App {
    /// The engine.
    pub commerce: Commerce,
    /// The stores and their tenants.
    pub stores: Stores,
    /// The marketplace's own pages (`/`) and their errors.
    pub pages: Pages,
    /// Each store's error pages, by slug.
    pub store_pages: HashMap<&'static str, Pages>,
    /// The engine's clock, when it is manual.
    pub clock: Option<ManualClock>,
}

type Shared = State<Arc<App>>;

/// The chrome of `store`'s pages.
pub fn store_chrome(store: &Store) -> Chrome {
    let home = format!("/s/{}", store.info.slug);
    Chrome::new(store.info.name, home.clone())
        .link("/", "All stores")
        .link(home.clone(), "Shop")
        .link(format!("{home}/cart"), "Cart")
        .link(crate::staff::desk_path(store.info.slug), "Staff: pickups")
}

impl App {
    /// The app over `commerce` for `stores`.
    pub fn new(commerce: Commerce, stores: Stores, clock: Option<ManualClock>) -> Self {
        let chrome = Chrome::new("Click & Collect", "/").link("/", "All stores");
        let store_pages = stores
            .all()
            .iter()
            .map(|store| (store.info.slug, Pages::new(store_chrome(store))))
            .collect();
        Self {
            commerce,
            stores,
            pages: Pages::new(chrome),
            store_pages,
            clock,
        }
    }

    fn with_clock(&self, mut chrome: Chrome) -> Chrome {
        if self.clock.is_some() {
            chrome.manual_clock = Some(local_time(self.commerce.now()));
        }
        chrome
    }

    /// The store `slug`, if there is one.
    fn store(&self, slug: &str) -> Option<StorePages<'_>> {
        let store = self.stores.get(slug)?;
        let pages = self.store_pages.get(store.info.slug)?;
        Some(StorePages {
            store,
            shop: self.commerce.shop(&store.tenant),
            pages,
            chrome: self.with_clock(pages.chrome().clone()),
            now: self.commerce.now(),
        })
    }

    /// The marketplace's 404 page for a store it does not have.
    fn unknown_store(&self) -> Response {
        self.pages.error(&PageError::not_found("store"))
    }
}

/// One store's view of the app, for one request.
pub struct StorePages<'a> {
    store: &'a Store,
    shop: Shop,
    pages: &'a Pages,
    chrome: Chrome,
    now: Timestamp,
}

impl StorePages<'_> {
    fn slug(&self) -> &'static str {
        self.store.info.slug
    }

    fn path(&self, rest: &str) -> String {
        format!("/s/{}{rest}", self.slug())
    }

    fn cart_cookie(&self) -> String {
        format!("cc_cart_{}", self.slug())
    }

    fn cart_id(&self, headers: &HeaderMap) -> Option<CartId> {
        cookie(headers, &self.cart_cookie()).and_then(|id| id.parse().ok())
    }

    /// The buyer's open cart in this store, if any.
    async fn open_cart(&self, headers: &HeaderMap) -> Result<Option<Cart>, PageError> {
        let Some(id) = self.cart_id(headers) else {
            return Ok(None);
        };
        match self.shop.cart(id).await {
            Ok(cart) if cart.status() == CartStatus::Open => Ok(Some(cart)),
            Ok(_) | Err(EngineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The buyer's open cart, made (with its cookie) when there is none.
    async fn cart_or_new(
        &self,
        headers: &HeaderMap,
    ) -> Result<
        (
            Cart,
            Option<(axum::http::HeaderName, axum::http::HeaderValue)>,
        ),
        PageError,
    > {
        if let Some(cart) = self.open_cart(headers).await? {
            return Ok((cart, None));
        }
        let cart = self.shop.create_cart(commerce_core::Currency::AUD).await?;
        let cookie =
            shop_kit::web::set_cookie(&self.cart_cookie(), &cart.id.to_string(), CART_COOKIE_AGE);
        Ok((cart, Some(cookie)))
    }
}

/// The storefront pages.
pub fn routes(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/", get(index))
        .route("/s/{store}", get(store_page))
        .route("/s/{store}/cart", get(cart::page))
        .route("/s/{store}/cart/lines", post(cart::add))
        .route("/s/{store}/cart/quantity", post(cart::set_quantity))
        .route("/s/{store}/cart/renew", post(cart::renew))
        .route("/s/{store}/cart/age", post(cart::attest_age))
        .route(
            "/s/{store}/checkout",
            get(checkout::page).post(checkout::place),
        )
        .route("/s/{store}/orders/{order}", get(checkout::order_page))
        .route("/assets/click-collect.js", get(script))
        .route("/assets/click-collect.css", get(style));
    if app.clock.is_some() {
        router = router.route("/dev/clock", get(clock_page).post(move_clock));
    }
    router.with_state(app)
}

/// Answers 404 for `/s/{store}/...` when there is no such store, so the
/// nested API never serves a tenant the marketplace does not have.
pub async fn known_stores(State(app): Shared, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if let Some(rest) = path.strip_prefix("/s/") {
        let slug = rest.split('/').next().unwrap_or_default();
        if app.stores.get(slug).is_none() {
            return app.pages.error(&PageError::not_found("store"));
        }
    }
    next.run(request).await
}

const SCRIPT: &str = include_str!("../../static/click-collect.js");
const STYLE: &str = include_str!("../../static/click-collect.css");

async fn script() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

async fn style() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// `10:30` in Brisbane.
pub fn local_time(at: Timestamp) -> String {
    at.with_timezone(&slots::brisbane())
        .format("%H:%M")
        .to_string()
}

/// `Fri 2 Jan 2026, 10:30` in Brisbane.
pub fn local_date_time(at: Timestamp) -> String {
    at.with_timezone(&slots::brisbane())
        .format("%a %-d %b %Y, %H:%M")
        .to_string()
}

/// A store on the marketplace's home page.
struct StoreCard {
    slug: &'static str,
    name: &'static str,
    tagline: &'static str,
    address: &'static str,
    departments: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    chrome: Chrome,
    stores: Vec<StoreCard>,
}

async fn index(State(app): Shared) -> Response {
    let stores = app
        .stores
        .all()
        .iter()
        .map(|store| StoreCard {
            slug: store.info.slug,
            name: store.info.name,
            tagline: store.info.tagline,
            address: store.info.address,
            departments: store.info.departments.iter().map(|d| d.label()).collect(),
        })
        .collect();
    app.pages.render(Ok(IndexPage {
        chrome: app.with_clock(app.pages.chrome().clone()),
        stores,
    }))
}

/// A product on the store page.
pub struct Listing {
    sku: String,
    name: String,
    price: String,
    department: &'static str,
    gst_free: bool,
    age_restricted: bool,
    /// `In stock`, `Only 3 left`, `Sold out`.
    stock: String,
    available: u32,
}

async fn listing(shop: &Shop, product: &Product) -> Result<Option<Listing>, PageError> {
    let Some(variant) = product.variants().first() else {
        return Ok(None);
    };
    let available = shop.stock(variant.sku()).await?.available();
    Ok(Some(Listing {
        sku: variant.sku().to_string(),
        name: product.name().to_owned(),
        price: dollars(&variant.price()),
        department: Department::from_category(product.category().as_str())
            .map_or("", Department::label),
        gst_free: product.tax_category().as_str() == GST_FREE,
        age_restricted: product.age_restricted(),
        stock: match available {
            0 => "Sold out".to_owned(),
            1..=5 => format!("Only {available} left"),
            _ => "In stock".to_owned(),
        },
        available,
    }))
}

#[derive(Deserialize, Default)]
struct StoreQuery {
    #[serde(default)]
    q: Option<String>,
    /// Browsing: the previous page's last product.
    #[serde(default)]
    after: Option<String>,
    /// Searching: the page, from 1.
    #[serde(default)]
    page: Option<u32>,
    /// The SKU just added, and how many.
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    units: Option<u32>,
    /// Why adding failed.
    #[serde(default)]
    refused: Option<String>,
}

#[derive(Template)]
#[template(path = "store.html")]
struct StorePage {
    chrome: Chrome,
    slug: &'static str,
    name: &'static str,
    tagline: &'static str,
    departments: Vec<(&'static str, &'static str)>,
    q: String,
    listings: Vec<Listing>,
    /// Where this page is, to come back to after adding to the cart.
    here: String,
    next: Option<String>,
    previous: Option<String>,
    page_label: String,
    added: Option<String>,
    refused: Option<&'static str>,
}

async fn store_page(
    State(app): Shared,
    Path(slug): Path<String>,
    Query(query): Query<StoreQuery>,
) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let page = async {
        let q = query
            .q
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        let base = store.path("");
        let encoded = serde_urlencoded::to_string([("q", q.as_str())]).unwrap_or_default();
        let (products, here, next, previous, page_label) = if q.is_empty() {
            let after = match query.after.as_deref() {
                Some(id) => Some(
                    id.parse::<ProductId>()
                        .map_err(|_| PageError::bad_form("that page does not exist"))?,
                ),
                None => None,
            };
            let page = store.shop.products(after, PAGE_SIZE).await?;
            let here = after.map_or_else(|| base.clone(), |a| format!("{base}?after={a}"));
            let next = page.next.map(|n| format!("{base}?after={n}"));
            let previous = after.map(|_| base.clone());
            let label = if after.is_some() {
                "More products"
            } else {
                "First page"
            };
            (page.products, here, next, previous, label.to_owned())
        } else {
            let number = query.page.unwrap_or(1).clamp(1, 1000);
            let offset = (number - 1).saturating_mul(PAGE_SIZE);
            let mut found = store
                .shop
                .search_products(
                    &q,
                    Page {
                        offset,
                        limit: PAGE_SIZE + 1,
                    },
                )
                .await?;
            let more = found.len() > PAGE_SIZE as usize;
            found.truncate(PAGE_SIZE as usize);
            let at = |n: u32| format!("{base}?{encoded}&page={n}");
            (
                found,
                at(number),
                more.then(|| at(number + 1)),
                (number > 1).then(|| at(number - 1)),
                format!("Page {number}"),
            )
        };
        let mut listings = Vec::with_capacity(products.len());
        for product in &products {
            listings.extend(listing(&store.shop, product).await?);
        }
        Ok(StorePage {
            chrome: store.chrome.clone(),
            slug: store.slug(),
            name: store.store.info.name,
            tagline: store.store.info.tagline,
            departments: store
                .store
                .info
                .departments
                .iter()
                .map(|d| (d.category(), d.label()))
                .collect(),
            q,
            listings,
            here,
            next,
            previous,
            page_label,
            added: match (query.added.as_deref().map(Sku::parse), query.units) {
                (Some(Ok(sku)), Some(units)) => store
                    .shop
                    .scope()
                    .catalog()
                    .product_by_sku(&sku)
                    .await?
                    .map(|product| format!("{units} x {}", product.name())),
                _ => None,
            },
            refused: query.refused.as_deref().and_then(refusal_text),
        })
    };
    store.pages.render(page.await)
}

#[derive(Template)]
#[template(path = "clock.html")]
struct ClockPage {
    chrome: Chrome,
}

async fn clock_page(State(app): Shared) -> Response {
    app.pages.render(Ok(ClockPage {
        chrome: app.with_clock(app.pages.chrome().clone()),
    }))
}

#[derive(Deserialize)]
struct ClockForm {
    minutes: u64,
}

async fn move_clock(State(app): Shared, Form(form): Form<ClockForm>) -> Response {
    if let Some(clock) = &app.clock {
        clock.advance(Duration::from_secs(form.minutes.min(24 * 60) * 60));
    }
    see_other("/dev/clock")
}

/// A refusal the page explains, by its code in the query.
pub fn refusal_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "age" => {
            "Your cart holds liquor, which we sell only to adults: confirm you are 18 or over \
             below before placing the order. Staff check photo ID when you collect."
        }
        "age_unticked" => "Tick the box to confirm you are 18 or over.",
        "slot" => "Choose a pickup slot from the list: the one sent is no longer offered.",
        "price" => {
            "A price or an offer in your cart changed since you saw the total. Check the new \
             total and place the order again."
        }
        "stock" => "There is not enough of it left for that quantity.",
        "paused" => {
            "The store is not taking orders right now. Your cart and its holds are kept: try \
             again later."
        }
        "quantity" => "The quantity must be a whole number from 0 to 99.",
        "lapsed" => {
            "Your hold on an item lapsed before checkout. Renew it below if it is still in stock."
        }
        "gone" => "An item in your cart sold out while it was not held for you.",
        _ => return None,
    })
}

/// 400 for a form this site does not send.
fn bad_request(pages: &Pages, message: &str) -> Response {
    pages.error(&PageError::new(
        StatusCode::BAD_REQUEST,
        "Something in the form is wrong",
        message,
    ))
}

#[cfg(test)]
mod tests;
