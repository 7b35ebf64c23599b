//! The token checks of the store conformance suite (`tests/daemon/store.rs`): every backend
//! keeps API tokens the same way. Leaves the store without tokens.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tickd::store::{StoreError, TokenRecord, TokenStore};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn token(id: &str, created: i64, expires: Option<i64>) -> TokenRecord {
    TokenRecord {
        id: id.to_owned(),
        name: format!("name of {id} – ünïcode"),
        role: "operator".to_owned(),
        secret_hash: "ab".repeat(32),
        created_at: at(created) + TimeDelta::microseconds(123_456),
        expires_at: expires.map(at),
        last_used_at: None,
    }
}

/// Create, find, list (oldest first), refuse a taken id, touch, revoke (once), and a touch
/// after a revocation brings nothing back.
pub async fn tokens_conform(store: &dyn TokenStore) {
    assert!(store.list_tokens().await.unwrap().is_empty());
    assert!(store.find_token("t1").await.unwrap().is_none());
    let t1 = token("t1", 20, Some(3600));
    let t2 = token("t2", 10, None);
    store.create_token(&t1).await.unwrap();
    store.create_token(&t2).await.unwrap();
    assert_eq!(store.find_token("t1").await.unwrap(), Some(t1.clone()));
    assert_eq!(store.find_token("T1").await.unwrap(), None, "ids are exact");
    assert_eq!(
        store.list_tokens().await.unwrap(),
        vec![t2.clone(), t1.clone()]
    );
    let taken = store
        .create_token(&token("t1", 30, None))
        .await
        .unwrap_err();
    assert!(
        matches!(taken, StoreError::Conflict(ref id) if id == "t1"),
        "{taken:?}"
    );
    assert_eq!(store.find_token("t1").await.unwrap(), Some(t1.clone()));

    store.touch_token("t1", at(100)).await.unwrap();
    let touched = store.find_token("t1").await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(at(100)));
    assert_eq!(touched.secret_hash, t1.secret_hash);

    assert!(store.revoke_token("t1").await.unwrap());
    assert!(!store.revoke_token("t1").await.unwrap());
    assert!(store.find_token("t1").await.unwrap().is_none());
    store.touch_token("t1", at(200)).await.unwrap();
    assert!(
        store.find_token("t1").await.unwrap().is_none(),
        "a touch revives nothing"
    );
    assert_eq!(store.list_tokens().await.unwrap(), vec![t2]);
    assert!(store.revoke_token("t2").await.unwrap());
    assert!(store.list_tokens().await.unwrap().is_empty());
}
