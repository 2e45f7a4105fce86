//! The configuration file: one TOML document, one serde tree with `deny_unknown_fields`;
//! [`Config::validate`] ([`validate`]) reports every problem at once with its field path, and
//! [`settings`] turns it into each component's typed settings. Secrets are
//! never in the file, only references to an environment variable or a file ([`secret`]).
//! Sections that belong to one component are declared next to it (mailboxes in [`crate::watch`],
//! write-back in [`crate::deliver::writeback`]). `schemas/config.v1.json` is generated from these
//! types ([`schema_json`]).

pub mod diff;
mod lines;
pub mod secret;
pub mod settings;
pub mod validate;

pub use crate::deliver::dynamics::regarding::RegardingPolicy;
pub use crate::deliver::writeback::Writeback;
pub use crate::tracking::Regarding;
pub use crate::watch::cluster::ClusterConfig;
pub use crate::watch::{FolderMapping, MailboxConfig};
pub use secret::{resolve_secret, secret_checks};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Problems with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The OS error is part of the line, not a source: `{e:#}` would print it twice.
    #[error("{path}: cannot read the config file: {error}; create it or pass --config PATH")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {count} problem(s):\n{}", problems.join("\n"))]
    Invalid {
        path: PathBuf,
        count: usize,
        problems: Vec<String>,
    },
    #[error("{field}: {message}")]
    Secret { field: String, message: String },
    #[error("{field}: {message}")]
    Value { field: String, message: String },
}

/// One line of `check-config`: what was checked, and whether it holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Check {
    /// It holds: what was checked.
    Ok(String),
    /// It does not: what is wrong and what to do.
    Fail(String),
    /// It works, but not as well as it should: what and what to do.
    Warn(String),
}

impl Check {
    /// Holds (possibly with a warning).
    pub fn is_ok(&self) -> bool {
        !matches!(self, Check::Fail(_))
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Exchange server and how to sign in to it.
    pub exchange: Exchange,
    /// How hard foldertrack may lean on Exchange.
    #[serde(default)]
    pub limits: Limits,
    /// The adaptive sync interval of each mailbox.
    #[serde(default)]
    pub cadence: Cadence,
    /// Notifications that wake a mailbox's sync at once: EWS streaming, or Graph change
    /// notifications when a notification URL is given.
    #[serde(default)]
    pub notifications: Notifications,
    /// Where sync state, history and the outbox are kept.
    #[serde(default)]
    pub store: Store,
    /// The mailboxes to watch, each with its mapped folders.
    // Shared with the mailbox tasks, not copied: 10,000 mailboxes' configs held three times
    // over were 20 MiB.
    #[serde(default)]
    pub mailbox: Vec<Arc<MailboxConfig>>,
    /// Where tracking requests are delivered.
    #[serde(default)]
    pub sink: Sink,
    /// Delivery retries.
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub health: HealthSettings,
    /// What is written back onto tracked mail.
    #[serde(default)]
    pub writeback: Writeback,
    /// The admin HTTP API.
    #[serde(default)]
    pub admin: Admin,
    /// Include subjects in logs (off: subjects can be personal data).
    #[serde(default)]
    pub log_subjects: bool,
    /// This agent's place among several that share the mailboxes.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

impl Config {
    /// Every tunable setting that differs from its default, as `section.key = value (default
    /// d)`: what a benchmark report states about the configuration it measured.
    pub fn non_defaults(&self) -> Vec<String> {
        let mut out = Vec::new();
        differences("limits", &self.limits, &Limits::default(), &mut out);
        differences("cadence", &self.cadence, &Cadence::default(), &mut out);
        differences(
            "notifications",
            &self.notifications,
            &Notifications::default(),
            &mut out,
        );
        differences("health", &self.health, &HealthSettings::default(), &mut out);
        differences("delivery", &self.delivery, &Delivery::default(), &mut out);
        differences(
            "writeback",
            &self.writeback,
            &Writeback::default(),
            &mut out,
        );
        if self.store.history_days != Store::default().history_days {
            out.push(format!(
                "store.history_days = {} (default {})",
                self.store.history_days,
                Store::default().history_days
            ));
        }
        if self.log_subjects {
            out.push("log_subjects = true (default false)".into());
        }
        differences(
            "cluster",
            &self.cluster,
            &ClusterConfig::default(),
            &mut out,
        );
        out
    }
}

impl Config {
    /// The settings in force, for people (the console's Config page): where things are, the
    /// mailboxes, then every tunable that differs from its default. The file holds no secret
    /// itself, only the names of the variables or files that do, so that is all this shows.
    pub fn settings(&self) -> Vec<String> {
        let mut out = vec![
            format!("exchange.url = {}", self.exchange.url),
            format!("exchange.auth = {:?}", self.exchange.auth),
            format!("exchange.impersonation = {}", self.exchange.impersonation),
            format!("store.path = {}", self.store.path.display()),
            format!("sink = {:?}", self.sink),
            format!("admin.listen = {}", self.admin.listen),
        ];
        for m in &self.mailbox {
            out.push(format!(
                "mailbox {}: {} mapped folder(s)",
                m.address,
                m.folder.len()
            ));
        }
        out.extend(self.non_defaults());
        out
    }
}

/// The fields of `actual` that differ from `default`, as `section.key = value (default d)`.
fn differences<T: Serialize>(section: &str, actual: &T, default: &T, out: &mut Vec<String>) {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(d))) =
        (serde_json::to_value(actual), serde_json::to_value(default))
    else {
        return;
    };
    for (key, value) in a {
        let was = d.get(&key).cloned().unwrap_or_default();
        if value != was {
            out.push(format!("{section}.{key} = {value} (default {was})"));
        }
    }
}

/// `[exchange]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// How foldertrack speaks to Exchange: `ews` (on-premises, and Exchange Online while
    /// Microsoft allows it) or `graph` (Exchange Online through Microsoft Graph).
    #[serde(default)]
    pub api: Api,
    /// The EWS endpoint, e.g. `https://mail.example.com/EWS/Exchange.asmx`, or with
    /// `api = "graph"` the Graph root, `https://graph.microsoft.com/v1.0`.
    pub url: String,
    /// How foldertrack signs in.
    pub auth: Auth,
    /// Act as each mailbox through ExchangeImpersonation (the service account needs the
    /// ApplicationImpersonation role, or `full_access_as_app` in Exchange Online).
    #[serde(default = "yes")]
    pub impersonation: bool,
    /// The schema version requests are written against.
    #[serde(default = "default_server_version")]
    pub server_version: String,
    /// Seconds to wait for a connection (1–300).
    #[serde(default = "default_connect_timeout")]
    #[schemars(range(min = 1, max = validate::MAX_CONNECT_TIMEOUT_SECS))]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for a whole answer (1–3600).
    #[serde(default = "default_request_timeout")]
    #[schemars(range(min = 1, max = validate::MAX_REQUEST_TIMEOUT_SECS))]
    pub request_timeout_secs: u64,
    /// Extra trusted root certificates (PEM), for internal CAs.
    #[serde(default)]
    pub extra_root_certs: Option<PathBuf>,
}

/// `exchange.api`: the protocol of the mailboxes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// Exchange Web Services (SOAP): Exchange Server on-premises.
    #[default]
    Ews,
    /// Microsoft Graph (REST): Exchange Online; needs `auth.kind = "oauth"`.
    Graph,
}

/// `exchange.auth`, by `kind`.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    /// HTTP Basic over TLS (on-premises).
    Basic {
        username: String,
        /// The environment variable holding the password.
        password_env: Option<String>,
        /// A file holding the password.
        password_file: Option<PathBuf>,
    },
    /// OAuth 2.0 client credentials, app-only (Exchange Online).
    Oauth {
        tenant_id: String,
        client_id: String,
        client_secret_env: Option<String>,
        client_secret_file: Option<PathBuf>,
        /// The token scope; by default `https://outlook.office365.com/.default` for EWS and
        /// `https://graph.microsoft.com/.default` for Graph.
        scope: Option<String>,
        /// Overrides `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
        token_url: Option<String>,
    },
    /// NTLM (on-premises; needs the `ntlm` build feature).
    Ntlm {
        username: String,
        domain: Option<String>,
        password_env: Option<String>,
        password_file: Option<PathBuf>,
    },
}

/// `[limits]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent EWS calls per service account (1–26: Exchange allows 27; stay well under).
    #[schemars(range(min = 1, max = validate::MAX_CONCURRENT_CALLS))]
    pub max_concurrent_calls: u32,
    /// EWS calls per second for the whole process (1–10000).
    #[schemars(range(min = 1, max = validate::MAX_CALLS_PER_SECOND))]
    pub calls_per_second: u32,
    /// EWS calls per second for one mailbox (1–10000).
    #[schemars(range(min = 1, max = validate::MAX_CALLS_PER_SECOND))]
    pub mailbox_calls_per_second: u32,
    /// Items per GetItem batch (1–100).
    #[schemars(range(min = 1, max = validate::MAX_GET_ITEM_BATCH))]
    pub get_item_batch: u32,
    /// Changes per SyncFolderItems page (1–512).
    #[schemars(range(min = 1, max = validate::MAX_SYNC_PAGE))]
    pub sync_page_size: u32,
    /// The largest answer read from Exchange or an identity provider, in bytes (1 MiB–1 GiB;
    /// 64 MiB by default, far above the largest legitimate answer). A larger one fails its
    /// call before it is read into memory; a GetItem batch that is too large is read again
    /// item by item.
    #[schemars(range(min = validate::MIN_RESPONSE_BYTES, max = validate::MAX_RESPONSE_BYTES))]
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 8,
            calls_per_second: 20,
            mailbox_calls_per_second: 2,
            get_item_batch: 20,
            sync_page_size: 512,
            max_response_bytes: crate::http::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// `[cadence]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Cadence {
    /// Seconds between syncs of a mailbox with no history (1–86400).
    #[schemars(range(min = 1, max = validate::MAX_INTERVAL_SECS))]
    pub normal_secs: u64,
    /// The shortest interval, for busy mailboxes (1–86400, at most `normal_secs`).
    #[schemars(range(min = 1, max = validate::MAX_INTERVAL_SECS))]
    pub busy_secs: u64,
    /// The longest interval, for quiet mailboxes (1–86400, at least `normal_secs`).
    #[schemars(range(min = 1, max = validate::MAX_INTERVAL_SECS))]
    pub quiet_secs: u64,
    /// ± this fraction of the interval (0–0.5).
    #[schemars(range(min = 0, max = validate::MAX_JITTER))]
    pub jitter: f64,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            normal_secs: 300,
            busy_secs: 120,
            quiet_secs: 720,
            jitter: 0.1,
        }
    }
}

/// `[notifications]`
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// `streaming`: EWS streaming subscriptions (or, over Graph with
    /// `graph_notification_url`, change notifications) wake a mailbox's sync within seconds
    /// and polling is the backstop; a mailbox whose server will not stream falls back to pull.
    /// `pull` (EWS only): pull subscriptions, read every `pull_interval_secs`. `off`: polling
    /// on the cadence only.
    pub mode: NotificationMode,
    /// Pull subscriptions (`mode = "pull"`, or a server without streaming): seconds between
    /// two reads of a mailbox's events (5–600); one GetEvents call per mailbox each time.
    #[schemars(range(min = validate::MIN_PULL_SECS, max = validate::MAX_PULL_SECS))]
    pub pull_interval_secs: u64,
    /// While a mailbox's notifications are healthy, seconds between its backstop syncs
    /// (60–86400; at least `cadence.quiet_secs` is used).
    #[schemars(range(min = validate::MIN_BACKSTOP_SECS, max = validate::MAX_INTERVAL_SECS))]
    pub backstop_secs: u64,
    /// Streaming connections open at once for the service account (Exchange's
    /// HangingConnectionLimit: 3 on 2013, 10 on 2016, 2019 and Online; 1–100). Each serves up
    /// to 200 mailboxes; mailboxes beyond the limit are polled. With impersonation each
    /// connection is charged to its first mailbox instead, and one opens per 200 mailboxes.
    #[schemars(range(min = 1, max = validate::MAX_HANGING_CONNECTIONS))]
    pub hanging_connection_limit: u32,
    /// Minutes the server keeps a streaming connection open before it is renewed (1–30).
    #[schemars(range(min = 1, max = 30))]
    pub connection_timeout_minutes: u32,
    /// Graph only: the public HTTPS URL Microsoft Graph posts change notifications to; it must
    /// reach `graph_listen` (a reverse proxy or tunnel). Unset: Graph mailboxes are polled.
    /// `http://` is accepted for loopback hosts only (the simulator).
    pub graph_notification_url: Option<String>,
    /// Graph only: where the agent's notification receiver listens (loopback by default; the
    /// proxy behind `graph_notification_url` forwards to it).
    pub graph_listen: String,
    /// Graph only: minutes a subscription is asked to live (1–10080, Graph's maximum for
    /// messages); renewed after three quarters of the lifetime Graph granted.
    #[schemars(range(min = 1, max = validate::MAX_GRAPH_SUBSCRIPTION_MINUTES))]
    pub graph_subscription_minutes: u32,
}

/// `notifications.mode`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationMode {
    #[default]
    Streaming,
    Pull,
    Off,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            mode: NotificationMode::Streaming,
            pull_interval_secs: 30,
            backstop_secs: 3_600,
            hanging_connection_limit: 3,
            connection_timeout_minutes: 30,
            graph_notification_url: None,
            graph_listen: "127.0.0.1:9478".into(),
            graph_subscription_minutes: 1440,
        }
    }
}

/// `[store]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// The store's folder.
    pub path: PathBuf,
    /// Days of item history kept: older lines are pruned at start and hourly (each message keeps
    /// its latest line; 1–3650).
    #[schemars(range(min = 1, max = validate::MAX_HISTORY_DAYS))]
    pub history_days: u32,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            path: "foldertrack.db".into(),
            history_days: 90,
        }
    }
}

/// `[sink]`, by `kind`.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Sink {
    /// One JSON object per line.
    Jsonl {
        #[serde(default = "default_jsonl_path")]
        path: PathBuf,
        /// Rotate when the file would grow beyond this many bytes (1 to 2^40).
        #[schemars(range(min = 1, max = validate::MAX_ROTATE_BYTES))]
        rotate_bytes: Option<u64>,
    },
    /// HTTPS POST, signed with HMAC-SHA256.
    Webhook {
        url: String,
        secret_env: Option<String>,
        secret_file: Option<PathBuf>,
        /// Seconds to wait for the receiver's answer (1–3600).
        #[serde(default = "default_webhook_timeout")]
        #[schemars(range(min = 1, max = validate::MAX_REQUEST_TIMEOUT_SECS))]
        timeout_secs: u64,
    },
    /// The Dataverse Web API of a Dynamics 365 organisation.
    Dynamics {
        org_url: String,
        tenant_id: String,
        client_id: String,
        client_secret_env: Option<String>,
        client_secret_file: Option<PathBuf>,
        /// Act on behalf of the mailbox owner (CallerObjectId).
        #[serde(default)]
        act_as_owner: bool,
        /// Overrides `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
        token_url: Option<String>,
        /// Tables a sender's or recipient's address is resolved against, in order
        /// (`systemuser`, `contact`, `account`, `lead`, `queue`); `[]` keeps addresses
        /// unresolved.
        #[serde(default = "default_resolve_parties")]
        resolve_parties: Vec<String>,
        /// Web API calls in flight at once (1–52: Dataverse refuses more per user).
        #[serde(default = "default_dataverse_concurrency")]
        #[schemars(range(min = 1, max = validate::MAX_DATAVERSE_CONCURRENCY))]
        max_concurrent_requests: u32,
        /// Who wins when a person changed a tracked mail's regarding in Dynamics and its
        /// folder says otherwise (R24): `folder_wins`, `manual_wins` or `last_action_wins`.
        #[serde(default)]
        regarding_policy: RegardingPolicy,
        /// Copy the mail's file attachments to the email activity (activitymimeattachment).
        #[serde(default)]
        attachments: bool,
        /// The largest attachment copied, in bytes (Dataverse's default upload limit of 5 MB
        /// applies to the Base64 text, about 3.75 MB of file; at most 128 MiB).
        #[serde(default = "default_attachment_max_bytes")]
        #[schemars(range(min = 1, max = validate::MAX_ATTACHMENT_BYTES))]
        attachment_max_bytes: u64,
    },
}

impl Default for Sink {
    fn default() -> Self {
        Sink::Jsonl {
            path: default_jsonl_path(),
            rotate_bytes: None,
        }
    }
}

/// `[delivery]`: how failed deliveries are retried (R30, R32).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Refusals (a 4xx answer other than 400, 401, 403, 408 and 429) before a request is
    /// undeliverable (1–100).
    #[schemars(range(min = 1, max = validate::MAX_DELIVERY_ATTEMPTS))]
    pub max_attempts: u32,
    /// Hours a request is retried while it fails transiently (no connection, a timeout, 5xx,
    /// 408, 429) and the sink takes other requests. A sink that does not answer at all is
    /// waited for without limit: nothing is given up while it is down (0–8760).
    #[schemars(range(min = 0, max = validate::MAX_RETRY_HOURS))]
    pub retry_hours: u32,
    /// The longest wait between two tries of a request, and between two probes of a sink that
    /// is down, in seconds (1–86400).
    #[schemars(range(min = 1, max = validate::MAX_INTERVAL_SECS))]
    pub retry_max_secs: u64,
    /// Seconds between probes of a regarding record the sink found gone or not appendable
    /// (its mappings' items wait meanwhile; 1–86400).
    #[schemars(range(min = 1, max = validate::MAX_INTERVAL_SECS))]
    pub regarding_probe_secs: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            retry_hours: 24,
            retry_max_secs: 3600,
            regarding_probe_secs: 300,
        }
    }
}

/// `[health]`: how a failing mailbox is retried, parked and probed (R29, R31).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// The first retry after a failed sync, in seconds (1–86400); doubled per failure.
    #[schemars(range(min = 1, max = validate::MAX_INTERVAL_SECS))]
    pub retry_secs: u64,
    /// The longest wait between retries, in seconds (1–86400, at least `retry_secs`).
    #[schemars(range(min = 1, max = validate::MAX_INTERVAL_SECS))]
    pub retry_max_secs: u64,
    /// Failures in a row before the mailbox is parked (1–1000).
    #[schemars(range(min = 1, max = validate::MAX_PARK_AFTER))]
    pub park_after: u32,
    /// Seconds between probes of a parked mailbox (1–604800).
    #[schemars(range(min = 1, max = validate::MAX_PROBE_SECS))]
    pub parked_probe_secs: u64,
    /// Seconds between probes of a disabled mailbox (credentials, impersonation, not found;
    /// 1–604800).
    #[schemars(range(min = 1, max = validate::MAX_PROBE_SECS))]
    pub disabled_probe_secs: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            retry_secs: 10,
            retry_max_secs: 900,
            park_after: 10,
            parked_probe_secs: 1800,
            disabled_probe_secs: 3600,
        }
    }
}

/// `[admin]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Where the admin API listens (loopback by default).
    pub listen: String,
    /// The environment variable holding the bearer token required to change state.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9477".into(),
            token_env: None,
            token_file: None,
        }
    }
}

const fn yes() -> bool {
    true
}
const fn default_connect_timeout() -> u64 {
    10
}
const fn default_request_timeout() -> u64 {
    100
}
const fn default_webhook_timeout() -> u64 {
    10
}
fn default_server_version() -> String {
    "Exchange2013_SP1".into()
}
fn default_jsonl_path() -> PathBuf {
    "tracked.jsonl".into()
}
fn default_resolve_parties() -> Vec<String> {
    crate::deliver::dynamics::parties::DEFAULT_ORDER
        .iter()
        .map(|t| t.to_string())
        .collect()
}
const fn default_dataverse_concurrency() -> u32 {
    8
}
const fn default_attachment_max_bytes() -> u64 {
    crate::deliver::dynamics::attachments::DEFAULT_MAX_BYTES
}

impl Config {
    /// Reads, parses and validates the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates `text`; `path` names it in messages, and each problem names the
    /// line of the value (or of its section) it is about.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, Error> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Syntax {
            path: path.to_owned(),
            message: syntax_message(text, &e),
        })?;
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(Error::Invalid {
                path: path.to_owned(),
                count: problems.len(),
                problems: lines::locate(text, problems),
            })
        }
    }
}

fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let what = e.message().trim();
    let hint = if what.contains("unknown field `password`")
        || what.contains("unknown field `client_secret`")
        || what.contains("unknown field `secret`")
    {
        "; secrets never go in the file: use password_env / password_file (or client_secret_env, secret_env)"
    } else if what.contains("unknown field") {
        "; remove it or check its spelling against schemas/config.v1.json"
    } else if what.starts_with("missing field") {
        "; add it (schemas/config.v1.json describes every field)"
    } else {
        ""
    };
    match e.span() {
        Some(span) => {
            let (line, column) = lines::position(text, span.start);
            // A missing field is reported at its table: name the section too.
            let section = lines::section_at(text, span.start)
                .map(|s| format!("[{s}]: "))
                .unwrap_or_default();
            format!("line {line}, column {column}: {section}{what}{hint}")
        }
        None => format!("{what}{hint}"),
    }
}

/// `schemas/config.v1.json`, generated from the types.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[exchange]
url = "https://mail.example.com/EWS/Exchange.asmx"
auth = { kind = "basic", username = "svc@example.com", password_env = "FT_PW" }
"#;

    fn problems(extra: &str) -> Vec<String> {
        match Config::from_toml_str(&format!("{BASE}{extra}"), Path::new("t.toml")) {
            Ok(_) => Vec::new(),
            Err(Error::Invalid { problems, .. }) => problems,
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn validation_table() {
        let rows: [(&str, &str); 14] = [
            (
                "[[mailbox]]\naddress = \"alice@example.com\"\n[[mailbox.folder]]\npath = \"Archive/X\"",
                "mailbox alice@example.com, folder \"Archive/X\", path: folder paths must start at Inbox",
            ),
            (
                "[[mailbox]]\naddress = \"alice\"",
                "mailbox alice, address: \"alice\" is not an SMTP address",
            ),
            (
                "[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox]]\naddress = \"A@example.com\"",
                "mailbox A@example.com, address: A@example.com is configured twice",
            ),
            (
                "[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox.folder]]\npath = \"Inbox/X\"\nregarding = { entity = \"account\", id = \"nope\" }",
                "mailbox a@example.com, folder \"Inbox/X\", regarding.id: \"nope\" is not a GUID",
            ),
            (
                "[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox.folder]]\ninclude_body = true",
                "mailbox a@example.com, folder #1: give the folder's path",
            ),
            (
                "[limits]\nmax_concurrent_calls = 30",
                "limits.max_concurrent_calls: 30 is out of range; use 1 to 26",
            ),
            (
                "[cadence]\nbusy_secs = 600",
                "cadence: needs 1 <= busy_secs",
            ),
            (
                "[notifications]\nhanging_connection_limit = 0",
                "notifications.hanging_connection_limit: 0 is out of range; use 1 to 100",
            ),
            (
                "[notifications]\nbackstop_secs = 5",
                "notifications.backstop_secs: 5 is out of range; use 60 to 86400",
            ),
            (
                "[notifications]\ngraph_subscription_minutes = 10081",
                "notifications.graph_subscription_minutes: 10081 is out of range; use 1 to 10080",
            ),
            (
                "[notifications]\ngraph_listen = \"somewhere\"",
                "notifications.graph_listen: \"somewhere\" is not an address like 127.0.0.1:9478",
            ),
            (
                "[notifications]\ngraph_notification_url = \"ftp://agent.example.com/n\"",
                "notifications.graph_notification_url: Microsoft Graph posts only to https:// URLs",
            ),
            (
                "[sink]\nkind = \"webhook\"\nurl = \"http://hooks.example.com/x\"\nsecret_env = \"S\"",
                "sink.url: \"http://hooks.example.com/x\" must be an https URL",
            ),
            (
                "[admin]\nlisten = \"0.0.0.0:9477\"",
                "admin.listen: a non-loopback address needs token_env",
            ),
        ];
        for (extra, want) in rows {
            let got = problems(extra);
            assert!(
                got.iter()
                    .any(|p| p.starts_with("line ") && p.contains(&format!(": {want}"))),
                "{want}\n got {got:?}"
            );
        }
        assert!(problems("[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox.folder]]\npath = \"Inbox/Customers/Contoso\"").is_empty());
    }

    #[test]
    fn graph_notifications_need_a_url_and_say_where_they_go() {
        let load = |api: &str, notifications: &str| {
            let oauth = "auth = { kind = \"oauth\", tenant_id = \"t\", client_id = \"c\", client_secret_env = \"S\" }";
            let url = match api {
                "graph" => "https://graph.microsoft.com/v1.0",
                _ => "https://mail.example.com/EWS/Exchange.asmx",
            };
            let text = format!(
                "[exchange]\napi = \"{api}\"\nurl = \"{url}\"\n{oauth}\n[notifications]\n{notifications}"
            );
            Config::from_toml_str(&text, Path::new("t.toml")).unwrap()
        };
        let url = "graph_notification_url = \"https://agent.example.com/n\"\n";
        let text = |c: Option<Check>| match c {
            Some(Check::Ok(t)) => format!("ok {t}"),
            Some(Check::Warn(t)) => format!("warn {t}"),
            Some(Check::Fail(t)) => format!("fail {t}"),
            None => "none".into(),
        };
        let on = load("graph", url);
        let settings = on.graph_notify_settings().unwrap().unwrap();
        assert_eq!(settings.url.as_str(), "https://agent.example.com/n");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9478");
        assert_eq!(settings.lifetime.as_secs(), 1440 * 60);
        assert!(on.notify_settings().enabled);
        assert_eq!(on.notify_off_reason(), None);
        assert!(text(on.notifications_check()).starts_with("ok notifications: Graph posts"));
        let polled = load("graph", "");
        assert_eq!(polled.graph_notify_settings().unwrap(), None);
        assert!(!polled.notify_settings().enabled);
        assert!(
            polled
                .notify_off_reason()
                .unwrap()
                .contains("graph_notification_url")
        );
        let off = load("graph", &format!("{url}mode = \"off\"\n"));
        assert_eq!(off.graph_notify_settings().unwrap(), None);
        assert!(text(off.notifications_check()).starts_with("warn "));
        assert!(text(load("ews", url).notifications_check()).starts_with("warn "));
        assert_eq!(text(load("ews", "").notifications_check()), "none");
    }

    #[test]
    fn graph_needs_oauth_and_the_graph_root() {
        let graph = |exchange: &str| match Config::from_toml_str(
            &format!("[exchange]\napi = \"graph\"\n{exchange}"),
            Path::new("t.toml"),
        ) {
            Ok(c) => Ok(c),
            Err(Error::Invalid { problems, .. }) => Err(problems),
            Err(e) => Err(vec![e.to_string()]),
        };
        let oauth = "auth = { kind = \"oauth\", tenant_id = \"t\", client_id = \"c\", client_secret_env = \"S\" }";
        let config = graph(&format!(
            "url = \"https://graph.microsoft.com/v1.0\"\n{oauth}"
        ))
        .unwrap();
        assert_eq!(config.exchange.api, Api::Graph);
        assert_eq!(config.default_scope(), crate::graph::SCOPE);
        let problems = graph("url = \"https://mail.example.com/EWS/Exchange.asmx\"\nauth = { kind = \"basic\", username = \"u\", password_env = \"P\" }").unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains(": exchange.url: with api = \"graph\" this is the Graph root")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains(": exchange.auth: Microsoft Graph takes app-only OAuth only")),
            "{problems:?}"
        );
        let ews_scope = oauth.replace(
            " }",
            ", scope = \"https://outlook.office365.com/.default\" }",
        );
        let problems = graph(&format!(
            "url = \"https://graph.microsoft.com/v1.0\"\n{ews_scope}"
        ))
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(
            ": exchange.auth.scope: Graph tokens need the scope https://graph.microsoft.com/.default"
        ));
        let unknown = Config::from_toml_str("[exchange]\napi = \"rest\"\nurl = \"https://x\"\nauth = { kind = \"basic\", username = \"u\", password_env = \"P\" }", Path::new("t.toml")).unwrap_err().to_string();
        assert!(
            unknown.contains("ews") && unknown.contains("graph"),
            "{unknown}"
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let got = problems("[limits]\nget_item_batch = 0\nsync_page_size = 9999");
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn an_inline_password_is_refused_with_the_way_to_do_it() {
        let text = "[exchange]\nurl = \"https://x.example.com/EWS/Exchange.asmx\"\nauth = { kind = \"basic\", username = \"u\", password = \"hunter2\" }\n";
        let err = Config::from_toml_str(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("password_env"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn secrets_resolve_from_env_or_file_and_say_what_is_missing() {
        let err = resolve_secret(
            "exchange.auth.password_env",
            Some("FOLDERTRACK_TEST_SURELY_UNSET"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "exchange.auth.password_env: environment variable FOLDERTRACK_TEST_SURELY_UNSET is not set; export it or use a file"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = resolve_secret("x", None, Some(&path)).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&s), "s3cret");
    }
}
