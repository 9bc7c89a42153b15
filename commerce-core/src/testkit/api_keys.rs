//! Admin API keys: stored as hashes, rotated, revoked, confined to their
//! tenant.

use super::{Harness, StoreFactory};
use crate::api_key::ApiScope;
use crate::clock::Clock;

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_api_keys {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] api_keys:
            issued_keys_authenticate_until_revoked,
            api_keys_are_confined_to_their_tenant,
        }
    };
}

/// Two keys are active at once (a rotation): both authenticate, with their
/// scopes, and record their use; a wrong secret does not; once revoked, the
/// old one never authenticates again while the new one does. The store
/// holds hashes only.
pub async fn issued_keys_authenticate_until_revoked(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let old = h
        .shop
        .issue_api_key("warehouse sync", [ApiScope::Inventory])
        .await
        .unwrap();
    let new = h
        .shop
        .issue_api_key(
            "warehouse sync (rotated)",
            [ApiScope::Inventory, ApiScope::Catalog],
        )
        .await
        .unwrap();
    h.clock.advance(std::time::Duration::from_secs(60));
    for issued in [&old, &new] {
        let (shop, record) = h
            .commerce
            .authenticate_api_key(&issued.key)
            .await
            .unwrap()
            .expect("an active key authenticates");
        assert_eq!(shop.tenant(), h.shop.tenant());
        assert_eq!(record.scopes, issued.record.scopes);
    }
    let mut wrong = new.key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert!(
        h.commerce
            .authenticate_api_key(&wrong)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.commerce
            .authenticate_api_key("ck_nonsense")
            .await
            .unwrap()
            .is_none()
    );

    assert!(h.shop.revoke_api_key(&old.record.id).await.unwrap());
    assert!(
        !h.shop.revoke_api_key(&old.record.id).await.unwrap(),
        "once"
    );
    assert!(
        h.commerce
            .authenticate_api_key(&old.key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.commerce
            .authenticate_api_key(&new.key)
            .await
            .unwrap()
            .is_some()
    );

    let keys = h.shop.api_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    let stored_old = keys.iter().find(|k| k.id == old.record.id).unwrap();
    let stored_new = keys.iter().find(|k| k.id == new.record.id).unwrap();
    assert!(stored_old.revoked_at.is_some());
    assert_eq!(stored_new.last_used_at, Some(h.clock.now()));
    for key in &keys {
        assert!(!key.hash.contains(&old.key) && !key.hash.contains(&new.key));
        assert_eq!(key.hash.len(), 64);
    }
}

/// A key authenticates only for the tenant it was issued in: the same id
/// and secret naming another tenant do not, and another tenant's list does
/// not show it.
pub async fn api_keys_are_confined_to_their_tenant(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let issued = h.shop.issue_api_key("admin", ApiScope::ALL).await.unwrap();
    let forged = issued
        .key
        .replacen(&format!("ck_{}.", h.shop.tenant()), "ck_shop-b.", 1);
    assert_ne!(forged, issued.key);
    assert!(
        h.commerce
            .authenticate_api_key(&forged)
            .await
            .unwrap()
            .is_none()
    );
    let other = h.other_shop("shop-b");
    assert!(other.api_keys().await.unwrap().is_empty());
    assert!(!other.revoke_api_key(&issued.record.id).await.unwrap());
    assert!(
        h.commerce
            .authenticate_api_key(&issued.key)
            .await
            .unwrap()
            .is_some()
    );
}
