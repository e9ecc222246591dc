//! The names a command is routed and labelled by: provider, method, operation.

use serde::{Deserialize, Serialize};

/// Which provider a method belongs to: also the first part of the routing key and the
/// name of the provider's command queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderName {
    Ecommpay,
    Epay,
}

impl ProviderName {
    pub const ALL: [ProviderName; 2] = [ProviderName::Ecommpay, ProviderName::Epay];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Ecommpay => "ecommpay",
            ProviderName::Epay => "epay",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Homebank,
    GooglePay,
    P2p,
    BanksOfIndia,
}

impl Method {
    /// Every method, so metrics start at zero for each (extend with every new variant).
    pub const ALL: [Method; 4] = [
        Method::Homebank,
        Method::BanksOfIndia,
        Method::GooglePay,
        Method::P2p,
    ];

    pub fn provider(self) -> ProviderName {
        match self {
            Method::Homebank => ProviderName::Ecommpay,
            Method::GooglePay | Method::P2p => ProviderName::Epay,
            Method::BanksOfIndia => ProviderName::Ecommpay,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Homebank => "homebank",
            Method::GooglePay => "google_pay",
            Method::P2p => "p2p",
            Method::BanksOfIndia => "banks_of_india",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Payout,
    Payment,
    Transfer,
    #[serde(rename = "confirm_3ds")]
    Confirm3ds,
    Sale,
    Refund,
}

impl Operation {
    /// Every operation, so metrics start at zero for each (extend with every new variant).
    pub const ALL: [Operation; 6] = [
        Operation::Payout,
        Operation::Sale,
        Operation::Refund,
        Operation::Payment,
        Operation::Transfer,
        Operation::Confirm3ds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Payout => "payout",
            Operation::Payment => "payment",
            Operation::Transfer => "transfer",
            Operation::Confirm3ds => "confirm_3ds",
            Operation::Sale => "sale",
            Operation::Refund => "refund",
        }
    }
}
