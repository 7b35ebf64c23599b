//! HTTP Basic authentication (reference §4, CONTRACT §1), and API tokens
//! (`Authorization: Bearer`, checked against the store by `bearer.rs`).
//!
//! A step of the gate (`gate.rs`), so it runs before any extractor reads the body: a request
//! without valid credentials is refused with 401 even when its body is garbage. It comes
//! before the whole route table, the 404 and 405 fallbacks included, so an unauthenticated
//! client learns nothing, not even which paths exist. (The reference routes before it
//! authenticates, so there an unauthenticated `PUT P/jobs` gets a 405; here it gets a 401.)
//!
//! Every failure looks the same: 401, `WWW-Authenticate: Basic realm="Authentication
//! Required"` (what makes a browser prompt) and the body `Access Denied`.
//!
//! Comparisons are constant time: the user name and password are hashed to fixed-length
//! digests and compared with `subtle`, against every configured user, without short-circuit,
//! so neither which part was wrong nor the lengths of the secrets show in the timing.
//! Passwords are configured as plain text or as an argon2 PHC hash. Argon2 is slow by design,
//! so it runs on the blocking pool, and a successful verification is remembered in memory (as
//! a keyed digest of the password, never the password) so that a client sending the same
//! credentials with every request is not slowed down each time. When argon2 users exist,
//! every failed attempt also costs one argon2 verification, so the timing does not reveal
//! whether the user name exists. A connection that proved a login and presents the same
//! header again skips all of this (`remembered.rs`).
//!
//! A Bearer token that is malformed, unknown, revoked, expired or wrong gets the same 401.
//! When the store cannot be asked about a token, the answer is the store's JSON 503 (500 for
//! any other store fault), not a 401: the client's credentials may well be good.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::bearer;
use super::error::ApiError;
use super::remembered::RememberedLogin;
use super::roles::{Actor, Credential, Role};
use super::tokens::store_error;
use crate::scheduler::Scheduler;
use crate::store::TokenStore;
use crate::telemetry::logged;

/// The `WWW-Authenticate` value, exactly as Flask-APScheduler sends it.
pub const CHALLENGE: &str = r#"Basic realm="Authentication Required""#;
/// The 401 body, exactly as Flask-APScheduler sends it.
pub const DENIED: &str = "Access Denied";

/// Successful argon2 verifications remembered at most (the set is emptied when full).
const CACHE_CAPACITY: usize = 1024;

type Digest32 = [u8; 32];

/// A configured password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself.
    Plain(String),
    /// An argon2 PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    Argon2(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
            Self::Argon2(_) => f.write_str("Argon2(<redacted>)"),
        }
    }
}

/// One user allowed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name, compared byte for byte (UTF-8).
    pub username: String,
    /// The password or its hash.
    pub password: Secret,
    /// What the user may do.
    pub role: Role,
}

impl User {
    /// A user with a plain-text password.
    pub fn plain(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Secret::Plain(password.into()),
            role: Role::Admin,
        }
    }

    /// A user with an argon2 PHC hash.
    pub fn argon2(username: impl Into<String>, phc_hash: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Secret::Argon2(phc_hash.into()),
            role: Role::Admin,
        }
    }

    /// The same user with `role` (an admin unless told otherwise).
    #[must_use]
    pub fn with_role(self, role: Role) -> Self {
        Self { role, ..self }
    }
}

/// Why a credentials configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// `[auth]` is enabled but lists nobody: every request would be refused.
    #[error("authentication is enabled but no users are configured")]
    NoUsers,
    /// A `password_hash` that is not an argon2 PHC string.
    #[error("the password hash of user {username:?} is not a valid argon2 PHC string: {reason}")]
    BadHash {
        /// The user whose hash is bad.
        username: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The users allowed in (`[[auth.users]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Everyone who may log in.
    pub users: Vec<User>,
}

impl Credentials {
    /// Credentials checked with [`Credentials::validate`].
    ///
    /// # Errors
    /// [`CredentialsError`] naming the problem.
    pub fn new(users: Vec<User>) -> Result<Self, CredentialsError> {
        let credentials = Self { users };
        credentials.validate()?;
        Ok(credentials)
    }

    /// At least one user, and every argon2 hash parses (a bad hash would refuse that user
    /// forever; better to stop at start-up).
    ///
    /// # Errors
    /// [`CredentialsError`] naming the problem.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        if self.users.is_empty() {
            return Err(CredentialsError::NoUsers);
        }
        for user in &self.users {
            if let Secret::Argon2(hash) = &user.password {
                PasswordHash::new(hash).map_err(|err| CredentialsError::BadHash {
                    username: user.username.clone(),
                    reason: err.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// The configured users.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// Whether `username`/`password` belong to a configured user, with the same constant-time
    /// checks as requests get (argon2 on the blocking pool). Requests go through the router's
    /// own verifier, which also remembers argon2 successes; this one remembers nothing.
    pub async fn verify(&self, username: &[u8], password: &[u8]) -> bool {
        Authenticator::new(Arc::new(self.clone()))
            .verify(username, password)
            .await
            .is_some()
    }
}

impl Secret {
    /// Whether `password` is this secret, checked synchronously (argon2 runs on the calling
    /// thread: for start-up checks, not for requests). Plain passwords compare in constant time.
    pub fn matches(&self, password: &str) -> bool {
        match self {
            Self::Plain(expected) => {
                bool::from(sha256(expected.as_bytes()).ct_eq(&sha256(password.as_bytes())))
            }
            Self::Argon2(hash) => argon2_matches(hash, password.as_bytes()),
        }
    }
}

/// [`Credentials`] prepared for requests: digests computed once, and the memory of argon2
/// verifications that succeeded. One per router.
pub(crate) struct Authenticator {
    credentials: Arc<Credentials>,
    /// SHA-256 of each user name, in `users` order: matched only when a user has an argon2
    /// hash, to find whose.
    username_digests: Vec<Digest32>,
    /// SHA-256 of each plain user's `name:password`, as a Basic header carries them (`None`
    /// for argon2 users), in `users` order: one digest per request checks both.
    login_digests: Vec<Option<Digest32>>,
    /// Keyed digests of (user index, password) pairs argon2 has already accepted.
    verified: Mutex<HashSet<Digest32>>,
    /// Per-process random key for `verified`, so the set holds nothing reusable.
    cache_key: Digest32,
    /// The actor each user stands for, in `users` order (made once: cloning one on a
    /// request is a reference count).
    actors: Vec<Actor>,
    /// Where API tokens are checked, and the scheduler whose clock says whether one has
    /// expired; `None`: Bearer tokens are refused.
    tokens: Option<(Arc<dyn TokenStore>, Scheduler)>,
}

impl Authenticator {
    pub(crate) fn new(credentials: Arc<Credentials>) -> Self {
        if let Err(err) = credentials.validate() {
            tracing::error!(error = %err, "authentication is misconfigured");
        }
        let username_digests = credentials
            .users
            .iter()
            .map(|u| sha256(u.username.as_bytes()))
            .collect();
        let login_digests = credentials
            .users
            .iter()
            .map(|u| match &u.password {
                // Basic splits at the first colon, so a name with one can never log in: its
                // digest is of nothing a header can hold.
                Secret::Plain(_) if u.username.contains(':') => Some(rand::random()),
                Secret::Plain(password) => {
                    Some(login_digest(u.username.as_bytes(), password.as_bytes()))
                }
                Secret::Argon2(_) => None,
            })
            .collect();
        let actors = credentials
            .users
            .iter()
            .map(|user| Actor {
                name: user.username.as_str().into(),
                role: user.role,
                credential: Credential::Password,
            })
            .collect();
        Self {
            credentials,
            username_digests,
            login_digests,
            verified: Mutex::new(HashSet::new()),
            cache_key: rand::random(),
            actors,
            tokens: None,
        }
    }

    /// The same, also accepting the API tokens in `store` (expiry by `scheduler`'s clock).
    pub(crate) fn with_tokens(self, store: Arc<dyn TokenStore>, scheduler: Scheduler) -> Self {
        Self {
            tokens: Some((store, scheduler)),
            ..self
        }
    }

    /// The configured user `username`/`password` (raw bytes from the header) belong to, by
    /// its index: the one whose password matched, so two users of one name are told apart.
    pub(crate) async fn verify(&self, username: &[u8], password: &[u8]) -> Option<usize> {
        match self.verdict(username, password) {
            Verdict::Known(found) => found,
            Verdict::Argon2(candidate) => self.argon2_check(candidate, password).await,
        }
    }

    /// What [`Authenticator::verify`] can tell without waiting: a plain password from the
    /// config matched or not (when no user has an argon2 hash), or one argon2 already
    /// accepted; otherwise the argon2 user to ask about.
    fn verdict(&self, username: &[u8], password: &[u8]) -> Verdict {
        let given_login = login_digest(username, password);

        // Every plain user is compared, with no early exit; the match is selected in
        // constant time.
        let mut plain_ok = Choice::from(0);
        let mut plain_index = 0u64;
        for (index, login_digest) in self.login_digests.iter().enumerate() {
            if let Some(login_digest) = login_digest {
                let matches = login_digest.ct_eq(&given_login);
                plain_index.conditional_assign(&(index as u64), matches & !plain_ok);
                plain_ok |= matches;
            }
        }
        if bool::from(plain_ok) {
            return Verdict::Known(usize::try_from(plain_index).ok());
        }
        if !self.login_digests.iter().any(Option::is_none) {
            return Verdict::Known(None);
        }
        let given_user = sha256(username);
        let argon2_candidate = self
            .username_digests
            .iter()
            .zip(&self.login_digests)
            .position(|(user_digest, login)| {
                login.is_none() && bool::from(user_digest.ct_eq(&given_user))
            });
        match argon2_candidate {
            Some(index)
                if self
                    .lock_verified()
                    .contains(&self.cache_entry(index, password)) =>
            {
                Verdict::Known(Some(index))
            }
            candidate => Verdict::Argon2(candidate),
        }
    }

    /// Whether argon2 accepts `password` for the user at `candidate`; for an unknown user
    /// (`None`), the time a known one would take, then a refusal.
    async fn argon2_check(&self, candidate: Option<usize>, password: &[u8]) -> Option<usize> {
        let Some(index) = candidate else {
            if let Some(first_argon2) = self.login_digests.iter().position(Option::is_none) {
                let _ = Box::pin(self.argon2_verify(first_argon2, password)).await;
            }
            return None;
        };
        if Box::pin(self.argon2_verify(index, password)).await {
            let key = self.cache_entry(index, password);
            let mut verified = self.lock_verified();
            if verified.len() >= CACHE_CAPACITY {
                verified.clear();
            }
            verified.insert(key);
            Some(index)
        } else {
            None
        }
    }

    /// Runs argon2 on the blocking pool: it takes tens of milliseconds of CPU by design.
    async fn argon2_verify(&self, index: usize, password: &[u8]) -> bool {
        let Some(Secret::Argon2(hash)) = self
            .credentials
            .users
            .get(index)
            .map(|u| u.password.clone())
        else {
            return false;
        };
        let password = password.to_vec();
        match tokio::task::spawn_blocking(move || argon2_matches(&hash, &password)).await {
            Ok(matches) => matches,
            Err(join_error) => {
                tracing::error!(error = %join_error, "argon2 verification did not complete");
                false
            }
        }
    }

    /// The actor the user at `index` (as [`Authenticator::verify`] answers it) stands for.
    fn actor(&self, index: usize) -> Option<Actor> {
        self.actors.get(index).cloned()
    }

    fn cache_entry(&self, index: usize, password: &[u8]) -> Digest32 {
        let mut hasher = Sha256::new();
        hasher.update(self.cache_key);
        hasher.update((index as u64).to_le_bytes());
        hasher.update(password);
        to_array(&hasher.finalize())
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashSet<Digest32>> {
        // The set holds no invariant a panicking holder could break.
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Who a request's credentials (its `headers`) say it is, when that is known without
    /// waiting: no credentials, a Bearer token where tokens are off, or a Basic password
    /// checked against the config's digests (or argon2's earlier answer). The usual request
    /// is answered here, in the gate's synchronous part; the rest ask [`identify`].
    ///
    /// [`identify`]: Authenticator::identify
    ///
    /// `remembered`: the login the request's connection proved last; the same header is the
    /// same actor, and a Basic login accepted here is remembered in its place.
    pub(crate) fn identify_now(
        &self,
        headers: &HeaderMap,
        remembered: Option<&RememberedLogin>,
    ) -> Identified {
        let value = headers.get(AUTHORIZATION);
        let raw = value.map(HeaderValue::as_bytes);
        if let (Some(remembered), Some(raw)) = (remembered, raw)
            && let Some(actor) = remembered.recall(raw)
        {
            return Identified::Now(Some(actor));
        }
        match presented(value) {
            Presented::Bearer(_) if self.tokens.is_some() => Identified::Later,
            Presented::Basic(given) => match self.verdict(given.username(), given.password()) {
                Verdict::Known(found) => {
                    let actor = found.and_then(|index| self.actor(index));
                    if let (Some(actor), Some(remembered), Some(raw)) = (&actor, remembered, raw) {
                        remembered.remember(raw, actor);
                    }
                    Identified::Now(actor)
                }
                Verdict::Argon2(_) => Identified::Later,
            },
            Presented::Bearer(_) | Presented::Nothing => Identified::Now(None),
        }
    }

    /// Who a request's credentials (its `headers`) say it is: a configured user (Basic) or
    /// an API token (Bearer); `Ok(None)` for missing or wrong ones (the gate answers
    /// [`denied`]), `Err` when the token store could not be asked.
    pub(crate) async fn identify(&self, headers: &HeaderMap) -> Result<Option<Actor>, ApiError> {
        match presented(headers.get(AUTHORIZATION)) {
            Presented::Bearer(token) => match &self.tokens {
                Some((store, scheduler)) => bearer::verify(store.as_ref(), token, scheduler.now())
                    .await
                    .map_err(store_error),
                None => Ok(None),
            },
            Presented::Basic(given) => Ok(self
                .verify(given.username(), given.password())
                .await
                .and_then(|index| self.actor(index))),
            Presented::Nothing => Ok(None),
        }
    }
}

/// What [`Authenticator::identify_now`] tells.
pub(crate) enum Identified {
    /// Known: the actor, or `None` for missing or wrong credentials.
    Now(Option<Actor>),
    /// Only [`Authenticator::identify`] can tell: an API token (the store is asked) or an
    /// argon2 hash not yet verified for these credentials (tens of milliseconds of CPU).
    Later,
}

/// What [`Authenticator::verify`] knows before it waits for anything.
enum Verdict {
    /// The matching user's index, or `None`: no user has these credentials.
    Known(Option<usize>),
    /// Up to argon2, for the user at this index (`None`: no such user; the time is spent
    /// anyway).
    Argon2(Option<usize>),
}

/// Logs (at debug) a request refused for its credentials: method and path, never a secret.
pub(crate) fn log_denied(request: &Request) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let uri = request.uri().to_string();
        tracing::debug!(method = %request.method(), uri = %logged(&uri), "authentication failed");
    }
}

/// The 401 every failure gets.
pub(crate) fn denied() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE)),
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ],
        DENIED,
    )
        .into_response()
}

/// What a request's `Authorization` header (`value`) presents, read once per request: the
/// scheme's name in any case, then its value.
enum Presented<'a> {
    /// `Basic <base64(user:password)>`, split at the first `:` (the password may contain
    /// more).
    Basic(BasicCredentials),
    /// `Bearer <token>`: the token, checked by `bearer.rs`.
    Bearer(&'a str),
    /// No header, another scheme, or a Basic value that does not decode to `user:password`.
    Nothing,
}

fn presented(value: Option<&HeaderValue>) -> Presented<'_> {
    let Some((scheme, value)) = value
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(|c: char| c.is_ascii_whitespace()))
    else {
        return Presented::Nothing;
    };
    if scheme.eq_ignore_ascii_case("basic") {
        BasicCredentials::decode(value.trim()).map_or(Presented::Nothing, Presented::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Presented::Bearer(value.trim())
    } else {
        Presented::Nothing
    }
}

/// Base64 text at most this long decodes in place (into at most [`INLINE_DECODED`] bytes),
/// with no allocation: every Basic login of a sensible length.
const INLINE_ENCODED: usize = 128;
const INLINE_DECODED: usize = INLINE_ENCODED / 4 * 3;

/// `user:password` as decoded from a Basic header, split at its first colon: in place when
/// short, as it is read on every request.
#[derive(Debug, PartialEq)]
struct BasicCredentials {
    decoded: Decoded,
    colon: usize,
}

#[derive(Debug, PartialEq)]
enum Decoded {
    Inline([u8; INLINE_DECODED], usize),
    Heap(Vec<u8>),
}

impl BasicCredentials {
    /// `encoded` decoded, `None` when it is not base64 or has no colon.
    fn decode(encoded: &str) -> Option<BasicCredentials> {
        let decoded = if encoded.len() <= INLINE_ENCODED {
            let mut bytes = [0; INLINE_DECODED];
            let len = STANDARD.decode_slice(encoded, &mut bytes).ok()?;
            Decoded::Inline(bytes, len)
        } else {
            Decoded::Heap(STANDARD.decode(encoded).ok()?)
        };
        let colon = decoded.bytes().iter().position(|&b| b == b':')?;
        Some(BasicCredentials { decoded, colon })
    }

    fn username(&self) -> &[u8] {
        self.decoded.bytes().get(..self.colon).unwrap_or_default()
    }

    fn password(&self) -> &[u8] {
        self.decoded
            .bytes()
            .get(self.colon + 1..)
            .unwrap_or_default()
    }
}

impl Decoded {
    fn bytes(&self) -> &[u8] {
        match self {
            Decoded::Inline(bytes, len) => bytes.get(..*len).unwrap_or_default(),
            Decoded::Heap(bytes) => bytes,
        }
    }
}

/// An argon2id PHC hash of `password`, with a fresh random salt and the crate's default
/// costs: what `password_hash` in `[[auth.users]]` takes (`tickd passwd` prints it).
///
/// # Errors
/// The hasher's own failure (none is expected for a password of any length).
pub fn hash_password(password: &str) -> Result<String, anyhow::Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Argon2 verification against a PHC string; a malformed hash matches nothing.
fn argon2_matches(phc_hash: &str, password: &[u8]) -> bool {
    Argon2::default()
        .verify_password(password, phc_hash)
        .is_ok()
}

fn sha256(data: &[u8]) -> Digest32 {
    to_array(&Sha256::digest(data))
}

/// SHA-256 of `username:password`, as a Basic header carries them once decoded.
fn login_digest(username: &[u8], password: &[u8]) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update(username);
    hasher.update(b":");
    hasher.update(password);
    to_array(&hasher.finalize())
}

fn to_array(bytes: &[u8]) -> Digest32 {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use argon2::{Algorithm, Params, PasswordHasher, Version};

    /// A real argon2id PHC hash with tiny costs, so debug-build tests stay fast; verification
    /// reads the costs from the string.
    pub(crate) fn cheap_hash(password: &[u8]) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password)
            .unwrap()
            .to_string()
    }

    fn authenticator(users: Vec<User>) -> Authenticator {
        Authenticator::new(Arc::new(Credentials::new(users).unwrap()))
    }

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(userpass: &str) -> String {
        format!("Basic {}", STANDARD.encode(userpass))
    }

    #[test]
    fn header_parsing_follows_werkzeug() {
        let pair = |u: &str, p: &str| Some((u.as_bytes().to_vec(), p.as_bytes().to_vec()));
        let basic_credentials = |headers: &HeaderMap| match presented(headers.get(AUTHORIZATION)) {
            Presented::Basic(given) => Some((given.username().to_vec(), given.password().to_vec())),
            Presented::Bearer(_) | Presented::Nothing => None,
        };
        assert_eq!(
            basic_credentials(&header("Basic Z3Vlc3Q6Z3Vlc3Q=")),
            pair("guest", "guest")
        );
        assert_eq!(
            basic_credentials(&header("basic Z3Vlc3Q6Z3Vlc3Q=")),
            pair("guest", "guest")
        );
        assert_eq!(
            basic_credentials(&header("BASIC Z3Vlc3Q6Z3Vlc3Q=")),
            pair("guest", "guest")
        );
        assert_eq!(
            basic_credentials(&header(&basic("guest:p:q"))),
            pair("guest", "p:q")
        );
        assert_eq!(basic_credentials(&header(&basic(":"))), pair("", ""));
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
        assert_eq!(basic_credentials(&header("Basic 1231234")), None);
        assert_eq!(basic_credentials(&header("Bearer abc")), None);
        assert_eq!(basic_credentials(&header("Basic")), None);
        assert_eq!(basic_credentials(&header("Basic Z3Vlc3RndWVzdA==")), None); // no colon
        // Past what decodes in place, and at its edge, the same.
        let long = "p".repeat(300);
        assert_eq!(
            basic_credentials(&header(&basic(&format!("guest:{long}")))),
            pair("guest", &long)
        );
        let edge = format!("guest:{}", "q".repeat(90)); // 96 bytes: 128 base64 characters
        assert_eq!(basic(&edge).len(), "Basic ".len() + INLINE_ENCODED);
        assert_eq!(
            basic_credentials(&header(&basic(&edge))),
            pair("guest", &edge[6..])
        );
        assert_eq!(
            basic_credentials(&header(&format!("Basic {}!", "A".repeat(200)))),
            None
        );
        // A Bearer token is taken as it is, the scheme in any case.
        assert!(matches!(
            presented(header("bearer  tok ").get(AUTHORIZATION)),
            Presented::Bearer("tok")
        ));
        assert!(matches!(
            presented(header("Digest abc").get(AUTHORIZATION)),
            Presented::Nothing
        ));
    }

    #[tokio::test]
    async fn plain_users_are_checked_by_name_and_password() {
        let credentials = authenticator(vec![
            User::plain("guest", "guest"),
            User::plain("ops", "p:q"),
        ]);
        assert_eq!(credentials.verify(b"guest", b"guest").await, Some(0));
        assert_eq!(credentials.verify(b"ops", b"p:q").await, Some(1));
        assert_eq!(credentials.verify(b"guest", b"wrong").await, None);
        assert_eq!(credentials.verify(b"guest", b"p:q").await, None);
        assert_eq!(credentials.verify(b"ops", b"guest").await, None);
        assert_eq!(credentials.verify(b"nobody", b"guest").await, None);
        assert_eq!(credentials.verify(b"", b"").await, None);
    }

    /// Two users of one name are told apart by their password, so each gets its own role.
    #[tokio::test]
    async fn the_user_is_the_one_whose_password_matched() {
        let credentials = authenticator(vec![
            User::plain("x", "admin-pw"),
            User::plain("x", "viewer-pw").with_role(Role::Viewer),
            User::argon2("y", cheap_hash(b"a")),
            User::argon2("y", cheap_hash(b"b")).with_role(Role::Viewer),
        ]);
        let role = |index: Option<usize>| index.and_then(|i| credentials.actor(i)).map(|a| a.role);
        assert_eq!(
            role(credentials.verify(b"x", b"viewer-pw").await),
            Some(Role::Viewer)
        );
        assert_eq!(
            role(credentials.verify(b"x", b"admin-pw").await),
            Some(Role::Admin)
        );
        assert_eq!(credentials.verify(b"y", b"a").await, Some(2));
    }

    #[tokio::test]
    async fn argon2_users_are_verified_and_remembered() {
        let hash = cheap_hash(b"s3cret:x");
        assert!(hash.starts_with("$argon2id$"));
        let credentials = authenticator(vec![
            User::argon2("admin", hash),
            User::plain("guest", "guest"),
        ]);
        assert_eq!(credentials.verify(b"admin", b"wrong").await, None);
        assert!(credentials.lock_verified().is_empty());
        assert_eq!(credentials.verify(b"admin", b"s3cret:x").await, Some(0));
        assert_eq!(credentials.lock_verified().len(), 1);
        assert_eq!(credentials.verify(b"admin", b"s3cret:x").await, Some(0)); // from the cache
        assert_eq!(credentials.verify(b"admin", b"s3cret").await, None);
        assert_eq!(credentials.verify(b"nobody", b"s3cret:x").await, None);
        assert_eq!(credentials.verify(b"guest", b"guest").await, Some(1));
    }

    #[test]
    fn configuration_is_checked_up_front() {
        assert_eq!(
            Credentials::new(vec![]).unwrap_err(),
            CredentialsError::NoUsers
        );
        let err = Credentials::new(vec![User::argon2("admin", "not-a-hash")]).unwrap_err();
        assert!(
            matches!(err, CredentialsError::BadHash { ref username, .. } if username == "admin")
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let credentials = Credentials::new(vec![User::plain("guest", "hunter2")]).unwrap();
        let debug = format!("{credentials:?}");
        assert!(debug.contains("guest"));
        assert!(!debug.contains("hunter2"));
    }

    #[tokio::test]
    async fn credentials_verify_like_the_router() {
        let credentials = Credentials::new(vec![
            User::plain("guest", "guest"),
            User::argon2("admin", cheap_hash(b"pw")),
        ])
        .unwrap();
        assert_eq!(credentials.users().len(), 2);
        assert!(credentials.verify(b"guest", b"guest").await);
        assert!(credentials.verify(b"admin", b"pw").await);
        assert!(!credentials.verify(b"admin", b"guest").await);
    }

    #[test]
    fn secrets_match_synchronously() {
        assert!(Secret::Plain("guest".into()).matches("guest"));
        assert!(!Secret::Plain("guest".into()).matches("guest "));
        let hash = Secret::Argon2(cheap_hash(b"guest"));
        assert!(hash.matches("guest"));
        assert!(!hash.matches("Guest"));
        assert!(!Secret::Argon2("garbage".into()).matches("guest"));
    }

    #[test]
    fn the_default_argon2_output_verifies() {
        // What `argon2 0.6` produces with its defaults, as an operator would generate it.
        let hash = Argon2::default().hash_password(b"pw").unwrap().to_string();
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(Credentials::new(vec![User::argon2("a", hash.clone())]).is_ok());
        assert!(argon2_matches(&hash, b"pw"));
    }
}
