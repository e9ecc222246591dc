use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One process's metrics. Labels take only bounded values: provider, method, operation,
/// outcome, status class, stage, reason class. Never an id, a key or an amount.
pub struct Metrics {
    registry: Registry,
    commands_received: IntCounterVec,
    commands_finished: IntCounterVec,
    command_duration: HistogramVec,
    stage_duration: HistogramVec,
    provider_requests: IntCounterVec,
    provider_duration: HistogramVec,
    in_flight: IntGauge,
    retries: IntCounterVec,
    dead_letters: IntCounterVec,
    duplicates: IntCounterVec,
    callbacks: IntCounterVec,
    transitions: IntCounterVec,
    events_published: IntCounterVec,
    reconnects: IntCounterVec,
    reconciler: IntCounterVec,
    callbacks_received: IntCounterVec,
    callbacks_verified: IntCounterVec,
    payment_events: IntCounterVec,
    callback_lag: HistogramVec,
    payments_open: IntGauge,
    payments_awaiting: IntGaugeVec,
    rate_limit_decisions: IntCounterVec,
    rate_limit_wait: HistogramVec,
}

/// Slow things: callbacks arrive seconds to hours after the request.
const LAG_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
];

/// Pipeline stages of [`Metrics::stage`], started at zero.
const STAGES: &[&str] = &[
    "queue_wait",
    "validate",
    "idempotency",
    "rate_limit",
    "token",
    "provider",
    "publish",
];

/// Outcomes of [`Metrics::command_finished`] besides the event statuses.
const OUTCOMES: &[&str] = &[
    "retrying",
    "duplicate",
    "dead_lettered",
    "fenced",
    "unresolved",
    "awaiting",
    "record_lost",
    "handed_back",
];

const PROVIDER_RESULTS: &[&str] = &[
    "ok",
    "not_sent",
    "unknown",
    "refused",
    "already_exists",
    "throttled",
];
const PROVIDER_REQUESTS: &[&str] = &["submit", "status"];
const CALLBACK_RESULTS: &[&str] = &[
    "applied",
    "duplicate",
    "conflicting",
    "refused_signature",
    "malformed",
    "unknown_payment",
    "in_progress",
    "error",
];
const RETRY_REASONS: &[&str] = &[
    "busy",
    "event_pending",
    "status_not_yet",
    "not_sent",
    "unknown",
    "throttled",
];
const DEAD_LETTER_REASONS: &[&str] = &["undecodable", "idempotency_conflict", "delivery_limit"];
const RECONCILER_ACTIONS: &[&str] = &[
    "settled",
    "expired",
    "never_sent",
    "still_open",
    "dropped",
    "error",
];
const SERVICES: &[&str] = &["amqp", "redis"];
const CALLBACK_LAG_SINCE: &[&str] = &["submitted", "provider_time"];
const RATE_LIMIT_DECISIONS: &[&str] = &["allowed", "waited", "deferred", "fallback"];

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    histogram_with(r, name, help, labels, LATENCY_BUCKETS)
}

fn histogram_with(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

impl Metrics {
    pub fn new(process: &str) -> Self {
        let r = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new("payfleet_build_info", "Build of this process (always 1)."),
            &["version", "process"],
        )
        .expect("valid metric");
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), process])
            .set(1);
        r.register(Box::new(build)).expect("unique metric");
        let in_flight = gauge(
            &r,
            "payfleet_commands_in_flight",
            "Commands a worker is processing now.",
        );
        let metrics = Metrics {
            commands_received: counter(
                &r,
                "payfleet_commands_received_total",
                "Command deliveries taken from the bus.",
                &["provider"],
            ),
            commands_finished: counter(
                &r,
                "payfleet_commands_finished_total",
                "Commands a worker finished handling, by outcome.",
                &["provider", "method", "operation", "outcome"],
            ),
            command_duration: histogram(
                &r,
                "payfleet_command_duration_seconds",
                "From publish (x-payfleet-published-ms, else the AMQP timestamp) to the worker's ack.",
                &["provider", "operation"],
            ),
            stage_duration: histogram(
                &r,
                "payfleet_stage_duration_seconds",
                "Time spent in each pipeline stage.",
                &["stage"],
            ),
            provider_requests: counter(
                &r,
                "payfleet_provider_requests_total",
                "Requests to providers, by result class.",
                &["provider", "method", "request", "result"],
            ),
            provider_duration: histogram(
                &r,
                "payfleet_provider_request_duration_seconds",
                "Provider request latency.",
                &["provider", "method", "request"],
            ),
            in_flight,
            retries: counter(
                &r,
                "payfleet_retries_total",
                "Commands parked in a delay queue for a later attempt.",
                &["provider", "reason"],
            ),
            dead_letters: counter(
                &r,
                "payfleet_dead_letters_total",
                "Messages sent to the dead-letter queue.",
                &["reason"],
            ),
            duplicates: counter(
                &r,
                "payfleet_duplicate_commands_total",
                "Deliveries of a command already handled or in progress.",
                &["provider", "state"],
            ),
            callbacks: counter(
                &r,
                "payfleet_callbacks_total",
                "Provider callbacks received, by result.",
                &["provider", "result"],
            ),
            transitions: counter(
                &r,
                "payfleet_state_transitions_total",
                "State machine transitions, by new state.",
                &["to"],
            ),
            events_published: counter(
                &r,
                "payfleet_events_published_total",
                "Events confirmed by the broker.",
                &["status"],
            ),
            reconciler: counter(
                &r,
                "payfleet_reconciler_actions_total",
                "What the reconciler did with a payment it checked.",
                &["action"],
            ),
            reconnects: counter(
                &r,
                "payfleet_reconnects_total",
                "Reconnections to a backing service.",
                &["service"],
            ),
            callbacks_received: counter(
                &r,
                "payfleet_callbacks_received_total",
                "Provider callback requests received, before any check.",
                &["provider"],
            ),
            callbacks_verified: counter(
                &r,
                "payfleet_callbacks_verified_total",
                "Provider callbacks proven authentic (signature or secret hash).",
                &["provider"],
            ),
            payment_events: counter(
                &r,
                "payfleet_payment_events_total",
                "Events announced for payments (by worker, gateway or reconciler), by status.",
                &["provider", "method", "operation", "status"],
            ),
            callback_lag: histogram_with(
                &r,
                "payfleet_callback_lag_seconds",
                "Age of the callback that settled a payment when it arrived: since the last \
                 submission, or since the provider's own operation time.",
                &["provider", "since"],
                LAG_BUCKETS,
            ),
            payments_open: gauge(
                &r,
                "payfleet_payments_open",
                "Payments waiting for the provider's result (the reconciler's watch list).",
            ),
            payments_awaiting: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "payfleet_payments_awaiting",
                        "Payments waiting for the provider's result, by provider and method \
                         (counted by the reconciler's leader every few seconds).",
                    ),
                    &["provider", "method"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            rate_limit_decisions: counter(
                &r,
                "payfleet_rate_limit_decisions_total",
                "Rate-limiter decisions: allowed, waited, deferred (to a delay queue), fallback (Redis away, local share used).",
                &["provider", "decision"],
            ),
            rate_limit_wait: histogram(
                &r,
                "payfleet_rate_limit_wait_seconds",
                "Wait a rate limit imposed on a request (for a deferral, the time it is parked).",
                &["provider"],
            ),
            registry: r,
        };
        metrics.start_at_zero();
        metrics
    }

    /// Creates every known bounded label combination, so dashboards and alerts have
    /// series (at zero) before the first event of a kind.
    fn start_at_zero(&self) {
        use crate::contract::{EventStatus, Method, Operation, ProviderName};
        for stage in STAGES {
            self.stage_duration.with_label_values(&[stage]);
        }
        for status in EventStatus::ALL {
            self.events_published.with_label_values(&[status.as_str()]);
        }
        for reason in DEAD_LETTER_REASONS {
            self.dead_letters.with_label_values(&[reason]);
        }
        for action in RECONCILER_ACTIONS {
            self.reconciler.with_label_values(&[action]);
        }
        for service in SERVICES {
            self.reconnects.with_label_values(&[service]);
        }
        for name in [
            "received",
            "submitting",
            "submitted",
            "action_required",
            "unknown",
            "succeeded",
            "declined",
            "failed",
            "rejected",
        ] {
            self.transitions.with_label_values(&[name]);
        }
        for provider in ProviderName::ALL.map(ProviderName::as_str) {
            self.commands_received.with_label_values(&[provider]);
            self.callbacks_received.with_label_values(&[provider]);
            self.callbacks_verified.with_label_values(&[provider]);
            for since in CALLBACK_LAG_SINCE {
                self.callback_lag.with_label_values(&[provider, since]);
            }
            self.rate_limit_wait.with_label_values(&[provider]);
            for result in CALLBACK_RESULTS {
                self.callbacks.with_label_values(&[provider, result]);
            }
            for reason in RETRY_REASONS {
                self.retries.with_label_values(&[provider, reason]);
            }
            for decision in RATE_LIMIT_DECISIONS {
                self.rate_limit_decisions
                    .with_label_values(&[provider, decision]);
            }
            for operation in Operation::ALL.map(Operation::as_str) {
                self.command_duration
                    .with_label_values(&[provider, operation]);
            }
        }
        for method in Method::ALL {
            let (provider, m) = (method.provider().as_str(), method.as_str());
            self.payments_awaiting.with_label_values(&[provider, m]);
            for request in PROVIDER_REQUESTS {
                self.provider_duration
                    .with_label_values(&[provider, m, request]);
                for result in PROVIDER_RESULTS {
                    self.provider_requests
                        .with_label_values(&[provider, m, request, result]);
                }
            }
            for operation in Operation::ALL.map(Operation::as_str) {
                let statuses = EventStatus::ALL.map(EventStatus::as_str);
                for status in statuses {
                    self.payment_events
                        .with_label_values(&[provider, m, operation, status]);
                }
                for outcome in statuses.iter().chain(OUTCOMES) {
                    self.commands_finished
                        .with_label_values(&[provider, m, operation, outcome]);
                }
            }
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }

    pub fn command_received(&self, provider: &str) {
        self.commands_received.with_label_values(&[provider]).inc();
    }

    pub fn in_flight(&self) -> &IntGauge {
        &self.in_flight
    }

    pub fn command_finished(&self, provider: &str, method: &str, operation: &str, outcome: &str) {
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

    pub fn stage(&self, stage: &str, seconds: f64) {
        self.stage_duration
            .with_label_values(&[stage])
            .observe(seconds);
    }

    /// A provider request made outside one method's flow (e.g. a token), or by a caller
    /// that does not know the method: recorded with `method="none"`.
    pub fn provider_request(&self, provider: &str, request: &str, result: &str, seconds: f64) {
        self.provider_call(provider, "none", request, result, seconds);
    }

    /// One request to a provider: `request` is submit, status, token, ...; `result` is
    /// the result class (`ok` or a `ProviderError` class).
    pub fn provider_call(
        &self,
        provider: &str,
        method: &str,
        request: &str,
        result: &str,
        seconds: f64,
    ) {
        tracing::debug!(
            provider,
            method,
            request,
            result,
            seconds,
            "provider request"
        );
        self.provider_requests
            .with_label_values(&[provider, method, request, result])
            .inc();
        self.provider_duration
            .with_label_values(&[provider, method, request])
            .observe(seconds);
    }

    pub fn retry(&self, provider: &str, reason: &str, attempt: u32, delay_ms: u64) {
        tracing::warn!(
            provider,
            reason,
            attempt,
            delay_ms,
            "command parked for a retry"
        );
        self.retries.with_label_values(&[provider, reason]).inc();
    }

    pub fn dead_letter(&self, reason_class: &str, reason: &str) {
        tracing::error!(reason_class, reason, "message dead-lettered");
        self.dead_letters.with_label_values(&[reason_class]).inc();
    }

    pub fn duplicate(&self, provider: &str, state: &str) {
        tracing::info!(provider, state, "duplicate delivery of a known command");
        self.duplicates.with_label_values(&[provider, state]).inc();
    }

    pub fn callback(&self, provider: &str, result: &str) {
        tracing::info!(provider, result, "callback");
        self.callbacks.with_label_values(&[provider, result]).inc();
    }

    /// An event announced for a payment: the provider view's outcomes, wherever the
    /// outcome was learnt (the worker's answer, a callback, the reconciler).
    pub fn payment_event(&self, provider: &str, method: &str, operation: &str, status: &str) {
        self.payment_events
            .with_label_values(&[provider, method, operation, status])
            .inc();
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
    pub fn callback_lag(&self, provider: &str, since: &str, seconds: f64) {
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
    pub fn payments_awaiting(
        &self,
        counts: &std::collections::HashMap<crate::contract::Method, u64>,
    ) {
        for method in crate::contract::Method::ALL {
            let n = counts.get(&method).copied().unwrap_or(0);
            self.payments_awaiting
                .with_label_values(&[method.provider().as_str(), method.as_str()])
                .set(n as i64);
        }
    }

    pub fn transition(&self, to: &str) {
        tracing::debug!(to, "state transition");
        self.transitions.with_label_values(&[to]).inc();
    }

    pub fn event_published(&self, status: &str) {
        tracing::debug!(status, "event published");
        self.events_published.with_label_values(&[status]).inc();
    }

    pub fn reconciler_action(&self, action: &str) {
        tracing::debug!(action, "reconciler check");
        self.reconciler.with_label_values(&[action]).inc();
    }

    pub fn reconnect(&self, service: &str, error: &str) {
        tracing::warn!(service, error, "reconnecting");
        self.reconnects.with_label_values(&[service]).inc();
    }

    /// One rate-limiter decision (`allowed`, `waited`, `deferred`, `fallback`) and the
    /// wait it imposed.
    pub fn rate_limit(&self, provider: &str, decision: &str, wait_seconds: f64) {
        tracing::debug!(provider, decision, wait_seconds, "rate limit");
        self.rate_limit_decisions
            .with_label_values(&[provider, decision])
            .inc();
        self.rate_limit_wait
            .with_label_values(&[provider])
            .observe(wait_seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, series: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(series))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn known_series_start_at_zero() {
        let text = Metrics::new("worker").render();
        for stage in STAGES {
            let count = format!("payfleet_stage_duration_seconds_count{{stage=\"{stage}\"}}");
            assert_eq!(line(&text, &count), format!("{count} 0"));
        }
        for series in [
            "payfleet_dead_letters_total{reason=\"undecodable\"} 0",
            "payfleet_rate_limit_decisions_total{decision=\"fallback\",provider=\"ecommpay\"} 0",
            "payfleet_payment_events_total{method=\"homebank\",operation=\"payout\",provider=\"ecommpay\",status=\"succeeded\"} 0",
            "payfleet_reconnects_total{service=\"redis\"} 0",
        ] {
            assert!(text.lines().any(|l| l == series), "no {series}");
        }
    }

    #[test]
    fn rate_limit_decisions_and_waits_are_recorded() {
        let m = Metrics::new("worker");
        m.rate_limit("ecommpay", "waited", 0.2);
        m.rate_limit("ecommpay", "allowed", 0.0);
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
}
