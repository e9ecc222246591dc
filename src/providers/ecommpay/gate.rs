//! Gate over HTTP: signs each request and sorts its answer into payfleet's terms.

use super::signature;
use crate::providers::ProviderError;
use backon::{ExponentialBuilder, Retryable};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Clone)]
pub struct Gate {
    http: reqwest::Client,
    base_url: String,
    pub project_id: u64,
    secret: SecretString,
}

/// Gate's synchronous answer: it reports on the request only, never the outcome.
#[derive(Debug, Deserialize)]
pub struct GateAnswer {
    pub status: String,
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Gate {
    pub fn new(
        base_url: &str,
        project_id: u64,
        secret: SecretString,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Gate {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            project_id,
            secret,
        })
    }

    /// The same Gate (HTTP client, base URL) for another project.
    pub fn for_project(&self, project_id: u64, secret: SecretString) -> Self {
        Gate {
            project_id,
            secret,
            ..self.clone()
        }
    }

    pub fn secret(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }

    /// The `general` object every request starts with.
    pub fn general(&self, payment_id: &str) -> Value {
        serde_json::json!({ "project_id": self.project_id, "payment_id": payment_id })
    }

    /// Signs `body` and POSTs it; returns the HTTP status and the parsed JSON answer.
    /// A request that could not even connect is retried at once a few times (it cannot
    /// have been processed); anything else is left to the pipeline's retry policy.
    pub async fn post(&self, path: &str, mut body: Value) -> Result<(u16, Value), ProviderError> {
        signature::sign_request(self.secret(), &mut body);
        // Serialised once; each attempt sends the same bytes (no copy), and the JSON tree
        // is not kept while the request waits for Gate.
        let body =
            bytes::Bytes::from(serde_json::to_vec(&body).expect("a Value always serialises"));
        let url = format!("{}{path}", self.base_url);
        let send = || async {
            let sent = self
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            if let Err(e) = &sent {
                crate::providers::exchanges::failed(e);
            }
            sent
        };
        let response = send
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_times(2)
                    .with_jitter(),
            )
            .when(reqwest::Error::is_connect)
            .await
            .map_err(classify_transport)?;
        let (status, bytes) = crate::providers::http_answer(response, "Gate").await?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ProviderError::Unknown(format!(
                "Gate answered HTTP {status} with a body that is not JSON"
            ))
        })?;
        Ok((status, json))
    }

    /// Sends a payment request (sale, payout, refund): success means "accepted".
    pub async fn submit(&self, path: &str, body: Value) -> Result<(), ProviderError> {
        let (status, json) = self.post(path, body).await?;
        let answer: GateAnswer = serde_json::from_value(json).map_err(|e| {
            ProviderError::Unknown(format!(
                "Gate answered HTTP {status} with an unexpected body: {e}"
            ))
        })?;
        match answer.status.as_str() {
            "success" if status < 300 => Ok(()),
            _ => Err(refusal(&answer)),
        }
    }
}

/// Turns Gate's error answer into a refusal. Its code never says that Gate already has
/// the payment (the documents give none for that): `Ecommpay::submit` asks the status.
pub fn refusal(answer: &GateAnswer) -> ProviderError {
    ProviderError::Refused {
        code: answer.code.as_ref().map(code_text).unwrap_or_default(),
        message: answer.message.clone().unwrap_or_default(),
    }
}

/// Codes arrive as strings in callbacks and sometimes as numbers in answers.
pub fn code_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn classify_transport(e: reqwest::Error) -> ProviderError {
    // A request that never connected cannot have been processed; anything later may have.
    if e.is_connect() {
        ProviderError::NotSent(format!("cannot reach Gate: {e}"))
    } else if e.is_timeout() {
        ProviderError::Unknown("Gate did not answer in time".into())
    } else {
        ProviderError::Unknown(format!("talking to Gate: {e}"))
    }
}
