//! The simulator's request parsing (`payfleet_sim::router`, every provider endpoint
//! and the bank pages) on any sequence of requests against one sandbox. The input is
//! text: requests separated by a line `===`, each a line `<METHOD> <path> [flags]`
//! then its body. Flags: `sign` signs a JSON body as a Gate request with the sandbox's
//! key, `auth` sends the last token the token endpoint issued, `form` sends the body
//! as a form (else as JSON). The `/sandbox/` controls (faults, limits) are not sent:
//! they configure failures on purpose.
//!
//! The simulator never panics and never answers 5xx (no fault is configured); a Gate
//! request it accepts verifies under payfleet's own reading of the signature, and so
//! does a signed status answer; a 2xx answer of a provider API is JSON; an epay amount
//! it reads is shown back as the same amount.

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, header};
use payfleet::providers::ecommpay::signature as core_signature;
use payfleet_sim::ecommpay::signature;
use payfleet_sim::{Sandbox, SimSettings, money};
use secrecy::SecretString;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

const GATE_KEY: &str = "fuzz-gate-key";
/// In the seeds' token requests: the fuzzer keeps it from there.
const EPAY_SECRET: &str = "fuzz-epay-secret";
/// Enough to reach every step of a flow (token, payment, 3-D Secure, status).
const MAX_REQUESTS: usize = 8;
const PROVIDER_APIS: [&str; 5] = ["/v2/", "/oauth2/", "/payment/", "/p2p/", "/check-status/"];
const CONTROLS: [&str; 4] = [
    "/sandbox/faults",
    "/sandbox/limits",
    "/sandbox/stats",
    "/sandbox/arrivals",
];

fn sandbox() -> &'static Arc<Sandbox> {
    static SANDBOX: OnceLock<Arc<Sandbox>> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let mut settings = SimSettings::defaults().expect("the built-in settings load");
        // Callbacks and timers stay pending until the input's runtime is dropped.
        settings.callback_delay_ms = 3_600_000;
        settings.india_sale_threshold_ms = 3_600_000;
        settings.ecommpay_callback_url = "http://127.0.0.1:9/".into();
        settings.record_arrivals = false;
        Sandbox::new(
            settings,
            SecretString::from(GATE_KEY),
            SecretString::from(EPAY_SECRET),
        )
    })
}

struct Step<'a> {
    method: Method,
    path: &'a str,
    sign: bool,
    auth: bool,
    form: bool,
    body: &'a str,
}

fn steps(text: &str) -> impl Iterator<Item = Step<'_>> {
    text.split("\n===\n")
        .take(MAX_REQUESTS)
        .filter_map(|chunk| {
            let (line, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let mut words = line.split(' ');
            let method = Method::from_bytes(words.next()?.as_bytes()).ok()?;
            let path = words.next()?;
            let flags: Vec<&str> = words.collect();
            Some(Step {
                method,
                path,
                sign: flags.contains(&"sign"),
                auth: flags.contains(&"auth"),
                form: flags.contains(&"form"),
                body,
            })
        })
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let sandbox = sandbox();
    // Each input starts from an empty simulator.
    *sandbox.ecommpay.lock().expect("ecommpay lock") = Default::default();
    *sandbox.epay.lock().expect("epay lock") = Default::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut token: Option<String> = None;
        for step in steps(&text) {
            if CONTROLS.iter().any(|c| step.path.starts_with(c)) {
                continue;
            }
            amounts_read_back(step.body);
            send(sandbox, step, &mut token).await;
        }
    });
}

async fn send(sandbox: &Arc<Sandbox>, step: Step<'_>, token: &mut Option<String>) {
    let mut json = serde_json::from_str::<Value>(step.body).ok();
    let mut body = step.body.as_bytes().to_vec();
    if step.sign
        && let Some(v) = &mut json
    {
        signature::sign_request(GATE_KEY.as_bytes(), v);
        body = serde_json::to_vec(v).expect("a Value serialises");
    }
    let content_type = if step.form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let mut request = Request::builder()
        .method(step.method)
        .uri(step.path)
        .header(header::CONTENT_TYPE, content_type);
    if step.auth
        && let Some(t) = token
    {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let Ok(request) = request.body(Body::from(body)) else {
        return; // Not a request http can carry (a malformed path or header).
    };
    let answer = payfleet_sim::router(sandbox.clone())
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = answer.status();
    let answer = to_bytes(answer.into_body(), usize::MAX)
        .await
        .expect("an answer body reads");
    assert!(
        status.as_u16() < 500,
        "{status} for {}: {}",
        step.path,
        String::from_utf8_lossy(&answer)
    );
    if !status.is_success() || !PROVIDER_APIS.iter().any(|p| step.path.starts_with(p)) {
        return;
    }
    let answer: Value = serde_json::from_slice(&answer).expect("a provider API answers JSON");
    if let Some(t) = answer.get("access_token").and_then(Value::as_str) {
        *token = Some(t.to_owned());
    }
    if step.path.starts_with("/v2/") {
        let request = json.expect("Gate accepted it, so it is JSON");
        assert!(
            core_signature::verify_request(GATE_KEY.as_bytes(), &request),
            "the simulator accepted a Gate request payfleet's signature reading refuses"
        );
        if answer.get("signature").is_some() {
            assert!(
                core_signature::verify_root(GATE_KEY.as_bytes(), &answer),
                "a signed answer payfleet's signature reading refuses"
            );
        }
    }
}

/// Whatever epay amount the simulator reads from a text, it shows back as the same.
fn amounts_read_back(body: &str) {
    let texts = match serde_json::from_str::<Value>(body) {
        Ok(v) => leaves(&v),
        Err(_) => body.split(['&', '=']).map(str::to_owned).collect(),
    };
    for text in texts {
        if let Some(minor) = money::epay_minor(&text, "KZT") {
            let shown = money::epay_decimal_text(minor, "KZT");
            assert_eq!(
                money::epay_minor(&shown, "KZT"),
                Some(minor),
                "{text} -> {shown}"
            );
        }
    }
}

fn leaves(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items.iter().flat_map(leaves).collect(),
        Value::Object(map) => map.values().flat_map(leaves).collect(),
        _ => Vec::new(),
    }
}
