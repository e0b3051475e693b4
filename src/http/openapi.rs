//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations as the
//! routers are built (`utoipa_axum::OpenApiRouter`): a route registered with `.routes(routes!(…))`
//! is in the document by construction. Served at `/api/v1/openapi.json`. The console's HTML pages
//! are not an API and are left out.

use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "aap-bridge",
        description = "Signed webhooks from ServiceNow, GitHub and PagerDuty to Ansible controller \
jobs.\n\n`POST /hooks/{source}` takes deliveries (authenticated by each source's signature). The \
admin API under `/api/v1/` needs `Authorization: Bearer <admin.token>`; without `admin.token` in \
the configuration it answers 401 on every route. `/api/v1/openapi.json`, `/healthz`, `/readyz` \
and `/metrics` need no token. Every error body is `{\"error\": \"...\"}`."
    ),
    modifiers(&AdminBearer),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "hooks", description = "Deliveries from the senders"),
        (name = "health", description = "Probes and metrics"),
        (name = "admin", description = "Events, post-backs, replay, simulation, rules (pause and resume)")
    )
)]
pub struct ApiDoc;

struct AdminBearer;

impl Modify for AdminBearer {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "adminBearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The configured `admin.token`."))
                    .build(),
            ),
        );
    }
}

static DOCUMENT: OnceLock<String> = OnceLock::new();

/// Keeps the document the routers produced. Every app in a process builds the same one.
pub fn publish(doc: &Document) {
    DOCUMENT.get_or_init(|| doc.to_pretty_json().expect("the document serializes"));
}

/// The OpenAPI 3.1 description of every route but the console's.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
pub async fn serve() -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        DOCUMENT.get().cloned().unwrap_or_default(),
    )
        .into_response()
}
