//! Zero failed requests through changes, measured with `twip bench --rate 500` over 50
//! connections through the proxy for the whole of each change, on a real single-node swarm:
//! a rolling update of 3 replicas (v1 → v2), a scale-down 3 → 1, an update of a single replica
//! (start-first, health-gated, lame duck on SIGTERM), and a version whose health check never
//! passes (rolled back by swarm, exit 4). A negative control (stop-first, 1 replica, no health
//! check, no lame duck) must show failures: it proves the measurement can see them.
//!
//! Each load runs from before the change (the bench has connections open) until the change
//! has settled (only the wanted tasks' containers run) and the proxy answered 20 more
//! requests; a failure of any kind the bench reports counts (see `common::failed`).

mod common;

use std::sync::Mutex;

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn port() -> u16 {
    ports().http
}

/// Containers of SERVICE running on the local engine (old tasks still stopping included).
fn running_containers(service: &str) -> usize {
    list(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ])
    .len()
}

/// Runs `change` while `twip bench` loads the proxy, until only `want` containers of SERVICE
/// run; returns the bench's JSON report.
fn under_load(service: &str, want: usize, change: impl FnOnce()) -> serde_json::Value {
    bench_during(&format!("http://127.0.0.1:{}/", port()), change, || {
        running_containers(service) == want
    })
}

/// X-App-Version of one answer through the proxy (None when none came, or not a 200).
fn version() -> Option<String> {
    http(port(), "GET", "/", "").and_then(|(s, h, _)| {
        (s == 200)
            .then(|| header(&h, "x-app-version").map(str::to_string))
            .flatten()
    })
}

/// N answers in a row carry VERSION (polled for up to a minute).
fn assert_only(n: usize, version_: &str, what: &str) {
    if let Err(last) = only_version(60, n, version_, version) {
        panic!("{what}: not {n} answers of {version_} in a row; the last {n}: {last:?}");
    }
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
    let stack = test_stack("zd");
    let web = format!("{stack}_web");
    p.write_env("zd", &zd_manifest(&stack));
    p.stacks.push(stack.clone());
    let up = p.twip(&["up", "zd"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert_only(6, "1.0.0", "v1 after up");

    // 3 replicas, v1 → v2.
    let mut out = None;
    let report = under_load(&web, 3, || {
        out = Some(p.twip_with(&[("TWIP_WEB_VERSION", "2.0.0")], &["up", "zd"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "requests failed during the rolling update: {report}"
    );
    assert_only(10, "2.0.0", "after the rolling update");

    // Scale down 3 → 1.
    let mut out = None;
    let report = under_load(&web, 1, || out = Some(p.twip(&["scale", "zd", "web=1"])));
    assert!(out.unwrap().status.success());
    assert_eq!(
        failed(&report),
        0,
        "requests failed during the scale-down: {report}"
    );

    // One replica, v2 → v3: start-first, health-gated, lame duck.
    let mut out = None;
    let report = under_load(&web, 1, || {
        out = Some(p.twip_with(&[("TWIP_WEB_VERSION", "3.0.0")], &["up", "zd"]))
    });
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        failed(&report),
        0,
        "requests failed updating a single replica: {report}"
    );
    assert_only(5, "3.0.0", "after the single-replica update");

    // A version whose health check never passes: rolled back, exit 4, nothing failed.
    let mut out = None;
    let report = under_load(&web, 1, || {
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
    assert_only(5, "3.0.0", "after the automatic rollback");

    assert!(p.twip(&["down", "zd", "--volumes"]).status.success());
}

#[test]
fn negative_control_stop_first_without_health_checks_loses_requests() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let mut p = TestProject::new(&["training"], "neg");
    let stack = test_stack("neg");
    p.write_env(
        "neg",
        &format!("extends: training\nstack: {stack}\nservices:\n  web:\n    replicas: 1\n    environment:\n      LAME_DUCK_SECONDS: 0\n    healthcheck:\n      disable: true\n    update:\n      order: stop-first\n      failure_action: continue\n      monitor: 1s\n"),
    );
    p.stacks.push(stack.clone());
    let up = p.twip(&["up", "neg"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert_only(3, "1.0.0", "the negative control's v1");
    let mut out = None;
    let report = under_load(&format!("{stack}_web"), 1, || {
        out = Some(p.twip(&["update", "neg", "web"]))
    });
    assert!(out.unwrap().status.success());
    assert!(
        failed(&report) > 0,
        "the negative control lost nothing: the measurement cannot see failures: {report}"
    );
    assert!(p.twip(&["down", "neg", "--volumes"]).status.success());
}
