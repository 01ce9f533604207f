//! Zero failed requests through changes, measured with `twip bench --rate 500` over 50
//! connections through the proxy for the whole of each change, on a real single-node swarm:
//! a rolling update of 3 replicas (v1 → v2), a scale-down 3 → 1, an update of a single replica
//! (start-first, health-gated, lame duck on SIGTERM), and a version whose health check never
//! passes (rolled back by swarm, exit 4). A negative control (stop-first, 1 replica, no health
//! check, no lame duck) must show failures: it proves the measurement can see them.

mod common;

use std::sync::Mutex;

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn port() -> u16 {
    test_vars()[0].1.parse().unwrap()
}

/// Runs `change` while `twip bench` loads the proxy; returns the bench's JSON report.
fn under_load(change: impl FnOnce()) -> serde_json::Value {
    bench_during(&format!("http://127.0.0.1:{}/", port()), change)
}

fn versions(n: usize) -> Vec<String> {
    (0..n)
        .filter_map(|_| http(port(), "GET", "/", ""))
        .filter_map(|(_, h, _)| header(&h, "x-app-version").map(str::to_string))
        .collect()
}

fn zd_manifest(stack: &str) -> String {
    format!(
        "extends: training\nstack: {stack}\nservices:\n  web:\n    replicas: 3\n    update:\n      parallelism: 1\n      order: start-first\n      failure_action: rollback\n      monitor: 4s\n"
    )
}

#[test]
fn updates_and_scale_downs_lose_no_request() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let mut p = TestProject::new(&["training"], "zd");
    p.write_env("zd", &zd_manifest("twiptest_zd"));
    p.stacks.push("twiptest_zd".into());
    let up = p.twip(&["up", "zd"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(eventually(60, || (versions(6)
        .iter()
        .filter(|v| *v == "1.0.0")
        .count()
        == 6)
        .then_some(()))
    .is_some());

    // 3 replicas, v1 → v2.
    let mut out = None;
    let report =
        under_load(|| out = Some(p.twip_with(&[("TWIP_WEB_VERSION", "2.0.0")], &["up", "zd"])));
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "requests failed during the rolling update: {report}"
    );
    assert!(
        versions(10).iter().all(|v| v == "2.0.0"),
        "{:?}",
        versions(10)
    );

    // Scale down 3 → 1.
    let mut out = None;
    let report = under_load(|| out = Some(p.twip(&["scale", "zd", "web=1"])));
    assert!(out.unwrap().status.success());
    assert_eq!(
        failed(&report),
        0,
        "requests failed during the scale-down: {report}"
    );

    // One replica, v2 → v3: start-first, health-gated, lame duck.
    let mut out = None;
    let report =
        under_load(|| out = Some(p.twip_with(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "zd"])));
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "requests failed updating a single replica: {report}"
    );
    assert!(versions(5).iter().all(|v| v == "3.0.0"));

    // A version whose health check never passes: rolled back, exit 4, nothing failed.
    let mut out = None;
    let report = under_load(|| {
        out = Some(p.twip_with(
            &[("TWIP_WEB_VERSION", "3.0.0")],
            &["update", "zd", "web", "--image", "twip/static:latest"],
        ))
    });
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "requests failed during the automatic rollback: {report}"
    );
    assert!(versions(5).iter().all(|v| v == "3.0.0"));

    assert!(p.twip(&["down", "zd", "--volumes"]).status.success());
}

#[test]
fn negative_control_stop_first_without_health_checks_loses_requests() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let mut p = TestProject::new(&["training"], "neg");
    p.write_env(
        "neg",
        "extends: training\nstack: twiptest_neg\nservices:\n  web:\n    replicas: 1\n    environment:\n      LAME_DUCK_SECONDS: 0\n    healthcheck:\n      disable: true\n    update:\n      order: stop-first\n      failure_action: continue\n      monitor: 1s\n",
    );
    p.stacks.push("twiptest_neg".into());
    let up = p.twip(&["up", "neg"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(eventually(60, || versions(1).first().cloned()).is_some());
    let mut out = None;
    let report = under_load(|| out = Some(p.twip(&["update", "neg", "web"])));
    assert!(out.unwrap().status.success());
    assert!(
        failed(&report) > 0,
        "the negative control lost nothing: the measurement cannot see failures: {report}"
    );
    assert!(p.twip(&["down", "neg", "--volumes"]).status.success());
}
