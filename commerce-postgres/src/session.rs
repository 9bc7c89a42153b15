//! What every store transaction pins for itself, and the transaction type
//! whose statements survive a transaction pooler.
//!
//! Nothing the store depends on lives on a connection's session: each
//! transaction sets the tenant, the role (when the store switches to one)
//! and the bounded waits with `set_config(…, true)`, which end with the
//! transaction, in the round trip it already makes. Behind a transaction
//! pooler (PgBouncer in `pool_mode = transaction`) a server connection
//! serves one client for one transaction only, so a session setting would
//! leak to the next client and a named prepared statement would meet
//! another client's of the same name; there the store sends unnamed
//! statements, and only inside explicit transactions (an unnamed statement
//! is parsed in one round trip and executed in the next, which the pooler
//! may send to another server connection between transactions).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Execute, Executor, Postgres, SqlStr, Transaction};

use crate::error::db;
use commerce_core::{BackendError, BackendErrorKind, Result};

/// The per-transaction settings of one store, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Whether a transaction pooler sits between the store and PostgreSQL.
    pub(crate) pooled: bool,
    /// Whether the one-call statements go inside an explicit transaction:
    /// behind a pooler, and for a login that may not execute the one-call
    /// functions itself (a `NOINHERIT` member of the role it switches to:
    /// `EXECUTE` is checked as the statement starts, before the pin).
    pub(crate) one_call_in_transaction: bool,
    /// `, set_config('role', …, true), set_config('lock_timeout', …, true), …`:
    /// what follows the tenant's `set_config` in a select list.
    settings: String,
    /// Operations admitted now (running or waiting for a connection).
    admitted: Arc<AtomicUsize>,
    /// How many may be admitted at once.
    admit_limit: usize,
}

impl Session {
    /// The settings for `role` (if any) and the three timeouts.
    pub(crate) fn new(
        pooled: bool,
        one_call_in_transaction: bool,
        admit_limit: usize,
        role: Option<&str>,
        lock_timeout: Duration,
        statement_timeout: Duration,
        idle_in_transaction_timeout: Duration,
    ) -> Self {
        // The role always: `none` (the login itself) unless one is set, so a
        // role some other client of the same login left on a pooled server
        // connection is never inherited.
        let mut settings = format!(
            ", set_config('role', {}, true)",
            literal(role.unwrap_or("none"))
        );
        for (name, value) in [
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
            (
                "idle_in_transaction_session_timeout",
                idle_in_transaction_timeout,
            ),
        ] {
            settings.push_str(&format!(
                ", set_config('{name}', '{}ms', true)",
                millis(value)
            ));
        }
        Self {
            pooled,
            one_call_in_transaction: pooled || one_call_in_transaction,
            settings,
            admitted: Arc::default(),
            admit_limit,
        }
    }

    /// Admits one more operation, or refuses it as busy at once when as
    /// many as the limit are running or waiting for a connection: a queue
    /// that long would not be served within the acquire timeout anyway, and
    /// its callers are better told now than after the timeout.
    pub(crate) fn admit(&self) -> Result<Admission> {
        let limit = self.admit_limit;
        match self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            }) {
            Ok(_) => Ok(Admission(self.admitted.clone())),
            Err(now) => Err(BackendError::new(
                BackendErrorKind::Busy,
                format!(
                    "{now} store operations are running or waiting for a connection \
                     (PgStoreOptions::max_waiting)"
                ),
            )
            .into()),
        }
    }

    /// `BEGIN` and a select of the tenant's `set_config` and the settings,
    /// then `more` in the same select list: one simple query, one round
    /// trip, no prepared statement.
    pub(crate) fn begin_sql(&self, tenant: Option<&str>, more: &str) -> String {
        let tenant = format!(
            "set_config('app.tenant_id', {}, true)",
            literal(tenant.unwrap_or(""))
        );
        format!("BEGIN; SELECT {tenant}{}{more}", self.settings)
    }

    /// A one-call statement: `function` (its arguments after the tenant,
    /// numbered from `$2`) called with the tenant `$1` after the settings
    /// are in place. The settings are the select list of a subquery in
    /// `FROM`, which PostgreSQL never merges into the outer query because
    /// `set_config` is volatile, and the function takes the tenant from
    /// that subquery (`LATERAL`), so it runs after them: `lock_timeout`
    /// bounds its lock waits. (`statement_timeout` set here applies from
    /// the next statement; a one-call statement's only wait is for a lock.)
    ///
    /// `more` follows the settings in the subquery's select list (further
    /// `set_config` calls for this statement's transaction, or nothing).
    pub(crate) fn one_call_sql(
        &self,
        columns: &str,
        function: &str,
        arguments: &str,
        more: &str,
    ) -> String {
        format!(
            "SELECT {columns} FROM (SELECT set_config('app.tenant_id', $1, true) AS tenant{}{more}) AS pin, \
             LATERAL {function}(pin.tenant{arguments}) AS call",
            self.settings
        )
    }

    /// Whether statements may be named (prepared once per connection).
    pub(crate) fn persistent(&self) -> bool {
        !self.pooled
    }
}

/// The longest timeout PostgreSQL takes: `i32::MAX` milliseconds.
pub(crate) const LONGEST_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// A duration in whole milliseconds for a PostgreSQL timeout: zero turns
/// the timeout off, as in PostgreSQL; a positive duration under a
/// millisecond rounds up to one. Durations past [`LONGEST_TIMEOUT`] are
/// refused by `PgStore::from_pool_with` before they get here.
fn millis(duration: Duration) -> u128 {
    let ms = duration.as_millis();
    if ms == 0 && !duration.is_zero() {
        1
    } else {
        ms
    }
}

/// `value` as an SQL string literal (quotes doubled; the server runs with
/// `standard_conforming_strings`, so backslashes are plain characters).
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// One admitted operation; dropping it makes room for another.
#[derive(Debug)]
pub(crate) struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A store transaction: its statements are named or unnamed as the
/// store's [`Session`] says.
pub(crate) struct Tx {
    inner: Transaction<'static, Postgres>,
    persistent: bool,
    _admission: Admission,
}

impl Tx {
    pub(crate) fn new(
        inner: Transaction<'static, Postgres>,
        session: &Session,
        admission: Admission,
    ) -> Self {
        Self {
            inner,
            persistent: session.persistent(),
            _admission: admission,
        }
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<()> {
        self.inner.commit().await.map_err(db)
    }
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx")
            .field("persistent", &self.persistent)
            .finish_non_exhaustive()
    }
}

/// A query with its `persistent` flag cleared when the store's statements
/// must be unnamed.
struct Statement<E> {
    query: E,
    persistent: bool,
}

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Statement<E> {
    fn sql(self) -> SqlStr {
        self.query.sql()
    }

    fn statement(&self) -> Option<&PgStatement> {
        self.query.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        self.query.take_arguments()
    }

    fn persistent(&self) -> bool {
        self.persistent && self.query.persistent()
    }
}

impl<'c> Executor<'c> for &'c mut Tx {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let persistent = self.persistent;
        (&mut *self.inner).fetch_many(Statement { query, persistent })
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let persistent = self.persistent;
        (&mut *self.inner).fetch_optional(Statement { query, persistent })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.inner).prepare_with(sql, parameters)
    }

    fn describe<'e>(
        self,
        sql: SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.inner).describe(sql)
    }
}
