#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod api_keys;
mod carts;
mod catalog;
mod effects;
mod error;
mod feed;
mod group;
mod inventory;
mod orders;
mod promotions;
pub mod reconcile;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use commerce_core::store::Scope;
use commerce_core::{Error, Result, Store, TenantId, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

pub use reconcile::{Drift, DriftKind, ReconcileReport};
pub use sqlx;

use crate::error::{corrupt, db};

/// The embedded migrations: the schema, then row-level security and the
/// `commerce_app` role, then later additions (among them the event feed's
/// columns and the sweep's tenant listing function, which the migrating
/// role owns). Run them with an administrative connection ([`migrate`]),
/// never as `commerce_app`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Runs [`MIGRATOR`] against `admin` (a role that may create tables,
/// policies and roles).
pub async fn migrate(admin: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(admin).await
}

/// The role the migrations create for the store: not a superuser, without
/// `BYPASSRLS`, with data privileges on the commerce tables only.
pub const APP_ROLE: &str = "commerce_app";

/// How a reservation checks and takes stock. See the crate docs for the
/// measured trade-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReservationStrategy {
    /// One conditional `UPDATE ... WHERE on_hand - held >= n` of the SKU's
    /// counter, then the reservation, the cart line and the cart's
    /// `updated_at`, all in one call of `commerce_set_line` (migration
    /// 0009) sent outside any explicit transaction: one round trip, one
    /// commit, and the SKU's row lock held only from the counter update to
    /// that commit. Expired holds are reclaimed lazily when a request would
    /// otherwise be refused, and by the sweep. The default: faster.
    #[default]
    SingleStatement,
    /// `pg_advisory_xact_lock` keyed to the SKU, then read the on-hand
    /// count, sum the live holds of other carts, and write or refuse. Its
    /// cost grows with the number of live holds on the SKU.
    AdvisoryLock,
    /// The single statement, with the reservations of one SKU that arrive
    /// while another of the same SKU is in flight in this process grouped:
    /// one transaction takes the SKU's row once, grants in arrival order
    /// while stock lasts, writes every granted hold, cart line and cart
    /// document in one statement, and answers each request with its own
    /// result. A reservation with nothing in flight for its SKU runs
    /// alone, as with [`SingleStatement`](Self::SingleStatement). In the
    /// bench run of 2026-12-06 05:33 UTC, 1.9 times the single statement's
    /// throughput on a hot SKU with 32 tasks and 1.8 times its refusals on
    /// a sold-out one, at the cost of the wait for the group in flight; see
    /// the crate docs and `benches/README.md`.
    Grouped,
}

/// Options for [`PgStore::connect_with`].
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    /// The reservation strategy.
    pub strategy: ReservationStrategy,
    /// A role to `SET ROLE` to on every new connection (for a login role
    /// that is a member of [`APP_ROLE`]); `None` to use the login role
    /// itself.
    pub set_role: Option<String>,
    /// The pool size.
    pub max_connections: u32,
    /// How long an operation waits for a free connection before it fails
    /// as unavailable (`BackendErrorKind::Unavailable`, which
    /// `commerce-http` answers 503 with `Retry-After`). Keep it below any
    /// request timeout in front of the store (`commerce-http`'s
    /// `recommended_layers` time out at 10 s): an operation that cannot get
    /// a connection then fails before it has done anything, instead of
    /// being cut off half-way when the buyer has already been told it
    /// failed. Default: 5 seconds.
    pub acquire_timeout: std::time::Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            strategy: ReservationStrategy::default(),
            set_role: None,
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store.
///
/// Every operation is one transaction that first pins the tenant with
/// `set_config('app.tenant_id', $tenant, true)`; row-level security then
/// confines it to that tenant's rows. The hot paths (setting a cart line,
/// the pricing read) are one call of a function of migration 0009 that
/// does the same as its first step, sent outside any explicit transaction.
/// The store refuses to start on a role that is a superuser or bypasses
/// row-level security.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    strategy: ReservationStrategy,
    groups: Arc<group::Groups>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` with the default options.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgStoreOptions::default()).await
    }

    /// Connects to `url` with `options`.
    pub async fn connect_with(url: &str, options: PgStoreOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| Error::InvalidConfig(format!("invalid database URL: {e}")))?;
        let role = options.set_role.clone();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection as it goes back to the pool, after
            // the caller has its answer; a second ping as it comes out would
            // add a round trip to every operation. A connection that died
            // while idle fails its operation as unavailable (and is closed),
            // as one that dies mid-operation does.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                let role = role.clone();
                Box::pin(async move {
                    if let Some(role) = role {
                        let statement = format!("SET ROLE \"{}\"", role.replace('"', "\"\""));
                        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(db)?;
        Self::from_pool(pool, options.strategy).await
    }

    /// A store over an existing pool, whose connections must run as a role
    /// that is neither a superuser nor `BYPASSRLS` (for example
    /// [`APP_ROLE`]); otherwise [`Error::InvalidConfig`].
    pub async fn from_pool(pool: PgPool, strategy: ReservationStrategy) -> Result<Self> {
        let (user, superuser, bypass): (String, bool, bool) = sqlx::query_as(
            "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&pool)
        .await
        .map_err(db)?;
        if superuser || bypass {
            return Err(Error::InvalidConfig(format!(
                "role {user} bypasses row-level security (superuser or BYPASSRLS); \
                 connect as {APP_ROLE} or set PgStoreOptions::set_role"
            )));
        }
        Ok(Self {
            pool,
            strategy,
            groups: Arc::default(),
        })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The reservation strategy.
    pub fn strategy(&self) -> ReservationStrategy {
        self.strategy
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    /// Through `commerce_tenants_with_work` (migration 0008): a
    /// `SECURITY DEFINER` function of the migrating role that returns only
    /// tenant ids, so the application role's row-level security is not
    /// loosened.
    async fn tenants_with_work(
        &self,
        now: Timestamp,
        after: Option<&TenantId>,
        limit: usize,
    ) -> Result<Vec<TenantId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT tenant FROM commerce_tenants_with_work($1, $2, $3) AS tenant",
        )
        .bind(now)
        .bind(after.map(TenantId::as_str))
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        ids.into_iter()
            .map(|id| TenantId::parse(id).map_err(|e| corrupt("a tenant id", e)))
            .collect()
    }

    fn scope(&self, tenant: &TenantId) -> Scope {
        Scope::new(
            tenant.clone(),
            Arc::new(PgTenant {
                pool: self.pool.clone(),
                tenant: tenant.clone(),
                strategy: self.strategy,
                groups: self.groups.clone(),
            }),
        )
    }
}

/// The stores of one tenant.
#[derive(Clone)]
pub(crate) struct PgTenant {
    pool: PgPool,
    tenant: TenantId,
    strategy: ReservationStrategy,
    /// The store's reservations in flight, shared by its tenants.
    groups: Arc<group::Groups>,
}

impl PgTenant {
    /// Begins a transaction pinned to this tenant, in one round trip: the
    /// `BEGIN` and the `set_config` row-level security reads go in one
    /// simple query.
    ///
    /// The tenant id is written into the statement as a literal: it is a
    /// slug (lowercase ASCII letters, digits, `-`, `_`), and quotes are
    /// doubled all the same. Should the `set_config` fail, the transaction
    /// is left aborted and its first statement fails, so nothing runs
    /// without the tenant set.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.begin_setting("").await
    }

    /// [`begin`](Self::begin) for a group reservation, which also keeps each
    /// statement's generic plan: its probes are per key (lateral
    /// subqueries), so the generic plan is right whatever the arrays hold,
    /// and the group's write, a statement of five parts, is not planned
    /// again for every group (about 0.9 ms against 0.06 ms, `EXPLAIN
    /// ANALYZE` of its first and second execution on this project's bench
    /// database).
    pub(crate) async fn begin_group(&self) -> Result<Transaction<'static, Postgres>> {
        self.begin_setting(", set_config('plan_cache_mode', 'force_generic_plan', true)")
            .await
    }

    /// `BEGIN` and the tenant's `set_config`, followed in the same select
    /// list by `more` (further `set_config` calls, or nothing).
    async fn begin_setting(&self, more: &str) -> Result<Transaction<'static, Postgres>> {
        let statement = format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{}', true){more}",
            self.tenant.as_str().replace('\'', "''")
        );
        self.pool
            .begin_with(sqlx::AssertSqlSafe(statement))
            .await
            .map_err(db)
    }

    pub(crate) fn tenant(&self) -> &str {
        self.tenant.as_str()
    }
}

/// Serializes a domain value for a `jsonb` column.
pub(crate) fn to_doc<T: Serialize>(value: &T) -> Result<sqlx::types::Json<serde_json::Value>> {
    serde_json::to_value(value)
        .map(sqlx::types::Json)
        .map_err(|e| corrupt("a document to store", e))
}

/// Deserializes a `jsonb` column into a domain value.
pub(crate) fn from_doc<T: DeserializeOwned>(what: &str, doc: serde_json::Value) -> Result<T> {
    serde_json::from_value(doc).map_err(|e| corrupt(what, e))
}
