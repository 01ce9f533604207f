//! examples/counter on a real single-node swarm: validate, render, build, up, test, the
//! counter's behaviour through the proxy (one key shared by every replica, /reset; ten keys
//! in the 10x10 layout), `twip bench --service web --replicas 1,3`, and down leaving nothing
//! labelled. One test, so nothing else uses the proxy ports meanwhile.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;

/// A copy of examples/NAME whose environments have `twiptest_NAME_...` stacks. It sits two
/// levels down in a temporary directory that links the repository's `images/`, so the
/// examples' `../../images/proxy` build context resolves as it does in the repository.
pub struct Example {
    pub project: TestProject,
    _outer: tempfile::TempDir,
}

#[allow(dead_code)]
impl Example {
    pub fn new(name: &str) -> Example {
        let base = std::env::var("TWIP_EXAMPLES_BASE_IMAGE")
            .unwrap_or_else(|_| "twip/examples-base:bookworm".into());
        assert!(
            docker(&["image", "inspect", &base])
                .output()
                .unwrap()
                .status
                .success(),
            "no {base} image: scripts/engine-up.sh makes it (the examples build offline from it)"
        );
        let outer = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(repo().join("images"), outer.path().join("images")).unwrap();
        std::fs::create_dir(outer.path().join("examples")).unwrap();
        let dir = tempfile::tempdir_in(outer.path().join("examples")).unwrap();
        let src = repo().join("examples").join(name);
        std::os::unix::fs::symlink(src.join("images"), dir.path().join("images")).unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        let mut stacks = Vec::new();
        for entry in std::fs::read_dir(src.join("environments")).unwrap() {
            let path = entry.unwrap().path();
            let env = path.file_stem().unwrap().to_string_lossy().to_string();
            let stack = format!("twiptest_{name}_{env}");
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("\nstack: "), "{env} names its stack");
            let text: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("stack: ") {
                        format!("stack: {stack}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            std::fs::write(
                dir.path()
                    .join("environments")
                    .join(path.file_name().unwrap()),
                text,
            )
            .unwrap();
            stacks.push(stack);
        }
        for f in std::fs::read_dir(&src).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
            }
        }
        Example {
            project: TestProject { dir, stacks },
            _outer: outer,
        }
    }

    pub fn path(&self) -> &Path {
        self.project.path()
    }

    /// `twip ARGS` run from the example's directory (as its README says), with the test's
    /// ports and base images and VARS.
    pub fn twip_with(&self, vars: &[(&str, String)], args: &[&str]) -> std::process::Output {
        let mut cmd = twip();
        cmd.current_dir(self.path()).args(args);
        for (k, v) in test_vars() {
            cmd.env(k, v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.timeout(std::time::Duration::from_secs(600));
        cmd.output().unwrap()
    }

    pub fn twip(&self, args: &[&str]) -> std::process::Output {
        self.twip_with(&[], args)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(&[], args)
    }

    /// The same with more variables set; fails the test unless twip succeeds.
    pub fn ok_with(&self, vars: &[(&str, String)], args: &[&str]) -> String {
        let out = self.twip_with(vars, args);
        assert!(
            out.status.success(),
            "twip {}: {}{}",
            args.join(" "),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }
}

fn port() -> u16 {
    test_vars()[0].1.parse().unwrap()
}

pub fn labelled_leftovers(stack: &str) -> Vec<String> {
    let f = format!("label=com.docker.stack.namespace={stack}");
    let mut left = Vec::new();
    for kind in ["service", "network", "config", "secret"] {
        for id in list(&[kind, "ls", "-q", "--filter", &f]) {
            left.push(format!("{kind} {id}"));
        }
    }
    left
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
        assert!(stack.contains(&format!("twiptest_counter_{e}")), "{stack}");
        assert!(stack.contains("counter/web:latest"), "{stack}");
    }
    ex.ok(&["build", "1x1"]);

    // 1x1, scaled to three app tasks: one key in one redis, whichever task answers.
    ex.ok(&["up", "1x1"]);
    let tested = ex.ok(&["test", "1x1"]);
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
        "twiptest_counter_1x1_web",
    ]);
    assert_eq!(
        replicas,
        vec!["3".to_string()],
        "the count before the bench is restored"
    );
    ex.ok(&["down", "1x1"]);
    let left = labelled_leftovers("twiptest_counter_1x1");
    assert!(left.is_empty(), "left behind: {left:?}");

    // 10x10 (with three pairs here): a redis in each task, so each task counts on its own key.
    let text = std::fs::read_to_string(ex.path().join("environments/10x10.yaml")).unwrap();
    std::fs::write(
        ex.path().join("environments/10x10.yaml"),
        text.replace("replicas: 10", "replicas: 3"),
    )
    .unwrap();
    ex.ok(&["up", "10x10"]);
    ex.ok(&["test", "10x10"]);
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
    let left = labelled_leftovers("twiptest_counter_10x10");
    assert!(left.is_empty(), "left behind: {left:?}");
}
