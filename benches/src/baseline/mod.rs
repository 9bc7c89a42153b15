//! The pricing engine as of commit `fea34db` (the branch point of the
//! faster engine), copied from `commerce-core/src/pricing/` and kept only so
//! that the pricing bench can measure the current engine beside it in the
//! same run, and so that a property test can check that both price every
//! input identically. It is not used by anything else; do not change it
//! except to keep it compiling.
//!
//! Changed from the original only where it must be to compile outside
//! `commerce-core`: imports, [`DiscountedCart`] (private in the core) is
//! defined here, `TaxConfig::compute` is the free function
//! [`tax::compute`], and `money::allocate_minor`, which both call and which
//! is now faster, is copied as it was.

#![deny(clippy::arithmetic_side_effects)]

mod allocate;
mod engine;
mod finish;
pub mod tax;

pub use engine::discount;

use commerce_core::Currency;
use commerce_core::Result;
use commerce_core::pricing::{
    LineDiscount, PricedCart, PricingInput, PricingLine, PromotionReport,
};
use commerce_core::tax::{PriceBasis, RoundingMode, ShippingTax};

/// The cart after promotions, before tax, as the old engine kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountedCart {
    currency: Currency,
    prices: PriceBasis,
    shipping_tax: ShippingTax,
    lines: Vec<PricingLine>,
    discounts: Vec<Vec<LineDiscount>>,
    remaining: Vec<i64>,
    shipping: Option<i64>,
    shipping_discounts: Vec<LineDiscount>,
    reports: Vec<PromotionReport>,
    /// Line indices in SKU order: the order of the tax request.
    canonical: Vec<usize>,
    /// How taxes round (the outputs added since `fea34db`: each discount
    /// on both bases).
    tax_mode: RoundingMode,
}

/// Applies the promotions of `input` and prices its lines, taxing them with
/// its `TaxConfig`: `commerce_core::pricing::price` as of `fea34db`.
pub fn price(input: &PricingInput) -> Result<PricedCart> {
    let discounted = discount(input)?;
    let tax = tax::compute(&input.tax, &discounted.tax_request())?;
    discounted.finish(tax)
}
