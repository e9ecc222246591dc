//! The configured answers, over HTTP against a served simulator.

use payfleet_sim::ecommpay::signature;
use payfleet_sim::faults::{Answers, EndpointFaults};
use payfleet_sim::{Faults, Sandbox, SimSettings};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;

const KEY: &str = "gate-secret";
const EPAY: &str = "epay-secret";

async fn start() -> (String, Arc<Sandbox>) {
    let mut settings = SimSettings::defaults().expect("defaults");
    settings.callback_delay_ms = 10;
    settings.ecommpay_callback_url = "http://127.0.0.1:9/none".into();
    settings.callback_max_attempts = 1;
    let sb = Sandbox::new(settings, SecretString::from(KEY), SecretString::from(EPAY));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(payfleet_sim::serve(
        listener,
        sb.clone(),
        std::future::pending(),
    ));
    (format!("http://{addr}"), sb)
}

fn answers(a: Answers) -> Faults {
    Faults {
        answers: a,
        ..Default::default()
    }
}

async fn gate(base: &str, path: &str, mut body: Value) -> (u16, Value) {
    signature::sign_request(KEY.as_bytes(), &mut body);
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn payout(id: &str) -> Value {
    json!({"general": {"project_id": 198, "payment_id": id},
           "customer": {"id": "c1", "phone": "77011234567", "ip_address": "1.2.3.4"},
           "payment": {"amount": 200000, "currency": "KZT"}})
}

fn status(id: &str) -> Value {
    json!({"general": {"project_id": 198, "payment_id": id}})
}

#[tokio::test]
async fn a_dropped_submission_is_not_found_in_each_form() {
    let (base, sb) = start().await;
    sb.set_faults(answers(Answers {
        ecommpay_dropped_rate: 1.0,
        ..Default::default()
    }));
    let (code, _) = gate(
        &base,
        "/v2/payment/cash-out-kz/homebank/payout",
        payout("d1"),
    )
    .await;
    assert_eq!(code, 500);
    assert!(sb.stats().executed.is_empty());
    let (code, body) = gate(&base, "/v2/payment/status", status("d1")).await;
    assert_eq!((code, body["code"].as_str()), (400, Some("3061")));
    assert!(body.get("signature").is_none());
    sb.set_faults(answers(Answers {
        ecommpay_not_found_404_rate: 1.0,
        ..Default::default()
    }));
    assert_eq!(gate(&base, "/v2/payment/status", status("d1")).await.0, 404);
    sb.set_faults(answers(Answers {
        ecommpay_not_found_200_rate: 1.0,
        ecommpay_not_found_signed_rate: 1.0,
        ..Default::default()
    }));
    let (code, body) = gate(&base, "/v2/payment/status", status("d1")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("error")));
    assert!(signature::verify_root(KEY.as_bytes(), &body));
}

#[tokio::test]
async fn a_payout_is_executed_once_and_reported_signed() {
    let (base, sb) = start().await;
    let path = "/v2/payment/cash-out-kz/homebank/payout";
    assert_eq!(gate(&base, path, payout("p1")).await.0, 200);
    assert_eq!(gate(&base, path, payout("p1")).await.0, 400);
    let mut bad = payout("p2");
    bad["payment"]["amount"] = json!(300000);
    assert_eq!(gate(&base, path, bad).await.0, 400);
    let (code, body) = gate(&base, "/v2/payment/status", status("p1")).await;
    assert_eq!(code, 200);
    assert!(signature::verify_root(KEY.as_bytes(), &body));
    assert_eq!(body["operations"][0]["status"], "success");
    let stats = sb.stats();
    assert_eq!(stats.executed.get("p1"), Some(&1));
    assert_eq!(stats.duplicate_submissions_refused, 1);
}

async fn token(base: &str, scope: &str, invoice: &str, amount: &str) -> String {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("scope", scope),
        ("client_id", "test"),
        ("client_secret", EPAY),
        ("terminal", "67e34d63-102f-4bd1-898e-370781d0074d"),
        ("currency", "KZT"),
        ("amount", amount),
    ];
    if !invoice.is_empty() {
        form.push(("invoiceID", invoice));
    }
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/oauth2/token"))
        .form(&form)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    r["access_token"].as_str().expect("a token").to_owned()
}

fn transfer(invoice: &str, pan: &str, cvc: &str) -> Value {
    json!({"order": {"amount": 100, "currency": "KZT", "description": "TEST p2p", "id": invoice,
                     "terminalId": "67e34d63-102f-4bd1-898e-370781d0074d"},
           "card": {"sender": {"transferType": "TYPEPAN", "cardCred": pan, "cvc": cvc,
                               "expire": {"month": "01", "year": "25"}},
                    "receiver": {"transferType": "TYPEPAN", "cardCred": "5578342728230613"}}})
}

async fn epay_post(base: &str, path: &str, token: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("sent")
}

async fn check(base: &str, kind: &str, invoice: &str) -> Value {
    let t = token(
        base,
        "webapi usermanagement email_send verification statement statistics payment",
        "",
        "",
    )
    .await;
    reqwest::Client::new()
        .get(format!("{base}/check-status/{kind}/transaction/{invoice}"))
        .bearer_auth(t)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_lost_transfer_answer_lags_in_status_and_its_resend_gets_488() {
    let (base, sb) = start().await;
    sb.set_faults(Faults {
        endpoints: [(
            "POST /p2p/transfer".to_owned(),
            EndpointFaults {
                error_after_rate: 1.0,
                ..Default::default()
            },
        )]
        .into(),
        answers: Answers {
            epay_status_lag_rate: 1.0,
            epay_status_lag_ms: 300,
            ..Default::default()
        },
        ..Default::default()
    });
    let t = token(&base, "transfer", "100000000001", "100").await;
    let r = epay_post(
        &base,
        "/p2p/transfer",
        &t,
        &transfer("100000000001", "4405639704015096", "815"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(
        check(&base, "p2p", "100000000001").await["resultCode"],
        "102"
    );
    sb.set_faults(Faults::default());
    let t = token(&base, "transfer", "100000000001", "100").await;
    let r = epay_post(
        &base,
        "/p2p/transfer",
        &t,
        &transfer("100000000001", "4405639704015096", "815"),
    )
    .await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], 488);
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let found = check(&base, "p2p", "100000000001").await;
    assert_eq!(
        (
            found["resultCode"].as_str(),
            found["transaction"]["statusName"].as_str()
        ),
        (Some("100"), Some("AUTH"))
    );
    assert_eq!(sb.stats().executed.get("100000000001"), Some(&1));
}

#[tokio::test]
async fn a_p2p_invoice_on_the_payment_path_is_102_when_split() {
    let (base, sb) = start().await;
    let t = token(&base, "transfer", "100000000002", "100").await;
    let r = epay_post(
        &base,
        "/p2p/transfer",
        &t,
        &transfer("100000000002", "4405639704015096", "815"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        check(&base, "payment", "100000000002").await["resultCode"],
        "100"
    );
    sb.set_faults(answers(Answers {
        epay_p2p_status_split_rate: 1.0,
        ..Default::default()
    }));
    assert_eq!(
        check(&base, "payment", "100000000002").await["resultCode"],
        "102"
    );
    assert_eq!(
        check(&base, "p2p", "100000000002").await["resultCode"],
        "100"
    );
}

#[tokio::test]
async fn a_3ds_confirmation_can_answer_by_redirect() {
    let (base, sb) = start().await;
    sb.set_faults(answers(Answers {
        epay_confirm_redirect_rate: 1.0,
        ..Default::default()
    }));
    let t = token(&base, "transfer", "100000000003", "100").await;
    let r = epay_post(
        &base,
        "/p2p/transfer",
        &t,
        &transfer("100000000003", "5522042705066736", "525"),
    )
    .await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "NEW");
    let confirm = json!({"ID": body["id"], "PaRes": "ok", "MD": body["secure3D"]["md"]});
    let r = epay_post(&base, "/payment/confirm", &t, &confirm).await;
    assert_eq!(r.status().as_u16(), 302);
    let to = r.headers()["location"].to_str().expect("text").to_owned();
    assert!(to.starts_with("https://epay.homebank.kz/payform/success.html?amount=100&currency=KZT&invoiceID=100000000003"), "{to}");
    assert_eq!(sb.stats().executed.get("100000000003"), Some(&1));
}

fn google_pay(invoice: &str, card_details: &str) -> Value {
    json!({"amount": 10, "currency": "KZT", "name": "Test test", "terminalId": "67e34d63-102f-4bd1-898e-370781d0074d",
           "invoiceId": invoice, "description": "Оплата", "cardSave": false, "paymentType": "googlePay",
           "googlePay": {"apiVersionMinor": 0, "apiVersion": 2, "paymentMethodData": {
               "description": "Visa •••• 1111", "type": "CARD",
               "tokenizationData": {"type": "PAYMENT_GATEWAY", "token": "{}"},
               "info": {"cardNetwork": "VISA", "cardDetails": card_details}}}})
}

#[tokio::test]
async fn a_google_pay_answer_can_carry_its_status_and_status_agrees() {
    let (base, sb) = start().await;
    let scope = "webapi usermanagement email_send verification statement statistics payment";
    sb.set_faults(answers(Answers {
        epay_google_pay_status_rate: 1.0,
        ..Default::default()
    }));
    let t = token(&base, scope, "100000000004", "10").await;
    let body: Value = epay_post(
        &base,
        "/payment/cryptopay",
        &t,
        &google_pay("100000000004", "1111"),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(
        (body["code"].as_i64(), body["status"].as_str()),
        (Some(0), Some("AUTH"))
    );
    assert_eq!(
        check(&base, "payment", "100000000004").await["transaction"]["statusName"],
        "AUTH"
    );
    let t = token(&base, scope, "100000000005", "10").await;
    let r = epay_post(
        &base,
        "/payment/cryptopay",
        &t,
        &google_pay("100000000005", "7597"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "FAILED");
    assert_eq!(
        check(&base, "payment", "100000000005").await["transaction"]["statusName"],
        "FAILED"
    );
    assert_eq!(sb.stats().executed.len(), 1);
}
