//! The alert rules and Prometheus' configuration are valid, and the rules fire (and stay
//! quiet) as their unit tests in prometheus/alerts.test.yml say. Needs promtool
//! (scripts/ensure-services installs it) and fails loudly without it.

mod observe;

use observe::{promtool_passes, repo_path};

#[test]
fn alert_rules_are_valid() {
    let out = promtool_passes(
        &["check", "rules", &repo_path("prometheus/alerts.yml")],
        None,
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let out = promtool_passes(
        &["test", "rules", &repo_path("prometheus/alerts.test.yml")],
        None,
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn prometheus_config_is_valid() {
    let out = promtool_passes(
        &["check", "config", &repo_path("prometheus/prometheus.yml")],
        None,
    );
    assert!(out.contains("SUCCESS"), "{out}");
}
