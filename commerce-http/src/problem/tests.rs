//! The mapping of every core error, and the pointers of data errors.

use commerce_core::order::OrderStatus;
use commerce_core::payment::{GatewayError, WebhookError};
use commerce_core::tax::TaxError;
use commerce_core::text::{TextField, TextReason};
use commerce_core::{
    AttributeKey, BackendError, CartAttributeError, CartId, Currency, Entity, IdempotencyKey,
    Money, MoneyError, OrderId, ParseError, PromotionId, RefundId, Sku, TenantId,
};

use super::*;

fn sku() -> Sku {
    Sku::parse("GPU").unwrap()
}

/// Every core error variant, with the status and code it maps to.
#[test]
fn every_core_error_has_one_status_and_code() {
    let aud = |minor| Money::new(minor, Currency::AUD);
    let order = OrderId::new();
    let cases: Vec<(Error, u16, &str)> = vec![
        (
            Error::InsufficientStock {
                sku: sku(),
                requested: 2,
                available: 0,
            },
            409,
            "insufficient_stock",
        ),
        (Error::not_found(Entity::Cart, "x"), 404, "not_found"),
        (
            Error::CartCheckedOut {
                cart: CartId::new(),
                order,
            },
            409,
            "cart_checked_out",
        ),
        (Error::EmptyCart(CartId::new()), 422, "empty_cart"),
        (
            Error::CurrencyMismatch {
                expected: Currency::AUD,
                found: Currency::USD,
            },
            422,
            "currency_mismatch",
        ),
        (
            Error::ReservationLapsed { sku: sku() },
            409,
            "reservation_lapsed",
        ),
        (Error::CartChanged(CartId::new()), 409, "cart_changed"),
        (
            Error::IdempotencyKeyReused {
                key: IdempotencyKey::parse("k").unwrap(),
                order,
            },
            422,
            "idempotency_key_reused",
        ),
        (
            Error::InvalidTransition {
                order,
                from: OrderStatus::Paid,
                to: OrderStatus::Cancelled,
            },
            409,
            "invalid_transition",
        ),
        (
            Error::StockBelowHeld {
                sku: sku(),
                requested: 1,
                held: 2,
            },
            409,
            "stock_below_held",
        ),
        (Error::StockOverflow { sku: sku() }, 422, "stock_overflow"),
        (Error::SkuTaken { sku: sku() }, 409, "sku_taken"),
        (Error::InvalidProduct("x".into()), 422, "invalid_product"),
        (
            Error::InvalidText {
                field: TextField::ProductName,
                reason: TextReason::NulByte { offset: 1 },
            },
            422,
            "invalid_text",
        ),
        (Error::InvalidConfig("x".into()), 422, "invalid_settings"),
        (
            Error::TenantMismatch {
                expected: TenantId::parse("a").unwrap(),
                found: TenantId::parse("b").unwrap(),
            },
            400,
            "tenant_mismatch",
        ),
        (
            Error::AgeVerificationRequired { skus: vec![sku()] },
            422,
            "age_verification_required",
        ),
        (Error::NotAcceptingOrders, 409, "not_accepting_orders"),
        (
            Error::PriceChanged {
                expected: aud(1),
                actual: aud(2),
            },
            409,
            "price_changed",
        ),
        (
            Error::PromotionExhausted {
                promotion: PromotionId::parse("p").unwrap(),
                per_customer: true,
            },
            409,
            "promotion_exhausted",
        ),
        (
            Error::InvalidPromotion(
                commerce_core::Promotion::new(commerce_core::PromotionSpec {
                    id: PromotionId::parse("p").unwrap(),
                    name: String::new(),
                    priority: 0,
                    exclusive: false,
                    group: None,
                    conditions: vec![],
                    action: commerce_core::promotion::Action::AmountOffCart { amount: aud(-1) },
                    cap: None,
                    max_units_per_line: None,
                    usage_limit: None,
                    per_customer_limit: None,
                })
                .unwrap_err(),
            ),
            422,
            "invalid_promotion",
        ),
        (
            Error::Refund(RefundError::IdReused {
                refund: RefundId::parse("r").unwrap(),
            }),
            422,
            "refund_id_reused",
        ),
        (
            Error::Refund(RefundError::ExceedsRefundable {
                order,
                requested: aud(2),
                refundable: aud(1),
            }),
            409,
            "refund_exceeds_refundable",
        ),
        (
            Error::Refund(RefundError::ExceedsLine {
                order,
                sku: sku(),
                requested: 2,
                refundable: 1,
            }),
            409,
            "refund_exceeds_line",
        ),
        (
            Error::Refund(RefundError::InvalidAmount {
                order,
                requested: aud(0),
            }),
            422,
            "invalid_refund_amount",
        ),
        (
            Error::CartLimit {
                cart: CartId::new(),
                per_line: true,
                max: 3,
            },
            422,
            "cart_limit",
        ),
        (
            AttributeKey::parse("Not A Key").unwrap_err().into(),
            422,
            "invalid_attribute_key",
        ),
        (
            CartAttributeError::TooMany {
                key: key("pickup.slot"),
                max: 16,
            }
            .into(),
            422,
            "too_many_attributes",
        ),
        (
            CartAttributeError::InvalidValue {
                key: key("email"),
                reason: TextReason::NulByte { offset: 0 },
            }
            .into(),
            422,
            "invalid_attribute_value",
        ),
        (
            Error::PaymentWindowOpen {
                order,
                closes_at: chrono_now(),
            },
            409,
            "payment_window_open",
        ),
        (
            Error::Tax(TaxError::UnknownCategory(
                commerce_core::TaxCategory::parse("alcohol").unwrap(),
            )),
            409,
            "tax_rate_missing",
        ),
        (
            Error::Tax(TaxError::Service {
                message: "down".into(),
                retryable: true,
            }),
            503,
            "tax_unavailable",
        ),
        (
            Error::Tax(TaxError::Service {
                message: "bad".into(),
                retryable: false,
            }),
            500,
            "internal",
        ),
        (
            Error::Money(MoneyError::Overflow),
            422,
            "amount_out_of_range",
        ),
        (
            Error::Parse(ParseError {
                field: "sku",
                reason: "empty".into(),
            }),
            400,
            "invalid_parameter",
        ),
        (
            Error::Gateway(GatewayError::Transient {
                message: "timeout".into(),
            }),
            502,
            "payment_gateway_error",
        ),
        (
            Error::Webhook(WebhookError::MalformedBody("x".into())),
            400,
            "webhook_rejected",
        ),
        (
            BackendError::new(BackendErrorKind::Conflict, "secret driver text").into(),
            409,
            "conflict",
        ),
        (
            BackendError::new(BackendErrorKind::Retryable, "secret driver text").into(),
            503,
            "retry",
        ),
        (
            BackendError::new(BackendErrorKind::Unavailable, "secret driver text").into(),
            503,
            "unavailable",
        ),
        (
            BackendError::new(BackendErrorKind::Busy, "secret driver text").into(),
            503,
            "busy",
        ),
        (
            BackendError::new(BackendErrorKind::Other, "secret driver text").into(),
            500,
            "internal",
        ),
    ];
    for (error, status, code) in cases {
        let shown = format!("{error:?}");
        let problem = Problem::from(error);
        assert_eq!(
            (problem.status().as_u16(), problem.code()),
            (status, code),
            "{shown}"
        );
        let body = problem.body().to_string();
        assert!(!body.contains("secret driver text"), "{body}");
    }
}

fn chrono_now() -> commerce_core::Timestamp {
    use commerce_core::Clock;
    commerce_core::ManualClock::at_unix(0).now()
}

#[test]
fn insufficient_stock_carries_the_real_available_count() {
    let problem = Problem::from(Error::InsufficientStock {
        sku: sku(),
        requested: 3,
        available: 1,
    });
    let body = problem.body();
    assert_eq!(body["sku"], "GPU");
    assert_eq!(body["requested"], 3);
    assert_eq!(body["available"], 1);
    assert_eq!(body["status"], 409);
}

fn key(text: &str) -> AttributeKey {
    AttributeKey::parse(text).unwrap()
}

#[test]
fn attribute_refusals_name_the_key_and_the_limit() {
    let body = Problem::from(Error::from(CartAttributeError::InvalidValue {
        key: key("gift.note"),
        reason: TextReason::TooLong {
            length: 501,
            max: 500,
        },
    }))
    .body();
    assert_eq!(body["key"], "gift.note");
    assert_eq!(body["reason"]["reason"], "too_long");
    assert_eq!(body["reason"]["max"], 500);
    let body = Problem::from(Error::from(CartAttributeError::TooMany {
        key: key("seventeenth"),
        max: 16,
    }))
    .body();
    assert_eq!(
        (body["key"].as_str(), body["max"].as_u64()),
        (Some("seventeenth"), Some(16))
    );
}

#[test]
fn data_errors_point_at_the_field() {
    assert_eq!(
        pointer_of(
            "Failed to deserialize the JSON body into the target type: quantity: invalid type"
        ),
        "/quantity"
    );
    assert_eq!(pointer_of("expected value at line 1"), "");
}
