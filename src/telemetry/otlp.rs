//! Optional export of traces over OTLP/HTTP (protobuf), off unless
//! `telemetry.otlp_endpoint` or the standard `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`
//! names a collector. Spans wait in the SDK's bounded queue (past 2048 they are
//! dropped) and go in batches from a thread of its own with a timeout, so a collector
//! that is down or slow loses spans and never holds or fails a payment.

use crate::config::TelemetrySettings;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// How long one batch may take to reach the collector.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The layer that exports spans, when a collector is configured (once per process).
pub(super) fn layer<S>(settings: &TelemetrySettings) -> Option<impl Layer<S> + use<S>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let configured = settings.otlp_endpoint.trim();
    let from_env = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()));
    if (configured.is_empty() && !from_env) || PROVIDER.get().is_some() {
        return None;
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_timeout(EXPORT_TIMEOUT);
    if !configured.is_empty() {
        let traces = format!("{}/v1/traces", configured.trim_end_matches('/'));
        exporter = exporter.with_endpoint(traces);
    }
    let exporter = match exporter.build() {
        Ok(e) => e,
        Err(e) => {
            // Logging is not up yet: said on stderr, and the process runs without export.
            eprintln!("payfleet: traces are not exported (telemetry.otlp_endpoint): {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("payfleet");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("payfleet");
    PROVIDER.set(provider).ok()?;
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Makes `span` (not yet entered) a child of a carried trace context (see
/// [`super::trace`]) in the exported trace: the same trace id as the command's
/// traceparent, its sampled flag and tracestate. Without export, or without a valid
/// context, nothing.
pub fn continue_in(span: &tracing::Span, carried: Option<&str>) {
    if PROVIDER.get().is_none() {
        return;
    }
    let Some((traceparent, tracestate)) = carried.map(super::trace::split) else {
        return;
    };
    let Some(p) = super::trace::parse(traceparent) else {
        return;
    };
    let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
        TraceId::from_hex(p.trace_id),
        SpanId::from_hex(p.parent_id),
        u8::from_str_radix(p.flags, 16),
    ) else {
        return;
    };
    let state = tracestate
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let parent = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, state);
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
}

/// Sends the spans still queued (a stopping process calls it last); blocks up to the
/// export timeout. Without export, nothing.
pub fn flush_traces() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}
