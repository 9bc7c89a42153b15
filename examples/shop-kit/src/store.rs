//! Which store a shop runs on: the in-memory store by default, PostgreSQL
//! when the environment variable `DATABASE_URL` is set.
//!
//! `DATABASE_URL` names an administrative role (one that may create tables,
//! policies and roles). The shop migrates with it (idempotent), then runs
//! the store on the same URL switched to `commerce_app`, the role that
//! row-level security applies to. A web shop keeps its tenant from run to
//! run; a scripted demo asks for [`Tenancy::PerRun`], a tenant of its own
//! (`{name}-<8 hex digits>`) on PostgreSQL, so SKUs, idempotency keys and
//! payment event ids never meet an earlier run's rows.

use std::env::VarError;
use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use commerce_core::{InMemoryStore, Store, TenantId};
use commerce_postgres::{PgStore, PgStoreOptions, ReservationStrategy};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

/// The environment variable that selects PostgreSQL.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// The pool size of the PostgreSQL store.
const MAX_CONNECTIONS: u32 = 8;

/// Where the shop keeps its data, as chosen by the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `DATABASE_URL` is unset (or empty).
    InMemory,
    /// `DATABASE_URL` is set: this URL.
    Postgres(String),
}

impl Choice {
    /// The choice `DATABASE_URL` makes, given what `std::env::var` read.
    pub fn from_var(var: Result<String, VarError>) -> Result<Self, SetupError> {
        match var {
            Ok(url) if url.trim().is_empty() => Ok(Self::InMemory),
            Ok(url) => Ok(Self::Postgres(url)),
            Err(VarError::NotPresent) => Ok(Self::InMemory),
            Err(e @ VarError::NotUnicode(_)) => Err(SetupError::new(DATABASE_URL, e)),
        }
    }

    /// The choice of this process's environment.
    pub fn from_env() -> Result<Self, SetupError> {
        Self::from_var(std::env::var(DATABASE_URL))
    }
}

/// Which tenant a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy<'a> {
    /// This tenant on every store: the shop's data outlives the run.
    Fixed(&'a str),
    /// This tenant in memory; on PostgreSQL `{name}-<8 hex digits>`, new
    /// for every run.
    PerRun(&'a str),
}

impl Tenancy<'_> {
    fn name(&self) -> &str {
        match self {
            Self::Fixed(name) | Self::PerRun(name) => name,
        }
    }
}

/// A store ready for the engine, the tenant to run as, and a line saying
/// which store it is.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The shop's tenant.
    pub tenant: TenantId,
    /// `store: ...`, for the top of the output.
    pub description: String,
    /// The same store as [`store`](Self::store) when it is PostgreSQL, for
    /// what only it offers (its [`reconcile`](PgStore::reconcile)).
    pub postgres: Option<PgStore>,
}

/// Opens the store `choice` names, for the tenant `tenancy` asks for.
pub async fn open(choice: &Choice, tenancy: Tenancy<'_>) -> Result<Opened, SetupError> {
    match choice {
        Choice::InMemory => Ok(Opened {
            store: Arc::new(InMemoryStore::new()),
            tenant: TenantId::parse(tenancy.name()).map_err(|e| SetupError::new("tenant id", e))?,
            description: "store: in memory".to_owned(),
            postgres: None,
        }),
        Choice::Postgres(url) => open_postgres(url, tenancy).await,
    }
}

/// Migrates with `url`'s role, then connects the store as `commerce_app`.
async fn open_postgres(url: &str, tenancy: Tenancy<'_>) -> Result<Opened, SetupError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(SetupError::new(
            "DATABASE_URL",
            "not a PostgreSQL URL (postgres://user@host:port/database)",
        ));
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| SetupError::new("DATABASE_URL is not a PostgreSQL URL", e))?;
    let place = format!(
        "database {} at {}:{}",
        options.get_database().unwrap_or(options.get_username()),
        options.get_host(),
        options.get_port()
    );

    // One plain connection first: a pool that cannot connect retries until
    // its timeout and then reports only that it timed out, not why.
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| SetupError::new("cannot connect to DATABASE_URL", e))?
        .close()
        .await
        .map_err(|e| SetupError::new("cannot connect to DATABASE_URL", e))?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| SetupError::new("cannot connect to DATABASE_URL", e))?;
    let migrated = commerce_postgres::migrate(&admin).await;
    admin.close().await;
    migrated.map_err(|e| SetupError::new("cannot migrate the database", e))?;

    let strategy = ReservationStrategy::default();
    let store = PgStore::connect_with(
        url,
        PgStoreOptions {
            strategy,
            set_role: Some(commerce_postgres::APP_ROLE.into()),
            max_connections: MAX_CONNECTIONS,
            // Below commerce-http's 10 s request timeout: a request that
            // cannot get a connection in time is refused (503, Retry-After)
            // before it has done anything, never cut off half-way.
            acquire_timeout: std::time::Duration::from_secs(8),
        },
    )
    .await
    .map_err(|e| {
        SetupError::new(
            "cannot start the PostgreSQL store as commerce_app (the role in DATABASE_URL must be \
             able to SET ROLE commerce_app)",
            e,
        )
    })?;
    let tenant = match tenancy {
        Tenancy::Fixed(name) => {
            TenantId::parse(name).map_err(|e| SetupError::new("tenant id", e))?
        }
        Tenancy::PerRun(name) => run_tenant(name, uuid::Uuid::new_v4())?,
    };
    let description = format!(
        "store: PostgreSQL (DATABASE_URL, {place}, as {}), reservation strategy {}, tenant {tenant}",
        commerce_postgres::APP_ROLE,
        strategy_name(store.strategy())
    );
    Ok(Opened {
        store: Arc::new(store.clone()),
        tenant,
        description,
        postgres: Some(store),
    })
}

/// `{name}-` and the first 8 hex digits of `id`: a tenant of its own for
/// one run.
pub fn run_tenant(name: &str, id: uuid::Uuid) -> Result<TenantId, SetupError> {
    let (head, ..) = id.as_fields();
    TenantId::parse(format!("{name}-{head:08x}")).map_err(|e| SetupError::new("tenant id", e))
}

/// A reservation strategy in words.
pub fn strategy_name(strategy: ReservationStrategy) -> String {
    match strategy {
        ReservationStrategy::SingleStatement => "single statement".to_owned(),
        ReservationStrategy::AdvisoryLock => "advisory lock".to_owned(),
        ReservationStrategy::Grouped => "grouped".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The store could not be opened.
pub struct SetupError {
    what: String,
    source: Box<dyn StdError + Send + Sync>,
}

impl SetupError {
    /// `what` failed because of `source`.
    pub fn new(
        what: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            what: what.into(),
            source: source.into(),
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

/// Shown by `main` when it returns the error: the message, not a struct dump.
impl fmt::Debug for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl StdError for SetupError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_selects_the_store() {
        assert_eq!(
            Choice::from_var(Err(VarError::NotPresent)).map_err(|e| e.to_string()),
            Ok(Choice::InMemory)
        );
        assert_eq!(
            Choice::from_var(Ok("  ".to_owned())).map_err(|e| e.to_string()),
            Ok(Choice::InMemory)
        );
        let url = "postgres://postgres@127.0.0.1:5432/postgres";
        assert_eq!(
            Choice::from_var(Ok(url.to_owned())).map_err(|e| e.to_string()),
            Ok(Choice::Postgres(url.to_owned()))
        );
    }

    #[test]
    fn every_run_gets_a_valid_tenant_of_its_own() {
        let id = uuid::Uuid::from_u128(0x1a2b_3c4d_0000_4000_8000_0000_0000_0000);
        assert_eq!(
            run_tenant("gpu-exchange", id)
                .map(|t| t.as_str().to_owned())
                .map_err(|e| e.to_string()),
            Ok("gpu-exchange-1a2b3c4d".to_owned())
        );
        let random =
            run_tenant("gpu-exchange", uuid::Uuid::new_v4()).map(|t| t.as_str().to_owned());
        assert!(
            random
                .as_ref()
                .is_ok_and(|t| t.len() == 21 && t.starts_with("gpu-exchange-")),
            "{random:?}"
        );
    }

    #[test]
    fn strategies_in_words() {
        assert_eq!(
            strategy_name(ReservationStrategy::SingleStatement),
            "single statement"
        );
        assert_eq!(
            strategy_name(ReservationStrategy::AdvisoryLock),
            "advisory lock"
        );
    }

    #[tokio::test]
    async fn only_a_postgres_url_selects_postgres() {
        let refused = open(
            &Choice::Postgres("mysql://root@127.0.0.1/shop".to_owned()),
            Tenancy::Fixed("shop"),
        )
        .await
        .map(|o| o.description)
        .map_err(|e| e.to_string());
        assert_eq!(
            refused,
            Err(
                "DATABASE_URL: not a PostgreSQL URL (postgres://user@host:port/database)"
                    .to_owned()
            )
        );
    }

    #[tokio::test]
    async fn without_database_url_the_shop_runs_in_memory() {
        let opened = open(&Choice::InMemory, Tenancy::PerRun("gpu-exchange"))
            .await
            .map_err(|e| e.to_string());
        let shown = opened.map(|o| (o.tenant.as_str().to_owned(), o.description));
        assert_eq!(
            shown,
            Ok(("gpu-exchange".to_owned(), "store: in memory".to_owned()))
        );
    }
}
