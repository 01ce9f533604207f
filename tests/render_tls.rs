//! `proxy.tls` rendered: haproxy.cfg (snapshot, and `haproxy -c` with the certificates where
//! the secrets will be), the proxy service's secrets and ports in stack.yml and in the desired
//! state, and that no key reaches a rendered file.

mod common;

use std::path::Path;
use std::process::Command;

use common::{load, twip};
use twip::render::{render, STACK_FILE};

/// A self-signed certificate for `names`, valid 90 days from a day ago: (cert PEM, key PEM).
fn cert(names: &[&str]) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    params.not_after = (now + std::time::Duration::from_secs(90 * 86_400)).into();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let key = rcgen::KeyPair::generate().unwrap();
    let c = params.self_signed(&key).unwrap();
    (c.pem(), key.serialize_pem())
}

const MANIFEST: &str = "\
services:
  web: {image: nginx:1.25}
  api: {image: nginx:1.25}
proxy:
  image: haproxy:2.6
  port: 8080
  routes:
    - {host: api.example.test, service: api, port: 80, https_redirect: false}
    - {path: /, service: web, port: 80}
  tls:
    port: 8443
    certificates:
      - {cert: certs/a.crt, key: certs/a.key}
      - {bundle: certs/b.pem}
    hsts: {max_age: 31536000, include_subdomains: true}
";

fn project(manifest: &str) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("environments")).unwrap();
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::create_dir_all(dir.path().join(".twip")).unwrap();
    std::fs::write(dir.path().join(".twip/name-key"), [7u8; 32]).unwrap();
    std::fs::write(dir.path().join("environments/demo.yaml"), manifest).unwrap();
    let (a, ak) = cert(&["a.example.test", "www.a.example.test"]);
    let (b, bk) = cert(&["b.example.test"]);
    std::fs::write(dir.path().join("certs/a.crt"), &a).unwrap();
    std::fs::write(dir.path().join("certs/a.key"), &ak).unwrap();
    std::fs::write(dir.path().join("certs/b.pem"), format!("{b}{bk}")).unwrap();
    (dir, ak, bk)
}

fn haproxy_check(cfg: &str, project: &Path) {
    // The certificates where swarm mounts the proxy's secrets, in a folder of our own.
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::copy(project.join("certs/a.crt"), secrets.join("tls-0.pem")).unwrap();
    std::fs::copy(project.join("certs/a.key"), secrets.join("tls-0.pem.key")).unwrap();
    std::fs::copy(project.join("certs/b.pem"), secrets.join("tls-1.pem")).unwrap();
    // The runtime API's credentials, derived from the project's name key.
    let creds = twip::tls::runtime::credentials(&[7u8; 32]).unwrap();
    std::fs::write(secrets.join("twip-runtime.pem"), &creds.server_bundle).unwrap();
    std::fs::write(secrets.join("twip-runtime-ca.pem"), &creds.ca_cert).unwrap();
    let cfg = cfg.replace("/run/secrets/", &format!("{}/", secrets.display()));
    let path = tmp.path().join("haproxy.cfg");
    std::fs::write(&path, &cfg).unwrap();
    let haproxy = which::which("haproxy").expect("haproxy on PATH (scripts/test.sh installs it)");
    let res = Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(res.status.success(), "haproxy -c refused:\n{said}\n{cfg}");
    assert!(!said.contains("WARNING"), "haproxy -c warned:\n{said}");
}

#[test]
fn haproxy_cfg_with_tls_matches_its_snapshot_and_haproxy_accepts_it() {
    let (dir, _, _) = project(MANIFEST);
    let env = load(dir.path(), "demo");
    let out = render(&env, dir.path(), &dir.path().join("build/demo")).unwrap();
    let cfg = out.get("haproxy.cfg").unwrap();
    insta::assert_snapshot!("render_tls__haproxy.cfg", cfg);
    haproxy_check(cfg, dir.path());
}

#[test]
fn haproxy_refuses_the_config_when_a_key_is_missing() {
    // The check above can fail: without the `.pem.key` beside the certificate, haproxy -c
    // refuses the bind line.
    let (dir, _, _) = project(MANIFEST);
    let env = load(dir.path(), "demo");
    let out = render(&env, dir.path(), Path::new("/tmp/x")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("certs/a.crt"), tmp.path().join("tls-0.pem")).unwrap();
    std::fs::copy(dir.path().join("certs/b.pem"), tmp.path().join("tls-1.pem")).unwrap();
    let cfg = out
        .get("haproxy.cfg")
        .unwrap()
        .replace("/run/secrets/", &format!("{}/", tmp.path().display()));
    std::fs::write(tmp.path().join("haproxy.cfg"), cfg).unwrap();
    let res = Command::new(which::which("haproxy").unwrap())
        .arg("-c")
        .arg("-f")
        .arg(tmp.path().join("haproxy.cfg"))
        .output()
        .unwrap();
    assert!(!res.status.success());
}

#[test]
fn redirects_everything_when_no_route_opts_out() {
    let (dir, _, _) = project(&MANIFEST.replace(", https_redirect: false", ""));
    let env = load(dir.path(), "demo");
    let out = render(&env, dir.path(), Path::new("/tmp/x")).unwrap();
    let cfg = out.get("haproxy.cfg").unwrap();
    assert!(
        cfg.contains("    http-request redirect location https://%[req.hdr(host),field(1,:)]:8443%[capture.req.uri] code 301 unless { ssl_fc }\n"),
        "{cfg}"
    );
    assert!(!cfg.contains("set-var(txn.twip_https)"), "{cfg}");
    haproxy_check(cfg, dir.path());
    // On 443 the Host header needs no other port: the scheme alone changes.
    let manifest = MANIFEST
        .replace(", https_redirect: false", "")
        .replace("    port: 8443\n", "");
    let (dir, _, _) = project(&manifest);
    let env = load(dir.path(), "demo");
    let out = render(&env, dir.path(), Path::new("/tmp/x")).unwrap();
    let cfg = out.get("haproxy.cfg").unwrap();
    assert!(
        cfg.contains("    http-request redirect scheme https code 301 unless { ssl_fc }\n"),
        "{cfg}"
    );
    haproxy_check(cfg, dir.path());
}

#[test]
fn keys_are_secrets_of_the_proxy_and_never_in_a_rendered_file() {
    let (dir, key_a, key_b) = project(MANIFEST);
    let out_dir = dir.path().join("build/demo");
    let res = twip()
        .arg("--project-dir")
        .arg(dir.path())
        .args(["render", "demo", "-o"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let key_line = |k: &str| {
        k.lines()
            .find(|l| !l.starts_with("-----"))
            .unwrap()
            .to_string()
    };
    let mut seen = 0;
    for f in std::fs::read_dir(&out_dir).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains(&key_line(&key_a)) && !text.contains(&key_line(&key_b)));
        assert!(!text.contains("PRIVATE KEY"));
        seen += 1;
    }
    assert!(seen >= 2, "{seen} files");
    let stack = std::fs::read_to_string(out_dir.join(STACK_FILE)).unwrap();
    for (key, file, target) in [
        ("_tls_0_cert", "../../certs/a.crt", "tls-0.pem"),
        ("_tls_0_key", "../../certs/a.key", "tls-0.pem.key"),
        ("_tls_1_bundle", "../../certs/b.pem", "tls-1.pem"),
    ] {
        assert!(
            stack.contains(&format!("  \"{key}\":\n    name: \"demo_{key}_"))
                && stack.contains(&format!("    file: \"{file}\"")),
            "{key}:\n{stack}"
        );
        assert!(
            stack.contains(&format!(
                "- source: \"{key}\"\n        target: \"{target}\"\n        mode: 0400"
            )),
            "{key}:\n{stack}"
        );
    }
    assert!(
        stack.contains("      - target: 443\n        published: 8443\n"),
        "{stack}"
    );
    // Docker's own compose parser accepts it (it reads the secret files to check them).
    let docker = which::which("docker").expect("docker on PATH");
    let res = Command::new(docker)
        .args(["stack", "config", "-c", STACK_FILE])
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

#[test]
fn a_new_certificate_renames_its_secret_and_changes_the_proxy_spec() {
    let (dir, _, _) = project(MANIFEST);
    let desired = |dir: &Path| {
        let env = load(dir, "demo");
        let out = render(&env, dir, Path::new("/tmp/x")).unwrap();
        let inputs = twip::render::inputs::gather(&env, dir).unwrap();
        twip::plan::desired::desired(&env, &out, &inputs).unwrap()
    };
    let before = desired(dir.path());
    let (a, ak) = cert(&["a.example.test", "www.a.example.test"]);
    std::fs::write(dir.path().join("certs/a.crt"), &a).unwrap();
    std::fs::write(dir.path().join("certs/a.key"), &ak).unwrap();
    let after = desired(dir.path());
    let name = |d: &twip::plan::desired::Desired, k: &str| {
        d.secrets.iter().find(|s| s.key == k).unwrap().name.clone()
    };
    assert_ne!(name(&before, "_tls_0_cert"), name(&after, "_tls_0_cert"));
    assert_ne!(name(&before, "_tls_0_key"), name(&after, "_tls_0_key"));
    assert_eq!(
        name(&before, "_tls_1_bundle"),
        name(&after, "_tls_1_bundle")
    );
    let proxy = |d: &twip::plan::desired::Desired| d.service("proxy").unwrap().spec_hash.clone();
    assert_ne!(proxy(&before), proxy(&after));
    assert_eq!(
        before.service("web").unwrap().spec_hash,
        after.service("web").unwrap().spec_hash
    );
    let shown = format!("{:?}", after.secrets);
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}
