//! The web shop: catalog, product pages with live availability, a cart
//! whose holds count down, checkout, and order pages that follow the
//! order's log live. The pages call the engine directly; the JSON API
//! (`/api/store`, `/api/admin`) and the payment webhook
//! (`/webhooks/payments`) are commerce-http's routers, nested beside them,
//! and the pages' live parts read the API's event streams.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use commerce_core::{
    CartId, CheckoutRequest, Currency, Error as EngineError, IdempotencyKey, ManualClock, Money,
    Order, OrderId, OrderStatus, Product, ProductId, Quantity, Shop, Sku, Timestamp,
};
use serde::Deserialize;
use shop_kit::web::{
    Chrome, LogRow, PageError, Pages, clock_time, cookie, money, see_other, set_cookie,
    status_labels_json,
};

/// The cookie holding the buyer's cart id (the id is the capability).
const CART_COOKIE: &str = "hw_cart";
/// The settings switch that keeps sold items in the catalog (on until the
/// shop turns it off on the admin settings page).
pub const SHOW_SOLD_ITEMS: &str = "show_sold_items";
/// A week: a cart outlives its holds.
const CART_COOKIE_AGE: u64 = 7 * 24 * 3600;

/// What the pages share.
pub struct App {
    /// The engine.
    pub commerce: commerce_core::Commerce,
    /// The tenant's shop.
    pub shop: Shop,
    /// Error pages and the chrome.
    pub pages: Pages,
    /// The engine's clock, when it is manual.
    pub clock: Option<ManualClock>,
    /// Condition notes by SKU, from the seed catalog.
    pub notes: std::collections::HashMap<String, String>,
}

type Shared = State<Arc<App>>;

/// The storefront pages.
pub fn routes(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/", get(catalog))
        .route("/products/{id}", get(product))
        .route("/cart", get(cart))
        .route("/cart/lines", post(add_line))
        .route("/cart/lines/remove", post(remove_line))
        .route("/cart/renew", post(renew))
        .route("/checkout", get(checkout_page).post(checkout));
    router = router.route("/orders/{id}", get(order_page));
    if app.clock.is_some() {
        router = router.route("/dev/clock", get(clock_page).post(move_clock));
    }
    router.with_state(app)
}

impl App {
    fn chrome(&self) -> Chrome {
        let mut chrome = self.pages.chrome().clone();
        if self.clock.is_some() {
            chrome.manual_clock = Some(clock_time(self.commerce.now()));
        }
        chrome
    }

    fn cart_id(headers: &HeaderMap) -> Option<CartId> {
        cookie(headers, CART_COOKIE).and_then(|id| id.parse().ok())
    }

    /// The buyer's open cart, if any.
    async fn open_cart(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<commerce_core::Cart>, PageError> {
        let Some(id) = Self::cart_id(headers) else {
            return Ok(None);
        };
        match self.shop.cart(id).await {
            Ok(cart) if cart.status() == commerce_core::CartStatus::Open => Ok(Some(cart)),
            Ok(_) | Err(EngineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What the buyer holds: the open cart's reservations, or, once the
    /// cart is checked out, its order's allocations while the order awaits
    /// payment. SKU and when the hold lapses.
    async fn own_holds(&self, headers: &HeaderMap) -> Result<Vec<(Sku, Timestamp)>, PageError> {
        let Some(id) = Self::cart_id(headers) else {
            return Ok(Vec::new());
        };
        let inventory = self.shop.scope().inventory();
        match self.shop.cart(id).await {
            Ok(cart) => match cart.status() {
                commerce_core::CartStatus::Open => Ok(inventory
                    .cart_reservations(cart.id)
                    .await?
                    .into_iter()
                    .map(|r| (r.sku, r.expires_at))
                    .collect()),
                commerce_core::CartStatus::CheckedOut { order } => Ok(inventory
                    .order_allocations(order)
                    .await?
                    .into_iter()
                    .map(|a| (a.sku, a.expires_at))
                    .collect()),
                _ => Ok(Vec::new()),
            },
            Err(EngineError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The order the buyer's cart became, if it was checked out.
    async fn placed_order(&self, headers: &HeaderMap) -> Result<Option<OrderId>, PageError> {
        let Some(id) = Self::cart_id(headers) else {
            return Ok(None);
        };
        match self.shop.cart(id).await {
            Ok(cart) => match cart.status() {
                commerce_core::CartStatus::CheckedOut { order } => Ok(Some(order)),
                _ => Ok(None),
            },
            Err(EngineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn badge(&self, sku: &Sku, own: &[(Sku, Timestamp)]) -> Result<Badge, PageError> {
        let now = self.commerce.now();
        if let Some((_, until)) = own.iter().find(|(s, until)| s == sku && *until > now) {
            return Ok(Badge {
                class: "held",
                text: format!("held for you until {}", clock_time(*until)),
                yours: true,
            });
        }
        let level = self.shop.stock(sku).await?;
        if level.available() > 0 {
            return Ok(Badge {
                class: "available",
                text: format!("{} available", level.available()),
                yours: false,
            });
        }
        if level.reserved + level.allocated > 0 {
            let text = match self.shop.next_release(sku).await? {
                Some(at) => format!("held by another buyer, may come back at {}", clock_time(at)),
                None => "held by another buyer".to_owned(),
            };
            return Ok(Badge {
                class: "held",
                text,
                yours: false,
            });
        }
        Ok(Badge {
            class: "sold",
            text: "sold".to_owned(),
            yours: false,
        })
    }
}

/// A product's availability, in words.
pub struct Badge {
    class: &'static str,
    text: String,
    yours: bool,
}

/// A product on a page.
pub struct Listing {
    id: ProductId,
    name: String,
    sku: String,
    price: String,
    note: String,
    badge: Badge,
}

async fn listing(
    app: &App,
    product: &Product,
    own: &[(Sku, Timestamp)],
) -> Result<Option<Listing>, PageError> {
    let Some(variant) = product.variants().first() else {
        return Ok(None);
    };
    Ok(Some(Listing {
        id: product.id(),
        name: product.name().to_owned(),
        sku: variant.sku().to_string(),
        price: money(&variant.price()),
        note: app
            .notes
            .get(variant.sku().as_str())
            .cloned()
            .unwrap_or_default(),
        badge: app.badge(variant.sku(), own).await?,
    }))
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    listings: Vec<Listing>,
}

async fn catalog(State(app): Shared, headers: HeaderMap) -> Response {
    let page = async {
        let own = app.own_holds(&headers).await?;
        let show_sold = app.shop.settings().await?.switch(SHOW_SOLD_ITEMS, true);
        let mut listings = Vec::new();
        let mut after = None;
        loop {
            let page = app.shop.products(after, 100).await?;
            for product in &page.products {
                let Some(item) = listing(&app, product, &own).await? else {
                    continue;
                };
                if show_sold || item.badge.class != "sold" {
                    listings.push(item);
                }
            }
            match page.next {
                Some(next) if !page.products.is_empty() => after = Some(next),
                _ => break,
            }
        }
        listings.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(CatalogPage {
            chrome: app.chrome(),
            listings,
        })
    };
    app.pages.render(page.await)
}

#[derive(Deserialize)]
struct Notice {
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    chrome: Chrome,
    item: Listing,
    taken: bool,
}

async fn product(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let page = async {
        let id: ProductId = id.parse().map_err(|_| PageError::not_found("product"))?;
        let product = app.shop.product(id).await?;
        let own = app.own_holds(&headers).await?;
        let item = listing(&app, &product, &own)
            .await?
            .ok_or_else(|| PageError::not_found("product"))?;
        Ok(ProductPage {
            chrome: app.chrome(),
            item,
            taken: notice.notice.as_deref() == Some("taken"),
        })
    };
    app.pages.render(page.await)
}

#[derive(Deserialize)]
struct LineForm {
    sku: String,
    #[serde(default)]
    product: Option<String>,
}

async fn add_line(State(app): Shared, headers: HeaderMap, Form(form): Form<LineForm>) -> Response {
    let sku = match Sku::parse(&form.sku) {
        Ok(sku) => sku,
        Err(e) => return app.pages.error(&PageError::bad_form(e.to_string())),
    };
    let cart = match app.open_cart(&headers).await {
        Ok(Some(cart)) => cart.id,
        Ok(None) => match app.shop.create_cart(Currency::AUD).await {
            Ok(cart) => cart.id,
            Err(e) => return app.pages.error(&e.into()),
        },
        Err(e) => return app.pages.error(&e),
    };
    let cookie = set_cookie(CART_COOKIE, &cart.to_string(), CART_COOKIE_AGE);
    match app.shop.set_line(cart, &sku, Quantity::ONE).await {
        Ok(_) => ([cookie], see_other("/cart")).into_response(),
        Err(EngineError::InsufficientStock { .. }) => {
            let back = form
                .product
                .filter(|p| p.parse::<ProductId>().is_ok())
                .map_or_else(|| "/".to_owned(), |p| format!("/products/{p}?notice=taken"));
            ([cookie], see_other(&back)).into_response()
        }
        Err(e) => app.pages.error(&e.into()),
    }
}

async fn remove_line(
    State(app): Shared,
    headers: HeaderMap,
    Form(form): Form<LineForm>,
) -> Response {
    let done = async {
        let sku = Sku::parse(&form.sku).map_err(|e| PageError::bad_form(e.to_string()))?;
        if let Some(cart) = app.open_cart(&headers).await? {
            app.shop.remove_line(cart.id, &sku).await?;
        }
        Ok("/cart".to_owned())
    };
    app.pages.redirect(done.await)
}

async fn renew(State(app): Shared, headers: HeaderMap) -> Response {
    let done = async {
        let Some(cart) = app.open_cart(&headers).await? else {
            return Ok("/cart".to_owned());
        };
        match app.shop.renew_reservations(cart.id).await {
            Ok(_) => Ok("/cart?notice=renewed".to_owned()),
            Err(EngineError::InsufficientStock { .. }) => Ok("/cart?notice=gone".to_owned()),
            Err(e) => Err(e.into()),
        }
    };
    app.pages.redirect(done.await)
}

/// A cart line on the cart and checkout pages.
pub struct CartRow {
    sku: String,
    name: String,
    price: String,
    /// Seconds the hold has left; 0 when it lapsed.
    seconds_left: i64,
    until: String,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    chrome: Chrome,
    rows: Vec<CartRow>,
    total: String,
    lapsed: bool,
    notice: Option<String>,
}

async fn cart_rows(
    app: &App,
    cart: &commerce_core::Cart,
) -> Result<(Vec<CartRow>, Money), PageError> {
    let holds = app
        .shop
        .scope()
        .inventory()
        .cart_reservations(cart.id)
        .await?;
    let priced = app.shop.price_cart(cart.id).await?;
    let now = app.commerce.now();
    let rows = priced
        .lines
        .iter()
        .map(|line| {
            let until = holds
                .iter()
                .find(|h| h.sku == line.sku)
                .map(|h| h.expires_at);
            CartRow {
                sku: line.sku.to_string(),
                name: line.name.clone(),
                price: money(&line.subtotal),
                seconds_left: until.map_or(0, |u| (u - now).num_seconds().max(0)),
                until: until.map(clock_time).unwrap_or_default(),
            }
        })
        .collect();
    Ok((rows, priced.totals.grand_total))
}

async fn cart(State(app): Shared, headers: HeaderMap, Query(notice): Query<Notice>) -> Response {
    let page = async {
        let (rows, total) = match app.open_cart(&headers).await? {
            Some(cart) => {
                let (rows, total) = cart_rows(&app, &cart).await?;
                (rows, money(&total))
            }
            None => (Vec::new(), String::new()),
        };
        let notice = match notice.notice.as_deref() {
            Some("renewed") => Some("Your hold is renewed.".to_owned()),
            Some("gone") => Some(
                "Another buyer holds it now: your hold lapsed and the item was taken. It may \
                 come back if their hold lapses too."
                    .to_owned(),
            ),
            Some("lapsed") => Some(
                "Your hold lapsed before checkout. Renew it if the item is still free.".to_owned(),
            ),
            _ => None,
        };
        Ok(CartPage {
            chrome: app.chrome(),
            lapsed: rows.iter().any(|r| r.seconds_left == 0),
            rows,
            total,
            notice,
        })
    };
    app.pages.render(page.await)
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    chrome: Chrome,
    rows: Vec<CartRow>,
    total: String,
    expected: i64,
    key: String,
    changed: bool,
}

async fn checkout_page(
    State(app): Shared,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    if let Ok(Some(order)) = app.placed_order(&headers).await {
        // Back on checkout after placing the order: the order is the answer.
        return see_other(&format!("/orders/{order}"));
    }
    let page = async {
        let cart = app
            .open_cart(&headers)
            .await?
            .ok_or_else(|| PageError::from(EngineError::EmptyCart(CartId::new())))?;
        let (rows, total) = cart_rows(&app, &cart).await?;
        Ok(CheckoutPage {
            chrome: app.chrome(),
            rows,
            total: money(&total),
            expected: total.minor(),
            // One key per rendering of the page: a double click, a refresh
            // of the post or a second tab's repeat makes one order.
            key: format!("checkout-{}", uuid::Uuid::new_v4()),
            changed: notice.notice.as_deref() == Some("price_changed"),
        })
    };
    app.pages.render(page.await)
}

#[derive(Deserialize)]
struct CheckoutForm {
    key: String,
    expected: i64,
}

async fn checkout(
    State(app): Shared,
    headers: HeaderMap,
    Form(form): Form<CheckoutForm>,
) -> Response {
    let done = async {
        let Some(id) = App::cart_id(&headers) else {
            return Err(EngineError::EmptyCart(CartId::new()).into());
        };
        let key =
            IdempotencyKey::parse(&form.key).map_err(|e| PageError::bad_form(e.to_string()))?;
        let request =
            CheckoutRequest::new(key).expecting_total(Money::new(form.expected, Currency::AUD));
        match app.shop.checkout_with(id, &request).await {
            Ok(done) => Ok(match done.session {
                Some(session) if done.order.status() == OrderStatus::AwaitingPayment => {
                    session.redirect_url
                }
                _ => format!("/orders/{}", done.order.id),
            }),
            Err(EngineError::PriceChanged { .. }) => {
                Ok("/checkout?notice=price_changed".to_owned())
            }
            Err(EngineError::ReservationLapsed { .. }) => Ok("/cart?notice=lapsed".to_owned()),
            Err(EngineError::InsufficientStock { .. }) => Ok("/cart?notice=gone".to_owned()),
            Err(e) => Err(e.into()),
        }
    };
    app.pages.redirect(done.await)
}

/// An order's status in the buyer's words.
pub fn status_label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::AwaitingPayment => "Awaiting payment",
        OrderStatus::Paid => "Paid",
        OrderStatus::Fulfilled => "Shipped",
        OrderStatus::Cancelled => "Cancelled",
        OrderStatus::Expired => "Expired: the payment window closed",
        OrderStatus::Refunded => "Refunded",
        OrderStatus::OversoldRefunded => {
            "Refunded automatically: the item sold before your payment arrived"
        }
        _ => "Updated",
    }
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    order: Order,
    status: &'static str,
    labels: String,
    log: Vec<LogRow>,
    refunds: Vec<(String, &'static str)>,
    pay_url: Option<String>,
}

async fn order_page(State(app): Shared, Path(id): Path<String>) -> Response {
    let page = async {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        let order = app.shop.order(id).await?;
        let log = app
            .shop
            .order_events(id)
            .await?
            .iter()
            .map(|event| LogRow::of(event, status_label))
            .collect();
        let refunds = app
            .shop
            .order_refunds(id)
            .await?
            .iter()
            .map(|r| {
                (
                    money(&r.amount),
                    if r.is_pending() {
                        "pending"
                    } else {
                        "refunded"
                    },
                )
            })
            .collect();
        Ok(OrderPage {
            chrome: app.chrome(),
            status: status_label(order.status()),
            labels: status_labels_json(status_label),
            log,
            refunds,
            pay_url: (order.status() == OrderStatus::AwaitingPayment)
                .then(|| format!("/pay/{}", order.id)),
            order,
        })
    };
    app.pages.render(page.await)
}

#[derive(Template)]
#[template(path = "clock.html")]
struct ClockPage {
    chrome: Chrome,
}

async fn clock_page(State(app): Shared) -> Response {
    app.pages.render(Ok(ClockPage {
        chrome: app.chrome(),
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
