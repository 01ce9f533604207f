//! examples/bidder on a real single-node swarm: validate, render, build, up (replicated and
//! global), test, a bid for the example's request.json through the proxy and straight to one
//! task (the same bytes from every task), `twip bench -k -D request.json -T application/json`
//! through the proxy with no errors, and down leaving nothing labelled. One test, so nothing
//! else uses the proxy ports meanwhile.

mod common;

use std::collections::BTreeSet;
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

/// The `solo` service's host port: the one after the proxy's.
fn solo_port() -> u16 {
    port() + 1
}

fn twip_vars() -> Vec<(&'static str, String)> {
    vec![("BIDDER_SOLO_PORT", solo_port().to_string())]
}

/// POST the example's request.json to PORT: the status, the task that answered and the body.
fn bid(port: u16, request: &str) -> (u16, String, String) {
    let (status, headers, body) = http(port, "POST", "/bid/123", request)
        .unwrap_or_else(|| panic!("no answer on 127.0.0.1:{port}"));
    let task = header(&headers, "x-served-by").unwrap_or("-").to_string();
    (status, task, body)
}

/// The bid answers the request: its id, one bid per banner impression at or above the
/// impression's floor, with the banner's size.
fn check_bid(request: &serde_json::Value, body: &str) {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON: {e}: {body}"));
    assert_eq!(v["id"], request["id"], "{body}");
    assert_eq!(v["cur"], "USD", "{body}");
    let bids = v["seatbid"][0]["bid"].as_array().expect("seatbid[0].bid");
    let imps = request["imp"].as_array().unwrap();
    assert_eq!(bids.len(), imps.len(), "{body}");
    for (b, imp) in bids.iter().zip(imps) {
        assert_eq!(b["impid"], imp["id"], "{body}");
        assert!(
            b["price"].as_f64().unwrap() >= imp["bidfloor"].as_f64().unwrap(),
            "a bid under the floor: {body}"
        );
        assert_eq!(b["w"], imp["banner"]["w"], "{body}");
        assert_eq!(b["h"], imp["banner"]["h"], "{body}");
    }
}

#[test]
fn bidder_replicated_and_global_bid_bench_and_leave_nothing() {
    require_swarm();
    let ex = Example::new("bidder");
    let request = std::fs::read_to_string(ex.path().join("request.json")).unwrap();
    let req: serde_json::Value = serde_json::from_str(&request).unwrap();
    let out = ex.twip(&["validate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let valid = stderr(&out);
    assert!(
        valid.contains("replicated") && valid.contains("global"),
        "{valid}"
    );
    let global = ex.ok(&["render", "global", "-o", "-"]);
    assert_eq!(
        global.matches("mode: global").count(),
        2,
        "web and proxy: {global}"
    );
    assert!(!global.contains("solo"), "{global}");
    ex.ok(&["build", "replicated"]);

    // Replicated: two tasks behind the proxy, and `solo` on its own port.
    ex.ok_with(&twip_vars(), &["up", "replicated"]);
    let tested = ex.ok(&["test", "replicated"]);
    assert!(
        tested.contains("/healthz") && tested.contains("200"),
        "{tested}"
    );
    let mut tasks = BTreeSet::new();
    let mut bodies = BTreeSet::new();
    eventually(60, || {
        let (status, task, body) = bid(port(), &request);
        assert_eq!(status, 200, "{body}");
        tasks.insert(task);
        bodies.insert(body);
        (tasks.len() == 2).then_some(())
    })
    .expect("both tasks answered through the proxy");
    let (status, _, direct) = eventually(30, || {
        http(solo_port(), "GET", "/healthz", "")?;
        Some(bid(solo_port(), &request))
    })
    .expect("the solo task answers on its port");
    assert_eq!(status, 200, "{direct}");
    bodies.insert(direct.clone());
    assert_eq!(
        bodies.len(),
        1,
        "every task gives the same bytes: {bodies:?}"
    );
    check_bid(&req, &direct);
    let (status, _, body) = bid(port(), "{not json");
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = bid(port(), r#"{"id": "x", "imp": []}"#);
    assert_eq!((status, body.as_str()), (204, ""), "no impression, no bid");

    // The write-up's `ab -k -p request.json -T application/json`, through the proxy.
    let out = ex.ok(&[
        "bench",
        "replicated",
        "--path",
        "/bid/123",
        "-k",
        "-D",
        "request.json",
        "-T",
        "application/json",
        "-z",
        "2s",
        "-c",
        "10",
        "--max-error-rate",
        "0",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let requests = v["requests"].as_u64().unwrap();
    assert!(requests > 0, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["status_codes"]["200"].as_u64(), Some(requests), "{v}");
    assert_eq!(v["method"], "POST", "{v}");
    assert!(
        v["bytes"]["sent"].as_u64().unwrap() > requests * request.len() as u64,
        "the body went with every request: {v}"
    );
    // Every response was the bid (a response cut at the deadline may add part of one).
    let body_bytes = v["bytes"]["body"].as_u64().unwrap();
    let one = direct.len() as u64;
    assert!(
        body_bytes >= requests * one && body_bytes < (requests + 10) * one,
        "{body_bytes} bytes of bodies for {requests} bids of {one}: {v}"
    );
    ex.ok_with(&twip_vars(), &["down", "replicated"]);
    let left = labelled_leftovers("twiptest_bidder_replicated");
    assert!(left.is_empty(), "left behind: {left:?}");

    // Global: one bidder task and one proxy per node (one node here).
    ex.ok(&["up", "global"]);
    ex.ok(&["test", "global"]);
    for svc in ["web", "proxy"] {
        let mode = list(&[
            "service",
            "inspect",
            "--format",
            "{{if .Spec.Mode.Global}}global{{else}}replicated{{end}}",
            &format!("twiptest_bidder_global_{svc}"),
        ]);
        assert_eq!(mode, vec!["global".to_string()], "{svc}");
    }
    let (status, _, body) = eventually(30, || {
        let r = bid(port(), &request);
        (r.0 == 200).then_some(r)
    })
    .expect("the global bidder answers through the proxy");
    assert_eq!(status, 200);
    assert_eq!(body, direct, "the same bid as the replicated layout's");
    ex.ok(&["down", "global"]);
    let left = labelled_leftovers("twiptest_bidder_global");
    assert!(left.is_empty(), "left behind: {left:?}");
}
