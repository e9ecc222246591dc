//! The chaos run's verdict (one JSON document), and what it reads from Redis and the
//! sandbox.

use super::chaos_cluster::ClusterReport;
use payfleet::contract::IdempotencyKey;
use payfleet_sim::Stats;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub commands_published: usize,
    pub publishes: usize,
    pub commands_with_terminal_event: usize,
    /// Commands without a terminal event whose record says they wait for an operator
    /// (epay payments past the threshold that the provider still reports in progress):
    /// open and visible, not lost.
    pub awaiting_operator: usize,
    /// Up to ten of them, with what the sandbox executed and the record's note.
    pub awaiting_operator_keys: Vec<serde_json::Value>,
    pub lost: usize,
    /// Up to ten of the lost keys, with what the sandbox and Redis know of them.
    pub lost_keys: Vec<serde_json::Value>,
    /// Messages left in the dead-letter queue (reasons in the workers' logs).
    pub dead_letters: u32,
    pub keys_with_conflicting_terminal_statuses: usize,
    /// Payment ids (ECommPay) and invoice ids (epay) executed more than once.
    pub executed_more_than_once: usize,
    /// Commands executed under more than one payment or invoice id.
    pub keys_executed_under_several_ids: usize,
    /// Ids the sandbox executed that neither a command's key nor any event names
    /// (money moved that no command accounts for; expected 0).
    pub executions_no_command_names: usize,
    /// Commands reported `declined`, `failed` or `rejected` whose money moved at the
    /// sandbox, or `succeeded` whose money never did (expected 0).
    pub false_outcomes: usize,
    /// Up to ten of them, with what the sandbox executed.
    pub false_outcome_keys: Vec<serde_json::Value>,
    pub duplicate_submissions_refused: u64,
    pub terminal: BTreeMap<&'static str, usize>,
    /// Terminal statuses per `method.operation`.
    pub terminal_by_method: BTreeMap<String, BTreeMap<&'static str, usize>>,
    /// Banks of India purchases completed or declined at the bank page, and payouts
    /// held until the payout window opened.
    pub completed_at_the_bank: usize,
    pub deferred_payouts: usize,
    pub worker_kills: usize,
    pub broker_restarts: usize,
    pub redis_restarts: usize,
    pub redis_outage_seconds: u64,
    /// Hostile publications, and those that did not come to what they must: a
    /// `rejected` event, or processed like any other command.
    pub hostile_published: usize,
    pub hostile_unanswered: Vec<String>,
    /// Dead letters beyond the hostile publications that only the dead-letter queue can
    /// hold (an outage must cause none).
    pub dead_letters_unexplained: usize,
    /// Places (events, dead letters, Redis keys, logs, metrics) holding a card number
    /// of the run (expected none).
    pub card_data_found: Vec<String>,
    pub faults_injected: BTreeMap<String, u64>,
    pub duration_seconds: f64,
    pub logs: String,
    /// With `--cluster`: which nodes were killed when, what each cost, and whether the
    /// cluster is whole again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
    pub ok: bool,
}

/// Those of `open` whose record is noted overdue, with the note: the reconciler's word
/// that nothing but an operator (or the provider's final status) can settle them.
pub async fn awaiting_operator(
    store: &payfleet::state::StateStore,
    open: &[IdempotencyKey],
) -> HashMap<IdempotencyKey, String> {
    let mut awaiting = HashMap::new();
    for k in open {
        if let Ok(Some(rec)) = store.record(k).await
            && let Some(note) = rec.note.filter(|n| n.contains("overdue: "))
            && !rec.state.is_terminal()
        {
            awaiting.insert(k.clone(), note);
        }
    }
    awaiting
}

pub async fn sandbox_stats(port: u16) -> anyhow::Result<Stats> {
    Ok(
        reqwest::get(format!("http://127.0.0.1:{port}/sandbox/stats"))
            .await?
            .json()
            .await?,
    )
}
