//! Which store a shop runs on: the in-memory store by default, PostgreSQL
//! when the environment variable `DATABASE_URL` is set.
//!
//! `DATABASE_URL` names the login the store runs as: in production a role
//! that is only a member of `commerce_app` (not a superuser, owning
//! nothing, without `BYPASSRLS`), with `pgbouncer=true` behind PgBouncer in
//! transaction pooling. The shop migrates first (idempotent) with
//! `MIGRATION_DATABASE_URL`, the tables' owner on a direct connection,
//! falling back to `DATABASE_URL`. A login that row-level security does not
//! confine (an administrator, as in development) is switched to
//! `commerce_app` in every transaction; `SHOP check` names what to fix. A
//! web shop keeps its tenant from run to
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

/// The environment variable naming the owner's URL for the migrations
/// (default: [`DATABASE_URL`]).
pub const MIGRATION_DATABASE_URL: &str = "MIGRATION_DATABASE_URL";

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

/// The migrations' URL: `MIGRATION_DATABASE_URL`, or else `url`; never a
/// pooled one (the migrations hold a session lock).
fn migration_url(url: &str) -> Result<String, SetupError> {
    let (name, migration) = match std::env::var(MIGRATION_DATABASE_URL) {
        Ok(m) if !m.trim().is_empty() => (MIGRATION_DATABASE_URL, m),
        _ => (DATABASE_URL, url.to_owned()),
    };
    let (pooled, migration) =
        commerce_postgres::pooler_flag(&migration).map_err(|e| SetupError::new(name, e))?;
    if pooled {
        return Err(SetupError::new(
            name,
            "the migrations need a direct connection (they hold a session lock), not a \
             transaction pooler: set MIGRATION_DATABASE_URL to the owner's direct URL",
        ));
    }
    Ok(migration)
}

/// Migrates with the owner's URL, then connects the store with `url`'s
/// login (switched to `commerce_app` per transaction if row-level security
/// does not confine that login).
async fn open_postgres(url: &str, tenancy: Tenancy<'_>) -> Result<Opened, SetupError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(SetupError::new(
            "DATABASE_URL",
            "not a PostgreSQL URL (postgres://user@host:port/database)",
        ));
    }
    let (pooled, plain) =
        commerce_postgres::pooler_flag(url).map_err(|e| SetupError::new(DATABASE_URL, e))?;
    let options = PgConnectOptions::from_str(&plain)
        .map_err(|e| SetupError::new("DATABASE_URL is not a PostgreSQL URL", e))?;
    let place = format!(
        "database {} at {}:{}{}",
        options.get_database().unwrap_or(options.get_username()),
        options.get_host(),
        options.get_port(),
        if pooled { " (pooled)" } else { "" }
    );

    let migration = migration_url(url)?;
    let admin_options = PgConnectOptions::from_str(&migration)
        .map_err(|e| SetupError::new("MIGRATION_DATABASE_URL is not a PostgreSQL URL", e))?;
    // One plain connection first: a pool that cannot connect retries until
    // its timeout and then reports only that it timed out, not why.
    PgConnection::connect_with(&admin_options)
        .await
        .map_err(|e| SetupError::new("cannot connect to run the migrations", e))?
        .close()
        .await
        .map_err(|e| SetupError::new("cannot connect to run the migrations", e))?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin_options)
        .await
        .map_err(|e| SetupError::new("cannot connect to run the migrations", e))?;
    let migrated = commerce_postgres::migrate(&admin).await;
    admin.close().await;
    migrated.map_err(|e| {
        SetupError::new(
            "cannot migrate the database (a login that owns nothing cannot: set \
             MIGRATION_DATABASE_URL to the owner's direct URL)",
            e,
        )
    })?;

    let report = commerce_postgres::check(url, None)
        .await
        .map_err(|e| SetupError::new("cannot connect to DATABASE_URL", e))?;
    let unconfined = report.login_bypasses_rls();
    let strategy = ReservationStrategy::default();
    let store = PgStore::connect_with(
        url,
        PgStoreOptions {
            strategy,
            set_role: unconfined.then(|| commerce_postgres::APP_ROLE.to_owned()),
            max_connections: MAX_CONNECTIONS,
            ..PgStoreOptions::default()
        },
    )
    .await
    .map_err(|e| {
        SetupError::new(
            "cannot start the PostgreSQL store (run `SHOP check` to see what to fix)",
            e,
        )
    })?;
    let tenant = match tenancy {
        Tenancy::Fixed(name) => {
            TenantId::parse(name).map_err(|e| SetupError::new("tenant id", e))?
        }
        Tenancy::PerRun(name) => run_tenant(name, uuid::Uuid::new_v4())?,
    };
    let role = if unconfined {
        format!(
            "as {} switched to {}",
            report.login,
            commerce_postgres::APP_ROLE
        )
    } else {
        format!("as {}", report.login)
    };
    let advice = match report.findings.len() {
        0 => String::new(),
        n => format!("; `check` finds {n} thing(s) to fix"),
    };
    let description = format!(
        "store: PostgreSQL (DATABASE_URL, {place}, {role}), reservation strategy {}, \
         tenant {tenant}{advice}",
        strategy_name(store.strategy())
    );
    Ok(Opened {
        store: Arc::new(store.clone()),
        tenant,
        description,
        postgres: Some(store),
    })
}

/// `SHOP check`: the deployment check of `DATABASE_URL` (see
/// [`commerce_postgres::check`]), printed; an error when something needs
/// fixing or PostgreSQL is not configured.
pub async fn check_command() -> Result<(), crate::Failure> {
    let Choice::Postgres(url) = Choice::from_env()? else {
        return Err("DATABASE_URL is not set: the in-memory store has nothing to check".into());
    };
    let report = commerce_postgres::check(&url, None).await?;
    println!("{report}");
    if report.is_ok() {
        return Ok(());
    }
    if report.login_bypasses_rls() && report.findings.len() == 1 {
        println!(
            "(the shop still runs: it switches such a login to {} in every transaction)",
            commerce_postgres::APP_ROLE
        );
    }
    Err(format!("{} thing(s) to fix", report.findings.len()).into())
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
