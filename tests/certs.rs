//! `twip certs ENV [--json]`: the proxy's certificates from files, read from the project
//! (names, issuer, validity, days left, source, how to renew); no engine.

mod common;

use common::twip;

fn cert(names: &[&str], days: u64) -> (String, String) {
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let now = std::time::SystemTime::now();
    p.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    p.not_after = (now + std::time::Duration::from_secs(days * 86_400 + 3_600)).into();
    let key = rcgen::KeyPair::generate().unwrap();
    let c = p.self_signed(&key).unwrap();
    (c.pem(), key.serialize_pem())
}

fn project(tls: bool) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("environments")).unwrap();
    std::fs::create_dir_all(p.join("certs")).unwrap();
    let (a, ak) = cert(&["a.example.test", "www.a.example.test"], 60);
    let (b, bk) = cert(&["b.example.test"], 10);
    std::fs::write(p.join("certs/a.crt"), &a).unwrap();
    std::fs::write(p.join("certs/a.key"), &ak).unwrap();
    std::fs::write(p.join("certs/b.pem"), format!("{b}{bk}")).unwrap();
    let tail = if tls {
        "  tls:\n    certificates:\n      - {cert: certs/a.crt, key: certs/a.key}\n      - {bundle: certs/b.pem}\n"
    } else {
        ""
    };
    std::fs::write(
        p.join("environments/demo.yaml"),
        format!("services:\n  web: {{image: nginx:1.25}}\nproxy:\n  image: haproxy:2.6\n  routes:\n    - {{path: /, service: web, port: 80}}\n{tail}"),
    )
    .unwrap();
    (dir, ak)
}

#[test]
fn lists_each_certificate_with_names_issuer_expiry_and_source() {
    let (dir, key) = project(true);
    let out = twip()
        .arg("--project-dir")
        .arg(dir.path())
        .args(["certs", "demo", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains(key.lines().nth(1).unwrap()) && !text.contains("PRIVATE KEY"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["environment"], "demo");
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{v}");
    assert_eq!(
        certs[0]["names"],
        serde_json::json!(["a.example.test", "www.a.example.test"])
    );
    assert_eq!(certs[0]["days_left"], 60, "{v}");
    assert_eq!(
        certs[0]["source"],
        serde_json::json!({"kind": "file", "cert": "certs/a.crt", "key": "certs/a.key"})
    );
    assert!(
        certs[0]["issuer"]
            .as_str()
            .unwrap()
            .contains("CN=a.example.test"),
        "{v}"
    );
    assert!(certs[0]["renewal"]
        .as_str()
        .unwrap()
        .contains("replacing the files and running `twip up`"));
    assert_eq!(certs[1]["names"], serde_json::json!(["b.example.test"]));
    assert_eq!(certs[1]["days_left"], 10, "{v}");
    assert_eq!(
        certs[1]["source"],
        serde_json::json!({"kind": "file", "bundle": "certs/b.pem"})
    );
    // The certificate that expires within 14 days is a warning on stderr.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("proxy.tls.certificates[1].bundle: the certificate expires in 10 days"),
        "{err}"
    );

    let out = twip()
        .arg("--project-dir")
        .arg(dir.path())
        .args(["certs", "demo"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[0] a.example.test, www.a.example.test"),
        "{text}"
    );
    assert!(
        text.contains("(60 days left)") && text.contains("(10 days left)"),
        "{text}"
    );
    assert!(
        text.contains("files certs/a.crt + certs/a.key") && text.contains("file certs/b.pem"),
        "{text}"
    );
}

#[test]
fn an_environment_without_tls_has_no_certificates() {
    let (dir, _) = project(false);
    let out = twip()
        .arg("--project-dir")
        .arg(dir.path())
        .args(["certs", "demo", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["certificates"], serde_json::json!([]));
    let out = twip()
        .arg("--project-dir")
        .arg(dir.path())
        .args(["certs", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
