//! A command's record read whole, as a typed [`Record`]: the one place outside the Lua
//! scripts that knows the record's field names.

use super::events::EventState;
use super::store::{Result, StoreError};
use super::{Meta, Outcome, State, StateStore};
use crate::contract::{Fingerprint, IdempotencyKey};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The record's field that holds what it remembers of the command ([`Meta`] as JSON).
pub(super) const META: &str = "meta";
/// The prefix of the fields noting where each state's event stands (see `prelude.lua`).
const EVENT: &str = "ev:";
/// The prefix of the fields noting when each state's event was confirmed.
const PUBLISHED_AT: &str = "pub:";

/// What a settler needs to continue a command's trace and measure its callback lag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceContext {
    /// The W3C traceparent of the command that first claimed the record.
    pub traceparent: Option<String>,
    /// When the payment was last sent to the provider (taken to be sent, so no later).
    pub sent_at: Option<SystemTime>,
}

impl TraceContext {
    /// From the record's `tp` and `sent` fields as the scripts give them ('' for none).
    pub(super) fn read(traceparent: &str, sent_ms: &str) -> Self {
        TraceContext {
            traceparent: Some(traceparent.to_owned()).filter(|tp| !tp.is_empty()),
            sent_at: at(sent_ms),
        }
    }
}

/// One command's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub state: State,
    /// The id the provider knows the payment by; `None` for a command never sent.
    pub payment_id: Option<String>,
    pub meta: Meta,
    /// The provider's or payfleet's last word on it, once there is one.
    pub outcome: Option<Outcome>,
    /// Until when the worker submitting it holds its lease.
    pub lease_until: Option<SystemTime>,
    /// The token of the claim that holds (or last held) the lease.
    pub owner: Option<String>,
    /// What tells this command's body from another's under the same key (`None` for a
    /// record a callback made before the command was seen).
    pub fingerprint: Option<Fingerprint>,
    /// Claims so far (a hold for the provider's working hours does not count).
    pub attempts: u32,
    /// Raised by every claim: a write with an older fence is refused.
    pub fence: i64,
    pub created: Option<SystemTime>,
    /// The last change of state.
    pub updated: Option<SystemTime>,
    pub trace: TraceContext,
    /// What an operator must know of it that its state does not say (a callback that
    /// was refused), once there is something.
    pub note: Option<String>,
    /// When the last note was added.
    pub noted: Option<SystemTime>,
    /// Where the event of each state stands, for the states that noted one, judged by
    /// this process's clock.
    pub events: HashMap<State, EventState>,
    /// When the broker confirmed each of those events (not kept before this field was
    /// added, so an older record may lack it).
    pub published_at: HashMap<State, SystemTime>,
}

#[cfg(test)]
impl Record {
    /// A record in `state`, claimed once, with nothing else known: for tests to fill in.
    pub(crate) fn claimed_once(state: State) -> Self {
        Record {
            state,
            payment_id: None,
            meta: Meta::default(),
            outcome: None,
            lease_until: None,
            owner: None,
            fingerprint: None,
            attempts: 1,
            fence: 1,
            created: None,
            updated: None,
            trace: TraceContext::default(),
            note: None,
            noted: None,
            events: HashMap::new(),
            published_at: HashMap::new(),
        }
    }
}

impl StateStore {
    /// The command's record; `None` when there is none (never seen, expired, or lost).
    pub async fn record(&self, key: &IdempotencyKey) -> Result<Option<Record>> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.record_key(key))
            .query_async(&mut conn)
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse(&fields).map(Some)
    }

    /// Notes on the record what an operator must see, leaving its state as it is;
    /// false when there is no record.
    pub async fn note(&self, key: &IdempotencyKey, note: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let noted: i64 = self
            .scripts
            .note
            .key(self.record_key(key))
            .arg(note)
            .invoke_async(&mut conn)
            .await?;
        Ok(noted == 1)
    }
}

pub(super) fn parse(fields: &HashMap<String, String>) -> Result<Record> {
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let state = State::parse(get("st"))
        .ok_or_else(|| StoreError::Protocol(format!("record in state {:?}", get("st"))))?;
    let now = SystemTime::now();
    let events = fields
        .iter()
        .filter_map(|(name, flag)| {
            let state = State::parse(name.strip_prefix(EVENT)?)?;
            let event = match flag.strip_prefix('p') {
                None => EventState::Published,
                Some(until) if at(until).is_some_and(|until| until > now) => EventState::Publishing,
                Some(_) => EventState::Unpublished,
            };
            Some((state, event))
        })
        .collect();
    let published_at = fields
        .iter()
        .filter_map(|(name, ms)| Some((State::parse(name.strip_prefix(PUBLISHED_AT)?)?, at(ms)?)))
        .collect();
    let text = |name: &str| Some(get(name).to_owned()).filter(|t| !t.is_empty());
    Ok(Record {
        state,
        payment_id: text("pid"),
        meta: serde_json::from_str(get(META)).unwrap_or_default(),
        outcome: serde_json::from_str(get("out")).ok(),
        lease_until: at(get("lease")),
        owner: text("own"),
        fingerprint: text("fp").map(Fingerprint::from_stored),
        attempts: get("att").parse().unwrap_or_default(),
        fence: get("fence").parse().unwrap_or_default(),
        created: at(get("created")),
        updated: at(get("upd")),
        trace: TraceContext::read(get("tp"), get("sent")),
        note: text("note"),
        noted: at(get("noted")),
        events,
        published_at,
    })
}

/// A time the scripts wrote (Redis server time, ms since the epoch).
fn at(ms: &str) -> Option<SystemTime> {
    ms.parse()
        .ok()
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_into_its_typed_fields() {
        let fields: HashMap<String, String> = [
            ("st", "succeeded"),
            ("pid", "po-1"),
            ("meta", r#"{"operation":"payout"}"#),
            ("out", r#"{"code":"0"}"#),
            ("att", "2"),
            ("fence", "3"),
            ("created", "1000"),
            ("tp", ""),
            ("sent", "2000"),
            ("ev:submitted", "1"),
            ("ev:succeeded", "p1"),
            ("pub:submitted", "3000"),
            ("fp", "abc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let rec = parse(&fields).unwrap();
        assert_eq!(rec.state, State::Succeeded);
        assert_eq!(rec.payment_id.as_deref(), Some("po-1"));
        assert_eq!(rec.meta.operation, Some(crate::contract::Operation::Payout));
        assert_eq!(rec.outcome.unwrap().code.as_deref(), Some("0"));
        assert_eq!((rec.attempts, rec.fence, rec.lease_until), (2, 3, None));
        assert_eq!(rec.created, Some(UNIX_EPOCH + Duration::from_secs(1)));
        assert_eq!(rec.trace.traceparent, None);
        assert_eq!(rec.trace.sent_at, Some(UNIX_EPOCH + Duration::from_secs(2)));
        assert_eq!(rec.events[&State::Submitted], EventState::Published);
        // A publish claim that ran out long ago.
        assert_eq!(rec.events[&State::Succeeded], EventState::Unpublished);
        assert_eq!(
            rec.published_at[&State::Submitted],
            UNIX_EPOCH + Duration::from_secs(3)
        );
        assert_eq!(rec.published_at.len(), 1);
        assert_eq!(rec.fingerprint.unwrap().as_str(), "abc");
        assert_eq!((rec.owner, rec.note, rec.noted), (None, None, None));
    }
}
