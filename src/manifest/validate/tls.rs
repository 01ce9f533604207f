//! `proxy.tls`: each certificate given once (`{cert, key}` or `{bundle}`), its files in the
//! project, PEM that parses, a key that belongs to the certificate, DNS names to choose it by
//! (SNI), and dates that hold today. A certificate that expires within
//! [`EXPIRY_WARNING_DAYS`] is a warning, not an error.

use std::io::Read;
use std::path::Path;

use super::{names, Checker};
use crate::manifest::diag::Problem;
use crate::manifest::model::*;
use crate::manifest::yaml::Node;
use crate::tls::{self, CertInfo};

/// TLS 1.2 ciphers `proxy.tls.ciphers` may name: Mozilla's "old" list (which holds
/// "intermediate"), in OpenSSL's names. A name outside it would make HAProxy refuse the config.
const TLS12_CIPHERS: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "DHE-RSA-AES128-SHA256",
    "DHE-RSA-AES256-SHA256",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

/// The TLS 1.3 cipher suites OpenSSL knows.
const TLS13_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

/// Days before expiry from which loading an environment warns.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

pub(super) fn check_tls(m: &Manifest, project_dir: &Path, now: i64, c: &mut Checker) {
    let Some(p) = &m.proxy else { return };
    let Some(t) = &p.tls else {
        for (i, r) in p.routes.iter().enumerate() {
            if r.https_redirect.is_some() {
                let idx = i.to_string();
                c.err(
                    &["proxy", "routes", &idx, "https_redirect"],
                    "only meaningful with proxy.tls (there is no HTTPS to redirect to)",
                );
            }
        }
        return;
    };
    if let Some(a) = &t.acme {
        check_acme(m, project_dir, a, c);
    }
    if t.certificates.is_empty() && t.acme.is_none() {
        c.err(
            &["proxy", "tls", "certificates"],
            "give at least one certificate: `- {cert: certs/site.crt, key: certs/site.key}` or `- {bundle: certs/site.pem}`",
        );
    }
    for (what, v, known) in [
        ("ciphers", &t.ciphers, TLS12_CIPHERS),
        ("ciphersuites", &t.ciphersuites, TLS13_SUITES),
    ] {
        let Some(v) = v else { continue };
        if names::check_line(v).is_err() {
            continue; // reported by the character check
        }
        if let Some(bad) = v.split(':').find(|n| !known.contains(n)) {
            c.err(
                &["proxy", "tls", what],
                format!(
                    "`{bad}` is not a cipher twip knows; give names joined with `:` from: {}",
                    known.join(", ")
                ),
            );
        }
    }
    if t.hsts.as_ref().is_some_and(|h| h.max_age > 1 << 31) {
        c.err(
            &["proxy", "tls", "hsts", "max_age"],
            "at most 2147483648 seconds",
        );
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, cf) in t.certificates.iter().enumerate() {
        let idx = i.to_string();
        let at = ["proxy", "tls", "certificates", idx.as_str()];
        let Some(info) = check_one(m, project_dir, cf, &at, now, c) else {
            continue;
        };
        if info.names.is_empty() {
            c.err(
                &at,
                "the certificate has no DNS name in its subject alternative names: SNI cannot choose it",
            );
        }
        for n in &info.names {
            if let Some((_, first)) = seen.iter().find(|(s, _)| s == n) {
                c.err(
                    &at,
                    format!("`{n}` is already served by certificates[{first}]; give each name one certificate"),
                );
            } else {
                seen.push((n.clone(), i));
            }
        }
    }
}

/// `proxy.tls.acme`: an email, a directory (`production`, `staging` or an https URL), one or
/// more distinct DNS names (HTTP-01 cannot prove a wildcard), a readable CA bundle.
fn check_acme(m: &Manifest, project_dir: &Path, a: &Acme, c: &mut Checker) {
    let at = |k: &'static str| ["proxy", "tls", "acme", k];
    let email_ok = a.email.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty()
            && !user
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control() || "<>,;:\"".contains(ch))
            && names::dns_name(host).is_ok()
            && host.contains('.')
    });
    if !email_ok {
        c.err(&at("email"), "not an email address (`ops@example.com`)");
    }
    if let Some(d) = &a.directory {
        let url_ok = d.strip_prefix("https://").is_some_and(|rest| {
            let host = rest.split('/').next().unwrap_or("");
            !host.is_empty()
                && names::host_port(host).is_ok()
                && names::check_line(rest).is_ok()
                && !rest.contains(char::is_whitespace)
        });
        if d != "production" && d != "staging" && !url_ok {
            c.err(
                &at("directory"),
                "give `production`, `staging` (Let's Encrypt's) or an `https://` URL of an ACME directory",
            );
        }
    }
    if a.domains.is_empty() {
        c.err(&at("domains"), "give at least one DNS name");
    }
    for (i, d) in a.domains.iter().enumerate() {
        let idx = i.to_string();
        let at = ["proxy", "tls", "acme", "domains", idx.as_str()];
        if d.starts_with("*.") {
            c.err(
                &at,
                "a wildcard name cannot be proven with HTTP-01; name each host",
            );
        } else if let Err(e) = names::dns_name(d) {
            c.err(&at, e);
        } else if d.parse::<std::net::IpAddr>().is_ok() || !d.trim_end_matches('.').contains('.') {
            c.err(&at, "give a fully qualified DNS name (`www.example.com`)");
        } else if a.domains[..i].iter().any(|x| x.eq_ignore_ascii_case(d)) {
            c.err(&at, format!("`{d}` is given twice"));
        }
    }
    if let Some(f) = &a.ca_bundle {
        match read(m, project_dir, f) {
            Err(e) => c.err(&at("ca_bundle"), e),
            Ok(bytes) => {
                if tls::certificates(&bytes).is_err() {
                    c.err(&at("ca_bundle"), format!("`{f}` holds no PEM certificate"));
                }
            }
        }
    }
}

/// Checks one certificate's files and content; its information when it can be read.
fn check_one(
    m: &Manifest,
    project_dir: &Path,
    cf: &CertificateFiles,
    at: &[&str],
    now: i64,
    c: &mut Checker,
) -> Option<CertInfo> {
    let (cert_key, key_key) = match (&cf.cert, &cf.key, &cf.bundle) {
        (None, None, Some(_)) => ("bundle", "bundle"),
        (Some(_), Some(_), None) => ("cert", "key"),
        (_, _, Some(_)) => {
            c.err(at, "give `bundle` alone, or `cert` and `key`, not both");
            return None;
        }
        (Some(_), None, None) => {
            c.err(at, "`cert` needs its `key` (or give both in one `bundle`)");
            return None;
        }
        (None, Some(_), None) => {
            c.err(at, "`key` needs its `cert` (or give both in one `bundle`)");
            return None;
        }
        (None, None, None) => {
            c.err(at, "give `cert` and `key`, or `bundle`");
            return None;
        }
    };
    let mut texts: Vec<(&str, Vec<u8>)> = Vec::new();
    for (k, f) in cf.files() {
        let path: Vec<&str> = at.iter().copied().chain([k]).collect();
        match read(m, project_dir, f) {
            Ok(bytes) => texts.push((k, bytes)),
            Err(e) => c.err(&path, e),
        }
    }
    let text = |k: &str| {
        texts
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, b)| b.as_slice())
    };
    let (cert_pem, key_pem) = (text(cert_key)?, text(key_key)?);
    let cert_at: Vec<&str> = at.iter().copied().chain([cert_key]).collect();
    let key_at: Vec<&str> = at.iter().copied().chain([key_key]).collect();
    let chain = match tls::certificates(cert_pem) {
        Ok(c) => c,
        Err(e) => {
            c.err(&cert_at, format!("the file {e}"));
            return None;
        }
    };
    let info = match tls::inspect(&chain) {
        Ok(i) => i,
        Err(e) => {
            c.err(&cert_at, format!("the file is {e}"));
            return None;
        }
    };
    match tls::private_key(key_pem) {
        Err(e) => c.err(&key_at, format!("the file {e}")),
        Ok(key) => {
            if let Err(e) = tls::key_matches(&chain, key) {
                c.err(&key_at, e);
            }
        }
    }
    if info.not_after < now {
        c.err(
            &cert_at,
            format!(
                "the certificate expired on {} (renew it and replace the file)",
                tls::date(info.not_after)
            ),
        );
    } else if info.not_before > now {
        c.err(
            &cert_at,
            format!(
                "the certificate is not valid before {}",
                tls::date(info.not_before)
            ),
        );
    }
    Some(info)
}

/// A certificate or key file's bytes: a valid path, in the project, a file, at most
/// [`tls::MAX_PEM_BYTES`].
fn read(m: &Manifest, project_dir: &Path, f: &str) -> Result<Vec<u8>, String> {
    names::file_path(f).map_err(|e| format!("not a valid path: {e}"))?;
    super::stays_in_project(project_dir, project_dir, f, &m.allow_paths_outside_project)
        .map_err(|e| format!("the path {e}"))?;
    let path = project_dir.join(f);
    if !path.is_file() {
        return Err(format!("no file `{f}` (relative to the project directory)"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|file| file.take(tls::MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read `{f}`: {e}"))?;
    if bytes.len() as u64 > tls::MAX_PEM_BYTES {
        return Err(format!("`{f}` is larger than {} bytes", tls::MAX_PEM_BYTES));
    }
    Ok(bytes)
}

/// Warnings about a valid manifest: certificates that expire within
/// [`EXPIRY_WARNING_DAYS`] days of `now`.
pub fn warnings(m: &Manifest, root: &Node, project_dir: &Path, now: i64) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(t) = m.proxy.as_ref().and_then(|p| p.tls.as_ref()) else {
        return out;
    };
    for (i, cf) in t.certificates.iter().enumerate() {
        let file = cf.bundle.as_ref().or(cf.cert.as_ref());
        let Some(info) = file
            .and_then(|f| read(m, project_dir, f).ok())
            .and_then(|b| tls::certificates(&b).ok())
            .and_then(|chain| tls::inspect(&chain).ok())
        else {
            continue;
        };
        let days = info.days_left(now);
        if (0..EXPIRY_WARNING_DAYS).contains(&days) {
            let idx = i.to_string();
            let key = if cf.bundle.is_some() {
                "bundle"
            } else {
                "cert"
            };
            let path: Vec<String> = ["proxy", "tls", "certificates", &idx, key]
                .iter()
                .map(|s| s.to_string())
                .collect();
            out.push(Problem::at(
                root.span_of(&path),
                &crate::manifest::diag::join_path(&path),
                format!(
                    "the certificate expires in {days} days ({}): replace the files and run `twip up`",
                    tls::date(info.not_after)
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::tls::testcert;

    const HEAD: &str = "services:\n  web: {image: nginx:1.25}\nproxy:\n  image: haproxy:2.6\n  routes:\n    - {path: /, service: web, port: 80}\n  tls:\n    certificates:\n";

    /// Loads environment `demo` (HEAD + `tail`) with `files`: the problems as lines.
    fn problems(tail: &str, files: &[(&str, &[u8])]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        std::fs::write(
            dir.path().join("environments/demo.yaml"),
            format!("{HEAD}{tail}"),
        )
        .unwrap();
        for (p, b) in files {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        }
        let project = crate::project::Project::at(dir.path().to_path_buf()).unwrap();
        let _ = std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.crt"));
        match project
            .loader
            .load_file("demo", &dir.path().join("environments/demo.yaml"))
        {
            Ok(env) => env
                .warnings
                .iter()
                .map(|w| format!("warning: {w}"))
                .collect(),
            Err(d) => d.lines(),
        }
    }

    #[test]
    fn a_matching_pair_and_a_bundle_are_valid() {
        let (c, k) = testcert::valid_for(&["a.test"], 90);
        let (bc, bk) = testcert::valid_for(&["b.test"], 90);
        let bundle = format!("{bc}{bk}");
        let p = problems(
            "      - {cert: a.crt, key: a.key}\n      - {bundle: b.pem}\n",
            &[
                ("a.crt", c.as_bytes()),
                ("a.key", k.as_bytes()),
                ("b.pem", bundle.as_bytes()),
            ],
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn each_problem_is_reported_at_its_key_with_file_and_line() {
        let (c, _) = testcert::valid_for(&["a.test"], 90);
        let (_, other) = testcert::valid_for(&["a.test"], 90);
        let (old, old_key) = testcert::make(&["old.test"], 0, 86_400);
        let (dup, dup_key) = testcert::valid_for(&["a.test"], 90);
        let p = problems(
            "      - {cert: a.crt, key: other.key}\n\
             \x20     - {cert: a.crt}\n\
             \x20     - {bundle: b.pem, key: a.key}\n\
             \x20     - {cert: missing.crt, key: other.key}\n\
             \x20     - {cert: old.crt, key: old.key}\n\
             \x20     - {cert: not-pem.crt, key: other.key}\n\
             \x20     - {cert: link.crt, key: other.key}\n\
             \x20     - {cert: dup.crt, key: dup.key}\n",
            &[
                ("a.crt", c.as_bytes()),
                ("other.key", other.as_bytes()),
                ("old.crt", old.as_bytes()),
                ("old.key", old_key.as_bytes()),
                ("not-pem.crt", b"hello"),
                ("dup.crt", dup.as_bytes()),
                ("dup.key", dup_key.as_bytes()),
            ],
        );
        let want = [
            "demo.yaml:9:28: proxy.tls.certificates[0].key: the key is not the certificate's key",
            "demo.yaml:10:9: proxy.tls.certificates[1]: `cert` needs its `key`",
            "demo.yaml:11:9: proxy.tls.certificates[2]: give `bundle` alone",
            "demo.yaml:12:16: proxy.tls.certificates[3].cert: no file `missing.crt`",
            "demo.yaml:13:16: proxy.tls.certificates[4].cert: the certificate expired on 1970-01-02",
            "demo.yaml:14:16: proxy.tls.certificates[5].cert: the file holds no PEM certificate",
            "demo.yaml:15:16: proxy.tls.certificates[6].cert: the path leaves the project directory",
            "demo.yaml:16:9: proxy.tls.certificates[7]: `a.test` is already served by certificates[0]",
        ];
        for w in want {
            assert!(
                p.iter().any(|l| l.contains(w)),
                "no `{w}` in:\n{}",
                p.join("\n")
            );
        }
        assert_eq!(p.len(), want.len(), "{}", p.join("\n"));
    }

    #[test]
    fn no_certificate_and_a_redirect_without_tls_are_refused() {
        let p = problems("      []\n", &[]);
        assert!(
            p[0].contains("proxy.tls.certificates: give at least one certificate"),
            "{p:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        std::fs::write(
            dir.path().join("environments/demo.yaml"),
            "services:\n  web: {image: nginx:1.25}\nproxy:\n  image: haproxy:2.6\n  routes:\n    - {path: /, service: web, https_redirect: false}\n",
        )
        .unwrap();
        let project = crate::project::Project::at(dir.path().to_path_buf()).unwrap();
        let e = project.load("demo").unwrap_err().to_string();
        assert!(
            e.contains("proxy.routes[0].https_redirect: only meaningful with proxy.tls"),
            "{e}"
        );
    }

    #[test]
    fn a_certificate_close_to_expiry_is_a_warning_not_an_error() {
        let now = crate::tls::now();
        let (c, k) = testcert::make(&["soon.test"], now - 86_400, now + 5 * 86_400 + 43_200);
        let p = problems(
            "      - {cert: a.crt, key: a.key}\n",
            &[("a.crt", c.as_bytes()), ("a.key", k.as_bytes())],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("warning: ")
                && p[0]
                    .contains("proxy.tls.certificates[0].cert: the certificate expires in 5 days"),
            "{p:?}"
        );
    }
}
