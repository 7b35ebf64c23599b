//! `GET P/openapi.json`: the API described as OpenAPI 3.1, generated from the code with
//! utoipa (the handlers carry `#[utoipa::path]`, the doc-only [`schemas`] the bodies they
//! build by hand).
//!
//! The handlers declare their paths under the prefix (`/jobs`, `/` for the info route) and
//! the statuses only they answer; [`document`] then puts every path under the configured
//! prefix (`/scheduler`, `/api`, or none: the info route is then `/`) and adds to every
//! operation what the layers in front of all routes may answer (401, 403, 421, 429, 500,
//! 503; 400, 408 and 413 where a body is read), so that no route can forget one. Both auth
//! schemes (HTTP Basic and Bearer tokens) are declared, and required when `[auth]` is on.
//!
//! The route builds the document on its first request and keeps the bytes: it cannot change
//! while the daemon runs, and requests to other routes pay nothing for it.

mod job_schemas;
pub(crate) mod schemas;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response as OaResponse, Server};

use super::state::ApiState;
use super::tokens;
use super::{
    audit, cluster, control, jobs, me, notifications, output, preview, run_listing, runs, scripts,
};

/// The document as utoipa derives it, paths relative to the prefix.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tickd",
        description = "A job-scheduler daemon answering Flask-APScheduler's REST API, with run \
                       records, previews, API tokens and an audit log. See docs/api.md.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        control::info,
        control::pause,
        control::resume,
        control::start,
        control::shutdown,
        jobs::get_jobs,
        jobs::add_job,
        jobs::get_job,
        jobs::modify_job,
        jobs::remove_job,
        jobs::pause_job,
        jobs::resume_job,
        jobs::run_job,
        preview::preview_job,
        preview::preview_spec,
        runs::get_runs,
        run_listing::list_runs,
        runs::get_run,
        runs::cancel_run,
        output::get_output,
        cluster::get_cluster,
        me::me,
        scripts::list_scripts,
        tokens::list_tokens,
        tokens::create_token,
        tokens::revoke_token,
        audit::get_audit,
        notifications::list_notifications,
        serve,
    ),
    components(schemas(
        schemas::ErrorEnvelope,
        schemas::Flag,
        schemas::DateJob,
        schemas::IntervalJob,
        schemas::CronJob,
        schemas::Job,
        schemas::JobOrNull,
        schemas::JobOrRun,
        schemas::JobSpec,
        job_schemas::NewDateJob,
        job_schemas::NewIntervalJob,
        job_schemas::NewCronJob,
        schemas::JobChanges,
        job_schemas::JobOptions,
        job_schemas::DateChange,
        job_schemas::IntervalChange,
        job_schemas::CronChange,
        schemas::RunRecord,
        schemas::RunSummary,
    )),
    tags(
        (name = "scheduler", description = "The scheduler as a whole"),
        (name = "jobs", description = "Jobs, as Flask-APScheduler has them"),
        (name = "runs", description = "Run records and their output"),
        (name = "console", description = "What the web console asks"),
        (name = "admin", description = "API tokens, the audit log and webhook deliveries (an admin's)"),
    ),
)]
struct ApiDoc;

/// The security schemes' names in the document.
const BASIC: &str = "basicAuth";
const BEARER: &str = "bearerAuth";

/// The document for `prefix` (normalised: `/scheduler`, or `""` for the root), with
/// authentication `required` or not.
pub fn document(prefix: &str, required: bool) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        let path = match path.as_str() {
            "/" if prefix.is_empty() => "/".to_owned(),
            "/" => prefix.to_owned(),
            _ => format!("{prefix}{path}"),
        };
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add_common_responses(operation);
        }
        doc.paths.paths.insert(path, item);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BASIC.to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("a user of [[auth.users]]"))
                .build(),
        ),
    );
    components.security_schemes.insert(
        BEARER.to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("tickd_<id>_<secret>")
                .description(Some(
                    "an API token (POST P/tokens, or `tickd token create`)",
                ))
                .build(),
        ),
    );
    for (name, response) in common_responses() {
        components.responses.insert(name.to_owned(), response);
    }
    // Relative: the API is where the document was fetched from.
    doc.servers = Some(vec![Server::new("/")]);
    if required {
        doc.security = Some(vec![
            SecurityRequirement::new(BASIC, Vec::<String>::new()),
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
        ]);
    }
    doc
}

/// Statuses that any route may answer, from the layers in front of it, by component name.
const EVERY_ROUTE: [(&str, &str); 6] = [
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("421", "MisdirectedRequest"),
    ("429", "TooManyFailures"),
    ("500", "InternalError"),
    ("503", "Unavailable"),
];
/// Statuses that reading a body may answer (and 400, which each such handler declares with
/// its own words).
const BODY_READ: [(&str, &str); 2] = [("408", "BodyTimeout"), ("413", "PayloadTooLarge")];

/// Adds [`EVERY_ROUTE`] and, for an operation that reads a body, [`BODY_READ`], unless the
/// handler declared that status itself.
fn add_common_responses(operation: &mut Operation) {
    let body = operation.request_body.is_some();
    let statuses = EVERY_ROUTE.iter().chain(BODY_READ.iter().filter(|_| body));
    for (status, name) in statuses {
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
    }
}

/// The shared responses, as components.
fn common_responses() -> Vec<(&'static str, RefOr<OaResponse>)> {
    let envelope = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                        .build(),
                )
                .build(),
        )
    };
    let denied = ResponseBuilder::new()
        .description(
            "Credentials missing or wrong (`WWW-Authenticate: Basic`); the body is \
             `Access Denied`, not JSON",
        )
        .content(
            "text/plain",
            ContentBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::String),
                ))
                .build(),
        )
        .build();
    vec![
        ("Unauthorized", RefOr::T(denied)),
        (
            "Forbidden",
            envelope("The role does not allow this, or a page of another site asked for a change"),
        ),
        (
            "MisdirectedRequest",
            envelope("The `Host` is not one of tickd's names"),
        ),
        (
            "TooManyFailures",
            envelope("Too many failed logins from this address (`Retry-After`)"),
        ),
        ("InternalError", envelope("A fault of tickd's, logged")),
        (
            "Unavailable",
            envelope("The job store cannot be reached, or tickd is too busy; try again"),
        ),
        (
            "BodyTimeout",
            envelope("The body did not arrive within `server.body_timeout`"),
        ),
        ("PayloadTooLarge", envelope("The body is larger than 1 MiB")),
    ]
}

/// `GET P/openapi.json`: this document, as JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "scheduler",
    responses((status = 200, description = "This document", content_type = "application/json",
               body = Object)),
)]
async fn serve(State(state): State<ApiState>, cache: Arc<OnceLock<Bytes>>) -> Response {
    let bytes = cache.get_or_init(|| {
        let doc = document(&state.prefix, state.auth.is_some());
        serde_json::to_vec(&doc).map_or_else(|_| Bytes::new(), Bytes::from)
    });
    if bytes.is_empty() {
        return super::ApiError::Internal(anyhow::anyhow!("the OpenAPI document did not encode"))
            .into_response();
    }
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        bytes.clone(),
    )
        .into_response()
}

/// The route's handler, with the document built on its first request and kept.
pub(crate) fn route() -> MethodRouter<ApiState> {
    let cache: Arc<OnceLock<Bytes>> = Arc::default();
    get(move |state: State<ApiState>| serve(state, cache.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_under_the_prefix_and_the_info_route_is_the_prefix_itself() {
        let doc = document("/api", true);
        let paths: Vec<&String> = doc.paths.paths.keys().collect();
        assert!(paths.iter().any(|p| *p == "/api"), "{paths:?}");
        assert!(paths.iter().any(|p| *p == "/api/jobs/{id}"), "{paths:?}");
        assert!(paths.iter().all(|p| p.starts_with("/api")), "{paths:?}");
        assert!(doc.security.is_some());

        let doc = document("", false);
        assert!(doc.paths.paths.contains_key("/"));
        assert!(doc.paths.paths.contains_key("/jobs"));
        assert!(
            doc.security.is_none(),
            "no credentials asked for with auth off"
        );
    }

    #[test]
    fn operations_that_read_a_body_declare_its_refusals() {
        let doc = document("/scheduler", true);
        let add = doc
            .paths
            .get_path_operation("/scheduler/jobs", utoipa::openapi::HttpMethod::Post)
            .unwrap();
        for status in ["400", "401", "408", "409", "413", "429", "503"] {
            assert!(add.responses.responses.contains_key(status), "{status}");
        }
        for (path, item) in &doc.paths.paths {
            for operation in [&item.post, &item.patch, &item.put].into_iter().flatten() {
                if operation.request_body.is_some() {
                    assert!(operation.responses.responses.contains_key("400"), "{path}");
                }
            }
        }
        let list = doc
            .paths
            .get_path_operation("/scheduler/jobs", utoipa::openapi::HttpMethod::Get)
            .unwrap();
        assert!(!list.responses.responses.contains_key("413"));
    }
}
