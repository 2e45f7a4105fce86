//! Delivery (R21, R26–R32, R34) against the simulator and loopback receivers: retries, the
//! final states, the write-back, the Dataverse requests as they go over the wire, and the CLI
//! that shows and re-queues problem items.

mod common;

use common::receivers::{DV_TOKEN, Dataverse, Webhook};
use common::*;
use foldertrack::agent::delivery;
use foldertrack::deliver::items::{self, ItemState};
use foldertrack::deliver::policy::DeliveryPolicy;
use foldertrack::deliver::{AnySink, Deliverer, Drained};
use foldertrack::store::Store;
use foldertrack::tracking::EventKind;
use std::time::Duration;

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

/// A deliverer over the agent's configured sink, retrying after 10 ms instead of seconds.
fn deliverer(agent: &Agent) -> Deliverer<AnySink> {
    let mut d = Deliverer::new(
        AnySink::open(agent.config.sink_settings().unwrap()).unwrap(),
        &agent.config.delivery_settings(),
    );
    d.policy = DeliveryPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(10),
        ..d.policy
    };
    d
}

/// Delivery rounds until the outbox is empty (or 5 s).
async fn deliver_all(agent: &Agent, d: &Deliverer<AnySink>) -> Drained {
    let mut total = Drained::default();
    for _ in 0..250 {
        let round = delivery::deliver(d, agent.feed.as_ref(), agent.store.as_ref())
            .await
            .unwrap();
        total.delivered += round.delivered;
        total.retrying += round.retrying;
        total.undeliverable += round.undeliverable;
        total.rejected += round.rejected;
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
    );
    w.sync(&|_| {}).await.unwrap();
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
    assert_eq!((drained.delivered, drained.retrying), (1, 3));
    assert_eq!(hook.attempts(), 4);
    assert_eq!(hook.records().len(), 1, "exactly one record");
    let mail = c.message(ALICE, &item).unwrap();
    assert_eq!(mail.categories, ["Tracked"]);
    // Our own write-back is not a new tracking request (R15).
    assert_eq!(agent.pass().await.tracked, 0);
    assert_eq!(hook.records().len(), 1);
}

#[tokio::test]
async fn s17_r30_a_sink_that_always_fails_makes_the_item_undeliverable_and_retry_delivers_it() {
    let hook = Webhook::start().await;
    let agent = agent_with(|dir| hook.sink_toml(dir)).await;
    let c = agent.sim();
    let item = drag(&c, ALICE, "receiver down", FOLDER);
    c.set_categories(ALICE, &item, &["Red".into()]).unwrap();
    sync(&agent).await;
    hook.always(Some(500));
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
    assert!(items[0].reason.contains("HTTP 500"), "{}", items[0].reason);
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
    assert_eq!(deliver_all(&agent, &d).await.delivered, 1);
    assert_eq!(hook.records().len(), 1);
    assert_eq!(
        c.message(ALICE, &item).unwrap().categories,
        ["Red", "Tracked"]
    );
    assert!(
        items::problem_items(agent.store.as_ref(), None)
            .unwrap()
            .is_empty()
    );
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
    dv.refuse_create(
        403,
        "Principal user (Id=7a1c) is missing prvCreateActivity privilege (Id=091df793) on OTC=4202",
    );
    let drained = deliver_all(&agent, &deliverer(&agent)).await;
    assert_eq!(
        (drained.rejected, drained.retrying),
        (1, 0),
        "final at once"
    );
    let creates = dv
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.target.ends_with("/emails"))
        .count();
    assert_eq!(creates, 1);
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
async fn r21_r34_dataverse_gets_exact_requests_and_never_a_second_activity() {
    let dv = Dataverse::start().await;
    let agent = Agent::with_extra(
        simulator().await,
        &mailboxes(&[(
            ALICE,
            &[
                ("Inbox/A", Some(CONTOSO), ""),
                ("Inbox/B", Some(FABRIKAM), ""),
            ],
        )]),
        |dir| dv.sink_toml(dir, true),
    )
    .await;
    let c = agent.sim();
    c.create_folder(ALICE, "Inbox/A").unwrap();
    c.create_folder(ALICE, "Inbox/B").unwrap();
    agent.pass().await;
    let mut mail = common::mail("Quote 'Q4'");
    mail.internet_message_id = Some("<q4'quote@contoso.com>".into());
    mail.cc = vec!["Carol <carol@example.com>".into()];
    let delivered = c.deliver(ALICE, "Inbox", &mail).unwrap();
    let in_a = c
        .move_message(ALICE, &delivered.item_id, "Inbox/A")
        .unwrap();
    sync(&agent).await;
    let request = agent.store.outbox(1).unwrap().remove(0).1.request;
    agent.pass().await;
    assert_eq!(dv.creates().get("<q4'quote@contoso.com>"), Some(&1));
    // The same event offered again (a crash before the outbox let go of it): the lookup finds
    // the activity, and no second one is created (R21).
    let sink = AnySink::open(agent.config.sink_settings().unwrap()).unwrap();
    foldertrack::deliver::Sink::deliver(&sink, &request)
        .await
        .unwrap();
    assert_eq!(dv.creates().values().sum::<usize>(), 1);

    let requests = dv.requests();
    let token = requests.iter().find(|r| r.target == "/token").unwrap();
    let form = token.body.as_str().unwrap();
    assert!(
        form.contains("grant_type=client_credentials")
            && form.contains("client_id=foldertrack-app")
    );
    assert!(
        form.contains(&format!(
            "scope={}",
            percent(&format!("{}/.default", dv.url))
        )),
        "{form}"
    );
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.target != "/token")
        .take(3)
        .collect();
    let lines: Vec<String> = api
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        lines,
        [
            format!("GET /api/data/v9.2/systemusers?$select=azureactivedirectoryobjectid&$filter=internalemailaddress eq '{ALICE}'"),
            "GET /api/data/v9.2/emails?$select=activityid&$filter=messageid eq '<q4''quote@contoso.com>'".to_owned(),
            "POST /api/data/v9.2/emails".to_owned(),
        ]
    );
    for r in &api {
        assert_eq!(
            r.headers["authorization"],
            format!("Bearer {DV_TOKEN}").as_str()
        );
    }
    // R34: the email calls act as the mailbox's owner.
    assert_eq!(
        api[1].headers["callerobjectid"],
        format!("aad-{ALICE}").as_str()
    );
    assert_eq!(
        api[2].headers["callerobjectid"],
        format!("aad-{ALICE}").as_str()
    );
    let create = &api[2].body;
    assert_eq!(create["subject"], "Quote 'Q4'");
    assert_eq!(create["directioncode"], false);
    assert_eq!(
        create["regardingobjectid_account@odata.bind"],
        format!("/accounts({CONTOSO})")
    );
    let parties: Vec<(u64, &str)> = create["email_activity_parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["participationtypemask"].as_u64().unwrap(),
                p["addressused"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        parties,
        [
            (1, "buyer@contoso.com"),
            (2, ALICE),
            (3, "carol@example.com")
        ]
    );
    assert!(
        create.get("description").is_none(),
        "no body unless the mapping asks (R35)"
    );

    // Moved to B: one re-link, by PATCH, to B's record; still one activity.
    c.move_message(ALICE, &in_a, "Inbox/B").unwrap();
    agent.pass().await;
    let last = dv.requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.target.as_str()),
        ("PATCH", "/api/data/v9.2/emails(act-1)")
    );
    assert_eq!(
        last.body["regardingobjectid_account@odata.bind"],
        format!("/accounts({FABRIKAM})")
    );
    assert_eq!(dv.creates().values().sum::<usize>(), 1);
    assert_eq!(
        dv.emails()["<q4'quote@contoso.com>"].as_deref(),
        Some(format!("/accounts({FABRIKAM})").as_str())
    );
}

fn percent(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
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
    hook.always(Some(502));
    let (code, out) = cli(&config, &["once"]);
    assert_eq!(code, 0, "{out}");
    let (_, items) = cli(&config, &["items", "--state", "undeliverable"]);
    assert!(
        items.contains("undeliverable") && items.contains("HTTP 502"),
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
