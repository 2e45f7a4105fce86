//! The fake's routes: who is calling (the application user, or the user `CallerObjectId`
//! names), the privilege checks, and the read side — queries, rows by key, metadata
//! (EntityDefinitions, relationships, attributes), WhoAmI, RetrieveUserPrivileges and
//! RetrievePrincipalAccess. Writes are in [`super::writes`].

use super::odata::{self, Answer, Query, error};
use super::schema::{self, TableDef};
use super::{API, Email, Org, header};
use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value, json};

/// Who a request acts as.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub app: usize,
    /// The impersonated user.
    pub caller: Option<usize>,
}

pub fn route(
    org: &mut Org,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Value,
) -> Answer {
    let Some(rest) = uri.path().strip_prefix(&format!("{API}/")) else {
        return odata::no_segment(uri.path().trim_start_matches('/'));
    };
    let rest = odata::decode(&rest.replace('+', "%2B"));
    let query = Query::parse(uri.query().unwrap_or(""));
    let ctx = match org.ctx(headers) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let result = match (method.as_str(), segments.as_slice()) {
        ("GET", ["WhoAmI" | "WhoAmI()"]) => Ok(org.who_am_i(ctx)),
        ("GET", [def]) if def.starts_with("EntityDefinitions(") => {
            org.entity_definition(ctx, def, &query)
        }
        ("GET", [def, "ManyToOneRelationships"]) => org.relationships(ctx, def, &query),
        ("GET", [def, "Attributes"]) => org.attributes(ctx, def, &query),
        ("GET", [user, "Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"]) => {
            org.user_privileges(ctx, user)
        }
        ("GET", [user, f]) if f.starts_with("Microsoft.Dynamics.CRM.RetrievePrincipalAccess(") => {
            org.principal_access(ctx, user, &query)
        }
        ("GET", [set]) if !set.contains('(') => org.query(ctx, set, &query),
        ("GET", [keyed]) => org.retrieve(ctx, keyed, &query),
        ("POST", [set]) if !set.contains('(') => org.create(ctx, set, body),
        ("PATCH", [keyed]) => {
            let if_match = header(headers, "if-match") == Some("*");
            org.patch(ctx, keyed, body, if_match)
        }
        _ => Err(odata::no_segment(segments[0])),
    };
    result.unwrap_or_else(|a| a)
}

/// `set(id)` → (set, id).
pub fn keyed(segment: &str) -> Option<(&str, &str)> {
    let (set, rest) = segment.split_once('(')?;
    Some((set, rest.strip_suffix(')')?))
}

/// `EntityDefinitions(LogicalName='x')` → x.
fn logical_name(segment: &str) -> Option<&str> {
    segment
        .strip_prefix("EntityDefinitions(LogicalName='")?
        .strip_suffix("')")
}

/// An email as query rows show it: its columns, its id and its regarding lookup value.
pub fn email_row(e: &Email) -> Map<String, Value> {
    let mut row = e.row.clone();
    row.insert("activityid".into(), json!(e.id));
    row.insert(
        "_regardingobjectid_value".into(),
        e.regarding
            .as_ref()
            .map_or(Value::Null, |(_, id)| json!(id)),
    );
    row
}

fn collection(org: &Org, what: &str, rows: Vec<Value>) -> Answer {
    Answer::json(
        200,
        json!({"@odata.context": format!("{}{API}/$metadata#{what}", org.url), "value": rows}),
    )
}

impl Org {
    /// The application user, and the user `CallerObjectId` names when it is set.
    fn ctx(&self, headers: &HeaderMap) -> Result<Ctx, Answer> {
        let app = self.app;
        let Some(aad) = header(headers, "callerobjectid") else {
            return Ok(Ctx { app, caller: None });
        };
        // What the service answers for an unknown or disabled user is UNVERIFIED: a 403.
        let caller = self
            .users
            .iter()
            .position(|u| u.aad.eq_ignore_ascii_case(aad) && !u.disabled)
            .ok_or_else(|| {
                error(
                    403,
                    "0x80040220",
                    format!("CallerObjectId {aad}: no enabled user with this object id"),
                )
            })?;
        if !self.users[app]
            .privileges
            .contains("prvActOnBehalfOfAnotherUser")
        {
            return Err(error(
                403,
                "0x8004A110",
                "User does not have the privilege to act on behalf another user.",
            ));
        }
        Ok(Ctx {
            app,
            caller: Some(caller),
        })
    }

    /// The effective privilege: the application user's and the impersonated user's both.
    pub fn require(&self, ctx: Ctx, privilege: &str, table: &TableDef) -> Result<(), Answer> {
        let lacking = std::iter::once(ctx.app)
            .chain(ctx.caller)
            .find(|i| !self.users[*i].privileges.contains(privilege));
        let Some(i) = lacking else { return Ok(()) };
        let u = &self.users[i];
        Err(error(
            403,
            "0x80040220",
            format!(
                "Principal user (Id={}, type=8, roleCount=1, privilegeCount={}, accessMode=0), is missing {privilege} privilege (Id=0d6b5a11-5c9f-4a40-8e0e-{:012x}) on OTC={} for entity '{}'. Consider assigning a role with the required privilege to the user or team.",
                u.id,
                u.privileges.len(),
                privilege.len(),
                table.otc,
                table.logical
            ),
        ))
    }

    /// Whether both principals may write a secured column.
    pub fn may_write(&self, ctx: Ctx, table: &str, column: &str) -> bool {
        let key = format!("{table}.{column}");
        !self.secured.contains(&key)
            || std::iter::once(ctx.app)
                .chain(ctx.caller)
                .all(|i| self.users[i].field_grants.contains(&key))
    }

    fn who_am_i(&self, ctx: Ctx) -> Answer {
        let user = &self.users[ctx.caller.unwrap_or(ctx.app)];
        Answer::json(
            200,
            json!({
                "@odata.context": format!("{}{API}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse", self.url),
                "BusinessUnitId": "b0000000-0000-4000-8000-000000000001",
                "UserId": user.id,
                "OrganizationId": "0e000000-0000-4000-8000-000000000001",
            }),
        )
    }

    fn definition(&self, segment: &str) -> Result<TableDef, Answer> {
        let name = logical_name(segment).ok_or_else(|| odata::no_segment(segment))?;
        // The code of an unknown logical name is UNVERIFIED.
        self.table(name).ok_or_else(|| {
            error(
                404,
                "0x80040217",
                format!("Could not find entity with name {name}"),
            )
        })
    }

    fn metadata_table(&self) -> TableDef {
        TableDef {
            logical: "entity".into(),
            set: "EntityDefinitions".into(),
            primary_id: "MetadataId".into(),
            privilege: "Entity".into(),
            otc: 9800,
            columns: Vec::new(),
        }
    }

    fn entity_definition(&self, ctx: Ctx, segment: &str, q: &Query) -> Result<Answer, Answer> {
        self.require(ctx, "prvReadEntity", &self.metadata_table())?;
        let t = self.definition(segment)?;
        let privileges: Vec<Value> = [
            "Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share",
        ]
        .iter()
        .map(|kind| json!({"Name": format!("prv{kind}{}", t.privilege), "PrivilegeType": kind, "PrivilegeId": "00000000-0000-4000-8000-0000000000aa"}))
        .collect();
        let full = json!({
            "LogicalName": t.logical,
            "EntitySetName": t.set,
            "LogicalCollectionName": t.set,
            "PrimaryIdAttribute": t.primary_id,
            "ObjectTypeCode": t.otc,
            "Privileges": privileges,
            "MetadataId": format!("3e7a0000-0000-4000-8000-{:012x}", t.otc),
        });
        let full = full.as_object().unwrap();
        if let Some(bad) = q
            .select
            .iter()
            .flatten()
            .find(|c| !full.contains_key(c.as_str()))
        {
            return Err(odata::unknown_query_property("EntityMetadata", bad));
        }
        let mut out = match odata::project(full, &q.select) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        out.remove("@odata.etag");
        out.insert("MetadataId".into(), full["MetadataId"].clone());
        out.insert(
            "@odata.context".into(),
            json!(format!(
                "{}{API}/$metadata#EntityDefinitions/$entity",
                self.url
            )),
        );
        Ok(Answer::json(200, Value::Object(out)))
    }

    /// The many-to-one relationships of email (its lookups), activityparty and
    /// activitymimeattachment, as relationship metadata.
    fn relationships(&self, ctx: Ctx, segment: &str, q: &Query) -> Result<Answer, Answer> {
        self.require(ctx, "prvReadRelationship", &self.metadata_table())?;
        let t = self.definition(segment)?;
        let (attribute, navs): (&str, Vec<(String, String)>) = match t.logical.as_str() {
            "email" => (
                "regardingobjectid",
                schema::EMAIL_REGARDING
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .chain(self.custom_regarding.iter().cloned())
                    .collect(),
            ),
            "activityparty" => ("partyid", owned(schema::PARTY_NAVS)),
            "activitymimeattachment" => (
                "objectid",
                schema::ATTACHMENT_NAVS
                    .iter()
                    .map(|n| (n.trim_start_matches("objectid_").to_owned(), n.to_string()))
                    .collect(),
            ),
            _ => ("", Vec::new()),
        };
        let mut rows: Vec<Map<String, Value>> = navs
            .into_iter()
            .map(|(target, nav)| {
                json!({
                    "SchemaName": format!("{target}_{}_{attribute}", t.logical),
                    "ReferencedEntity": target,
                    "ReferencingEntity": t.logical,
                    "ReferencingAttribute": attribute,
                    "ReferencingEntityNavigationPropertyName": nav,
                    "MetadataId": "5e1a0000-0000-4000-8000-000000000001",
                })
                .as_object()
                .cloned()
                .unwrap()
            })
            .collect();
        if t.logical == "email" {
            rows.push(
                json!({"SchemaName": "lk_email_owner", "ReferencedEntity": "systemuser", "ReferencingEntity": "email", "ReferencingAttribute": "ownerid", "ReferencingEntityNavigationPropertyName": "ownerid", "MetadataId": "5e1a0000-0000-4000-8000-000000000002"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            );
        }
        self.answer_rows(
            "OneToManyRelationshipMetadata",
            rows,
            q,
            "ManyToOneRelationships",
        )
    }

    fn attributes(&self, ctx: Ctx, segment: &str, q: &Query) -> Result<Answer, Answer> {
        self.require(ctx, "prvReadAttribute", &self.metadata_table())?;
        let t = self.definition(segment)?;
        let rows = t
            .columns
            .iter()
            .map(|c| {
                json!({
                    "LogicalName": c,
                    "IsSecured": self.secured.contains(&format!("{}.{c}", t.logical)),
                    "MetadataId": "a77e0000-0000-4000-8000-000000000001",
                })
                .as_object()
                .cloned()
                .unwrap()
            })
            .collect();
        self.answer_rows("AttributeMetadata", rows, q, "Attributes")
    }

    /// Filters and projects metadata rows by the query's options.
    fn answer_rows(
        &self,
        ty: &str,
        rows: Vec<Map<String, Value>>,
        q: &Query,
        what: &str,
    ) -> Result<Answer, Answer> {
        let known: Vec<&str> = rows
            .first()
            .map(|r| r.keys().map(String::as_str).collect())
            .unwrap_or_default();
        check_query(q, &known, ty)?;
        let conditions = conditions(q)?;
        let out: Vec<Value> = rows
            .iter()
            .filter(|r| odata::matches(r, &conditions))
            .map(|r| odata::project(r, &q.select))
            .collect();
        Ok(collection(self, what, out))
    }

    fn user_by_key(&self, segment: &str) -> Result<usize, Answer> {
        let (set, id) = keyed(segment).ok_or_else(|| odata::no_segment(segment))?;
        if set != "systemusers" {
            return Err(odata::no_segment(segment));
        }
        self.users
            .iter()
            .position(|u| u.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| odata::no_row("systemuser", id))
    }

    fn user_privileges(&self, ctx: Ctx, segment: &str) -> Result<Answer, Answer> {
        let i = self.user_by_key(segment)?;
        // A user reading their own privileges needs none; another's needs read on users
        // (UNVERIFIED: the reference names no privilege for this function).
        if i != ctx.caller.unwrap_or(ctx.app) {
            self.require(ctx, "prvReadUser", &self.table("systemuser").unwrap())?;
        }
        let u = &self.users[i];
        let privileges: Vec<Value> = u
            .privileges
            .iter()
            .map(|p| json!({"Depth": "Global", "PrivilegeId": "00000000-0000-4000-8000-0000000000aa", "BusinessUnitId": "b0000000-0000-4000-8000-000000000001", "PrivilegeName": p}))
            .collect();
        Ok(Answer::json(
            200,
            json!({"@odata.context": format!("{}{API}/$metadata#Microsoft.Dynamics.CRM.RetrieveUserPrivilegesResponse", self.url), "RolePrivileges": privileges}),
        ))
    }

    /// `RetrievePrincipalAccess(Target=@tid)?@tid={'@odata.id':'accounts(…)'}`.
    fn principal_access(&self, ctx: Ctx, segment: &str, q: &Query) -> Result<Answer, Answer> {
        let principal = self.user_by_key(segment)?;
        let target = q
            .alias("@tid")
            .and_then(|t| t.split("'@odata.id':'").nth(1))
            .and_then(|t| t.split('\'').next())
            .ok_or_else(|| {
                error(
                    400,
                    "0x0",
                    "RetrievePrincipalAccess needs Target=@tid with @tid={'@odata.id':'set(id)'}",
                )
            })?;
        let (set, id) =
            keyed(target.trim_start_matches('/')).ok_or_else(|| odata::no_segment(target))?;
        let t = self
            .table_by_set(set)
            .ok_or_else(|| odata::no_segment(set))?;
        self.require(ctx, &format!("prvRead{}", t.privilege), &t)?;
        if self.row(&t.logical, id).is_none() {
            return Err(odata::no_row(&t.logical, id));
        }
        let locked = self
            .locked
            .contains(&format!("{}({})", t.logical, id.to_ascii_lowercase()));
        let held = &self.users[principal].privileges;
        let rights: Vec<String> = [
            "Read", "Write", "Append", "AppendTo", "Create", "Delete", "Share", "Assign",
        ]
        .iter()
        .filter(|r| held.contains(&format!("prv{r}{}", t.privilege)))
        .filter(|r| !(locked && **r == "AppendTo"))
        .map(|r| format!("{r}Access"))
        .collect();
        let rights = if rights.is_empty() {
            "None".to_owned()
        } else {
            rights.join(", ")
        };
        Ok(Answer::json(
            200,
            json!({"@odata.context": format!("{}{API}/$metadata#Microsoft.Dynamics.CRM.RetrievePrincipalAccessResponse", self.url), "AccessRights": rights}),
        ))
    }

    /// Every row of a table, as query rows.
    fn all_rows(&self, t: &TableDef) -> Vec<Map<String, Value>> {
        match t.logical.as_str() {
            "systemuser" => self.users.iter().map(|u| self.user_row(u)).collect(),
            "email" => self.emails.values().map(email_row).collect(),
            "activitymimeattachment" => self
                .attachments
                .iter()
                .map(|a| {
                    let mut row = a.row.clone();
                    row.insert("activitymimeattachmentid".into(), json!(a.id));
                    row.insert("_objectid_value".into(), json!(a.email));
                    row
                })
                .collect(),
            other => self
                .rows
                .get(other)
                .map(|r| r.values().cloned().collect())
                .unwrap_or_default(),
        }
    }

    fn query(&self, ctx: Ctx, set: &str, q: &Query) -> Result<Answer, Answer> {
        let t = self
            .table_by_set(set)
            .ok_or_else(|| odata::no_segment(set))?;
        self.require(ctx, &format!("prvRead{}", t.privilege), &t)?;
        check_query(q, &t.columns, &t.logical)?;
        let conditions = conditions(q)?;
        let rows: Vec<Value> = self
            .all_rows(&t)
            .iter()
            .filter(|r| odata::matches(r, &conditions))
            .take(q.top.unwrap_or(5000))
            .map(|r| odata::project(r, &q.select))
            .collect();
        Ok(collection(self, set, rows))
    }

    fn retrieve(&self, ctx: Ctx, segment: &str, q: &Query) -> Result<Answer, Answer> {
        let (set, id) = keyed(segment).ok_or_else(|| odata::no_segment(segment))?;
        let t = self
            .table_by_set(set)
            .ok_or_else(|| odata::no_segment(set))?;
        self.require(ctx, &format!("prvRead{}", t.privilege), &t)?;
        check_query(q, &t.columns, &t.logical)?;
        let row = self
            .row(&t.logical, id)
            .ok_or_else(|| odata::no_row(&t.logical, id))?;
        Ok(Answer::json(200, odata::project(&row, &q.select)))
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn check_query(q: &Query, known: &[&str], entity: &str) -> Result<(), Answer> {
    match q.unknown_property(known) {
        Ok(None) => Ok(()),
        Ok(Some(bad)) => Err(odata::unknown_query_property(entity, &bad)),
        Err(syntax) => Err(error(400, "0x0", syntax)),
    }
}

fn conditions(q: &Query) -> Result<Vec<odata::Condition>, Answer> {
    q.filter
        .as_deref()
        .map(odata::parse_filter)
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| error(400, "0x0", e))
}
