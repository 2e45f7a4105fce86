//! `check-config` for a Dynamics sink: the sign-in, the organisation URL (WhoAmI), the
//! privileges of the application user and — when acting as them — of each mailbox owner
//! (RetrieveUserPrivileges), and every mapping's regarding record: that email can be regarding
//! its table, that it exists, and that it may be appended to (RetrievePrincipalAccess). Each
//! finding is one line, what holds or what is missing and how to fix it.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/retrieveuserprivileges>
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/retrieveprincipalaccess>

use super::DynamicsSink;
use super::api::{API_PATH, Api, ApiError, Call, literal, query_path};
use super::metadata::{Table, rows};
use crate::tracking::Regarding;
use std::collections::BTreeSet;

/// One line of the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub text: String,
}

impl Finding {
    fn ok(text: String) -> Self {
        Self { ok: true, text }
    }

    fn fail(text: String) -> Self {
        Self { ok: false, text }
    }
}

/// A mapping whose regarding is checked.
#[derive(Clone, Debug)]
pub struct MappedRecord {
    pub mailbox: String,
    /// The mapping as the config names it.
    pub name: String,
    pub regarding: Regarding,
}

/// What every writer of email activities needs (email's privileges are the Activity ones).
const ACTIVITY: &[&str] = &[
    "prvCreateActivity",
    "prvReadActivity",
    "prvWriteActivity",
    "prvAppendActivity",
];

/// Reading table, relationship and column definitions.
const METADATA: &[&str] = &["prvReadEntity", "prvReadRelationship", "prvReadAttribute"];

/// Reading the tables addresses are resolved against (their standard privilege names).
const READ: &[(&str, &str)] = &[
    ("systemuser", "prvReadUser"),
    ("contact", "prvReadContact"),
    ("account", "prvReadAccount"),
    ("lead", "prvReadLead"),
    ("queue", "prvReadQueue"),
];

/// A failed call, short: the privilege it lacked when the answer names one.
fn said(e: &ApiError) -> String {
    match super::outcome::missing_privilege(e.message()) {
        Some(p) if e.status() == Some(403) => format!("the application user lacks {p}"),
        _ => e.to_string(),
    }
}

/// A user as the checks need it.
struct User {
    id: String,
    address: String,
}

/// Every check, in order; a failed sign-in or organisation URL stops the rest.
pub async fn check(sink: &DynamicsSink, mappings: &[MappedRecord]) -> Vec<Finding> {
    let api = sink.api();
    let mut out = Vec::new();
    if let Err(e) = api.token().await {
        out.push(Finding::fail(format!("Dynamics sign-in: {e}")));
        return out;
    }
    out.push(Finding::ok(format!(
        "Dynamics: signed in for {}",
        api.base()
    )));
    let me = match who_am_i(api).await {
        Ok(id) => id,
        Err(e) => {
            out.push(Finding::fail(org_failure(api, &e)));
            return out;
        }
    };
    out.push(Finding::ok(format!(
        "Dynamics: {} answers; the application user is {me}",
        api.base()
    )));
    let tables = regarding_tables(sink, mappings, &mut out).await;
    out.push(app_privileges(sink, &me, &tables).await);
    let mut owners = Vec::new();
    if sink.act_as_owner {
        let mailboxes: BTreeSet<&str> = mappings.iter().map(|m| m.mailbox.as_str()).collect();
        for mailbox in mailboxes {
            let mine: Vec<&Table> = tables
                .iter()
                .filter(|t| {
                    mappings
                        .iter()
                        .any(|m| m.mailbox == mailbox && m.regarding.entity == t.logical)
                })
                .collect();
            match owner_privileges(api, mailbox, &mine).await {
                Ok((user, finding)) => {
                    owners.push(user);
                    out.push(finding);
                }
                Err(finding) => out.push(finding),
            }
        }
    }
    for m in mappings {
        out.push(regarding_record(sink, &me, &owners, &tables, m).await);
    }
    out
}

/// What a failed WhoAmI says about the configuration.
fn org_failure(api: &Api, e: &ApiError) -> String {
    match e.status() {
        Some(401) => format!(
            "Dynamics: {} refused the token; create an application user for this app registration in the environment and give it a security role",
            api.base()
        ),
        Some(404) => format!(
            "Dynamics: {} has no Dataverse Web API ({e}); set sink.org_url to the environment URL, e.g. https://contoso.crm.dynamics.com",
            api.base()
        ),
        _ => format!("Dynamics: {e}; check sink.org_url"),
    }
}

async fn who_am_i(api: &Api) -> Result<String, ApiError> {
    let body = api
        .send(Call::get(format!("{API_PATH}/WhoAmI")))
        .await?
        .body;
    Ok(body["UserId"].as_str().unwrap_or_default().to_owned())
}

/// The definitions of the regarding tables; a table email cannot be regarding fails here.
async fn regarding_tables(
    sink: &DynamicsSink,
    mappings: &[MappedRecord],
    out: &mut Vec<Finding>,
) -> Vec<Table> {
    let (api, meta) = (sink.api(), sink.metadata());
    let names: BTreeSet<&str> = mappings
        .iter()
        .map(|m| m.regarding.entity.as_str())
        .collect();
    let mut tables = Vec::new();
    for name in names {
        let table = match meta.regarding_nav(api, name).await {
            Ok(Some(_)) => meta.table(api, name).await,
            Ok(None) => {
                out.push(Finding::fail(format!(
                    "Dynamics: an email cannot be regarding a {name} (no such table, or not enabled for activities); fix regarding.entity"
                )));
                continue;
            }
            Err(e) => Err(e),
        };
        match table {
            Ok(t) => tables.push(t),
            Err(e) => out.push(Finding::fail(format!(
                "Dynamics: the definition of {name}: {}",
                said(&e)
            ))),
        }
    }
    tables
}

/// The privileges a user holds.
async fn privileges(api: &Api, user: &str) -> Result<BTreeSet<String>, ApiError> {
    let path =
        format!("{API_PATH}/systemusers({user})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()");
    let body = api.send(Call::get(path)).await?.body;
    Ok(body["RolePrivileges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["PrivilegeName"].as_str().map(str::to_owned))
        .collect())
}

/// `prv{kind}{table}` from the table's definition.
fn privilege_of(t: &Table, kind: &str) -> Option<String> {
    t.privileges.get(kind).cloned()
}

/// "holds every privilege it needs", or the missing ones.
fn judge(who: &str, needed: BTreeSet<String>, held: &BTreeSet<String>) -> Finding {
    let missing: Vec<&str> = needed
        .iter()
        .filter(|p| !held.contains(*p))
        .map(String::as_str)
        .collect();
    match missing.is_empty() {
        true => Finding::ok(format!(
            "Dynamics: {who} holds {}",
            needed.into_iter().collect::<Vec<_>>().join(", ")
        )),
        false => Finding::fail(format!(
            "Dynamics: {who} lacks {}; add them to a security role of that user",
            missing.join(", ")
        )),
    }
}

async fn app_privileges(sink: &DynamicsSink, me: &str, regarding: &[Table]) -> Finding {
    let api = sink.api();
    let mut needed: BTreeSet<String> = ACTIVITY
        .iter()
        .chain(METADATA)
        .map(|p| p.to_string())
        .collect();
    for t in regarding {
        needed.extend(privilege_of(t, "AppendTo"));
    }
    for table in sink.parties.order() {
        needed.extend(
            READ.iter()
                .filter(|(t, _)| t == table)
                .map(|(_, p)| p.to_string()),
        );
    }
    if sink.act_as_owner {
        needed.insert("prvReadUser".into());
        needed.insert("prvActOnBehalfOfAnotherUser".into());
    }
    match privileges(api, me).await {
        Ok(held) => judge("the application user", needed, &held),
        Err(e) => Finding::fail(format!(
            "Dynamics: the application user's privileges: {}",
            said(&e)
        )),
    }
}

/// The mailbox owner, and whether they hold what writing their mail needs.
async fn owner_privileges(
    api: &Api,
    mailbox: &str,
    regarding: &[&Table],
) -> Result<(User, Finding), Finding> {
    let path = query_path(
        "systemusers",
        "systemuserid,isdisabled",
        &format!("internalemailaddress eq {}", literal(mailbox)),
        None,
    );
    let found = api
        .send(Call::get(path))
        .await
        .map_err(|e| Finding::fail(format!("Dynamics: the user of {mailbox}: {}", said(&e))))?
        .body;
    let id = rows(&found)
        .filter(|u| u["isdisabled"].as_bool() != Some(true))
        .find_map(|u| u["systemuserid"].as_str())
        .ok_or_else(|| {
            Finding::fail(format!(
                "Dynamics: no enabled user has the primary email address {mailbox}; add the user, or set act_as_owner = false"
            ))
        })?;
    let mut needed: BTreeSet<String> = ACTIVITY.iter().map(|p| p.to_string()).collect();
    for t in regarding {
        needed.extend(privilege_of(t, "AppendTo"));
    }
    let held = privileges(api, id).await.map_err(|e| {
        Finding::fail(format!(
            "Dynamics: the privileges of {mailbox}'s owner: {e}"
        ))
    })?;
    let user = User {
        id: id.to_owned(),
        address: mailbox.to_owned(),
    };
    Ok((
        user,
        judge(&format!("the owner of {mailbox}"), needed, &held),
    ))
}

/// The rights `user` has on `set(id)`.
async fn access(api: &Api, user: &str, set: &str, id: &str) -> Result<String, ApiError> {
    let target = super::api::encode(&format!("{{'@odata.id':'{set}({id})'}}"));
    let path = format!(
        "{API_PATH}/systemusers({user})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@tid)?@tid={target}"
    );
    let body = api.send(Call::get(path)).await?.body;
    Ok(body["AccessRights"].as_str().unwrap_or("None").to_owned())
}

/// The mapping's regarding record exists and every writer may append to it.
async fn regarding_record(
    sink: &DynamicsSink,
    me: &str,
    owners: &[User],
    tables: &[Table],
    m: &MappedRecord,
) -> Finding {
    let api = sink.api();
    let r = &m.regarding;
    let at = format!("Dynamics: {} {}: regarding {r}", m.mailbox, m.name);
    let Some(t) = tables.iter().find(|t| t.logical == r.entity) else {
        return Finding::fail(format!("{at}: its table is not usable (see above)"));
    };
    let path = format!("{API_PATH}/{}({})?$select={}", t.set, r.id, t.primary_id);
    match api.send(Call::get(path)).await {
        Ok(_) => {}
        Err(e) if e.status() == Some(404) => {
            return Finding::fail(format!(
                "{at} does not exist; point the mapping at an existing record"
            ));
        }
        Err(e) => return Finding::fail(format!("{at}: {}", said(&e))),
    }
    let mut writers = vec![(me, "the application user".to_owned())];
    writers.extend(
        owners
            .iter()
            .filter(|o| o.address == m.mailbox)
            .map(|o| (o.id.as_str(), format!("the owner of {}", o.address))),
    );
    for (user, who) in writers {
        match access(api, user, &t.set, &r.id).await {
            Ok(rights) if rights.split(',').any(|x| x.trim() == "AppendToAccess") => {}
            Ok(_) => {
                return Finding::fail(format!(
                    "{at}: {who} may not append to it; share the record or give that user a role that reaches it"
                ));
            }
            Err(e) => return Finding::fail(format!("{at}: the access of {who}: {}", said(&e))),
        }
    }
    Finding::ok(format!("{at} exists and may be appended to"))
}
