//! The lifecycle on a real engine in swarm mode: up, test, scale, status, down, clean, and
//! the failures a person must be able to act on. Tests run one after another (they share the
//! swarm and the proxy ports) and remove what they made, also when they fail.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn port() -> u16 {
    ports().http
}

fn services_of(stack: &str) -> Vec<String> {
    list(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
    ])
}

#[test]
fn training_up_scale_status_down_clean() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let p = TestProject::new(&["training"], "life");
    let stack = p.stacks[0].clone();

    // up converges.
    let up = p.twip(&["up", "training"]);
    assert!(up.status.success(), "twip up failed:\n{}", stderr(&up));
    assert!(stderr(&up).contains("training is up"), "{}", stderr(&up));
    assert_eq!(services_of(&stack).len(), 3);

    // Through the proxy: static assets from nginx, the rest from the app.
    let (status, h, _) = eventually(60, || {
        http(port(), "GET", "/styles/site.css", "").filter(|r| r.0 == 200)
    })
    .expect("static route answers");
    assert_eq!(status, 200);
    assert!(
        header(&h, "server").unwrap_or("").contains("nginx"),
        "{h:?}"
    );
    let (status, h, _) = eventually(60, || http(port(), "GET", "/", "").filter(|r| r.0 == 200))
        .expect("app route answers");
    assert_eq!(status, 200);
    assert!(
        header(&h, "x-app-version").is_some(),
        "the app answers /: {h:?}"
    );

    // twip test: the smoke test passes.
    let t = p.twip(&["test", "training"]);
    assert!(t.status.success(), "{}{}", stdout(&t), stderr(&t));
    assert!(stdout(&t).contains("/styles/"), "{}", stdout(&t));

    // A news item survives a forced task restart and down/up (the volume is kept).
    let title = format!("item-{}", std::process::id());
    let (s, _, _) = http(
        port(),
        "POST",
        "/news",
        &format!("{{\"title\": \"{title}\"}}"),
    )
    .expect("POST /news");
    assert!(s == 200 || s == 201 || s == 303, "POST /news answered {s}");
    let forced = docker(&[
        "service",
        "update",
        "--force",
        "--detach=false",
        "-q",
        &format!("{stack}_web"),
    ])
    .output()
    .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let after_restart = eventually(60, || {
        http(port(), "GET", "/news", "").filter(|r| r.0 == 200 && r.2.contains(&title))
    });
    assert!(
        after_restart.is_some(),
        "the item is gone after a task restart"
    );

    // A second up changes nothing: same service versions, "up to date".
    let before: Vec<String> = services_of(&stack)
        .iter()
        .flat_map(|id| {
            list(&[
                "service",
                "inspect",
                "--format",
                "{{.Spec.Name}} {{.Version.Index}}",
                id,
            ])
        })
        .collect();
    let again = p.twip(&["up", "training"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("up to date"), "{}", stderr(&again));
    let after: Vec<String> = services_of(&stack)
        .iter()
        .flat_map(|id| {
            list(&[
                "service",
                "inspect",
                "--format",
                "{{.Spec.Name}} {{.Version.Index}}",
                id,
            ])
        })
        .collect();
    assert_eq!(before, after, "a second up changed service versions");

    // plan shows the same, as data.
    let plan = p.twip(&["plan", "training", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(v["actions"].as_array().unwrap().len(), 0, "{v}");

    // scale web=3: three distinct app tasks answer through the proxy.
    let sc = p.twip(&["scale", "training", "web=3"]);
    assert!(sc.status.success(), "{}", stderr(&sc));
    let mut seen = BTreeSet::new();
    let all_three = eventually(60, || {
        if let Some((200, h, _)) = http(port(), "GET", "/", "") {
            if let Some(who) = header(&h, "x-served-by") {
                seen.insert(who.to_string());
            }
        }
        (seen.len() >= 3).then_some(())
    });
    assert!(
        all_three.is_some(),
        "only {seen:?} answered after scaling to 3"
    );
    // A later up keeps the scaled count (the manifest's count did not change).
    let keep = p.twip(&["up", "training"]);
    assert!(stderr(&keep).contains("up to date"), "{}", stderr(&keep));

    // status --json agrees with the engine.
    let st = p.twip(&["status", "training", "--json"]);
    assert!(st.status.success(), "{}", stderr(&st));
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let web = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == format!("{stack}_web"))
        .expect("web in status")
        .clone();
    let engine_replicas = list(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
        &format!("{stack}_web"),
    ]);
    assert_eq!(web["desired"].to_string(), engine_replicas[0]);
    assert_eq!(web["running"], 3);
    assert_eq!(web["mode"], "replicated");
    assert!(
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["role"] == "manager" && n["state"] == "ready"),
        "{v}"
    );
    assert_eq!(v["services"].as_array().unwrap().len(), 3);

    // logs: lines prefixed with their task, from more than one of the three tasks.
    let logs = p.twip(&["logs", "training", "web", "--tail", "5"]);
    assert!(logs.status.success(), "{}", stderr(&logs));
    let lines: Vec<String> = stdout(&logs).lines().map(str::to_string).collect();
    assert!(
        lines.len() >= 3 && lines.iter().all(|l| l.starts_with("web.")),
        "{}",
        stdout(&logs)
    );
    let tasks: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(tasks.len() >= 2, "lines of one task only: {tasks:?}");

    // down, then up again: the item is still there (the volume was kept).
    let down = p.twip(&["down", "training"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        labelled_leftovers(&stack).is_empty(),
        "left behind: {:?}",
        labelled_leftovers(&stack)
    );
    let up = p.twip(&["up", "training"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let kept = eventually(60, || {
        http(port(), "GET", "/news", "").filter(|r| r.0 == 200 && r.2.contains(&title))
    });
    assert!(kept.is_some(), "the item did not survive down/up");

    // clean --dry-run lists and removes nothing; clean then removes exactly that.
    let exited = docker(&[
        "run",
        "--label",
        "io.twip.managed=true",
        "--label",
        &format!("com.docker.stack.namespace={stack}"),
        "--name",
        &format!("{stack}_leftover"),
        "twip/base:bookworm",
        "true",
    ])
    .output()
    .unwrap();
    assert!(
        exited.status.success(),
        "{}",
        String::from_utf8_lossy(&exited.stderr)
    );
    // An agent image an older binary built (its tag is not this binary's hash): clean takes
    // it; one of another repository stays.
    let old_agent = format!("twip/twip-agent:0ld{}", std::process::id());
    let other = format!("twiptest{}/twip-agent:0ld", std::process::id());
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM twip/base:bookworm\nLABEL org.opencontainers.image.title=\"twip-agent\"\n",
    )
    .unwrap();
    let built = docker(&["build", "-q", "-t", &old_agent, "-t", &other])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    let dry = p.twip(&["clean", "training", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let listed: Vec<String> = stdout(&dry).lines().map(str::to_string).collect();
    assert!(
        listed
            .iter()
            .any(|l| l.contains(&format!("{stack}_leftover"))),
        "{listed:?}"
    );
    assert!(listed.iter().any(|l| l.contains(&old_agent)), "{listed:?}");
    assert!(!listed.iter().any(|l| l.contains(&other)), "{listed:?}");
    assert_eq!(
        list(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("name={stack}_leftover")
        ])
        .len(),
        1,
        "dry run removed it"
    );
    let clean = p.twip(&["clean", "training"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    let left = |r: &str| {
        docker(&["image", "inspect", r])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!left(&old_agent), "the old agent image was not removed");
    assert!(left(&other), "another repository's agent image was removed");
    let _ = docker(&["rmi", &other]).output();
    let removed: Vec<String> = stdout(&clean).lines().map(str::to_string).collect();
    assert_eq!(
        removed
            .iter()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        listed
            .iter()
            .map(|l| l
                .trim_start_matches("would remove ")
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "))
            .collect::<Vec<_>>(),
        "clean removed something else than the dry run listed"
    );
    assert!(list(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("name={stack}_leftover")
    ])
    .is_empty());

    // down --volumes: nothing labelled is left, the volume neither.
    let down = p.twip(&["down", "training", "--volumes"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        labelled_leftovers(&stack).is_empty(),
        "left behind: {:?}",
        labelled_leftovers(&stack)
    );
    assert!(list(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}")
    ])
    .is_empty());
}

fn app_version() -> Option<String> {
    http(port(), "GET", "/", "").and_then(|(s, h, _)| {
        (s == 200)
            .then(|| header(&h, "x-app-version").map(str::to_string))
            .flatten()
    })
}

#[test]
fn update_rollback_and_automatic_rollback() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let p = TestProject::new(&["training"], "roll");
    let up = p.twip(&["up", "training"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(
        eventually(60, || app_version().filter(|v| v == "1.0.0")).as_deref(),
        Some("1.0.0")
    );

    // A new version in the manifest rolls out through up (the image is built first).
    let v2 = p.twip_with(&[("TWIP_WEB_VERSION", "2.0.0")], &["up", "training"]);
    assert!(v2.status.success(), "{}", stderr(&v2));
    assert!(
        stderr(&v2).contains("image twip/web:1.0.0 → twip/web:2.0.0"),
        "{}",
        stderr(&v2)
    );
    assert_eq!(
        eventually(60, || app_version().filter(|v| v == "2.0.0")).as_deref(),
        Some("2.0.0")
    );

    // rollback returns to the release before, from twip's own history.
    let rb = p.twip_with(&[("TWIP_WEB_VERSION", "2.0.0")], &["rollback", "training"]);
    assert!(rb.status.success(), "{}", stderr(&rb));
    assert!(stderr(&rb).contains("back to release"), "{}", stderr(&rb));
    assert_eq!(
        eventually(60, || app_version().filter(|v| v == "1.0.0")).as_deref(),
        Some("1.0.0")
    );

    // An image whose health check never passes (nginx has no python for the app's check):
    // swarm rolls it back, twip says so with exit code 4, and v1 still answers.
    let bad = p.twip(&[
        "update",
        "training",
        "web",
        "--image",
        "twip/static:latest",
        "--timeout",
        "5m",
    ]);
    assert_eq!(bad.status.code(), Some(4), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("rolled it back"), "{}", stderr(&bad));
    if let Err(last) = only_version(60, 5, "1.0.0", app_version) {
        panic!("v1 does not answer after the automatic rollback: {last:?}");
    }

    // An image rebuilt under the same tag (no registry, so no digest): `up` rolls it out
    // rather than finding the stack up to date, because the image's id is part of the spec.
    let tag = format!("1.0.0-rebuild{}", run_id());
    let tag = tag.as_str();
    let rebuilt_version = format!("1.0.0-rebuilt{}", run_id());
    let image = format!("twip/web:{tag}");
    let _rm = RemoveImage(image.clone());
    let first = p.twip_with(&[("TWIP_WEB_VERSION", tag)], &["up", "training"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        eventually(60, || app_version().filter(|v| v == tag)).as_deref(),
        Some(tag)
    );
    let rebuilt = docker(&[
        "build",
        "-q",
        "--build-arg",
        "BASE=twip/base:bookworm",
        "--build-arg",
        &format!("VERSION={rebuilt_version}"),
        "-t",
        &image,
    ])
    .arg(repo().join("images/web"))
    .output()
    .unwrap();
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    let again = p.twip_with(&[("TWIP_WEB_VERSION", tag)], &["up", "training"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(!stderr(&again).contains("up to date"), "{}", stderr(&again));
    assert_eq!(
        eventually(60, || app_version().filter(|v| *v == rebuilt_version)),
        Some(rebuilt_version.clone())
    );

    let down = p.twip(&["down", "training", "--volumes"]);
    assert!(down.status.success(), "{}", stderr(&down));
}

/// Removes an image the test built, when dropped (after the stack that used it is down).
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        docker(&["rmi", "-f", &self.0]).output().ok();
    }
}

#[test]
fn failures_say_what_is_wrong_and_invalid_input_changes_nothing() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let p = TestProject::new(&[], "fail");

    // An image that does not exist.
    let noimage = test_stack("fail_noimage");
    p.write_env(
        "noimage",
        &format!("stack: {noimage}\nservices:\n  web:\n    image: twip/does-not-exist:1\n"),
    );
    let mut p = p;
    p.stacks.push(noimage);
    let out = p.twip(&["up", "noimage", "--timeout", "90s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("does not start") && err.to_lowercase().contains("image"),
        "{err}"
    );

    // A service whose process exits at once: its exit code and last log lines. The same as a
    // global service (one task per node): not "up" at 0/0 while its task waits out the restart
    // delay, but the same failure.
    let mut crash = |name: &str, mode: &str| -> String {
        let stack = test_stack(&format!("fail_{name}"));
        p.write_env(
            name,
            &format!("stack: {stack}\nservices:\n  app:\n    image: twip/base:bookworm\n    mode: {mode}\n    command: [\"sh\", \"-c\", \"echo boom-from-the-app; exit 3\"]\n"),
        );
        p.stacks.push(stack);
        let out = p.twip(&["up", name, "--timeout", "120s"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("exited with code 3"), "{err}");
        err
    };
    let err = crash("crash", "replicated");
    assert!(
        err.contains("boom-from-the-app"),
        "the last log lines are shown: {err}"
    );
    crash("crashglobal", "global");

    // A manifest error: exit 2, and nothing was made.
    let broken = test_stack("fail_broken");
    p.write_env(
        "broken",
        &format!("stack: {broken}\nservices:\n  web:\n    image: nginx:1.25\n    replicas: many\n"),
    );
    let out = p.twip(&["up", "broken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("environments/broken.yaml:5:15"),
        "{}",
        stderr(&out)
    );
    assert!(labelled_leftovers(&broken).is_empty());

    // An unreachable engine.
    p.write_env(
        "ok",
        &format!(
            "stack: {}\nservices:\n  web:\n    image: nginx:1.25\n",
            test_stack("fail_ok")
        ),
    );
    let out = p.twip(&["--host", "unix:///run/twip-no-such.sock", "up", "ok"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach the Docker engine at unix:///run/twip-no-such.sock"),
        "{}",
        stderr(&out)
    );
    // Plain TCP to a remote address is refused before any connection.
    let out = p.twip(&["--host", "tcp://10.9.8.7:2375", "status", "ok"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refusing plain TCP"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_engine_that_is_not_a_swarm_manager_is_reported() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A second engine, not in any swarm: started here, stopped at the end.
    let engine = common_engine::SecondEngine::start();
    let p = TestProject::new(&[], "nomgr");
    p.write_env("ok", "services:\n  web:\n    image: nginx:1.25\n");
    let host = format!("unix://{}", engine.socket.display());
    let out = p.twip(&["--host", &host, "up", "ok"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not in a swarm"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("twip swarm init"), "{}", stderr(&out));
}

mod common_engine {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};

    /// A bridge this test made (named after the process, on a /24 no interface uses);
    /// deleted when dropped. An interface of that name that exists already is not touched.
    struct Bridge(String);

    impl Bridge {
        fn create() -> Bridge {
            let name = format!("twt{}", std::process::id());
            let addrs = Command::new("ip")
                .args(["-o", "-4", "addr", "show"])
                .output()
                .expect("ip (iproute2)");
            let addrs = String::from_utf8_lossy(&addrs.stdout).to_string();
            let subnet = (0..250u32)
                .map(|i| 10 + (std::process::id() + i) % 240)
                .map(|x| format!("10.251.{x}."))
                .find(|net| !addrs.contains(&format!(" {net}")))
                .expect("a free 10.251.X.0/24");
            let exists = Command::new("ip")
                .args(["link", "show", &name])
                .output()
                .unwrap();
            assert!(
                !exists.status.success(),
                "an interface {name} exists already; not touching it"
            );
            let add = Command::new("ip")
                .args(["link", "add", &name, "type", "bridge"])
                .output()
                .expect("ip (iproute2)");
            assert!(
                add.status.success(),
                "ip link add {name}: {}",
                String::from_utf8_lossy(&add.stderr)
            );
            let bridge = Bridge(name.clone());
            for args in [
                vec!["addr", "add", &format!("{subnet}1/24"), "dev", &name],
                vec!["link", "set", &name, "up"],
            ] {
                let out = Command::new("ip")
                    .args(&args)
                    .output()
                    .expect("ip (iproute2)");
                assert!(
                    out.status.success(),
                    "ip {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            bridge
        }
    }

    impl Drop for Bridge {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }

    /// A second dockerd on its own socket, data root and bridge (never `--bridge none`, which
    /// makes dockerd delete the first engine's docker0), without iptables rules.
    pub struct SecondEngine {
        pub socket: PathBuf,
        child: Child,
        root: tempfile::TempDir,
        // Dropped after the engine stopped (fields drop after `drop`).
        _bridge: Bridge,
    }

    impl SecondEngine {
        pub fn start() -> SecondEngine {
            let root = tempfile::tempdir().unwrap();
            let socket = root.path().join("docker.sock");
            let bridge = Bridge::create();
            let dockerd =
                which::which("dockerd").expect("dockerd (scripts/engine-up.sh installs it)");
            let child = Command::new(dockerd)
                .arg("--host")
                .arg(format!("unix://{}", socket.display()))
                .arg("--data-root")
                .arg(root.path().join("data"))
                .arg("--exec-root")
                .arg(root.path().join("exec"))
                .arg("--pidfile")
                .arg(root.path().join("docker.pid"))
                .args([
                    "--bridge",
                    &bridge.0,
                    "--iptables=false",
                    "--ip6tables=false",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a second dockerd");
            let e = SecondEngine {
                socket,
                child,
                root,
                _bridge: bridge,
            };
            let ok = super::eventually(30, || {
                Command::new("docker")
                    .arg("--host")
                    .arg(format!("unix://{}", e.socket.display()))
                    .arg("info")
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
            });
            assert!(ok.is_some(), "the second dockerd did not answer");
            e
        }
    }

    impl Drop for SecondEngine {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
            let _ = &self.root;
        }
    }
}

#[test]
fn bench_compares_replica_counts_and_restores_the_original() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let p = TestProject::new(&["training"], "layouts");
    let stack = p.stacks[0].clone();
    let up = p.twip(&["up", "training"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let out = p.twip(&[
        "bench",
        "training",
        "--service",
        "web",
        "--replicas",
        "1,2",
        "-z",
        "2s",
        "-c",
        "10",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["replicas"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    for r in rows {
        assert!(r["rps"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
    }
    let replicas = list(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
        &format!("{stack}_web"),
    ]);
    assert_eq!(
        replicas,
        vec!["1".to_string()],
        "the original count is restored"
    );
    assert!(p.twip(&["down", "training", "--volumes"]).status.success());
}

#[test]
fn with_a_registry_services_run_images_by_digest_and_stay_up_to_date() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let mut p = TestProject::new(&["training"], "digest");
    let stack = test_stack("digest_reg");
    let project = format!("twiptest{}-digest", run_id());
    // The images this test tags and pushes, removed from the engine when it ends (also when
    // it fails); the registry is the run's own.
    let _images = RemoveImages(format!("localhost:5000/{project}/"));
    p.write_env(
        "reg",
        &format!("extends: training\nstack: {stack}\nproject: {project}\nregistry:\n  url: localhost:5000\n"),
    );
    p.stacks.push(stack.clone());
    let up = p.twip(&["up", "reg"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let image = list(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        &format!("{stack}_web"),
    ]);
    assert!(
        image[0].starts_with(&format!("localhost:5000/{project}/web:1.0.0@sha256:")),
        "{image:?}"
    );
    let again = p.twip(&["up", "reg"]);
    assert!(stderr(&again).contains("up to date"), "{}", stderr(&again));
    let plan = p.twip(&["plan", "reg"]);
    assert!(stdout(&plan).contains("up to date"), "{}", stdout(&plan));
    assert!(p.twip(&["down", "reg", "--volumes"]).status.success());
}

/// Removes, when dropped, every image reference of the engine that starts with its prefix.
struct RemoveImages(String);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        let refs = list(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
        let doomed: Vec<&String> = refs.iter().filter(|r| r.starts_with(&self.0)).collect();
        if !doomed.is_empty() {
            let _ = docker(&["rmi"]).args(doomed).output();
        }
    }
}
