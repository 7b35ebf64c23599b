//! Guessing slowed: an address that fails authentication `max_failures` times within
//! `window` is answered 429 with `Retry-After` until the window that began with its first
//! failure has passed; other addresses are not slowed. A success clears the address's count.
//! A failure is a 401 to a request that carried credentials; one without any (a browser's
//! first, before it prompts) guessed nothing and is not counted.
//!
//! Counted per client address, an IPv6 address by its /64 (one host holds a whole /64, and
//! could otherwise take a fresh address per guess). The table is bounded: when it is full,
//! ended windows are dropped, and if none has ended the address whose window began first
//! makes room. Time comes from the injected [`Clock`], so tests move it instead of sleeping.
//!
//! The layer sits outside authentication (a blocked address is refused before any password
//! is hashed) and inside the origin check (a foreign page's requests never reach it).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};

use super::error::ApiError;
use crate::clock::Clock;

/// Addresses tracked at most (a few dozen bytes each).
const MAX_TRACKED: usize = 65_536;

/// How many failed authentications an address may make, and in how long a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    /// Failures allowed in a window; the next request is refused. 0 turns the limit off.
    pub max_failures: u32,
    /// How long an address's count lasts from its first failure.
    pub window: Duration,
}

impl Default for FailureLimit {
    /// Ten failures in five minutes: a person mistyping never meets it; a guesser gets ten
    /// guesses per five minutes instead of thousands per second.
    fn default() -> Self {
        FailureLimit {
            max_failures: 10,
            window: Duration::from_secs(300),
        }
    }
}

/// One address's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: DateTime<Utc>,
}

/// The failed-authentication counts of every address, shared by all connections.
#[derive(Debug)]
pub struct Throttle {
    limit: FailureLimit,
    clock: Arc<dyn Clock>,
    /// std Mutex: held for a map operation, never across `.await`.
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// Whether the map holds anything: while no address has failed (nearly always), a
    /// request costs one atomic read, not the lock.
    any: AtomicBool,
}

impl Throttle {
    /// A throttle for `limit`, telling time by `clock`.
    pub fn new(limit: FailureLimit, clock: Arc<dyn Clock>) -> Throttle {
        Throttle {
            limit,
            clock,
            failures: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
        }
    }

    /// How long `address` must still wait, if it is blocked.
    fn blocked_for(&self, address: IpAddr) -> Option<Duration> {
        if self.limit.max_failures == 0 || !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let now = self.clock.now();
        let mut failures = self.lock();
        let entry = *failures.get(&address)?;
        let left = (entry.since + self.window()) - now;
        if left <= TimeDelta::zero() {
            failures.remove(&address);
            self.any.store(!failures.is_empty(), Ordering::Relaxed);
            return None;
        }
        (entry.count >= self.limit.max_failures).then(|| left.to_std().unwrap_or_default())
    }

    /// Counts a failed authentication from `address`.
    fn failed(&self, address: IpAddr) {
        if self.limit.max_failures == 0 {
            return;
        }
        let now = self.clock.now();
        let window = self.window();
        let mut failures = self.lock();
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&address) {
            failures.retain(|_, entry| entry.since + window > now);
            if failures.len() >= MAX_TRACKED {
                let oldest = failures
                    .iter()
                    .min_by_key(|(_, entry)| entry.since)
                    .map(|(address, _)| *address);
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(address).or_insert(Failures {
            count: 0,
            since: now,
        });
        if entry.since + window <= now {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
        self.any.store(true, Ordering::Relaxed);
        if entry.count == self.limit.max_failures {
            tracing::warn!(
                client = %address,
                "{} failed authentications from {address}: refused with 429 for {} s",
                entry.count,
                self.limit.window.as_secs()
            );
        }
    }

    /// Forgets `address`'s failures: it has just authenticated.
    fn succeeded(&self, address: IpAddr) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let mut failures = self.lock();
        failures.remove(&address);
        self.any.store(!failures.is_empty(), Ordering::Relaxed);
    }

    fn window(&self) -> TimeDelta {
        TimeDelta::from_std(self.limit.window).unwrap_or(TimeDelta::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        // Counts hold no invariant a panicking holder could break.
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where a request from `peer` is counted (`None`: served without an address, not
    /// through `serve`), or the 429 a blocked address gets. Called by the gate (`gate.rs`)
    /// before the credentials are checked.
    pub(crate) fn admit(&self, peer: Option<SocketAddr>) -> Result<Option<IpAddr>, ApiError> {
        let Some(address) = peer.map(|peer| counted_as(peer.ip())) else {
            return Ok(None);
        };
        match self.blocked_for(address) {
            Some(wait) => Err(ApiError::TooManyFailures {
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }),
            None => Ok(Some(address)),
        }
    }

    /// Counts the answer to a request from `address`: a 401 to one that carried credentials
    /// (`guessed`) is a failure; a request without any (a browser's first, before its
    /// prompt) tried nothing; any other answer clears the address's count.
    pub(crate) fn observe(&self, address: IpAddr, guessed: bool, status: StatusCode) {
        if status == StatusCode::UNAUTHORIZED {
            if guessed {
                self.failed(address);
            }
        } else {
            self.succeeded(address);
        }
    }
}

/// The key an address is counted under: an IPv4 address itself, an IPv6 address its /64
/// (an IPv4-mapped one as the IPv4 address it is).
fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn throttle(max_failures: u32) -> (Throttle, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let limit = FailureLimit {
            max_failures,
            window: Duration::from_secs(60),
        };
        (Throttle::new(limit, clock.clone()), clock)
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let (throttle, clock) = throttle(3);
        let guesser: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..2 {
            throttle.failed(guesser);
            assert_eq!(throttle.blocked_for(guesser), None);
        }
        throttle.failed(guesser);
        assert_eq!(throttle.blocked_for(guesser), Some(Duration::from_secs(60)));
        assert_eq!(throttle.blocked_for(other), None, "others are not slowed");
        clock.advance(TimeDelta::seconds(45));
        assert_eq!(throttle.blocked_for(guesser), Some(Duration::from_secs(15)));
        clock.advance(TimeDelta::seconds(15));
        assert_eq!(throttle.blocked_for(guesser), None, "the window has passed");
        throttle.failed(guesser);
        assert_eq!(
            throttle.blocked_for(guesser),
            None,
            "a new window, one failure"
        );
    }

    #[test]
    fn a_success_clears_the_count_and_zero_turns_the_limit_off() {
        let (throttle, _) = throttle(2);
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        throttle.failed(client);
        throttle.succeeded(client);
        throttle.failed(client);
        assert_eq!(throttle.blocked_for(client), None);
        let (off, _) = throttle_off();
        for _ in 0..100 {
            off.failed(client);
        }
        assert_eq!(off.blocked_for(client), None);
    }

    fn throttle_off() -> (Throttle, Arc<ManualClock>) {
        throttle(0)
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(counted_as(a), counted_as(b));
        assert_ne!(counted_as(a), counted_as(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(counted_as(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_table_stays_bounded() {
        let (throttle, clock) = throttle(5);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            throttle.failed(IpAddr::V4(i.into()));
            if i % 4096 == 0 {
                clock.advance(TimeDelta::milliseconds(1));
            }
        }
        assert!(throttle.lock().len() <= MAX_TRACKED);
    }
}
