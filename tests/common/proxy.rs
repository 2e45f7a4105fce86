//! A hostile front end: a loopback HTTP proxy before the simulator that forwards every EWS
//! call and rewrites the answer's bytes as the test says — padding, invalid UTF-8, control
//! characters — so the agent meets a malicious or broken server while the simulator keeps
//! the mailbox state.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Rewrites an answer: `(operation, body)` → the body sent on.
pub type Rewrite = Arc<dyn Fn(&str, Vec<u8>) -> Vec<u8> + Send + Sync>;

struct Front {
    upstream: String,
    http: reqwest::Client,
    rewrite: Rewrite,
}

/// Starts the proxy before `ews_url`; returns the EWS URL to give the agent.
pub async fn start(ews_url: &str, rewrite: Rewrite) -> String {
    let upstream = url::Url::parse(ews_url).unwrap();
    let front = Arc::new(Front {
        upstream: upstream.origin().ascii_serialization(),
        http: foldertrack::http::client(&Default::default()).unwrap(),
        rewrite,
    });
    let app = Router::new().fallback(forward).with_state(front);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}{}", upstream.path())
}

async fn forward(
    State(front): State<Arc<Front>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operation = headers
        .get("SOAPAction")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.trim_matches('"').rsplit('/').next())
        .unwrap_or("")
        .to_owned();
    let mut request = front
        .http
        .request(method, format!("{}{uri}", front.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            out.insert(name, value.clone());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default().to_vec();
    (status, out, (front.rewrite)(&operation, bytes)).into_response()
}
