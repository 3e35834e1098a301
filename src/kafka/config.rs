//! Client configuration: librdkafka's own dotted keys, passed through, over pktstream's defaults.
//!
//! Users already know librdkafka's keys (`security.protocol`, `sasl.username`, ...) from every
//! other client, so pktstream adds no vocabulary of its own: its defaults are just entries a user
//! entry with the same key replaces. Values of keys that look secret never leave this module in
//! a `Debug` string, a `repr` or an error message.

use rdkafka::config::ClientConfig;

use super::error::{KafkaError, Result};

/// An ordered set of configuration entries; later entries replace earlier ones.
#[derive(Clone, Default)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Defaults first, then the user's entries on top.
    pub fn layered(defaults: &[(&str, &str)], user: &[(String, String)]) -> Self {
        let mut c = Config::default();
        for (k, v) in defaults {
            c.set(k, v);
        }
        for (k, v) in user {
            c.set(k, v);
        }
        c
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.entries.push((key.to_string(), value.to_string())),
        }
    }

    /// Sets `key` only if nothing set it yet.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if self.get(key).is_none() {
            self.set(key, value);
        }
    }

    /// The value set for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `bootstrap.servers`, for messages.
    pub fn servers(&self) -> &str {
        self.get("bootstrap.servers").unwrap_or("?")
    }

    /// The entries with secret values replaced by `"***"`.
    pub fn redacted(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), if is_secret(k) { "***".to_string() } else { v.clone() }))
            .collect()
    }

    /// The rdkafka configuration; unknown keys are reported when a client is created from it.
    pub fn client_config(&self) -> ClientConfig {
        let mut cc = ClientConfig::new();
        for (k, v) in &self.entries {
            cc.set(k, v);
        }
        cc
    }

    /// Checks every key and value with librdkafka now, so a typo fails before any work starts.
    pub fn validate(&self) -> Result<()> {
        self.client_config().create_native_config().map(drop).map_err(|e| KafkaError::from_rdkafka("", &e))
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

/// Keys whose values must never be shown.
pub fn is_secret(key: &str) -> bool {
    const MARKERS: [&str; 6] = ["password", "secret", "jaas", "token", "ssl.key.pem", "credentials"];
    let key = key.to_ascii_lowercase();
    MARKERS.iter().any(|m| key.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_entries_replace_defaults_and_secrets_are_hidden() {
        let user = vec![("acks".to_string(), "1".to_string()), ("sasl.password".to_string(), "hunter2".to_string())];
        let c = Config::layered(&[("acks", "all"), ("linger.ms", "5")], &user);
        assert_eq!(c.get("acks"), Some("1"));
        assert_eq!(c.get("linger.ms"), Some("5"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.password"));
    }

    #[test]
    fn unknown_keys_are_config_errors_naming_the_key() {
        let c = Config::layered(&[], &[("no.such.key".to_string(), "s3cret-value".to_string())]);
        let e = c.validate().unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, KafkaError::Config(_)), "{e:?}");
        assert!(m.contains("no.such.key") && !m.contains("s3cret-value"), "{m}");
    }
}
