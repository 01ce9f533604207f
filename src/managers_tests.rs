use super::*;
use crate::engine::ErrorKind;
use crate::lab::{layout, Lab, OFFLINE_IMAGE};

fn env(yaml: &str) -> Environment {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("environments")).unwrap();
    std::fs::write(dir.path().join("environments/x.yaml"), yaml).unwrap();
    crate::project::Project::discover(Some(dir.path()))
        .unwrap()
        .load("x")
        .unwrap()
}

const THREE: &str = "services:
  web:
    image: nginx:1.25
engine:
  allow_plain_tcp: true
nodes:
  - {name: w1, address: 10.0.0.4, role: worker}
  - {name: m1, address: 10.0.0.1, role: manager, engine: \"tcp://10.0.0.1:2376\"}
  - {name: m2, address: 10.0.0.2, role: manager}
  - {name: m3, address: 10.0.0.3, role: manager, ssh: {user: deploy, port: 2222}}
";

fn names(c: &[Candidate]) -> Vec<String> {
    c.iter()
        .map(|c| format!("{}={}", c.name, c.endpoint.url))
        .collect()
}

#[test]
fn manifest_managers_are_tried_in_order_after_an_explicit_engine() {
    // DOCKER_HOST is read by the resolution: these cases set engine.host or no DOCKER_HOST.
    if std::env::var_os("DOCKER_HOST").is_some() {
        panic!("run the unit tests without DOCKER_HOST");
    }
    let e = env(THREE);
    let c = candidates(None, Some(&e), None).unwrap();
    assert_eq!(
        names(&c),
        [
            "m1=tcp://10.0.0.1:2376",
            "m2=ssh://root@10.0.0.2",
            "m3=ssh://deploy@10.0.0.3:2222"
        ]
    );
    assert_eq!(c[1].address.as_deref(), Some("10.0.0.2"));
    assert_eq!(c[0].timeout(), PING_TIMEOUT);
    assert_eq!(c[1].timeout(), SSH_PING_TIMEOUT);

    // engine.host first; a manager with the same engine is not tried twice.
    let e = env(&THREE.replace(
        "allow_plain_tcp: true",
        "allow_plain_tcp: true\n  host: tcp://10.0.0.1:2376",
    ));
    let c = candidates(None, Some(&e), None).unwrap();
    assert_eq!(
        names(&c),
        [
            "engine.host=tcp://10.0.0.1:2376",
            "m2=ssh://root@10.0.0.2",
            "m3=ssh://deploy@10.0.0.3:2222"
        ]
    );
    assert_eq!(c[0].address.as_deref(), Some("10.0.0.1"));

    // No managers and nothing explicit: the local engine.
    let e = env("services:\n  web:\n    image: nginx:1.25\n");
    let c = candidates(None, Some(&e), None).unwrap();
    assert_eq!(names(&c), ["local engine=unix:///var/run/docker.sock"]);
}

#[test]
fn host_overrides_everything_and_a_lab_gives_its_managers() {
    let e = env(THREE);
    let c = candidates(Some("tcp://127.0.0.1:2375"), Some(&e), None).unwrap();
    assert_eq!(names(&c), ["--host=tcp://127.0.0.1:2375"]);

    let lab = Lab {
        name: "lab".into(),
        network: "twip-lab-lab".into(),
        subnet: "10.99.7.0/24".into(),
        image: OFFLINE_IMAGE.into(),
        nodes: layout("lab", 5, 3, 7).unwrap(),
    };
    let c = candidates(None, Some(&e), Some(&lab)).unwrap();
    assert_eq!(
        names(&c),
        [
            "lab-manager-1=tcp://10.99.7.11:2375",
            "lab-manager-2=tcp://10.99.7.12:2375",
            "lab-manager-3=tcp://10.99.7.13:2375"
        ]
    );
    assert!(c.iter().all(|c| c.endpoint.allow_plain_tcp));
    let both = candidates(Some("tcp://127.0.0.1:2375"), None, Some(&lab)).unwrap_err();
    assert_eq!(exit::code_for(&both), exit::INVALID_INPUT);

    // The leader is found by its raft address.
    assert_eq!(leader_candidate(&c, "10.99.7.12"), Some(1));
    assert_eq!(leader_candidate(&c, "10.99.7.99"), None);
}

#[test]
fn hosts_are_read_from_engine_urls() {
    assert_eq!(host_of("tcp://10.0.0.1:2376").as_deref(), Some("10.0.0.1"));
    assert_eq!(
        host_of("ssh://u@h.example:22").as_deref(),
        Some("h.example")
    );
    assert_eq!(host_of("ssh://h.example").as_deref(), Some("h.example"));
    assert_eq!(host_of("tcp://[::1]:2375").as_deref(), Some("::1"));
    assert_eq!(host_of("unix:///var/run/docker.sock"), None);
}

fn transport(msg: &str) -> anyhow::Error {
    EngineError::of("list tasks", "web", ErrorKind::Other, None, msg).into()
}

#[test]
fn only_transport_failures_count_as_a_lost_manager() {
    for m in [
        "Error in the hyper legacy client: client error (Connect): tcp connect error: Connection refused (os error 111)",
        "Error in the hyper legacy client: client error (SendRequest): connection closed before message completed",
        "Connection reset by peer (os error 104)",
        "Timeout error",
    ] {
        assert!(lost_manager(&transport(m)), "{m}");
        // Also when wrapped by a caller's context.
        assert!(lost_manager(&transport(m).context("converging web")), "{m}");
    }
    // The engine answered: never a lost manager, whatever the text says.
    let answered: anyhow::Error = EngineError::of(
        "create service",
        "web",
        ErrorKind::Other,
        Some(500),
        "dial tcp: connection refused",
    )
    .into();
    assert!(!lost_manager(&answered));
    // A task's own error in a message (a failed health check) is not the manager's.
    assert!(!lost_manager(&anyhow::anyhow!(
        "web did not converge: task failed: connection refused"
    )));
    assert!(!lost_manager(&transport("no such service: web")));
    // A manager that went away before the request: connect's message.
    assert!(lost_manager(&anyhow::anyhow!(
        "cannot reach the Docker engine at tcp://10.0.0.1:2375: no answer within 3s."
    )));
}

#[test]
fn a_swarm_without_a_leader_is_explained() {
    let e = explain_no_leader(
        EngineError::of(
            "list nodes",
            "",
            ErrorKind::NotManager,
            Some(503),
            "rpc error: code = Unknown desc = The swarm does not have a leader.",
        )
        .into(),
    );
    assert!(e.to_string().contains("an election is under way"), "{e}");
    let other = explain_no_leader(anyhow::anyhow!("no such service"));
    assert_eq!(other.to_string(), "no such service");
}

#[test]
fn host_with_lab_is_a_usage_error_before_the_lab_is_looked_for() {
    // No lab of that name exists: the usage error must still be the one reported.
    let e = load_lab(Some("tcp://10.99.0.11:2375"), Some("no-such-lab-here")).unwrap_err();
    assert_eq!(crate::exit::code_for(&e), 2);
    assert_eq!(
        e.to_string(),
        "--host and --lab both say where the engine is; give one of them"
    );
    assert!(load_lab(None, None).unwrap().is_none());
    let e = load_lab(None, Some("no-such-lab-here")).unwrap_err();
    assert!(e.to_string().contains("no lab `no-such-lab-here`"), "{e}");
}
