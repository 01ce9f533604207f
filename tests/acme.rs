//! `proxy.tls.acme` against a real ACME server (pebble) on the single-node swarm: `twip up`
//! serves a placeholder, the certificates controller (driven here, round by round, from the
//! test process, with `agent.enabled: false`: pebble listens on this host's loopback, which a
//! container cannot reach) obtains a certificate for two names
//! over HTTP-01 answered through the proxy, the proxy serves it for each SNI name and it
//! chains to pebble's root (curl verifies it); a forced renewal serves a new serial; a
//! directory whose challenge cannot be answered (the route to the agent leads nowhere) leaves
//! the old certificate serving and the round says why; `twip down` removes the secrets.
//!
//! The agent's place on the proxy's network is taken by a small TCP forwarder service named
//! `STACK_agent` that passes port 8402 to the controller's listener in this process.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::pebble::{free_port, Pebble};
use common::*;
use twip::agent::certs::CertsController;
use twip::agent::{AgentConfig, AgentContext, Controller};

const A: &str = "a.acme.test";
const B: &str = "b.acme.test";

const FORWARDER: &str = r#"
import socket, sys, threading
T = (sys.argv[1], int(sys.argv[2]))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8402)); s.listen(64)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except Exception: pass
    finally:
        try: b.shutdown(socket.SHUT_WR)
        except Exception: pass
while True:
    c, _ = s.accept()
    try: u = socket.create_connection(T, timeout=5)
    except Exception:
        c.close(); continue
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
"#;

fn https_port() -> u16 {
    ports().solo
}

/// The serial of the certificate served for NAME, when it verifies against ROOT for NAME
/// (curl: chain, name, dates), else None.
fn served_serial(root: &Path, name: &str) -> Option<String> {
    let url = format!("https://{name}:{}/", https_port());
    let ok = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "--cacert"])
        .arg(root)
        .arg("--resolve")
        .arg(format!("{name}:{}:127.0.0.1", https_port()))
        .arg(&url)
        .output()
        .ok()?;
    if !ok.status.success() {
        return None;
    }
    let s = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{} -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -serial",
            https_port()
        ))
        .output()
        .ok()?;
    let out = stdout(&s);
    out.trim()
        .strip_prefix("serial=")
        .map(|x| x.to_ascii_lowercase())
}

/// The subject of what is served for NAME, unverified (the placeholder is self-signed).
fn served_subject(name: &str) -> String {
    let s = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{} -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -subject",
            https_port()
        ))
        .output()
        .unwrap();
    stdout(&s)
}

fn inspect(service: &str, format: &str) -> String {
    let out = docker(&["service", "inspect", service, "--format", format])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

/// Runs F while a listener on PORT answers every request with a 404, then closes it.
fn answer_404_on<T>(port: u16, f: impl FnOnce() -> T) -> T {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let l = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    let _ = c.read(&mut buf);
                    let _ = c.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    let out = f();
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    out
}

/// Removes a service when dropped.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.0]).output();
    }
}

#[test]
fn acme_obtains_renews_and_keeps_serving_when_the_directory_refuses() {
    require_swarm();
    let pebble = Pebble::start(ports().http);
    let mut p = TestProject::new(&["training"], "acme");
    let stack = test_stack("acme");
    p.stacks.push(stack.clone());
    let dir = p.path().to_path_buf();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/pebble-ca.pem"), &pebble.ca_pem).unwrap();
    p.write_env(
        "acme",
        &format!(
            "extends: training\nstack: {stack}\nagent: {{enabled: false}}\nproxy:\n  tls:\n    port: {}\n    acme:\n      email: ops@example.com\n      directory: {}\n      domains: [{A}, {B}]\n      ca_bundle: certs/pebble-ca.pem\n",
            https_port(),
            pebble.directory
        ),
    );
    let up = p.twip(&["up", "acme"]);
    assert!(up.status.success(), "{}", stderr(&up));

    // Before any certificate: the placeholder answers HTTPS.
    let placeholder = eventually(90, || {
        Some(served_subject(A)).filter(|s| s.contains("placeholder"))
    });
    assert!(placeholder.is_some(), "{}", served_subject(A));
    let root = pebble.root_file();
    assert_eq!(
        served_serial(&root, A),
        None,
        "the placeholder chains to pebble?"
    );

    // The agent's stand-in on the proxy's networks: port 8402 forwarded to this process.
    let listen = free_port();
    let gateway = stdout(
        &docker(&[
            "network",
            "inspect",
            "docker_gwbridge",
            "--format",
            "{{(index .IPAM.Config 0).Gateway}}",
        ])
        .output()
        .unwrap(),
    )
    .trim()
    .to_string();
    let proxy = format!("{stack}_proxy");
    let nets = inspect(
        &proxy,
        "{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}",
    );
    let image = inspect(
        &format!("{stack}_web"),
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    );
    let agent = format!("{stack}_agent");
    let mut create = docker(&["service", "create", "--detach", "--quiet", "--name", &agent]);
    // Not labelled with the stack (a deploy would remove it as not in the manifest); removed
    // by the guard, also when the test fails.
    create.args(["--no-healthcheck", "--entrypoint", "python3"]);
    let _guard = Removed(agent.clone());
    for n in nets.split_whitespace() {
        create.arg("--network").arg(n);
    }
    let made = create
        .arg(&image)
        .args(["-c", FORWARDER, &gateway, &listen.to_string()])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let running = eventually(60, || {
        let ps = list(&["service", "ps", &agent, "--format", "{{.CurrentState}}"]);
        ps.iter().any(|s| s.starts_with("Running")).then_some(())
    });
    assert!(running.is_some(), "the forwarder did not start");

    // The controller, as the agent would run it.
    let l = twip::manifest::Loader {
        project_dir: dir.clone(),
        vars: twip::manifest::interp::Vars {
            dotenv: BTreeMap::new(),
            overrides: Some(
                test_vars()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            ),
        },
    };
    let file = l.env_file("acme").unwrap();
    let env = l.load_file("acme", &file).unwrap_or_else(|d| panic!("{d}"));
    let mut cfg = AgentConfig::for_environment(&env, &dir).unwrap();
    assert_eq!(cfg.stack, stack);
    assert!(cfg.needs_agent());
    cfg.certs.listen = Some(format!("0.0.0.0:{listen}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cx = AgentContext {
        docker: twip::engine::Docker::connect_with_local_defaults().unwrap(),
        config: cfg.clone(),
    };
    let mut ctl = CertsController::new(&cfg, false);
    ctl.order_wait = Duration::from_secs(60);
    // The proxy reaches the controller's listener: an unknown token is its 404 (HAProxy
    // answers 503 while the route leads nowhere).
    rt.block_on(ctl.start_listener()).unwrap();
    let routed = eventually(60, || {
        http(
            ports().http,
            "GET",
            "/.well-known/acme-challenge/nothing",
            "",
        )
        .filter(|r| r.0 == 404)
        .map(|_| ())
    });
    assert!(
        routed.is_some(),
        "the challenge route does not reach this process"
    );
    let tick = |ctl: &mut CertsController| {
        let r = rt.block_on(ctl.tick(&cx)).expect("a round");
        eprintln!("round: {} (next in {:?})", r.decision, r.next);
        assert!(!r.decision.contains("PRIVATE KEY"), "{}", r.decision);
        r
    };

    // 1. Obtained for both names, delivered, served per SNI name, chaining to pebble's root.
    let r = tick(&mut ctl);
    assert!(
        r.decision.starts_with("obtained a certificate"),
        "{}\n{}",
        r.decision,
        pebble.logs()
    );
    let first = eventually(120, || served_serial(&root, A)).expect("the certificate is served");
    assert_eq!(served_serial(&root, B).as_deref(), Some(first.as_str()));
    assert!(
        r.decision.contains(&first),
        "the round names the serial served: {}",
        r.decision
    );

    // 2. Nothing to do for a fresh certificate; a deploy keeps it.
    let r = tick(&mut ctl);
    assert!(r.decision.contains("valid until"), "{}", r.decision);
    let up = p.twip(&["up", "acme"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(served_serial(&root, A).as_deref(), Some(first.as_str()));

    // 3. A forced renewal serves a new serial.
    ctl.force_next();
    let r = tick(&mut ctl);
    assert!(r.decision.starts_with("obtained"), "{}", r.decision);
    let second = eventually(120, || served_serial(&root, A).filter(|s| *s != first))
        .expect("the renewed certificate is served");
    assert_eq!(served_serial(&root, B).as_deref(), Some(second.as_str()));

    // 3b. `twip certs` shows the served ACME certificate; `certs renew` without --force
    //     says it is not due (and changes nothing).
    let out = p.twip(&["certs", "acme", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["acme"]["state"], "issued", "{v}");
    assert_eq!(v["acme"]["serial"].as_str(), Some(second.as_str()), "{v}");
    assert!(v["acme"]["domains"].as_array().unwrap().len() == 2, "{v}");
    assert!(v["acme"]["renew_from"].is_string(), "{v}");
    let out = p.twip(&["certs", "renew", "acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not due until"), "{text}");
    assert_eq!(served_serial(&root, A).as_deref(), Some(second.as_str()));

    // 3c. `twip certs renew --force` runs the round from the CLI: the forwarder now leads to
    //     the CLI's listener (this process keeps its own); a new serial is served.
    let listen2 = free_port();
    let args = format!("-c '{FORWARDER}' {gateway} {listen2}");
    let upd = docker(&["service", "update", "--detach", "--args", &args, &agent])
        .output()
        .unwrap();
    assert!(upd.status.success(), "{}", stderr(&upd));
    eventually(60, || {
        let ps = list(&[
            "service",
            "ps",
            &agent,
            "--format",
            "{{.DesiredState}} {{.CurrentState}}",
        ]);
        (ps.iter()
            .filter(|s| s.split_whitespace().nth(1) == Some("Running"))
            .count()
            == 1
            && ps.iter().any(|s| s.starts_with("Running Running"))
            && ps.len() >= 2)
            .then_some(())
    })
    .expect("the forwarder was not updated");
    // The proxy finds the new task by DNS and health checks before it sends it anything: until
    // then the challenge would be a 503 to pebble. A stand-in on the CLI's port answers until
    // the route is seen to reach it, then gives the port to the CLI.
    let reached = answer_404_on(listen2, || {
        eventually(60, || {
            http(
                ports().http,
                "GET",
                "/.well-known/acme-challenge/nothing",
                "",
            )
            .filter(|r| r.0 == 404)
            .map(|_| ())
        })
    });
    assert!(
        reached.is_some(),
        "the challenge route does not reach the CLI's port"
    );
    let out = p.twip(&[
        "certs",
        "renew",
        "acme",
        "--force",
        "--timeout",
        "60s",
        "--json",
        "--listen",
        &format!("0.0.0.0:{listen2}"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "renewed", "{v}");
    let third = v["served"]["serial"].as_str().unwrap().to_string();
    assert_ne!(third, second);
    let served = eventually(120, || served_serial(&root, A).filter(|s| *s == third));
    assert!(served.is_some(), "the CLI's certificate is not served");
    let second = third;

    // 4. The route to the agent leads nowhere: pebble cannot validate, the round says why
    //    and the certificate obtained before keeps serving.
    let rm = docker(&["service", "rm", &agent]).output().unwrap();
    assert!(rm.status.success(), "{}", stderr(&rm));
    eventually(60, || {
        list(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={agent}"),
        ])
        .is_empty()
        .then_some(())
    });
    ctl.force_next();
    let r = tick(&mut ctl);
    assert!(r.decision.contains("failed"), "{}", r.decision);
    assert!(
        r.decision.contains("the current certificate keeps serving"),
        "{}",
        r.decision
    );
    assert!(
        r.decision.contains(A) || r.decision.contains(B),
        "{}",
        r.decision
    );
    assert!(r.next >= Duration::from_secs(30), "{:?}", r.next);
    assert_eq!(served_serial(&root, A).as_deref(), Some(second.as_str()));

    // `twip down` removes everything, the ACME secrets too.
    let down = p.twip(&["down", "acme"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let left = eventually(60, || {
        let l = labelled_leftovers(&stack);
        l.is_empty().then_some(())
    });
    assert!(left.is_some(), "{:?}", labelled_leftovers(&stack));
}
