//! Delivery (R21, R26–R33) against the simulator and loopback receivers: retries, the final
//! states, the write-back, and the CLI that shows and re-queues problem items. (The Dataverse
//! sink's own rules are in tests/dataverse.rs.)

mod common;

use common::dataverse::{self, Dataverse};
use common::receivers::{self, Webhook};
use common::*;
use foldertrack::agent::delivery;
use foldertrack::deliver::items::{self, ItemState};
use foldertrack::deliver::policy::DeliveryPolicy;
use foldertrack::deliver::{AnySink, Deliverer, Drained, webhook, writeback};
use foldertrack::sim::{FaultKind, FaultRule};
use foldertrack::store::Store;
use foldertrack::tracking::EventKind;
use foldertrack::watch::supervisor::SyncNow;
use std::time::{Duration, Instant};

const FOLDER: &str = "Inbox/Customers";

fn mapping() -> String {
    mailboxes(&[(ALICE, &[(FOLDER, Some(CONTOSO), "")])])
}

/// A baselined agent delivering to the sink `extra` describes.
async fn agent_with(sink: impl FnOnce(&std::path::Path) -> String) -> Agent {
    let sim = simulator().await;
    sim.control().create_folder(ALICE, FOLDER).unwrap();
    let agent = Agent::with_extra(sim, &mapping(), sink).await;
    agent.pass().await;
    agent
}

/// Delivery rounds until the outbox is empty (or 5 s).
async fn deliver_all(agent: &Agent, d: &Deliverer<AnySink>) -> Drained {
    let mut total = Drained::default();
    for _ in 0..250 {
        total += delivery::deliver(d, agent.feed.as_ref(), agent.store.as_ref())
            .await
            .unwrap();
        if agent.outbox_len() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    total
}

/// Syncs (the mail becomes a request in the outbox) without delivering.
async fn sync(agent: &Agent) {
    let mut w = foldertrack::watch::mailbox::MailboxWatcher::new(
        agent.feed.clone(),
        agent.store.clone(),
        agent.config.mailbox[0].clone(),
    )
    .with_failed_category(agent.config.failed_category());
    w.sync(&|_| {}).await.unwrap();
}

/// The mail is delivered by the next rounds, once, marked as `categories`, and no problem item
/// is left.
async fn delivered_once_now(
    agent: &Agent,
    d: &Deliverer<AnySink>,
    hook: &Webhook,
    item: &str,
    categories: &[&str],
) {
    assert_eq!(deliver_all(agent, d).await.delivered, 1);
    assert_eq!(hook.records().len(), 1, "exactly one record");
    assert_eq!(
        agent.sim().message(ALICE, item).unwrap().categories,
        categories
    );
    assert!(
        items::problem_items(agent.store.as_ref(), None)
            .unwrap()
            .is_empty(),
        "no problem item left"
    );
}

#[tokio::test]
async fn s16_r30_a_sink_failing_three_times_then_succeeding_gives_one_record_and_tracked() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "flaky receiver", FOLDER);
    sync(&agent).await;
    hook.script(&[503, 503, 503]);
    let d = deliverer(&agent);
    let drained = deliver_all(&agent, &d).await;
    // Alone in the outbox, its failures are the sink's: held, not counted against it.
    assert_eq!((drained.delivered, drained.held), (1, 3));
    assert_eq!(hook.attempts(), 4);
    assert_eq!(hook.records().len(), 1, "exactly one record");
    let mail = c.message(ALICE, &item).unwrap();
    assert_eq!(mail.categories, ["Tracked"]);
    // Our own write-back is not a new tracking request (R15).
    assert_eq!(agent.pass().await.tracked, 0);
    assert_eq!(hook.records().len(), 1);
}

#[tokio::test]
async fn s17_r30_a_sink_that_always_refuses_makes_the_item_undeliverable_and_retry_delivers_it() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "receiver refuses", FOLDER);
    c.set_categories(ALICE, &item, &["Red".into()]).unwrap();
    sync(&agent).await;
    hook.always(Some(422));
    let d = deliverer(&agent);
    let drained = deliver_all(&agent, &d).await;
    assert_eq!(
        (drained.undeliverable, drained.retrying),
        (1, 4),
        "five attempts in all"
    );
    assert_eq!(hook.attempts(), 5);
    let mail = c.message(ALICE, &item).unwrap();
    assert_eq!(
        mail.categories,
        ["Red", "Tracking failed"],
        "the user's category is kept"
    );
    let items = items::problem_items(agent.store.as_ref(), Some(ItemState::Undeliverable)).unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].reason.contains("HTTP 422"), "{}", items[0].reason);
    assert_eq!(items[0].attempts, 5);

    hook.always(None);
    let dry = items::retry(agent.store.as_ref(), Some(ALICE), None, true)
        .await
        .unwrap();
    assert_eq!(dry.len(), 1);
    assert_eq!(agent.outbox_len(), 0, "a dry run changes nothing");
    items::retry(agent.store.as_ref(), Some(ALICE), None, false)
        .await
        .unwrap();
    delivered_once_now(&agent, &d, &hook, &item, &["Red", "Tracked"]).await;
}

/// A mail the webhook refused until it was undeliverable, marked `Tracking failed`.
async fn given_up() -> (Webhook, Agent, Deliverer<AnySink>, String) {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    let item = drag(&agent.sim(), ALICE, "refused at first", FOLDER);
    sync(&agent).await;
    hook.always(Some(422));
    let d = deliverer(&agent);
    assert_eq!(deliver_all(&agent, &d).await.undeliverable, 1);
    (hook, agent, d, item)
}

#[tokio::test]
async fn r27_moving_a_failed_mail_out_and_in_again_makes_it_eligible_again() {
    let (hook, agent, d, item) = given_up().await;
    let c = agent.sim();
    assert_eq!(
        c.message(ALICE, &item).unwrap().categories,
        ["Tracking failed"]
    );

    hook.always(None);
    let out = c.move_message(ALICE, &item, "Inbox").unwrap();
    sync(&agent).await;
    assert_eq!(agent.outbox_len(), 0, "moving it out asks for nothing");
    let back = c.move_message(ALICE, &out, FOLDER).unwrap();
    sync(&agent).await;
    delivered_once_now(&agent, &d, &hook, &back, &["Tracked"]).await;

    // Tracked now: moving it out and in again is an ordinary move.
    let out = c.move_message(ALICE, &back, "Inbox").unwrap();
    sync(&agent).await;
    c.move_message(ALICE, &out, FOLDER).unwrap();
    sync(&agent).await;
    assert_eq!(agent.outbox_len(), 0);
}

#[tokio::test]
async fn r27_removing_the_failure_category_makes_a_failed_mail_eligible_again() {
    let (hook, agent, d, item) = given_up().await;
    let c = agent.sim();

    // Another edit keeps it given up.
    c.set_categories(ALICE, &item, &["Tracking failed".into(), "Red".into()])
        .unwrap();
    sync(&agent).await;
    assert_eq!(agent.outbox_len(), 0, "still failed: nothing asked");

    hook.always(None);
    c.set_categories(ALICE, &item, &["Red".into()]).unwrap();
    sync(&agent).await;
    delivered_once_now(&agent, &d, &hook, &item, &["Red", "Tracked"]).await;
    // Our own write-back and later edits of a tracked mail ask for nothing.
    c.set_categories(ALICE, &item, &["Blue".into()]).unwrap();
    sync(&agent).await;
    assert_eq!(agent.outbox_len(), 0);
}

#[tokio::test]
async fn r33_one_failing_item_does_not_block_the_others() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    for i in 0..3 {
        drag(&c, ALICE, &format!("m{i}"), FOLDER);
    }
    sync(&agent).await;
    hook.script(&[503]);
    let d = deliverer(&agent);
    let first = delivery::deliver(&d, agent.feed.as_ref(), agent.store.as_ref())
        .await
        .unwrap();
    assert_eq!(
        (first.delivered, first.retrying),
        (2, 1),
        "the other two went through"
    );
    assert_eq!(deliver_all(&agent, &d).await.delivered, 1);
    assert_eq!(hook.records().len(), 3);
}

#[tokio::test]
async fn s18_r32_a_dataverse_403_is_rejected_after_one_attempt_naming_the_privilege() {
    let dv = Dataverse::start().await;
    let agent = agent_with(|dir| dv.sink_toml(dir, false)).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "no privilege", FOLDER);
    sync(&agent).await;
    dv.revoke(dataverse::APP_USER, "prvCreateActivity");
    let drained = deliver_all(&agent, &deliverer(&agent)).await;
    assert_eq!(
        (drained.rejected, drained.retrying),
        (1, 0),
        "final at once"
    );
    let creates: Vec<u16> = dv
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.target.ends_with("/emails"))
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, [403]);
    let items = items::problem_items(agent.store.as_ref(), Some(ItemState::Rejected)).unwrap();
    assert!(
        items[0].reason.contains("prvCreateActivity"),
        "{}",
        items[0].reason
    );
    assert_eq!(
        c.message(ALICE, &item).unwrap().categories,
        ["Tracking failed"]
    );
}

#[tokio::test]
async fn a_webhook_request_is_signed_and_keyed_by_its_event_id() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    drag(&agent.sim(), ALICE, "signed", FOLDER);
    agent.pass().await;
    // The receiver refuses bad signatures and checks the key; one record arrived intact.
    let records = hook.records();
    assert_eq!(records.len(), 1);
    let (key, body) = records.iter().next().unwrap();
    assert_eq!(body["event_id"], key.as_str());
    assert_eq!(
        body["event"],
        serde_json::to_value(EventKind::MovedIn).unwrap()
    );
}

#[tokio::test]
async fn a_webhook_signature_carries_its_time_and_a_retry_is_signed_afresh() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    drag(&agent.sim(), ALICE, "signed twice", FOLDER);
    sync(&agent).await;
    hook.script(&[503]);
    // A back-off of 1.1 to 2.2 s: the retry goes out in a later second than the first try.
    let d = deliverer_with(&agent, 2200, 2200, 5, Duration::from_secs(3600));
    assert_eq!(deliver_all(&agent, &d).await.delivered, 1);
    // The receiver checked both with its own HMAC; each names the second it was sent in.
    let signed = hook.signed();
    assert_eq!(signed.len(), 2, "{signed:?}");
    let time = |s: &receivers::Signed| -> u64 {
        let t = s
            .header
            .strip_prefix("t=")
            .unwrap()
            .split_once(',')
            .unwrap()
            .0;
        t.parse().unwrap()
    };
    for s in &signed {
        assert!(s.received.abs_diff(time(s)) <= 1, "{s:?}");
    }
    assert!(time(&signed[1]) > time(&signed[0]), "{signed:?}");
    assert_ne!(signed[0].header, signed[1].header);
    assert_eq!(signed[0].body, signed[1].body, "the same request");

    // A replay later, a changed time or a changed body fails the receiver's check and ours.
    let (s, secret) = (&signed[1], receivers::WEBHOOK_SECRET);
    let now = s.received;
    assert!(receivers::verify_signature(secret, &s.header, &s.body, now).is_ok());
    let later = now + webhook::TOLERANCE_SECS + 1;
    let moved = s
        .header
        .replacen(&format!("t={}", time(s)), &format!("t={}", time(s) + 1), 1);
    let mut body = s.body.clone();
    body[10] ^= 1;
    for (header, body, now) in [
        (&s.header, &s.body, later),
        (&moved, &s.body, now),
        (&s.header, &body, now),
    ] {
        assert!(receivers::verify_signature(secret, header, body, now).is_err());
        let ok = webhook::verify(
            secret.as_bytes(),
            body,
            header,
            now,
            webhook::TOLERANCE_SECS,
        );
        assert!(!ok, "{header} at {now}");
    }
    assert!(webhook::verify(
        secret.as_bytes(),
        &s.body,
        &s.header,
        now,
        webhook::TOLERANCE_SECS
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_and_retry_on_the_command_line() {
    let hook = Webhook::start().await;
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, FOLDER).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[delivery]\nmax_attempts = 1\n",
        hook.sink_toml(dir.path())
    );
    let config = write_config(dir.path(), &sim.ews_url(), &mapping(), &extra);
    assert_eq!(cli(&config, &["once"]).0, 0);
    drag(&c, ALICE, "cli", FOLDER);
    hook.always(Some(404));
    let (code, out) = cli(&config, &["once"]);
    assert_eq!(code, 0, "{out}");
    let (_, items) = cli(&config, &["items", "--state", "undeliverable"]);
    assert!(
        items.contains("undeliverable") && items.contains("HTTP 404"),
        "{items}"
    );
    assert!(items.contains(FOLDER), "{items}");
    let (_, json) = cli(&config, &["items", "--json"]);
    let line: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(line["state"], "undeliverable");
    let (_, bad) = cli(&config, &["retry", "--since", "yesterday"]);
    assert!(bad.contains("--since \"yesterday\""), "{bad}");
    hook.always(None);
    let (_, dry) = cli(&config, &["retry", "--dry-run", "--since", "2020-01-01"]);
    assert!(dry.contains("would re-queue 1 item"), "{dry}");
    let (_, done) = cli(&config, &["retry", "--mailbox", ALICE]);
    assert!(done.contains("re-queued 1 item"), "{done}");
    let (code, out) = cli(&config, &["once"]);
    assert!(code == 0 && out.contains("1 delivered"), "{out}");
    assert_eq!(hook.records().len(), 1);
    let (_, none) = cli(&config, &["items"]);
    assert!(none.contains("no items"), "{none}");
}

/// An agent over these mapped folders, `(mailbox, path, regarding)`, created and baselined;
/// `extra` adds config sections.
async fn agent_over(
    folders: &[(&str, &str, &str)],
    extra: impl FnOnce(&std::path::Path) -> String,
) -> Agent {
    let sim = simulator().await;
    let c = sim.control();
    let mut by_mailbox: Vec<(&str, Vec<Folder<'_>>)> = Vec::new();
    for &(mailbox, path, regarding) in folders {
        c.create_folder(mailbox, path).unwrap();
        let folder = (path, Some(regarding), "");
        match by_mailbox.iter_mut().find(|(m, _)| *m == mailbox) {
            Some((_, list)) => list.push(folder),
            None => by_mailbox.push((mailbox, vec![folder])),
        }
    }
    let list: Vec<(&str, &[Folder<'_>])> =
        by_mailbox.iter().map(|(m, f)| (*m, f.as_slice())).collect();
    let agent = Agent::with_extra(sim, &mailboxes(&list), extra).await;
    agent.pass().await;
    agent
}

/// Alice and Bob, each with a mapped folder, on a cadence slow enough that only the first
/// sync and track-now sync.
/// Notifications off: these tests drive syncs by track-now, which must find the mail itself.
async fn two_mailbox_agent(sink: impl FnOnce(&std::path::Path) -> String) -> Agent {
    let folders = [(ALICE, "Inbox/A", CONTOSO), (BOB, "Inbox/B", FABRIKAM)];
    agent_over(&folders, |dir| {
        sink(dir)
            + "[cadence]\nbusy_secs = 60\nnormal_secs = 60\nquiet_secs = 60\n[notifications]\nmode = \"off\"\n"
    })
    .await
}

fn calls(c: &foldertrack::sim::SimControl, mailbox: &str, operation: &str) -> usize {
    c.calls()
        .iter()
        .filter(|call| call.operation == operation && call.impersonated.as_deref() == Some(mailbox))
        .count()
}

fn subjects(agent: &Agent, mailbox: &str) -> Vec<String> {
    agent
        .delivered()
        .into_iter()
        .filter(|r| r.mailbox == mailbox)
        .filter_map(|r| r.message.subject)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_r33_delivery_does_not_wait_behind_write_back() {
    let agent = two_mailbox_agent(|_| String::new()).await;
    let c = agent.sim();
    let running = agent.run().await;
    // Alice's mailbox is slow to write to: every UpdateItem for her takes 1.5 s.
    c.add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some("UpdateItem".into()),
        fault: FaultKind::Delay { ms: 1500 },
        count: None,
        probability: None,
    });
    c.reset_calls();
    let filed: Vec<String> = (0..40)
        .map(|i| drag(&c, ALICE, &format!("filed {i}"), "Inbox/A"))
        .collect();
    running.admin.sync_now(ALICE).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || subjects(&agent, ALICE).len()
            == 40)
        .await
    );

    // While Alice's categories are being written, Bob files one mail and asks for track-now:
    // it is in the sink when the answer comes, within 2 s.
    let bobs = drag(&c, BOB, "for bob, now", "Inbox/B");
    let asked = Instant::now();
    let answer = running.admin.sync_now(BOB).await.unwrap();
    let took = asked.elapsed();
    assert!(matches!(answer, SyncNow::Done { tracked: 1 }), "{answer:?}");
    assert!(
        subjects(&agent, BOB) == ["for bob, now"],
        "in the sink when track-now said done"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Bob's category does not wait for Alice's either.
    assert!(
        eventually(Duration::from_secs(3), || c
            .message(BOB, &bobs)
            .is_ok_and(|m| m.categories == ["Tracked"]))
        .await
    );
    // Alice's 40 marks go in batches: two GetItem and two UpdateItem calls, not 40 of each.
    assert!(
        eventually(Duration::from_secs(15), || filed.iter().all(|id| c
            .message(ALICE, id)
            .is_ok_and(|m| m.categories == ["Tracked"])))
        .await
    );
    // The simulator logs a call when its answer is written, after the change is visible.
    let update_calls = || calls(&c, ALICE, "UpdateItem");
    assert!(
        eventually(Duration::from_secs(3), || update_calls() >= 2).await,
        "{}",
        update_calls()
    );
    assert_eq!(update_calls(), 2);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_r38_track_now_says_done_only_when_the_request_is_in_the_sink() {
    let hook = Webhook::start().await;
    let agent = two_mailbox_agent(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let running = agent.run().await;
    hook.always(Some(503));
    drag(&c, ALICE, "while the receiver is down", "Inbox/A");
    let asked = Instant::now();
    let answer = running.admin.sync_now(ALICE).await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "told at once, not after a long wait"
    );
    assert!(!matches!(answer, SyncNow::Done { .. }), "{answer:?}");
    // The answer says what the request waits for, in words and in fields.
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(json["result"], "waiting", "{json}");
    assert_eq!(json["tracked"], 1);
    assert_eq!(json["waiting"][0]["state"], "sink_unavailable", "{json}");
    let message = json["message"].as_str().unwrap();
    assert!(
        message.contains("sink is unavailable since") && message.contains("HTTP 503"),
        "{message}"
    );
    // The receiver is back: the request goes in, and track-now says done.
    hook.always(None);
    assert!(eventually(Duration::from_secs(10), || hook.records().len() == 1).await);
    let answer = running.admin.sync_now(ALICE).await.unwrap();
    assert_eq!(answer, SyncNow::Done { tracked: 0 });
    running.stop().await;
}

/// A deliverer whose back-off is `base` ms doubling to `cap` ms, with these limits.
fn deliverer_with(
    agent: &Agent,
    base: u64,
    cap: u64,
    max_attempts: u32,
    retry_for: Duration,
) -> Deliverer<AnySink> {
    let mut d = deliverer(agent);
    d.policy = DeliveryPolicy {
        base: Duration::from_millis(base),
        cap: Duration::from_millis(cap),
        max_attempts,
        retry_for,
        ..d.policy
    };
    d
}

#[tokio::test]
async fn d5_r30_a_sink_outage_is_one_state_probed_by_one_request_and_fails_no_mail() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let items: Vec<String> = (0..20)
        .map(|i| drag(&c, ALICE, &format!("m{i}"), FOLDER))
        .collect();
    sync(&agent).await;
    hook.always(Some(503));
    let d = deliverer_with(&agent, 20, 100, 5, Duration::from_secs(24 * 3600));
    let run = |d| delivery::deliver(d, agent.feed.as_ref(), agent.store.as_ref());
    run(&d).await.unwrap();
    assert_eq!(hook.attempts(), 20, "the first round finds the sink down");
    // Down for a while: far past five attempts' worth of back-off. Each round sends at most
    // one request, and no request gives up.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let before = hook.attempts();
        run(&d).await.unwrap();
        assert!(hook.attempts() - before <= 1, "a probe is one request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let probes = hook.attempts() - 20;
    assert!((3..=40).contains(&probes), "{probes} probes");
    assert!(
        agent.store.dead(10).unwrap().is_empty(),
        "nothing undeliverable"
    );
    for item in &items {
        assert!(
            c.message(ALICE, item).unwrap().categories.is_empty(),
            "no mail marked failed"
        );
    }
    // One state for the whole sink, as status and the metrics show it.
    let outage = agent
        .store
        .sink_outage()
        .unwrap()
        .expect("the sink is down");
    assert!(outage.reason.contains("HTTP 503"), "{}", outage.reason);
    assert!(outage.probes as usize >= probes - 1);

    // It answers again: everything goes in, every mail is marked, the state is gone.
    hook.always(None);
    let drained = deliver_all(&agent, &d).await;
    assert_eq!(drained.delivered, 20);
    assert_eq!(hook.records().len(), 20);
    assert_eq!(agent.store.sink_outage().unwrap(), None);
    for item in &items {
        assert_eq!(c.message(ALICE, item).unwrap().categories, ["Tracked"]);
    }
}

#[tokio::test]
async fn d5_r30_a_request_failing_transiently_is_retried_for_the_period_not_for_an_attempt_count() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    drag(&c, ALICE, "fine", FOLDER);
    let bad = drag(&c, ALICE, "this one fails", FOLDER);
    drag(&c, ALICE, "also fine", FOLDER);
    sync(&agent).await;
    // The receiver takes the others but answers 503 for this one, every time.
    hook.refuse_subject("this one fails", 503);
    let period = Duration::from_millis(600);
    let d = deliverer_with(&agent, 10, 40, 2, period);
    let started = Instant::now();
    let drained = deliver_all(&agent, &d).await;
    assert_eq!(drained.delivered, 2);
    assert_eq!(drained.undeliverable, 1);
    let dead = agent.store.dead(10).unwrap().remove(0).1;
    assert!(
        dead.attempts > 2,
        "transient failures do not count toward the two attempts: {}",
        dead.attempts
    );
    let since_given_up = jiff::Timestamp::now()
        .duration_since(dead.at)
        .unsigned_abs();
    let retried_for = started.elapsed() - since_given_up;
    assert!(
        retried_for >= period,
        "retried for the whole period: {retried_for:?}"
    );
    assert_eq!(
        c.message(ALICE, &bad).unwrap().categories,
        ["Tracking failed"]
    );
    assert_eq!(
        agent.store.sink_outage().unwrap(),
        None,
        "the sink was up all along"
    );
}

#[tokio::test]
async fn d6_r28_a_write_back_is_kept_with_back_off_and_follows_its_moved_mail() {
    let hook = Webhook::start().await;
    let same_record = [(ALICE, "Inbox/A", CONTOSO), (ALICE, "Inbox/A2", CONTOSO)];
    let agent = agent_over(&same_record, |dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "moves right after delivery", "Inbox/A");
    sync(&agent).await;
    let d = deliverer(&agent);
    assert_eq!(d.drain(agent.store.as_ref()).await.unwrap().delivered, 1);
    // The person files it on before its category is written.
    let moved = c.move_message(ALICE, &item, "Inbox/A2").unwrap();
    c.reset_calls();
    let names = &agent.config.writeback;
    let write =
        || writeback::write_back(agent.feed.as_ref(), agent.store.as_ref(), names, &d.marks);
    for _ in 0..6 {
        write().await.unwrap();
    }
    // Tried once, then left alone for its back-off: not five tries a second apart, not given up.
    assert_eq!(calls(&c, ALICE, "GetItem"), 1);
    let marks = agent.store.marks(10).unwrap();
    assert_eq!(marks.len(), 1, "still pending");
    assert_eq!(marks[0].1.attempts, 1);
    assert!(
        marks[0]
            .1
            .next_try
            .is_some_and(|t| t > jiff::Timestamp::now())
    );
    // The next sync finds it in A2: the mark follows it and is written at once.
    sync(&agent).await;
    write().await.unwrap();
    assert_eq!(c.message(ALICE, &moved).unwrap().categories, ["Tracked"]);
    assert!(agent.store.marks(10).unwrap().is_empty());
    assert_eq!(hook.records().len(), 1, "the move made no new event");
}

#[tokio::test]
async fn d7_r21_a_later_event_waits_for_an_earlier_one_still_in_the_outbox() {
    let hook = Webhook::start().await;
    let agent = relinking_agent(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "filed twice", "Inbox/A");
    sync(&agent).await;
    // The moved_in fails once and waits for its retry; meanwhile the mail moves to B.
    hook.script(&[503]);
    let d = deliverer_with(&agent, 300, 300, 5, Duration::from_secs(3600));
    delivery::deliver(&d, agent.feed.as_ref(), agent.store.as_ref())
        .await
        .unwrap();
    c.move_message(ALICE, &item, "Inbox/B").unwrap();
    sync(&agent).await;
    deliver_all(&agent, &d).await;
    let events: Vec<(u64, String)> = hook
        .accepted()
        .iter()
        .map(|r| {
            (
                r["sequence"].as_u64().unwrap(),
                r["regarding"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [(1, CONTOSO.to_owned()), (2, FABRIKAM.to_owned())],
        "in order, so the record ends up regarding B's"
    );
}

#[tokio::test]
async fn d7_r21_retry_of_a_superseded_event_delivers_nothing_and_says_so() {
    let hook = Webhook::start().await;
    let agent = relinking_agent(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "rejected, then re-linked", "Inbox/A");
    sync(&agent).await;
    hook.script(&[400]);
    let d = deliverer(&agent);
    assert_eq!(deliver_all(&agent, &d).await.rejected, 1);
    c.move_message(ALICE, &item, "Inbox/B").unwrap();
    sync(&agent).await;
    assert_eq!(deliver_all(&agent, &d).await.delivered, 1);
    // Retrying the old moved_in would link the record back to A's: it is not sent.
    let retried = items::retry(agent.store.as_ref(), None, None, false)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    let later = retried[0].superseded_by.as_deref().expect("said so");
    assert!(later.ends_with(".2"), "{later}");
    assert_eq!(agent.outbox_len(), 0);
    deliver_all(&agent, &d).await;
    let accepted = hook.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["regarding"]["id"], FABRIKAM);
    assert!(
        items::problem_items(agent.store.as_ref(), None)
            .unwrap()
            .is_empty()
    );
}

/// Alice with A (regarding Contoso) and B (regarding Fabrikam), baselined.
async fn relinking_agent(sink: impl FnOnce(&std::path::Path) -> String) -> Agent {
    agent_over(
        &[(ALICE, "Inbox/A", CONTOSO), (ALICE, "Inbox/B", FABRIKAM)],
        sink,
    )
    .await
}
