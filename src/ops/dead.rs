//! The dead-letter queue for operators: each dead letter with its id, reason and key,
//! and replays fenced by [`judge`]. Every pass reads the whole queue and puts back what
//! it does not replay (see [`crate::bus::DeadQueue`]: nothing is lost, even if the
//! command is killed midway).

use super::judge::{self, Body, Found, Verdict};
use super::{OpsError, shown};
use crate::bus::{DeadLetter, DeadQueue, Names, PublishError, Publisher, header_text, headers};
use crate::config::AmqpNodes;
use crate::contract::command::{self, Decoded};
use crate::contract::operator::{OperatorAction, OperatorEvent};
use crate::contract::{FingerprintKey, IdempotencyKey};
use crate::state::{EventState, StateStore};
use crate::telemetry::label::Label;
use chrono::{DateTime, Utc};
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;
use std::collections::BTreeMap;

/// One dead letter, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    /// Stable across reads and copies: see [`DeadLetter::id`].
    pub id: String,
    /// `undecodable`, `idempotency_conflict`, `delivery_limit`, `oversize`, or none
    /// (dead-lettered by an older payfleet, or by someone else).
    pub class: Option<&'static str>,
    pub reason: String,
    /// The command's routing key before it was dead-lettered.
    pub routing_key: String,
    /// The command's key, when its body has a valid one.
    pub idempotency_key: Option<String>,
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

/// One dead letter whole: its headers and body, with card data left out.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    #[serde(flatten)]
    pub letter: Letter,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// The queue's dead letters, oldest first, and how many there are of each class.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub letters: Vec<Letter>,
    pub by_class: BTreeMap<&'static str, usize>,
}

impl Letter {
    fn of(d: &DeadLetter) -> Self {
        let body = d.shown_body();
        let key = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| IdempotencyKey::parse(v.get("idempotency_key")?.as_str()?).ok());
        Letter {
            id: d.id(),
            class: d.class().map(Label::as_str),
            reason: shown(&d.reason()),
            routing_key: shown(&d.routing_key()),
            idempotency_key: key.map(|k| k.as_str().to_owned()),
            dead_lettered_at: d
                .dead_lettered_ms()
                .and_then(|ms| DateTime::from_timestamp_millis(ms as i64)),
        }
    }
}

/// One pass over the queue: `each` puts back or removes every dead letter it is given.
/// The connection is closed however the pass ends, which hands any message still held
/// back to the queue.
async fn pass(
    url: &AmqpNodes,
    names: &Names,
    mut each: impl AsyncFnMut(&DeadQueue, DeadLetter) -> Result<(), OpsError>,
) -> Result<(), OpsError> {
    let mut queue = DeadQueue::open(url, names.clone()).await?;
    let result = async {
        while let Some(letter) = queue.next().await? {
            each(&queue, letter).await?;
        }
        Ok(())
    }
    .await;
    queue.close().await;
    result
}

/// Reads every dead letter once, putting each back.
async fn read_all(
    url: &AmqpNodes,
    names: &Names,
    mut each: impl FnMut(&DeadLetter),
) -> Result<(), OpsError> {
    pass(url, names, async |queue, letter| {
        each(&letter);
        Ok(queue.put_back(letter).await?)
    })
    .await
}

pub async fn list(url: &AmqpNodes, names: &Names) -> Result<Listing, OpsError> {
    let mut letters = Vec::new();
    read_all(url, names, |d| letters.push(Letter::of(d))).await?;
    let mut by_class = BTreeMap::new();
    for l in &letters {
        *by_class
            .entry(l.class.unwrap_or("unclassified"))
            .or_default() += 1;
    }
    Ok(Listing { letters, by_class })
}

/// The dead letters with this id (copies of one dead letter share it).
pub async fn show(url: &AmqpNodes, names: &Names, id: &str) -> Result<Vec<Detail>, OpsError> {
    let mut found = Vec::new();
    read_all(url, names, |d| {
        if d.id() == id {
            found.push(Detail {
                letter: Letter::of(d),
                headers: d
                    .shown_headers()
                    .into_iter()
                    .map(|(k, v)| (k, shown(&v)))
                    .collect(),
                body: String::from_utf8_lossy(&d.shown_body()).into_owned(),
            });
        }
    })
    .await?;
    Ok(found)
}

/// Who replayed, in the operator event, when `--by` names nobody.
pub const UNNAMED: &str = "unnamed";

/// What a replay is asked to do.
pub struct Replay<'a> {
    /// The ids to replay; `None`: every dead letter.
    pub ids: Option<&'a [String]>,
    /// Decide and report, change nothing.
    pub dry_run: bool,
    /// Who replays (`--by`): on the replayed command and the operator event.
    pub by: Option<&'a str>,
    /// Decodes bodies as the workers do (their fingerprint key).
    pub fingerprint_key: &'a FingerprintKey,
    /// `redis.retention_ms`: how long a record lives.
    pub retention_ms: u64,
}

/// What became of one dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    #[serde(flatten)]
    pub letter: Letter,
    pub verdict: Verdict,
    /// Whether it was republished (false on a dry run, and for what stays).
    pub republished: bool,
    /// Whether it was taken out of the queue without being republished, its payment
    /// being final with its event out (false on a dry run).
    pub removed: bool,
}

/// Replays the selected dead letters as [`judge::judge`] decides. One that leaves the
/// queue is acked only after what replaces it is confirmed: the command and its
/// `operator.dead_replayed` event, or the `operator.dead_removed` event of one whose
/// payment was already final. Killed in between, the dead letter stays and a second
/// replay does it again, which is harmless (a copy of a known command, a second event
/// about the same removal).
pub async fn replay(
    url: &AmqpNodes,
    names: &Names,
    store: &StateStore,
    r: &Replay<'_>,
) -> Result<Vec<Replayed>, OpsError> {
    let mut out = Vec::new();
    pass(url, names, async |queue, d| {
        let letter = Letter::of(&d);
        if r.ids.is_some_and(|ids| !ids.contains(&letter.id)) {
            return Ok(queue.put_back(d).await?);
        }
        let verdict = verdict(&d, store, r).await?;
        let (republished, removed) = match &verdict {
            _ if r.dry_run => (false, false),
            Verdict::Republish { .. } => (true, false),
            Verdict::AlreadyFinal { .. } => (false, true),
            Verdict::StayDead { .. } => (false, false),
        };
        if republished {
            republish(queue, &d, &letter, r.by).await?;
        }
        if let (true, Verdict::AlreadyFinal { state }) = (removed, &verdict) {
            let why = format!(
                "dead letter {} removed: its payment is already {state} and its event is \
                 out; nothing was sent. It was dead-lettered for: {}",
                letter.id, letter.reason
            );
            let event = operator_event(OperatorAction::DeadRemoved, &letter, r.by, why);
            announce(queue.publisher(), &event).await?;
        }
        if republished || removed {
            queue.remove(d).await?;
        } else {
            queue.put_back(d).await?;
        }
        out.push(Replayed {
            letter,
            verdict,
            republished,
            removed,
        });
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Puts a dead letter's command back under its routing key, marked as a replay, and
/// announces it as an `operator.dead_replayed` event.
async fn republish(
    queue: &DeadQueue,
    d: &DeadLetter,
    letter: &Letter,
    by: Option<&str>,
) -> Result<(), OpsError> {
    let mut h = FieldTable::default();
    for (name, value) in [
        (headers::TRACEPARENT, d.traceparent()),
        (headers::TRACESTATE, d.tracestate()),
    ] {
        if let Some(v) = value {
            h.insert(name.into(), header_text(&v));
        }
    }
    h.insert(headers::REPLAYED.into(), AMQPValue::Boolean(true));
    if let Some(by) = by {
        h.insert(headers::REPLAYED_BY.into(), header_text(by));
    }
    let publisher = queue.publisher();
    publisher
        .publish_command(&d.routing_key(), d.body(), h)
        .await?;
    let why = format!(
        "dead letter {} republished to {}; it was dead-lettered for: {}",
        letter.id, letter.routing_key, letter.reason
    );
    let event = operator_event(OperatorAction::DeadReplayed, letter, by, why);
    announce(publisher, &event).await
}

/// The operator event of what a replay did with one dead letter.
fn operator_event(
    action: OperatorAction,
    letter: &Letter,
    by: Option<&str>,
    why: String,
) -> OperatorEvent {
    // Its key says which payment (a dead letter without one is named by its id).
    let target = letter
        .idempotency_key
        .clone()
        .unwrap_or_else(|| format!("dead letter {}", letter.id));
    OperatorEvent::new(action, target, by.unwrap_or(UNNAMED).to_owned(), why)
}

async fn announce(publisher: &Publisher, event: &OperatorEvent) -> Result<(), OpsError> {
    match publisher.publish_operator_event(event).await {
        // Nobody takes operator events here (the events exchange has only payment
        // bindings): the replay stands, and the operator is told.
        Err(PublishError::Unroutable { routing_key, .. }) => {
            tracing::warn!(%routing_key, "no queue is bound for operator events: the event went nowhere");
            Ok(())
        }
        other => Ok(other?),
    }
}

/// The judge's inputs for one dead letter, read from its body and its record.
async fn verdict(d: &DeadLetter, store: &StateStore, r: &Replay<'_>) -> Result<Verdict, OpsError> {
    let (body, record) = match command::decode(d.body(), r.fingerprint_key) {
        Decoded::Undecodable(why) => (Body::Undecodable(why), None),
        Decoded::Invalid(invalid) => (Body::Invalid(invalid.reason), None),
        Decoded::Valid(cmd) => {
            let found = store.record(&cmd.key).await?.map(|rec| Found {
                state: rec.state,
                same_body: rec.fingerprint.is_none_or(|f| f == cmd.fingerprint),
                announced: rec.events.get(&rec.state) == Some(&EventState::Published),
            });
            (Body::Valid, found)
        }
    };
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let may_have_expired = d
        .dead_lettered_ms()
        .is_none_or(|ms| now_ms.saturating_sub(ms) >= r.retention_ms);
    Ok(judge::judge(
        &body,
        record.as_ref(),
        d.class(),
        may_have_expired,
    ))
}
