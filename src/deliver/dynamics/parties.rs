//! Activity parties as server-side sync makes them: each sender and recipient address is
//! resolved to the first active row with that primary email address, trying the tables in the
//! configured order (by default user, contact, account, lead — the product's order for
//! senders), and bound through `partyid_<table>`; an address nothing matches stays as
//! `addressused` only. Resolutions (misses included) are kept for an hour.
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/activityparty-entity>

use super::api::{Api, ApiError, Call, literal, query_path};
use super::memo::Memo;
use super::metadata::{Metadata, rows};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a resolution is trusted.
const TTL: Duration = Duration::from_secs(3600);

/// The tables an address can resolve to: the email column matched and what "active" means.
pub const RESOLVABLE: &[(&str, &str, &str)] = &[
    ("systemuser", "internalemailaddress", "isdisabled eq false"),
    ("contact", "emailaddress1", "statecode eq 0"),
    ("account", "emailaddress1", "statecode eq 0"),
    ("lead", "emailaddress1", "statecode eq 0"),
    ("queue", "emailaddress", "statecode eq 0"),
];

/// The default order, the product's for a sender.
pub const DEFAULT_ORDER: &[&str] = &["systemuser", "contact", "account", "lead"];

/// `participationtypemask` of an email's activity parties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participation {
    Sender = 1,
    To = 2,
    Cc = 3,
}

/// A row an address resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub table: String,
    pub id: String,
}

/// Resolves addresses, with a cache.
pub struct Resolver {
    order: Vec<String>,
    cache: Memo<Option<Resolved>>,
}

impl Resolver {
    pub fn new(order: Vec<String>) -> Self {
        Self {
            order,
            cache: Memo::new(Some(TTL)),
        }
    }

    /// The tables tried, in order.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// The row `address` resolves to, if any.
    pub async fn resolve(
        &self,
        api: &Api,
        meta: &Metadata,
        address: &str,
    ) -> Result<Option<Resolved>, ApiError> {
        self.cache
            .get_or_try(&address.to_ascii_lowercase(), || {
                self.look_up(api, meta, address)
            })
            .await
    }

    async fn look_up(
        &self,
        api: &Api,
        meta: &Metadata,
        address: &str,
    ) -> Result<Option<Resolved>, ApiError> {
        for table in &self.order {
            let Some((_, column, active)) = RESOLVABLE.iter().find(|(t, ..)| t == table) else {
                continue;
            };
            let t = meta.table(api, table).await?;
            let filter = format!("{column} eq {} and {active}", literal(address));
            let path = query_path(&t.set, &t.primary_id, &filter, Some(1));
            let body = api.send(Call::get(path)).await?.body;
            if let Some(id) = rows(&body).next().and_then(|r| r[&t.primary_id].as_str()) {
                return Ok(Some(Resolved {
                    table: table.clone(),
                    id: id.to_owned(),
                }));
            }
        }
        Ok(None)
    }

    /// Forgets every resolution (a bound row was deleted meanwhile).
    pub fn forget(&self) {
        self.cache.clear();
    }

    /// The deep-inserted activity parties of an email: resolved rows bound, the address
    /// always kept as `addressused`.
    pub async fn parties(
        &self,
        api: &Api,
        meta: &Metadata,
        addresses: &[(Participation, &str)],
    ) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::with_capacity(addresses.len());
        for (kind, address) in addresses {
            let mut party = json!({"participationtypemask": *kind as u8, "addressused": address});
            if let Some(r) = self.resolve(api, meta, address).await?
                && let Some(nav) = meta.party_nav(api, &r.table).await?
            {
                let set = meta.table(api, &r.table).await?.set;
                party[format!("{nav}@odata.bind")] = json!(format!("/{set}({})", r.id));
            }
            out.push(party);
        }
        Ok(out)
    }
}
