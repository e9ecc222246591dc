//! Payments as operators read them: one record under readable names, and records
//! listed by state, provider and age, oldest first.

use super::shown;
use crate::contract::{IdempotencyKey, ProviderName};
use crate::state::{EventState, Record, State, StateStore, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// One payment's record. Every free text in it (the provider's message, notes) is
/// withheld if it looks like it holds a card number; records hold no card data, and
/// this keeps a provider's or a callback's words from bringing some to the screen.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub idempotency_key: String,
    pub state: &'static str,
    pub provider: Option<&'static str>,
    pub method: Option<&'static str>,
    pub operation: Option<&'static str>,
    /// The provider account it is sent in.
    pub account: Option<String>,
    pub amount: Option<Amount>,
    /// The id the provider knows the payment by.
    pub provider_payment_id: Option<String>,
    /// Claims by workers so far.
    pub attempts: u32,
    /// Raised by every claim; a write with an older one is refused.
    pub fence: i64,
    /// The worker's lease while one is submitting it.
    pub lease: Option<Lease>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When a worker last took it to send it (a recovery that only asked leaves it).
    pub last_sent_at: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
    pub noted_at: Option<DateTime<Utc>>,
    /// The events whose publication the record keeps (terminal and
    /// `action_required`; `accepted` and `deferred` are not kept).
    pub events: Vec<EventNote>,
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Amount {
    pub minor: u64,
    pub currency: &'static str,
    /// Major units, exact ("2000.00").
    pub decimal: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lease {
    pub owner: Option<String>,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub code: Option<String>,
    pub message: Option<String>,
    /// payfleet's own reason (a rejection, a failure).
    pub reason: Option<String>,
    /// Whether the customer was sent action data (redirect, 3-D Secure); the data
    /// itself is not shown.
    pub has_action: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventNote {
    /// The event's status (`payment.<status>` on the bus).
    pub status: &'static str,
    /// `published` (confirmed by the broker), `publishing`, or `unpublished`.
    pub publication: &'static str,
    /// When the broker confirmed it (kept for events published since this was added).
    pub published_at: Option<DateTime<Utc>>,
}

fn time(t: Option<SystemTime>) -> Option<DateTime<Utc>> {
    t.map(DateTime::<Utc>::from)
}

impl Payment {
    pub fn of(key: &IdempotencyKey, r: &Record) -> Self {
        let text = |t: &Option<String>| t.as_deref().map(shown);
        let mut events: Vec<EventNote> = r
            .events
            .iter()
            .map(|(state, event)| EventNote {
                status: event_status(*state),
                publication: match event {
                    EventState::Published => "published",
                    EventState::Publishing => "publishing",
                    EventState::Unpublished => "unpublished",
                },
                published_at: time(r.published_at.get(state).copied()),
            })
            .collect();
        events.sort_by_key(|e| (e.published_at.is_none(), e.published_at, e.status));
        Payment {
            idempotency_key: key.as_str().to_owned(),
            state: r.state.as_str(),
            provider: r.meta.method.map(|m| m.provider().as_str()),
            method: r.meta.method.map(|m| m.as_str()),
            operation: r.meta.operation.map(|o| o.as_str()),
            account: text(&r.meta.account),
            amount: r.meta.amount.map(|m| Amount {
                minor: m.minor.minor(),
                currency: m.currency.code(),
                decimal: m.to_decimal_string(),
            }),
            provider_payment_id: text(&r.payment_id),
            attempts: r.attempts,
            fence: r.fence,
            lease: r.lease_until.map(|until| Lease {
                owner: r.owner.clone(),
                until: until.into(),
            }),
            created_at: time(r.created),
            updated_at: time(r.updated),
            last_sent_at: time(r.trace.sent_at),
            outcome: r.outcome.as_ref().map(|o| Outcome {
                code: text(&o.code),
                message: text(&o.message),
                reason: text(&o.reason),
                has_action: o.action.is_some(),
            }),
            note: text(&r.note),
            noted_at: time(r.noted),
            events,
            traceparent: r.trace.traceparent.clone(),
        }
    }
}

/// The status of the event that announces `state`.
fn event_status(state: State) -> &'static str {
    match state.terminal_event() {
        Some(status) => status.as_str(),
        None => state.as_str(),
    }
}

/// One payment, `None` when it has no record (never seen, expired, or lost).
pub async fn show(store: &StateStore, key: &IdempotencyKey) -> Result<Option<Payment>, StoreError> {
    Ok(store.record(key).await?.map(|r| Payment::of(key, &r)))
}

/// Which payments to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<State>,
    pub provider: Option<ProviderName>,
    /// Created at least this long ago.
    pub older_than: Option<Duration>,
}

impl Filter {
    pub fn admits(&self, r: &Record, now: SystemTime) -> bool {
        let old_enough = match self.older_than {
            None => true,
            Some(age) => r
                .created
                .is_some_and(|c| now.duration_since(c).is_ok_and(|a| a >= age)),
        };
        self.state.is_none_or(|s| r.state == s)
            && self
                .provider
                .is_none_or(|p| r.meta.method.is_some_and(|m| m.provider() == p))
            && old_enough
    }
}

/// Payments that pass `filter`, oldest first, at most `limit`. A state a payment waits
/// in is read from the open index (what the reconciler watches); any other filter
/// reads every record by SCAN. Only the `limit` oldest are held while reading, so a
/// large keyspace costs time, not memory.
pub async fn list(
    store: &StateStore,
    filter: &Filter,
    limit: usize,
) -> Result<Vec<Payment>, StoreError> {
    let now = SystemTime::now();
    let mut oldest = Oldest::new(limit);
    let visit = |k, r: Record| {
        if filter.admits(&r, now) {
            oldest.offer(k, r);
        }
    };
    match filter.state {
        Some(s) if !s.is_terminal() => store.open_records(visit).await?,
        _ => store.all_records(visit).await?,
    }
    Ok(oldest
        .into_sorted()
        .iter()
        .map(|(k, r)| Payment::of(k, r))
        .collect())
}

/// The `limit` oldest records offered, by creation (unknown first: the oldest).
struct Oldest {
    limit: usize,
    held: Vec<(IdempotencyKey, Record)>,
}

impl Oldest {
    fn new(limit: usize) -> Self {
        Oldest {
            limit,
            held: Vec::new(),
        }
    }

    fn offer(&mut self, key: IdempotencyKey, record: Record) {
        self.held.push((key, record));
        // Trimmed in batches: sorting on every offer would cost limit·log(limit) each.
        if self.held.len() >= 2 * self.limit.max(1) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.held
            .sort_by(|(a, ra), (b, rb)| (ra.created, a.as_str()).cmp(&(rb.created, b.as_str())));
        // SCAN may return a key twice: its copies sort side by side.
        self.held.dedup_by(|(a, _), (b, _)| a == b);
        self.held.truncate(self.limit);
    }

    fn into_sorted(mut self) -> Vec<(IdempotencyKey, Record)> {
        self.trim();
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Method;
    use crate::state::Meta;

    fn record(state: State, method: Method, age: Duration, now: SystemTime) -> Record {
        Record {
            meta: Meta {
                method: Some(method),
                ..Meta::default()
            },
            created: Some(now - age),
            ..Record::claimed_once(state)
        }
    }

    #[test]
    fn a_filter_admits_by_state_provider_and_age() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let r = record(State::Submitted, Method::Homebank, hour, now);
        assert!(Filter::default().admits(&r, now));
        let by_state = |s| Filter {
            state: Some(s),
            ..Filter::default()
        };
        assert!(by_state(State::Submitted).admits(&r, now));
        assert!(!by_state(State::Unknown).admits(&r, now));
        let by_provider = |p| Filter {
            provider: Some(p),
            ..Filter::default()
        };
        assert!(by_provider(ProviderName::Ecommpay).admits(&r, now));
        assert!(!by_provider(ProviderName::Epay).admits(&r, now));
        let older = |age| Filter {
            older_than: Some(age),
            ..Filter::default()
        };
        assert!(older(hour / 2).admits(&r, now));
        assert!(!older(hour * 2).admits(&r, now));
        let mut unknown_age = r.clone();
        unknown_age.created = None;
        assert!(!older(hour / 2).admits(&unknown_age, now));
    }

    #[test]
    fn only_the_oldest_are_kept_once_each() {
        let now = SystemTime::now();
        let mut oldest = Oldest::new(2);
        for (key, minutes) in [("a", 1), ("b", 5), ("c", 3), ("b", 5), ("d", 4), ("e", 2)] {
            let age = Duration::from_secs(60 * minutes);
            let r = record(State::Succeeded, Method::Homebank, age, now);
            oldest.offer(IdempotencyKey::parse(key).unwrap(), r);
        }
        let keys: Vec<_> = oldest
            .into_sorted()
            .into_iter()
            .map(|(k, _)| k.as_str().to_owned())
            .collect();
        assert_eq!(keys, ["b", "d"]);
    }

    #[test]
    fn a_payment_reads_under_readable_names_and_withholds_what_looks_like_a_card() {
        let now = SystemTime::now();
        let mut r = record(State::Declined, Method::Homebank, Duration::ZERO, now);
        r.meta.amount = serde_json::from_str(r#"{"minor":200000,"currency":"KZT"}"#).unwrap();
        r.outcome = Some(crate::state::Outcome {
            code: Some("20602".into()),
            message: Some("card 4405 6397 0401 5096 refused".into()),
            ..Default::default()
        });
        r.events
            .insert(State::Declined, crate::state::EventState::Published);
        let p = Payment::of(&IdempotencyKey::parse("po-1").unwrap(), &r);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["amount"]["decimal"], "2000.00");
        assert_eq!(json["provider"], "ecommpay");
        assert_eq!(json["events"][0]["status"], "declined");
        assert_eq!(json["events"][0]["publication"], "published");
        assert!(!json.to_string().contains("4405"), "{json}");
        assert_eq!(json["outcome"]["code"], "20602");
    }
}
