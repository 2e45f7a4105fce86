//! What the sink asks of the organisation's metadata once and keeps: each table's entity set
//! name (the URL segment; plurals are irregular, so never guessed), primary key and
//! privilege names; which navigation property of email sets `regardingobjectid` to each table
//! and which of activityparty sets `partyid` (their names are not derivable either:
//! `regardingobjectid_account_email`, but `regardingobjectid_asyncoperation`); and which email
//! columns are secured by field security.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-metadata-web-api>

use super::api::{API_PATH, Api, ApiError, Call, encode, literal};
use super::memo::Memo;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tokio::sync::{Mutex, OnceCell};

/// A table as the Web API names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub logical: String,
    pub set: String,
    pub primary_id: String,
    /// Privilege names by type (`AppendTo` → `prvAppendToAccount`).
    pub privileges: HashMap<String, String>,
}

/// The metadata cache of one sink.
#[derive(Default)]
pub struct Metadata {
    tables: Memo<Table>,
    /// email → target table → navigation property of `regardingobjectid`.
    regarding: Mutex<Option<HashMap<String, String>>>,
    /// activityparty → target table → navigation property of `partyid`.
    parties: OnceCell<HashMap<String, String>>,
    secured: OnceCell<HashSet<String>>,
}

impl Metadata {
    /// The table named `logical`, read once.
    pub async fn table(&self, api: &Api, logical: &str) -> Result<Table, ApiError> {
        self.tables
            .get_or_try(logical, || read_table(api, logical))
            .await
    }

    /// The navigation property of email that sets its regarding to a row of `table`; `None`
    /// when email cannot be regarding that table. Read again once when a table is not known
    /// (a custom table added since).
    pub async fn regarding_nav(&self, api: &Api, table: &str) -> Result<Option<String>, ApiError> {
        let mut cached = self.regarding.lock().await;
        if let Some(nav) = cached.as_ref().and_then(|m| m.get(table)) {
            return Ok(Some(nav.clone()));
        }
        let navs = navigations(api, "email", "regardingobjectid").await?;
        let nav = navs.get(table).cloned();
        *cached = Some(navs);
        Ok(nav)
    }

    /// The navigation property of activityparty that points `partyid` at `table`.
    pub async fn party_nav(&self, api: &Api, table: &str) -> Result<Option<String>, ApiError> {
        let navs = self
            .parties
            .get_or_try_init(|| navigations(api, "activityparty", "partyid"))
            .await?;
        Ok(navs.get(table).cloned())
    }

    /// The email columns secured by field security.
    pub async fn secured_email_columns(&self, api: &Api) -> Result<&HashSet<String>, ApiError> {
        self.secured
            .get_or_try_init(|| async {
                let path = format!(
                    "{API_PATH}/EntityDefinitions(LogicalName='email')/Attributes?$select=LogicalName&$filter={}",
                    encode("IsSecured eq true")
                );
                let body = api.send(Call::get(path)).await?.body;
                Ok(rows(&body)
                    .filter_map(|r| r["LogicalName"].as_str().map(str::to_owned))
                    .collect())
            })
            .await
    }
}

async fn read_table(api: &Api, logical: &str) -> Result<Table, ApiError> {
    let path = format!(
        "{API_PATH}/EntityDefinitions(LogicalName={})?$select=EntitySetName,PrimaryIdAttribute,Privileges",
        literal(logical)
    );
    let body = api.send(Call::get(path)).await?.body;
    Ok(Table {
        logical: logical.to_owned(),
        set: text(&body, "EntitySetName")?,
        primary_id: text(&body, "PrimaryIdAttribute")?,
        privileges: body["Privileges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["PrivilegeType"].as_str()?.to_owned(),
                    p["Name"].as_str()?.to_owned(),
                ))
            })
            .collect(),
    })
}

/// Target table → navigation property, for one lookup column of `entity`.
async fn navigations(
    api: &Api,
    entity: &str,
    attribute: &str,
) -> Result<HashMap<String, String>, ApiError> {
    let path = format!(
        "{API_PATH}/EntityDefinitions(LogicalName={})/ManyToOneRelationships?$select=ReferencedEntity,ReferencingEntityNavigationPropertyName&$filter=ReferencingAttribute eq {}",
        literal(entity),
        literal(attribute)
    );
    let body = api.send(Call::get(path)).await?.body;
    Ok(rows(&body)
        .filter_map(|r| {
            Some((
                r["ReferencedEntity"].as_str()?.to_owned(),
                r["ReferencingEntityNavigationPropertyName"]
                    .as_str()?
                    .to_owned(),
            ))
        })
        .collect())
}

/// The rows of a collection answer.
pub fn rows(body: &Value) -> impl Iterator<Item = &Value> {
    body["value"].as_array().into_iter().flatten()
}

fn text(body: &Value, field: &str) -> Result<String, ApiError> {
    // One documentation example wraps a single definition in "value"; accept both shapes.
    body.get(field)
        .or_else(|| body["value"].get(0).and_then(|v| v.get(field)))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Refused {
            status: 200,
            code: String::new(),
            message: format!("the table definition has no {field}"),
        })
}
