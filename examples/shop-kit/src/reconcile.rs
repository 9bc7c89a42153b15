//! `SHOP reconcile [--repair]`: checks the stock counters against the holds
//! and orders and reports (and with `--repair` repairs) any drift, on
//! whichever store the shop runs.
//!
//! What can drift depends on the store:
//!
//! - **Any store**: a SKU's on-hand count against its stock ledger (the
//!   last adjustment's `on_hand_after`; 0 for a SKU without adjustments),
//!   through the facade: every SKU of the catalog (`Shop::admin_products`),
//!   `Shop::stock` and `Shop::stock_adjustments`. The in-memory store keeps
//!   no counter beside its holds (a SKU's reserved and allocated units are
//!   summed from its reservations and allocations on every read), so this
//!   is all there is to check on it.
//! - **PostgreSQL**: [`PgStore::reconcile`], which checks the same ledger
//!   for every stock record (SKUs that left the catalog too) and, besides,
//!   the `held` counter against the reservation and allocation rows, and
//!   the hold rows whose cart or order can no longer hold. The facade's
//!   ledger check is not repeated there.
//!
//! A disagreement between on-hand and the ledger is never repaired: which
//! side is wrong is for a stock count to say, recorded with
//! `Shop::correct_stock` (the admin pages' stock counts).

use std::fmt;

use commerce_core::{ProductId, Result, Shop, Sku, TenantId};
use commerce_postgres::{PgStore, ReconcileReport};

/// How many products the ledger check lists per page.
const PAGE: u32 = 100;

/// What a reconciliation found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reconciliation {
    /// The facade's ledger check (a store other than PostgreSQL).
    Ledger(LedgerReport),
    /// The PostgreSQL store's own reconciliation.
    Postgres(ReconcileReport),
}

impl Reconciliation {
    /// Whether nothing drifted.
    pub fn is_clean(&self) -> bool {
        match self {
            Self::Ledger(report) => report.drift.is_empty(),
            Self::Postgres(report) => report.is_clean(),
        }
    }

    /// How many drifts this run left as it found them.
    pub fn unrepaired(&self) -> usize {
        match self {
            Self::Ledger(report) => report.drift.len(),
            Self::Postgres(report) => report.unrepaired().count(),
        }
    }
}

impl fmt::Display for Reconciliation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ledger(report) => report.fmt(f),
            Self::Postgres(report) => report.fmt(f),
        }
    }
}

/// The facade's ledger check of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerReport {
    /// The tenant.
    pub tenant: TenantId,
    /// How many SKUs of the catalog were checked.
    pub skus_checked: usize,
    /// The SKUs whose on-hand count differs from their ledger, by SKU.
    pub drift: Vec<LedgerDrift>,
}

impl fmt::Display for LedgerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skus = match self.skus_checked {
            1 => "1 SKU".to_owned(),
            n => format!("{n} SKUs"),
        };
        match self.drift.len() {
            0 => return write!(f, "tenant {}: {skus} checked, no drift", self.tenant),
            1 => write!(
                f,
                "tenant {}: {skus} checked, 1 drift (0 repaired)",
                self.tenant
            )?,
            n => write!(
                f,
                "tenant {}: {skus} checked, {n} drifts (0 repaired)",
                self.tenant
            )?,
        }
        for drift in &self.drift {
            write!(f, "\n  {drift}")?;
        }
        Ok(())
    }
}

/// A SKU whose on-hand count differs from its stock ledger. Never repaired
/// by a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerDrift {
    /// The SKU.
    pub sku: Sku,
    /// The on-hand count the store sells from.
    pub on_hand: u32,
    /// The ledger's count: the last adjustment's `on_hand_after`, or 0
    /// without adjustments.
    pub ledger: u32,
}

impl fmt::Display for LedgerDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: on hand {}, but the stock ledger says {} (the last adjustment's \
             on_hand_after); not repaired: count the stock and record the count as a correction",
            self.sku, self.on_hand, self.ledger
        )
    }
}

/// Reconciles `shop`'s tenant: with `postgres` (the store `shop` runs on,
/// when it is PostgreSQL), [`PgStore::reconcile`], repairing what it can
/// when `repair` is set; otherwise the facade's [`check_ledger`], which has
/// nothing to repair.
pub async fn reconcile(
    shop: &Shop,
    postgres: Option<&PgStore>,
    repair: bool,
) -> Result<Reconciliation> {
    match postgres {
        Some(store) => Ok(Reconciliation::Postgres(
            store.reconcile(shop.tenant(), repair).await?,
        )),
        None => Ok(Reconciliation::Ledger(check_ledger(shop).await?)),
    }
}

/// The `reconcile [--repair]` command of a shop: opens the store of the
/// environment ([`crate::store::open`]), reconciles each of `tenants`,
/// prints the reports, and fails when drift is left unrepaired (which
/// makes the command exit non-zero).
pub async fn command(tenants: &[&str], repair: bool) -> std::result::Result<(), crate::Failure> {
    use crate::store::{self, Choice, Tenancy};
    let Some(first) = tenants.first() else {
        return Ok(());
    };
    let opened = store::open(&Choice::from_env()?, Tenancy::Fixed(first)).await?;
    let commerce = commerce_core::Commerce::builder()
        .shared_store(opened.store.clone())
        .build()?;
    println!("{}", opened.description);
    let mut left = 0;
    for tenant in tenants {
        let shop = commerce.shop(&TenantId::parse(*tenant)?);
        let report = reconcile(&shop, opened.postgres.as_ref(), repair).await?;
        println!("{report}");
        left += report.unrepaired();
    }
    match left {
        0 => Ok(()),
        left if repair => Err(format!("{left} drift(s) left unrepaired").into()),
        left => Err(format!(
            "{left} drift(s) found; `reconcile --repair` repairs holds and counters \
             (on hand against the ledger is for a stock count)"
        )
        .into()),
    }
}

/// Every SKU of `shop`'s catalog: its on-hand count against its stock
/// ledger, through the facade, on any store. Each SKU is read on its own,
/// so on a live shop a receipt or a sale between the two reads can show as
/// drift that a second run does not find.
pub async fn check_ledger(shop: &Shop) -> Result<LedgerReport> {
    let mut skus: Vec<Sku> = Vec::new();
    let mut after: Option<ProductId> = None;
    loop {
        let page = shop.admin_products(after, PAGE).await?;
        skus.extend(
            page.products
                .iter()
                .flat_map(|p| p.variants().iter().map(|v| v.sku().clone())),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    skus.sort();
    skus.dedup();
    let mut drift = Vec::new();
    for sku in &skus {
        let level = shop.stock(sku).await?;
        let ledger = shop
            .stock_adjustments(sku)
            .await?
            .last()
            .map_or(0, |a| a.on_hand_after);
        if level.on_hand != ledger {
            drift.push(LedgerDrift {
                sku: sku.clone(),
                on_hand: level.on_hand,
                ledger,
            });
        }
    }
    Ok(LedgerReport {
        tenant: shop.tenant().clone(),
        skus_checked: skus.len(),
        drift,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::str::FromStr as _;
    use std::sync::Arc;

    use commerce_core::{
        Category, Commerce, Currency, InMemoryStore, Money, NewProduct, PaymentEvent,
        PaymentEventId, PaymentEventKind, Quantity, TaxCategory, TestGateway, Variant,
    };
    use sqlx::Connection as _;
    use sqlx::postgres::{PgConnectOptions, PgConnection};

    use super::*;
    use crate::store::{self, Choice, Tenancy};

    async fn stocked(shop: &Shop, sku: &str, on_hand: u32) -> Sku {
        let sku = Sku::parse(sku).unwrap();
        shop.add_product(NewProduct {
            name: format!("Item {sku}"),
            category: Category::parse("hardware").unwrap(),
            tax_category: TaxCategory::parse("standard").unwrap(),
            age_restricted: false,
            variants: vec![Variant::new(sku.clone(), Money::new(10_000, Currency::AUD))],
            published: true,
        })
        .await
        .unwrap();
        if on_hand > 0 {
            shop.receive_stock(&sku, Quantity::new(on_hand).unwrap(), None)
                .await
                .unwrap();
        }
        sku
    }

    /// A SKU sold, one held by an unpaid order, one in a cart, one never
    /// stocked.
    async fn trade(shop: &Shop) -> Vec<Sku> {
        let sold = stocked(shop, "GPU-SOLD", 3).await;
        let held = stocked(shop, "GPU-HELD", 2).await;
        let none = stocked(shop, "GPU-NONE", 0).await;
        let cart = shop.create_cart(Currency::AUD).await.unwrap();
        shop.set_line(cart.id, &sold, Quantity::ONE).await.unwrap();
        let paid = shop
            .checkout(cart.id, &"paid".parse().unwrap())
            .await
            .unwrap()
            .order;
        let event = PaymentEvent {
            id: PaymentEventId::parse(format!("evt-{}", shop.tenant())).unwrap(),
            tenant: shop.tenant().clone(),
            order: paid.id,
            kind: PaymentEventKind::Succeeded {
                amount: paid.total(),
                payment_ref: None,
            },
        };
        shop.apply_payment_event(&event).await.unwrap();
        let cart = shop.create_cart(Currency::AUD).await.unwrap();
        shop.set_line(cart.id, &held, Quantity::ONE).await.unwrap();
        shop.checkout(cart.id, &"unpaid".parse().unwrap())
            .await
            .unwrap();
        let cart = shop.create_cart(Currency::AUD).await.unwrap();
        shop.set_line(cart.id, &held, Quantity::ONE).await.unwrap();
        vec![held, none, sold]
    }

    #[tokio::test]
    async fn the_in_memory_store_has_only_its_ledger_to_check_and_it_agrees() {
        let commerce = Commerce::builder()
            .store(InMemoryStore::new())
            .gateway(TestGateway::default())
            .build()
            .unwrap();
        let shop = commerce.shop(&TenantId::parse("gpu-exchange").unwrap());
        let skus = trade(&shop).await;
        let report = reconcile(&shop, None, true).await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.unrepaired(), 0);
        assert_eq!(
            report.to_string(),
            "tenant gpu-exchange: 3 SKUs checked, no drift"
        );
        match report {
            Reconciliation::Ledger(ledger) => assert_eq!(ledger.skus_checked, skus.len()),
            other => panic!("expected the facade's check, got {other:?}"),
        }
    }

    #[test]
    fn ledger_drift_in_words() {
        let report = Reconciliation::Ledger(LedgerReport {
            tenant: TenantId::parse("gpu-exchange").unwrap(),
            skus_checked: 2,
            drift: vec![LedgerDrift {
                sku: Sku::parse("GPU-1").unwrap(),
                on_hand: 4,
                ledger: 3,
            }],
        });
        assert!(!report.is_clean());
        assert_eq!(report.unrepaired(), 1);
        assert_eq!(
            report.to_string(),
            "tenant gpu-exchange: 2 SKUs checked, 1 drift (0 repaired)\n  GPU-1: on hand 4, but \
             the stock ledger says 3 (the last adjustment's on_hand_after); not repaired: count \
             the stock and record the count as a correction"
        );
    }

    /// On PostgreSQL (`DATABASE_URL`, an administrative role): the store
    /// `store::open` hands back is the one reconciled, drift planted past
    /// the store is found and repaired.
    #[tokio::test(flavor = "multi_thread")]
    async fn on_postgres_the_store_reconciles_itself() {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            let message = "SKIPPED: DATABASE_URL is not set. Run: \
                 DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p shop-kit";
            assert!(
                std::env::var("CI").map_or(true, |v| v.is_empty() || v == "false" || v == "0"),
                "{message}"
            );
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{message}");
            return;
        };
        let options = PgConnectOptions::from_str(&url).unwrap();
        let name = format!("shop_kit_reconcile_{}", uuid::Uuid::new_v4().simple());
        let mut server = PgConnection::connect_with(&options).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut server)
            .await
            .unwrap();
        let database_url = options.clone().database(&name);
        let url_of_database = {
            use sqlx::ConnectOptions as _;
            database_url.to_url_lossy().to_string()
        };

        let opened = store::open(
            &Choice::Postgres(url_of_database.clone()),
            Tenancy::Fixed("gpu-exchange"),
        )
        .await
        .unwrap();
        let postgres = opened.postgres.clone().expect("a PostgreSQL store");
        let commerce = Commerce::builder()
            .shared_store(Arc::clone(&opened.store))
            .gateway(TestGateway::default())
            .build()
            .unwrap();
        let shop = commerce.shop(&opened.tenant);
        trade(&shop).await;
        let clean = reconcile(&shop, opened.postgres.as_ref(), false)
            .await
            .unwrap();
        assert!(matches!(clean, Reconciliation::Postgres(_)), "{clean:?}");
        assert!(clean.is_clean(), "{clean}");

        let mut admin = PgConnection::connect_with(&database_url).await.unwrap();
        sqlx::raw_sql(
            "UPDATE skus SET held = held + 5 WHERE tenant_id = 'gpu-exchange' AND sku = 'GPU-HELD'; \
             UPDATE skus SET on_hand = 9 WHERE tenant_id = 'gpu-exchange' AND sku = 'GPU-NONE'",
        )
        .execute(&mut admin)
        .await
        .unwrap();
        admin.close().await.unwrap();
        let found = reconcile(&shop, Some(&postgres), false).await.unwrap();
        assert_eq!(found.unrepaired(), 2, "{found}");
        let repaired = reconcile(&shop, Some(&postgres), true).await.unwrap();
        assert_eq!(repaired.unrepaired(), 1, "{repaired}");
        assert!(
            repaired.to_string().contains(
                "GPU-HELD: held counter 7, but its reservation and allocation rows hold 2; repaired: recounted from its rows"
            ),
            "{repaired}"
        );
        shop.correct_stock(
            &Sku::parse("GPU-NONE").unwrap(),
            Quantity::new(9).unwrap(),
            None,
        )
        .await
        .unwrap();
        let clean = reconcile(&shop, Some(&postgres), false).await.unwrap();
        assert!(clean.is_clean(), "{clean}");

        postgres.pool().close().await;
        drop((opened, commerce, shop, postgres));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut server)
        .await
        .unwrap();
    }
}
