//! What a Lambda function of a deployment needs from AWS at its cold start, without naming an
//! SDK type outside this crate: [`Clients`] (one SDK configuration, one client per service) and
//! [`SecureParameter`] (an SSM SecureString, cached: the unsubscribe signing key, Shopify's
//! webhook secrets).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ssm::error::DisplayErrorContext;

use crate::dynamo::{DynamoDbStore, RequestMeter, dynamodb_client};
use crate::ses::{SesMailer, config_loader, ses_client};
use crate::throttle::{InjectedThrottling, one_at_a_time};
use crate::webhook_secrets::{Secret, SsmSecrets, ssm_client};

/// One SDK configuration (from the environment: region, credentials, `AWS_ENDPOINT_URL`) and a
/// client per service, built once per process and shared (clients are cheap to clone).
#[derive(Clone)]
pub struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    ses: aws_sdk_sesv2::Client,
    ssm: aws_sdk_ssm::Client,
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    /// The clients on the default configuration chain ([`config_loader`]), counting DynamoDB's
    /// requests in `meter` when one is given. Makes no request.
    pub async fn from_env(meter: Option<&RequestMeter>) -> Self {
        let config = config_loader().load().await;
        Clients {
            dynamodb: dynamodb_client(&config, meter),
            ses: ses_client(&config),
            ssm: ssm_client(&config),
        }
    }

    /// For tests only: [`Clients::from_env`] with `throttling` on the DynamoDB and SES
    /// clients, which answers a seeded share of their attempts with each service's throttling
    /// error (before or after the request reaches the service) and counts every call; and
    /// whose DynamoDB requests reach moto (plain HTTP) one at a time: moto's transactions are
    /// not isolated from concurrent requests (a failed one puts back a copy of the whole
    /// table).
    #[doc(hidden)]
    pub async fn from_env_throttled(
        meter: Option<&RequestMeter>,
        throttling: &InjectedThrottling,
    ) -> Self {
        let config = config_loader().load().await;
        // Plain HTTP: moto's endpoint.
        let http = aws_smithy_http_client::Builder::new().build_http();
        let dynamodb = dynamodb_client(&config, meter)
            .config()
            .to_builder()
            .interceptor(throttling.clone())
            .http_client(one_at_a_time(http))
            .build();
        let ses = aws_sdk_sesv2::config::Builder::from(&config)
            .interceptor(throttling.clone())
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            ses: aws_sdk_sesv2::Client::from_conf(ses),
            ssm: ssm_client(&config),
        }
    }

    /// The same clients with `interceptor` added to each (DynamoDB, SES and SSM), for tests
    /// that watch or disturb every request a function makes (a
    /// [`FaultInjector`](crate::faults::FaultInjector)). Makes no request.
    pub fn with_interceptor<I>(self, interceptor: I) -> Self
    where
        I: aws_smithy_runtime_api::client::interceptors::Intercept + Clone + 'static,
    {
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                self.dynamodb
                    .config()
                    .to_builder()
                    .interceptor(interceptor.clone())
                    .build(),
            ),
            ses: aws_sdk_sesv2::Client::from_conf(
                self.ses
                    .config()
                    .to_builder()
                    .interceptor(interceptor.clone())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                self.ssm
                    .config()
                    .to_builder()
                    .interceptor(interceptor)
                    .build(),
            ),
        }
    }

    /// The same clients sending their requests through `http` (tests: an emulator's client,
    /// such as [`one_request_at_a_time`](crate::faults::one_request_at_a_time)). Makes no
    /// request.
    pub fn with_http_client(
        self,
        http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    ) -> Self {
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                self.dynamodb
                    .config()
                    .to_builder()
                    .http_client(http.clone())
                    .build(),
            ),
            ses: aws_sdk_sesv2::Client::from_conf(
                self.ses
                    .config()
                    .to_builder()
                    .http_client(http.clone())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                self.ssm.config().to_builder().http_client(http).build(),
            ),
        }
    }

    /// Creates table `table` with its index and TTL ([`create_table`](crate::create_table)),
    /// waiting at most `wait` for it to become active: for tests and local set-ups (the SAM
    /// template creates a deployment's).
    pub async fn create_table(
        &self,
        table: &str,
        wait: Duration,
    ) -> Result<(), nudge_core::store::StoreError> {
        crate::create_table(&self.dynamodb, table, wait).await
    }

    /// The store on table `table`.
    pub fn store(&self, table: &str) -> DynamoDbStore {
        DynamoDbStore::new(self.dynamodb.clone(), table)
    }

    /// The mailer, sending through `configuration_set` when given.
    pub fn mailer(&self, configuration_set: Option<String>) -> SesMailer {
        SesMailer::new(self.ses.clone(), configuration_set)
    }

    /// A mailer whose every `SendEmail` attempt (connecting included) ends within `attempt`,
    /// for a caller that must know how long a send can take at worst
    /// ([`SesMailer::worst_send`]; fewer attempts with [`SesMailer::with_attempts`]); an
    /// attempt cut by the timeout is `MaybeSent`, settled by the runner like any ambiguous
    /// answer.
    pub fn mailer_within(&self, configuration_set: Option<String>, attempt: Duration) -> SesMailer {
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .connect_timeout(attempt.min(Duration::from_secs(3)))
            .operation_attempt_timeout(attempt)
            .operation_timeout(attempt)
            .build();
        let config = self
            .ses
            .config()
            .to_builder()
            .timeout_config(timeouts)
            .build();
        SesMailer::new(aws_sdk_sesv2::Client::from_conf(config), configuration_set)
    }

    /// The webhook secrets of stack `stack` (`/<stack>/webhooks/NAME`).
    pub fn webhook_secrets(&self, stack: &str) -> SsmSecrets {
        SsmSecrets::new(self.ssm.clone(), stack, SsmSecrets::DEFAULT_TTL)
    }

    /// The values of the SecureString parameters `names` (at most 10), in one `GetParameters`
    /// request: `None` for one that does not exist or is empty. For a cold start that needs
    /// several (the signing key and the one being rotated out): one round trip, not one each.
    pub async fn parameters(&self, names: &[&str]) -> Result<Vec<Option<Secret>>, ParameterError> {
        let output = self
            .ssm
            .get_parameters()
            .set_names(Some(names.iter().map(|n| (*n).to_owned()).collect()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|err| ParameterError {
                name: names.join(", "),
                // The SDK's message names the operation and the error, never a value.
                reason: DisplayErrorContext(&err).to_string(),
            })?;
        let found = output.parameters.unwrap_or_default();
        Ok(names
            .iter()
            .map(|name| {
                found
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name))
                    .and_then(|p| p.value.clone())
                    .filter(|v| !v.is_empty())
                    .map(Secret::new)
            })
            .collect())
    }

    /// The SecureString parameter `name`, cached for `ttl`.
    pub fn parameter(&self, name: impl Into<String>, ttl: Duration) -> SecureParameter {
        SecureParameter {
            client: self.ssm.clone(),
            name: name.into(),
            ttl,
            cache: Arc::default(),
        }
    }
}

/// Why a parameter could not be read. Names the parameter, never its value.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the SSM parameter {name}: {reason}")]
pub struct ParameterError {
    /// The parameter.
    pub name: String,
    /// The service's answer.
    pub reason: String,
}

/// One SSM SecureString parameter, read with decryption and kept for a time per process (a
/// missing parameter is kept too: a function asks SSM at most once per `ttl`). Clones share
/// the cache. Its `Debug` output names the parameter, never the value.
#[derive(Clone)]
pub struct SecureParameter {
    client: aws_sdk_ssm::Client,
    name: String,
    ttl: Duration,
    #[allow(clippy::type_complexity)]
    cache: Arc<Mutex<Option<(Instant, Option<Secret>)>>>,
}

impl fmt::Debug for SecureParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureParameter")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl SecureParameter {
    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value (`None` when the parameter does not exist or is empty), from the cache when
    /// it was read less than the `ttl` ago.
    pub async fn get(&self) -> Result<Option<Secret>, ParameterError> {
        if let Some((read, value)) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner())
            && read.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = self.fetch().await?;
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), value.clone()));
        Ok(value)
    }

    async fn fetch(&self) -> Result<Option<Secret>, ParameterError> {
        match self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(output) => Ok(output
                .parameter
                .and_then(|p| p.value)
                .filter(|v| !v.is_empty())
                .map(Secret::new)),
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_parameter_not_found() || e.is_parameter_version_not_found()
                }) =>
            {
                Ok(None)
            }
            Err(err) => Err(ParameterError {
                name: self.name.clone(),
                // The SDK's message names the operation and the error, never a value.
                reason: DisplayErrorContext(&err).to_string(),
            }),
        }
    }
}
