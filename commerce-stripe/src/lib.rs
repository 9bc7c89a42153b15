#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod amount;
mod checkout;
mod error;
mod event;
mod gateway;
mod signature;

pub use checkout::{MAX_PAYMENT_WINDOW, MIN_PAYMENT_WINDOW};
pub use error::{BuildError, Error};
pub use event::{
    HANDLED_EVENTS, METADATA_ORDER, METADATA_REFUND, METADATA_REFUND_REASON, METADATA_TENANT,
};
pub use gateway::{
    CONFIRMATION_EVENT_PREFIX, DEFAULT_API_BASE, STRIPE_API_VERSION, StripeGateway,
    StripeGatewayBuilder,
};
pub use signature::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, signature_header, verify_signature};
