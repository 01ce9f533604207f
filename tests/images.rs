//! `twip build`, `twip push`, `twip images load` and `ensure_images` against the real engine
//! and the local registries that `scripts/engine-up.sh` starts (an open one on 127.0.0.1:5000,
//! an htpasswd one on 127.0.0.1:5001) and the offline base images it makes. When no engine
//! answers these tests FAIL; they do not skip.
//!
//! Everything a test makes carries a unique name (`twiptest-UID`): registry repositories, local
//! images, containers, the second engine. A guard removes it when the test ends, also when it
//! fails. Builds share BuildKit's cache, so a second run is mostly cached.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{repo, twip};

/// Builds take the machine's two cores: one engine test at a time.
static ENGINE: Mutex<()> = Mutex::new(());

fn engine_lock() -> std::sync::MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|p| p.into_inner())
}

fn uid() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{:06}", std::process::id(), nanos % 1_000_000)
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn open_registry() -> String {
    var("TWIP_REGISTRY_ADDR", "127.0.0.1:5000")
}

fn auth_registry() -> String {
    var("TWIP_AUTH_REGISTRY_ADDR", "127.0.0.1:5001")
}

fn registry_user() -> String {
    var("TWIP_TEST_REGISTRY_USER", "twip")
}

fn registry_password() -> String {
    var("TWIP_TEST_REGISTRY_PASSWORD", "twip-test-password")
}

/// The offline multi-platform base (in the open registry) and its amd64 copy in the engine.
fn base_multi() -> String {
    let port = open_registry().rsplit(':').next().unwrap().to_string();
    var(
        "TWIP_TEST_BASE_MULTI",
        &format!("localhost:{port}/twip/base:bookworm"),
    )
}

fn base_local() -> String {
    var("TWIP_TEST_BASE_IMAGE", "twip/base:bookworm")
}

// ---------------------------------------------------------------------------------------------
// Running things
// ---------------------------------------------------------------------------------------------

/// A finished command, printable in assertion messages.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from(o: std::process::Output) -> Ran {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).to_string(),
            stderr: String::from_utf8_lossy(&o.stderr).to_string(),
        }
    }

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn docker(args: &[&str]) -> Ran {
    Ran::from(
        Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the docker CLI runs"),
    )
}

fn curl(args: &[&str]) -> Ran {
    Ran::from(
        Command::new("curl")
            .args(["-s", "-m", "10"])
            .args(args)
            .output()
            .expect("curl runs"),
    )
}

/// The local engine answers. A missing engine is a failure: CI starts one.
fn require_engine() {
    let out = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert_eq!(
        out.code, 0,
        "no Docker engine answers: run scripts/engine-up.sh (scripts/test.sh does)\n{out}"
    );
}

/// A twip project in a temporary directory: the repository's environments and (linked) images.
struct Project {
    dir: tempfile::TempDir,
    uid: String,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("twiptest-images-")
            .tempdir()
            .unwrap();
        common::copy_dir(&repo().join("images"), &dir.path().join("images"));
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        for e in std::fs::read_dir(repo().join("environments")).unwrap() {
            let e = e.unwrap();
            if e.path()
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml")
            {
                std::fs::copy(
                    e.path(),
                    dir.path().join("environments").join(e.file_name()),
                )
                .unwrap();
            }
        }
        Project { dir, uid: uid() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Makes the project a git repository with one commit; returns its short hash.
    fn git_commit(&self) -> String {
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .arg("-C")
                .arg(self.path())
                .args([
                    "-c",
                    "user.name=twip test",
                    "-c",
                    "user.email=test@twip.invalid",
                ])
                .args(args)
                .output()
                .expect("git runs");
            assert!(o.status.success(), "git {args:?}: {}", Ran::from(o));
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "test"]);
        git(&["rev-parse", "--short", "HEAD"])
    }

    fn twip(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut c = twip();
        c.arg("--project-dir").arg(self.path()).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.timeout(Duration::from_secs(1200));
        Ran::from(c.output().unwrap())
    }
}

/// A registry user and password, for the test's own cleanup requests.
type Credentials = Option<(String, String)>;

/// Removes what a test made, in this order: containers, local images, registry manifests,
/// the second engine. Runs on drop, so also when an assertion failed.
struct Cleanup {
    containers: Vec<String>,
    /// Local images whose reference starts with one of these.
    image_prefixes: Vec<String>,
    /// (registry address, repositories, credentials): every tag of each is deleted.
    registries: Vec<(String, Vec<String>, Credentials)>,
}

impl Cleanup {
    fn delete_repo(addr: &str, repo: &str, auth: &Credentials) {
        let cred = auth.as_ref().map(|(u, p)| format!("{u}:{p}"));
        let with_auth = |mut a: Vec<String>| {
            if let Some(c) = &cred {
                a.insert(0, c.clone());
                a.insert(0, "-u".into());
            }
            a
        };
        let tags = curl(
            &with_auth(vec![format!("http://{addr}/v2/{repo}/tags/list")])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        let v: serde_json::Value = serde_json::from_str(&tags.stdout).unwrap_or_default();
        let accept = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
        let mut digests = Vec::new();
        for t in v["tags"].as_array().cloned().unwrap_or_default() {
            let Some(t) = t.as_str() else { continue };
            let head = curl(
                &with_auth(vec![
                    "-I".into(),
                    "-H".into(),
                    accept.into(),
                    format!("http://{addr}/v2/{repo}/manifests/{t}"),
                ])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            );
            if let Some(d) = head.stdout.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("docker-content-digest:")
                    .then(|| l.split_once(':').unwrap().1.trim().to_string())
            }) {
                if !digests.contains(&d) {
                    digests.push(d);
                }
            }
        }
        for d in digests {
            curl(
                &with_auth(vec![
                    "-X".into(),
                    "DELETE".into(),
                    format!("http://{addr}/v2/{repo}/manifests/{d}"),
                ])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            );
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            docker(&["rm", "-f", c]);
        }
        if !self.image_prefixes.is_empty() {
            let refs = docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
            let doomed: Vec<&str> = refs
                .stdout
                .lines()
                .filter(|r| {
                    self.image_prefixes
                        .iter()
                        .any(|p| r.starts_with(p.as_str()))
                })
                .collect();
            if !doomed.is_empty() {
                let mut args = vec!["image", "rm", "-f"];
                args.extend(doomed);
                docker(&args);
            }
        }
        for (addr, repos, auth) in &self.registries {
            for r in repos {
                Cleanup::delete_repo(addr, r, auth);
            }
        }
    }
}

/// The registry repositories of the sample images under the test's namespace.
fn sample_repos(uid: &str) -> Vec<String> {
    ["proxy", "static", "web"]
        .iter()
        .map(|n| format!("twiptest-{uid}/twip/{n}"))
        .collect()
}

/// A second dockerd on its own socket, data and exec roots and network namespace (classic
/// image store, no bridge, no iptables): the "node" images are delivered to. Stopped and
/// removed on drop.
struct SecondEngine {
    child: std::process::Child,
    dir: PathBuf,
    sock: String,
}

impl SecondEngine {
    fn start(uid: &str) -> SecondEngine {
        let dir = PathBuf::from(format!("/tmp/twiptest-e2-{uid}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let sock = format!("unix://{}/d.sock", dir.display());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        // In a network namespace of its own: a dockerd with `--bridge=none` deletes the host's
        // `docker0` when it starts, which would break the main engine's containers.
        let child = Command::new("unshare")
            .args(["--net", "--", "dockerd"])
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("x"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .args([
                "-H",
                &sock,
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd runs (package docker.io; scripts/engine-up.sh installs it)");
        let e = SecondEngine { child, dir, sock };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if docker(&["-H", &e.sock, "info", "--format", "{{.ServerVersion}}"]).code == 0 {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "the second dockerd did not answer within 60s:\n{}",
                std::fs::read_to_string(e.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn docker(&self, args: &[&str]) -> Ran {
        let mut a = vec!["-H", self.sock.as_str()];
        a.extend(args);
        docker(&a)
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET /healthz` on 127.0.0.1:PORT answers 200.
fn healthz(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

/// `Platform:` lines of `docker buildx imagetools inspect` (attestations left out).
fn platforms_in_registry(reference: &str) -> Vec<String> {
    let out = docker(&["buildx", "imagetools", "inspect", reference]);
    assert_eq!(out.code, 0, "imagetools inspect {reference}: {out}");
    let mut p: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Platform:"))
        .map(|p| p.trim().to_string())
        .filter(|p| p != "unknown/unknown")
        .collect();
    p.sort();
    p.dedup();
    p
}

fn builder_platforms() -> Vec<String> {
    let out = docker(&["buildx", "inspect"]);
    assert_eq!(out.code, 0, "{out}");
    out.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Platforms:"))
        .flat_map(|l| l.split(','))
        .map(|p| p.trim().trim_end_matches('*').to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// `twip build scaled --push` builds the sample images for linux/amd64 and linux/arm64 (and
/// linux/arm/v7 when the base and the builder have it) into the open registry, tagged with the
/// manifest's tags, the git commit and `latest`; the registry lists both platforms for each;
/// the arm64 `web`, pulled from the registry, runs under emulation and answers /healthz.
#[test]
fn scaled_builds_multi_platform_pushes_and_the_arm64_web_runs() {
    let _lock = engine_lock();
    require_engine();
    let p = Project::new();
    let commit = p.git_commit();
    let reg = format!("{}/twiptest-{}", open_registry(), p.uid);
    let mut clean = Cleanup {
        containers: Vec::new(),
        image_prefixes: vec![format!("{reg}/")],
        registries: vec![(open_registry(), sample_repos(&p.uid), None)],
    };
    let base = base_multi();
    let mut platforms = vec!["linux/amd64".to_string(), "linux/arm64".to_string()];
    if platforms_in_registry(&base).contains(&"linux/arm/v7".to_string())
        && builder_platforms().iter().any(|p| p == "linux/arm/v7")
    {
        platforms.push("linux/arm/v7".into());
    }
    let list = platforms.join(",");
    let t = Instant::now();
    let out = p.twip(
        &["build", "scaled", "--push", "--platform", &list],
        &[("TWIP_REGISTRY", &reg), ("TWIP_BASE_IMAGE", &base)],
    );
    assert_eq!(out.code, 0, "{out}");
    eprintln!(
        "twip build scaled --push --platform {list}: {:.1}s",
        t.elapsed().as_secs_f64()
    );
    // The summary: every image, its platforms, pushed, a digest.
    for name in ["proxy", "static", "web"] {
        assert!(
            out.stderr.contains(&format!("  {name}  [{list}]")),
            "summary lacks {name}: {out}"
        );
    }
    assert!(out.stderr.contains("pushed"), "{out}");
    assert!(out.stderr.contains("digest sha256:"), "{out}");
    let mut want = platforms.clone();
    want.sort();
    for name in ["proxy", "static", "web"] {
        assert_eq!(
            platforms_in_registry(&format!("{reg}/twip/{name}:latest")),
            want,
            "{name}:latest"
        );
        assert_eq!(
            platforms_in_registry(&format!("{reg}/twip/{name}:{commit}")),
            want,
            "{name}:{commit} (the git commit tag)"
        );
    }
    assert_eq!(
        platforms_in_registry(&format!("{reg}/twip/web:1.0.0")),
        want
    );

    // The arm64 web, pulled from the registry, runs under emulation.
    let name = format!("twiptest-web-arm64-{}", p.uid);
    clean.containers.push(name.clone());
    let web = format!("{reg}/twip/web:1.0.0");
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "io.twip.test=1",
        "--pull",
        "always",
        "--platform",
        "linux/arm64",
        "-p",
        "127.0.0.1::8080",
        &web,
    ]);
    assert_eq!(run.code, 0, "{run}");
    let port = docker(&["port", &name, "8080/tcp"]);
    let port: u16 = port
        .stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port: {port}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !healthz(port) {
        assert!(
            Instant::now() < deadline,
            "web (linux/arm64) did not answer /healthz on 127.0.0.1:{port} within 120s:\n{}",
            docker(&["logs", &name])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let arch = docker(&["exec", &name, "uname", "-m"]);
    assert_eq!(arch.stdout.trim(), "aarch64", "{arch}");
}

/// The htpasswd registry: without credentials both `twip build --push` and `twip push` fail
/// and say to run `docker login HOST`; after `docker login` (into a temporary DOCKER_CONFIG, so
/// the machine's is untouched) both succeed. The password never appears in twip's output.
#[test]
fn the_auth_registry_refuses_without_login_and_accepts_after() {
    let _lock = engine_lock();
    require_engine();
    let p = Project::new();
    let host = auth_registry();
    let reg = format!("{host}/twiptest-{}", p.uid);
    let creds = Some((registry_user(), registry_password()));
    let _clean = Cleanup {
        containers: Vec::new(),
        image_prefixes: vec![format!("{reg}/")],
        registries: vec![(host.clone(), sample_repos(&p.uid), creds)],
    };
    p.write(
        "environments/authreg.yaml",
        &format!("extends: training\nregistry:\n  url: {reg}\n"),
    );
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path().to_str().unwrap().to_string();
    let base = base_local();
    let env = [
        ("DOCKER_CONFIG", cfg.as_str()),
        ("TWIP_BASE_IMAGE", base.as_str()),
    ];
    let password = registry_password();
    let mut outputs = Vec::new();

    // 1. Build and push without credentials.
    let out = p.twip(&["build", "authreg", "--service", "web", "--push"], &env);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("pushing image `web` failed"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "the registry {host} refused: authentication required. Run `docker login {host}`"
        )),
        "{out}"
    );
    assert!(out.stderr.contains("docker buildx build"), "{out}");
    outputs.push(out);

    // 2. Build into the engine, then `twip push` without credentials.
    let out = p.twip(&["build", "authreg"], &env);
    assert_eq!(out.code, 0, "{out}");
    outputs.push(out);
    let out = p.twip(&["push", "authreg"], &env);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!("Run `docker login {host}`")),
        "{out}"
    );
    assert!(out.stderr.contains("docker push "), "{out}");
    outputs.push(out);

    // 3. docker login (the test's own config dir), then push and build --push succeed.
    let mut login = Command::new("docker")
        .args([
            "--config",
            &cfg,
            "login",
            &host,
            "-u",
            &registry_user(),
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let login = Ran::from(login.wait_with_output().unwrap());
    assert_eq!(login.code, 0, "docker login: {login}");

    let out = p.twip(&["pack", "authreg"], &env);
    assert_eq!(out.code, 0, "{out}");
    for name in ["proxy", "static", "web"] {
        assert!(
            out.stderr
                .contains(&format!("pushed {reg}/twip/{name}:latest")),
            "{out}"
        );
    }
    assert!(
        out.stderr.contains(&format!("pushed {reg}/twip/web:1.0.0")),
        "{out}"
    );
    outputs.push(out);
    let out = p.twip(&["build", "authreg", "--service", "web", "--push"], &env);
    assert_eq!(out.code, 0, "{out}");
    outputs.push(out);
    let tags = curl(&[
        "-u",
        &format!("{}:{password}", registry_user()),
        &format!(
            "http://{reg_host}/v2/twiptest-{}/twip/web/tags/list",
            p.uid,
            reg_host = host
        ),
    ]);
    assert!(
        tags.stdout.contains("\"1.0.0\"") && tags.stdout.contains("\"latest\""),
        "{tags}"
    );

    for o in &outputs {
        assert!(
            !o.all().contains(&password),
            "twip printed the password:\n{o}"
        );
    }
}

/// Delivery without a registry: `twip images load` streams the image into a second engine (the
/// node), then skips it the second time; `--node` with a typo is exit 2. And `ensure_images`
/// builds a missing image for that engine and delivers it, and leaves it alone once there.
#[test]
fn images_load_delivers_to_a_second_engine_then_skips() {
    let _lock = engine_lock();
    require_engine();
    let p = Project::new();
    let uid = p.uid.clone();
    let _clean = Cleanup {
        containers: Vec::new(),
        image_prefixes: vec![format!("twiptest-{uid}")],
        registries: Vec::new(),
    };
    let node = SecondEngine::start(&uid);
    p.write("ctx/tiny/Dockerfile", "FROM scratch\nCOPY id.txt /id.txt\n");
    p.write("ctx/tiny/id.txt", &uid);
    p.write(
        "environments/deliver.yaml",
        &format!(
            "project: twiptest-{uid}\n\
             images:\n  tiny:\n    build: {{context: ctx/tiny}}\n\
             services:\n  tiny: {{image: tiny}}\n\
             nodes:\n  - {{name: node-1, address: 127.0.0.1, role: manager, engine: \"{}\"}}\n",
            node.sock
        ),
    );
    let reference = format!("twiptest-{uid}/tiny:latest");

    let out = p.twip(&["images", "load", "deliver"], &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains(&format!("{reference}; build first: `twip build deliver`")),
        "{out}"
    );

    let out = p.twip(&["build", "deliver"], &[]);
    assert_eq!(out.code, 0, "{out}");

    let out = p.twip(&["images", "load", "deliver"], &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains(&format!("node-1: {reference} loaded (")),
        "{out}"
    );
    assert!(out.stderr.contains("1 loaded, 0 skipped"), "{out}");
    let there = node.docker(&["image", "inspect", "--format", "{{.Id}}", &reference]);
    assert_eq!(there.code, 0, "not on the node: {there}");

    let out = p.twip(&["images", "load", "deliver", "--node", "node-1"], &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains(&format!("node-1: {reference} already there (")),
        "{out}"
    );
    assert!(out.stderr.contains("0 loaded, 1 skipped"), "{out}");

    let out = p.twip(&["images", "load", "deliver", "--node", "nod-1"], &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("no node `nod-1` in environment `deliver`; did you mean `node-1`?"),
        "{out}"
    );

    // ensure_images: a missing image is built (on the local engine) and delivered to the
    // engine it was given; once there, it is left alone (no build: the local copy is gone).
    p.write(
        "ctx/tiny2/Dockerfile",
        "FROM scratch\nCOPY id.txt /id2.txt\n",
    );
    p.write("ctx/tiny2/id.txt", &uid);
    p.write(
        "environments/ensure.yaml",
        &format!(
            "project: twiptest-{uid}-e\n\
             images:\n  tiny2:\n    build: {{context: ctx/tiny2}}\n\
             services:\n  tiny2: {{image: tiny2}}\n"
        ),
    );
    let ensured = format!("twiptest-{uid}-e/tiny2:latest");
    let project = twip::project::Project::at(p.path().to_path_buf()).unwrap();
    let env = project.load("ensure").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d2 = bollard::Docker::connect_with_unix(&node.sock, 60, bollard::API_DEFAULT_VERSION)
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        let ui = twip::ui::Ui::plain();
        twip::lifecycle::images::ensure_images(&env, &d2, p.path(), &ui)
            .await
            .expect("ensure_images builds and delivers");
        d2.inspect_image(&ensured)
            .await
            .expect("delivered to the engine");
        assert_eq!(docker(&["image", "rm", &ensured]).code, 0);
        twip::lifecycle::images::ensure_images(&env, &d2, p.path(), &ui)
            .await
            .expect("a second ensure_images is a no-op");
    });
    assert_ne!(
        docker(&["image", "inspect", &ensured]).code,
        0,
        "ensure_images rebuilt an image the engine already had"
    );
}

/// A build that fails: exit 1, and the error shows the pasteable command and the build's own
/// output (what the failing step printed).
#[test]
fn a_failing_build_shows_its_output_and_exits_1() {
    let _lock = engine_lock();
    require_engine();
    let p = Project::new();
    let marker = format!("twip-test-marker-{}", p.uid);
    p.write(
        "ctx/broken/Dockerfile",
        &format!("ARG BASE\nFROM ${{BASE}}\nRUN echo '{marker}: about to fail' && exit 7\n"),
    );
    p.write(
        "environments/broken.yaml",
        &format!(
            "project: twiptest-{}\n\
             images:\n  broken:\n    build:\n      context: ctx/broken\n      args: {{BASE: \"{}\"}}\n\
             services:\n  broken: {{image: broken}}\n",
            p.uid,
            base_local()
        ),
    );
    let out = p.twip(&["build", "broken"], &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("error: building image `broken` failed"),
        "{out}"
    );
    assert!(
        out.stderr.contains("command failed (exit status 1):"),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "docker buildx build --build-arg=BASE={}",
            base_local()
        )),
        "{out}"
    );
    assert!(out.stderr.contains("\noutput (last "), "{out}");
    assert!(
        out.stderr.contains(&format!("{marker}: about to fail")),
        "{out}"
    );
    assert!(out.stderr.contains("exit code: 7"), "{out}");
}

/// Input problems are exit 2, reported before anything runs (no engine needed).
#[test]
fn bad_input_is_exit_2_before_anything_runs() {
    let p = Project::new();
    let check = |args: &[&str], want: &str| {
        let out = p.twip(args, &[]);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(
            out.stderr.contains(want),
            "{args:?}: want {want:?} in {out}"
        );
    };
    check(
        &["build", "training", "--service", "wbe"],
        "error: no service `wbe` in environment `training`; did you mean `web`? (services: proxy, static, web)",
    );
    check(
        &["build", "training", "--platform", "linux/amd65"],
        "error: `linux/amd65` is not a platform; did you mean `linux/amd64`?",
    );
    check(
        &["build", "scaled"],
        "a multi-platform image cannot be loaded into most engines; add --push",
    );
    check(
        &["build", "training", "--push"],
        "error: environment `training` has no registry: --push needs `registry: {url: HOST[:PORT]}` in the manifest",
    );
    check(
        &["push", "training"],
        "error: environment `training` has no registry: `twip push` needs",
    );
    check(
        &["images", "load", "scaled", "--node", "workr-1"],
        "no node `workr-1` in environment `scaled`; did you mean `worker-1`?",
    );
    // Missing Dockerfiles: in the context, and a named one.
    std::fs::create_dir_all(p.path().join("ctx/empty")).unwrap();
    p.write(
        "environments/nodf.yaml",
        "images:\n  app:\n    build: {context: ctx/empty}\n  other:\n    build: {context: images/web, dockerfile: Nope.Dockerfile}\n\
         services:\n  app: {image: app}\n  other: {image: other}\n",
    );
    let out = p.twip(&["build", "nodf"], &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("images.app.build.context: no Dockerfile `Dockerfile` in `ctx/empty`"),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "images.other.build.dockerfile: no Dockerfile `Nope.Dockerfile` in `images/web`"
        ),
        "{out}"
    );
}

/// Preflight: no docker CLI, no buildx plugin, and a platform the builder does not list each
/// fail (exit 1) with what to install or enable.
#[test]
fn preflight_says_what_is_missing() {
    let p = Project::new();
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap();
    let out = p.twip(&["build", "training"], &[("PATH", path)]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("error: docker CLI not found; install docker-cli"),
        "{out}"
    );

    // A docker without the buildx plugin.
    let fake = tempfile::tempdir().unwrap();
    let script = fake.path().join("docker");
    std::fs::write(
        &script,
        "#!/bin/sh\nif [ \"$1\" = buildx ]; then echo \"docker: 'buildx' is not a docker command.\" >&2; exit 1; fi\nexit 0\n",
    )
    .unwrap();
    let mut perm = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).unwrap();
    let out = p.twip(
        &["build", "training"],
        &[("PATH", fake.path().to_str().unwrap())],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "error: docker buildx is not installed (docker buildx version failed): install docker-buildx"
        ),
        "{out}"
    );

    // A platform the builder does not list, refused on every machine: each platform twip
    // knows that this machine's builder lacks, and linux/s390x hidden from `docker buildx
    // inspect` by a wrapper around the real docker (so the check never runs empty).
    require_engine();
    let listed = builder_platforms();
    let mut refusals: Vec<(String, Vec<(&str, String)>)> = twip::manifest::validate::PLATFORMS
        .iter()
        // linux/arm64/v8 is linux/arm64 (the builder lists the short form).
        .filter(|c| !listed.iter().any(|l| *l == c.trim_end_matches("/v8")))
        .map(|c| (c.to_string(), Vec::new()))
        .collect();
    let real = which::which("docker").expect("docker on PATH");
    let shim = tempfile::tempdir().unwrap();
    let wrapper = shim.path().join("docker");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = buildx ] && [ \"$2\" = inspect ]; then\n  \"{real}\" \"$@\" | sed -e 's#, linux/s390x##g' -e 's#linux/s390x, ##g'\n  exit 0\nfi\nexec \"{real}\" \"$@\"\n",
            real = real.display()
        ),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&wrapper, perm).unwrap();
    let path = format!(
        "{}:{}",
        shim.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    refusals.push(("linux/s390x".into(), vec![("PATH", path)]));
    for (missing, env) in &refusals {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = p.twip(
            &[
                "build",
                "training",
                "--service",
                "web",
                "--platform",
                missing,
            ],
            &env,
        );
        assert_eq!(out.code, 1, "{missing}: {out}");
        assert!(
            out.stderr.contains(&format!(
                "error: the buildx builder `default` cannot build {missing} (it builds: "
            )),
            "{out}"
        );
        assert!(out.stderr.contains("binfmt"), "{out}");
    }
}
