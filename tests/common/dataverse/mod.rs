//! A strict Dataverse Web API (and its token endpoint) on 127.0.0.1, as strict as Microsoft's
//! documentation: it knows the email table's declared columns and navigation properties
//! ([`schema`], from the reference pages, not from foldertrack's code) and answers anything
//! undeclared with a 400 and Dataverse's error body; it checks state/status pairs, party
//! participation types and bind targets, entity set names (served from EntityDefinitions),
//! OAuth tokens and their expiry, CallerObjectId impersonation with per-user privileges
//! (the effective privileges are the intersection of the application user's and the
//! impersonated user's), field security, missing rows, and service protection (429 with a
//! Retry-After that grows while the caller keeps calling inside the window, and a concurrency
//! limit). Every request is logged with the status it got. Tests script it through
//! [`Dataverse`]'s methods.
//!
//! Where the documentation does not say what the service does, the fake takes the stricter
//! reading and says so (UNVERIFIED) next to the rule.

pub mod api;
pub mod odata;
pub mod schema;
pub mod writes;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use odata::{Answer, error};
use schema::TableDef;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub const DV_SECRET: &str = "dataverse-client-secret";
pub const CLIENT_ID: &str = "foldertrack-app";
pub const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
/// The application user's address (it has no mailbox).
pub const APP_USER: &str = "foldertrack-app@apps.example.com";
pub const API: &str = "/api/data/v9.2";

/// A date and time as Dataverse writes it: UTC, to the second.
pub fn dataverse_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A Dataverse user (systemuser).
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    /// azureactivedirectoryobjectid: what `CallerObjectId` names.
    pub aad: String,
    pub email: String,
    pub disabled: bool,
    pub privileges: BTreeSet<String>,
    /// Secured columns (`email.description`) this user may create and update.
    pub field_grants: BTreeSet<String>,
}

/// An activity party of an email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    pub mask: i64,
    /// The table and row it resolved to, if any.
    pub target: Option<(String, String)>,
    pub address: Option<String>,
}

/// An email activity as stored.
#[derive(Clone, Debug)]
pub struct Email {
    pub id: String,
    pub row: Map<String, Value>,
    /// The regarding table and row.
    pub regarding: Option<(String, String)>,
    pub parties: Vec<Party>,
    /// The systemuserid that created it (the impersonated user when there was one).
    pub created_by: String,
}

impl Email {
    pub fn state(&self) -> (i64, i64) {
        (
            self.row["statecode"].as_i64().unwrap(),
            self.row["statuscode"].as_i64().unwrap(),
        )
    }
}

/// An activitymimeattachment row.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: String,
    pub email: String,
    pub row: Map<String, Value>,
}

/// One request as it arrived, and the status it got.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, percent-decoded (a `+` stays a `+`).
    pub target: String,
    /// Path and query exactly as sent.
    pub raw: String,
    pub headers: HeaderMap,
    /// JSON body, or the form text of a token request.
    pub body: Value,
    pub status: u16,
    pub at: Instant,
}

/// Service protection as the tests script it.
#[derive(Default)]
struct Throttle {
    /// API requests still allowed before a throttling window opens, and its length.
    after: Option<(usize, Duration)>,
    /// The open window, until when; calling inside it lengthens it.
    until: Option<Instant>,
    started: Option<Instant>,
    /// Requests that arrived inside an open window after the grace for those already in
    /// flight when it opened.
    inside: usize,
    answered_429: usize,
}

/// Requests already on the wire when a window opens are not the caller's fault.
const GRACE: Duration = Duration::from_millis(250);
/// How much each call inside a window lengthens it.
const PENALTY: Duration = Duration::from_secs(1);

pub struct Org {
    pub url: String,
    pub tables: Vec<TableDef>,
    /// Extra regarding targets of custom tables: (table, navigation property).
    pub custom_regarding: Vec<(String, String)>,
    /// Rows of every table but email and systemuser, by table then id.
    pub rows: HashMap<String, BTreeMap<String, Map<String, Value>>>,
    pub users: Vec<User>,
    pub app: usize,
    pub emails: BTreeMap<String, Email>,
    pub attachments: Vec<Attachment>,
    /// messageid → emails created with it.
    pub creates: HashMap<String, usize>,
    /// `table.column` secured by field security.
    pub secured: BTreeSet<String>,
    /// Rows nobody may append to (record-level access), `table(id)`.
    pub locked: BTreeSet<String>,
    tokens: HashMap<String, Instant>,
    token_lifetime: Duration,
    issued: usize,
    refuse_client: bool,
    pub log: Vec<Seen>,
    throttle: Throttle,
    in_flight: usize,
    max_in_flight: usize,
    concurrency_limit: usize,
    latency: Duration,
    seq: u64,
}

/// The fake, shared with its server.
#[derive(Clone)]
pub struct Dataverse {
    state: Arc<Mutex<Org>>,
    pub url: String,
}

fn guid(prefix: u32, n: u64) -> String {
    format!("{prefix:08x}-0000-4000-8000-{n:012x}")
}

impl Org {
    fn new(url: String) -> Self {
        let mut org = Org {
            url,
            tables: schema::standard_tables(),
            custom_regarding: Vec::new(),
            rows: HashMap::new(),
            users: Vec::new(),
            app: 0,
            emails: BTreeMap::new(),
            attachments: Vec::new(),
            creates: HashMap::new(),
            secured: BTreeSet::new(),
            locked: BTreeSet::new(),
            tokens: HashMap::new(),
            token_lifetime: Duration::from_secs(3600),
            issued: 0,
            refuse_client: false,
            log: Vec::new(),
            throttle: Throttle::default(),
            in_flight: 0,
            max_in_flight: 0,
            concurrency_limit: 52,
            latency: Duration::ZERO,
            seq: 0,
        };
        org.add_user(APP_USER, schema::application_role());
        for address in [super::ALICE, super::BOB] {
            org.add_user(address, schema::salesperson());
        }
        for (id, name) in [(super::CONTOSO, "Contoso"), (super::FABRIKAM, "Fabrikam")] {
            org.put_row("account", id, json!({"name": name, "statecode": 0}));
        }
        org
    }

    pub fn next_id(&mut self, prefix: u32) -> String {
        self.seq += 1;
        guid(prefix, self.seq)
    }

    fn add_user(&mut self, email: &str, privileges: Vec<String>) -> usize {
        let id = self.next_id(0x5e5);
        let aad = self.next_id(0xaad);
        self.users.push(User {
            id,
            aad,
            email: email.into(),
            disabled: false,
            privileges: privileges.into_iter().collect(),
            field_grants: BTreeSet::new(),
        });
        self.users.len() - 1
    }

    pub fn user_mut(&mut self, email: &str) -> &mut User {
        self.users
            .iter_mut()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .unwrap_or_else(|| panic!("no user {email} in the fake"))
    }

    pub fn put_row(&mut self, table: &str, id: &str, fields: Value) {
        let def = self
            .table(table)
            .unwrap_or_else(|| panic!("no table {table}"));
        let mut row = fields.as_object().cloned().unwrap_or_default();
        row.insert(def.primary_id.clone(), json!(id));
        self.rows
            .entry(table.into())
            .or_default()
            .insert(id.to_ascii_lowercase(), row);
    }

    pub fn table(&self, logical: &str) -> Option<TableDef> {
        self.tables.iter().find(|t| t.logical == logical).cloned()
    }

    pub fn table_by_set(&self, set: &str) -> Option<TableDef> {
        self.tables.iter().find(|t| t.set == set).cloned()
    }

    /// The row of `table` with `id`, as a query sees it.
    pub fn row(&self, table: &str, id: &str) -> Option<Map<String, Value>> {
        let id = id.to_ascii_lowercase();
        match table {
            "systemuser" => self
                .users
                .iter()
                .find(|u| u.id == id)
                .map(|u| self.user_row(u)),
            "email" => self.emails.get(&id).map(api::email_row),
            _ => self.rows.get(table)?.get(&id).cloned(),
        }
    }

    pub fn user_row(&self, u: &User) -> Map<String, Value> {
        let application = std::ptr::eq(u, &self.users[self.app]);
        json!({
            "systemuserid": u.id,
            "fullname": u.email.split('@').next().unwrap_or(""),
            "internalemailaddress": u.email,
            "azureactivedirectoryobjectid": u.aad,
            "isdisabled": u.disabled,
            "domainname": u.email,
            "applicationid": if application { json!(CLIENT_ID) } else { Value::Null },
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    /// Token endpoint: client credentials for the organisation's `.default` scope.
    fn token(&mut self, form: &str) -> Answer {
        let fields: HashMap<String, String> = form
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (odata::decode(k), odata::decode(v)))
            .collect();
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        if get("grant_type") != "client_credentials" {
            return Answer::json(400, json!({"error": "unsupported_grant_type"}));
        }
        if get("scope") != format!("{}/.default", self.url) {
            return Answer::json(400, json!({"error": "invalid_scope"}));
        }
        if self.refuse_client || get("client_id") != CLIENT_ID || get("client_secret") != DV_SECRET
        {
            return Answer::json(401, json!({"error": "invalid_client"}));
        }
        self.issued += 1;
        let token = format!("dv-token-{}-{}", self.issued, fastrand::u64(..));
        self.tokens
            .insert(token.clone(), Instant::now() + self.token_lifetime);
        Answer::json(
            200,
            json!({"token_type": "Bearer", "expires_in": self.token_lifetime.as_secs(), "access_token": token}),
        )
    }

    /// What every API call passes first: a live bearer token, the OData headers, service
    /// protection. Admitted calls count as in flight.
    fn admit(&mut self, headers: &HeaderMap, body: &[u8]) -> Result<(), Answer> {
        let bearer = header(headers, "authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let live = self
            .tokens
            .get(bearer)
            .is_some_and(|exp| Instant::now() < *exp);
        if !live {
            // The body of an expired-token 401 is UNVERIFIED: none is sent.
            return Err(Answer::empty(401).header(
                "WWW-Authenticate",
                format!(
                    "Bearer authorization_uri=https://login.microsoftonline.com/{TENANT}/oauth2/authorize, resource_id={}/",
                    self.url
                ),
            ));
        }
        // Whether the service refuses calls without these is UNVERIFIED; they are required
        // here ("should" in the documentation).
        for (name, value) in [("odata-maxversion", "4.0"), ("odata-version", "4.0")] {
            if header(headers, name) != Some(value) {
                return Err(error(
                    400,
                    "0x0",
                    format!("the {name} header must be {value}"),
                ));
            }
        }
        if !header(headers, "accept").is_some_and(|a| a.contains("application/json")) {
            return Err(error(400, "0x0", "Accept must name application/json"));
        }
        if !body.is_empty()
            && !header(headers, "content-type").is_some_and(|c| c.starts_with("application/json"))
        {
            return Err(error(
                400,
                "0x0",
                "a JSON body needs Content-Type: application/json",
            ));
        }
        self.protect()?;
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
        if self.in_flight > self.concurrency_limit {
            self.in_flight -= 1;
            return Err(throttled(
                Duration::from_secs(1),
                "0x80072326",
                format!(
                    "Number of concurrent requests exceeded the limit of {}.",
                    self.concurrency_limit
                ),
            ));
        }
        Ok(())
    }

    /// Service protection: a scripted window of 429s that grows while the caller keeps calling.
    fn protect(&mut self) -> Result<(), Answer> {
        let now = Instant::now();
        let t = &mut self.throttle;
        if let Some(until) = t.until.filter(|u| now < *u) {
            if t.started.is_some_and(|s| now > s + GRACE) {
                t.inside += 1;
            }
            let until = until + PENALTY;
            t.until = Some(until);
            t.answered_429 += 1;
            return Err(window_answer(until - now));
        }
        match &mut t.after {
            Some((0, window)) => {
                let until = now + *window;
                t.until = Some(until);
                t.started = Some(now);
                t.after = None;
                t.answered_429 += 1;
                Err(window_answer(until - now))
            }
            Some((n, _)) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn window_answer(left: Duration) -> Answer {
    throttled(
        left,
        "0x80072322",
        "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    )
}

fn throttled(retry_after: Duration, code: &str, message: impl Into<String>) -> Answer {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    error(429, code, message).header("Retry-After", secs.max(1).to_string())
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn serve_request(
    State(state): State<Arc<Mutex<Org>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (index, latency) = {
        let mut org = state.lock().unwrap();
        let json_body = if uri.path() == "/token" {
            Value::String(String::from_utf8_lossy(&body).into_owned())
        } else if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::String("<not JSON>".into()))
        };
        org.log.push(Seen {
            method: method.to_string(),
            target: percent_decode_path(&raw),
            raw: raw.clone(),
            headers: headers.clone(),
            body: json_body.clone(),
            status: 0,
            at: Instant::now(),
        });
        let index = org.log.len() - 1;
        let early = if uri.path() == "/token" && method == Method::POST {
            Some(org.token(json_body.as_str().unwrap_or("")))
        } else {
            org.admit(&headers, &body).err()
        };
        if let Some(answer) = early {
            org.log[index].status = answer.status;
            return answer.into_response();
        }
        (index, org.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut org = state.lock().unwrap();
    org.in_flight -= 1;
    let body: Value = org.log[index].body.clone();
    let answer = api::route(&mut org, &method, &uri, &headers, body);
    org.log[index].status = answer.status;
    answer.into_response()
}

/// Decodes `%XX` in a logged target, leaving `+` alone (for people reading the log).
fn percent_decode_path(s: &str) -> String {
    odata::decode(&s.replace('+', "%2B"))
}

impl Dataverse {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Org::new(url.clone())));
        let app = Router::new()
            .fallback(serve_request)
            // Bodies over the upload limit reach the checks (axum would answer 413 at 2 MB).
            .layer(axum::extract::DefaultBodyLimit::max(4 * schema::MAX_UPLOAD))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, url }
    }

    /// Runs `f` on the organisation's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut Org) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// The `[sink]` section for it (the secret in a file under `dir`), plus `extra` lines.
    pub fn sink_toml_with(&self, dir: &std::path::Path, act_as_owner: bool, extra: &str) -> String {
        let secret = dir.join("dataverse.secret");
        super::write_secret(&secret, DV_SECRET);
        format!(
            "[sink]\nkind = \"dynamics\"\norg_url = \"{url}\"\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"{secret}\"\nact_as_owner = {act_as_owner}\ntoken_url = \"{url}/token\"\n{extra}\n",
            url = self.url,
            secret = secret.display()
        )
    }

    pub fn sink_toml(&self, dir: &std::path::Path, act_as_owner: bool) -> String {
        self.sink_toml_with(dir, act_as_owner, "")
    }

    // --- what the tests read ---

    pub fn requests(&self) -> Vec<Seen> {
        self.with(|o| o.log.clone())
    }

    /// The API requests (not the token endpoint's), as `METHOD target`.
    pub fn lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.target != "/token")
            .map(|r| format!("{} {}", r.method, r.target))
            .collect()
    }

    /// Every request with the status it got, for failure messages.
    pub fn log(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {} -> {}", r.method, r.target, r.status))
            .collect()
    }

    pub fn emails(&self) -> Vec<Email> {
        self.with(|o| o.emails.values().cloned().collect())
    }

    /// The email activity with this message id.
    pub fn email(&self, message_id: &str) -> Option<Email> {
        self.emails()
            .into_iter()
            .find(|e| e.row.get("messageid").and_then(Value::as_str) == Some(message_id))
    }

    /// messageid → how many email activities were created with it.
    pub fn creates(&self) -> HashMap<String, usize> {
        self.with(|o| o.creates.clone())
    }

    pub fn attachments(&self) -> Vec<Attachment> {
        self.with(|o| o.attachments.clone())
    }

    pub fn user(&self, email: &str) -> User {
        self.with(|o| o.user_mut(email).clone())
    }

    pub fn app_user(&self) -> User {
        self.with(|o| o.users[o.app].clone())
    }

    /// Requests that arrived inside a Retry-After window (past the grace for those already
    /// in flight when it opened), and 429s answered in all.
    pub fn throttle_counts(&self) -> (usize, usize) {
        self.with(|o| (o.throttle.inside, o.throttle.answered_429))
    }

    /// The most requests ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.with(|o| o.max_in_flight)
    }

    // --- what the tests script ---

    pub fn add_row(&self, table: &str, fields: Value) -> String {
        self.with(|o| {
            let id = o.next_id(0x7ab);
            o.put_row(table, &id, fields);
            id
        })
    }

    pub fn put_row(&self, table: &str, id: &str, fields: Value) {
        self.with(|o| o.put_row(table, id, fields))
    }

    /// A person re-links the email activity of `message_id` in Dynamics, at `at`.
    pub fn change_regarding(&self, message_id: &str, table: &str, id: &str, at: jiff::Timestamp) {
        self.with(|o| {
            let email = o
                .emails
                .values_mut()
                .find(|e| e.row["messageid"].as_str() == Some(message_id))
                .expect("an email activity with that message id");
            email.regarding = Some((table.to_owned(), id.to_owned()));
            email
                .row
                .insert("modifiedon".into(), json!(dataverse_time(at)));
        })
    }

    pub fn remove_row(&self, table: &str, id: &str) {
        self.with(|o| {
            o.rows
                .get_mut(table)
                .and_then(|t| t.remove(&id.to_ascii_lowercase()))
        });
    }

    pub fn add_user(&self, email: &str, privileges: Vec<String>) -> User {
        self.with(|o| {
            let i = o.add_user(email, privileges);
            o.users[i].clone()
        })
    }

    pub fn revoke(&self, email: &str, privilege: &str) {
        self.with(|o| o.user_mut(email).privileges.remove(privilege));
    }

    pub fn grant(&self, email: &str, privilege: &str) {
        self.with(|o| o.user_mut(email).privileges.insert(privilege.into()));
    }

    /// Field security on `table.column`; only users granted it may write it.
    pub fn secure(&self, table: &str, column: &str) {
        self.with(|o| o.secured.insert(format!("{table}.{column}")));
    }

    pub fn grant_field(&self, email: &str, table: &str, column: &str) {
        self.with(|o| {
            o.user_mut(email)
                .field_grants
                .insert(format!("{table}.{column}"))
        });
    }

    /// Nobody may append to this row (record-level access), privileges notwithstanding.
    pub fn lock_row(&self, table: &str, id: &str) {
        self.with(|o| {
            o.locked
                .insert(format!("{table}({})", id.to_ascii_lowercase()))
        });
    }

    /// A custom activity-enabled table, with its entity set and its regarding navigation
    /// property on email (neither follows a rule).
    pub fn add_custom_table(&self, logical: &str, set: &str, privilege: &str, nav: &str) {
        self.with(|o| {
            o.tables.push(TableDef {
                logical: logical.into(),
                set: set.into(),
                primary_id: format!("{logical}id"),
                privilege: privilege.into(),
                otc: 10_500 + o.tables.len() as u32,
                columns: vec![
                    Box::leak(format!("{logical}id").into_boxed_str()),
                    "name",
                    "statecode",
                ],
            });
            o.custom_regarding.push((logical.into(), nav.into()));
        });
    }

    /// Tokens issued from now on live this long.
    pub fn token_lifetime(&self, lifetime: Duration) {
        self.with(|o| o.token_lifetime = lifetime);
    }

    /// Every token issued so far expires now.
    pub fn expire_tokens(&self) {
        self.with(|o| {
            let now = Instant::now();
            o.tokens.values_mut().for_each(|t| *t = now);
        });
    }

    pub fn tokens_issued(&self) -> usize {
        self.with(|o| o.issued)
    }

    /// The token endpoint refuses the client from now on.
    pub fn refuse_client(&self, refuse: bool) {
        self.with(|o| o.refuse_client = refuse);
    }

    /// After `n` more API requests, a throttling window of `window` opens.
    pub fn throttle_after(&self, n: usize, window: Duration) {
        self.with(|o| o.throttle.after = Some((n, window)));
    }

    pub fn concurrency_limit(&self, n: usize) {
        self.with(|o| o.concurrency_limit = n);
    }

    /// Each API answer takes this long.
    pub fn latency(&self, latency: Duration) {
        self.with(|o| o.latency = latency);
    }
}
