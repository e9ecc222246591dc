//! The simulator's ground truth held against what the fleet reported. The sandbox's
//! `executed` map counts the money that actually moved, by the id it moved under: an
//! ECommPay payment id (the command's key), a refund's own id (its merchant refund id,
//! or `refund:<purchase payment id>` when it has none) or an epay invoice id (known
//! only from the events). A false outcome is a command reported `declined`, `failed`
//! or `rejected` whose money moved, or reported `succeeded` whose money never did.

use super::send::Planned;
use payfleet::contract::{Event, EventStatus, IdempotencyKey};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What a terminal status claims that the sandbox contradicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FalseOutcome {
    /// `declined`, `failed` or `rejected`, yet the money moved.
    MovedButReportedNot,
    /// `succeeded`, yet the money never moved.
    SucceededButNeverMoved,
}

/// The verdict on one terminal status, given whether the command's money moved.
pub fn judge(status: EventStatus, moved: bool) -> Option<FalseOutcome> {
    match status {
        EventStatus::Succeeded if !moved => Some(FalseOutcome::SucceededButNeverMoved),
        EventStatus::Declined | EventStatus::Failed | EventStatus::Rejected if moved => {
            Some(FalseOutcome::MovedButReportedNot)
        }
        _ => None,
    }
}

/// The ids a command's money can move under, known from the command alone.
fn own_ids(p: &Planned) -> Vec<String> {
    match p.routing_key {
        // Known by its purchase: counted under its own id either way.
        "ecommpay.refund" => {
            let body: Value = serde_json::from_str(&p.body).unwrap_or_default();
            let purchase = body["details"]["payment_id"].as_str().unwrap_or_default();
            vec![p.key.to_string(), format!("refund:{purchase}")]
        }
        // Invoice ids are allocated by the worker: only the events name them.
        r if r.starts_with("epay.") => Vec::new(),
        _ => vec![p.key.to_string()],
    }
}

/// Every id each command's money can move under.
pub struct Ledger<'a> {
    executed: &'a BTreeMap<String, u64>,
    ids: HashMap<IdempotencyKey, BTreeSet<String>>,
    /// Every payment id an event names (a refund's event names its purchase).
    named: BTreeSet<String>,
}

impl<'a> Ledger<'a> {
    pub fn new<'p>(
        planned: impl IntoIterator<Item = &'p Planned>,
        events: &[Event],
        executed: &'a BTreeMap<String, u64>,
    ) -> Self {
        let planned: Vec<&Planned> = planned.into_iter().collect();
        let mut ids: HashMap<IdempotencyKey, BTreeSet<String>> = planned
            .iter()
            .map(|p| (p.key.clone(), own_ids(p).into_iter().collect()))
            .collect();
        let refunds: HashSet<&IdempotencyKey> = planned
            .iter()
            .filter(|p| p.routing_key == "ecommpay.refund")
            .map(|p| &p.key)
            .collect();
        let mut named = BTreeSet::new();
        for e in events {
            let Some(id) = &e.payment_id else { continue };
            named.insert(id.clone());
            // A refund's events may name its purchase, whose money is the sale's.
            if !refunds.contains(&e.idempotency_key)
                && let Some(set) = ids.get_mut(&e.idempotency_key)
            {
                set.insert(id.clone());
            }
        }
        // A 3-D Secure confirmation moves its transfer's money.
        for p in &planned {
            if let Some(transfer) = super::demo_epay::confirmed_transfer(&p.key)
                && let Some(of_transfer) = ids.get(&transfer).cloned()
            {
                ids.entry(p.key.clone()).or_default().extend(of_transfer);
            }
        }
        Ledger {
            executed,
            ids,
            named,
        }
    }

    /// The ids the command's money moved under, and how many times each.
    pub fn executions(&self, key: &IdempotencyKey) -> BTreeMap<&str, u64> {
        let ids = self.ids.get(key).into_iter().flatten();
        ids.filter_map(|id| Some((id.as_str(), *self.executed.get(id)?)))
            .collect()
    }

    /// Executions that no command nor any event accounts for (expected 0).
    pub fn unaccounted(&self) -> usize {
        let known =
            |id: &String| self.named.contains(id) || self.ids.values().any(|ids| ids.contains(id));
        self.executed.keys().filter(|id| !known(id)).count()
    }

    /// The false outcomes among the commands' terminal events: how many commands
    /// have one, and up to ten of them, with what the sandbox executed.
    pub fn false_outcomes(&self, terminal: &HashMap<IdempotencyKey, Vec<Event>>) -> FalseOutcomes {
        let mut found = FalseOutcomes::default();
        let mut keys: Vec<&IdempotencyKey> = self.ids.keys().collect();
        keys.sort_by_key(|k| k.as_str());
        for key in keys {
            let executions = self.executions(key);
            let moved = !executions.is_empty();
            let events = terminal.get(key).into_iter().flatten();
            let Some((status, what)) = events
                .filter_map(|e| Some((e.status, judge(e.status, moved)?)))
                .next()
            else {
                continue;
            };
            found.count += 1;
            if found.examples.len() < 10 {
                found.examples.push(json!({
                    "key": key, "status": status.as_str(), "false": what,
                    "sandbox_executed": executions,
                }));
            }
        }
        found
    }
}

#[derive(Debug, Default, Serialize)]
pub struct FalseOutcomes {
    pub count: usize,
    pub examples: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(key: &str, routing_key: &'static str, body: Value) -> Planned {
        Planned {
            key: IdempotencyKey::parse(key).unwrap(),
            body: body.to_string(),
            routing_key,
            expect: EventStatus::Succeeded,
            copies: 1,
        }
    }

    fn event(key: &str, status: EventStatus, payment_id: Option<&str>) -> Event {
        let mut e = Event::new(IdempotencyKey::parse(key).unwrap(), status);
        e.payment_id = payment_id.map(str::to_owned);
        e
    }

    fn executed(ids: &[&str]) -> BTreeMap<String, u64> {
        ids.iter().map(|id| (id.to_string(), 1)).collect()
    }

    #[test]
    fn every_status_is_judged_against_the_money() {
        use EventStatus::*;
        for status in [Declined, Failed, Rejected] {
            assert_eq!(judge(status, true), Some(FalseOutcome::MovedButReportedNot));
            assert_eq!(judge(status, false), None);
        }
        assert_eq!(judge(Succeeded, true), None);
        assert_eq!(
            judge(Succeeded, false),
            Some(FalseOutcome::SucceededButNeverMoved)
        );
        for status in [Accepted, ActionRequired, Deferred] {
            assert_eq!(judge(status, true), None);
            assert_eq!(judge(status, false), None);
        }
    }

    #[test]
    fn a_refund_is_found_under_either_of_its_ids_never_its_purchase() {
        let refund = planned(
            "r1",
            "ecommpay.refund",
            json!({"details": {"payment_id": "sale-1"}}),
        );
        let events = [event("r1", EventStatus::Succeeded, Some("sale-1"))];
        let only_the_sale = executed(&["sale-1"]);
        let ledger = Ledger::new([&refund], &events, &only_the_sale);
        assert!(ledger.executions(&refund.key).is_empty());
        for id in ["r1", "refund:sale-1"] {
            let moved = executed(&["sale-1", id]);
            let ledger = Ledger::new([&refund], &events, &moved);
            assert_eq!(
                ledger.executions(&refund.key).keys().collect::<Vec<_>>(),
                [&id]
            );
            assert_eq!(ledger.unaccounted(), 0);
        }
    }

    #[test]
    fn an_invoice_is_known_from_the_events_and_a_confirmation_moves_its_transfer() {
        let transfer = planned("t1", "epay.transfer", json!({}));
        let confirm = planned("t1-3ds", "epay.confirm_3ds", json!({}));
        let events = [event("t1", EventStatus::ActionRequired, Some("000123"))];
        let moved = executed(&["000123"]);
        let ledger = Ledger::new([&transfer, &confirm], &events, &moved);
        assert_eq!(ledger.executions(&transfer.key).len(), 1);
        assert_eq!(ledger.executions(&confirm.key).len(), 1);
        assert_eq!(ledger.unaccounted(), 0);
    }

    #[test]
    fn false_outcomes_are_counted_once_per_command() {
        let plan = [
            planned("paid", "ecommpay.payout", json!({})),
            planned("declined-but-paid", "ecommpay.payout", json!({})),
            planned("succeeded-unpaid", "ecommpay.sale", json!({})),
            planned("declined", "ecommpay.sale", json!({})),
            planned("lost", "ecommpay.payout", json!({})),
        ];
        let terminal: HashMap<IdempotencyKey, Vec<Event>> = [
            ("paid", vec![EventStatus::Succeeded]),
            (
                "declined-but-paid",
                vec![EventStatus::Declined, EventStatus::Failed],
            ),
            ("succeeded-unpaid", vec![EventStatus::Succeeded]),
            ("declined", vec![EventStatus::Declined]),
        ]
        .into_iter()
        .map(|(k, statuses)| {
            let events = statuses.into_iter().map(|s| event(k, s, Some(k))).collect();
            (IdempotencyKey::parse(k).unwrap(), events)
        })
        .collect();
        let moved = executed(&["paid", "declined-but-paid", "lost", "stray"]);
        let ledger = Ledger::new(&plan, &[], &moved);
        let found = ledger.false_outcomes(&terminal);
        assert_eq!(found.count, 2, "{found:?}");
        assert_eq!(found.examples[0]["key"], "declined-but-paid");
        assert_eq!(found.examples[0]["false"], "moved_but_reported_not");
        assert_eq!(found.examples[1]["false"], "succeeded_but_never_moved");
        assert_eq!(ledger.unaccounted(), 1, "stray");
    }
}
