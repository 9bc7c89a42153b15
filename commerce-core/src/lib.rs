#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, one folder each:
//
// - `domain/`: money, ids, catalog, carts, stock, orders, payments;
// - `pricing/`: the pricing engine, promotions, tax, shop settings;
// - `store/`: the store contract every backend implements;
// - `memory/`: the in-memory store (laid out like `commerce-postgres/src`);
// - `facade/`: `Commerce` and `Shop`, the use cases;
// - `testkit/`: the conformance kit, by area (feature `testkit`).

pub mod domain;
pub mod error;
pub mod facade;
pub mod memory;
pub mod pricing;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use domain::{api_key, cart, catalog, clock, ids, inventory, money, order, payment, text};
pub use pricing::{promotion, rounding, settings, tax};
/// The decimal type the API takes for rates and percentages (tax rates,
/// percent-off promotions), re-exported so that callers need not depend on
/// `rust_decimal` themselves.
pub use rust_decimal::Decimal;

pub use api_key::{ApiKeyRecord, ApiScope, IssuedApiKey};
pub use cart::{
    AgeVerification, AttributeKey, Cart, CartAttributeError, CartLimits, CartLine, CartStatus,
    CartUpdate,
};
pub use catalog::{NewProduct, Page, Product, ProductPage, ProductQuery, Variant};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{BackendError, BackendErrorKind, Entity, Error, Result};
pub use facade::{
    Checkout, CheckoutRequest, Commerce, CommerceBuilder, Config, FeedPage, OrderPage, Shop,
    SweepAllReport, SweepReport, WebhookHandled, plan_checkout,
};
pub use ids::{
    CartId, Category, CouponCode, CustomerGroup, CustomerId, IdempotencyKey, OrderId, ParseError,
    PaymentEventId, ProductId, PromotionGroup, PromotionId, Quantity, RefundId, Sku, TaxCategory,
    TenantId,
};
pub use inventory::{AdjustmentKind, Allocation, Reservation, StockAdjustment, StockLevel};
pub use memory::InMemoryStore;
pub use money::{Currency, Money, MoneyError};
pub use order::{
    AppliedPromotion, FeedItem, FeedPosition, Order, OrderCommand, OrderDraft, OrderEvent,
    OrderEventKind, OrderStatus, PaymentApplication, PaymentOutcome, Redemption, Refund,
    RefundAmount, RefundError, RefundFailure, RefundFailureKind, RefundLine, RefundReason,
    RefundRequest, RefundStatus,
};
pub use payment::{
    DynPaymentGateway, GatewayError, PaymentEvent, PaymentEventKind, PaymentGateway,
    PaymentSession, RefundReceipt, TestGateway, WebhookError, WebhookOutcome, WebhookRequest,
};
pub use pricing::{
    CustomerContext, PricedCart, PricedLine, PricingInput, PricingLine, Totals, price,
};
pub use promotion::{Promotion, PromotionSpec};
pub use settings::ShopSettings;
pub use store::{DynStore, OrderCursor, OrderFilter, Store};
pub use tax::{TaxCalculator, TaxConfig};
pub use text::{TextField, TextReason, check_text};
