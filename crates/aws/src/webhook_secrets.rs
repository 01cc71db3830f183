//! Where webhook secrets come from: the [`SecretSource`] port and its two implementations, as
//! the contract names them.
//!
//! - On AWS, [`SsmSecrets`]: the SSM parameter `/<stack>/webhooks/NAME` (a SecureString), read
//!   with decryption and cached for a while ([`SsmSecrets::DEFAULT_TTL`]) so that a warm
//!   Lambda function does not ask SSM once per call.
//! - Locally, [`EnvSecrets`]: the environment variable `NUDGE_WEBHOOK_SECRET_<NAME>`, the name
//!   upper-cased with `-` as `_` ([`env_var_name`]).
//!
//! A secret that is not there is [`WebhookError::SecretMissing`] (final: a call that should be
//! signed is never sent unsigned); a store that cannot be read now is
//! [`WebhookError::SecretUnavailable`] (retryable). A [`Secret`]'s `Debug` output never shows
//! its value, and no error here quotes one.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::DisplayErrorContext;
use nudge_core::webhook::WebhookError;

/// A secret's value. Its `Debug` output is `Secret(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// A secret with this value.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Secret(value.into().into())
    }

    /// The value, to sign with.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Finds a webhook secret by the name a `webhook` step gives.
pub trait SecretSource {
    /// The value of the secret `name`: [`WebhookError::SecretMissing`] when there is none,
    /// [`WebhookError::SecretUnavailable`] when the store cannot say now.
    fn secret(&self, name: &str) -> impl Future<Output = Result<Secret, WebhookError>> + Send;
}

/// The environment variable holding the secret `name` locally: `NUDGE_WEBHOOK_SECRET_` and
/// the name upper-cased, `-` as `_` (`crm-prod` is `NUDGE_WEBHOOK_SECRET_CRM_PROD`).
pub fn env_var_name(name: &str) -> String {
    format!(
        "NUDGE_WEBHOOK_SECRET_{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// Secrets from environment variables ([`env_var_name`]). An unset or empty variable is a
/// missing secret.
#[derive(Clone, Default)]
pub struct EnvSecrets {
    /// `None`: the process's environment; `Some`: these variables instead (tests, tools).
    vars: Option<HashMap<String, Vec<u8>>>,
}

impl EnvSecrets {
    /// Secrets from the process's environment, read at each call.
    pub fn from_env() -> Self {
        EnvSecrets { vars: None }
    }

    /// Secrets from these variables (name, value), as if they were the environment.
    pub fn from_vars<K: Into<String>, V: Into<Vec<u8>>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        EnvSecrets {
            vars: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    fn lookup(&self, var: &str) -> Option<Vec<u8>> {
        match &self.vars {
            Some(vars) => vars.get(var).cloned(),
            None => std::env::var_os(var).map(|v| v.into_encoded_bytes()),
        }
    }
}

/// Names where the secrets come from, never a value.
impl fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = if self.vars.is_some() {
            "given variables"
        } else {
            "process environment"
        };
        f.debug_struct("EnvSecrets").field("from", &from).finish()
    }
}

impl SecretSource for EnvSecrets {
    async fn secret(&self, name: &str) -> Result<Secret, WebhookError> {
        match self.lookup(&env_var_name(name)) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            _ => Err(WebhookError::SecretMissing {
                name: name.to_owned(),
            }),
        }
    }
}

/// The SSM parameter holding the secret `name` of the stack `stack`: `/<stack>/webhooks/NAME`.
pub fn ssm_parameter_name(stack: &str, name: &str) -> String {
    format!("/{stack}/webhooks/{name}")
}

/// An SSM client on `config` (see [`config_loader`](crate::config_loader)).
pub fn ssm_client(config: &SdkConfig) -> Client {
    Client::new(config)
}

/// Secrets from SSM Parameter Store (SecureString parameters, decrypted on read), cached for a
/// time per process. Clones share the cache.
#[derive(Clone)]
pub struct SsmSecrets {
    client: Client,
    stack: String,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<String, (Instant, Secret)>>>,
}

impl SsmSecrets {
    /// How long a secret read is kept by default: a rotated secret is used within 5 minutes,
    /// and a busy function asks SSM at most once per secret in that time.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

    /// Secrets of the stack `stack` on `client`, each kept `ttl` after it is read (a missing
    /// one is not kept: it is asked for again, so storing it fixes later calls at once).
    pub fn new(client: Client, stack: impl Into<String>, ttl: Duration) -> Self {
        SsmSecrets {
            client,
            stack: stack.into(),
            ttl,
            cache: Arc::default(),
        }
    }

    fn cached(&self, name: &str) -> Option<Secret> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(name)
            .filter(|(read, _)| read.elapsed() < self.ttl)
            .map(|(_, secret)| secret.clone())
    }

    async fn fetch(&self, name: &str) -> Result<Secret, WebhookError> {
        let missing = || WebhookError::SecretMissing {
            name: name.to_owned(),
        };
        let output = self
            .client
            .get_parameter()
            .name(ssm_parameter_name(&self.stack, name))
            .with_decryption(true)
            .send()
            .await
            .map_err(|err| {
                let not_found = err.as_service_error().is_some_and(|e| {
                    e.is_parameter_not_found() || e.is_parameter_version_not_found()
                });
                if not_found {
                    missing()
                } else {
                    // The SDK's message names the operation and the service's error, never the
                    // value (the request carries none).
                    WebhookError::SecretUnavailable {
                        name: name.to_owned(),
                        reason: DisplayErrorContext(&err).to_string(),
                    }
                }
            })?;
        let value = output
            .parameter
            .and_then(|p| p.value)
            .filter(|v| !v.is_empty())
            .ok_or_else(missing)?;
        Ok(Secret::new(value))
    }
}

/// Names the stack and the cache's lifetime, never a value.
impl fmt::Debug for SsmSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmSecrets")
            .field("stack", &self.stack)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl SecretSource for SsmSecrets {
    async fn secret(&self, name: &str) -> Result<Secret, WebhookError> {
        if let Some(secret) = self.cached(name) {
            return Ok(secret);
        }
        let secret = self.fetch(name).await?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), (Instant::now(), secret.clone()));
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(env_var_name("crm"), "NUDGE_WEBHOOK_SECRET_CRM");
        assert_eq!(
            env_var_name("crm-prod_2"),
            "NUDGE_WEBHOOK_SECRET_CRM_PROD_2"
        );
        assert_eq!(
            ssm_parameter_name("shop", "crm-prod"),
            "/shop/webhooks/crm-prod"
        );
    }

    #[test]
    fn env_secrets_read_the_mapped_variable() {
        let secrets = EnvSecrets::from_vars([
            ("NUDGE_WEBHOOK_SECRET_CRM_PROD", "s3cr3t"),
            ("NUDGE_WEBHOOK_SECRET_EMPTY", ""),
        ]);
        let found = block_on(secrets.secret("crm-prod")).unwrap();
        assert_eq!(found.expose(), b"s3cr3t");
        for name in ["crm", "empty"] {
            let err = block_on(secrets.secret(name)).unwrap_err();
            assert!(matches!(&err, WebhookError::SecretMissing { name: n } if n == name));
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn env_secrets_from_the_process_environment_miss_an_unset_variable() {
        // No test sets this variable; setting one would race the other tests' threads.
        let err = block_on(EnvSecrets::from_env().secret("nudge-test-unset-9f2c")).unwrap_err();
        assert!(matches!(err, WebhookError::SecretMissing { .. }));
    }

    #[test]
    fn debug_output_shows_no_value() {
        let secret = Secret::new("s3cr3t");
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        let env = EnvSecrets::from_vars([("NUDGE_WEBHOOK_SECRET_CRM", "s3cr3t")]);
        assert!(!format!("{env:?}").contains("s3cr3t"));
    }
}
