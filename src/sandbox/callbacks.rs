//! Delivering callbacks the way ECommPay does: after a delay, resent until HTTP 200.

use super::Sandbox;
use std::sync::Arc;
use std::time::Duration;

/// Sends `body` to `url` in the background, resending until it gets HTTP 200.
pub fn deliver(sandbox: Arc<Sandbox>, url: String, body: serde_json::Value) {
    sandbox
        .stats
        .lock()
        .expect("stats lock")
        .callbacks
        .scheduled += 1;
    tokio::spawn(async move {
        let s = &sandbox.settings;
        tokio::time::sleep(Duration::from_millis(s.callback_delay_ms)).await;
        for attempt in 0..s.callback_max_attempts {
            sandbox.stats.lock().expect("stats lock").callbacks.attempts += 1;
            let answer = sandbox.http.post(&url).json(&body).send().await;
            if matches!(&answer, Ok(r) if r.status() == reqwest::StatusCode::OK) {
                sandbox
                    .stats
                    .lock()
                    .expect("stats lock")
                    .callbacks
                    .delivered += 1;
                return;
            }
            let waits = &s.callback_retry_ms;
            let wait = waits[(attempt as usize).min(waits.len() - 1)];
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        sandbox
            .stats
            .lock()
            .expect("stats lock")
            .callbacks
            .abandoned += 1;
    });
}
