//! examples/counter on a real single-node swarm: validate, render, build, up, test, the
//! counter's behaviour through the proxy (one key shared by every replica, /reset; ten keys
//! in the 10x10 layout), `twip bench --service web --replicas 1,3`, and down leaving nothing
//! labelled. One test, so nothing else uses the proxy ports meanwhile.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::example::Example;
use common::*;

fn port() -> u16 {
    ports().http
}

/// GET PATH through the proxy: the counter's value and the task that answered.
fn get(path: &str) -> (u64, String) {
    let (status, headers, body) = http(port(), "GET", path, "")
        .unwrap_or_else(|| panic!("no answer on 127.0.0.1:{} for {path}", port()));
    assert_eq!(status, 200, "{path}: {body}");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    let task = header(&headers, "x-served-by").unwrap_or("-").to_string();
    (v["counter"].as_u64().unwrap(), task)
}

/// Every web task is up behind the proxy (HAProxy's checks have found them).
fn all_tasks_answer(n: usize) {
    let seen = eventually(60, || {
        let mut seen = BTreeSet::new();
        for _ in 0..(4 * n) {
            let (status, headers, _) = http(port(), "GET", "/healthz", "")?;
            if status != 200 {
                return None;
            }
            seen.insert(header(&headers, "x-served-by")?.to_string());
        }
        (seen.len() == n).then_some(seen)
    });
    assert!(
        seen.is_some(),
        "{n} tasks never all answered through the proxy"
    );
}

#[test]
fn counter_layouts_count_reset_bench_and_leave_nothing() {
    require_swarm();
    let ex = Example::new("counter");
    let envs = ["10x1", "10x10", "1x1"];
    let out = ex.twip(&["validate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let valid = stderr(&out);
    for e in envs {
        assert!(valid.contains(e), "{valid}");
        let stack = ex.ok(&["render", e, "-o", "-"]);
        assert!(stack.contains(&ex.stack(e)), "{stack}");
        assert!(
            stack.contains(&format!("{}/web:latest", ex.image_project)),
            "{stack}"
        );
    }
    ex.ok(&["build", "1x1"]);

    // 1x1, scaled to three app tasks: one key in one redis, whichever task answers.
    ex.ok(&["up", "1x1"]);
    let tested = ex.test_passes("1x1");
    assert!(
        tested.contains("/counter") && tested.contains("200"),
        "{tested}"
    );
    ex.ok(&["scale", "1x1", "web=3"]);
    all_tasks_answer(3);
    assert_eq!(get("/reset").0, 0);
    let mut tasks = BTreeSet::new();
    for i in 1..=12 {
        let (value, task) = get("/");
        assert_eq!(
            value, i,
            "one key: each request increments the same counter"
        );
        tasks.insert(task);
    }
    assert!(tasks.len() > 1, "only {tasks:?} answered");
    assert_eq!(get("/counter").0, 12, "/counter does not increment");
    assert_eq!(get("/counter").0, 12);
    assert_eq!(get("/reset").0, 0);
    assert_eq!(get("/counter").0, 0);

    // The layouts compared: a row per count, requests and no errors; every increment counted.
    let out = ex.ok(&[
        "bench",
        "1x1",
        "--service",
        "web",
        "--replicas",
        "1,3",
        "-z",
        "2s",
        "-c",
        "10",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["replicas"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 3]
    );
    let mut requests = 0;
    for r in rows {
        assert!(r["requests"].as_u64().unwrap() > 0, "{r}");
        assert!(r["rps"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        requests += r["requests"].as_u64().unwrap();
    }
    let counted = get("/counter").0;
    assert!(
        counted >= requests,
        "the key says {counted}, the bench got {requests} responses"
    );
    let replicas = list(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
        &format!("{}_web", ex.stack("1x1")),
    ]);
    assert_eq!(
        replicas,
        vec!["3".to_string()],
        "the count before the bench is restored"
    );
    ex.ok(&["down", "1x1"]);
    let left = labelled_leftovers(&ex.stack("1x1"));
    assert!(left.is_empty(), "left behind: {left:?}");

    // 10x10 (with three pairs here): a redis in each task, so each task counts on its own key.
    let text = std::fs::read_to_string(ex.path().join("environments/10x10.yaml")).unwrap();
    std::fs::write(
        ex.path().join("environments/10x10.yaml"),
        text.replace("replicas: 10", "replicas: 3"),
    )
    .unwrap();
    ex.ok(&["up", "10x10"]);
    ex.test_passes("10x10");
    all_tasks_answer(3);
    let mut per_task: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..18 {
        let (value, task) = get("/");
        per_task.entry(task).or_default().push(value);
    }
    assert!(per_task.len() > 1, "{per_task:?}");
    for (task, values) in &per_task {
        let expected: Vec<u64> = (1..=values.len() as u64).collect();
        assert_eq!(values, &expected, "task {task} counts on a key of its own");
    }
    ex.ok(&["down", "10x10"]);
    let left = labelled_leftovers(&ex.stack("10x10"));
    assert!(left.is_empty(), "left behind: {left:?}");
}
