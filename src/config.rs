//! The configuration file: one TOML document, one serde tree with `deny_unknown_fields`, and
//! [`Config::validate`], which reports every problem at once with its field path. Secrets are
//! never in the file: only references to an environment variable or a file.
//! `schemas/config.v1.json` is generated from these types ([`schema_json`]).

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use url::Url;

/// Problems with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read the config file: {source}; create it or pass --config PATH")]
    Read {
        path: PathBuf,
        source: std::io::Error,
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
    /// Where sync state, history and the outbox are kept.
    #[serde(default)]
    pub store: Store,
    /// The mailboxes to watch, each with its mapped folders.
    #[serde(default)]
    pub mailbox: Vec<MailboxConfig>,
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
}

/// `[exchange]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The EWS endpoint, e.g. `https://mail.example.com/EWS/Exchange.asmx`.
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
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for a whole answer.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Extra trusted root certificates (PEM), for internal CAs.
    #[serde(default)]
    pub extra_root_certs: Option<PathBuf>,
}

/// A secret's source: exactly one of an environment variable or a file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
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
        /// The token scope.
        #[serde(default = "default_scope")]
        scope: String,
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
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent EWS calls per service account (Exchange allows 27; stay well under).
    pub max_concurrent_calls: u32,
    /// EWS calls per second for the whole process.
    pub calls_per_second: u32,
    /// EWS calls per second for one mailbox.
    pub mailbox_calls_per_second: u32,
    /// Items per GetItem batch (1–100).
    pub get_item_batch: u32,
    /// Changes per SyncFolderItems page (1–512).
    pub sync_page_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 8,
            calls_per_second: 20,
            mailbox_calls_per_second: 2,
            get_item_batch: 20,
            sync_page_size: 512,
        }
    }
}

impl Cadence {
    pub fn settings(&self) -> crate::watch::cadence::CadenceSettings {
        let secs = std::time::Duration::from_secs;
        crate::watch::cadence::CadenceSettings {
            normal: secs(self.normal_secs),
            busy: secs(self.busy_secs),
            quiet: secs(self.quiet_secs),
            jitter: self.jitter,
        }
    }
}

/// `[cadence]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Cadence {
    /// Seconds between syncs of a mailbox with no history.
    pub normal_secs: u64,
    /// The shortest interval, for busy mailboxes.
    pub busy_secs: u64,
    /// The longest interval, for quiet mailboxes.
    pub quiet_secs: u64,
    /// ± this fraction of the interval (0–0.5).
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

/// `[store]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// The store's folder.
    pub path: PathBuf,
    /// Days of item history kept.
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

/// `[[mailbox]]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The mailbox's SMTP address.
    pub address: String,
    /// Also watch Sent Items.
    #[serde(default)]
    pub track_sent_items: bool,
    /// The mapped folders.
    #[serde(default)]
    pub folder: Vec<FolderMapping>,
}

/// `[[mailbox.folder]]`: one mapped folder.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderMapping {
    /// The folder by path, e.g. `Inbox/Customers/Contoso`.
    pub path: Option<String>,
    /// The folder by its EWS FolderId.
    pub id: Option<String>,
    /// The record mail in this folder is regarding.
    pub regarding: Option<Regarding>,
    /// Also track the folder's subfolders, present and future.
    #[serde(default)]
    pub include_subfolders: bool,
    /// Track what is already in the folder at the first sync (default: a baseline).
    #[serde(default)]
    pub track_existing: bool,
    /// Allow a folder outside the Inbox tree.
    #[serde(default)]
    pub allow_outside_inbox: bool,
    /// Deliver message bodies.
    #[serde(default)]
    pub include_body: bool,
}

pub use crate::tracking::Regarding;

/// `[sink]`, by `kind`.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Sink {
    /// One JSON object per line.
    Jsonl {
        #[serde(default = "default_jsonl_path")]
        path: PathBuf,
        /// Rotate when the file would grow beyond this many bytes.
        rotate_bytes: Option<u64>,
    },
    /// HTTPS POST, signed with HMAC-SHA256.
    Webhook {
        url: String,
        secret_env: Option<String>,
        secret_file: Option<PathBuf>,
        #[serde(default = "default_webhook_timeout")]
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

/// `[delivery]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Attempts before a request is undeliverable.
    pub max_attempts: u32,
}

impl Default for Delivery {
    fn default() -> Self {
        Self { max_attempts: 5 }
    }
}

/// `[health]`: how a failing mailbox is retried, parked and probed (R29, R31).
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// The first retry after a failed sync, in seconds; doubled per failure.
    pub retry_secs: u64,
    /// The longest wait between retries, in seconds.
    pub retry_max_secs: u64,
    /// Failures in a row before the mailbox is parked.
    pub park_after: u32,
    /// Seconds between probes of a parked mailbox.
    pub parked_probe_secs: u64,
    /// Seconds between probes of a disabled mailbox (credentials, impersonation, not found).
    pub disabled_probe_secs: u64,
}

impl HealthSettings {
    pub fn policy(&self) -> crate::watch::health::HealthPolicy {
        let secs = std::time::Duration::from_secs;
        crate::watch::health::HealthPolicy {
            base: secs(self.retry_secs),
            cap: secs(self.retry_max_secs),
            park_after: self.park_after,
            parked_probe: secs(self.parked_probe_secs),
            disabled_probe: secs(self.disabled_probe_secs),
        }
    }
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

/// `[writeback]`
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Writeback {
    pub enabled: bool,
    pub tracked_category: String,
    pub failed_category: String,
}

impl Default for Writeback {
    fn default() -> Self {
        Self {
            enabled: true,
            tracked_category: "Tracked".into(),
            failed_category: "Tracking failed".into(),
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
fn default_scope() -> String {
    "https://outlook.office365.com/.default".into()
}
fn default_jsonl_path() -> PathBuf {
    "tracked.jsonl".into()
}

impl Config {
    /// Reads, parses and validates the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates `text`; `path` names it in messages.
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
                problems,
            })
        }
    }

    /// Every problem, each as `field.path: what is wrong and what to do`.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Problems::default();
        let x = &self.exchange;
        match Url::parse(&x.url) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => {}
            Ok(u) if u.scheme() == "http" => p.add(
                "exchange.url",
                "plain http is only allowed to loopback (the simulator); use https",
            ),
            Ok(_) | Err(_) => p.add(
                "exchange.url",
                &format!(
                    "{:?} is not an http(s) URL; write e.g. https://mail.example.com/EWS/Exchange.asmx",
                    x.url
                ),
            ),
        }
        if crate::ews::ExchangeVersion::parse(&x.server_version).is_none() {
            let known: Vec<&str> = crate::ews::ExchangeVersion::ALL
                .iter()
                .map(|v| v.as_str())
                .collect();
            p.add(
                "exchange.server_version",
                &format!(
                    "unknown version {:?}; use one of {}",
                    x.server_version,
                    known.join(", ")
                ),
            );
        }
        match &x.auth {
            Auth::Basic {
                username,
                password_env,
                password_file,
            }
            | Auth::Ntlm {
                username,
                password_env,
                password_file,
                ..
            } => {
                if username.trim().is_empty() {
                    p.add("exchange.auth.username", "must not be empty");
                }
                p.secret("exchange.auth.password", password_env, password_file);
            }
            Auth::Oauth {
                tenant_id,
                client_id,
                client_secret_env,
                client_secret_file,
                token_url,
                ..
            } => {
                if tenant_id.trim().is_empty() {
                    p.add("exchange.auth.tenant_id", "must not be empty");
                }
                if client_id.trim().is_empty() {
                    p.add("exchange.auth.client_id", "must not be empty");
                }
                p.secret(
                    "exchange.auth.client_secret",
                    client_secret_env,
                    client_secret_file,
                );
                if let Some(t) = token_url {
                    p.https("exchange.auth.token_url", t);
                }
            }
        }
        if x.connect_timeout_secs == 0 || x.request_timeout_secs == 0 {
            p.add("exchange", "timeouts must be at least 1 second");
        }
        let l = &self.limits;
        if !(1..27).contains(&l.max_concurrent_calls) {
            p.add(
                "limits.max_concurrent_calls",
                "must be 1 to 26 (Exchange allows 27 per account)",
            );
        }
        if l.calls_per_second == 0 || l.mailbox_calls_per_second == 0 {
            p.add("limits", "call rates must be at least 1 per second");
        }
        if !(1..=100).contains(&l.get_item_batch) {
            p.add("limits.get_item_batch", "must be 1 to 100");
        }
        if !(1..=512).contains(&l.sync_page_size) {
            p.add(
                "limits.sync_page_size",
                "must be 1 to 512 (the EWS maximum)",
            );
        }
        let c = &self.cadence;
        if !(c.busy_secs >= 1 && c.busy_secs <= c.normal_secs && c.normal_secs <= c.quiet_secs) {
            p.add(
                "cadence",
                "needs 1 <= busy_secs <= normal_secs <= quiet_secs",
            );
        }
        if !(0.0..=0.5).contains(&c.jitter) {
            p.add("cadence.jitter", "must be 0 to 0.5");
        }
        let h = &self.health;
        if !(h.retry_secs >= 1 && h.retry_secs <= h.retry_max_secs) {
            p.add("health", "needs 1 <= retry_secs <= retry_max_secs");
        }
        if h.park_after == 0 || h.parked_probe_secs == 0 || h.disabled_probe_secs == 0 {
            p.add(
                "health",
                "park_after and the probe intervals must be at least 1",
            );
        }
        let mut addresses = std::collections::HashSet::new();
        for (i, m) in self.mailbox.iter().enumerate() {
            let at = format!("mailbox[{i}]");
            if !looks_like_address(&m.address) {
                p.add(
                    &format!("{at}.address"),
                    &format!("{:?} is not an SMTP address", m.address),
                );
            } else if !addresses.insert(m.address.to_ascii_lowercase()) {
                p.add(
                    &format!("{at}.address"),
                    &format!(
                        "{} is configured twice; merge its folders into one [[mailbox]]",
                        m.address
                    ),
                );
            }
            let mut paths = std::collections::HashSet::new();
            for (j, f) in m.folder.iter().enumerate() {
                let at = format!("{at}.folder[{j}]");
                match (&f.path, &f.id) {
                    (Some(_), Some(_)) => p.add(&at, "give path or id, not both"),
                    (None, None) => p.add(
                        &at,
                        "give the folder's path (e.g. \"Inbox/Customers/Contoso\") or its id",
                    ),
                    (Some(path), None) => {
                        let segments: Vec<&str> = path.split('/').collect();
                        if segments.iter().any(|s| s.trim().is_empty()) {
                            p.add(
                                &format!("{at}.path"),
                                "has an empty segment; separate folder names with single /",
                            );
                        } else if !f.allow_outside_inbox
                            && !segments[0].eq_ignore_ascii_case("Inbox")
                        {
                            p.add(&format!("{at}.path"), "folder paths must start at Inbox (or set allow_outside_inbox = true)");
                        }
                        if !paths.insert(path.to_lowercase()) {
                            p.add(&format!("{at}.path"), "is mapped twice in this mailbox");
                        }
                    }
                    (None, Some(id)) => {
                        if id.trim().is_empty() {
                            p.add(&format!("{at}.id"), "must not be empty");
                        }
                    }
                }
                if let Some(r) = &f.regarding {
                    if !is_guid(&r.id) {
                        p.add(
                            &format!("{at}.regarding.id"),
                            &format!("{:?} is not a GUID", r.id),
                        );
                    }
                    if r.entity.is_empty()
                        || !r
                            .entity
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    {
                        p.add(
                            &format!("{at}.regarding.entity"),
                            "must be a table's logical name, e.g. \"account\"",
                        );
                    }
                }
            }
        }
        match &self.sink {
            Sink::Jsonl {
                rotate_bytes: Some(0),
                ..
            } => p.add("sink.rotate_bytes", "must be at least 1"),
            Sink::Jsonl { .. } => {}
            Sink::Webhook {
                url,
                secret_env,
                secret_file,
                timeout_secs,
            } => {
                p.https("sink.url", url);
                p.secret("sink.secret", secret_env, secret_file);
                if *timeout_secs == 0 {
                    p.add("sink.timeout_secs", "must be at least 1");
                }
            }
            Sink::Dynamics {
                org_url,
                client_secret_env,
                client_secret_file,
                ..
            } => {
                p.https("sink.org_url", org_url);
                p.secret("sink.client_secret", client_secret_env, client_secret_file);
            }
        }
        if self.delivery.max_attempts == 0 {
            p.add("delivery.max_attempts", "must be at least 1");
        }
        match self.admin.listen.parse::<std::net::SocketAddr>() {
            Ok(a) if !a.ip().is_loopback() && self.admin.token_env.is_none() && self.admin.token_file.is_none() => p.add(
                "admin.listen",
                "a non-loopback address needs token_env or token_file, or anyone on the network could change state",
            ),
            Ok(_) => {}
            Err(_) => p.add("admin.listen", &format!("{:?} is not an address like 127.0.0.1:9477", self.admin.listen)),
        }
        p.0
    }
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, field: &str, message: &str) {
        self.0.push(format!("{field}: {message}"));
    }

    fn secret(&mut self, field: &str, env: &Option<String>, file: &Option<PathBuf>) {
        match (env, file) {
            (Some(_), Some(_)) => self.add(field, &format!("give {field}_env or {field}_file, not both")),
            (None, None) => self.add(
                field,
                &format!("missing; secrets never go in the file: set {field}_env (an environment variable) or {field}_file"),
            ),
            _ => {}
        }
    }

    fn https(&mut self, field: &str, url: &str) {
        match Url::parse(url) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback_host(&u)) => {}
            _ => self.add(
                field,
                &format!("{url:?} must be an https URL (plain http only to loopback)"),
            ),
        }
    }
}

/// Reads a secret named by `field` (for messages) from its environment variable or file.
pub fn resolve_secret(
    field: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<SecretString, Error> {
    let fail = |message: String| Error::Secret {
        field: field.to_owned(),
        message,
    };
    match (env, file) {
        (Some(var), _) => std::env::var(var).map(SecretString::from).map_err(|_| {
            fail(format!(
                "environment variable {var} is not set; export it or use a file"
            ))
        }),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| SecretString::from(s.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display()))),
        (None, None) => Err(fail("no secret configured".into())),
    }
}

/// What applying `new` over `old` changes in the mailboxes and mappings, one line each (R9).
pub fn mapping_changes(old: &Config, new: &Config) -> Vec<String> {
    let name = |f: &FolderMapping| f.path.clone().or_else(|| f.id.clone()).unwrap_or_default();
    let regarding = |r: &Option<Regarding>| r.as_ref().map_or("none".to_owned(), |r| r.to_string());
    let mut out = Vec::new();
    for m in &old.mailbox {
        if !new.mailbox.iter().any(|n| n.address == m.address) {
            out.push(format!(
                "{}: mailbox removed (what it tracked stays tracked)",
                m.address
            ));
        }
    }
    for n in &new.mailbox {
        let Some(m) = old.mailbox.iter().find(|m| m.address == n.address) else {
            out.push(format!(
                "{}: mailbox added; its folders start with a baseline",
                n.address
            ));
            continue;
        };
        for f in &m.folder {
            if !n.folder.iter().any(|g| name(g) == name(f)) {
                out.push(format!(
                    "{} {}: mapping removed (what it tracked stays tracked)",
                    n.address,
                    name(f)
                ));
            }
        }
        for g in &n.folder {
            match m.folder.iter().find(|f| name(f) == name(g)) {
                None => out.push(format!(
                    "{} {}: mapping added; it starts with a baseline",
                    n.address,
                    name(g)
                )),
                Some(f) if f.regarding != g.regarding => out.push(format!(
                    "{} {}: regarding {} -> {}{}",
                    n.address,
                    name(g),
                    regarding(&f.regarding),
                    regarding(&g.regarding),
                    if g.regarding.is_some() {
                        "; every tracked mail in the folder is re-linked"
                    } else {
                        "; old links stay, new mail goes without a regarding"
                    }
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// One check per secret the config names: it resolves, or what is wrong.
pub fn secret_checks(config: &Config) -> Vec<Result<String, String>> {
    let mut refs: Vec<(String, Option<&str>, Option<&Path>)> = Vec::new();
    match &config.exchange.auth {
        Auth::Basic {
            password_env,
            password_file,
            ..
        }
        | Auth::Ntlm {
            password_env,
            password_file,
            ..
        } => refs.push((
            "exchange.auth.password".into(),
            password_env.as_deref(),
            password_file.as_deref(),
        )),
        Auth::Oauth {
            client_secret_env,
            client_secret_file,
            ..
        } => refs.push((
            "exchange.auth.client_secret".into(),
            client_secret_env.as_deref(),
            client_secret_file.as_deref(),
        )),
    }
    match &config.sink {
        Sink::Webhook {
            secret_env,
            secret_file,
            ..
        } => refs.push((
            "sink.secret".into(),
            secret_env.as_deref(),
            secret_file.as_deref(),
        )),
        Sink::Dynamics {
            client_secret_env,
            client_secret_file,
            ..
        } => refs.push((
            "sink.client_secret".into(),
            client_secret_env.as_deref(),
            client_secret_file.as_deref(),
        )),
        Sink::Jsonl { .. } => {}
    }
    if config.admin.token_env.is_some() || config.admin.token_file.is_some() {
        refs.push((
            "admin.token".into(),
            config.admin.token_env.as_deref(),
            config.admin.token_file.as_deref(),
        ));
    }
    refs.into_iter()
        .map(|(field, env, file)| {
            let named = if env.is_some() {
                format!("{field}_env")
            } else {
                format!("{field}_file")
            };
            resolve_secret(&named, env, file)
                .map(|_| format!("{named}: the secret resolves"))
                .map_err(|e| e.to_string())
        })
        .collect()
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
    } else {
        ""
    };
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {what}{hint}")
        }
        None => format!("{what}{hint}"),
    }
}

fn is_loopback_host(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn looks_like_address(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
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
        let rows: [(&str, &str); 9] = [
            (
                "[[mailbox]]\naddress = \"alice@example.com\"\n[[mailbox.folder]]\npath = \"Archive/X\"",
                "mailbox[0].folder[0].path: folder paths must start at Inbox",
            ),
            (
                "[[mailbox]]\naddress = \"alice\"",
                "mailbox[0].address: \"alice\" is not an SMTP address",
            ),
            (
                "[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox]]\naddress = \"A@example.com\"",
                "mailbox[1].address: A@example.com is configured twice",
            ),
            (
                "[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox.folder]]\npath = \"Inbox/X\"\nregarding = { entity = \"account\", id = \"nope\" }",
                "mailbox[0].folder[0].regarding.id: \"nope\" is not a GUID",
            ),
            (
                "[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox.folder]]\ninclude_body = true",
                "mailbox[0].folder[0]: give the folder's path",
            ),
            (
                "[limits]\nmax_concurrent_calls = 30",
                "limits.max_concurrent_calls: must be 1 to 26",
            ),
            (
                "[cadence]\nbusy_secs = 600",
                "cadence: needs 1 <= busy_secs",
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
                got.iter().any(|p| p.starts_with(want)),
                "{want}\n got {got:?}"
            );
        }
        assert!(problems("[[mailbox]]\naddress = \"a@example.com\"\n[[mailbox.folder]]\npath = \"Inbox/Customers/Contoso\"").is_empty());
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
