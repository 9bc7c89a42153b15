//! Checkout (the summary with GST per line, the age gate, the pickup
//! slot) and the order page (the tax invoice, the pickup slot, the status
//! kept live by the order's event stream).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use commerce_core::{
    AttributeKey, CartId, CheckoutRequest, Currency, Error as EngineError, IdempotencyKey, Money,
    OrderId, OrderStatus,
};
use serde::Deserialize;
use shop_kit::web::{Chrome, PageError, status_labels_json};

use super::cart::Notice;
use super::{Shared, StorePages, local_date_time, refusal_text};
use crate::invoice::{self, Invoice};
use crate::slots::{self, Slot};

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    chrome: Chrome,
    slug: &'static str,
    invoice: Invoice,
    expected: i64,
    key: String,
    slots: Vec<Slot>,
    chosen: String,
    /// When liquor is in the cart: whether the buyer's age is recorded.
    age_confirmed: bool,
    notice: Option<&'static str>,
    refused: Option<&'static str>,
}

async fn checkout_page(
    store: &StorePages<'_>,
    headers: &HeaderMap,
    notice: &Notice,
) -> Result<CheckoutPage, PageError> {
    let cart = store.open_cart(headers).await?;
    let Some(cart) = cart.filter(|c| !c.lines.is_empty()) else {
        return Err(PageError::from(EngineError::EmptyCart(CartId::new())));
    };
    let priced = store.shop.price_cart(cart.id).await?;
    let key = AttributeKey::parse(slots::ATTRIBUTE).map_err(|e| PageError::internal(&e))?;
    Ok(CheckoutPage {
        chrome: store.chrome.clone(),
        slug: store.slug(),
        invoice: invoice::of_cart(&priced),
        expected: priced.totals.grand_total.minor(),
        // One key per rendering of the page: a double click, a refresh of
        // the post or a second tab's repeat makes one order.
        key: format!("checkout-{}", uuid::Uuid::new_v4()),
        slots: slots::offered(store.now),
        chosen: cart.attributes().get(&key).cloned().unwrap_or_default(),
        age_confirmed: cart.age_verification.is_some(),
        notice: match notice.notice.as_deref() {
            Some("age") => {
                Some("Thank you: your age is confirmed. Bring photo ID when you collect.")
            }
            _ => None,
        },
        refused: notice.refused.as_deref().and_then(refusal_text),
    })
}

/// `GET /s/{store}/checkout`.
pub async fn page(
    State(app): Shared,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let page = checkout_page(&store, &headers, &notice).await;
    store.pages.render(page)
}

#[derive(Deserialize)]
pub struct CheckoutForm {
    key: String,
    expected: i64,
    #[serde(default)]
    slot: Option<String>,
}

/// `POST /s/{store}/checkout`: records the pickup slot on the cart, then
/// places the order. The engine refuses a cart holding liquor without an
/// age verification (and the store checks it again when placing), so a
/// post that skips the age gate is refused here, whatever the browser
/// sent.
pub async fn place(
    State(app): Shared,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CheckoutForm>,
) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let checkout = store.path("/checkout");
    let cart_page = store.path("/cart");
    let done = async {
        let Some(cart) = store.open_cart(&headers).await? else {
            return Err(EngineError::EmptyCart(CartId::new()).into());
        };
        let Some(slot) = form
            .slot
            .as_deref()
            .and_then(|v| slots::choose(store.now, v))
        else {
            return Ok(format!("{checkout}?refused=slot"));
        };
        let key = AttributeKey::parse(slots::ATTRIBUTE).map_err(|e| PageError::internal(&e))?;
        store
            .shop
            .set_cart_attribute(cart.id, &key, Some(slot.value))
            .await?;
        let idempotency =
            IdempotencyKey::parse(&form.key).map_err(|e| PageError::bad_form(e.to_string()))?;
        let request = CheckoutRequest::new(idempotency)
            .expecting_total(Money::new(form.expected, Currency::AUD));
        match store.shop.checkout_with(cart.id, &request).await {
            Ok(done) => Ok(match done.session {
                Some(session) if done.order.status() == OrderStatus::AwaitingPayment => {
                    session.redirect_url
                }
                _ => store.path(&format!("/orders/{}", done.order.id)),
            }),
            Err(EngineError::AgeVerificationRequired { .. }) => {
                Ok(format!("{checkout}?refused=age"))
            }
            Err(EngineError::PriceChanged { .. }) => Ok(format!("{checkout}?refused=price")),
            Err(EngineError::NotAcceptingOrders) => Ok(format!("{checkout}?refused=paused")),
            Err(EngineError::ReservationLapsed { .. }) => Ok(format!("{cart_page}?refused=lapsed")),
            Err(EngineError::InsufficientStock { .. }) => Ok(format!("{cart_page}?refused=gone")),
            Err(e) => Err(e.into()),
        }
    };
    store.pages.redirect(done.await)
}

/// An order's status in the buyer's words.
pub fn status_label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::AwaitingPayment => "Awaiting payment",
        OrderStatus::Paid => "Paid: we are packing it",
        OrderStatus::Fulfilled => "Collected",
        OrderStatus::Cancelled => "Cancelled",
        OrderStatus::Expired => "Expired: the payment window closed",
        OrderStatus::Refunded => "Refunded",
        OrderStatus::OversoldRefunded => {
            "Refunded automatically: an item sold out before your payment arrived"
        }
        _ => "Updated",
    }
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    slug: &'static str,
    store_name: &'static str,
    address: &'static str,
    abn: &'static str,
    order: String,
    placed: String,
    status: OrderStatus,
    status_text: &'static str,
    labels: String,
    slot: Option<String>,
    invoice: Invoice,
    pay_url: Option<String>,
}

/// `GET /s/{store}/orders/{order}`: the tax invoice, the pickup slot and
/// the live status. An order of another store is not found here.
pub async fn order_page(State(app): Shared, Path((slug, id)): Path<(String, String)>) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let page = async {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        let order = store.shop.order(id).await?;
        let key = AttributeKey::parse(slots::ATTRIBUTE).map_err(|e| PageError::internal(&e))?;
        Ok(OrderPage {
            chrome: store.chrome.clone(),
            slug: store.slug(),
            store_name: store.store.info.name,
            address: store.store.info.address,
            abn: store.store.info.abn,
            order: order.id.to_string(),
            placed: local_date_time(order.placed_at),
            status: order.status(),
            status_text: status_label(order.status()),
            labels: status_labels_json(status_label),
            slot: order.attributes().get(&key).map(|v| slots::describe(v)),
            invoice: invoice::of_order(&order),
            pay_url: (order.status() == OrderStatus::AwaitingPayment)
                .then(|| format!("/pay/{}", order.id)),
        })
    };
    store.pages.render(page.await)
}
