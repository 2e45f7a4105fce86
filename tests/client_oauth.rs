//! OAuth client credentials against a tiny token endpoint on 127.0.0.1 (the simulator has no
//! token endpoint): the form sent, caching, one shared refresh, refresh after a 401, rejection.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use foldertrack::http::oauth::{Error, TokenSource};
use foldertrack::http::{Timeouts, client as http_client};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
struct Endpoint {
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    status: StatusCode,
    reply: &'static str,
}

async fn token(State(e): State<Endpoint>, body: String) -> (StatusCode, String) {
    let form = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    // Slow enough that concurrent callers overlap with the first request.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let n = {
        let mut forms = e.forms.lock().unwrap();
        forms.push(form);
        forms.len()
    };
    (e.status, e.reply.replace("{n}", &n.to_string()))
}

struct Server {
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    source: TokenSource,
}

impl Server {
    fn requests(&self) -> usize {
        self.forms.lock().unwrap().len()
    }
}

async fn serve(status: StatusCode, reply: &'static str) -> Server {
    let forms = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token))
        .with_state(Endpoint {
            forms: forms.clone(),
            status,
            reply,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/tenant/oauth2/v2.0/token")
        .parse()
        .unwrap();
    let source = TokenSource::new(
        url,
        "app-id",
        SecretString::from("the-client-secret"),
        "https://outlook.office365.com/.default",
        http_client(&Timeouts::default()).unwrap(),
    );
    Server { forms, source }
}

const HOUR: &str = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"token-{n}"}"#;

#[tokio::test]
async fn sends_the_client_credentials_form_and_caches_the_token() {
    let server = serve(StatusCode::OK, HOUR).await;
    let first = server.source.token().await.unwrap();
    let again = server.source.token().await.unwrap();
    assert_eq!(first.secret(), "token-1");
    assert_eq!(again.secret(), "token-1");
    assert_eq!(server.requests(), 1);
    let form = server.forms.lock().unwrap()[0].clone();
    let expected: HashMap<String, String> = [
        ("grant_type", "client_credentials"),
        ("client_id", "app-id"),
        ("client_secret", "the-client-secret"),
        ("scope", "https://outlook.office365.com/.default"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(form, expected);
    assert!(!format!("{first:?} {:?}", server.source).contains("token-1"));
    assert!(!format!("{:?}", server.source).contains("the-client-secret"));
}

#[tokio::test]
async fn concurrent_callers_share_one_request() {
    let server = serve(StatusCode::OK, HOUR).await;
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let source = server.source.clone();
            tokio::spawn(async move { source.token().await.unwrap().secret().to_owned() })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), "token-1");
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn an_expired_token_is_fetched_again() {
    let server = serve(
        StatusCode::OK,
        r#"{"expires_in":0,"access_token":"token-{n}"}"#,
    )
    .await;
    assert_eq!(server.source.token().await.unwrap().secret(), "token-1");
    assert_eq!(server.source.token().await.unwrap().secret(), "token-2");
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_however_many_callers_saw_it_fail() {
    let server = serve(StatusCode::OK, HOUR).await;
    let stale = server.source.token().await.unwrap();
    let fresh = server.source.refresh(&stale).await.unwrap();
    assert_eq!(fresh.secret(), "token-2");
    // A second caller holding the same stale token gets the new one without a request.
    let also = server.source.refresh(&stale).await.unwrap();
    assert_eq!(also.secret(), "token-2");
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn refused_credentials_name_the_endpoint_and_the_oauth_error_only() {
    let server = serve(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret"}"#,
    )
    .await;
    let err = server.source.token().await.unwrap_err();
    assert!(
        matches!(err, Error::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.is_rejected());
    let shown = err.to_string();
    assert!(shown.contains("invalid_client"), "{shown}");
    assert!(shown.contains("check the client id"), "{shown}");
    assert!(!shown.contains("the-client-secret"), "{shown}");
}

#[tokio::test]
async fn an_answer_without_a_token_is_reported() {
    let server = serve(StatusCode::OK, r#"{"token_type":"Bearer"}"#).await;
    let err = server.source.token().await.unwrap_err();
    assert!(matches!(err, Error::NoToken { status: 200, .. }), "{err:?}");
}
