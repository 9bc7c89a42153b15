//! What the example web shops share, so each shop's own code is about its
//! trade: which store and payment gateway to run on ([`store`],
//! [`payments`]), the local payment page that pays an order by posting a
//! signed webhook to the shop's own webhook route, the command line
//! ([`cli`]), and the pages' plumbing: cookies, sessions, CSRF tokens,
//! security headers, error pages and static assets ([`web`]); and the admin
//! pages behind an argon2-hashed password ([`admin`]); and the stock
//! reconciliation of `SHOP reconcile` ([`reconcile`]).
//!
//! It is an example's support code, not a published crate: the engine's
//! crates are `commerce-core`, `commerce-postgres`, `commerce-stripe` and
//! `commerce-http`.

pub mod admin;
pub mod cli;
pub mod payments;
pub mod reconcile;
pub mod store;
pub mod web;

/// Any error a shop's `main` reports and exits on.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;
