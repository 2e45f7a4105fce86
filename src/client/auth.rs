//! Authentication of EWS calls: Basic (over TLS; plain http only to loopback), OAuth 2.0
//! client credentials (bearer token from [`crate::http::oauth`], refreshed once on 401 and the call
//! retried once) and, behind the `ntlm` feature, NTLM — which authenticates a connection, not
//! a request, so it runs on its own HTTP/1.1 clients of one connection each, one call at a
//! time per connection, and redoes the handshake whenever a connection answers 401.
//! Owns credentials at run time; no secret appears in Debug output or logs.

use super::http::Reply;
use super::{Call, Error};
use crate::http::oauth::TokenSource;
use crate::http::{Timeouts, builder, sensitive};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::RequestBuilder;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;
use url::Url;

/// How foldertrack proves who it is. Debug shows no secret.
#[derive(Clone, Debug)]
pub enum Auth {
    /// HTTP Basic: on-premises only, over TLS.
    Basic {
        username: String,
        password: SecretString,
    },
    /// OAuth 2.0 client credentials (Exchange Online app-only, `full_access_as_app`).
    OAuth {
        token_url: Url,
        client_id: String,
        client_secret: SecretString,
        /// `https://outlook.office365.com/.default` for Exchange Online.
        scope: String,
    },
    /// NTLM (on-premises); needs a build with the `ntlm` feature.
    Ntlm {
        domain: String,
        username: String,
        password: SecretString,
    },
}

/// Refuses to send credentials over plain http to anything but loopback.
pub(crate) fn require_tls(url: &Url) -> Result<(), Error> {
    if url.scheme() == "https" || (url.scheme() == "http" && crate::http::is_loopback(url)) {
        Ok(())
    } else {
        Err(Error::InsecureUrl { url: url.clone() })
    }
}

/// Credentials ready to use, with the HTTP client(s) they go with.
pub(crate) enum Authenticator {
    Basic {
        http: reqwest::Client,
        header: SecretString,
    },
    OAuth {
        http: reqwest::Client,
        tokens: TokenSource,
    },
    #[cfg(feature = "ntlm")]
    Ntlm(ntlm::Pool),
}

impl Authenticator {
    pub(crate) fn new(
        auth: &Auth,
        timeouts: &Timeouts,
        extra_roots: Option<&Path>,
        connections: usize,
    ) -> Result<Self, Error> {
        let shared = || {
            builder(timeouts, extra_roots)?
                .build()
                .map_err(|e| Error::Http(crate::http::Error::Build(e)))
        };
        match auth {
            Auth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose_secret());
                Ok(Self::Basic {
                    http: shared()?,
                    header: SecretString::from(format!("Basic {}", BASE64.encode(pair))),
                })
            }
            Auth::OAuth {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                require_tls(token_url)?;
                let http = shared()?;
                let tokens = TokenSource::new(
                    token_url.clone(),
                    client_id.clone(),
                    client_secret.clone(),
                    scope.clone(),
                    http.clone(),
                );
                Ok(Self::OAuth { http, tokens })
            }
            #[cfg(feature = "ntlm")]
            Auth::Ntlm {
                domain,
                username,
                password,
            } => Ok(Self::Ntlm(ntlm::Pool::new(
                ntlm::Identity {
                    domain: domain.clone(),
                    username: username.clone(),
                    password: password.clone(),
                },
                timeouts,
                extra_roots,
                connections,
            )?)),
            #[cfg(not(feature = "ntlm"))]
            Auth::Ntlm { .. } => {
                let _ = connections;
                Err(Error::NtlmNotBuilt)
            }
        }
    }

    /// The application permissions of the token this sends (its `roles` claim); `None` when
    /// it sends no token or one that is not a readable JWT.
    pub(crate) async fn roles(&self) -> Result<Option<Vec<String>>, crate::http::oauth::Error> {
        match self {
            Self::OAuth { tokens, .. } => {
                Ok(crate::http::oauth::roles(tokens.token().await?.secret()))
            }
            _ => Ok(None),
        }
    }

    /// Sends the request `build` makes, authenticated, and reads the answer to its end.
    /// OAuth: on 401 the token is refreshed once and the call sent once more.
    pub(crate) async fn send(
        &self,
        call: &Call,
        limit: u64,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Reply, Error> {
        match self {
            Self::Basic { http, header } => {
                exchange(
                    call,
                    limit,
                    with_authorization(build(http), header.expose_secret()),
                )
                .await
            }
            Self::OAuth { http, tokens } => {
                let send = |request| exchange(call, limit, request);
                let refused = |reply: &Reply| reply.status == reqwest::StatusCode::UNAUTHORIZED;
                with_bearer(call, tokens, |t| bearer(build(http), t), send, refused).await
            }
            #[cfg(feature = "ntlm")]
            Self::Ntlm(pool) => pool.send(call, limit, build).await,
        }
    }

    /// Sends the request `build` makes, authenticated, and hands back the answer unread: a
    /// streaming body is read as it arrives. NTLM authenticates a connection, not a request,
    /// and is not offered for streams.
    pub(crate) async fn open(
        &self,
        call: &Call,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let send = |request: RequestBuilder| async move {
            request.send().await.map_err(|e| Error::transport(call, e))
        };
        match self {
            Self::Basic { http, header } => {
                send(with_authorization(build(http), header.expose_secret())).await
            }
            Self::OAuth { http, tokens } => {
                let refused =
                    |r: &reqwest::Response| r.status() == reqwest::StatusCode::UNAUTHORIZED;
                with_bearer(call, tokens, |t| bearer(build(http), t), send, refused).await
            }
            #[cfg(feature = "ntlm")]
            Self::Ntlm(_) => Err(Error::Ntlm {
                call: call.clone(),
                reason: "streaming notifications need basic or oauth authentication".into(),
            }),
        }
    }
}

/// Sends with the cached OAuth token; when the server refuses it (401), refreshes the token
/// once and sends once more.
async fn with_bearer<T, F: std::future::Future<Output = Result<T, Error>>>(
    call: &Call,
    tokens: &TokenSource,
    request: impl Fn(&str) -> RequestBuilder,
    send: impl Fn(RequestBuilder) -> F,
    refused: impl Fn(&T) -> bool,
) -> Result<T, Error> {
    let token_error = |source| Error::Token {
        call: call.clone(),
        source: Box::new(source),
    };
    let token = tokens.token().await.map_err(token_error)?;
    let answer = send(request(token.secret())).await?;
    if !refused(&answer) {
        return Ok(answer);
    }
    let fresh = tokens.refresh(&token).await.map_err(token_error)?;
    send(request(fresh.secret())).await
}

fn bearer(request: RequestBuilder, token: &str) -> RequestBuilder {
    with_authorization(request, &format!("Bearer {token}"))
}

fn with_authorization(request: RequestBuilder, value: &str) -> RequestBuilder {
    match sensitive(value) {
        Some(v) => request.header(AUTHORIZATION, v),
        // Not a valid header value (a control character in a password): send none, so the
        // server answers 401 and the error names the credentials.
        None => request,
    }
}

/// Sends and reads the whole answer (at most `limit` bytes), mapping transport failures to
/// errors with the call.
pub(crate) async fn exchange(
    call: &Call,
    limit: u64,
    request: RequestBuilder,
) -> Result<Reply, Error> {
    let response = request
        .send()
        .await
        .map_err(|e| Error::transport(call, e))?;
    Reply::read(response, call, limit).await
}

#[cfg(feature = "ntlm")]
pub(crate) mod ntlm {
    //! The NTLM handshake (negotiate → challenge → authenticate) over HTTP, on connections
    //! kept one per client so the authenticated connection is the one reused.

    use super::*;
    use ntlmclient::{Credentials, Flags, Message, NegotiateMessage};
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
    use tokio::sync::Mutex;

    const WORKSTATION: &str = "FOLDERTRACK";

    /// The account NTLM proves.
    #[derive(Clone)]
    pub(crate) struct Identity {
        pub domain: String,
        pub username: String,
        pub password: SecretString,
    }

    /// One HTTP/1.1 client holding at most one idle connection, and whether that connection
    /// has been authenticated.
    struct Connection {
        http: reqwest::Client,
        authenticated: bool,
    }

    /// As many connections as the call gate lets calls run at once.
    pub(crate) struct Pool {
        identity: Identity,
        connections: Vec<Mutex<Connection>>,
        next: std::sync::atomic::AtomicUsize,
    }

    impl Pool {
        pub(crate) fn new(
            identity: Identity,
            timeouts: &Timeouts,
            extra_roots: Option<&Path>,
            connections: usize,
        ) -> Result<Self, Error> {
            let connections = (0..connections.max(1))
                .map(|_| {
                    let http = builder(timeouts, extra_roots)?
                        // IIS does Windows authentication over HTTP/1.1 only.
                        .http1_only()
                        .pool_max_idle_per_host(1)
                        .build()
                        .map_err(|e| Error::Http(crate::http::Error::Build(e)))?;
                    Ok(Mutex::new(Connection {
                        http,
                        authenticated: false,
                    }))
                })
                .collect::<Result<_, Error>>()?;
            Ok(Self {
                identity,
                connections,
                next: Default::default(),
            })
        }

        pub(crate) async fn send(
            &self,
            call: &Call,
            limit: u64,
            build: impl Fn(&reqwest::Client) -> RequestBuilder,
        ) -> Result<Reply, Error> {
            // A free connection if there is one, else wait for the next in turn.
            let mut conn = match self.connections.iter().find_map(|c| c.try_lock().ok()) {
                Some(conn) => conn,
                None => {
                    let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.connections[n % self.connections.len()].lock().await
                }
            };
            if conn.authenticated {
                let reply = exchange(call, limit, build(&conn.http)).await?;
                if reply.status != StatusCode::UNAUTHORIZED {
                    return Ok(reply);
                }
                // A new connection, or the server forgot this one: authenticate again.
                conn.authenticated = false;
            }
            let negotiate = with_authorization(build(&conn.http), &negotiate_header(call)?);
            let challenge = exchange(call, limit, negotiate).await?;
            if challenge.status != StatusCode::UNAUTHORIZED {
                // Anonymous access or an error unrelated to authentication.
                return Ok(challenge);
            }
            let answer = authenticate_header(&challenge.headers, &self.identity, call)?;
            let reply =
                exchange(call, limit, with_authorization(build(&conn.http), &answer)).await?;
            conn.authenticated = reply.status != StatusCode::UNAUTHORIZED;
            Ok(reply)
        }
    }

    fn failed(call: &Call, reason: impl Into<String>) -> Error {
        Error::Ntlm {
            call: call.clone(),
            reason: reason.into(),
        }
    }

    /// `NTLM <negotiate message>`: the first leg.
    pub(crate) fn negotiate_header(call: &Call) -> Result<String, Error> {
        let message = Message::Negotiate(NegotiateMessage {
            flags: Flags::NEGOTIATE_UNICODE
                | Flags::REQUEST_TARGET
                | Flags::NEGOTIATE_NTLM
                | Flags::NEGOTIATE_WORKSTATION_SUPPLIED,
            supplied_domain: String::new(),
            supplied_workstation: WORKSTATION.to_owned(),
            os_version: Default::default(),
        });
        let bytes = message
            .to_bytes()
            .map_err(|e| failed(call, format!("cannot encode the negotiate message: {e:?}")))?;
        Ok(format!("NTLM {}", BASE64.encode(bytes)))
    }

    /// `NTLM <authenticate message>`: the answer to the server's challenge in `headers`.
    pub(crate) fn authenticate_header(
        headers: &HeaderMap,
        identity: &Identity,
        call: &Call,
    ) -> Result<String, Error> {
        let encoded = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let (scheme, data) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("NTLM").then(|| data.trim())
            })
            .ok_or_else(|| {
                failed(
                    call,
                    "the server offered no NTLM challenge; check that NTLM is enabled for EWS",
                )
            })?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| failed(call, "the NTLM challenge is not base64"))?;
        let Ok(Message::Challenge(challenge)) = Message::try_from(bytes.as_slice()) else {
            return Err(failed(call, "the server's NTLM message is not a challenge"));
        };
        let target_info: Vec<u8> = challenge
            .target_information
            .iter()
            .flat_map(|entry| entry.to_bytes())
            .collect();
        let credentials = Credentials {
            username: identity.username.clone(),
            password: identity.password.expose_secret().to_owned(),
            domain: identity.domain.clone(),
        };
        let response = ntlmclient::respond_challenge_ntlm_v2(
            challenge.challenge,
            &target_info,
            ntlmclient::get_ntlm_time(),
            &credentials,
        );
        let message = response.to_message(
            &credentials,
            WORKSTATION,
            Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_NTLM,
        );
        let bytes = message.to_bytes().map_err(|e| {
            failed(
                call,
                format!("cannot encode the authenticate message: {e:?}"),
            )
        })?;
        Ok(format!("NTLM {}", BASE64.encode(bytes)))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::ews::Mailbox;
        use ntlmclient::{ChallengeMessage, TargetInfoEntry, TargetInfoType};
        use reqwest::header::HeaderValue;

        fn call() -> Call {
            Call {
                mailbox: Mailbox::from("alice@example.com"),
                operation: "GetFolder",
            }
        }

        fn decode(header: &str) -> Message {
            let data = header.strip_prefix("NTLM ").unwrap();
            Message::try_from(BASE64.decode(data).unwrap().as_slice()).unwrap()
        }

        fn identity() -> Identity {
            Identity {
                domain: "CORP".into(),
                username: "svc-tracking".into(),
                password: SecretString::from("s3cret!"),
            }
        }

        fn challenge_headers() -> HeaderMap {
            let challenge = Message::Challenge(ChallengeMessage {
                target_name: "CORP".into(),
                flags: Flags::NEGOTIATE_UNICODE | Flags::NEGOTIATE_NTLM,
                challenge: [1, 2, 3, 4, 5, 6, 7, 8],
                context: (0, 0),
                target_information: vec![TargetInfoEntry::from_string(
                    TargetInfoType::NtDomain,
                    "CORP",
                )],
                os_version: Default::default(),
            });
            let mut h = HeaderMap::new();
            h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
            let value = format!("NTLM {}", BASE64.encode(challenge.to_bytes().unwrap()));
            h.append(WWW_AUTHENTICATE, HeaderValue::from_str(&value).unwrap());
            h
        }

        #[test]
        fn the_first_leg_is_a_negotiate_message() {
            let Message::Negotiate(n) = decode(&negotiate_header(&call()).unwrap()) else {
                panic!("not a negotiate message");
            };
            assert!(n.flags.contains(Flags::NEGOTIATE_NTLM));
            assert_eq!(n.supplied_workstation, WORKSTATION);
        }

        #[test]
        fn the_challenge_is_answered_for_the_configured_account() {
            let header = authenticate_header(&challenge_headers(), &identity(), &call()).unwrap();
            let Message::Authenticate(a) = decode(&header) else {
                panic!("not an authenticate message");
            };
            assert_eq!(a.user_name, "svc-tracking");
            assert_eq!(a.domain_name, "CORP");
            // NTLMv2: a 16-byte proof followed by the client blob, which embeds the target info.
            assert!(a.ntlm_response.len() > 16 + 28);
            assert!(!header.contains("s3cret"));
        }

        #[test]
        fn no_or_garbled_challenge_is_a_clear_error() {
            let mut none = HeaderMap::new();
            none.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"x\""),
            );
            let err = authenticate_header(&none, &identity(), &call()).unwrap_err();
            assert!(err.to_string().contains("no NTLM challenge"), "{err}");

            let mut garbled = HeaderMap::new();
            garbled.insert(WWW_AUTHENTICATE, HeaderValue::from_static("NTLM !!!"));
            let err = authenticate_header(&garbled, &identity(), &call()).unwrap_err();
            assert!(err.to_string().contains("not base64"), "{err}");

            let negotiate = negotiate_header(&call()).unwrap();
            let mut wrong = HeaderMap::new();
            wrong.insert(WWW_AUTHENTICATE, HeaderValue::from_str(&negotiate).unwrap());
            let err = authenticate_header(&wrong, &identity(), &call()).unwrap_err();
            assert!(err.to_string().contains("not a challenge"), "{err}");
        }
    }
}
