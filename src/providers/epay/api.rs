//! epay over HTTP: the client, its URLs, and how transport failures and HTTP statuses
//! become payfleet's [`ProviderError`]s.

use crate::config::EpaySettings;
use crate::providers::ProviderError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;

pub struct Api {
    pub http: reqwest::Client,
    /// Follows no redirect: `/payment/confirm` answers with one, to be read, not fetched.
    unfollowed: reqwest::Client,
    pub settings: EpaySettings,
    pub client_secret: SecretString,
}

/// An answer: the HTTP status and the JSON body (`Value::Null` if it had none).
pub type Answer = (u16, Value);

/// What a POST that follows no redirect came back with.
#[derive(Debug, PartialEq)]
pub enum Unfollowed {
    Json(Answer),
    /// A redirect, to be read from its `Location`.
    Redirect(String),
    /// A 2xx page that is not JSON (the page a redirect leads to, served at once):
    /// which page, only check-status can tell.
    Page(u16),
}

impl Api {
    pub fn new(
        settings: EpaySettings,
        client_secret: SecretString,
    ) -> Result<Self, reqwest::Error> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
                .timeout(Duration::from_millis(settings.request_timeout_ms))
                .pool_max_idle_per_host(256)
        };
        let http = builder().build()?;
        let unfollowed = builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Api {
            http,
            unfollowed,
            settings,
            client_secret,
        })
    }

    pub fn url(base: &str, path: &str) -> String {
        format!("{}{path}", base.trim_end_matches('/'))
    }

    /// POSTs a JSON body (already serialised, so decimal amounts stay exact) with the
    /// transaction's bearer token.
    pub async fn post_json(
        &self,
        path: &str,
        token: &SecretString,
        body: Vec<u8>,
    ) -> Result<Answer, ProviderError> {
        let request = self
            .http
            .post(Self::url(&self.settings.api_url, path))
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        read(request.send().await).await
    }

    /// POSTs like [`Api::post_json`] without following a redirect.
    pub async fn post_json_unfollowed(
        &self,
        path: &str,
        token: &SecretString,
        body: Vec<u8>,
    ) -> Result<Unfollowed, ProviderError> {
        let response = self
            .unfollowed
            .post(Self::url(&self.settings.api_url, path))
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        if let Ok(r) = &response
            && r.status().is_redirection()
        {
            crate::providers::exchanges::note(crate::telemetry::label::HttpClass::Redirect);
            let location = r.headers().get(reqwest::header::LOCATION);
            return match location.and_then(|l| l.to_str().ok()) {
                Some(l) => Ok(Unfollowed::Redirect(l.to_owned())),
                None => Err(ProviderError::Unknown(format!(
                    "epay answered HTTP {} without a Location",
                    r.status().as_u16()
                ))),
            };
        }
        let response = response.map_err(classify_transport)?;
        let (status, bytes) = crate::providers::http_answer(response, "epay").await?;
        match parse(status, &bytes) {
            Ok(answer) => Ok(Unfollowed::Json(answer)),
            Err(_) if (200..300).contains(&status) => Ok(Unfollowed::Page(status)),
            Err(e) => Err(e),
        }
    }

    pub async fn get(&self, url: String, token: &SecretString) -> Result<Answer, ProviderError> {
        read(
            self.http
                .get(url)
                .bearer_auth(token.expose_secret())
                .send()
                .await,
        )
        .await
    }
}

/// Sorts an answer: 429 throttled, 5xx unknown (it may have been processed), anything
/// else read as JSON for the caller to judge.
pub async fn read(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Answer, ProviderError> {
    let response = sent.map_err(classify_transport)?;
    let (status, bytes) = crate::providers::http_answer(response, "epay").await?;
    parse(status, &bytes)
}

fn parse(status: u16, bytes: &[u8]) -> Result<Answer, ProviderError> {
    if bytes.is_empty() {
        return Ok((status, Value::Null));
    }
    let json = serde_json::from_slice(bytes).map_err(|_| {
        ProviderError::Unknown(format!(
            "epay answered HTTP {status} with a body that is not JSON"
        ))
    })?;
    Ok((status, json))
}

fn classify_transport(e: reqwest::Error) -> ProviderError {
    crate::providers::exchanges::failed(&e);
    // Never the error's own text beyond its kind: it may name the URL, never a body,
    // but keep messages plain and bounded anyway.
    if e.is_connect() {
        ProviderError::NotSent("cannot reach epay".into())
    } else if e.is_timeout() {
        ProviderError::Unknown("epay did not answer in time".into())
    } else {
        ProviderError::Unknown("talking to epay failed mid-request".into())
    }
}

/// A code that may come as a number or a string.
pub fn code_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
