//! What operators see and do on a running fleet, against its live Redis and broker:
//! [`payments`] (a record under readable names, payments listed by state) and
//! [`dead`] (the dead-letter queue read without losing a message, and replayed as
//! [`judge`] decides), and [`resolve`] (an operator settles a payment whose outcome
//! the provider cannot tell). The `payfleet payments` and `payfleet dead` commands
//! print what these return.

pub mod dead;
pub mod judge;
pub mod payments;
pub mod resolve;

use crate::bus::PublishError;
use crate::contract::card::holds_pan;
use crate::state::StoreError;

/// Why an operator's name and reason cannot go on the record and the events; `None`
/// when they can. Both are kept for good: an empty one says nothing, and one that
/// looks like a card number would put card data where none may go.
pub fn unsayable(by: &str, reason: &str) -> Option<String> {
    if by.trim().is_empty() || reason.trim().is_empty() {
        Some("--by and --reason must say who and why".into())
    } else if holds_card_data(&[by, reason]) {
        Some("the reason or name may hold a card number, which is never recorded".into())
    } else {
        None
    }
}

/// Whether any of an operator's words looks like a card number (they go to Redis,
/// events and headers, where no card data may go).
pub fn holds_card_data(words: &[&str]) -> bool {
    words.iter().any(|w| holds_pan(w))
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Announce(#[from] crate::outcome::AnnounceError),
}

/// Free text as an operator may see it: withheld whole if it may hold a card number.
fn shown(text: &str) -> String {
    if holds_pan(text) {
        "[withheld: it may hold a card number]".into()
    } else {
        text.to_owned()
    }
}
