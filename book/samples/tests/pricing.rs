//! The carts-and-pricing chapter's table, run.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failing test")]

use commerce_book::pricing::three_dollars_off;
use commerce_core::rounding::{Leftover, LineOrder};

// ANCHOR: table
#[test]
fn leftover_cents_go_where_the_shop_says() {
    // Exact shares 161.25, 52.50, 86.25 (Z, M, A in cart order).
    let cases = [
        (Leftover::LargestRemainder, LineOrder::Sku, [161, 53, 86]),
        (Leftover::FirstLines, LineOrder::Cart, [162, 52, 86]), // as Sylius
        (Leftover::FirstLines, LineOrder::Sku, [161, 52, 87]),
        (Leftover::LastLine, LineOrder::Cart, [161, 52, 87]),
        (Leftover::LastLine, LineOrder::Sku, [162, 52, 86]),
    ];
    for (leftover, order, parts) in cases {
        assert_eq!(three_dollars_off(leftover, order).unwrap(), parts);
    }
}
// ANCHOR_END: table
