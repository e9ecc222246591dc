//! Outcomes: what happened to a payment becomes its record's state, then its event,
//! once. Every process that learns an outcome goes through here (the worker from the
//! provider's answer, the gateway from a callback, the reconciler from a status query):
//! record it, publish its event with a broker confirm, and only then may the caller ack
//! or answer. A copy finds the recorded outcome and makes sure its event is out.

mod announce;
mod settle;
mod silence;

pub use announce::{AnnounceError, Announcement, Announcer};
pub use settle::{Leased, Report, Settled, record_leased, settle, settle_from};
pub use silence::{PARKED_GRACE, RETRY_SILENCE};
