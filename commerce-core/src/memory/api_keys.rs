//! Admin API keys, as hashes.

use async_trait::async_trait;

use crate::api_key::ApiKeyRecord;
use crate::clock::Timestamp;
use crate::error::{BackendError, BackendErrorKind, Result};
use crate::store::ApiKeyStore;

use super::TenantStores;

#[async_trait]
impl ApiKeyStore for TenantStores {
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        self.check_tenant(&key.tenant)?;
        let mut d = self.lock();
        if d.api_keys.contains_key(&key.id) {
            return Err(BackendError::new(
                BackendErrorKind::Conflict,
                format!("api key {} exists", key.id),
            )
            .into());
        }
        d.api_keys.insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(self.read().api_keys.get(id).cloned())
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let mut keys: Vec<ApiKeyRecord> = self.read().api_keys.values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<bool> {
        let mut d = self.lock();
        match d.api_keys.get_mut(id) {
            Some(key) if key.revoked_at.is_none() => {
                key.revoked_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_api_key(&self, id: &str, now: Timestamp) -> Result<()> {
        if let Some(key) = self.lock().api_keys.get_mut(id)
            && key.last_used_at.is_none_or(|last| last < now)
        {
            key.last_used_at = Some(now);
        }
        Ok(())
    }
}
