//! Admin: the shop's API keys.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use commerce_core::{ApiKeyRecord, ApiScope, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::storefront::{ApiJson, ApiPath, KeyParams, private as json};

use super::Admin;

// ----- keys -----------------------------------------------------------------

/// An admin key as listed: never the key or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct KeyView {
    /// The public key id.
    id: String,
    /// A name for people.
    name: String,
    /// What it may do.
    scopes: Vec<ApiScope>,
    /// When it was issued.
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When it was last used, if ever.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<Timestamp>,
}

impl From<ApiKeyRecord> for KeyView {
    fn from(record: ApiKeyRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            scopes: record.scopes.into_iter().collect(),
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// A key to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// A name for people ("warehouse sync").
    name: String,
    /// What it may do: at most the scopes of the key that issues it.
    scopes: Vec<ApiScope>,
}

/// A key just issued: `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct IssuedKey {
    /// The key (`ck_…`): store it now, it cannot be read again.
    key: String,
    /// The key as listed.
    record: KeyView,
}

/// The shop's admin keys (revoked ones included).
#[utoipa::path(
    get,
    path = "/keys",
    tag = "keys",
    operation_id = "admin_list_keys",
    responses(
        (status = 200, description = "The keys.", body = Vec<KeyView>),
    )
)]
pub(super) async fn keys(admin: Admin) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Keys)?;
    let keys: Vec<KeyView> = shop
        .api_keys()
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(json(StatusCode::OK, &keys))
}

/// Issues a key with at most the calling key's scopes. Several keys may be
/// active at once: issue the new one, deploy it, revoke the old one.
#[utoipa::path(
    post,
    path = "/keys",
    tag = "keys",
    operation_id = "admin_issue_key",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key, shown once.", body = IssuedKey),
        (status = 400, description = "The input cannot be read (`invalid_parameter`, with JSON pointers in `errors`)."),
        (status = 403, description = "The calling key lacks the `keys` scope or a scope it asks for (`insufficient_scope` with `required_scope`)."),
        (status = 422, description = "The name is not valid (`invalid_text`)."),
    )
)]
pub(super) async fn issue_key(
    admin: Admin,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<Response, Problem> {
    admin.require(ApiScope::Keys)?;
    for scope in &body.scopes {
        admin.require(*scope)?;
    }
    let issued = admin.shop.issue_api_key(&body.name, body.scopes).await?;
    Ok(json(
        StatusCode::CREATED,
        &IssuedKey {
            key: issued.key,
            record: KeyView::from(issued.record),
        },
    ))
}

/// Revokes a key: it stops working at once.
#[utoipa::path(
    delete,
    path = "/keys/{key}",
    tag = "keys",
    operation_id = "admin_revoke_key",
    params(("key" = String, Path, description = "The key's public id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No such active key (`not_found`)."),
    )
)]
pub(super) async fn revoke_key(
    admin: Admin,
    ApiPath(KeyParams { key: id }): ApiPath<KeyParams>,
) -> Result<Response, Problem> {
    let shop = admin.require(ApiScope::Keys)?;
    if shop.revoke_api_key(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found())
    }
}
