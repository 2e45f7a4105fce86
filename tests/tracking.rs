//! The acceptance scenarios of tracking-rules.md that concern mappings, classification and the
//! store, against the simulator through the real client, feed and sled store.

mod common;

use common::*;
use foldertrack::feed::{FolderFeed, ItemRef};
use foldertrack::sim::{FaultKind, FaultRule};
use foldertrack::store::{MappingState, Store};
use foldertrack::tracking::{Direction, EventKind, Identity};
use std::time::Duration;

const CUSTOMERS: &str = "Inbox/Customers/Contoso";

fn contoso() -> String {
    mailboxes(&[(ALICE, &[(CUSTOMERS, Some(CONTOSO), "")])])
}

/// The state the store holds for ALICE's mapping `name`.
fn mapping_state(agent: &Agent, name: &str) -> MappingState {
    agent.store.mapping(ALICE, name).unwrap().unwrap().state
}

/// A baselined mapping over Inbox/Customers/Contoso (regarding Contoso).
async fn baselined(api: Api) -> Agent {
    let agent = Agent::start_on(api, &contoso()).await;
    agent.sim().create_folder(ALICE, CUSTOMERS).unwrap();
    agent.pass().await;
    agent
}

/// An agent over a mapped folder that already holds `n` mails.
async fn with_old_mails(api: Api, config: &str, n: usize) -> Agent {
    let agent = Agent::start_on(api, config).await;
    let c = agent.sim();
    c.create_folder(ALICE, CUSTOMERS).unwrap();
    for i in 0..n {
        c.deliver(ALICE, CUSTOMERS, &mail(&format!("old {i}")))
            .unwrap();
    }
    agent
}

async fn s01_r10_the_first_sync_of_a_new_mapping_tracks_nothing(api: Api) {
    let agent = with_old_mails(api, &contoso(), 3).await;
    let summary = agent.pass().await;
    assert_eq!(summary.tracked, 0);
    assert!(agent.delivered().is_empty());
    assert_eq!(
        agent.store.stats().unwrap().seen,
        3,
        "the baseline is remembered"
    );
}

async fn s02_r10_track_existing_tracks_the_baseline(api: Api) {
    let config = mailboxes(&[(
        ALICE,
        &[(CUSTOMERS, Some(CONTOSO), "track_existing = true")],
    )]);
    let agent = with_old_mails(api, &config, 3).await;
    assert_eq!(agent.pass().await.tracked, 3);
    let lines = agent.delivered();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|r| r.event == EventKind::MovedIn));
}

async fn s03_r11_a_mail_dragged_in_is_one_moved_in_request_with_the_regarding(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "Quote for Contoso", CUSTOMERS);
    let summary = agent.pass().await;
    assert_eq!((summary.tracked, summary.delivered), (1, 1));
    let lines = agent.delivered();
    assert_eq!(lines.len(), 1);
    let r = &lines[0];
    assert_eq!(r.event, EventKind::MovedIn);
    assert_eq!(r.event_id, format!("{}.1", r.id));
    assert_eq!(r.mailbox, ALICE);
    assert_eq!(r.folder.path, CUSTOMERS);
    assert_eq!(r.regarding.as_ref().unwrap().id, CONTOSO);
    let view = c.message(ALICE, &item).unwrap();
    assert_eq!(r.message.item_id, agent.id_of(&view));
    assert_eq!(r.message.subject.as_deref(), Some("Quote for Contoso"));
    assert_eq!(
        r.message.from.as_ref().unwrap().address,
        "buyer@contoso.com"
    );
    assert_eq!(r.message.direction, Some(Direction::Incoming));
    assert_eq!(r.message.body, None, "R35: no body unless the mapping asks");
    let identity = Identity::of(ALICE, Some(&view.internet_message_id), None).unwrap();
    assert_eq!(
        r.id,
        identity.request_id(),
        "R21: the id derives from the message id"
    );
    assert_eq!(agent.outbox_len(), 0, "delivered entries leave the outbox");
    // Nothing more on the next pass.
    assert_eq!(agent.pass().await.tracked, 0);
}

async fn s04_r4_a_renamed_folder_stays_tracked_under_its_new_path(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    c.rename_folder(ALICE, CUSTOMERS, "Contoso Ltd").unwrap();
    drag(&c, ALICE, "after rename", "Inbox/Customers/Contoso Ltd");
    agent.pass().await;
    let lines = agent.delivered();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].folder.path, "Inbox/Customers/Contoso Ltd");
    let m = agent.store.mapping(ALICE, CUSTOMERS).unwrap().unwrap();
    assert_eq!(m.state, MappingState::Active);
    assert_eq!(m.path.as_deref(), Some("Inbox/Customers/Contoso Ltd"));
}

async fn s05_r5_a_folder_moved_out_of_the_inbox_pauses_its_mapping(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    c.create_folder(ALICE, "Archive").unwrap();
    c.move_folder(ALICE, CUSTOMERS, "Archive").unwrap();
    c.deliver(ALICE, "Archive/Contoso", &mail("while paused"))
        .unwrap();
    let summary = agent.pass().await;
    assert_eq!(summary.tracked, 0);
    let m = agent.store.mapping(ALICE, CUSTOMERS).unwrap().unwrap();
    assert_eq!(
        m.state,
        MappingState::Paused("folder_moved_outside_inbox".into())
    );
    assert!(
        summary
            .not_watched
            .iter()
            .any(|(_, s)| s.contains("folder_moved_outside_inbox"))
    );
}

async fn s06_r6_a_deleted_folder_orphans_its_mapping_and_a_namesake_is_not_tracked(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    drag(&c, ALICE, "tracked before", CUSTOMERS);
    agent.pass().await;
    c.delete_folder(ALICE, CUSTOMERS).unwrap();
    agent.pass().await;
    assert_eq!(mapping_state(&agent, CUSTOMERS), MappingState::Orphaned);
    c.create_folder(ALICE, CUSTOMERS).unwrap();
    drag(&c, ALICE, "into the namesake", CUSTOMERS);
    agent.pass().await;
    assert_eq!(
        agent.delivered().len(),
        1,
        "only the mail tracked before the deletion"
    );
    assert_eq!(mapping_state(&agent, CUSTOMERS), MappingState::Orphaned);
}

fn two_folders(b_regarding: Option<&str>) -> String {
    mailboxes(&[(
        ALICE,
        &[("Inbox/A", Some(CONTOSO), ""), ("Inbox/B", b_regarding, "")],
    )])
}

async fn tracked_in_a(api: Api, b_regarding: Option<&str>) -> (Agent, String) {
    let agent = Agent::start_on(api, &two_folders(b_regarding)).await;
    let c = agent.sim();
    c.create_folder(ALICE, "Inbox/A").unwrap();
    c.create_folder(ALICE, "Inbox/B").unwrap();
    agent.pass().await;
    let item = drag(&c, ALICE, "moving mail", "Inbox/A");
    agent.pass().await;
    assert_eq!(agent.delivered().len(), 1);
    (agent, item)
}

async fn s07_r12_a_move_to_a_mapped_folder_with_another_regarding_relinks(api: Api) {
    let (agent, item) = tracked_in_a(api, Some(FABRIKAM)).await;
    agent.sim().move_message(ALICE, &item, "Inbox/B").unwrap();
    agent.pass().await;
    let lines = agent.delivered();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].event, EventKind::Relinked);
    assert_eq!(lines[1].id, lines[0].id, "the same record");
    assert_eq!(lines[1].event_id, format!("{}.2", lines[0].id));
    assert_eq!(lines[1].regarding.as_ref().unwrap().id, FABRIKAM);
    assert_eq!(lines[1].folder.path, "Inbox/B");
}

async fn s08_r12_a_move_to_a_mapped_folder_without_regarding_keeps_the_record(api: Api) {
    let (agent, item) = tracked_in_a(api, None).await;
    agent.sim().move_message(ALICE, &item, "Inbox/B").unwrap();
    assert_eq!(agent.pass().await.tracked, 0);
    assert_eq!(agent.delivered().len(), 1);
    let record = agent
        .store
        .message(&agent.delivered()[0].id)
        .unwrap()
        .unwrap();
    assert_eq!(record.regarding.unwrap().id, CONTOSO);
    assert_eq!(record.location.unwrap().path, "Inbox/B");
}

async fn s09_r13_moving_out_or_deleting_sends_nothing_and_is_in_the_history(api: Api) {
    let (agent, item) = tracked_in_a(api, None).await;
    let c = agent.sim();
    let id = agent.delivered()[0].id.clone();
    let out = c.move_message(ALICE, &item, "Inbox").unwrap();
    agent.pass().await;
    let record = agent.store.message(&id).unwrap().unwrap();
    assert!(
        record
            .history
            .iter()
            .any(|h| h.what.contains("left Inbox/A"))
    );
    assert_eq!(record.location, None);
    // R14: moved back in with the same regarding: not a new record, no event.
    let back = c.move_message(ALICE, &out, "Inbox/A").unwrap();
    agent.pass().await;
    c.delete_message(ALICE, &back).unwrap();
    agent.pass().await;
    assert_eq!(agent.delivered().len(), 1);
    let record = agent.store.message(&id).unwrap().unwrap();
    assert_eq!(record.events, 1);
    assert!(record.history.len() >= 4, "{:?}", record.history);
}

async fn s10_r19_the_same_message_filed_by_two_mailboxes_is_one_record(api: Api) {
    let agent = Agent::start_on(
        api,
        &mailboxes(&[
            (ALICE, &[(CUSTOMERS, Some(CONTOSO), "")]),
            (BOB, &[("Inbox/Deals", Some(FABRIKAM), "")]),
        ]),
    )
    .await;
    let c = agent.sim();
    c.create_folder(ALICE, CUSTOMERS).unwrap();
    c.create_folder(BOB, "Inbox/Deals").unwrap();
    agent.pass().await;
    let mut shared = mail("to both");
    shared.internet_message_id = Some("<shared-1@contoso.com>".into());
    shared.to.push(BOB.into());
    for (mailbox, folder) in [(ALICE, CUSTOMERS), (BOB, "Inbox/Deals")] {
        let d = c.deliver(mailbox, "Inbox", &shared).unwrap();
        c.move_message(mailbox, &d.item_id, folder).unwrap();
    }
    agent.pass().await;
    let lines = agent.delivered();
    assert_eq!(lines.len(), 1, "one record");
    assert_eq!(
        lines[0].regarding.as_ref().unwrap().id,
        CONTOSO,
        "first wins"
    );
    let record = agent.store.message(&lines[0].id).unwrap().unwrap();
    assert_eq!(record.sightings.len(), 1);
    assert_eq!(record.sightings[0].mailbox, BOB);
    assert_eq!(
        record.conflicts.len(),
        1,
        "Bob's folder is regarding another record"
    );
}

async fn s11_r15_our_own_category_write_back_emits_nothing(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "to be marked", CUSTOMERS);
    agent.pass().await;
    let marked = agent
        .feed
        .mark(
            ALICE,
            &[(ItemRef::new(item.clone(), None), vec!["Tracked".into()])],
        )
        .await
        .unwrap();
    assert_ne!(marked[0].as_ref().unwrap().version, None);
    assert_eq!(c.message(ALICE, &item).unwrap().categories, ["Tracked"]);
    assert_eq!(agent.pass().await.tracked, 0);
    assert_eq!(agent.delivered().len(), 1);
}

async fn s12_r15_a_users_edit_of_a_tracked_mail_emits_nothing(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "to be edited", CUSTOMERS);
    agent.pass().await;
    c.set_categories(ALICE, &item, &["Red".into()]).unwrap();
    c.mark_read(ALICE, &item, true).unwrap();
    let summary = agent.pass().await;
    assert!(summary.changes >= 1, "the edit was seen");
    assert_eq!(summary.tracked, 0);
    assert_eq!(agent.delivered().len(), 1);
}

async fn s13_r8_repointing_a_mapping_relinks_every_tracked_item_once(api: Api) {
    let mut agent = baselined(api).await;
    let c = agent.sim();
    for i in 0..3 {
        drag(&c, ALICE, &format!("tracked {i}"), CUSTOMERS);
    }
    agent.pass().await;
    agent.reconfigure(&mailboxes(&[(ALICE, &[(CUSTOMERS, Some(FABRIKAM), "")])]));
    assert_eq!(agent.pass().await.tracked, 3);
    let lines = agent.delivered();
    let relinked: Vec<_> = lines
        .iter()
        .filter(|r| r.event == EventKind::Relinked)
        .collect();
    assert_eq!(relinked.len(), 3);
    assert!(
        relinked
            .iter()
            .all(|r| r.regarding.as_ref().unwrap().id == FABRIKAM)
    );
    // Once only; and new mail takes the new regarding.
    drag(&c, ALICE, "after repoint", CUSTOMERS);
    assert_eq!(agent.pass().await.tracked, 1);
    let last = agent.delivered().pop().unwrap();
    assert_eq!(
        (last.event, last.regarding.unwrap().id.as_str()),
        (EventKind::MovedIn, FABRIKAM)
    );
}

async fn s14_r23_a_lost_sync_state_rebaselines_without_re_emitting(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    for i in 0..3 {
        drag(&c, ALICE, &format!("before {i}"), CUSTOMERS);
    }
    agent.pass().await;
    c.deliver(ALICE, CUSTOMERS, &mail("arrived meanwhile"))
        .unwrap();
    c.add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some(api.sync_op().into()),
        fault: FaultKind::InvalidSyncState,
        count: Some(1),
        probability: None,
    });
    let summary = agent.pass().await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let lines = agent.delivered();
    assert_eq!(
        lines.len(),
        4,
        "three from before, once each, and the new one"
    );
    assert_eq!(
        lines[3].message.subject.as_deref(),
        Some("arrived meanwhile")
    );
}

async fn r16_sent_items_are_watched_only_when_asked_and_tracked_as_outgoing(api: Api) {
    let config = format!("[[mailbox]]\naddress = \"{ALICE}\"\ntrack_sent_items = true\n");
    let agent = Agent::start_on(api, &config).await;
    let c = agent.sim();
    agent.pass().await;
    let mut sent = mail("my offer");
    sent.from = ALICE.into();
    sent.to = vec!["buyer@contoso.com".into()];
    c.deliver(ALICE, "Sent Items", &sent).unwrap();
    agent.pass().await;
    let lines = agent.delivered();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].message.direction, Some(Direction::Outgoing));
    assert_eq!(lines[0].regarding, None);
}

async fn r2_include_subfolders_tracks_mail_in_subfolders_created_later(api: Api) {
    let agent = Agent::start_on(
        api,
        &mailboxes(&[(
            ALICE,
            &[(
                "Inbox/Customers",
                Some(CONTOSO),
                "include_subfolders = true",
            )],
        )]),
    )
    .await;
    let c = agent.sim();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    agent.pass().await;
    c.create_folder(ALICE, "Inbox/Customers/New Co").unwrap();
    agent.pass().await;
    drag(&c, ALICE, "into a new subfolder", "Inbox/Customers/New Co");
    agent.pass().await;
    let lines = agent.delivered();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].folder.path, "Inbox/Customers/New Co");
    assert_eq!(lines[0].mapping, "Inbox/Customers");
}

async fn r20_a_copy_of_a_tracked_message_is_not_a_second_record(api: Api) {
    let agent = Agent::start_on(
        api,
        &mailboxes(&[(
            ALICE,
            &[
                ("Inbox/A", Some(CONTOSO), ""),
                ("Inbox/B", Some(CONTOSO), ""),
            ],
        )]),
    )
    .await;
    let c = agent.sim();
    c.create_folder(ALICE, "Inbox/A").unwrap();
    c.create_folder(ALICE, "Inbox/B").unwrap();
    agent.pass().await;
    let mut m = mail("copied");
    m.internet_message_id = Some("<copy-1@contoso.com>".into());
    c.deliver(ALICE, "Inbox/A", &m).unwrap();
    c.deliver(ALICE, "Inbox/B", &m).unwrap();
    agent.pass().await;
    assert_eq!(agent.delivered().len(), 1);
}

async fn a_baseline_larger_than_a_page_is_resumed_and_completed(api: Api) {
    let agent = with_old_mails(api, &contoso(), 600).await;
    let c = agent.sim();
    let summary = agent.pass().await;
    assert_eq!(summary.tracked, 0);
    assert!(summary.changes >= 600);
    drag(&c, ALICE, "after a big baseline", CUSTOMERS);
    assert_eq!(agent.pass().await.tracked, 1);
}

async fn a_server_failure_mid_pass_loses_nothing_and_the_next_pass_catches_up(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    for i in 0..5 {
        drag(&c, ALICE, &format!("m{i}"), CUSTOMERS);
    }
    c.add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some(api.read_op().into()),
        fault: FaultKind::Http503 {
            retry_after_secs: 0,
        },
        count: Some(1),
        probability: None,
    });
    let failed = agent.pass().await;
    assert_eq!(failed.failed.len(), 1);
    assert_eq!(
        agent.delivered().len(),
        0,
        "the cursor did not advance past unfetched items"
    );
    agent.pass().await;
    assert_eq!(agent.delivered().len(), 5);
}

/// A watcher kept across passes, as the supervisor keeps one.
fn watcher(
    agent: &Agent,
) -> foldertrack::watch::mailbox::MailboxWatcher<
    foldertrack::feed::AnyFeed,
    foldertrack::store::SledStore,
> {
    foldertrack::watch::mailbox::MailboxWatcher::new(
        agent.feed.clone(),
        agent.store.clone(),
        agent.config.mailbox[0].clone(),
    )
}

async fn an_idle_pass_costs_one_call_per_watched_folder_and_writes_nothing(api: Api) {
    let agent = Agent::start_on(api, &two_folders(None)).await;
    let c = agent.sim();
    c.create_folder(ALICE, "Inbox/A").unwrap();
    c.create_folder(ALICE, "Inbox/B").unwrap();
    let mut w = watcher(&agent);
    w.sync(&|_| {}).await.unwrap();
    w.sync(&|_| {}).await.unwrap();
    c.reset_calls();
    let written = agent.store.transactions();
    w.sync(&|_| {}).await.unwrap();
    let calls: Vec<String> = c.calls().into_iter().map(|call| call.operation).collect();
    assert_eq!(calls, [api.sync_op(), api.sync_op()]);
    assert_eq!(
        agent.store.transactions(),
        written,
        "an unchanged folder's page is not committed (nor flushed)"
    );
    // A mail arriving is still committed and tracked.
    drag(&c, ALICE, "after the idle pass", "Inbox/B");
    assert_eq!(w.sync(&|_| {}).await.unwrap().emitted.len(), 1);
    assert!(agent.store.transactions() > written);
}

async fn r6_a_folder_deleted_between_tree_checks_is_found_orphaned_on_the_next_pass(api: Api) {
    let agent = Agent::start_on(api, &two_folders(None)).await;
    let c = agent.sim();
    c.create_folder(ALICE, "Inbox/A").unwrap();
    c.create_folder(ALICE, "Inbox/B").unwrap();
    let mut w = watcher(&agent);
    w.sync(&|_| {}).await.unwrap();
    c.delete_folder(ALICE, "Inbox/A").unwrap();
    // The tree was checked moments ago: this pass learns of the deletion from the folder sync,
    // and the other folder is synced all the same (R33).
    drag(&c, ALICE, "into B meanwhile", "Inbox/B");
    assert_eq!(w.sync(&|_| {}).await.unwrap().emitted.len(), 1);
    w.sync(&|_| {}).await.unwrap();
    let state = agent
        .store
        .mapping(ALICE, "Inbox/A")
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(state, MappingState::Orphaned);
    drag(&c, ALICE, "B still works", "Inbox/B");
    assert_eq!(w.sync(&|_| {}).await.unwrap().emitted.len(), 1);
}

async fn r7_removing_a_mappings_regarding_keeps_old_links_and_tracks_new_mail_without_one(
    api: Api,
) {
    let mut agent = baselined(api).await;
    let c = agent.sim();
    drag(&c, ALICE, "linked", CUSTOMERS);
    agent.pass().await;
    agent.reconfigure(&mailboxes(&[(ALICE, &[(CUSTOMERS, None, "")])]));
    drag(&c, ALICE, "after the regarding went", CUSTOMERS);
    assert_eq!(agent.pass().await.tracked, 1, "no re-link of the old mail");
    let lines = agent.delivered();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].regarding.as_ref().unwrap().id, CONTOSO);
    assert_eq!(lines[1].event, EventKind::MovedIn);
    assert_eq!(lines[1].regarding, None);
    let record = agent.store.message(&lines[0].id).unwrap().unwrap();
    assert_eq!(record.regarding.unwrap().id, CONTOSO, "the old link stays");
}

async fn r17_a_reply_in_an_unmapped_folder_is_not_tracked_by_conversation(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    let mut first = mail("Quote");
    first.conversation_id = Some("conv-quote".into());
    let d = c.deliver(ALICE, "Inbox", &first).unwrap();
    c.move_message(ALICE, &d.item_id, CUSTOMERS).unwrap();
    agent.pass().await;
    let mut reply = mail("RE: Quote");
    reply.conversation_id = Some("conv-quote".into());
    c.deliver(ALICE, "Inbox", &reply).unwrap();
    assert_eq!(agent.pass().await.tracked, 0);
    assert_eq!(agent.delivered().len(), 1);
}

async fn a_throttled_mailbox_waits_the_retry_after_and_loses_nothing(api: Api) {
    let agent = baselined(api).await;
    let c = agent.sim();
    drag(&c, ALICE, "while throttled", CUSTOMERS);
    c.add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some(api.sync_op().into()),
        fault: FaultKind::Http429 {
            retry_after_secs: 1,
        },
        count: Some(1),
        probability: None,
    });
    let throttled = agent.pass().await;
    assert_eq!(throttled.failed.len(), 1, "{:?}", throttled.failed);
    let paused = agent.feed.paused_for(ALICE).expect("the mailbox waits");
    assert!(paused <= Duration::from_secs(1), "{paused:?}");
    assert!(agent.delivered().is_empty());
    assert!(
        eventually(Duration::from_secs(5), || agent
            .feed
            .paused_for(ALICE)
            .is_none())
        .await,
        "the wait ends after the Retry-After"
    );
    assert_eq!(agent.pass().await.tracked, 1);
    assert_eq!(agent.delivered().len(), 1);
}

/// Exchange Online expires delta tokens (after a mailbox move, or when unused for a while):
/// the folder is listed again and nothing in it is tracked twice.
#[tokio::test]
async fn graph_an_expired_delta_link_rebaselines_without_re_tracking() {
    let agent = baselined(Api::Graph).await;
    let c = agent.sim();
    for i in 0..3 {
        drag(&c, ALICE, &format!("before {i}"), CUSTOMERS);
    }
    agent.pass().await;
    c.expire_delta_tokens(ALICE).unwrap();
    drag(&c, ALICE, "arrived meanwhile", CUSTOMERS);
    let summary = agent.pass().await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let lines = agent.delivered();
    assert_eq!(
        lines.len(),
        4,
        "three from before, once each, and the new one"
    );
    assert_eq!(
        lines[3].message.subject.as_deref(),
        Some("arrived meanwhile")
    );
    let results: Vec<String> = c.calls().into_iter().map(|call| call.result).collect();
    assert!(
        results.iter().any(|r| r == "SyncStateNotFound"),
        "{results:?}"
    );
}

/// Two mailboxes each with a baselined Inbox/A and one mail dragged in since.
async fn alice_and_bob_with_a_mail_each(api: Api) -> Agent {
    let folders: &[Folder<'_>] = &[("Inbox/A", Some(CONTOSO), "")];
    let agent = Agent::start_on(api, &mailboxes(&[(ALICE, folders), (BOB, folders)])).await;
    let c = agent.sim();
    for m in [ALICE, BOB] {
        c.create_folder(m, "Inbox/A").unwrap();
    }
    agent.pass().await;
    for m in [ALICE, BOB] {
        drag(&c, m, "filed", "Inbox/A");
    }
    agent
}

/// Graph's budgets are per app and mailbox: a busy answer holds that mailbox only.
#[tokio::test]
async fn graph_a_503_with_retry_after_holds_that_mailbox_only() {
    let agent = alice_and_bob_with_a_mail_each(Api::Graph).await;
    agent.sim().add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some("messages.delta".into()),
        fault: FaultKind::Http503 {
            retry_after_secs: 30,
        },
        count: Some(1),
        probability: None,
    });
    let summary = agent.pass().await;
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].0, ALICE);
    let lines = agent.delivered();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].mailbox, BOB);
    assert!(agent.feed.paused_for(ALICE) > Some(Duration::from_secs(20)));
    assert_eq!(agent.feed.paused_for(BOB), None);
}

/// A mailbox outside the app's scope (RBAC for Applications) fails alone, saying what to do.
#[tokio::test]
async fn graph_a_mailbox_outside_the_apps_scope_fails_alone_and_says_how_to_scope_it() {
    let agent = alice_and_bob_with_a_mail_each(Api::Graph).await;
    let c = agent.sim();
    c.impersonate_all(SVC, false).unwrap();
    c.grant_impersonation(SVC, ALICE).unwrap();
    let summary = agent.pass().await;
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].0, BOB);
    let error = summary.failed[0].1.to_string();
    assert!(
        error.contains("403 ErrorAccessDenied") && error.contains("RBAC for Applications"),
        "{error}"
    );
    let lines = agent.delivered();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].mailbox, ALICE);
}

over_both_apis!(
    a_throttled_mailbox_waits_the_retry_after_and_loses_nothing,
    s01_r10_the_first_sync_of_a_new_mapping_tracks_nothing,
    s02_r10_track_existing_tracks_the_baseline,
    s03_r11_a_mail_dragged_in_is_one_moved_in_request_with_the_regarding,
    s04_r4_a_renamed_folder_stays_tracked_under_its_new_path,
    s05_r5_a_folder_moved_out_of_the_inbox_pauses_its_mapping,
    s06_r6_a_deleted_folder_orphans_its_mapping_and_a_namesake_is_not_tracked,
    s07_r12_a_move_to_a_mapped_folder_with_another_regarding_relinks,
    s08_r12_a_move_to_a_mapped_folder_without_regarding_keeps_the_record,
    s09_r13_moving_out_or_deleting_sends_nothing_and_is_in_the_history,
    s10_r19_the_same_message_filed_by_two_mailboxes_is_one_record,
    s11_r15_our_own_category_write_back_emits_nothing,
    s12_r15_a_users_edit_of_a_tracked_mail_emits_nothing,
    s13_r8_repointing_a_mapping_relinks_every_tracked_item_once,
    s14_r23_a_lost_sync_state_rebaselines_without_re_emitting,
    r16_sent_items_are_watched_only_when_asked_and_tracked_as_outgoing,
    r2_include_subfolders_tracks_mail_in_subfolders_created_later,
    r20_a_copy_of_a_tracked_message_is_not_a_second_record,
    a_baseline_larger_than_a_page_is_resumed_and_completed,
    a_server_failure_mid_pass_loses_nothing_and_the_next_pass_catches_up,
    an_idle_pass_costs_one_call_per_watched_folder_and_writes_nothing,
    r6_a_folder_deleted_between_tree_checks_is_found_orphaned_on_the_next_pass,
    r7_removing_a_mappings_regarding_keeps_old_links_and_tracks_new_mail_without_one,
    r17_a_reply_in_an_unmapped_folder_is_not_tracked_by_conversation,
);
