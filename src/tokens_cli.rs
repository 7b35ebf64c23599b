//! `tickd token create|list|revoke`: API tokens managed from the command line, in the store
//! the config names (`[store] url`, read as the daemon reads it), with or without a daemon
//! running. The store is opened for its tokens only ([`store::open_tokens`]): no single-daemon
//! lock, no background task. A created token's text is printed once, alone on standard
//! output so that a script can capture it; everything else goes to standard error.

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};

use crate::api::{Role, TokenRequest, issue_token, token_to_json};
use crate::config::Config;
use crate::redact;
use crate::store::{self, TokenStore};

/// What `tickd token` was asked to do.
#[derive(Debug, Clone)]
pub enum TokenCommand {
    /// Creates a token and prints its text.
    Create {
        /// Who it is for.
        name: String,
        /// What it may do.
        role: Role,
        /// `--expires`: an RFC 3339 time, or a duration from now (`90d`, `12h`, `30m`).
        expires: Option<String>,
    },
    /// Lists the tokens (never their secrets), as a table or as JSON.
    List {
        /// JSON (the API's objects) instead of a table.
        json: bool,
    },
    /// Revokes a token by its id.
    Revoke {
        /// The token's id (`tickd_<id>` in the listing's prefix column).
        id: String,
    },
}

/// Runs `command` against the store `config` names.
///
/// # Errors
/// A store that cannot be opened, a refused request, an unknown token id.
pub async fn run(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let store = store::open_tokens(&config.store_url())
        .await
        .with_context(|| {
            format!(
                "opening the store {} ([store] url)",
                redact::url(&config.store.url)
            )
        })?;
    run_on(store.as_ref(), command, Utc::now()).await
}

async fn run_on(
    store: &dyn TokenStore,
    command: TokenCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            name,
            role,
            expires,
        } => {
            let expires_at = expires.as_deref().map(|e| expiry(e, now)).transpose()?;
            let issued = issue_token(
                store,
                TokenRequest {
                    name,
                    role,
                    expires_at,
                },
                now,
            )
            .await?;
            let record = &issued.record;
            eprintln!(
                "Created token {} (id {}) named {:?}, role {}, {}. Its text, below, is shown \
                 only this once: send it as `Authorization: Bearer <token>`.",
                crate::api::TOKEN_PREFIX.to_owned() + &record.id,
                record.id,
                record.name,
                record.role,
                match record.expires_at {
                    Some(at) => format!("expires {}", at.to_rfc3339()),
                    None => "never expires".to_owned(),
                }
            );
            println!("{}", issued.token);
        }
        TokenCommand::List { json } => {
            let tokens = store.list_tokens().await?;
            if json {
                let list: Vec<_> = tokens.iter().map(token_to_json).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!("ID\tNAME\tROLE\tCREATED\tEXPIRES\tLAST USED");
                let time = |at: Option<DateTime<Utc>>| {
                    at.map_or_else(|| "-".to_owned(), |at| at.to_rfc3339())
                };
                for token in &tokens {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        token.id,
                        token.name.escape_debug(),
                        token.role,
                        token.created_at.to_rfc3339(),
                        time(token.expires_at),
                        time(token.last_used_at)
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let id = id
                .strip_prefix(crate::api::TOKEN_PREFIX)
                .unwrap_or(&id)
                .to_owned();
            if !store.revoke_token(&id).await? {
                anyhow::bail!("no token has the id {id:?} (`tickd token list` shows them)");
            }
            eprintln!("Revoked token {id}: it is refused from now on.");
        }
    }
    Ok(())
}

/// `--expires`: an RFC 3339 time, or a whole number of seconds, minutes, hours, days or weeks
/// from `now` (`3600s`, `30m`, `12h`, `90d`, `2w`).
fn expiry(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_utc());
    }
    let bad = || {
        anyhow::anyhow!(
            "--expires {text:?}: expected a duration from now (30m, 12h, 90d, 2w) or an RFC \
             3339 time (2030-01-31T12:00:00Z)"
        )
    };
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at_checked(split).ok_or_else(bad)?;
    let n: i64 = number.parse().map_err(|_| bad())?;
    let delta = match unit {
        "s" => TimeDelta::try_seconds(n),
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        "w" => TimeDelta::try_weeks(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    now.checked_add_signed(delta).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_times_or_durations() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(expiry("90d", now).unwrap(), now + TimeDelta::days(90));
        assert_eq!(expiry("30m", now).unwrap(), now + TimeDelta::minutes(30));
        assert_eq!(
            expiry("2030-02-01T00:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2030-01-31T23:00:00+00:00"
        );
        for bad in ["", "d", "5x", "-", "tomorrow", "99999999999999999w"] {
            assert!(expiry(bad, now).is_err(), "{bad:?}");
        }
    }
}
