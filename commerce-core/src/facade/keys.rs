//! Admin API keys: issued, listed, revoked per shop; authenticated for the
//! engine as a whole (a key names its tenant).

use std::collections::BTreeSet;

use crate::api_key::{ApiKeyRecord, ApiScope, IssuedApiKey, issue_api_key, parse_api_key};
use crate::error::Result;
use crate::text::{TextField, check_text};

use super::{Commerce, Shop};

impl Shop {
    /// Issues a new admin key with `scopes`. The returned
    /// [`IssuedApiKey::key`] is the only time the key is seen: the store
    /// keeps its hash. Several keys may be active at once, so a key can be
    /// rotated without downtime: issue the new one, deploy it, revoke the
    /// old one.
    pub async fn issue_api_key(
        &self,
        name: &str,
        scopes: impl IntoIterator<Item = ApiScope>,
    ) -> Result<IssuedApiKey> {
        check_text(TextField::ApiKeyName, name)?;
        let scopes: BTreeSet<ApiScope> = scopes.into_iter().collect();
        let issued = issue_api_key(self.tenant(), name, scopes, self.now());
        self.scope.api_keys().insert_api_key(&issued.record).await?;
        Ok(issued)
    }

    /// Every admin key of the shop (hashes only), revoked ones included.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.scope.api_keys().api_keys().await
    }

    /// Revokes the key `id`; `false` if there is none or it was revoked.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool> {
        self.scope.api_keys().revoke_api_key(id, self.now()).await
    }
}

impl Commerce {
    /// The shop and the key record of a presented admin key, or `None`
    /// when it is not an active key of the tenant it names (malformed,
    /// unknown, revoked, or a wrong secret: the hashes are compared in
    /// constant time). Records the key's use.
    pub async fn authenticate_api_key(
        &self,
        presented: &str,
    ) -> Result<Option<(Shop, ApiKeyRecord)>> {
        let Some((tenant, id)) = parse_api_key(presented) else {
            return Ok(None);
        };
        let shop = self.shop(&tenant);
        let Some(record) = shop.scope.api_keys().api_key(id).await? else {
            return Ok(None);
        };
        if !record.is_active() || !record.matches(presented) {
            return Ok(None);
        }
        shop.scope.api_keys().touch_api_key(id, self.now()).await?;
        Ok(Some((shop, record)))
    }
}
