//! API tokens over HTTP (`GET`/`POST P/tokens`, `DELETE P/tokens/{id}`, an admin's: see
//! `roles.rs`), and [`issue_token`], which `tickd token create` shares.
//!
//! A token is answered with its record (`id`, `prefix`, `name`, `role`, `created_at`,
//! `expires_at`, `last_used_at`); only the answer to its creation adds `token`, the text a
//! client sends, which is shown that once and kept nowhere.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::bearer::{mint, visible_prefix};
use super::error::ApiError;
use super::extract::{ApiJson, TokenIdPath};
use super::openapi::schemas as doc;
use super::roles::Role;
use super::state::ApiState;
use super::wire::JsonBody;
use crate::scheduler::SchedulerError;
use crate::store::{StoreError, TokenRecord, TokenStore, from_micros, to_micros};
use crate::trigger::isoformat;

/// The longest token name, in characters.
pub const MAX_TOKEN_NAME: usize = 100;

/// What a new token is to be.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Who it is for: not empty, at most [`MAX_TOKEN_NAME`] characters, no control characters.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it stops working, later than now; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token just created: its record, and the text to send, shown once.
#[derive(Clone)]
pub struct IssuedToken {
    /// What the store keeps.
    pub record: TokenRecord,
    /// `tickd_<id>_<secret>`.
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The request is not acceptable; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `request` and creates the token in `store` at `now`. Names need not be unique: the
/// id tells tokens apart.
///
/// # Errors
/// [`IssueError::Invalid`] naming what is wrong, or the store's error.
pub async fn issue_token(
    store: &dyn TokenStore,
    request: TokenRequest,
    now: DateTime<Utc>,
) -> Result<IssuedToken, IssueError> {
    let name = request.name;
    if name.trim().is_empty() {
        return Err(IssueError::Invalid("name must not be empty".to_owned()));
    }
    if name.chars().count() > MAX_TOKEN_NAME {
        return Err(IssueError::Invalid(format!(
            "name must be at most {MAX_TOKEN_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(IssueError::Invalid(
            "name must not contain control characters".to_owned(),
        ));
    }
    if let Some(at) = request.expires_at
        && at <= now
    {
        return Err(IssueError::Invalid(format!(
            "expires_at must be in the future (it is {}; now is {})",
            at.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    // Times as the store keeps them (µs), so the record answered is the record stored.
    let micros = |at: DateTime<Utc>| from_micros(to_micros(at)).unwrap_or(at);
    let (now, expires_at) = (micros(now), request.expires_at.map(micros));
    // 48 random bits of id: a collision is all but impossible, and retried if it happens.
    let mut tries = 0;
    loop {
        let minted = mint();
        let record = TokenRecord {
            id: minted.id,
            name: name.clone(),
            role: request.role.as_str().to_owned(),
            secret_hash: minted.secret_hash,
            created_at: now,
            expires_at,
            last_used_at: None,
        };
        match store.create_token(&record).await {
            Ok(()) => {
                return Ok(IssuedToken {
                    record,
                    token: minted.text,
                });
            }
            Err(StoreError::Conflict(_)) if tries < 3 => tries += 1,
            Err(error) => return Err(error.into()),
        }
    }
}

/// A token's record as the API answers it: never its secret or its hash.
pub fn token_to_json(record: &TokenRecord) -> Value {
    let time = |at: Option<DateTime<Utc>>| at.map(|at| isoformat(&at.fixed_offset()));
    json!({
        "id": record.id,
        "prefix": visible_prefix(&record.id),
        "name": record.name,
        "role": record.role,
        "created_at": time(Some(record.created_at)),
        "expires_at": time(record.expires_at),
        "last_used_at": time(record.last_used_at),
    })
}

/// `GET P/tokens`: every token, oldest first, without secrets.
#[utoipa::path(
    get,
    path = "/tokens",
    tag = "admin",
    operation_id = "list_tokens",
    responses(
        (
            status = 200,
            description = "Every token, oldest first, without secrets",
            body = Vec<doc::Token>,
        ),
    ),
)]
pub(crate) async fn list_tokens(State(state): State<ApiState>) -> Result<JsonBody, ApiError> {
    let tokens = state.store.list_tokens().await.map_err(store_error)?;
    Ok(JsonBody(Value::Array(
        tokens.iter().map(token_to_json).collect(),
    )))
}

/// `POST P/tokens` `{"name", "role", "expires_at"?}`: 201, the record and `token`, once.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "admin",
    operation_id = "create_token",
    request_body(content = doc::TokenRequest, content_type = "application/json"),
    responses(
        (
            status = 201,
            description = "The token, with its secret (`token`), shown this once",
            body = doc::NewToken,
        ),
        (
            status = 400,
            description = "The body is not an acceptable token request",
            body = doc::ErrorEnvelope,
        ),
    ),
)]
pub(crate) async fn create_token(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson,
) -> Result<(StatusCode, JsonBody), ApiError> {
    let request = token_request(&body).map_err(ApiError::BadRequest)?;
    let issued = issue_token(state.store.as_ref(), request, state.scheduler.now())
        .await
        .map_err(|error| match error {
            IssueError::Invalid(message) => ApiError::BadRequest(message),
            IssueError::Store(error) => store_error(error),
        })?;
    let mut answer = token_to_json(&issued.record);
    if let Value::Object(fields) = &mut answer {
        fields.insert("token".to_owned(), Value::String(issued.token));
    }
    tracing::info!(
        token_id = %issued.record.id,
        role = issued.record.role,
        "Created API token {}",
        issued.record.id
    );
    Ok((StatusCode::CREATED, JsonBody(answer)))
}

/// `DELETE P/tokens/{id}`: 204; 404 when there is no such token.
#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "admin",
    operation_id = "revoke_token",
    params(
        ("id" = String, Path, description = "the token id", min_length = 1),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "A NUL in the id", body = doc::ErrorEnvelope),
        (status = 404, description = "No such token", body = doc::ErrorEnvelope),
    ),
)]
pub(crate) async fn revoke_token(
    State(state): State<ApiState>,
    TokenIdPath(id): TokenIdPath,
) -> Result<StatusCode, ApiError> {
    if state.store.revoke_token(&id).await.map_err(store_error)? {
        tracing::info!(token_id = %crate::telemetry::logged(&id), "Revoked API token");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::TokenNotFound(id))
    }
}

/// The body of `POST P/tokens`, read into a request, or a message naming what is wrong.
fn token_request(body: &Value) -> Result<TokenRequest, String> {
    let Value::Object(fields) = body else {
        return Err("The body must be a JSON object: {\"name\": ..., \"role\": ...}".to_owned());
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| !matches!(key.as_str(), "name" | "role" | "expires_at"))
    {
        return Err(format!(
            "Unknown field {unknown:?}: a token takes name, role and expires_at"
        ));
    }
    let name = match fields.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err("name must be a string".to_owned()),
        None => return Err("name is required".to_owned()),
    };
    let role = match fields.get("role") {
        Some(Value::String(role)) => role
            .parse::<Role>()
            .map_err(|_| format!("role must be viewer, operator or admin, not {role:?}"))?,
        Some(_) => return Err("role must be a string: viewer, operator or admin".to_owned()),
        None => return Err("role is required: viewer, operator or admin".to_owned()),
    };
    let expires_at = match fields.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    format!(
                        "expires_at must be an RFC 3339 date and time with its offset \
                         (2030-01-31T12:00:00Z), not {text:?}"
                    )
                })?
                .to_utc(),
        ),
        Some(_) => return Err("expires_at must be an RFC 3339 string".to_owned()),
    };
    Ok(TokenRequest {
        name,
        role,
        expires_at,
    })
}

/// A store failure as the API answers it: 503 when the store cannot be reached, else 500.
pub(crate) fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(source) => SchedulerError::Unavailable(source).into(),
        other => ApiError::Internal(anyhow::Error::new(other)),
    }
}
