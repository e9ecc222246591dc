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
    rate_limit_decisions: IntCounterVec,
    rate_limit_wait: HistogramVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
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
        let in_flight = IntGauge::new(
            "payfleet_commands_in_flight",
            "Commands a worker is processing now.",
        )
        .expect("valid metric");
        r.register(Box::new(in_flight.clone()))
            .expect("unique metric");
        Metrics {
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
                "From publish (AMQP timestamp) to the worker's ack.",
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
                &["provider", "request", "result"],
            ),
            provider_duration: histogram(
                &r,
                "payfleet_provider_request_duration_seconds",
                "Provider request latency.",
                &["provider", "request"],
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

    pub fn provider_request(&self, provider: &str, request: &str, result: &str, seconds: f64) {
        tracing::debug!(provider, request, result, seconds, "provider request");
        self.provider_requests
            .with_label_values(&[provider, request, result])
            .inc();
        self.provider_duration
            .with_label_values(&[provider, request])
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
