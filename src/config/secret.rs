//! Secrets are never in the config file, only references to an environment variable or a
//! file. They are read once, when the settings are built ([`super::settings`]), into
//! [`SecretString`]s that never print; `check-config` reports each one.

use super::{Auth, Check, Config, Error, Sink};
use secrecy::SecretString;
use std::path::Path;

/// Reads a secret named by `field` (for messages) from its environment variable or file.
pub fn resolve_secret(
    field: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<SecretString, Error> {
    let fail = |message: String| Error::Secret {
        field: field.to_owned(),
        message,
    };
    match (env, file) {
        (Some(var), _) => std::env::var(var).map(SecretString::from).map_err(|_| {
            fail(format!(
                "environment variable {var} is not set; export it or use a file"
            ))
        }),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| SecretString::from(s.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display()))),
        (None, None) => Err(fail("no secret configured".into())),
    }
}

/// One check per secret the config names: it resolves, or what is wrong.
pub fn secret_checks(config: &Config) -> Vec<Check> {
    let mut refs: Vec<(String, Option<&str>, Option<&Path>)> = Vec::new();
    match &config.exchange.auth {
        Auth::Basic {
            password_env,
            password_file,
            ..
        }
        | Auth::Ntlm {
            password_env,
            password_file,
            ..
        } => refs.push((
            "exchange.auth.password".into(),
            password_env.as_deref(),
            password_file.as_deref(),
        )),
        Auth::Oauth {
            client_secret_env,
            client_secret_file,
            ..
        } => refs.push((
            "exchange.auth.client_secret".into(),
            client_secret_env.as_deref(),
            client_secret_file.as_deref(),
        )),
    }
    match &config.sink {
        Sink::Webhook {
            secret_env,
            secret_file,
            ..
        } => refs.push((
            "sink.secret".into(),
            secret_env.as_deref(),
            secret_file.as_deref(),
        )),
        Sink::Dynamics {
            client_secret_env,
            client_secret_file,
            ..
        } => refs.push((
            "sink.client_secret".into(),
            client_secret_env.as_deref(),
            client_secret_file.as_deref(),
        )),
        Sink::Jsonl { .. } => {}
    }
    if config.admin.token_env.is_some() || config.admin.token_file.is_some() {
        refs.push((
            "admin.token".into(),
            config.admin.token_env.as_deref(),
            config.admin.token_file.as_deref(),
        ));
    }
    refs.into_iter()
        .map(|(field, env, file)| {
            let named = if env.is_some() {
                format!("{field}_env")
            } else {
                format!("{field}_file")
            };
            match resolve_secret(&named, env, file) {
                Ok(_) => Check::Ok(format!("{named}: the secret resolves")),
                Err(e) => Check::Fail(e.to_string()),
            }
        })
        .collect()
}
