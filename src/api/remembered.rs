//! The Basic login a connection has proved, remembered for the connection's life.
//!
//! A client sends the same `Authorization` with every request of a keep-alive connection
//! (curl, Postman, a browser after its prompt, wrk), and checking it again each time is the
//! gate's largest single cost on a `GET P`: base64, then a SHA-256 of the login, compared
//! with every configured user. Without SHA instructions in the CPU, that hash alone was a
//! sixth of the request's user-space instructions (`bench/instructions`). So once a
//! connection's Basic credentials are accepted, the exact header is kept beside the
//! connection, and a request on it that presents the same bytes is the same actor.
//!
//! What is kept and compared is only what this connection's own client sent: the comparison
//! (constant time for equal lengths, `subtle`) tells a client nothing it did not send itself,
//! and no other connection can use it. Only accepted logins are kept, so every failed attempt
//! is still checked and counted (`throttle.rs`). Users come from the config, fixed for the
//! process's life; API tokens are never remembered: a revoked token is refused at its next
//! request.

use std::sync::{Mutex, PoisonError};

use subtle::ConstantTimeEq as _;

use super::roles::Actor;

/// A connection's last accepted Basic login: see the module's doc. One per connection,
/// shared by its requests (the gate's per-connection state).
#[derive(Default)]
pub(crate) struct RememberedLogin {
    /// The `Authorization` value as it came, and who it proved to be.
    last: Mutex<Option<(Box<[u8]>, Actor)>>,
}

impl RememberedLogin {
    /// The actor `authorization` (a request's header, as it came) proved earlier on this
    /// connection, if it is the same value.
    pub(crate) fn recall(&self, authorization: &[u8]) -> Option<Actor> {
        let last = self.lock();
        let (value, actor) = last.as_ref()?;
        bool::from(value.ct_eq(authorization)).then(|| actor.clone())
    }

    /// Keeps `authorization`, just accepted as `actor`, in place of the last one.
    pub(crate) fn remember(&self, authorization: &[u8], actor: &Actor) {
        *self.lock() = Some((authorization.into(), actor.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Box<[u8]>, Actor)>> {
        // A replaced pair holds no invariant a panicking holder could break.
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::roles::{Credential, Role};

    fn actor(name: &str) -> Actor {
        Actor {
            name: name.into(),
            role: Role::Viewer,
            credential: Credential::Password,
        }
    }

    #[test]
    fn only_the_very_value_accepted_last_is_recalled() {
        let remembered = RememberedLogin::default();
        assert!(remembered.recall(b"Basic Z3Vlc3Q6Z3Vlc3Q=").is_none());
        remembered.remember(b"Basic Z3Vlc3Q6Z3Vlc3Q=", &actor("guest"));
        let recalled = remembered.recall(b"Basic Z3Vlc3Q6Z3Vlc3Q=");
        assert_eq!(
            recalled.map(|a| a.name.to_string()),
            Some("guest".to_owned())
        );
        for other in [
            &b"Basic Z3Vlc3Q6Z3Vlc3Q"[..],
            b"Basic Z3Vlc3Q6Z3Vlc3R=",
            b"basic Z3Vlc3Q6Z3Vlc3Q=",
            b"",
        ] {
            assert!(remembered.recall(other).is_none(), "{other:?}");
        }
        remembered.remember(b"Basic YWRtaW46YWRtaW4=", &actor("admin"));
        assert!(remembered.recall(b"Basic Z3Vlc3Q6Z3Vlc3Q=").is_none());
        let recalled = remembered.recall(b"Basic YWRtaW46YWRtaW4=");
        assert_eq!(
            recalled.map(|a| a.name.to_string()),
            Some("admin".to_owned())
        );
    }
}
