//! The requests a run makes, as commerce-http's OpenAPI document states
//! them, and the parts of the answers it reads (the client's own wire
//! types: it reads only what it checks, so a new field never breaks it).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{Conn, Reply, Req, Transport};

/// The API's mounts, the admin key and the shop's currency.
#[derive(Debug, Clone)]
pub struct Api {
    pub storefront: String,
    pub admin: String,
    pub key: String,
    pub currency: String,
}

/// The category the run's products are listed under.
const CATEGORY: &str = "load-test";

impl Api {
    // The storefront.

    pub fn list_products(&self, limit: u32) -> Req {
        Req::get(format!("{}/products?limit={limit}", self.storefront))
    }

    pub fn product(&self, product: &str) -> Req {
        Req::get(format!("{}/products/{product}", self.storefront))
    }

    pub fn availability(&self, product: &str) -> Req {
        Req::get(format!(
            "{}/products/{product}/availability",
            self.storefront
        ))
    }

    pub fn create_cart(&self) -> Req {
        Req::post(
            format!("{}/carts", self.storefront),
            &json!({ "currency": self.currency }),
        )
    }

    pub fn set_line(&self, cart: &str, sku: &str, quantity: u32) -> Req {
        Req::put(
            format!("{}/carts/{cart}/lines/{sku}", self.storefront),
            &json!({ "quantity": quantity }),
        )
    }

    /// A checkout with `Idempotency-Key: key` and the total the buyer was
    /// shown.
    pub fn checkout(&self, cart: &str, key: &str, expected_total: &Value) -> Req {
        Req::post(
            format!("{}/carts/{cart}/checkout", self.storefront),
            &json!({ "expected_total": expected_total }),
        )
        .header("idempotency-key", key.to_owned())
    }

    // The admin API.

    /// A published product with one variant, `sku`, at `cents`.
    pub fn create_product(&self, name: &str, sku: &str, cents: i64) -> Req {
        Req::post(
            format!("{}/products", self.admin),
            &json!({
                "name": name,
                "category": CATEGORY,
                "tax_category": "standard",
                "age_restricted": false,
                "published": true,
                "variants": [{
                    "sku": sku,
                    "options": {},
                    "price": { "amount": cents, "currency": self.currency },
                }],
            }),
        )
        .bearer(&self.key)
    }

    /// A receipt of `quantity` units, counted once per `reference`.
    pub fn receive(&self, sku: &str, quantity: u32, reference: &str) -> Req {
        Req::post(
            format!("{}/stock/{sku}/receipts", self.admin),
            &json!({ "quantity": quantity, "note": "load client" }),
        )
        .header("idempotency-key", reference.to_owned())
        .bearer(&self.key)
    }

    pub fn stock(&self, sku: &str) -> Req {
        Req::get(format!("{}/stock/{sku}", self.admin)).bearer(&self.key)
    }

    /// A page of orders placed at or after `placed_from` (RFC 3339, UTC).
    pub fn orders(&self, placed_from: &str, cursor: Option<&str>) -> Req {
        let mut path = format!("{}/orders?limit=100&placed_from={placed_from}", self.admin);
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.push_str(&query_escape(cursor));
        }
        Req::get(path).bearer(&self.key)
    }
}

/// Percent-encodes everything but the unreserved characters.
fn query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

/// A setup step that did not go as the API says it should.
#[derive(Debug)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Transport> for SetupError {
    fn from(error: Transport) -> Self {
        Self(error.to_string())
    }
}

impl From<String> for SetupError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// Sends `req` and requires `expected` status, reading the body as `T`.
pub async fn expect<T: serde::de::DeserializeOwned>(
    conn: &mut Conn,
    what: &str,
    expected: u16,
    req: Req,
) -> Result<T, SetupError> {
    let reply = conn.send(req).await?;
    require(what, expected, &reply)?;
    Ok(reply.json()?)
}

/// `Ok` when `reply` has the `expected` status.
pub fn require(what: &str, expected: u16, reply: &Reply) -> Result<(), SetupError> {
    if reply.status.as_u16() == expected {
        Ok(())
    } else {
        Err(SetupError(format!(
            "{what}: expected {expected}, got {}: {}",
            reply.status,
            reply.excerpt()
        )))
    }
}

/// A cart answer: the cart's id, its holds and its total.
#[derive(Debug, Deserialize)]
pub struct CartView {
    pub cart: CartHead,
    pub reservations: Vec<Hold>,
    pub pricing: Pricing,
}

#[derive(Debug, Deserialize)]
pub struct CartHead {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Hold {
    pub sku: String,
    pub quantity: u64,
}

#[derive(Debug, Deserialize)]
pub struct Pricing {
    pub totals: Totals,
}

#[derive(Debug, Deserialize)]
pub struct Totals {
    /// Sent back as the checkout's `expected_total`, as received.
    pub grand_total: Value,
}

/// A checkout's answer.
#[derive(Debug, Deserialize)]
pub struct CheckoutView {
    pub order: OrderHead,
}

#[derive(Debug, Deserialize)]
pub struct OrderHead {
    pub id: String,
}

/// A product's id (the admin's answer to a creation).
#[derive(Debug, Deserialize)]
pub struct ProductHead {
    pub id: String,
}

/// A SKU's stock level.
#[derive(Debug, Deserialize)]
pub struct StockLevel {
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
}

/// A page of orders, with each order's SKUs.
#[derive(Debug, Deserialize)]
pub struct OrderList {
    pub data: Vec<OrderLines>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OrderLines {
    pub id: String,
    pub lines: Vec<LineSku>,
}

#[derive(Debug, Deserialize)]
pub struct LineSku {
    pub sku: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        Api {
            storefront: "/api/store".to_owned(),
            admin: "/api/admin".to_owned(),
            key: "k".to_owned(),
            currency: "AUD".to_owned(),
        }
    }

    #[test]
    fn cursors_are_escaped() {
        assert_eq!(query_escape("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(query_escape("Zz-_.~9"), "Zz-_.~9");
    }

    #[test]
    fn wire_types_read_the_documented_answers() {
        let cart: CartView = serde_json::from_value(json!({
            "cart": { "id": "c1", "lines": [] },
            "reservations": [{ "sku": "S", "quantity": 1, "expires_at": "2026-01-01T00:00:00Z" }],
            "pricing": { "totals": { "grand_total": { "amount": 100, "currency": "AUD" } } },
        }))
        .unwrap();
        assert_eq!(cart.cart.id, "c1");
        assert_eq!(cart.reservations.len(), 1);
        assert_eq!(
            cart.pricing.totals.grand_total,
            json!({ "amount": 100, "currency": "AUD" })
        );
        let page: OrderList = serde_json::from_value(json!({
            "data": [{ "id": "o1", "lines": [{ "sku": "S" }] }],
        }))
        .unwrap();
        assert_eq!(page.next_cursor, None);
        assert_eq!(page.data.len(), 1);
        let _ = api().orders("2026-01-01T00:00:00Z", Some("x y"));
    }
}
