//! The cart: lines with their quantities, the totals with the GST they
//! include, and the promotion panel that says, for each rule, why it does
//! or does not apply; adding, changing and removing lines; the age
//! attestation.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use commerce_core::{Error as EngineError, Quantity, Sku};
use serde::Deserialize;
use shop_kit::web::{Chrome, PageError, see_other};

use super::{Shared, StorePages, bad_request, local_time, refusal_text};
use crate::money::dollars;
use crate::panel::{self, Explanation};

/// The most units of one line the pages accept.
pub const MAX_QUANTITY: u32 = 99;

/// A cart line on the cart page.
pub struct CartRow {
    sku: String,
    name: String,
    unit_price: String,
    quantity: u32,
    discount: String,
    amount: String,
    gst_free: bool,
    age_restricted: bool,
    /// The quantity field's id.
    field: String,
}

/// The cart's totals.
pub struct CartTotals {
    subtotal: String,
    discount: String,
    total: String,
    gst: String,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    chrome: Chrome,
    slug: &'static str,
    rows: Vec<CartRow>,
    totals: Option<CartTotals>,
    panel: Vec<Explanation>,
    held_until: Option<String>,
    lapsed: bool,
    notice: Option<&'static str>,
    refused: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    pub notice: Option<String>,
    #[serde(default)]
    pub refused: Option<String>,
}

/// The field id of a SKU's quantity input: SKUs are printable ASCII, ids
/// want letters, digits and dashes.
fn field_id(sku: &str) -> String {
    let safe: String = sku
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("qty-{safe}")
}

async fn cart_page(
    store: &StorePages<'_>,
    headers: &HeaderMap,
    notice: &Notice,
) -> Result<CartPage, PageError> {
    let promotions = store.shop.promotions().await?;
    let cart = store.open_cart(headers).await?;
    let mut page = CartPage {
        chrome: store.chrome.clone(),
        slug: store.slug(),
        rows: Vec::new(),
        totals: None,
        panel: panel::explain_all(&promotions, None),
        held_until: None,
        lapsed: false,
        notice: match notice.notice.as_deref() {
            Some("renewed") => Some("Your items are held for you again."),
            _ => None,
        },
        refused: notice.refused.as_deref().and_then(refusal_text),
    };
    let Some(cart) = cart.filter(|c| !c.lines.is_empty()) else {
        return Ok(page);
    };
    let priced = store.shop.price_cart(cart.id).await?;
    let holds = store
        .shop
        .scope()
        .inventory()
        .cart_reservations(cart.id)
        .await?;
    let live: Vec<_> = holds.iter().filter(|h| h.expires_at > store.now).collect();
    page.lapsed = cart.lines.iter().any(|line| {
        !live
            .iter()
            .any(|h| h.sku == line.sku && h.quantity.get() >= line.quantity.get())
    });
    page.held_until = live.iter().map(|h| h.expires_at).min().map(local_time);
    page.rows = priced
        .lines
        .iter()
        .map(|line| CartRow {
            sku: line.sku.to_string(),
            name: line.name.clone(),
            unit_price: dollars(&line.unit_price),
            quantity: line.quantity.get(),
            discount: if line.discount_total.is_zero() {
                String::new()
            } else {
                format!("-{}", dollars(&line.discount_total))
            },
            amount: dollars(&line.total),
            gst_free: line.tax.treatment != commerce_core::tax::TaxTreatment::Taxable,
            age_restricted: line.age_restricted,
            field: field_id(line.sku.as_str()),
        })
        .collect();
    page.totals = Some(CartTotals {
        subtotal: dollars(&priced.totals.subtotal),
        discount: if priced.totals.discount_total.is_zero() {
            String::new()
        } else {
            format!("-{}", dollars(&priced.totals.discount_total))
        },
        total: dollars(&priced.totals.grand_total),
        gst: dollars(&priced.totals.tax_total),
    });
    page.panel = panel::explain_all(&promotions, Some(&priced.promotions));
    Ok(page)
}

/// `GET /s/{store}/cart`.
pub async fn page(
    State(app): Shared,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let page = cart_page(&store, &headers, &notice).await;
    store.pages.render(page)
}

/// A quantity from a form: a whole number from 0 to [`MAX_QUANTITY`].
fn quantity(field: &str) -> Option<u32> {
    field
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|q| *q <= MAX_QUANTITY)
}

#[derive(Deserialize)]
pub struct AddForm {
    sku: String,
    quantity: String,
    /// The store page to come back to.
    #[serde(default)]
    back: Option<String>,
}

/// `back` when it is one of this store's pages, else the store's home.
fn back_to(store: &StorePages<'_>, back: Option<&str>) -> String {
    let home = store.path("");
    match back {
        Some(back) if back == home || back.starts_with(&format!("{home}?")) => back.to_owned(),
        _ => home,
    }
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let pair = serde_urlencoded::to_string([(key, value)]).unwrap_or_default();
    format!("{url}{separator}{pair}")
}

/// `POST /s/{store}/cart/lines`: adds `quantity` of `sku` to the cart (to
/// what it already holds), then back to the page the buyer was on.
pub async fn add(
    State(app): Shared,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let back = back_to(&store, form.back.as_deref());
    let Ok(sku) = Sku::parse(&form.sku) else {
        return bad_request(store.pages, "There is no such product.");
    };
    let Some(adding) = quantity(&form.quantity).filter(|q| *q > 0) else {
        return see_other(&with_param(&back, "refused", "quantity"));
    };
    let (cart, cookie) = match store.cart_or_new(&headers).await {
        Ok(found) => found,
        Err(error) => return store.pages.error(&error),
    };
    let held = cart.line(&sku).map_or(0, |line| line.quantity.get());
    let Some(wanted) = held.checked_add(adding).filter(|q| *q <= MAX_QUANTITY) else {
        return see_other(&with_param(&back, "refused", "quantity"));
    };
    let done = async {
        let wanted = Quantity::new(wanted).map_err(|e| PageError::bad_form(e.to_string()))?;
        match store.shop.set_line(cart.id, &sku, wanted).await {
            // The page names the product from the SKU: no text of the
            // request is shown back.
            Ok(_) => Ok(with_param(
                &with_param(&back, "added", sku.as_str()),
                "units",
                &adding.to_string(),
            )),
            Err(EngineError::InsufficientStock { .. }) => Ok(with_param(&back, "refused", "stock")),
            Err(e) => Err(e.into()),
        }
    };
    let response = store.pages.redirect(done.await);
    match cookie {
        Some(cookie) => ([cookie], response).into_response(),
        None => response,
    }
}

#[derive(Deserialize)]
pub struct QuantityForm {
    sku: String,
    quantity: String,
}

/// `POST /s/{store}/cart/quantity`: sets a line's quantity (0 removes it).
pub async fn set_quantity(
    State(app): Shared,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<QuantityForm>,
) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let cart_page = store.path("/cart");
    let Ok(sku) = Sku::parse(&form.sku) else {
        return bad_request(store.pages, "There is no such product.");
    };
    let Some(units) = quantity(&form.quantity) else {
        return see_other(&format!("{cart_page}?refused=quantity"));
    };
    let done = async {
        let Some(cart) = store.open_cart(&headers).await? else {
            return Ok(cart_page.clone());
        };
        let units = Quantity::new(units).map_err(|e| PageError::bad_form(e.to_string()))?;
        match store.shop.set_line(cart.id, &sku, units).await {
            Ok(_) => Ok(cart_page.clone()),
            Err(EngineError::InsufficientStock { .. }) => Ok(format!("{cart_page}?refused=stock")),
            Err(e) => Err(e.into()),
        }
    };
    store.pages.redirect(done.await)
}

/// `POST /s/{store}/cart/renew`: holds every line again.
pub async fn renew(State(app): Shared, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let cart_page = store.path("/cart");
    let done = async {
        let Some(cart) = store.open_cart(&headers).await? else {
            return Ok(cart_page.clone());
        };
        match store.shop.renew_reservations(cart.id).await {
            Ok(_) => Ok(format!("{cart_page}?notice=renewed")),
            Err(EngineError::InsufficientStock { .. }) => Ok(format!("{cart_page}?refused=gone")),
            Err(e) => Err(e.into()),
        }
    };
    store.pages.redirect(done.await)
}

#[derive(Deserialize)]
pub struct AgeForm {
    #[serde(default)]
    adult: Option<String>,
}

/// How the buyer's age is recorded on the cart: their own statement,
/// checked against photo ID by staff at pickup.
pub const AGE_METHOD: &str = "self-attested online; photo ID checked at pickup";
/// Who recorded it.
pub const AGE_VERIFIED_BY: &str = "buyer";

/// `POST /s/{store}/cart/age`: the buyer states they are 18 or over; the
/// engine records it on the cart ([`commerce_core::Shop::record_age_verification`]),
/// without which checkout refuses liquor.
pub async fn attest_age(
    State(app): Shared,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AgeForm>,
) -> Response {
    let Some(store) = app.store(&slug) else {
        return app.unknown_store();
    };
    let checkout = store.path("/checkout");
    let done = async {
        if form.adult.as_deref() != Some("yes") {
            return Ok(format!("{checkout}?refused=age_unticked"));
        }
        let Some(cart) = store.open_cart(&headers).await? else {
            return Ok(store.path("/cart"));
        };
        store
            .shop
            .record_age_verification(cart.id, AGE_METHOD, AGE_VERIFIED_BY)
            .await?;
        Ok(format!("{checkout}?notice=age"))
    };
    store.pages.redirect(done.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_field_ids() {
        assert_eq!(quantity("3"), Some(3));
        assert_eq!(quantity(" 0 "), Some(0));
        assert_eq!(quantity("100"), None);
        assert_eq!(quantity("-1"), None);
        assert_eq!(quantity("two"), None);
        assert_eq!(field_id("WINE-SHIRAZ/2019"), "qty-WINE-SHIRAZ-2019");
        assert_eq!(
            with_param("/s/a", "added", "WINE/2019 A&B"),
            "/s/a?added=WINE%2F2019+A%26B"
        );
        assert_eq!(
            with_param("/s/a?q=wine", "refused", "stock"),
            "/s/a?q=wine&refused=stock"
        );
    }
}
