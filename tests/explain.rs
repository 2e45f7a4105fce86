//! "Why wasn't my email tracked?" against the simulator: each story `explain` tells — tracked
//! and delivered, baseline (R10), folder not mapped (R2), mapping paused (R5), no regarding
//! (R7), Sent Items not watched (R16), rejected (R32) and waiting for a retry (R30) — found by
//! Message-ID, subject fragment or mailbox + folder; on the command line with the agent stopped,
//! and as JSON from the admin API of a running agent. The mailbox stories run over EWS and
//! over Graph.

mod common;

use common::receivers::Webhook;
use common::*;
use foldertrack::deliver::explain::{self, Explanation, Outcome, Query, Story};
use std::time::Duration;

const CUSTOMERS: &str = "Inbox/Customers";

fn explain(agent: &Agent, query: Query) -> Explanation {
    let evidence = explain::gather(agent.store.as_ref(), &query).unwrap();
    explain::tell(&evidence, &agent.config.explain_settings())
}

fn by_id(id: &str) -> Query {
    Query::from_parts(Some(id.into()), None, None, None).unwrap()
}

fn folder(mailbox: &str, path: &str) -> Query {
    Query::from_parts(None, None, Some(mailbox.into()), Some(path.into())).unwrap()
}

/// The only story of the answer.
fn only(e: &Explanation) -> &Story {
    assert_eq!(e.stories.len(), 1, "{}", e.text());
    &e.stories[0]
}

fn says(story: &Story, words: &str) -> bool {
    story.lines.iter().any(|l| l.what.contains(words))
}

/// Delivers a mail to the Inbox and drags it into `to`; returns its Message-ID.
fn filed(agent: &Agent, subject: &str, to: &str) -> String {
    let c = agent.sim();
    let d = c.deliver(ALICE, "Inbox", &mail(subject)).unwrap();
    c.move_message(ALICE, &d.item_id, to).unwrap();
    d.internet_message_id
}

async fn agent_over(api: Api, folders: &[Folder<'_>]) -> Agent {
    let sim = simulator().await;
    for (path, _, _) in folders {
        sim.control().create_folder(ALICE, path).unwrap();
    }
    let agent =
        Agent::with_extra_on(api, sim, &mailboxes(&[(ALICE, folders)]), |_| String::new()).await;
    agent.pass().await;
    agent
}

// The mailbox stories, over EWS and over Graph.
over_both_apis!(
    tracked_and_delivered_mail_is_found_by_message_id_subject_and_folder,
    r10_mail_there_before_tracking_started_is_remembered_as_the_baseline,
    r2_mail_in_a_folder_that_is_not_mapped,
    r5_a_paused_mapping_says_why_and_what_to_do,
    r7_mail_moved_into_a_folder_without_a_regarding,
    r16_sent_mail_is_not_tracked_while_sent_tracking_is_off,
);

async fn tracked_and_delivered_mail_is_found_by_message_id_subject_and_folder(api: Api) {
    let agent = agent_over(api, &[(CUSTOMERS, Some(CONTOSO), "")]).await;
    let id = filed(&agent, "Order 4711 for Contoso", CUSTOMERS);
    agent.pass().await;
    assert_eq!(agent.delivered().len(), 1);

    let by_message = explain(&agent, by_id(&id));
    let story = only(&by_message);
    assert_eq!(story.outcome, Outcome::Delivered, "{}", by_message.text());
    assert_eq!(story.message_id.as_deref(), Some(id.as_str()));
    assert_eq!(story.regarding.as_ref().unwrap().id, CONTOSO);
    assert!(
        says(story, "tracked from Inbox/Customers"),
        "{}",
        by_message.text()
    );
    assert!(says(story, "mapping Inbox/Customers, regarding account"));
    assert!(says(story, "confirmed up to event 1"));
    assert!(says(story, "carries the category \"Tracked\""));
    let in_mailbox = agent.sim().messages(ALICE, CUSTOMERS).unwrap();
    assert!(
        in_mailbox[0].categories.contains(&"Tracked".to_owned()),
        "as the story says"
    );
    assert_eq!(story.fix, None);

    let by_subject = explain(&agent, Query::Subject("order 4711".into()));
    assert_eq!(
        only(&by_subject),
        story,
        "a fragment, in any case, finds the same story"
    );

    let by_folder = explain(&agent, folder(ALICE, CUSTOMERS));
    assert_eq!(by_folder.stories.len(), 2, "{}", by_folder.text());
    assert_eq!(by_folder.stories[0].outcome, Outcome::Watched);
    assert!(says(
        &by_folder.stories[0],
        "mapped by Inbox/Customers, regarding"
    ));
    assert_eq!(&by_folder.stories[1], story);
}

async fn r10_mail_there_before_tracking_started_is_remembered_as_the_baseline(api: Api) {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, CUSTOMERS).unwrap();
    let old = c.deliver(ALICE, CUSTOMERS, &mail("old news")).unwrap();
    let agent = Agent::with_extra_on(
        api,
        sim,
        &mailboxes(&[(ALICE, &[(CUSTOMERS, Some(CONTOSO), "")])]),
        |_| String::new(),
    )
    .await;
    agent.pass().await;
    assert!(agent.delivered().is_empty());

    let answer = explain(&agent, by_id(&old.internet_message_id));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::Baseline, "{}", answer.text());
    assert!(
        says(story, "already in Inbox/Customers"),
        "{}",
        answer.text()
    );
    assert!(story.lines[0].at.is_some(), "when tracking started");
    assert!(
        story
            .fix
            .as_deref()
            .unwrap()
            .contains("out of the folder and back in")
    );
    assert!(story.rules.contains(&"R10".to_owned()));

    let by_folder = explain(&agent, folder(ALICE, CUSTOMERS));
    assert!(
        says(
            &by_folder.stories[0],
            "1 mail(s) were already in the folder"
        ),
        "{}",
        by_folder.text()
    );

    // Following the fix tracks it, and the story keeps where it began.
    let out = c.move_message(ALICE, &old.item_id, "Inbox").unwrap();
    agent.pass().await;
    c.move_message(ALICE, &out, CUSTOMERS).unwrap();
    agent.pass().await;
    let answer = explain(&agent, by_id(&old.internet_message_id));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::Delivered, "{}", answer.text());
    assert!(
        says(story, "before tracking started there"),
        "{}",
        answer.text()
    );
}

async fn r2_mail_in_a_folder_that_is_not_mapped(api: Api) {
    let agent = agent_over(api, &[(CUSTOMERS, Some(CONTOSO), "")]).await;
    agent.sim().create_folder(ALICE, "Inbox/Other").unwrap();
    let id = filed(&agent, "elsewhere", "Inbox/Other");
    agent.pass().await;

    let answer = explain(&agent, folder(ALICE, "Inbox/Other"));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::NotMapped, "{}", answer.text());
    assert!(
        story
            .fix
            .as_deref()
            .unwrap()
            .contains("path = \"Inbox/Other\"")
    );
    assert_eq!(story.rules, ["R2"]);

    let answer = explain(&agent, by_id(&id));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::NotSeen, "{}", answer.text());
    assert!(says(story, "only mapped folders are tracked (R2)"));
}

async fn r5_a_paused_mapping_says_why_and_what_to_do(api: Api) {
    let agent = agent_over(api, &[(CUSTOMERS, Some(CONTOSO), "")]).await;
    let c = agent.sim();
    c.create_folder(ALICE, "Archive").unwrap();
    c.move_folder(ALICE, CUSTOMERS, "Archive").unwrap();
    agent.pass().await;

    let answer = explain(&agent, folder(ALICE, CUSTOMERS));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::MappingPaused, "{}", answer.text());
    assert!(
        says(story, "moved outside the Inbox (R5)"),
        "{}",
        answer.text()
    );
    assert!(
        story
            .fix
            .as_deref()
            .unwrap()
            .contains("allow_outside_inbox = true")
    );

    // A mail nobody saw names the paused mapping among the reasons.
    let answer = explain(&agent, by_id("<never@example.com>"));
    assert!(
        says(only(&answer), "moved outside the Inbox"),
        "{}",
        answer.text()
    );
}

async fn r7_mail_moved_into_a_folder_without_a_regarding(api: Api) {
    let agent = agent_over(api, &[(CUSTOMERS, None, "")]).await;
    let id = filed(&agent, "no record", CUSTOMERS);
    agent.pass().await;

    let answer = explain(&agent, by_id(&id));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::NoRegarding, "{}", answer.text());
    assert_eq!(story.regarding, None);
    assert!(says(story, "without a regarding"));
    assert!(
        story
            .fix
            .as_deref()
            .unwrap()
            .contains("give mapping Inbox/Customers a regarding")
    );
}

async fn r16_sent_mail_is_not_tracked_while_sent_tracking_is_off(api: Api) {
    let agent = agent_over(api, &[(CUSTOMERS, Some(CONTOSO), "")]).await;
    let sent = mail("my offer");
    let sent = foldertrack::sim::NewMessage {
        from: ALICE.into(),
        to: vec!["buyer@contoso.com".into()],
        ..sent
    };
    let d = agent.sim().deliver(ALICE, "Sent Items", &sent).unwrap();
    agent.pass().await;

    let answer = explain(&agent, folder(ALICE, "Sent Items"));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::SentNotTracked, "{}", answer.text());
    assert!(
        story
            .fix
            .as_deref()
            .unwrap()
            .contains("track_sent_items = true")
    );

    let answer = explain(&agent, by_id(&d.internet_message_id));
    assert!(
        says(only(&answer), &format!("if {ALICE} sent it")),
        "{}",
        answer.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r32_rejected_and_r30_waiting_for_a_retry_say_what_the_sink_said() {
    let hook = Webhook::start().await;
    let sim = simulator().await;
    sim.control().create_folder(ALICE, CUSTOMERS).unwrap();
    let folders = mailboxes(&[(ALICE, &[(CUSTOMERS, Some(CONTOSO), "")])]);
    let agent = Agent::with_extra(sim, &folders, |dir| hook.sink_toml(dir)).await;
    agent.pass().await;
    hook.refuse_subject("refused", 403);
    let refused = filed(&agent, "refused", CUSTOMERS);
    agent.pass().await;

    let answer = explain(&agent, by_id(&refused));
    let story = only(&answer);
    assert_eq!(story.outcome, Outcome::Rejected, "{}", answer.text());
    assert!(says(story, "rejected by the sink"), "{}", answer.text());
    assert!(says(story, "403"), "the sink's answer: {}", answer.text());
    assert!(story.fix.as_deref().unwrap().contains("foldertrack retry"));

    hook.always(Some(503));
    let later = filed(&agent, "later", CUSTOMERS);
    agent.pass().await;
    let answer = explain(&agent, Query::Subject("LATER".into()));
    let story = only(&answer);
    assert!(
        matches!(story.outcome, Outcome::Waiting | Outcome::Retrying),
        "{}",
        answer.text()
    );
    assert_eq!(story.message_id.as_deref(), Some(later.as_str()));
    assert!(says(story, "503"), "the sink's answer: {}", answer.text());
    assert!(says(story, "the sink confirmed none yet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_explains_from_the_store_with_the_agent_stopped() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, CUSTOMERS).unwrap();
    let old = c.deliver(ALICE, CUSTOMERS, &mail("before")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folders = mailboxes(&[(ALICE, &[(CUSTOMERS, Some(CONTOSO), "")])]);
    let config = write_config(dir.path(), &sim.ews_url(), &folders, "");
    assert_eq!(cli(&config, &["once"]).0, 0);
    drag(&c, ALICE, "Quote 42", CUSTOMERS);
    assert_eq!(cli(&config, &["once"]).0, 0);

    let (code, out) = cli(&config, &["explain", "--subject", "quote 42"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": tracked and delivered"), "{out}");
    assert!(out.contains("subject: Quote 42"), "{out}");
    assert!(out.contains("tracked from Inbox/Customers"), "{out}");

    let (code, out) = cli(
        &config,
        &["explain", "--message-id", &old.internet_message_id],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("not tracked: it was there before tracking started"),
        "{out}"
    );
    assert!(out.contains("fix: move the mail out"), "{out}");

    let (_, out) = cli(
        &config,
        &["explain", "--mailbox", ALICE, "--folder", "Inbox/Nope"],
    );
    assert!(
        out.contains("not tracked: the folder is not mapped"),
        "{out}"
    );
    let (_, json) = cli(
        &config,
        &[
            "explain",
            "--mailbox",
            ALICE,
            "--folder",
            "Inbox/Nope",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["stories"][0]["outcome"], "not_mapped");

    let (code, out) = cli(&config, &["explain", "--mailbox", ALICE]);
    assert_ne!(code, 0);
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(out.contains("a mailbox needs a folder too"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_explains_while_the_agent_runs() {
    let agent = agent_over(Api::Ews, &[(CUSTOMERS, Some(CONTOSO), "")]).await;
    let running = agent.run().await;
    let id = filed(&agent, "live one", CUSTOMERS);
    let delivered = async || {
        let q = by_id(&id);
        running
            .admin
            .explain(&q)
            .await
            .is_ok_and(|e| e.stories[0].outcome == Outcome::Delivered)
    };
    let synced = async || running.admin.sync_now(ALICE).await.is_ok();
    assert!(synced().await);
    assert!(
        eventually_async(Duration::from_secs(10), delivered).await,
        "the running agent explains the delivered mail"
    );

    // The same answer as JSON over HTTP, and a one-line refusal of a bad query.
    let base = running.admin.base().to_owned();
    let http = foldertrack::http::client(&Default::default()).unwrap();
    let url = format!("{base}/v1/explain");
    let answer = http
        .get(&url)
        .query(&[("message_id", &id)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let v: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(v["query"]["message_id"], id.as_str());
    assert_eq!(v["stories"][0]["outcome"], "delivered");
    assert_eq!(v["stories"][0]["regarding"]["id"], CONTOSO);
    assert!(v["stories"][0]["lines"][0]["at"].is_string());
    let bad = http
        .get(&url)
        .query(&[("folder", "Inbox")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let v: serde_json::Value = bad.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("needs its mailbox"));
    running.stop().await;
}
