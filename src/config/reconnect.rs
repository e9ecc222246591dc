//! Reaching the backing services (RabbitMQ, Redis): how often to try again, and their
//! URLs as they may be printed.

use serde::Deserialize;
use std::time::Duration;

/// `[reconnect]`: the pause between attempts to reach RabbitMQ or Redis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSettings {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl ReconnectSettings {
    /// Doubling from `min_ms` to `max_ms`, forever; each pause plus a random part of up
    /// to as much again, so a fleet that lost a service does not retry in lockstep.
    pub fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.min_ms))
            .with_max_delay(Duration::from_millis(self.max_ms.max(self.min_ms)))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }
}

/// `url` fit for a log or an error message: its password replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: nothing in it can be told apart from a secret.
        return "(not a URL)".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None if scheme.starts_with("redis") => "***".to_owned(), // redis://secret@host
        None => userinfo.to_owned(),
    };
    format!("{scheme}://{user}@{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn a_password_never_survives_redaction() {
        let cases = [
            ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
            ("redis://u:s3cret@h:6379/0", "redis://u:***@h:6379/0"),
            ("redis://s3cret@h/0", "redis://***@h/0"),
            ("rediss://u:s3c@r%40et@h:6380", "rediss://u:***@h:6380"),
            (
                "amqp://guest:s3cret@h:5672/%2f",
                "amqp://guest:***@h:5672/%2f",
            ),
            ("amqp://guest@h:5672/%2f", "amqp://guest@h:5672/%2f"),
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("s3cret", "(not a URL)"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }

    #[test]
    fn reconnecting_never_gives_up_and_never_waits_in_lockstep() {
        let s = ReconnectSettings {
            min_ms: 100,
            max_ms: 1000,
        };
        let delays: Vec<Duration> = s.backoff().build().take(200).collect();
        assert_eq!(delays.len(), 200, "forever");
        for (n, d) in delays.iter().enumerate() {
            let base = Duration::from_millis((100u64 << n.min(10)).min(1000));
            assert!(*d >= base && *d <= base * 2, "attempt {n}: {d:?}");
        }
        let other: Vec<Duration> = s.backoff().build().take(200).collect();
        assert_ne!(delays, other, "two processes wait differently");
    }
}
