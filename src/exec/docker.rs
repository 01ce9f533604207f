//! Plain `docker` CLI commands, as pure argv builders, and the reading of what they print.

use super::Cmd;

/// `docker push -- REF`: through the CLI, so the user's credential helpers are used.
pub fn push(reference: &str) -> anyhow::Result<Cmd> {
    let r = super::checked("docker push", "the image reference", reference)?;
    Ok(Cmd::new("docker").args(["push", "--", r]))
}

/// `docker tag -- SRC DST`.
pub fn tag(src: &str, dst: &str) -> anyhow::Result<Cmd> {
    let s = super::checked("docker tag", "the image reference", src)?;
    let d = super::checked("docker tag", "the image reference", dst)?;
    Ok(Cmd::new("docker").args(["tag", "--", s, d]))
}

/// `docker image inspect --format '{{.Id}}' -- REF`: fails when the engine does not have it.
pub fn image_id(reference: &str) -> anyhow::Result<Cmd> {
    let r = super::checked("docker image inspect", "the image reference", reference)?;
    Ok(Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", "--", r]))
}

/// `docker info --format '{{json .DriverStatus}}'`: tells the containerd image store apart.
pub fn driver_status() -> Cmd {
    Cmd::new("docker").args(["info", "--format", "{{json .DriverStatus}}"])
}

/// Whether `docker info`'s DriverStatus names the containerd snapshotter (the image store
/// that holds multi-platform images).
pub fn is_containerd_store(driver_status_json: &str) -> bool {
    driver_status_json.contains("io.containerd.snapshotter")
}

/// The registry host of a reference (`localhost:5000/twip/web:1` → `localhost:5000`), if it
/// names one; `twip/web:1` names none (Docker Hub).
pub fn registry_host(reference: &str) -> Option<&str> {
    let (first, rest) = reference.split_once('/')?;
    (!rest.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost"))
        .then_some(first)
}

/// What went wrong when a registry refused a push or a pull, from the command's output:
/// a sentence that says what to do. `None` when the output is not recognised.
pub fn registry_hint(output: &str, host: &str) -> Option<String> {
    let o = output.to_ascii_lowercase();
    let any = |pats: &[&str]| pats.iter().any(|p| o.contains(p));
    if any(&[
        "401 unauthorized",
        "no basic auth credentials",
        "authentication required",
        "unauthorized:",
        "denied: requested access",
        "authorization failed",
        "insufficient_scope",
    ]) {
        return Some(format!(
            "the registry {host} refused: authentication required. Run `docker login {host}`; \
             twip uses the credentials of your Docker config and its credential helpers"
        ));
    }
    if o.contains("server gave http response to https client") {
        return Some(format!(
            "the registry {host} speaks plain HTTP and the engine expects HTTPS: serve it with TLS, \
             or add \"insecure-registries\": [\"{host}\"] to /etc/docker/daemon.json and restart dockerd"
        ));
    }
    if any(&[
        "x509:",
        "certificate signed by unknown authority",
        "tls: failed to verify",
        "certificate is not valid",
    ]) {
        return Some(format!(
            "the registry {host}'s TLS certificate is not trusted: put its CA certificate in \
             /etc/docker/certs.d/{host}/ca.crt (on the machine of the engine that pushes)"
        ));
    }
    if any(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "no route to host",
        "network is unreachable",
    ]) {
        return Some(format!(
            "cannot reach the registry {host}: is it running, and is registry.url right?"
        ));
    }
    None
}

/// The lines of a build's output that name the registry `host`: a build's own steps may print
/// "connection refused" or "500" about other servers, which say nothing about the push.
pub fn lines_about(output: &str, host: &str) -> String {
    output
        .lines()
        .filter(|l| l.contains(host))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a push failed on a registry's transient server error (a 5xx; distribution's
/// filesystem storage answers 500 "invalid checksum digest format" when concurrent pushes of
/// several tags race on a tag link), which a second attempt gets past.
pub fn transient_registry_error(output: &str) -> bool {
    let o = output.to_ascii_lowercase();
    [
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "invalid checksum digest format",
    ]
    .iter()
    .any(|p| o.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(push("r/x:1").unwrap().to_string(), "docker push -- r/x:1");
        assert_eq!(
            tag("a:1", "b:2").unwrap().to_string(),
            "docker tag -- a:1 b:2"
        );
        assert_eq!(
            image_id("twip/web:latest").unwrap().to_string(),
            "docker image inspect --format '{{.Id}}' -- twip/web:latest"
        );
        assert_eq!(
            driver_status().to_string(),
            "docker info --format '{{json .DriverStatus}}'"
        );
    }

    #[test]
    fn registry_hosts() {
        assert_eq!(
            registry_host("localhost:5000/twip/web:1"),
            Some("localhost:5000")
        );
        assert_eq!(registry_host("127.0.0.1:5001/a/b"), Some("127.0.0.1:5001"));
        assert_eq!(
            registry_host("registry.example.com/x"),
            Some("registry.example.com")
        );
        assert_eq!(registry_host("localhost/x"), Some("localhost"));
        assert_eq!(registry_host("twip/web:1"), None);
        assert_eq!(registry_host("web"), None);
    }

    #[test]
    fn registry_failures_are_recognised() {
        let h = "127.0.0.1:5001";
        let auth = registry_hint(
            "ERROR: failed to solve: failed to push 127.0.0.1:5001/t/a:1: unexpected status from HEAD request to http://127.0.0.1:5001/v2/t/a/blobs/sha256:e4: 401 Unauthorized",
            h,
        )
        .unwrap();
        assert!(
            auth.contains("run `docker login 127.0.0.1:5001`")
                || auth.contains("Run `docker login 127.0.0.1:5001`")
        );
        assert!(registry_hint(
            "push access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
            h
        )
        .unwrap()
        .contains("docker login"));
        assert!(
            registry_hint("http: server gave HTTP response to HTTPS client", h)
                .unwrap()
                .contains("insecure-registries")
        );
        assert!(
            registry_hint("x509: certificate signed by unknown authority", h)
                .unwrap()
                .contains("/etc/docker/certs.d/127.0.0.1:5001/ca.crt")
        );
        assert!(
            registry_hint("dial tcp 127.0.0.2:5443: connect: connection refused", h)
                .unwrap()
                .starts_with("cannot reach the registry")
        );
        assert_eq!(registry_hint("#5 DONE 0.1s", h), None);
    }

    #[test]
    fn only_lines_about_the_registry_count_for_a_build() {
        let out = "#5 0.3 E: Failed to fetch http://deb.debian.org/x  Connection refused\n\
                   ERROR: failed to push 127.0.0.1:5001/t/a:1: 401 Unauthorized";
        assert_eq!(
            lines_about(out, "127.0.0.1:5001"),
            "ERROR: failed to push 127.0.0.1:5001/t/a:1: 401 Unauthorized"
        );
        let apt_only = "#5 0.3 E: Failed to fetch http://deb.debian.org/x  Connection refused";
        assert_eq!(
            registry_hint(&lines_about(apt_only, "127.0.0.1:5001"), "127.0.0.1:5001"),
            None
        );
    }

    #[test]
    fn transient_registry_errors() {
        assert!(transient_registry_error(
            "ERROR: unexpected status from HEAD request to http://127.0.0.1:5000/v2/t/web/manifests/1.0.0: 500 Internal Server Error"
        ));
        assert!(!transient_registry_error("401 Unauthorized"));
    }

    #[test]
    fn containerd_store_is_recognised() {
        assert!(is_containerd_store(
            r#"[["driver-type","io.containerd.snapshotter.v1"]]"#
        ));
        assert!(!is_containerd_store(
            r#"[["Backing Filesystem","extfs"],["Supports d_type","true"]]"#
        ));
    }

    use crate::exec::tests::{assert_no_injected_option, assert_refused, HOSTILE};

    #[test]
    fn references_that_read_as_options_are_refused() {
        for v in HOSTILE {
            assert_refused(push(v), "the image reference");
            assert_refused(tag(v, "b:1"), "the image reference");
            assert_refused(tag("a:1", v), "the image reference");
            assert_refused(image_id(v), "the image reference");
        }
        let own = ["--", "--format"];
        assert_no_injected_option(&push("r/x:1").unwrap(), &own, "r/x:1");
        assert_no_injected_option(&tag("a:1", "b:1").unwrap(), &own, "b:1");
        assert_no_injected_option(&image_id("r/x:1").unwrap(), &own, "r/x:1");
    }
}
