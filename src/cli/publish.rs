//! `payfleet publish`: commands from a JSON-lines file or stdin onto the bus, each
//! confirmed by the broker. Lines that cannot be routed are reported, not published.
//! `--dry-run` publishes nothing: it reads every line as a worker would and says what
//! each would become.

use crate::bus;
use crate::config::Settings;
use crate::contract::command::{Decoded, decode, misrouted, routing_key_of};
use crate::contract::{FingerprintKey, IdempotencyKey};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinSet;

#[derive(clap::Args)]
pub struct Args {
    /// JSON-lines file of commands; `-` or nothing reads stdin.
    file: Option<PathBuf>,
    /// Routing key for every line, instead of the one derived from method and operation
    /// (a worker rejects a command whose method and operation route elsewhere).
    #[arg(long)]
    routing_key: Option<String>,
    /// Publishes awaiting their confirm at once.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Publish nothing: check every line as a worker would decode it (the contract, the
    /// routing key) and report what each would become; exit 1 if any would not be paid.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let (reader, progress): (Box<dyn tokio::io::AsyncRead + Unpin + Send>, _) = match &args.file {
        Some(p) if p.as_os_str() != "-" => {
            let file = tokio::fs::File::open(p).await?;
            let bar = progress(file.metadata().await?.len());
            (Box::new(file), bar)
        }
        _ => (Box::new(tokio::io::stdin()), ProgressBar::hidden()),
    };
    if args.dry_run {
        return dry_run(reader, &progress, args.routing_key.as_deref()).await;
    }
    let (conn, publisher) = super::fleet::publisher(&settings, "payfleet-publish").await?;
    let mut lines = BufReader::new(reader).lines();
    let mut tasks = JoinSet::new();
    let (mut published, mut failed, mut line_no) = (0u64, 0u64, 0u64);
    let mut tally = |r: Result<(), String>| match r {
        Ok(()) => published += 1,
        Err(e) => {
            failed += 1;
            progress.suspend(|| eprintln!("{e}"));
        }
    };
    while let Some(line) = lines.next_line().await? {
        line_no += 1;
        progress.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        let routing = match &args.routing_key {
            Some(k) => Ok(k.clone()),
            None => serde_json::from_str(&line)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|v| routing_key_of(&v)),
        };
        let routing = match routing {
            Ok(r) => r,
            Err(e) => {
                tally(Err(format!(
                    "line {line_no}: cannot route it ({e}); use --routing-key"
                )));
                continue;
            }
        };
        while tasks.len() >= args.in_flight.max(1) {
            if let Some(r) = tasks.join_next().await {
                tally(r?);
            }
        }
        let publisher = publisher.clone();
        tasks.spawn(async move {
            publisher
                .publish_command(&routing, line.as_bytes(), bus::trace_headers())
                .await
                .map_err(|e| format!("line {line_no}: {e}"))
        });
    }
    while let Some(r) = tasks.join_next().await {
        tally(r?);
    }
    publisher.close().await;
    let _ = conn.close(200, "bye".into()).await;
    progress.finish_and_clear();
    println!("published {published} command(s), {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A bar over the file's bytes, on stderr, drawn only when stderr is a terminal.
fn progress(bytes: u64) -> ProgressBar {
    let bar = ProgressBar::new(bytes);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    bar
}

/// What a worker would make of one line.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Sent to the provider.
    Valid,
    /// Answered with a `rejected` event, for this reason.
    Rejected(String),
    /// Not a command: the dead-letter queue, for this reason.
    DeadLettered(String),
}

/// Reads `line` as the worker decodes a delivery under `routing_key` (by default the
/// one its body routes to).
fn verdict(line: &str, routing_key: Option<&str>, key: &FingerprintKey) -> Verdict {
    match decode(line.as_bytes(), key) {
        Decoded::Valid(cmd) => {
            match routing_key.and_then(|rk| misrouted(rk, cmd.method, cmd.operation)) {
                Some(why) => Verdict::Rejected(why),
                None => Verdict::Valid,
            }
        }
        Decoded::Invalid(inv) => Verdict::Rejected(inv.reason),
        Decoded::Undecodable(why) => Verdict::DeadLettered(why),
    }
}

async fn dry_run(
    reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    progress: &ProgressBar,
    routing_key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    // Fingerprints are not compared here: any key decodes alike.
    let key = FingerprintKey::new(uuid::Uuid::new_v4().simple().to_string().into());
    let mut lines = BufReader::new(reader).lines();
    let (mut line_no, mut valid, mut rejected, mut dead) = (0u64, 0u64, 0u64, 0u64);
    let mut keys = std::collections::HashSet::new();
    while let Some(line) = lines.next_line().await? {
        line_no += 1;
        progress.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        let said = match verdict(&line, routing_key, &key) {
            Verdict::Valid => {
                valid += 1;
                let k = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| {
                        IdempotencyKey::parse(v["idempotency_key"].as_str()?.to_owned()).ok()
                    });
                match k {
                    Some(k) if !keys.insert(k.clone()) => Some(format!(
                        "line {line_no}: valid; key {k} again: one payment, the later line a duplicate"
                    )),
                    _ => None,
                }
            }
            Verdict::Rejected(why) => {
                rejected += 1;
                Some(format!("line {line_no}: would be rejected: {why}"))
            }
            Verdict::DeadLettered(why) => {
                dead += 1;
                Some(format!("line {line_no}: would be dead-lettered: {why}"))
            }
        };
        if let Some(said) = said {
            progress.suspend(|| eprintln!("{said}"));
        }
    }
    progress.finish_and_clear();
    println!(
        "dry run: {valid} valid, {rejected} would be rejected, {dead} would be dead-lettered; nothing published"
    );
    Ok(if rejected + dead == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_says_what_a_worker_would_make_of_each_line() {
        let key = FingerprintKey::new("k".to_owned().into());
        let payout = r#"{"version":1,"idempotency_key":"po-1","method":"homebank","operation":"payout","amount":{"minor":200000,"currency":"KZT"},"details":{"customer":{"id":"444567","phone":"77074544579","ip_address":"1.1.1.1"}}}"#;
        assert_eq!(verdict(payout, None, &key), Verdict::Valid);
        assert_eq!(
            verdict(payout, Some("ecommpay.payout"), &key),
            Verdict::Valid
        );
        let Verdict::Rejected(why) = verdict(payout, Some("epay.payment"), &key) else {
            panic!("misrouted")
        };
        assert!(why.contains("ecommpay.payout"), "{why}");
        let odd = payout.replace("200000", "300000");
        let Verdict::Rejected(why) = verdict(&odd, None, &key) else {
            panic!("rejected")
        };
        assert!(why.contains("multiple of 2000.00"), "{why}");
        assert!(matches!(
            verdict("{not json", None, &key),
            Verdict::DeadLettered(_)
        ));
    }
}
