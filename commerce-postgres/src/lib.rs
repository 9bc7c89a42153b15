#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod api_keys;
mod carts;
mod catalog;
mod check;
mod effects;
mod error;
mod feed;
mod group;
mod inventory;
mod orders;
mod promotions;
pub mod reconcile;
mod session;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use commerce_core::store::Scope;
use commerce_core::{BackendError, BackendErrorKind, Error, Result, Store, TenantId, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Postgres;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use check::{CheckReport, Finding, check};
pub use reconcile::{Drift, DriftKind, ReconcileReport};
pub use sqlx;

use crate::error::{corrupt, db};
use crate::session::{Session, Tx};

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
    /// otherwise be refused, and by the sweep. What the grouped strategy
    /// does for a reservation alone, without its queues.
    SingleStatement,
    /// `pg_advisory_xact_lock` keyed to the SKU, then read the on-hand
    /// count, sum the live holds of other carts, and write or refuse. Its
    /// cost grows with the number of live holds on the SKU.
    AdvisoryLock,
    /// The single statement, with the reservations of one SKU that arrive
    /// while another of the same SKU is in flight in this process grouped:
    /// one transaction takes the SKU's row once, grants in arrival order
    /// while stock lasts, writes every granted hold and cart line, and
    /// answers each request with its own result, all in one call of
    /// `commerce_set_lines` (migration 0012). A reservation with nothing
    /// in flight for its SKU runs alone, as with
    /// [`SingleStatement`](Self::SingleStatement), or, when the tenant
    /// already has such a reservation in flight, waits for it and runs
    /// with the others that waited in one transaction, one call of
    /// `commerce_set_line_batch` (migration 0013), each decided as a
    /// reservation alone: one commit for reservations spread over many
    /// SKUs. The default: in the bench run of 2026-12-07 14:26 UTC it made
    /// 3.4 times the single statement's reservations on a hot SKU with 32
    /// tasks (3.8 times PostgreSQL's own single-row limit), 3.1 times its
    /// refusals on a sold-out one, and 2.1 times its reservations spread
    /// over 10,000 SKUs with 32 tasks (1.16 of the limit), about the same
    /// with one task; see the crate docs and `benches/README.md`. What it
    /// costs: a request may wait for the group or batch ahead of it, a
    /// failed group reruns its requests alone, requests are coalesced only
    /// within one process, and a group's transaction holds up to
    /// 64 cart locks.
    #[default]
    Grouped,
}

/// Whether a reservation's commit waits for its write-ahead log to reach
/// the disk. Both never oversell; they differ only in what a crash of the
/// PostgreSQL server (or the loss of its machine, or a failover to a
/// replica) may take back.
///
/// A reservation is the SKU's counter, the hold and the cart line written
/// in one transaction, so a commit that is lost is lost whole: the units it
/// held are free again, and its cart no longer has the line. Anything that
/// spends a hold commits synchronously whatever this says (checkout, and
/// every other operation of the store): its commit flushes the log up to
/// itself, and with it every reservation committed before, so no order can
/// rest on a hold a crash took back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReservationCommit {
    /// The reservation commits with `synchronous_commit = off` (set for
    /// its own transaction only, in the round trip it already makes): the
    /// server answers once the commit is in its log buffer, and the log
    /// writer flushes it within `3 × wal_writer_delay` (600 ms by default).
    /// A server crash inside that window forgets the reservations of the
    /// window: a shopper's cart loses a line they were shown, and the unit
    /// goes back on sale. What it buys: one task no longer waits for a disk
    /// flush per reservation (in the bench run of 2026-12-07 14:26 UTC a
    /// reservation from one task took a third less time, p50 414 µs against
    /// 655 µs; see `benches/README.md`). The default: a hold is a
    /// short-lived claim that lapses anyway, and no money moves on it.
    #[default]
    Asynchronous,
    /// The reservation's commit waits for the flush, as every other
    /// transaction of the store does (`synchronous_commit` as the server
    /// has it, `on` unless configured otherwise): a shopper shown a
    /// reservation keeps it through a server crash.
    Synchronous,
}

/// Options for [`PgStore::connect_with`]. Build them from
/// `PgStoreOptions::default()` and change what differs
/// (`PgStoreOptions { max_connections: 20, ..PgStoreOptions::default() }`).
///
/// Every setting here is applied per transaction (with `set_config(…,
/// true)`, in the round trip the transaction already makes) or by the pool:
/// nothing is left on a server connection for the next client of a
/// connection pooler. For the three PostgreSQL timeouts, `Duration::ZERO`
/// turns the wait's bound off, as in PostgreSQL; a timeout past `i32::MAX`
/// milliseconds is refused at start ([`Error::InvalidConfig`]).
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    /// The reservation strategy.
    pub strategy: ReservationStrategy,
    /// Whether a reservation's commit waits for its flush. Default:
    /// [`ReservationCommit::Asynchronous`].
    pub reservation_commit: ReservationCommit,
    /// A role every transaction switches to (`set_config('role', …, true)`,
    /// which ends with the transaction), for a login role that is a member
    /// of [`APP_ROLE`] without inheriting its privileges, or that should not
    /// use its own; `None` to run as the login role itself, the documented
    /// deployment (a login that is a member of [`APP_ROLE`]: see the crate
    /// docs). The role, or the login role when this is `None`, must be
    /// neither a superuser nor `BYPASSRLS`.
    pub set_role: Option<String>,
    /// The pool size.
    pub max_connections: u32,
    /// How long an operation waits for a free connection before it fails as
    /// busy (`BackendErrorKind::Busy`, which `commerce-http` answers 503
    /// with `Retry-After`). Keep it below any request timeout in front of
    /// the store (`commerce-http`'s `recommended_layers` time out at 10 s):
    /// an operation that cannot get a connection then fails before it has
    /// done anything. Default: 2 seconds.
    pub acquire_timeout: Duration,
    /// `lock_timeout` of every transaction: how long a statement waits for a
    /// row lock (a hot SKU's, a cart's) before the operation fails as busy,
    /// having written nothing. Default: 2 seconds.
    pub lock_timeout: Duration,
    /// `statement_timeout` of every statement of an explicit transaction
    /// after its first (a one-call hot path is bounded by the lock timeout,
    /// its only wait). Default: 5 seconds.
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of every transaction: a
    /// transaction left idle this long (a stalled caller) is ended by the
    /// server, releasing its locks. Default: 2 seconds.
    pub idle_in_transaction_timeout: Duration,
    /// Whether a transaction pooler (PgBouncer in `pool_mode = transaction`,
    /// or one like it) sits between the store and PostgreSQL. The store then
    /// sends only unnamed statements, each inside an explicit transaction,
    /// which survive transaction pooling; it costs a round trip per
    /// statement (see `benches/README.md`). A URL with `pgbouncer=true` sets
    /// it. Default: false.
    pub pooled: bool,
    /// How many operations may wait for a connection beyond the pool's
    /// size: one more is refused as busy at once, instead of joining a
    /// queue that the acquire timeout would end anyway (a crowd larger than
    /// the pool gets its refusals in milliseconds, not after the timeout).
    /// Default: 200 (20 per connection of the default pool).
    pub max_waiting: u32,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            strategy: ReservationStrategy::default(),
            reservation_commit: ReservationCommit::default(),
            set_role: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(2),
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(2),
            pooled: false,
            max_waiting: 200,
        }
    }
}

/// The PostgreSQL store.
///
/// Every operation is one transaction that first pins the tenant with
/// `set_config('app.tenant_id', $tenant, true)`, and with it the role and
/// the bounded waits of [`PgStoreOptions`]; row-level security then
/// confines it to that tenant's rows. The hot paths (setting a cart line,
/// the pricing read) are one call of a function of migration 0009 after
/// the same settings, in one statement sent outside any explicit
/// transaction (inside one behind a transaction pooler). The store refuses
/// to start on a role that is a superuser or bypasses row-level security.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    strategy: ReservationStrategy,
    reservation_commit: ReservationCommit,
    groups: Arc<group::Groups>,
    session: Arc<Session>,
    hot: Arc<HotSql>,
}

/// The one-call statements, rendered once per store with its settings.
#[derive(Debug)]
pub(crate) struct HotSql {
    pub(crate) set_line: String,
    pub(crate) set_lines: String,
    pub(crate) set_line_batch: String,
    /// What a reservation's explicit transaction adds to its `BEGIN`
    /// (the advisory-lock strategy's): [`reservation_settings`].
    pub(crate) reserving: &'static str,
    pub(crate) pricing_read: String,
}

/// What a reservation's transaction sets besides the store's settings,
/// after them in the same select list: `synchronous_commit = off` for an
/// asynchronous commit (see [`ReservationCommit`]), which ends with the
/// transaction like the others.
fn reservation_settings(commit: ReservationCommit) -> &'static str {
    match commit {
        ReservationCommit::Asynchronous => ", set_config('synchronous_commit', 'off', true)",
        ReservationCommit::Synchronous => "",
    }
}

impl HotSql {
    fn new(session: &Session, commit: ReservationCommit) -> Self {
        let reserving = reservation_settings(commit);
        Self {
            set_line: session.one_call_sql(
                "call.outcome, call.cart_doc, call.cart_items, call.available, call.priced_in",
                "commerce_set_line",
                ", $2, $3, $4, $5, $6, $7, $8, $9",
                reserving,
            ),
            set_lines: session.one_call_sql(
                "call.outcome, call.cart_doc, call.cart_items, call.available, call.priced_in",
                "commerce_set_lines",
                ", $2, $3, $4, $5, $6, $7, $8, $9",
                reserving,
            ),
            set_line_batch: session.one_call_sql(
                "call.ordinal, call.outcome, call.cart_doc, call.cart_items, call.available, \
                 call.priced_in",
                "commerce_set_line_batch",
                ", $2, $3, $4, $5, $6, $7, $8, $9",
                reserving,
            ),
            reserving,
            pricing_read: session.one_call_sql(
                "call.cart_doc, call.cart_items, call.settings_doc, call.products, \
                 call.promotions, call.usage_totals, call.customer_usage",
                "commerce_pricing_read",
                ", $2",
                "",
            ),
        }
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("strategy", &self.strategy)
            .field("reservation_commit", &self.reservation_commit)
            .field("pooled", &self.session.pooled)
            .finish_non_exhaustive()
    }
}

/// Whether `url` asks for transaction-pooler mode (a `pgbouncer=true`
/// parameter), and the URL without that parameter (which sqlx does not
/// know). Errors: a value other than `true`, `false`, `1` or `0` is
/// [`Error::InvalidConfig`].
///
/// ```
/// let (pooled, url) = commerce_postgres::pooler_flag(
///     "postgres://shop@pooler:6432/shop?pgbouncer=true&sslmode=require",
/// )?;
/// assert!(pooled);
/// assert_eq!(url, "postgres://shop@pooler:6432/shop?sslmode=require");
/// # Ok::<(), commerce_core::Error>(())
/// ```
pub fn pooler_flag(url: &str) -> Result<(bool, String)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((false, url.to_owned()));
    };
    let mut pooled = false;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("pgbouncer", value)) => {
                pooled = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(Error::InvalidConfig(format!(
                            "invalid database URL: pgbouncer={other} (true or false)"
                        )));
                    }
                };
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((pooled, url))
}

impl PgStore {
    /// Connects to `url` with the default options (and `pgbouncer=true`
    /// from the URL).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgStoreOptions::default()).await
    }

    /// Connects to `url` with `options`. A URL parameter `pgbouncer=true`
    /// sets [`PgStoreOptions::pooled`].
    pub async fn connect_with(url: &str, mut options: PgStoreOptions) -> Result<Self> {
        let (pooled, url) = pooler_flag(url)?;
        options.pooled |= pooled;
        let connect = PgConnectOptions::from_str(&url)
            .map_err(|e| Error::InvalidConfig(format!("invalid database URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection as it goes back to the pool, after
            // the caller has its answer; a second ping as it comes out would
            // add a round trip to every operation. A connection that died
            // while idle fails its operation as unavailable (and is closed),
            // as one that dies mid-operation does.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(db)?;
        Self::from_pool_with(pool, options).await
    }

    /// A store over an existing pool, whose connections must run as a role
    /// that is neither a superuser nor `BYPASSRLS` (for example a login
    /// that is a member of [`APP_ROLE`]); otherwise [`Error::InvalidConfig`].
    /// The other options are the defaults.
    pub async fn from_pool(pool: PgPool, strategy: ReservationStrategy) -> Result<Self> {
        Self::from_pool_with(
            pool,
            PgStoreOptions {
                strategy,
                ..PgStoreOptions::default()
            },
        )
        .await
    }

    /// A store over an existing pool with `options` (`max_connections` and
    /// `acquire_timeout` are the pool's own: the pool's size and
    /// `max_waiting` bound the operations admitted at once). The
    /// role the store's transactions run as (`set_role`, or else the login
    /// role) must be neither a superuser nor `BYPASSRLS`, and the login
    /// role must be able to switch to it; otherwise
    /// [`Error::InvalidConfig`].
    pub async fn from_pool_with(pool: PgPool, options: PgStoreOptions) -> Result<Self> {
        for (name, value) in [
            ("lock_timeout", options.lock_timeout),
            ("statement_timeout", options.statement_timeout),
            (
                "idle_in_transaction_timeout",
                options.idle_in_transaction_timeout,
            ),
        ] {
            if value > session::LONGEST_TIMEOUT {
                return Err(Error::InvalidConfig(format!(
                    "PgStoreOptions::{name} is {value:?}, past PostgreSQL's longest timeout \
                     ({:?}); Duration::ZERO turns it off",
                    session::LONGEST_TIMEOUT
                )));
            }
        }
        // The pool's own size, whatever the options say.
        let admit_limit = usize::try_from(
            pool.options()
                .get_max_connections()
                .saturating_add(options.max_waiting),
        )
        .unwrap_or(usize::MAX);
        // One simple query (no prepared statement), safe behind a pooler.
        let probe = format!(
            "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, \
             pg_has_role(current_user, r.oid, 'MEMBER'), \
             coalesce((SELECT bool_and(has_function_privilege(current_user, p.oid, 'EXECUTE')) \
             FROM pg_proc p WHERE p.proname IN ('commerce_set_line', 'commerce_set_lines', 'commerce_set_line_batch', 'commerce_write_carts', 'commerce_pricing_read') \
             AND p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())), \
             false) \
             FROM pg_roles r WHERE r.rolname = {}",
            options
                .set_role
                .as_deref()
                .map_or_else(|| "current_user".to_owned(), session::literal)
        );
        let row = sqlx::raw_sql(sqlx::AssertSqlSafe(probe))
            .fetch_optional(&pool)
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Err(Error::InvalidConfig(format!(
                "role {} does not exist",
                options.set_role.as_deref().unwrap_or("current_user")
            )));
        };
        let (user, superuser, bypass, member, login_executes): (String, bool, bool, bool, bool) =
            sqlx::FromRow::from_row(&row).map_err(db)?;
        if superuser || bypass {
            return Err(Error::InvalidConfig(format!(
                "role {user} bypasses row-level security (superuser or BYPASSRLS); \
                 log in as a member of {APP_ROLE} or set PgStoreOptions::set_role"
            )));
        }
        if !member {
            return Err(Error::InvalidConfig(format!(
                "the login role is not a member of {user} and cannot switch to it"
            )));
        }
        let session = Session::new(
            options.pooled,
            !login_executes,
            admit_limit,
            options.set_role.as_deref(),
            options.lock_timeout,
            options.statement_timeout,
            options.idle_in_transaction_timeout,
        );
        let hot = HotSql::new(&session, options.reservation_commit);
        Ok(Self {
            pool,
            strategy: options.strategy,
            reservation_commit: options.reservation_commit,
            groups: Arc::default(),
            session: Arc::new(session),
            hot: Arc::new(hot),
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

    /// Whether a reservation's commit waits for its flush.
    pub fn reservation_commit(&self) -> ReservationCommit {
        self.reservation_commit
    }

    /// Whether the store runs in transaction-pooler mode.
    pub fn pooled(&self) -> bool {
        self.session.pooled
    }

    /// Begins a transaction with the store's settings and no tenant.
    async fn begin_untenanted(&self) -> Result<Tx> {
        begin(&self.pool, &self.session, None, "").await
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
        let query = sqlx::query_scalar(
            "SELECT tenant FROM commerce_tenants_with_work($1, $2, $3) AS tenant",
        )
        .bind(now)
        .bind(after.map(TenantId::as_str))
        .bind(i32::try_from(limit).unwrap_or(i32::MAX));
        // In a transaction of its own, which pins the role and the waits.
        let mut tx = self.begin_untenanted().await?;
        let ids: Vec<String> = query.fetch_all(&mut tx).await.map_err(db)?;
        tx.commit().await?;
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
                session: self.session.clone(),
                hot: self.hot.clone(),
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
    session: Arc<Session>,
    hot: Arc<HotSql>,
}

impl PgTenant {
    /// Begins a transaction pinned to this tenant, its role and its bounded
    /// waits, in one round trip: the `BEGIN` and the `set_config` calls go
    /// in one simple query.
    ///
    /// The tenant id is written into the statement as a literal: it is a
    /// slug (lowercase ASCII letters, digits, `-`, `_`), and quotes are
    /// doubled all the same. Should a `set_config` fail, the transaction is
    /// left aborted and its first statement fails, so nothing runs without
    /// the tenant set.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        self.begin_setting("").await
    }

    /// `BEGIN` and the settings, followed in the same select list by `more`
    /// (further `set_config` calls, or nothing).
    pub(crate) async fn begin_setting(&self, more: &str) -> Result<Tx> {
        begin(&self.pool, &self.session, Some(self.tenant.as_str()), more).await
    }

    /// Runs a one-call statement (see [`HotSql`]) whose function answers
    /// with one row.
    pub(crate) async fn one_call<O>(
        &self,
        query: sqlx::query::QueryAs<'_, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> Result<O>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        self.one_call_rows(query)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| corrupt("a one-call statement's answer", "no row"))
    }

    /// Runs a one-call statement (see [`HotSql`]): alone, outside any
    /// explicit transaction, or behind a transaction pooler inside one;
    /// every row its function answers with.
    pub(crate) async fn one_call_rows<O>(
        &self,
        query: sqlx::query::QueryAs<'_, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<O>>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        if self.session.one_call_in_transaction {
            let mut tx = self.begin().await?;
            let rows = query.fetch_all(&mut tx).await.map_err(db)?;
            tx.commit().await?;
            Ok(rows)
        } else {
            let _admission = self.session.admit()?;
            query
                .fetch_all(&self.pool)
                .await
                .map_err(|e| acquire_error(&self.pool, e))
        }
    }

    pub(crate) fn tenant(&self) -> &str {
        self.tenant.as_str()
    }
}

/// Begins a transaction on `pool` with `session`'s settings, the tenant
/// (or none) and `more`, in one round trip; the transaction holds its
/// admission until it ends.
async fn begin(pool: &PgPool, session: &Session, tenant: Option<&str>, more: &str) -> Result<Tx> {
    let admission = session.admit()?;
    let statement = session.begin_sql(tenant, more);
    let tx = pool
        .begin_with(sqlx::AssertSqlSafe(statement))
        .await
        .map_err(|e| acquire_error(pool, e))?;
    Ok(Tx::new(tx, session, admission))
}

/// [`db`], with a pool timeout told apart: with fewer connections open than
/// the pool's size, opening one failed until the timeout (sqlx retries a
/// refused connection until then): the server is unavailable; with every
/// connection in use, the store is busy.
fn acquire_error(pool: &PgPool, error: sqlx::Error) -> Error {
    if matches!(error, sqlx::Error::PoolTimedOut)
        && pool.size() < pool.options().get_max_connections()
    {
        return BackendError::new(
            BackendErrorKind::Unavailable,
            "no connection to PostgreSQL could be opened within the acquire timeout",
        )
        .with_source(error)
        .into();
    }
    db(error)
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
