//! The fake's writes: creating an email (columns, regarding bind, deep-inserted activity
//! parties), updating it (`PATCH`, an upsert unless `If-Match: *`), and creating attachments.
//! Every key of a body must be declared in [`super::schema`]; values are type- and
//! length-checked; state/status pairs, participation types, bind targets, privileges and field
//! security are enforced.

use super::api::{Ctx, keyed};
use super::odata::{self, Answer, error};
use super::schema::{self, Column, Kind, TableDef};
use super::{API, Attachment, Email, Org, Party};
use serde_json::{Map, Value, json};

/// State → the status codes it allows (email table reference).
fn statuses(state: i64) -> &'static [i64] {
    match state {
        0 => &[1, 8],
        1 => &[2, 3, 4, 6, 7],
        2 => &[5],
        _ => &[],
    }
}

fn state_name(state: i64) -> &'static str {
    match state {
        0 => "Open",
        1 => "Completed",
        _ => "Canceled",
    }
}

fn bad_pair(status: i64, state: i64) -> Answer {
    // The wording is community-observed; the code is UNVERIFIED.
    error(
        400,
        "0x80040203",
        format!(
            "{status} is not a valid status code for state code EmailState.{} on email.",
            state_name(state)
        ),
    )
}

/// Checks one value against its column.
fn check_value(entity: &str, column: &Column, value: &Value) -> Result<(), Answer> {
    let wrong = || {
        error(
            400,
            "0x0",
            format!(
                "Cannot convert the literal '{value}' to the expected type of '{}' on '{entity}'.",
                column.name
            ),
        )
    };
    match (column.kind, value) {
        (_, Value::Null) => Ok(()),
        (Kind::Text(max), Value::String(s)) if s.chars().count() > max => Err(error(
            400,
            "0x80044331",
            format!(
                "A validation error occurred.  The length of the '{}' attribute of the '{entity}' entity exceeded the maximum allowed length of '{max}'.",
                column.name
            ),
        )),
        (Kind::Text(_), Value::String(_)) | (Kind::Bool, Value::Bool(_)) => Ok(()),
        (Kind::When, Value::String(s)) => s
            .parse::<jiff::Timestamp>()
            .map(|_| ())
            .map_err(|_| wrong()),
        (Kind::Int, Value::Number(n)) if n.is_i64() => Ok(()),
        (Kind::Double, Value::Number(_)) => Ok(()),
        (Kind::Choice(options), Value::Number(n))
            if n.as_i64().is_some_and(|v| options.contains(&v)) =>
        {
            Ok(())
        }
        (Kind::Guid, Value::String(s)) if s.len() == 36 => Ok(()),
        _ => Err(wrong()),
    }
}

/// A bind's value `/set(id)` (or `set(id)`), checked against the table it must point at.
fn bind_target(
    org: &Org,
    set_of: &str,
    nav: &str,
    value: &Value,
    table: &str,
) -> Result<String, Answer> {
    let text = value.as_str().unwrap_or("");
    let (set, id) = keyed(text.trim_start_matches('/')).ok_or_else(|| {
        error(
            400,
            "0x80048d19",
            format!("The value of '{nav}@odata.bind' is not a valid entity reference: '{text}'."),
        )
    })?;
    let t = org.table(table).ok_or_else(|| odata::no_segment(set))?;
    if t.set != set {
        return Err(error(
            400,
            "0x80048d19",
            format!(
                "Error identified in Payload provided by the user for Entity :'{set_of}': '{nav}' expects a reference to '{}', not '{set}'.",
                t.set
            ),
        ));
    }
    if org.row(table, id).is_none() {
        return Err(odata::no_row(table, id));
    }
    Ok(id.to_ascii_lowercase())
}

/// The email an attachment's `objectid_activitypointer@odata.bind` names: it must be
/// `/activitypointers(id)` of an email the fake holds (a template is not modelled).
fn activity_target(org: &Org, nav: &str, value: &Value) -> Result<String, Answer> {
    let text = value.as_str().unwrap_or("");
    let (set, id) = keyed(text.trim_start_matches('/')).ok_or_else(|| {
        error(
            400,
            "0x80048d19",
            format!("The value of '{nav}@odata.bind' is not a valid entity reference: '{text}'."),
        )
    })?;
    if nav != "objectid_activitypointer" || set != "activitypointers" {
        return Err(error(
            400,
            "0x80048d19",
            format!(
                "Error identified in Payload provided by the user for Entity :'activitymimeattachments': '{nav}' expects a reference to 'activitypointers', not '{set}'."
            ),
        ));
    }
    let id = id.to_ascii_lowercase();
    if !org.emails.contains_key(&id) {
        return Err(odata::no_row("activitypointer", &id));
    }
    Ok(id)
}

/// The regarding table a navigation property of email sets, if it is one.
fn regarding_target(org: &Org, nav: &str) -> Option<String> {
    schema::EMAIL_REGARDING
        .iter()
        .find(|(_, n)| *n == nav)
        .map(|(t, _)| t.to_string())
        .or_else(|| {
            org.custom_regarding
                .iter()
                .find(|(_, n)| n == nav)
                .map(|(t, _)| t.clone())
        })
}

/// Appending the email to `table(id)`: the privileges, and record-level access.
fn may_append(org: &Org, ctx: Ctx, table: &str, id: &str) -> Result<(), Answer> {
    let email = org.table("email").unwrap();
    org.require(ctx, "prvAppendActivity", &email)?;
    let t = org.table(table).unwrap();
    org.require(ctx, &format!("prvAppendTo{}", t.privilege), &t)?;
    if org.locked.contains(&format!("{table}({id})")) {
        // Record-level denials are UNVERIFIED in shape; community reports show SecLib text.
        return Err(error(
            403,
            "0x80040220",
            format!(
                "SecLib::AccessCheckEx failed. Returned hr = -2147187962, ObjectID: {id}, OwningUser: 00000000-0000-0000-0000-000000000000 and CallingUser: {}. ObjectTypeCode: {}, objectBusinessUnitId: b0000000-0000-4000-8000-000000000001, AccessRights: AppendToAccess",
                org.users[ctx.caller.unwrap_or(ctx.app)].id,
                t.otc
            ),
        ));
    }
    Ok(())
}

/// What an email body sets.
#[derive(Default)]
struct EmailWrite {
    columns: Map<String, Value>,
    regarding: Option<(String, String)>,
    parties: Option<Vec<Party>>,
}

fn read_email_body(
    org: &Org,
    ctx: Ctx,
    body: &Value,
    creating: bool,
) -> Result<EmailWrite, Answer> {
    let object = body
        .as_object()
        .ok_or_else(|| error(400, "0x0", "the body must be a JSON object"))?;
    let mut out = EmailWrite::default();
    for (key, value) in object {
        if let Some(nav) = key.strip_suffix("@odata.bind") {
            if let Some(table) = regarding_target(org, nav) {
                let id = bind_target(org, "emails", nav, value, &table)?;
                may_append(org, ctx, &table, &id)?;
                out.regarding = Some((table, id));
            } else if schema::EMAIL_OTHER_NAVS.contains(&nav) {
                // Declared; not modelled further.
            } else {
                return Err(odata::undeclared_nav("emails", nav));
            }
        } else if key == "email_activity_parties" {
            out.parties = Some(read_parties(org, value)?);
        } else if schema::EMAIL_COLLECTIONS.contains(&key.as_str()) {
            return Err(error(
                400,
                "0x0",
                format!("this fake deep-inserts only email_activity_parties, not {key}"),
            ));
        } else {
            let column = schema::EMAIL_COLUMNS
                .iter()
                .find(|c| c.name == key)
                .ok_or_else(|| odata::undeclared("email", key))?;
            if !(if creating {
                column.create
            } else {
                column.update
            }) {
                // How the service treats a read-only column in a body is UNVERIFIED: refused.
                return Err(error(
                    400,
                    "0x80040203",
                    format!(
                        "The '{key}' attribute is not valid for {}.",
                        if creating { "create" } else { "update" }
                    ),
                ));
            }
            check_value("email", column, value)?;
            if !org.may_write(ctx, "email", key) {
                return Err(if creating {
                    error(
                        403,
                        "0x8004F502",
                        "The user does not have create permissions to a secured field. The requested operation could not be completed.",
                    )
                } else {
                    error(
                        403,
                        "0x8004F507",
                        "The user doesn't have AttributePrivilegeUpdate and not granted shared access for a secured attribute during update operation",
                    )
                });
            }
            out.columns.insert(key.clone(), value.clone());
        }
    }
    Ok(out)
}

fn read_parties(org: &Org, value: &Value) -> Result<Vec<Party>, Answer> {
    let list = value
        .as_array()
        .ok_or_else(|| error(400, "0x0", "email_activity_parties must be an array"))?;
    list.iter().map(|p| read_party(org, p)).collect()
}

fn read_party(org: &Org, party: &Value) -> Result<Party, Answer> {
    let object = party
        .as_object()
        .ok_or_else(|| error(400, "0x0", "an activity party must be an object"))?;
    let mask = object
        .get("participationtypemask")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            error(
                400,
                "0x80040203",
                "participationtypemask is required on an activity party",
            )
        })?;
    if !schema::EMAIL_PARTICIPATION.contains(&mask) {
        return Err(error(
            400,
            "0x80040203",
            format!(
                "participation type {mask} is not valid on an email (sender, to, cc and bcc are)"
            ),
        ));
    }
    let mut out = Party {
        mask,
        target: None,
        address: None,
    };
    for (key, value) in object {
        if let Some(nav) = key.strip_suffix("@odata.bind") {
            let table = schema::PARTY_NAVS
                .iter()
                .find(|(_, n)| *n == nav)
                .map(|(t, _)| *t)
                .ok_or_else(|| odata::undeclared_nav("activityparties", nav))?;
            if !schema::party_targets(mask).contains(&table) {
                return Err(error(
                    400,
                    "0x80040203",
                    format!("a party of type {mask} cannot be a {table}"),
                ));
            }
            out.target = Some((
                table.to_owned(),
                bind_target(org, "activityparties", nav, value, table)?,
            ));
            continue;
        }
        let column = schema::PARTY_COLUMNS
            .iter()
            .find(|c| c.name == key)
            .ok_or_else(|| odata::undeclared("activityparty", key))?;
        if !column.create {
            return Err(error(
                400,
                "0x80040203",
                format!("The '{key}' attribute is not valid for create."),
            ));
        }
        check_value("activityparty", column, value)?;
        if key == "addressused" {
            out.address = value.as_str().map(str::to_owned);
        }
    }
    if out.target.is_none() && out.address.is_none() {
        // UNVERIFIED: a party with neither is refused here.
        return Err(error(
            400,
            "0x80040203",
            "an activity party needs a partyid or an addressused",
        ));
    }
    Ok(out)
}

impl Org {
    pub fn create(&mut self, ctx: Ctx, set: &str, body: Value) -> Result<Answer, Answer> {
        let t = self
            .table_by_set(set)
            .ok_or_else(|| odata::no_segment(set))?;
        match t.logical.as_str() {
            "email" => self.create_email(ctx, &t, body, None),
            "activitymimeattachment" => self.create_attachment(ctx, &t, body),
            other => Err(error(
                405,
                "0x0",
                format!("this fake does not create {other} rows"),
            )),
        }
    }

    fn create_email(
        &mut self,
        ctx: Ctx,
        t: &TableDef,
        body: Value,
        id: Option<String>,
    ) -> Result<Answer, Answer> {
        self.require(ctx, "prvCreateActivity", t)?;
        let write = read_email_body(self, ctx, &body, true)?;
        let mut row = write.columns;
        // Creating in a state other than Open is refused (community-observed; the reference
        // lists statecode as writable without saying on which operation): UNVERIFIED.
        let state = row.get("statecode").and_then(Value::as_i64).unwrap_or(0);
        let status = row.get("statuscode").and_then(Value::as_i64).unwrap_or(1);
        if state != 0 || !statuses(0).contains(&status) {
            return Err(bad_pair(status, state));
        }
        if row.contains_key("overriddencreatedon") {
            self.require(ctx, "prvOverrideCreatedOnCreatedBy", t)?;
        }
        row.insert("statecode".into(), json!(0));
        row.insert("statuscode".into(), json!(status));
        row.entry("directioncode").or_insert(json!(true));
        let id = match id.or_else(|| {
            row.remove("activityid")
                .and_then(|v| v.as_str().map(str::to_owned))
        }) {
            Some(id) => id.to_ascii_lowercase(),
            None => self.next_id(0xe3a1),
        };
        if self.emails.contains_key(&id) {
            return Err(error(
                412,
                "0x80040237",
                "Operation failed due to a SQL integrity violation.",
            ));
        }
        let now = json!(super::dataverse_time(jiff::Timestamp::now()));
        row.insert("createdon".into(), now.clone());
        row.insert("modifiedon".into(), now);
        if let Some(mid) = row.get("messageid").and_then(Value::as_str) {
            *self.creates.entry(mid.to_owned()).or_default() += 1;
        }
        let created_by = self.users[ctx.caller.unwrap_or(ctx.app)].id.clone();
        self.emails.insert(
            id.clone(),
            Email {
                id: id.clone(),
                row,
                regarding: write.regarding,
                parties: write.parties.unwrap_or_default(),
                created_by,
            },
        );
        Ok(Answer::empty(204).header("OData-EntityId", format!("{}{API}/emails({id})", self.url)))
    }

    pub fn patch(
        &mut self,
        ctx: Ctx,
        segment: &str,
        body: Value,
        if_match: bool,
    ) -> Result<Answer, Answer> {
        let (set, id) = keyed(segment).ok_or_else(|| odata::no_segment(segment))?;
        let t = self
            .table_by_set(set)
            .ok_or_else(|| odata::no_segment(set))?;
        if t.logical != "email" {
            return Err(error(
                405,
                "0x0",
                format!("this fake updates only emails, not {set}"),
            ));
        }
        let id = id.to_ascii_lowercase();
        if !self.emails.contains_key(&id) {
            // PATCH is an upsert: without If-Match: * a missing row is created.
            if if_match {
                return Err(odata::no_row("email", &id));
            }
            return self.create_email(ctx, &t, body, Some(id));
        }
        self.require(ctx, "prvWriteActivity", &t)?;
        let write = read_email_body(self, ctx, &body, false)?;
        let email = &self.emails[&id];
        let (state, status) = email.state();
        if state != 0 {
            // "Completed and canceled email is read-only": only the state and the regarding may
            // change on a tracked mail (App for Outlook sets regarding on completed mail;
            // which columns the service still accepts is UNVERIFIED).
            if let Some(k) = write
                .columns
                .keys()
                .find(|k| !["statecode", "statuscode"].contains(&k.as_str()))
            {
                return Err(error(
                    400,
                    "0x80040203",
                    format!(
                        "email {id} is {} and read-only: '{k}' cannot change",
                        state_name(state)
                    ),
                ));
            }
            if write.parties.is_some() {
                return Err(error(
                    400,
                    "0x80040203",
                    format!("email {id} is read-only: its parties cannot change"),
                ));
            }
        }
        let new_state = write.columns.get("statecode").and_then(Value::as_i64);
        let new_status = write.columns.get("statuscode").and_then(Value::as_i64);
        let (s, st) = match (new_state, new_status) {
            (None, None) => (state, status),
            (Some(s), None) => (s, statuses(s).first().copied().unwrap_or(0)),
            (None, Some(st)) => (state, st),
            (Some(s), Some(st)) => (s, st),
        };
        if !statuses(s).contains(&st) {
            return Err(bad_pair(st, s));
        }
        let email = self.emails.get_mut(&id).unwrap();
        email.row.extend(write.columns);
        email.row.insert("statecode".into(), json!(s));
        email.row.insert("statuscode".into(), json!(st));
        email.row.insert(
            "modifiedon".into(),
            json!(super::dataverse_time(jiff::Timestamp::now())),
        );
        if write.regarding.is_some() {
            email.regarding = write.regarding;
        }
        if let Some(p) = write.parties {
            email.parties = p;
        }
        Ok(Answer::empty(204))
    }

    fn create_attachment(&mut self, ctx: Ctx, t: &TableDef, body: Value) -> Result<Answer, Answer> {
        // The attachment's own privileges are UNVERIFIED (it has no owner); creating one is
        // treated as creating an activity and appending to its email.
        let email_table = self.table("email").unwrap();
        self.require(ctx, "prvCreateActivity", &email_table)?;
        self.require(ctx, "prvAppendToActivity", &email_table)?;
        let object = body
            .as_object()
            .ok_or_else(|| error(400, "0x0", "the body must be a JSON object"))?;
        let mut row = Map::new();
        let mut email = None;
        for (key, value) in object {
            if let Some(nav) = key.strip_suffix("@odata.bind") {
                if !schema::ATTACHMENT_NAVS.contains(&nav) {
                    return Err(odata::undeclared_nav("activitymimeattachments", nav));
                }
                email = Some(activity_target(self, nav, value)?);
                continue;
            }
            let column = schema::ATTACHMENT_COLUMNS
                .iter()
                .find(|c| c.name == key)
                .ok_or_else(|| odata::undeclared("activitymimeattachment", key))?;
            if !column.create {
                return Err(error(
                    400,
                    "0x80040203",
                    format!("The '{key}' attribute is not valid for create."),
                ));
            }
            check_value("activitymimeattachment", column, value)?;
            row.insert(key.clone(), value.clone());
        }
        let email = email.ok_or_else(|| {
            error(
                400,
                "0x80040203",
                "an attachment needs objectid_activitypointer@odata.bind",
            )
        })?;
        if row.get("objecttypecode").and_then(Value::as_str) != Some("email") {
            return Err(error(
                400,
                "0x80040203",
                "objecttypecode is required and must name the activity's table, 'email'",
            ));
        }
        if let Some(body) = row.get("body").and_then(Value::as_str) {
            use base64::Engine as _;
            if base64::engine::general_purpose::STANDARD
                .decode(body)
                .is_err()
            {
                // body is the file in Base64 (the reference's "Contents of the attachment").
                return Err(error(400, "0x0", "body is not valid Base64"));
            }
        }
        if row
            .get("body")
            .and_then(Value::as_str)
            .is_some_and(|b| b.len() > schema::MAX_UPLOAD)
        {
            // The status of this refusal is UNVERIFIED.
            return Err(error(400, "0x80044a02", "Attachment file size is too big."));
        }
        if self.emails[&email].state().0 != 0 {
            // Whether a completed email takes new attachments is UNVERIFIED: refused.
            return Err(error(
                400,
                "0x80040203",
                format!("email {email} is read-only"),
            ));
        }
        let id = self.next_id(0xa77);
        self.attachments.push(Attachment {
            id: id.clone(),
            email,
            row,
        });
        let _ = t;
        Ok(Answer::empty(204).header(
            "OData-EntityId",
            format!("{}{API}/activitymimeattachments({id})", self.url),
        ))
    }
}
