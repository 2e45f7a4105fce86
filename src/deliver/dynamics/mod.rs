//! The Dynamics 365 sink, through the Dataverse Web API. Per tracking request: find the email
//! activity by its message id; when it is missing, create it open — columns, activity parties
//! resolved to users, contacts, accounts or leads ([`parties`]), the regarding bound through
//! the navigation property the metadata names ([`metadata`]) — then complete it as Received or
//! Sent ([`activity`]); when it exists, set or change its regarding (R8, R12). A column the
//! acting user may not write (field security) is left out and noted in the item's history
//! (R34); the mail's files are copied when asked ([`attachments`]). Calls share one gate that
//! honours service protection ([`api`]); what a failure means is decided in
//! [`outcome`](mod@outcome).
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/overview>

pub mod activity;
pub mod api;
pub mod attachments;
pub mod checks;
mod memo;
pub mod metadata;
pub mod outcome;
pub mod parties;
pub mod regarding;

use super::Sink;
use super::policy::DeliveryError;
use crate::http::oauth::TokenSource;
use crate::tracking::{Regarding, TrackingRequest};
use activity::{EmailActivity, MESSAGE_ID_MAX, bind};
use api::{API_PATH, Api, ApiError, Call, literal, query_path};
use futures_util::StreamExt;
use metadata::{Metadata, rows};
use outcome::{Doing, outcome};
use parties::{Participation, Resolver};
use regarding::{Decision, RegardingPolicy};
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Where the organisation is, how to sign in to it, and how the sink behaves.
#[derive(Debug)]
pub struct DynamicsSettings {
    /// `https://{org}.crm.dynamics.com`
    pub org: url::Url,
    pub token_url: url::Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Act on behalf of the mailbox owner (CallerObjectId).
    pub act_as_owner: bool,
    /// Tables an address is resolved against, in order; empty: parties stay addresses.
    pub resolve_parties: Vec<String>,
    /// Calls in flight at once (at most the service's 52).
    pub max_concurrent_requests: usize,
    /// Who wins when a tracked mail's regarding was changed in Dynamics (R24).
    pub regarding_policy: RegardingPolicy,
    /// Copy attachments up to this many bytes each; `None`: attachments are not copied.
    pub attachment_max_bytes: Option<u64>,
}

/// The Dataverse sink.
pub struct DynamicsSink {
    api: Api,
    meta: Metadata,
    parties: Resolver,
    act_as_owner: bool,
    concurrency: usize,
    regarding_policy: RegardingPolicy,
    /// Mailbox → the owner's Entra object id, looked up once.
    owners: tokio::sync::Mutex<HashMap<String, String>>,
    /// History lines for delivered requests, until the deliverer takes them.
    notes: std::sync::Mutex<Vec<(String, String)>>,
    /// Where attachments come from, when they are copied.
    attachments: Option<attachments::Attachments>,
    attachment_max_bytes: Option<u64>,
}

/// An email activity found by its message id.
#[derive(Debug)]
struct Found {
    id: String,
    open: bool,
    regarding: Option<String>,
    /// When the row last changed (R24's last action).
    modified: Option<jiff::Timestamp>,
}

impl DynamicsSink {
    pub fn new(settings: DynamicsSettings) -> Result<Self, crate::http::Error> {
        let http = crate::http::client(&crate::http::Timeouts::default())?;
        let scope = format!("{}/.default", settings.org.as_str().trim_end_matches('/'));
        let tokens = TokenSource::new(
            settings.token_url,
            settings.client_id,
            settings.client_secret,
            scope,
            http.clone(),
        );
        let concurrency = settings
            .max_concurrent_requests
            .clamp(1, api::CONCURRENCY_LIMIT);
        Ok(Self {
            api: Api::new(http, &settings.org, tokens, concurrency),
            meta: Metadata::default(),
            parties: Resolver::new(settings.resolve_parties),
            act_as_owner: settings.act_as_owner,
            regarding_policy: settings.regarding_policy,
            concurrency,
            owners: Default::default(),
            notes: Default::default(),
            attachments: None,
            attachment_max_bytes: settings.attachment_max_bytes,
        })
    }

    /// Reads attachments from `source` when the settings ask for them copied.
    pub fn with_attachments(
        mut self,
        source: std::sync::Arc<dyn attachments::AttachmentSource>,
    ) -> Self {
        self.attachments = self
            .attachment_max_bytes
            .map(|max_bytes| attachments::Attachments { source, max_bytes });
        self
    }

    /// A line for the request's history.
    /// The Web API, for check-config.
    pub fn api(&self) -> &Api {
        &self.api
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The Entra object id of the mailbox's owner, for `CallerObjectId` (R34).
    async fn owner(&self, mailbox: &str) -> Result<String, DeliveryError> {
        if let Some(id) = self.owners.lock().await.get(mailbox) {
            return Ok(id.clone());
        }
        let doing = Doing {
            what: "looking up the mailbox owner",
            regarding: None,
            acting_for: None,
        };
        let found = owner_lookup(&self.api, mailbox)
            .await
            .map_err(|e| outcome(e, &doing))?;
        let id = found.ok_or_else(|| DeliveryError::Rejected {
            reason: format!(
                "Dataverse has no enabled user with the primary email address {mailbox}; add the user, or set act_as_owner = false"
            ),
        })?;
        self.owners
            .lock()
            .await
            .insert(mailbox.to_owned(), id.clone());
        Ok(id)
    }

    /// The email activity with exactly this message id (the service compares ignoring case;
    /// the local part of a message id is case-sensitive, so rows are compared here too).
    async fn find(&self, message_id: &str) -> Result<Option<Found>, ApiError> {
        let path = query_path(
            "emails",
            "activityid,messageid,statecode,_regardingobjectid_value,modifiedon",
            &format!("messageid eq {}", literal(message_id)),
            None,
        );
        let body = self.api.send(Call::get(path)).await?.body;
        Ok(rows(&body)
            .find(|r| r["messageid"].as_str() == Some(message_id))
            .and_then(|r| {
                Some(Found {
                    id: r["activityid"].as_str()?.to_owned(),
                    open: r["statecode"].as_i64() == Some(0),
                    regarding: r["_regardingobjectid_value"].as_str().map(str::to_owned),
                    modified: r["modifiedon"].as_str().and_then(|t| t.parse().ok()),
                })
            }))
    }

    /// `{nav}@odata.bind` for a regarding record, from the metadata.
    async fn regarding_bind(&self, r: &Regarding) -> Result<(String, Value), DeliveryError> {
        let doing = Doing {
            what: "reading the regarding table's metadata",
            regarding: None,
            acting_for: None,
        };
        let unusable = |why: String| DeliveryError::RegardingUnavailable {
            regarding: r.clone(),
            mailbox: None,
            reason: format!("{why}; fix the mapping's regarding and `foldertrack reload`"),
        };
        let nav = match self.meta.regarding_nav(&self.api, &r.entity).await {
            Ok(Some(nav)) => nav,
            Ok(None) => {
                return Err(unusable(format!(
                    "an email cannot be regarding a {} (no such table, or it is not enabled for activities)",
                    r.entity
                )));
            }
            Err(e) => return Err(outcome(e, &doing)),
        };
        let table = match self.meta.table(&self.api, &r.entity).await {
            Ok(t) => t,
            Err(e) if e.status() == Some(404) => {
                return Err(unusable(format!("Dataverse has no table {}", r.entity)));
            }
            Err(e) => return Err(outcome(e, &doing)),
        };
        Ok(bind(&nav, &table.set, &r.id))
    }

    /// Creates the email activity, open; returns its id.
    async fn create(
        &self,
        request: &TrackingRequest,
        email: &EmailActivity,
        caller: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let doing = Doing {
            what: "creating the email activity",
            regarding: request.regarding.as_ref(),
            acting_for: caller.map(|_| request.mailbox.as_str()),
        };
        if email.message_id.len() > MESSAGE_ID_MAX {
            return Err(DeliveryError::Rejected {
                reason: format!(
                    "the message id is longer than Dataverse's {MESSAGE_ID_MAX} characters"
                ),
            });
        }
        let mut body = email.columns();
        if let Some(r) = &request.regarding {
            let (k, v) = self.regarding_bind(r).await?;
            body.insert(k, v);
        }
        let addresses: Vec<(Participation, &str)> = email
            .from
            .iter()
            .map(|a| (Participation::Sender, a.as_str()))
            .chain(email.to.iter().map(|a| (Participation::To, a.as_str())))
            .chain(email.cc.iter().map(|a| (Participation::Cc, a.as_str())))
            .collect();
        let parties = self
            .parties
            .parties(&self.api, &self.meta, &addresses)
            .await
            .map_err(|e| outcome(e, &doing))?;
        body.insert("email_activity_parties".into(), Value::Array(parties));
        let reply = match self.post_email(&body, caller).await {
            Err(e) if e.status() == Some(403) && e.code().eq_ignore_ascii_case("0x8004F502") => {
                self.without_secured(request, body, caller, &doing).await?
            }
            other => other.map_err(|e| self.create_failed(e, &doing))?,
        };
        reply.created_id().ok_or_else(|| DeliveryError::Transient {
            reason: "creating the email activity: Dataverse answered without OData-EntityId".into(),
            retry_after: None,
        })
    }

    async fn post_email(
        &self,
        body: &Map<String, Value>,
        caller: Option<&str>,
    ) -> Result<api::Reply, ApiError> {
        let body = Value::Object(body.clone());
        self.api
            .send(Call::post(format!("{API_PATH}/emails"), &body, caller))
            .await
    }

    /// A 404 that is not the regarding's is a party's row deleted since it was resolved:
    /// resolve again on the next try.
    fn create_failed(&self, e: ApiError, doing: &Doing<'_>) -> DeliveryError {
        let status = e.status();
        match outcome(e, doing) {
            DeliveryError::Rejected { reason } if status == Some(404) => {
                // Rare: the next try resolves every address again.
                self.parties.forget();
                DeliveryError::Transient {
                    reason,
                    retry_after: None,
                }
            }
            other => other,
        }
    }

    /// Field security refused a column (R34): write the activity without the secured
    /// columns, and note which were left out and why.
    async fn without_secured(
        &self,
        request: &TrackingRequest,
        mut body: Map<String, Value>,
        caller: Option<&str>,
        doing: &Doing<'_>,
    ) -> Result<api::Reply, DeliveryError> {
        let secured = self
            .meta
            .secured_email_columns(&self.api)
            .await
            .map_err(|e| outcome(e, doing))?;
        let mut left_out: Vec<String> = body
            .keys()
            .filter(|k| secured.contains(k.as_str()))
            .cloned()
            .collect();
        left_out.sort();
        if left_out.is_empty() {
            return Err(DeliveryError::Rejected {
                reason: format!(
                    "{}: field security refused a column, and none of those written is secured",
                    doing.what
                ),
            });
        }
        for k in &left_out {
            body.remove(k);
        }
        let reply = self
            .post_email(&body, caller)
            .await
            .map_err(|e| self.create_failed(e, doing))?;
        let who = if caller.is_some() {
            format!("the owner of {}", request.mailbox)
        } else {
            "the application user".to_owned()
        };
        for k in left_out {
            self.note(
                request,
                format!("Dataverse: {k} left out: {who} may not write this secured column (field security)"),
            );
        }
        Ok(reply)
    }

    /// PATCHes an existing email activity.
    async fn update(
        &self,
        id: &str,
        body: &Value,
        caller: Option<&str>,
        doing: &Doing<'_>,
    ) -> Result<(), DeliveryError> {
        self.api
            .send(Call::update(
                format!("{API_PATH}/emails({id})"),
                body,
                caller,
            ))
            .await
            .map(|_| ())
            .map_err(|e| outcome(e, doing))
    }

    /// Known already: sets or changes its regarding (R12, R8), unless a change made in
    /// Dynamics wins (R24); an override either way goes into the item's history.
    async fn relink(
        &self,
        request: &TrackingRequest,
        found: &Found,
        caller: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let Some(r) = &request.regarding else {
            return Ok(());
        };
        let found_regarding = found.regarding.as_deref();
        if found_regarding.is_some_and(|have| have.eq_ignore_ascii_case(&r.id)) {
            return Ok(());
        }
        let policy = self.regarding_policy;
        let note = match regarding::decide(policy, request, found_regarding, found.modified) {
            Decision::Keep(note) => {
                self.note(request, note);
                return Ok(());
            }
            Decision::Link(note) => note,
        };
        let (k, v) = self.regarding_bind(r).await?;
        let doing = Doing {
            what: "re-linking the email activity",
            regarding: Some(r),
            acting_for: caller.map(|_| request.mailbox.as_str()),
        };
        let mut patch = Map::new();
        patch.insert(k, v);
        self.update(&found.id, &Value::Object(patch), caller, &doing)
            .await?;
        if let Some(note) = note {
            self.note(request, note);
        }
        Ok(())
    }

    /// A line for the item's history, handed to the deliverer with the outcome.
    fn note(&self, request: &TrackingRequest, what: String) {
        let mut notes = self.notes.lock().expect("unpoisoned");
        notes.push((request.id.clone(), what));
    }

    async fn deliver_one(&self, request: &TrackingRequest) -> Result<(), DeliveryError> {
        let caller = match self.act_as_owner {
            true => Some(self.owner(&request.mailbox).await?),
            false => None,
        };
        let caller = caller.as_deref();
        let acting_for = caller.map(|_| request.mailbox.as_str());
        let email = EmailActivity::of(request);
        let lookup = Doing {
            what: "looking the email activity up",
            regarding: None,
            acting_for: None,
        };
        let found = self
            .find(&email.message_id)
            .await
            .map_err(|e| outcome(e, &lookup))?;
        let (id, open) = match found {
            Some(found) => {
                self.relink(request, &found, caller).await?;
                (found.id, found.open)
            }
            None => (self.create(request, &email, caller).await?, true),
        };
        if open {
            // Created now, or by an attempt that stopped before completing it; attachments
            // go first, as a completed email is read-only.
            self.attach(request, &id, caller).await?;
            let doing = Doing {
                what: "completing the email activity",
                regarding: None,
                acting_for,
            };
            self.update(&id, &email.completion(), caller, &doing)
                .await?;
        }
        Ok(())
    }
}

/// The Entra object id of the enabled user whose primary email address is `mailbox`.
pub async fn owner_lookup(api: &Api, mailbox: &str) -> Result<Option<String>, ApiError> {
    let path = query_path(
        "systemusers",
        "systemuserid,azureactivedirectoryobjectid,isdisabled",
        &format!("internalemailaddress eq {}", literal(mailbox)),
        None,
    );
    let body = api.send(Call::get(path)).await?.body;
    Ok(rows(&body)
        .filter(|u| u["isdisabled"].as_bool() != Some(true))
        .find_map(|u| {
            u["azureactivedirectoryobjectid"]
                .as_str()
                .map(str::to_owned)
        }))
}

/// A refusal that holds a regarding, matching this request.
fn same_hold(error: &DeliveryError, request: &TrackingRequest) -> bool {
    match error {
        DeliveryError::RegardingUnavailable {
            regarding, mailbox, ..
        } => {
            request.regarding.as_ref() == Some(regarding)
                && mailbox.as_deref().is_none_or(|m| m == request.mailbox)
        }
        _ => false,
    }
}

impl Sink for DynamicsSink {
    async fn deliver(&self, request: &TrackingRequest) -> Result<(), DeliveryError> {
        self.deliver_one(request).await
    }

    /// Messages side by side (the gate caps the calls in flight); the events of one message
    /// in order. Once a regarding is found unavailable, the rest regarding it are not tried.
    async fn deliver_all(&self, requests: &[&TrackingRequest]) -> Vec<Result<(), DeliveryError>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_message: HashMap<&str, usize> = HashMap::new();
        for (i, r) in requests.iter().enumerate() {
            let g = *by_message.entry(r.id.as_str()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(i);
        }
        let held: std::sync::Mutex<Vec<DeliveryError>> = Default::default();
        let held = &held;
        let done: Vec<Vec<(usize, Result<(), DeliveryError>)>> = futures_util::stream::iter(groups)
            .map(|group| async move {
                let mut out = Vec::with_capacity(group.len());
                for i in group {
                    let request = requests[i];
                    let known = held
                        .lock()
                        .expect("unpoisoned")
                        .iter()
                        .find(|e| same_hold(e, request))
                        .cloned();
                    let result = match known {
                        Some(e) => Err(e),
                        None => self.deliver_one(request).await,
                    };
                    if let Err(e @ DeliveryError::RegardingUnavailable { .. }) = &result {
                        held.lock().expect("unpoisoned").push(e.clone());
                    }
                    out.push((i, result));
                }
                out
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut results: Vec<Option<Result<(), DeliveryError>>> =
            requests.iter().map(|_| None).collect();
        for (i, r) in done.into_iter().flatten() {
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.expect("every request delivered once"))
            .collect()
    }

    fn take_notes(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.notes.lock().expect("unpoisoned"))
    }
}
