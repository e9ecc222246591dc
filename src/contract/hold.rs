//! Holds: a fleet-wide stop on new requests to a provider or one of its accounts, set by
//! an operator (`payfleet hold`) or by the breaker when an account keeps failing.
//! Status queries, callbacks and the reconciler go on, so payments already sent still
//! settle; a held command waits in a delay queue.

use super::{ProviderName, valid_account};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a hold stops: a provider's every account, or one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HoldTarget {
    pub provider: ProviderName,
    /// `None`: every account of the provider.
    pub account: Option<String>,
}

impl HoldTarget {
    /// `PROVIDER` or `PROVIDER/ACCOUNT`, e.g. `ecommpay` or `ecommpay/kz_main`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (provider, account) = match s.split_once('/') {
            Some((p, a)) => (p, Some(a)),
            None => (s, None),
        };
        let provider = ProviderName::ALL
            .into_iter()
            .find(|p| p.as_str() == provider)
            .ok_or_else(|| {
                format!("a hold names a provider (ecommpay or epay), optionally /ACCOUNT: {s:?}")
            })?;
        if let Some(a) = account
            && !valid_account(a)
        {
            return Err(format!(
                "an account name is 1 to 64 of a-z, 0-9, _ and -: {a:?}"
            ));
        }
        Ok(HoldTarget {
            provider,
            account: account.map(str::to_owned),
        })
    }

    /// Whether a request in `account` of `provider` falls under this hold.
    pub fn covers(&self, provider: ProviderName, account: &str) -> bool {
        self.provider == provider && self.account.as_deref().is_none_or(|a| a == account)
    }
}

impl fmt::Display for HoldTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(a) => write!(f, "{}/{a}", self.provider.as_str()),
            None => f.write_str(self.provider.as_str()),
        }
    }
}

impl TryFrom<String> for HoldTarget {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        HoldTarget::parse(&s)
    }
}

impl From<HoldTarget> for String {
    fn from(t: HoldTarget) -> String {
        t.to_string()
    }
}

/// A hold in force: what it stops, why, who set it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub target: HoldTarget,
    pub reason: String,
    pub by: String,
    pub since: DateTime<Utc>,
    /// Set by the breaker, not an operator: lifted by its own probe (or a release).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
}

impl Hold {
    /// Its field in the holds hash: the breaker's own beside an operator's, so
    /// that neither lifts the other's.
    pub fn field(&self) -> String {
        field_of(&self.target, self.automatic)
    }
}

/// The holds-hash field of a hold on `target`.
pub fn field_of(target: &HoldTarget, automatic: bool) -> String {
    if automatic {
        format!("breaker:{target}")
    } else {
        target.to_string()
    }
}

/// Which hold, if any, stops a new request in `account` of `provider`.
pub fn holding<'a>(holds: &'a [Hold], provider: ProviderName, account: &str) -> Option<&'a Hold> {
    holds.iter().find(|h| h.target.covers(provider, account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_a_provider_or_one_of_its_accounts() {
        let all = HoldTarget::parse("ecommpay").unwrap();
        assert_eq!(
            (all.provider, all.account.as_deref()),
            (ProviderName::Ecommpay, None)
        );
        let one = HoldTarget::parse("epay/kz_main").unwrap();
        assert_eq!(one.account.as_deref(), Some("kz_main"));
        assert_eq!(one.to_string(), "epay/kz_main");
        for bad in ["", "paypal", "ecommpay/", "ecommpay/Main", "epay/a/b"] {
            assert!(HoldTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_provider_hold_covers_every_account_and_an_account_hold_only_its_own() {
        let hold = |t: &str| Hold {
            target: HoldTarget::parse(t).unwrap(),
            reason: "r".into(),
            by: "b".into(),
            since: Utc::now(),
            automatic: false,
        };
        let holds = [hold("ecommpay/kz_main")];
        assert!(holding(&holds, ProviderName::Ecommpay, "kz_main").is_some());
        assert!(holding(&holds, ProviderName::Ecommpay, "default").is_none());
        assert!(holding(&holds, ProviderName::Epay, "kz_main").is_none());
        let holds = [hold("epay")];
        assert!(holding(&holds, ProviderName::Epay, "default").is_some());
        assert!(holding(&holds, ProviderName::Epay, "other").is_some());
        assert!(holding(&holds, ProviderName::Ecommpay, "default").is_none());
        assert!(holding(&[], ProviderName::Epay, "default").is_none());
    }

    #[test]
    fn a_hold_round_trips_through_json_and_refuses_a_bad_target() {
        let h = Hold {
            target: HoldTarget::parse("ecommpay/kz_main").unwrap(),
            reason: "provider incident 42".into(),
            by: "alice".into(),
            since: Utc::now(),
            automatic: false,
        };
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains(r#""target":"ecommpay/kz_main""#), "{json}");
        assert_eq!(serde_json::from_str::<Hold>(&json).unwrap(), h);
        let bad = json.replace("ecommpay/kz_main", "nope");
        assert!(serde_json::from_str::<Hold>(&bad).is_err());
    }
}
