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

#[test]
fn every_configuration_problem_is_named_in_one_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
        .arg("worker")
        .env("PAYFLEET__AMQP__PREFETCH", "lots")
        .env("PAYFLEET__GATEWAY__MAX_CONNECTIONS", "none")
        .env_remove("PAYFLEET__ECOMMPAY__SECRET_KEY")
        .env_remove("PAYFLEET__EPAY__CLIENT_SECRET")
        .env_remove("PAYFLEET__EPAY__FINGERPRINT_KEY")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for named in [
        "amqp.prefetch",
        "gateway.max_connections",
        "PAYFLEET__ECOMMPAY__SECRET_KEY",
        "PAYFLEET__EPAY__CLIENT_SECRET",
        "PAYFLEET__EPAY__FINGERPRINT_KEY",
    ] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
    // Without epay, its secrets are not asked for.
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
        .arg("worker")
        .env("PAYFLEET__EPAY__ENABLED", "false")
        .env_remove("PAYFLEET__ECOMMPAY__SECRET_KEY")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PAYFLEET__ECOMMPAY__SECRET_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("EPAY"), "{stderr}");
}

/// Serves one HTTP request on a port of its own with `status`, and returns the port.
fn one_answer(status: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        stream.write_all(answer.as_bytes()).unwrap();
    });
    port
}

#[test]
fn health_exits_0_only_when_the_process_is_ready() {
    let health = |target: String| {
        Command::new(env!("CARGO_BIN_EXE_payfleet"))
            .args(["health", &target])
            // A healthcheck runs in the process's environment: its settings do not matter.
            .env("PAYFLEET__AMQP__PREFETCH", "lots")
            .output()
            .expect("the binary runs")
    };
    assert!(health(one_answer("200 OK").to_string()).status.success());
    let url = format!("http://127.0.0.1:{}", one_answer("200 OK"));
    assert!(health(url).status.success());
    let out = health(one_answer("503 Service Unavailable").to_string());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    assert_eq!(health(port.to_string()).status.code(), Some(1));
    assert_eq!(health("nowhere".into()).status.code(), Some(2));
}

/// `publish --dry-run` reads every line as a worker would, names the line and the
/// field, publishes nothing (no broker is given: an unreachable URL), exits 1.
#[test]
fn a_dry_run_publishes_nothing_and_names_each_bad_line() {
    let dir = std::env::temp_dir().join(format!("payfleet-dry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("commands.jsonl");
    let good = r#"{"version":1,"idempotency_key":"po-1","method":"homebank","operation":"payout","amount":{"minor":200000,"currency":"KZT"},"details":{"customer":{"id":"444567","phone":"77074544579","ip_address":"1.1.1.1"}}}"#;
    let bad = good.replace("po-1", "po-2").replace("77074544579", "x");
    std::fs::write(&file, format!("{good}\n\n{bad}\nnot json\n{good}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_payfleet"))
        .args(["publish", "--dry-run"])
        .arg(&file)
        .env("PAYFLEET__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3: would be rejected: details.customer.phone"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4: would be dead-lettered"),
        "{stderr}"
    );
    assert!(stderr.contains("line 5: valid; key po-1 again"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 valid, 1 would be rejected, 1 would be dead-lettered"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
