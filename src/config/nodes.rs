//! `amqp.url`: the broker's nodes, one URL or several (a RabbitMQ cluster).

use serde::{Deserialize, Deserializer};

/// One or more AMQP URLs, each parsed at load; comma-separated in a string (as one
/// environment variable carries them) or a TOML list. Every process connects to one of
/// them, and to another when it loses that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpNodes(Vec<String>);

impl AmqpNodes {
    pub fn parse(urls: &[&str]) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("amqp.url names no node".to_owned());
        }
        for (n, url) in urls.iter().enumerate() {
            // The parser's own message quotes the URL, password included.
            if url.parse::<lapin::uri::AMQPUri>().is_err() {
                return Err(format!("amqp.url: node {} is not an AMQP URL", n + 1));
            }
        }
        Ok(AmqpNodes(urls.iter().map(|u| (*u).to_owned()).collect()))
    }

    pub fn urls(&self) -> &[String] {
        &self.0
    }

    /// The setting's value as one string, for a child process's environment.
    pub fn joined(&self) -> String {
        self.0.join(",")
    }

    /// The same nodes, each URL with `query` added (e.g. `frame_max=131072`).
    pub fn with_query(&self, query: &str) -> Self {
        let add = |u: &String| {
            let sep = if u.contains('?') { '&' } else { '?' };
            format!("{u}{sep}{query}")
        };
        AmqpNodes(self.0.iter().map(add).collect())
    }

    /// For messages: every URL without its password.
    pub fn redacted(&self) -> String {
        let shown: Vec<_> = self.0.iter().map(|u| super::redacted(u)).collect();
        shown.join(",")
    }
}

impl<'de> Deserialize<'de> for AmqpNodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            One(String),
            Many(Vec<String>),
        }
        let urls: Vec<String> = match Given::deserialize(d)? {
            Given::One(s) => s.split(',').map(|u| u.trim().to_owned()).collect(),
            Given::Many(v) => v,
        };
        let urls: Vec<&str> = urls
            .iter()
            .map(String::as_str)
            .filter(|u| !u.is_empty())
            .collect();
        AmqpNodes::parse(&urls).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(v: serde_json::Value) -> Result<AmqpNodes, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn one_url_several_separated_by_commas_or_a_list() {
        let one = from("amqp://guest:guest@127.0.0.1:5672/%2f".into()).unwrap();
        assert_eq!(one.urls().len(), 1);
        let text = "amqp://a:b@h1:5681/%2f, amqp://a:b@h2:5682/%2f,amqp://a:b@h3:5683/%2f";
        let many = from(text.into()).unwrap();
        assert_eq!(many.urls().len(), 3);
        assert_eq!(many.urls()[1], "amqp://a:b@h2:5682/%2f");
        let list = from(serde_json::json!(["amqp://h1/%2f", "amqp://h2/%2f"])).unwrap();
        assert_eq!(list.joined(), "amqp://h1/%2f,amqp://h2/%2f");
    }

    #[test]
    fn a_bad_node_is_named_by_its_place_never_quoted() {
        let e = from("amqp://u:pw@h1/%2f,http://u:hunter2@h2".into()).unwrap_err();
        assert!(e.contains("node 2 is not an AMQP URL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        assert!(from("".into()).unwrap_err().contains("no node"));
        assert!(from(serde_json::json!([])).is_err());
    }

    #[test]
    fn queries_are_added_to_every_node_and_passwords_are_hidden() {
        let n =
            AmqpNodes::parse(&["amqp://u:pw@h1/%2f", "amqp://u:pw@h2/%2f?heartbeat=5"]).unwrap();
        let big = n.with_query("frame_max=131072");
        assert_eq!(big.urls()[0], "amqp://u:pw@h1/%2f?frame_max=131072");
        assert_eq!(
            big.urls()[1],
            "amqp://u:pw@h2/%2f?heartbeat=5&frame_max=131072"
        );
        assert!(!n.redacted().contains("pw"));
    }
}
