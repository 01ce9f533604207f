//! `proxy.tls.acme` against a real ACME server (pebble) on the single-node swarm, through the
//! real in-cluster agent: `twip up` deploys `STACK_agent` (pebble listens on the swarm's
//! `docker_gwbridge` gateway, which the agent's container reaches; the manifest's `ca_bundle`
//! gives it pebble's HTTPS CA), and the agent obtains one certificate for two names over
//! HTTP-01 answered through the proxy; the proxy serves it for each SNI name and it chains to
//! pebble's root (curl verifies it); a deploy keeps it; `twip certs --json` shows it;
//! `twip certs renew` says it is not due; `twip certs renew --force` asks the agent, which
//! renews at once (a new serial served); with pebble's DNS failing for a name (SERVFAIL) the
//! agent's round fails with pebble's reason, `certs renew` exits 1 and the old certificate keeps
//! serving; with no agent task to answer, `certs renew` gives up after its timeout and removes
//! its request; `twip down` removes everything labelled.

mod common;

use std::process::Command;
use std::time::Instant;

use common::pebble::Pebble;
use common::*;

const A: &str = "a.acme.test";
const B: &str = "b.acme.test";

fn https_port() -> u16 {
    ports().solo
}

/// The subject of what is served for NAME, unverified (the placeholder is self-signed).
fn served_subject(name: &str) -> String {
    let s = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{} -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -subject",
            https_port()
        ))
        .output()
        .unwrap();
    stdout(&s)
}

/// The stack's pending requests to its agent (configs labelled `io.twip.request`).
fn requests(stack: &str) -> Vec<String> {
    list(&[
        "config",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
        "--filter",
        "label=io.twip.request",
    ])
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

#[test]
fn the_agent_obtains_renews_when_asked_and_keeps_serving_when_the_directory_fails() {
    require_swarm();
    let t0 = Instant::now();
    let at = || format!("{:.0}s", t0.elapsed().as_secs_f64());
    let pebble = Pebble::start(ports().http);
    let mut p = TestProject::new(&["training"], "acme");
    let stack = test_stack("acme");
    p.stacks.push(stack.clone());
    let dir = p.path().to_path_buf();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/pebble-ca.pem"), &pebble.ca_pem).unwrap();
    p.write_env(
        "acme",
        &format!(
            "extends: training\nstack: {stack}\nproxy:\n  tls:\n    port: {}\n    acme:\n      email: ops@example.com\n      directory: {}\n      domains: [{A}, {B}]\n      ca_bundle: certs/pebble-ca.pem\n",
            https_port(),
            pebble.directory
        ),
    );
    let up = p.twip(&["up", "acme"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let agent = format!("{stack}_agent");
    assert_eq!(
        list(&["service", "ls", "-q", "--filter", &format!("name={agent}")]).len(),
        1,
        "`up` deployed no agent"
    );
    eprintln!("[{}] up; served now: {}", at(), served_subject(A).trim());
    let root = pebble.root_file();

    // 1. The agent obtains a certificate for both names (its first round may come before the
    //    proxy routes challenges to it: a failed order is retried after 30 s, then 60 s).
    let first =
        eventually(240, || pebble::served_serial(&root, A, https_port())).unwrap_or_else(|| {
            let logs = docker(&["service", "logs", "--raw", &agent])
                .output()
                .unwrap();
            panic!(
                "no certificate from pebble is served; agent:\n{}{}\npebble:\n{}",
                stdout(&logs),
                stderr(&logs),
                pebble.logs()
            )
        });
    assert_eq!(
        pebble::served_serial(&root, B, https_port()).as_deref(),
        Some(first.as_str())
    );
    eprintln!(
        "[{}] the agent's certificate is served: serial {first}",
        at()
    );
    let v = json(&p.twip(&["certs", "acme", "--json"]));
    assert_eq!(v["acme"]["state"], "issued", "{v}");
    assert_eq!(v["acme"]["serial"].as_str(), Some(first.as_str()), "{v}");
    assert_eq!(
        v["acme"]["domains"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );
    assert!(v["acme"]["renew_from"].is_string(), "{v}");
    let last = eventually(60, || {
        let v = json(&p.twip(&["certs", "acme", "--json"]));
        v["acme"]["last_decision"]
            .as_str()
            .filter(|d| d.contains(&first))
            .map(str::to_string)
    })
    .expect("the agent's record names the serial it obtained");
    assert!(last.starts_with("obtained a certificate"), "{last}");
    eprintln!("[{}] `twip certs` shows it", at());

    // 2. A deploy keeps it; `certs renew` without --force says it is not due.
    let up = p.twip(&["up", "acme"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(
        pebble::served_serial(&root, A, https_port()).as_deref(),
        Some(first.as_str())
    );
    eprintln!("[{}] a second `up` keeps it", at());
    let out = p.twip(&["certs", "renew", "acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not due until"), "{text}");
    assert_eq!(
        pebble::served_serial(&root, A, https_port()).as_deref(),
        Some(first.as_str())
    );

    // 3. `certs renew --force` asks the agent, which renews now: a new serial is served.
    let asked = Instant::now();
    let out = p.twip(&["certs", "renew", "acme", "--force", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    eprintln!(
        "[{}] certs renew --force answered in {:.1}s: {}",
        at(),
        asked.elapsed().as_secs_f64(),
        v["decision"]
    );
    assert_eq!(v["outcome"], "renewed", "{v}");
    assert!(
        v["decision"].as_str().unwrap().contains("renewal forced"),
        "{v}"
    );
    let second = v["served"]["serial"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let served = eventually(120, || {
        pebble::served_serial(&root, A, https_port()).filter(|s| *s == second)
    });
    assert!(served.is_some(), "the renewed certificate is not served");
    assert_eq!(
        pebble::served_serial(&root, B, https_port()).as_deref(),
        Some(second.as_str())
    );
    assert!(requests(&stack).is_empty(), "{:?}", requests(&stack));
    eprintln!("[{}] the renewed certificate is served", at());

    // 4. pebble cannot resolve one of the names: the agent's round fails with pebble's
    //    reason, `certs renew` exits 1, the certificate obtained before keeps serving.
    pebble.servfail(A);
    let out = p.twip(&["certs", "renew", "acme", "--force", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    let decision = v["decision"].as_str().unwrap().to_string();
    eprintln!("[{}] the failed round: {decision}", at());
    assert_eq!(v["outcome"], "failed", "{v}");
    assert!(
        decision.starts_with("obtaining a certificate"),
        "{decision}"
    );
    // pebble's reason, as it gave it: its DNS could not resolve the name.
    assert!(
        decision.contains(&format!("could not resolve URL \"http://{A}:"))
            && decision.contains("urn:ietf:params:acme:error:connection"),
        "pebble's reason: {decision}"
    );
    assert!(
        decision.contains("the current certificate keeps serving"),
        "{decision}"
    );
    assert!(!decision.contains("PRIVATE KEY"), "{decision}");
    assert_eq!(v["served"]["serial"].as_str(), Some(second.as_str()), "{v}");
    assert_eq!(
        pebble::served_serial(&root, A, https_port()).as_deref(),
        Some(second.as_str())
    );
    assert_eq!(
        pebble::served_serial(&root, B, https_port()).as_deref(),
        Some(second.as_str())
    );
    assert!(requests(&stack).is_empty(), "{:?}", requests(&stack));

    // 5. No agent task to answer: `certs renew` gives up after its timeout and removes its
    //    request.
    let scaled = docker(&["service", "scale", "--detach", &format!("{agent}=0")])
        .output()
        .unwrap();
    assert!(scaled.status.success(), "{}", stderr(&scaled));
    let gone = eventually(60, || {
        let f = format!("label=com.docker.swarm.service.name={agent}");
        list(&["ps", "-q", "--filter", &f]).is_empty().then_some(())
    });
    assert!(gone.is_some(), "the agent's container did not stop");
    let out = p.twip(&["certs", "renew", "acme", "--force", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("did not answer within 5s; the request was removed"),
        "{err}"
    );
    assert!(requests(&stack).is_empty(), "{:?}", requests(&stack));

    // `twip down` removes everything, the ACME secrets and the agent's records too.
    let down = p.twip(&["down", "acme"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let left = eventually(60, || {
        let l = labelled_leftovers(&stack);
        l.is_empty().then_some(())
    });
    assert!(left.is_some(), "{:?}", labelled_leftovers(&stack));
    eprintln!("[{}] done", at());
}
