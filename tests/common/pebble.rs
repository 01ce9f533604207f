//! Let's Encrypt's test ACME server, pebble (Debian's `pebble` package), started for one test
//! binary on free ports with its own HTTPS certificate (signed by a CA made here, which the
//! client is told to trust), and pebble-challtestsrv as its DNS server, answering every name
//! with 127.0.0.1 so that HTTP-01 validation reaches the proxy published on this host.
//!
//! pebble listens on the address of this host on the swarm's `docker_gwbridge` network (not
//! on 127.0.0.1), so that a container (the in-cluster agent) reaches the directory as well as
//! this process does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running pebble; stopped (both processes killed by their ids) when dropped.
pub struct Pebble {
    pebble: Child,
    dns: Child,
    dir: tempfile::TempDir,
    /// The directory URL (`https://GATEWAY:PORT/dir`, see [`gateway`]).
    pub directory: String,
    /// The management API (`https://GATEWAY:PORT`): its roots are what issued certificates
    /// chain to.
    pub management: String,
    /// The CA that pebble's own HTTPS certificate is signed by (PEM): the ACME client trusts it.
    pub ca_pem: String,
    /// pebble-challtestsrv's management API (`http://127.0.0.1:PORT`): what its DNS answers.
    pub dns_management: String,
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// This host's address on the swarm's `docker_gwbridge` network: reachable from this process
/// and from every container of the single-node swarm.
pub fn gateway() -> String {
    let out = Command::new("docker")
        .args([
            "network",
            "inspect",
            "docker_gwbridge",
            "--format",
            "{{(index .IPAM.Config 0).Gateway}}",
        ])
        .output()
        .expect("docker");
    let gw = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && gw.parse::<std::net::IpAddr>().is_ok(),
        "no docker_gwbridge gateway (is this engine a swarm manager?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    gw
}

/// Whether pebble is installed (scripts/engine-up.sh installs it).
pub fn installed() -> bool {
    Command::new("pebble")
        .arg("-h")
        .output()
        .is_ok_and(|o| !o.stderr.is_empty() || !o.stdout.is_empty())
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on HTTP_PORT (where the proxy listens).
    pub fn start(http_port: u16) -> Pebble {
        assert!(
            installed(),
            "pebble is not installed: run scripts/engine-up.sh (or apt-get install -y pebble)"
        );
        let dir = tempfile::tempdir().unwrap();
        // pebble's HTTPS certificate, from a CA made here.
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "twip test pebble CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = p.self_signed(&ca_key).unwrap();
        let gw = gateway();
        let mut lp = rcgen::CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            gw.clone(),
        ])
        .unwrap();
        lp.distinguished_name
            .push(rcgen::DnType::CommonName, "pebble");
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = lp.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();

        let (listen, mgmt, dns, dns_mgmt) = (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("{gw}:{listen}"),
            "managementListenAddress": format!("{gw}:{mgmt}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let dns_child = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .arg("-dns01")
            .arg(format!("127.0.0.1:{dns}"))
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .arg("-management")
            .arg(format!("127.0.0.1:{dns_mgmt}"))
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .stdin(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns}"))
            // No random wait before validating; every order validated anew; nonces accepted.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .stdin(Stdio::null())
            .spawn()
            .expect("pebble");
        let pb = Pebble {
            pebble,
            dns: dns_child,
            directory: format!("https://{gw}:{listen}/dir"),
            management: format!("https://{gw}:{mgmt}"),
            ca_pem: ca.pem(),
            dns_management: format!("http://127.0.0.1:{dns_mgmt}"),
            dir,
        };
        std::fs::write(pb.dir.path().join("ca.pem"), &pb.ca_pem).unwrap();
        let up = super::eventually(30, || {
            pb.curl(&[&pb.directory])
                .filter(|b| b.contains("newOrder"))
                .map(|_| ())
        });
        assert!(up.is_some(), "pebble did not start: {}", pb.logs());
        pb
    }

    /// `curl` against pebble (trusting its HTTPS CA): the body on success.
    pub fn curl(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sSf", "--max-time", "10", "--cacert"])
            .arg(self.dir.path().join("ca.pem"))
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// The root that pebble's issued certificates chain to (PEM), written to a file.
    pub fn root_file(&self) -> PathBuf {
        let pem = self
            .curl(&[&format!("{}/roots/0", self.management)])
            .expect("pebble's root");
        let path = self.dir.path().join("root.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// From now on pebble's DNS answers SERVFAIL for HOST: pebble cannot validate that name.
    pub fn servfail(&self, host: &str) {
        let out = Command::new("curl")
            .args(["-sSf", "--max-time", "10", "-X", "POST", "-d"])
            .arg(serde_json::json!({ "host": host }).to_string())
            .arg(format!("{}/set-servfail", self.dns_management))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "set-servfail: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// pebble's log, for a failure message.
    pub fn logs(&self) -> String {
        ["pebble.log", "pebble.err"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.pebble.kill();
        let _ = self.dns.kill();
        let _ = self.pebble.wait();
        let _ = self.dns.wait();
    }
}

/// The serial (lower-case hex) of the certificate served for NAME on 127.0.0.1:PORT, once it
/// verifies against ROOT for NAME (curl, the name resolved to 127.0.0.1); `None` until then.
pub fn served_serial(root: &Path, name: &str, port: u16) -> Option<String> {
    let ok = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "--cacert"])
        .arg(root)
        .arg("--resolve")
        .arg(format!("{name}:{port}:127.0.0.1"))
        .arg(format!("https://{name}:{port}/"))
        .output()
        .ok()?;
    if !ok.status.success() {
        return None;
    }
    let s = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -serial"
        ))
        .output()
        .ok()?;
    String::from_utf8_lossy(&s.stdout)
        .trim()
        .strip_prefix("serial=")
        .map(|x| x.to_ascii_lowercase())
}
