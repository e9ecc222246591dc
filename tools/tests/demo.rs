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
    assert_eq!(summary["false_outcomes"], 0, "{summary:#}");
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
