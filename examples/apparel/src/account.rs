//! The customer pages: sign up, log in, log out, the account page (order
//! history and wishlist), password reset by an emailed one-time link, and
//! the development mailbox that shows what was "sent".
//!
//! A session is a signed cookie (`HttpOnly`, `SameSite=Lax`) naming the
//! customer, the generation of their password (a reset ends older
//! sessions) and when it expires. Forms of a logged-in customer carry the
//! session's CSRF token.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use commerce_core::{CustomerId, OrderFilter, ProductId};
use serde::Deserialize;
use shop_kit::web::{Chrome, PageError, clock_time, cookie, money, see_other, set_cookie};

use crate::accounts::{AccountsError, Customer, Email};
use crate::web::{App, status_label};

/// The session cookie.
const SESSION_COOKIE: &str = "apparel_customer";
/// How long a customer stays logged in.
const SESSION_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// Orders on the account page.
const HISTORY: usize = 50;

type Shared = State<Arc<App>>;

/// The account pages and the development mailbox.
pub fn routes(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/account", get(account_page))
        .route("/account/signup", get(signup_page).post(signup))
        .route("/account/login", get(login_page).post(login))
        .route("/account/logout", post(logout))
        .route(
            "/account/reset",
            get(reset_request_page).post(reset_request),
        )
        .route("/account/reset/{token}", get(reset_page).post(reset))
        .route("/wishlist", post(wish));
    if app.mailbox.is_some() {
        router = router.route("/dev/mailbox", get(mailbox_page));
    }
    router.with_state(app)
}

/// The logged-in customer of this request and their CSRF token.
pub fn current(app: &App, headers: &HeaderMap) -> Option<(Customer, String)> {
    let raw = cookie(headers, SESSION_COOKIE)?;
    let value = app.signer.verify("customer-session", raw)?;
    let mut parts = value.split(':');
    let (id, generation, expires) = (parts.next()?, parts.next()?, parts.next()?);
    let expires: i64 = expires.parse().ok()?;
    if expires <= chrono::Utc::now().timestamp() {
        return None;
    }
    let id = CustomerId::parse(id).ok()?;
    let customer = app.accounts.customer(&id)?;
    if generation != customer.generation.to_string() {
        return None;
    }
    Some((customer, app.signer.csrf_token(raw)))
}

/// The logged-in customer, when `token` is their session's CSRF token.
fn checked(app: &App, headers: &HeaderMap, token: &str) -> Result<Customer, PageError> {
    let (customer, csrf) = current(app, headers).ok_or_else(|| {
        PageError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "Please log in",
            "Your session ended. Log in again and send the form again.",
        )
    })?;
    let raw = cookie(headers, SESSION_COOKIE).unwrap_or_default();
    let _ = csrf;
    if token.is_empty() || !app.signer.check_csrf(raw, token) {
        return Err(PageError::forbidden());
    }
    Ok(customer)
}

/// Whether a form posted without a session came from this site's own
/// pages: a browser's `Origin` header, when it sends one, must name the
/// host the request went to. Forms of a logged-in customer carry a CSRF
/// token instead; these (sign up, log in, reset) have no session to tie
/// a token to, and this keeps another site from logging a buyer into an
/// account of its choosing.
fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok();
    let matches = match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host)),
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(PageError::forbidden())
    }
}

/// A session cookie for `customer`.
fn session_cookie(
    app: &App,
    customer: &Customer,
) -> (axum::http::HeaderName, axum::http::HeaderValue) {
    let expires = chrono::Utc::now()
        .timestamp()
        .saturating_add(i64::try_from(SESSION_TTL.as_secs()).unwrap_or(0));
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let value = format!("{}:{}:{expires}:{nonce}", customer.id, customer.generation);
    set_cookie(
        SESSION_COOKIE,
        &app.signer.sign("customer-session", &value),
        SESSION_TTL.as_secs(),
    )
}

fn refused(error: &AccountsError) -> PageError {
    match error {
        AccountsError::Unknown => PageError::not_found("customer"),
        AccountsError::ResetLink => PageError::new(
            axum::http::StatusCode::GONE,
            "This link no longer works",
            "A password-reset link works once, for 30 minutes. Ask for a new one from the \
             log-in page.",
        ),
        other => PageError::bad_form(other.to_string()),
    }
}

/// A page of the account forms, with an error shown above the form.
#[derive(Template)]
#[template(path = "account_form.html")]
struct FormPage {
    chrome: Chrome,
    /// `signup`, `login`, `reset-request`, `reset`, `reset-sent`.
    kind: &'static str,
    title: &'static str,
    error: Option<String>,
    email: String,
    name: String,
    action: String,
    notice: Option<String>,
}

impl FormPage {
    fn new(app: &App, kind: &'static str, title: &'static str, action: &str) -> Self {
        Self {
            chrome: app.chrome(),
            kind,
            title,
            error: None,
            email: String::new(),
            name: String::new(),
            action: action.to_owned(),
            notice: None,
        }
    }
}

#[derive(Deserialize, Default)]
struct Next {
    notice: Option<String>,
}

async fn signup_page(State(app): Shared) -> Response {
    app.pages.render(Ok(FormPage::new(
        &app,
        "signup",
        "Create an account",
        "/account/signup",
    )))
}

#[derive(Deserialize)]
struct SignupForm {
    email: String,
    name: String,
    password: String,
    confirm: String,
}

async fn signup(State(app): Shared, headers: HeaderMap, Form(form): Form<SignupForm>) -> Response {
    if let Err(error) = same_origin(&headers) {
        return app.pages.error(&error);
    }
    match app
        .accounts
        .sign_up(&form.email, &form.name, &form.password, &form.confirm)
        .await
    {
        Ok(customer) => logged_in(&app, &headers, &customer).await,
        Err(error) => {
            let mut page = FormPage::new(&app, "signup", "Create an account", "/account/signup");
            page.error = Some(error.to_string());
            page.email = form.email;
            page.name = form.name;
            let status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            (status, app.pages.render(Ok(page))).into_response()
        }
    }
}

/// Sets the session and links the buyer's open cart to the customer.
async fn logged_in(app: &App, headers: &HeaderMap, customer: &Customer) -> Response {
    let linked = async {
        if let Some(cart) = app.open_cart(headers).await? {
            app.link_customer(&cart, customer).await?;
        }
        Ok::<_, PageError>(())
    };
    if let Err(error) = linked.await {
        return app.pages.error(&error);
    }
    ([session_cookie(app, customer)], see_other("/account")).into_response()
}

async fn login_page(State(app): Shared, Query(next): Query<Next>) -> Response {
    let mut page = FormPage::new(&app, "login", "Log in", "/account/login");
    page.notice = match next.notice.as_deref() {
        Some("reset") => Some("Your password is changed: log in with the new one.".to_owned()),
        Some("wishlist") => Some("Log in to keep a wishlist.".to_owned()),
        _ => None,
    };
    app.pages.render(Ok(page))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(State(app): Shared, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    if let Err(error) = same_origin(&headers) {
        return app.pages.error(&error);
    }
    match app.accounts.log_in(&form.email, &form.password).await {
        Some(customer) => logged_in(&app, &headers, &customer).await,
        None => {
            let mut page = FormPage::new(&app, "login", "Log in", "/account/login");
            page.error = Some("That email address and password do not match an account.".into());
            page.email = form.email;
            let status = axum::http::StatusCode::UNAUTHORIZED;
            (status, app.pages.render(Ok(page))).into_response()
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(app): Shared, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(error) = checked(&app, &headers, &form.csrf) {
        return app.pages.error(&error);
    }
    ([set_cookie(SESSION_COOKIE, "", 0)], see_other("/")).into_response()
}

/// An order in the history.
pub struct HistoryRow {
    id: String,
    placed: String,
    status: &'static str,
    total: String,
    items: u32,
}

/// A product on the wishlist.
pub struct Wished {
    id: ProductId,
    name: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    name: String,
    email: String,
    csrf: String,
    orders: Vec<HistoryRow>,
    wishlist: Vec<Wished>,
}

async fn account_page(State(app): Shared, headers: HeaderMap) -> Response {
    let Some((customer, csrf)) = current(&app, &headers) else {
        return see_other("/account/login");
    };
    let page = async {
        let filter = OrderFilter {
            customer: Some(customer.id.clone()),
            ..OrderFilter::default()
        };
        let orders = app
            .shop
            .orders(&filter, None, HISTORY)
            .await?
            .orders
            .iter()
            .map(|order| HistoryRow {
                id: order.id.to_string(),
                placed: order.placed_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                status: status_label(order.status()),
                total: money(&order.total()),
                items: order
                    .lines
                    .iter()
                    .map(|l| l.quantity.get())
                    .fold(0, u32::saturating_add),
            })
            .collect();
        let mut wishlist = Vec::new();
        for id in &customer.wishlist {
            match app.shop.product(*id).await {
                Ok(product) => wishlist.push(Wished {
                    id: *id,
                    name: product.name().to_owned(),
                }),
                // Unpublished or deleted since: not shown.
                Err(commerce_core::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(AccountPage {
            chrome: app.chrome(),
            name: customer.name.clone(),
            email: customer.email.clone(),
            csrf,
            orders,
            wishlist,
        })
    };
    app.pages.render(page.await)
}

#[derive(Deserialize)]
struct WishForm {
    product: String,
    #[serde(default)]
    csrf: String,
    /// `add` or `remove`.
    action: String,
    /// Where to go back to: `product` or `account`.
    #[serde(default)]
    back: String,
}

async fn wish(State(app): Shared, headers: HeaderMap, Form(form): Form<WishForm>) -> Response {
    if current(&app, &headers).is_none() {
        return see_other("/account/login?notice=wishlist");
    }
    let done = async {
        let customer = checked(&app, &headers, &form.csrf)?;
        let id: ProductId = form
            .product
            .parse()
            .map_err(|_| PageError::bad_form("No such product."))?;
        let wished = match form.action.as_str() {
            "add" => {
                app.shop.product(id).await?;
                true
            }
            "remove" => false,
            other => return Err(PageError::bad_form(format!("No action {other:?}."))),
        };
        app.accounts
            .set_wished(&customer.id, id, wished)
            .map_err(|e| refused(&e))?;
        Ok(if form.back == "product" {
            format!(
                "/products/{id}{}",
                if wished { "?notice=wished" } else { "" }
            )
        } else {
            "/account".to_owned()
        })
    };
    app.pages.redirect(done.await)
}

async fn reset_request_page(State(app): Shared) -> Response {
    app.pages.render(Ok(FormPage::new(
        &app,
        "reset-request",
        "Reset your password",
        "/account/reset",
    )))
}

#[derive(Deserialize)]
struct ResetRequestForm {
    email: String,
}

async fn reset_request(
    State(app): Shared,
    headers: HeaderMap,
    Form(form): Form<ResetRequestForm>,
) -> Response {
    if let Err(error) = same_origin(&headers) {
        return app.pages.error(&error);
    }
    // The page says the same whether or not the address has an account.
    if let Some((customer, token)) = app.accounts.start_reset(&form.email, app.commerce.now()) {
        let email = Email {
            to: customer.email.clone(),
            subject: "Reset your password".to_owned(),
            body: format!(
                "Hello {},\n\nSomeone asked to reset the password of your account. If it was \
                 you, open this link within {} minutes (it works once):\n\n{}/account/reset/{token}\n\n\
                 If it was not you, ignore this email: your password stays as it is.",
                customer.name,
                crate::accounts::RESET_TTL_MINUTES,
                app.base
            ),
        };
        if let Err(error) = app.notifier.send(email).await {
            tracing::error!(%error, "the reset email was not sent");
            return app.pages.error(&PageError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The email could not be sent",
                "Please try again in a moment.",
            ));
        }
    }
    let mut page = FormPage::new(&app, "reset-sent", "Check your email", "/account/reset");
    page.email = form.email;
    app.pages.render(Ok(page))
}

async fn reset_page(State(app): Shared, Path(token): Path<String>) -> Response {
    if !app.accounts.reset_is_valid(&token, app.commerce.now()) {
        return app.pages.error(&refused(&AccountsError::ResetLink));
    }
    app.pages.render(Ok(FormPage::new(
        &app,
        "reset",
        "Choose a new password",
        &format!("/account/reset/{token}"),
    )))
}

#[derive(Deserialize)]
struct ResetForm {
    password: String,
    confirm: String,
}

async fn reset(
    State(app): Shared,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    if let Err(error) = same_origin(&headers) {
        return app.pages.error(&error);
    }
    match app
        .accounts
        .finish_reset(&token, &form.password, &form.confirm, app.commerce.now())
        .await
    {
        // Older sessions end with the old password; log in afresh.
        Ok(_) => (
            [set_cookie(SESSION_COOKIE, "", 0)],
            see_other("/account/login?notice=reset"),
        )
            .into_response(),
        Err(AccountsError::ResetLink) => app.pages.error(&refused(&AccountsError::ResetLink)),
        Err(error) => {
            let mut page = FormPage::new(
                &app,
                "reset",
                "Choose a new password",
                &format!("/account/reset/{token}"),
            );
            page.error = Some(error.to_string());
            let status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            (status, app.pages.render(Ok(page))).into_response()
        }
    }
}

/// A message in the mailbox: its lines, links made clickable.
pub struct MailView {
    at: String,
    to: String,
    subject: String,
    /// `(text, is a link)`.
    lines: Vec<(String, bool)>,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    chrome: Chrome,
    messages: Vec<MailView>,
}

async fn mailbox_page(State(app): Shared) -> Response {
    let messages = app
        .mailbox
        .as_ref()
        .map(|m| m.messages())
        .unwrap_or_default()
        .into_iter()
        .rev()
        .map(|sent| MailView {
            at: clock_time(sent.at),
            to: sent.email.to,
            subject: sent.email.subject,
            lines: sent
                .email
                .body
                .lines()
                .map(|line| {
                    let link = line.starts_with("http://") || line.starts_with("https://");
                    (line.to_owned(), link)
                })
                .collect(),
        })
        .collect();
    app.pages.render(Ok(MailboxPage {
        chrome: app.chrome(),
        messages,
    }))
}
