//! API tokens as text, and checking one (`Authorization: Bearer <token>`).
//!
//! A token reads `tickd_<id>_<secret>`: `tickd_` so that a leaked one is recognisable (secret
//! scanners, logs), `<id>` 12 hex digits of a random public id (what listings show, and how
//! the store finds the record), `<secret>` 64 hex digits, 32 random bytes. The store keeps
//! the SHA-256 of the secret only: the secret is random and long, so a fast hash is enough (no
//! argon2), and comparing the digests in constant time (`subtle`) shows nothing in the timing.
//!
//! The record is read on every request, with no cache, so a revocation (the record deleted)
//! holds at once on every daemon sharing the store. `last_used_at` is written only when the
//! stored one is a minute old or more, not on every request.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::roles::{Actor, Credential, Role};
use crate::store::{StoreError, TokenRecord, TokenStore};
use crate::telemetry::logged;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "tickd_";

/// Random bytes of a public id, and of a secret.
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// How stale `last_used_at` may be before a use writes it again.
const TOUCH_EVERY: TimeDelta = TimeDelta::minutes(1);

/// A freshly drawn token: its public id, its secret, and the text a client sends.
pub(crate) struct Minted {
    pub id: String,
    pub secret_hash: String,
    /// `tickd_<id>_<secret>`: shown once, never stored or logged.
    pub text: String,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Draws a new id and secret.
pub(crate) fn mint() -> Minted {
    let id = hex(&rand::random::<[u8; ID_BYTES]>());
    let secret = hex(&rand::random::<[u8; SECRET_BYTES]>());
    Minted {
        secret_hash: hash(&secret),
        text: format!("{TOKEN_PREFIX}{id}_{secret}"),
        id,
    }
}

/// The visible part of a token: what a person recognises it by in a listing.
pub(crate) fn visible_prefix(id: &str) -> String {
    format!("{TOKEN_PREFIX}{id}")
}

/// The public id of a token's text (`tickd_<id>_...`), never its secret: what the audit log
/// records of a Bearer token that was refused.
pub(crate) fn public_id(text: &str) -> Option<&str> {
    parse(text).map(|(id, _)| id)
}

/// `(id, secret)` of a token's text, or `None` when it is not one tickd issues.
fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, bytes: usize| {
        s.len() == 2 * bytes && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex_of(id, ID_BYTES) && hex_of(secret, SECRET_BYTES)).then_some((id, secret))
}

/// The actor a Bearer token stands for, or `None` when it is malformed, unknown, revoked,
/// expired or wrong (no difference shows). `Err` only when the store could not answer, or
/// holds a record that cannot be read.
pub(crate) async fn verify(
    store: &dyn TokenStore,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Option<Actor>, StoreError> {
    let Some((id, secret)) = parse(text) else {
        return Ok(None);
    };
    let Some(record) = store.find_token(id).await? else {
        return Ok(None);
    };
    let matches = hash(secret).as_bytes().ct_eq(record.secret_hash.as_bytes());
    if !bool::from(matches) || record.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let role = record.role.parse::<Role>().map_err(|_| {
        StoreError::Backend(anyhow::anyhow!(
            "token {}: unreadable role {:?}",
            record.id,
            logged(&record.role)
        ))
    })?;
    if record.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
        // A failed write must not refuse a valid token: it is only bookkeeping.
        if let Err(error) = store.touch_token(&record.id, now).await {
            tracing::warn!(token_id = %record.id, "Could not record the use of token {}: {error}", record.id);
        }
    }
    Ok(Some(actor(&record, role)))
}

fn actor(record: &TokenRecord, role: Role) -> Actor {
    Actor {
        name: record.name.as_str().into(),
        role,
        credential: Credential::Token,
    }
}

/// SHA-256 of a secret, lower-case hex.
fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_back_and_only_they_do() {
        let minted = mint();
        let (id, secret) = parse(&minted.text).unwrap();
        assert_eq!(id, minted.id);
        assert_eq!(hash(secret), minted.secret_hash);
        assert_eq!(minted.text.len(), TOKEN_PREFIX.len() + 12 + 1 + 64);
        assert!(!format!("{minted:?}").contains(secret));
        for bad in [
            "",
            "tickd_",
            &minted.text[..minted.text.len() - 1],
            &minted.text.to_uppercase(),
            &minted.text.replacen("tickd_", "tick_", 1),
            &format!("{}0", minted.text),
            "tickd_abcdefabcdef_",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        assert_ne!(mint().text, minted.text);
    }
}
