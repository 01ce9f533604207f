//! examples/bidder on a real single-node swarm: validate, render, build, up (replicated and
//! global), test, a bid for the example's request.json through the proxy and straight to one
//! task (the same bytes from every task), `twip bench -k -D request.json -T application/json`
//! through the proxy with no errors, and down leaving nothing labelled. One test, so nothing
//! else uses the proxy ports meanwhile.

mod common;

use std::collections::BTreeSet;

use common::example::Example;
use common::*;

fn port() -> u16 {
    ports().http
}

/// The `solo` service's host port: the one after the proxy's (free, see `common::ports`).
fn solo_port() -> u16 {
    ports().solo
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
    let tested = ex.test_passes("replicated");
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
    let left = labelled_leftovers(&ex.stack("replicated"));
    assert!(left.is_empty(), "left behind: {left:?}");

    // Global: one bidder task and one proxy per node (one node here).
    ex.ok(&["up", "global"]);
    ex.test_passes("global");
    for svc in ["web", "proxy"] {
        let mode = list(&[
            "service",
            "inspect",
            "--format",
            "{{if .Spec.Mode.Global}}global{{else}}replicated{{end}}",
            &format!("{}_{svc}", ex.stack("global")),
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
    let left = labelled_leftovers(&ex.stack("global"));
    assert!(left.is_empty(), "left behind: {left:?}");
}
