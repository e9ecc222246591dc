//! Delivering callbacks the way the providers do: after a delay, resent until HTTP 200.
//!
//! ARCHITECTURE.md: ECommPay "resends a callback until it gets HTTP 200 (6 times every
//! 10 s, then growing intervals…)"; here the waits are `callback_retry_ms` (the last
//! one repeats) and the attempts `callback_max_attempts`.

use crate::Sandbox;
use crate::faults::roll;
use std::sync::Arc;
use std::time::Duration;

/// Sends `body` to `url` in the background, resending until it gets HTTP 200.
/// Injected faults may lose it, send it late, or send it twice.
pub fn deliver(sandbox: Arc<Sandbox>, url: String, body: serde_json::Value) {
    deliver_after(sandbox, url, body, 0);
}

/// As [`deliver`], `extra_ms` later than usual.
pub fn deliver_after(sandbox: Arc<Sandbox>, url: String, body: serde_json::Value, extra_ms: u64) {
    let faults = sandbox.faults().callbacks;
    sandbox.with_stats(|s| s.callbacks.scheduled += 1);
    if roll(faults.loss_rate) {
        sandbox.with_stats(|s| s.fault("callback_lost"));
        return;
    }
    let mut delay = sandbox.settings.callback_delay_ms + extra_ms;
    if roll(faults.late_rate) {
        sandbox.with_stats(|s| s.fault("callback_late"));
        delay += faults.late_ms;
    }
    if roll(faults.duplicate_rate) {
        sandbox.with_stats(|s| s.fault("callback_duplicated"));
        send(sandbox.clone(), url.clone(), body.clone(), delay);
    }
    send(sandbox, url, body, delay);
}

fn send(sandbox: Arc<Sandbox>, url: String, body: serde_json::Value, delay_ms: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let s = &sandbox.settings;
        for attempt in 0..s.callback_max_attempts {
            sandbox.with_stats(|s| s.callbacks.attempts += 1);
            let answer = sandbox.http.post(&url).json(&body).send().await;
            if matches!(&answer, Ok(r) if r.status() == reqwest::StatusCode::OK) {
                sandbox.with_stats(|s| s.callbacks.delivered += 1);
                return;
            }
            if attempt + 1 == s.callback_max_attempts {
                break;
            }
            let waits = &s.callback_retry_ms;
            let wait = waits
                .get(attempt as usize)
                .or(waits.last())
                .copied()
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        sandbox.with_stats(|s| s.callbacks.abandoned += 1);
    });
}
