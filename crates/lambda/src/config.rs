//! The deployment's settings, from the environment the SAM template sets. Names only: no
//! secret is ever read from the environment (the signing key and the Shopify secrets are SSM
//! SecureString parameters named here).

use std::time::Duration;

/// A setting that is missing or unusable. Names the variable, never a value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set (the SAM template sets it)")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("{name} is not usable: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The deployment's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `NUDGE_TABLE`: the DynamoDB table.
    pub table: String,
    /// `NUDGE_STACK` (default `nudge`): the prefix of the SSM parameters, `/<stack>/...`.
    pub stack: String,
    /// `NUDGE_CONFIGURATION_SET`: the SES configuration set whose event destination feeds the
    /// `ses-events` function, if any.
    pub configuration_set: Option<String>,
    /// `NUDGE_SIGNING_KEY_PARAMETER` (default `/<stack>/signing-key`): the SSM SecureString
    /// holding the key that signs unsubscribe links.
    pub signing_key_parameter: String,
    /// `NUDGE_PREVIOUS_SIGNING_KEY_PARAMETER` (default `/<stack>/previous-signing-key`): the
    /// SSM SecureString holding the key being rotated out, if any: unsubscribe links it signed
    /// still verify while it is there.
    pub previous_signing_key_parameter: String,
    /// `NUDGE_UNSUBSCRIBE_URL`: the `unsubscribe` function's URL, used when `settings.yaml` has
    /// no `unsubscribe_url` of its own.
    pub unsubscribe_url: Option<url::Url>,
    /// `NUDGE_SES_RATE` (default 14): the account's SES maximum send rate, emails per second.
    pub ses_rate: u32,
    /// `NUDGE_TIME_BUDGET_MS` (default: none): the longest one invocation works, when that is
    /// sooner than the deadline Lambda gives (local runtimes, such as `cargo lambda watch`,
    /// give none that can be trusted).
    pub time_budget: Option<Duration>,
}

impl Config {
    /// The settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The settings from `var` (a variable's value by name, `None` when unset or empty).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = var("NUDGE_TABLE").ok_or(ConfigError::Missing("NUDGE_TABLE"))?;
        let stack = var("NUDGE_STACK").unwrap_or_else(|| "nudge".to_owned());
        let signing_key_parameter =
            var("NUDGE_SIGNING_KEY_PARAMETER").unwrap_or_else(|| format!("/{stack}/signing-key"));
        let previous_signing_key_parameter = var("NUDGE_PREVIOUS_SIGNING_KEY_PARAMETER")
            .unwrap_or_else(|| format!("/{stack}/previous-signing-key"));
        let unsubscribe_url = var("NUDGE_UNSUBSCRIBE_URL")
            .map(|u| {
                url::Url::parse(&u).map_err(|e| ConfigError::Invalid {
                    name: "NUDGE_UNSUBSCRIBE_URL",
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        let ses_rate = match var("NUDGE_SES_RATE") {
            None => 14,
            Some(v) => v
                .parse()
                .ok()
                .filter(|r| *r > 0)
                .ok_or(ConfigError::Invalid {
                    name: "NUDGE_SES_RATE",
                    reason: "expected a whole number of emails per second, at least 1".into(),
                })?,
        };
        let time_budget = var("NUDGE_TIME_BUDGET_MS")
            .map(|v| {
                v.parse()
                    .map(Duration::from_millis)
                    .map_err(|_| ConfigError::Invalid {
                        name: "NUDGE_TIME_BUDGET_MS",
                        reason: "expected a whole number of milliseconds".into(),
                    })
            })
            .transpose()?;
        Ok(Config {
            table,
            stack,
            configuration_set: var("NUDGE_CONFIGURATION_SET"),
            signing_key_parameter,
            previous_signing_key_parameter,
            unsubscribe_url,
            ses_rate,
            time_budget,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// The settings hold names only: every variable read whose name speaks of a key or a
    /// secret is a parameter's name (`…_PARAMETER`), never the value itself.
    #[test]
    fn every_secret_is_read_by_its_parameter_name() {
        let read = std::cell::RefCell::new(Vec::new());
        Config::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            (name == "NUDGE_TABLE").then(|| "t".to_owned())
        })
        .unwrap();
        let read = read.into_inner();
        assert!(read.len() >= 5, "{read:?}");
        let secrets: Vec<&String> = read
            .iter()
            .filter(|n| {
                ["KEY", "SECRET", "TOKEN", "PASSWORD"]
                    .iter()
                    .any(|w| n.contains(w))
            })
            .collect();
        assert!(!secrets.is_empty(), "{read:?}");
        for name in secrets {
            assert!(name.ends_with("_PARAMETER"), "{name} is read as a value");
        }
    }

    #[test]
    fn defaults_follow_the_stack() {
        let c =
            Config::from_lookup(lookup(&[("NUDGE_TABLE", "t"), ("NUDGE_STACK", "shop")])).unwrap();
        assert_eq!(c.signing_key_parameter, "/shop/signing-key");
        assert_eq!(
            c.previous_signing_key_parameter,
            "/shop/previous-signing-key"
        );
        assert_eq!(c.ses_rate, 14);
        assert!(c.unsubscribe_url.is_none() && c.time_budget.is_none());
    }

    #[test]
    fn a_missing_table_or_a_bad_rate_is_named() {
        let e = Config::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "NUDGE_TABLE is not set (the SAM template sets it)"
        );
        let e = Config::from_lookup(lookup(&[("NUDGE_TABLE", "t"), ("NUDGE_SES_RATE", "0")]))
            .unwrap_err();
        assert!(
            e.to_string().starts_with("NUDGE_SES_RATE is not usable"),
            "{e}"
        );
    }
}
