//! The OpenAPI 3.1 document of the three routers, generated from the same
//! registrations that build them (utoipa-axum), so the two cannot drift.

use std::borrow::Cow;

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http as HttpAuth, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, RefOr, Required, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::problem::{PROBLEM_JSON, Problem};
use crate::tenant::{PUBLISHABLE_KEY, TenantResolver};

/// Where the embedder mounts the routers, as the OpenAPI document states
/// them: the storefront and admin routers' prefixes and the webhook
/// route's path. The health routes are merged at the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiMounts {
    /// The storefront router's prefix (default `/api/store`). With
    /// [`TenantResolver::PathParam`] it holds the parameter, e.g.
    /// `/s/{tenant}`.
    pub storefront: String,
    /// The admin router's prefix (default `/api/admin`).
    pub admin: String,
    /// The payment webhook's path (default `/webhooks/payments`).
    pub webhooks: String,
}

impl Default for ApiMounts {
    fn default() -> Self {
        Self {
            storefront: "/api/store".into(),
            admin: "/api/admin".into(),
            webhooks: "/webhooks/payments".into(),
        }
    }
}

/// The security scheme of the admin API.
pub(crate) const ADMIN_KEY: &str = "admin_key";

impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let field_error = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "pointer",
                string("A JSON pointer to the field at fault (\"\" for the whole body)."),
            )
            .property("detail", string("What is wrong with it."))
            .required("pointer")
            .required("detail");
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "An RFC 9457 problem document. `code` is stable; the data of the \
                 refusal comes as extension members (e.g. `sku`, `requested` and \
                 `available` on `insufficient_stock`).",
            ))
            .property("type", string("`about:blank#{code}`."))
            .property("title", string("A short summary of the kind of problem."))
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .description(Some("The HTTP status.")),
            )
            .property("detail", string("What went wrong, for humans."))
            .property("code", string("A stable snake-case code to switch on."))
            .property(
                "errors",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(field_error)
                    .description(Some("The fields at fault, on a 400.")),
            )
            .required("type")
            .required("title")
            .required("status")
            .required("detail")
            .required("code")
            .into()
    }
}

impl ToSchema for Problem {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Problem")
    }
}

/// The document for routers built by `http`, mounted at `mounts`.
pub(crate) fn document(tenants: &TenantResolver, mounts: &ApiMounts) -> OpenApi {
    let mut storefront = crate::storefront::routes().into_openapi();
    for operation in operations(&mut storefront) {
        add_tenant_parameter(operation, tenants, &mounts.storefront);
    }
    let mut admin = crate::admin::routes().into_openapi();
    for operation in operations(&mut admin) {
        operation.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            ADMIN_KEY,
            Vec::<String>::new(),
        )]);
        // Every admin route refuses the same way without a key or a scope
        // (an operation may describe its own 403).
        for (status, description) in [
            (
                "401",
                "No valid admin key (`unauthorized`, with `WWW-Authenticate`).",
            ),
            (
                "403",
                "The key lacks the scope (`insufficient_scope` with `required_scope`).",
            ),
        ] {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| {
                    RefOr::T(ResponseBuilder::new().description(description).build())
                });
        }
    }
    let info = InfoBuilder::new()
        .title("commerce")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The storefront, admin and payment webhook routes of a commerce shop. \
             Every refusal is an `application/problem+json` document with a stable `code`.",
        ))
        .build();
    let mut doc = OpenApiRouter::with_openapi(OpenApi::new(info, utoipa::openapi::Paths::new()))
        .merge(crate::health_routes())
        .into_openapi()
        .merge_from(crate::webhook_document(&mounts.webhooks))
        .nest(&mounts.storefront, storefront)
        .nest(&mounts.admin, admin);
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert("Problem".into(), Problem::schema());
    components.security_schemes.insert(
        ADMIN_KEY.into(),
        RefOr::T(SecurityScheme::Http(
            HttpAuth::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("ck_…")
                .description(Some(
                    "An admin API key bound to one tenant with scopes; 401 without a \
                     valid key, 403 with `required_scope` when it lacks the route's scope.",
                ))
                .build(),
        )),
    );
    for operation in operations(&mut doc) {
        problems(operation);
    }
    doc
}

fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
            item.head.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

/// Every error response is a problem document, and every operation
/// documents the problems it may send beyond the listed ones as `default`.
fn problems(operation: &mut Operation) {
    let content = || {
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            ))))
            .build()
    };
    for (status, response) in operation.responses.responses.iter_mut() {
        let error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (error, response)
            && response.content.is_empty()
        {
            response
                .content
                .insert(PROBLEM_JSON.into(), RefOr::T(content()));
        }
    }
    operation.responses.responses.insert(
        "default".into(),
        RefOr::T(
            ResponseBuilder::new()
                .description("A refusal: a problem document (see `code`).")
                .content(PROBLEM_JSON, content())
                .build(),
        ),
    );
}

/// The parameter that names the tenant, when the resolver reads one from
/// the request.
fn add_tenant_parameter(operation: &mut Operation, tenants: &TenantResolver, prefix: &str) {
    let string = || ObjectBuilder::new().schema_type(Type::String).build();
    let parameter: Option<Parameter> = match tenants {
        TenantResolver::PathParam(name) if prefix.contains(&format!("{{{name}}}")) => Some(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("The shop (tenant)."))
                .schema(Some(string()))
                .build(),
        ),
        TenantResolver::Header(name) => Some(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some("The shop (tenant)."))
                .schema(Some(string()))
                .build(),
        ),
        TenantResolver::PublishableKey(_) => Some(
            ParameterBuilder::new()
                .name(PUBLISHABLE_KEY)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some("The shop's publishable key."))
                .schema(Some(string()))
                .build(),
        ),
        _ => None,
    };
    if let Some(parameter) = parameter {
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .insert(0, RefOr::T(parameter));
    }
}
