//! Reading a verified Stripe event, leniently, into the core's payment events.
//!
//! Only a minimal envelope is read (`id`, `type`, `data.object`) and, from
//! the object, only the fields a mapping needs. Unknown event types, unknown
//! fields and API-version differences are not errors; events the core does
//! not act on are acknowledged as [`WebhookOutcome::Ignored`].

use commerce_core::{
    OrderId, PaymentEvent, PaymentEventId, PaymentEventKind, TenantId, WebhookError, WebhookOutcome,
};
use serde::Deserialize;
use serde_json::Value;

use crate::amount;

/// The metadata key carrying the order id, on the Checkout Session and on
/// its PaymentIntent (whose charges inherit it).
pub const METADATA_ORDER: &str = "commerce_order_id";
/// The metadata key carrying the tenant, next to [`METADATA_ORDER`].
pub const METADATA_TENANT: &str = "commerce_tenant";
/// The metadata key carrying the core's refund id, on refunds.
pub const METADATA_REFUND: &str = "commerce_refund_id";
/// The metadata key carrying the core's refund reason, on refunds.
pub const METADATA_REFUND_REASON: &str = "commerce_refund_reason";

/// The event types this crate maps to payment events.
pub const HANDLED_EVENTS: [&str; 5] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
];

#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(default)]
    object: Value,
}

fn malformed(what: impl Into<String>) -> WebhookError {
    WebhookError::MalformedBody(what.into())
}

/// A string field, or the `id` of an expanded object in its place.
fn id_field(object: &Value, name: &str) -> Option<String> {
    match object.get(name)? {
        Value::String(id) => Some(id.clone()),
        Value::Object(expanded) => expanded.get("id")?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn str_field<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get(name)?.as_str()
}

fn metadata<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(key)?.as_str()
}

/// The order and tenant an object names, `None` when it carries no order
/// metadata at all (an object this library did not create).
fn order_of(
    object: &Value,
    fallback_reference: bool,
) -> Result<Option<(TenantId, OrderId)>, WebhookError> {
    let order = metadata(object, METADATA_ORDER).or_else(|| {
        fallback_reference
            .then(|| str_field(object, "client_reference_id"))
            .flatten()
    });
    let (Some(order), Some(tenant)) = (order, metadata(object, METADATA_TENANT)) else {
        return Ok(None);
    };
    let order = order
        .parse::<OrderId>()
        .map_err(|e| malformed(format!("order id {order:?}: {e}")))?;
    let tenant = TenantId::parse(tenant).map_err(|e| malformed(format!("tenant: {e}")))?;
    Ok(Some((tenant, order)))
}

fn amount_of(object: &Value, field: &str) -> Result<commerce_core::Money, WebhookError> {
    let amount = object
        .get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| malformed(format!("missing {field}")))?;
    let currency = str_field(object, "currency").ok_or_else(|| malformed("missing currency"))?;
    amount::from_stripe(amount, currency).map_err(malformed)
}

/// Reads a verified body into what it means for the core.
pub(crate) fn parse_event(body: &[u8]) -> Result<WebhookOutcome, WebhookError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not a Stripe event: {e}")))?;
    let ignored = |event_type: String| Ok(WebhookOutcome::Ignored { event_type });
    if !HANDLED_EVENTS.contains(&envelope.event_type.as_str()) {
        return ignored(envelope.event_type);
    }
    let object = envelope.data.map(|d| d.object).unwrap_or(Value::Null);
    let is_session = envelope.event_type.starts_with("checkout.session.");
    let Some((tenant, order)) = order_of(&object, is_session)? else {
        // Not one of ours (another integration on the same account).
        return ignored(envelope.event_type);
    };
    let kind = match envelope.event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            // `unpaid` on completion: a delayed method (bank debit...) is
            // still pending; its async_payment_* event follows.
            if str_field(&object, "payment_status") != Some("paid") {
                return ignored(envelope.event_type);
            }
            PaymentEventKind::Succeeded {
                amount: amount_of(&object, "amount_total")?,
                payment_ref: id_field(&object, "payment_intent"),
            }
        }
        "checkout.session.async_payment_failed" => PaymentEventKind::Failed {
            reason: "the delayed payment method failed (checkout.session.async_payment_failed)"
                .into(),
        },
        "checkout.session.expired" => PaymentEventKind::SessionExpired,
        "charge.refunded" => PaymentEventKind::Refunded {
            amount: amount_of(&object, "amount_refunded")?,
        },
        _ => return ignored(envelope.event_type),
    };
    let id = PaymentEventId::parse(envelope.id).map_err(|e| malformed(e.to_string()))?;
    Ok(WebhookOutcome::Event(PaymentEvent {
        id,
        tenant,
        order,
        kind,
    }))
}

#[cfg(test)]
mod tests {
    use commerce_core::{Currency, Money};
    use serde_json::json;

    use super::*;

    const ORDER: &str = "0b5e7a4c-3f56-4d6a-9d55-3a6f1e2b7c10";

    fn event(event_type: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "evt_1", "object": "event", "type": event_type,
            "api_version": "2099-01-01.future", "created": 1, "livemode": false,
            "data": { "object": object }
        }))
        .unwrap()
    }

    fn session(payment_status: &str) -> Value {
        json!({
            "id": "cs_1", "object": "checkout.session", "payment_status": payment_status,
            "amount_total": 4998, "currency": "aud", "payment_intent": "pi_1",
            "client_reference_id": ORDER,
            "metadata": { METADATA_ORDER: ORDER, METADATA_TENANT: "shop-a" },
            "brand_new_field": { "nested": [1, 2, 3] }
        })
    }

    fn expect_event(body: &[u8]) -> PaymentEvent {
        match parse_event(body).unwrap() {
            WebhookOutcome::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn completed_and_paid_is_a_success() {
        let e = expect_event(&event("checkout.session.completed", session("paid")));
        assert_eq!(e.id.as_str(), "evt_1");
        assert_eq!(e.tenant.as_str(), "shop-a");
        assert_eq!(e.order.to_string(), ORDER);
        assert_eq!(
            e.kind,
            PaymentEventKind::Succeeded {
                amount: Money::new(4998, Currency::AUD),
                payment_ref: Some("pi_1".into())
            }
        );
    }

    #[test]
    fn completed_but_unpaid_is_ignored() {
        for status in ["unpaid", "no_payment_required", "something_new"] {
            assert_eq!(
                parse_event(&event("checkout.session.completed", session(status))).unwrap(),
                WebhookOutcome::Ignored {
                    event_type: "checkout.session.completed".into()
                }
            );
        }
    }

    #[test]
    fn async_outcomes_and_expiry() {
        let e = expect_event(&event(
            "checkout.session.async_payment_succeeded",
            session("paid"),
        ));
        assert!(matches!(e.kind, PaymentEventKind::Succeeded { .. }));
        let e = expect_event(&event(
            "checkout.session.async_payment_failed",
            session("unpaid"),
        ));
        assert!(matches!(e.kind, PaymentEventKind::Failed { .. }));
        let e = expect_event(&event("checkout.session.expired", session("unpaid")));
        assert_eq!(e.kind, PaymentEventKind::SessionExpired);
    }

    #[test]
    fn expanded_payment_intent_is_read_by_id() {
        let mut object = session("paid");
        object["payment_intent"] = json!({ "id": "pi_expanded", "object": "payment_intent" });
        let e = expect_event(&event("checkout.session.completed", object));
        assert!(matches!(
            e.kind,
            PaymentEventKind::Succeeded { payment_ref: Some(ref r), .. } if r == "pi_expanded"
        ));
    }

    #[test]
    fn charge_refunded_uses_payment_intent_metadata() {
        let charge = json!({
            "id": "ch_1", "object": "charge", "amount": 4998, "amount_refunded": 1000,
            "currency": "aud", "payment_intent": "pi_1", "refunded": false,
            "metadata": { METADATA_ORDER: ORDER, METADATA_TENANT: "shop-a" }
        });
        let e = expect_event(&event("charge.refunded", charge));
        assert_eq!(
            e.kind,
            PaymentEventKind::Refunded {
                amount: Money::new(1000, Currency::AUD)
            }
        );
    }

    #[test]
    fn events_of_other_integrations_are_ignored() {
        let foreign =
            json!({ "id": "cs_x", "payment_status": "paid", "amount_total": 1, "currency": "usd" });
        assert_eq!(
            parse_event(&event("checkout.session.completed", foreign)).unwrap(),
            WebhookOutcome::Ignored {
                event_type: "checkout.session.completed".into()
            }
        );
    }

    #[test]
    fn unknown_types_are_ignored_and_bad_bodies_refused() {
        assert_eq!(
            parse_event(br#"{"id":"evt_2","type":"customer.created","extra":1}"#).unwrap(),
            WebhookOutcome::Ignored {
                event_type: "customer.created".into()
            }
        );
        for bad in [&b"not json"[..], br#"{"type":"x"}"#, br#"[1,2]"#] {
            assert!(matches!(
                parse_event(bad),
                Err(WebhookError::MalformedBody(_))
            ));
        }
        let mut object = session("paid");
        object["metadata"][METADATA_ORDER] = json!("not-a-uuid");
        assert!(matches!(
            parse_event(&event("checkout.session.completed", object)),
            Err(WebhookError::MalformedBody(_))
        ));
        let mut object = session("paid");
        object["currency"] = json!("xyz");
        assert!(matches!(
            parse_event(&event("checkout.session.completed", object)),
            Err(WebhookError::MalformedBody(_))
        ));
    }
}
