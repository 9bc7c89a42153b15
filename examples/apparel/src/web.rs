//! The storefront: the catalog, product pages with a size × colour picker,
//! the cart with the "3 for 2" and the sales tax explained, checkout with
//! the shown total, and order pages that follow the order live. The pages
//! call the engine directly; the JSON API, the payment webhook and the
//! order event streams are commerce-http's routers, nested beside them.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use commerce_core::pricing::{PromotionOutcome, ShippingCharge};
use commerce_core::tax::{PriceBasis, TaxLine};
use commerce_core::{
    Cart, CartId, CartStatus, CheckoutRequest, Currency, CustomerContext, Error as EngineError,
    IdempotencyKey, ManualClock, Money, Order, OrderId, OrderStatus, PricedCart, PricedLine,
    Product, ProductId, Quantity, Shop, Sku, Totals,
};
use serde::Deserialize;
use shop_kit::web::{
    Chrome, LogRow, PageError, Pages, Signer, clock_time, cookie, money, see_other, set_cookie,
    status_labels_json,
};

use crate::accounts::{Accounts, Customer, Mailbox, Notifier};
use crate::catalog::{self, THREE_FOR_TWO};

/// The cookie holding the buyer's cart id (the id is the capability).
const CART_COOKIE: &str = "apparel_cart";
/// A week: a cart outlives its holds.
const CART_COOKIE_AGE: u64 = 7 * 24 * 3600;
/// The most units of one variant a buyer asks for in one go.
const MAX_QUANTITY: u32 = 20;

/// The shop's currency.
pub const CURRENCY: Currency = Currency::USD;

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
    /// Customer accounts and wishlists (in memory).
    pub accounts: Accounts,
    /// Where email goes.
    pub notifier: Arc<dyn Notifier>,
    /// The development mailbox, when email goes there.
    pub mailbox: Option<Arc<Mailbox>>,
    /// Signs customer sessions and their CSRF tokens.
    pub signer: Signer,
    /// The shop's own URL, for links in email.
    pub base: String,
}

type Shared = State<Arc<App>>;

const SCRIPT: &str = include_str!("../static/picker.js");

/// The storefront pages (the account pages are in [`crate::account`]).
pub fn routes(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/", get(catalog_page))
        .route("/products/{id}", get(product_page))
        .route("/cart", get(cart_page))
        .route("/cart/lines", post(add_line))
        .route("/cart/lines/quantity", post(set_quantity))
        .route("/cart/lines/remove", post(remove_line))
        .route("/checkout", get(checkout_page).post(checkout))
        .route("/orders/{id}", get(order_page))
        .route(
            "/assets/picker.js",
            get(|| async { ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        );
    if app.clock.is_some() {
        router = router.route("/dev/clock", get(clock_page).post(move_clock));
    }
    router.with_state(app)
}

impl App {
    /// The chrome, with the engine's time when the clock is manual.
    pub fn chrome(&self) -> Chrome {
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
    pub async fn open_cart(&self, headers: &HeaderMap) -> Result<Option<Cart>, PageError> {
        let Some(id) = Self::cart_id(headers) else {
            return Ok(None);
        };
        match self.shop.cart(id).await {
            Ok(cart) if cart.status() == CartStatus::Open => Ok(Some(cart)),
            Ok(_) | Err(EngineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts the logged-in customer on `cart`, so the order carries their
    /// id and shows in their order history. Only an open cart changes.
    pub async fn link_customer(&self, cart: &Cart, customer: &Customer) -> Result<(), PageError> {
        let linked = cart.customer.as_ref().and_then(|c| c.id.as_ref()) == Some(&customer.id);
        if !linked && cart.status() == CartStatus::Open {
            let context = CustomerContext {
                id: Some(customer.id.clone()),
                ..CustomerContext::default()
            };
            self.shop.set_customer(cart.id, Some(context)).await?;
        }
        Ok(())
    }
}

/// A variant's size and colour, from its options.
fn size_colour(options: &std::collections::BTreeMap<String, String>) -> (String, String) {
    (
        options.get("size").cloned().unwrap_or_default(),
        options.get("colour").cloned().unwrap_or_default(),
    )
}

/// `M · Black`.
fn option_text(options: &std::collections::BTreeMap<String, String>) -> String {
    let (size, colour) = size_colour(options);
    match (size.is_empty(), colour.is_empty()) {
        (false, false) => format!("{size} · {colour}"),
        (false, true) => size,
        (true, false) => colour,
        (true, true) => String::new(),
    }
}

/// A product on the catalog page.
pub struct Card {
    id: ProductId,
    name: String,
    price: String,
    sizes: String,
    colours: String,
    available: bool,
}

/// The sizes and colours of `product`, in the order its variants list them.
fn axes(product: &Product) -> (Vec<String>, Vec<String>) {
    let (mut sizes, mut colours) = (Vec::new(), Vec::new());
    for variant in product.variants() {
        let (size, colour) = size_colour(variant.options());
        if !sizes.contains(&size) {
            sizes.push(size);
        }
        if !colours.contains(&colour) {
            colours.push(colour);
        }
    }
    (sizes, colours)
}

/// The lowest variant price, as `USD 24.00` (or `from USD 24.00`).
fn price_text(product: &Product) -> String {
    let prices: Vec<Money> = product.variants().iter().map(|v| v.price()).collect();
    let low = prices.iter().min_by_key(|p| p.minor());
    let high = prices.iter().max_by_key(|p| p.minor());
    match (low, high) {
        (Some(low), Some(high)) if low == high => money(low),
        (Some(low), _) => format!("from {}", money(low)),
        _ => String::new(),
    }
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    cards: Vec<Card>,
    tax_added: bool,
}

async fn catalog_page(State(app): Shared) -> Response {
    let page = async {
        let mut cards = Vec::new();
        let mut after = None;
        loop {
            let page = app.shop.products(after, 100).await?;
            for product in &page.products {
                let mut available = false;
                for variant in product.variants() {
                    if app.shop.stock(variant.sku()).await?.available() > 0 {
                        available = true;
                        break;
                    }
                }
                let (sizes, colours) = axes(product);
                cards.push(Card {
                    id: product.id(),
                    name: product.name().to_owned(),
                    price: price_text(product),
                    sizes: sizes.join(", "),
                    colours: colours.join(", "),
                    available,
                });
            }
            match page.next {
                Some(next) if !page.products.is_empty() => after = Some(next),
                _ => break,
            }
        }
        cards.sort_by(|a, b| a.name.cmp(&b.name));
        let tax = app.shop.settings().await?.tax;
        Ok(CatalogPage {
            chrome: app.chrome(),
            cards,
            tax_added: catalog::tax_is_added(&tax),
        })
    };
    app.pages.render(page.await)
}

/// One radio of the picker.
pub struct Choice {
    value: String,
    /// `id` attribute: `size-M`, `colour-Heather-Grey`.
    id: String,
    /// Sold out in every combination: `disabled` without any script.
    disabled: bool,
    checked: bool,
}

/// One cell of the availability table.
pub struct Cell {
    text: String,
    sold_out: bool,
}

/// A variant as the picker's script reads it.
#[derive(serde::Serialize)]
struct PickerVariant {
    sku: String,
    size: String,
    colour: String,
    available: u32,
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    chrome: Chrome,
    id: ProductId,
    name: String,
    price: String,
    sizes: Vec<Choice>,
    colours: Vec<Choice>,
    /// `(size, cells by colour)`.
    grid: Vec<(String, Vec<Cell>)>,
    colour_names: Vec<String>,
    variants_json: String,
    /// Why the last "Add to cart" added nothing.
    refusal: Option<String>,
    /// What the last action did.
    notice: Option<String>,
    tax_added: bool,
    logged_in: bool,
    wished: bool,
    csrf: String,
}

#[derive(Deserialize, Default)]
struct ProductQuery {
    notice: Option<String>,
    size: Option<String>,
    colour: Option<String>,
}

fn dom_id(prefix: &str, value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{cleaned}")
}

async fn product_page(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ProductQuery>,
) -> Response {
    let page = async {
        let id: ProductId = id.parse().map_err(|_| PageError::not_found("product"))?;
        let product = app.shop.product(id).await?;
        let (sizes, colours) = axes(&product);
        let mut stock = Vec::new();
        for variant in product.variants() {
            let (size, colour) = size_colour(variant.options());
            let available = app.shop.stock(variant.sku()).await?.available();
            stock.push(PickerVariant {
                sku: variant.sku().to_string(),
                size,
                colour,
                available,
            });
        }
        let available = |size: &str, colour: &str| {
            stock
                .iter()
                .find(|v| v.size == size && v.colour == colour)
                .map_or(0, |v| v.available)
        };
        // Chosen: what the buyer asked for (after a refusal), else the
        // first combination in stock.
        let first = stock.iter().find(|v| v.available > 0);
        let chosen_size = query
            .size
            .clone()
            .filter(|s| sizes.contains(s))
            .or_else(|| first.map(|v| v.size.clone()));
        let chosen_colour = query
            .colour
            .clone()
            .filter(|c| colours.contains(c))
            .or_else(|| first.map(|v| v.colour.clone()));
        let size_choices = sizes
            .iter()
            .map(|size| Choice {
                value: size.clone(),
                id: dom_id("size", size),
                disabled: colours.iter().all(|c| available(size, c) == 0),
                checked: chosen_size.as_deref() == Some(size.as_str()),
            })
            .collect();
        let colour_choices = colours
            .iter()
            .map(|colour| Choice {
                value: colour.clone(),
                id: dom_id("colour", colour),
                disabled: sizes.iter().all(|s| available(s, colour) == 0),
                checked: chosen_colour.as_deref() == Some(colour.as_str()),
            })
            .collect();
        let grid = sizes
            .iter()
            .map(|size| {
                let cells = colours
                    .iter()
                    .map(|colour| {
                        let n = available(size, colour);
                        Cell {
                            text: if n == 0 {
                                "Sold out".to_owned()
                            } else {
                                format!("{n} left")
                            },
                            sold_out: n == 0,
                        }
                    })
                    .collect();
                (size.clone(), cells)
            })
            .collect();
        let refusal = match (query.notice.as_deref(), &query.size, &query.colour) {
            (Some("sold_out"), Some(size), Some(colour)) => {
                let n = available(size, colour);
                Some(if n == 0 {
                    format!("Size {size} in {colour} is sold out. Pick another size or colour.")
                } else {
                    format!("Only {n} left in size {size}, {colour}: ask for {n} or fewer.")
                })
            }
            (Some("pick"), ..) => Some("Pick a size and a colour first.".to_owned()),
            _ => None,
        };
        let notice = (query.notice.as_deref() == Some("wished"))
            .then(|| "Saved to your wishlist.".to_owned());
        let customer = crate::account::current(&app, &headers);
        let tax = app.shop.settings().await?.tax;
        Ok(ProductPage {
            chrome: app.chrome(),
            id,
            name: product.name().to_owned(),
            price: price_text(&product),
            sizes: size_choices,
            colours: colour_choices,
            grid,
            colour_names: colours.clone(),
            variants_json: serde_json::to_string(&stock).unwrap_or_else(|_| "[]".to_owned()),
            refusal,
            notice,
            tax_added: catalog::tax_is_added(&tax),
            logged_in: customer.is_some(),
            wished: customer
                .as_ref()
                .is_some_and(|(c, _)| c.wishlist.contains(&id)),
            csrf: customer.map(|(_, csrf)| csrf).unwrap_or_default(),
        })
    };
    app.pages.render(page.await)
}

#[derive(Deserialize)]
struct AddForm {
    product: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    colour: Option<String>,
    #[serde(default)]
    quantity: Option<String>,
}

/// A quantity typed into a form: 1 to [`MAX_QUANTITY`] (`allow_zero` for
/// the cart's "set to 0 removes it").
fn parse_quantity(text: Option<&str>, allow_zero: bool) -> Result<u32, PageError> {
    let text = text.map_or("1", str::trim);
    let least = u32::from(!allow_zero);
    text.parse::<u32>()
        .ok()
        .filter(|n| (least..=MAX_QUANTITY).contains(n))
        .ok_or_else(|| {
            PageError::bad_form(format!(
                "A quantity is a whole number from {least} to {MAX_QUANTITY}, not {text:?}."
            ))
        })
}

fn product_url(id: ProductId, notice: &str, size: &str, colour: &str) -> String {
    let query =
        serde_urlencoded::to_string([("notice", notice), ("size", size), ("colour", colour)])
            .unwrap_or_default();
    format!("/products/{id}?{query}")
}

async fn add_line(State(app): Shared, headers: HeaderMap, Form(form): Form<AddForm>) -> Response {
    let done = async {
        let id: ProductId = form
            .product
            .parse()
            .map_err(|_| PageError::bad_form("No such product."))?;
        let product = app.shop.product(id).await?;
        let (Some(size), Some(colour)) = (form.size, form.colour) else {
            return Ok((None, format!("/products/{id}?notice=pick")));
        };
        let quantity = parse_quantity(form.quantity.as_deref(), false)?;
        // The server decides which variant it is and whether it is in
        // stock: a disabled radio is a hint, not a rule.
        let variant = product
            .variants()
            .iter()
            .find(|v| size_colour(v.options()) == (size.clone(), colour.clone()))
            .ok_or_else(|| {
                PageError::bad_form(format!(
                    "{} has no size {size} in {colour}.",
                    product.name()
                ))
            })?;
        let cart = match app.open_cart(&headers).await? {
            Some(cart) => cart,
            None => app.shop.create_cart(CURRENCY).await?,
        };
        if let Some((customer, _)) = crate::account::current(&app, &headers) {
            app.link_customer(&cart, &customer).await?;
        }
        let held = cart
            .lines
            .iter()
            .find(|l| l.sku == *variant.sku())
            .map_or(0, |l| l.quantity.get());
        let want = Quantity::new(held.saturating_add(quantity))
            .map_err(|e| PageError::bad_form(e.to_string()))?;
        let cookie = set_cookie(CART_COOKIE, &cart.id.to_string(), CART_COOKIE_AGE);
        match app.shop.set_line(cart.id, variant.sku(), want).await {
            Ok(_) => Ok((Some(cookie), "/cart".to_owned())),
            Err(EngineError::InsufficientStock { .. }) => {
                Ok((Some(cookie), product_url(id, "sold_out", &size, &colour)))
            }
            Err(e) => Err(e.into()),
        }
    };
    match done.await {
        Ok((Some(cookie), to)) => ([cookie], see_other(&to)).into_response(),
        Ok((None, to)) => see_other(&to),
        Err(error) => app.pages.error(&error),
    }
}

#[derive(Deserialize)]
struct LineForm {
    sku: String,
    #[serde(default)]
    quantity: Option<String>,
}

async fn set_quantity(
    State(app): Shared,
    headers: HeaderMap,
    Form(form): Form<LineForm>,
) -> Response {
    let done = async {
        let sku = Sku::parse(&form.sku).map_err(|e| PageError::bad_form(e.to_string()))?;
        let quantity = parse_quantity(form.quantity.as_deref(), true)?;
        let Some(cart) = app.open_cart(&headers).await? else {
            return Ok("/cart".to_owned());
        };
        let result = if quantity == 0 {
            app.shop.remove_line(cart.id, &sku).await
        } else {
            let quantity =
                Quantity::new(quantity).map_err(|e| PageError::bad_form(e.to_string()))?;
            app.shop.set_line(cart.id, &sku, quantity).await
        };
        match result {
            Ok(_) => Ok("/cart".to_owned()),
            Err(EngineError::InsufficientStock { available, .. }) => Ok(format!(
                "/cart?notice=short&sku={sku}&available={available}"
            )),
            Err(e) => Err(e.into()),
        }
    };
    app.pages.redirect(done.await)
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

/// A line on the cart, checkout and order pages.
pub struct Row {
    sku: String,
    name: String,
    options: String,
    quantity: u32,
    unit: String,
    subtotal: String,
    discount: Option<String>,
    total: String,
}

/// A tax on the cart, checkout and order pages.
pub struct TaxRow {
    label: String,
    percent: String,
    taxable: String,
    tax: String,
}

/// What the cart, checkout and order pages show of a priced cart or an
/// order: lines, discounts, tax, total.
pub struct Summary {
    rows: Vec<Row>,
    subtotal: String,
    /// `(promotion name, amount off)`.
    discounts: Vec<(String, String)>,
    shipping: Option<String>,
    /// Net of tax when prices exclude it, which they do here.
    taxes: Vec<TaxRow>,
    tax_total: String,
    total: String,
    /// Prices exclude tax (US sales tax) rather than include it (GST).
    tax_added: bool,
}

fn summary(
    lines: &[PricedLine],
    shipping: Option<&ShippingCharge>,
    taxes: &[TaxLine],
    totals: &Totals,
    discounts: Vec<(String, Money)>,
    prices: PriceBasis,
) -> Summary {
    Summary {
        rows: lines
            .iter()
            .map(|line| Row {
                sku: line.sku.to_string(),
                name: line.name.clone(),
                options: option_text(&line.options),
                quantity: line.quantity.get(),
                unit: money(&line.unit_price),
                subtotal: money(&line.subtotal),
                discount: (!line.discount_total.is_zero()).then(|| money(&line.discount_total)),
                total: money(&line.discounted),
            })
            .collect(),
        subtotal: money(&totals.subtotal),
        discounts: discounts
            .into_iter()
            .map(|(name, amount)| (name, money(&amount)))
            .collect(),
        shipping: shipping.map(|s| money(&s.discounted)),
        taxes: taxes
            .iter()
            .filter(|t| !t.tax.is_zero())
            .map(|t| TaxRow {
                label: t.label.clone(),
                percent: t.percent.normalize().to_string(),
                taxable: money(&t.taxable),
                tax: money(&t.tax),
            })
            .collect(),
        tax_total: money(&totals.tax_total),
        total: money(&totals.grand_total),
        tax_added: prices == PriceBasis::TaxExclusive,
    }
}

/// The summary of a priced cart.
fn cart_summary(priced: &PricedCart) -> Summary {
    let discounts = priced
        .promotions
        .iter()
        .filter_map(|p| match &p.outcome {
            PromotionOutcome::Applied { discount } => Some((p.name.clone(), *discount)),
            _ => None,
        })
        .collect();
    summary(
        &priced.lines,
        priced.shipping.as_ref(),
        &priced.taxes,
        &priced.totals,
        discounts,
        priced.prices,
    )
}

/// The "3 for 2" in words for this cart, when the shop runs it.
fn three_for_two_text(priced: &PricedCart) -> Option<String> {
    let report = priced
        .promotions
        .iter()
        .find(|p| p.promotion.as_str() == THREE_FOR_TWO)?;
    let units: u32 = priced
        .lines
        .iter()
        .map(|l| l.quantity.get())
        .fold(0, u32::saturating_add);
    let free = units / 3;
    let more = 3 - units % 3;
    let more_text = if more == 1 {
        "1 more item".to_owned()
    } else {
        format!("{more} more items")
    };
    Some(match &report.outcome {
        PromotionOutcome::Applied { discount } => {
            let items = if free == 1 {
                "1 item is".to_owned()
            } else {
                format!("{free} items are")
            };
            format!(
                "3 for 2: you have {units} items, so {items} free (the cheapest in each three): \
                 {} off. Add {more_text} for the next free one.",
                money(discount)
            )
        }
        _ if units < 3 => format!(
            "3 for 2: the cheapest of every three items is free. You have {units}; add \
             {more_text} and the cheapest is free."
        ),
        // Three or more and still not applied: the owner changed the
        // promotion's rules on the admin pages; do not promise anything.
        _ => "3 for 2 does not apply to this cart.".to_owned(),
    })
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    chrome: Chrome,
    summary: Option<Summary>,
    offer: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct CartQuery {
    notice: Option<String>,
    sku: Option<String>,
    available: Option<u32>,
}

async fn cart_page(
    State(app): Shared,
    headers: HeaderMap,
    Query(query): Query<CartQuery>,
) -> Response {
    let page = async {
        let (summary, offer) = match app.open_cart(&headers).await? {
            Some(cart) if !cart.lines.is_empty() => {
                let priced = app.shop.price_cart(cart.id).await?;
                (Some(cart_summary(&priced)), three_for_two_text(&priced))
            }
            _ => (None, None),
        };
        let notice = match query.notice.as_deref() {
            Some("short") => Some(format!(
                "Only {} of {} left: your cart keeps what it had.",
                query.available.unwrap_or(0),
                query.sku.as_deref().unwrap_or("that item")
            )),
            Some("lapsed") => Some(
                "Your hold on an item lapsed before checkout: add it again if it is still in stock."
                    .to_owned(),
            ),
            Some("gone") => Some("An item in your cart sold out before checkout.".to_owned()),
            _ => None,
        };
        Ok(CartPage {
            chrome: app.chrome(),
            summary,
            offer,
            notice,
        })
    };
    app.pages.render(page.await)
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    chrome: Chrome,
    summary: Summary,
    expected: i64,
    key: String,
    /// The total the buyer saw before a price changed, when one did.
    was: Option<String>,
    customer: Option<String>,
}

#[derive(Deserialize, Default)]
struct CheckoutQuery {
    notice: Option<String>,
    was: Option<i64>,
}

async fn checkout_page(
    State(app): Shared,
    headers: HeaderMap,
    Query(query): Query<CheckoutQuery>,
) -> Response {
    let page = async {
        let cart = app
            .open_cart(&headers)
            .await?
            .filter(|c| !c.lines.is_empty())
            .ok_or_else(|| PageError::from(EngineError::EmptyCart(CartId::new())))?;
        let customer = crate::account::current(&app, &headers).map(|(c, _)| c);
        if let Some(customer) = &customer {
            app.link_customer(&cart, customer).await?;
        }
        let priced = app.shop.price_cart(cart.id).await?;
        let was = match (query.notice.as_deref(), query.was) {
            (Some("price_changed"), Some(cents)) => Some(money(&Money::new(cents, CURRENCY))),
            (Some("price_changed"), None) => Some("the total you saw".to_owned()),
            _ => None,
        };
        Ok(CheckoutPage {
            chrome: app.chrome(),
            expected: priced.totals.grand_total.minor(),
            summary: cart_summary(&priced),
            // One key per rendering of the page: a double click, a refresh
            // of the post or a second tab's repeat makes one order.
            key: format!("checkout-{}", uuid::Uuid::new_v4()),
            was,
            customer: customer.map(|c| c.email),
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
            CheckoutRequest::new(key).expecting_total(Money::new(form.expected, CURRENCY));
        match app.shop.checkout_with(id, &request).await {
            Ok(done) => Ok(match done.session {
                Some(session) if done.order.status() == OrderStatus::AwaitingPayment => {
                    session.redirect_url
                }
                _ => format!("/orders/{}", done.order.id),
            }),
            Err(EngineError::PriceChanged { expected, .. }) => Ok(format!(
                "/checkout?notice=price_changed&was={}",
                expected.minor()
            )),
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
            "Refunded automatically: an item sold out before your payment arrived"
        }
        _ => "Updated",
    }
}

/// The summary of a placed order: its own snapshot of prices, discounts
/// and tax (nothing is priced again).
pub fn order_summary(order: &Order) -> Summary {
    let discounts = order
        .promotions
        .iter()
        .map(|p| (p.name.clone(), p.discount))
        .collect();
    summary(
        &order.lines,
        order.shipping.as_ref(),
        &order.taxes,
        &order.totals,
        discounts,
        order.prices,
    )
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    id: OrderId,
    status_code: &'static str,
    status: &'static str,
    labels: String,
    summary: Summary,
    log: Vec<LogRow>,
    pay_url: Option<String>,
    placed: String,
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
        Ok(OrderPage {
            chrome: app.chrome(),
            id,
            status_code: order.status().as_str(),
            status: status_label(order.status()),
            labels: status_labels_json(status_label),
            summary: order_summary(&order),
            log,
            pay_url: (order.status() == OrderStatus::AwaitingPayment)
                .then(|| format!("/pay/{}", order.id)),
            placed: order.placed_at.format("%Y-%m-%d %H:%M UTC").to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_typed_into_forms() {
        assert_eq!(parse_quantity(None, false).ok(), Some(1));
        assert_eq!(parse_quantity(Some(" 3 "), false).ok(), Some(3));
        assert_eq!(parse_quantity(Some("0"), true).ok(), Some(0));
        for bad in ["0", "-1", "21", "two", "", "1.5"] {
            assert!(parse_quantity(Some(bad), false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_for_labels_are_plain() {
        assert_eq!(dom_id("colour", "Heather Grey"), "colour-Heather-Grey");
        assert_eq!(dom_id("size", "One size"), "size-One-size");
    }
}
