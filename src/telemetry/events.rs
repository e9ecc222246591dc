//! One call per thing that happens: each writes its log line and records its metric
//! together, with label values from the enums in [`label`](super::label) only.

use super::Metrics;
use super::label::{
    CallbackResult, ConnectionCut, DeadLetterReason, Finished, HttpClass, Label, LagSince,
    Listener, ProviderRequest, RateLimitDecision, ReconcilerAction, RequestResult, RetryReason,
    Service, Stage,
};
use crate::contract::hold::{Hold, HoldTarget};
use crate::contract::{EventStatus, Method, State};
use prometheus::IntGauge;

impl Metrics {
    /// The breaker tripped: `set` if its hold is new (another worker may have set it).
    pub fn breaker_tripped(&self, hold: &Hold, set: bool) {
        let provider = hold.target.provider.as_str();
        if set {
            tracing::warn!(target = %hold.target, reason = hold.reason, "breaker tripped: account held");
        }
        self.breaker_trips.with_label_values(&[provider]).inc();
    }

    /// A probe of an account the breaker holds: `back` if the provider answered.
    pub fn breaker_probed(&self, target: &HoldTarget, back: bool) {
        let result = if back { "answered" } else { "failed" };
        if back {
            tracing::warn!(%target, "breaker probe answered: hold lifted");
        } else {
            tracing::info!(%target, "breaker probe failed: the account stays held");
        }
        self.breaker_probes
            .with_label_values(&[target.provider.as_str(), result])
            .inc();
    }

    /// The holds in force changed (read by a worker): one series per hold, and the log
    /// line that says which.
    pub fn holds_changed(&self, holds: &[Hold]) {
        let targets: Vec<String> = holds.iter().map(|h| h.target.to_string()).collect();
        tracing::warn!(holds = ?targets, "operators' holds in force changed");
        self.holds.reset();
        for h in holds {
            let account = h.target.account.as_deref().unwrap_or("all");
            let by = if h.automatic { "breaker" } else { "operator" };
            self.holds
                .with_label_values(&[h.target.provider.as_str(), account, by])
                .set(1);
        }
    }

    /// The leading reconciler's look at a delay queue (`delay_ms`, configured): the
    /// gauge, and a log line when the queue stalls or flows again.
    pub fn delay_queue_flow(&self, queue: &str, delay_ms: u64, stalled: bool) {
        let gauge = self
            .delay_queue_stalled
            .with_label_values(&[&delay_ms.to_string()]);
        match (gauge.get() == 1, stalled) {
            (false, true) => tracing::error!(
                queue,
                "delay queue stalled: its canary has not come back, so what expires there \
                 is kept, not handed back; parked commands wait. Move the queue's leader \
                 (README, runbook: a delay queue stalled)"
            ),
            (true, false) => tracing::warn!(queue, "delay queue flows again"),
            _ => {}
        }
        gauge.set(stalled.into());
    }

    /// This process no longer leads the reconcilers: another reports the delay queues.
    pub fn delay_queues_unwatched(&self) {
        self.delay_queue_stalled.reset();
    }

    pub fn command_received(&self, provider: &str) {
        self.commands_received.with_label_values(&[provider]).inc();
    }

    pub fn in_flight(&self) -> &IntGauge {
        &self.in_flight
    }

    pub fn command_finished(
        &self,
        provider: &str,
        method: &str,
        operation: &str,
        outcome: Finished,
    ) {
        let outcome = outcome.as_str();
        tracing::info!(provider, method, operation, outcome, "command finished");
        self.commands_finished
            .with_label_values(&[provider, method, operation, outcome])
            .inc();
    }

    pub fn command_duration(&self, provider: &str, operation: &str, seconds: f64) {
        self.command_duration
            .with_label_values(&[provider, operation])
            .observe(seconds);
    }

    pub fn stage(&self, stage: Stage, seconds: f64) {
        self.stage_duration
            .with_label_values(&[stage.as_str()])
            .observe(seconds);
    }

    /// One request to a provider: `request` is submit or status; `result` is the result
    /// class (`ok` or a `ProviderError` class); `http` the class of each HTTP exchange
    /// it took (a token, a retried connection, a second status path), in order.
    pub fn provider_call(
        &self,
        provider: &str,
        method: &str,
        request: ProviderRequest,
        result: RequestResult,
        http: &[HttpClass],
        seconds: f64,
    ) {
        let (request, result) = (request.as_str(), result.as_str());
        let classes: Vec<&str> = http.iter().map(|c| c.as_str()).collect();
        tracing::debug!(
            provider,
            method,
            request,
            result,
            http = ?classes,
            seconds,
            "provider request"
        );
        self.provider_requests
            .with_label_values(&[provider, method, request, result])
            .inc();
        for class in classes {
            self.provider_http
                .with_label_values(&[provider, method, request, class])
                .inc();
        }
        self.provider_duration
            .with_label_values(&[provider, method, request])
            .observe(seconds);
    }

    pub fn retry(&self, provider: &str, reason: RetryReason, attempt: u32, delay_ms: u64) {
        let reason = reason.as_str();
        tracing::warn!(
            provider,
            reason,
            attempt,
            delay_ms,
            "command parked for a retry"
        );
        self.retries.with_label_values(&[provider, reason]).inc();
    }

    pub fn dead_letter(&self, reason_class: DeadLetterReason, reason: &str) {
        let reason_class = reason_class.as_str();
        tracing::error!(reason_class, reason, "message dead-lettered");
        self.dead_letters.with_label_values(&[reason_class]).inc();
    }

    pub fn duplicate(&self, provider: &str, state: State) {
        let state = state.as_str();
        tracing::info!(provider, state, "duplicate delivery of a known command");
        self.duplicates.with_label_values(&[provider, state]).inc();
    }

    pub fn callback(&self, provider: &str, result: CallbackResult) {
        let result = result.as_str();
        tracing::info!(provider, result, "callback");
        self.callbacks.with_label_values(&[provider, result]).inc();
    }

    /// An event announced for a payment: the provider view's outcomes, wherever the
    /// outcome was learnt (the worker's answer, a callback, the reconciler).
    pub fn payment_event(
        &self,
        provider: &str,
        method: &str,
        operation: &str,
        status: EventStatus,
    ) {
        let status = status.as_str();
        self.payment_events
            .with_label_values(&[provider, method, operation, status])
            .inc();
    }

    /// A payment's terminal event went out `age` after its record was created: how long
    /// its outcome was not known.
    pub fn time_to_certainty(&self, method: Method, age: std::time::Duration) {
        self.time_to_certainty
            .with_label_values(&[method.provider().as_str(), method.as_str()])
            .observe(age.as_secs_f64());
    }

    /// A callback request arrived (counted before its signature or body is checked).
    pub fn callback_received(&self, provider: &str) {
        self.callbacks_received.with_label_values(&[provider]).inc();
    }

    /// A callback proved authentic (its signature or secret hash matched).
    pub fn callback_verified(&self, provider: &str) {
        self.callbacks_verified.with_label_values(&[provider]).inc();
    }

    /// A callback settled a payment `seconds` after `since`: `submitted` (payfleet's
    /// last submission: how long the provider took) or `provider_time` (the provider's
    /// operation time: how late the callback was delivered).
    pub fn callback_lag(&self, provider: &str, since: LagSince, seconds: f64) {
        let since = since.as_str();
        tracing::debug!(provider, since, seconds, "callback lag");
        self.callback_lag
            .with_label_values(&[provider, since])
            .observe(seconds.max(0.0));
    }

    /// How many payments wait for a provider's result now.
    pub fn payments_open(&self, open: u64) {
        self.payments_open.set(open as i64);
    }

    /// How many payments of each method wait for a provider's result; methods not
    /// counted are set to zero.
    pub fn payments_awaiting(&self, counts: &std::collections::HashMap<Method, u64>) {
        for method in Method::ALL {
            let n = counts.get(&method).copied().unwrap_or(0);
            self.payments_awaiting
                .with_label_values(&[method.provider().as_str(), method.as_str()])
                .set(n as i64);
        }
    }

    pub fn transition(&self, to: State) {
        let to = to.as_str();
        tracing::debug!(to, "state transition");
        self.transitions.with_label_values(&[to]).inc();
    }

    pub fn event_published(&self, status: EventStatus) {
        let status = status.as_str();
        tracing::debug!(status, "event published");
        self.events_published.with_label_values(&[status]).inc();
    }

    pub fn reconciler_action(&self, action: ReconcilerAction) {
        let action = action.as_str();
        tracing::debug!(action, "reconciler check");
        self.reconciler.with_label_values(&[action]).inc();
    }

    pub fn reconnect(&self, service: Service, error: &str) {
        let service = service.as_str();
        tracing::warn!(service, error, "reconnecting");
        self.reconnects.with_label_values(&[service]).inc();
    }

    /// One rate-limiter decision (`allowed`, `waited`, `deferred`, `fallback`) and the
    /// wait it imposed.
    pub fn rate_limit(&self, provider: &str, decision: RateLimitDecision, wait_seconds: f64) {
        let decision = decision.as_str();
        tracing::debug!(provider, decision, wait_seconds, "rate limit");
        self.rate_limit_decisions
            .with_label_values(&[provider, decision])
            .inc();
        self.rate_limit_wait
            .with_label_values(&[provider])
            .observe(wait_seconds);
    }

    /// A connection the server closed before its client did (a limit reached). Logged
    /// at debug: under attack there is one per connection; the metric shows them.
    pub fn connection_cut(&self, listener: Listener, reason: ConnectionCut) {
        let (listener, reason) = (listener.as_str(), reason.as_str());
        tracing::debug!(listener, reason, "connection cut");
        self.connections_cut
            .with_label_values(&[listener, reason])
            .inc();
    }

    pub fn connections_open(&self, listener: Listener) -> IntGauge {
        self.connections_open
            .with_label_values(&[listener.as_str()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::tests::line;

    #[test]
    fn rate_limit_decisions_and_waits_are_recorded() {
        let m = Metrics::new("worker");
        m.rate_limit("ecommpay", RateLimitDecision::Waited, 0.2);
        m.rate_limit("ecommpay", RateLimitDecision::Allowed, 0.0);
        let text = m.render();
        assert!(
            line(
                &text,
                "payfleet_rate_limit_decisions_total{decision=\"waited\",provider=\"ecommpay\"}"
            )
            .ends_with(" 1")
        );
        assert!(
            line(
                &text,
                "payfleet_rate_limit_wait_seconds_count{provider=\"ecommpay\"}"
            )
            .ends_with(" 2")
        );
        assert!(
            line(
                &text,
                "payfleet_rate_limit_wait_seconds_sum{provider=\"ecommpay\"}"
            )
            .ends_with(" 0.2")
        );
    }

    #[test]
    fn each_hold_in_force_is_one_series_and_a_lifted_one_goes() {
        use crate::contract::hold::{Hold, HoldTarget};
        let hold = |t: &str| Hold {
            target: HoldTarget::parse(t).unwrap(),
            reason: "r".into(),
            by: "b".into(),
            since: chrono::Utc::now(),
            automatic: t.starts_with("epay"),
        };
        let m = Metrics::new("worker");
        m.holds_changed(&[hold("ecommpay"), hold("epay/default")]);
        let text = m.render();
        let all = "payfleet_holds{account=\"all\",by=\"operator\",provider=\"ecommpay\"}";
        assert_eq!(line(&text, all), format!("{all} 1"));
        let one = "payfleet_holds{account=\"default\",by=\"breaker\",provider=\"epay\"}";
        assert_eq!(line(&text, one), format!("{one} 1"));
        m.holds_changed(&[hold("epay/default")]);
        let text = m.render();
        assert!(!text.contains(all), "{text}");
        assert_eq!(line(&text, one), format!("{one} 1"));
    }
}
