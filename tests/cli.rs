//! The `payfleet` command line as a user meets it: settings named when wrong, and the
//! tool commands handed to their own binaries.

use std::process::Command;

#[test]
fn a_missing_secret_is_named_and_the_worker_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
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
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
        .arg("sandbox")
        .env("PAYFLEET__SANDBOX__LISTEN", "not-an-address")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sandbox.listen"), "{stderr}");
}

#[test]
fn tool_commands_are_handed_to_their_binaries() {
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
        .args(["bench", "--help"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("--commands"), "{stdout}");
}

#[test]
fn an_unknown_command_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
        .arg("frobnicate")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn the_simulator_reads_lists_from_the_environment() {
    for list in ["1000", "200,1000"] {
        // A bad address after the list: the run stops at the first setting it cannot read.
        let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
            .arg("sandbox")
            .env("PAYFLEET__SANDBOX__CALLBACK_RETRY_MS", list)
            .env("PAYFLEET__SANDBOX__ECOMMPAY_EXTRA_PROJECT_IDS", list)
            .env("PAYFLEET__SANDBOX__LISTEN", "not-an-address")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("sandbox.listen"), "{list}: {stderr}");
    }
}
