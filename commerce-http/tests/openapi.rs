//! The committed OpenAPI document (`commerce-http/openapi.json`) is the one
//! the code generates: a change to a route, a parameter or a wire type
//! fails here until the document is regenerated and reviewed with
//! `COMMERCE_UPDATE_OPENAPI=1 cargo test -p commerce-http --test openapi`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use commerce_core::Commerce;
use commerce_http::{ApiMounts, CommerceHttp};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

fn generated() -> String {
    let http = CommerceHttp::builder(Commerce::in_memory()).build();
    let document = http.openapi(&ApiMounts::default());
    let mut json = document.to_pretty_json().unwrap();
    json.push('\n');
    json
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = generated();
    if std::env::var_os("COMMERCE_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "commerce-http/openapi.json differs from the document the code generates: \
         run `COMMERCE_UPDATE_OPENAPI=1 cargo test -p commerce-http --test openapi` \
         and review the change"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_every_router() {
    let document: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/store/carts/{cart}/checkout",
        "/api/admin/orders",
        "/api/admin/keys",
        "/webhooks/payments",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    // Every operation documents its refusals as problem documents.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let default = &operation["responses"]["default"]["content"]["application/problem+json"];
            assert!(
                default.is_object(),
                "{method} {path} has no problem response"
            );
        }
    }
    // The admin API names its bearer scheme.
    let list = &document["paths"]["/api/admin/orders"]["get"];
    assert_eq!(list["security"][0]["admin_key"], serde_json::json!([]));
}
