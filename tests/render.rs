//! Rendering: snapshots of every rendered file of the three environments, byte-for-byte
//! determinism, and acceptance by the real tools: `docker stack config` (Docker's own compose
//! parser, which rejects unknown or mistyped keys) and `haproxy -c`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{load, repo, twip};
use twip::render::{render, STACK_FILE};

const ENVS: [&str; 3] = ["training", "production", "scaled"];

#[test]
fn rendered_files_match_their_snapshots() {
    for name in ENVS {
        let env = load(&repo(), name);
        let out = render(&env, &repo(), &repo().join("build").join(name)).unwrap();
        for f in &out.files {
            insta::assert_snapshot!(format!("render__{name}__{}", f.name), &f.content);
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for name in ENVS {
        let env = load(&repo(), name);
        let a = render(&env, &repo(), Path::new("/tmp/x")).unwrap();
        let b = render(&load(&repo(), name), &repo(), Path::new("/tmp/x")).unwrap();
        assert_eq!(a.files, b.files, "{name}");
    }
}

fn which(program: &str) -> std::path::PathBuf {
    which::which(program).unwrap_or_else(|_| {
        panic!(
            "`{program}` is not on PATH; the README's test command (scripts/test.sh) installs it"
        )
    })
}

#[test]
fn docker_stack_config_accepts_the_rendered_stacks() {
    let docker = which("docker");
    for name in ENVS {
        let tmp = tempfile::tempdir().unwrap();
        let status = twip()
            .args(["--project-dir"])
            .arg(repo())
            .args(["render", name, "-o"])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let out = Command::new(&docker)
            .args(["stack", "config", "-c", STACK_FILE])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{name}: docker stack config refused it:\n{stderr}"
        );
        let parsed = String::from_utf8_lossy(&out.stdout);
        let env = load(&repo(), name);
        for svc in env.manifest.services.keys() {
            assert!(
                parsed.contains(&format!("\n  {svc}:\n")),
                "{name}: {svc} missing:\n{parsed}"
            );
        }
        assert!(parsed.contains("endpoint_mode: dnsrr"), "{name}");
        assert!(parsed.contains("mode: host"), "{name}");
    }
}

#[test]
fn docker_stack_config_rejects_a_mistyped_key() {
    // The check above can fail: Docker's parser refuses what it does not know.
    let docker = which("docker");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("stack.yml"),
        "version: \"3.9\"\nservices:\n  web:\n    image: nginx:1.25\n    deploy:\n      replicaz: 2\n",
    )
    .unwrap();
    let out = Command::new(docker)
        .args(["stack", "config", "-c", "stack.yml"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn haproxy_accepts_the_rendered_configs() {
    let haproxy = which("haproxy");
    for name in ENVS {
        let env = load(&repo(), name);
        let out = render(&env, &repo(), Path::new("/tmp")).unwrap();
        let cfg = out
            .get("haproxy.cfg")
            .expect("every environment has a proxy");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let res = Command::new(&haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{name}: haproxy -c refused the config:\n{}{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
    }
}

#[test]
fn swarm_placeholders_and_dollars_survive_rendering() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("environments")).unwrap();
    std::fs::write(
        tmp.path().join("environments/x.yaml"),
        "services:\n  web:\n    image: nginx:1.25\n    hostname: \"web-{{.Task.Slot}}\"\n    environment:\n      NODE: \"{{.Node.Hostname}}\"\n      PRICE: \"$$5\"\n",
    )
    .unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(tmp.path())
        .args(["render", "x", "-o", "-"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("hostname: \"web-{{.Task.Slot}}\""), "{s}");
    assert!(s.contains("\"NODE\": \"{{.Node.Hostname}}\""), "{s}");
    // `$$5` in the manifest is a literal `$5`; the stack file doubles it again for the deploy.
    assert!(s.contains("\"PRICE\": \"$$5\""), "{s}");
}

#[test]
fn render_check_reports_stale_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let run = |args: &[&str]| {
        twip()
            .arg("--project-dir")
            .arg(repo())
            .args(args)
            .output()
            .unwrap()
    };
    let dir = out_dir.to_str().unwrap();
    // Nothing rendered yet: stale.
    assert_eq!(
        run(&["render", "training", "-o", dir, "--check"])
            .status
            .code(),
        Some(1)
    );
    assert!(run(&["render", "training", "-o", dir]).status.success());
    assert!(out_dir.join("stack.yml").is_file() && out_dir.join("haproxy.cfg").is_file());
    assert_eq!(
        run(&["render", "training", "-o", dir, "--check"])
            .status
            .code(),
        Some(0)
    );
    std::fs::write(out_dir.join("haproxy.cfg"), "edited by hand\n").unwrap();
    let out = run(&["render", "training", "-o", dir, "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("haproxy.cfg differs"));
}

#[test]
fn a_projects_template_overrides_the_builtin() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("environments")).unwrap();
    std::fs::create_dir_all(tmp.path().join("templates")).unwrap();
    std::fs::write(
        tmp.path().join("environments/x.yaml"),
        "services:\n  web:\n    image: nginx:1.25\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("templates/stack.yml.j2"),
        "# custom\n[% for s in services %][[ s.name ]]=[[ s.image ]]\n[% endfor %]",
    )
    .unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(tmp.path())
        .args(["render", "x", "-o", "-"])
        .output()
        .unwrap();
    // The override's values are escaped for its language (a stack file: YAML scalars) too.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# custom\n\"web\"=\"nginx:1.25\"\n"
    );
    // A template that uses an undefined variable is an error, not an empty string.
    std::fs::write(
        tmp.path().join("templates/stack.yml.j2"),
        "[[ no_such_thing ]]\n",
    )
    .unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(tmp.path())
        .args(["render", "x", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stack.yml.j2") && err.contains("undefined"),
        "{err}"
    );
}

#[test]
fn rendered_files_stay_in_the_output_folder_and_are_written_whole() {
    use twip::render::{write_output, Output, Rendered};
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let file = |name: &str| Rendered {
        name: name.into(),
        content: "x\n".into(),
    };
    // A name that leaves the folder: refused before anything is written.
    let bad = Output {
        files: vec![file("stack.yml"), file("config.x/../../f")],
    };
    let err = write_output(&out_dir, &bad).unwrap_err().to_string();
    assert!(err.contains("file name"), "{err}");
    assert!(!out_dir.exists());
    assert!(!tmp.path().join("f").exists());
    // Good names: written, and no temporary folder is left beside the output.
    let good = Output {
        files: vec![file("stack.yml"), file("config.app")],
    };
    let written = write_output(&out_dir, &good).unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("config.app")).unwrap(),
        "x\n"
    );
    // Again into the existing folder: replaced in place.
    write_output(&out_dir, &good).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

/// Non-comment lines of a HAProxy config, each cut to its first word.
fn directives(cfg: &str) -> Vec<String> {
    cfg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

fn haproxy_check(cfg: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let res = Command::new(which("haproxy"))
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "haproxy -c refused:\n{}{}\n{cfg}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
}

#[test]
fn hostile_route_values_change_no_haproxy_directive() {
    // Straight into the manifest model, past validation (which refuses most of these).
    let benign = load(&repo(), "production");
    let base = render(&benign, &repo(), Path::new("/tmp")).unwrap();
    let base_cfg = base.get("haproxy.cfg").unwrap().to_string();
    haproxy_check(&base_cfg);
    let hostile = [
        "/api /x /",
        "/a#b",
        "/a\"b\\c",
        "/$HOME/${PATH}",
        "/it's `id` $(id)",
        "-f",
        "/a\u{202e}b\u{200b}",
    ];
    for h in hostile {
        let mut env = load(&repo(), "production");
        let proxy = env.manifest.proxy.as_mut().unwrap();
        let prefixed =
            |r: &twip::manifest::model::Route| r.path.as_deref().is_some_and(|p| p != "/");
        assert!(proxy.routes.iter().filter(|r| prefixed(r)).count() >= 2);
        for r in proxy.routes.iter_mut().filter(|r| prefixed(r)) {
            r.path = Some(h.to_string());
        }
        let out = render(&env, &repo(), Path::new("/tmp")).unwrap();
        let cfg = out.get("haproxy.cfg").unwrap();
        haproxy_check(cfg);
        assert_eq!(directives(cfg), directives(&base_cfg), "{h:?}\n{cfg}");
        assert_eq!(cfg.lines().count(), base_cfg.lines().count(), "{h:?}");
    }
    // A control character cannot be written at all: the render fails, naming the problem.
    for h in [
        "/a\nserver evil 203.0.113.66:80",
        "/a\r\nstats admin if TRUE",
        "/a\0",
    ] {
        let mut env = load(&repo(), "production");
        for r in env.manifest.proxy.as_mut().unwrap().routes.iter_mut() {
            r.path = Some(h.to_string());
        }
        let err = format!(
            "{:#}",
            render(&env, &repo(), Path::new("/tmp")).unwrap_err()
        );
        assert!(
            err.contains("haproxy.cfg.j2") && err.contains("cannot hold"),
            "{err}"
        );
    }
}

#[test]
fn hostile_keys_and_values_keep_the_stack_files_structure() {
    let benign = load(&repo(), "production");
    let base = render(&benign, &repo(), Path::new("/tmp")).unwrap();
    let keys = |text: &str| -> Vec<String> {
        let doc = &yaml_rust2::YamlLoader::load_from_str(text).unwrap()[0];
        let svcs = doc["services"].as_hash().unwrap();
        svcs.values()
            .flat_map(|s| s.as_hash().unwrap().keys())
            .map(|k| format!("{k:?}"))
            .collect()
    };
    let base_keys = keys(base.get("stack.yml").unwrap());
    assert!(base_keys.len() >= 10, "{base_keys:?}");
    for h in ["a\nb: c", "x\": y", "#c", "a\u{2028}b", "$(id)"] {
        let mut env = load(&repo(), "production");
        for s in env.manifest.services.values_mut() {
            s.hostname = Some(h.to_string());
        }
        let text = render(&env, &repo(), Path::new("/tmp")).unwrap();
        let text = text.get("stack.yml").unwrap();
        let mut want = base_keys.clone();
        let mut got = keys(text);
        got.retain(|k| !k.contains("hostname"));
        want.retain(|k| !k.contains("hostname"));
        assert_eq!(got, want, "{h:?}");
    }
}

#[test]
fn a_hostile_environment_name_adds_no_line_to_the_bootstrap_script_or_user_data() {
    use twip::bootstrap::{cloud_init, script};
    let benign = script(&load(&repo(), "scaled"), &repo(), None).unwrap();
    let mut env = load(&repo(), "scaled");
    env.name = "x\nreboot\r\nbootcmd: [id]\u{2028}runcmd: $(id) `id` 'q'".into();
    let text = script(&env, &repo(), None).unwrap();
    assert_eq!(text.lines().count(), benign.lines().count());
    assert!(!text.lines().any(|l| l.trim() == "reboot"), "{text}");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bootstrap.sh");
    std::fs::write(&path, &text).unwrap();
    let res = Command::new(which("sh"))
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let ud = cloud_init(&env.name, &text).unwrap();
    let doc = &yaml_rust2::YamlLoader::load_from_str(&ud).unwrap()[0];
    let keys: Vec<_> = doc
        .as_hash()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["write_files", "runcmd"]);
}
