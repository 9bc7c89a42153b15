//! Admin API keys: random 256-bit secrets bound to one tenant with scopes,
//! stored only as SHA-256 hashes.
//!
//! A key reads `ck_{tenant}.{id}.{secret}`: the tenant and the key id are
//! not secret (they say where to look), the 64 hex digits of the secret
//! are. A store keeps the id, the scopes and the hash of the whole key;
//! the key itself is shown once, when it is issued.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::ids::TenantId;

/// What an admin key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiScope {
    /// Products.
    Catalog,
    /// Stock: receipts, counts, adjustments.
    Inventory,
    /// Promotions.
    Promotions,
    /// Shop settings.
    Settings,
    /// Orders: read, cancel, fulfil; the sweep.
    Orders,
    /// Refunds.
    Refunds,
    /// Admin keys: issue (with at most the issuing key's scopes), list,
    /// revoke.
    Keys,
}

impl ApiScope {
    /// Every scope.
    pub const ALL: [ApiScope; 7] = [
        ApiScope::Catalog,
        ApiScope::Inventory,
        ApiScope::Promotions,
        ApiScope::Settings,
        ApiScope::Orders,
        ApiScope::Refunds,
        ApiScope::Keys,
    ];

    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Catalog => "catalog",
            ApiScope::Inventory => "inventory",
            ApiScope::Promotions => "promotions",
            ApiScope::Settings => "settings",
            ApiScope::Orders => "orders",
            ApiScope::Refunds => "refunds",
            ApiScope::Keys => "keys",
        }
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An admin key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyRecord {
    /// The public key id (16 hex digits).
    pub id: String,
    /// The tenant it is bound to.
    pub tenant: TenantId,
    /// A name for people ("warehouse sync").
    pub name: String,
    /// What it may do.
    pub scopes: BTreeSet<ApiScope>,
    /// The SHA-256 of the whole key, in hex.
    pub hash: String,
    /// When it was issued.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it was last used, if ever.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Timestamp>,
}

impl ApiKeyRecord {
    /// Whether it may still be used.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether `presented` is this key: the hashes compared in constant
    /// time.
    pub fn matches(&self, presented: &str) -> bool {
        let hash = hash_key(presented);
        let (a, b) = (hash.as_bytes(), self.hash.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// A key just issued: the record to store and the key to show once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedApiKey {
    /// What the store keeps.
    pub record: ApiKeyRecord,
    /// The key, `ck_{tenant}.{id}.{secret}`. Not stored anywhere.
    pub key: String,
}

/// The hex SHA-256 of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// 32 random bytes, from three version-4 UUIDs (366 random bits from the
/// operating system's generator) hashed down.
fn random_256() -> [u8; 32] {
    let mut hasher = Sha256::new();
    for _ in 0..3 {
        hasher.update(uuid::Uuid::new_v4().as_bytes());
    }
    hasher.finalize().into()
}

/// Issues a new key for `tenant` with `scopes`, at `now`.
pub fn issue_api_key(
    tenant: &TenantId,
    name: impl Into<String>,
    scopes: BTreeSet<ApiScope>,
    now: Timestamp,
) -> IssuedApiKey {
    let id = hex::encode(uuid::Uuid::new_v4().as_bytes().get(..8).unwrap_or_default());
    let secret = hex::encode(random_256());
    let key = format!("ck_{tenant}.{id}.{secret}");
    IssuedApiKey {
        record: ApiKeyRecord {
            id,
            tenant: tenant.clone(),
            name: name.into(),
            scopes,
            hash: hash_key(&key),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        },
        key,
    }
}

/// The tenant and key id a presented key names, if it has the shape of a
/// key (its secret is not checked here).
pub fn parse_api_key(presented: &str) -> Option<(TenantId, &str)> {
    let rest = presented.strip_prefix("ck_")?;
    let mut parts = rest.split('.');
    let (tenant, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.next().is_some() || !hex(id, 16) || !hex(secret, 64) {
        return None;
    }
    Some((TenantId::parse(tenant).ok()?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_key_parses_and_matches_only_itself() {
        let tenant = TenantId::parse("shop-a").unwrap();
        let now = chrono::DateTime::UNIX_EPOCH;
        let issued = issue_api_key(&tenant, "sync", BTreeSet::from([ApiScope::Catalog]), now);
        let (named, id) = parse_api_key(&issued.key).unwrap();
        assert_eq!(named, tenant);
        assert_eq!(id, issued.record.id);
        assert!(issued.record.matches(&issued.key));
        let mut forged = issued.key.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert!(!issued.record.matches(&forged));
        assert!(!issued.record.hash.contains(&issued.key));
        let other = issue_api_key(&tenant, "sync", BTreeSet::new(), now);
        assert_ne!(other.key, issued.key);
        assert!(!issued.record.matches(&other.key));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        for key in [
            "",
            "ck_",
            "ck_shop.abc.def",
            "sk_shop.0123456789abcdef.00",
            "ck_Shop.0123456789abcdef.0000000000000000000000000000000000000000000000000000000000000000",
            "ck_shop.0123456789abcdef.0000000000000000000000000000000000000000000000000000000000000000.x",
        ] {
            assert!(parse_api_key(key).is_none(), "{key}");
        }
    }
}
