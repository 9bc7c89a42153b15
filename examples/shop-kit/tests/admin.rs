//! The admin pages over a real socket: the login, the session cookie, the
//! CSRF check on every form, and one tenant's staff seeing only their own
//! tenant's orders.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failing test"
)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use commerce_core::{
    Category, Commerce, Currency, IdempotencyKey, Money, NewProduct, Quantity, Shop, Sku,
    TaxCategory, TenantId, Variant,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shop_kit::admin::{Account, Admin};

struct Site {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Site {
    async fn start(commerce: Commerce, accounts: Vec<Account>) -> Self {
        let admin = Admin::new(commerce, accounts, "Test shop", "/", Currency::AUD).unwrap();
        let app = shop_kit::admin::routes(Arc::new(admin));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(&self, method: Method, path: &str, cookie: Option<&str>, form: &str) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if !form.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let response = self
            .client
            .request(
                request
                    .body(Full::new(Bytes::from(form.to_owned())))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        self.send(Method::GET, path, cookie, "").await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Answer {
        self.send(Method::POST, path, cookie, form).await
    }

    /// Logs in; returns the `Cookie` header value of the session.
    async fn login(&self, name: &str, password: &str) -> String {
        let answer = self
            .post(
                "/admin/login",
                None,
                &format!("name={name}&password={password}"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&answer), "/admin");
        let set = answer.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        set.split(';').next().unwrap().to_owned()
    }
}

fn location(answer: &Answer) -> &str {
    answer.headers[header::LOCATION].to_str().unwrap()
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn one_order(shop: &Shop, sku: &str, key: &str) -> commerce_core::OrderId {
    let sku = Sku::parse(sku).unwrap();
    shop.add_product(NewProduct {
        name: format!("Item {sku}"),
        category: Category::parse("parts").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        variants: vec![Variant::new(sku.clone(), Money::new(1_000, Currency::AUD))],
        published: true,
    })
    .await
    .unwrap();
    shop.receive_stock(&sku, Quantity::new(5).unwrap(), None)
        .await
        .unwrap();
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    shop.checkout(cart.id, &IdempotencyKey::parse(key).unwrap())
        .await
        .unwrap()
        .order
        .id
}

const PASSWORD: &str = "a-long-test-password";

#[tokio::test]
async fn staff_log_in_and_see_only_their_own_stores_orders() {
    let commerce = Commerce::in_memory();
    let north = TenantId::parse("north").unwrap();
    let south = TenantId::parse("south").unwrap();
    let north_order = one_order(&commerce.shop(&north), "NORTH-1", "n-1").await;
    let south_order = one_order(&commerce.shop(&south), "SOUTH-1", "s-1").await;
    let site = Site::start(
        commerce,
        vec![
            Account::new("north-staff", north, PASSWORD).unwrap(),
            Account::new("south-staff", south, PASSWORD).unwrap(),
        ],
    )
    .await;

    // Not logged in: every page sends to the login page.
    for path in ["/admin", "/admin/orders", "/admin/products", "/admin/keys"] {
        let answer = site.get(path, None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&answer), "/admin/login", "{path}");
    }
    // A wrong password and an unknown name fail the same way.
    for form in [
        "name=north-staff&password=wrong-password-123",
        "name=nobody&password=a-long-test-password",
    ] {
        let answer = site.post("/admin/login", None, form).await;
        assert_eq!(location(&answer), "/admin/login?failed=1", "{form}");
        assert!(!answer.headers.contains_key(header::SET_COOKIE));
    }

    let cookie = site.login("north-staff", PASSWORD).await;
    let orders = site.get("/admin/orders", Some(&cookie)).await;
    assert_eq!(orders.status, StatusCode::OK);
    assert!(orders.body.contains(&north_order.to_string()));
    assert!(!orders.body.contains(&south_order.to_string()));
    let theirs = site
        .get(&format!("/admin/orders/{south_order}"), Some(&cookie))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let ours = site
        .get(&format!("/admin/orders/{north_order}"), Some(&cookie))
        .await;
    assert_eq!(ours.status, StatusCode::OK);
    assert!(ours.body.contains("placed, AUD 10.00 due"), "{}", ours.body);

    // Forms need the session's CSRF token: without it nothing changes.
    let cancel = format!("/admin/orders/{north_order}/cancel");
    let refused = site
        .post(&cancel, Some(&cookie), "csrf=forged&reason=test")
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let token = csrf_of(&ours.body);
    let other = site.login("south-staff", PASSWORD).await;
    let foreign = site
        .post(&cancel, Some(&other), &format!("csrf={token}&reason=test"))
        .await;
    assert_eq!(
        foreign.status,
        StatusCode::FORBIDDEN,
        "another session's token"
    );
    let still = site
        .get(&format!("/admin/orders/{north_order}"), Some(&cookie))
        .await;
    assert!(still.body.contains("Awaiting payment"));

    let done = site
        .post(
            &cancel,
            Some(&cookie),
            &format!("csrf={token}&reason=customer+called"),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let after = site.get(location(&done), Some(&cookie)).await;
    assert!(
        after.body.contains("cancelled: customer called"),
        "{}",
        after.body
    );

    // A tampered session cookie is no session.
    let tampered = cookie.replace("north-staff", "south-staff");
    let answer = site.get("/admin/orders", Some(&tampered)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn keys_are_shown_once_rotated_and_revoked() {
    let commerce = Commerce::in_memory();
    let tenant = TenantId::parse("shop").unwrap();
    let site = Site::start(
        commerce.clone(),
        vec![Account::new("admin", tenant.clone(), PASSWORD).unwrap()],
    )
    .await;
    let cookie = site.login("admin", PASSWORD).await;
    let page = site.get("/admin/keys", Some(&cookie)).await;
    let token = csrf_of(&page.body);
    let made = site
        .post(
            "/admin/keys",
            Some(&cookie),
            &format!("csrf={token}&name=warehouse&scope=inventory&scope=orders"),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK);
    assert!(made.body.contains("data-testid=\"issued-key\""));
    let shop = commerce.shop(&tenant);
    let keys = shop.api_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    let first = keys[0].clone();
    assert_eq!(first.scopes.len(), 2);

    let rotated = site
        .post(
            &format!("/admin/keys/{}/rotate", first.id),
            Some(&cookie),
            &format!("csrf={token}"),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let keys = shop.api_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    let (old, new): (Vec<_>, Vec<_>) = keys.into_iter().partition(|k| k.id == first.id);
    assert!(old[0].revoked_at.is_some());
    assert!(new[0].revoked_at.is_none());
    assert_eq!(new[0].scopes, first.scopes);

    let revoked = site
        .post(
            &format!("/admin/keys/{}/revoke", new[0].id),
            Some(&cookie),
            &format!("csrf={token}"),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(
        shop.api_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_some())
    );
}

#[tokio::test]
async fn pausing_orders_from_the_settings_page_stops_checkout() {
    let commerce = Commerce::in_memory();
    let tenant = TenantId::parse("shop").unwrap();
    let site = Site::start(
        commerce.clone(),
        vec![Account::new("admin", tenant.clone(), PASSWORD).unwrap()],
    )
    .await;
    let cookie = site.login("admin", PASSWORD).await;
    let page = site.get("/admin/settings", Some(&cookie)).await;
    let token = csrf_of(&page.body);
    let tax = commerce.shop(&tenant).settings().await.unwrap().tax;
    let tax = serde_json::to_string(&tax).unwrap();
    let form = form_urlencoded(&[("csrf", &token), ("shipping_fee", "9.95"), ("tax", &tax)]);
    let saved = site.post("/admin/settings", Some(&cookie), &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let settings = commerce.shop(&tenant).settings().await.unwrap();
    assert!(!settings.accepting_orders, "the box was not ticked");
    assert_eq!(settings.shipping_fee, Some(Money::new(995, Currency::AUD)));

    let shop = commerce.shop(&tenant);
    let sku = Sku::parse("PAUSED-1").unwrap();
    shop.add_product(NewProduct {
        name: "Paused".into(),
        category: Category::parse("parts").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        variants: vec![Variant::new(sku.clone(), Money::new(500, Currency::AUD))],
        published: true,
    })
    .await
    .unwrap();
    shop.receive_stock(&sku, Quantity::ONE, None).await.unwrap();
    let cart = shop.create_cart(Currency::AUD).await.unwrap();
    shop.set_line(cart.id, &sku, Quantity::ONE).await.unwrap();
    let refused = shop
        .checkout(cart.id, &IdempotencyKey::parse("paused").unwrap())
        .await;
    assert!(matches!(
        refused,
        Err(commerce_core::Error::NotAcceptingOrders)
    ));
}

fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
