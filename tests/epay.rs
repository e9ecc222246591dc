//! Halyk epay end to end over the real broker and Redis, the sandbox over HTTP: Google
//! Pay payments, P2P transfers, 3-D Secure, tokens, postLinks, check-status, and where
//! card data may (and may not) go.

mod common;

use common::logs::captured_logs;
use common::{TestFleet, google_pay, spawn_app, spawn_app_with};
use payfleet::contract::{Currency, EventStatus, Money};
use payfleet::providers::epay::amount::{EpayAmount, parse_minor};
use payfleet::providers::epay::check_status;
use payfleet::providers::{ProviderError, Status};
use payfleet::state::State;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The P2P document's test cards: PAN, month, year, CVC.
const VISA: (&str, &str, &str, &str) = ("4405639704015096", "01", "25", "815");
const MC_3DS: (&str, &str, &str, &str) = ("5522042705066736", "01", "25", "525");
const AMEX: (&str, &str, &str, &str) = ("377514500004820", "01", "25", "4169");
const LOCKED_VISA: (&str, &str, &str, &str) = ("4003032704547597", "09", "20", "170");
const LOCKED_MC: (&str, &str, &str, &str) = ("5578342710750560", "09", "20", "254");
const ALL_CARDS: [(&str, &str, &str, &str); 5] = [VISA, MC_3DS, AMEX, LOCKED_VISA, LOCKED_MC];

const P2P_ENDPOINT: &str = "POST /p2p/transfer";
const GOOGLE_PAY_ENDPOINT: &str = "POST /payment/cryptopay";

fn card((pan, month, year, cvc): (&str, &str, &str, &str)) -> Value {
    json!({"pan": pan, "expiry": {"month": month, "year": year}, "cvc": cvc, "name": "ARMAN ALI"})
}

fn p2p(key: &str, minor: u64, sender: Value, receiver: Value) -> String {
    json!({
        "version": 1, "idempotency_key": key, "method": "p2p", "operation": "transfer",
        "amount": {"minor": minor, "currency": "KZT"},
        "details": {"description": "TEST p2p", "sender_email": "armanali@epay.kz",
                    "sender": sender, "receiver": receiver}
    })
    .to_string()
}

async fn invoice_of(app: &TestFleet, key: &str) -> String {
    app.store()
        .await
        .record(&payfleet::contract::IdempotencyKey::parse(key).unwrap())
        .await
        .unwrap()
        .and_then(|rec| rec.payment_id)
        .expect("the record keeps the invoice id")
}

fn sandbox_url(app: &TestFleet, path: &str) -> String {
    format!("http://{}{path}", app.fleet.sandbox_addr)
}

async fn wait_status(app: &TestFleet, key: &str, status: EventStatus) -> payfleet::contract::Event {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = app.events_for(key).into_iter().find(|e| e.status == status) {
            return e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {status:?} event for {key}: {:?}",
            app.events_for(key)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_google_pay_payment_succeeds_with_a_fresh_token_per_transaction() {
    let app = spawn_app("t-epay-gp", 1).await;
    // An amount with every minor digit set: the sandbox checks it digit for digit
    // against the token's, so only an exact conversion passes.
    app.publish(&google_pay("gp-ok-1", 1_234_567, "1111")).await;
    app.publish(&google_pay("gp-ok-2", 10_000, "1111")).await;
    for key in ["gp-ok-1", "gp-ok-2"] {
        let event = app.terminal(key).await;
        assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
        let invoice = event.payment_id.clone().expect("the invoice id");
        assert!(
            (6..=15).contains(&invoice.len()) && invoice.bytes().all(|b| b.is_ascii_digit()),
            "{invoice}"
        );
        assert_eq!(invoice_of(&app, key).await, invoice);
        assert_eq!(app.fleet.sandbox.stats().executed.get(&invoice), Some(&1));
    }
    let (a, b) = (
        invoice_of(&app, "gp-ok-1").await,
        invoice_of(&app, "gp-ok-2").await,
    );
    assert_ne!(
        a[a.len() - 6..],
        b[b.len() - 6..],
        "unique in their last six digits"
    );
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.requests.get(GOOGLE_PAY_ENDPOINT), Some(&2));
    // One token per payment, plus the status tokens of the postLink confirmations.
    assert!(stats.epay_tokens_issued >= 2, "{stats:?}");
    assert_eq!(stats.epay_tokens_refused, 0, "{stats:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_from_a_locked_card_is_declined_with_its_code() {
    let app = spawn_app("t-epay-decline", 1).await;
    app.publish(&p2p(
        "p2p-locked",
        20_000,
        json!({"card": card(LOCKED_VISA)}),
        json!({"card": {"pan": AMEX.0}}),
    ))
    .await;
    let event = app.terminal("p2p-locked").await;
    assert_eq!(event.status, EventStatus::Declined);
    let provider = event.provider.expect("the provider's words");
    // A refusal is confirmed by check-status, whose words these are.
    assert_eq!(provider.code.as_str(), "454");
    assert!(provider.message.contains("Card is locked"), "{provider:?}");
    assert_eq!(app.state("p2p-locked").await, Some(State::Declined));
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed.is_empty());
    assert_eq!(
        stats.requests.get(P2P_ENDPOINT),
        Some(&1),
        "declines are not retried"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_3ds_transfer_completes_through_confirm_3ds() {
    a_3ds_transfer_confirmed("t-epay-3ds", json!({})).await;
}

/// Issue 14, case 4: `/payment/confirm` answers as the P2P document says, with a
/// redirect to the payform's success page; it is read, not followed, and sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_answered_by_redirect_is_read_not_followed() {
    let answers = json!({"answers": {"epay_confirm_redirect_rate": 1.0}});
    let app = a_3ds_transfer_confirmed("t-epay-3ds-redirect", answers).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats.requests.get("POST /payment/confirm"),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(stats.faults.get("confirm_redirect"), Some(&1), "{stats:?}");
    app.stop().await;
}

/// `/payment/confirm` answers "Redirect Http code 200": a client that follows it gets
/// the payform's page, not JSON. Never posted again blindly: check-status settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_answered_with_its_page_is_settled_by_check_status() {
    let answers = json!({"answers": {"epay_confirm_page_rate": 1.0}});
    let app = a_3ds_transfer_confirmed("t-epay-3ds-page", answers).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats.requests.get("POST /payment/confirm"),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(stats.faults.get("confirm_page"), Some(&1), "{stats:?}");
    app.stop().await;
}

/// A confirmation answered `code` 0 with the transfer failed (`3D`) is no success: the
/// transfer's check-status declines it, with its reason code.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_confirmation_answered_with_code_zero_is_declined() {
    let app = spawn_app("t-epay-3ds-code-zero", 1).await;
    let faults = json!({"answers": {"epay_confirm_code_zero_rate": 1.0}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&p2p(
        "p2p-3ds-zero",
        44_400,
        json!({"card": card(MC_3DS)}),
        json!({"card_id": "c-1"}),
    ))
    .await;
    let asked = wait_status(&app, "p2p-3ds-zero", EventStatus::ActionRequired).await;
    let action = asked.action.clone().unwrap();
    let confirm = json!({
        "version": 1, "idempotency_key": "p2p-3ds-zero-confirm", "method": "p2p", "operation": "confirm_3ds",
        "amount": asked.amount,
        "details": {"invoice_id": asked.payment_id, "ID": action["ID"], "PaRes": "FAIL", "MD": action["MD"]}
    });
    app.publish(&confirm.to_string()).await;
    let confirmed = app.terminal("p2p-3ds-zero-confirm").await;
    assert_eq!(confirmed.status, EventStatus::Declined, "{confirmed:?}");
    assert_eq!(confirmed.provider.unwrap().code, "456");
    assert_eq!(
        app.terminal("p2p-3ds-zero").await.status,
        EventStatus::Declined
    );
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.faults.get("confirm_code_zero"), Some(&1), "{stats:?}");
    assert!(stats.executed.is_empty(), "{stats:?}");
    app.stop().await;
}

/// A 3-D Secure transfer, then its confirmation, with `faults` in force; returns the
/// fleet still running.
async fn a_3ds_transfer_confirmed(label: &str, faults: Value) -> TestFleet {
    let app = spawn_app(label, 1).await;
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&p2p(
        "p2p-3ds",
        50_000,
        json!({"card": card(MC_3DS)}),
        json!({"card_id": "86496cb0-bb5d-4791-bb49-cc27a0f660ce"}),
    ))
    .await;
    let asked = wait_status(&app, "p2p-3ds", EventStatus::ActionRequired).await;
    let action = asked
        .action
        .clone()
        .expect("what the merchant's page needs");
    for field in ["action", "PaReq", "MD", "TermUrl", "ID"] {
        assert!(
            action[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {action}"
        );
    }
    let invoice = asked.payment_id.clone().unwrap();
    assert!(
        app.fleet.sandbox.stats().executed.is_empty(),
        "nothing moves before 3-D Secure"
    );
    let confirm = json!({
        "version": 1, "idempotency_key": "p2p-3ds-confirm", "method": "p2p", "operation": "confirm_3ds",
        "amount": {"minor": 50_000, "currency": "KZT"},
        "details": {"invoice_id": invoice, "ID": action["ID"], "PaRes": "eJzNWVnT4jiy", "MD": action["MD"]}
    });
    app.publish(&confirm.to_string()).await;
    assert_eq!(
        app.terminal("p2p-3ds-confirm").await.status,
        EventStatus::Succeeded
    );
    // The transfer itself settles by its postLink, confirmed with check-status.
    let settled = app.terminal("p2p-3ds").await;
    assert_eq!(settled.status, EventStatus::Succeeded, "{settled:?}");
    assert_eq!(settled.payment_id.as_deref(), Some(invoice.as_str()));
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get(&invoice), Some(&1));
    assert!(stats.executed_more_than_once.is_empty());
    app
}

/// Redis loses its data while a 3-D Secure transfer waits for its customer: the
/// confirmation still goes out with the transaction's own secret_hash (derived from
/// the invoice id, never stored), and a copy of the transfer gets its invoice id back
/// and is settled by check-status, never paid twice. Before, the confirmation was
/// declined (`unknown_invoice`) and the transfer waited for an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_3ds_transfer_completes_after_redis_lost_its_data() {
    let app = spawn_app("t-epay-3ds-loss", 1).await;
    let transfer = p2p(
        "p2p-3ds-loss",
        61_000,
        json!({"card": card(MC_3DS)}),
        json!({"card_id": "c-1"}),
    );
    app.publish(&transfer).await;
    let asked = wait_status(&app, "p2p-3ds-loss", EventStatus::ActionRequired).await;
    let invoice = asked.payment_id.clone().unwrap();
    let before = invoices(&app.fleet.settings).secret_hash(&invoice);
    let client = redis::Client::open(app.fleet.settings.redis.url.first()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for key in app.store().await.keys().await.unwrap() {
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let action = asked.action.clone().unwrap();
    let confirm = json!({
        "version": 1, "idempotency_key": "p2p-3ds-loss-confirm", "method": "p2p", "operation": "confirm_3ds",
        "amount": asked.amount,
        "details": {"invoice_id": invoice, "ID": action["ID"], "PaRes": "eJzNWVnT4jiy", "MD": action["MD"]}
    });
    app.publish(&confirm.to_string()).await;
    let confirmed = app.terminal("p2p-3ds-loss-confirm").await;
    assert_eq!(confirmed.status, EventStatus::Succeeded, "{confirmed:?}");
    // A copy of the transfer, as the publisher or the broker would send it again.
    app.publish(&transfer).await;
    let settled = app.terminal("p2p-3ds-loss").await;
    assert_eq!(settled.status, EventStatus::Succeeded, "{settled:?}");
    assert_eq!(settled.payment_id.as_deref(), Some(invoice.as_str()));
    let after = invoices(&app.fleet.settings).secret_hash(&invoice);
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&before),
        secrecy::ExposeSecret::expose_secret(&after)
    );
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get(&invoice), Some(&1), "{stats:?}");
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    app.stop().await;
}

/// The fleet's invoice allocator, as its workers and gateway build it.
fn invoices(s: &payfleet::config::Settings) -> payfleet::providers::epay::invoice::Invoices {
    payfleet::providers::epay::invoice::Invoices::new(
        payfleet::state::RedisConn::open(&s.redis).unwrap(),
        &s.redis.key_prefix,
        &s.epay.terminal_id,
        s.redis.retention_ms,
        s.secrets.epay().unwrap(),
    )
}

/// Issue 14, case 5: a Google Pay answer that carries a status (AUTH, or FAILED for a
/// decline) is confirmed by check-status before its outcome is published, without the
/// postLink's help.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn google_pay_outcomes_in_the_answer_are_confirmed_by_check_status() {
    let app = spawn_app("t-epay-gp-status", 1).await;
    let faults = json!({"callbacks": {"loss_rate": 1.0},
                        "answers": {"epay_google_pay_status_rate": 1.0}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&google_pay("gp-st-ok", 10_000, "1111")).await;
    app.publish(&google_pay("gp-st-locked", 10_000, "7597"))
        .await;
    let ok = app.terminal("gp-st-ok").await;
    assert_eq!(ok.status, EventStatus::Succeeded, "{ok:?}");
    let locked = app.terminal("gp-st-locked").await;
    assert_eq!(locked.status, EventStatus::Declined, "{locked:?}");
    let stats = app.fleet.sandbox.stats();
    let asked = stats
        .requests
        .get("GET /check-status/payment/transaction/:invoiceid")
        .copied()
        .unwrap_or(0);
    assert!(asked >= 2, "each outcome confirmed: {stats:?}");
    assert_eq!(stats.executed.len(), 1, "{stats:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_credentials_end_the_payment_without_a_payment_request() {
    let mut settings = common::settings("t-epay-creds");
    settings.secrets.epay_client_secret = Some("not-the-secret".to_owned().into());
    settings.sandbox_epay_client_secret = Some("the-secret".to_owned().into());
    let app = spawn_app_with(settings, 1).await;
    app.publish(&google_pay("gp-bad-creds", 10_000, "1111"))
        .await;
    let event = app.terminal("gp-bad-creds").await;
    assert_eq!(event.status, EventStatus::Declined, "{event:?}");
    assert_eq!(event.provider.unwrap().code, "token:invalid_client");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats.requests.get(GOOGLE_PAY_ENDPOINT),
        None,
        "no payment request"
    );
    assert_eq!(stats.epay_tokens_issued, 0);
    // Refused for the payment, then for the status query that checks the refusal
    // (Redis may have forgotten an attempt), and not retried.
    assert_eq!(stats.epay_tokens_refused, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_is_refused_for_another_invoice_and_with_wrong_credentials() {
    let app = spawn_app("t-epay-token", 0).await;
    let bad = sandbox_token(&app, "100000000001", Some("wrong")).await;
    assert_eq!(bad.status().as_u16(), 401);
    let access = access_token(sandbox_token(&app, "100000000001", None).await).await;
    let reused = sandbox_transfer(&app, &access, "100000000002").await;
    assert_eq!(reused.status().as_u16(), 401);
    let body: Value = reused.json().await.unwrap();
    assert_eq!(body["code"], 1500, "{body}");
    // The same token for its own invoice works.
    let own = sandbox_transfer(&app, &access, "100000000001").await;
    assert_eq!(own.status().as_u16(), 200);
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get("100000000001"), Some(&1));
    assert_eq!(stats.executed.get("100000000002"), None);
    app.stop().await;
}

/// Asks the sandbox for a `transfer` token for `invoice` (100.00 KZT), with the fleet's
/// client secret or `secret`.
async fn sandbox_token(app: &TestFleet, invoice: &str, secret: Option<&str>) -> reqwest::Response {
    let s = &app.fleet.settings;
    let own = secrecy::ExposeSecret::expose_secret(s.secrets.epay_client_secret.as_ref().unwrap())
        .to_owned();
    let form = [
        ("grant_type", "client_credentials".to_owned()),
        ("scope", "transfer".to_owned()),
        ("client_id", s.epay.client_id.clone()),
        ("client_secret", secret.map_or(own, str::to_owned)),
        ("terminal", s.epay.terminal_id.clone()),
        ("invoiceID", invoice.to_owned()),
        ("amount", "100.00".to_owned()),
        ("currency", "KZT".to_owned()),
        ("secret_hash", "sh".to_owned()),
    ];
    reqwest::Client::new()
        .post(sandbox_url(app, "/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn access_token(granted: reqwest::Response) -> String {
    let granted: Value = granted.json().await.unwrap();
    granted["access_token"].as_str().unwrap().to_owned()
}

/// A 100.00 KZT transfer between saved cards, straight to the sandbox.
async fn sandbox_transfer(app: &TestFleet, token: &str, invoice: &str) -> reqwest::Response {
    let body = json!({"order": {"amount": 100.00, "currency": "KZT", "description": "x", "id": invoice,
                                "terminalId": app.fleet.settings.epay.terminal_id},
                      "card": {"sender": {"transferType": "TYPECARDID", "cardCred": "c1"},
                               "receiver": {"transferType": "TYPECARDID", "cardCred": "c2"}}});
    reqwest::Client::new()
        .post(sandbox_url(app, "/p2p/transfer"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_post_link_is_refused_counted_and_changes_nothing() {
    let app = spawn_app("t-epay-forged", 1).await;
    app.publish(&p2p(
        "p2p-forged",
        30_000,
        json!({"card": card(VISA)}),
        json!({"card": {"pan": AMEX.0}}),
    ))
    .await;
    assert_eq!(
        app.terminal("p2p-forged").await.status,
        EventStatus::Succeeded
    );
    let invoice = invoice_of(&app, "p2p-forged").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = app.settled_event_count("p2p-forged").await;
    let post = |body: Value| {
        reqwest::Client::new()
            .post(format!("http://{}/callbacks/epay", app.fleet.gateway_addr))
            .json(&body)
            .send()
    };
    let forged = json!({"invoiceId": invoice, "secret_hash": "guessed", "code": "error", "reason": "forged"});
    assert_eq!(post(forged).await.unwrap().status().as_u16(), 403);
    let unknown = json!({"invoiceId": "999999999999", "secret_hash": "guessed", "code": "ok"});
    assert_eq!(post(unknown).await.unwrap().status().as_u16(), 404);
    let missing = json!({"invoiceId": invoice});
    assert_eq!(post(missing).await.unwrap().status().as_u16(), 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.state("p2p-forged").await, Some(State::Succeeded));
    assert_eq!(app.events_for("p2p-forged").len(), before);
    let metrics = reqwest::get(format!("http://{}/metrics", app.fleet.gateway_ops_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for result in ["refused_secret", "unknown_payment", "malformed"] {
        let line = format!("payfleet_callbacks_total{{provider=\"epay\",result=\"{result}\"}} 1");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    app.stop().await;
}

#[test]
fn check_status_maps_every_result_code_and_status_name() {
    let answer = |code: &str, status: Option<&str>| {
        json!({"resultCode": code, "resultMessage": "m",
               "transaction": status.map(|s| json!({"statusName": s, "reason": "r", "reasonCode": "05"}))})
    };
    let state = |r: Result<Status, ProviderError>| match r {
        Ok(Status::Final { state, .. }) => format!("final:{}", state.as_str()),
        Ok(Status::Pending) => "pending".into(),
        Ok(Status::NotFound) => "not_found".into(),
        Ok(Status::ActionRequired(_)) => "action".into(),
        Err(e) if e.is_retryable() => "retry".into(),
        Err(_) => "refused".into(),
    };
    for (code, expected) in [
        ("101", "final:declined"),
        ("102", "not_found"),
        ("103", "retry"),
        ("104", "refused"),
        ("105", "retry"),
        ("106", "refused"),
        ("107", "pending"),
        ("109", "retry"),
        ("999", "retry"),
    ] {
        assert_eq!(
            state(check_status::read(&answer(code, None))),
            expected,
            "resultCode {code}"
        );
    }
    for (name, expected) in [
        ("AUTH", "final:succeeded"),
        ("CHARGE", "final:succeeded"),
        ("REFUND", "final:succeeded"),
        ("CANCEL", "final:declined"),
        ("CANCEL_OLD", "final:declined"),
        ("FAILED", "final:declined"),
        ("REJECT", "final:declined"),
        ("3D", "final:declined"),
        ("NEW", "pending"),
        ("SOMETHING", "retry"),
    ] {
        assert_eq!(
            state(check_status::read(&answer("100", Some(name)))),
            expected,
            "statusName {name}"
        );
    }
    // A decline carries the reason code.
    match check_status::read(&answer("100", Some("FAILED"))) {
        Ok(Status::Final {
            state: State::Declined,
            outcome,
        }) => assert_eq!(outcome.code.as_deref(), Some("05")),
        other => panic!("{other:?}"),
    }
    // resultCode as a number works too.
    let numeric = json!({"resultCode": 102, "resultMessage": "not found", "transaction": null});
    assert_eq!(check_status::read(&numeric), Ok(Status::NotFound));
}

proptest! {
    /// Minor units → epay's decimal JSON number → minor units, exactly, and the text is
    /// the integer arithmetic's own.
    #[test]
    fn amount_conversion_is_exact(minor in 1u64..=payfleet::contract::Amount::MAX, kzt in any::<bool>()) {
        let currency = if kzt { Currency::KZT } else { Currency::USD };
        let money = Money { minor: payfleet::contract::Amount::parse(minor).unwrap(), currency };
        let text = serde_json::to_string(&EpayAmount::of(money)).unwrap();
        prop_assert_eq!(&text, &format!("{}.{:02}", minor / 100, minor % 100));
        prop_assert_eq!(parse_minor(&text, currency), Some(minor));
    }
}

/// Where a card number or CVC shows up in `text`. PANs are searched as they are; a CVC
/// (three or four digits, which occur by chance in ports, sizes and timestamps) is
/// searched where it would be card data: quoted, or after `cvc`.
fn card_data_in(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut found = Vec::new();
    for (pan, _, _, cvc) in ALL_CARDS {
        if text.contains(pan) {
            found.push(format!("PAN {pan}"));
        }
        // As a JSON string, escaped inside one, or as serde quotes a number (`4169`).
        let quoted = [
            format!("\"{cvc}\""),
            format!("\\\"{cvc}\\\""),
            format!("`{cvc}`"),
        ];
        let after_key = lower.match_indices("cvc").any(|(i, _)| {
            lower[i..]
                .chars()
                .take(12)
                .collect::<String>()
                .contains(cvc)
        });
        if quoted.iter().any(|q| text.contains(q)) || after_key {
            found.push(format!("CVC {cvc}"));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn card_data_reaches_no_log_redis_key_event_dead_letter_or_metric() {
    let logs = captured_logs();
    tracing::trace!("capturing every target at trace");
    let app = spawn_app("t-epay-cards", 1).await;
    let receiver = json!({"card": {"pan": AMEX.0}});
    app.publish(&p2p(
        "cards-ok",
        40_000,
        json!({"card": card(VISA)}),
        receiver.clone(),
    ))
    .await;
    app.publish(&p2p(
        "cards-locked",
        40_000,
        json!({"card": card(LOCKED_MC)}),
        receiver.clone(),
    ))
    .await;
    app.publish(&p2p(
        "cards-3ds",
        40_000,
        json!({"card": card(MC_3DS)}),
        json!({"card": {"pan": LOCKED_VISA.0}}),
    ))
    .await;
    // Serde would echo a CVC given as a number, and a PAN in a field of the wrong type.
    let mut wrong_type: Value = serde_json::from_str(&p2p(
        "cards-bad-cvc",
        40_000,
        json!({"card": card(AMEX)}),
        receiver.clone(),
    ))
    .unwrap();
    wrong_type["details"]["sender"]["card"]["cvc"] = json!(4169);
    app.publish(&wrong_type.to_string()).await;
    let mut pan_number: Value = serde_json::from_str(&p2p(
        "cards-bad-pan",
        40_000,
        json!({"card": card(VISA)}),
        receiver.clone(),
    ))
    .unwrap();
    pan_number["details"]["sender"]["card"]["pan"] = json!(4405639704015096u64);
    app.publish(&pan_number.to_string()).await;
    assert_eq!(
        app.terminal("cards-ok").await.status,
        EventStatus::Succeeded
    );
    assert_eq!(
        app.terminal("cards-locked").await.status,
        EventStatus::Declined
    );
    for key in ["cards-bad-cvc", "cards-bad-pan"] {
        let event = app.terminal(key).await;
        assert_eq!(event.status, EventStatus::Rejected);
        let reason = event.reason.unwrap_or_default();
        assert!(
            reason.contains("details.sender.card.") && reason.contains("got a number"),
            "the reason still says what is wrong: {reason}"
        );
    }
    let asked = wait_status(&app, "cards-3ds", EventStatus::ActionRequired).await;
    // Dead letters: the same key with another body, and a broken body holding a PAN.
    app.publish(&p2p(
        "cards-ok",
        40_000,
        json!({"card": card(AMEX)}),
        receiver.clone(),
    ))
    .await;
    app.publish_raw(
        "epay.transfer",
        format!("{{\"pan\": \"{}\", \"cvc\": \"815\"", VISA.0).as_bytes(),
    )
    .await;
    let dead = app.dead.wait_for(2).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().any(|d| d.1.contains("different body")));
    // Let callbacks, reminders and the reconciler run over the records.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut leaks = Vec::new();
    let events = serde_json::to_string(&app.events.events()).unwrap();
    assert!(events.contains("cards-ok") && asked.action.is_some());
    leaks.extend(
        card_data_in(&events)
            .into_iter()
            .map(|l| format!("events: {l}")),
    );
    for (body, reason) in &dead {
        let text = format!("{} {reason}", String::from_utf8_lossy(body));
        assert!(text.contains("[redacted"), "{text}");
        leaks.extend(
            card_data_in(&text)
                .into_iter()
                .map(|l| format!("dead letter: {l}")),
        );
    }
    for addr in [app.fleet.gateway_ops_addr, app.fleet.sandbox_addr] {
        let metrics = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("payfleet_"));
        leaks.extend(
            card_data_in(&metrics)
                .into_iter()
                .map(|l| format!("metrics {addr}: {l}")),
        );
    }
    let redis = redis_dump(&app).await;
    assert!(
        redis.contains("cards-ok") && redis.contains("epay:"),
        "the scan sees the records: {redis}"
    );
    leaks.extend(
        card_data_in(&redis)
            .into_iter()
            .map(|l| format!("redis: {l}")),
    );
    app.stop().await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("TRACE"), "logs are captured at trace level");
    assert!(text.contains("cards-ok"), "logs of the run are captured");
    leaks.extend(
        card_data_in(&text)
            .into_iter()
            .map(|l| format!("logs: {l}")),
    );
    assert!(leaks.is_empty(), "card data leaked: {leaks:?}");
}

/// Every key of the fleet's namespace with its value, as text.
async fn redis_dump(app: &TestFleet) -> String {
    let client = redis::Client::open(app.fleet.settings.redis.url.first()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys = app.store().await.keys().await.unwrap();
    let mut out = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let value: Vec<String> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .unwrap(),
            "string" => vec![
                redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            other => vec![format!("<{other}>")],
        };
        out.push_str(&format!("{key} => {value:?}\n"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_answer_is_settled_by_check_status_without_paying_twice() {
    let app = spawn_app("t-epay-lost", 1).await;
    // epay processes the transfer, then its answer is lost (HTTP 502).
    let faults = json!({"endpoints": {P2P_ENDPOINT: {"error_after_rate": 1.0}}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&p2p(
        "p2p-lost",
        60_000,
        json!({"card": card(VISA)}),
        json!({"card_id": "c-1"}),
    ))
    .await;
    let event = app.terminal("p2p-lost").await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    let invoice = invoice_of(&app, "p2p-lost").await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get(&invoice), Some(&1));
    assert_eq!(
        stats.requests.get(P2P_ENDPOINT),
        Some(&1),
        "asked, not sent again"
    );
    assert!(stats.faults.get("error_after").is_some_and(|n| *n >= 1));
    app.stop().await;
}

/// Issue 14, cases 2 and 3: a transfer executed whose answer was lost, which
/// check-status does not find for a while and which the payment path calls "check
/// transaction type (payment/p2p)": its resend is refused with 488 "Invoice already
/// exists", which is no decline; the P2P path settles it, paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invoice_that_already_exists_is_settled_by_the_p2p_status_never_declined() {
    // epay's 60 s basic time becomes 60 ms: the worker asks check-status at once.
    let answers = json!({"epay_p2p_status_split_rate": 1.0});
    let (app, invoice) = a_lost_transfer("p2p-exists", 0.001, answers).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get(&invoice), Some(&1), "{stats:?}");
    assert!(stats.duplicate_submissions_refused >= 1, "{stats:?}");
    app.stop().await;
}

/// A P2P transfer epay executes while its answer (HTTP 502) and postLink are lost, and
/// which check-status does not find for 1.5 s, with `answers` besides; returns once it
/// succeeded, with its invoice id.
async fn a_lost_transfer(key: &str, time_scale: f64, answers: Value) -> (TestFleet, String) {
    let mut s = common::settings(&format!("t-{key}"));
    s.reconciler.time_scale = time_scale;
    s.reconciler.interval_ms = 100;
    let app = spawn_app_with(s, 1).await;
    lose_a_transfer(&app, key, 1500, answers).await;
    let event = app.terminal(key).await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    let invoice = invoice_of(&app, key).await;
    (app, invoice)
}

/// Publishes a P2P transfer which epay executes while its answer (HTTP 502) and
/// postLink are lost, and which check-status does not find for `lag_ms`, with
/// `answers` besides.
async fn lose_a_transfer(app: &TestFleet, key: &str, lag_ms: u64, answers: Value) {
    let mut faults = json!({
        "endpoints": {P2P_ENDPOINT: {"error_after_rate": 1.0}},
        "callbacks": {"loss_rate": 1.0},
        "answers": {"epay_status_lag_rate": 1.0, "epay_status_lag_ms": lag_ms}
    });
    faults["answers"]
        .as_object_mut()
        .unwrap()
        .extend(answers.as_object().unwrap().clone());
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&p2p(
        key,
        60_000,
        json!({"card": card(VISA)}),
        json!({"card_id": "c-1"}),
    ))
    .await;
}

/// A transfer executed whose answer was lost, which check-status does not find for a
/// while, at an epay that pays a taken invoice id again rather than refuse it (its
/// documents name no refusal): 102 "try again later" is no proof the request never
/// arrived, so nothing is sent again until it could be; check-status finds it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_epay_does_not_find_yet_is_not_sent_again_too_soon() {
    // A 3.6 s wait before a resend (2 minutes scaled); check-status finds the transfer
    // after 1.5 s, long after the first recovery asked (300 ms), well before the wait
    // ends, however slow a loaded machine sends it.
    let answers = json!({"epay_duplicate_invoice_paid_rate": 1.0});
    let (app, invoice) = a_lost_transfer("p2p-not-yet", 0.03, answers).await;
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.get(&invoice), Some(&1), "{stats:?}");
    assert_eq!(stats.requests.get(P2P_ENDPOINT), Some(&1), "{stats:?}");
    // Asked while check-status did not find it, and again once it did.
    let asked: u64 = stats
        .requests
        .iter()
        .filter(|(endpoint, _)| endpoint.starts_with("GET /check-status/"))
        .map(|(_, n)| n)
        .sum();
    assert!(asked >= 2, "{stats:?}");
    app.stop().await;
}

/// Issue 14, case 7: a 3-D Secure transfer whose first answer (with the 3-D Secure
/// data) was lost cannot reach its customer, and check-status carries no 3-D Secure
/// data. epay's documents promise no outcome at any time, so past the threshold it is
/// not declined: it stays open, asked about, for an operator, and nothing is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_3ds_transfer_whose_answer_was_lost_stays_open_never_declined() {
    let mut s = common::settings("t-epay-3ds-lost");
    // The transfer's 2 hours' threshold becomes 7.2 s.
    s.reconciler.time_scale = 0.001;
    s.reconciler.interval_ms = 100;
    let app = spawn_app_with(s, 1).await;
    let faults = json!({"endpoints": {P2P_ENDPOINT: {"error_after_rate": 1.0}}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&p2p(
        "p2p-3ds-lost",
        50_000,
        json!({"card": card(MC_3DS)}),
        json!({"card_id": "86496cb0-bb5d-4791-bb49-cc27a0f660ce"}),
    ))
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let events = app.events_for("p2p-3ds-lost");
    assert!(
        events.iter().all(|e| !matches!(
            e.status,
            EventStatus::Declined
                | EventStatus::Failed
                | EventStatus::Rejected
                | EventStatus::Succeeded
                | EventStatus::ActionRequired
        )),
        "{events:?}"
    );
    let state = app.state("p2p-3ds-lost").await.expect("its record");
    assert!(
        matches!(state, State::Submitted | State::Unknown),
        "{state:?}"
    );
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed.is_empty(), "{stats:?}");
    assert_eq!(
        stats.requests.get(P2P_ENDPOINT),
        Some(&1),
        "never sent again"
    );
    app.stop().await;
}

/// `payfleet payments resolve` on the transfer above, once the reconciler notes it
/// overdue: the provider still says it is in progress, so the operator's outcome is
/// recorded and announced once, the record keeps who, when and why, and the payment
/// leaves the open index; a second resolution is refused, the payment being final.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_resolves_a_3ds_transfer_whose_answer_was_lost() {
    use payfleet::contract::IdempotencyKey;
    use payfleet::contract::operator::OperatorAction;
    let mut s = common::settings("t-epay-3ds-resolve");
    s.reconciler.time_scale = 0.001;
    s.reconciler.interval_ms = 100;
    let app = spawn_app_with(s, 1).await;
    let faults = json!({"endpoints": {P2P_ENDPOINT: {"error_after_rate": 1.0}}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    let k = "p2p-3ds-resolve";
    app.publish(&p2p(
        k,
        50_000,
        json!({"card": card(MC_3DS)}),
        json!({"card_id": "86496cb0-bb5d-4791-bb49-cc27a0f660ce"}),
    ))
    .await;
    let key = IdempotencyKey::parse(k).unwrap();
    let store = app.store().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rec = store.record(&key).await.unwrap();
        if rec
            .and_then(|r| r.note)
            .is_some_and(|n| n.contains("overdue"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never noted overdue");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resolve = |outcome: &'static str| {
        common::payfleet_process(
            &app.fleet.settings,
            &[
                "payments",
                "resolve",
                k,
                "--outcome",
                outcome,
                "--reason",
                "the customer never finished 3-D Secure",
                "--by",
                "ops-alice",
            ],
        )
        .output()
    };
    let out = resolve("declined").await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("resolved p2p-3ds-resolve: declined"),
        "{stdout}"
    );
    assert!(stdout.contains("the operator's outcome"), "{stdout}");

    let event = app.terminal(k).await;
    assert_eq!(event.status, EventStatus::Declined, "{event:?}");
    let reason = event.reason.as_deref().unwrap_or_default();
    assert_eq!(
        reason, "resolved by ops-alice: the customer never finished 3-D Secure",
        "{event:?}"
    );
    let rec = store.record(&key).await.unwrap().expect("its record");
    assert_eq!(rec.state, State::Declined);
    let note = rec.note.unwrap_or_default();
    assert!(note.contains("overdue: "), "the earlier note stays: {note}");
    assert!(
        note.contains("resolved by ops-alice at 20")
            && note.ends_with(": the customer never finished 3-D Secure (outcome declined)"),
        "{note}"
    );
    assert_eq!(
        store.open_count().await.unwrap(),
        0,
        "it left the open index"
    );
    let audit = app.events.operator_events();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, OperatorAction::PaymentResolved);
    assert_eq!(
        (audit[0].target.as_str(), audit[0].by.as_str()),
        (k, "ops-alice")
    );
    assert!(
        audit[0].reason.contains("never finished 3-D Secure"),
        "{audit:?}"
    );

    // Final now: a second resolution changes nothing.
    let out = resolve("succeeded").await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("already declined"), "{stderr}");
    // Whatever the reconciler and the refused resolution did since: one terminal event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let terminal: Vec<_> = app
        .events_for(k)
        .into_iter()
        .filter(|e| e.status.is_terminal())
        .collect();
    assert_eq!(terminal.len(), 1, "{terminal:?}");
    assert_eq!(app.events.operator_events().len(), 1);
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed.is_empty(), "{stats:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn epay_commands_route_to_their_own_quorum_queue() {
    use payfleet::contract::ProviderName;
    let app = spawn_app("t-epay-queue", 0).await;
    for (body, rk) in [
        (google_pay("q-1", 100, "1111"), "epay.payment"),
        (
            p2p("q-2", 100, json!({"card_id": "a"}), json!({"card_id": "b"})),
            "epay.transfer",
        ),
    ] {
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            payfleet::contract::command::routing_key_of(&value).unwrap(),
            rk
        );
        app.publish(&body).await;
    }
    let confirm = json!({"method": "p2p", "operation": "confirm_3ds"});
    assert_eq!(
        payfleet::contract::command::routing_key_of(&confirm).unwrap(),
        "epay.confirm_3ds"
    );
    let conn = payfleet::bus::connect(&app.fleet.settings.amqp.url, "test-epay-queue")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let names = app.fleet.names();
    let epay_queue = names.command_queue(ProviderName::Epay);
    assert!(epay_queue.ends_with(".commands.epay"));
    assert_eq!(
        payfleet::bus::queue_depth(&ch, &epay_queue).await.unwrap(),
        2
    );
    assert_eq!(
        payfleet::bus::queue_depth(&ch, &names.command_queue(ProviderName::Ecommpay))
            .await
            .unwrap(),
        0
    );
    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_used_after_its_expiry_is_refused() {
    let mut settings = common::settings("t-epay-expiry");
    settings.sandbox.epay_token_ttl_s = 1;
    let app = spawn_app_with(settings, 0).await;
    let access = access_token(sandbox_token(&app, "200000000001", None).await).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let late = sandbox_transfer(&app, &access, "200000000001").await;
    assert_eq!(late.status().as_u16(), 401);
    let body: Value = late.json().await.unwrap();
    assert_eq!(
        (body["code"].as_i64(), body["message"].as_str()),
        (Some(1500), Some("token expired"))
    );
    assert!(app.fleet.sandbox.stats().executed.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_authentic_post_link_is_believed_only_as_far_as_check_status_says() {
    let app = spawn_app("t-epay-postlink", 1).await;
    app.publish(&p2p(
        "p2p-early",
        70_000,
        json!({"card": card(MC_3DS)}),
        json!({"card_id": "c-1"}),
    ))
    .await;
    let asked = wait_status(&app, "p2p-early", EventStatus::ActionRequired).await;
    let invoice = asked.payment_id.unwrap();
    // The transaction's own secret_hash, as epay would echo it.
    let secret_hash =
        secrecy::ExposeSecret::expose_secret(&invoices(&app.fleet.settings).secret_hash(&invoice))
            .to_owned();
    // It claims success, but epay still waits for 3-D Secure: nothing is published.
    let claim = json!({"invoiceId": invoice, "secret_hash": secret_hash, "code": "ok", "reason": "Successfully"});
    let answer = reqwest::Client::new()
        .post(format!("http://{}/callbacks/epay", app.fleet.gateway_addr))
        .json(&claim)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.state("p2p-early").await, Some(State::ActionRequired));
    assert!(
        app.events_for("p2p-early")
            .iter()
            .all(|e| !e.status.is_terminal())
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_endpoint_outage_is_retried_and_pays_once() {
    let app = spawn_app("t-epay-oauth-down", 1).await;
    let down = json!({"endpoints": {"POST /oauth2/token": {"error_rate": 1.0}}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(down).unwrap());
    app.publish(&google_pay("gp-oauth-down", 25_000, "1111"))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app
        .fleet
        .sandbox
        .stats()
        .faults
        .get("error")
        .copied()
        .unwrap_or(0)
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker keeps asking for a token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.events_for("gp-oauth-down")
            .iter()
            .all(|e| !e.status.is_terminal())
    );
    app.fleet.sandbox.set_faults(Default::default());
    let event = app.terminal("gp-oauth-down").await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.requests.get(GOOGLE_PAY_ENDPOINT), Some(&1));
    assert_eq!(stats.executed.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invoice_ids_are_allocated_once_per_key_and_unique_in_their_last_six_digits() {
    use payfleet::providers::epay::invoice::Invoices;
    let s = common::settings("t-epay-invoices");
    let secret = s.secrets.epay().unwrap();
    let conn = payfleet::state::RedisConn::open(&s.redis).unwrap();
    let invoices = Invoices::new(conn, &s.redis.key_prefix, "term-1", 60_000, secret);
    // The same key, many times at once: one invoice id, one secret_hash.
    let same = futures::future::join_all((0..20).map(|_| invoices.allocate("k-same", None))).await;
    let first = same[0].as_ref().unwrap();
    for a in &same {
        let a = a.as_ref().unwrap();
        assert_eq!(a.invoice_id, first.invoice_id);
        assert!(payfleet::providers::epay::invoice::secret_matches(
            &first.secret_hash,
            secrecy::ExposeSecret::expose_secret(&a.secret_hash)
        ));
    }
    // Many keys at once: all different, also in their last six digits.
    let many = futures::future::join_all((0..200).map(|i| {
        let invoices = invoices.clone();
        async move {
            invoices
                .allocate(&format!("k-{i}"), None)
                .await
                .unwrap()
                .invoice_id
        }
    }))
    .await;
    let mut suffixes = std::collections::HashSet::new();
    for id in &many {
        assert!(
            (6..=15).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()),
            "{id}"
        );
        assert!(
            suffixes.insert(id[id.len() - 6..].to_owned()),
            "suffix of {id} repeats"
        );
    }
    assert!(!suffixes.contains(&first.invoice_id[first.invoice_id.len() - 6..]));
    // The gateway finds a transaction by its invoice id.
    let (key, _) = invoices
        .find(&many[7])
        .await
        .unwrap()
        .expect("known invoice");
    assert_eq!(key, "k-7");
    assert!(invoices.find("123456789012").await.unwrap().is_none());
}

/// A copy of a command carries its invoice id (`x-payfleet-payment-id`) for when Redis
/// lost the allocation, sealed for its key: the allocator takes it back only if the seal
/// holds and it is one of the key's own candidates, so a publisher can neither choose
/// another of the key's candidates (and have a paid command paid again under it) nor
/// another key's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_carried_invoice_id_is_taken_back_only_when_sealed_for_its_key() {
    use payfleet::providers::epay::invoice::{Invoices, candidates};
    let s = common::settings("t-epay-carried-ids");
    let secret = s.secrets.epay().unwrap();
    let conn = payfleet::state::RedisConn::open(&s.redis).unwrap();
    let invoices = Invoices::new(conn, &s.redis.key_prefix, "term-1", 60_000, secret);
    let id = |key: &'static str, carried: Option<String>| {
        let invoices = invoices.clone();
        async move {
            let a = invoices.allocate(key, carried.as_deref()).await;
            a.unwrap().invoice_id
        }
    };
    let own = candidates("term-1", "k-own");
    // One of the key's candidates, though not its first, sealed for it: taken back.
    assert_eq!(
        id("k-own", Some(invoices.carry("k-own", &own[3]))).await,
        own[3]
    );
    // Allocated already: what it has, whatever a copy carries.
    let other_seal = invoices.carry("k-own", &own[0]);
    assert_eq!(id("k-own", Some(other_seal)).await, own[3]);
    assert_eq!(id("k-own", None).await, own[3]);
    // Unsealed, sealed for another key, or with a forged seal: its first free candidate.
    let first = |key| candidates("term-1", key)[0].clone();
    let mine = candidates("term-1", "k-bare");
    assert_eq!(id("k-bare", Some(mine[2].clone())).await, first("k-bare"));
    let theirs = candidates("term-1", "k-theirs");
    let sealed_elsewhere = invoices.carry("k-own", &theirs[2]);
    assert_eq!(
        id("k-theirs", Some(sealed_elsewhere)).await,
        first("k-theirs")
    );
    let forged = candidates("term-1", "k-forged");
    let seal = format!("{}/{}", forged[2], "a".repeat(32));
    assert_eq!(id("k-forged", Some(seal)).await, first("k-forged"));
    // What a copy carries never looks like a card number, seal included.
    for k in 0..200 {
        let key = format!("k-{k}");
        let carried = invoices.carry(&key, &candidates("term-1", &key)[0]);
        assert!(!payfleet::contract::card::holds_pan(&carried), "{carried}");
    }
    // Sealed for the key but none of its candidates: its first free candidate.
    let stray = invoices.carry("k-stray", "123456789012345");
    assert_eq!(id("k-stray", Some(stray)).await, first("k-stray"));
    payfleet::app::connect_store(&s)
        .await
        .unwrap()
        .delete_all()
        .await
        .unwrap();
}

/// Redis loses its data while a transfer whose answer was lost is still open, and its
/// key had skipped its first invoice candidate (a recent order held that suffix): the
/// parked copy carries the invoice id, the allocator takes it back, epay refuses the
/// resend as known, and check-status settles it. Without the carried id the key's first
/// candidate, free again once Redis forgot that order, would be paid a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parked_copy_takes_its_invoice_id_back_after_redis_lost_it() {
    use payfleet::providers::epay::invoice::candidates;
    let mut s = common::settings("t-epay-carried");
    // Only the parked copy settles it, after the loss; epay's 60 s are 60 ms.
    s.reconciler.embedded = false;
    s.reconciler.time_scale = 0.001;
    let app = spawn_app_with(s, 1).await;
    let (key, settings) = ("p2p-carried", &app.fleet.settings);
    let terminal = &settings.epay.terminal_id;
    let first = candidates(terminal, key).remove(0);
    let store = app.store().await;
    let mut conn = payfleet::state::RedisConn::open(&settings.redis).unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!(
            "{}:{{epay:{terminal}}}:idx",
            settings.redis.key_prefix
        ))
        .arg(format!("s:{}", &first[first.len() - 6..]))
        .arg("a recent order's")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Not found by check-status for 3 s: it stays open.
    lose_a_transfer(&app, key, 3_000, json!({})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.fleet.sandbox.stats().executed.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "epay never executed it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let invoice = invoice_of(&app, key).await;
    assert_ne!(
        invoice, first,
        "a recent order held the first candidate's suffix"
    );
    // Its copies go round the delay queues, carrying the id; then Redis loses it all.
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.delete_all().await.unwrap();
    app.fleet
        .sandbox
        .set_faults(payfleet_sim::Faults::default());

    let event = app.terminal(key).await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    assert_eq!(invoice_of(&app, key).await, invoice, "the same invoice id");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(
        stats.executed.values().sum::<u64>(),
        1,
        "paid once: {stats:?}"
    );
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_google_pay_payment_through_3ds_and_a_failed_3ds_transfer() {
    let app = spawn_app("t-epay-gp-3ds", 1).await;
    app.publish(&google_pay("gp-3ds", 33_300, "6736")).await;
    app.publish(&p2p(
        "p2p-3ds-fail",
        44_400,
        json!({"card": card(MC_3DS)}),
        json!({"card_id": "c-1"}),
    ))
    .await;
    for (key, pa_res) in [("gp-3ds", "eJzNWVnT4jiy"), ("p2p-3ds-fail", "FAIL")] {
        let asked = wait_status(&app, key, EventStatus::ActionRequired).await;
        let action = asked.action.clone().unwrap();
        let confirm = json!({
            "version": 1, "idempotency_key": format!("{key}-confirm"), "method": "p2p", "operation": "confirm_3ds",
            "amount": asked.amount,
            "details": {"invoice_id": asked.payment_id, "ID": action["ID"], "PaRes": pa_res, "MD": action["MD"]}
        });
        app.publish(&confirm.to_string()).await;
    }
    assert_eq!(
        app.terminal("gp-3ds-confirm").await.status,
        EventStatus::Succeeded
    );
    assert_eq!(app.terminal("gp-3ds").await.status, EventStatus::Succeeded);
    let failed_confirm = app.terminal("p2p-3ds-fail-confirm").await;
    assert_eq!(failed_confirm.status, EventStatus::Declined);
    assert_eq!(failed_confirm.provider.unwrap().code, "456");
    let failed = app.terminal("p2p-3ds-fail").await;
    assert_eq!(failed.status, EventStatus::Declined, "{failed:?}");
    assert_eq!(
        failed.provider.unwrap().code,
        "456",
        "the reasonCode check-status gives"
    );
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.executed.len(), 1, "{stats:?}");
    app.stop().await;
}

/// A P2P command caught in a crash loop is dead-lettered by the worker, redacted, on the
/// delivery before the quorum queue's limit would dead-letter it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_looping_transfer_is_dead_lettered_without_its_card_data() {
    let mut app = spawn_app("t-epay-dlimit", 0).await;
    let body = p2p(
        "p2p-dlimit",
        10000,
        json!({"card": card(VISA)}),
        json!({"card": card(AMEX)}),
    );
    app.publish_raw("epay.transfer", body.as_bytes()).await;
    // Handed back as often as a crash loop would (the broker counts; a count its
    // publisher wrote is not trusted).
    let limit = app.fleet.settings.amqp.delivery_limit;
    app.hand_back("epay.transfer", limit - 1).await;
    app.fleet.add_worker().await.unwrap();
    let dead = app.dead.wait_for(1).await;
    assert_eq!(dead.len(), 1, "dead-lettered");
    let (dead_body, reason) = &dead[0];
    assert!(reason.contains("without finishing"), "{reason}");
    let text = String::from_utf8_lossy(dead_body);
    for (pan, _, _, cvc) in [VISA, AMEX] {
        assert!(!text.contains(pan), "PAN in the dead letter: {text}");
        assert!(
            !text.contains(&format!("\"{cvc}\"")),
            "CVC in the dead letter: {text}"
        );
    }
    assert!(text.contains("p2p-dlimit"), "the key stays: {text}");
    let stats = app.fleet.sandbox.stats();
    assert_eq!(stats.requests.get(P2P_ENDPOINT), None, "never sent");
    app.stop().await;
}

/// Issue 14, case 6: a replayed authentic postLink for a finished payment is answered
/// from its record: no token, no check-status call, no second event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_postlink_is_answered_from_the_final_record() {
    let app = spawn_app("t-epay-replay", 1).await;
    let faults = json!({"answers": {"epay_postlink_replay_rate": 1.0, "epay_replay_ms": 1500}});
    app.fleet
        .sandbox
        .set_faults(serde_json::from_value(faults).unwrap());
    app.publish(&google_pay("gp-replay", 10_000, "1111")).await;
    assert_eq!(
        app.terminal("gp-replay").await.status,
        EventStatus::Succeeded
    );
    let events = app.settled_event_count("gp-replay").await;
    let check_status = |s: &payfleet_sim::Stats| -> u64 {
        s.requests
            .iter()
            .filter(|(endpoint, _)| endpoint.contains("check-status"))
            .map(|(_, n)| n)
            .sum()
    };
    let before = app.fleet.sandbox.stats();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.fleet.sandbox.stats().callbacks.delivered < before.callbacks.delivered + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay never came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = app.fleet.sandbox.stats();
    assert_eq!(after.faults.get("postlink_replay"), Some(&1), "{after:?}");
    assert_eq!(
        after.epay_tokens_issued, before.epay_tokens_issued,
        "{after:?}"
    );
    assert_eq!(check_status(&after), check_status(&before), "{after:?}");
    assert_eq!(app.events_for("gp-replay").len(), events);
    app.stop().await;
}
