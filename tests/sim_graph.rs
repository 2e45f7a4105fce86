//! The simulator's Microsoft Graph endpoint as a client sees it on the wire: as strict as
//! Graph's documentation where foldertrack relies on it.

mod common;

use common::*;
use foldertrack::sim::{FaultKind, FaultRule, SimHandle};
use serde_json::{Value, json};

/// A client with the project's TLS set-up (and a 15 s bound on every call: a subscription
/// takes up to Graph's 10 s of validation).
fn http() -> reqwest::Client {
    let secs = std::time::Duration::from_secs(15);
    foldertrack::http::client(&foldertrack::http::Timeouts {
        connect: secs,
        request: secs,
    })
    .unwrap()
}

const IMMUTABLE: &str = "IdType=\"ImmutableId\"";

/// A signed-in Graph client of the simulator.
struct Graph {
    http: reqwest::Client,
    root: String,
    token: String,
}

async fn token(sim: &SimHandle, scope: &str) -> reqwest::Response {
    http()
        .post(sim.token_url("contoso"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
}

impl Graph {
    async fn new(sim: &SimHandle) -> Self {
        let answer: Value = token(sim, "https://graph.microsoft.com/.default")
            .await
            .json()
            .await
            .unwrap();
        Self {
            http: http(),
            root: sim.graph_url(),
            token: answer["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// GETs a path under the root (or a whole link) with this `Prefer`.
    async fn get(&self, path: &str, prefer: &str) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.root)
        };
        let r = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .header("Prefer", prefer)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn batch(&self, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/$batch", self.root))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Follows a delta round from `first` to its deltaLink; returns the entries and the link.
async fn round(g: &Graph, first: &str, prefer: &str) -> (Vec<Value>, String) {
    let mut entries = Vec::new();
    let mut link = first.to_owned();
    loop {
        let (status, page) = g.get(&link, prefer).await;
        assert_eq!(status, 200, "{page}");
        entries.extend(page["value"].as_array().unwrap().iter().cloned());
        match (
            page["@odata.nextLink"].as_str(),
            page["@odata.deltaLink"].as_str(),
        ) {
            (Some(next), None) => link = next.to_owned(),
            (None, Some(delta)) => return (entries, delta.to_owned()),
            other => panic!("a page has exactly one link: {other:?}"),
        }
    }
}

const DELTA: &str =
    "/users/alice@example.com/mailFolders/inbox/messages/delta?$select=subject,internetMessageId";

#[tokio::test]
async fn requests_without_a_graph_token_are_refused() {
    let sim = simulator().await;
    let plain = http()
        .get(format!("{}{DELTA}", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 401);
    // A token for EWS is not one for Graph.
    let ews: Value = token(&sim, "https://outlook.office365.com/.default")
        .await
        .json()
        .await
        .unwrap();
    let with_ews_token = http()
        .get(format!("{}{DELTA}", sim.graph_url()))
        .bearer_auth(ews["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(with_ews_token.status().as_u16(), 401);
    let wrong_secret = http()
        .post(sim.token_url("contoso"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("client_secret", "nope"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status().as_u16(), 401);
}

#[tokio::test]
async fn unknown_properties_options_paths_and_users_are_refused_like_graph() {
    let sim = simulator().await;
    let g = Graph::new(&sim).await;
    let (status, body) = g
        .get(
            "/users/alice@example.com/mailFolders/inbox/messages/delta?$select=subject,sizeInBytes",
            IMMUTABLE,
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'sizeInBytes'"),
        "{body}"
    );
    let (status, _) = g
        .get(
            "/users/alice@example.com/mailFolders/inbox/messages/delta?$expand=attachments",
            IMMUTABLE,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = g.get("/users/alice@example.com/calendars", "").await;
    assert_eq!(status, 400);
    let (status, body) = g
        .get("/users/nobody@example.com/mailFolders/inbox", "")
        .await;
    assert_eq!((status, code(&body)), (404, "ErrorInvalidUser"));
    // Outside the app's scope (RBAC for Applications): access denied.
    sim.control().create_mailbox("carol@example.com").unwrap();
    sim.control().impersonate_all(SVC, false).unwrap();
    sim.control().grant_impersonation(SVC, ALICE).unwrap();
    let (status, body) = g
        .get("/users/carol@example.com/mailFolders/inbox", "")
        .await;
    assert_eq!((status, code(&body)), (403, "ErrorAccessDenied"));
    let (status, _) = g
        .get("/users/alice@example.com/mailFolders/inbox", "")
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn delta_rounds_page_with_next_links_and_end_with_a_delta_link_that_reports_changes() {
    let sim = simulator().await;
    let c = sim.control();
    for i in 0..25 {
        c.deliver(ALICE, "Inbox", &mail(&format!("m{i}"))).unwrap();
    }
    let g = Graph::new(&sim).await;
    let prefer = format!("{IMMUTABLE}, odata.maxpagesize=10");
    let (first, delta) = round(&g, DELTA, &prefer).await;
    assert_eq!(first.len(), 25);
    assert!(
        first
            .iter()
            .all(|m| m["subject"].is_string() && m["from"].is_null())
    );
    // Nothing changed: an empty page and a delta link again.
    let (none, delta) = round(&g, &delta, &prefer).await;
    assert!(none.is_empty());
    let view = c.messages(ALICE, "Inbox").unwrap();
    c.delete_message(ALICE, &view[0].item_id).unwrap();
    c.mark_read(ALICE, &view[1].item_id, true).unwrap();
    c.deliver(ALICE, "Inbox", &mail("new")).unwrap();
    let (changes, _) = round(&g, &delta, &prefer).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0]["id"], view[0].immutable_id.as_str());
    assert_eq!(changes[0]["@removed"]["reason"], "deleted");
    assert_eq!(changes[1]["isRead"], true);
    assert!(
        changes[1].get("subject").is_none(),
        "a read flag is a partial object"
    );
    assert_eq!(changes[2]["subject"], "new");
}

#[tokio::test]
async fn an_expired_delta_link_is_410_sync_state_not_found() {
    let sim = simulator().await;
    let g = Graph::new(&sim).await;
    let (_, delta) = round(&g, DELTA, IMMUTABLE).await;
    sim.control().expire_delta_tokens(ALICE).unwrap();
    let (status, body) = g.get(&delta, IMMUTABLE).await;
    assert_eq!((status, code(&body)), (410, "SyncStateNotFound"));
    let (status, _) = g.get(&format!("{delta}x"), IMMUTABLE).await;
    assert_eq!(status, 400, "a forged token is not an expired one");
}

#[tokio::test]
async fn ids_survive_a_move_only_when_immutable_ids_are_asked_for() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/A").unwrap();
    let d = c.deliver(ALICE, "Inbox", &mail("moving")).unwrap();
    let g = Graph::new(&sim).await;
    let get = |id: String| format!("/users/alice@example.com/messages/{id}?$select=subject");
    let (_, before) = g.get(&get(urlencode(&d.item_id)), IMMUTABLE).await;
    let (_, plain) = g.get(&get(urlencode(&d.item_id)), "").await;
    let immutable = before["id"].as_str().unwrap().to_owned();
    assert_eq!(plain["id"], d.item_id.as_str());
    assert_ne!(immutable, d.item_id);
    let moved = c.move_message(ALICE, &d.item_id, "Inbox/A").unwrap();
    let (status, after) = g.get(&get(urlencode(&immutable)), IMMUTABLE).await;
    assert_eq!(
        (status, after["id"].as_str()),
        (200, Some(immutable.as_str()))
    );
    let (status, body) = g.get(&get(urlencode(&d.item_id)), "").await;
    assert_eq!((status, code(&body)), (404, "ErrorItemNotFound"));
    let (_, now) = g.get(&get(urlencode(&moved)), "").await;
    assert_eq!(now["id"], moved.as_str());
}

fn urlencode(id: &str) -> String {
    foldertrack::graph::segment(id)
}

#[tokio::test]
async fn a_batch_takes_twenty_requests_with_unique_ids_and_patches_categories() {
    let sim = simulator().await;
    let c = sim.control();
    let d = c.deliver(ALICE, "Inbox", &mail("to mark")).unwrap();
    c.set_categories(ALICE, &d.item_id, &["Red".into()])
        .unwrap();
    let g = Graph::new(&sim).await;
    let get = |n: usize| json!({"id": n.to_string(), "method": "GET", "url": "/users/alice@example.com/mailFolders/inbox?$select=id"});
    let (status, _) = g
        .batch(&json!({"requests": (0..21).map(get).collect::<Vec<_>>()}))
        .await;
    assert_eq!(status, 400, "more than 20 requests");
    let (status, _) = g.batch(&json!({"requests": [get(1), get(1)]})).await;
    assert_eq!(status, 400, "duplicate ids");
    let url = format!(
        "/users/alice@example.com/messages/{}",
        urlencode(&d.item_id)
    );
    let patch = |with_type: bool| {
        let mut r = json!({"id": "p", "method": "PATCH", "url": url, "body": {"categories": ["Red", "Tracked"]}});
        if with_type {
            r["headers"] = json!({"Content-Type": "application/json", "Prefer": IMMUTABLE});
        }
        r
    };
    let (status, body) = g.batch(&json!({"requests": [patch(false)]})).await;
    assert_eq!(
        (status, body["responses"][0]["status"].as_u64()),
        (200, Some(400))
    );
    let (status, body) = g.batch(&json!({"requests": [patch(true), get(2)]})).await;
    assert_eq!(status, 200);
    let answers = body["responses"].as_array().unwrap();
    let p = answers.iter().find(|a| a["id"] == "p").unwrap();
    assert_eq!(p["status"], 200);
    assert_eq!(p["body"]["categories"], json!(["Red", "Tracked"]));
    assert_eq!(
        c.message(ALICE, &d.item_id).unwrap().categories,
        ["Red", "Tracked"]
    );
    let log = c.calls();
    assert_eq!(log.last().unwrap().operation, "$batch");
    assert!(log.last().unwrap().result.contains("messages.update:ok"));
}

#[tokio::test]
async fn throttling_is_429_with_retry_after_on_the_wire_and_in_a_batch() {
    let sim = simulator().await;
    let c = sim.control();
    c.add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some("mailFolders.get".into()),
        fault: FaultKind::Http429 {
            retry_after_secs: 7,
        },
        count: Some(2),
        probability: None,
    });
    let g = Graph::new(&sim).await;
    let r = g
        .http
        .get(format!(
            "{}/users/alice@example.com/mailFolders/inbox",
            g.root
        ))
        .bearer_auth(&g.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let item =
        json!({"id": "1", "method": "GET", "url": "/users/alice@example.com/mailFolders/inbox"});
    let (status, body) = g.batch(&json!({"requests": [item]})).await;
    assert_eq!(status, 200);
    assert_eq!(body["responses"][0]["status"], 429);
    assert_eq!(body["responses"][0]["headers"]["Retry-After"], "7");
}

#[tokio::test]
async fn tokens_carry_the_apps_roles_and_graph_refuses_what_they_do_not_allow() {
    let sim = simulator().await;
    let c = sim.control();
    let d = c.deliver(ALICE, "Inbox", &mail("to mark")).unwrap();
    let patch = json!({"requests": [{
        "id": "p", "method": "PATCH",
        "url": format!("/users/alice@example.com/messages/{}", urlencode(&d.item_id)),
        "headers": {"Content-Type": "application/json"},
        "body": {"categories": ["Tracked"]},
    }]});
    let roles = |g: &Graph| foldertrack::http::oauth::roles(&g.token).expect("a JWT");
    let read = |s: u16, b: &Value| (s, code(b).to_owned());

    // By default the app has Mail.ReadWrite: it reads and writes.
    let g = Graph::new(&sim).await;
    assert_eq!(roles(&g), ["Mail.ReadWrite"]);
    let (status, body) = g.get(DELTA, "").await;
    assert_eq!(read(status, &body), (200, String::new()));
    let (_, body) = g.batch(&patch).await;
    assert_eq!(body["responses"][0]["status"], 200, "{body}");

    // Mail.Read only: reading works, the PATCH is 403 ErrorAccessDenied.
    c.set_app_roles(APP_ID, &["Mail.Read"]).unwrap();
    let g = Graph::new(&sim).await;
    assert_eq!(roles(&g), ["Mail.Read"]);
    let (status, _) = g.get(DELTA, "").await;
    assert_eq!(status, 200);
    let (_, body) = g.batch(&patch).await;
    assert_eq!(body["responses"][0]["status"], 403, "{body}");
    assert_eq!(
        body["responses"][0]["body"]["error"]["code"],
        "ErrorAccessDenied"
    );

    // No Mail permission: reading is refused too.
    c.set_app_roles(APP_ID, &[]).unwrap();
    let g = Graph::new(&sim).await;
    assert!(roles(&g).is_empty());
    let (status, body) = g.get(DELTA, "").await;
    assert_eq!(read(status, &body), (403, "ErrorAccessDenied".to_owned()));
}

// ---- Change notifications ----

impl Graph {
    /// Sends `method` to a path under the root with a JSON body (or none).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(b);
        }
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn subscribe(&self, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, "/subscriptions", Some(body))
            .await
    }
}

/// What a test receiver does and saw.
#[derive(Default)]
struct ReceiverState {
    /// Answer validation requests with something other than the token.
    wrong_token: bool,
    /// Answer validation requests this late.
    validation_delay: Option<std::time::Duration>,
    /// Notification POSTs still to refuse with 503.
    refuse: std::sync::atomic::AtomicU32,
    refused: std::sync::atomic::AtomicU32,
    validations: std::sync::atomic::AtomicU32,
    bodies: std::sync::Mutex<Vec<Value>>,
}

/// A notification receiver on loopback; returns its URL and what it saw.
async fn receiver(state: ReceiverState) -> (String, std::sync::Arc<ReceiverState>) {
    use axum::extract::{RawQuery, State};
    use std::sync::atomic::Ordering::SeqCst;
    let state = std::sync::Arc::new(state);
    let handler = async |State(s): State<std::sync::Arc<ReceiverState>>,
                         RawQuery(q): RawQuery,
                         body: axum::body::Bytes| {
        if let Some(token) = q
            .as_deref()
            .and_then(foldertrack::graph::subscription::validation_token)
        {
            s.validations.fetch_add(1, SeqCst);
            if let Some(late) = s.validation_delay {
                tokio::time::sleep(late).await;
            }
            let answer = if s.wrong_token {
                "not the token".to_owned()
            } else {
                token
            };
            return (axum::http::StatusCode::OK, answer);
        }
        if s.refuse.load(SeqCst) > 0 {
            s.refuse.fetch_sub(1, SeqCst);
            s.refused.fetch_add(1, SeqCst);
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
        }
        s.bodies
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        (axum::http::StatusCode::ACCEPTED, String::new())
    };
    let router = axum::Router::new()
        .route("/notify", axum::routing::post(handler))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, state)
}

fn in_minutes(minutes: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes)).to_string()
}

fn subscription(url: &str, folder: &str, minutes: i64) -> Value {
    json!({
        "changeType": "created,updated,deleted",
        "notificationUrl": url,
        "lifecycleNotificationUrl": url,
        "resource": format!("users/{ALICE}/mailFolders('{folder}')/messages"),
        "expirationDateTime": in_minutes(minutes),
        "clientState": "the-client-state",
    })
}

#[tokio::test]
async fn a_subscription_is_created_only_when_its_receiver_echoes_the_validation_token() {
    let sim = simulator().await;
    let g = Graph::new(&sim).await;
    let (bad_url, bad) = receiver(ReceiverState {
        wrong_token: true,
        ..ReceiverState::default()
    })
    .await;
    let (status, body) = g.subscribe(&subscription(&bad_url, "inbox", 60)).await;
    assert_eq!((status, code(&body)), (400, "ValidationError"), "{body}");
    assert!(bad.validations.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    for (field, value, why) in [
        (
            "notificationUrl",
            json!("https://agent.example.com/notify"),
            "not loopback",
        ),
        (
            "notificationUrl",
            json!("http://10.0.0.1/notify"),
            "not loopback",
        ),
    ] {
        let (url, _) = receiver(ReceiverState::default()).await;
        let mut s = subscription(&url, "inbox", 60);
        s[field] = value;
        let (status, body) = g.subscribe(&s).await;
        assert_eq!(
            (status, code(&body)),
            (400, "ValidationError"),
            "{why}: {body}"
        );
    }
    let (url, good) = receiver(ReceiverState::default()).await;
    for (field, value) in [
        ("expirationDateTime", json!(in_minutes(10_081 + 5))),
        ("expirationDateTime", json!(in_minutes(-1))),
        ("changeType", json!("created,moved")),
        ("clientState", json!("x".repeat(129))),
        ("resource", json!("users/alice@example.com/events")),
        ("colour", json!("blue")),
    ] {
        let mut s = subscription(&url, "inbox", 60);
        s[field] = value;
        let (status, body) = g.subscribe(&s).await;
        assert_eq!(status, 400, "{field}: {body}");
    }
    assert_eq!(
        good.validations.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "refused before validating"
    );
    let (status, made) = g.subscribe(&subscription(&url, "inbox", 10_080)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["clientState"], "the-client-state");
    assert_eq!(made["changeType"], "created,updated,deleted");
    assert!(made["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(
        good.validations.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one validation when the lifecycle URL is the same"
    );
    let (status, list) = g.call(reqwest::Method::GET, "/subscriptions", None).await;
    assert_eq!(
        (status, list["value"].as_array().map(Vec::len)),
        (200, Some(1))
    );
}

#[tokio::test]
async fn notifications_are_posted_with_the_client_state_and_retried_until_taken() {
    use std::sync::atomic::Ordering::SeqCst;
    let sim = simulator().await;
    let g = Graph::new(&sim).await;
    let (url, seen) = receiver(ReceiverState {
        refuse: 1.into(),
        ..ReceiverState::default()
    })
    .await;
    let (status, made) = g.subscribe(&subscription(&url, "inbox", 60)).await;
    assert_eq!(status, 201, "{made}");
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Deals").unwrap();
    let delivered = c.deliver(ALICE, "Inbox", &mail("Notify me")).unwrap();
    // Refused once with 503: Graph tries again a second later.
    let taken = || !seen.bodies.lock().unwrap().is_empty();
    assert!(eventually(std::time::Duration::from_secs(10), taken).await);
    assert_eq!(seen.refused.load(SeqCst), 1);
    let body = seen.bodies.lock().unwrap()[0].clone();
    let n = &body["value"][0];
    assert_eq!(n["subscriptionId"], made["id"], "{body}");
    assert_eq!(n["clientState"], "the-client-state");
    assert_eq!(n["changeType"], "created");
    assert!(
        n["resource"].as_str().unwrap().contains("/Messages/"),
        "{body}"
    );
    assert!(n["subscriptionExpirationDateTime"].is_string());
    // Dragged out of the subscribed folder: `deleted` there (Deals is not subscribed).
    c.move_message(ALICE, &delivered.item_id, "Inbox/Deals")
        .unwrap();
    let deleted = || {
        seen.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b["value"].as_array().cloned().unwrap_or_default())
            .any(|n| n["changeType"] == "deleted")
    };
    assert!(eventually(std::time::Duration::from_secs(5), deleted).await);
    // subscriptionRemoved goes to the lifecycle URL and ends the subscription.
    assert_eq!(c.graph_lifecycle(ALICE, "subscriptionRemoved").unwrap(), 1);
    let removed = || {
        seen.bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b["value"][0]["lifecycleEvent"] == "subscriptionRemoved")
    };
    assert!(eventually(std::time::Duration::from_secs(5), removed).await);
    assert!(c.graph_subscriptions(ALICE).unwrap().is_empty());
}

#[tokio::test]
async fn a_subscription_is_renewed_by_patch_and_gone_once_expired_or_deleted() {
    let sim = simulator().await;
    let g = Graph::new(&sim).await;
    let (url, _) = receiver(ReceiverState::default()).await;
    let (_, made) = g.subscribe(&subscription(&url, "inbox", 60)).await;
    let path = format!("/subscriptions/{}", made["id"].as_str().unwrap());
    let renewal = json!({"expirationDateTime": in_minutes(120)});
    let (status, renewed) = g.call(reqwest::Method::PATCH, &path, Some(&renewal)).await;
    assert_eq!(status, 200, "{renewed}");
    assert_ne!(renewed["expirationDateTime"], made["expirationDateTime"]);
    let too_far = json!({"expirationDateTime": in_minutes(20_000)});
    assert_eq!(
        g.call(reqwest::Method::PATCH, &path, Some(&too_far))
            .await
            .0,
        400
    );
    assert_eq!(g.call(reqwest::Method::DELETE, &path, None).await.0, 204);
    assert_eq!(
        g.call(reqwest::Method::PATCH, &path, Some(&renewal))
            .await
            .0,
        404
    );
    // Granted one second: expired, it is gone and cannot be renewed.
    sim.control().set_graph_subscription_lifetime(Some(1));
    let (_, short) = g.subscribe(&subscription(&url, "inbox", 60)).await;
    let path = format!("/subscriptions/{}", short["id"].as_str().unwrap());
    let gone = async || g.call(reqwest::Method::GET, &path, None).await.0 == 404;
    assert!(eventually_async(std::time::Duration::from_secs(5), gone).await);
    assert_eq!(
        g.call(reqwest::Method::PATCH, &path, Some(&renewal))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_validation_answered_after_ten_seconds_fails_the_subscription() {
    let sim = simulator().await;
    let g = Graph::new(&sim).await;
    let (url, _) = receiver(ReceiverState {
        validation_delay: Some(std::time::Duration::from_secs(11)),
        ..ReceiverState::default()
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = g.subscribe(&subscription(&url, "inbox", 60)).await;
    assert_eq!((status, code(&body)), (400, "ValidationError"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{body}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(11),
        "Graph waits 10 s"
    );
    assert!(sim.control().graph_subscriptions(ALICE).unwrap().is_empty());
}
