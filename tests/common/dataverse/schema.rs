//! What the fake Dataverse knows of the tables it serves, written down from Microsoft's
//! reference pages as data — never derived from foldertrack's code:
//!
//! - email: <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/email>
//!   and its Dynamics 365 extension
//!   <https://learn.microsoft.com/en-us/dynamics365/developer/reference/entities/email>
//! - activityparty: <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/activityparty>
//!   and <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/activityparty-entity>
//! - activitymimeattachment: <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/activitymimeattachment>
//!
//! Only the columns that matter to a tracked mail are listed; anything else is refused as
//! undeclared, so the fake is never laxer than the service, only sometimes stricter.

/// A column's type, as far as the fake checks values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Single line of text with its maximum length.
    Text(usize),
    Bool,
    /// Edm.DateTimeOffset.
    When,
    Int,
    /// A choice (picklist, state or status): the values it takes.
    Choice(&'static [i64]),
    Guid,
    Double,
}

/// A structural property: its Web API name, type, and whether create and update may set it.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub create: bool,
    pub update: bool,
}

const fn rw(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        create: true,
        update: true,
    }
}

const fn ro(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        create: false,
        update: false,
    }
}

const MEMO: usize = 1_073_741_823;

/// The email columns a tracked mail touches (email table reference, "Writable columns" and
/// "Read-only columns").
pub const EMAIL_COLUMNS: &[Column] = &[
    Column {
        name: "activityid",
        kind: Kind::Guid,
        create: true,
        update: false,
    },
    rw("subject", Kind::Text(800)),
    rw("description", Kind::Text(MEMO)),
    rw("messageid", Kind::Text(320)),
    rw("messageiddupcheck", Kind::Guid),
    rw("directioncode", Kind::Bool),
    rw("actualstart", Kind::When),
    rw("actualend", Kind::When),
    rw("scheduledstart", Kind::When),
    rw("scheduledend", Kind::When),
    rw("sortdate", Kind::When),
    Column {
        name: "overriddencreatedon",
        kind: Kind::When,
        create: true,
        update: false,
    },
    rw("statecode", Kind::Choice(&[0, 1, 2])),
    rw("statuscode", Kind::Choice(&[1, 2, 3, 4, 5, 6, 7, 8])),
    rw("category", Kind::Text(250)),
    rw("subcategory", Kind::Text(250)),
    rw("torecipients", Kind::Text(500)),
    rw("sender", Kind::Text(250)),
    rw("trackingtoken", Kind::Text(50)),
    rw("conversationtrackingid", Kind::Guid),
    rw("internetmessageheaders", Kind::Text(500)),
    rw("prioritycode", Kind::Choice(&[0, 1, 2])),
    ro("senton", Kind::When),
    ro("createdon", Kind::When),
    ro("modifiedon", Kind::When),
    ro("inreplyto", Kind::Text(320)),
    ro("conversationindex", Kind::Text(2048)),
    ro("attachmentcount", Kind::Int),
    // Lookup value properties: readable, filterable, never written.
    ro("_regardingobjectid_value", Kind::Guid),
    ro("_ownerid_value", Kind::Guid),
    ro("_emailsender_value", Kind::Guid),
];

/// email → regarding table: the single-valued navigation property that sets
/// `regardingobjectid` to a row of that table. Most end in `_email`; `asyncoperation` does not.
pub const EMAIL_REGARDING: &[(&str, &str)] = &[
    ("account", "regardingobjectid_account_email"),
    ("contact", "regardingobjectid_contact_email"),
    (
        "knowledgearticle",
        "regardingobjectid_knowledgearticle_email",
    ),
    (
        "knowledgebaserecord",
        "regardingobjectid_knowledgebaserecord_email",
    ),
    ("adx_invitation", "regardingobjectid_adx_invitation_email"),
    ("asyncoperation", "regardingobjectid_asyncoperation"),
    (
        "mspp_adplacement",
        "regardingobjectid_mspp_adplacement_email",
    ),
    (
        "mspp_pollplacement",
        "regardingobjectid_mspp_pollplacement_email",
    ),
    (
        "mspp_publishingstatetransitionrule",
        "regardingobjectid_mspp_publishingstatetransitionrule_email",
    ),
    ("mspp_redirect", "regardingobjectid_mspp_redirect_email"),
    ("mspp_shortcut", "regardingobjectid_mspp_shortcut_email"),
    ("mspp_website", "regardingobjectid_mspp_website_email"),
    ("opportunity", "regardingobjectid_opportunity_email"),
    ("incident", "regardingobjectid_incident_email"),
    ("lead", "regardingobjectid_lead_email"),
    ("quote", "regardingobjectid_quote_email"),
    ("salesorder", "regardingobjectid_salesorder_email"),
    ("invoice", "regardingobjectid_invoice_email"),
    ("contract", "regardingobjectid_contract_email"),
    ("campaign", "regardingobjectid_campaign_email"),
    (
        "campaignactivity",
        "regardingobjectid_campaignactivity_email",
    ),
    ("bulkoperation", "regardingobjectid_bulkoperation_email"),
    ("entitlement", "regardingobjectid_entitlement_email"),
    (
        "entitlementtemplate",
        "regardingobjectid_entitlementtemplate_email",
    ),
    ("site", "regardingobjectid_site_email"),
    (
        "bookableresourcebooking",
        "regardingobjectid_bookableresourcebooking_email",
    ),
    (
        "bookableresourcebookingheader",
        "regardingobjectid_bookableresourcebookingheader_email",
    ),
    (
        "msdyn_customerasset",
        "regardingobjectid_msdyn_customerasset_email",
    ),
    ("msdyn_postalbum", "regardingobjectid_msdyn_postalbum_email"),
    (
        "msdyn_salessuggestion",
        "regardingobjectid_msdyn_salessuggestion_email",
    ),
    ("msdyn_swarm", "regardingobjectid_msdyn_swarm_email"),
];

/// Other single-valued navigation properties of email the fake accepts in a body.
pub const EMAIL_OTHER_NAVS: &[&str] = &["ownerid", "parentactivityid"];

/// email's collection-valued navigation properties (names are case-sensitive). Only the
/// activity parties may be deep-inserted here.
pub const EMAIL_COLLECTIONS: &[&str] = &[
    "email_activity_parties",
    "email_activity_mime_attachment",
    "Email_Annotation",
    "email_connections1",
    "email_connections2",
    "Email_QueueItem",
    "email_email_parentactivityid",
];

/// The activity party columns a body may carry.
pub const PARTY_COLUMNS: &[Column] = &[
    rw(
        "participationtypemask",
        Kind::Choice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    ),
    rw("addressused", Kind::Text(320)),
    rw("unresolvedpartyname", Kind::Text(200)),
    rw("effort", Kind::Double),
    rw("exchangeentryid", Kind::Text(1024)),
    ro("addressusedemailcolumnnumber", Kind::Int),
    ro("ispartydeleted", Kind::Bool),
    ro("donotemail", Kind::Bool),
];

/// activityparty → party table: the navigation property of `partyid`. `partyid_lead` comes
/// with Dynamics 365 (not in the base reference; assumed to follow the pattern).
pub const PARTY_NAVS: &[(&str, &str)] = &[
    ("systemuser", "partyid_systemuser"),
    ("contact", "partyid_contact"),
    ("account", "partyid_account"),
    ("queue", "partyid_queue"),
    ("knowledgearticle", "partyid_knowledgearticle"),
    ("bulkoperation", "partyid_bulkoperation"),
    ("lead", "partyid_lead"),
];

/// Participation types an email accepts: sender, to, cc, bcc.
pub const EMAIL_PARTICIPATION: &[i64] = &[1, 2, 3, 4];

/// The tables each participation may point at. `from` is documented as queue or systemuser
/// only; tracked incoming mail resolves its sender to a contact, account or lead in
/// practice, so those are accepted too (UNVERIFIED against the reference).
pub fn party_targets(mask: i64) -> &'static [&'static str] {
    match mask {
        1 => &["queue", "systemuser", "contact", "account", "lead"],
        _ => &[
            "account",
            "contact",
            "knowledgearticle",
            "queue",
            "systemuser",
            "lead",
        ],
    }
}

/// The attachment columns (activitymimeattachment reference).
pub const ATTACHMENT_COLUMNS: &[Column] = &[
    rw("body", Kind::Text(MEMO)),
    rw("filename", Kind::Text(255)),
    rw("mimetype", Kind::Text(256)),
    rw("subject", Kind::Text(2000)),
    rw("objecttypecode", Kind::Text(64)),
    rw("attachmentcontentid", Kind::Text(256)),
    rw("attachmentnumber", Kind::Int),
    ro("filesize", Kind::Int),
    ro("_objectid_value", Kind::Guid),
];

/// activitymimeattachment's single-valued navigation properties a body may bind. `objectid`
/// targets the activity (`objectid_activitypointer`, bound to `/activitypointers(id)`, with
/// `objecttypecode` naming the activity's table) or a template; there is no `objectid_email`.
pub const ATTACHMENT_NAVS: &[&str] = &["objectid_activitypointer", "objectid_template"];

/// `organization.maxuploadfilesize` by default: 5 MB, measured on the Base64 text.
pub const MAX_UPLOAD: usize = 5_242_880;

/// A table the fake holds rows of.
#[derive(Clone, Debug)]
pub struct TableDef {
    pub logical: String,
    pub set: String,
    pub primary_id: String,
    /// The entity part of its privilege names (`prvAppendTo{privilege}`).
    pub privilege: String,
    pub otc: u32,
    /// Its columns, for `$select`/`$filter` and stored rows.
    pub columns: Vec<&'static str>,
}

fn table(
    logical: &str,
    set: &str,
    privilege: &str,
    otc: u32,
    columns: &[&'static str],
) -> TableDef {
    TableDef {
        logical: logical.into(),
        set: set.into(),
        primary_id: format!("{logical}id"),
        privilege: privilege.into(),
        otc,
        columns: columns.to_vec(),
    }
}

/// The tables of a fresh organisation, with their entity set names (EntityDefinitions) and
/// object type codes.
pub fn standard_tables() -> Vec<TableDef> {
    let mut email = table("email", "emails", "Activity", 4202, &[]);
    email.primary_id = "activityid".into();
    email.columns = EMAIL_COLUMNS.iter().map(|c| c.name).collect();
    let mut attachment = table(
        "activitymimeattachment",
        "activitymimeattachments",
        "Activity",
        1001,
        &[],
    );
    attachment.columns = ATTACHMENT_COLUMNS.iter().map(|c| c.name).collect();
    attachment.columns.push("activitymimeattachmentid");
    let mut party = table("activityparty", "activityparties", "Activity", 135, &[]);
    party.columns = PARTY_COLUMNS.iter().map(|c| c.name).collect();
    party.columns.push("activitypartyid");
    let person = &[
        "fullname",
        "emailaddress1",
        "emailaddress2",
        "emailaddress3",
        "statecode",
    ];
    let named = &[
        "name",
        "emailaddress1",
        "emailaddress2",
        "emailaddress3",
        "statecode",
    ];
    vec![
        email,
        attachment,
        party,
        table(
            "systemuser",
            "systemusers",
            "User",
            8,
            &[
                "systemuserid",
                "fullname",
                "internalemailaddress",
                "azureactivedirectoryobjectid",
                "isdisabled",
                "domainname",
                "applicationid",
            ],
        ),
        table(
            "contact",
            "contacts",
            "Contact",
            2,
            &with_id("contactid", person),
        ),
        table(
            "account",
            "accounts",
            "Account",
            1,
            &with_id("accountid", named),
        ),
        table("lead", "leads", "Lead", 4, &with_id("leadid", person)),
        table(
            "opportunity",
            "opportunities",
            "Opportunity",
            3,
            &["opportunityid", "name", "statecode"],
        ),
        table(
            "incident",
            "incidents",
            "Incident",
            112,
            &["incidentid", "title", "statecode"],
        ),
        table(
            "queue",
            "queues",
            "Queue",
            2020,
            &["queueid", "name", "emailaddress", "statecode"],
        ),
    ]
}

fn with_id(id: &'static str, rest: &[&'static str]) -> Vec<&'static str> {
    std::iter::once(id).chain(rest.iter().copied()).collect()
}

/// The activity privileges (email's privileges are the Activity ones).
pub const ACTIVITY_PRIVILEGES: &[&str] = &[
    "prvCreateActivity",
    "prvReadActivity",
    "prvWriteActivity",
    "prvAppendActivity",
    "prvAppendToActivity",
];

/// What a salesperson-like role grants: the activity privileges, read on people and
/// customers, append-to on every regarding table of a fresh organisation.
pub fn salesperson() -> Vec<String> {
    let mut out: Vec<String> = ACTIVITY_PRIVILEGES.iter().map(|p| p.to_string()).collect();
    for t in ["Account", "Contact", "Lead", "Opportunity", "Incident"] {
        out.push(format!("prvRead{t}"));
        out.push(format!("prvAppendTo{t}"));
    }
    out.push("prvReadUser".into());
    out.push("prvReadQueue".into());
    out
}

/// The application user's role: a salesperson's, metadata read, and Delegate.
pub fn application_role() -> Vec<String> {
    let mut out = salesperson();
    for p in [
        "prvReadEntity",
        "prvReadAttribute",
        "prvReadRelationship",
        "prvActOnBehalfOfAnotherUser",
    ] {
        out.push(p.into());
    }
    out
}
