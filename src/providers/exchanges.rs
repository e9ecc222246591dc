//! The HTTP exchanges of one provider call, by class, for
//! `payfleet_provider_http_requests_total`. The transport notes each exchange where it
//! ends; the caller that measures the call collects them ([`collect`]), so no provider
//! method needs a parameter for them.

use crate::telemetry::label::HttpClass;
use std::cell::RefCell;

tokio::task_local! {
    static EXCHANGES: RefCell<Vec<HttpClass>>;
}

/// Runs a provider call, returning its output and the class of every HTTP exchange it
/// made, in order.
pub async fn collect<T>(call: impl Future<Output = T>) -> (T, Vec<HttpClass>) {
    EXCHANGES
        .scope(RefCell::new(Vec::new()), async move {
            let out = call.await;
            (out, EXCHANGES.with(RefCell::take))
        })
        .await
}

/// Notes an exchange that ended. Outside [`collect`] (the breaker's probes, bank
/// lists) nothing is noted.
pub(crate) fn note(class: HttpClass) {
    let _ = EXCHANGES.try_with(|e| e.borrow_mut().push(class));
}

/// Notes an exchange that failed without an answer.
pub(crate) fn failed(e: &reqwest::Error) {
    note(if e.is_connect() {
        HttpClass::Connect
    } else if e.is_timeout() {
        HttpClass::Timeout
    } else {
        HttpClass::Broken
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_exchange_of_a_call_is_collected_in_order() {
        let ((), classes) = collect(async {
            note(HttpClass::ServerError);
            tokio::task::yield_now().await;
            note(HttpClass::of_status(200));
        })
        .await;
        assert_eq!(classes, [HttpClass::ServerError, HttpClass::Success]);
        // Outside a collected call, noting is harmless.
        note(HttpClass::Timeout);
    }

    #[tokio::test]
    async fn a_timeout_and_a_refused_connection_differ() {
        // Nothing listens on a port just freed: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = reqwest::get(format!("http://127.0.0.1:{port}/")).await;
        // A listener that never answers: the request times out.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(200))
            .build()
            .unwrap();
        let held = tokio::spawn(async move {
            let (_socket, _) = silent.accept().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        let timed_out = client.get(url).send().await;
        let ((), classes) = collect(async {
            failed(&refused.unwrap_err());
            failed(&timed_out.unwrap_err());
        })
        .await;
        assert_eq!(classes, [HttpClass::Connect, HttpClass::Timeout]);
        held.abort();
    }
}
