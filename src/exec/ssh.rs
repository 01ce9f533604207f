//! SSH through the system `ssh` client (found on PATH): argv builders (pure) for running a
//! script on a host and for forwarding its Docker socket, and the tunnel that keeps such a
//! forward open while twip talks to the host's engine through the API.
//!
//! Host keys: unknown keys are refused (`StrictHostKeyChecking=yes`, the user's known_hosts)
//! unless the manifest says `ssh.strict_host_key_checking: false` for the node; then the key
//! is accepted and not recorded (`UserKnownHostsFile=/dev/null`). `BatchMode=yes`: ssh never
//! asks for a password or a passphrase.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Cmd;
use crate::manifest::model::NodeSpec;

/// How to reach one host over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    pub user: String,
    pub host: String,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    pub strict_host_key_checking: bool,
}

impl SshHost {
    /// From a manifest node: its `ssh` settings (user `root` by default) and its address.
    /// A relative identity file is relative to the project directory; `~/` is the home.
    pub fn from_node(n: &NodeSpec, project_dir: &Path) -> SshHost {
        let ssh = n.ssh.as_ref();
        let identity_file = ssh.and_then(|s| s.identity_file.as_ref()).map(|f| {
            if let Some(rest) = f.strip_prefix("~/") {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(rest)
            } else {
                project_dir.join(f)
            }
        });
        SshHost {
            user: ssh
                .and_then(|s| s.user.clone())
                .unwrap_or_else(|| "root".into()),
            host: n.address.clone(),
            port: ssh.and_then(|s| s.port),
            identity_file,
            strict_host_key_checking: ssh.is_none_or(|s| s.strict_host_key_checking),
        }
    }

    /// `user@host`, for messages.
    pub fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    /// `user@host` for ssh's argv, after its user and host were checked ([`check_user`],
    /// [`check_host`]).
    fn checked_destination(&self) -> anyhow::Result<String> {
        check_user(&self.user)?;
        check_host(&self.host)?;
        Ok(self.destination())
    }

    /// The options every connection uses.
    fn options(&self) -> anyhow::Result<Vec<String>> {
        let mut a: Vec<String> = vec!["-o".into(), "BatchMode=yes".into()];
        if self.strict_host_key_checking {
            a.extend(["-o".into(), "StrictHostKeyChecking=yes".into()]);
        } else {
            a.extend([
                "-o".into(),
                "StrictHostKeyChecking=no".into(),
                "-o".into(),
                "UserKnownHostsFile=/dev/null".into(),
                "-o".into(),
                "LogLevel=ERROR".into(),
            ]);
        }
        a.extend(["-o".into(), "ConnectTimeout=15".into()]);
        if let Some(p) = self.port {
            a.extend(["-p".into(), p.to_string()]);
        }
        if let Some(i) = &self.identity_file {
            let i = i.display().to_string();
            super::checked("ssh", "the identity file (ssh.identity_file)", &i)?;
            a.extend(["-i".into(), i, "-o".into(), "IdentitiesOnly=yes".into()]);
        }
        Ok(a)
    }

    /// Runs a script given on stdin with `sh -s` on the host (through `sudo -n` for a user
    /// other than root): `ssh OPTIONS -- USER@HOST [sudo -n] sh -s`. The remote command is
    /// fixed text: nothing the user typed is in it. The `--` matters: ssh reads options after
    /// the destination too, unless `--` ended them.
    pub fn script(&self, ssh: &str) -> anyhow::Result<Cmd> {
        let mut c = Cmd::new(ssh)
            .args(self.options()?)
            .arg("--")
            .arg(self.checked_destination()?);
        if self.user != "root" {
            c = c.args(["sudo", "-n"]);
        }
        Ok(c.args(["sh", "-s"]))
    }

    /// Forwards the host's Docker socket to a local socket, without a remote command:
    /// `ssh OPTIONS -N ... -L LOCAL:REMOTE -- USER@HOST`.
    pub fn forward_socket(&self, ssh: &str, local: &Path, remote: &str) -> anyhow::Result<Cmd> {
        let forward = format!("{}:{remote}", local.display());
        super::checked("ssh", "the socket forward", &forward)?;
        Ok(Cmd::new(ssh)
            .args(self.options()?)
            .args([
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "StreamLocalBindUnlink=yes",
                "-o",
                "ServerAliveInterval=15",
                "-L",
            ])
            .arg(forward)
            .arg("--")
            .arg(self.checked_destination()?))
    }
}

/// Whether `c` may be in an SSH user or host name here. Besides options (a leading `-`), an
/// ssh_config may put `%u` and `%h` into a `ProxyCommand` or `Match exec` run by a shell, so
/// shell metacharacters, white space and `@` are refused as well.
fn ssh_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Refuses (exit 2) an SSH user name that ssh could read as an option or that a shell could
/// read as more than a name: letters, digits, `.`, `_`, `-`, not first `-`.
pub fn check_user(user: &str) -> anyhow::Result<&str> {
    super::checked("ssh", "the ssh user (nodes[].ssh.user)", user)?;
    if !user.chars().all(ssh_name_char) {
        return Err(crate::exit::invalid(format!(
            "refusing to run ssh: the ssh user (nodes[].ssh.user) {user:?} may hold only letters, \
             digits, `.`, `_` and `-`"
        )));
    }
    Ok(user)
}

/// Refuses (exit 2) a host (name, IPv4 or IPv6 address) that ssh could read as an option or
/// that a shell could read as more than a name: letters, digits, `.`, `_`, `-`, `:` and `%`
/// (an IPv6 zone), not first `-`.
pub fn check_host(host: &str) -> anyhow::Result<&str> {
    super::checked("ssh", "the node address (nodes[].address)", host)?;
    if !host
        .chars()
        .all(|c| ssh_name_char(c) || c == ':' || c == '%')
    {
        return Err(crate::exit::invalid(format!(
            "refusing to run ssh: the node address (nodes[].address) {host:?} may hold only \
             letters, digits, `.`, `_`, `-`, `:` and `%`"
        )));
    }
    Ok(host)
}

/// Checks an `ssh://[USER@]HOST[:PORT]` engine URL before the API client hands its parts to
/// the system ssh client (which it runs without `--`): the user and the host must pass
/// [`check_user`] and [`check_host`].
pub fn check_engine_url(url: &str) -> anyhow::Result<()> {
    let rest = url.strip_prefix("ssh://").unwrap_or(url);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (user, host_port) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if let Some(u) = user {
        check_user(u)?;
    }
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => host_port,
    };
    check_host(host)?;
    Ok(())
}

/// The system ssh client, or an error that says how to get one.
pub fn ssh_program() -> anyhow::Result<String> {
    which::which("ssh")
        .map(|p| p.display().to_string())
        .map_err(|_| {
            anyhow::anyhow!(
                "`ssh` is not on PATH: install the OpenSSH client (apt-get install openssh-client)"
            )
        })
}

/// A sentence for ssh's own failures, when its output says what happened.
pub fn hint(host: &SshHost, output: &str) -> Option<String> {
    if output.contains("Host key verification failed") {
        Some(format!(
            "the SSH host key of {} is not known: check its fingerprint and add it to ~/.ssh/known_hosts \
             (ssh-keyscan -H {} >> ~/.ssh/known_hosts), or, for a lab host only, set \
             `ssh.strict_host_key_checking: false` on the node in the manifest",
            host.host, host.host
        ))
    } else if output.contains("Permission denied") {
        Some(format!(
            "{} refused the login of {}: give the node an `ssh.identity_file` whose public key is in that user's authorized_keys",
            host.host, host.user
        ))
    } else if output.contains("Connection refused") || output.contains("timed out") {
        Some(format!(
            "no SSH server answers on {}{}",
            host.host,
            host.port.map(|p| format!(":{p}")).unwrap_or_default()
        ))
    } else {
        None
    }
}

/// A forward of a host's Docker socket, open while this value lives.
pub struct Tunnel {
    child: tokio::process::Child,
    /// A private directory (mode 0700) holding the local socket; removed on drop.
    dir: PathBuf,
}

/// A new private directory for a tunnel's socket.
fn private_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("twip-ssh-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

impl Tunnel {
    /// Starts `ssh -N -L LOCAL:/var/run/docker.sock` and waits until the local socket exists.
    pub async fn open(host: &SshHost) -> anyhow::Result<Tunnel> {
        let ssh = ssh_program()?;
        let dir = private_dir()?;
        let sock = dir.join("docker.sock");
        let cmd = match host.forward_socket(&ssh, &sock, "/var/run/docker.sock") {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let child = tokio::process::Command::new(&cmd.program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&dir);
                anyhow::anyhow!(
                    "cannot run `{}`: {e}",
                    crate::ui::redact_foreign(&cmd.to_string())
                )
            })?;
        // From here on, dropping the tunnel kills ssh and removes the directory.
        let mut tunnel = Tunnel { child, dir };
        let child = &mut tunnel.child;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if sock.exists() {
                return Ok(tunnel);
            }
            if let Some(status) = child.try_wait()? {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut err).await;
                }
                let mut msg = format!(
                    "the SSH forward of {}'s Docker socket failed ({status}):\n  {cmd}\n  | {}",
                    host.host,
                    crate::ui::redact_foreign(err.trim()).replace('\n', "\n  | ")
                );
                if let Some(h) = hint(host, &err) {
                    msg.push('\n');
                    msg.push_str(&h);
                }
                anyhow::bail!(msg);
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the SSH forward of {}'s Docker socket did not open within 30s:\n  {cmd}",
                    host.host
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `unix://` URL of the forwarded socket.
    pub fn url(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ssh: serde_json::Value) -> NodeSpec {
        serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker", "ssh": ssh
        }))
        .unwrap()
    }

    #[test]
    fn scripts_run_with_strict_host_keys_by_default() {
        let h = SshHost::from_node(&node(serde_json::json!({})), Path::new("/p"));
        assert_eq!(
            h.script("ssh").unwrap().to_string(),
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=15 -- root@10.0.0.2 sh -s"
        );
    }

    #[test]
    fn a_lab_host_may_skip_host_key_checks_and_users_go_through_sudo() {
        let h = SshHost::from_node(
            &node(serde_json::json!({
                "user": "deploy", "port": 2222, "identity_file": "keys/id",
                "strict_host_key_checking": false
            })),
            Path::new("/p"),
        );
        assert_eq!(
            h.script("ssh").unwrap().to_string(),
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o LogLevel=ERROR -o ConnectTimeout=15 -p 2222 -i /p/keys/id -o IdentitiesOnly=yes \
             -- deploy@10.0.0.2 sudo -n sh -s"
        );
        assert_eq!(
            h.forward_socket(
                "ssh",
                Path::new("/tmp/x/docker.sock"),
                "/var/run/docker.sock"
            )
            .unwrap()
            .args
            .iter()
            .rev()
            .take(3)
            .cloned()
            .collect::<Vec<_>>(),
            [
                "deploy@10.0.0.2",
                "--",
                "/tmp/x/docker.sock:/var/run/docker.sock"
            ]
        );
    }

    #[test]
    fn ssh_failures_get_a_hint() {
        let h = SshHost::from_node(&node(serde_json::json!({})), Path::new("/p"));
        assert!(hint(&h, "Host key verification failed.")
            .unwrap()
            .contains("strict_host_key_checking: false"));
        assert!(hint(&h, "all good").is_none());
    }

    use crate::exec::tests::{assert_no_injected_option, assert_refused, HOSTILE};

    /// twip's own ssh options (and those of the fixed remote command).
    const OWN: &[&str] = &["-o", "-p", "-i", "-N", "-L", "--"];

    fn host(user: &str, address: &str) -> SshHost {
        SshHost::from_node(
            &serde_json::from_value(serde_json::json!({
                "name": "w1", "address": address, "role": "worker",
                "ssh": {"user": user, "port": 22, "identity_file": "keys/id"}
            }))
            .unwrap(),
            Path::new("/p"),
        )
    }

    fn both(h: &SshHost) -> [anyhow::Result<Cmd>; 2] {
        [
            h.script("ssh"),
            h.forward_socket(
                "ssh",
                Path::new("/tmp/t/docker.sock"),
                "/var/run/docker.sock",
            ),
        ]
    }

    #[test]
    fn hostile_users_and_hosts_are_refused() {
        let more = [
            "-oProxyCommand=touch /tmp/x #",
            "a b",
            "a;id",
            "$(id)",
            "`id`",
            "a@b",
            "a\nb",
            "a\u{1b}[31mb",
            "",
        ];
        let values: Vec<&str> = HOSTILE.iter().copied().chain(more).collect();
        assert!(values.len() >= 15);
        for v in &values {
            for r in both(&host(v, "10.0.0.2")) {
                assert_refused(r, "the ssh user (nodes[].ssh.user)");
            }
            for r in both(&host("deploy", v)) {
                assert_refused(r, "the node address (nodes[].address)");
            }
        }
    }

    #[test]
    fn the_destination_comes_after_dashes_and_nothing_else_is_an_option() {
        for (user, address) in [
            ("deploy", "10.0.0.2"),
            ("root", "node-1.example.com"),
            ("a-b", "fe80::1%eth0"),
        ] {
            for cmd in both(&host(user, address)) {
                let cmd = cmd.unwrap();
                let dest = format!("{user}@{address}");
                let at = cmd.args.iter().position(|a| *a == dest).unwrap();
                assert_eq!(cmd.args[at - 1], "--", "{cmd}");
                // After the destination only the fixed remote command.
                let rest: Vec<&str> = cmd.args[at + 1..].iter().map(String::as_str).collect();
                assert!(
                    rest.is_empty() || rest == ["sh", "-s"] || rest == ["sudo", "-n", "sh", "-s"],
                    "{cmd}"
                );
                assert_no_injected_option(&cmd, OWN, &dest);
            }
        }
    }

    #[test]
    fn an_identity_file_that_reads_as_an_option_is_refused() {
        let mut h = host("deploy", "10.0.0.2");
        h.identity_file = Some(PathBuf::from("-oProxyCommand=x"));
        for r in both(&h) {
            assert_refused(r, "the identity file");
        }
    }

    #[test]
    fn engine_urls_for_the_api_client_are_checked() {
        for ok in [
            "ssh://root@10.0.0.2",
            "ssh://deploy@node-1.example.com:2222",
            "ssh://node-1",
            "ssh://node-1/",
        ] {
            check_engine_url(ok).unwrap();
        }
        for bad in [
            "ssh://-oProxyCommand=touch${IFS}/tmp/x@host",
            "ssh://root@-oProxyCommand=x",
            "ssh://-host",
            "ssh://a$b@host",
            "ssh://root@ho st:22",
        ] {
            let e = check_engine_url(bad).unwrap_err();
            assert_eq!(
                crate::exit::code_for(&e),
                crate::exit::INVALID_INPUT,
                "{bad}"
            );
        }
    }
}
