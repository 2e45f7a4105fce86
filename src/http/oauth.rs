//! OAuth 2.0 client credentials (app-only): one token per (endpoint, client, scope), fetched
//! from the token endpoint, cached until shortly before it expires, refreshed by one caller
//! while the others wait for that same refresh. Used by the EWS client (Exchange Online) and
//! the Dynamics 365 sink. Owns the token cache only; it never logs a secret or a token.
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

/// A token is renewed this long before it expires (tokens from Entra live about an hour).
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(300);

/// A tenant's Entra ID token endpoint (OAuth 2.0 v2), the default for every client-credentials
/// sign-in foldertrack makes.
pub fn tenant_token_url(tenant_id: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token")
}

/// The `roles` claim of an access token (a JWT): the application permissions it carries, for a
/// diagnosis only — the signature is not checked. `None` when the token is not a JWT whose
/// payload can be read; an empty list when it has no `roles`.
pub fn roles(token: &str) -> Option<Vec<String>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        #[serde(default)]
        roles: Vec<String>,
    }
    serde_json::from_slice::<Claims>(&bytes)
        .ok()
        .map(|c| c.roles)
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "oauth token endpoint {}: {source}; check the token URL and that it is reachable",
        super::redact(url)
    )]
    Request {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "oauth token endpoint {} refused the client credentials (HTTP {status}{}); \
         check the client id, the client secret and the scope",
        super::redact(url),
        .error.as_deref().map(|e| format!(", {e}")).unwrap_or_default()
    )]
    Rejected {
        url: Url,
        status: u16,
        /// The OAuth `error` code (`invalid_client`, …), never the rest of the body.
        error: Option<String>,
    },
    #[error(
        "oauth token endpoint {} answered HTTP {status} without a token; \
         check that the token URL is the tenant's OAuth 2.0 token endpoint",
        super::redact(url)
    )]
    NoToken { url: Url, status: u16 },
    #[error("oauth token endpoint {}: {source}", super::redact(url))]
    Unreadable {
        url: Url,
        #[source]
        source: super::ReadError,
    },
}

/// The largest token answer read: a token answer is a few kilobytes.
const TOKEN_ANSWER_LIMIT: u64 = 1 << 20;

impl Error {
    /// True when the identity provider refused the credentials (retrying will not help).
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected { .. })
    }
}

/// A bearer token. Its Debug never shows the value.
#[derive(Clone)]
pub struct Token {
    value: SecretString,
    generation: u64,
}

impl Token {
    /// The value for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        self.value.expose_secret()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(generation {}, [REDACTED])", self.generation)
    }
}

/// Fetches and caches tokens for one client and scope. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    token_url: Url,
    client_id: String,
    secret: SecretString,
    scope: String,
    http: reqwest::Client,
    margin: Duration,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    token: Token,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
}

impl TokenSource {
    /// `http` should come from [`crate::http::client`].
    pub fn new(
        token_url: Url,
        client_id: impl Into<String>,
        secret: SecretString,
        scope: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                token_url,
                client_id: client_id.into(),
                secret,
                scope: scope.into(),
                http,
                margin: DEFAULT_MARGIN,
                cached: Mutex::new(None),
            }),
        }
    }

    /// A valid token: the cached one, or a new one when it is near its expiry. Concurrent
    /// callers share one request to the token endpoint.
    pub async fn token(&self) -> Result<Token, Error> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        self.fetch(&mut cached).await
    }

    /// The server refused `rejected` (HTTP 401): fetch a new token, unless another caller
    /// already replaced it, in which case that newer token is returned.
    pub async fn refresh(&self, rejected: &Token) -> Result<Token, Error> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.token.generation != rejected.generation)
        {
            return Ok(c.token.clone());
        }
        self.fetch(&mut cached).await
    }

    async fn fetch(&self, cached: &mut Option<Cached>) -> Result<Token, Error> {
        let inner = &self.inner;
        let url = &inner.token_url;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", inner.client_id.as_str()),
            ("client_secret", inner.secret.expose_secret()),
            ("scope", inner.scope.as_str()),
        ];
        let request_error = |source| Error::Request {
            url: url.clone(),
            source: super::redact_error(source),
        };
        let response = inner
            .http
            .post(url.clone())
            .form(&form)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        let body = super::read_capped(response, TOKEN_ANSWER_LIMIT)
            .await
            .map_err(|source| match source {
                super::ReadError::Body(e) => request_error(e),
                too_large => Error::Unreadable {
                    url: url.clone(),
                    source: too_large,
                },
            })?;
        let reply: Option<TokenReply> = serde_json::from_slice(&body).ok();
        let (token, expires_in) = match reply {
            Some(TokenReply {
                access_token: Some(token),
                expires_in,
                ..
            }) if status.is_success() => (token, expires_in.unwrap_or(3600)),
            Some(TokenReply { error, .. }) if status.is_client_error() => {
                return Err(Error::Rejected {
                    url: url.clone(),
                    status: status.as_u16(),
                    error,
                });
            }
            _ if status.is_client_error() => {
                return Err(Error::Rejected {
                    url: url.clone(),
                    status: status.as_u16(),
                    error: None,
                });
            }
            _ => {
                return Err(Error::NoToken {
                    url: url.clone(),
                    status: status.as_u16(),
                });
            }
        };
        let lifetime = Duration::from_secs(expires_in);
        // Short-lived tokens are renewed at half their life rather than never being cached.
        let margin = inner.margin.min(lifetime / 2);
        let generation = cached.as_ref().map_or(0, |c| c.token.generation + 1);
        let token = Token {
            value: SecretString::from(token),
            generation,
        };
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        tracing::debug!(token_url = %super::redact(url), expires_in, "oauth token fetched");
        Ok(token)
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.inner.token_url.as_str())
            .field("client_id", &self.inner.client_id)
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::roles;
    use base64::Engine as _;

    fn jwt(payload: &str, pad: bool) -> String {
        let engine = if pad {
            base64::engine::general_purpose::URL_SAFE
        } else {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
        };
        format!("eyJ0eXAiOiJKV1QifQ.{}.c2ln", engine.encode(payload))
    }

    #[test]
    fn the_roles_claim_is_read_from_the_payload_without_a_signature_check() {
        let both =
            r#"{"aud":"https://graph.microsoft.com","roles":["Mail.Read","Mail.ReadWrite"]}"#;
        assert_eq!(
            roles(&jwt(both, false)),
            Some(vec!["Mail.Read".into(), "Mail.ReadWrite".into()])
        );
        assert_eq!(
            roles(&jwt(both, true)),
            roles(&jwt(both, false)),
            "padding is tolerated"
        );
        assert_eq!(roles(&jwt(r#"{"aud":"x"}"#, false)), Some(vec![]));
        for opaque in ["", "sim-0123", "a.%%%.c", &jwt("not json", false)] {
            assert_eq!(roles(opaque), None, "{opaque}");
        }
    }
}
