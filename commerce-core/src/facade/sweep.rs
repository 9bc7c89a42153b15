//! One sweeper for every tenant.

use crate::error::{Error, Result};
use crate::ids::TenantId;

use super::{Commerce, SweepReport};

/// What [`Commerce::sweep_all`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SweepAllReport {
    /// Every tenant that had work when listed, by id, with what its sweep
    /// did (empty when another sweeper did the work first).
    pub swept: Vec<(TenantId, SweepReport)>,
    /// The tenants whose sweep failed, with the error; the others were
    /// swept all the same.
    pub failed: Vec<(TenantId, Error)>,
}

impl Commerce {
    /// Sweeps every tenant that has work ([`Shop::sweep`](super::Shop::sweep)
    /// for each tenant that
    /// [`Store::tenants_with_work`](crate::store::Store::tenants_with_work)
    /// lists): expired reservations, orders whose payment window closed,
    /// pending refunds. One background task can call it periodically for the
    /// whole store.
    ///
    /// Tenants with nothing to do are not reported. Each listed tenant is
    /// swept once, with the configured batch per step; call again while it
    /// reports work. A tenant whose sweep fails is reported in
    /// [`SweepAllReport::failed`] (and logged) and the rest are swept; only
    /// a failure to list the tenants is an `Err`.
    ///
    /// Safe beside traffic and beside other sweepers (another instance of
    /// the service, say): the stores never release a hold or expire an
    /// order twice.
    ///
    /// ```
    /// # async fn run() -> commerce_core::Result<()> {
    /// use commerce_core::Commerce;
    /// let commerce = Commerce::in_memory();
    /// let report = commerce.sweep_all().await?;
    /// assert!(report.swept.is_empty() && report.failed.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn sweep_all(&self) -> Result<SweepAllReport> {
        let now = self.now();
        let page = self.config().sweep_batch();
        let mut report = SweepAllReport::default();
        let mut after: Option<TenantId> = None;
        loop {
            let tenants = self
                .inner
                .store
                .tenants_with_work(now, after.as_ref(), page)
                .await?;
            let full = tenants.len() >= page;
            for tenant in tenants {
                match self.shop(&tenant).sweep().await {
                    Ok(swept) => report.swept.push((tenant.clone(), swept)),
                    Err(error) => {
                        tracing::warn!(tenant = %tenant, error = %error, "sweeping a tenant failed");
                        report.failed.push((tenant.clone(), error));
                    }
                }
                after = Some(tenant);
            }
            if !full || after.is_none() {
                return Ok(report);
            }
        }
    }
}
