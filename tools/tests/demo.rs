//! `payfleet demo --count 200 --json`, run as a user runs it.

use std::process::Command;

#[test]
fn the_demo_ends_every_command_once_and_pays_nothing_twice() {
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet-tools"))
        .args(["demo", "--count", "200", "--json"])
        .env("PAYFLEET__TELEMETRY__LOG_LEVEL", "warn")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(summary["commands"], 200);
    assert_eq!(summary["without_terminal_event"], 0);
    assert_eq!(summary["with_several_terminal_events"], 0);
    assert_eq!(summary["payouts_executed_twice"], 0);
    let terminal = summary["terminal"].as_object().unwrap();
    let total: u64 = terminal.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 200);
    for status in ["succeeded", "declined", "rejected"] {
        assert!(
            terminal[status].as_u64().unwrap() > 0,
            "the mix includes {status}"
        );
    }
    let india = &summary["banks_of_india"];
    assert_eq!(india["purchases"], 30);
    assert_eq!(india["refunds"], 6);
    assert_eq!(
        india["completed_at_the_bank"], 24,
        "every purchase asked to act was completed or declined at the bank page"
    );
    assert_eq!(
        india["deferred_payouts"], 12,
        "the payouts published before the window opened were deferred"
    );
    assert!(india["note"].as_str().unwrap().contains("deferred"));
}

#[test]
fn a_missing_secret_is_named_and_the_worker_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet-tools"))
        .arg("worker")
        .env_remove("PAYFLEET__ECOMMPAY__SECRET_KEY")
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PAYFLEET__ECOMMPAY__SECRET_KEY"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_setting_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet-tools"))
        .arg("sandbox")
        .env("PAYFLEET__SANDBOX__LISTEN", "not-an-address")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sandbox.listen"), "{stderr}");
}
