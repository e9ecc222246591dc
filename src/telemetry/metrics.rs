use super::label::{
    CallbackResult, ConnectionCut, DeadLetterReason, Finished, HttpClass, Label, LagSince,
    Listener, ProviderRequest, RateLimitDecision, ReconcilerAction, RequestResult, RetryReason,
    Service, Stage,
};
use crate::contract::{EventStatus, Method, Operation, ProviderName, State};
use prometheus::core::{MetricVec, MetricVecBuilder};
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
    pub(super) registry: Registry,
    pub(super) commands_received: IntCounterVec,
    pub(super) commands_finished: IntCounterVec,
    pub(super) command_duration: HistogramVec,
    pub(super) stage_duration: HistogramVec,
    pub(super) provider_requests: IntCounterVec,
    pub(super) provider_http: IntCounterVec,
    pub(super) provider_duration: HistogramVec,
    pub(super) in_flight: IntGauge,
    pub(super) retries: IntCounterVec,
    pub(super) dead_letters: IntCounterVec,
    pub(super) duplicates: IntCounterVec,
    pub(super) callbacks: IntCounterVec,
    pub(super) transitions: IntCounterVec,
    pub(super) events_published: IntCounterVec,
    pub(super) reconnects: IntCounterVec,
    pub(super) reconciler: IntCounterVec,
    pub(super) callbacks_received: IntCounterVec,
    pub(super) callbacks_verified: IntCounterVec,
    pub(super) payment_events: IntCounterVec,
    pub(super) callback_lag: HistogramVec,
    pub(super) payments_open: IntGauge,
    pub(super) payments_awaiting: IntGaugeVec,
    pub(super) rate_limit_decisions: IntCounterVec,
    pub(super) rate_limit_wait: HistogramVec,
    pub(super) connections_open: IntGaugeVec,
    pub(super) connections_cut: IntCounterVec,
    pub(super) holds: IntGaugeVec,
    pub(super) breaker_trips: IntCounterVec,
    pub(super) breaker_probes: IntCounterVec,
    pub(super) time_to_certainty: HistogramVec,
    pub(super) delay_queue_stalled: IntGaugeVec,
}

/// Slow things: callbacks arrive seconds to hours after the request.
const LAG_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
];

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
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, …
        // (Linux: read from /proc/self).
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("unique metric");
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
            provider_http: counter(
                &r,
                "payfleet_provider_http_requests_total",
                "HTTP exchanges of provider requests, by HTTP class (2xx..5xx, timeout, connect, broken).",
                &["provider", "method", "request", "class"],
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
            connections_open: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "payfleet_http_connections_open",
                        "HTTP connections being served, by listener (callbacks, ops).",
                    ),
                    &["listener"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            connections_cut: counter(
                &r,
                "payfleet_http_connections_cut_total",
                "HTTP connections the server closed before its client: past the cap (full: \
                 answered 503; shed: unanswered) or a timeout (header, body, idle).",
                &["listener", "reason"],
            ),
            holds: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "payfleet_holds",
                        "Holds in force (1 each), as this process last read them: no new \
                         request goes to the provider or account (`all`: every account); \
                         `by` operator or breaker.",
                    ),
                    &["provider", "account", "by"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            breaker_trips: counter(
                &r,
                "payfleet_breaker_trips_total",
                "Times a worker's breaker found an account failing and held it.",
                &["provider"],
            ),
            breaker_probes: counter(
                &r,
                "payfleet_breaker_probes_total",
                "Status-query probes of accounts the breaker holds, by result (answered: hold lifted).",
                &["provider", "result"],
            ),
            time_to_certainty: histogram_with(
                &r,
                "payfleet_time_to_certainty_seconds",
                "From a payment's first claim to its terminal event (by worker, gateway or \
                 reconciler): how long its outcome was not known. Rejected commands are \
                 not counted.",
                &["provider", "method"],
                LAG_BUCKETS,
            ),
            delay_queue_stalled: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "payfleet_delay_queue_stalled",
                        "1 while a delay queue keeps what expires in it instead of handing \
                         it back (its canary is late): parked commands wait there. Reported \
                         by the leading reconciler.",
                    ),
                    &["delay_ms"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            registry: r,
        };
        metrics.start_at_zero();
        metrics
    }

    /// Creates every known bounded label combination, so dashboards and alerts have
    /// series (at zero) before the first event of a kind.
    fn start_at_zero(&self) {
        zero(&self.stage_duration, &[], Stage::ALL);
        zero(&self.events_published, &[], EventStatus::ALL.as_slice());
        zero(&self.dead_letters, &[], DeadLetterReason::ALL);
        zero(&self.reconciler, &[], ReconcilerAction::ALL);
        zero(&self.reconnects, &[], Service::ALL);
        zero(&self.transitions, &[], State::ALL.as_slice());
        for listener in Listener::ALL.iter().map(|l| l.as_str()) {
            self.connections_open.with_label_values(&[listener]);
            zero(&self.connections_cut, &[listener], ConnectionCut::ALL);
        }
        for provider in ProviderName::ALL.map(ProviderName::as_str) {
            self.commands_received.with_label_values(&[provider]);
            self.callbacks_received.with_label_values(&[provider]);
            self.callbacks_verified.with_label_values(&[provider]);
            self.rate_limit_wait.with_label_values(&[provider]);
            self.breaker_trips.with_label_values(&[provider]);
            for result in ["answered", "failed"] {
                self.breaker_probes.with_label_values(&[provider, result]);
            }
            for since in LagSince::ALL {
                self.callback_lag
                    .with_label_values(&[provider, since.as_str()]);
            }
            zero(&self.callbacks, &[provider], CallbackResult::ALL);
            zero(&self.retries, &[provider], RetryReason::ALL);
            zero(
                &self.rate_limit_decisions,
                &[provider],
                RateLimitDecision::ALL,
            );
            for operation in Operation::ALL.map(Operation::as_str) {
                self.command_duration
                    .with_label_values(&[provider, operation]);
            }
        }
        for method in Method::ALL {
            let (provider, m) = (method.provider().as_str(), method.as_str());
            self.payments_awaiting.with_label_values(&[provider, m]);
            self.time_to_certainty.with_label_values(&[provider, m]);
            for request in ProviderRequest::ALL.iter().map(|r| r.as_str()) {
                self.provider_duration
                    .with_label_values(&[provider, m, request]);
                zero(
                    &self.provider_requests,
                    &[provider, m, request],
                    RequestResult::ALL,
                );
                zero(&self.provider_http, &[provider, m, request], HttpClass::ALL);
            }
            for operation in Operation::ALL.map(Operation::as_str) {
                let at = [provider, m, operation];
                zero(&self.payment_events, &at, EventStatus::ALL.as_slice());
                for outcome in Finished::all() {
                    self.commands_finished.with_label_values(&[
                        provider,
                        m,
                        operation,
                        outcome.as_str(),
                    ]);
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
}

/// Creates the series `at` + each of `values` at zero.
fn zero<B: MetricVecBuilder, L: Label>(vec: &MetricVec<B>, at: &[&str], values: &[L]) {
    for value in values {
        let labels: Vec<&str> = at.iter().copied().chain([value.as_str()]).collect();
        vec.with_label_values(&labels);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn line<'a>(text: &'a str, series: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(series))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn process_metrics_are_served() {
        let text = Metrics::new("worker").render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} in\n{text}"
            );
        }
    }

    #[test]
    fn known_series_start_at_zero() {
        let text = Metrics::new("worker").render();
        for stage in Stage::ALL.iter().map(|s| s.as_str()) {
            let count = format!("payfleet_stage_duration_seconds_count{{stage=\"{stage}\"}}");
            assert_eq!(line(&text, &count), format!("{count} 0"));
        }
        for series in [
            "payfleet_dead_letters_total{reason=\"undecodable\"} 0",
            "payfleet_rate_limit_decisions_total{decision=\"fallback\",provider=\"ecommpay\"} 0",
            "payfleet_payment_events_total{method=\"homebank\",operation=\"payout\",provider=\"ecommpay\",status=\"succeeded\"} 0",
            "payfleet_reconnects_total{service=\"redis\"} 0",
            "payfleet_callbacks_total{provider=\"ecommpay\",result=\"too_early\"} 0",
            "payfleet_callbacks_total{provider=\"ecommpay\",result=\"late\"} 0",
            "payfleet_callbacks_total{provider=\"epay\",result=\"refused_secret\"} 0",
            "payfleet_state_transitions_total{to=\"action_required\"} 0",
            "payfleet_provider_http_requests_total{class=\"timeout\",method=\"homebank\",provider=\"ecommpay\",request=\"submit\"} 0",
        ] {
            assert!(text.lines().any(|l| l == series), "no {series}");
        }
    }
}
