//! Resolving a payment whose outcome the provider cannot tell payfleet (stuck
//! `unknown`; `submitted` or `action_required` whose customer action data was lost, as
//! epay's 3-D Secure transfers the reconciler notes `overdue: …`): an operator names
//! the outcome, after the provider is asked once more as the reconciler asks it. A
//! final status from the provider is the authority ([`decide`]); the outcome is settled
//! through [`crate::outcome::settle_from`], as callbacks and the reconciler settle, so
//! its terminal event goes out once and the payment leaves the open index.

use super::{OpsError, shown, unsayable};
use crate::contract::IdempotencyKey;
use crate::outcome::{Announcer, Report, Settled, settle_from};
use crate::providers::{ProviderError, Providers, Status};
use crate::ratelimit::{RateKey, RateLimiter, STATUS};
use crate::state::{Outcome, State, StateStore};
use serde::Serialize;
use std::time::Duration;

/// The open states an operator may resolve: sent, and no worker on them. A payment
/// a worker takes again meanwhile (`unknown` to `submitting`) is not settled under it.
const RESOLVABLE: [State; 3] = [State::Submitted, State::ActionRequired, State::Unknown];

/// How long an operator's resolution waits for a status slot before it gives up.
const SLOT_PATIENCE: Duration = Duration::from_secs(30);

/// What an operator's resolution comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing is changed, for this reason.
    Refuse(String),
    /// The operator's outcome is recorded (the provider does not know it).
    Apply(State),
    /// The provider's final status agrees: its own outcome is recorded, as the
    /// reconciler would record it.
    ApplyProviders(State, Outcome),
}

/// Why a payment in `state` is not the operator's to resolve, whatever the provider
/// says; `None` when it is.
pub fn unresolvable(state: State) -> Option<String> {
    match state {
        s if s.is_terminal() => Some(format!(
            "it is already {}: a final outcome is never changed",
            s.as_str()
        )),
        State::Received => {
            Some("it is received and was never sent: its command's own attempts settle it".into())
        }
        State::Submitting => Some("a worker is sending it right now: its answer settles it".into()),
        _ => None,
    }
}

/// The decision for a payment recorded in `state`, given the provider's answer to a
/// status request and the outcome the operator asks for (succeeded, declined, failed).
pub fn decide(state: State, status: &Result<Status, ProviderError>, wanted: State) -> Decision {
    if !matches!(wanted, State::Succeeded | State::Declined | State::Failed) {
        return Decision::Refuse(format!(
            "{} is no outcome an operator can give (succeeded, declined, failed)",
            wanted.as_str()
        ));
    }
    if let Some(why) = unresolvable(state) {
        return Decision::Refuse(why);
    }
    match status {
        Ok(Status::Final { state, outcome }) if *state == wanted => {
            Decision::ApplyProviders(*state, outcome.clone())
        }
        Ok(Status::Final { .. }) => Decision::Refuse(format!(
            "the provider says {}, not {}: its final status settles it",
            describe(status),
            wanted.as_str()
        )),
        // Still in progress, never seen, or no answer: the provider cannot tell, and
        // the operator decides.
        Ok(Status::Pending | Status::NotFound | Status::ActionRequired(_)) | Err(_) => {
            Decision::Apply(wanted)
        }
    }
}

/// The provider's answer as an operator reads it.
pub fn describe(status: &Result<Status, ProviderError>) -> String {
    match status {
        Ok(Status::Final { state, outcome }) => {
            let mut said = state.as_str().to_owned();
            if let Some(code) = &outcome.code {
                said.push_str(&format!(" (code {code}"));
                if let Some(m) = &outcome.message {
                    said.push_str(&format!(", {:?}", shown(m)));
                }
                said.push(')');
            }
            said
        }
        Ok(Status::Pending) => "pending".into(),
        Ok(Status::ActionRequired(_)) => "pending (awaiting the customer's action)".into(),
        Ok(Status::NotFound) => "not found".into(),
        Err(e) => format!(
            "nothing: the status request failed ({})",
            shown(&e.to_string())
        ),
    }
}

/// An operator's resolution of one payment.
pub struct Resolution<'a> {
    pub key: &'a IdempotencyKey,
    /// succeeded, declined or failed.
    pub outcome: State,
    pub by: &'a str,
    pub reason: &'a str,
}

/// What was done.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub idempotency_key: String,
    pub state: &'static str,
    /// Whether the provider's own final outcome was recorded (it agreed).
    pub by_provider: bool,
    /// What the provider said when asked.
    pub provider_status: String,
    /// The note added to the record.
    pub note: String,
}

/// Resolves one payment: `Err(why)` inside `Ok` when it is refused, and then nothing
/// was changed.
pub async fn resolve(
    store: &StateStore,
    providers: &Providers,
    limiter: &RateLimiter,
    announcer: &Announcer,
    r: &Resolution<'_>,
) -> Result<Result<Resolved, String>, OpsError> {
    if let Some(why) = unsayable(r.by, r.reason) {
        return Ok(Err(why));
    }
    let Some(rec) = store.record(r.key).await? else {
        return Ok(Err(format!(
            "no record for {} (never seen, expired after redis.retention_ms, or lost)",
            r.key
        )));
    };
    // Not asked about a payment that is not the operator's anyway.
    if let Some(why) = unresolvable(rec.state) {
        return Ok(Err(why));
    }
    let (Some(method), Some(operation)) = (rec.meta.method, rec.meta.operation) else {
        return Ok(Err(
            "its record names no method: the provider cannot be asked".into(),
        ));
    };
    let payment_id = rec.payment_id.as_deref().unwrap_or_default();
    let Some(provider) = providers.of(method) else {
        return Ok(Err(format!(
            "{} is not enabled in this configuration: its status cannot be asked",
            method.provider().as_str()
        )));
    };
    // As the reconciler asks: a slot of the account's `status` limit first (holds stop
    // new payments, never status queries), then the record's account, key, payment
    // id, method, operation.
    let account = rec.meta.account.as_deref();
    let rate = RateKey::new(method.provider(), account, STATUS);
    let requests = provider.requests_per_call();
    if let Err(after) = limiter.wait_for_slot(&rate, requests, SLOT_PATIENCE).await {
        return Ok(Err(format!(
            "the account's status rate limit has no slot for {} s: nothing asked, nothing \
             changed; try again later",
            after.as_secs()
        )));
    }
    let status = provider
        .status_in(account, r.key, payment_id, method, operation)
        .await;
    let said = describe(&status);
    let resolution = format!("resolved by {}: {}", r.by, r.reason);
    let (to, outcome, by_provider) = match decide(rec.state, &status, r.outcome) {
        Decision::Refuse(why) => return Ok(Err(why)),
        Decision::Apply(to) => {
            let outcome = Outcome {
                reason: Some(resolution),
                ..Outcome::default()
            };
            (to, outcome, false)
        }
        Decision::ApplyProviders(to, mut outcome) => {
            outcome.reason = Some(match outcome.reason.take() {
                Some(own) => format!("{own}; {resolution}"),
                None => resolution,
            });
            (to, outcome, true)
        }
    };
    let report = Report {
        key: r.key,
        state: to,
        outcome: &outcome,
        payment_id,
        meta: &rec.meta,
        traceparent: None,
    };
    let (settled, _) = settle_from(announcer, report, &RESOLVABLE).await?;
    let now = match settled {
        Settled::Applied => None,
        Settled::Late => Some("a worker took it again meanwhile"),
        Settled::Missing => Some("its record vanished meanwhile"),
        Settled::Duplicate | Settled::Conflicting | Settled::Publishing => {
            Some("it was settled meanwhile (a callback or the reconciler)")
        }
    };
    if let Some(why) = now {
        return Ok(Err(format!(
            "{why}: nothing changed (see payfleet payments show {})",
            r.key
        )));
    }
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let note = format!(
        "resolved by {} at {at}: {} (outcome {})",
        r.by,
        r.reason,
        to.as_str()
    );
    store.note(r.key, &note).await?;
    Ok(Ok(Resolved {
        idempotency_key: r.key.as_str().to_owned(),
        state: to.as_str(),
        by_provider,
        provider_status: said,
        note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_(state: State, code: &str) -> Result<Status, ProviderError> {
        Ok(Status::Final {
            state,
            outcome: Outcome {
                code: Some(code.into()),
                message: Some("as the provider says".into()),
                ..Outcome::default()
            },
        })
    }

    const OPEN: [State; 3] = [State::Submitted, State::ActionRequired, State::Unknown];

    #[test]
    fn a_final_payment_is_refused_whatever_the_provider_says() {
        for state in [
            State::Succeeded,
            State::Declined,
            State::Failed,
            State::Rejected,
        ] {
            let d = decide(state, &Ok(Status::Pending), State::Declined);
            let Decision::Refuse(why) = d else {
                panic!("{state:?}: {d:?}")
            };
            assert!(why.contains("already"), "{why}");
        }
    }

    #[test]
    fn a_payment_never_sent_or_being_sent_is_not_the_operators() {
        for state in [State::Received, State::Submitting] {
            let d = decide(state, &Ok(Status::NotFound), State::Failed);
            assert!(matches!(d, Decision::Refuse(_)), "{state:?}: {d:?}");
            assert!(unresolvable(state).is_some());
        }
        for state in OPEN {
            assert_eq!(unresolvable(state), None, "{state:?}");
        }
    }

    #[test]
    fn only_a_final_outcome_can_be_given() {
        for wanted in [State::Submitted, State::Rejected, State::Unknown] {
            let d = decide(State::Unknown, &Ok(Status::Pending), wanted);
            assert!(matches!(d, Decision::Refuse(_)), "{wanted:?}: {d:?}");
        }
    }

    #[test]
    fn a_provider_that_agrees_settles_with_its_own_outcome() {
        for state in OPEN {
            let status = final_(State::Succeeded, "0");
            let Ok(Status::Final { outcome, .. }) = &status else {
                unreachable!()
            };
            assert_eq!(
                decide(state, &status, State::Succeeded),
                Decision::ApplyProviders(State::Succeeded, outcome.clone())
            );
        }
    }

    #[test]
    fn a_provider_that_disagrees_refuses_it_and_says_what_it_says() {
        let d = decide(
            State::Submitted,
            &final_(State::Succeeded, "0"),
            State::Declined,
        );
        let Decision::Refuse(why) = d else {
            panic!("{d:?}")
        };
        assert!(why.contains("succeeded (code 0"), "{why}");
        assert!(why.contains("not declined"), "{why}");
    }

    #[test]
    fn a_provider_that_cannot_tell_leaves_it_to_the_operator() {
        let answers = [
            Ok(Status::Pending),
            Ok(Status::NotFound),
            Ok(Status::ActionRequired(Outcome::default())),
            Err(ProviderError::Unknown("timed out".into())),
            Err(ProviderError::Refused {
                code: "1".into(),
                message: "bad token".into(),
            }),
        ];
        for state in OPEN {
            for status in &answers {
                for wanted in [State::Succeeded, State::Declined, State::Failed] {
                    assert_eq!(
                        decide(state, status, wanted),
                        Decision::Apply(wanted),
                        "{state:?} {status:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_resolution_says_who_and_why_and_never_a_card_number() {
        assert_eq!(unsayable("alice", "bank statement checked"), None);
        assert!(unsayable("", "bank statement checked").is_some());
        assert!(unsayable("alice", "  ").is_some());
        let card = unsayable("alice", "card 4405 6397 0401 5096 was charged");
        assert!(card.is_some_and(|why| !why.contains("4405")));
        assert!(unsayable("4405639704015096", "checked").is_some());
    }

    #[test]
    fn the_providers_answer_reads_plainly_and_withholds_card_numbers() {
        assert_eq!(describe(&Ok(Status::Pending)), "pending");
        assert_eq!(describe(&Ok(Status::NotFound)), "not found");
        let leaky = Ok(Status::Final {
            state: State::Declined,
            outcome: Outcome {
                code: Some("20602".into()),
                message: Some("card 4405 6397 0401 5096 refused".into()),
                ..Outcome::default()
            },
        });
        let said = describe(&leaky);
        assert!(said.starts_with("declined (code 20602"), "{said}");
        assert!(!said.contains("4405"), "{said}");
        let failed = describe(&Err(ProviderError::Unknown("timed out".into())));
        assert!(failed.contains("status request failed"), "{failed}");
    }
}
