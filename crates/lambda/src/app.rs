//! What a function builds once per cold start ([`App::from_env`]): the settings, the
//! workflows and the engine, the AWS clients, the store, the mailer and the webhook caller; and
//! what each invocation uses ([`App::runner`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use nudge_aws::{
    Clients, DynamoDbStore, HttpWebhookCaller, ParameterError, SesMailer, SsmSecrets,
    WebhookSettings, WebhookSetupError,
};
use nudge_core::engine::Engine;
use nudge_core::links::{DEVELOPMENT_KEY, MIN_SIGNING_KEY_BYTES, Signer};
use nudge_core::runner::Runner;
use nudge_core::store::Store;
use nudge_core::workflow::Project;
use nudge_core::workflow::model::Category;

use crate::config::{Config, ConfigError};
use crate::workflows::{self, WorkflowsError};

/// The runner of a deployment: DynamoDB, SES and HTTPS webhooks signed with SSM secrets.
pub type AwsRunner = Runner<'static, DynamoDbStore, SesMailer, HttpWebhookCaller<SsmSecrets>>;

/// How long a secure parameter (the signing key, Shopify's secrets) is kept once read.
pub const PARAMETER_TTL: Duration = Duration::from_secs(300);

/// Why a function refuses to start. Names settings and parameters, never a value.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The environment is incomplete or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The built-in workflows could not be loaded.
    #[error(transparent)]
    Workflows(#[from] WorkflowsError),
    /// The signing key could not be read.
    #[error(transparent)]
    Parameter(#[from] ParameterError),
    /// The signing key is missing, too short, or the public development key.
    #[error(
        "the unsubscribe signing key in the SSM parameter {parameter} {problem}; store at least {MIN_SIGNING_KEY_BYTES} random bytes there (e.g. `openssl rand -base64 32`) as a SecureString"
    )]
    SigningKey {
        /// The parameter.
        parameter: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Marketing workflows need an unsubscribe URL and none is known.
    #[error(
        "marketing workflows need an unsubscribe URL: set `unsubscribe_url` in settings.yaml or NUDGE_UNSUBSCRIBE_URL (the template sets it to the unsubscribe function's URL)"
    )]
    NoUnsubscribeUrl,
    /// The webhook caller could not be built.
    #[error(transparent)]
    Webhooks(#[from] WebhookSetupError),
}

/// Whether a function makes unsubscribe links, and so needs to know where they point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// It may decide marketing email (ingest, the Shopify webhook, the scheduler, SES
    /// feedback): it refuses to start without an unsubscribe URL.
    Made,
    /// The `unsubscribe` function: it only applies `customer.unsubscribed`, and the template
    /// cannot pass a function its own URL (a circular reference). A marketing email its input
    /// decides is for a customer unsubscribed by that very input, so the sending rules skip it,
    /// and transactional email carries no unsubscribe link: without a URL it makes none.
    NotMade,
}

/// Everything a function keeps between invocations.
#[derive(Debug)]
pub struct App {
    /// The deployment's settings.
    pub config: Config,
    /// The engine on the built-in workflows (kept for the life of the process).
    pub engine: &'static Engine<'static>,
    /// The signer of unsubscribe links.
    pub signer: &'static Signer,
    /// The key being rotated out (`Config::previous_signing_key_parameter`), when one is
    /// kept: links it signed still verify (they are in mailboxes for months).
    pub previous_signer: Option<&'static Signer>,
    /// The AWS clients.
    pub clients: Clients,
    /// The store.
    pub store: DynamoDbStore,
    /// The mailer.
    pub mailer: SesMailer,
    /// The webhook caller.
    pub webhooks: HttpWebhookCaller<SsmSecrets>,
    /// The mailer and webhook caller of [`App::bounded_runner`].
    bounded: (SesMailer, HttpWebhookCaller<SsmSecrets>),
}

/// How long the one `SendEmail` attempt of a send of [`App::bounded_runner`] may take: 5 s
/// (SES answers in about 0.1 s). A cut attempt is `MaybeSent` and a throttled one is retried
/// by the runner a minute later, like any ambiguous or retryable answer.
pub const BOUNDED_SES_ATTEMPT: Duration = Duration::from_secs(5);

/// The webhook calls of [`App::bounded_runner`]: 2 attempts of at most 3 s (connecting in at
/// most 2 s), 250 ms apart.
pub fn bounded_webhook_settings() -> WebhookSettings {
    WebhookSettings {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(3),
        attempts: 2,
        ..WebhookSettings::default()
    }
}

/// The longest one send of [`App::bounded_runner`] can take: an email's one attempt
/// ([`BOUNDED_SES_ATTEMPT`]) or a webhook call's attempts and wait, whichever is longer, plus
/// the claim's and the settle's requests (a second): 7.5 s.
pub fn bounded_send_worst() -> Duration {
    let w = bounded_webhook_settings();
    let webhook = w.attempt_timeout * w.attempts + w.backoff * w.attempts;
    BOUNDED_SES_ATTEMPT.max(webhook) + Duration::from_secs(1)
}

impl App {
    /// Builds everything from the environment: the settings, the clients, the signing key
    /// (from SSM: the one request made here), the workflows and the engine.
    pub async fn from_env() -> Result<Self, InitError> {
        Self::from_env_with(Links::Made).await
    }

    /// [`App::from_env`] for a function that makes unsubscribe links or does not ([`Links`]).
    pub async fn from_env_with(links: Links) -> Result<Self, InitError> {
        let config = Config::from_env()?;
        let clients = Clients::from_env(None).await;
        // Both keys in one request: the current one and the one being rotated out.
        let keys = clients
            .parameters(&[
                &config.signing_key_parameter,
                &config.previous_signing_key_parameter,
            ])
            .await?;
        let (key, previous) = match keys.as_slice() {
            [key, previous] => (key.clone(), previous.clone()),
            _ => (None, None),
        };
        let signer = signer(
            &config.signing_key_parameter,
            key.as_ref().map(|k| k.expose()),
        )?;
        let scratch = std::env::temp_dir().join(format!("nudge-workflows-{}", std::process::id()));
        let previous = previous
            .map(|key| self::signer(&config.previous_signing_key_parameter, Some(key.expose())))
            .transpose()?;
        let project = workflows::load(&scratch)?;
        let mut app = Self::new_with(config, clients, signer, project, links)?;
        app.previous_signer = previous.map(|s| &*Box::leak(Box::new(s)));
        Ok(app)
    }

    /// Builds the app from its parts (tests build theirs without SSM), for a function that
    /// makes unsubscribe links.
    pub fn new(
        config: Config,
        clients: Clients,
        signer: Signer,
        project: Project,
    ) -> Result<Self, InitError> {
        Self::new_with(config, clients, signer, project, Links::Made)
    }

    /// [`App::new`] for a function that makes unsubscribe links or does not ([`Links`]).
    pub fn new_with(
        config: Config,
        clients: Clients,
        signer: Signer,
        mut project: Project,
        links: Links,
    ) -> Result<Self, InitError> {
        if project.settings.unsubscribe_url.is_none() {
            project.settings.unsubscribe_url = config.unsubscribe_url.clone();
        }
        let marketing = project
            .workflows
            .iter()
            .any(|w| w.category == Category::Marketing);
        if marketing && links == Links::Made && project.settings.unsubscribe_url.is_none() {
            return Err(InitError::NoUnsubscribeUrl);
        }
        // The engine borrows the project and the signer for the life of the process.
        let project: &'static Project = Box::leak(Box::new(project));
        let signer: &'static Signer = Box::leak(Box::new(signer));
        let engine: &'static Engine<'static> = Box::leak(Box::new(Engine::new(project, signer)));
        let store = clients.store(&config.table);
        let mailer = clients.mailer(config.configuration_set.clone());
        let webhooks = HttpWebhookCaller::new(
            clients.webhook_secrets(&config.stack),
            WebhookSettings::default(),
        )?;
        let bounded = (
            clients
                .mailer_within(config.configuration_set.clone(), BOUNDED_SES_ATTEMPT)
                .with_attempts(1),
            HttpWebhookCaller::new(
                clients.webhook_secrets(&config.stack),
                bounded_webhook_settings(),
            )?,
        );
        Ok(App {
            config,
            engine,
            signer,
            previous_signer: None,
            clients,
            store,
            mailer,
            webhooks,
            bounded,
        })
    }

    /// A runner on this app's store, mailer and webhook caller, delivering each commit's sends
    /// right after it.
    pub fn runner(&self) -> AwsRunner {
        Runner::new(self.engine, self.store.clone(), Some(self.mailer.clone()))
            .with_webhooks(self.webhooks.clone())
    }

    /// A runner whose every send ends within [`bounded_send_worst`] (shorter SES and webhook
    /// timeouts), for a caller that must stop before a deadline without ever being cut off
    /// between a claim and its settle (the scheduler).
    pub fn bounded_runner(&self) -> AwsRunner {
        Runner::new(
            self.engine,
            self.store.clone(),
            Some(self.bounded.0.clone()),
        )
        .with_webhooks(self.bounded.1.clone())
    }

    /// Opens the connection to DynamoDB (TLS included) with one small read, so that the first
    /// invocation does not pay for it. A failure is only logged: the invocation retries.
    pub async fn warm_up(&self) {
        if let Err(e) = self.store.get_meta("warm-up").await {
            tracing::warn!(error = %e, "warming up the DynamoDB connection failed");
        }
    }

    /// The wall clock, the runner's clock on AWS.
    pub fn now() -> DateTime<Utc> {
        Utc::now()
    }
}

/// A function's cold start: logs as JSON ([`init_tracing`]), builds the app from the
/// environment ([`App::from_env_with`]), keeps it for the life of the process (every
/// invocation borrows it) and warms the DynamoDB connection ([`App::warm_up`]).
pub async fn start(links: Links) -> Result<&'static App, InitError> {
    init_tracing();
    let app: &'static App = Box::leak(Box::new(App::from_env_with(links).await?));
    app.warm_up().await;
    Ok(app)
}

/// The signer for the key read from `parameter`, refusing a missing, short or public key.
pub fn signer(parameter: &str, key: Option<&[u8]>) -> Result<Signer, InitError> {
    let problem = match key {
        None => "is missing",
        Some(k) if k == DEVELOPMENT_KEY => "is the public development key",
        Some(k) if k.len() < MIN_SIGNING_KEY_BYTES => "is too short",
        Some(k) => return Ok(Signer::new(k)),
    };
    Err(InitError::SigningKey {
        parameter: parameter.to_owned(),
        problem,
    })
}

/// Logs as JSON lines (CloudWatch reads them) on stdout, at `RUST_LOG`'s level or `info`, in
/// the format of [`json_logs`]. Call once, first thing in `main`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::util::SubscriberInitExt::init(json_logs(filter, std::io::stdout));
}

/// The functions' log format: one JSON object per line, without colours, time or span (Lambda
/// stamps each line), the events `filter` lets through written to `writer`. [`init_tracing`]
/// installs it on stdout; tests install it on a buffer to read what a function logs.
pub fn json_logs<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_current_span(false)
        .without_time()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without an unsubscribe URL (none in settings.yaml, none passed in), a function that
    /// makes links refuses to start, and the `unsubscribe` function starts.
    #[tokio::test]
    async fn only_a_function_that_makes_links_needs_the_unsubscribe_url() {
        let config =
            Config::from_lookup(|name| (name == "NUDGE_TABLE").then(|| "t".to_owned())).unwrap();
        let clients = Clients::from_env(None).await;
        let project = || {
            let scratch = tempfile::tempdir().unwrap();
            let mut project = workflows::load(scratch.path()).unwrap();
            project.settings.unsubscribe_url = None;
            project
        };
        let key = Signer::new(&[7u8; 32]);
        let refused = App::new(config.clone(), clients.clone(), key.clone(), project());
        assert!(
            matches!(refused, Err(InitError::NoUnsubscribeUrl)),
            "{refused:?}"
        );
        let app = App::new_with(config, clients, key, project(), Links::NotMade).unwrap();
        assert!(app.engine.project().settings.unsubscribe_url.is_none());
    }

    #[test]
    fn the_development_key_a_short_key_and_no_key_are_refused() {
        for (key, problem) in [
            (None, "is missing"),
            (Some(DEVELOPMENT_KEY), "is the public development key"),
            (Some(&b"short"[..]), "is too short"),
        ] {
            let e = signer("/shop/signing-key", key).unwrap_err();
            assert!(matches!(e, InitError::SigningKey { problem: p, .. } if p == problem));
        }
        assert!(signer("/p", Some(&[7u8; 32])).is_ok());
    }
}
