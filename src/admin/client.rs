//! The CLI's side of the admin API: status, track-now, items, retry and explain of a running
//! agent.

use super::StatusView;
use crate::deliver::explain::{Explanation, Query};
use crate::deliver::items::{ItemLine, ItemState};
use crate::store::handover::Handover;
use crate::watch::supervisor::SyncNow;
use secrecy::{ExposeSecret, SecretString};

/// A failed admin API call, said for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Http(#[from] crate::http::Error),
    #[error(
        "no running agent answers at {base} ({}); start one with `foldertrack run`",
        if source.is_connect() { "connection refused" } else { "no answer" }
    )]
    NotRunning {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the agent's answer is unreadable: {0}")]
    Unreadable(String),
    #[error("the agent answered HTTP {status}: {message}")]
    Refused { status: u16, message: String },
}

/// The CLI's side of the admin API: status, track-now, items and retry of a running agent.
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
}

impl AdminClient {
    /// `addr` is the agent's bound address (host:port).
    pub fn new(addr: &str, token: Option<SecretString>) -> Result<Self, ClientError> {
        let http = crate::http::client(&crate::http::Timeouts {
            connect: std::time::Duration::from_secs(3),
            request: std::time::Duration::from_secs(60),
        })?;
        Ok(Self {
            http,
            base: format!("http://{addr}"),
            token,
        })
    }

    /// The agent's base URL (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let text = self.text(request).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Unreadable(e.to_string()))
    }

    /// The body of a successful answer; a refusal carries the problem's message.
    async fn text(&self, request: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let request = match &self.token {
            Some(t) => request.bearer_auth(t.expose_secret()),
            None => request,
        };
        let answer = request
            .send()
            .await
            .map_err(|source| ClientError::NotRunning {
                base: self.base.clone(),
                source,
            })?;
        let status = answer.status();
        let text = answer
            .text()
            .await
            .map_err(|e| ClientError::Unreadable(e.to_string()))?;
        if status.is_success() {
            Ok(text)
        } else {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            Err(ClientError::Refused {
                status: status.as_u16(),
                message,
            })
        }
    }

    /// Whether `/readyz` says ready: every owned mailbox synced once, no handover awaited.
    /// Cheap at any mailbox count, unlike [`AdminClient::status`].
    pub async fn ready(&self) -> Result<bool, ClientError> {
        match self
            .text(self.http.get(format!("{}/readyz", self.base)))
            .await
        {
            Ok(_) => Ok(true),
            Err(ClientError::Refused { status: 503, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A metric from `/metrics` (0 when absent): `name` alone sums its samples over all their
    /// labels; `name{label="value"}` picks one sample.
    pub async fn metric(&self, name: &str) -> Result<f64, ClientError> {
        let text = self
            .text(self.http.get(format!("{}/metrics", self.base)))
            .await?;
        Ok(metric_sum(&text, name))
    }

    pub async fn status(&self) -> Result<StatusView, ClientError> {
        self.call(self.http.get(format!("{}/v1/status", self.base)))
            .await
    }

    pub async fn sync_now(&self, address: &str) -> Result<SyncNow, ClientError> {
        let url = format!("{}/v1/mailboxes/{}/sync", self.base, address);
        self.call(self.http.post(url)).await
    }

    pub async fn items(&self, state: Option<ItemState>) -> Result<Vec<ItemLine>, ClientError> {
        let mut request = self.http.get(format!("{}/v1/items", self.base));
        if let Some(s) = state {
            request = request.query(&[("state", s)]);
        }
        self.call(request).await
    }

    pub async fn retry(
        &self,
        mailbox: Option<&str>,
        since: Option<jiff::Timestamp>,
        dry_run: bool,
    ) -> Result<Vec<ItemLine>, ClientError> {
        let mut query: Vec<(&str, String)> = vec![("dry_run", dry_run.to_string())];
        if let Some(m) = mailbox {
            query.push(("mailbox", m.to_owned()));
        }
        if let Some(t) = since {
            query.push(("since", t.to_string()));
        }
        self.call(
            self.http
                .post(format!("{}/v1/retry", self.base))
                .query(&query),
        )
        .await
    }

    /// The story of a mail or folder (`foldertrack explain`).
    pub async fn explain(&self, query: &Query) -> Result<Explanation, ClientError> {
        let params: Vec<(&str, &str)> = match query {
            Query::MessageId(id) => vec![("message_id", id)],
            Query::Subject(s) => vec![("subject", s)],
            Query::Folder { mailbox, folder } => vec![("mailbox", mailbox), ("folder", folder)],
        };
        let request = self.http.get(format!("{}/v1/explain", self.base));
        self.call(request.query(&params)).await
    }

    /// A mailbox's state from the agent that owned it (`handover export`).
    pub async fn handover_export(&self, address: &str) -> Result<Handover, ClientError> {
        let url = format!("{}/v1/handover/{}", self.base, address);
        self.call(self.http.get(url)).await
    }

    /// Gives a mailbox's state to the agent that owns it now (`handover import`); answers
    /// how many entries were written.
    pub async fn handover_import(
        &self,
        state: &Handover,
    ) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}/v1/handover", self.base);
        self.call(self.http.post(url).json(state)).await
    }
}

/// The sum of the samples named `name` (any labels) in Prometheus text.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_metric_is_summed_over_its_labels_and_not_confused_with_longer_names() {
        let text = "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3.5\nx_total_more 100\nx_totalish{a=\"1\"} 7\n";
        assert_eq!(super::metric_sum(text, "x_total"), 5.5);
        assert_eq!(super::metric_sum(text, "x_total{a=\"2\"}"), 3.5);
        assert_eq!(super::metric_sum("y 4\n", "y"), 4.0);
        assert_eq!(super::metric_sum("y 4\n", "z"), 0.0);
    }
}
