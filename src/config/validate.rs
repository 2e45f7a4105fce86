//! [`Config::validate`]: every problem of a parsed file at once, each as `field.path: what is
//! wrong and what to do`. Bounds are named constants, shared with the components they protect
//! and with the schema (`#[schemars(range(...))]` on each numeric field): every number in the
//! file has a range, so no setting can overflow a duration or a counter downstream.

use super::{Admin, Api, Auth, Config, Exchange, Sink};
use crate::http::is_loopback;
use crate::watch::{FolderMapping, MailboxConfig};
use std::path::PathBuf;
use url::Url;

/// Exchange allows 27 concurrent calls per account; stay under it.
pub const MAX_CONCURRENT_CALLS: u32 = 26;
/// The largest GetItem batch foldertrack sends.
pub const MAX_GET_ITEM_BATCH: u32 = crate::feed::ews::MAX_BATCH as u32;
/// The EWS maximum of changes per SyncFolderItems page.
pub const MAX_SYNC_PAGE: u32 = crate::ews::sync_folder_items::MAX_CHANGES as u32;
/// The largest cadence jitter, as a fraction of the interval.
pub const MAX_JITTER: f64 = 0.5;
/// One day, the longest sync interval or retry wait.
pub const MAX_INTERVAL_SECS: u64 = 86_400;
/// The shortest backstop interval of a notified mailbox.
pub const MIN_BACKSTOP_SECS: u64 = 60;
/// The shortest and longest interval between two reads of a pull subscription.
pub const MIN_PULL_SECS: u64 = 5;
pub const MAX_PULL_SECS: u64 = 600;
/// The most streaming connections one service account may hold.
pub const MAX_HANGING_CONNECTIONS: u32 = 100;
/// The longest life of a Graph subscription on messages, in minutes.
pub const MAX_GRAPH_SUBSCRIPTION_MINUTES: u32 = 10_080;
/// One week, the longest probe interval of a parked or disabled mailbox.
pub const MAX_PROBE_SECS: u64 = 7 * 86_400;
/// The longest connect timeout.
pub const MAX_CONNECT_TIMEOUT_SECS: u64 = 300;
/// The longest whole-call timeout (EWS calls, webhook posts).
pub const MAX_REQUEST_TIMEOUT_SECS: u64 = 3_600;
/// The most calls per second foldertrack may be allowed (the simulator benchmarks use 2,000).
pub const MAX_CALLS_PER_SECOND: u32 = 10_000;
/// The smallest and largest cap on one answer's size (see `limits.max_response_bytes`).
pub const MIN_RESPONSE_BYTES: u64 = 1 << 20;
pub const MAX_RESPONSE_BYTES: u64 = 1 << 30;
/// The most failures before a mailbox is parked.
pub const MAX_PARK_AFTER: u32 = 1_000;
/// Ten years of history at most.
pub const MAX_HISTORY_DAYS: u32 = 3_650;
/// The largest JSONL file before rotation: 1 TiB.
pub const MAX_ROTATE_BYTES: u64 = 1 << 40;
/// The most Dataverse calls at once (Dataverse refuses more per user).
pub const MAX_DATAVERSE_CONCURRENCY: u32 = crate::deliver::dynamics::api::CONCURRENCY_LIMIT as u32;
/// The largest attachment worth copying: Dataverse's highest file size limit (131,072 KB).
pub const MAX_ATTACHMENT_BYTES: u64 = 128 * 1024 * 1024;
/// A year: the longest a request is retried while it fails transiently.
pub const MAX_RETRY_HOURS: u32 = 8_760;
/// The most delivery attempts.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 100;

impl Config {
    /// Every problem, each as `field.path: what is wrong and what to do`.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Problems::default();
        exchange(&mut p, &self.exchange);
        limits(&mut p, self);
        let mut addresses = std::collections::HashSet::new();
        for (i, m) in self.mailbox.iter().enumerate() {
            mailbox(&mut p, &format!("mailbox[{i}]"), m, &mut addresses);
        }
        sink(&mut p, &self.sink);
        p.range(
            "delivery.max_attempts",
            self.delivery.max_attempts,
            1,
            MAX_DELIVERY_ATTEMPTS,
        );
        p.range(
            "store.history_days",
            self.store.history_days,
            1,
            MAX_HISTORY_DAYS,
        );
        let d = &self.delivery;
        p.range("delivery.retry_hours", d.retry_hours, 0, MAX_RETRY_HOURS);
        p.range(
            "delivery.retry_max_secs",
            d.retry_max_secs,
            1,
            MAX_INTERVAL_SECS,
        );
        p.range(
            "delivery.regarding_probe_secs",
            d.regarding_probe_secs,
            1,
            MAX_INTERVAL_SECS,
        );
        admin(&mut p, &self.admin);
        p.0.extend(self.cluster.problems(super::settings::hostname));
        p.0
    }
}

fn exchange(p: &mut Problems, x: &Exchange) {
    match Url::parse(&x.url) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
        Ok(u) if u.scheme() == "http" => p.add(
            "exchange.url",
            "plain http is only allowed to loopback (the simulator); use https",
        ),
        Ok(_) | Err(_) => p.add(
            "exchange.url",
            &format!(
                "{:?} is not an http(s) URL; write e.g. {}",
                crate::http::redact_text(&x.url),
                match x.api {
                    Api::Ews => "https://mail.example.com/EWS/Exchange.asmx",
                    Api::Graph => crate::graph::DEFAULT_BASE,
                }
            ),
        ),
    }
    if x.api == Api::Graph {
        graph(p, x);
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
    p.range(
        "exchange.connect_timeout_secs",
        x.connect_timeout_secs,
        1,
        MAX_CONNECT_TIMEOUT_SECS,
    );
    p.range(
        "exchange.request_timeout_secs",
        x.request_timeout_secs,
        1,
        MAX_REQUEST_TIMEOUT_SECS,
    );
}

/// What `api = "graph"` needs of the rest of `[exchange]`.
fn graph(p: &mut Problems, x: &Exchange) {
    if x.url.to_ascii_lowercase().ends_with(".asmx") {
        p.add(
            "exchange.url",
            &format!(
                "with api = \"graph\" this is the Graph root ({}), not an EWS endpoint",
                crate::graph::DEFAULT_BASE
            ),
        );
    }
    match &x.auth {
        Auth::Oauth { scope: Some(s), .. } if !s.ends_with("/.default") || s.contains("outlook.office") => p.add(
            "exchange.auth.scope",
            &format!(
                "Graph tokens need the scope {}; remove the line to get it",
                crate::graph::SCOPE
            ),
        ),
        Auth::Oauth { .. } => {}
        Auth::Basic { .. } | Auth::Ntlm { .. } => p.add(
            "exchange.auth",
            "Microsoft Graph takes app-only OAuth only; use auth = { kind = \"oauth\", tenant_id = \"…\", client_id = \"…\", client_secret_file = \"…\" }",
        ),
    }
}

/// `[limits]`, `[cadence]` and `[health]`: numbers and their order.
fn limits(p: &mut Problems, config: &Config) {
    let l = &config.limits;
    p.range(
        "limits.max_concurrent_calls",
        l.max_concurrent_calls,
        1,
        MAX_CONCURRENT_CALLS,
    );
    p.range(
        "limits.calls_per_second",
        l.calls_per_second,
        1,
        MAX_CALLS_PER_SECOND,
    );
    p.range(
        "limits.mailbox_calls_per_second",
        l.mailbox_calls_per_second,
        1,
        MAX_CALLS_PER_SECOND,
    );
    p.range(
        "limits.get_item_batch",
        l.get_item_batch,
        1,
        MAX_GET_ITEM_BATCH,
    );
    p.range("limits.sync_page_size", l.sync_page_size, 1, MAX_SYNC_PAGE);
    p.range(
        "limits.max_response_bytes",
        l.max_response_bytes,
        MIN_RESPONSE_BYTES,
        MAX_RESPONSE_BYTES,
    );
    let c = &config.cadence;
    let in_range = p.range("cadence.busy_secs", c.busy_secs, 1, MAX_INTERVAL_SECS)
        & p.range("cadence.normal_secs", c.normal_secs, 1, MAX_INTERVAL_SECS)
        & p.range("cadence.quiet_secs", c.quiet_secs, 1, MAX_INTERVAL_SECS);
    if in_range && !(c.busy_secs <= c.normal_secs && c.normal_secs <= c.quiet_secs) {
        p.add(
            "cadence",
            "needs 1 <= busy_secs <= normal_secs <= quiet_secs",
        );
    }
    if !(0.0..=MAX_JITTER).contains(&c.jitter) {
        p.add("cadence.jitter", &format!("must be 0 to {MAX_JITTER}"));
    }
    let n = &config.notifications;
    p.range(
        "notifications.backstop_secs",
        n.backstop_secs,
        MIN_BACKSTOP_SECS,
        MAX_INTERVAL_SECS,
    );
    p.range(
        "notifications.pull_interval_secs",
        n.pull_interval_secs,
        MIN_PULL_SECS,
        MAX_PULL_SECS,
    );
    if n.mode == super::NotificationMode::Pull && config.exchange.api == super::Api::Graph {
        p.add(
            "notifications.mode",
            "\"pull\" is for api = \"ews\"; over Graph use \"streaming\" with graph_notification_url, or \"off\"",
        );
    }
    p.range(
        "notifications.hanging_connection_limit",
        n.hanging_connection_limit,
        1,
        MAX_HANGING_CONNECTIONS,
    );
    p.range(
        "notifications.connection_timeout_minutes",
        n.connection_timeout_minutes,
        1,
        30,
    );
    graph_notifications(p, n);
    let h = &config.health;
    let in_range = p.range("health.retry_secs", h.retry_secs, 1, MAX_INTERVAL_SECS)
        & p.range(
            "health.retry_max_secs",
            h.retry_max_secs,
            1,
            MAX_INTERVAL_SECS,
        );
    if in_range && h.retry_secs > h.retry_max_secs {
        p.add("health", "needs retry_secs <= retry_max_secs");
    }
    p.range("health.park_after", h.park_after, 1, MAX_PARK_AFTER);
    p.range(
        "health.parked_probe_secs",
        h.parked_probe_secs,
        1,
        MAX_PROBE_SECS,
    );
    p.range(
        "health.disabled_probe_secs",
        h.disabled_probe_secs,
        1,
        MAX_PROBE_SECS,
    );
}

fn mailbox(
    p: &mut Problems,
    at: &str,
    m: &MailboxConfig,
    addresses: &mut std::collections::HashSet<String>,
) {
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
        folder(p, &format!("{at}.folder[{j}]"), f, &mut paths);
    }
}

fn folder(
    p: &mut Problems,
    at: &str,
    f: &FolderMapping,
    paths: &mut std::collections::HashSet<String>,
) {
    match (&f.path, &f.id) {
        (Some(_), Some(_)) => p.add(at, "give path or id, not both"),
        (None, None) => p.add(
            at,
            "give the folder's path (e.g. \"Inbox/Customers/Contoso\") or its id",
        ),
        (Some(path), None) => {
            let segments: Vec<&str> = path.split('/').collect();
            if segments.iter().any(|s| s.trim().is_empty()) {
                p.add(
                    &format!("{at}.path"),
                    "has an empty segment; separate folder names with single /",
                );
            } else if !f.allow_outside_inbox && !segments[0].eq_ignore_ascii_case("Inbox") {
                p.add(
                    &format!("{at}.path"),
                    "folder paths must start at Inbox (or set allow_outside_inbox = true)",
                );
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

fn sink(p: &mut Problems, sink: &Sink) {
    match sink {
        Sink::Jsonl { rotate_bytes, .. } => {
            if let Some(bytes) = rotate_bytes {
                p.range("sink.rotate_bytes", *bytes, 1, MAX_ROTATE_BYTES);
            }
        }
        Sink::Webhook {
            url,
            secret_env,
            secret_file,
            timeout_secs,
        } => {
            p.https("sink.url", url);
            p.secret("sink.secret", secret_env, secret_file);
            p.range(
                "sink.timeout_secs",
                *timeout_secs,
                1,
                MAX_REQUEST_TIMEOUT_SECS,
            );
        }
        Sink::Dynamics {
            org_url,
            client_secret_env,
            client_secret_file,
            token_url,
            resolve_parties,
            max_concurrent_requests,
            attachment_max_bytes,
            ..
        } => {
            p.range(
                "sink.attachment_max_bytes",
                *attachment_max_bytes,
                1,
                MAX_ATTACHMENT_BYTES,
            );
            p.https("sink.org_url", org_url);
            p.secret("sink.client_secret", client_secret_env, client_secret_file);
            if let Some(t) = token_url {
                p.https("sink.token_url", t);
            }
            let known = crate::deliver::dynamics::parties::RESOLVABLE;
            for t in resolve_parties {
                if !known.iter().any(|(k, ..)| k == t) {
                    let names: Vec<&str> = known.iter().map(|(k, ..)| *k).collect();
                    p.add(
                        "sink.resolve_parties",
                        &format!("{t:?} is not one of {}", names.join(", ")),
                    );
                }
            }
            p.range(
                "sink.max_concurrent_requests",
                *max_concurrent_requests,
                1,
                MAX_DATAVERSE_CONCURRENCY,
            );
        }
    }
}

fn admin(p: &mut Problems, admin: &Admin) {
    match admin.listen.parse::<std::net::SocketAddr>() {
        Ok(a) if !a.ip().is_loopback() && admin.token_env.is_none() && admin.token_file.is_none() => {
            p.add(
                "admin.listen",
                "a non-loopback address needs token_env or token_file, or anyone on the network could change state",
            )
        }
        Ok(_) => {}
        Err(_) => p.add(
            "admin.listen",
            &format!(
                "{:?} is not an address like 127.0.0.1:9477",
                admin.listen
            ),
        ),
    }
}

fn graph_notifications(p: &mut Problems, n: &super::Notifications) {
    p.range(
        "notifications.graph_subscription_minutes",
        n.graph_subscription_minutes,
        1,
        MAX_GRAPH_SUBSCRIPTION_MINUTES,
    );
    if n.graph_listen.parse::<std::net::SocketAddr>().is_err() {
        p.add(
            "notifications.graph_listen",
            &format!("{:?} is not an address like 127.0.0.1:9478", n.graph_listen),
        );
    }
    let Some(text) = &n.graph_notification_url else {
        return;
    };
    match url::Url::parse(text) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
        Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
        Ok(_) => p.add(
            "notifications.graph_notification_url",
            "Microsoft Graph posts only to https:// URLs; give the public HTTPS address that reaches graph_listen",
        ),
        Err(e) => p.add(
            "notifications.graph_notification_url",
            &format!("is not a URL ({e}); give the public HTTPS address that reaches graph_listen"),
        ),
    }
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, field: &str, message: &str) {
        self.0.push(format!("{field}: {message}"));
    }

    /// Adds a problem unless `min <= value <= max`; says whether it holds.
    fn range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        value: T,
        min: T,
        max: T,
    ) -> bool {
        let ok = min <= value && value <= max;
        if !ok {
            self.add(
                field,
                &format!("{value} is out of range; use {min} to {max}"),
            );
        }
        ok
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
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {}
            _ => self.add(
                field,
                &format!(
                    "{:?} must be an https URL (plain http only to loopback)",
                    crate::http::redact_text(url)
                ),
            ),
        }
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
