//! Secrets are never in the config file, only references to an environment variable or a
//! file. They are read once, when the settings are built ([`super::settings`]), into
//! [`SecretString`]s that never print; `check-config` reports each one. An empty secret is
//! refused (an empty admin token would switch authentication off), an admin token shorter
//! than [`MIN_ADMIN_TOKEN`] too, and a secret file other users can read gets a warning.

use super::{Auth, Check, Config, Error, Sink};
use secrecy::SecretString;
use std::path::Path;

/// The shortest admin token accepted, in bytes: long enough that guessing it over the network
/// is hopeless (`openssl rand -hex 16` makes 32).
pub const MIN_ADMIN_TOKEN: usize = 16;

/// Reads a secret named by `field` (for messages) from its environment variable or file.
pub fn resolve_secret(
    field: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<SecretString, Error> {
    read_secret(field, env, file, 1).map(|(secret, _)| secret)
}

/// Reads the admin token, refusing an empty or short one.
pub fn resolve_admin_token(env: Option<&str>, file: Option<&Path>) -> Result<SecretString, Error> {
    read_secret("admin.token", env, file, MIN_ADMIN_TOKEN).map(|(secret, _)| secret)
}

/// The secret, at least `min_len` bytes long (spaces aside), and a warning when its file is
/// readable by every user.
fn read_secret(
    field: &str,
    env: Option<&str>,
    file: Option<&Path>,
    min_len: usize,
) -> Result<(SecretString, Option<String>), Error> {
    let fail = |message: String| Error::Secret {
        field: field.to_owned(),
        message,
    };
    let (text, warning) = match (env, file) {
        (Some(var), _) => (
            std::env::var(var).map_err(|_| {
                fail(format!(
                    "environment variable {var} is not set; export it or use a file"
                ))
            })?,
            None,
        ),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
            (
                text.trim_end_matches(['\r', '\n']).to_owned(),
                world_readable(path),
            )
        }
        (None, None) => return Err(fail("no secret configured".into())),
    };
    if text.trim().is_empty() {
        let source = match (env, file) {
            (Some(var), _) => format!("environment variable {var}"),
            (_, Some(path)) => path.display().to_string(),
            _ => unreachable!("one source is set"),
        };
        return Err(fail(format!("{source} is empty; put the secret in it")));
    }
    if text.trim().len() < min_len {
        return Err(fail(format!(
            "the secret is {} bytes long; use at least {min_len} (e.g. `openssl rand -hex 16`)",
            text.trim().len()
        )));
    }
    if let Some(w) = &warning {
        tracing::warn!(event = "secret_file_readable", field, warning = %w);
    }
    Ok((SecretString::from(text), warning))
}

/// A warning when other users may read the file.
fn world_readable(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| {
        format!(
            "{} is readable by every user (mode {:o}); `chmod 600` it (or 640 with the agent's group)",
            path.display(),
            mode & 0o777
        )
    })
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
            let min_len = if field == "admin.token" {
                MIN_ADMIN_TOKEN
            } else {
                1
            };
            let read = read_secret(&named, env, file, min_len);
            match read {
                Ok((_, None)) => Check::Ok(format!("{named}: the secret resolves")),
                Ok((_, Some(warning))) => Check::Warn(format!("{named}: {warning}")),
                Err(e) => Check::Fail(e.to_string()),
            }
        })
        .collect()
}
