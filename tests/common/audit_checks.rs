//! The audit log's part of the store conformance suite (`tests/daemon/store.rs` `conforms`):
//! append, order, paging, filters and pruning, the same on every backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tickd::store::{AuditEntry, AuditFilter, AuditLog, AuditRecord, Outcome};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// An entry by `actor` on `target` answered `status`.
pub fn entry(actor: Option<&str>, target: Option<&str>, status: u16) -> AuditEntry {
    AuditEntry {
        actor: actor.map(str::to_owned),
        credential: actor.map(|_| "password".to_owned()),
        source: "127.0.0.1".to_owned(),
        method: "POST".to_owned(),
        route: "/scheduler/jobs/{id}/run".to_owned(),
        target: target.map(str::to_owned),
        status,
    }
}

fn ids(records: &[AuditRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

/// Every check, on an empty audit log.
pub async fn audit_conforms(store: &(impl AuditLog + ?Sized)) {
    let all = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    assert!(store.audit(&all).await.unwrap().is_empty());
    assert_eq!(
        store.prune_audit(t0()).await.unwrap(),
        0,
        "nothing to prune"
    );

    // Ten records a minute apart, by two actors on two targets, one by nobody.
    let records: Vec<AuditRecord> = (0..10)
        .map(|i| {
            let actor = match i % 3 {
                0 => Some("alice"),
                1 => Some("bob"),
                _ => None,
            };
            let target = if i % 2 == 0 {
                Some("job-a")
            } else {
                Some("jöb b")
            };
            let status = [200, 403, 400][i % 3];
            AuditRecord::at(
                t0() + TimeDelta::minutes(i as i64),
                entry(actor, target, status),
            )
        })
        .collect();
    store.append(&records[..4]).await.unwrap();
    store.append(&records[4..]).await.unwrap();
    store.append(&[]).await.unwrap();

    let newest_first: Vec<&str> = records.iter().rev().map(|r| r.id.as_str()).collect();
    let read = store.audit(&all).await.unwrap();
    assert_eq!(ids(&read), newest_first, "newest first");
    assert_eq!(read[0], records[9], "a record round-trips");
    assert_eq!(read[9].outcome, Outcome::Ok);
    assert_eq!(read[8].outcome, Outcome::Denied);
    assert_eq!(read[7].outcome, Outcome::Error);
    assert_eq!(read[7].actor, None);
    assert_eq!(read[7].credential, None);

    // Pages of three.
    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = store
            .audit(&AuditFilter {
                limit: 3,
                before: before.as_deref(),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.id.clone());
        paged.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(paged, newest_first, "pages join up with nothing twice");

    // Filters, alone, together and with paging.
    let by = |actor: Option<&'static str>, target: Option<&'static str>| {
        records
            .iter()
            .rev()
            .filter(|r| actor.is_none_or(|a| r.actor.as_deref() == Some(a)))
            .filter(|r| target.is_none_or(|t| r.target.as_deref() == Some(t)))
            .map(|r| r.id.clone())
            .collect::<Vec<_>>()
    };
    for (actor, target) in [
        (Some("alice"), None),
        (Some("bob"), None),
        (None, Some("job-a")),
        (None, Some("jöb b")),
        (Some("alice"), Some("job-a")),
        (Some("bob"), Some("job-a")),
        (Some("carol"), None),
        (None, Some("job-c")),
    ] {
        let found = store
            .audit(&AuditFilter {
                limit: 100,
                actor,
                target,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        let found: Vec<String> = found.into_iter().map(|r| r.id).collect();
        assert_eq!(
            found,
            by(actor, target),
            "actor {actor:?} target {target:?}"
        );
    }
    let alices = by(Some("alice"), None);
    let page = store
        .audit(&AuditFilter {
            limit: 1,
            before: Some(&alices[0]),
            actor: Some("alice"),
            target: None,
        })
        .await
        .unwrap();
    assert_eq!(ids(&page), [alices[1].as_str()], "a filter pages");

    // Pruning by age: the five oldest go, with their index entries.
    let pruned = store
        .prune_audit(t0() + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!(pruned, 5);
    let left = store.audit(&all).await.unwrap();
    assert_eq!(ids(&left), newest_first[..5]);
    let alice = store
        .audit(&AuditFilter {
            limit: 100,
            actor: Some("alice"),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&alice),
        [records[9].id.as_str(), records[6].id.as_str()]
    );
    assert_eq!(
        store.prune_audit(t0() + TimeDelta::days(1)).await.unwrap(),
        5
    );
    assert!(store.audit(&all).await.unwrap().is_empty());
}
