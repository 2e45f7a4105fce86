//! The EWS client against the simulator: real HTTP, authentication, impersonation headers, and
//! every throttling signal mapped to the wait the server asked for.

use foldertrack::client::auth::Auth;
use foldertrack::client::retry::Action;
use foldertrack::client::throttle::Limits;
use foldertrack::client::{ClientSettings, EwsClient};
use foldertrack::ews::folder::FolderShape;
use foldertrack::ews::get_folder::GetFolder;
use foldertrack::ews::{DistinguishedFolder, Mailbox, ResponseCode};
use foldertrack::sim::faults::{FaultKind, FaultRule};
use foldertrack::sim::{SimHandle, SimOptions, Simulator};
use std::num::NonZeroU32;
use std::time::Duration;

const ALICE: &str = "alice@example.com";

async fn sim() -> SimHandle {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let c = sim.control();
    c.create_service_account("svc", "right").unwrap();
    c.create_mailbox(ALICE).unwrap();
    c.create_mailbox("bob@example.com").unwrap();
    c.grant_impersonation("svc", ALICE).unwrap();
    sim
}

fn client(sim: &SimHandle, password: &str) -> EwsClient {
    let mut settings = ClientSettings::new(
        sim.ews_url().parse().unwrap(),
        Auth::Basic {
            username: "svc".into(),
            password: password.to_owned().into(),
        },
    );
    settings.limits = Limits {
        account_concurrency: 2,
        account_per_second: NonZeroU32::new(1000).unwrap(),
        mailbox_per_second: NonZeroU32::new(1000).unwrap(),
        jitter: Duration::ZERO,
        mailbox_window: None,
    };
    EwsClient::new(settings).unwrap()
}

fn inbox() -> GetFolder {
    GetFolder {
        shape: FolderShape::for_resolution(),
        folders: vec![DistinguishedFolder::Inbox.into()],
    }
}

fn fault(kind: FaultKind) -> FaultRule {
    FaultRule {
        mailbox: None,
        operation: Some("GetFolder".into()),
        fault: kind,
        count: Some(1),
        probability: None,
    }
}

#[tokio::test]
async fn calls_carry_impersonation_and_the_anchor_mailbox() {
    let sim = sim().await;
    let r = client(&sim, "right")
        .send(&Mailbox::from(ALICE), &inbox())
        .await
        .unwrap();
    let inbox = &r.messages[0].as_ref().unwrap().folders[0];
    assert_eq!(inbox.display_name.as_deref(), Some("Inbox"));
    let call = sim.control().calls().pop().unwrap();
    assert_eq!(call.account.as_deref(), Some("svc"));
    assert_eq!(call.impersonated.as_deref(), Some(ALICE));
    assert_eq!(call.anchor_mailbox.as_deref(), Some(ALICE));
}

#[tokio::test]
async fn refused_credentials_and_impersonation_disable_the_mailbox() {
    let sim = sim().await;
    let wrong = client(&sim, "wrong")
        .send(&Mailbox::from(ALICE), &inbox())
        .await
        .unwrap_err();
    assert_eq!(wrong.action(), Action::DisableMailbox, "{wrong}");
    let denied = client(&sim, "right")
        .send(&Mailbox::from("bob@example.com"), &inbox())
        .await
        .unwrap_err();
    assert_eq!(denied.action(), Action::DisableMailbox, "{denied}");
    assert!(
        denied.to_string().contains("ErrorImpersonateUserDenied"),
        "{denied}"
    );
}

#[tokio::test]
async fn every_throttling_signal_becomes_the_wait_the_server_asked_for() {
    let sim = sim().await;
    let alice = Mailbox::from(ALICE);
    let cases = [
        (
            FaultKind::ServerBusyFault { back_off_ms: 5000 },
            Duration::from_secs(5),
        ),
        (
            FaultKind::Http503 {
                retry_after_secs: 7,
            },
            Duration::from_secs(7),
        ),
        (
            FaultKind::Http429 {
                retry_after_secs: 3,
            },
            Duration::from_secs(3),
        ),
    ];
    for (kind, wait) in cases {
        // A fresh client each time: the gate of the last one is now closed for `wait`.
        sim.control().add_fault(fault(kind.clone()));
        let err = client(&sim, "right")
            .send(&alice, &inbox())
            .await
            .unwrap_err();
        assert_eq!(err.action(), Action::RetryAfter(wait), "{kind:?}: {err}");
    }
    // In an HTTP 200 answer the busy signal is a per-message error carrying its back-off.
    sim.control()
        .add_fault(fault(FaultKind::ServerBusyMessage { back_off_ms: 5000 }));
    let r = client(&sim, "right").send(&alice, &inbox()).await.unwrap();
    let busy = r.messages[0].as_ref().unwrap_err();
    assert_eq!(busy.code, ResponseCode::ErrorServerBusy);
    assert_eq!(busy.back_off(), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn after_a_busy_fault_no_call_reaches_the_server_until_the_back_off_has_passed() {
    let sim = sim().await;
    let client = client(&sim, "right");
    let alice = Mailbox::from(ALICE);
    sim.control()
        .add_fault(fault(FaultKind::ServerBusyFault { back_off_ms: 400 }));
    let started = std::time::Instant::now();
    client.send(&alice, &inbox()).await.unwrap_err();
    client.send(&alice, &inbox()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        sim.control().calls().len(),
        2,
        "the gate must hold the retry, not the server"
    );
}
