//! Extractors whose rejections are [`ApiError`]s, so that a malformed request is answered in
//! the JSON envelope like every other error (CONTRACT §2.2).
//!
//! Bodies are read as bytes whatever the `Content-Type` (Flask-APScheduler reads them with
//! `get_json(force=True)`), within the bounds of [`BodyRules`] (a request extension set by the
//! router; `body.rs`).

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use serde_json::Value;

use super::body::{BodyRoom, BodyRules};
use super::error::ApiError;
use crate::job::{JobId, RunId};

/// The request body parsed as JSON: any JSON value (the scheduler refuses non-objects with
/// its own message). Malformed JSON is a 400 `Invalid JSON body: <serde's message>`.
#[derive(Debug)]
pub struct ApiJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ApiJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (rules, bytes, _room) = read_body(req).await?;
        rules.parse(&bytes).await.map(ApiJson)
    }
}

/// The request body as bytes, for handlers that read it leniently (`POST P/shutdown`).
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (_, bytes, _room) = read_body(req).await?;
        Ok(RawBody(bytes))
    }
}

/// Reads the body under the router's [`BodyRules`] (a router without them, as in unit tests
/// of single handlers, gets the defaults).
async fn read_body(req: Request) -> Result<(BodyRules, Bytes, BodyRoom), ApiError> {
    let rules = req
        .extensions()
        .get::<BodyRules>()
        .cloned()
        .unwrap_or_else(BodyRules::default);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (bytes, room) = rules.read(req.into_body(), declared).await?;
    Ok((rules, bytes, room))
}

/// The `{id}` segment of the job routes, percent-decoded as UTF-8 (Werkzeug's string
/// converter), without a NUL ([`path_id`]).
#[derive(Debug)]
pub struct JobIdPath(pub JobId);

impl<S: Send + Sync> FromRequestParts<S> for JobIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, "job id")
            .await
            .map(|id| JobIdPath(id.into()))
    }
}

/// The `{id}` segment of the run routes, as [`JobIdPath`].
#[derive(Debug)]
pub struct RunIdPath(pub RunId);

impl<S: Send + Sync> FromRequestParts<S> for RunIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, "run id")
            .await
            .map(|id| RunIdPath(id.into()))
    }
}

/// The `{id}` segment of the token routes, as [`JobIdPath`].
#[derive(Debug)]
pub struct TokenIdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TokenIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, "token id").await.map(TokenIdPath)
    }
}

/// An id from the path, refused with a 400 naming it when its bytes are not UTF-8 text or
/// hold a NUL. Any other text is looked up (404 when nothing has it): this check at the edge
/// is what keeps every store, PostgreSQL included (its `text` cannot hold a NUL), from seeing
/// a value it would fail on.
async fn path_id<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    field: &str,
) -> Result<String, ApiError> {
    let id = match Path::<String>::from_request_parts(parts, state).await {
        Ok(Path(id)) => id,
        Err(PathRejection::FailedToDeserializePathParams(failed))
            if matches!(failed.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
        {
            return Err(ApiError::BadRequest(format!(
                "The {field} in the path is not UTF-8 text once percent-decoded"
            )));
        }
        Err(rejection) => return Err(ApiError::BadRequest(rejection.body_text())),
    };
    refuse_nul(&format!("The {field} in the path"), &id)?;
    Ok(id)
}

/// A `before` query parameter that must be a record's id (a UUID): `what` names the record in
/// the 400 (`an audit record`, `a delivery`).
pub(crate) fn before_id(before: Option<&str>, what: &str) -> Result<(), ApiError> {
    match before {
        Some(before) if uuid::Uuid::try_parse(before).is_err() => {
            Err(ApiError::BadRequest(format!(
                "before must be the id of {what} (a UUID such as \
                 0190f5e2-7a3b-7c4d-8e5f-0123456789ab), not {before:?}"
            )))
        }
        _ => Ok(()),
    }
}

/// A query parameter that counts something (`limit`, `count`): `default` when absent, else
/// a whole number from 1 to `max`, or a 400 that names the parameter and its bounds.
pub(crate) fn bounded_count(
    name: &str,
    text: Option<&str>,
    default: u32,
    max: u32,
) -> Result<u32, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "{name} must be a whole number from 1 to {max}, not {text:?}"
        ))),
    }
}

/// A 400 when `value` holds a NUL: no id can (the stores refuse them at add time), and
/// PostgreSQL would fail on one instead of finding nothing.
pub(crate) fn refuse_nul(what: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::BadRequest(format!(
            "{what} must not contain a NUL character (%00)"
        )));
    }
    Ok(())
}

/// Parses a body as JSON. An empty body gets a message that says so.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the request body is empty; expected a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| ApiError::InvalidJson(err.to_string()))
}

/// `wait` is false only when the body is an object whose `wait` is the JSON literal `false`;
/// no body, invalid JSON or `{"wait": "false"}` all mean wait (reference §1.3.5).
pub(crate) fn shutdown_wait(bytes: &[u8]) -> bool {
    !matches!(
        serde_json::from_slice::<Value>(bytes),
        Ok(Value::Object(ref map)) if map.get("wait") == Some(&Value::Bool(false))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_json_accepts_any_value_and_reports_serde_errors() {
        assert_eq!(parse_json(br#"{"id": "a"}"#).unwrap(), json!({"id": "a"}));
        assert_eq!(parse_json(b"[1,2]").unwrap(), json!([1, 2]));
        assert_eq!(parse_json(b"null").unwrap(), Value::Null);
        let err = parse_json(b"this is not json").unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(
            err.to_string(),
            "Invalid JSON body: expected ident at line 1 column 2"
        );
        let err = parse_json(b"  \n").unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(err.to_string().starts_with("Invalid JSON body: "));
    }

    #[test]
    fn shutdown_waits_unless_told_false_literally() {
        assert!(shutdown_wait(b""));
        assert!(shutdown_wait(b"garbage"));
        assert!(shutdown_wait(br#"{"wait": "false"}"#));
        assert!(shutdown_wait(br#"{"wait": true}"#));
        assert!(shutdown_wait(b"false"));
        assert!(!shutdown_wait(br#"{"wait": false}"#));
    }
}
