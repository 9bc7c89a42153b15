//! The admin pages every example shop nests at `/admin`: log in with an
//! argon2-hashed password, then products and variants, stock receipts and
//! counts with their history, promotions, settings (tax, shipping, whether
//! the shop accepts orders, the shop's own switches), orders with their
//! audit log (cancel, fulfil, refund) and the admin API's keys (create,
//! rotate, revoke).
//!
//! An account belongs to one tenant: its pages read and change that
//! tenant's shop only, so a store's staff see their own store's orders and
//! nothing else (on PostgreSQL, row-level security holds the same line).
//! Every form that changes something carries a CSRF token tied to the
//! session; the session cookie is `HttpOnly` and `SameSite=Strict` and
//! signed with a key made when the process starts.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use commerce_core::{
    AdjustmentKind, ApiKeyRecord, ApiScope, Category, Commerce, Currency, Money, NewProduct, Order,
    OrderCursor, OrderEvent, OrderEventKind, OrderFilter, OrderId, OrderStatus, Product, ProductId,
    PromotionId, PromotionSpec, Quantity, RefundId, RefundRequest, Shop, ShopSettings, Sku,
    StockAdjustment, TaxCategory, TaxConfig, TenantId, Timestamp, Variant,
};
use serde::Deserialize;

use crate::web::{Chrome, PageError, Pages, Signer, clock_time, cookie, see_other};

/// The session cookie's name.
const SESSION_COOKIE: &str = "shop_admin";
/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Rows per page of the product and order lists.
const PAGE_SIZE: u32 = 50;

/// A password could not be hashed, or an account's name is not one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Names are 1 to 32 lowercase ASCII letters, digits or `-`.
    #[error("an admin name is 1 to 32 lowercase letters, digits or '-', not {0:?}")]
    Name(String),
    /// A password shorter than 12 characters.
    #[error("an admin password has at least 12 characters")]
    WeakPassword,
    /// argon2 refused (it does not, for the default parameters).
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Someone who can log in to the admin pages of one tenant.
#[derive(Clone)]
pub struct Account {
    name: String,
    tenant: TenantId,
    /// The argon2 hash, in the PHC string format.
    hash: String,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// An account `name` of `tenant` whose password is `password` (hashed
    /// here with argon2id and a random salt; the password is not kept).
    pub fn new(name: &str, tenant: TenantId, password: &str) -> Result<Self, AccountError> {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(AccountError::Name(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            tenant,
            hash: hash_password(password)?,
        })
    }

    /// The name it logs in with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant whose shop it administers.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// `password` hashed with argon2id (the crate's default parameters) and a
/// random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < 12 {
        return Err(AccountError::WeakPassword);
    }
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` is the one `hash` (a PHC string) was made from.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random password of 20 letters and digits, for a shop started without
/// one.
pub fn generate_password() -> String {
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|id| id.into_bytes())
        .collect();
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    bytes
        .iter()
        .take(20)
        .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
        .map(|c| char::from(*c))
        .collect()
}

/// The environment variable that sets the admin password.
pub const ADMIN_PASSWORD_VAR: &str = "SHOP_ADMIN_PASSWORD";

/// The admin password: [`ADMIN_PASSWORD_VAR`] when it is set, else a
/// generated one; with how the shop's start-up output should name it
/// (`"password …"` for a generated one, which is printed only there).
pub fn password_from_env() -> (String, String) {
    match std::env::var(ADMIN_PASSWORD_VAR) {
        Ok(password) if !password.is_empty() => {
            (password, format!("the password in {ADMIN_PASSWORD_VAR}"))
        }
        _ => {
            let password = generate_password();
            let note = format!("password {password}");
            (password, note)
        }
    }
}

/// The value of `name` among a form's fields (forms whose fields are not
/// known in advance: switches, scopes).
fn form_field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// One of the shop's own feature switches, shown on the settings page.
#[derive(Debug, Clone)]
pub struct Switch {
    /// The name it is stored under in [`ShopSettings::switches`].
    pub name: &'static str,
    /// What the settings page calls it.
    pub label: &'static str,
    /// Its value until the shop sets it.
    pub default: bool,
}

/// The admin pages' state.
pub struct Admin {
    commerce: Commerce,
    accounts: Vec<Account>,
    signer: Signer,
    pages: Pages,
    currency: Currency,
    switches: Vec<Switch>,
    dummy_hash: String,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Admin pages for `accounts` of the shops of `commerce`, priced in
    /// `currency`, drawn in chrome named after `shop` with a link back to
    /// the storefront at `storefront`.
    pub fn new(
        commerce: Commerce,
        accounts: Vec<Account>,
        shop: &str,
        storefront: &str,
        currency: Currency,
    ) -> Result<Self, AccountError> {
        let chrome = Chrome::new(format!("{shop} admin"), "/admin")
            .link("/admin/orders", "Orders")
            .link("/admin/products", "Products")
            .link("/admin/promotions", "Promotions")
            .link("/admin/settings", "Settings")
            .link("/admin/keys", "API keys")
            .link(storefront, "Storefront");
        Ok(Self {
            commerce,
            accounts,
            signer: Signer::random(),
            pages: Pages::new(chrome),
            currency,
            switches: Vec::new(),
            // Unknown names are checked against this, so a wrong name takes
            // as long as a wrong password.
            dummy_hash: hash_password(&generate_password())?,
        })
    }

    /// The same pages with the shop's own switches on the settings page.
    pub fn with_switches(mut self, switches: Vec<Switch>) -> Self {
        self.switches = switches;
        self
    }

    /// The session of this request, if it carries a valid one.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let raw = cookie(headers, SESSION_COOKIE)?;
        let value = self.signer.verify("admin-session", raw)?;
        let mut parts = value.split(':');
        let (name, expires, _nonce) = (parts.next()?, parts.next()?, parts.next()?);
        let expires: i64 = expires.parse().ok()?;
        if expires <= chrono::Utc::now().timestamp() {
            return None;
        }
        let account = self.accounts.iter().find(|a| a.name == name)?;
        Some(Session {
            name: account.name.clone(),
            shop: self.commerce.shop(&account.tenant),
            csrf: self.signer.csrf_token(raw),
            raw: raw.to_owned(),
        })
    }

    /// The session, and that `token` is its CSRF token.
    fn checked(&self, headers: &HeaderMap, token: &str) -> Result<Session, Box<Response>> {
        let Some(session) = self.session(headers) else {
            return Err(Box::new(see_other("/admin/login")));
        };
        if !self.signer.check_csrf(&session.raw, token) {
            return Err(Box::new(self.pages.error(&PageError::new(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not made for this session. Go back, reload the page and try again.",
            ))));
        }
        Ok(session)
    }

    fn chrome(&self) -> Chrome {
        self.pages.chrome().clone()
    }

    fn parse_money(&self, text: &str) -> Result<Money, PageError> {
        Money::from_decimal_str(text.trim(), self.currency)
            .map_err(|e| PageError::bad_form(format!("{text:?} is not an amount: {e}")))
    }
}

/// Who is signed in to the admin pages, as a shop's own staff pages see
/// it ([`Admin::signed_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The account's name.
    pub name: String,
    /// The tenant whose shop the account administers: a staff page of
    /// another tenant refuses it.
    pub tenant: TenantId,
    /// The CSRF token the session's forms carry (in a `csrf` field);
    /// [`Admin::check_csrf`] checks it.
    pub csrf: String,
}

impl Admin {
    /// The account signed in on this request, if its session is valid:
    /// for a shop's own staff pages beside the admin pages, which check
    /// [`SignedIn::tenant`] and put [`SignedIn::csrf`] in their forms.
    pub fn signed_in(&self, headers: &HeaderMap) -> Option<SignedIn> {
        let session = self.session(headers)?;
        Some(SignedIn {
            name: session.name,
            tenant: session.shop.tenant().clone(),
            csrf: session.csrf,
        })
    }

    /// Whether the request carries a valid session and `token` is its CSRF
    /// token.
    pub fn check_csrf(&self, headers: &HeaderMap, token: &str) -> bool {
        self.checked(headers, token).is_ok()
    }
}

/// A logged-in admin.
struct Session {
    name: String,
    shop: Shop,
    csrf: String,
    raw: String,
}

type Shared = State<Arc<Admin>>;

/// The admin pages, to merge into the shop's router (they live under
/// `/admin`).
pub fn routes(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/orders", get(orders))
        .route("/admin/orders/{id}", get(order))
        .route("/admin/orders/{id}/cancel", post(cancel))
        .route("/admin/orders/{id}/fulfil", post(fulfil))
        .route("/admin/orders/{id}/refund", post(refund))
        .route("/admin/products", get(products).post(create_product))
        .route("/admin/products/new", get(new_product))
        .route("/admin/products/{id}", get(product).post(save_product))
        .route("/admin/products/{id}/stock", post(stock))
        .route("/admin/promotions", get(promotions).post(save_promotion))
        .route("/admin/promotions/remove", post(remove_promotion))
        .route("/admin/settings", get(settings).post(save_settings))
        .route("/admin/keys", get(keys).post(create_key))
        .route("/admin/keys/{id}/rotate", post(rotate_key))
        .route("/admin/keys/{id}/revoke", post(revoke_key))
        .with_state(admin)
}

/// Runs `page` for a logged-in admin, or sends them to the login page.
macro_rules! logged_in {
    ($admin:expr, $headers:expr) => {
        match $admin.session(&$headers) {
            Some(session) => session,
            None => return see_other("/admin/login"),
        }
    };
}

/// Checks the session and the form's CSRF token, or answers the refusal.
macro_rules! checked {
    ($admin:expr, $headers:expr, $token:expr) => {
        match $admin.checked(&$headers, $token) {
            Ok(session) => session,
            Err(response) => return *response,
        }
    };
}

// ----- login --------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    chrome: Chrome,
    failed: bool,
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    failed: Option<String>,
}

async fn login_page(State(admin): Shared, Query(query): Query<LoginQuery>) -> Response {
    admin.pages.render(Ok(LoginPage {
        chrome: admin.chrome(),
        failed: query.failed.is_some(),
    }))
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(State(admin): Shared, Form(form): Form<LoginForm>) -> Response {
    let name = form.name.trim().to_ascii_lowercase();
    let account = admin.accounts.iter().find(|a| a.name == name);
    let hash = account.map_or(admin.dummy_hash.as_str(), |a| a.hash.as_str());
    let password = form.password;
    let hash = hash.to_owned();
    // argon2 is deliberately slow: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    match account {
        Some(account) if verified => {
            let ttl = i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX);
            let expires = chrono::Utc::now().timestamp().saturating_add(ttl);
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let value = admin.signer.sign(
                "admin-session",
                &format!("{}:{expires}:{nonce}", account.name),
            );
            let mut response = see_other("/admin");
            if let Ok(header) = HeaderValue::from_str(&format!(
                "{SESSION_COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
                SESSION_TTL.as_secs()
            )) {
                response.headers_mut().insert(SET_COOKIE, header);
            }
            response
        }
        _ => see_other("/admin/login?failed=1"),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(admin): Shared, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let _session = checked!(admin, headers, &form.csrf);
    let mut response = see_other("/admin/login");
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("shop_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

// ----- dashboard and orders -----------------------------------------------

/// An order as a row of a list.
struct OrderRow {
    id: String,
    placed: String,
    status: &'static str,
    total: String,
    lines: String,
}

impl OrderRow {
    fn of(order: &Order) -> Self {
        Self {
            id: order.id.to_string(),
            placed: order.placed_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            status: status_label(order.status()),
            total: order.total().to_string(),
            lines: order
                .lines
                .iter()
                .map(|l| format!("{} × {}", l.quantity, l.name))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// An order's status in a merchant's words.
pub fn status_label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::AwaitingPayment => "Awaiting payment",
        OrderStatus::Paid => "Paid",
        OrderStatus::Fulfilled => "Fulfilled",
        OrderStatus::Cancelled => "Cancelled",
        OrderStatus::Expired => "Expired",
        OrderStatus::Refunded => "Refunded",
        OrderStatus::OversoldRefunded => "Oversold, refunded",
        _ => "Other",
    }
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    name: String,
    tenant: String,
    csrf: String,
    recent: Vec<OrderRow>,
    accepting: bool,
}

async fn dashboard(State(admin): Shared, headers: HeaderMap) -> Response {
    let session = logged_in!(admin, headers);
    let page = async {
        let recent = session
            .shop
            .orders(&OrderFilter::default(), None, 10)
            .await?
            .orders
            .iter()
            .map(OrderRow::of)
            .collect();
        let accepting = session.shop.settings().await?.accepting_orders;
        Ok(DashboardPage {
            chrome: admin.chrome(),
            tenant: session.shop.tenant().to_string(),
            name: session.name,
            csrf: session.csrf,
            recent,
            accepting,
        })
    };
    admin.pages.render(page.await)
}

#[derive(Template)]
#[template(path = "admin/orders.html")]
struct OrdersPage {
    chrome: Chrome,
    rows: Vec<OrderRow>,
    statuses: Vec<(&'static str, &'static str, bool)>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct OrdersQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

async fn orders(
    State(admin): Shared,
    headers: HeaderMap,
    Query(query): Query<OrdersQuery>,
) -> Response {
    let session = logged_in!(admin, headers);
    let page = async {
        let status = query
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                OrderStatus::ALL
                    .into_iter()
                    .find(|known| known.as_str() == s)
                    .ok_or_else(|| PageError::bad_form(format!("no order status {s:?}")))
            })
            .transpose()?;
        let filter = OrderFilter {
            status,
            ..OrderFilter::default()
        };
        let after = query
            .after
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| decode_cursor(s).ok_or_else(|| PageError::bad_form("not a page of orders")))
            .transpose()?;
        let page = session
            .shop
            .orders(&filter, after.as_ref(), PAGE_SIZE as usize)
            .await?;
        let status_param = status.map_or(String::new(), |s| s.as_str().to_owned());
        Ok(OrdersPage {
            chrome: admin.chrome(),
            rows: page.orders.iter().map(OrderRow::of).collect(),
            statuses: OrderStatus::ALL
                .into_iter()
                .map(|s| (s.as_str(), status_label(s), Some(s) == status))
                .collect(),
            next: page.next.map(|cursor| {
                format!(
                    "/admin/orders?status={status_param}&after={}",
                    encode_cursor(&cursor)
                )
            }),
        })
    };
    admin.pages.render(page.await)
}

/// A page of orders as a link: `{microseconds since the epoch}.{id}`.
fn encode_cursor(cursor: &OrderCursor) -> String {
    format!("{}.{}", cursor.placed_at.timestamp_micros(), cursor.id)
}

fn decode_cursor(text: &str) -> Option<OrderCursor> {
    let (micros, id) = text.split_once('.')?;
    let placed_at = Timestamp::from_timestamp_micros(micros.parse().ok()?)?;
    Some(OrderCursor {
        placed_at,
        id: id.parse().ok()?,
    })
}

/// `12.50` for AUD 12.50: an amount as the forms take it back.
pub fn decimal(amount: Money) -> String {
    let exponent = amount.currency().exponent();
    let minor = amount.minor();
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    let Some(scale) = 10_u64.checked_pow(exponent).filter(|s| *s > 1) else {
        return format!("{sign}{magnitude}");
    };
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = exponent as usize
    )
}

/// A line of an order's audit log.
struct LogRow {
    seq: u32,
    at: String,
    from: &'static str,
    to: &'static str,
    what: String,
}

impl LogRow {
    fn of(event: &OrderEvent) -> Self {
        Self {
            seq: event.seq,
            at: event.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            from: status_label(event.from),
            to: status_label(event.to),
            what: describe(&event.kind),
        }
    }
}

/// An order event in words.
pub fn describe(kind: &OrderEventKind) -> String {
    match kind {
        OrderEventKind::Placed { total } => format!("placed, {total} due"),
        OrderEventKind::PaymentSessionCreated { session } => {
            format!("payment session {session} created")
        }
        OrderEventKind::PaymentReceived { event, amount } => {
            format!("payment of {amount} received (event {event})")
        }
        OrderEventKind::DuplicatePaymentEvent { event } => {
            format!("payment event {event} arrived again; nothing changed")
        }
        OrderEventKind::PaymentMismatch {
            event,
            expected,
            received,
        } => format!("payment {event} of {received} does not match {expected}: review it"),
        OrderEventKind::PaymentFailed { event, reason } => {
            format!("payment {event} failed: {reason}")
        }
        OrderEventKind::PaymentEventIgnored { event, reason } => {
            format!("payment event {event} needed no action: {reason}")
        }
        OrderEventKind::Oversold { short, refund, .. } => format!(
            "paid after its hold lapsed and {} sold elsewhere: refunded ({refund})",
            short
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        OrderEventKind::PaymentAfterCancellation { refund, .. } => {
            format!("paid after it was cancelled: refunded ({refund})")
        }
        OrderEventKind::Expired { .. } => "the payment window closed unpaid".to_owned(),
        OrderEventKind::Cancelled { reason } => format!("cancelled: {reason}"),
        OrderEventKind::Fulfilled { note: None } => "fulfilled".to_owned(),
        OrderEventKind::Fulfilled { note: Some(note) } => format!("fulfilled: {note}"),
        OrderEventKind::RefundRequested { refund, amount, .. } => {
            format!("refund {refund} of {amount} requested")
        }
        OrderEventKind::RefundSucceeded {
            refund,
            provider_ref,
        } => format!("refund {refund} confirmed ({provider_ref})"),
        OrderEventKind::RefundFailed {
            refund, message, ..
        } => format!("refund {refund} failed, to retry: {message}"),
        OrderEventKind::RefundedByProvider { amount, .. } => {
            format!("{amount} refunded at the payment provider")
        }
        _ => "updated".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "admin/order.html")]
struct OrderPage {
    chrome: Chrome,
    csrf: String,
    order: Order,
    status: &'static str,
    attributes: Vec<(String, String)>,
    log: Vec<LogRow>,
    refunds: Vec<(String, String, &'static str)>,
    can_cancel: bool,
    can_fulfil: bool,
    can_refund: bool,
    refund_id: String,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

async fn order(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let session = logged_in!(admin, headers);
    let page = async {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        let order = session.shop.order(id).await?;
        let log = session
            .shop
            .order_events(id)
            .await?
            .iter()
            .map(LogRow::of)
            .collect();
        let refunds = session
            .shop
            .order_refunds(id)
            .await?
            .iter()
            .map(|r| {
                (
                    r.id.to_string(),
                    r.amount.to_string(),
                    if r.is_pending() { "pending" } else { "done" },
                )
            })
            .collect();
        let status = order.status();
        Ok(OrderPage {
            chrome: admin.chrome(),
            csrf: session.csrf,
            status: status_label(status),
            attributes: order
                .attributes()
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            log,
            refunds,
            can_cancel: status == OrderStatus::AwaitingPayment || status == OrderStatus::Paid,
            can_fulfil: status == OrderStatus::Paid,
            can_refund: matches!(status, OrderStatus::Paid | OrderStatus::Fulfilled),
            refund_id: RefundId::new_random().to_string(),
            notice: query.notice.map(|n| match n.as_str() {
                "cancelled" => "The order was cancelled.".to_owned(),
                "fulfilled" => "The order was marked fulfilled.".to_owned(),
                "refunded" => "The refund was requested.".to_owned(),
                _ => String::new(),
            }),
            order,
        })
    };
    admin.pages.render(page.await)
}

#[derive(Deserialize)]
struct CancelForm {
    csrf: String,
    reason: String,
}

async fn cancel(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        let reason = form.reason.trim();
        let reason = if reason.is_empty() {
            "cancelled by the shop"
        } else {
            reason
        };
        session.shop.cancel_order(id, reason).await?;
        Ok(format!("/admin/orders/{id}?notice=cancelled"))
    };
    admin.pages.redirect(done.await)
}

async fn fulfil(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        session.shop.fulfil_order(id).await?;
        Ok(format!("/admin/orders/{id}?notice=fulfilled"))
    };
    admin.pages.redirect(done.await)
}

#[derive(Deserialize)]
struct RefundForm {
    csrf: String,
    /// The refund's id, made when the page was drawn: submitting the form
    /// twice asks for the same refund.
    refund_id: String,
    #[serde(default)]
    amount: String,
}

async fn refund(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RefundForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        let mut request = if form.amount.trim().is_empty() {
            RefundRequest::remaining()
        } else {
            RefundRequest::amount(admin.parse_money(&form.amount)?)
        };
        request.id = RefundId::parse(form.refund_id.trim())
            .map_err(|e| PageError::bad_form(e.to_string()))?;
        session.shop.refund(id, request).await?;
        Ok(format!("/admin/orders/{id}?notice=refunded"))
    };
    admin.pages.redirect(done.await)
}

// ----- products and stock -------------------------------------------------

/// A product as a row of the list.
struct ProductRow {
    id: String,
    name: String,
    published: bool,
    variants: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "admin/products.html")]
struct ProductsPage {
    chrome: Chrome,
    rows: Vec<ProductRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct AfterQuery {
    #[serde(default)]
    after: Option<String>,
}

async fn products(
    State(admin): Shared,
    headers: HeaderMap,
    Query(query): Query<AfterQuery>,
) -> Response {
    let session = logged_in!(admin, headers);
    let page = async {
        let after: Option<ProductId> = query
            .after
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| PageError::bad_form("not a page")))
            .transpose()?;
        let page = session.shop.admin_products(after, PAGE_SIZE).await?;
        let mut rows = Vec::with_capacity(page.products.len());
        for product in &page.products {
            let mut variants = Vec::new();
            for variant in product.variants() {
                let level = session.shop.stock(variant.sku()).await?;
                variants.push((
                    variant.sku().to_string(),
                    variant.price().to_string(),
                    format!(
                        "{} on hand, {} held, {} awaiting payment",
                        level.on_hand, level.reserved, level.allocated
                    ),
                ));
            }
            rows.push(ProductRow {
                id: product.id().to_string(),
                name: product.name().to_owned(),
                published: product.is_published(),
                variants,
            });
        }
        Ok(ProductsPage {
            chrome: admin.chrome(),
            rows,
            next: page.next.map(|id| format!("/admin/products?after={id}")),
        })
    };
    admin.pages.render(page.await)
}

/// The product form's fields, as text.
#[derive(Default)]
struct ProductFields {
    name: String,
    category: String,
    tax_category: String,
    age_restricted: bool,
    published: bool,
    variants: String,
}

impl ProductFields {
    fn of(product: &Product) -> Self {
        Self {
            name: product.name().to_owned(),
            category: product.category().to_string(),
            tax_category: product.tax_category().to_string(),
            age_restricted: product.age_restricted(),
            published: product.is_published(),
            variants: product
                .variants()
                .iter()
                .map(|v| {
                    let mut line = format!("{} | {}", v.sku(), decimal(v.price()));
                    if !v.options().is_empty() {
                        line.push_str(" | ");
                        line.push_str(
                            &v.options()
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        );
                    }
                    line
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// A variant's stock, with its history.
struct StockView {
    sku: String,
    on_hand: u32,
    reserved: u32,
    allocated: u32,
    history: Vec<AdjustmentRow>,
}

struct AdjustmentRow {
    at: String,
    kind: String,
    delta: i64,
    after: u32,
    note: String,
}

impl AdjustmentRow {
    fn of(adjustment: &StockAdjustment) -> Self {
        Self {
            at: adjustment.at.format("%Y-%m-%d %H:%M UTC").to_string(),
            kind: match &adjustment.kind {
                AdjustmentKind::Received => "received".to_owned(),
                AdjustmentKind::Corrected => "counted".to_owned(),
                AdjustmentKind::Sold { order } => format!("sold (order {order})"),
                _ => "adjusted".to_owned(),
            },
            delta: adjustment.delta,
            after: adjustment.on_hand_after,
            note: adjustment.note.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/product.html")]
struct ProductPage {
    chrome: Chrome,
    csrf: String,
    /// `None` for a new product.
    id: Option<String>,
    fields: ProductFields,
    stock: Vec<StockView>,
    notice: Option<&'static str>,
}

async fn new_product(State(admin): Shared, headers: HeaderMap) -> Response {
    let session = logged_in!(admin, headers);
    admin.pages.render(Ok(ProductPage {
        chrome: admin.chrome(),
        csrf: session.csrf,
        id: None,
        fields: ProductFields {
            tax_category: "standard".to_owned(),
            published: true,
            ..ProductFields::default()
        },
        stock: Vec::new(),
        notice: None,
    }))
}

async fn product(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let session = logged_in!(admin, headers);
    let page = async {
        let id: ProductId = id.parse().map_err(|_| PageError::not_found("product"))?;
        let product = session.shop.admin_product(id).await?;
        let mut stock = Vec::new();
        for variant in product.variants() {
            let level = session.shop.stock(variant.sku()).await?;
            let mut history: Vec<AdjustmentRow> = session
                .shop
                .stock_adjustments(variant.sku())
                .await?
                .iter()
                .map(AdjustmentRow::of)
                .collect();
            history.reverse();
            stock.push(StockView {
                sku: variant.sku().to_string(),
                on_hand: level.on_hand,
                reserved: level.reserved,
                allocated: level.allocated,
                history,
            });
        }
        Ok(ProductPage {
            chrome: admin.chrome(),
            csrf: session.csrf,
            id: Some(id.to_string()),
            fields: ProductFields::of(&product),
            stock,
            notice: match query.notice.as_deref() {
                Some("saved") => Some("Saved."),
                Some("stock") => Some("Stock updated."),
                _ => None,
            },
        })
    };
    admin.pages.render(page.await)
}

#[derive(Deserialize)]
struct ProductForm {
    csrf: String,
    name: String,
    category: String,
    tax_category: String,
    #[serde(default)]
    age_restricted: Option<String>,
    #[serde(default)]
    published: Option<String>,
    variants: String,
}

impl Admin {
    /// The product a form describes: variants one per line, `SKU | price`
    /// then optionally `| name=value, name=value`.
    fn product_of(&self, form: &ProductForm) -> Result<NewProduct, PageError> {
        let mut variants = Vec::new();
        for (number, line) in form.variants.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split('|').map(str::trim);
            let sku = parts.next().unwrap_or_default();
            let price = parts.next().ok_or_else(|| {
                PageError::bad_form(format!(
                    "variant line {}: write `SKU | price`, e.g. `TEE-M | 25.00`",
                    number + 1
                ))
            })?;
            let sku = Sku::parse(sku)
                .map_err(|e| PageError::bad_form(format!("variant line {}: {e}", number + 1)))?;
            let mut variant = Variant::new(sku, self.parse_money(price)?);
            if let Some(options) = parts.next() {
                for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                    let (name, value) = option.split_once('=').ok_or_else(|| {
                        PageError::bad_form(format!(
                            "variant line {}: options are `name=value`, not {option:?}",
                            number + 1
                        ))
                    })?;
                    variant = variant.with_option(name.trim(), value.trim());
                }
            }
            variants.push(variant);
        }
        Ok(NewProduct {
            name: form.name.trim().to_owned(),
            category: Category::parse(form.category.trim())
                .map_err(|e| PageError::bad_form(e.to_string()))?,
            tax_category: TaxCategory::parse(form.tax_category.trim())
                .map_err(|e| PageError::bad_form(e.to_string()))?,
            age_restricted: form.age_restricted.is_some(),
            variants,
            published: form.published.is_some(),
        })
    }
}

async fn create_product(
    State(admin): Shared,
    headers: HeaderMap,
    Form(form): Form<ProductForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let product = session.shop.add_product(admin.product_of(&form)?).await?;
        Ok(format!("/admin/products/{}?notice=saved", product.id()))
    };
    admin.pages.redirect(done.await)
}

async fn save_product(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ProductForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let id: ProductId = id.parse().map_err(|_| PageError::not_found("product"))?;
        session
            .shop
            .put_product(id, admin.product_of(&form)?)
            .await?;
        Ok(format!("/admin/products/{id}?notice=saved"))
    };
    admin.pages.redirect(done.await)
}

#[derive(Deserialize)]
struct StockForm {
    csrf: String,
    sku: String,
    /// `receive` (add units) or `count` (set what is on hand).
    action: String,
    quantity: u32,
    #[serde(default)]
    note: String,
}

async fn stock(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<StockForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let id: ProductId = id.parse().map_err(|_| PageError::not_found("product"))?;
        let sku = Sku::parse(&form.sku).map_err(|e| PageError::bad_form(e.to_string()))?;
        let quantity =
            Quantity::new(form.quantity).map_err(|e| PageError::bad_form(e.to_string()))?;
        let note = Some(form.note.trim().to_owned()).filter(|n| !n.is_empty());
        match form.action.as_str() {
            "receive" => session.shop.receive_stock(&sku, quantity, note).await?,
            "count" => session.shop.correct_stock(&sku, quantity, note).await?,
            other => return Err(PageError::bad_form(format!("no stock action {other:?}"))),
        };
        Ok(format!("/admin/products/{id}?notice=stock"))
    };
    admin.pages.redirect(done.await)
}

// ----- promotions ----------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/promotions.html")]
struct PromotionsPage {
    chrome: Chrome,
    csrf: String,
    rows: Vec<(String, String, String)>,
    draft: String,
}

const PROMOTION_EXAMPLE: &str = r#"{
  "id": "spend-100",
  "name": "Spend $100, save 10%",
  "conditions": [{ "type": "min_subtotal", "amount": { "minor": 10000, "currency": "AUD" } }],
  "action": { "type": "percent_off_order", "percent": "10" }
}"#;

async fn promotions(State(admin): Shared, headers: HeaderMap) -> Response {
    let session = logged_in!(admin, headers);
    let page = async {
        let rows = session
            .shop
            .promotions()
            .await?
            .iter()
            .map(|p| {
                let spec = p.spec();
                (
                    spec.id.to_string(),
                    spec.name.clone(),
                    serde_json::to_string_pretty(spec).unwrap_or_default(),
                )
            })
            .collect();
        Ok(PromotionsPage {
            chrome: admin.chrome(),
            csrf: session.csrf,
            rows,
            draft: PROMOTION_EXAMPLE.to_owned(),
        })
    };
    admin.pages.render(page.await)
}

#[derive(Deserialize)]
struct PromotionForm {
    csrf: String,
    spec: String,
}

async fn save_promotion(
    State(admin): Shared,
    headers: HeaderMap,
    Form(form): Form<PromotionForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let spec: PromotionSpec = serde_json::from_str(&form.spec)
            .map_err(|e| PageError::bad_form(format!("the promotion is not valid: {e}")))?;
        session.shop.put_promotion(spec).await?;
        Ok("/admin/promotions".to_owned())
    };
    admin.pages.redirect(done.await)
}

#[derive(Deserialize)]
struct RemovePromotionForm {
    csrf: String,
    id: String,
}

async fn remove_promotion(
    State(admin): Shared,
    headers: HeaderMap,
    Form(form): Form<RemovePromotionForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        let id = PromotionId::parse(&form.id).map_err(|e| PageError::bad_form(e.to_string()))?;
        session.shop.remove_promotion(&id).await?;
        Ok("/admin/promotions".to_owned())
    };
    admin.pages.redirect(done.await)
}

// ----- settings ------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    csrf: String,
    accepting: bool,
    shipping: String,
    switches: Vec<(&'static str, &'static str, bool)>,
    tax: String,
    notice: bool,
}

async fn settings(
    State(admin): Shared,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let session = logged_in!(admin, headers);
    let page = async {
        let settings = session.shop.settings().await?;
        Ok(SettingsPage {
            chrome: admin.chrome(),
            csrf: session.csrf,
            accepting: settings.accepting_orders,
            shipping: settings.shipping_fee.map(decimal).unwrap_or_default(),
            switches: admin
                .switches
                .iter()
                .map(|s| (s.name, s.label, settings.switch(s.name, s.default)))
                .collect(),
            tax: serde_json::to_string_pretty(&settings.tax).unwrap_or_default(),
            notice: query.notice.is_some(),
        })
    };
    admin.pages.render(page.await)
}

async fn save_settings(
    State(admin): Shared,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| form_field(&fields, name);
    let session = checked!(admin, headers, field("csrf").unwrap_or_default());
    let done = async {
        let mut settings: ShopSettings = session.shop.settings().await?;
        settings.accepting_orders = field("accepting_orders").is_some();
        for switch in &admin.switches {
            let on = field(&format!("switch.{}", switch.name)).is_some();
            settings.switches.insert(switch.name.to_owned(), on);
        }
        let shipping = field("shipping_fee").unwrap_or_default().trim();
        settings.shipping_fee = if shipping.is_empty() {
            None
        } else {
            Some(admin.parse_money(shipping)?)
        };
        let tax: TaxConfig = serde_json::from_str(field("tax").unwrap_or_default())
            .map_err(|e| PageError::bad_form(format!("the tax rules are not valid: {e}")))?;
        settings.tax = tax;
        session.shop.put_settings(settings).await?;
        Ok("/admin/settings?notice=saved".to_owned())
    };
    admin.pages.redirect(done.await)
}

// ----- API keys ------------------------------------------------------------

struct KeyRow {
    id: String,
    name: String,
    scopes: String,
    created: String,
    last_used: String,
    revoked: bool,
}

impl KeyRow {
    fn of(record: &ApiKeyRecord) -> Self {
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            scopes: record
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created: clock_time(record.created_at),
            last_used: record
                .last_used_at
                .map(clock_time)
                .unwrap_or_else(|| "never".to_owned()),
            revoked: record.revoked_at.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    chrome: Chrome,
    csrf: String,
    rows: Vec<KeyRow>,
    scopes: Vec<&'static str>,
    /// A key just issued: shown once, never stored in the clear.
    issued: Option<(String, String)>,
}

impl Admin {
    async fn keys_page(
        &self,
        session: Session,
        issued: Option<(String, String)>,
    ) -> Result<KeysPage, PageError> {
        let mut records = session.shop.api_keys().await?;
        records.sort_by_key(|record| std::cmp::Reverse(record.created_at));
        Ok(KeysPage {
            chrome: self.chrome(),
            csrf: session.csrf,
            rows: records.iter().map(KeyRow::of).collect(),
            scopes: ApiScope::ALL.iter().map(|s| s.as_str()).collect(),
            issued,
        })
    }
}

async fn keys(State(admin): Shared, headers: HeaderMap) -> Response {
    let session = logged_in!(admin, headers);
    let page = admin.keys_page(session, None).await;
    admin.pages.render(page)
}

async fn create_key(
    State(admin): Shared,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| form_field(&fields, name);
    let session = checked!(admin, headers, field("csrf").unwrap_or_default());
    let page = async {
        let scopes: BTreeSet<ApiScope> = fields
            .iter()
            .filter(|(key, _)| key == "scope")
            .map(|(_, value)| {
                ApiScope::ALL
                    .into_iter()
                    .find(|s| s.as_str() == value)
                    .ok_or_else(|| PageError::bad_form(format!("no scope {value:?}")))
            })
            .collect::<Result<_, _>>()?;
        if scopes.is_empty() {
            return Err(PageError::bad_form("choose at least one scope"));
        }
        let name = field("name").unwrap_or_default().trim();
        let issued = session.shop.issue_api_key(name, scopes).await?;
        admin
            .keys_page(session, Some((issued.record.name, issued.key)))
            .await
    };
    admin.pages.render(page.await)
}

async fn rotate_key(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let page = async {
        let old = session
            .shop
            .api_keys()
            .await?
            .into_iter()
            .find(|k| k.id == id && k.revoked_at.is_none())
            .ok_or_else(|| PageError::not_found("key"))?;
        let issued = session
            .shop
            .issue_api_key(&old.name, old.scopes.iter().copied())
            .await?;
        session.shop.revoke_api_key(&old.id).await?;
        admin
            .keys_page(session, Some((issued.record.name, issued.key)))
            .await
    };
    admin.pages.render(page.await)
}

async fn revoke_key(
    State(admin): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = checked!(admin, headers, &form.csrf);
    let done = async {
        session.shop.revoke_api_key(&id).await?;
        Ok("/admin/keys".to_owned())
    };
    admin.pages.redirect(done.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_own_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert!(matches!(
            hash_password("short"),
            Err(AccountError::WeakPassword)
        ));
    }

    #[test]
    fn account_names_are_slugs() {
        let tenant = TenantId::parse("shop").unwrap();
        assert!(Account::new("north-staff", tenant.clone(), "a long enough one").is_ok());
        for bad in ["", "Admin", "a b", "x".repeat(33).as_str()] {
            assert!(
                matches!(
                    Account::new(bad, tenant.clone(), "a long enough one"),
                    Err(AccountError::Name(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn amounts_go_back_into_the_form_as_decimals() {
        assert_eq!(decimal(Money::new(115_000, Currency::AUD)), "1150.00");
        assert_eq!(decimal(Money::new(-5, Currency::AUD)), "-0.05");
        assert_eq!(decimal(Money::new(1200, Currency::JPY)), "1200");
        for minor in [0, 1, 99, 100, 123_456] {
            let money = Money::new(minor, Currency::AUD);
            assert_eq!(
                Money::from_decimal_str(&decimal(money), Currency::AUD).unwrap(),
                money
            );
        }
    }

    #[test]
    fn order_page_links_decode_to_their_cursor() {
        let cursor = OrderCursor {
            placed_at: Timestamp::from_timestamp_micros(1_767_225_600_123_456).unwrap(),
            id: OrderId::new(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)), Some(cursor));
        assert_eq!(decode_cursor("nonsense"), None);
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(hash_password(&a).is_ok());
    }
}
