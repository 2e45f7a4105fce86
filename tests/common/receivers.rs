//! A loopback webhook receiver that checks the signature, deduplicates by the idempotency key
//! and answers from a script the test sets. (The Dataverse Web API's stand-in is
//! [`super::dataverse`].)

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub const WEBHOOK_SECRET: &str = "webhook-shared-secret";

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
    /// Every signed request: its signature header, body and the receiver's clock (Unix s).
    signed: Vec<Signed>,
}

/// One request as signed.
#[derive(Clone, Debug)]
pub struct Signed {
    pub header: String,
    pub body: Vec<u8>,
    pub received: u64,
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

    /// Every request that carried a valid signature, in order.
    pub fn signed(&self) -> Vec<Signed> {
        self.state.lock().unwrap().signed.clone()
    }

    /// Answers requests for a mail with `subject` with `status`, whatever else is scripted.
    pub fn refuse_subject(&self, subject: &str, status: u16) {
        self.state.lock().unwrap().refuse_subject = Some((subject.to_owned(), status));
    }

    /// The `[sink]` section for it (the secret in a file under `dir`).
    pub fn sink_toml(&self, dir: &std::path::Path) -> String {
        let secret = dir.join("webhook.secret");
        super::write_secret(&secret, WEBHOOK_SECRET);
        format!(
            "[sink]\nkind = \"webhook\"\nurl = \"{}\"\nsecret_file = \"{}\"\ntimeout_secs = 5\n",
            self.url,
            secret.display()
        )
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A receiver's check of `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, written from
/// the README's recipe rather than with foldertrack's own `verify`: the time within 5 minutes
/// of `now`, the HMAC over the time, a dot and the body.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now: u64) -> Result<(), String> {
    use hmac::Mac;
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .ok_or(format!("not t=…,v1=…: {header}"))?;
    let t: u64 = t.parse().map_err(|_| format!("bad time {t}"))?;
    if t.abs_diff(now) > 300 {
        return Err(format!("signed at {t}, now {now}: outside the tolerance"));
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want = hex::decode(v1).map_err(|_| "v1 is not hex".to_owned())?;
    mac.verify_slice(&want)
        .map_err(|_| "the signature does not match".to_owned())
}

async fn hook(State(state): State<Arc<Mutex<Hook>>>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("X-Foldertrack-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let received = unix_now();
    if verify_signature(WEBHOOK_SECRET, signature, &body, received).is_err() {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    state.lock().unwrap().signed.push(Signed {
        header: signature.to_owned(),
        body: body.to_vec(),
        received,
    });
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

/// Serves `app` on 127.0.0.1 (a free port) for the rest of the test; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
