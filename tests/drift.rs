//! Drift on a real engine in swarm mode: a change made outside twip with `docker service
//! update` shows in `twip plan --json` as exactly that change (field, old and new value), and
//! `twip up` puts the service back. One stack (tests/fixtures/engine/project under a unique stack
//! name, on free ports) serves the six kinds in turn: image, env, mount, label, port, resources.
//! Everything it makes carries the stack's label and is removed at the end, also on failure.

mod common;

use common::{docker, list, require_swarm, twip};
use serde_json::{json, Value};

/// The test's project: the fixture project in a temporary directory, with its own stack name.
struct Stack {
    dir: tempfile::TempDir,
    name: String,
    port: u16,
}

impl Stack {
    fn new() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let src = common::repo().join("tests/fixtures/engine/project");
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        std::fs::copy(src.join("secret.txt"), dir.path().join("secret.txt")).unwrap();
        let name = format!(
            "twiptest_drift_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_micros()
        );
        let text = std::fs::read_to_string(src.join("environments/driftfixture.yaml")).unwrap();
        std::fs::write(
            dir.path().join("environments/driftfixture.yaml"),
            format!("{text}\nstack: {name}\n"),
        )
        .unwrap();
        Stack {
            dir,
            name,
            port: free_port(),
        }
    }

    fn twip(&self, args: &[&str]) -> std::process::Output {
        self.twip_at(self.port, args)
    }

    /// `twip` with the app published on PORT.
    fn twip_at(&self, port: u16, args: &[&str]) -> std::process::Output {
        twip()
            .arg("--project-dir")
            .arg(self.dir.path())
            .args(args)
            .env("TWIP_DRIFT_PORT", port.to_string())
            .timeout(std::time::Duration::from_secs(600))
            .output()
            .unwrap()
    }

    fn plan(&self) -> Value {
        let out = self.twip(&["plan", "driftfixture", "--json"]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn up(&self) -> String {
        let out = self.twip(&["up", "driftfixture", "--timeout", "300s"]);
        let err = common::stderr(&out);
        assert!(out.status.success(), "twip up failed:\n{err}");
        err
    }

    fn app(&self) -> String {
        format!("{}_app", self.name)
    }

    /// `docker service inspect` of the app service: its spec.
    fn spec(&self) -> Value {
        let out = docker(&["service", "inspect", &self.app()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["Spec"].clone()
    }
}

impl Drop for Stack {
    /// Remove what the stack made (by its label): services first, then, once their containers
    /// are gone, configs, secrets, networks and volumes.
    fn drop(&mut self) {
        let f = format!("label=com.docker.stack.namespace={}", self.name);
        let services = list(&["service", "ls", "-q", "--filter", &f]);
        if !services.is_empty() {
            docker(&["service", "rm"]).args(&services).output().ok();
        }
        common::eventually(120, || {
            list(&["ps", "-aq", "--filter", &f])
                .is_empty()
                .then_some(())
        });
        for kind in ["config", "secret", "network", "volume"] {
            common::eventually(60, || {
                let ids = list(&[kind, "ls", "-q", "--filter", &f]);
                if ids.is_empty() {
                    return Some(());
                }
                docker(&[kind, "rm"]).args(&ids).output().ok();
                None
            });
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn service_update(service: &str, args: &[&str]) {
    let out = docker(&["service", "update", "-q"])
        .args(args)
        .arg(service)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker service update {args:?}: {}",
        common::stderr(&out)
    );
}

fn change(field: &str, key: Option<&str>, old: Option<&str>, new: Option<&str>) -> Value {
    json!({"field": field, "key": key, "old": old, "new": new})
}

#[test]
fn changes_made_outside_twip_are_planned_and_undone_by_up() {
    require_swarm();
    let s = Stack::new();
    let stack = s.name.clone();
    let app = s.app();
    s.up();
    // Right after up, the engine's spec (read back, normalised) is what twip wants.
    let plan = s.plan();
    assert_eq!(plan["actions"], json!([]), "{plan:#}");
    assert_eq!(plan["unchanged"].as_array().unwrap().len(), 2, "{plan:#}");

    let extra_port = loop {
        let p = free_port();
        if p != s.port {
            break p;
        }
    };
    // `--mount-add` replaces the mount, without the labels twip gives the volume.
    let mount_labels = || -> Vec<Value> {
        [
            ("com.docker.stack.namespace", stack.as_str()),
            ("io.twip.environment", "driftfixture"),
            ("io.twip.managed", "true"),
            ("io.twip.project", "twip"),
        ]
        .iter()
        .map(|(k, v)| {
            change(
                "mount",
                Some(&format!("/data volume-label {k}")),
                None,
                Some(v),
            )
        })
        .collect()
    };
    let data = format!("{stack}_data");
    let mount = format!("type=volume,source={data},target=/data,readonly");
    let publish = format!("published={extra_port},target=9090,mode=host");
    type Check = Box<dyn Fn(&Value) -> bool>;
    // (kind, docker service update arguments, the drift, whether the engine's spec is back)
    let cases: Vec<(&str, Vec<&str>, Vec<Value>, Check)> = vec![
        (
            "image",
            vec!["--image", "localhost:5000/twip/base:bookworm-amd64"],
            Vec::new(), // the engine pins a digest: read it back below
            Box::new(|spec| spec["TaskTemplate"]["ContainerSpec"]["Image"] == "twip/base:bookworm"),
        ),
        (
            "env",
            vec!["--env-add", "EXTRA=1"],
            vec![change("env", Some("EXTRA"), Some("1"), None)],
            Box::new(|spec| {
                spec["TaskTemplate"]["ContainerSpec"]["Env"]
                    == json!(["GREETING=hello", "MODE=fixture"])
            }),
        ),
        (
            "mount",
            vec!["--mount-add", &mount],
            {
                let mut v = vec![change(
                    "mount",
                    Some("/data"),
                    Some(&format!("volume {data}, read-only")),
                    Some(&format!("volume {data}")),
                )];
                v.extend(mount_labels());
                v
            },
            Box::new(|spec| {
                let mounts = spec["TaskTemplate"]["ContainerSpec"]["Mounts"]
                    .as_array()
                    .unwrap()
                    .clone();
                let data = mounts.iter().find(|m| m["Target"] == "/data").unwrap();
                mounts.len() == 2
                    && data.get("ReadOnly").is_none_or(|r| r == false)
                    && data["VolumeOptions"]["Labels"]["io.twip.managed"] == "true"
            }),
        ),
        (
            "label",
            vec!["--label-add", "owner=ops"],
            vec![change("label", Some("owner"), Some("ops"), None)],
            Box::new(|spec| {
                spec["Labels"].get("owner").is_none() && spec["Labels"]["team"] == "drift"
            }),
        ),
        (
            "port",
            vec!["--publish-add", &publish],
            vec![change(
                "port",
                Some("9090/tcp"),
                Some(&format!("{extra_port} (host)")),
                None,
            )],
            Box::new(|spec| spec["EndpointSpec"]["Ports"].as_array().unwrap().len() == 1),
        ),
        (
            "resources",
            vec!["--limit-cpu", "0.25"],
            vec![change(
                "resources",
                Some("limits.cpus"),
                Some("0.25"),
                Some("0.5"),
            )],
            Box::new(|spec| spec["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] == 500_000_000),
        ),
    ];
    assert_eq!(cases.len(), 6);
    for (kind, args, mut want, back) in cases {
        let before = s.spec();
        assert!(
            back(&before),
            "{kind}: the deployed spec already fails the check"
        );
        service_update(&app, &args);
        let after = s.spec();
        assert!(
            !back(&after),
            "{kind}: docker service update changed nothing"
        );
        if kind == "image" {
            let image = after["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                image.starts_with("localhost:5000/twip/base:bookworm-amd64"),
                "{image}"
            );
            want = vec![change(
                "image",
                None,
                Some(&image),
                Some("twip/base:bookworm"),
            )];
        }
        // The spec-hash label is what twip last sent: docker service update keeps it, so the
        // label alone would plan nothing.
        assert!(
            after["Labels"]["io.twip.spec-hash"].is_string(),
            "{kind}: {after:#}"
        );
        assert_eq!(
            after["Labels"]["io.twip.spec-hash"], before["Labels"]["io.twip.spec-hash"],
            "{kind}"
        );

        let plan = s.plan();
        let actions = plan["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1, "{kind}: {plan:#}");
        let a = &actions[0];
        assert_eq!(
            (&a["resource"], &a["op"], &a["name"]),
            (&json!("service"), &json!("update"), &json!(app)),
            "{kind}: {plan:#}"
        );
        assert!(
            a["cause"]
                .as_str()
                .unwrap()
                .starts_with("changed outside twip: "),
            "{kind}: {a:#}"
        );
        assert_eq!(a["changes"], Value::Array(want), "{kind}: {plan:#}");
        // The text plan shows the same.
        let text = s.twip(&["plan", "driftfixture"]);
        assert!(
            common::stdout(&text).contains(&format!("      {kind}")),
            "{kind}: {}",
            common::stdout(&text)
        );

        let err = s.up();
        assert!(err.contains("changed outside twip"), "{kind}: {err}");
        assert!(
            err.contains(&format!("updated service {app}")),
            "{kind}: {err}"
        );
        let fixed = s.spec();
        assert!(back(&fixed), "{kind}: up did not put it back: {fixed:#}");
        let plan = s.plan();
        assert_eq!(plan["actions"], json!([]), "{kind}: after up: {plan:#}");
    }
}

/// The app service's healthcheck as the engine holds it (`null` when it has none).
fn engine_healthcheck(app: &str) -> Value {
    let out = docker(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}",
        app,
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The specs twip recorded as release SEQ of STACK (what `twip rollback` returns to).
fn recorded_release(stack: &str, seq: u64) -> Value {
    use base64::Engine as _;
    let name = format!("{stack}_twip-release-{seq:06}");
    let out = docker(&[
        "config",
        "inspect",
        "--format",
        "{{json .Spec.Data}}",
        &name,
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{name}: {}", common::stderr(&out));
    let data: String = serde_json::from_slice(&out.stdout).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn the_healthcheck_is_read_back_recorded_compared_and_kept_by_rollback() {
    require_swarm();
    let s = Stack::new();
    let app = s.app();
    s.up();
    let deployed = engine_healthcheck(&app);
    assert_eq!(deployed["Test"], json!(["CMD", "true"]), "{deployed:#}");
    assert_eq!(
        deployed["Interval"],
        json!(2_000_000_000u64),
        "{deployed:#}"
    );

    // What twip observed and recorded as release 1 carries the healthcheck.
    let r1 = recorded_release(&s.name, 1);
    let recorded = &r1["services"][&app]["TaskTemplate"]["ContainerSpec"]["HealthCheck"];
    assert_eq!(recorded["Test"], json!(["CMD", "true"]), "{r1:#}");
    assert_eq!(recorded["Interval"], json!(2_000_000_000u64), "{r1:#}");
    // Compared with the manifest's, the engine's healthcheck is the same: nothing to do.
    let plan = s.plan();
    assert_eq!(plan["actions"], json!([]), "{plan:#}");

    // A healthcheck changed outside twip is drift, field by field.
    service_update(&app, &["--health-interval", "7s"]);
    assert_eq!(
        engine_healthcheck(&app)["Interval"],
        json!(7_000_000_000u64)
    );
    let plan = s.plan();
    let actions = plan["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{plan:#}");
    assert_eq!(
        (&actions[0]["op"], &actions[0]["name"]),
        (&json!("update"), &json!(app)),
        "{plan:#}"
    );
    assert_eq!(
        actions[0]["changes"],
        json!([change(
            "healthcheck",
            Some("interval"),
            Some("7s"),
            Some("2s")
        )]),
        "{plan:#}"
    );
    s.up();
    assert_eq!(
        engine_healthcheck(&app)["Interval"],
        json!(2_000_000_000u64)
    );

    // A second release (the app on another port), then back to the first: the service keeps
    // its healthcheck (restored from the recorded spec) and gets its first port back.
    let other = loop {
        let p = free_port();
        if p != s.port {
            break p;
        }
    };
    // (Release 2 is the `up` that undid the drift: every executed plan is a release.)
    let out = s.twip_at(other, &["up", "driftfixture", "--timeout", "300s"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let r3 = recorded_release(&s.name, 3);
    assert!(
        !r3["services"][&app]["TaskTemplate"]["ContainerSpec"]["HealthCheck"].is_null(),
        "{r3:#}"
    );
    let published = |spec: &Value| spec["EndpointSpec"]["Ports"][0]["PublishedPort"].clone();
    assert_eq!(published(&s.spec()), json!(other));
    let out = s.twip_at(other, &["rollback", "driftfixture"]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "twip rollback failed:\n{err}");
    // The newest release that differs from what runs: 2, the same specs as 1.
    assert!(err.contains("back at release 2"), "{err}");
    let spec = s.spec();
    assert_eq!(published(&spec), json!(s.port), "{spec:#}");
    let kept = engine_healthcheck(&app);
    assert_eq!(kept, deployed, "rollback changed the healthcheck");
}
