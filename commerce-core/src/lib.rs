#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cart;
pub mod catalog;
pub mod clock;
pub mod error;
pub mod facade;
pub mod ids;
pub mod inventory;
pub mod memory;
pub mod money;
pub mod order;
pub mod payment;
pub mod pricing;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use cart::{Cart, CartLine, CartStatus};
pub use catalog::{NewProduct, Product, Variant};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{BackendError, BackendErrorKind, Entity, Error, Result};
pub use facade::{Checkout, Commerce, CommerceBuilder, Config, Shop, SweepReport, WebhookHandled};
pub use ids::{
    CartId, Category, IdempotencyKey, OrderId, ParseError, PaymentEventId, ProductId, Quantity,
    RefundId, Sku, TaxCategory, TenantId,
};
pub use inventory::{AdjustmentKind, Allocation, Reservation, StockAdjustment, StockLevel};
pub use memory::InMemoryStore;
pub use money::{Currency, Money, MoneyError};
pub use order::{
    Order, OrderAction, OrderDraft, OrderEvent, OrderEventKind, OrderLine, OrderStatus,
    PaymentApplication, PaymentDecision, PaymentOutcome, Refund, RefundReason, RefundStatus,
    decide_payment,
};
pub use payment::{
    DynPaymentGateway, GatewayError, PaymentEvent, PaymentEventKind, PaymentGateway,
    PaymentSession, RefundReceipt, TestGateway, WebhookError, WebhookOutcome, WebhookRequest,
};
pub use pricing::{PricedCart, price_cart};
pub use store::{
    CartStore, CatalogStore, DynStore, InventoryStore, OrderStore, Placement, Scope, Store,
};
