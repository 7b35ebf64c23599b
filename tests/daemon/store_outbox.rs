//! The store contract for the notification outbox: deliveries are due by their next attempt,
//! claimed by one daemon at a time (a lease, compare-and-set), recorded only by the claim's
//! holder, listed newest first, and pruned once they ended. Run by `store.rs` on every backend.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tickd::store::{Delivery, NotificationRecord, Store};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap()
}

fn delivery(n: u32, due: DateTime<Utc>) -> NotificationRecord {
    NotificationRecord {
        id: uuid::Uuid::now_v7().to_string(),
        created_at: t0(),
        event: "failed".to_owned(),
        job_id: format!("job-{n}"),
        run_id: uuid::Uuid::now_v7().to_string(),
        webhook: "ops".to_owned(),
        body: format!("{{\"n\": {n}}}"),
        status: Delivery::Pending,
        attempts: 0,
        next_attempt_at: Some(due),
        last_error: None,
        delivered_at: None,
    }
}

/// Every check; leaves no delivery behind.
pub async fn outbox_conforms(store: &dyn Store) {
    let soon = delivery(1, t0());
    let later = delivery(2, t0() + TimeDelta::seconds(30));
    store
        .enqueue_notifications(&[soon.clone(), later.clone()])
        .await
        .unwrap();
    let due = store.due_notifications(t0(), 10).await.unwrap();
    assert_eq!(
        due,
        std::slice::from_ref(&soon),
        "read back whole, only what is due"
    );
    assert_eq!(
        store.next_notification_at(t0()).await.unwrap(),
        Some(t0() + TimeDelta::seconds(30))
    );

    // One claim at a time; a claim that ran out can be taken again.
    let lease = t0() + TimeDelta::seconds(40);
    assert!(
        store
            .claim_notification(&soon.id, "a", lease, t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_notification(&soon.id, "b", lease, t0())
            .await
            .unwrap()
    );
    assert!(
        store.due_notifications(t0(), 10).await.unwrap().is_empty(),
        "a claimed one is not due"
    );
    let after_lease = t0() + TimeDelta::seconds(41);
    assert!(
        store
            .claim_notification(
                &soon.id,
                "b",
                after_lease + TimeDelta::seconds(40),
                after_lease
            )
            .await
            .unwrap()
    );

    // Only the holder records; the record lets the claim go.
    let mut failed = soon.clone();
    failed.attempts = 1;
    failed.last_error = Some("the receiver answered 500 Internal Server Error".to_owned());
    failed.next_attempt_at = Some(t0() + TimeDelta::seconds(50));
    assert!(
        !store.record_attempt(&failed, "a").await.unwrap(),
        "a's claim was taken over"
    );
    assert!(store.record_attempt(&failed, "b").await.unwrap());
    let due = store
        .due_notifications(t0() + TimeDelta::seconds(50), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[1], failed, "due later now, with its error and attempt");
    assert!(
        store
            .claim_notification(&soon.id, "a", lease, t0())
            .await
            .unwrap(),
        "free again"
    );
    let mut delivered = failed.clone();
    delivered.attempts = 2;
    delivered.status = Delivery::Delivered;
    delivered.next_attempt_at = None;
    delivered.last_error = None;
    delivered.delivered_at = Some(t0() + TimeDelta::seconds(1));
    assert!(store.record_attempt(&delivered, "a").await.unwrap());
    assert!(
        !store
            .claim_notification(&soon.id, "b", lease, t0() + TimeDelta::days(1))
            .await
            .unwrap(),
        "delivered: never again"
    );

    // Listed newest first, paged.
    let listed = store.list_notifications(10, None).await.unwrap();
    assert_eq!(listed, [later.clone(), delivered.clone()]);
    let page = store.list_notifications(10, Some(&later.id)).await.unwrap();
    assert_eq!(page, [delivered.clone()]);

    // Retention: only what ended.
    assert_eq!(
        store
            .prune_notifications(t0() + TimeDelta::days(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.list_notifications(10, None).await.unwrap(),
        std::slice::from_ref(&later)
    );
    let mut gave_up = later.clone();
    gave_up.status = Delivery::GaveUp;
    gave_up.next_attempt_at = None;
    assert!(
        store
            .claim_notification(&later.id, "a", lease, t0())
            .await
            .unwrap()
    );
    assert!(store.record_attempt(&gave_up, "a").await.unwrap());
    assert_eq!(store.next_notification_at(t0()).await.unwrap(), None);
    assert_eq!(
        store
            .prune_notifications(t0() + TimeDelta::days(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.list_notifications(10, None).await.unwrap().is_empty());
}
