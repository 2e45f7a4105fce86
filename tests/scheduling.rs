//! The scheduling rules against the simulator, on a cadence of seconds instead of minutes:
//! the adaptive interval (R37), track-now with its fallback (R38), coalescing (R39), the
//! back-off gate and the concurrency cap (R29), and mailbox health (R29, R31, R33).

mod common;

use common::*;
use foldertrack::sim::{FaultKind, FaultRule};
use foldertrack::watch::health::Health;
use foldertrack::watch::supervisor::SyncNow;
use std::time::{Duration, Instant};

fn two_mailboxes() -> String {
    mailboxes(&[
        (ALICE, &[("Inbox/A", Some(CONTOSO), "")]),
        (BOB, &[("Inbox/B", None, "")]),
    ])
}

async fn agent() -> Agent {
    let agent = Agent::start(&two_mailboxes()).await;
    let c = agent.sim();
    c.create_folder(ALICE, "Inbox/A").unwrap();
    c.create_folder(BOB, "Inbox/B").unwrap();
    agent
}

fn fault(
    mailbox: Option<&str>,
    operation: Option<&str>,
    fault: FaultKind,
    count: Option<u32>,
) -> FaultRule {
    FaultRule {
        mailbox: mailbox.map(Into::into),
        operation: operation.map(Into::into),
        fault,
        count,
        probability: None,
    }
}

const SLOW: (u64, u64, u64) = (60, 60, 60);

type Sup = foldertrack::watch::supervisor::Supervisor<
    foldertrack::feed::AnyFeed,
    foldertrack::store::SledStore,
>;

/// Waits until every mailbox has had its first sync.
async fn synced_once(supervisor: &Sup) {
    assert!(
        eventually(Duration::from_secs(5), || supervisor
            .status()
            .iter()
            .all(|s| s.syncs >= 1))
        .await
    );
}

async fn stop_all(supervisor: &Sup, stop: tokio_util::sync::CancellationToken) {
    stop.cancel();
    supervisor.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r37_busy_and_quiet_mailboxes_converge_and_a_quiet_one_still_tracks_within_its_interval() {
    let agent = agent().await;
    let c = agent.sim();
    // Busy 1 s, normal 2 s, quiet 4 s: minutes scaled to seconds.
    let (supervisor, stop) = agent.supervise((1, 2, 4), quick_health(1, 10, 60));
    let busy = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in 0..28 {
                drag(&c, ALICE, &format!("busy {i}"), "Inbox/A");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    busy.await.unwrap();
    let status = supervisor.status();
    assert_eq!(
        (status[0].address.as_str(), status[0].interval_secs),
        (ALICE, 1),
        "{status:?}"
    );
    assert_eq!(
        (status[1].address.as_str(), status[1].interval_secs),
        (BOB, 4),
        "{status:?}"
    );
    // A mail for the quiet mailbox is tracked within its (longest) interval.
    drag(&c, BOB, "for the quiet one", "Inbox/B");
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(6), || agent
            .outbox_mailboxes()
            .contains(&BOB.to_owned()))
        .await
    );
    assert!(
        started.elapsed() <= Duration::from_millis(4_500),
        "{:?}",
        started.elapsed()
    );
    stop_all(&supervisor, stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r38_track_now_tracks_within_two_seconds_and_reports_the_fallback_when_throttled() {
    let agent = agent().await;
    let c = agent.sim();
    let (supervisor, stop) = agent.supervise_delivering(SLOW, quick_health(1, 10, 60));
    synced_once(&supervisor).await;

    let first = drag(&c, ALICE, "track me now", "Inbox/A");
    let asked = Instant::now();
    assert_eq!(
        supervisor.sync_now(ALICE).await,
        SyncNow::Done { tracked: 1 }
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(agent.delivered().len(), 1, "done means in the sink");
    // Its category is written, so no write-back call of this mailbox is left to meet the fault.
    assert!(
        eventually(Duration::from_secs(5), || c
            .message(ALICE, &first)
            .is_ok_and(|m| m.categories == ["Tracked"]))
        .await
    );

    // The server is busy: the caller hears of the fallback, and the next sync tracks the mail.
    drag(&c, ALICE, "while throttled", "Inbox/A");
    c.add_fault(fault(
        Some(ALICE),
        None,
        FaultKind::ServerBusyFault { back_off_ms: 3000 },
        Some(1),
    ));
    match supervisor.sync_now(ALICE).await {
        SyncNow::Fallback { reason, next_sync } => {
            assert!(reason.contains("ErrorServerBusy"), "{reason}");
            assert!(next_sync.is_some());
        }
        other => panic!("{other:?}"),
    }
    let asked = Instant::now();
    match supervisor.sync_now(ALICE).await {
        SyncNow::Fallback { reason, .. } => assert!(reason.contains("pause"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "told at once, not after the pause"
    );
    assert!(eventually(Duration::from_secs(8), || agent.delivered().len() == 2).await);
    assert_eq!(
        supervisor.sync_now("nobody@example.com").await,
        SyncNow::UnknownMailbox
    );
    stop_all(&supervisor, stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r39_syncs_requested_during_a_sync_run_as_one_follow_up() {
    let agent = agent().await;
    let c = agent.sim();
    let (supervisor, stop) = agent.supervise(SLOW, quick_health(1, 10, 60));
    synced_once(&supervisor).await;
    c.reset_calls();
    c.add_fault(fault(
        Some(ALICE),
        Some("SyncFolderItems"),
        FaultKind::Delay { ms: 800 },
        Some(1),
    ));
    let first = {
        let s = supervisor.clone();
        tokio::spawn(async move { s.sync_now(ALICE).await })
    };
    // The requests below must arrive while that sync runs (it takes at least 800 ms).
    assert!(eventually(Duration::from_secs(2), || supervisor.status()[0].syncing).await);
    let during: Vec<_> = (0..3)
        .map(|_| {
            let s = supervisor.clone();
            tokio::spawn(async move { s.sync_now(ALICE).await })
        })
        .collect();
    assert!(matches!(first.await.unwrap(), SyncNow::Done { .. }));
    for d in during {
        assert!(matches!(d.await.unwrap(), SyncNow::Done { .. }));
    }
    let syncs = c
        .calls()
        .iter()
        .filter(|call| {
            call.operation == "SyncFolderItems" && call.impersonated.as_deref() == Some(ALICE)
        })
        .count();
    assert_eq!(syncs, 2, "the sync in progress and exactly one follow-up");
    stop_all(&supervisor, stop).await;
}

fn rfc3339(at: &str) -> jiff::Timestamp {
    at.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r29_a_busy_server_gets_no_call_for_its_back_off_and_concurrency_stays_under_the_cap() {
    let agent = agent().await;
    let c = agent.sim();
    c.add_fault(fault(
        Some(BOB),
        Some("SyncFolderItems"),
        FaultKind::ServerBusyFault { back_off_ms: 5000 },
        Some(1),
    ));
    let (supervisor, stop) = agent.supervise((1, 1, 1), quick_health(1, 10, 60));
    assert!(
        eventually(Duration::from_secs(12), || {
            supervisor.status().iter().all(|s| s.syncs >= 3)
        })
        .await
    );
    stop_all(&supervisor, stop).await;
    let calls = c.calls();
    let busy = calls
        .iter()
        .position(|call| call.result.contains("ErrorServerBusy"))
        .expect("the fault fired");
    let at = rfc3339(&calls[busy].at);
    // Calls already on the wire when the answer came back arrive within moments; after that,
    // nothing until the back-off is over.
    let in_flight = jiff::SignedDuration::from_millis(200);
    let back_off = jiff::SignedDuration::from_millis(4_950);
    // Impersonated, the busy budget is BOB's: his calls wait, ALICE's go on.
    let gaps: Vec<_> = calls[busy + 1..]
        .iter()
        .filter(|call| call.impersonated.as_deref() == Some(BOB))
        .map(|call| rfc3339(&call.at).duration_since(at))
        .collect();
    assert!(
        gaps.iter().all(|g| *g < in_flight || *g >= back_off),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().any(|g| *g >= back_off),
        "calls resumed after the back-off"
    );
    assert!(
        calls[busy + 1..].iter().any(|call| {
            call.impersonated.as_deref() == Some(ALICE)
                && rfc3339(&call.at).duration_since(at) < back_off
        }),
        "ALICE was not held by BOB's back-off"
    );
    let peak = c.stats().per_account[SVC].peak;
    assert!(
        peak <= agent.config.limits.max_concurrent_calls,
        "peak {peak}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r31_denied_access_disables_at_once_others_go_on_and_it_resumes_by_itself() {
    let agent = agent().await;
    let c = agent.sim();
    c.impersonate_all(SVC, false).unwrap();
    c.grant_impersonation(SVC, ALICE).unwrap();
    c.grant_impersonation(SVC, BOB).unwrap();
    let (supervisor, stop) = agent.supervise((1, 1, 1), quick_health(1, 10, 2));
    synced_once(&supervisor).await;
    c.revoke_impersonation(SVC, BOB).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || {
            matches!(supervisor.status()[1].health, Health::Disabled { .. })
        })
        .await
    );
    assert_eq!(
        supervisor.status()[1].failed_syncs,
        1,
        "disabled at the first failure"
    );
    match &supervisor.status()[1].health {
        Health::Disabled { error, fix } => {
            assert!(error.contains("ErrorImpersonateUserDenied"), "{error}");
            assert!(fix.contains("ApplicationImpersonation"), "{fix}");
        }
        other => panic!("{other:?}"),
    }
    // Bob's mail filed during the outage waits; Alice keeps her cadence and is tracked.
    drag(&c, BOB, "during the outage", "Inbox/B");
    drag(&c, ALICE, "meanwhile", "Inbox/A");
    assert!(eventually(Duration::from_secs(4), || agent.outbox_len() == 1).await);
    // Track-now on the disabled mailbox is told why.
    assert!(
        matches!(supervisor.sync_now(BOB).await, SyncNow::Fallback { reason, .. } if reason.contains("disabled"))
    );
    // The admin fixes it; the mailbox comes back by itself at the next probe, losing nothing.
    c.grant_impersonation(SVC, BOB).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || supervisor.status()[1].health
            == Health::Healthy)
        .await
    );
    assert!(
        eventually(Duration::from_secs(3), || agent
            .outbox_mailboxes()
            .contains(&BOB.to_owned()))
        .await
    );
    stop_all(&supervisor, stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r31_refused_credentials_disable_every_mailbox_until_they_are_restored() {
    let agent = agent().await;
    let c = agent.sim();
    c.set_password(SVC, "rotated-elsewhere").unwrap();
    let (supervisor, stop) = agent.supervise((1, 1, 1), quick_health(1, 10, 2));
    assert!(
        eventually(Duration::from_secs(5), || {
            supervisor.status().iter().all(
                |s| matches!(&s.health, Health::Disabled { error, .. } if error.contains("401")),
            )
        })
        .await
    );
    c.set_password(SVC, SVC_PW).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || {
            supervisor
                .status()
                .iter()
                .all(|s| s.health == Health::Healthy)
        })
        .await
    );
    stop_all(&supervisor, stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r29_a_mailbox_failing_transiently_is_parked_and_recovers_while_others_keep_going() {
    let agent = agent().await;
    let c = agent.sim();
    c.add_fault(fault(
        Some(BOB),
        None,
        FaultKind::Http503 {
            retry_after_secs: 0,
        },
        None,
    ));
    let (supervisor, stop) = agent.supervise((1, 1, 1), quick_health(1, 3, 2));
    assert!(
        eventually(Duration::from_secs(8), || {
            matches!(supervisor.status()[1].health, Health::Parked { .. })
        })
        .await
    );
    // While Bob stays parked, Alice keeps her cadence.
    assert!(
        eventually(Duration::from_secs(5), || {
            let status = supervisor.status();
            status[0].health == Health::Healthy
                && status[0].syncs >= 3
                && matches!(status[1].health, Health::Parked { .. })
        })
        .await,
        "alice kept her cadence: {:?}",
        supervisor.status()
    );
    c.clear_faults();
    assert!(
        eventually(Duration::from_secs(5), || supervisor.status()[1].health
            == Health::Healthy)
        .await
    );
    stop_all(&supervisor, stop).await;
}
