//! The simulator must never be what an end-to-end benchmark measures: SyncFolderItems on an
//! unchanged folder, through the real client over loopback HTTP, and the simulator's resident
//! memory holding 10,000 mailboxes × 5 folders × 100 messages.
//!
//! `cargo bench --bench sim` (set `FOLDERTRACK_BENCH_MAILBOXES` to hold fewer mailboxes).

use criterion::{Criterion, criterion_group, criterion_main};
use foldertrack::client::auth::Auth;
use foldertrack::client::throttle::Limits;
use foldertrack::client::{ClientSettings, EwsClient};
use foldertrack::ews::sync_folder_items::SyncFolderItems;
use foldertrack::ews::{FolderId, Mailbox};
use foldertrack::sim::message::NewMessage;
use foldertrack::sim::{SimOptions, Simulator};
use std::num::NonZeroU32;
use std::time::Duration;

const FOLDERS: usize = 5;
const MESSAGES: usize = 100;

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn bench(c: &mut Criterion) {
    let mailboxes: usize = std::env::var("FOLDERTRACK_BENCH_MAILBOXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(Simulator::start(SimOptions::default()))
        .unwrap();
    let control = sim.control();
    control.create_service_account("svc", "pw").unwrap();
    control.impersonate_all("svc", true).unwrap();
    let before = resident_mib();
    for m in 0..mailboxes {
        let address = format!("user{m}@example.com");
        control.create_mailbox(&address).unwrap();
        for f in 0..FOLDERS {
            let path = format!("Inbox/Customers/Account{f}");
            control.create_folder(&address, &path).unwrap();
            for i in 0..MESSAGES {
                let message = NewMessage {
                    subject: format!("Quote {i} for account {f}"),
                    from: "Buyer <buyer@contoso.com>".into(),
                    to: vec![address.clone()],
                    ..NewMessage::default()
                };
                control.deliver(&address, &path, &message).unwrap();
            }
        }
    }
    let held = resident_mib() - before;
    println!(
        "simulator holds {mailboxes} mailboxes x {FOLDERS} folders x {MESSAGES} messages in {held:.0} MiB resident"
    );

    let url = sim.ews_url().parse().unwrap();
    let mut settings = ClientSettings::new(
        url,
        Auth::Basic {
            username: "svc".into(),
            password: "pw".to_owned().into(),
        },
    );
    settings.limits = Limits {
        account_concurrency: 1,
        account_per_second: NonZeroU32::MAX,
        mailbox_per_second: NonZeroU32::MAX,
        jitter: Duration::ZERO,
        mailbox_window: None,
    };
    let client = EwsClient::new(settings).unwrap();
    let mailbox = Mailbox::from("user0@example.com");
    let folder = FolderId(
        control
            .folder_id("user0@example.com", "Inbox/Customers/Account0")
            .unwrap(),
    );
    // The first sync lists everything; its state is then "unchanged" for every later call.
    let first = rt
        .block_on(client.send(
            &mailbox,
            &SyncFolderItems::page(folder.clone().into(), None, 512),
        ))
        .unwrap();
    let state = first.messages[0].as_ref().unwrap().sync_state.clone();
    let op = SyncFolderItems::page(folder.into(), state, 512);
    c.bench_function("sync_folder_items_unchanged_folder_round_trip", |b| {
        b.iter(|| {
            let r = rt.block_on(client.send(&mailbox, &op)).unwrap();
            assert!(r.messages[0].as_ref().unwrap().changes.is_empty());
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
