//! JSON batching: up to [`super::MAX_BATCH`] requests in one `POST /$batch`, each with an id,
//! answered one by one with its own status, headers and body (a throttled item carries its own
//! `Retry-After`). URLs are relative to the version root; an item with a body names its
//! `Content-Type`. <https://learn.microsoft.com/graph/json-batching>

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One request inside a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    pub id: String,
    pub method: String,
    /// Relative to the version root: `/users/{m}/messages/{id}?$select=…`.
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

impl BatchItem {
    /// A GET, with the `Prefer` header every request carries.
    pub fn get(id: usize, url: String, prefer: &str) -> Self {
        Self {
            id: id.to_string(),
            method: "GET".into(),
            url,
            headers: BTreeMap::from([("Prefer".to_owned(), prefer.to_owned())]),
            body: None,
        }
    }

    /// A PATCH with a JSON body.
    pub fn patch(id: usize, url: String, prefer: &str, body: serde_json::Value) -> Self {
        Self {
            id: id.to_string(),
            method: "PATCH".into(),
            url,
            headers: BTreeMap::from([
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("Prefer".to_owned(), prefer.to_owned()),
            ]),
            body: Some(body),
        }
    }
}

/// `{"requests": [...]}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub requests: Vec<BatchItem>,
}

/// One answer inside a batch's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    pub id: String,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl BatchAnswer {
    /// A header of this item, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `{"responses": [...]}`, in any order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub responses: Vec<BatchAnswer>,
}
