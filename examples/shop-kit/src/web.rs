//! The pages' plumbing: the chrome every page is drawn in, cookies, signed
//! values (the admin session, CSRF tokens), redirects after a form post,
//! error pages that say in words why a request was refused, the security
//! headers and the static assets.

use std::fmt;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use commerce_core::{Error as EngineError, Money, OrderEvent, OrderStatus, Timestamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The shop's name, in the header and the title.
    pub shop: String,
    /// Where the shop's name links to (its home page).
    pub home: String,
    /// The header's links: `(href, label)`.
    pub nav: Vec<(String, String)>,
    /// The engine's time when its clock is manual, with the link to move it.
    pub manual_clock: Option<String>,
}

impl Chrome {
    /// Chrome for `shop` with its home at `home` and no links yet.
    pub fn new(shop: impl Into<String>, home: impl Into<String>) -> Self {
        Self {
            shop: shop.into(),
            home: home.into(),
            nav: Vec::new(),
            manual_clock: None,
        }
    }

    /// The same chrome with one more header link.
    pub fn link(mut self, href: impl Into<String>, label: impl Into<String>) -> Self {
        self.nav.push((href.into(), label.into()));
        self
    }
}

/// A page could not be shown: the status and the words the buyer reads.
#[derive(Debug)]
pub struct PageError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The page's heading.
    pub title: String,
    /// What happened and what to do, in words.
    pub message: String,
}

impl PageError {
    /// A page of `status` with `title` and `message`.
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    /// 404: nothing here.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("There is no such {what} here."),
        )
    }

    /// 403: the form's CSRF token is missing or wrong.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back, reload the page and send the form again.",
        )
    }

    /// 400: the form is not one this page sends.
    pub fn bad_form(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Something in the form is wrong",
            message,
        )
    }

    /// 500 for a failure the buyer can do nothing about (logged).
    pub fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, "page failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side",
            "Please try again in a moment.",
        )
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl From<EngineError> for PageError {
    fn from(error: EngineError) -> Self {
        use EngineError as E;
        let (status, title, message) = match &error {
            E::NotFound { entity, .. } => (
                StatusCode::NOT_FOUND,
                "Not found".to_owned(),
                format!("There is no such {entity} here."),
            ),
            E::InsufficientStock { available, .. } => (
                StatusCode::CONFLICT,
                "Just taken".to_owned(),
                format!(
                    "Another buyer holds it now: {available} available. A hold that is not \
                     paid for lapses, and the item comes back."
                ),
            ),
            E::ReservationLapsed { .. } => (
                StatusCode::CONFLICT,
                "Your hold lapsed".to_owned(),
                "Your hold on an item in your cart lapsed. Renew it from the cart if it is \
                 still free."
                    .to_owned(),
            ),
            E::CartCheckedOut { .. } => (
                StatusCode::CONFLICT,
                "Already ordered".to_owned(),
                "This cart has been checked out already.".to_owned(),
            ),
            E::EmptyCart(_) => (
                StatusCode::CONFLICT,
                "Your cart is empty".to_owned(),
                "Add something before checking out.".to_owned(),
            ),
            E::PriceChanged { .. } => (
                StatusCode::CONFLICT,
                "The price changed".to_owned(),
                "A price changed since you saw the total. Review the new total.".to_owned(),
            ),
            E::AgeVerificationRequired { .. } => (
                StatusCode::CONFLICT,
                "Age check needed".to_owned(),
                "Your cart holds items sold only to adults: confirm your age first.".to_owned(),
            ),
            E::NotAcceptingOrders => (
                StatusCode::CONFLICT,
                "Not taking orders right now".to_owned(),
                "The shop is paused and places no new orders for now. Your cart and its holds \
                 are kept; try again later."
                    .to_owned(),
            ),
            E::CartLimit { .. }
            | E::CartAttribute(_)
            | E::InvalidText { .. }
            | E::Parse(_)
            | E::InvalidConfig(_)
            | E::InvalidPromotion(_)
            | E::InvalidProduct(_)
            | E::Money(_)
            | E::Refund(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "That cannot be done".to_owned(),
                error.to_string(),
            ),
            E::InvalidTransition { .. }
            | E::PaymentWindowOpen { .. }
            | E::StockBelowHeld { .. }
            | E::StockOverflow { .. }
            | E::SkuTaken { .. } => (
                StatusCode::CONFLICT,
                "That cannot be done now".to_owned(),
                error.to_string(),
            ),
            _ => return Self::internal(&error),
        };
        Self::new(status, title, message)
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        Self::internal(&error)
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    error: &'a PageError,
}

/// Renders errors in the shop's chrome.
#[derive(Debug, Clone)]
pub struct Pages {
    chrome: Arc<Chrome>,
}

impl Pages {
    /// Error pages drawn in `chrome`.
    pub fn new(chrome: Chrome) -> Self {
        Self {
            chrome: Arc::new(chrome),
        }
    }

    /// The chrome.
    pub fn chrome(&self) -> &Chrome {
        &self.chrome
    }

    /// `error` as a page.
    pub fn error(&self, error: &PageError) -> Response {
        let page = ErrorPage {
            chrome: &self.chrome,
            error,
        };
        match page.render() {
            Ok(body) => (error.status, no_store(), Html(body)).into_response(),
            Err(_) => (error.status, error.message.clone()).into_response(),
        }
    }

    /// `page` rendered, or the error page.
    pub fn render(&self, page: Result<impl Template, PageError>) -> Response {
        match page.and_then(|page| page.render().map_err(PageError::from)) {
            Ok(body) => (no_store(), Html(body)).into_response(),
            Err(error) => self.error(&error),
        }
    }

    /// A redirect, or the error page.
    pub fn redirect(&self, to: Result<String, PageError>) -> Response {
        match to {
            Ok(to) => see_other(&to),
            Err(error) => self.error(&error),
        }
    }
}

/// `Cache-Control: no-store`: pages show holds, prices and orders as they
/// are now.
fn no_store() -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// 303 See Other to `to`: the answer to every form post.
pub fn see_other(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` header for an HttpOnly, `SameSite=Lax` cookie on the
/// whole site; `max_age` 0 deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_seconds: u64,
) -> (axum::http::HeaderName, HeaderValue) {
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}");
    (
        SET_COOKIE,
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("")),
    )
}

/// Signs and checks values with a key made when the process starts: an
/// admin session and the CSRF tokens tied to it last as long as the
/// process.
#[derive(Clone)]
pub struct Signer {
    key: Arc<[u8]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Default for Signer {
    fn default() -> Self {
        Self::random()
    }
}

impl Signer {
    /// A signer with a fresh random key (from the operating system's
    /// generator, through `uuid`'s v4).
    pub fn random() -> Self {
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            key: Arc::from(key),
        }
    }

    fn mac(&self, purpose: &str, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `value.signature`, for `purpose`.
    pub fn sign(&self, purpose: &str, value: &str) -> String {
        format!("{value}.{}", self.mac(purpose, value))
    }

    /// The value of a [`sign`](Self::sign)ed string, if its signature for
    /// `purpose` holds.
    pub fn verify<'a>(&self, purpose: &str, signed: &'a str) -> Option<&'a str> {
        let (value, signature) = signed.rsplit_once('.')?;
        let expected = self.mac(purpose, value);
        let matches = expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        matches.then_some(value)
    }

    /// The CSRF token of a session: forms carry it in a hidden field.
    pub fn csrf_token(&self, session: &str) -> String {
        self.mac("csrf", session)
    }

    /// Whether `token` is the CSRF token of `session`.
    pub fn check_csrf(&self, session: &str, token: &str) -> bool {
        self.verify("csrf", &format!("{session}.{token}")).is_some()
    }
}

/// Adds the pages' security headers: a `Content-Security-Policy` that
/// allows the shop's own scripts and styles only, `Referrer-Policy:
/// same-origin` (capability URLs such as a cart's stay on the site),
/// `X-Content-Type-Options: nosniff` and no framing.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self' https://checkout.stripe.com",
        ),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

const CSS: &str = include_str!("../static/shop.css");
const LIVE_JS: &str = include_str!("../static/live.js");

/// `/assets/shop.css` and `/assets/live.js`: the style sheet and the small
/// script that keeps countdowns, badges and order statuses live.
pub fn assets<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/assets/shop.css",
            get(|| async { ([(CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }),
        )
        .route(
            "/assets/live.js",
            get(|| async { ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], LIVE_JS) }),
        )
}

/// `12.50 AUD` style amounts, for pages.
pub fn money(amount: &Money) -> String {
    amount.to_string()
}

/// `14:05 UTC`.
pub fn clock_time(at: Timestamp) -> String {
    at.format("%H:%M UTC").to_string()
}

/// Every order status with the words `label` gives it, as the JSON object
/// an order page hands `live.js` (`data-labels`), so a status that arrives
/// by SSE is shown in the shop's words.
pub fn status_labels_json(label: fn(OrderStatus) -> &'static str) -> String {
    let labels: serde_json::Map<String, serde_json::Value> = OrderStatus::ALL
        .iter()
        .map(|status| (status.as_str().to_owned(), label(*status).into()))
        .collect();
    serde_json::Value::Object(labels).to_string()
}

/// A line of an order's log on a buyer's order page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// The event's position in the order's log.
    pub seq: u32,
    /// `14:05 UTC: payment received (Paid)`.
    pub text: String,
}

impl LogRow {
    /// `event` in words: when, what (its kind), and the status it led to
    /// in `label`'s words.
    pub fn of(event: &OrderEvent, label: fn(OrderStatus) -> &'static str) -> Self {
        let kind = serde_json::to_value(&event.kind)
            .ok()
            .and_then(|k| {
                k.get("type")
                    .and_then(|t| t.as_str())
                    .map(|t| t.replace('_', " "))
            })
            .unwrap_or_else(|| "event".to_owned());
        Self {
            seq: event.seq,
            text: format!("{}: {kind} ({})", clock_time(event.at), label(event.to)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_hold_only_for_their_purpose_and_value() {
        let signer = Signer::random();
        let signed = signer.sign("admin", "1767258000");
        assert_eq!(signer.verify("admin", &signed), Some("1767258000"));
        assert_eq!(signer.verify("other", &signed), None);
        assert_eq!(signer.verify("admin", &signed.replace("176", "177")), None);
        assert_eq!(Signer::random().verify("admin", &signed), None);
        assert_eq!(signer.verify("admin", "no-signature"), None);
        let token = signer.csrf_token("session-1");
        assert!(signer.check_csrf("session-1", &token));
        assert!(!signer.check_csrf("session-2", &token));
        assert!(!signer.check_csrf("session-1", ""));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; cart=abc; b=2"));
        headers.append(COOKIE, HeaderValue::from_static("admin=x.y"));
        assert_eq!(cookie(&headers, "cart"), Some("abc"));
        assert_eq!(cookie(&headers, "admin"), Some("x.y"));
        assert_eq!(cookie(&headers, "car"), None);
    }
}
