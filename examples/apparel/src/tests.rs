//! The shop's pages over a real socket, without JavaScript: the picker's
//! server-rendered `disabled`, the server refusing a sold-out combination,
//! "3 for 2" and the sales tax on the cart, a double-clicked Place order,
//! a price changed at checkout, and the accounts (order history, wishlist,
//! a reset link that works once).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a panic is a failing test"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use commerce_core::{Commerce, Money, OrderFilter, Shop, TenantId, TestGateway};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shop_kit::web::{Chrome, Pages, Signer};

use crate::accounts::{Accounts, Mailbox};
use crate::catalog::{self, GARMENTS};
use crate::web::{App, CURRENCY};

struct Site {
    base: String,
    shop: Shop,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A browser without JavaScript: it keeps cookies.
#[derive(Default)]
struct Browser {
    cookies: BTreeMap<String, String>,
    /// The `Origin` its form posts carry (a page of another site).
    origin: Option<String>,
}

struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

impl Site {
    async fn start() -> Self {
        let commerce = Commerce::builder()
            .store(commerce_core::InMemoryStore::new())
            .gateway(TestGateway::default())
            .build()
            .unwrap();
        let shop = commerce.shop(&TenantId::parse(crate::TENANT).unwrap());
        catalog::seed(&shop, shop_kit::cli::DEFAULT_SEED)
            .await
            .unwrap();
        catalog::configure(&shop).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mailbox = Arc::new(Mailbox::with_clock(commerce.clone()));
        let app = Arc::new(App {
            commerce: commerce.clone(),
            shop: shop.clone(),
            pages: Pages::new(Chrome::new("Test apparel", "/")),
            clock: None,
            accounts: Accounts::new().unwrap(),
            notifier: mailbox.clone(),
            mailbox: Some(mailbox),
            signer: Signer::random(),
            base: base.clone(),
        });
        let router = crate::shop_pages(app);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            base,
            shop,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(&self, browser: &mut Browser, method: Method, path: &str, form: &str) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = Request::builder().method(method).uri(url);
        if !browser.cookies.is_empty() {
            let cookie = browser
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(header::COOKIE, cookie);
        }
        if !form.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(origin) = &browser.origin {
            request = request.header(header::ORIGIN, origin);
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
        for set in response.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                browser.cookies.remove(name);
            } else {
                browser.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            location,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&self, browser: &mut Browser, path: &str) -> Answer {
        self.send(browser, Method::GET, path, "").await
    }

    async fn post(&self, browser: &mut Browser, path: &str, form: &[(&str, &str)]) -> Answer {
        let form = serde_urlencoded::to_string(form).unwrap();
        self.send(browser, Method::POST, path, &form).await
    }
}

/// The value of the hidden input `name` in `body`.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

fn product(code: &str) -> String {
    catalog::product_id(code).to_string()
}

#[tokio::test]
async fn the_picker_disables_what_is_sold_out_everywhere_and_the_server_refuses_the_rest() {
    let site = Site::start().await;
    let mut buyer = Browser::default();
    let page = site
        .get(&mut buyer, &format!("/products/{}", product("HOODIE")))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<fieldset>\n      <legend>Size</legend>")
    );
    assert!(
        page.body.contains(
            r#"id="size-XL" value="XL" data-testid="size-option" data-value="XL" disabled>"#
        ),
        "XL is sold out in every colour"
    );
    assert!(
        page.body
            .contains(r#"id="size-M" value="M" data-testid="size-option" data-value="M">"#)
    );
    let jacket = site
        .get(&mut buyer, &format!("/products/{}", product("JACKET")))
        .await;
    assert!(
        jacket.body.contains(r#"data-value="Ecru" disabled>"#),
        "Ecru is sold out in every size"
    );

    // Without the script, a sold-out combination can still be sent.
    let refused = site
        .post(
            &mut buyer,
            "/cart/lines",
            &[
                ("product", &product("TEE")),
                ("size", "L"),
                ("colour", "White"),
                ("quantity", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let back = site.get(&mut buyer, &refused.location).await;
    assert!(
        back.body
            .contains("Size L in White is sold out. Pick another size or colour."),
        "{}",
        back.body
    );
    let cart = site.get(&mut buyer, "/cart").await;
    assert!(cart.body.contains("Your cart is empty"));

    let unknown = site
        .post(
            &mut buyer,
            "/cart/lines",
            &[
                ("product", &product("TEE")),
                ("size", "XXL"),
                ("colour", "Black"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

async fn fill_cart(site: &Site, buyer: &mut Browser) {
    for (code, size, colour, quantity) in
        [("TEE", "M", "Black", "2"), ("JEANS", "30", "Indigo", "1")]
    {
        let added = site
            .post(
                buyer,
                "/cart/lines",
                &[
                    ("product", &product(code)),
                    ("size", size),
                    ("colour", colour),
                    ("quantity", quantity),
                ],
            )
            .await;
        assert_eq!(added.location, "/cart", "{code}");
    }
}

#[tokio::test]
async fn the_cart_explains_three_for_two_and_adds_the_sales_tax() {
    let site = Site::start().await;
    let mut buyer = Browser::default();
    fill_cart(&site, &mut buyer).await;
    let cart = site.get(&mut buyer, "/cart").await;
    for shown in [
        r#"data-testid="subtotal">USD 127.00<"#,
        r#"data-testid="discount">−USD 24.00<"#,
        "WA sales tax (10.25% of USD 103.00)",
        r#"data-testid="sales-tax">USD 10.56<"#,
        r#"data-testid="total"><strong>USD 113.56<"#,
        "so 1 item is free (the cheapest in each three)",
    ] {
        assert!(cart.body.contains(shown), "{shown} in {}", cart.body);
    }
}

#[tokio::test]
async fn a_double_click_makes_one_order_and_a_changed_price_asks_again() {
    let site = Site::start().await;
    let mut buyer = Browser::default();
    fill_cart(&site, &mut buyer).await;
    let checkout = site.get(&mut buyer, "/checkout").await;
    assert!(checkout.body.contains(r#"data-testid="place-order""#));
    let (key, expected) = (
        hidden(&checkout.body, "key"),
        hidden(&checkout.body, "expected"),
    );
    assert_eq!(expected, "11356");

    // The owner raises the jeans while the buyer looks at the total.
    let jeans = GARMENTS.iter().find(|g| g.code == "JEANS").unwrap();
    site.shop
        .put_product(
            catalog::product_id("JEANS"),
            catalog::product_at(
                jeans,
                shop_kit::cli::DEFAULT_SEED,
                Money::new(8_400, CURRENCY),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let form = [("key", key.as_str()), ("expected", expected.as_str())];
    let refused = site.post(&mut buyer, "/checkout", &form).await;
    assert_eq!(refused.location, "/checkout?notice=price_changed&was=11356");
    let confirm = site.get(&mut buyer, &refused.location).await;
    assert!(confirm.body.contains(r#"data-testid="price-changed""#));
    assert!(confirm.body.contains("total of USD 113.56"));
    assert!(
        confirm
            .body
            .contains(r#"data-testid="new-total">USD 119.07<"#)
    );
    assert!(
        confirm
            .body
            .contains(r#"data-testid="price-changed-confirm""#)
    );
    assert!(
        site.shop
            .orders(&OrderFilter::default(), None, 10)
            .await
            .unwrap()
            .orders
            .is_empty()
    );

    let (key, expected) = (
        hidden(&confirm.body, "key"),
        hidden(&confirm.body, "expected"),
    );
    let form = [("key", key.as_str()), ("expected", expected.as_str())];
    let mut tab_one = Browser {
        cookies: buyer.cookies.clone(),
        origin: None,
    };
    let mut tab_two = Browser {
        cookies: buyer.cookies.clone(),
        origin: None,
    };
    let (first, second) = tokio::join!(
        site.post(&mut tab_one, "/checkout", &form),
        site.post(&mut tab_two, "/checkout", &form)
    );
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location, second.location);
    let orders = site
        .shop
        .orders(&OrderFilter::default(), None, 10)
        .await
        .unwrap()
        .orders;
    assert_eq!(orders.len(), 1, "one order for two clicks");
    assert_eq!(orders[0].total(), Money::new(11_907, CURRENCY));

    let page = site
        .get(&mut buyer, &format!("/orders/{}", orders[0].id))
        .await;
    assert!(
        page.body
            .contains(r#"data-testid="order-status" data-status="awaiting_payment""#)
    );
    assert!(page.body.contains(r#"data-testid="sales-tax">USD 11.07<"#));
}

#[tokio::test]
async fn accounts_keep_order_history_and_a_wishlist_and_reset_links_work_once() {
    let site = Site::start().await;
    let mut ann = Browser::default();
    let password = "correct horse battery";
    let signed_up = site
        .post(
            &mut ann,
            "/account/signup",
            &[
                ("email", "ann@example.com"),
                ("name", "Ann"),
                ("password", password),
                ("confirm", password),
            ],
        )
        .await;
    assert_eq!(signed_up.location, "/account");
    fill_cart(&site, &mut ann).await;
    let checkout = site.get(&mut ann, "/checkout").await;
    let form = [
        ("key", hidden(&checkout.body, "key")),
        ("expected", hidden(&checkout.body, "expected")),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    site.post(&mut ann, "/checkout", &form).await;
    let order = site
        .shop
        .orders(&OrderFilter::default(), None, 10)
        .await
        .unwrap()
        .orders;
    assert_eq!(order.len(), 1);
    assert!(
        order[0].customer.is_some(),
        "the order carries the customer"
    );

    let page = site
        .get(&mut ann, &format!("/products/{}", product("BEANIE")))
        .await;
    let csrf = hidden(&page.body, "csrf");
    let wished = site
        .post(
            &mut ann,
            "/wishlist",
            &[
                ("product", &product("BEANIE")),
                ("csrf", &csrf),
                ("action", "add"),
            ],
        )
        .await;
    assert_eq!(wished.location, "/account");
    let forged = site
        .post(
            &mut ann,
            "/wishlist",
            &[
                ("product", &product("TEE")),
                ("csrf", "forged"),
                ("action", "add"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let account = site.get(&mut ann, "/account").await;
    assert!(account.body.contains(&format!("/orders/{}", order[0].id)));
    assert!(account.body.contains(">Wool Beanie</a>"));
    assert!(!account.body.contains(">Classic Tee</a>"));

    // Someone else sees none of it.
    let mut bob = Browser::default();
    assert_eq!(
        site.get(&mut bob, "/account").await.location,
        "/account/login"
    );

    // Reset: the link arrives in the mailbox and works once.
    let mut anon = Browser::default();
    let sent = site
        .post(&mut anon, "/account/reset", &[("email", "ann@example.com")])
        .await;
    assert!(sent.body.contains(r#"data-testid="reset-sent""#));
    let mailbox = site.get(&mut anon, "/dev/mailbox").await;
    let marker = r#"data-testid="mail-link">"#;
    let start = mailbox.body.find(marker).unwrap() + marker.len();
    let link = mailbox.body[start..].split('<').next().unwrap().to_owned();
    let new = "a brand new password";
    let reset = site
        .post(&mut anon, &link, &[("password", new), ("confirm", new)])
        .await;
    assert_eq!(reset.location, "/account/login?notice=reset");
    let again = site
        .post(&mut anon, &link, &[("password", new), ("confirm", new)])
        .await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(
        site.get(&mut ann, "/account").await.location,
        "/account/login",
        "the old session ended with the old password"
    );
    let old = site
        .post(
            &mut anon,
            "/account/login",
            &[("email", "ann@example.com"), ("password", password)],
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let mut other_site = Browser {
        origin: Some("http://attacker.example".to_owned()),
        ..Browser::default()
    };
    let forged_login = site
        .post(
            &mut other_site,
            "/account/login",
            &[("email", "ann@example.com"), ("password", new)],
        )
        .await;
    assert_eq!(forged_login.status, StatusCode::FORBIDDEN);
    assert!(other_site.cookies.is_empty());
    let mut same_site = Browser {
        origin: Some(site.base.clone()),
        ..Browser::default()
    };
    let logged = site
        .post(
            &mut same_site,
            "/account/login",
            &[("email", "ann@example.com"), ("password", new)],
        )
        .await;
    assert_eq!(logged.location, "/account");
    let logged = site
        .post(
            &mut anon,
            "/account/login",
            &[("email", "ann@example.com"), ("password", new)],
        )
        .await;
    assert_eq!(logged.location, "/account");
}
