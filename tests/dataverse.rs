//! The Dynamics 365 sink against the strict fake Dataverse (`common::dataverse`): each test
//! is named after the point (dv1 … dv10) and the rule it checks; the fake refuses what
//! the real Web API refuses, so a request shaped wrongly fails here as it would there.

mod common;

use common::dataverse::{self, Dataverse};
use common::*;
use foldertrack::agent::delivery;
use foldertrack::deliver::explain::{self, Outcome, Query};
use foldertrack::deliver::{AnySink, Deliverer, Drained};
use foldertrack::store::Store;
use serde_json::{Value, json};
use std::time::Duration;

const FOLDER: &str = "Inbox/Customers";
const PARTNERS: &str = "Inbox/Partners";

/// Alice's Customers folder is regarding Contoso, Partners Fabrikam; bob's Customers Contoso.
fn standard_mapping() -> String {
    mailboxes(&[
        (
            ALICE,
            &[(FOLDER, Some(CONTOSO), ""), (PARTNERS, Some(FABRIKAM), "")],
        ),
        (BOB, &[(FOLDER, Some(CONTOSO), "")]),
    ])
}

/// A baselined agent delivering to `dv`; `sink_extra` goes into `[sink]`, `more` after it.
async fn agent_with(
    dv: &Dataverse,
    mapping: &str,
    act_as_owner: bool,
    sink_extra: &str,
    more: &str,
) -> Agent {
    let sim = simulator().await;
    for (mailbox, folder) in [(ALICE, FOLDER), (ALICE, PARTNERS), (BOB, FOLDER)] {
        sim.control().create_folder(mailbox, folder).unwrap();
    }
    let agent = Agent::with_extra(sim, mapping, |dir| {
        format!("{}{more}", dv.sink_toml_with(dir, act_as_owner, sink_extra))
    })
    .await;
    sync_all(&agent).await;
    agent
}

async fn agent(dv: &Dataverse, act_as_owner: bool) -> Agent {
    agent_with(dv, &standard_mapping(), act_as_owner, "", "").await
}

/// Syncs every mailbox (new mail becomes requests in the outbox) without delivering.
async fn sync_all(agent: &Agent) {
    for m in &agent.config.mailbox {
        let mut w = foldertrack::watch::mailbox::MailboxWatcher::new(
            agent.feed.clone(),
            agent.store.clone(),
            m.clone(),
        );
        w.sync(&|_| {}).await.unwrap();
    }
}

async fn round(agent: &Agent, d: &Deliverer<AnySink>) -> Drained {
    delivery::deliver(d, agent.feed.as_ref(), agent.store.as_ref())
        .await
        .unwrap()
}

/// Delivery rounds until the outbox is empty or `within` has passed.
async fn until_empty(agent: &Agent, d: &Deliverer<AnySink>, within: Duration) -> Drained {
    let deadline = tokio::time::Instant::now() + within;
    let mut total = Drained::default();
    loop {
        total += round(agent, d).await;
        if agent.outbox_len() == 0 || tokio::time::Instant::now() > deadline {
            return total;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Delivers `m` to the mailbox's Inbox and drags it into `folder`; returns its message id.
fn file(agent: &Agent, mailbox: &str, m: &foldertrack::sim::NewMessage, folder: &str) -> String {
    let c = agent.sim();
    let d = c.deliver(mailbox, "Inbox", m).unwrap();
    c.move_message(mailbox, &d.item_id, folder).unwrap();
    d.internet_message_id
}

fn posts(dv: &Dataverse, set: &str) -> Vec<dataverse::Seen> {
    dv.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.target == format!("{}/{set}", dataverse::API))
        .collect()
}

#[tokio::test]
async fn dv1_regarding_binds_through_the_entity_specific_navigation_property() {
    let dv = Dataverse::start().await;
    let agent = agent(&dv, false).await;
    let id = file(&agent, ALICE, &mail("regarding"), FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    let drained = round(&agent, &d).await;
    assert_eq!(drained.delivered, 1, "{drained:?}\n{:#?}", dv.log());
    let create = posts(&dv, "emails").remove(0);
    assert_eq!(
        create.body["regardingobjectid_account_email@odata.bind"],
        format!("/accounts({CONTOSO})")
    );
    assert_eq!(
        dv.email(&id).unwrap().regarding,
        Some(("account".into(), CONTOSO.into()))
    );
    // The name comes from the relationship metadata, read once.
    let reads = dv
        .lines()
        .iter()
        .filter(|l| l.contains("EntityDefinitions(LogicalName='email')/ManyToOneRelationships"))
        .count();
    assert_eq!(reads, 1);

    // Moved to Partners: one re-link, by PATCH with If-Match, through the same property.
    let c = agent.sim();
    let item = c.find_by_internet_message_id(&id).pop().unwrap();
    c.move_message(ALICE, &item.item_id, PARTNERS).unwrap();
    sync_all(&agent).await;
    assert_eq!(round(&agent, &d).await.delivered, 1);
    let patch = dv
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .find(|r| {
            r.body
                .get("regardingobjectid_account_email@odata.bind")
                .is_some()
        })
        .expect("a re-link");
    assert_eq!(patch.headers["if-match"], "*");
    assert_eq!(patch.status, 204);
    assert_eq!(
        dv.email(&id).unwrap().regarding,
        Some(("account".into(), FABRIKAM.into()))
    );
    assert_eq!(dv.creates()[&id], 1);
}

#[tokio::test]
async fn dv2_entity_sets_and_navigation_properties_come_from_the_metadata_and_are_cached() {
    let dv = Dataverse::start().await;
    // A custom table whose entity set and regarding property follow no rule.
    dv.add_custom_table(
        "cr7a1_casefile",
        "cr7a1_casefilerecords",
        "cr7a1_casefile",
        "cr7a1_regarding_casefile",
    );
    let case = dv.add_row("cr7a1_casefile", json!({"name": "Case 7", "statecode": 0}));
    dv.grant(dataverse::APP_USER, "prvAppendTocr7a1_casefile");
    let mapping = format!(
        "[[mailbox]]\naddress = \"{ALICE}\"\n[[mailbox.folder]]\npath = \"{FOLDER}\"\nregarding = {{ entity = \"cr7a1_casefile\", id = \"{case}\" }}\n"
    );
    let agent = agent_with(&dv, &mapping, false, "", "").await;
    let ids: Vec<String> = (0..3)
        .map(|i| file(&agent, ALICE, &mail(&format!("case {i}")), FOLDER))
        .collect();
    sync_all(&agent).await;
    let d = deliverer(&agent);
    assert_eq!(round(&agent, &d).await.delivered, 3, "{:#?}", dv.log());
    for id in &ids {
        assert_eq!(
            dv.email(id).unwrap().regarding,
            Some(("cr7a1_casefile".into(), case.clone()))
        );
    }
    let create = posts(&dv, "emails").remove(0);
    assert_eq!(
        create.body["cr7a1_regarding_casefile@odata.bind"],
        format!("/cr7a1_casefilerecords({case})")
    );
    let definitions = dv
        .lines()
        .iter()
        .filter(|l| l.contains("EntityDefinitions(LogicalName='cr7a1_casefile')"))
        .count();
    assert_eq!(definitions, 1, "read once, then cached");
}

#[tokio::test]
async fn dv3_a_tracked_mail_is_completed_as_received_or_sent_with_its_direction_and_times() {
    let dv = Dataverse::start().await;
    let agent = agent(&dv, false).await;
    let mut incoming = mail("incoming");
    incoming.sent = Some("2026-03-02T10:00:00Z".into());
    incoming.received = Some("2026-03-02T10:00:05Z".into());
    let mut outgoing = mail("outgoing");
    outgoing.from = ALICE.into();
    outgoing.to = vec!["buyer@contoso.com".into()];
    outgoing.sent = Some("2026-03-02T11:00:00Z".into());
    outgoing.received = Some("2026-03-02T11:00:01Z".into());
    let in_id = file(&agent, ALICE, &incoming, FOLDER);
    let out_id = file(&agent, ALICE, &outgoing, FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    assert_eq!(round(&agent, &d).await.delivered, 2, "{:#?}", dv.log());

    let received = dv.email(&in_id).unwrap();
    assert_eq!(received.state(), (1, 4), "Completed / Received");
    assert_eq!(received.row["directioncode"], false);
    assert_eq!(received.row["actualstart"], "2026-03-02T10:00:00Z");
    assert_eq!(received.row["actualend"], "2026-03-02T10:00:05Z");
    assert!(received.row.get("senton").is_none());
    let sent = dv.email(&out_id).unwrap();
    assert_eq!(sent.state(), (1, 3), "Completed / Sent");
    assert_eq!(sent.row["directioncode"], true);
    assert_eq!(sent.row["actualend"], "2026-03-02T11:00:00Z");
    // Created open, then completed by an update that cannot create (If-Match: *).
    for create in posts(&dv, "emails") {
        assert!(create.body.get("statecode").is_none() && create.body.get("senton").is_none());
    }
    let completions: Vec<_> = dv
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.body.get("statecode").is_some())
        .collect();
    assert_eq!(completions.len(), 2);
    assert!(
        completions
            .iter()
            .all(|r| r.headers["if-match"] == "*" && r.status == 204)
    );
}

#[tokio::test]
async fn dv3_an_activity_left_open_by_an_interrupted_delivery_is_completed_on_the_next() {
    let dv = Dataverse::start().await;
    let agent = agent(&dv, false).await;
    let id = file(&agent, ALICE, &mail("interrupted"), FOLDER);
    sync_all(&agent).await;
    // The completing update is refused once (as if the agent had died after the create).
    dv.revoke(dataverse::APP_USER, "prvWriteActivity");
    let d = deliverer(&agent);
    round(&agent, &d).await;
    assert_eq!(dv.email(&id).unwrap().state(), (0, 1));
    dv.grant(dataverse::APP_USER, "prvWriteActivity");
    foldertrack::deliver::items::retry(agent.store.as_ref(), None, None, false)
        .await
        .unwrap();
    assert_eq!(
        until_empty(&agent, &d, Duration::from_secs(5))
            .await
            .delivered,
        1
    );
    assert_eq!(dv.email(&id).unwrap().state(), (1, 4));
    assert_eq!(dv.creates()[&id], 1, "found again, not created twice");
}

/// `(participation, bound table, address)` of an email's parties.
fn parties(email: &dataverse::Email) -> Vec<(i64, Option<String>, Option<String>)> {
    email
        .parties
        .iter()
        .map(|p| {
            (
                p.mask,
                p.target.as_ref().map(|(t, _)| t.clone()),
                p.address.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn dv4_parties_resolve_to_users_contacts_accounts_and_leads_and_the_rest_stay_addresses() {
    let dv = Dataverse::start().await;
    dv.add_row(
        "contact",
        json!({"fullname": "Buyer", "emailaddress1": "Buyer@Contoso.com", "statecode": 0}),
    );
    dv.add_row(
        "lead",
        json!({"fullname": "Buyer (lead)", "emailaddress1": "buyer@contoso.com", "statecode": 0}),
    );
    dv.add_row(
        "lead",
        json!({"fullname": "Dave", "emailaddress1": "dave@fabrikam.com", "statecode": 0}),
    );
    dv.add_row(
        "account",
        json!({"name": "Old", "emailaddress1": "dave@fabrikam.com", "statecode": 1}),
    );
    let agent = agent(&dv, false).await;
    let mut m = mail("parties");
    m.cc = vec![
        "Carol <carol@example.com>".into(),
        "dave@fabrikam.com".into(),
    ];
    let id = file(&agent, ALICE, &m, FOLDER);
    let again = file(&agent, ALICE, &mail("the same buyer again"), FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    assert_eq!(round(&agent, &d).await.delivered, 2, "{:#?}", dv.log());
    let s = |t: &str| Some(t.to_owned());
    assert_eq!(
        parties(&dv.email(&id).unwrap()),
        [
            (1, s("contact"), s("buyer@contoso.com")),
            (2, s("systemuser"), s(ALICE)),
            (3, None, s("carol@example.com")),
            (3, s("lead"), s("dave@fabrikam.com")),
        ],
        "a contact before a lead; an inactive account is no match"
    );
    assert_eq!(parties(&dv.email(&again).unwrap())[0].1, s("contact"));
    // Resolutions are cached: the buyer was looked up once for both mails.
    let lookups = dv
        .lines()
        .iter()
        .filter(|l| l.starts_with("GET /api/data/v9.2/contacts") && l.contains("buyer@contoso.com"))
        .count();
    assert_eq!(lookups, 1);
}

#[tokio::test]
async fn dv4_the_tables_tried_and_their_order_are_configurable() {
    let dv = Dataverse::start().await;
    dv.add_row(
        "contact",
        json!({"fullname": "Buyer", "emailaddress1": "buyer@contoso.com", "statecode": 0}),
    );
    dv.add_row(
        "lead",
        json!({"fullname": "Buyer (lead)", "emailaddress1": "buyer@contoso.com", "statecode": 0}),
    );
    let agent = agent_with(
        &dv,
        &standard_mapping(),
        false,
        "resolve_parties = [\"lead\", \"contact\"]",
        "",
    )
    .await;
    let id = file(&agent, ALICE, &mail("leads first"), FOLDER);
    sync_all(&agent).await;
    assert_eq!(round(&agent, &deliverer(&agent)).await.delivered, 1);
    let p = parties(&dv.email(&id).unwrap());
    assert_eq!(p[0].1.as_deref(), Some("lead"));
    assert_eq!(p[1].1, None, "users are not tried: alice stays an address");
}

#[tokio::test]
async fn dv5_an_expired_token_is_refreshed_once_and_the_call_retried() {
    let dv = Dataverse::start().await;
    let agent = agent(&dv, false).await;
    let d = deliverer(&agent);
    file(&agent, ALICE, &mail("first"), FOLDER);
    sync_all(&agent).await;
    assert_eq!(round(&agent, &d).await.delivered, 1);
    dv.expire_tokens();
    file(&agent, ALICE, &mail("after expiry"), FOLDER);
    sync_all(&agent).await;
    let drained = round(&agent, &d).await;
    assert_eq!(
        (drained.delivered, drained.retrying, drained.rejected),
        (1, 0, 0)
    );
    assert_eq!(dv.tokens_issued(), 2);
    let refused = dv.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 1, "one 401, then the fresh token");

    // A refresh the identity provider refuses is a configuration error, said as such.
    dv.expire_tokens();
    dv.refuse_client(true);
    file(&agent, ALICE, &mail("credentials revoked"), FOLDER);
    sync_all(&agent).await;
    let drained = round(&agent, &d).await;
    assert_eq!(drained.rejected, 1);
    let items = foldertrack::deliver::items::problem_items(agent.store.as_ref(), None).unwrap();
    assert!(
        items[0].reason.contains("refused the client credentials"),
        "{}",
        items[0].reason
    );
}

#[tokio::test]
async fn dv7_a_429_stops_every_call_until_retry_after_and_burns_no_attempt() {
    let dv = Dataverse::start().await;
    let agent = agent_with(
        &dv,
        &standard_mapping(),
        false,
        "",
        "\n[delivery]\nmax_attempts = 1\n",
    )
    .await;
    let ids: Vec<String> = (0..6)
        .map(|i| file(&agent, ALICE, &mail(&format!("busy {i}")), FOLDER))
        .collect();
    sync_all(&agent).await;
    dv.throttle_after(12, Duration::from_secs(2));
    let d = deliverer(&agent);
    let drained = until_empty(&agent, &d, Duration::from_secs(30)).await;
    let (inside, answered) = dv.throttle_counts();
    assert!(answered >= 1, "the window opened");
    assert_eq!(
        inside,
        0,
        "no call inside the Retry-After window:\n{:#?}",
        dv.log()
    );
    assert!(drained.throttled >= 1, "{drained:?}");
    assert_eq!(
        (drained.undeliverable, drained.rejected),
        (0, 0),
        "a 429 is not an attempt"
    );
    for id in &ids {
        assert_eq!(dv.creates().get(id), Some(&1));
    }
}

#[tokio::test]
async fn dv7_calls_run_side_by_side_but_never_above_the_configured_cap() {
    let dv = Dataverse::start().await;
    dv.latency(Duration::from_millis(100));
    let agent = agent_with(
        &dv,
        &standard_mapping(),
        false,
        "max_concurrent_requests = 3",
        "",
    )
    .await;
    for i in 0..8 {
        file(&agent, ALICE, &mail(&format!("parallel {i}")), FOLDER);
    }
    sync_all(&agent).await;
    let d = deliverer(&agent);
    assert_eq!(round(&agent, &d).await.delivered, 8);
    let most = dv.max_in_flight();
    assert!((2..=3).contains(&most), "{most} calls at once");
}

#[tokio::test]
async fn dv8_r34_a_secured_column_is_left_out_and_the_history_says_which_and_why() {
    let dv = Dataverse::start().await;
    dv.secure("email", "description");
    // The application user and bob may write the body; alice may not.
    dv.grant_field(dataverse::APP_USER, "email", "description");
    dv.grant_field(BOB, "email", "description");
    let mapping = mailboxes(&[
        (ALICE, &[(FOLDER, Some(CONTOSO), "include_body = true\n")]),
        (BOB, &[(FOLDER, Some(CONTOSO), "include_body = true\n")]),
    ]);
    let agent = agent_with(&dv, &mapping, true, "", "").await;
    let alices = file(&agent, ALICE, &mail("alice's"), FOLDER);
    let bobs = file(&agent, BOB, &mail("bob's"), FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    let drained = round(&agent, &d).await;
    assert_eq!(
        (drained.delivered, drained.rejected),
        (2, 0),
        "{:#?}",
        dv.log()
    );
    let alice_email = dv.email(&alices).unwrap();
    assert!(alice_email.row.get("description").is_none());
    assert_eq!(alice_email.row["subject"], "alice's", "the rest is written");
    assert!(
        dv.email(&bobs).unwrap().row["description"]
            .as_str()
            .unwrap()
            .contains("secret body")
    );
    let record = agent
        .store
        .message(&foldertrack::tracking::Identity::MessageId(alices.clone()).request_id())
        .unwrap()
        .unwrap();
    let history: Vec<&str> = record.history.iter().map(|h| h.what.as_str()).collect();
    assert!(
        history.iter().any(|h| h.contains("description left out")
            && h.contains("field security")
            && h.contains(ALICE)),
        "{history:?}"
    );
}

#[tokio::test]
async fn r21_r34_dataverse_gets_exact_requests_for_a_received_mail_and_never_a_second_activity() {
    let dv = Dataverse::start().await;
    let agent = agent(&dv, true).await;
    let mut m = mail("Quote 'Q4'");
    m.internet_message_id = Some("<q4'quote+1@contoso.com>".into());
    m.from = "Buyer <buyer@contoso.com>".into();
    m.to = vec![ALICE.into(), "Carol <carol@example.com>".into()];
    m.sent = Some("2026-11-24T09:30:00Z".into());
    m.received = Some("2026-11-24T09:30:04Z".into());
    let id = file(&agent, ALICE, &m, FOLDER);
    sync_all(&agent).await;
    let request = agent.store.outbox(1).unwrap().remove(0).1.request;
    let d = deliverer(&agent);
    assert_eq!(round(&agent, &d).await.delivered, 1, "{:#?}", dv.log());
    // The same event offered again (a crash before the outbox let go of it): the lookup
    // finds the completed activity; nothing is created or changed (R21).
    let before = dv.requests().len();
    foldertrack::deliver::Sink::deliver(&d.sink, &request)
        .await
        .unwrap();
    assert_eq!(dv.creates()[&id], 1);
    assert_eq!(
        dv.requests().len() - before,
        1,
        "one lookup, nothing written"
    );

    let alice = dv.user(ALICE);
    let lines = dv.lines();
    let expected = [
        format!("GET /api/data/v9.2/systemusers?$select=systemuserid,azureactivedirectoryobjectid,isdisabled&$filter=internalemailaddress eq '{ALICE}'"),
        "GET /api/data/v9.2/emails?$select=activityid,messageid,statecode,_regardingobjectid_value,modifiedon&$filter=messageid eq '<q4''quote+1@contoso.com>'".to_owned(),
        "GET /api/data/v9.2/EntityDefinitions(LogicalName='email')/ManyToOneRelationships?$select=ReferencedEntity,ReferencingEntityNavigationPropertyName&$filter=ReferencingAttribute eq 'regardingobjectid'".to_owned(),
        "GET /api/data/v9.2/EntityDefinitions(LogicalName='account')?$select=EntitySetName,PrimaryIdAttribute,Privileges".to_owned(),
    ];
    assert_eq!(lines[..4], expected);
    let all = dv.requests();
    let create = all
        .iter()
        .find(|r| r.method == "POST" && r.target.ends_with("/emails"))
        .unwrap();
    let complete = all.iter().find(|r| r.method == "PATCH").unwrap();
    for r in [create, complete] {
        assert_eq!(
            r.headers["callerobjectid"],
            alice.aad.as_str(),
            "R34: as the owner"
        );
        assert!(
            r.headers["authorization"]
                .to_str()
                .unwrap()
                .starts_with("Bearer dv-token-")
        );
    }
    assert_eq!(create.body["subject"], "Quote 'Q4'");
    assert_eq!(create.body["messageid"], "<q4'quote+1@contoso.com>");
    assert!(
        create.body.get("description").is_none(),
        "no body unless the mapping asks (R35)"
    );
    let email = dv.email(&id).unwrap();
    let s = |t: &str| Some(t.to_owned());
    assert_eq!(
        parties(&email),
        [
            (1, None, s("buyer@contoso.com")),
            (2, s("systemuser"), s(ALICE)),
            (2, None, s("carol@example.com")),
        ]
    );
    assert_eq!(email.state(), (1, 4));
    assert_eq!(email.created_by, alice.id);
    print_requests(&all);
}

/// The requests as people read them (method, URL, headers without the token, body).
fn print_requests(all: &[dataverse::Seen]) {
    for r in all.iter().filter(|r| r.target != "/token") {
        println!("{} {}", r.method, r.raw);
        let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str()).collect();
        names.sort();
        for name in names {
            let value = if name == "authorization" {
                "Bearer <token>"
            } else {
                r.headers[name].to_str().unwrap_or("")
            };
            println!("{name}: {value}");
        }
        if r.body != Value::Null {
            println!("\n{}", serde_json::to_string_pretty(&r.body).unwrap());
        }
        println!("-> {}\n", r.status);
    }
}

/// Whether any request so far names this message id.
fn asked_about(dv: &Dataverse, message_id: &str) -> bool {
    let quoted = message_id.replace('\'', "''");
    dv.requests()
        .iter()
        .any(|r| r.target.contains(&quoted) || r.body.to_string().contains(message_id))
}

const HOLD_QUICKLY: &str = "\n[delivery]\nmax_attempts = 1\nregarding_probe_secs = 1\n";

#[tokio::test]
async fn r25_dv6_a_missing_regarding_record_holds_its_mapping_without_burning_attempts() {
    let dv = Dataverse::start().await;
    let agent = agent_with(&dv, &standard_mapping(), false, "", HOLD_QUICKLY).await;
    dv.remove_row("account", CONTOSO);
    let first = file(&agent, ALICE, &mail("to a deleted account"), FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    let drained = round(&agent, &d).await;
    assert_eq!(
        (
            drained.regarding_held,
            drained.rejected,
            drained.undeliverable
        ),
        (1, 0, 0),
        "{drained:?}"
    );
    let holds = agent.store.holds().unwrap();
    assert_eq!(holds.len(), 1);
    assert!(
        holds[0].reason.contains("does not exist")
            && holds[0].reason.contains("point the mapping's regarding"),
        "{}",
        holds[0].reason
    );
    let (_, entry) = agent.store.outbox(1).unwrap().remove(0);
    assert_eq!(entry.attempts, 0, "no attempt burned");
    // "Why isn't it in the CRM?": explain tells the hold, its reason and that it goes out later.
    let query = Query::from_parts(Some(first.clone()), None, None, None).unwrap();
    let told = explain::tell(
        &explain::gather(agent.store.as_ref(), &query).unwrap(),
        &agent.config.explain_settings(),
    );
    assert_eq!(told.stories[0].outcome, Outcome::Held, "{}", told.text());
    assert!(
        told.text().contains("is unavailable") && told.text().contains("does not exist"),
        "{}",
        told.text()
    );

    // More mail for the held record waits untried; the other mapping's goes through.
    let second = file(&agent, ALICE, &mail("also to it"), FOLDER);
    let partners = file(&agent, ALICE, &mail("to fabrikam"), PARTNERS);
    sync_all(&agent).await;
    let drained = round(&agent, &d).await;
    assert_eq!(drained.delivered, 1);
    assert!(dv.email(&partners).is_some());
    assert!(!asked_about(&dv, &second), "a held entry is not attempted");
    assert_eq!(agent.outbox_len(), 2);

    // The record is back: the next probe gets one through, and the rest follow.
    dv.put_row(
        "account",
        CONTOSO,
        json!({"name": "Contoso", "statecode": 0}),
    );
    let drained = until_empty(&agent, &d, Duration::from_secs(10)).await;
    assert_eq!(drained.delivered, 2, "{drained:?}");
    assert!(agent.store.holds().unwrap().is_empty());
    for id in [&first, &second] {
        assert_eq!(
            dv.email(id).unwrap().regarding,
            Some(("account".into(), CONTOSO.into()))
        );
        assert_eq!(dv.creates()[id], 1);
    }
}

#[tokio::test]
async fn r25_when_the_mapping_is_re_pointed_the_held_mail_follows_it() {
    let dv = Dataverse::start().await;
    let mut agent = agent_with(&dv, &standard_mapping(), false, "", HOLD_QUICKLY).await;
    dv.remove_row("account", CONTOSO);
    let id = file(&agent, ALICE, &mail("to a deleted account"), FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    assert_eq!(round(&agent, &d).await.regarding_held, 1);
    // The admin points the folder at Fabrikam and reloads (R8, R9).
    agent.reconfigure(&mailboxes(&[
        (
            ALICE,
            &[(FOLDER, Some(FABRIKAM), ""), (PARTNERS, Some(FABRIKAM), "")],
        ),
        (BOB, &[(FOLDER, Some(CONTOSO), "")]),
    ]));
    sync_all(&agent).await;
    let drained = until_empty(&agent, &d, Duration::from_secs(10)).await;
    assert_eq!(drained.rejected, 0, "{drained:?}");
    assert_eq!(agent.outbox_len(), 0);
    assert_eq!(
        dv.email(&id).unwrap().regarding,
        Some(("account".into(), FABRIKAM.into()))
    );
    assert_eq!(dv.creates()[&id], 1);
    // Bob's mapping still points at the deleted record, but nothing waits for it any more.
    assert!(agent.store.holds().unwrap().is_empty());
}

#[tokio::test]
async fn r25_when_no_mapping_points_at_the_held_record_any_more_the_hold_ends() {
    let dv = Dataverse::start().await;
    let one = mailboxes(&[(
        ALICE,
        &[(FOLDER, Some(CONTOSO), ""), (PARTNERS, Some(FABRIKAM), "")],
    )]);
    let mut agent = agent_with(&dv, &one, false, "", HOLD_QUICKLY).await;
    dv.remove_row("account", CONTOSO);
    let stays = file(&agent, ALICE, &mail("stays in the folder"), FOLDER);
    let moved = file(&agent, ALICE, &mail("moved out before the reload"), FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    assert_eq!(round(&agent, &d).await.regarding_held, 2);
    let c = agent.sim();
    let item = c.find_by_internet_message_id(&moved).pop().unwrap();
    c.move_message(ALICE, &item.item_id, "Inbox").unwrap();
    sync_all(&agent).await;
    agent.reconfigure(&mailboxes(&[(
        ALICE,
        &[(FOLDER, Some(FABRIKAM), ""), (PARTNERS, Some(FABRIKAM), "")],
    )]));
    sync_all(&agent).await;
    let drained = until_empty(&agent, &d, Duration::from_secs(10)).await;
    assert!(agent.store.holds().unwrap().is_empty(), "{drained:?}");
    assert_eq!(
        dv.email(&stays).unwrap().regarding,
        Some(("account".into(), FABRIKAM.into()))
    );
    // The mail that left the folder is still linked to the deleted record: rejected, said why.
    let items = foldertrack::deliver::items::problem_items(agent.store.as_ref(), None).unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(
        items[0].reason.contains("does not exist")
            && items[0].reason.contains("no mapping points at it"),
        "{}",
        items[0].reason
    );
    assert!(dv.email(&moved).is_none());
}

#[tokio::test]
async fn r25_an_owner_who_may_not_append_to_the_record_holds_only_that_mailbox() {
    let dv = Dataverse::start().await;
    let agent = agent_with(&dv, &standard_mapping(), true, "", HOLD_QUICKLY).await;
    dv.revoke(ALICE, "prvAppendToAccount");
    let alices = file(&agent, ALICE, &mail("alice may not"), FOLDER);
    let bobs = file(&agent, BOB, &mail("bob may"), FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    let drained = round(&agent, &d).await;
    assert_eq!(
        (drained.delivered, drained.regarding_held, drained.rejected),
        (1, 1, 0),
        "{drained:?}"
    );
    assert!(dv.email(&bobs).is_some() && dv.email(&alices).is_none());
    let holds = agent.store.holds().unwrap();
    assert_eq!(holds[0].mailbox.as_deref(), Some(ALICE));
    assert!(
        holds[0].reason.contains("prvAppendToAccount"),
        "{}",
        holds[0].reason
    );
    dv.grant(ALICE, "prvAppendToAccount");
    assert_eq!(
        until_empty(&agent, &d, Duration::from_secs(10))
            .await
            .delivered,
        1
    );
    assert_eq!(
        dv.email(&alices).unwrap().regarding,
        Some(("account".into(), CONTOSO.into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r25_status_shows_a_mapping_paused_for_its_regarding_with_the_fix() {
    let dv = Dataverse::start().await;
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, FOLDER).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[cadence]\nbusy_secs = 1\nnormal_secs = 1\nquiet_secs = 1\njitter = 0.0\n{HOLD_QUICKLY}",
        dv.sink_toml(dir.path(), false)
    );
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[(ALICE, &[(FOLDER, Some(CONTOSO), "")])]),
        &extra,
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin = dir.path().join("store.admin");
    assert!(eventually(Duration::from_secs(10), || admin.exists()).await);
    dv.remove_row("account", CONTOSO);
    // The first sync is a baseline; the mail moved in after it is tracked.
    assert!(
        eventually(Duration::from_secs(10), || !dv.lines().is_empty()
            || sim.control().calls().len() > 3)
        .await
    );
    drag(&c, ALICE, "to a deleted account", FOLDER);
    let paused = eventually(Duration::from_secs(15), || {
        cli(&config, &["status"])
            .1
            .contains("paused: regarding_unavailable")
    })
    .await;
    let (_, table) = cli(&config, &["status"]);
    assert!(paused, "{table}");
    assert!(
        table.contains("does not exist") && table.contains("foldertrack reload"),
        "{table}"
    );
    let (_, json) = cli(&config, &["status", "--json"]);
    let status: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        status["mailboxes"][0]["mappings"][0]["state"]["reason"],
        "regarding_unavailable"
    );
    assert_eq!(
        status["mailboxes"][0]["held"][0]["regarding"]["id"],
        CONTOSO
    );
    dv.put_row(
        "account",
        CONTOSO,
        json!({"name": "Contoso", "statecode": 0}),
    );
    let active = eventually(Duration::from_secs(15), || {
        let t = cli(&config, &["status"]).1;
        t.contains("active") && !t.contains("paused")
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(active, "resumed once the record was back");
    assert_eq!(dv.creates().values().sum::<usize>(), 1);
}

/// A config for the simulator and `dv`, acting as the owners; alice maps Customers and
/// Partners, bob Customers.
fn check_config_file(
    dv: &Dataverse,
    sim: &foldertrack::sim::SimHandle,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let c = sim.control();
    for (mailbox, folder) in [(ALICE, FOLDER), (ALICE, PARTNERS), (BOB, FOLDER)] {
        c.create_folder(mailbox, folder).unwrap();
    }
    write_config(
        dir,
        &sim.ews_url(),
        &standard_mapping(),
        &dv.sink_toml(dir, true),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_with_a_dynamics_sink_verifies_sign_in_org_privileges_and_each_regarding() {
    let dv = Dataverse::start().await;
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = check_config_file(&dv, &sim, dir.path());
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 0, "{out}");
    for line in [
        format!("ok   Dynamics: signed in for {}", dv.url),
        format!(
            "ok   Dynamics: {} answers; the application user is {}",
            dv.url,
            dv.app_user().id
        ),
        "ok   Dynamics: the application user holds".to_owned(),
        format!("ok   Dynamics: the owner of {ALICE} holds"),
        format!(
            "ok   Dynamics: {ALICE} {FOLDER}: regarding account({CONTOSO}) exists and may be appended to"
        ),
        format!("ok   Dynamics: {BOB} {FOLDER}: regarding account({CONTOSO}) exists"),
    ] {
        assert!(out.contains(&line), "{line}\n{out}");
    }
    assert!(
        out.contains("prvActOnBehalfOfAnotherUser") && out.contains("prvAppendToAccount"),
        "{out}"
    );

    // What is missing is named, each on its line.
    dv.remove_row("account", FABRIKAM);
    dv.revoke(ALICE, "prvAppendToAccount");
    dv.revoke(dataverse::APP_USER, "prvReadLead");
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 1, "{out}");
    for line in [
        format!("FAIL Dynamics: {ALICE} {PARTNERS}: regarding account({FABRIKAM}) does not exist"),
        format!("FAIL Dynamics: the owner of {ALICE} lacks prvAppendToAccount"),
        "FAIL Dynamics: the application user lacks prvReadLead".to_owned(),
        format!(
            "FAIL Dynamics: {ALICE} {FOLDER}: regarding account({CONTOSO}): the owner of {ALICE} may not append to it"
        ),
        format!(
            "ok   Dynamics: {BOB} {FOLDER}: regarding account({CONTOSO}) exists and may be appended to"
        ),
    ] {
        assert!(out.contains(&line), "{line}\n{out}");
    }

    // Without delegation the owners cannot be acted as; a refused sign-in stops the rest.
    dv.revoke(dataverse::APP_USER, "prvActOnBehalfOfAnotherUser");
    let (_, out) = cli(&config, &["check-config"]);
    assert!(
        out.contains("the application user lacks prvActOnBehalfOfAnotherUser"),
        "{out}"
    );
    dv.refuse_client(true);
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL Dynamics sign-in") && out.contains("refused the client credentials"),
        "{out}"
    );
    assert!(!out.contains("answers;"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_names_a_table_that_cannot_be_regarding_and_an_application_user_without_a_role()
 {
    let dv = Dataverse::start().await;
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = check_config_file(&dv, &sim, dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "entity = \"account\", id = \"00000000-0000-0000-0000-0000000fab00\"",
            "entity = \"invoice_line\", id = \"00000000-0000-0000-0000-0000000fab00\"",
        ),
    )
    .unwrap();
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL Dynamics: an email cannot be regarding a invoice_line"),
        "{out}"
    );
    // An application user without a role: every privilege it lacks is named.
    dv.with(|o| {
        let app = o.app;
        o.users[app].privileges.clear();
    });
    let (_, out) = cli(&config, &["check-config"]);
    assert!(
        out.contains("FAIL Dynamics: the application user lacks"),
        "{out}"
    );
}

/// R24: a person re-links a tracked mail in Dynamics, then its user moves it to another mapped
/// folder. Who wins follows `regarding_policy`, and the history says what happened.
#[tokio::test]
async fn r24_a_regarding_changed_in_dynamics_is_replaced_kept_or_weighed_by_time() {
    let hour = jiff::SignedDuration::from_hours(1);
    let cases = [
        ("folder_wins", -1, "replaced"),
        ("manual_wins", -1, "kept"),
        ("last_action_wins", -1, "replaced"),
        ("last_action_wins", 1, "kept"),
    ];
    for (policy, change_in_hours, outcome) in cases {
        let dv = Dataverse::start().await;
        let elsewhere = dv.add_row("account", serde_json::json!({"name": "Northwind"}));
        let sink = format!("regarding_policy = \"{policy}\"\n");
        let agent = agent_with(&dv, &standard_mapping(), false, &sink, "").await;
        let id = file(&agent, ALICE, &mail("re-linked by hand"), FOLDER);
        sync_all(&agent).await;
        let d = deliverer(&agent);
        assert_eq!(round(&agent, &d).await.delivered, 1);
        let changed_at = jiff::Timestamp::now() + hour * change_in_hours;
        dv.change_regarding(&id, "account", &elsewhere, changed_at);

        let c = agent.sim();
        let item = c.find_by_internet_message_id(&id).pop().unwrap();
        c.move_message(ALICE, &item.item_id, PARTNERS).unwrap();
        sync_all(&agent).await;
        assert_eq!(round(&agent, &d).await.delivered, 1, "{policy}");
        let expected = match outcome {
            "kept" => elsewhere.clone(),
            _ => FABRIKAM.to_owned(),
        };
        assert_eq!(
            dv.email(&id).unwrap().regarding,
            Some(("account".into(), expected)),
            "{policy}, changed {change_in_hours} h from the move"
        );
        let record = agent
            .store
            .message(&foldertrack::tracking::Identity::MessageId(id.clone()).request_id())
            .unwrap()
            .unwrap();
        assert!(
            record
                .history
                .iter()
                .any(|h| h.what.contains(outcome) && h.what.contains(policy)),
            "{policy}: {:?}",
            record.history
        );
        assert_eq!(dv.creates()[&id], 1);
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn history(agent: &Agent, message_id: &str) -> Vec<String> {
    let id = foldertrack::tracking::Identity::MessageId(message_id.to_owned()).request_id();
    let record = agent.store.message(&id).unwrap().unwrap();
    record.history.iter().map(|h| h.what.clone()).collect()
}

#[tokio::test]
async fn dv9_attachments_become_activitymimeattachments_under_a_size_cap_when_asked() {
    let dv = Dataverse::start().await;
    let agent = agent_with(
        &dv,
        &standard_mapping(),
        true,
        "attachments = true\nattachment_max_bytes = 1000",
        "",
    )
    .await;
    let offer: Vec<u8> = (0..=255u8).collect();
    let mut m = mail("with files");
    m.attachments = vec![
        foldertrack::sim::NewAttachment {
            name: "Angebot Q4.pdf".into(),
            content_type: "application/pdf".into(),
            content: base64(&offer),
        },
        foldertrack::sim::NewAttachment {
            name: "big.zip".into(),
            content_type: "application/zip".into(),
            content: base64(&[7u8; 5000]),
        },
    ];
    let id = file(&agent, ALICE, &m, FOLDER);
    sync_all(&agent).await;
    let d = deliverer(&agent);
    // The first try stops after the attachments (the completion is refused); the next one
    // finds the open email and its attachment, and writes nothing twice.
    dv.revoke(ALICE, "prvWriteActivity");
    assert_eq!(round(&agent, &d).await.rejected, 1, "{:#?}", dv.log());
    assert_eq!(dv.attachments().len(), 1);
    dv.grant(ALICE, "prvWriteActivity");
    foldertrack::deliver::items::retry(agent.store.as_ref(), None, None, false)
        .await
        .unwrap();
    assert_eq!(
        until_empty(&agent, &d, Duration::from_secs(5))
            .await
            .delivered,
        1
    );
    let email = dv.email(&id).unwrap();
    assert_eq!(email.state(), (1, 4), "completed after its attachments");
    let files = dv.attachments();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].email, email.id);
    assert_eq!(files[0].row["filename"], "Angebot Q4.pdf");
    assert_eq!(files[0].row["mimetype"], "application/pdf");
    assert_eq!(files[0].row["body"], base64(&offer).as_str());
    let alice = dv.user(ALICE);
    let post = posts(&dv, "activitymimeattachments").remove(0);
    assert_eq!(post.headers["callerobjectid"], alice.aad.as_str());
    let h = history(&agent, &id);
    assert!(
        h.iter()
            .any(|l| l.contains("big.zip (5000 bytes) not copied")
                && l.contains("attachment_max_bytes")),
        "{h:?}"
    );
}

#[tokio::test]
async fn dv9_attachments_are_not_copied_unless_asked_and_a_moved_mail_is_written_without() {
    let dv = Dataverse::start().await;
    let mut m = mail("with a file");
    m.attachments = vec![foldertrack::sim::NewAttachment {
        name: "a.txt".into(),
        content_type: "text/plain".into(),
        content: base64(b"hello"),
    }];
    let off = agent(&dv, false).await;
    let id = file(&off, ALICE, &m, FOLDER);
    sync_all(&off).await;
    assert_eq!(round(&off, &deliverer(&off)).await.delivered, 1);
    assert!(
        dv.email(&id).is_some() && dv.attachments().is_empty(),
        "off by default"
    );
    assert!(
        !dv.lines()
            .iter()
            .any(|l| l.contains("activitymimeattachments"))
    );

    let on = agent_with(&dv, &standard_mapping(), false, "attachments = true", "").await;
    m.subject = "moved before delivery".into();
    m.internet_message_id = None;
    let moved = file(&on, ALICE, &m, FOLDER);
    sync_all(&on).await;
    // Moved on after the sync: its attachment ids no longer resolve.
    let c = on.sim();
    let item = c.find_by_internet_message_id(&moved).pop().unwrap();
    c.move_message(ALICE, &item.item_id, "Inbox").unwrap();
    assert_eq!(round(&on, &deliverer(&on)).await.delivered, 1);
    assert_eq!(dv.email(&moved).unwrap().state(), (1, 4));
    let h = history(&on, &moved);
    assert!(
        h.iter().any(|l| l.contains("attachments not copied")),
        "{h:?}"
    );
}

#[tokio::test]
async fn dv9_a_file_over_the_organisations_upload_limit_is_noted_and_the_mail_still_written() {
    let dv = Dataverse::start().await;
    let agent = agent_with(
        &dv,
        &standard_mapping(),
        false,
        "attachments = true\nattachment_max_bytes = 10000000",
        "",
    )
    .await;
    let mut m = mail("with a large file");
    // 4 MB of file is 5.3 MB of Base64: over Dataverse's default 5 MB upload limit.
    m.attachments = vec![foldertrack::sim::NewAttachment {
        name: "scan.tif".into(),
        content_type: "image/tiff".into(),
        content: base64(&vec![1u8; 4_000_000]),
    }];
    let id = file(&agent, ALICE, &m, FOLDER);
    sync_all(&agent).await;
    let drained = round(&agent, &deliverer(&agent)).await;
    assert_eq!(
        drained.delivered,
        1,
        "{drained:?} {:?}",
        history(&agent, &id)
    );
    assert_eq!(dv.email(&id).unwrap().state(), (1, 4));
    assert!(dv.attachments().is_empty());
    let h = history(&agent, &id);
    assert!(
        h.iter().any(|l| l
            .contains("scan.tif (4000000 bytes) not copied: over the organisation's upload limit")),
        "{h:?}"
    );
}

#[tokio::test]
async fn dv10_a_mail_delivered_by_two_agents_with_their_own_stores_is_one_activity() {
    // Two members may both watch a mailbox for a while when the member count changes without
    // a handover: the sink looks the mail up by its message id before creating it.
    let dv = Dataverse::start().await;
    let first = agent(&dv, false).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = dv.sink_toml(dir.path(), false);
    let path = write_config_on(Api::Ews, dir.path(), &first.sim, &standard_mapping(), &sink);
    let config = foldertrack::config::Config::load(&path).unwrap();
    let feed = std::sync::Arc::new(foldertrack::agent::feed(&config).unwrap());
    let store =
        std::sync::Arc::new(foldertrack::store::SledStore::open(&config.store.path).unwrap());
    let second = async || {
        for m in &config.mailbox {
            let mut w = foldertrack::watch::mailbox::MailboxWatcher::new(
                feed.clone(),
                store.clone(),
                m.clone(),
            );
            w.sync(&|_| {}).await.unwrap();
        }
        let sink = AnySink::open(config.sink_settings().unwrap()).unwrap();
        let d = Deliverer::new(sink.with_feed(feed.clone()), &config.delivery_settings());
        delivery::deliver(&d, feed.as_ref(), store.as_ref())
            .await
            .unwrap()
    };
    assert_eq!(second().await.delivered, 0, "the second's baseline");
    let id = file(&first, ALICE, &mail("watched twice"), FOLDER);
    sync_all(&first).await;
    assert_eq!(round(&first, &deliverer(&first)).await.delivered, 1);
    assert_eq!(second().await.delivered, 1, "{:#?}", dv.log());
    assert_eq!(
        dv.creates()[&id],
        1,
        "found by its message id, not created again"
    );
    let activities = dv
        .emails()
        .into_iter()
        .filter(|e| e.row["messageid"] == id.as_str());
    assert_eq!(activities.count(), 1);
}
