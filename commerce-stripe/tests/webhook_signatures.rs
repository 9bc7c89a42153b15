//! `Stripe-Signature` vectors, checked through the gateway against a moving
//! test clock. No network.

// Helpers outside `#[test]` functions fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: panicking is how they fail a test"
)]

mod common;

use std::time::Duration;

use commerce_core::testkit::START_UNIX;
use commerce_core::{
    Clock, Currency, ManualClock, Money, PaymentEventKind, PaymentGateway, WebhookError,
    WebhookOutcome, WebhookRequest,
};
use commerce_stripe::{SIGNATURE_HEADER, StripeGateway, signature_header, verify_signature};
use common::{FakeStripe, WEBHOOK_SECRET, gateway_builder};

/// A vector produced by Stripe's official Python library, stripe 16.1.0
/// from PyPI, with its own signing function, run from this crate's
/// directory:
///
/// ```text
/// python3 -m venv /tmp/stripe-venv && /tmp/stripe-venv/bin/pip install stripe
/// /tmp/stripe-venv/bin/python -c "import stripe; print(stripe.VERSION); print(stripe.WebhookSignature.generate_signature_header(open('tests/fixtures/stripe_python_vector.json').read(), 'whsec_commerce_official_vector', timestamp=1767225600))"
/// 16.1.0
/// t=1767225600,v1=a28fdb911b64271d3877a9b0cc1e1af160ae5836bf92cefb58ab00222728fd9e
/// ```
///
/// (`WebhookSignature.generate_signature_header(payload, secret, timestamp=None)`
/// is a classmethod in `stripe/_webhook.py` of that release.)
mod official {
    pub const SECRET: &str = "whsec_commerce_official_vector";
    pub const TIMESTAMP: i64 = 1_767_225_600;
    pub const PAYLOAD: &str = include_str!("fixtures/stripe_python_vector.json");
    pub const HEADER: &str =
        "t=1767225600,v1=a28fdb911b64271d3877a9b0cc1e1af160ae5836bf92cefb58ab00222728fd9e";

    /// Same library and version, another secret (the second of a rotation),
    /// an event type this crate does not know:
    ///
    /// ```text
    /// /tmp/stripe-venv/bin/python -c "import stripe; print(stripe.WebhookSignature.generate_signature_header('{\"id\":\"evt_unknown_1\",\"object\":\"event\",\"type\":\"billing.meter.future_event\",\"data\":{\"object\":{\"id\":\"x\"}}}', 'whsec_commerce_rotated', timestamp=1767225600))"
    /// t=1767225600,v1=803d59b223c6eae8c2d9c30dc9ece63c56f9730d391aafe95eca3241d2653acf
    /// ```
    pub const ROTATED_SECRET: &str = "whsec_commerce_rotated";
    pub const ROTATED_PAYLOAD: &str = r#"{"id":"evt_unknown_1","object":"event","type":"billing.meter.future_event","data":{"object":{"id":"x"}}}"#;
    pub const ROTATED_HEADER: &str =
        "t=1767225600,v1=803d59b223c6eae8c2d9c30dc9ece63c56f9730d391aafe95eca3241d2653acf";
}

async fn gateway(secrets: &[&str]) -> StripeGateway {
    // The fake is never called by webhooks; it only gives the builder a URL.
    let fake = FakeStripe::start().await;
    let mut builder = StripeGateway::builder(common::SECRET_KEY)
        .api_base(&fake.base)
        .success_url("https://shop.example/ok");
    for secret in secrets {
        builder = builder.webhook_secret(*secret);
    }
    builder.build().unwrap()
}

fn delivery(body: &str, header: &str) -> WebhookRequest {
    WebhookRequest::new(body.as_bytes().to_vec()).with_header(SIGNATURE_HEADER, header)
}

fn at(seconds: i64) -> commerce_core::Timestamp {
    ManualClock::at_unix(seconds).now()
}

const BODY: &str =
    r#"{"id":"evt_1","object":"event","type":"customer.created","data":{"object":{}}}"#;

#[tokio::test]
async fn the_official_library_vector_verifies_and_parses() {
    let gateway = gateway(&[official::SECRET]).await;
    let outcome = gateway
        .parse_webhook(
            &delivery(official::PAYLOAD, official::HEADER),
            at(official::TIMESTAMP + 10),
        )
        .await
        .unwrap();
    let WebhookOutcome::Event(event) = outcome else {
        panic!("expected an event, got {outcome:?}");
    };
    assert_eq!(event.id.as_str(), "evt_1QvOfficialVector0001");
    assert_eq!(event.tenant.as_str(), "shop-a");
    assert_eq!(
        event.order.to_string(),
        "7d3f9a52-1c4e-4b8a-9f0e-2a6b5c8d1e47"
    );
    assert_eq!(
        event.kind,
        PaymentEventKind::Succeeded {
            amount: Money::new(99_900, Currency::AUD),
            payment_ref: Some("pi_3QvOfficialVector".into()),
        }
    );
    // This crate's signer agrees with Stripe's, byte for byte.
    assert_eq!(
        signature_header(
            official::SECRET,
            official::TIMESTAMP,
            official::PAYLOAD.as_bytes()
        ),
        official::HEADER
    );
}

#[tokio::test]
async fn the_official_vector_under_a_rotated_secret_of_an_unknown_type_is_acknowledged() {
    let gateway = gateway(&[official::SECRET, official::ROTATED_SECRET]).await;
    assert_eq!(
        gateway
            .parse_webhook(
                &delivery(official::ROTATED_PAYLOAD, official::ROTATED_HEADER),
                at(official::TIMESTAMP),
            )
            .await,
        Ok(WebhookOutcome::Ignored {
            event_type: "billing.meter.future_event".into()
        })
    );
}

#[tokio::test]
async fn valid_tampered_and_wrong_secret() {
    let gateway = gateway(&[WEBHOOK_SECRET]).await;
    let now = at(START_UNIX);
    let header = signature_header(WEBHOOK_SECRET, START_UNIX, BODY.as_bytes());
    assert_eq!(
        gateway.parse_webhook(&delivery(BODY, &header), now).await,
        Ok(WebhookOutcome::Ignored {
            event_type: "customer.created".into()
        })
    );
    // One byte changed in the body.
    let tampered = BODY.replace("evt_1", "evt_2");
    assert_eq!(
        gateway
            .parse_webhook(&delivery(&tampered, &header), now)
            .await,
        Err(WebhookError::BadSignature)
    );
    // Whitespace added: the signature covers the raw bytes.
    assert_eq!(
        gateway
            .parse_webhook(&delivery(&format!("{BODY}\n"), &header), now)
            .await,
        Err(WebhookError::BadSignature)
    );
    // Signed with another secret.
    let other = signature_header("whsec_someone_else", START_UNIX, BODY.as_bytes());
    assert_eq!(
        gateway.parse_webhook(&delivery(BODY, &other), now).await,
        Err(WebhookError::BadSignature)
    );
    // The signed timestamp was changed.
    let moved = header.replace(&format!("t={START_UNIX}"), &format!("t={}", START_UNIX + 1));
    assert_eq!(
        gateway.parse_webhook(&delivery(BODY, &moved), now).await,
        Err(WebhookError::BadSignature)
    );
}

#[tokio::test]
async fn either_secret_of_a_rotation_is_accepted() {
    let gateway = gateway(&["whsec_old", "whsec_new"]).await;
    let now = at(START_UNIX);
    for secret in ["whsec_old", "whsec_new"] {
        let header = signature_header(secret, START_UNIX, BODY.as_bytes());
        assert!(
            gateway
                .parse_webhook(&delivery(BODY, &header), now)
                .await
                .is_ok(),
            "{secret}"
        );
    }
    let header = signature_header("whsec_retired", START_UNIX, BODY.as_bytes());
    assert_eq!(
        gateway.parse_webhook(&delivery(BODY, &header), now).await,
        Err(WebhookError::BadSignature)
    );
}

#[tokio::test]
async fn several_v1_of_which_one_is_valid() {
    let gateway = gateway(&[WEBHOOK_SECRET]).await;
    let now = at(START_UNIX);
    let good = signature_header(WEBHOOK_SECRET, START_UNIX, BODY.as_bytes());
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let bad_v1 = "0".repeat(64);
    // Stripe sends one v1 per active secret while a secret is rolled; and a
    // v0 (legacy scheme) is ignored, never trusted.
    for header in [
        format!("t={START_UNIX},v1={bad_v1},v1={good_v1}"),
        format!("t={START_UNIX},v1={good_v1},v1={bad_v1}"),
        format!("t={START_UNIX},v1=nothex,v0={bad_v1},v1={good_v1}"),
        format!("v1={good_v1},t={START_UNIX}"),
    ] {
        assert!(
            gateway
                .parse_webhook(&delivery(BODY, &header), now)
                .await
                .is_ok(),
            "{header}"
        );
    }
    // A valid signature under the v0 scheme alone does not count.
    let only_v0 = format!("t={START_UNIX},v0={good_v1},v1={bad_v1}");
    assert_eq!(
        gateway.parse_webhook(&delivery(BODY, &only_v0), now).await,
        Err(WebhookError::BadSignature)
    );
}

#[tokio::test]
async fn timestamps_too_old_or_too_far_ahead_by_the_test_clock() {
    let fake = FakeStripe::start().await;
    let gateway = gateway_builder(&fake).build().unwrap();
    let clock = ManualClock::at_unix(START_UNIX);
    let header = signature_header(WEBHOOK_SECRET, START_UNIX, BODY.as_bytes());
    let request = delivery(BODY, &header);

    clock.advance(Duration::from_secs(300));
    assert!(
        gateway.parse_webhook(&request, clock.now()).await.is_ok(),
        "300 s old is within"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        gateway.parse_webhook(&request, clock.now()).await,
        Err(WebhookError::TimestampOutOfTolerance {
            age_seconds: 301,
            tolerance_seconds: 300
        })
    );
    // Signed 301 s in the future of the clock.
    clock.set(at(START_UNIX - 301));
    assert_eq!(
        gateway.parse_webhook(&request, clock.now()).await,
        Err(WebhookError::TimestampOutOfTolerance {
            age_seconds: -301,
            tolerance_seconds: 300
        })
    );
    clock.set(at(START_UNIX - 300));
    assert!(gateway.parse_webhook(&request, clock.now()).await.is_ok());

    // A configured tolerance.
    let strict = gateway_builder(&fake)
        .webhook_tolerance(Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(matches!(
        strict.parse_webhook(&request, at(START_UNIX + 61)).await,
        Err(WebhookError::TimestampOutOfTolerance {
            tolerance_seconds: 60,
            ..
        })
    ));
    // A replay far in the past with a forged timestamp fails the signature
    // before the clock is even looked at.
    let forged = header.replace(&START_UNIX.to_string(), &(START_UNIX + 10_000).to_string());
    assert_eq!(
        gateway
            .parse_webhook(&delivery(BODY, &forged), at(START_UNIX + 10_000))
            .await,
        Err(WebhookError::BadSignature)
    );
}

#[tokio::test]
async fn missing_empty_and_malformed_headers() {
    let gateway = gateway(&[WEBHOOK_SECRET]).await;
    let now = at(START_UNIX);
    let good = signature_header(WEBHOOK_SECRET, START_UNIX, BODY.as_bytes());
    let good_v1 = good.split_once(",v1=").unwrap().1.to_owned();

    let missing = WebhookRequest::new(BODY.as_bytes().to_vec());
    assert_eq!(
        gateway.parse_webhook(&missing, now).await,
        Err(WebhookError::MissingSignature)
    );
    // The header under another name is still missing.
    let misnamed =
        WebhookRequest::new(BODY.as_bytes().to_vec()).with_header("X-Signature", good.clone());
    assert_eq!(
        gateway.parse_webhook(&misnamed, now).await,
        Err(WebhookError::MissingSignature)
    );
    for empty in ["", "   "] {
        assert_eq!(
            gateway.parse_webhook(&delivery(BODY, empty), now).await,
            Err(WebhookError::MissingSignature),
            "{empty:?}"
        );
    }
    for malformed in [
        "garbage".to_owned(),
        format!("t={START_UNIX}"),
        format!("v1={good_v1}"),
        format!("t=soon,v1={good_v1}"),
        format!("t={START_UNIX},t={START_UNIX},v1={good_v1}"),
        format!("t={START_UNIX};v1={good_v1}"),
        format!("t={START_UNIX},,v1={good_v1}"),
        format!("t={START_UNIX},v0={good_v1}"),
    ] {
        assert_eq!(
            gateway
                .parse_webhook(&delivery(BODY, &malformed), now)
                .await,
            Err(WebhookError::MalformedSignature),
            "{malformed}"
        );
    }
    // Header names are case-insensitive, as HTTP says.
    let lower = WebhookRequest::new(BODY.as_bytes().to_vec()).with_header("stripe-signature", good);
    assert!(gateway.parse_webhook(&lower, now).await.is_ok());
}

#[test]
fn the_verifier_alone_returns_the_signed_timestamp() {
    let header = signature_header("whsec_a", 1_000, b"{}");
    assert_eq!(
        verify_signature(
            Some(&header),
            b"{}",
            &["whsec_b", "whsec_a"],
            at(1_100),
            Duration::from_secs(300)
        ),
        Ok(1_000)
    );
    assert_eq!(
        verify_signature(
            Some(&header),
            b"{}",
            &[] as &[&str],
            at(1_000),
            Duration::from_secs(300)
        ),
        Err(WebhookError::BadSignature)
    );
}

#[tokio::test]
async fn a_genuine_body_that_is_not_an_event_is_malformed() {
    let gateway = gateway(&[WEBHOOK_SECRET]).await;
    for body in ["not json", r#"{"type":"checkout.session.completed"}"#, "[]"] {
        let header = signature_header(WEBHOOK_SECRET, START_UNIX, body.as_bytes());
        assert!(
            matches!(
                gateway
                    .parse_webhook(&delivery(body, &header), at(START_UNIX))
                    .await,
                Err(WebhookError::MalformedBody(_))
            ),
            "{body}"
        );
    }
}
