//! Banks of India: what its purchases, payouts and refunds share. Each operation has its
//! own file: `india_sale`, `india_payout`, `india_refund` (their commands' fields and
//! rules are in `contract::methods`); the bank list is `india_banks`, the payout hours
//! `india_hours`.

/// Gate's `payment.method` for this method in callbacks.
pub const METHOD_NAME: &str = "India banks";

/// A gate for the India unit tests.
#[cfg(test)]
pub mod test_support {
    use crate::providers::ecommpay::Gate;
    use std::time::Duration;

    pub fn gate(project_id: u64) -> Gate {
        let second = Duration::from_secs(1);
        Gate::new(
            "http://gate.test",
            project_id,
            "k".to_owned().into(),
            second,
            second,
        )
        .unwrap()
    }
}
