//! Admin API keys, as hashes, under row-level security.

use async_trait::async_trait;
use commerce_core::store::ApiKeyStore;
use commerce_core::{ApiKeyRecord, BackendError, BackendErrorKind, Error, Result, Timestamp};

use crate::error::{db, is_unique_violation};
use crate::{PgTenant, from_doc, to_doc};

/// The record with its mutable columns folded back in.
fn record(
    doc: serde_json::Value,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
) -> Result<ApiKeyRecord> {
    let mut key: ApiKeyRecord = from_doc("an API key", doc)?;
    key.last_used_at = last_used_at;
    key.revoked_at = revoked_at;
    Ok(key)
}

type Row = (serde_json::Value, Option<Timestamp>, Option<Timestamp>);

#[async_trait]
impl ApiKeyStore for PgTenant {
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        if key.tenant.as_str() != self.tenant() {
            return Err(Error::TenantMismatch {
                expected: commerce_core::TenantId::parse(self.tenant())?,
                found: key.tenant.clone(),
            });
        }
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO api_keys (tenant_id, id, created_at, last_used_at, revoked_at, doc) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.tenant())
        .bind(&key.id)
        .bind(key.created_at)
        .bind(key.last_used_at)
        .bind(key.revoked_at)
        .bind(to_doc(key)?)
        .execute(&mut tx)
        .await;
        match inserted {
            Ok(_) => tx.commit().await,
            Err(e) if is_unique_violation(&e, "api_keys_pkey") => Err(BackendError::new(
                BackendErrorKind::Conflict,
                format!("api key {} exists", key.id),
            )
            .with_source(e)
            .into()),
            Err(e) => Err(db(e)),
        }
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let mut tx = self.begin().await?;
        let row: Option<Row> = sqlx::query_as(
            "SELECT doc, last_used_at, revoked_at FROM api_keys WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.tenant())
        .bind(id)
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        row.map(|(doc, used, revoked)| record(doc, used, revoked))
            .transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let mut tx = self.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT doc, last_used_at, revoked_at FROM api_keys WHERE tenant_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(self.tenant())
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        rows.into_iter()
            .map(|(doc, used, revoked)| record(doc, used, revoked))
            .collect()
    }

    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<bool> {
        let mut tx = self.begin().await?;
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(self.tenant())
        .bind(id)
        .bind(now)
        .execute(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        Ok(revoked.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: &str, now: Timestamp) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(self.tenant())
        .bind(id)
        .bind(now)
        .execute(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await
    }
}
