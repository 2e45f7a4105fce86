//! Streaming notifications drive tracking, polling is the backstop (R40): `foldertrack run`
//! against the simulator with a poll interval of an hour, so a mail reaches the sink within
//! seconds only when a notification woke its mailbox; and each lifecycle case — an expired
//! subscription, missed events, a dropped connection, a connection the server closes, a server
//! without streaming, a mailbox out of subscriptions — with what status says about it. The same
//! over Microsoft Graph with change notifications: the simulator validates the agent's receiver
//! and POSTs notifications to it; lifecycle events, renewals, forged notifications and a
//! receiver Graph cannot validate.

mod common;

use common::*;
use foldertrack::sim::{FaultKind, FaultRule, SimOptions};
use foldertrack::watch::notify::Delivery;
use std::time::Duration;

const DEALS: &str = "Inbox/Deals";

/// Polling once an hour: anything faster is a notification's doing.
const HOURLY: &str = "[cadence]\nnormal_secs = 3600\nbusy_secs = 3600\nquiet_secs = 3600\n";

/// The agent over alice (and bob when `both`), Deals mapped, with `extra` config.
async fn agent(sim: foldertrack::sim::SimHandle, both: bool, extra: &str) -> Agent {
    agent_on(Api::Ews, sim, both, extra).await
}

/// [`agent`] over the back-end `api`.
async fn agent_on(api: Api, sim: foldertrack::sim::SimHandle, both: bool, extra: &str) -> Agent {
    let c = sim.control();
    let folders: &[Folder<'_>] = &[(DEALS, Some(CONTOSO), "")];
    let mut list = vec![(ALICE, folders)];
    c.create_folder(ALICE, DEALS).unwrap();
    if both {
        c.create_folder(BOB, DEALS).unwrap();
        list.push((BOB, folders));
    }
    let extra = extra.to_owned();
    Agent::with_extra_on(api, sim, &mailboxes(&list), move |_| extra).await
}

/// Every mailbox's notification state, by address.
async fn deliveries(running: &Running) -> Vec<(String, Delivery)> {
    let status = running.admin.status().await.unwrap();
    status
        .mailboxes
        .into_iter()
        .map(|m| (m.status.address, m.status.notifications))
        .collect()
}

async fn all_notified(running: &Running) -> bool {
    let all = deliveries(running).await;
    !all.is_empty() && all.iter().all(|(_, d)| *d == Delivery::Notified)
}

async fn wait_notified(running: &Running) {
    assert!(
        eventually_async(Duration::from_secs(10), async || all_notified(running)
            .await)
        .await,
        "notified: {:?}",
        deliveries(running).await
    );
}

fn calls(agent: &Agent, op: &str) -> usize {
    agent
        .sim()
        .calls()
        .iter()
        .filter(|c| c.operation == op)
        .count()
}

/// How many tracking requests for `subject` reached the sink.
fn subjects(agent: &Agent, subject: &str) -> usize {
    agent
        .delivered()
        .iter()
        .filter(|r| r.message.subject.as_deref() == Some(subject))
        .count()
}

fn has(agent: &Agent, subject: &str) -> bool {
    subjects(agent, subject) > 0
}

/// Waits until `op` was called more than `before` times (a new subscription or connection)
/// and the mailboxes are notified again; then a mail moved now must reach the sink.
async fn again_then_notified(
    agent: &Agent,
    running: &Running,
    (op, before): (&str, usize),
    subject: &str,
) {
    let again = || calls(agent, op) > before;
    assert!(
        eventually(Duration::from_secs(10), again).await,
        "{op} again"
    );
    wait_notified(running).await;
    moved_and_delivered(agent, ALICE, subject, 10).await;
}

/// Drags a mail into Deals and waits for it in the sink; returns how long it took.
async fn moved_and_delivered(agent: &Agent, mailbox: &str, subject: &str, within: u64) -> Duration {
    let started = std::time::Instant::now();
    drag(&agent.sim(), mailbox, subject, DEALS);
    assert!(
        eventually(Duration::from_secs(within), || has(agent, subject)).await,
        "{subject} reached the sink within {within} s"
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_mail_reaches_the_sink_in_seconds_without_track_now() {
    let agent = agent(simulator().await, true, HOURLY).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    let opened = calls(&agent, "GetStreamingEvents");
    let took = moved_and_delivered(&agent, BOB, "Quote by notification", 5).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    // One connection serves both mailboxes; every Subscribe and the connection name the
    // group's anchor (the first address) and so reach its server.
    assert_eq!(calls(&agent, "GetStreamingEvents"), opened);
    let affine = agent
        .sim()
        .calls()
        .into_iter()
        .filter(|c| matches!(c.operation.as_str(), "Subscribe" | "GetStreamingEvents"))
        .all(|c| c.anchor_mailbox.as_deref() == Some(ALICE));
    assert!(affine, "{:?}", agent.sim().calls());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notified_mailbox_polls_only_at_the_backstop() {
    notified_mailbox_polls_only_at_the_backstop(Api::Ews, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_notified_mailbox_polls_only_at_the_backstop() {
    let port = free_port();
    notified_mailbox_polls_only_at_the_backstop(Api::Graph, &graph_receiver(port, port)).await;
}

/// A one-second cadence, which notifications stretch to the 60 s backstop; `notifications`
/// adds lines to `[notifications]`.
async fn notified_mailbox_polls_only_at_the_backstop(api: Api, notifications: &str) {
    let extra = format!(
        "[cadence]\nnormal_secs = 1\nbusy_secs = 1\nquiet_secs = 1\n[notifications]\nbackstop_secs = 60\n{notifications}"
    );
    let agent = agent_on(api, simulator().await, false, &extra).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    // The pass a new subscription asks for may still be running; then the schedule holds.
    let settled = async || {
        let s = running.admin.status().await.unwrap();
        let m = &s.mailboxes[0].status;
        !m.syncing
            && m.next_sync.is_some_and(|n| {
                n.duration_since(jiff::Timestamp::now()) > jiff::SignedDuration::from_secs(30)
            })
    };
    assert!(
        eventually_async(Duration::from_secs(5), settled).await,
        "the next sync is the backstop's: {:?}",
        running.admin.status().await.unwrap().mailboxes[0].status
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_subscription_is_replaced_and_its_folders_synced() {
    let agent = agent(simulator().await, false, HOURLY).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    let subscribes = calls(&agent, "Subscribe");
    // Gone before the move: no subscription sees it; the catch-up sync must.
    assert_eq!(agent.sim().expire_subscriptions(ALICE).unwrap(), 1);
    moved_and_delivered(&agent, ALICE, "Quote while unsubscribed", 10).await;
    again_then_notified(
        &agent,
        &running,
        ("Subscribe", subscribes),
        "Quote after resubscribing",
    )
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_events_resync_the_folders_and_the_subscription_is_recreated() {
    let agent = agent(simulator().await, false, HOURLY).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    let subscribes = calls(&agent, "Subscribe");
    // Exchange lost the subscription's events, this move's among them: only the sync that
    // ErrorMissedNotificationEvents asks for can find it.
    assert_eq!(agent.sim().miss_events(ALICE).unwrap(), 1);
    moved_and_delivered(&agent, ALICE, "Quote whose event was lost", 10).await;
    again_then_notified(
        &agent,
        &running,
        ("Subscribe", subscribes),
        "Quote after re-creating",
    )
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_reopened_and_nothing_is_missed() {
    let agent = agent(simulator().await, false, HOURLY).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    let opened = calls(&agent, "GetStreamingEvents");
    let subscribed = calls(&agent, "Subscribe");
    agent.sim().drop_streams();
    moved_and_delivered(&agent, ALICE, "Quote across a dropped connection", 10).await;
    again_then_notified(
        &agent,
        &running,
        ("GetStreamingEvents", opened),
        "Quote on the new connection",
    )
    .await;
    // The subscription outlived its connection: reopened on it, not made again.
    assert_eq!(calls(&agent, "Subscribe"), subscribed);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_closes_are_renewed_on_the_same_subscriptions() {
    // One EWS minute lasts 300 ms: a one-minute connection is closed three times a second.
    let sim = simulator_with(SimOptions {
        minute: Duration::from_millis(300),
        keep_alive: Duration::from_millis(100),
        ..SimOptions::default()
    })
    .await;
    let extra = format!("{HOURLY}[notifications]\nconnection_timeout_minutes = 1\n");
    let agent = agent(sim, false, &extra).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    let renewed = || calls(&agent, "GetStreamingEvents") >= 4;
    assert!(eventually(Duration::from_secs(10), renewed).await);
    assert_eq!(
        calls(&agent, "Subscribe"),
        1,
        "a closed connection keeps its subscriptions"
    );
    moved_and_delivered(&agent, ALICE, "Quote on a renewed connection", 5).await;
    running.stop().await;
}

/// A notification that arrives while Exchange has paused the mailbox (here: ServerBusy on the
/// write-back of the mail before) is not dropped: the mailbox syncs when the pause ends, not at
/// the hourly backstop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_during_a_throttling_pause_is_synced_when_the_pause_ends() {
    let agent = agent(simulator().await, false, HOURLY).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    agent.sim().add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some("UpdateItem".into()),
        fault: FaultKind::ServerBusyMessage { back_off_ms: 2000 },
        count: Some(1),
        probability: None,
    });
    moved_and_delivered(&agent, ALICE, "Quote before the pause", 10).await;
    let paused = || {
        let busy = |c: &foldertrack::sim::CallRecord| {
            c.operation == "UpdateItem" && c.result.contains("ServerBusy")
        };
        agent.sim().calls().iter().any(busy)
    };
    assert!(eventually(Duration::from_secs(10), paused).await);
    // Delivered at the end of the 2 s pause; dropping the hint would leave it for the
    // write-back's own retry (10 s) or the hourly backstop.
    moved_and_delivered(&agent, ALICE, "Quote during the pause", 6).await;
    running.stop().await;
}

/// Alice's status: the mappings not watched, with why.
async fn not_watched(running: &Running) -> Vec<(String, String)> {
    let status = running.admin.status().await.unwrap();
    status.mailboxes[0].status.not_watched.clone()
}

/// The agent over alice with Deals mapped (`extra` lines in its mapping), Deals not made yet.
async fn agent_before_the_folder(extra: &str) -> Agent {
    let folders: &[Folder<'_>] = &[(DEALS, Some(CONTOSO), extra)];
    let list = mailboxes(&[(ALICE, folders)]);
    Agent::with_extra_on(Api::Ews, simulator().await, &list, |_| HOURLY.to_owned()).await
}

/// The subscription covers the Inbox for its subfolders, so a mapped folder made (or moved
/// away) after the start is seen at once, not at the hourly backstop (new mail in the Inbox
/// itself is ignored: `notify::hint`'s table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_folder_made_or_moved_away_later_is_seen_at_once() {
    let agent = agent_before_the_folder("").await;
    let running = agent.run().await;
    wait_notified(&running).await;
    assert_eq!(
        not_watched(&running).await.len(),
        1,
        "Deals is not there yet"
    );
    let syncs = calls(&agent, "SyncFolderItems");
    agent
        .sim()
        .deliver(ALICE, "Inbox", &mail("Not for us"))
        .unwrap();
    agent.sim().create_folder(ALICE, DEALS).unwrap();
    let watched = async || not_watched(&running).await.is_empty();
    assert!(eventually_async(Duration::from_secs(5), watched).await);
    wait_notified(&running).await;
    moved_and_delivered(&agent, ALICE, "Quote in a folder made later", 5).await;
    agent.sim().move_folder(ALICE, DEALS, "").unwrap();
    let gone = async || !not_watched(&running).await.is_empty();
    assert!(eventually_async(Duration::from_secs(5), gone).await);
    assert!(calls(&agent, "SyncFolderItems") > syncs);
    running.stop().await;
}

/// A subfolder made in a mapped folder with `include_subfolders` is watched at once: mail
/// dragged into it arrives in seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subfolder_of_a_mapped_folder_is_watched_at_once() {
    let agent = agent_before_the_folder("include_subfolders = true\n").await;
    agent.sim().create_folder(ALICE, DEALS).unwrap();
    let running = agent.run().await;
    wait_notified(&running).await;
    let subscribes = calls(&agent, "Subscribe");
    agent.sim().create_folder(ALICE, "Inbox/Deals/Q4").unwrap();
    let resubscribed = || calls(&agent, "Subscribe") > subscribes;
    assert!(eventually(Duration::from_secs(5), resubscribed).await);
    wait_notified(&running).await;
    let started = std::time::Instant::now();
    drag(
        &agent.sim(),
        ALICE,
        "Quote in a new subfolder",
        "Inbox/Deals/Q4",
    );
    let arrived = || has(&agent, "Quote in a new subfolder");
    assert!(
        eventually(Duration::from_secs(5), arrived).await,
        "{:?}",
        started.elapsed()
    );
    running.stop().await;
}

/// Refuses every Subscribe (or the first `count`) with `code`.
fn refuse_subscribe(agent: &Agent, code: &str, count: Option<u32>) {
    agent.sim().add_fault(FaultRule {
        mailbox: None,
        operation: Some("Subscribe".into()),
        fault: FaultKind::Refuse { code: code.into() },
        count,
        probability: None,
    });
}

/// Waits (10 s at most) until every mailbox is polled for a reason containing `words`.
async fn wait_polled_because(running: &Running, words: &str) {
    let said = async || polled_because(running, words).await;
    assert!(
        eventually_async(Duration::from_secs(10), said).await,
        "{:?}",
        deliveries(running).await
    );
}

async fn polled_because(running: &Running, words: &str) -> bool {
    deliveries(running)
        .await
        .iter()
        .all(|(_, d)| matches!(d, Delivery::Polled { reason } if reason.contains(words)))
}

/// Waits (10 s at most) until every mailbox is pulled, for a reason containing `words`.
async fn wait_pulled_because(running: &Running, words: &str) {
    let pulled = async || {
        deliveries(running).await.iter().all(|(_, d)| {
            matches!(d, Delivery::Pulled { every_secs: 5, reason } if reason.contains(words))
        })
    };
    assert!(
        eventually_async(Duration::from_secs(10), pulled).await,
        "{:?}",
        deliveries(running).await
    );
}

const PULL_EVERY_5_SECS: &str = "pull_interval_secs = 5\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_subscriptions_bring_a_moved_mail_within_the_pull_interval() {
    let extra = format!("{HOURLY}[notifications]\nmode = \"pull\"\n{PULL_EVERY_5_SECS}");
    let agent = agent(simulator().await, true, &extra).await;
    let running = agent.run().await;
    wait_pulled_because(&running, "").await;
    let took = moved_and_delivered(&agent, BOB, "Quote by pull", 10).await;
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(calls(&agent, "GetEvents") > 0);
    assert_eq!(calls(&agent, "GetStreamingEvents"), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_streaming_is_pulled_and_status_says_why() {
    let extra = format!("{HOURLY}[notifications]\n{PULL_EVERY_5_SECS}");
    let agent = agent(simulator().await, false, &extra).await;
    agent.sim().set_streaming(false);
    let running = agent.run().await;
    wait_pulled_because(&running, "ErrorInvalidServerVersion").await;
    moved_and_delivered(&agent, ALICE, "Quote from an older Exchange", 10).await;
    // Streaming was asked once, then pull.
    assert_eq!(calls(&agent, "Subscribe"), 2);
    running.stop().await;
}

/// A connection refused because the server no longer streams (the mailbox moved to an older
/// one) moves its mailboxes to pull subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_streaming_has_its_mailboxes_pulled() {
    let extra = format!("{HOURLY}[notifications]\n{PULL_EVERY_5_SECS}");
    let agent = agent(simulator().await, false, &extra).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    agent.sim().set_streaming(false);
    agent.sim().drop_streams();
    wait_pulled_because(&running, "ErrorInvalidServerVersion").await;
    moved_and_delivered(&agent, ALICE, "Quote after streaming stopped", 10).await;
    running.stop().await;
}

/// EWS cannot list a mailbox's subscriptions: the agent keeps their ids in its store, so the
/// ones a killed run left are ended at the next start instead of holding the mailbox's
/// EWSMaxSubscriptions (20 in Exchange Online) until they lapse; a clean stop ends its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_a_killed_run_left_are_ended_at_the_next_start() {
    let agent = agent(simulator().await, false, HOURLY).await;
    let crashed = agent.run().await;
    wait_notified(&crashed).await;
    let left = agent.sim().subscriptions(ALICE).unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    crashed.kill().await;
    assert_eq!(
        agent.sim().subscriptions(ALICE).unwrap(),
        left,
        "left behind"
    );
    let running = agent.run().await;
    wait_notified(&running).await;
    let only_the_new_one = || {
        let live = agent.sim().subscriptions(ALICE).unwrap();
        live.len() == 1 && live != left
    };
    assert!(
        eventually(Duration::from_secs(10), only_the_new_one).await,
        "{:?}",
        agent.sim().subscriptions(ALICE)
    );
    moved_and_delivered(&agent, ALICE, "Quote after a killed run", 5).await;
    running.stop().await;
    assert_eq!(
        agent.sim().subscriptions(ALICE).unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_pull_subscription_is_made_again_and_its_folders_synced() {
    let extra = format!("{HOURLY}[notifications]\nmode = \"pull\"\n{PULL_EVERY_5_SECS}");
    let agent = agent(simulator().await, false, &extra).await;
    let running = agent.run().await;
    wait_pulled_because(&running, "").await;
    let subscribes = calls(&agent, "Subscribe");
    // Gone before the move: its events are lost with it; the sync after re-subscribing finds
    // the mail.
    assert_eq!(agent.sim().expire_subscriptions(ALICE).unwrap(), 1);
    moved_and_delivered(&agent, ALICE, "Quote while the pull lapsed", 12).await;
    assert!(calls(&agent, "Subscribe") > subscribes);
    moved_and_delivered(&agent, ALICE, "Quote after re-subscribing", 12).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_every_subscription_is_polled_and_status_says_why() {
    let extra = "[cadence]\nnormal_secs = 2\nbusy_secs = 2\nquiet_secs = 2\n";
    let agent = agent(simulator().await, false, extra).await;
    refuse_subscribe(&agent, "ErrorInvalidServerVersion", None);
    let running = agent.run().await;
    wait_polled_because(&running, "ErrorInvalidServerVersion").await;
    moved_and_delivered(&agent, ALICE, "Quote by polling", 10).await;
    // Streaming, then pull; then not asked again.
    assert_eq!(calls(&agent, "Subscribe"), 2, "not asked again");
    assert_eq!(calls(&agent, "GetStreamingEvents"), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_out_of_subscriptions_is_polled_and_status_says_why() {
    let agent = agent(simulator().await, false, HOURLY).await;
    refuse_subscribe(&agent, "ErrorExceededSubscriptionCount", Some(1));
    let running = agent.run().await;
    wait_polled_because(&running, "EWSMaxSubscriptions").await;
    running.stop().await;
}

/// A server whose HangingConnectionLimit is already used up (other applications' connections
/// charged to the same budget) refuses the connection: the mailboxes are polled on the
/// cadence, and status says why and what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_streaming_connections_is_polled_and_status_says_why() {
    let extra = "[cadence]\nnormal_secs = 2\nbusy_secs = 2\nquiet_secs = 2\n";
    let agent = agent(simulator().await, true, extra).await;
    agent.sim().set_hanging_connection_limit(0);
    let running = agent.run().await;
    wait_polled_because(&running, "HangingConnectionLimit").await;
    moved_and_delivered(&agent, BOB, "Quote by polling", 10).await;
    running.stop().await;
}
// ---- Microsoft Graph change notifications ----

/// The `[notifications]` lines of a receiver on `listen` that Graph posts to at `url_port`.
fn graph_receiver(listen: u16, url_port: u16) -> String {
    format!(
        "graph_notification_url = \"http://127.0.0.1:{url_port}/graph/notify\"\ngraph_listen = \"127.0.0.1:{listen}\"\n"
    )
}

/// An hourly cadence and [`graph_receiver`].
fn graph_notifications(listen: u16, url_port: u16) -> String {
    format!(
        "{HOURLY}[notifications]\n{}",
        graph_receiver(listen, url_port)
    )
}

/// The agent over Graph with its receiver reachable where the notification URL says; returns
/// the receiver's URL too.
async fn graph_agent(sim: foldertrack::sim::SimHandle) -> (Agent, String) {
    let port = free_port();
    let agent = agent_on(Api::Graph, sim, false, &graph_notifications(port, port)).await;
    (agent, format!("http://127.0.0.1:{port}/graph/notify"))
}

/// A running Graph agent, returned once its mailbox is notified; Graph grants its
/// subscriptions `lifetime` seconds (if given) and answers its next `refused` renewals with 503.
async fn notified_graph_agent(lifetime: Option<u64>, refused: u32) -> (Agent, Running) {
    let sim = simulator().await;
    sim.control().set_graph_subscription_lifetime(lifetime);
    let (agent, _) = graph_agent(sim).await;
    if refused > 0 {
        agent.sim().add_fault(FaultRule {
            mailbox: None,
            operation: Some("subscriptions.update".into()),
            fault: FaultKind::Http503 {
                retry_after_secs: 1,
            },
            count: Some(refused),
            probability: None,
        });
    }
    let running = agent.run().await;
    wait_notified(&running).await;
    (agent, running)
}

/// The id of alice's (only) Graph subscription.
fn subscription_id(agent: &Agent) -> String {
    agent.sim().graph_subscriptions(ALICE).unwrap()[0]
        .id
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_moved_mail_reaches_the_sink_by_notification_without_track_now() {
    let (agent, running) = notified_graph_agent(None, 0).await;
    assert_eq!(
        calls(&agent, "subscriptions.create"),
        1,
        "one folder, one subscription"
    );
    let took = moved_and_delivered(&agent, ALICE, "Quote by Graph notification", 5).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A burst: each mail notifies, the passes coalesce, every mail arrives once.
    for i in 0..5 {
        drag(&agent.sim(), ALICE, &format!("Burst {i}"), DEALS);
    }
    let all = || (0..5).all(|i| subjects(&agent, &format!("Burst {i}")) == 1);
    assert!(eventually(Duration::from_secs(5), all).await);
    running.stop().await;
    assert!(
        agent.sim().graph_subscriptions(ALICE).unwrap().is_empty(),
        "a clean stop deletes its subscriptions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_notification_with_a_wrong_client_state_is_ignored() {
    let (agent, receiver) = graph_agent(simulator().await).await;
    let running = agent.run().await;
    wait_notified(&running).await;
    let subscription = subscription_id(&agent);
    // Let the pass the new subscription asked for finish.
    let idle = async || {
        !running.admin.status().await.unwrap().mailboxes[0]
            .status
            .syncing
    };
    assert!(eventually_async(Duration::from_secs(5), idle).await);
    let before = calls(&agent, "messages.delta");
    let mismatches = || {
        foldertrack::telemetry::metrics()
            .totals("foldertrack_graph_notifications_total", "outcome")
            .get("client_state_mismatch")
            .copied()
            .unwrap_or(0)
    };
    let counted = mismatches();
    let forged = serde_json::json!({"value": [{
        "subscriptionId": subscription,
        "clientState": "not-the-agents-secret",
        "changeType": "created",
        "resource": format!("Users/{ALICE}/Messages/AAMk"),
    }]});
    let answer = foldertrack::http::builder(&Default::default(), None)
        .unwrap()
        .no_proxy()
        .build()
        .unwrap()
        .post(&receiver)
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202, "answered, then ignored");
    assert_eq!(mismatches(), counted + 1, "counted before the answer");
    // The receiver acts before it answers; a wake would have started a pass by now.
    let synced = || calls(&agent, "messages.delta") > before;
    assert!(
        !eventually(Duration::from_secs(2), synced).await,
        "a forged notification never starts a pass"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_missed_and_subscription_removed_sync_at_once_and_lose_nothing() {
    let (agent, running) = notified_graph_agent(None, 0).await;
    // A notification Graph lost: only the pass `missed` starts can find the mail.
    agent.sim().drop_graph_notifications(ALICE, 2).unwrap();
    drag(
        &agent.sim(),
        ALICE,
        "Quote whose notification was lost",
        DEALS,
    );
    assert!(
        !eventually(Duration::from_millis(1500), || has(
            &agent,
            "Quote whose notification was lost"
        ))
        .await,
        "nothing told the agent yet"
    );
    assert_eq!(agent.sim().graph_lifecycle(ALICE, "missed").unwrap(), 1);
    let found = || has(&agent, "Quote whose notification was lost");
    assert!(eventually(Duration::from_secs(5), found).await);
    // Graph removes the subscription; a mail moved meanwhile is found by the pass the
    // removal starts, and the new subscription notifies the next one.
    let created = calls(&agent, "subscriptions.create");
    assert_eq!(
        agent
            .sim()
            .graph_lifecycle(ALICE, "subscriptionRemoved")
            .unwrap(),
        1
    );
    drag(&agent.sim(), ALICE, "Quote while unsubscribed", DEALS);
    let recreated = || calls(&agent, "subscriptions.create") > created;
    assert!(eventually(Duration::from_secs(5), recreated).await);
    assert!(
        eventually(Duration::from_secs(5), || has(
            &agent,
            "Quote while unsubscribed"
        ))
        .await
    );
    wait_notified(&running).await;
    moved_and_delivered(&agent, ALICE, "Quote on the new subscription", 5).await;
    for subject in [
        "Quote whose notification was lost",
        "Quote while unsubscribed",
        "Quote on the new subscription",
    ] {
        assert_eq!(subjects(&agent, subject), 1, "{subject} once");
    }
    assert_eq!(agent.sim().graph_subscriptions(ALICE).unwrap().len(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_subscriptions_are_renewed_before_they_expire() {
    // Graph grants 4 s: renewed after 3, again and again.
    let (agent, running) = notified_graph_agent(Some(4), 0).await;
    let first = subscription_id(&agent);
    let renewed = || calls(&agent, "subscriptions.update") >= 3;
    assert!(
        eventually(Duration::from_secs(15), renewed).await,
        "renewed every 3 s"
    );
    // Three renewals took 9 s: without them the 4 s subscription would be gone.
    let live = agent.sim().graph_subscriptions(ALICE).unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, first, "the same subscription, renewed");
    assert_eq!(calls(&agent, "subscriptions.create"), 1);
    moved_and_delivered(&agent, ALICE, "Quote on a renewed subscription", 5).await;
    // reauthorizationRequired renews at once.
    let updates = calls(&agent, "subscriptions.update");
    agent
        .sim()
        .graph_lifecycle(ALICE, "reauthorizationRequired")
        .unwrap();
    let reauthorized = || calls(&agent, "subscriptions.update") > updates;
    assert!(eventually(Duration::from_secs(2), reauthorized).await);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_receiver_graph_cannot_validate_leaves_the_mailbox_polled_with_the_reason() {
    // The URL leads to a port nobody listens on: the validation request fails.
    let extra = graph_notifications(free_port(), free_port());
    let agent = agent_on(Api::Graph, simulator().await, false, &extra).await;
    let running = agent.run().await;
    wait_polled_because(&running, "could not validate").await;
    assert!(agent.sim().graph_subscriptions(ALICE).unwrap().is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_without_a_notification_url_is_polled_and_status_says_why() {
    let agent = agent_on(Api::Graph, simulator().await, false, HOURLY).await;
    let running = agent.run().await;
    assert!(polled_because(&running, "graph_notification_url").await);
    assert_eq!(calls(&agent, "subscriptions.create"), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_failed_renewal_is_retried_before_the_subscription_expires() {
    // Renewed after 6 s; the retry a second later still beats the 8 s expiry.
    let (agent, running) = notified_graph_agent(Some(8), 1).await;
    let retried = || calls(&agent, "subscriptions.update") >= 2;
    assert!(eventually(Duration::from_secs(12), retried).await);
    assert!(
        all_notified(&running).await,
        "{:?}",
        deliveries(&running).await
    );
    assert_eq!(
        calls(&agent, "subscriptions.create"),
        1,
        "kept, not replaced"
    );
    assert_eq!(agent.sim().graph_subscriptions(ALICE).unwrap().len(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_subscription_that_could_not_be_renewed_is_polled_visibly_then_replaced() {
    // Renewed after 1.5 s; the retry comes after the 2 s expiry.
    let (agent, running) = notified_graph_agent(Some(2), 1).await;
    wait_polled_because(&running, "renewing its Graph subscription failed").await;
    again_then_notified(
        &agent,
        &running,
        ("subscriptions.create", 1),
        "Quote on the replacement",
    )
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_subscriptions_a_crashed_run_left_are_deleted_at_the_next_start() {
    let (agent, crashed) = notified_graph_agent(None, 0).await;
    let left = subscription_id(&agent);
    crashed.kill().await;
    assert_eq!(subscription_id(&agent), left, "left behind");
    let running = agent.run().await;
    wait_notified(&running).await;
    let live = agent.sim().graph_subscriptions(ALICE).unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_ne!(live[0].id, left, "the old one deleted, a new one made");
    moved_and_delivered(&agent, ALICE, "Quote after a crash", 5).await;
    running.stop().await;
}
