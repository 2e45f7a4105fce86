//! Loopback stand-ins for what foldertrack delivers to: a webhook receiver that checks the
//! signature, and a Dataverse Web API that keeps email activities and records every request
//! exactly as it arrived. Both answer from a script the test sets.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub const WEBHOOK_SECRET: &str = "webhook-shared-secret";

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, percent-decoded.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Hook {
    /// Statuses to answer, in order; 200 once they run out (or `always` when set).
    script: VecDeque<u16>,
    always: Option<u16>,
    attempts: usize,
    /// Event id → the request body, for every request answered 2xx.
    records: HashMap<String, Value>,
    /// 2xx answers given for an event already recorded (the receiver deduplicates).
    repeats: usize,
    /// Every request answered 2xx, in the order they arrived.
    accepted: Vec<Value>,
    /// Requests for a mail with this subject are answered with this status.
    refuse_subject: Option<(String, u16)>,
}

/// A webhook receiver on 127.0.0.1.
#[derive(Clone)]
pub struct Webhook {
    state: Arc<Mutex<Hook>>,
    pub url: String,
}

impl Webhook {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Hook::default()));
        let app = Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(state.clone());
        let url = serve(app).await + "/hook";
        Self { state, url }
    }

    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script = statuses.iter().copied().collect();
    }

    pub fn always(&self, status: Option<u16>) {
        self.state.lock().unwrap().always = status;
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    /// Distinct events accepted.
    pub fn records(&self) -> HashMap<String, Value> {
        self.state.lock().unwrap().records.clone()
    }

    pub fn repeats(&self) -> usize {
        self.state.lock().unwrap().repeats
    }

    /// Every request answered 2xx, in the order they arrived.
    pub fn accepted(&self) -> Vec<Value> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Answers requests for a mail with `subject` with `status`, whatever else is scripted.
    pub fn refuse_subject(&self, subject: &str, status: u16) {
        self.state.lock().unwrap().refuse_subject = Some((subject.to_owned(), status));
    }

    /// The `[sink]` section for it (the secret in a file under `dir`).
    pub fn sink_toml(&self, dir: &std::path::Path) -> String {
        let secret = dir.join("webhook.secret");
        std::fs::write(&secret, WEBHOOK_SECRET).unwrap();
        format!(
            "[sink]\nkind = \"webhook\"\nurl = \"{}\"\nsecret_file = \"{}\"\ntimeout_secs = 5\n",
            self.url,
            secret.display()
        )
    }
}

async fn hook(State(state): State<Arc<Mutex<Hook>>>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("X-Foldertrack-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !foldertrack::deliver::webhook::verify(WEBHOOK_SECRET.as_bytes(), &body, signature) {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let key = headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut s = state.lock().unwrap();
    s.attempts += 1;
    let value: Value = serde_json::from_slice(&body).unwrap();
    let refused = s
        .refuse_subject
        .as_ref()
        .filter(|(subject, _)| value["message"]["subject"] == subject.as_str())
        .map(|(_, status)| *status);
    let status = refused
        .or(s.always)
        .or_else(|| s.script.pop_front())
        .unwrap_or(200);
    if (200..300).contains(&status) {
        assert_eq!(
            value["event_id"],
            key.as_str(),
            "the idempotency key is the event id"
        );
        s.accepted.push(value.clone());
        if s.records.insert(key, value).is_some() {
            s.repeats += 1;
        }
    }
    StatusCode::from_u16(status).unwrap().into_response()
}

#[derive(Default)]
struct Dv {
    seen: Vec<Seen>,
    /// messageid → (activity id, regarding binding).
    emails: HashMap<String, (String, Option<String>)>,
    creates: HashMap<String, usize>,
    /// Answer email creation with this status and error message.
    refuse_create: Option<(u16, String)>,
}

/// A Dataverse Web API (and its token endpoint) on 127.0.0.1.
#[derive(Clone)]
pub struct Dataverse {
    state: Arc<Mutex<Dv>>,
    pub url: String,
}

pub const DV_TOKEN: &str = "dataverse-access-token-0123456789";
pub const DV_SECRET: &str = "dataverse-client-secret";

impl Dataverse {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Dv::default()));
        let app = Router::new().fallback(dataverse).with_state(state.clone());
        let url = serve(app).await;
        Self { state, url }
    }

    pub fn refuse_create(&self, status: u16, message: &str) {
        self.state.lock().unwrap().refuse_create = Some((status, message.to_owned()));
    }

    pub fn accept(&self) {
        self.state.lock().unwrap().refuse_create = None;
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// messageid → regarding binding of every email activity.
    pub fn emails(&self) -> HashMap<String, Option<String>> {
        let s = self.state.lock().unwrap();
        s.emails
            .iter()
            .map(|(k, (_, r))| (k.clone(), r.clone()))
            .collect()
    }

    /// messageid → how many times an email activity was created for it.
    pub fn creates(&self) -> HashMap<String, usize> {
        self.state.lock().unwrap().creates.clone()
    }

    pub fn sink_toml(&self, dir: &std::path::Path, act_as_owner: bool) -> String {
        let secret = dir.join("dataverse.secret");
        std::fs::write(&secret, DV_SECRET).unwrap();
        format!(
            "[sink]\nkind = \"dynamics\"\norg_url = \"{url}\"\ntenant_id = \"00000000-0000-0000-0000-0000000000aa\"\nclient_id = \"foldertrack-app\"\nclient_secret_file = \"{secret}\"\nact_as_owner = {act_as_owner}\ntoken_url = \"{url}/token\"\n",
            url = self.url,
            secret = secret.display()
        )
    }
}

fn quoted(query: &str, field: &str) -> Option<String> {
    let start = query.find(&format!("{field} eq '"))? + field.len() + 5;
    let rest = &query[start..];
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            return Some(out);
        }
        out.push(c);
    }
    None
}

async fn dataverse(
    State(state): State<Arc<Mutex<Dv>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = percent_decode(&uri.to_string());
    let body: Value = if body.is_empty() {
        Value::Null
    } else if target == "/token" {
        Value::String(String::from_utf8_lossy(&body).into_owned())
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let mut s = state.lock().unwrap();
    s.seen.push(Seen {
        method: method.to_string(),
        target: target.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    if target == "/token" {
        let form = body.as_str().unwrap_or("");
        if !form.contains(&format!("client_secret={DV_SECRET}")) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "invalid_client"})),
            )
                .into_response();
        }
        return axum::Json(
            json!({"access_token": DV_TOKEN, "token_type": "Bearer", "expires_in": 3600}),
        )
        .into_response();
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if bearer != Some(&format!("Bearer {DV_TOKEN}")) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let path = target.split('?').next().unwrap_or("");
    match (method.as_str(), path) {
        ("GET", "/api/data/v9.2/systemusers") => {
            let address = quoted(&target, "internalemailaddress").unwrap_or_default();
            axum::Json(
                json!({"value": [{"azureactivedirectoryobjectid": format!("aad-{address}")}]}),
            )
            .into_response()
        }
        ("GET", "/api/data/v9.2/emails") => {
            let id = quoted(&target, "messageid").unwrap_or_default();
            let found: Vec<Value> = s
                .emails
                .get(&id)
                .map(|(activity, _)| json!({"activityid": activity}))
                .into_iter()
                .collect();
            axum::Json(json!({"value": found})).into_response()
        }
        ("POST", "/api/data/v9.2/emails") => {
            if let Some((status, message)) = s.refuse_create.clone() {
                let error = json!({"error": {"code": "0x80040220", "message": message}});
                return (StatusCode::from_u16(status).unwrap(), axum::Json(error)).into_response();
            }
            let id = body["messageid"].as_str().unwrap_or_default().to_owned();
            let regarding = body
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("regardingobjectid_")))
                .and_then(|(_, v)| v.as_str().map(str::to_owned));
            let activity = format!("act-{}", s.emails.len() + 1);
            s.emails.insert(id.clone(), (activity, regarding));
            *s.creates.entry(id).or_default() += 1;
            StatusCode::NO_CONTENT.into_response()
        }
        ("PATCH", p) if p.starts_with("/api/data/v9.2/emails(") => {
            let activity = p
                .trim_start_matches("/api/data/v9.2/emails(")
                .trim_end_matches(')');
            let regarding = body
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("regardingobjectid_")))
                .and_then(|(_, v)| v.as_str().map(str::to_owned));
            match s.emails.values_mut().find(|(a, _)| a == activity) {
                Some(email) => {
                    email.1 = regarding;
                    StatusCode::NO_CONTENT.into_response()
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves `app` on 127.0.0.1 (a free port) for the rest of the test; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
