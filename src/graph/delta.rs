//! A delta page (`messages/delta`, `mailFolders/delta`): its entries, and the link to go on
//! with — `@odata.nextLink` while the round has more, `@odata.deltaLink` when it is complete.
//! Either link is opaque and carries the query of the round's first request; it is followed
//! verbatim. A removed object is `{"id", "@removed": {"reason"}}`. Each entry is read on its
//! own, so one entry the reader does not understand never loses the page.
//! <https://learn.microsoft.com/graph/delta-query-overview>

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One entry of a delta page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<T> {
    /// Created or updated (Graph does not say which): the object as it is now.
    Item(T),
    /// Gone from the collection: deleted, or moved out. `reason` is `deleted` or `changed`;
    /// both mean the object left (which one a move-out gets is not documented).
    Removed { id: String, reason: Option<String> },
    /// An entry that could not be read, with why; the rest of the page is intact.
    Unreadable(String),
}

/// A page, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub entries: Vec<Entry<T>>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

/// `@removed`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
}

/// Why a page as a whole could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the delta page is not readable JSON: {0}")]
pub struct Unreadable(#[source] pub serde_json::Error);

/// Reads a page; entries are read one by one.
pub fn read<T: DeserializeOwned>(body: &[u8]) -> Result<Page<T>, Unreadable> {
    let raw: Raw = serde_json::from_slice(body).map_err(Unreadable)?;
    let entries = raw
        .value
        .into_iter()
        .enumerate()
        .map(|(i, v)| entry(i, v))
        .collect();
    Ok(Page {
        entries,
        next_link: raw.next_link,
        delta_link: raw.delta_link,
    })
}

fn entry<T: DeserializeOwned>(index: usize, value: serde_json::Value) -> Entry<T> {
    if let Some(removed) = value.get("@removed") {
        let reason = serde_json::from_value::<Removed>(removed.clone())
            .ok()
            .and_then(|r| r.reason);
        return match value.get("id").and_then(|v| v.as_str()) {
            Some(id) => Entry::Removed {
                id: id.to_owned(),
                reason,
            },
            None => Entry::Unreadable(format!("entry {index}: a removal without an id")),
        };
    }
    match serde_json::from_value(value) {
        Ok(item) => Entry::Item(item),
        // The error names the field and the expected type, never a value.
        Err(e) => Entry::Unreadable(format!("entry {index}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::message::Message;

    #[test]
    fn a_page_keeps_its_good_entries_around_a_bad_one() {
        let body = br##"{
          "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(message)",
          "value": [
            {"id": "A", "subject": "one", "receivedDateTime": "2026-11-24T09:30:00Z"},
            {"id": 7, "subject": "an id that is a number"},
            {"@odata.type": "#microsoft.graph.message", "id": "B", "@removed": {"reason": "deleted"}},
            {"id": "C", "@removed": {}}
          ],
          "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/a/mailFolders/x/messages/delta?$skiptoken=abc"
        }"##;
        let page: Page<Message> = read(body).unwrap();
        assert!(matches!(&page.entries[0], Entry::Item(m) if m.id == "A"));
        assert!(matches!(&page.entries[1], Entry::Unreadable(why) if why.starts_with("entry 1")));
        assert_eq!(
            page.entries[2],
            Entry::Removed {
                id: "B".into(),
                reason: Some("deleted".into())
            }
        );
        assert_eq!(
            page.entries[3],
            Entry::Removed {
                id: "C".into(),
                reason: None
            }
        );
        assert!(page.next_link.unwrap().contains("$skiptoken"));
        assert_eq!(page.delta_link, None);
        assert!(read::<Message>(b"{\"value\": 3}").is_err());
    }
}
