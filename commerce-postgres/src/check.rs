//! A deployment check: what is wrong with the database and the login a
//! store is about to run with, each finding naming its fix.
//!
//! [`check`] connects once with the URL the service uses (`DATABASE_URL`)
//! and reads the catalogs with simple queries only, so it runs as well
//! through a transaction pooler as directly.

use std::fmt;
use std::str::FromStr;

use commerce_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{Connection, FromRow};

use crate::error::db;
use crate::{APP_ROLE, MIGRATOR, pooler_flag};

/// Something wrong with a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The login role is a superuser: row-level security does not apply to
    /// it, and a leaked credential owns the server.
    LoginIsSuperuser {
        /// The login role.
        role: String,
    },
    /// The login role has `BYPASSRLS`.
    LoginBypassesRls {
        /// The login role.
        role: String,
    },
    /// The login role owns (or inherits the ownership of) commerce tables.
    LoginOwnsTables {
        /// The login role.
        role: String,
        /// The tables it owns.
        tables: Vec<String>,
    },
    /// The role the store's transactions run as ([`PgStoreOptions::set_role`](crate::PgStoreOptions::set_role))
    /// is a superuser or has `BYPASSRLS`.
    RoleBypassesRls {
        /// The role.
        role: String,
    },
    /// The login role cannot switch to the configured role.
    NotAMember {
        /// The login role.
        login: String,
        /// The configured role.
        role: String,
    },
    /// A tenant table whose row-level security is off or not forced.
    RowLevelSecurityNotForced {
        /// The table.
        table: String,
    },
    /// A privilege the store needs and its role lacks.
    MissingGrant {
        /// The table or function.
        object: String,
        /// The privilege (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `EXECUTE`).
        privilege: String,
    },
    /// Migrations this build has that the database has not run.
    MigrationsBehind {
        /// The versions not applied, in order.
        missing: Vec<i64>,
    },
    /// The migration history cannot be read (not migrated, or migrated
    /// before migration 0011 let the application role read it).
    MigrationHistoryUnreadable {
        /// Why.
        reason: String,
    },
    /// The server answers on another address than the URL names, which is
    /// what a connection pooler looks like, and the URL does not say
    /// `pgbouncer=true`.
    PoolerWithoutFlag {
        /// The port of the URL.
        url_port: u16,
        /// The port the server says it listens on.
        server_port: i32,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LoginIsSuperuser { role } => write!(
                f,
                "the login role {role} is a superuser (row-level security does not apply to it): \
                 log in as a role that is only a member of {APP_ROLE}"
            ),
            Self::LoginBypassesRls { role } => write!(
                f,
                "the login role {role} has BYPASSRLS: ALTER ROLE {role} NOBYPASSRLS, or log in as \
                 a role that is only a member of {APP_ROLE}"
            ),
            Self::LoginOwnsTables { role, tables } => write!(
                f,
                "the login role {role} owns {} (an owner may drop them or turn row-level \
                 security off): run the migrations as the owner (MIGRATION_DATABASE_URL) and \
                 log in as a role that owns nothing",
                tables.join(", ")
            ),
            Self::RoleBypassesRls { role } => write!(
                f,
                "the store's role {role} is a superuser or has BYPASSRLS: use {APP_ROLE}"
            ),
            Self::NotAMember { login, role } => write!(
                f,
                "the login role {login} is not a member of {role}: GRANT {role} TO {login}"
            ),
            Self::RowLevelSecurityNotForced { table } => write!(
                f,
                "table {table} does not force row-level security: ALTER TABLE {table} ENABLE ROW \
                 LEVEL SECURITY, FORCE ROW LEVEL SECURITY (migration 0002 does)"
            ),
            Self::MissingGrant { object, privilege } => write!(
                f,
                "the store's role lacks {privilege} on {object}: GRANT {privilege} ON {object} \
                 TO {APP_ROLE} (the migrations do)"
            ),
            Self::MigrationsBehind { missing } => write!(
                f,
                "the database is behind this build by {} migration(s) ({}): run the migrations \
                 with MIGRATION_DATABASE_URL",
                missing.len(),
                missing
                    .iter()
                    .map(|v| format!("{v:04}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::MigrationHistoryUnreadable { reason } => write!(
                f,
                "cannot read the migration history ({reason}): run the migrations with \
                 MIGRATION_DATABASE_URL"
            ),
            Self::PoolerWithoutFlag {
                url_port,
                server_port,
            } => write!(
                f,
                "the URL names port {url_port} but the server listens on {server_port}: a \
                 connection pooler sits between them; if it pools transactions, add \
                 pgbouncer=true to the URL (or set PgStoreOptions::pooled)"
            ),
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The login role.
    pub login: String,
    /// The role the store's transactions run as.
    pub role: String,
    /// Whether the URL asks for transaction-pooler mode.
    pub pooled: bool,
    /// What is wrong; empty when nothing is.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// Whether row-level security does not confine the login role (a
    /// superuser or `BYPASSRLS`): a store on it needs
    /// [`PgStoreOptions::set_role`](crate::PgStoreOptions::set_role), for
    /// example [`APP_ROLE`], which the login must be a member of.
    pub fn login_bypasses_rls(&self) -> bool {
        self.findings.iter().any(|f| {
            matches!(
                f,
                Finding::LoginIsSuperuser { .. } | Finding::LoginBypassesRls { .. }
            )
        })
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "login {}, store role {}, {}",
            self.login,
            self.role,
            if self.pooled {
                "through a transaction pooler (pgbouncer=true)"
            } else {
                "direct"
            }
        )?;
        if self.findings.is_empty() {
            return write!(f, "ok: nothing to fix");
        }
        for (i, finding) in self.findings.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "- {finding}")?;
        }
        Ok(())
    }
}

/// Inspects the deployment `url` (the URL the service's store uses; a
/// `pgbouncer=true` parameter is understood) with the store switching to
/// `set_role` in its transactions, if given: the login's attributes and
/// ownerships, forced row-level security on every tenant table, the
/// store's grants, the migration history against [`MIGRATOR`], and a
/// pooler the URL does not declare.
///
/// Errors: an invalid URL is [`Error::InvalidConfig`]; a server that cannot
/// be reached is a backend error.
pub async fn check(url: &str, set_role: Option<&str>) -> Result<CheckReport> {
    let (pooled, url) = pooler_flag(url)?;
    let options = PgConnectOptions::from_str(&url)
        .map_err(|e| Error::InvalidConfig(format!("invalid database URL: {e}")))?;
    let mut conn = PgConnection::connect_with(&options).await.map_err(db)?;
    let role_expr = set_role.map_or_else(|| "current_user".to_owned(), crate::session::literal);
    let mut findings = Vec::new();

    let (login, superuser, bypass, role, role_exists, role_bypasses, member, server_port): (
        String,
        bool,
        bool,
        String,
        bool,
        bool,
        bool,
        Option<i32>,
    ) = one(
        &mut conn,
        &format!(
            "SELECT l.rolname::text, l.rolsuper, l.rolbypassrls, {role_expr}::text, \
             r.oid IS NOT NULL, coalesce(r.rolsuper OR r.rolbypassrls, false), \
             coalesce(pg_has_role(current_user, r.oid, 'MEMBER'), false), inet_server_port() \
             FROM pg_roles l LEFT JOIN pg_roles r ON r.rolname = {role_expr} \
             WHERE l.rolname = current_user"
        ),
    )
    .await?;
    if superuser {
        findings.push(Finding::LoginIsSuperuser {
            role: login.clone(),
        });
    }
    if bypass && !superuser {
        findings.push(Finding::LoginBypassesRls {
            role: login.clone(),
        });
    }
    if set_role.is_some() && (!role_exists || !member) {
        findings.push(Finding::NotAMember {
            login: login.clone(),
            role: role.clone(),
        });
    }
    if set_role.is_some() && role_bypasses {
        findings.push(Finding::RoleBypassesRls { role: role.clone() });
    }

    // The tenant tables: those of the current schema with a tenant_id.
    let tables: Vec<(String, bool, bool)> = all(
        &mut conn,
        "SELECT c.relname::text, \
         c.relrowsecurity AND c.relforcerowsecurity, \
         pg_has_role(current_user, c.relowner, 'MEMBER') \
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' \
         WHERE c.relkind IN ('r', 'p') AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
         ORDER BY c.relname",
    )
    .await?;
    let owned: Vec<String> = tables
        .iter()
        .filter(|(_, _, owner)| *owner)
        .map(|(name, ..)| name.clone())
        .collect();
    if !owned.is_empty() && !superuser {
        findings.push(Finding::LoginOwnsTables {
            role: login.clone(),
            tables: owned,
        });
    }
    for (table, forced, _) in &tables {
        if !forced {
            findings.push(Finding::RowLevelSecurityNotForced {
                table: table.clone(),
            });
        }
    }
    if role_exists {
        let missing: Vec<(String, String)> = all(
            &mut conn,
            &format!(
                "SELECT c.relname::text, p.privilege FROM pg_class c \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' \
                 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(privilege) \
                 WHERE c.relkind IN ('r', 'p') AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
                 AND NOT has_table_privilege({role_expr}, c.oid, p.privilege) \
                 UNION ALL \
                 SELECT p.oid::regprocedure::text, 'EXECUTE' FROM pg_proc p \
                 WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
                 AND p.proname LIKE 'commerce\\_%' \
                 AND NOT has_function_privilege({role_expr}, p.oid, 'EXECUTE') \
                 ORDER BY 1, 2"
            ),
        )
        .await?;
        findings.extend(
            missing
                .into_iter()
                .map(|(object, privilege)| Finding::MissingGrant { object, privilege }),
        );
    }

    // The migration history, which the store's role may read since
    // migration 0011.
    let (history_exists, role_reads_history): (bool, bool) = one(
        &mut conn,
        &format!(
            "SELECT to_regclass('_sqlx_migrations') IS NOT NULL, \
             CASE WHEN to_regclass('_sqlx_migrations') IS NULL OR NOT {role_exists} THEN false \
             ELSE has_table_privilege({role_expr}, '_sqlx_migrations', 'SELECT') END"
        ),
    )
    .await?;
    let every: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    if !history_exists {
        findings.push(Finding::MigrationsBehind { missing: every });
    } else if !role_reads_history {
        findings.push(Finding::MigrationHistoryUnreadable {
            reason: format!("{role} may not read _sqlx_migrations; migration 0011 grants it"),
        });
    } else {
        let history: Result<Vec<(i64,)>> = all(
            &mut conn,
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .await;
        match history {
            Ok(applied) => {
                let missing: Vec<i64> = every
                    .into_iter()
                    .filter(|v| !applied.iter().any(|(a,)| a == v))
                    .collect();
                if !missing.is_empty() {
                    findings.push(Finding::MigrationsBehind { missing });
                }
            }
            Err(e) => findings.push(Finding::MigrationHistoryUnreadable {
                reason: e.to_string(),
            }),
        }
    }

    if !pooled
        && let Some(server_port) = server_port
        && i32::from(options.get_port()) != server_port
    {
        findings.push(Finding::PoolerWithoutFlag {
            url_port: options.get_port(),
            server_port,
        });
    }
    let _ = conn.close().await;
    Ok(CheckReport {
        login,
        role,
        pooled,
        findings,
    })
}

/// The one row of a simple query.
async fn one<T>(conn: &mut PgConnection, sql: &str) -> Result<T>
where
    T: for<'r> FromRow<'r, PgRow>,
{
    let row = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    T::from_row(&row).map_err(db)
}

/// Every row of a simple query.
async fn all<T>(conn: &mut PgConnection, sql: &str) -> Result<Vec<T>>
where
    T: for<'r> FromRow<'r, PgRow>,
{
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(|row| T::from_row(row).map_err(db))
        .collect()
}
