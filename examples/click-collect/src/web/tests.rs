//! The pages over HTTP, in process (`tower::ServiceExt::oneshot`): what a
//! browser can do, and what a request that skips a form cannot.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Request, StatusCode};
use commerce_core::{Commerce, ManualClock, OrderFilter, OrderId, OrderStatus};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::{App, known_stores, routes};
use crate::staff::{StaffDesk, staff_routes};
use crate::stores::Stores;
use crate::{catalog, slots};
use shop_kit::admin::{Account, Admin};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// 2026-01-02 00:00 UTC: Friday 10:00 in Brisbane.
const FRIDAY_10AM: i64 = 1_767_312_000;

struct Site {
    router: Router,
    commerce: Commerce,
    stores: Stores,
    /// The browser's cookies: their path and `name=value`.
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

impl Site {
    async fn new() -> TestResult<Self> {
        Self::with_admin(None).await
    }

    /// The site with the pickup desk behind the admin login, one account
    /// per store named by its slug, all with `password`.
    async fn protected(password: &str) -> TestResult<Self> {
        Self::with_admin(Some(password)).await
    }

    async fn with_admin(password: Option<&str>) -> TestResult<Self> {
        let commerce = Commerce::builder()
            .clock(ManualClock::at_unix(FRIDAY_10AM))
            .build()?;
        let stores = Stores::with_suffix("")?;
        for store in stores.all() {
            catalog::seed(&commerce.shop(&store.tenant), &store.info, 2026).await?;
        }
        let app = Arc::new(App::new(commerce.clone(), stores.clone(), None));
        let desk = StaffDesk::new(commerce.clone(), stores.clone());
        let mut router = routes(app.clone());
        let desk = match password {
            Some(password) => {
                let accounts = stores
                    .all()
                    .iter()
                    .map(|s| Account::new(s.info.slug, s.tenant.clone(), password))
                    .collect::<Result<Vec<_>, _>>()?;
                let admin = Arc::new(Admin::new(
                    commerce.clone(),
                    accounts,
                    "Click & Collect",
                    "/",
                    commerce_core::Currency::AUD,
                )?);
                router = router.merge(shop_kit::admin::routes(admin.clone()));
                desk.protected_by(admin)
            }
            None => desk,
        };
        let router = router
            .merge(staff_routes(Arc::new(desk)))
            .layer(axum::middleware::from_fn_with_state(app, known_stores));
        Ok(Self {
            router,
            commerce,
            stores,
            cookies: Vec::new(),
        })
    }

    fn harbour(&self) -> TestResult<commerce_core::Shop> {
        let store = self.stores.get("harbour-st").ok_or("no harbour-st")?;
        Ok(self.commerce.shop(&store.tenant))
    }

    async fn send(&mut self, request: Request<Body>) -> TestResult<Answer> {
        let response = self.router.clone().oneshot(request).await?;
        for cookie in response.headers().get_all(SET_COOKIE) {
            let mut parts = cookie.to_str()?.split(';').map(str::trim);
            let pair = parts.next().unwrap_or_default().to_owned();
            let path = parts
                .find_map(|p| p.strip_prefix("Path="))
                .unwrap_or("/")
                .to_owned();
            let name = pair.split('=').next().unwrap_or_default().to_owned();
            self.cookies
                .retain(|(_, c)| !c.starts_with(&format!("{name}=")));
            self.cookies.push((path, pair));
        }
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().map(str::to_owned))
            .transpose()?
            .unwrap_or_default();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            location,
            body: String::from_utf8(body.to_vec())?,
        })
    }

    /// The cookies a browser sends to `path`: those whose path it is under.
    fn cookies_for(&self, path: &str) -> String {
        let sent: Vec<&str> = self
            .cookies
            .iter()
            .filter(|(scope, _)| path.starts_with(scope.as_str()))
            .map(|(_, pair)| pair.as_str())
            .collect();
        sent.join("; ")
    }

    async fn get(&mut self, path: &str) -> TestResult<Answer> {
        let request = Request::get(path)
            .header(COOKIE, self.cookies_for(path))
            .body(Body::empty())?;
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> TestResult<Answer> {
        let request = Request::post(path)
            .header(COOKIE, self.cookies_for(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(serde_urlencoded::to_string(form)?))?;
        self.send(request).await
    }

    /// The value of `name="{field}" value="..."` in `html`.
    fn field(html: &str, field: &str) -> String {
        let marker = format!("name=\"{field}\" value=\"");
        html.split_once(&marker)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(value, _)| value.to_owned())
            .unwrap_or_default()
    }

    /// Posts the checkout form of the checkout page, as a browser would.
    async fn place_order(&mut self) -> TestResult<Answer> {
        let page = self.get("/s/harbour-st/checkout").await?;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let slot = slots::offered(self.commerce.now())
            .into_iter()
            .next()
            .ok_or("no slot")?
            .value;
        let key = Self::field(&page.body, "key");
        let expected = Self::field(&page.body, "expected");
        self.post(
            "/s/harbour-st/checkout",
            &[("key", &key), ("expected", &expected), ("slot", &slot)],
        )
        .await
    }
}

#[tokio::test]
async fn a_checkout_that_skips_the_age_gate_is_refused() -> TestResult {
    let mut site = Site::new().await?;
    let added = site
        .post(
            "/s/harbour-st/cart/lines",
            &[("sku", "WINE-SHIRAZ-BAROSSA"), ("quantity", "1")],
        )
        .await?;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    assert!(
        added.location.starts_with("/s/harbour-st?added="),
        "{}",
        added.location
    );

    // The age form is skipped: the checkout post alone is refused.
    let refused = site.place_order().await?;
    assert_eq!(refused.location, "/s/harbour-st/checkout?refused=age");
    let shop = site.harbour()?;
    let orders = shop.orders(&OrderFilter::default(), None, 10).await?.orders;
    assert!(orders.is_empty(), "no order was placed");
    let page = site.get(&refused.location).await?;
    assert!(page.body.contains("data-testid=\"checkout-refusal\""));
    assert!(page.body.contains("confirm you are 18 or over"));

    // An unticked box records nothing.
    let unticked = site.post("/s/harbour-st/cart/age", &[]).await?;
    assert_eq!(
        unticked.location,
        "/s/harbour-st/checkout?refused=age_unticked"
    );
    assert_eq!(
        site.place_order().await?.location,
        "/s/harbour-st/checkout?refused=age"
    );

    let confirmed = site
        .post("/s/harbour-st/cart/age", &[("adult", "yes")])
        .await?;
    assert_eq!(confirmed.location, "/s/harbour-st/checkout?notice=age");
    let placed = site.place_order().await?;
    // To the payment page (the test gateway's), which names the order.
    assert!(
        placed.location.starts_with("https://"),
        "{}",
        placed.location
    );
    let id: OrderId = placed
        .location
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()?;
    let order = shop.order(id).await?;
    assert_eq!(order.status(), OrderStatus::AwaitingPayment);
    let slot = order
        .attributes()
        .iter()
        .find(|(k, _)| k.as_str() == slots::ATTRIBUTE)
        .map(|(_, v)| v.clone());
    assert!(slot.is_some(), "the pickup slot reached the order");

    // The order page is the store's; another store has no such order.
    let own = site.get(&format!("/s/harbour-st/orders/{id}")).await?;
    assert!(own.body.contains("data-testid=\"invoice\""));
    assert!(own.body.contains("The total price includes GST of $2.27."));
    let other = site.get(&format!("/s/laneway-kitchen/orders/{id}")).await?;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_slot_that_is_not_offered_is_refused() -> TestResult {
    let mut site = Site::new().await?;
    site.post(
        "/s/harbour-st/cart/lines",
        &[("sku", "FRESH-BANANAS"), ("quantity", "2")],
    )
    .await?;
    let page = site.get("/s/harbour-st/checkout").await?;
    let key = Site::field(&page.body, "key");
    let expected = Site::field(&page.body, "expected");
    for slot in ["2026-01-02T03:00:00+10:00", "soon", ""] {
        let refused = site
            .post(
                "/s/harbour-st/checkout",
                &[("key", &key), ("expected", &expected), ("slot", slot)],
            )
            .await?;
        assert_eq!(
            refused.location, "/s/harbour-st/checkout?refused=slot",
            "{slot}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_promotion_panel_follows_the_quantities() -> TestResult {
    let mut site = Site::new().await?;
    let empty = site.get("/s/harbour-st/cart").await?;
    assert!(empty.body.contains("Add 5 wines to get 5% off wine."));
    site.post(
        "/s/harbour-st/cart/lines",
        &[("sku", "WINE-SAUVBLANC-MARLBOROUGH"), ("quantity", "4")],
    )
    .await?;
    let four = site.get("/s/harbour-st/cart").await?;
    assert!(
        four.body.contains("Add 1 more wine to get 5% off wine."),
        "{}",
        four.body
    );
    let set = site
        .post(
            "/s/harbour-st/cart/quantity",
            &[("sku", "WINE-SAUVBLANC-MARLBOROUGH"), ("quantity", "5")],
        )
        .await?;
    assert_eq!(set.location, "/s/harbour-st/cart");
    let five = site.get("/s/harbour-st/cart").await?;
    assert!(five.body.contains("Applied: you save $4.50 (5% off wine)."));
    assert!(
        five.body
            .contains("data-testid=\"promo-wine-5-for-5\" data-standing=\"applied\"")
    );
    for bad in ["-1", "100", "lots"] {
        let refused = site
            .post(
                "/s/harbour-st/cart/quantity",
                &[("sku", "WINE-SAUVBLANC-MARLBOROUGH"), ("quantity", bad)],
            )
            .await?;
        assert_eq!(
            refused.location, "/s/harbour-st/cart?refused=quantity",
            "{bad}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn search_pages_and_unknown_stores() -> TestResult {
    let mut site = Site::new().await?;
    let first = site.get("/s/harbour-st?q=wine").await?;
    assert_eq!(first.body.matches("data-testid=\"product\"").count(), 24);
    assert!(first.body.contains("page=2"), "a next page");
    let second = site.get("/s/harbour-st?q=wine&page=2").await?;
    assert!(second.body.matches("data-testid=\"product\"").count() > 0);
    let browse = site.get("/s/harbour-st").await?;
    assert!(browse.body.contains("?after="), "keyset pages");
    let none = site.get("/s/harbour-st?q=zzzz").await?;
    assert!(none.body.contains("data-testid=\"no-results\""));
    assert_eq!(site.get("/s/nowhere").await?.status, StatusCode::NOT_FOUND);
    assert_eq!(
        site.get("/s/nowhere/api/store/products").await?.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        site.get("/s/harbour-st?after=not-an-id").await?.status,
        StatusCode::BAD_REQUEST
    );
    Ok(())
}

#[tokio::test]
async fn the_desk_hands_liquor_over_only_after_an_id_check() -> TestResult {
    let mut site = Site::new().await?;
    site.post(
        "/s/harbour-st/cart/lines",
        &[("sku", "BEER-PALE-ALE"), ("quantity", "6")],
    )
    .await?;
    site.post("/s/harbour-st/cart/age", &[("adult", "yes")])
        .await?;
    let placed = site.place_order().await?;
    let id: OrderId = placed
        .location
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()?;
    let shop = site.harbour()?;
    let order = shop.order(id).await?;
    let event = commerce_core::PaymentEvent {
        id: commerce_core::PaymentEventId::parse(format!("evt_{id}"))?,
        tenant: order.tenant.clone(),
        order: id,
        kind: commerce_core::PaymentEventKind::Succeeded {
            amount: order.total(),
            payment_ref: None,
        },
    };
    shop.apply_payment_event(&event).await?;

    let desk = site.get("/admin/pickups/harbour-st").await?;
    assert!(desk.body.contains(&format!("data-order=\"{id}\"")));
    let elsewhere = site.get("/admin/pickups/laneway-kitchen").await?;
    assert!(
        !elsewhere.body.contains(&id.to_string()),
        "another store's desk does not list it"
    );
    let handover = format!("/admin/pickups/harbour-st/{id}/handover");
    let refused = site.post(&handover, &[("staff", "Sam")]).await?;
    assert!(
        refused.location.contains("refused=id"),
        "{}",
        refused.location
    );
    assert_eq!(shop.order(id).await?.status(), OrderStatus::Paid);
    let nameless = site
        .post(&handover, &[("staff", " "), ("id_checked", "yes")])
        .await?;
    assert!(nameless.location.contains("refused=staff"));
    let across = site
        .post(
            &format!("/admin/pickups/laneway-kitchen/{id}/handover"),
            &[("staff", "Sam"), ("id_checked", "yes")],
        )
        .await?;
    assert_eq!(across.status, StatusCode::NOT_FOUND);
    let done = site
        .post(&handover, &[("staff", "Sam"), ("id_checked", "yes")])
        .await?;
    assert!(done.location.contains("done="), "{}", done.location);
    assert_eq!(shop.order(id).await?.status(), OrderStatus::Fulfilled);
    let after = site.get("/admin/pickups/harbour-st").await?;
    assert!(after.body.contains("photo ID checked by Sam"));
    Ok(())
}

#[tokio::test]
async fn the_desk_answers_only_its_own_stores_signed_in_staff() -> TestResult {
    let password = "correct horse battery";
    let mut site = Site::protected(password).await?;
    let desk = "/admin/pickups/harbour-st";
    let signpost = site.get("/s/harbour-st/staff/pickups").await?;
    assert_eq!(
        signpost.location, desk,
        "the store's staff link leads to its desk"
    );
    let anonymous = site.get(desk).await?;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location, "/admin/login");
    let forged = site
        .post(
            &format!("{desk}/{}/handover", OrderId::new()),
            &[("staff", "Sam")],
        )
        .await?;
    assert_eq!(forged.location, "/admin/login", "no session, no hand-over");

    let login = site
        .post(
            "/admin/login",
            &[("name", "harbour-st"), ("password", password)],
        )
        .await?;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let own = site.get(desk).await?;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("Pickup desk: Harbour St Market"));
    let other = site.get("/admin/pickups/laneway-kitchen").await?;
    assert_eq!(other.status, StatusCode::FORBIDDEN);

    // A paid order with liquor, then its hand-over: the form must carry the session's token.
    site.post(
        "/s/harbour-st/cart/lines",
        &[("sku", "WINE-SHIRAZ-BAROSSA"), ("quantity", "1")],
    )
    .await?;
    site.post("/s/harbour-st/cart/age", &[("adult", "yes")])
        .await?;
    let placed = site.place_order().await?;
    let id: OrderId = placed
        .location
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()?;
    let shop = site.harbour()?;
    let order = shop.order(id).await?;
    shop.apply_payment_event(&commerce_core::PaymentEvent {
        id: commerce_core::PaymentEventId::parse(format!("evt_{id}"))?,
        tenant: order.tenant.clone(),
        order: id,
        kind: commerce_core::PaymentEventKind::Succeeded {
            amount: order.total(),
            payment_ref: None,
        },
    })
    .await?;
    let page = site.get(desk).await?;
    let csrf = Site::field(&page.body, "csrf");
    assert!(
        !csrf.is_empty(),
        "the form carries the session's CSRF token"
    );
    let handover = format!("{desk}/{id}/handover");
    let tokenless = site
        .post(&handover, &[("staff", "Sam"), ("id_checked", "yes")])
        .await?;
    assert_eq!(tokenless.status, StatusCode::FORBIDDEN);
    let done = site
        .post(
            &handover,
            &[("csrf", &csrf), ("staff", "Sam"), ("id_checked", "yes")],
        )
        .await?;
    assert!(done.location.contains("done="), "{}", done.location);
    assert_eq!(shop.order(id).await?.status(), OrderStatus::Fulfilled);
    Ok(())
}
