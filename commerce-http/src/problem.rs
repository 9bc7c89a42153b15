//! Errors as RFC 9457 problem details (`application/problem+json`): one
//! type for every refusal the routers send, and one mapping from every core
//! error to a status and a stable machine-readable `code`.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commerce_core::order::RefundError;
use commerce_core::tax::TaxError;
use commerce_core::{BackendErrorKind, CartAttributeError, Error};
use serde_json::{Map, Value, json};

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem detail: what the client gets for every refusal.
///
/// The body has the RFC 9457 members `type`, `title`, `status` and
/// `detail`, a stable snake-case `code` to switch on, and the data of the
/// refusal as extension members (for example `sku`, `requested` and
/// `available` on `insufficient_stock`). Internal and driver messages never
/// reach the body; they are logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    extensions: Map<String, Value>,
    retry_after: Option<u32>,
}

impl Problem {
    /// A problem with `status`, `code`, a short `title` and a `detail` for
    /// humans.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, name: &str, value: impl serde::Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// Adds a `Retry-After` header (seconds).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The extension members.
    pub fn extensions(&self) -> &Map<String, Value> {
        &self.extensions
    }

    /// A 400 for input that cannot be read: `errors` holds one entry with a
    /// JSON pointer to the field at fault (`""` for the whole body).
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "Invalid parameter",
            detail.clone(),
        )
        .with(
            "errors",
            json!([{ "pointer": pointer.into(), "detail": detail }]),
        )
    }

    /// A 404 for a route or resource that does not exist.
    pub fn not_found() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "no such resource",
        )
    }

    /// A 500 that says nothing of its cause (which is logged).
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed",
        )
    }

    /// The document as JSON.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("about:blank#{}", self.code)));
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.insert("code".into(), json!(self.code));
        for (name, value) in &self.extensions {
            body.insert(name.clone(), value.clone());
        }
        Value::Object(body)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<Error> for Problem {
    /// The one mapping from core errors to problems. 409: the request was
    /// fine but the state of the shop refused it (stock, price, status);
    /// 422: the request can never succeed as written; 400: it cannot be
    /// read; 5xx: a failure of a service behind the engine.
    fn from(error: Error) -> Self {
        use StatusCode as S;
        let conflict = S::CONFLICT;
        let unprocessable = S::UNPROCESSABLE_ENTITY;
        match &error {
            Error::InsufficientStock {
                sku,
                requested,
                available,
            } => Problem::new(
                conflict,
                "insufficient_stock",
                "Insufficient stock",
                error.to_string(),
            )
            .with("sku", sku)
            .with("requested", requested)
            .with("available", available),
            Error::NotFound { entity, .. } => {
                Problem::new(S::NOT_FOUND, "not_found", "Not found", error.to_string())
                    .with("entity", entity.to_string())
            }
            Error::CartCheckedOut { cart, order } => Problem::new(
                conflict,
                "cart_checked_out",
                "Cart checked out",
                error.to_string(),
            )
            .with("cart", cart)
            .with("order", order),
            Error::EmptyCart(cart) => {
                Problem::new(unprocessable, "empty_cart", "Empty cart", error.to_string())
                    .with("cart", cart)
            }
            Error::CurrencyMismatch { expected, found } => Problem::new(
                unprocessable,
                "currency_mismatch",
                "Currency mismatch",
                error.to_string(),
            )
            .with("expected", expected)
            .with("found", found),
            Error::ReservationLapsed { sku } => Problem::new(
                conflict,
                "reservation_lapsed",
                "Reservation lapsed",
                "the reservation of a line expired: renew the cart's reservations and retry",
            )
            .with("sku", sku),
            Error::CartChanged(cart) => {
                Problem::new(conflict, "cart_changed", "Cart changed", error.to_string())
                    .with("cart", cart)
                    .with("retryable", true)
            }
            // The other cart's order is not disclosed.
            Error::IdempotencyKeyReused { .. } => Problem::new(
                unprocessable,
                "idempotency_key_reused",
                "Idempotency key reused",
                "this Idempotency-Key was used for another cart",
            ),
            Error::InvalidTransition { from, to, .. } => Problem::new(
                conflict,
                "invalid_transition",
                "Invalid transition",
                error.to_string(),
            )
            .with("from", from)
            .with("to", to),
            Error::StockBelowHeld {
                sku,
                requested,
                held,
            } => Problem::new(
                conflict,
                "stock_below_held",
                "Stock below held",
                error.to_string(),
            )
            .with("sku", sku)
            .with("requested", requested)
            .with("held", held),
            Error::StockOverflow { sku } => Problem::new(
                unprocessable,
                "stock_overflow",
                "Stock overflow",
                error.to_string(),
            )
            .with("sku", sku),
            Error::SkuTaken { sku } => {
                Problem::new(conflict, "sku_taken", "SKU taken", error.to_string()).with("sku", sku)
            }
            Error::InvalidProduct(_) => Problem::new(
                unprocessable,
                "invalid_product",
                "Invalid product",
                error.to_string(),
            ),
            Error::InvalidText { field, reason } => Problem::new(
                unprocessable,
                "invalid_text",
                "Invalid text",
                error.to_string(),
            )
            .with("field", field)
            .with("reason", reason),
            Error::InvalidConfig(_) => Problem::new(
                unprocessable,
                "invalid_settings",
                "Invalid settings",
                error.to_string(),
            ),
            Error::TenantMismatch { .. } => Problem::new(
                S::BAD_REQUEST,
                "tenant_mismatch",
                "Tenant mismatch",
                "the request names another tenant",
            ),
            Error::AgeVerificationRequired { skus } => Problem::new(
                unprocessable,
                "age_verification_required",
                "Age verification required",
                error.to_string(),
            )
            .with("skus", skus),
            Error::NotAcceptingOrders => Problem::new(
                conflict,
                "not_accepting_orders",
                "Not accepting orders",
                error.to_string(),
            ),
            Error::PriceChanged { expected, actual } => Problem::new(
                conflict,
                "price_changed",
                "Price changed",
                error.to_string(),
            )
            .with("expected", expected)
            .with("actual", actual),
            Error::PromotionExhausted {
                promotion,
                per_customer,
            } => Problem::new(
                conflict,
                "promotion_exhausted",
                "Promotion exhausted",
                error.to_string(),
            )
            .with("promotion", promotion)
            .with("per_customer", per_customer),
            Error::InvalidPromotion(_) => Problem::new(
                unprocessable,
                "invalid_promotion",
                "Invalid promotion",
                error.to_string(),
            ),
            Error::Refund(refusal) => refund_problem(refusal),
            Error::CartLimit { per_line, max, .. } => {
                Problem::new(unprocessable, "cart_limit", "Cart limit", error.to_string())
                    .with("per_line", per_line)
                    .with("max", max)
            }
            Error::CartAttribute(refusal) => attribute_problem(refusal),
            Error::PaymentWindowOpen { closes_at, .. } => Problem::new(
                conflict,
                "payment_window_open",
                "Payment window open",
                error.to_string(),
            )
            .with("closes_at", closes_at),
            Error::Money(_) => Problem::new(
                unprocessable,
                "amount_out_of_range",
                "Amount out of range",
                error.to_string(),
            ),
            Error::Parse(parse) => Problem::invalid(
                format!("/{}", parse.field.replace(' ', "_")),
                parse.to_string(),
            ),
            // The shop has no rate for a product's tax category (and no
            // fallback): the state of the shop refuses the request until the
            // merchant configures one.
            Error::Tax(TaxError::UnknownCategory(category)) => Problem::new(
                conflict,
                "tax_rate_missing",
                "Tax rate missing",
                error.to_string(),
            )
            .with("category", category),
            Error::Tax(tax) if error.is_retryable() => {
                tracing::warn!(error = %tax, "tax service unavailable");
                Problem::new(
                    S::SERVICE_UNAVAILABLE,
                    "tax_unavailable",
                    "Tax service unavailable",
                    "tax could not be calculated; retry shortly",
                )
                .retry_after(5)
            }
            Error::Gateway(gateway) => {
                tracing::warn!(error = %gateway, "payment gateway error");
                Problem::new(
                    S::BAD_GATEWAY,
                    "payment_gateway_error",
                    "Payment gateway error",
                    "the payment provider could not be reached or refused the request",
                )
                .with("retryable", gateway.is_retryable())
            }
            Error::Webhook(_) => Problem::new(
                S::BAD_REQUEST,
                "webhook_rejected",
                "Webhook rejected",
                error.to_string(),
            ),
            Error::Backend(backend) => {
                tracing::error!(error = %backend, "store failure");
                match backend.kind() {
                    BackendErrorKind::Conflict => Problem::new(
                        conflict,
                        "conflict",
                        "Conflict",
                        "the request conflicted with another; retry",
                    ),
                    BackendErrorKind::Retryable => Problem::new(
                        S::SERVICE_UNAVAILABLE,
                        "retry",
                        "Retry",
                        "the request could not be completed now; retry",
                    )
                    .retry_after(1),
                    BackendErrorKind::Busy => Problem::new(
                        S::SERVICE_UNAVAILABLE,
                        "busy",
                        "Busy",
                        "the store is busy; retry shortly",
                    )
                    .retry_after(1),
                    BackendErrorKind::Unavailable => Problem::new(
                        S::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Unavailable",
                        "the store is unavailable",
                    )
                    .retry_after(5),
                    _ => Problem::internal(),
                }
            }
            _ => {
                tracing::error!(%error, "unmapped error");
                Problem::internal()
            }
        }
    }
}

/// A refused cart attribute, naming the key and the limit.
fn attribute_problem(refusal: &CartAttributeError) -> Problem {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let detail = refusal.to_string();
    match refusal {
        CartAttributeError::InvalidKey { key, max } => Problem::new(
            status,
            "invalid_attribute_key",
            "Invalid attribute key",
            detail,
        )
        .with("key", key)
        .with("max", max),
        CartAttributeError::TooMany { key, max } => {
            Problem::new(status, "too_many_attributes", "Too many attributes", detail)
                .with("key", key)
                .with("max", max)
        }
        CartAttributeError::InvalidValue { key, reason } => Problem::new(
            status,
            "invalid_attribute_value",
            "Invalid attribute value",
            detail,
        )
        .with("key", key)
        .with("reason", reason),
        _ => Problem::new(status, "invalid_attribute", "Invalid attribute", detail),
    }
}

/// A refused merchant refund, with what is left to refund.
fn refund_problem(refusal: &RefundError) -> Problem {
    let detail = refusal.to_string();
    match refusal {
        RefundError::ExceedsRefundable {
            requested,
            refundable,
            ..
        } => Problem::new(
            StatusCode::CONFLICT,
            "refund_exceeds_refundable",
            "Refund exceeds what is left",
            detail,
        )
        .with("requested", requested)
        .with("refundable", refundable),
        RefundError::ExceedsLine {
            sku,
            requested,
            refundable,
            ..
        } => Problem::new(
            StatusCode::CONFLICT,
            "refund_exceeds_line",
            "Refund exceeds the line",
            detail,
        )
        .with("sku", sku)
        .with("requested", requested)
        .with("refundable", refundable),
        RefundError::InvalidAmount { requested, .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_refund_amount",
            "Invalid refund amount",
            detail,
        )
        .with("requested", requested),
        RefundError::IdReused { refund } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refund_id_reused",
            "Refund id reused",
            detail,
        )
        .with("refund", refund),
        _ => Problem::new(
            StatusCode::CONFLICT,
            "refund_refused",
            "Refund refused",
            detail,
        ),
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                let detail = e.body_text();
                Problem::invalid(pointer_of(&detail), detail)
            }
            JsonRejection::JsonSyntaxError(e) => Problem::invalid("", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as application/json",
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                too_large()
            }
            other => Problem::invalid("", other.body_text()),
        }
    }
}

impl From<BytesRejection> for Problem {
    /// A raw body that could not be read: 413 `body_too_large` past the
    /// route's limit, else 400 `invalid_parameter`.
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            Problem::invalid("", rejection.body_text())
        }
    }
}

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Self {
        Problem::invalid("", rejection.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Problem::invalid("", rejection.body_text())
    }
}

/// A 413 for a body past the router's limit.
pub(crate) fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "Body too large",
        "the request body is larger than this route accepts",
    )
}

/// The JSON pointer serde_path_to_error puts in front of a data error
/// (`"quantity: invalid type..."` → `/quantity`).
fn pointer_of(detail: &str) -> String {
    let message = detail
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(detail);
    match message.split_once(": ") {
        Some((path, _)) if !path.contains(' ') => {
            format!("/{}", path.replace('.', "/"))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
