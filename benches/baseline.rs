//! What a baseline costs the store per mail (tracking-rules R10): a folder of
//! `FOLDERTRACK_BENCH_BASELINE` (default 100,000) mails is baselined in 512-item pages through a
//! real sled store, once remembering only the items (as before `explain`) and once also their
//! Message-IDs (the baseline tree `explain` reads). Reports live bytes (keys + values) and bytes
//! on disk per mail, before and after `foldertrack compact`. Sizes do not depend on the build
//! profile: `cargo bench --bench baseline --profile dev` gives the same figures. Last, the live
//! bytes of a tracked mail's message record, which now keeps its Message-ID and subject too.
//!
//! `cargo bench --bench baseline`

use foldertrack::store::{PageCommit, SledStore, Store, Tree};
use jiff::Timestamp;
use std::time::Instant;

#[path = "support/mod.rs"]
mod support;

use foldertrack::feed::ItemRef;
use support::{fetched, folder_record, item_id, page};

const PAGE: u64 = 512;

/// Baselines `mails` into a fresh store at `path`, remembering Message-IDs when `ids`.
fn baseline(path: &std::path::Path, mails: u64, ids: bool) -> (u64, u64, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = SledStore::open(path).unwrap();
    let mut folder = folder_record(0);
    folder.baselined = false;
    for first in (0..mails).step_by(PAGE as usize) {
        let range = first..(first + PAGE).min(mails);
        let page = PageCommit {
            folder: folder.clone(),
            seen: range.clone().map(item_id).collect(),
            baselined: match ids {
                true => range
                    .map(|n| format!("<{n}.CAKx3bQ@mail.contoso.com>"))
                    .collect(),
                false => Vec::new(),
            },
            arrived: Vec::new(),
            left: Vec::new(),
            mapping: None,
            unreadable: Vec::new(),
            gone: Vec::new(),
            at: Timestamp::now(),
        };
        rt.block_on(store.commit_page(page)).unwrap();
    }
    let live = |tree| {
        let entries = store.scan(tree, &[], usize::MAX).unwrap();
        entries
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>()
    };
    let live = live(Tree::Seen) + live(Tree::Baseline);
    drop(store);
    let (on_disk, compacted) = SledStore::compact(path).unwrap();
    (live, on_disk, compacted)
}

/// Live bytes (key + value) per message record after tracking 1,024 mails of the benchmarks'
/// fixture.
fn message_record_bytes(path: &std::path::Path) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = SledStore::open(path).unwrap();
    for first in [0, PAGE] {
        let arrived = (first..first + PAGE)
            .map(|n| fetched(&ItemRef::new(item_id(n), Some(format!("CQAAABYA{n}"))), n))
            .collect();
        let page = page(first, arrived);
        rt.block_on(store.commit_page(page)).unwrap();
    }
    let records = store.scan(Tree::Messages, &[], usize::MAX).unwrap();
    let bytes: usize = records.iter().map(|(k, v)| k.len() + v.len()).sum();
    bytes as f64 / records.len() as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mails: u64 = std::env::var("FOLDERTRACK_BENCH_BASELINE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    println!("{mails} baselined mails in one folder, pages of {PAGE}");
    println!("| remembered | live B/mail | on disk B/mail | after compact B/mail | seconds |");
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (name, ids) in [("items only", false), ("items + Message-IDs", true)] {
        let started = Instant::now();
        let (live, disk, compact) = baseline(&dir.path().join(name), mails, ids);
        let per = |b: u64| b as f64 / mails as f64;
        println!(
            "| {name} | {:.1} | {:.0} | {:.0} | {:.1} |",
            per(live),
            per(disk),
            per(compact),
            started.elapsed().as_secs_f64()
        );
        rows.push((per(live), per(compact)));
    }
    println!(
        "the Message-ID trace costs {:.1} live B and {:.0} B on disk after compact per mail",
        rows[1].0 - rows[0].0,
        rows[1].1 - rows[0].1
    );
    println!(
        "a tracked mail's message record: {:.0} live B",
        message_record_bytes(&dir.path().join("tracked"))
    );
}
