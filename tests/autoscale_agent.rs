//! `twip autoscale`'s endless loop beside the stack's agent, on the local engine: refused
//! with exit 2 and the agent's name when a service of the stack carries `io.twip.agent=true`
//! (the agent autoscales in the cluster), and not refused for that reason without one.

mod common;

use common::*;

#[test]
fn the_endless_loop_refuses_a_stack_that_runs_its_agent() {
    require_swarm();
    let mut p = TestProject::new(&["training"], "asag");
    let stack = test_stack("asag_scaled");
    p.stacks.push(stack.clone());
    p.write_env(
        "asag",
        &format!(
            "extends: training\nstack: {stack}\nservices:\n  web:\n    autoscale:\n      metric: cpu\n      target: 50\n      min: 1\n      max: 3\n"
        ),
    );
    // Without an agent (the negative control): the loop starts, and fails on the service
    // that does not run, not on the agent.
    let out = p.twip(&["autoscale", "asag"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("agent"), "{}", stderr(&out));

    // The stack's agent: any service of the stack labelled io.twip.agent=true.
    let agent = format!("{stack}_agent");
    let base =
        std::env::var("TWIP_TEST_BASE_IMAGE").unwrap_or_else(|_| "twip/base:bookworm".into());
    let made = docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        &agent,
        "--label",
        &format!("com.docker.stack.namespace={stack}"),
        "--label",
        "io.twip.agent=true",
        &base,
        "sleep",
        "infinity",
    ])
    .output()
    .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let out = p.twip(&["autoscale", "asag"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&agent), "{err}");
    assert!(err.contains("--once or --dry-run"), "{err}");
    // --once is not refused for the agent (it fails on the missing service, as before).
    let out = p.twip(&["autoscale", "asag", "--once", "--dry-run"]);
    assert!(!stderr(&out).contains("runs its agent"), "{}", stderr(&out));
}
