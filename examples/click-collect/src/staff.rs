//! The staff pickup desk, `/admin/pickups/{store}`: the store's paid
//! orders waiting to be collected, and "Hand over", which fulfils the
//! order and records the staff member's photo-ID check for orders with
//! liquor (refused, server-side, without it).
//!
//! A store's staff see only their own store's orders: every read and
//! change goes through the store's own [`Shop`], which the engine confines
//! to its tenant (row-level security on PostgreSQL).
//!
//! The desk is behind the admin login of `shop_kit::admin`
//! ([`StaffDesk::protected_by`]): a store's desk answers only a session of
//! an account of that store's tenant, and its form carries the session's
//! CSRF token. (A desk without it, [`Access::Open`], is for tests.)
//!
//! Where the ID check is kept: the engine records the buyer's own age
//! statement on the cart (before checkout), and the desk's hand-over is the
//! order's `Fulfilled` event with its note ("photo ID checked by Sam"), in
//! the order's audit log on every store (`Shop::fulfil_order_with_note`).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use commerce_core::{
    AttributeKey, Commerce, Error as EngineError, Order, OrderEventKind, OrderFilter, OrderId,
    OrderStatus, Shop,
};
use serde::Deserialize;
use shop_kit::admin::Admin;
use shop_kit::web::{Chrome, PageError, Pages, see_other};

use crate::money::dollars;
use crate::slots;
use crate::stores::{Store, Stores};
use crate::web::{local_date_time, store_chrome};

/// Who may use a store's desk.
#[derive(Clone)]
pub enum Access {
    /// Anyone (tests only).
    Open,
    /// A signed-in admin account of the store's tenant.
    Admin(Arc<Admin>),
}

/// What the desk needs.
pub struct StaffDesk {
    /// The engine.
    pub commerce: Commerce,
    /// The stores.
    pub stores: Stores,
    /// Each store's pages.
    pages: HashMap<&'static str, Pages>,
    /// Who may use it.
    access: Access,
}

impl StaffDesk {
    /// A desk for `stores`, open to anyone until
    /// [`protected_by`](Self::protected_by) an admin login.
    pub fn new(commerce: Commerce, stores: Stores) -> Self {
        let pages = stores
            .all()
            .iter()
            .map(|store| (store.info.slug, Pages::new(store_chrome(store))))
            .collect();
        Self {
            commerce,
            stores,
            pages,
            access: Access::Open,
        }
    }

    /// The same desk, used only by a signed-in account of `admin` whose
    /// tenant is the store's.
    pub fn protected_by(mut self, admin: Arc<Admin>) -> Self {
        self.access = Access::Admin(admin);
        self
    }

    /// Whether this request may use `store`'s desk: `Ok` with the CSRF
    /// token its forms carry (none for an open desk), else the answer.
    fn admit(
        &self,
        headers: &HeaderMap,
        store: &Store,
        pages: &Pages,
    ) -> Result<Option<String>, Box<Response>> {
        let Access::Admin(admin) = &self.access else {
            return Ok(None);
        };
        match admin.signed_in(headers) {
            None => Err(Box::new(see_other("/admin/login"))),
            Some(signed) if signed.tenant == store.tenant => Ok(Some(signed.csrf)),
            Some(_) => Err(Box::new(pages.error(&PageError::new(
                StatusCode::FORBIDDEN,
                "Another store's desk",
                format!(
                    "You are signed in as staff of another store. Sign in as {}'s staff to use its pickup desk.",
                    store.info.name
                ),
            )))),
        }
    }

    /// Whether `token` is the request's session's CSRF token (always, for
    /// an open desk).
    fn check_csrf(&self, headers: &HeaderMap, token: &str) -> bool {
        match &self.access {
            Access::Open => true,
            Access::Admin(admin) => admin.check_csrf(headers, token),
        }
    }

    fn store(&self, slug: &str) -> Option<(&Store, &Pages, Shop)> {
        let store = self.stores.get(slug)?;
        let pages = self.pages.get(store.info.slug)?;
        Some((store, pages, self.commerce.shop(&store.tenant)))
    }
}

type Desk = State<Arc<StaffDesk>>;

/// `GET /admin/pickups/{store}` and `POST
/// /admin/pickups/{store}/{order}/handover`, under `/admin` because the
/// admin session's cookie is sent only there; `GET
/// /s/{store}/staff/pickups` sends staff on to the desk.
pub fn staff_routes(desk: Arc<StaffDesk>) -> Router {
    Router::new()
        .route("/admin/pickups/{store}", get(pickups))
        .route("/admin/pickups/{store}/{order}/handover", post(hand_over))
        .route("/s/{store}/staff/pickups", get(to_desk))
        .with_state(desk)
}

/// The desk of a store, for staff.
pub fn desk_path(slug: &str) -> String {
    format!("/admin/pickups/{slug}")
}

async fn to_desk(State(desk): Desk, Path(slug): Path<String>) -> Response {
    match desk.stores.get(&slug) {
        Some(store) => see_other(&desk_path(store.info.slug)),
        None => {
            Pages::new(Chrome::new("Click & Collect", "/")).error(&PageError::not_found("store"))
        }
    }
}

/// An order on the desk.
pub struct Pickup {
    id: String,
    short: String,
    slot: String,
    items: Vec<String>,
    total: String,
    liquor: bool,
    /// The buyer's age attestation at checkout, in words.
    attested: String,
    /// The ID check recorded at pickup, in words.
    checked: String,
}

#[derive(Template)]
#[template(path = "staff_pickups.html")]
struct PickupsPage {
    chrome: Chrome,
    slug: &'static str,
    store_name: &'static str,
    waiting: Vec<Pickup>,
    collected: Vec<Pickup>,
    done: Option<String>,
    refused: Option<String>,
    /// The session's CSRF token, for the forms.
    csrf: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeskQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    refused: Option<String>,
    #[serde(default)]
    order: Option<String>,
}

/// Every order of `shop` in `status`, newest first, up to `most`.
async fn orders(shop: &Shop, status: OrderStatus, most: usize) -> Result<Vec<Order>, EngineError> {
    let filter = OrderFilter {
        status: Some(status),
        ..OrderFilter::default()
    };
    let mut all = Vec::new();
    let mut after = None;
    while all.len() < most {
        let page = shop.orders(&filter, after.as_ref(), 100).await?;
        all.extend(page.orders);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    all.truncate(most);
    Ok(all)
}

async fn pickup(shop: &Shop, order: &Order) -> Result<Pickup, PageError> {
    let key = AttributeKey::parse(slots::ATTRIBUTE).map_err(|e| PageError::internal(&e))?;
    let liquor = order.lines.iter().any(|line| line.age_restricted);
    let attested = if liquor {
        match shop.cart(order.cart).await?.age_verification {
            Some(v) => format!(
                "{} ({}, {})",
                v.method,
                v.verified_by,
                local_date_time(v.verified_at)
            ),
            None => "not recorded".to_owned(),
        }
    } else {
        String::new()
    };
    let checked = shop
        .order_events(order.id)
        .await?
        .iter()
        .rev()
        .find_map(|event| match &event.kind {
            OrderEventKind::Fulfilled { note } => Some(match note {
                Some(note) => format!("{note} at {}", local_date_time(event.at)),
                None => format!("handed over at {}", local_date_time(event.at)),
            }),
            _ => None,
        })
        .unwrap_or_default();
    let id = order.id.to_string();
    Ok(Pickup {
        short: id.chars().take(8).collect(),
        id,
        slot: order
            .attributes()
            .get(&key)
            .map_or_else(|| "no slot chosen".to_owned(), |v| slots::describe(v)),
        items: order
            .lines
            .iter()
            .map(|line| format!("{} x {}", line.quantity.get(), line.name))
            .collect(),
        total: dollars(&order.total()),
        liquor,
        attested,
        checked,
    })
}

async fn pickups(
    State(desk): Desk,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(query): Query<DeskQuery>,
) -> Response {
    let Some((store, pages, shop)) = desk.store(&slug) else {
        return Pages::new(Chrome::new("Click & Collect", "/"))
            .error(&PageError::not_found("store"));
    };
    let csrf = match desk.admit(&headers, store, pages) {
        Ok(csrf) => csrf,
        Err(response) => return *response,
    };
    let page = async {
        let mut waiting = Vec::new();
        let mut paid = orders(&shop, OrderStatus::Paid, 200).await?;
        // Earliest slot first.
        let key = AttributeKey::parse(slots::ATTRIBUTE).map_err(|e| PageError::internal(&e))?;
        paid.sort_by(|a, b| a.attributes().get(&key).cmp(&b.attributes().get(&key)));
        for order in &paid {
            waiting.push(pickup(&shop, order).await?);
        }
        let mut collected = Vec::new();
        for order in &orders(&shop, OrderStatus::Fulfilled, 20).await? {
            collected.push(pickup(&shop, order).await?);
        }
        let short = |id: &str| id.chars().take(8).collect::<String>();
        Ok(PickupsPage {
            chrome: pages.chrome().clone(),
            slug: store.info.slug,
            store_name: store.info.name,
            waiting,
            collected,
            csrf,
            done: query.done.as_deref().map(short),
            refused: match (query.refused.as_deref(), query.order.as_deref()) {
                (Some("id"), Some(order)) => Some(format!(
                    "Order {} holds liquor: check the buyer's photo ID (18 or over) and tick \
                     \"Photo ID checked\" before handing it over.",
                    short(order)
                )),
                (Some("staff"), _) => {
                    Some("Enter your name before handing an order over.".to_owned())
                }
                (Some("status"), Some(order)) => Some(format!(
                    "Order {} is not waiting for pickup: it is not paid, or it was collected already.",
                    short(order)
                )),
                _ => None,
            },
        })
    };
    pages.render(page.await)
}

#[derive(Deserialize)]
struct HandOverForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    staff: String,
    #[serde(default)]
    id_checked: Option<String>,
}

/// The longest staff name kept.
const MAX_STAFF_NAME: usize = 60;

/// What handing `order` over needs, or the refusal's code.
pub fn check_hand_over(order: &Order, staff: &str, id_checked: bool) -> Result<(), &'static str> {
    if staff.trim().is_empty() || staff.chars().count() > MAX_STAFF_NAME {
        return Err("staff");
    }
    if order.status() != OrderStatus::Paid {
        return Err("status");
    }
    if order.lines.iter().any(|line| line.age_restricted) && !id_checked {
        return Err("id");
    }
    Ok(())
}

async fn hand_over(
    State(desk): Desk,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<HandOverForm>,
) -> Response {
    let Some((store, pages, shop)) = desk.store(&slug) else {
        return Pages::new(Chrome::new("Click & Collect", "/"))
            .error(&PageError::not_found("store"));
    };
    if let Err(response) = desk.admit(&headers, store, pages) {
        return *response;
    }
    if !desk.check_csrf(&headers, &form.csrf) {
        return pages.error(&PageError::forbidden());
    }
    let back = desk_path(store.info.slug);
    let done = async {
        let id: OrderId = id.parse().map_err(|_| PageError::not_found("order"))?;
        let order = shop.order(id).await?;
        let id_checked = form.id_checked.as_deref() == Some("yes");
        let staff = form.staff.trim().to_owned();
        if let Err(code) = check_hand_over(&order, &staff, id_checked) {
            return Ok(format!("{back}?refused={code}&order={id}"));
        }
        let note = if id_checked {
            format!("photo ID checked by {staff}")
        } else {
            format!("handed over by {staff}")
        };
        match shop.fulfil_order_with_note(id, note).await {
            Ok(_) => {}
            Err(EngineError::InvalidTransition { .. }) => {
                return Ok(format!("{back}?refused=status&order={id}"));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(
            store = store.info.slug,
            order = %id,
            staff = %staff,
            id_checked,
            "order handed over"
        );
        Ok(format!("{back}?done={id}"))
    };
    pages.redirect(done.await)
}
