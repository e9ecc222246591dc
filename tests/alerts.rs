//! The alert rules and Prometheus' configuration are valid, and the rules fire (and stay
//! quiet) as their unit tests in prometheus/alerts.test.yml say. Needs promtool
//! (scripts/ensure-services --for-tests installs it) and fails loudly without it.

mod observe;

use observe::{promtool_passes, repo_path};

/// Runs promtool on a file of the repository and expects its SUCCESS.
fn promtool_succeeds(command: &[&str], file: &str) {
    let path = repo_path(file);
    let args: Vec<&str> = command.iter().copied().chain([path.as_str()]).collect();
    let out = promtool_passes(&args, None);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_rules_are_valid() {
    promtool_succeeds(&["check", "rules"], "prometheus/alerts.yml");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    promtool_succeeds(&["test", "rules"], "prometheus/alerts.test.yml");
}

#[test]
fn prometheus_config_is_valid() {
    promtool_succeeds(&["check", "config"], "prometheus/prometheus.yml");
}
