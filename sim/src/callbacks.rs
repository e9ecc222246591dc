//! Delivering callbacks the way ECommPay does: after a delay, resent until HTTP 200.

use super::Sandbox;
use super::faults::roll;
use super::stats::Stats;
use std::sync::Arc;
use std::time::Duration;

fn stats(sandbox: &Sandbox, f: impl FnOnce(&mut Stats)) {
    f(&mut sandbox.stats.lock().expect("stats lock"));
}

/// Sends `body` to `url` in the background, resending until it gets HTTP 200.
/// Injected faults may lose it, send it late, or send it twice.
pub fn deliver(sandbox: Arc<Sandbox>, url: String, body: serde_json::Value) {
    let faults = sandbox.faults().callbacks;
    stats(&sandbox, |s| s.callbacks.scheduled += 1);
    if roll(faults.loss_rate) {
        stats(&sandbox, |s| s.fault("callback_lost"));
        return;
    }
    let mut delay = sandbox.settings.callback_delay_ms;
    if roll(faults.late_rate) {
        stats(&sandbox, |s| s.fault("callback_late"));
        delay += faults.late_ms;
    }
    if roll(faults.duplicate_rate) {
        stats(&sandbox, |s| s.fault("callback_duplicated"));
        send(sandbox.clone(), url.clone(), body.clone(), delay);
    }
    send(sandbox, url, body, delay);
}

fn send(sandbox: Arc<Sandbox>, url: String, body: serde_json::Value, delay_ms: u64) {
    tokio::spawn(async move {
        let s = &sandbox.settings;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        for attempt in 0..s.callback_max_attempts {
            stats(&sandbox, |s| s.callbacks.attempts += 1);
            let answer = sandbox.http.post(&url).json(&body).send().await;
            if matches!(&answer, Ok(r) if r.status() == reqwest::StatusCode::OK) {
                stats(&sandbox, |s| s.callbacks.delivered += 1);
                return;
            }
            let waits = &s.callback_retry_ms;
            let wait = waits[(attempt as usize).min(waits.len() - 1)];
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        stats(&sandbox, |s| s.callbacks.abandoned += 1);
    });
}
