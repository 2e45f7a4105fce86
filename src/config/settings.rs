//! The edge between the file and the components: a validated [`Config`] becomes each
//! component's own typed settings — URLs parsed, durations typed, secrets read once into
//! values that never print. Components take these, never the config.

use super::secret::{resolve_admin_token, resolve_secret};
use super::{Api, Auth, Check, Config, Error, NotificationMode, Sink};
use crate::admin::AdminSettings;
use crate::client::{self, ClientSettings, Limits};
use crate::deliver::dynamics::DynamicsSettings;
use crate::deliver::policy::DeliveryPolicy;
use crate::deliver::writeback::MarkPolicy;
use crate::deliver::{DeliverySettings, SinkSettings};
use crate::ews::ExchangeVersion;
use crate::http::{Timeouts, oauth};
use crate::watch::cadence::CadenceSettings;
use crate::watch::capacity::{self, CallLimits, Capacity};
use crate::watch::cluster::{self, Share};
use crate::watch::health::HealthPolicy;
use crate::watch::notify::{GraphNotifySettings, NotifySettings};
use std::num::NonZeroU32;
use std::time::Duration;
use url::Url;

/// The scope of app-only EWS tokens in Exchange Online.
pub const EWS_SCOPE: &str = "https://outlook.office365.com/.default";

fn url(field: &str, text: &str) -> Result<Url, Error> {
    Url::parse(text).map_err(|e| Error::Value {
        field: field.to_owned(),
        message: format!("{:?} is not a URL: {e}", crate::http::redact_text(text)),
    })
}

impl Config {
    /// The token scope when the config names none: the one of the API in use.
    pub fn default_scope(&self) -> &'static str {
        match self.exchange.api {
            Api::Ews => EWS_SCOPE,
            Api::Graph => crate::graph::SCOPE,
        }
    }

    /// The EWS or Graph client: endpoint, credentials, timeouts and the call gate's limits.
    pub fn client_settings(&self) -> Result<ClientSettings, Error> {
        let ex = &self.exchange;
        let password = |env: &Option<String>, file: &Option<std::path::PathBuf>| {
            resolve_secret("exchange.auth.password", env.as_deref(), file.as_deref())
        };
        let auth = match &ex.auth {
            Auth::Basic {
                username,
                password_env,
                password_file,
            } => client::Auth::Basic {
                username: username.clone(),
                password: password(password_env, password_file)?,
            },
            Auth::Ntlm {
                username,
                domain,
                password_env,
                password_file,
            } => client::Auth::Ntlm {
                domain: domain.clone().unwrap_or_default(),
                username: username.clone(),
                password: password(password_env, password_file)?,
            },
            Auth::Oauth {
                tenant_id,
                client_id,
                client_secret_env,
                client_secret_file,
                scope,
                token_url,
            } => client::Auth::OAuth {
                token_url: token_url_or_default("exchange.auth.token_url", token_url, tenant_id)?,
                client_id: client_id.clone(),
                client_secret: resolve_secret(
                    "exchange.auth.client_secret",
                    client_secret_env.as_deref(),
                    client_secret_file.as_deref(),
                )?,
                scope: scope.clone().unwrap_or_else(|| self.default_scope().into()),
            },
        };
        let per_second = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Ok(ClientSettings {
            impersonation: ex.impersonation,
            version: ExchangeVersion::parse(&ex.server_version).unwrap_or_default(),
            timeouts: Timeouts {
                connect: Duration::from_secs(ex.connect_timeout_secs),
                request: Duration::from_secs(ex.request_timeout_secs),
            },
            limits: Limits {
                account_concurrency: self.limits.max_concurrent_calls.max(1) as usize,
                account_per_second: per_second(self.limits.calls_per_second),
                mailbox_per_second: per_second(self.limits.mailbox_calls_per_second),
                ..Limits::default()
            },
            extra_roots: ex.extra_root_certs.clone(),
            max_response_bytes: self.limits.max_response_bytes,
            ..ClientSettings::new(url("exchange.url", &ex.url)?, auth)
        })
    }

    /// The sink, its secret read.
    pub fn sink_settings(&self) -> Result<SinkSettings, Error> {
        Ok(match &self.sink {
            Sink::Jsonl { path, rotate_bytes } => SinkSettings::Jsonl {
                path: path.clone(),
                rotate_bytes: *rotate_bytes,
            },
            Sink::Webhook {
                url: address,
                secret_env,
                secret_file,
                timeout_secs,
            } => SinkSettings::Webhook {
                url: url("sink.url", address)?,
                secret: resolve_secret(
                    "sink.secret",
                    secret_env.as_deref(),
                    secret_file.as_deref(),
                )?,
                timeout: Duration::from_secs(*timeout_secs),
            },
            Sink::Dynamics {
                org_url,
                tenant_id,
                client_id,
                client_secret_env,
                client_secret_file,
                act_as_owner,
                token_url,
                resolve_parties,
                max_concurrent_requests,
                regarding_policy,
                attachments,
                attachment_max_bytes,
            } => SinkSettings::Dynamics(DynamicsSettings {
                org: url("sink.org_url", org_url)?,
                token_url: token_url_or_default("sink.token_url", token_url, tenant_id)?,
                client_id: client_id.clone(),
                client_secret: resolve_secret(
                    "sink.client_secret",
                    client_secret_env.as_deref(),
                    client_secret_file.as_deref(),
                )?,
                act_as_owner: *act_as_owner,
                resolve_parties: resolve_parties.clone(),
                max_concurrent_requests: *max_concurrent_requests as usize,
                regarding_policy: *regarding_policy,
                attachment_max_bytes: attachments.then_some(*attachment_max_bytes),
            }),
        })
    }

    /// Retries and write-back.
    /// What `explain` needs of the config beyond the store.
    pub fn explain_settings(&self) -> crate::deliver::explain::Settings {
        crate::deliver::explain::Settings {
            mailboxes: (self.mailbox.iter())
                .map(|m| (m.address.clone(), m.track_sent_items))
                .collect(),
            writeback: self.writeback.clone(),
        }
    }

    pub fn delivery_settings(&self) -> DeliverySettings {
        let d = &self.delivery;
        DeliverySettings {
            policy: DeliveryPolicy {
                max_attempts: d.max_attempts,
                cap: Duration::from_secs(d.retry_max_secs),
                retry_for: Duration::from_secs(u64::from(d.retry_hours) * 3600),
                probe: Duration::from_secs(d.regarding_probe_secs.max(1)),
                ..DeliveryPolicy::default()
            },
            writeback: self.writeback.clone(),
            marks: MarkPolicy {
                batch: self.limits.get_item_batch as usize,
                ..MarkPolicy::default()
            },
        }
    }

    /// The admin API's address and token.
    pub fn admin_settings(&self) -> Result<AdminSettings, Error> {
        let a = &self.admin;
        let token = match (&a.token_env, &a.token_file) {
            (None, None) => None,
            (env, file) => Some(resolve_admin_token(env.as_deref(), file.as_deref())?),
        };
        Ok(AdminSettings {
            listen: a.listen.clone(),
            token,
        })
    }

    /// The category a user removes to have a given-up mail tried again (R27); none without
    /// write-back.
    pub fn failed_category(&self) -> Option<String> {
        let w = &self.writeback;
        w.enabled.then(|| w.failed_category.clone())
    }

    pub fn cadence_settings(&self) -> CadenceSettings {
        let c = &self.cadence;
        CadenceSettings {
            normal: Duration::from_secs(c.normal_secs),
            busy: Duration::from_secs(c.busy_secs),
            quiet: Duration::from_secs(c.quiet_secs),
            jitter: c.jitter,
        }
    }

    /// `[notifications]` for the notifier: EWS streaming, or Graph change notifications when
    /// a notification URL is configured.
    pub fn notify_settings(&self) -> NotifySettings {
        let n = &self.notifications;
        let available = match self.exchange.api {
            Api::Ews => true,
            Api::Graph => n.graph_notification_url.is_some(),
        };
        NotifySettings {
            enabled: n.mode != NotificationMode::Off && available,
            pull_only: n.mode == NotificationMode::Pull,
            pull_every: Duration::from_secs(n.pull_interval_secs),
            backstop: Duration::from_secs(n.backstop_secs.max(self.cadence.quiet_secs)),
            connections: n.hanging_connection_limit as usize,
            charged_to_anchor: self.exchange.impersonation,
            connection_minutes: n.connection_timeout_minutes,
        }
    }

    /// Graph change notifications: the public URL, the receiver's address and the lifetime to
    /// ask for; `None` without a URL (or with notifications off, or over EWS).
    pub fn graph_notify_settings(&self) -> Result<Option<GraphNotifySettings>, Error> {
        let n = &self.notifications;
        let (Api::Graph, NotificationMode::Streaming, Some(text)) =
            (self.exchange.api, n.mode, &n.graph_notification_url)
        else {
            return Ok(None);
        };
        let listen = n.graph_listen.parse().map_err(|_| Error::Value {
            field: "notifications.graph_listen".into(),
            message: format!("{:?} is not an address like 127.0.0.1:9478", n.graph_listen),
        })?;
        Ok(Some(GraphNotifySettings {
            url: url("notifications.graph_notification_url", text)?,
            listen,
            lifetime: Duration::from_secs(u64::from(n.graph_subscription_minutes) * 60),
        }))
    }

    /// `check-config`'s word on Graph change notifications (nothing for EWS without them).
    pub fn notifications_check(&self) -> Option<Check> {
        let n = &self.notifications;
        let url = n.graph_notification_url.as_deref();
        Some(match (self.exchange.api, n.mode, url) {
            (Api::Ews, _, Some(_)) => Check::Warn(
                "notifications.graph_notification_url applies to api = \"graph\" only; remove it".into(),
            ),
            (Api::Ews, NotificationMode::Pull, None) => Check::Ok(format!(
                "notifications: pull subscriptions, read every {} s (one GetEvents per mailbox each time); mail is seen within that",
                n.pull_interval_secs
            )),
            (Api::Ews, _, None) => return None,
            (Api::Graph, NotificationMode::Off, Some(_)) => Check::Warn(
                "notifications: graph_notification_url is set but mode = \"off\": Graph mailboxes are polled".into(),
            ),
            (Api::Graph, _, None) => Check::Ok(
                "notifications: Graph mailboxes are polled on the cadence; set notifications.graph_notification_url for change notifications".into(),
            ),
            (Api::Graph, _, Some(url)) => Check::Ok(format!(
                "notifications: Graph posts change notifications to {url}, which must reach the receiver on {} (Graph checks it when subscribing)",
                n.graph_listen
            )),
        })
    }

    /// Why mailboxes are polled only, when notifications are not used.
    pub fn notify_off_reason(&self) -> Option<&'static str> {
        if self.notifications.mode == NotificationMode::Off {
            Some("notifications.mode = \"off\": polled on the cadence")
        } else if self.exchange.api == Api::Graph
            && self.notifications.graph_notification_url.is_none()
        {
            Some(
                "Microsoft Graph is polled on the cadence: change notifications need notifications.graph_notification_url (a public HTTPS URL that reaches notifications.graph_listen)",
            )
        } else {
            None
        }
    }

    /// Whether the limits can keep the cadence over every configured mailbox.
    pub fn capacity(&self) -> Capacity {
        let limits = CallLimits {
            per_second: self.limits.calls_per_second,
            mailbox_per_second: self.limits.mailbox_calls_per_second,
            concurrency: self.limits.max_concurrent_calls,
        };
        capacity::capacity(&self.share().all(), limits, &self.cadence_settings())
    }

    /// This agent's number in its group (0 alone); validated at load.
    pub fn member(&self) -> u32 {
        self.cluster.member_number(hostname).unwrap_or(0)
    }

    /// `check-config`'s word on `[cluster]`, with more than one member: which member this is
    /// and how many of the mailboxes it owns.
    pub fn cluster_check(&self) -> Option<Check> {
        let members = self.cluster.members();
        (members > 1).then(|| {
            Check::Ok(format!(
                "cluster: member {} of {members} owns {} of {} mailboxes",
                self.member(),
                self.share().all().len(),
                self.mailbox.len()
            ))
        })
    }

    /// This agent's share of the configured mailboxes.
    pub fn share(&self) -> Share {
        cluster::share(
            &self.mailbox,
            self.member(),
            self.cluster.members(),
            self.cluster.previous_members,
        )
    }

    /// `check-config`'s word on the cadence: a warning with what to set when the limits
    /// cannot keep it.
    pub fn capacity_check(&self) -> Check {
        let c = self.capacity();
        match c.advice {
            Some(advice) => Check::Warn(format!("cadence: {advice}")),
            None => Check::Ok(format!(
                "cadence: {} mailboxes, {:.0} calls per cycle, {:.1} calls/s of the {:.0} allowed; a cycle takes about {:.0} s of the {} s interval",
                c.mailboxes,
                c.calls_per_cycle,
                c.needed_per_second,
                c.allowed_per_second,
                c.cycle_secs,
                c.normal_secs
            )),
        }
    }

    pub fn health_policy(&self) -> HealthPolicy {
        let h = &self.health;
        HealthPolicy {
            base: Duration::from_secs(h.retry_secs),
            cap: Duration::from_secs(h.retry_max_secs),
            park_after: h.park_after,
            parked_probe: Duration::from_secs(h.parked_probe_secs),
            disabled_probe: Duration::from_secs(h.disabled_probe_secs),
        }
    }
}

/// The configured token URL, or the tenant's Entra endpoint.
fn token_url_or_default(
    field: &str,
    configured: &Option<String>,
    tenant_id: &str,
) -> Result<Url, Error> {
    match configured {
        Some(u) => url(field, u),
        None => url(field, &oauth::tenant_token_url(tenant_id)),
    }
}

/// The host name: `HOSTNAME` (set in every Kubernetes pod), else the kernel's.
pub fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
