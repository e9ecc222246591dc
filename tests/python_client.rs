//! The Python client of examples/python against a real fleet on the local RabbitMQ and
//! Redis: its unit tests, then the client publishing HomeBank payouts and waiting for
//! their terminal events. It runs in a virtualenv under target/ (made once, pip
//! installing examples/python/requirements.txt); without python3 or pip it fails, it
//! does not skip.

mod common;

use common::{TestFleet, payout, spawn_app};
use lapin::options::QueueDeleteOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_client_sees_one_terminal_event_per_command_and_drops_copies() {
    let python = venv();
    let unit = Command::new(&python)
        .args(["-m", "unittest", "discover", "-s", CLIENT_DIR])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("the virtualenv's python runs");
    assert!(unit.status.success(), "{}", text(&unit));

    let mut app = spawn_app("t-python", 1).await;
    let queue = format!("{}.python-client", app.fleet.settings.amqp.namespace);

    // With no commands the client only makes its named queue, which outlives it.
    let made = run_client(&python, &app, Some(&queue), 10, &[]).await;
    assert!(made.status.success(), "{}", text(&made));

    // An earlier publisher's payout: its events wait in the client's queue, the
    // terminal one twice, as at-least-once delivery may bring it.
    app.publish(&payout("py-paid", 200000, "KZT", "444567"))
        .await;
    let paid = app.terminal("py-paid").await;
    app.publisher
        .publish_event(&paid, None)
        .await
        .expect("the copy is confirmed");

    // The folder's example: a payout the sandbox pays, an invalid one, one it declines.
    let example = std::fs::read_to_string(format!("{CLIENT_DIR}/commands.jsonl"))
        .expect("the example commands");
    let mut commands: Vec<String> = example.lines().map(str::to_owned).collect();
    // Published again: the fleet pays nothing more and says nothing new.
    commands.push(payout("py-paid", 200000, "KZT", "444567"));
    // Twice in one run: one payment, one terminal event.
    let twice = payout("py-twice", 200000, "KZT", "444567");
    commands.extend([twice.clone(), twice]);
    let out = run_client(&python, &app, Some(&queue), 30, &commands).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for line in [
        "published 6 of 6 message(s), 5 command(s)",
        "\nexample-paid-1: succeeded\n",
        "\nexample-rejected-1: rejected: a HomeBank payout of this size must be a multiple of 2000.00 KZT\n",
        "\nexample-declined-1: declined: 20602 Time-out\n",
        "\npy-paid: succeeded\n",
        "\npy-twice: succeeded\n",
        "\nverdict: OK\n",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    assert_eq!(count(&stdout, "succeeded"), 3, "{stdout}");
    assert_eq!(count(&stdout, "declined"), 1, "{stdout}");
    assert_eq!(count(&stdout, "rejected"), 1, "{stdout}");
    assert_eq!(count(&stdout, "without a terminal event"), 0, "{stdout}");
    assert_eq!(
        count(&stdout, "with several terminal events"),
        0,
        "{stdout}"
    );
    assert!(count(&stdout, "duplicate events dropped") >= 1, "{stdout}");
    let executed = app.fleet.sandbox.stats().executed;
    assert_eq!(executed.get("example-paid-1"), Some(&1), "{executed:?}");
    assert_eq!(executed.get("py-paid"), Some(&1), "{executed:?}");
    assert_eq!(executed.get("py-twice"), Some(&1), "{executed:?}");

    // No worker: the payout is never answered, and the client says so and fails. Its
    // queue this time is the default one, the broker's to name and delete.
    app.fleet.stop_worker(0).await.expect("the worker stops");
    let lost = [payout("py-unanswered", 200000, "KZT", "444567")];
    let out = run_client(&python, &app, None, 2, &lost).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout.contains("\npy-unanswered: no terminal event\n"),
        "{stdout}"
    );
    assert_eq!(count(&stdout, "without a terminal event"), 1, "{stdout}");
    assert!(stdout.contains("\nverdict: FAILED\n"), "{stdout}");

    let conn = payfleet::bus::connect(&app.fleet.settings.amqp.url, "test-python-cleanup")
        .await
        .expect("the broker answers");
    let ch = conn.create_channel().await.expect("a channel");
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("the client's queue is deleted");
    let _ = conn.close(200, "bye".into()).await;
    app.stop().await;
}

/// The client on `commands` (its stdin), against the fleet's namespace, on `queue`
/// (none: its default queue).
async fn run_client(
    python: &Path,
    app: &TestFleet,
    queue: Option<&str>,
    timeout_s: u64,
    commands: &[String],
) -> Output {
    let mut child = tokio::process::Command::new(python)
        .arg(format!("{CLIENT_DIR}/payfleet_client.py"))
        .args(["--namespace", &app.fleet.settings.amqp.namespace])
        .args(queue.map(|q| ["--queue", q]).into_iter().flatten())
        .args(["--timeout", &timeout_s.to_string()])
        .env("PAYFLEET__AMQP__URL", app.fleet.settings.amqp.url.joined())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the client starts");
    let mut stdin = child.stdin.take().expect("its stdin");
    stdin
        .write_all(commands.join("\n").as_bytes())
        .await
        .expect("the commands are written");
    drop(stdin);
    tokio::time::timeout(
        Duration::from_secs(timeout_s + 30),
        child.wait_with_output(),
    )
    .await
    .expect("the client ends soon after its timeout")
    .expect("the client's output")
}

/// A virtualenv with the client's requirements, made again when they change.
fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-client-venv");
    let requirements = format!("{CLIENT_DIR}/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("requirements.txt");
    let stamp = dir.join("requirements.installed");
    let python = dir.join("bin").join("python");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_ref() == Some(&wanted) {
        return python;
    }
    must(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&dir),
        "python3 -m venv (Python 3.11 with its venv module is needed)",
    );
    must(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["-r", &requirements]),
        "pip install -r examples/python/requirements.txt",
    );
    std::fs::write(&stamp, wanted).expect("the stamp is written");
    python
}

fn must(command: &mut Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
    assert!(out.status.success(), "{what} failed:\n{}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A count from the client's summary table: the number ending the row named `row`.
fn count(stdout: &str, row: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| {
            l.strip_prefix(row)
                .is_some_and(|rest| rest.trim().parse::<u64>().is_ok())
        })
        .unwrap_or_else(|| panic!("no row {row:?} in\n{stdout}"));
    line[row.len()..].trim().parse().expect("a count")
}
