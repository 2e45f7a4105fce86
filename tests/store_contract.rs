//! One contract, every store: SledStore on disk and MemStore in memory behave the same.

use foldertrack::store::{
    self, Arrival, Cause, DeadEntry, Failed, FolderRecord, HoldRecord, MarkKind, MarkOutcome,
    MemStore, PageCommit, SinkOutage, SledStore, Store, Tree, Whereabouts,
};
use foldertrack::tracking::{EventKind, Identity, MessageInfo, Place, Regarding, Sighting};
use jiff::Timestamp;

fn folder(mailbox: &str, cursor: &str) -> FolderRecord {
    FolderRecord {
        mailbox: mailbox.into(),
        folder_id: "F1".into(),
        path: "Inbox/Customers".into(),
        mapping: "Inbox/Customers".into(),
        cursor: Some(cursor.into()),
        baselined: true,
        since: None,
    }
}

fn arrival(imid: &str, item: &str, mailbox: &str, regarding: &str) -> Arrival {
    Arrival {
        identity: Identity::MessageId(imid.into()),
        message: MessageInfo {
            internet_message_id: Some(imid.into()),
            item_id: item.into(),
            subject: Some("s".into()),
            ..MessageInfo::default()
        },
        sighting: Sighting {
            place: Place {
                mailbox: mailbox.into(),
                folder_id: "F1".into(),
                path: "Inbox/Customers".into(),
            },
            mapping: "Inbox/Customers".into(),
            regarding: Some(Regarding {
                entity: "account".into(),
                id: regarding.into(),
            }),
            at: Timestamp::now(),
        },
        cause: Cause::Appeared,
    }
}

/// A page of a's folder F1.
fn page(cursor: &str, arrived: Vec<Arrival>) -> PageCommit {
    page_of("a@example.com", cursor, arrived)
}

fn page_of(mailbox: &str, cursor: &str, arrived: Vec<Arrival>) -> PageCommit {
    PageCommit {
        folder: folder(mailbox, cursor),
        seen: vec!["baseline-item".into()],
        baselined: vec!["<baseline@example.com>".into()],
        arrived,
        left: Vec::new(),
        mapping: None,
        unreadable: Vec::new(),
        gone: Vec::new(),
        at: Timestamp::now(),
    }
}

async fn contract<S: Store>(store: S) {
    // One page: cursor, seen and outbox together.
    let c = store
        .commit_page(page(
            "c1",
            vec![
                arrival("<m1@x>", "I1", "a@example.com", "r1"),
                arrival("<m2@x>", "I2", "a@example.com", "r1"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(c.emitted.len(), 2);
    assert_eq!(
        store
            .folder("a@example.com", "F1")
            .unwrap()
            .unwrap()
            .cursor
            .as_deref(),
        Some("c1")
    );
    assert!(
        store
            .seen("a@example.com", "F1", "baseline-item")
            .unwrap()
            .is_some()
    );
    // The baseline's mail is remembered by Message-ID in its folder only, with the time the
    // folder's tracking started (R10).
    assert!(
        store
            .baselined("a@example.com", "F1", "<baseline@example.com>")
            .unwrap()
    );
    assert!(
        !store
            .baselined("a@example.com", "F2", "<baseline@example.com>")
            .unwrap()
    );
    assert_eq!(store.baselined_in("a@example.com", "F1").unwrap(), 1);
    let started = store.folder("a@example.com", "F1").unwrap().unwrap().since;
    assert!(started.is_some());
    let outbox = store.outbox(10).unwrap();
    assert_eq!(outbox.len(), 2);
    assert!(outbox[0].0 < outbox[1].0, "oldest first");
    assert_eq!(outbox[0].1.request.event, EventKind::MovedIn);

    // The same page again (a crash after commit, before the next call): nothing new.
    let again = store
        .commit_page(page(
            "c1",
            vec![arrival("<m1@x>", "I1", "a@example.com", "r1")],
        ))
        .await
        .unwrap();
    assert!(again.emitted.is_empty());
    assert_eq!(store.outbox(10).unwrap().len(), 2);
    let kept = store.folder("a@example.com", "F1").unwrap().unwrap().since;
    assert_eq!(kept, started, "a later page keeps when tracking started");

    // Another mailbox files m1: a sighting, not a second record.
    let other = store
        .commit_page(page_of(
            "b@example.com",
            "b1",
            vec![arrival("<m1@x>", "J1", "b@example.com", "r1")],
        ))
        .await
        .unwrap();
    assert!(other.emitted.is_empty());
    let id = Identity::MessageId("<m1@x>".into()).request_id();
    assert_eq!(store.message(&id).unwrap().unwrap().sightings.len(), 1);

    // Delivery removes exactly the delivered entry and queues its write-back; sequence
    // numbers keep growing.
    store.delivered(&[outbox[0].0], true).await.unwrap();
    let marks = store.marks(10).unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].0, outbox[0].1.request.id);
    assert_eq!(
        (marks[0].1.item_id.as_str(), marks[0].1.kind),
        ("I1", MarkKind::Tracked)
    );
    let left = store.outbox(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, outbox[1].0);
    let next = store
        .commit_page(page(
            "c3",
            vec![arrival("<m3@x>", "I3", "a@example.com", "r1")],
        ))
        .await
        .unwrap();
    assert_eq!(next.emitted.len(), 1);
    assert!(store.outbox(10).unwrap()[1].0 > outbox[1].0);

    // A failed attempt waits for its time; others stay due (R33).
    let (seq, mut entry) = store.outbox(1).unwrap().remove(0);
    entry.attempts = 1;
    entry.next_try = Some(Timestamp::now() + jiff::SignedDuration::from_secs(60));
    store.retry_later(&[(seq, entry.clone())]).await.unwrap();
    let due: Vec<u64> = store
        .due(Timestamp::now(), 10)
        .unwrap()
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert!(!due.contains(&seq) && due.len() == 1, "{due:?}");
    let later = Timestamp::now() + jiff::SignedDuration::from_secs(61);
    assert_eq!(store.due(later, 10).unwrap().len(), 2);

    // Given up: out of the outbox into the dead tree, a failed mark, a history line; retry
    // puts it back with a fresh count.
    let dead = DeadEntry {
        request: entry.request.clone(),
        state: Failed::Undeliverable,
        reason: "HTTP 503".into(),
        attempts: 5,
        at: Timestamp::now(),
    };
    store.dead_letter(seq, dead, true).await.unwrap();
    assert_eq!(store.dead(10).unwrap().len(), 1);
    assert_eq!(store.outbox(10).unwrap().len(), 1);
    let mark = store
        .marks(10)
        .unwrap()
        .into_iter()
        .find(|(id, _)| *id == entry.request.id)
        .unwrap();
    assert_eq!(mark.1.kind, MarkKind::Failed);
    let record = store.message(&entry.request.id).unwrap().unwrap();
    assert!(
        record
            .history
            .last()
            .unwrap()
            .what
            .contains("undeliverable"),
        "{:?}",
        record.history
    );
    assert_eq!(store.requeue(&[seq]).await.unwrap().requeued, 1);
    let back = store.outbox(10).unwrap();
    assert_eq!(back.len(), 2);
    assert!(
        back.iter()
            .any(|(s, e)| *s == seq && e.attempts == 0 && e.next_try.is_none())
    );
    assert!(store.dead(10).unwrap().is_empty());

    // A mark kept for another try waits for its time; one given up leaves with a note.
    let (id, tried) = store.marks(1).unwrap().remove(0);
    let mut later = tried.clone();
    later.attempts = 1;
    later.next_try = Some(Timestamp::now() + jiff::SignedDuration::from_secs(60));
    let outcome = MarkOutcome::Later(later.clone());
    store
        .marks_written(&[(id.clone(), tried.clone(), outcome)])
        .await
        .unwrap();
    assert_eq!(store.marks(10).unwrap().len(), 2);
    assert!(
        !store
            .marks_due(Timestamp::now())
            .unwrap()
            .iter()
            .any(|(i, _)| *i == id)
    );
    // An outcome for a mark replaced meanwhile leaves the newer mark alone.
    let gone = MarkOutcome::GivenUp("given up".into());
    store
        .marks_written(&[(id.clone(), tried, gone.clone())])
        .await
        .unwrap();
    assert_eq!(store.marks(10).unwrap().len(), 2);
    store
        .marks_written(&[(id.clone(), later, gone)])
        .await
        .unwrap();
    assert_eq!(store.marks(10).unwrap().len(), 1);
    let record = store.message(&id).unwrap().unwrap();
    assert_eq!(record.history.last().unwrap().what, "given up");

    // A reset cursor keeps the seen items (R23).
    store.reset_cursor("a@example.com", "F1").await.unwrap();
    assert_eq!(
        store.folder("a@example.com", "F1").unwrap().unwrap().cursor,
        None
    );
    assert!(store.seen("a@example.com", "F1", "I1").unwrap().is_some());

    // Tracked items are known by their ItemIds; baseline items are seen but untracked.
    for item in ["I1", "I2", "I3"] {
        let seen = store.seen("a@example.com", "F1", item).unwrap().unwrap();
        assert!(seen.message.is_some(), "{item}");
    }
    let baseline = store
        .seen("a@example.com", "F1", "baseline-item")
        .unwrap()
        .unwrap();
    assert_eq!(baseline.message, None);
    assert_eq!(
        store.seen("a@example.com", "F1", "J1").unwrap(),
        None,
        "J1 is b's"
    );

    // An aborted transaction writes nothing.
    let failed = store.transaction(|tx| {
        tx.put(Tree::Outbox, b"half", vec![1])?;
        Err::<(), _>(store::TxError::Abort(store::Error::Storage("stop".into())))
    });
    assert!(failed.is_err());
    assert_eq!(store.outbox(10).unwrap().len(), 2);

    pending_contract(&store).await;
}

/// Unreadable items are kept per folder with their latest error and count, and leave when
/// they are read, leave the folder, or are gone (R33).
async fn pending_contract<S: Store>(store: &S) {
    let unreadable = |id: &str, error: &str| store::Unreadable {
        item_id: id.into(),
        error: error.into(),
        repointed: false,
    };
    let mut p = page("c9", Vec::new());
    p.unreadable = vec![unreadable("P1", "ErrorCorruptData"), unreadable("P2", "x")];
    store.commit_page(p.clone()).await.unwrap();
    p.unreadable = vec![unreadable("P1", "ErrorInternalServerError")];
    store.commit_page(p).await.unwrap();
    let pending = store.pending_in("a@example.com", "F1").unwrap();
    assert_eq!(pending.len(), 2);
    let p1 = pending.iter().find(|p| p.item_id == "P1").unwrap();
    assert_eq!(
        (p1.attempts, p1.error.as_str()),
        (2, "ErrorInternalServerError")
    );
    assert!(p1.first_at <= p1.last_at);
    assert!(store.pending_in("a@example.com", "F2").unwrap().is_empty());
    assert_eq!(store.pending(10).unwrap().len(), 2);
    assert_eq!(store.stats().unwrap().pending, 2);
    // P1 is read now; P2 is gone from the folder.
    let mut p = page("c10", vec![arrival("<p1@x>", "P1", "a@example.com", "r1")]);
    p.gone = vec!["P2".into()];
    store.commit_page(p).await.unwrap();
    assert!(store.pending(10).unwrap().is_empty());
}

/// The delivery side: the order of a message's events (R21), superseded retries, where a
/// request stands, a write-back that follows its moved mail (R28), and the sink's outage.
async fn delivery_contract<S: Store>(store: S) {
    let first = store
        .commit_page(page(
            "c1",
            vec![arrival("<m1@x>", "I1", "a@example.com", "r1")],
        ))
        .await
        .unwrap();
    let moved_in = first.emitted[0].clone();
    // Moved to a folder with another regarding: a re-link of the same message.
    let relinked = store
        .commit_page(page(
            "c2",
            vec![arrival("<m1@x>", "I1b", "a@example.com", "r2")],
        ))
        .await
        .unwrap()
        .emitted
        .remove(0);
    assert_eq!(
        (relinked.id.as_str(), relinked.sequence),
        (moved_in.id.as_str(), 2)
    );
    let seqs: Vec<u64> = store.outbox(10).unwrap().iter().map(|(s, _)| *s).collect();
    // The re-link waits while the first event is in the outbox, even while that one waits for
    // a retry.
    let due = store.due(Timestamp::now(), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1.request.event_id, moved_in.event_id);
    let mut entry = due[0].1.clone();
    entry.attempts = 1;
    entry.next_try = Some(Timestamp::now() + jiff::SignedDuration::from_secs(60));
    store
        .retry_later(&[(seqs[0], entry.clone())])
        .await
        .unwrap();
    assert!(store.due(Timestamp::now(), 10).unwrap().is_empty());
    assert!(matches!(
        store.whereabouts(seqs[0]).unwrap(),
        Whereabouts::Outbox(_)
    ));

    // The first given up, the second delivered: a retry of the first sends nothing.
    let dead = DeadEntry {
        request: entry.request.clone(),
        state: Failed::Undeliverable,
        reason: "HTTP 404".into(),
        attempts: 5,
        at: Timestamp::now(),
    };
    store.dead_letter(seqs[0], dead, true).await.unwrap();
    assert!(matches!(
        store.whereabouts(seqs[0]).unwrap(),
        Whereabouts::Dead(_)
    ));
    assert_eq!(store.due(Timestamp::now(), 10).unwrap()[0].0, seqs[1]);
    store.delivered(&[seqs[1]], true).await.unwrap();
    assert_eq!(store.whereabouts(seqs[1]).unwrap(), Whereabouts::Delivered);
    let record = store.message(&moved_in.id).unwrap().unwrap();
    assert_eq!(record.delivered, 2);
    let done = store.requeue(&[seqs[0]]).await.unwrap();
    assert_eq!((done.requeued, done.superseded.clone()), (0, vec![seqs[0]]));
    assert!(store.outbox(10).unwrap().is_empty() && store.dead(10).unwrap().is_empty());

    // The mail moves on before its category is written; when it shows up in a mapped folder
    // the pending mark follows it and is due at once.
    let (id, mut mark) = store.marks(10).unwrap().remove(0);
    assert_eq!(mark.item_id, "I1b");
    mark.attempts = 2;
    mark.next_try = Some(Timestamp::now() + jiff::SignedDuration::from_secs(600));
    let tried = store.marks(10).unwrap().remove(0).1;
    store
        .marks_written(&[(id.clone(), tried, MarkOutcome::Later(mark))])
        .await
        .unwrap();
    assert!(store.marks_due(Timestamp::now()).unwrap().is_empty());
    store
        .commit_page(page(
            "c3",
            vec![arrival("<m1@x>", "I1c", "a@example.com", "r2")],
        ))
        .await
        .unwrap();
    let due = store.marks_due(Timestamp::now()).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].1.item_id.as_str(), due[0].1.attempts), ("I1c", 2));

    // The sink's outage is one durable record.
    assert_eq!(store.sink_outage().unwrap(), None);
    let outage = SinkOutage {
        since: Timestamp::now(),
        reason: "webhook answered HTTP 503".into(),
        probes: 3,
        next_probe: Timestamp::now(),
    };
    store.set_sink_outage(Some(outage.clone())).await.unwrap();
    assert_eq!(store.sink_outage().unwrap(), Some(outage));
    store.set_sink_outage(None).await.unwrap();
    assert_eq!(store.sink_outage().unwrap(), None);
}

#[tokio::test]
async fn sled_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(SledStore::open(&dir.path().join("store")).unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    delivery_contract(SledStore::open(&dir.path().join("store")).unwrap()).await;
}

#[tokio::test]
async fn mem_store_keeps_the_contract() {
    contract(MemStore::new()).await;
    delivery_contract(MemStore::new()).await;
}

/// R25: a held regarding keeps its entries (in its scope) out of the due set, without
/// touching them, until the hold is dropped.
async fn holds_contract<S: Store>(store: &S) {
    let c = store
        .commit_page(page_of(
            "a@example.com",
            "c1",
            vec![
                arrival("<h1@x>", "I1", "a@example.com", "gone"),
                arrival("<h2@x>", "I2", "a@example.com", "fine"),
                arrival("<h3@x>", "I3", "a@example.com", "GONE"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(c.emitted.len(), 3);
    let (seq, mut first) = store.outbox(1).unwrap().remove(0);
    first.last_error = Some("the regarding record is gone".into());
    let now = Timestamp::now();
    let hold = HoldRecord {
        regarding: Regarding {
            entity: "account".into(),
            id: "gone".into(),
        },
        mailbox: None,
        reason: "account(gone) does not exist".into(),
        since: now,
        next_probe: now,
    };
    store.hold(seq, first.clone(), hold.clone()).await.unwrap();
    // A second refusal keeps the first hold's time and probe, with the latest reason.
    let later = HoldRecord {
        reason: "still gone".into(),
        since: now.checked_add(std::time::Duration::from_secs(60)).unwrap(),
        ..hold.clone()
    };
    store.hold(seq, first.clone(), later).await.unwrap();
    let holds = store.holds().unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(
        (holds[0].since, holds[0].reason.as_str()),
        (now, "still gone")
    );

    let due: Vec<String> = store
        .due(Timestamp::now(), 10)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.request.message.internet_message_id.unwrap())
        .collect();
    assert_eq!(due, ["<h2@x>"], "ids compare without case");
    let held = store.held(&holds[0], 10).unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].1, first, "no attempt counted");
    // Another mailbox's hold does not stop a's entries.
    let elsewhere = HoldRecord {
        mailbox: Some("b@example.com".into()),
        regarding: Regarding {
            entity: "account".into(),
            id: "fine".into(),
        },
        ..hold.clone()
    };
    store.update_hold(&elsewhere, true).await.unwrap();
    assert_eq!(store.due(Timestamp::now(), 10).unwrap().len(), 1);
    store.update_hold(&elsewhere, false).await.unwrap();
    store.update_hold(&holds[0], false).await.unwrap();
    assert_eq!(store.due(Timestamp::now(), 10).unwrap().len(), 3);
    assert!(store.holds().unwrap().is_empty());
}

#[tokio::test]
async fn r25_holds_keep_their_entries_waiting_in_every_store_and_survive_reopening() {
    holds_contract(&MemStore::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    holds_contract(&SledStore::open(&path).unwrap()).await;
    let now = Timestamp::now();
    let hold = HoldRecord {
        regarding: Regarding {
            entity: "account".into(),
            id: "x".into(),
        },
        mailbox: Some("a@example.com".into()),
        reason: "why".into(),
        since: now,
        next_probe: now,
    };
    {
        let store = SledStore::open(&path).unwrap();
        store.update_hold(&hold, true).await.unwrap();
    }
    assert_eq!(SledStore::open(&path).unwrap().holds().unwrap(), [hold]);
}

#[tokio::test]
async fn r22_what_a_commit_returned_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = SledStore::open(&path).unwrap();
        store
            .commit_page(page(
                "c9",
                vec![arrival("<m1@x>", "I1", "a@example.com", "r1")],
            ))
            .await
            .unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(
        store
            .folder("a@example.com", "F1")
            .unwrap()
            .unwrap()
            .cursor
            .as_deref(),
        Some("c9")
    );
    assert_eq!(store.outbox(10).unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_written_by_a_newer_format_refuses_to_open_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = SledStore::open(&path).unwrap();
        store
            .transaction(|tx| tx.put(Tree::Meta, b"format", store::records::encode(&99u32)))
            .unwrap();
        store.flush().await.unwrap();
    }
    let error = SledStore::open(&path).err().expect("refused").to_string();
    assert!(error.contains("newer foldertrack"), "{error}");
    assert!(error.contains("format 99"), "{error}");
    assert!(!error.contains('\n'));
}

#[test]
fn a_store_that_cannot_be_opened_names_its_path_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-store");
    std::fs::write(&path, b"a plain file").unwrap();
    let error = SledStore::open(&path).err().expect("refused").to_string();
    assert!(error.contains("not-a-store"), "{error}");
    assert!(
        error.contains("restore the folder from a backup"),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_in_use_by_another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let _first = SledStore::open(&path).unwrap();
    // sled locks the store for its process; a second open in the same process also fails.
    let error = SledStore::open(&path).err().expect("refused").to_string();
    assert!(
        error.contains("in use by another process") && error.contains("stop it first"),
        "{error}"
    );
    assert!(!error.contains("WouldBlock"), "no raw OS error: {error}");
}

#[tokio::test]
async fn compacting_keeps_every_live_entry_and_gives_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = SledStore::open(&path).unwrap();
        commit_pages(&store, 0, 40).await;
        let all = outbox_seqs(&store);
        store.delivered(&all[..1000], false).await.unwrap();
    }
    let (before, after) = SledStore::compact(&path).unwrap();
    assert!(after < before, "{after} < {before}");
    let store = SledStore::open(&path).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.messages, stats.outbox), (2000, 1000));
    assert!(
        store
            .seen("a@example.com", "F1", "I39.49")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .folder("a@example.com", "F1")
            .unwrap()
            .unwrap()
            .cursor
            .as_deref(),
        Some("c39")
    );
    assert!(!dir.path().join("store.compacting").exists());
    assert!(!dir.path().join("store.retired").exists());
}

/// Many mailboxes committing, reading and flushing at once all finish. (The deadlock that made
/// the store keep transactions and flushes apart showed with `bench e2e --preset office`; this
/// load guard did not reproduce it on its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_reads_and_flushes_finish() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for m in 0..300u32 {
        let store = store.clone();
        tasks.spawn(async move {
            let mailbox = format!("m{m}@example.com");
            for n in 0..5u32 {
                let mut page = page_of(
                    &mailbox,
                    &format!("c{n}"),
                    vec![arrival(
                        &format!("<{m}.{n}@x>"),
                        &format!("I{m}.{n}"),
                        &mailbox,
                        "r1",
                    )],
                );
                page.folder.folder_id = format!("F{m}");
                page.arrived[0].sighting.place.folder_id = format!("F{m}");
                store.commit_page(page).await.unwrap();
                assert!(
                    store
                        .seen(&mailbox, &format!("F{m}"), &format!("I{m}.{n}"))
                        .unwrap()
                        .is_some()
                );
                let _ = store.outbox(5).unwrap();
            }
        });
    }
    let all = async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap()
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("no deadlock");
    assert_eq!(store.stats().unwrap().messages, 1500);
}

/// R41: history lines older than the kept days go, a chunk at a time; each record keeps its
/// latest line, and newer lines stay.
async fn history_contract<S: Store>(store: &S) {
    let long_ago = Timestamp::now() - jiff::SignedDuration::from_hours(24 * 100);
    let mut arrived: Vec<Arrival> = ["<h1@x>", "<h2@x>", "<h3@x>"]
        .iter()
        .enumerate()
        .map(|(i, imid)| arrival(imid, &format!("H{i}"), "a@example.com", "r1"))
        .collect();
    for a in &mut arrived {
        a.sighting.at = long_ago;
    }
    store.commit_page(page("h1", arrived)).await.unwrap();
    let id = |imid: &str| Identity::MessageId(imid.into()).request_id();
    store
        .note_history(&[(id("<h1@x>"), "delivered to the sink".into())])
        .await
        .unwrap();
    let history = |imid: &str| store.message(&id(imid)).unwrap().unwrap().history;
    assert_eq!(history("<h1@x>").len(), 2);

    let cutoff = Timestamp::now() - jiff::SignedDuration::from_hours(24 * 90);
    let (mut lines, mut start, mut chunks) = (0, Vec::new(), 0);
    loop {
        let (n, next) = store.prune_history(cutoff, &start, 2).await.unwrap();
        lines += n;
        chunks += 1;
        match next {
            Some(key) => start = key,
            None => break,
        }
    }
    assert!(chunks >= 2, "three records in chunks of two");
    assert_eq!(lines, 1, "only h1 had an old line beside a newer one");
    let h1 = history("<h1@x>");
    assert_eq!(h1.len(), 1);
    assert_eq!(h1[0].what, "delivered to the sink");
    assert_eq!(history("<h2@x>").len(), 1, "the latest line stays");
}

#[tokio::test]
async fn r41_history_older_than_the_kept_days_is_pruned_in_every_store() {
    let dir = tempfile::tempdir().unwrap();
    history_contract(&SledStore::open(&dir.path().join("store")).unwrap()).await;
    history_contract(&MemStore::new()).await;
}

#[tokio::test]
async fn the_subscriptions_held_are_remembered_across_reopening_and_forgotten_when_ended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = SledStore::open(&path).unwrap();
        store.note_subscription("a@x", "S1==", true).unwrap();
        store.note_subscription("a@x", "S2==", true).unwrap();
        store.note_subscription("b@x", "S3==", true).unwrap();
        store.note_subscription("a@x", "S1==", false).unwrap();
        store.flush().await.unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    let held = store.subscriptions().unwrap();
    let want = [("a@x", "S2=="), ("b@x", "S3==")].map(|(m, i)| (m.to_owned(), i.to_owned()));
    // Only these: the meta tree's other keys (the format, the outbox sequence) are not read.
    assert_eq!(held, want);
}

/// The sequence numbers of every entry in the outbox, oldest first.
fn outbox_seqs<S: Store>(store: &S) -> Vec<u64> {
    store
        .outbox(usize::MAX)
        .unwrap()
        .iter()
        .map(|(s, _)| *s)
        .collect()
}

/// Pages of 50 new mails each, numbered from `from`, in a's folder F1.
async fn commit_pages(store: &SledStore, from: u32, pages: u32) {
    for n in from..from + pages {
        store
            .commit_page(page(&format!("c{n}"), mails(n, 50)))
            .await
            .unwrap();
    }
}

/// Page `n`'s `count` new mails for a.
fn mails(n: u32, count: u32) -> Vec<Arrival> {
    (0..count)
        .map(|i| {
            arrival(
                &format!("<{n}.{i}@x>"),
                &format!("I{n}.{i}"),
                "a@example.com",
                "r1",
            )
        })
        .collect()
}

/// Every tree's entries, to compare a store before and after.
fn all_entries<S: Store>(store: &S) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    Tree::ALL
        .iter()
        .map(|t| store.scan(*t, &[], usize::MAX).unwrap())
        .collect()
}

/// The kept entry counts match what the trees hold.
fn assert_counts_true<S: Store>(store: &S) {
    for t in Tree::ALL {
        let held = store.scan(t, &[], usize::MAX).unwrap().len();
        assert_eq!(store.count(t).unwrap(), held, "{t:?}");
    }
}

/// Polls `done` until it holds, failing after `within`.
async fn wait_until(what: &str, within: std::time::Duration, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Reclaiming while the store is live gives back the space of delivered entries and keeps
/// everything else: the same entries, counts and high-water mark, in a store that reopens whole.
#[tokio::test]
async fn reclaiming_gives_back_the_space_of_delivered_entries_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStore::open(&path).unwrap();
    commit_pages(&store, 0, 40).await;
    let all = outbox_seqs(&store);
    store.delivered(&all[..1500], false).await.unwrap();
    let (entries, stats) = (all_entries(&store), store.stats().unwrap());
    let reclaimed = store.reclaim().unwrap().expect("reclaimed");
    assert_eq!(reclaimed.before, stats.bytes_on_disk);
    assert!(
        reclaimed.after < reclaimed.before / 2,
        "{reclaimed:?}: the store shrinks"
    );
    assert!(store.bytes_on_disk().unwrap() < reclaimed.before / 2);
    assert_eq!(all_entries(&store), entries);
    assert_eq!(store.stats().unwrap().outbox, 500);
    assert_counts_true(&store);
    assert!(!dir.path().join("store.compacting").exists());
    drop(store);
    // Reopening checks the high-water mark the deliveries left: it came along.
    assert!(path.join(store::HIGH_WATER).exists());
    let store = SledStore::open(&path).unwrap();
    assert_eq!(all_entries(&store), entries);
    assert_counts_true(&store);
    store
        .commit_page(page(
            "c99",
            vec![arrival("<late@x>", "Ilate", "a@example.com", "r1")],
        ))
        .await
        .unwrap();
    let last = store.outbox(usize::MAX).unwrap().last().unwrap().0;
    assert_eq!(last, 2001, "the outbox sequence goes on");
}

/// A reclaim while another task keeps committing pages loses nothing and duplicates nothing:
/// every commit lands once, before or after the swap, and the outbox sequence goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaim_while_pages_are_committed_loses_and_duplicates_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Arc::new(SledStore::open(&path).unwrap());
    commit_pages(&store, 0, 20).await;
    let first = outbox_seqs(store.as_ref());
    store.delivered(&first, false).await.unwrap();
    let (pages, stop) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let committer = {
        let (store, pages, stop) = (store.clone(), pages.clone(), stop.clone());
        tokio::spawn(async move {
            let mut emitted = 0;
            while !stop.load(Ordering::Relaxed) {
                let n = 100 + pages.load(Ordering::Relaxed);
                let committed = store
                    .commit_page(page(&format!("c{n}"), mails(n, 20)))
                    .await
                    .unwrap();
                emitted += committed.emitted.len();
                pages.fetch_add(1, Ordering::Relaxed);
            }
            emitted
        })
    };
    let within = std::time::Duration::from_secs(60);
    wait_until("commits before the reclaim", within, || {
        pages.load(Ordering::Relaxed) >= 5
    })
    .await;
    let reclaiming = store.clone();
    let reclaimed = tokio::task::spawn_blocking(move || reclaiming.reclaim())
        .await
        .unwrap()
        .unwrap()
        .expect("reclaimed");
    let after = pages.load(Ordering::Relaxed);
    wait_until("commits after the reclaim", within, || {
        pages.load(Ordering::Relaxed) >= after + 5
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let emitted = committer.await.unwrap();
    let pages = pages.load(Ordering::Relaxed) as usize;
    assert!(reclaimed.after < reclaimed.before, "{reclaimed:?}");
    assert_eq!(emitted, 20 * pages, "every page's arrivals became requests");
    // 1,000 delivered first; then every page's 20 requests, numbered on without a gap, once each.
    let outbox = store.outbox(usize::MAX).unwrap();
    let seqs: Vec<u64> = outbox.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1001..=1000 + emitted as u64).collect::<Vec<_>>());
    let ids: std::collections::HashSet<_> = outbox.iter().map(|(_, e)| &e.request.id).collect();
    assert_eq!(ids.len(), emitted, "no request twice");
    let stats = store.stats().unwrap();
    assert_eq!(stats.messages, 1000 + 20 * pages);
    assert_counts_true(store.as_ref());
    let entries = all_entries(store.as_ref());
    drop(store);
    let store = SledStore::open(&path).unwrap();
    assert_eq!(all_entries(&store), entries, "the reopened store is whole");
    assert_counts_true(&store);
}

/// The policy leaves a small store alone whatever its waste, and rewrites a wasteful one once:
/// right after, the store is as small as a copy gets.
#[tokio::test]
async fn the_reclaim_policy_skips_small_stores_and_does_not_repeat_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    commit_pages(&store, 0, 20).await;
    let all = outbox_seqs(&store);
    store.delivered(&all, false).await.unwrap();
    let default = store::ReclaimPolicy::default();
    assert_eq!(
        store.reclaim_space(&default).unwrap(),
        None,
        "under the floor"
    );
    let any_size = store::ReclaimPolicy {
        floor: 0,
        ..default
    };
    let reclaimed = store.reclaim_space(&any_size).unwrap().expect("wasteful");
    assert!(reclaimed.after < reclaimed.before, "{reclaimed:?}");
    assert_eq!(
        store.reclaim_space(&any_size).unwrap(),
        None,
        "just rewritten"
    );
}

/// A crash mid-reclaim leaves the copy (or, after the swap, the old store) beside the store:
/// the next open ignores it, opens the store at its path whole, and removes the leftover.
#[tokio::test]
async fn a_copy_left_beside_the_store_by_a_crash_is_ignored_and_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let leftover = dir.path().join("store.compacting");
    let store = SledStore::open(&path).unwrap();
    commit_pages(&store, 0, 2).await;
    let entries = all_entries(&store);
    drop(store);
    {
        // A half-written copy: a store with other entries.
        let copy = SledStore::open(&leftover).unwrap();
        commit_pages(&copy, 50, 1).await;
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(all_entries(&store), entries);
    assert!(!leftover.exists(), "the leftover is removed");
}

/// A run killed while sled wrote a snapshot leaves `snap.<lsn>.generating`; sled would read it
/// at open as the latest snapshot and refuse the store as corrupt. It opens whole instead.
#[tokio::test]
async fn a_snapshot_a_killed_run_left_unfinished_does_not_make_the_store_unopenable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStore::open(&path).unwrap();
    commit_pages(&store, 0, 2).await;
    let entries = all_entries(&store);
    drop(store);
    let unfinished = path.join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&unfinished, b"").unwrap();
    let store = SledStore::open(&path).expect("opens");
    assert_eq!(all_entries(&store), entries);
    assert!(!unfinished.exists());
}
