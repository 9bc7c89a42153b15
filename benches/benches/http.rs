//! What the HTTP layer adds over calling the facade: the same use case
//! timed through `commerce_http`'s storefront router (in process, with
//! `tower::ServiceExt::oneshot`: request building, routing, extraction,
//! JSON in and out, the response body collected) and directly on the
//! facade, in the same run, on the in-memory store.
//!
//! - `read_product`: a product with its per-variant availability
//!   (`Shop::product` and `Shop::stock` per variant, against `GET
//!   /products/{id}`).
//! - `set_line`: one unit into a new cart (`Shop::set_line` then the cart
//!   view the HTTP answer carries, `cart_reservations` and `price_cart`,
//!   against `PUT /carts/{cart}/lines/{sku}`).
//! - `checkout`: a cart of one line checked out (`Shop::checkout_with`
//!   against `POST /carts/{cart}/checkout` with its `Idempotency-Key`).
//!
//! Each `set_line` and `checkout` iteration works on its own cart, made
//! before the clock starts (`iter_custom`); reservations are spread over
//! 1,000 SKUs so holds do not pile up on one. Run with `cargo bench -p
//! commerce-benches --bench http`.

use std::fmt::Display;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use commerce_core::{
    CartId, Category, CheckoutRequest, Commerce, Currency, IdempotencyKey, InMemoryStore, Money,
    NewProduct, ProductId, Quantity, Shop, Sku, TaxCategory, TenantId, Variant,
};
use commerce_http::{CommerceHttp, TenantResolver};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tokio::runtime::Runtime;
use tower::ServiceExt;

const SKUS: usize = 1_000;
const PRICE: i64 = 10_000;

fn or_exit<T, E: Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("http bench: {what}: {error}");
            std::process::exit(1);
        }
    }
}

/// One shop with `SKUS` products of `Quantity::MAX` units, its router, and
/// a counter to spread reservations over the SKUs.
struct Fixture {
    shop: Shop,
    router: Router,
    products: Vec<(ProductId, Sku)>,
    next: usize,
    keys: usize,
}

impl Fixture {
    async fn new() -> Self {
        let tenant = or_exit("tenant", TenantId::parse("bench"));
        let commerce = or_exit(
            "engine",
            Commerce::builder().store(InMemoryStore::new()).build(),
        );
        let shop = commerce.shop(&tenant);
        let mut products = Vec::with_capacity(SKUS);
        for i in 0..SKUS {
            let sku = or_exit("sku", Sku::parse(format!("SKU-{i:04}")));
            let product = or_exit(
                "product",
                shop.add_product(NewProduct {
                    name: format!("Product {i}"),
                    category: or_exit("category", Category::parse("bench")),
                    tax_category: or_exit("tax category", TaxCategory::parse("standard")),
                    age_restricted: false,
                    variants: vec![Variant::new(sku.clone(), Money::new(PRICE, Currency::AUD))],
                    published: true,
                })
                .await,
            );
            or_exit(
                "stock",
                shop.receive_stock(&sku, or_exit("units", Quantity::new(Quantity::MAX)), None)
                    .await,
            );
            products.push((product.id(), sku));
        }
        let router = CommerceHttp::builder(commerce)
            .tenants(TenantResolver::Fixed(tenant))
            .build()
            .storefront();
        Self {
            shop,
            router,
            products,
            next: 0,
            keys: 0,
        }
    }

    fn sku(&mut self) -> Sku {
        self.next = (self.next + 1) % SKUS;
        self.products
            .get(self.next)
            .map(|(_, sku)| sku.clone())
            .unwrap_or_else(|| std::process::exit(1))
    }

    fn key(&mut self) -> IdempotencyKey {
        self.keys += 1;
        or_exit("key", IdempotencyKey::parse(format!("bench-{}", self.keys)))
    }

    async fn carts(&self, n: u64) -> Vec<CartId> {
        let mut carts = Vec::new();
        for _ in 0..n {
            carts.push(or_exit("cart", self.shop.create_cart(Currency::AUD).await).id);
        }
        carts
    }

    /// `n` carts of one line each, with a fresh idempotency key for each.
    async fn ready_to_check_out(&mut self, n: u64) -> (Vec<CartId>, Vec<IdempotencyKey>) {
        let carts = self.carts(n).await;
        let mut keys = Vec::with_capacity(carts.len());
        for cart in &carts {
            let sku = self.sku();
            or_exit("line", self.shop.set_line(*cart, &sku, Quantity::ONE).await);
            keys.push(self.key());
        }
        (carts, keys)
    }

    /// Sends `request` through the router and collects the body.
    async fn send(&self, request: axum::http::Request<Body>, expect: u16) {
        let response = or_exit("request", self.router.clone().oneshot(request).await);
        let status = response.status().as_u16();
        let body = or_exit("body", response.into_body().collect().await).to_bytes();
        if status != expect {
            eprintln!(
                "http bench: status {status}: {}",
                String::from_utf8_lossy(&body)
            );
            std::process::exit(1);
        }
        std::hint::black_box(body);
    }
}

fn request(method: &str, uri: &str, body: String) -> axum::http::Request<Body> {
    or_exit(
        "request",
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body)),
    )
}

fn http(c: &mut Criterion) {
    let runtime = or_exit("runtime", Runtime::new());
    let mut fixture = runtime.block_on(Fixture::new());
    let mut group = c.benchmark_group("http_overhead");

    let (product, _) = fixture
        .products
        .first()
        .cloned()
        .unwrap_or_else(|| std::process::exit(1));
    group.bench_function("read_product/facade", |b| {
        b.to_async(&runtime).iter(|| async {
            let product = or_exit("product", fixture.shop.product(product).await);
            for variant in product.variants() {
                std::hint::black_box(or_exit("stock", fixture.shop.stock(variant.sku()).await));
            }
        });
    });
    group.bench_function("read_product/http", |b| {
        b.to_async(&runtime).iter(|| async {
            fixture
                .send(
                    request("GET", &format!("/products/{product}"), String::new()),
                    200,
                )
                .await;
        });
    });

    group.bench_function("set_line/facade", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let carts = fixture.carts(iters).await;
                let skus: Vec<Sku> = (0..iters).map(|_| fixture.sku()).collect();
                let start = Instant::now();
                for (cart, sku) in carts.iter().zip(&skus) {
                    let cart = or_exit(
                        "set_line",
                        fixture.shop.set_line(*cart, sku, Quantity::ONE).await,
                    );
                    // The HTTP answer carries the cart's holds and pricing:
                    // the facade does the same work here.
                    std::hint::black_box(or_exit(
                        "holds",
                        fixture
                            .shop
                            .scope()
                            .inventory()
                            .cart_reservations(cart.id)
                            .await,
                    ));
                    std::hint::black_box(or_exit("price", fixture.shop.price_cart(cart.id).await));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("set_line/http", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let carts = fixture.carts(iters).await;
                let skus: Vec<Sku> = (0..iters).map(|_| fixture.sku()).collect();
                let start = Instant::now();
                for (cart, sku) in carts.iter().zip(&skus) {
                    let uri = format!("/carts/{cart}/lines/{sku}");
                    fixture
                        .send(request("PUT", &uri, r#"{"quantity":1}"#.to_owned()), 200)
                        .await;
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("checkout/facade", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let (carts, keys) = fixture.ready_to_check_out(iters).await;
                let start = Instant::now();
                for (cart, key) in carts.iter().zip(keys) {
                    let request =
                        CheckoutRequest::new(key).expecting_total(Money::new(PRICE, Currency::AUD));
                    std::hint::black_box(or_exit(
                        "checkout",
                        fixture.shop.checkout_with(*cart, &request).await,
                    ));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("checkout/http", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let (carts, keys) = fixture.ready_to_check_out(iters).await;
                let body = format!(r#"{{"expected_total":{{"amount":{PRICE},"currency":"AUD"}}}}"#);
                let start = Instant::now();
                for (cart, key) in carts.iter().zip(keys) {
                    let mut request =
                        request("POST", &format!("/carts/{cart}/checkout"), body.clone());
                    if let Ok(value) = axum::http::HeaderValue::from_str(key.as_str()) {
                        request.headers_mut().insert("idempotency-key", value);
                    }
                    fixture.send(request, 201).await;
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, http);
criterion_main!(benches);
