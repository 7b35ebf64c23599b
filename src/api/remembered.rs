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
//! What is kept and compared is only what this connection's own client sent, and no other
//! connection can use it. The comparison takes the same time whatever is kept, its length
//! included (`subtle`, over the presented value's length against a fixed-size copy): a
//! connection that a proxy shares between clients tells one nothing of another's login.
//! Only accepted logins are kept, so every failed attempt is still checked and counted
//! (`throttle.rs`). Users come from the config, fixed for the process's life; API tokens
//! are never remembered: a revoked token is refused at its next request.

use std::sync::{Mutex, PoisonError};

use subtle::ConstantTimeEq as _;

use super::roles::Actor;

/// The longest `Authorization` value remembered; a longer one is checked every time.
const LONGEST: usize = 256;

/// A connection's last accepted Basic login: see the module's doc. One per connection,
/// shared by its requests (the gate's per-connection state).
#[derive(Default)]
pub(crate) struct RememberedLogin {
    last: Mutex<Option<Last>>,
}

/// An accepted `Authorization` value as it came (zero-padded), and who it proved to be.
struct Last {
    value: [u8; LONGEST],
    len: usize,
    actor: Actor,
}

impl RememberedLogin {
    /// The actor `authorization` (a request's header, as it came) proved earlier on this
    /// connection, if it is the same value.
    pub(crate) fn recall(&self, authorization: &[u8]) -> Option<Actor> {
        let last = self.lock();
        let last = last.as_ref()?;
        // As many bytes compared as were presented, and the lengths compared as numbers: the
        // time depends on the presented value alone.
        let kept = last.value.get(..authorization.len())?;
        let same =
            kept.ct_eq(authorization) & (last.len as u64).ct_eq(&(authorization.len() as u64));
        bool::from(same).then(|| last.actor.clone())
    }

    /// Keeps `authorization`, just accepted as `actor`, in place of the last one (unless it
    /// is longer than [`LONGEST`]).
    pub(crate) fn remember(&self, authorization: &[u8], actor: &Actor) {
        let mut value = [0; LONGEST];
        let Some(room) = value.get_mut(..authorization.len()) else {
            return;
        };
        room.copy_from_slice(authorization);
        *self.lock() = Some(Last {
            value,
            len: authorization.len(),
            actor: actor.clone(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Last>> {
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
        // The zero padding is not part of the value.
        assert!(remembered.recall(b"Basic YWRtaW46YWRtaW4=\0").is_none());
        // Too long to keep: the last one stays, and the long one is checked every time.
        let long = [b'A'; LONGEST + 1];
        remembered.remember(&long, &actor("long"));
        assert!(remembered.recall(&long).is_none());
        assert!(remembered.recall(b"Basic YWRtaW46YWRtaW4=").is_some());
        let longest = [b'A'; LONGEST];
        remembered.remember(&longest, &actor("longest"));
        assert!(remembered.recall(&longest).is_some());
    }
}
