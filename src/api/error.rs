//! The API's one error type and the one place that turns an error into a status code.
//!
//! Every failure answers `{"error_message": "<text>"}` with `Content-Type: application/json`
//! (CONTRACT §1); a run-now whose script could not start adds the `run_id` of the `failed`
//! record it left. Client errors carry the scheduler's text, which is the reference's text.
//! Server faults (5xx) are logged here with their whole source chain and answered with a
//! generic text: internals never reach the client (CONTRACT §2.1). A script tickd could not
//! start is such a fault: its text says only that, and where to look.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};

use super::roles::Role;
use super::wire;
use crate::scheduler::SchedulerError;
use crate::telemetry::{MAX_MESSAGE_BYTES, logged_within};

/// What `error_message` says for a 500: deliberately nothing about the cause.
const INTERNAL_TEXT: &str = "Internal server error";
/// What `error_message` says for a 503 (the job store cannot be reached).
const UNAVAILABLE_TEXT: &str = "The job store is unavailable; try again shortly";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A scheduler operation failed; its status is chosen in [`ApiError::parts`].
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The body is not JSON (400). The text is serde's.
    #[error("Invalid JSON body: {0}")]
    InvalidJson(String),
    /// Any other malformed request (400), e.g. a path segment that is not UTF-8.
    #[error("{0}")]
    BadRequest(String),
    /// No route has this path (404). Werkzeug's text, as the reference's HTML page says.
    #[error(
        "The requested URL was not found on the server. If you entered the URL manually please \
         check your spelling and try again."
    )]
    NotFound,
    /// The path exists but not with this method (405; the router adds `Allow`).
    #[error("The method is not allowed for the requested URL.")]
    MethodNotAllowed,
    /// The body is larger than the configured limit (413).
    #[error("The request body is larger than the limit of {0} bytes.")]
    PayloadTooLarge(usize),
    /// The body did not arrive within the body timeout (408).
    #[error("The request body did not arrive within {0} s.")]
    RequestTimeout(u64),
    /// The server cannot take this request now; the text says why (503).
    #[error("{0}")]
    Overloaded(String),
    /// The `Host` is not one of this server's names (421): DNS rebinding, or a name the
    /// config does not list yet.
    #[error(
        "tickd does not answer to the host name {0:?}; a name it should answer to belongs in \
         [server] host_names"
    )]
    MisdirectedRequest(String),
    /// The user's role does not allow the request (403); credentials were fine.
    #[error("Forbidden: this needs the {needed} role; user {user:?} has the {has} role")]
    Forbidden {
        /// The role the request needs.
        needed: Role,
        /// Who asked.
        user: String,
        /// The role they have.
        has: Role,
    },
    /// A change asked for by a page of another site (403), refused before anything is read.
    #[error(
        "Cross-site request refused: a page of another site may not change anything here \
         ([server] cors_origins lists the sites that may)"
    )]
    CrossSite,
    /// Too many failed authentications from this address (429, with `Retry-After`).
    #[error("Too many failed logins from this address; try again in {retry_after} s")]
    TooManyFailures {
        /// Seconds until the address may try again.
        retry_after: u64,
    },
    /// No API token has this id (404).
    #[error("Token {0} not found")]
    TokenNotFound(String),
    /// A server fault outside the scheduler (a handler panic, a failed response encoding).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The status and the public `error_message`: the only `match` that picks a status.
    fn parts(&self) -> (StatusCode, Cow<'_, str>) {
        let status = match self {
            Self::Scheduler(err) => match err {
                SchedulerError::JobNotFound(_) | SchedulerError::RunNotFound(_) => {
                    StatusCode::NOT_FOUND
                }
                SchedulerError::ConflictingId(_)
                | SchedulerError::MaxInstancesReached { .. }
                | SchedulerError::ChangedConcurrently(_)
                | SchedulerError::NotCancellable(_) => StatusCode::CONFLICT,
                // DIFFERENCE: CONTRACT §2.1 (the reference answers 500 for validation errors
                // and for pause/resume while stopped).
                SchedulerError::Invalid(_)
                | SchedulerError::Unrunnable { .. }
                | SchedulerError::AlreadyRunning
                | SchedulerError::NotRunning => StatusCode::BAD_REQUEST,
                // Its text is generic already; the cause is in the log.
                SchedulerError::CannotStart { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                SchedulerError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
                SchedulerError::Unavailable(_) => {
                    return (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_TEXT.into());
                }
                SchedulerError::Internal(_) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_TEXT.into());
                }
            },
            Self::InvalidJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::TokenNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::CrossSite | Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => return (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_TEXT.into()),
        };
        (status, self.to_string().into())
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = self.parts();
        if let Self::Overloaded(why) | Self::Scheduler(SchedulerError::Busy(why)) = &self {
            tracing::warn!(%status, "request refused: {why}");
        } else if status.is_server_error() {
            let chain = source_chain(&self);
            let chain = logged_within(&chain, MAX_MESSAGE_BYTES);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(%status, error = %chain, "request failed: job store unavailable");
            } else {
                tracing::error!(%status, error = %chain, "request failed: internal error");
            }
        } else {
            let error = logged_within(&message, MAX_MESSAGE_BYTES);
            tracing::debug!(%status, %error, "request refused");
        }
        let failed_run = match &self {
            Self::Scheduler(error) => error.failed_run(),
            _ => None,
        };
        let body = match failed_run {
            Some(run_id) => wire::error_body_with_run(&message, run_id),
            None => wire::error_body(&message),
        };
        let mut response = (status, body).into_response();
        if let Self::TooManyFailures { retry_after } = &self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, (*retry_after).into());
        }
        response
    }
}

/// `err: cause: cause-of-cause`, for the log only.
pub(crate) fn source_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let _ = write!(text, ": {cause}");
        next = cause.source();
    }
    // A driver's message may quote a connection URL: never log its password.
    crate::redact::text(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ExecutorError, StartFault};
    use axum::body::to_bytes;
    use axum::http::header::CONTENT_TYPE;
    use serde_json::{Value, json};

    async fn render(err: ApiError) -> (StatusCode, String, Value) {
        let response = err.into_response();
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn scheduler_errors_map_to_the_contract_statuses() {
        let cases: Vec<(SchedulerError, u16, &str)> = vec![
            (
                SchedulerError::JobNotFound("nope".into()),
                404,
                "Job nope not found",
            ),
            (
                SchedulerError::ConflictingId("job1".into()),
                409,
                "Job job1 already exists.",
            ),
            (
                SchedulerError::Invalid("max_instances must be a positive integer".into()),
                400,
                "max_instances must be a positive integer",
            ),
            (
                SchedulerError::AlreadyRunning,
                400,
                "Scheduler is already running",
            ),
            (SchedulerError::NotRunning, 400, "Scheduler is not running"),
            (
                SchedulerError::Unrunnable {
                    message: "Script gone.py not found in the workspace".into(),
                    run_id: "r1".into(),
                },
                400,
                "Script gone.py not found in the workspace",
            ),
            (
                SchedulerError::CannotStart {
                    run_id: "r1".into(),
                    source: ExecutorError::cannot_start(
                        StartFault::InterpreterMissing,
                        "cannot start /opt/secret/python3: No such file or directory (os error 2)",
                    ),
                },
                500,
                "The script could not be started; the server log says why",
            ),
            (
                SchedulerError::MaxInstancesReached {
                    job_id: "nap".into(),
                    max_instances: 1,
                },
                409,
                "Job nap is already running its maximum number of instances (1); try again when \
                 a run ends",
            ),
            (
                SchedulerError::ChangedConcurrently("nap".into()),
                409,
                "Job nap is being changed by another request; try again",
            ),
            (
                SchedulerError::NotCancellable("Run r2 is not running (it is failed)".into()),
                409,
                "Run r2 is not running (it is failed)",
            ),
            (
                SchedulerError::Unavailable(anyhow::anyhow!("connection refused")),
                503,
                UNAVAILABLE_TEXT,
            ),
        ];
        for (err, status, text) in cases {
            let (got_status, content_type, body) = render(err.into()).await;
            assert_eq!(got_status.as_u16(), status, "{text}");
            assert_eq!(content_type, "application/json");
            match body.get("run_id") {
                Some(run_id) => {
                    assert_eq!(body, json!({ "error_message": text, "run_id": run_id }));
                    assert_eq!(run_id, "r1", "only a run that did not start names one");
                }
                None => assert_eq!(body, json!({ "error_message": text })),
            }
        }
    }

    #[tokio::test]
    async fn internal_errors_never_leak_their_cause() {
        let cause = anyhow::anyhow!("password=hunter2 at /secret/path").context("store read");
        let (status, _, body) = render(SchedulerError::Internal(cause).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({ "error_message": INTERNAL_TEXT }));

        let (status, _, body) = render(ApiError::Internal(anyhow::anyhow!("secret"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({ "error_message": INTERNAL_TEXT }));
    }

    #[tokio::test]
    async fn request_errors_have_their_own_statuses() {
        let (status, _, body) = render(ApiError::InvalidJson("expected value".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error_message"], "Invalid JSON body: expected value");
        assert_eq!(render(ApiError::NotFound).await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            render(ApiError::MethodNotAllowed).await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let (status, _, body) = render(ApiError::PayloadTooLarge(10)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body["error_message"],
            "The request body is larger than the limit of 10 bytes."
        );
    }

    #[test]
    fn source_chain_walks_every_cause() {
        let err = SchedulerError::Internal(anyhow::anyhow!("disk full").context("writing job"));
        assert_eq!(source_chain(&err), "internal error: writing job: disk full");
    }
}
