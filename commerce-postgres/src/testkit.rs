//! A store factory for the conformance kit and the benches: every store
//! gets a fresh database with the production migrations.
//!
//! The database server comes from `DATABASE_URL` (read after loading a
//! `.env` file, if any), an administrative role that can create databases
//! and roles. Where it is unset, a PostgreSQL container is started with
//! testcontainers (needs Docker). Where neither works, the tests print the
//! command that would run them and, under `CI=true`, fail.

use std::sync::Arc;

use async_trait::async_trait;
use commerce_core::Store;
use commerce_core::testkit::StoreFactory;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use tokio::sync::OnceCell;

use crate::{APP_ROLE, PgStore, PgStoreOptions, ReservationCommit, ReservationStrategy};

/// The command that runs the PostgreSQL tests against a local server.
pub const HOW_TO_RUN: &str = "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
     cargo test -p commerce-postgres --all-features";

/// How many random operation sequences the model scenario runs per
/// reservation strategy (`COMMERCE_MODEL_CASES` overrides it): each needs a
/// fresh database, so fewer than on the in-memory store's 256.
pub const MODEL_CASES: u32 = 24;

/// Where the tests' database server is.
enum Server {
    Url(String),
    Container {
        url: String,
        _container: Box<ContainerAsync<Postgres>>,
    },
    Unavailable(String),
}

static SERVER: OnceCell<Arc<Server>> = OnceCell::const_new();

async fn server() -> Arc<Server> {
    SERVER
        .get_or_init(|| async {
            let _ = dotenvy::dotenv();
            if let Ok(url) = std::env::var("DATABASE_URL") {
                return Arc::new(Server::Url(url));
            }
            match Postgres::default().start().await {
                Ok(container) => match container.get_host_port_ipv4(5432).await {
                    Ok(port) => Arc::new(Server::Container {
                        url: format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
                        _container: Box::new(container),
                    }),
                    Err(e) => Arc::new(Server::Unavailable(format!("testcontainers: {e}"))),
                },
                Err(e) => Arc::new(Server::Unavailable(format!(
                    "DATABASE_URL is not set and testcontainers could not start PostgreSQL ({e})"
                ))),
            }
        })
        .await
        .clone()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Makes a [`PgStore`] on a fresh database per call.
#[derive(Clone)]
pub struct PgFactory {
    admin_url: Option<String>,
    unavailable: Option<String>,
    strategy: ReservationStrategy,
    reservation_commit: ReservationCommit,
    /// The transaction pooler's URL, when the stores go through one.
    pooler_url: Option<String>,
}

/// The environment variable naming a PgBouncer in transaction pooling in
/// front of the test server (`bash .ci/pgbouncer.sh` starts one), for
/// [`PgFactory::through_pooler`]: its host, port and login role (the
/// database name is replaced by each scenario's).
pub const PGBOUNCER_URL: &str = "COMMERCE_PGBOUNCER_URL";

/// The least-privileged login the pooled stores use: a member of
/// [`APP_ROLE`], not a superuser, owning nothing, without `BYPASSRLS`.
pub const LOGIN_ROLE: &str = "commerce_login";

impl std::fmt::Debug for PgFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFactory")
            .field("strategy", &self.strategy)
            .field("reservation_commit", &self.reservation_commit)
            .field("available", &self.unavailable.is_none())
            .finish()
    }
}

impl PgFactory {
    /// A factory on the configured server with `strategy`.
    ///
    /// # Panics
    ///
    /// Under `CI=true`, when no server can be reached: CI must fail, not skip.
    #[allow(clippy::panic)]
    pub async fn from_env(strategy: ReservationStrategy) -> Self {
        let server = server().await;
        let (admin_url, unavailable) = match &*server {
            Server::Url(url) | Server::Container { url, .. } => (Some(url.clone()), None),
            Server::Unavailable(reason) => {
                let message = format!(
                    "PostgreSQL tests cannot run: {reason}. Start PostgreSQL and run: {HOW_TO_RUN}"
                );
                if in_ci() {
                    panic!("{message}");
                }
                (None, Some(message))
            }
        };
        Self {
            admin_url,
            unavailable,
            strategy,
            reservation_commit: ReservationCommit::default(),
            pooler_url: None,
        }
    }

    /// The same factory, whose stores commit reservations as `commit` says
    /// (the default: [`ReservationCommit::default`]).
    #[must_use]
    pub fn with_reservation_commit(mut self, commit: ReservationCommit) -> Self {
        self.reservation_commit = commit;
        self
    }

    /// A factory whose stores log in as [`LOGIN_ROLE`] through the
    /// transaction pooler at [`PGBOUNCER_URL`] in pooled mode
    /// (`pgbouncer=true`); databases are still created and migrated
    /// directly.
    ///
    /// # Panics
    ///
    /// Under `CI=true`, when no server or no pooler is configured.
    #[allow(clippy::panic)]
    pub async fn through_pooler(strategy: ReservationStrategy) -> Self {
        let mut factory = Self::from_env(strategy).await;
        match std::env::var(PGBOUNCER_URL) {
            Ok(url) if !url.is_empty() => factory.pooler_url = Some(url),
            _ => {
                let message = format!(
                    "pooled PostgreSQL tests cannot run: {PGBOUNCER_URL} is not set. Run \
                     `bash .ci/pgbouncer.sh`, then {PGBOUNCER_URL}=postgres://{LOGIN_ROLE}@127.0.0.1:6433/postgres {HOW_TO_RUN}"
                );
                if in_ci() {
                    panic!("{message}");
                }
                factory.unavailable.get_or_insert(message);
            }
        }
        factory
    }

    /// The pooler's URL, for a factory made by [`through_pooler`](Self::through_pooler).
    pub fn pooler_url(&self) -> Option<&str> {
        self.pooler_url.as_deref()
    }

    /// The administrative URL of the server, if one is reachable.
    pub fn admin_url(&self) -> Option<&str> {
        self.admin_url.as_deref()
    }

    /// Creates a fresh database, migrates it, and returns its name and an
    /// administrative pool on it.
    #[allow(clippy::panic)]
    pub async fn fresh_database(&self) -> (String, PgPool) {
        let Some(admin_url) = &self.admin_url else {
            panic!("{}", self.unavailable.clone().unwrap_or_default());
        };
        let options: PgConnectOptions = admin_url
            .parse()
            .unwrap_or_else(|e| panic!("invalid DATABASE_URL: {e}"));
        let name = format!("commerce_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = options
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}. Run: {HOW_TO_RUN}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options.database(&name))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {name}: {e}"));
        crate::migrate(&pool)
            .await
            .unwrap_or_else(|e| panic!("cannot migrate {name}: {e}"));
        // The least-privileged login (roles belong to the server, not the
        // database: create it once).
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN CREATE ROLE {LOGIN_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS INHERIT IN ROLE {APP_ROLE}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("cannot create the role {LOGIN_ROLE}: {e}"));
        (name, pool)
    }

    /// A store on a fresh database, connected as the administrative role
    /// switched to [`APP_ROLE`] (so row-level security applies).
    pub async fn store(&self) -> PgStore {
        let (name, admin) = self.fresh_database().await;
        admin.close().await;
        self.open(&name).await
    }

    /// A store on a fresh database, and an administrative pool on the same
    /// database: the administrative role bypasses row-level security, for
    /// tests that plant or inspect rows of any tenant.
    pub async fn store_and_admin(&self) -> (PgStore, PgPool) {
        let (name, admin) = self.fresh_database().await;
        (self.open(&name).await, admin)
    }

    /// Two stores (two connection pools, as two instances of a service
    /// would have) on one fresh database.
    pub async fn store_pair(&self) -> (PgStore, PgStore) {
        let (name, admin) = self.fresh_database().await;
        admin.close().await;
        (self.open(&name).await, self.open(&name).await)
    }

    /// A store on a fresh database with the factory's options changed by
    /// `tweak`, and an administrative pool on the same database.
    pub async fn store_with(&self, tweak: impl FnOnce(&mut PgStoreOptions)) -> (PgStore, PgPool) {
        let (name, admin) = self.fresh_database().await;
        (self.open_with(&name, tweak).await, admin)
    }

    /// A store on a fresh database with `max_connections` connections and
    /// the production waits of `PgStoreOptions::default()` (acquire, lock
    /// and statement timeouts, `max_waiting`) instead of the kit's patient
    /// ones, and an administrative pool on the same database: for crowds.
    pub async fn store_with_default_waits(&self, max_connections: u32) -> (PgStore, PgPool) {
        self.store_with(|options| {
            let defaults = PgStoreOptions::default();
            options.max_connections = max_connections;
            options.acquire_timeout = defaults.acquire_timeout;
            options.lock_timeout = defaults.lock_timeout;
            options.statement_timeout = defaults.statement_timeout;
            options.max_waiting = defaults.max_waiting;
        })
        .await
    }

    /// A store on the database `name`: as the administrative role switched
    /// to [`APP_ROLE`] in every transaction, or through the pooler as
    /// [`LOGIN_ROLE`] in pooled mode.
    async fn open(&self, name: &str) -> PgStore {
        self.open_with(name, |_| ()).await
    }

    #[allow(clippy::panic)]
    async fn open_with(&self, name: &str, tweak: impl FnOnce(&mut PgStoreOptions)) -> PgStore {
        let (url, mut options) = match &self.pooler_url {
            Some(pooler) => (
                pooler,
                PgStoreOptions {
                    pooled: true,
                    ..PgStoreOptions::default()
                },
            ),
            None => (
                self.admin_url
                    .as_ref()
                    .unwrap_or_else(|| panic!("{}", self.unavailable.clone().unwrap_or_default())),
                PgStoreOptions {
                    set_role: Some(APP_ROLE.to_owned()),
                    ..PgStoreOptions::default()
                },
            ),
        };
        options.strategy = self.strategy;
        options.reservation_commit = self.reservation_commit;
        options.max_connections = 8;
        // The races queue hundreds of tasks on eight connections on a
        // loaded machine: a test waits, a shop would shed load.
        options.acquire_timeout = std::time::Duration::from_secs(60);
        options.lock_timeout = std::time::Duration::from_secs(60);
        options.statement_timeout = std::time::Duration::from_secs(120);
        options.max_waiting = 1_000_000;
        tweak(&mut options);
        let connect: PgConnectOptions = url
            .parse()
            .unwrap_or_else(|e| panic!("invalid database URL {url}: {e}"));
        let connect = connect.database(name);
        let connect = match self.pooler_url {
            Some(_) => connect.username(LOGIN_ROLE),
            None => connect,
        };
        let url = connect.to_url_lossy().to_string();
        PgStore::connect_with(&url, options)
            .await
            .unwrap_or_else(|e| panic!("cannot open the store on {name}: {e}"))
    }
}

#[async_trait]
impl StoreFactory for PgFactory {
    async fn new_store(&self) -> Arc<dyn Store> {
        Arc::new(self.store().await)
    }

    fn unavailable(&self) -> Option<String> {
        self.unavailable.clone()
    }

    /// Each case creates and migrates a database: [`MODEL_CASES`] of them.
    fn model_cases(&self) -> u32 {
        MODEL_CASES
    }
}
