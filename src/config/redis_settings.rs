//! `[redis]`: one Redis, or the nodes of a Redis Cluster to start from.

use super::redacted;
use serde::Deserialize;
use std::fmt;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: RedisUrls,
    /// Whether `url` names nodes of a Redis Cluster (any of them will do: the client
    /// learns the rest from the cluster).
    #[serde(default)]
    pub cluster: bool,
    pub key_prefix: String,
    pub retention_ms: u64,
}

impl RedisSettings {
    /// Every problem of these settings, as messages naming the setting.
    pub(super) fn problems(&self, out: &mut Vec<String>) {
        if self.url.0.len() > 1 && !self.cluster {
            out.push(format!(
                "redis.url lists {} URLs ({}): several are for a Redis Cluster (set redis.cluster = true), one Redis takes one",
                self.url.0.len(),
                self.url
            ));
        }
    }
}

/// One or more Redis URLs, each one that the client reads: a string (several separated
/// by commas, as `PAYFLEET__REDIS__URL` carries them) or a TOML array. Shown (Display,
/// Debug) with their passwords replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrls(Vec<String>);

impl RedisUrls {
    /// The URLs, passwords included: for the client only, never for a message.
    pub fn expose(&self) -> &[String] {
        &self.0
    }

    /// The first URL: where a single Redis is.
    pub fn first(&self) -> &str {
        &self.0[0]
    }

    fn parse<'a>(urls: impl Iterator<Item = &'a str>) -> Result<Self, String> {
        let urls: Vec<String> = urls.map(str::to_owned).collect();
        if urls.is_empty() {
            return Err("no Redis URL".into());
        }
        for url in &urls {
            // The client's own reading; its error may quote the URL, so it is not passed on.
            if redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
                return Err(format!("not a Redis URL: {}", redacted(url)));
            }
        }
        Ok(RedisUrls(urls))
    }
}

impl std::str::FromStr for RedisUrls {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s.split(',').map(str::trim).filter(|u| !u.is_empty()))
    }
}

impl<'de> Deserialize<'de> for RedisUrls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            One(String),
            Many(Vec<String>),
        }
        let parsed = match Given::deserialize(d)? {
            Given::One(s) => s.parse(),
            Given::Many(many) => RedisUrls::parse(many.iter().map(|u| u.trim())),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RedisUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.0.iter().map(|u| redacted(u)).collect();
        f.write_str(&shown.join(","))
    }
}

impl fmt::Debug for RedisUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrls({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::RedisUrls;

    #[test]
    fn one_url_or_several_by_commas_each_read_by_the_client() {
        let one: RedisUrls = "redis://127.0.0.1:6379/0".parse().unwrap();
        assert_eq!(one.expose(), ["redis://127.0.0.1:6379/0"]);
        let many: RedisUrls = "redis://h1:7001, redis://h2:7002,".parse().unwrap();
        assert_eq!(many.expose(), ["redis://h1:7001", "redis://h2:7002"]);
        assert!("".parse::<RedisUrls>().is_err());
        assert!("http://h:1".parse::<RedisUrls>().is_err());
    }

    #[test]
    fn a_password_never_shows() {
        let urls: RedisUrls = "redis://:s3cret@h1:7001,redis://u:s3cret@h2:7002"
            .parse()
            .unwrap();
        for shown in [urls.to_string(), format!("{urls:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("h2:7002"), "{shown}");
        }
        let e = "redis://:s3cret@h:notaport"
            .parse::<RedisUrls>()
            .unwrap_err();
        assert!(
            !e.contains("s3cret") && e.contains("not a Redis URL"),
            "{e}"
        );
    }
}
