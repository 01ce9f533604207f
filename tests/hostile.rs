//! Hostile input (issue #13): what an attacker with write access to `environments/` (or to one
//! CI variable) can put in front of twip, and the proof that it injects nothing, escapes
//! nowhere, leaks nothing and crashes nothing.
//!
//! - `the_hostile_catalogue`: every case under tests/fixtures/hostile/ (a tiny project each,
//!   described by its `case.txt`) is run through the real binary with a deadline; its exit code
//!   and sanitised output are snapshotted (tests/snapshots/hostile/), and the required outcome
//!   is asserted: refused with exit 2, or accepted with output proven harmless. Whatever the
//!   outcome: never a panic/abort/internal error, never a secret from the environment or from
//!   a file outside the project, never a raw terminal escape, never a subprocess argument that
//!   turns a manifest value into an option, and nothing written or changed outside the case's
//!   project (`-o DIR` aside).
//! - `yaml_bombs_are_bounded_in_time_and_memory`: the denial-of-service cases, each a child
//!   process whose peak RSS is read with `wait4`, under a deadline.
//! - `hostile_strings_in_every_string_field`: proptest puts generated hostile strings into
//!   every string scalar and user-named key of a manifest that sets every field
//!   (tests/fixtures/hostile/full), directly and through `${VAR}`, and compares what is accepted
//!   with the benign render: HAProxy (`haproxy -c` and the same directives), stack.yml (the same
//!   key structure), the bootstrap script (`sh -n` and the same commands), and the ssh argv
//!   (no new option).
//!
//! `case.txt` keys: `class`, `about`, `run` (twip's arguments; `\n`, `\r`, `\t`, `\e`, `\s`
//! (space) are decoded in each word), `expect` (`refused` = exit 2; `ok` = exit 0 and harmless;
//! `refused-or-harmless`), `env: NAME=VALUE`, `symlink: LINK -> TARGET`, `rename: FROM -> TO`
//! (for names git holds badly), `gen: PATH KIND N` (large generated files), `bom: PATH`,
//! `forbid: TEXT` (no output line may start with it), `forbid-hash: VALUE` (no prefix of the
//! value's SHA-256 in the output), `dos: yes`. Placeholders in the case's files and
//! `case.txt`: `@OUTSIDE@` (a folder beside the project holding files with secrets),
//! `@MARKER@` (a file that must never be created), `@LONG@` (a 100 kB value).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sha2::Digest;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// A secret the operator's environment holds while twip runs (as in CI); it must appear in no
/// output and no file twip writes.
const SECRET_ENV: (&str, &str) = ("TWIP_HOSTILE_SECRET", "s3cr3t-env-value");
/// Every secret planted by the tests contains this.
const SECRET_MARK: &str = "s3cr3t";
/// Peak RSS a `validate` of a file under 1 MB may reach (the issue's bound).
const MAX_RSS_KB: i64 = 200 * 1024;
/// Deadline for one run of a DoS case. The requirement is 2 s on an idle machine; CI machines
/// run the debug build beside other jobs, so the test kills the child and fails only after 10 s:
/// that is a bound proving termination (an exponential or quadratic blow-up takes minutes or
/// never ends), not a comparison of timings, so load does not make it flaky.
const DOS_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline for one ordinary run (nothing here talks to a network that can hang).
const RUN_DEADLINE: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn hostile_dir() -> PathBuf {
    repo().join("tests/fixtures/hostile")
}

// ---------------------------------------------------------------------------------------
// Running twip: a child with a deadline, its exit status and its peak RSS (wait4)
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Run {
    args: Vec<String>,
    /// Exit code, or None when killed by a signal.
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    timed_out: bool,
    max_rss_kb: i64,
    elapsed: Duration,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` (stdout and stderr piped), kills it at `deadline`, and reaps it with `wait4` so
/// its own peak RSS is known. The address space is capped at 4 GiB so that a run-away
/// allocation fails inside the child (and the test) instead of starving the machine.
fn run_bounded(mut cmd: Command, args: Vec<String>, deadline: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that the deadline kills what it started too (a
        // subprocess holding the pipes open would otherwise keep the readers waiting).
        .process_group(0);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("twip starts");
    let pid = child.id() as libc::pid_t;
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    // Read at most 8 MB of each stream (a bomb's echo must not fill the test's memory).
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut so).take(8 << 20).read_to_end(&mut b);
        std::io::copy(&mut so, &mut std::io::sink()).ok();
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut se).take(8 << 20).read_to_end(&mut b);
        std::io::copy(&mut se, &mut std::io::sink()).ok();
        b
    });
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: pid is our child; status and usage are valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4 failed: {}", std::io::Error::last_os_error());
        if start.elapsed() > deadline && !timed_out {
            timed_out = true;
            // SAFETY: killing our own child's process group; the child is not yet reaped.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    // Whatever the child left running in its group goes too.
    // SAFETY: the group is ours (made above); ESRCH when it is empty is fine.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    // The child is reaped by wait4; std's Child must not wait for it again.
    std::mem::forget(child);
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else {
        (None, Some(libc::WTERMSIG(status)))
    };
    Run {
        args,
        code,
        signal,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        timed_out,
        max_rss_kb: usage.ru_maxrss,
        elapsed,
    }
}

/// The twip binary, run in `cwd` with a clean, known environment: no colour, backtraces asked
/// for (twip must never print one), the planted secret, `fake_bin` first on PATH.
fn twip_cmd(cwd: &Path, fake_bin: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("twip"));
    cmd.current_dir(cwd).env_clear();
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", fake_bin.display()))
        .env("HOME", cwd)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "full")
        .env("RUST_LIB_BACKTRACE", "1")
        .env(SECRET_ENV.0, SECRET_ENV.1)
        // The operator's key for secret names (else twip makes .twip/name-key in the project).
        .env(
            "TWIP_NAME_KEY",
            "hostile-test-name-key-0123456789abcdef-0123456789",
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Fake `ssh`, `docker`, `git`: they log their argv (one element per line, then `--end--`) in
/// `log`, read their stdin as ssh would, and fail, so a test can see exactly what twip would have run.
fn fake_bin(dir: &Path, log: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for prog in ["ssh", "docker", "git", "scp"] {
        let p = dir.join(prog);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\n{{ printf '%s\\n' \"$0\"; for a in \"$@\"; do printf '%s\\n' \"$a\"; done; printf -- '--end--\\n'; }} >> '{}'\ncat >/dev/null\nexit 255\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The argv logged by the fake programs.
fn logged_argvs(log: &Path) -> Vec<Vec<String>> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for l in text.lines() {
        if l == "--end--" {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(l.to_string());
        }
    }
    out
}

/// The options of an argv: the elements before `--` that start with `-`.
fn options_of(argv: &[String]) -> Vec<String> {
    argv.iter()
        .skip(1)
        .take_while(|a| a.as_str() != "--")
        .filter(|a| a.starts_with('-'))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// Checks shared by the catalogue and the property tests
// ---------------------------------------------------------------------------------------

/// Problems common to every run, whatever the input: crashes, backtraces, secrets, raw
/// terminal control characters.
fn universal_problems(run: &Run, extra_texts: &[(String, String)]) -> Vec<String> {
    let mut p = Vec::new();
    let cmdline = run.args.join(" ");
    if run.timed_out {
        p.push(format!("`{cmdline}` did not finish in time (killed)"));
    }
    match (run.code, run.signal) {
        (Some(c), _) if [0, 1, 2].contains(&c) => {}
        (Some(c), _) => p.push(format!(
            "`{cmdline}` exited {c} (only 0, 1, 2 are allowed; 70 is an internal error, 101 a panic, 134 an abort)"
        )),
        (None, Some(s)) if !run.timed_out => {
            p.push(format!("`{cmdline}` was killed by signal {s}"))
        }
        _ => {}
    }
    let err = run.err();
    for bad in [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "internal error",
    ] {
        if err.contains(bad) {
            p.push(format!("`{cmdline}`: stderr contains `{bad}`"));
        }
    }
    let mut texts = vec![
        ("stdout".to_string(), run.out()),
        ("stderr".to_string(), err),
    ];
    texts.extend(extra_texts.iter().cloned());
    for (what, t) in &texts {
        if t.to_ascii_lowercase().contains(SECRET_MARK) {
            p.push(format!("`{cmdline}`: {what} holds a secret"));
        }
        if let Some(c) = t
            .chars()
            .find(|c| matches!(*c, '\u{1b}' | '\u{7}' | '\u{9b}' | '\u{8}' | '\u{0}' | '\r'))
        {
            p.push(format!(
                "`{cmdline}`: {what} holds the raw control character U+{:04X}",
                c as u32
            ));
        }
    }
    p
}

/// `haproxy -c -f FILE`: Ok, or its complaint. Bounded: a config with a hundred million
/// server slots keeps `haproxy -c` busy for minutes, which is itself a finding.
fn haproxy_check(file: &Path) -> Result<(), String> {
    // With `proxy.tls` the config names the proxy's secrets under /run/secrets/: lay them out
    // (as the stack file beside it says) in a folder of our own and point the config there.
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let secrets = tempfile::tempdir().unwrap();
    let mut file = file.to_path_buf();
    if text.contains("/run/secrets/") {
        let dir = file.parent().unwrap().to_path_buf();
        let stack = std::fs::read_to_string(dir.join("stack.yml")).map_err(|e| e.to_string())?;
        let doc = &YamlLoader::load_from_str(&stack).map_err(|e| e.to_string())?[0];
        if let Yaml::Array(refs) = &doc["services"]["proxy"]["secrets"] {
            for r in refs {
                let (Some(src), Some(target)) = (r["source"].as_str(), r["target"].as_str()) else {
                    continue;
                };
                if let Some(f) = doc["secrets"][src]["file"].as_str() {
                    std::fs::copy(dir.join(f), secrets.path().join(target))
                        .map_err(|e| format!("secret {src}: {e}"))?;
                } else {
                    // Made by `twip up`, never a file: the runtime API's credentials (from the
                    // name key) and the ACME certificate (a placeholder until one is obtained).
                    let creds = twip::tls::runtime::credentials(&[7u8; 32]).unwrap();
                    let data = match target {
                        "twip-runtime.pem" => creds.server_bundle.into_bytes(),
                        "twip-runtime-ca.pem" => creds.ca_cert.into_bytes(),
                        _ => twip::tls::placeholder_pem().unwrap(),
                    };
                    std::fs::write(secrets.path().join(target), data).unwrap();
                }
            }
        }
        let cfg = text.replace("/run/secrets/", &format!("{}/", secrets.path().display()));
        file = secrets.path().join("haproxy.cfg");
        std::fs::write(&file, cfg).unwrap();
    }
    let mut cmd = Command::new("haproxy");
    cmd.args(["-c", "-f"]).arg(&file);
    let run = run_bounded(cmd, vec!["haproxy".into()], Duration::from_secs(30));
    if run.timed_out {
        return Err("haproxy -c did not finish in 30 s".into());
    }
    if run.code == Some(0) {
        Ok(())
    } else {
        Err(format!("{}{}", run.out(), run.err()))
    }
}

/// `sh -n` on a script: Ok, or its complaint.
fn sh_check(script: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("script.sh");
    std::fs::write(&f, script).unwrap();
    let out = Command::new("sh").arg("-n").arg(&f).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The directives of an HAProxy config: the first word of every non-comment line, in order.
fn haproxy_directives(cfg: &str) -> Vec<String> {
    cfg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// The commands of a shell script as `sh` tokenises its lines: each line's first word
/// (comments and blank lines dropped). A value that ends up as a command of its own (a
/// newline out of a comment or out of a quoted word) adds a line here or changes a first word;
/// a value that stays inside a single-quoted word or a comment changes nothing. `sh -n` checks
/// the rest (quotes balanced, here-documents closed).
fn shell_commands(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Separates the keys of a key path: a character no accepted name may hold (keys may hold
/// dots).
const SEP: &str = "\u{1f}";

/// Every key path of a YAML document (`services.web.image`, `a.[]`), with the keys that
/// `mask` says are names made from user values replaced by `*`.
fn yaml_key_paths(doc: &Yaml, mask: &dyn Fn(&str) -> bool) -> Vec<String> {
    fn walk(y: &Yaml, prefix: &str, mask: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
        match y {
            Yaml::Hash(h) => {
                for (k, v) in h {
                    let key = match k {
                        Yaml::String(s) if mask(s) => "*".to_string(),
                        Yaml::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    let p = format!("{prefix}{SEP}{key}");
                    out.push(p.clone());
                    walk(v, &p, mask, out);
                }
            }
            Yaml::Array(a) => {
                for v in a {
                    walk(v, &format!("{prefix}{SEP}[]"), mask, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, "", mask, &mut out);
    out.sort();
    out
}

/// Names twip derives from content end in a hex hash; it changes with the content on purpose.
fn strip_hash(s: &str) -> String {
    let parts: Vec<&str> = s.rsplitn(2, '_').collect();
    if parts.len() == 2 && parts[0].len() >= 8 && parts[0].chars().all(|c| c.is_ascii_hexdigit()) {
        format!("{}_HASH", parts[1])
    } else {
        s.to_string()
    }
}

/// Everything in a tree, `relative path -> content digest` (symlinks by their target), for
/// "nothing changed here" checks.
fn tree_state(root: &Path, skip: &[&Path]) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, skip: &[&Path], out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if skip.iter().any(|s| *s == p) {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if md.is_dir() {
                out.insert(rel.clone(), "dir".into());
                walk(root, &p, skip, out);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.insert(rel, format!("{:x}", sha2::Sha256::digest(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, skip, &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Refused,
    Ok,
    RefusedOrHarmless,
}

#[derive(Debug)]
struct Case {
    name: String,
    dir: PathBuf,
    class: String,
    about: String,
    runs: Vec<String>,
    expect: Expect,
    env: Vec<(String, String)>,
    symlinks: Vec<(String, String)>,
    renames: Vec<(String, String)>,
    gens: Vec<(String, String, usize)>,
    boms: Vec<String>,
    forbid: Vec<String>,
    forbid_hash: Vec<String>,
    dos: bool,
}

/// `\n`, `\r`, `\t`, `\e` (ESC), `\s` (space), `\\`.
fn decode(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('e') => out.push('\u{1b}'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn split_arrow(v: &str) -> (String, String) {
    let (a, b) = v
        .split_once(" -> ")
        .unwrap_or_else(|| panic!("`{v}` is not A -> B"));
    (a.trim().to_string(), b.trim().to_string())
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(hostile_dir()).unwrap() {
        let dir = e.unwrap().path();
        let meta = dir.join("case.txt");
        if !meta.exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut c = Case {
            name: name.clone(),
            dir: dir.clone(),
            class: String::new(),
            about: String::new(),
            runs: Vec::new(),
            expect: Expect::Refused,
            env: Vec::new(),
            symlinks: Vec::new(),
            renames: Vec::new(),
            gens: Vec::new(),
            boms: Vec::new(),
            forbid: Vec::new(),
            forbid_hash: Vec::new(),
            dos: false,
        };
        let mut expect = None;
        for line in std::fs::read_to_string(&meta).unwrap().lines() {
            let Some((k, v)) = line.split_once(": ") else {
                assert!(line.trim().is_empty(), "{name}: bad line `{line}`");
                continue;
            };
            let v = v.trim().to_string();
            match k {
                "class" => c.class = v,
                "about" => c.about = v,
                "run" => c.runs.push(v),
                "expect" => {
                    expect = Some(match v.as_str() {
                        "refused" => Expect::Refused,
                        "ok" => Expect::Ok,
                        "refused-or-harmless" => Expect::RefusedOrHarmless,
                        o => panic!("{name}: unknown expect `{o}`"),
                    })
                }
                "env" => {
                    let (n, val) = v.split_once('=').unwrap();
                    c.env.push((n.to_string(), decode(val)));
                }
                "symlink" => c.symlinks.push(split_arrow(&v)),
                "rename" => c.renames.push(split_arrow(&v)),
                "gen" => {
                    let w: Vec<&str> = v.split_whitespace().collect();
                    c.gens
                        .push((w[0].to_string(), w[1].to_string(), w[2].parse().unwrap()));
                }
                "bom" => c.boms.push(v),
                "forbid" => c.forbid.push(v),
                "forbid-hash" => c.forbid_hash.push(v),
                "dos" => c.dos = v == "yes",
                o => panic!("{name}: unknown key `{o}`"),
            }
        }
        c.expect = expect.unwrap_or_else(|| panic!("{name}: no expect"));
        assert!(!c.runs.is_empty(), "{name}: no run");
        assert!(!c.class.is_empty() && !c.about.is_empty(), "{name}");
        out.push(c);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A generated file for a `gen:` line (files too large or too regular to keep in git).
fn generate(kind: &str, n: usize, project: &Path, path: &str) -> String {
    let svc = "services:\n  web:\n    image: nginx:1.25\n";
    match kind {
        // `- - - - ... x` on one line: n nested block sequences.
        "seqnest" => format!("x-deep: {}x\n{svc}", "- ".repeat(n)),
        "flownest" => format!("x-deep: {}{}\n{svc}", "[".repeat(n), "]".repeat(n)),
        "mapnest" => format!("x-deep: {}x{}\n{svc}", "{a: ".repeat(n), "}".repeat(n)),
        "interpnest" => format!(
            "services:\n  web:\n    image: \"nginx:{}1.25{}\"\n",
            "${TWIP_HOSTILE_UNSET:-".repeat(n),
            "}".repeat(n)
        ),
        "dupkeys" => {
            let mut s = String::from("services:\n  web:\n    image: nginx:1.25\n    labels:\n");
            for i in 0..n {
                // Every key twice, far apart: a scan that compares each key with all the
                // earlier ones is quadratic.
                s.push_str(&format!("      k{}: x\n", i % (n / 2)));
            }
            s
        }
        "bigscalar" => format!("{svc}description: \"{}\"\n", "A".repeat(n)),
        "bigfile" => {
            let mut s = String::from(svc);
            while s.len() < n {
                s.push_str("# padding padding padding padding padding padding padding\n");
            }
            s
        }
        "extendschain" => {
            // x extends e1, e1 extends e2, ... the last one holds the services.
            let envs = project.join("environments");
            for i in 1..n {
                std::fs::write(
                    envs.join(format!("e{i}.yaml")),
                    format!("extends: e{}\ndescription: e{i}\n", i + 1),
                )
                .unwrap();
            }
            std::fs::write(envs.join(format!("e{n}.yaml")), svc).unwrap();
            let _ = path;
            "extends: e1\n".to_string()
        }
        "manyinterp" => format!(
            "services:\n  web:\n    image: nginx:1.25\n    command: \"{}\"\n",
            "${TWIP_HOSTILE_LONG}".repeat(n)
        ),
        o => panic!("unknown generator {o}"),
    }
}

struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    project: PathBuf,
    outside: PathBuf,
    marker: PathBuf,
    bin: PathBuf,
    log: PathBuf,
    long: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let project = root.join("case");
        let outside = root.join("outside");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let svc = "services:\n  web:\n    image: nginx:1.25\n";
        for (f, content) in [
            ("secret.txt", "s3cr3t-outside-file\n".to_string()),
            ("secret.env", "A=s3cr3t-outside-env\n".to_string()),
            (
                "Dockerfile",
                "FROM scratch\n# s3cr3t-outside-dockerfile\n".into(),
            ),
            ("base", format!("{svc}description: s3cr3t-outside-base\n")),
            (
                "base.yaml",
                format!("{svc}description: s3cr3t-outside-base\n"),
            ),
            (
                "foreign",
                "services:\n  web:\n    image: nginx:1.25\n    replicas: s3cr3t-foreign-value\n"
                    .into(),
            ),
            (
                "foreign.yaml",
                "services:\n  web:\n    image: nginx:1.25\n    replicas: s3cr3t-foreign-value\n"
                    .into(),
            ),
        ] {
            std::fs::write(outside.join(f), content).unwrap();
        }
        let marker = outside.join("MARKER-must-never-exist");
        let log_dir = root.join("log");
        std::fs::create_dir_all(&log_dir).unwrap();
        let log = log_dir.join("argv.log");
        let bin = root.join("bin");
        fake_bin(&bin, &log);
        Sandbox {
            _tmp: tmp,
            root,
            project,
            outside,
            marker,
            bin,
            log,
            long: "L".repeat(100_000),
        }
    }

    fn subst(&self, s: &str) -> String {
        s.replace("@OUTSIDE@", &self.outside.display().to_string())
            .replace("@MARKER@", &self.marker.display().to_string())
            .replace("@LONG@", &self.long)
    }

    /// Copies the case's project (all but case.txt) with placeholders replaced, then applies
    /// its renames, symlinks, generated files and BOMs.
    fn install(&self, c: &Case) {
        fn copy(sb: &Sandbox, from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let name = e.file_name();
                if name == "case.txt" {
                    continue;
                }
                if p.is_dir() {
                    copy(sb, &p, &to.join(&name));
                } else {
                    let text = std::fs::read_to_string(&p).unwrap();
                    std::fs::write(to.join(&name), sb.subst(&text)).unwrap();
                }
            }
        }
        copy(self, &c.dir, &self.project);
        for (from, to) in &c.renames {
            std::fs::rename(
                self.project.join(decode(from)),
                self.project.join(decode(to)),
            )
            .unwrap();
        }
        for (link, target) in &c.symlinks {
            let l = self.project.join(link);
            std::fs::create_dir_all(l.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(self.subst(target), &l).unwrap();
        }
        for (path, kind, n) in &c.gens {
            let text = generate(kind, *n, &self.project, path);
            std::fs::write(self.project.join(path), text).unwrap();
        }
        for path in &c.boms {
            let p = self.project.join(path);
            let mut b = vec![0xEF, 0xBB, 0xBF];
            b.extend(std::fs::read(&p).unwrap());
            std::fs::write(&p, b).unwrap();
        }
    }
}

/// Output for a snapshot: temporary paths replaced, hashes masked, long outputs cut.
fn sanitise(sb: &Sandbox, text: &str) -> String {
    let root = sb.root.display().to_string();
    let mut t = text.replace(&root, "[ROOT]");
    t = t.replace(&sb.long, "[LONG]");
    let mut lines: Vec<String> = Vec::new();
    let all: Vec<&str> = t.lines().collect();
    for l in all.iter().take(40) {
        let mut l = mask_times(&mask_hex(l));
        if l.chars().count() > 240 {
            let n = l.chars().count();
            l = format!(
                "{}… [{} more characters]",
                l.chars().take(240).collect::<String>(),
                n - 240
            );
        }
        lines.push(l);
    }
    if all.len() > 40 {
        lines.push(format!("… [{} more lines]", all.len() - 40));
    }
    lines.join("\n")
}

/// Durations measured by a run (`7.2 ms`) become `[T]`; in a table (`│`), runs of spaces and
/// rules shrink to one, since column widths follow the durations.
fn mask_times(l: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = l.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i > start && i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let rest: String = chars[j..].iter().collect();
            if let Some(unit) = ["ms", "µs", "s"]
                .iter()
                .find(|u| rest.starts_with(&format!(" {u}")))
            {
                out.push_str("[T]");
                i = j + 1 + unit.chars().count();
                continue;
            }
        }
        out.extend(&chars[start..i]);
        if i < chars.len() {
            out.push(chars[i]);
            i += 1;
        }
    }
    if !out.contains('│') && !out.contains('─') && !out.contains('═') {
        return out;
    }
    let mut squeezed = String::new();
    for c in out.chars() {
        if matches!(c, ' ' | '─' | '═') && squeezed.ends_with(c) {
            continue;
        }
        squeezed.push(c);
    }
    squeezed
}

/// A content hash, an HMAC or a temporary name: 10 or more hex digits with a digit and a
/// letter (numbers in messages stay as they are).
fn is_hash(run: &str) -> bool {
    run.len() >= 10
        && run.chars().any(|c| c.is_ascii_digit())
        && run.chars().any(|c| c.is_ascii_alphabetic())
}

/// Runs of 10 or more hex digits (content hashes, HMACs, temporary names) become [HEX].
fn mask_hex(l: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in l.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if is_hash(&run) {
            out.push_str("[HEX]");
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    if is_hash(&run) {
        out.push_str("[HEX]");
    } else {
        out.push_str(&run);
    }
    out
}

/// Runs one case; returns its snapshot text and the problems found.
fn run_case(c: &Case) -> (String, Vec<String>) {
    let sb = Sandbox::new();
    sb.install(c);
    let out_dir = sb.project.join("out");
    let before_root = tree_state(&sb.root, &[&sb.project, &sb.root.join("log")]);
    let before_project = tree_state(&sb.project, &[&out_dir]);
    let env: Vec<(String, String)> = c
        .env
        .iter()
        .map(|(k, v)| (k.clone(), sb.subst(v)))
        .collect();
    let mut problems = Vec::new();
    let mut snap = format!("case: {} (class {})\nabout: {}\n", c.name, c.class, c.about);
    for line in &c.runs {
        let args: Vec<String> = sb.subst(line).split_whitespace().map(decode).collect();
        let deadline = if c.dos { DOS_DEADLINE } else { RUN_DEADLINE };
        let mut cmd = twip_cmd(&sb.project, &sb.bin, &env);
        cmd.args(&args);
        let run = run_bounded(cmd, args.clone(), deadline);
        eprintln!(
            "{}: `{}` exit {:?} in {:.2} s, peak RSS {} MB",
            c.name,
            args.join(" ").escape_debug(),
            run.code,
            run.elapsed.as_secs_f64(),
            run.max_rss_kb / 1024
        );
        let cmdline = args.join(" ");
        // Files the run wrote into -o DIR (checked for secrets and, when accepted, validity).
        let mut written = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&out_dir) {
            for e in rd.flatten() {
                if let Ok(t) = std::fs::read_to_string(e.path()) {
                    written.push((format!("out/{}", e.file_name().to_string_lossy()), t));
                }
            }
        }
        problems.extend(universal_problems(&run, &written));
        if c.dos && run.max_rss_kb > MAX_RSS_KB {
            problems.push(format!(
                "`{cmdline}`: peak RSS {} MB (limit {} MB)",
                run.max_rss_kb / 1024,
                MAX_RSS_KB / 1024
            ));
        }
        let code = run.code.unwrap_or(-1);
        let accepted_ok = code == 0;
        match c.expect {
            Expect::Refused if code != 2 => problems.push(format!(
                "`{cmdline}`: expected a refusal (exit 2), got exit {code}:\n{}",
                tail(&run.err())
            )),
            Expect::Ok if code != 0 => problems.push(format!(
                "`{cmdline}`: expected success, got exit {code}:\n{}",
                tail(&run.err())
            )),
            Expect::RefusedOrHarmless if code != 0 && code != 2 => {
                problems.push(format!("`{cmdline}`: exit {code}, neither 0 nor 2"))
            }
            _ => {}
        }
        if accepted_ok {
            problems.extend(harmless_problems(c, &args, &run, &written, &out_dir));
        }
        snap.push_str(&format!(
            "\n$ twip {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}\n",
            sanitise(&sb, &cmdline.replace('\n', "\\n").replace('\r', "\\r")),
            run.code
                .map(|c| c.to_string())
                .unwrap_or_else(|| format!("signal {}", run.signal.unwrap_or(0))),
            sanitise(&sb, &run.out()),
            sanitise(&sb, &run.err())
        ));
    }
    // Nothing outside the project changed; inside it, only -o DIR.
    if sb.marker.exists() {
        problems.push("the marker file outside the project was created".into());
    }
    let after_root = tree_state(&sb.root, &[&sb.project, &sb.root.join("log")]);
    if after_root != before_root {
        problems.push(format!(
            "files outside the project changed: {:?}",
            diff_keys(&before_root, &after_root)
        ));
    }
    let after_project = tree_state(&sb.project, &[&out_dir]);
    if after_project != before_project {
        problems.push(format!(
            "files of the project outside -o DIR changed: {:?}",
            diff_keys(&before_project, &after_project)
        ));
    }
    // No subprocess got a manifest value as an option.
    for argv in logged_argvs(&sb.log) {
        for o in options_of(&argv) {
            if o.contains("pwned") || o.contains(&sb.outside.display().to_string()) {
                problems.push(format!(
                    "a subprocess got an injected option `{o}`: {argv:?}"
                ));
            }
        }
        if argv.iter().any(|a| a.contains(SECRET_MARK)) {
            problems.push(format!("a subprocess argv holds a secret: {argv:?}"));
        }
    }
    (snap, problems)
}

fn diff_keys(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
        .collect()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(6)..]
        .iter()
        .map(|l| l.chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An accepted run is harmless when its outputs are valid in their language and no line of
/// them starts with a forbidden text (what the case tries to inject).
fn harmless_problems(
    c: &Case,
    args: &[String],
    run: &Run,
    written: &[(String, String)],
    out_dir: &Path,
) -> Vec<String> {
    let mut p = Vec::new();
    let cmdline = args.join(" ");
    let mut texts: Vec<(String, String)> = vec![("stdout".into(), run.out())];
    texts.extend(written.iter().cloned());
    for (what, t) in &texts {
        for f in &c.forbid {
            if let Some(l) = t.lines().find(|l| l.trim_start().starts_with(f.as_str())) {
                p.push(format!("`{cmdline}`: {what} has an injected line `{l}`"));
            }
        }
        for v in &c.forbid_hash {
            let hex = format!("{:x}", sha2::Sha256::digest(v.as_bytes()));
            if t.contains(&hex[..8]) {
                p.push(format!(
                    "`{cmdline}`: {what} holds a plain SHA-256 prefix of the secret value"
                ));
            }
        }
    }
    let is = |w: &str| args.iter().any(|a| a == w);
    if is("render") && is("-") {
        if let Err(e) = YamlLoader::load_from_str(&run.out()) {
            p.push(format!("`{cmdline}`: stack.yml on stdout is not YAML: {e}"));
        }
    }
    if out_dir.join("haproxy.cfg").exists() {
        if let Err(e) = haproxy_check(&out_dir.join("haproxy.cfg")) {
            p.push(format!("`{cmdline}`: haproxy -c refuses haproxy.cfg: {e}"));
        }
    }
    if out_dir.join("stack.yml").exists() {
        let t = std::fs::read_to_string(out_dir.join("stack.yml")).unwrap();
        if let Err(e) = YamlLoader::load_from_str(&t) {
            p.push(format!("`{cmdline}`: stack.yml is not YAML: {e}"));
        }
    }
    if is("bootstrap") && is("--print") {
        if let Err(e) = sh_check(&run.out()) {
            p.push(format!("`{cmdline}`: sh -n refuses the script: {e}"));
        }
    }
    if is("bootstrap") && is("--cloud-init") {
        if let Err(e) = YamlLoader::load_from_str(&run.out()) {
            p.push(format!("`{cmdline}`: the user-data is not YAML: {e}"));
        }
    }
    p
}

fn check_cases(dos: bool) {
    let all: Vec<Case> = cases().into_iter().filter(|c| c.dos == dos).collect();
    let min = if dos { 8 } else { 50 };
    assert!(all.len() >= min, "only {} cases (dos: {dos})", all.len());
    let mut failures = Vec::new();
    for c in &all {
        let (snap, problems) = run_case(c);
        let name = c.name.clone();
        let snapped = std::panic::catch_unwind(|| {
            insta::with_settings!({
                snapshot_path => "snapshots/hostile",
                prepend_module_to_snapshot => false,
                omit_expression => true,
            }, {
                insta::assert_snapshot!(name, snap);
            });
        });
        if snapped.is_err() {
            failures.push(format!("{}: the snapshot differs", c.name));
        }
        for p in problems {
            failures.push(format!("{}: {p}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) in {} cases:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn the_catalogue_covers_every_class_of_the_issue() {
    let all = cases();
    assert!(all.len() >= 60, "only {} hostile cases", all.len());
    let classes: BTreeSet<String> = all.iter().map(|c| c.class.clone()).collect();
    for k in 1..=9 {
        assert!(classes.contains(&k.to_string()), "no case of class {k}");
    }
}

#[test]
fn the_hostile_catalogue() {
    check_cases(false);
}

#[test]
fn yaml_bombs_are_bounded_in_time_and_memory() {
    check_cases(true);
}

/// Negative control for the checks above: the unsafe outcomes they look for are seen when
/// they are there (a run that leaks, crashes, prints an escape, or gets an injected option).
#[test]
fn the_checks_see_what_they_look_for() {
    let mk = |code: Option<i32>, out: &str, err: &str| Run {
        args: vec!["validate".into()],
        code,
        signal: None,
        stdout: out.as_bytes().to_vec(),
        stderr: err.as_bytes().to_vec(),
        timed_out: false,
        max_rss_kb: 0,
        elapsed: Duration::ZERO,
    };
    assert!(universal_problems(&mk(Some(2), "", "error: bad"), &[]).is_empty());
    assert_eq!(universal_problems(&mk(Some(101), "", ""), &[]).len(), 1);
    assert_eq!(universal_problems(&mk(Some(70), "", ""), &[]).len(), 1);
    let mut aborted = mk(None, "", "");
    aborted.signal = Some(6);
    assert_eq!(universal_problems(&aborted, &[]).len(), 1);
    assert_eq!(
        universal_problems(&mk(Some(2), "", "x: S3CR3T-env-value"), &[]).len(),
        1
    );
    assert_eq!(
        universal_problems(&mk(Some(2), "", "thread 'main' panicked at"), &[]).len(),
        1
    );
    assert_eq!(
        universal_problems(&mk(Some(2), "\u{1b}[2J", ""), &[]).len(),
        1
    );
    assert_eq!(
        options_of(&[
            "ssh".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "--".into(),
            "-oProxyCommand=x".into()
        ]),
        vec!["-o".to_string()]
    );
    assert_eq!(
        options_of(&["ssh".into(), "-oProxyCommand=x".into(), "host".into()]),
        vec!["-oProxyCommand=x".to_string()]
    );
    assert!(haproxy_check(Path::new("/nonexistent/haproxy.cfg")).is_err());
    assert!(sh_check("echo 'unclosed\n").is_err());
    assert!(sh_check("echo ok\n").is_ok());
    assert_eq!(
        shell_commands("# c\necho a\n\n  ls -l # x\n"),
        vec!["echo".to_string(), "ls".to_string()]
    );
    assert_eq!(mask_hex("twip_web_0123456789abcdef x"), "twip_web_[HEX] x");
    assert_eq!(
        mask_hex("18446744073709551615 is out"),
        "18446744073709551615 is out"
    );
    assert_eq!(
        universal_problems(&mk(Some(2), "", "a\rspoofed"), &[]).len(),
        1
    );
    assert_eq!(mask_times("took 12.5 ms, 3 s"), "took [T], 3 s");
    assert_eq!(mask_times("│ a    7.2 ms │"), "│ a [T] │");
    assert_eq!(strip_hash("x_cfg_0123abcd"), "x_cfg_HASH");
}

// ---------------------------------------------------------------------------------------
// Property test: hostile strings in every string field of the manifest model
// ---------------------------------------------------------------------------------------

/// Where a hostile value goes.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A string scalar at this path (mapping keys and sequence indexes).
    Scalar(Vec<Seg>),
    /// A user-chosen mapping key (a name: service, volume, label, variable ...) at this path;
    /// renamed everywhere it is referenced (every string holding it).
    Key(Vec<Seg>),
    /// The environment's own name (its file name).
    EnvName,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `proxy.routes[N].path`.
fn is_route_path(path: &[Seg]) -> bool {
    matches!(path, [Seg::Key(a), Seg::Key(b), Seg::Index(_), Seg::Key(c)]
        if a == "proxy" && b == "routes" && c == "path")
}

fn seg_text(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) => format!("[{i}]"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Mappings whose keys are names the manifest's author chooses (not fields of the model).
fn names_user_keys(parent: &[Seg]) -> bool {
    match parent {
        [Seg::Key(k)] => [
            "images", "services", "networks", "volumes", "secrets", "configs",
        ]
        .contains(&k.as_str()),
        [.., Seg::Key(k)] => ["labels", "environment", "args"].contains(&k.as_str()),
        _ => false,
    }
}

/// Every string scalar and every user-chosen key of the full manifest, found by walking it:
/// a field added to the fixture is covered without touching this list (and
/// `the_full_manifest_sets_every_field_of_the_schema` makes sure new fields of the model are
/// added to the fixture).
fn targets(doc: &Yaml) -> Vec<Target> {
    fn walk(y: &Yaml, path: &mut Vec<Seg>, out: &mut Vec<Target>) {
        match y {
            Yaml::Hash(h) => {
                let user = names_user_keys(path);
                for (k, v) in h {
                    let Yaml::String(k) = k else { continue };
                    path.push(Seg::Key(k.clone()));
                    if user {
                        out.push(Target::Key(path.clone()));
                    }
                    walk(v, path, out);
                    path.pop();
                }
            }
            Yaml::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push(Seg::Index(i));
                    walk(v, path, out);
                    path.pop();
                }
            }
            Yaml::String(_) => out.push(Target::Scalar(path.clone())),
            _ => {}
        }
    }
    let mut out = vec![Target::EnvName];
    walk(doc, &mut Vec::new(), &mut out);
    out
}

fn get_mut<'a>(y: &'a mut Yaml, path: &[Seg]) -> &'a mut Yaml {
    let mut cur = y;
    for s in path {
        cur = match (s, cur) {
            (Seg::Key(k), Yaml::Hash(h)) => h.get_mut(&Yaml::String(k.clone())).unwrap(),
            (Seg::Index(i), Yaml::Array(a)) => &mut a[*i],
            (s, _) => panic!("no {s:?}"),
        };
    }
    cur
}

/// Every string (scalars and keys) with `old` replaced by `new`: renames a name everywhere it
/// is used (the fixture's names are distinctive, so nothing else holds them).
fn rename_everywhere(y: &Yaml, old: &str, new: &str) -> Yaml {
    match y {
        Yaml::String(s) => Yaml::String(s.replace(old, new)),
        Yaml::Array(a) => Yaml::Array(a.iter().map(|v| rename_everywhere(v, old, new)).collect()),
        Yaml::Hash(h) => Yaml::Hash(
            h.iter()
                .map(|(k, v)| {
                    (
                        rename_everywhere(k, old, new),
                        rename_everywhere(v, old, new),
                    )
                })
                .collect(),
        ),
        o => o.clone(),
    }
}

fn emit(doc: &Yaml) -> String {
    let mut s = String::new();
    YamlEmitter::new(&mut s).dump(doc).unwrap();
    s.push('\n');
    s
}

fn full_doc() -> Yaml {
    let text = std::fs::read_to_string(hostile_dir().join("full/environments/full.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// Pieces of hostile strings: everything the issue lists, and what HAProxy, YAML, shell,
/// cloud-config, HTTP and argv treat specially.
fn hostile_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\r".to_string()),
        Just("\t".to_string()),
        Just(" ".to_string()),
        Just("#".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("$(touch @MARKER@)".to_string()),
        Just("`touch @MARKER@`".to_string()),
        Just("${TWIP_HOSTILE_SECRET}".to_string()),
        Just("-oProxyCommand=touch @MARKER@".to_string()),
        Just("--pwned".to_string()),
        Just("-".to_string()),
        Just("..".to_string()),
        Just("../../".to_string()),
        Just("/".to_string()),
        Just(":".to_string()),
        Just(": ".to_string()),
        Just("{".to_string()),
        Just("[[ stack ]]".to_string()),
        Just("{{.Task.Slot}}".to_string()),
        Just("%[src]".to_string()),
        Just("&a *a !!str".to_string()),
        Just("\u{202e}".to_string()),
        Just("\u{200b}".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{1b}[2J\u{1b}]0;pwned\u{7}".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{7f}\u{85}\u{2028}".to_string()),
        Just("\n    server pwned 203.0.113.66:80\n".to_string()),
        Just("\n    stats admin if TRUE\n".to_string()),
        Just("\r\nX-Pwned: 1\r\n\r\n".to_string()),
        Just("\n  pwned: true\n".to_string()),
        Just("\nbootcmd: [touch @MARKER@]\n".to_string()),
        Just("'; touch @MARKER@; '".to_string()),
        Just("x".repeat(5000)),
        "[a-z0-9]{1,6}",
        "\\PC{1,4}",
    ]
}

/// A hostile string, sometimes appended to the field's benign value (so that prefix checks such
/// as "a path starts with /" are passed and the rest is what is tested).
fn hostile_value() -> impl Strategy<Value = (bool, String)> {
    (
        any::<bool>(),
        prop::collection::vec(hostile_piece(), 1..4).prop_map(|v| v.concat()),
    )
}

/// What a render of the full manifest produced, reduced to what must not change.
#[derive(Debug, PartialEq)]
struct Shape {
    haproxy: Vec<String>,
    stack: Vec<String>,
    prometheus: Vec<String>,
    /// None where the command refused the value (exit 2).
    script: Option<Vec<String>>,
    cloud_init: Option<Vec<String>>,
    ssh_options: Option<Vec<Vec<String>>>,
}

struct PropSandbox {
    sb: Sandbox,
}

impl PropSandbox {
    fn new() -> PropSandbox {
        let sb = Sandbox::new();
        let full = hostile_dir().join("full");
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                if e.path().is_dir() {
                    copy(&e.path(), &to.join(e.file_name()));
                } else {
                    std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
                }
            }
        }
        copy(&full, &sb.project);
        std::fs::remove_file(sb.project.join("environments/full.yaml")).unwrap();
        PropSandbox { sb }
    }

    /// Writes the manifest as environment `env`, renders it and prints its bootstrap script;
    /// with `hosts`, also its cloud-init user-data and a bootstrap over the fake ssh (only
    /// values that can reach them need it: it keeps the test under a minute). Err(problems)
    /// when something unsafe happened, Ok(None) when it was refused, Ok(Some(shape)) when
    /// accepted.
    fn try_manifest(
        &self,
        env: &str,
        yaml: &str,
        vars: &[(String, String)],
        hosts: bool,
        secret_on_purpose: bool,
    ) -> Result<Option<Shape>, Vec<String>> {
        let sb = &self.sb;
        let envs = sb.project.join("environments");
        for e in std::fs::read_dir(&envs).unwrap() {
            let e = e.unwrap();
            if !e.file_name().to_string_lossy().starts_with('_') {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let out = sb.project.join("out");
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_file(&sb.log);
        std::fs::write(envs.join(format!("{env}.yaml")), yaml).unwrap();
        let before_root = tree_state(&sb.root, &[&sb.project, &sb.root.join("log")]);
        let mut problems = Vec::new();
        let twip = |args: &[&str]| {
            let mut cmd = twip_cmd(&sb.project, &sb.bin, vars);
            cmd.args(args);
            run_bounded(
                cmd,
                args.iter().map(|s| s.to_string()).collect(),
                RUN_DEADLINE,
            )
        };
        let render = twip(&["render", env, "-o", "out"]);
        // A value that interpolates the secret on purpose (`${TWIP_HOSTILE_SECRET}` in an
        // environment value, say) puts it into stack.yml by design; output and errors must
        // still never show it.
        let on_purpose = secret_on_purpose;
        let mut written = Vec::new();
        for f in ["stack.yml", "haproxy.cfg", "prometheus.yml"] {
            if let Ok(t) = std::fs::read_to_string(out.join(f)) {
                written.push((f.to_string(), t));
            }
        }
        problems.extend(universal_problems(
            &render,
            if on_purpose { &[] } else { &written },
        ));
        let result = match render.code {
            Some(2) => None,
            Some(0) => {
                let file = |f: &str| {
                    written
                        .iter()
                        .find(|(n, _)| n == f)
                        .map(|(_, t)| t.clone())
                        .unwrap_or_default()
                };
                if let Err(e) = haproxy_check(&out.join("haproxy.cfg")) {
                    problems.push(format!("haproxy -c refuses the render: {e}"));
                }
                let keys = |t: &str, what: &str, problems: &mut Vec<String>| {
                    match YamlLoader::load_from_str(t) {
                        Ok(d) if d.len() == 1 => yaml_key_paths(&d[0], &|k: &str| {
                            // Names from the manifest are masked by the caller's rename; hashes
                            // change with content on purpose.
                            strip_hash(k) != k
                        })
                        .into_iter()
                        .map(|p| p.split(SEP).map(strip_hash).collect::<Vec<_>>().join(SEP))
                        .collect(),
                        Ok(d) => {
                            problems.push(format!("{what}: {} YAML documents", d.len()));
                            Vec::new()
                        }
                        Err(e) => {
                            problems.push(format!("{what} is not YAML: {e}"));
                            Vec::new()
                        }
                    }
                };
                let stack = keys(&file("stack.yml"), "stack.yml", &mut problems);
                let prometheus = keys(&file("prometheus.yml"), "prometheus.yml", &mut problems);
                let print = twip(&["bootstrap", env, "--print"]);
                problems.extend(universal_problems(&print, &[]));
                // bootstrap may refuse (exit 2) what only it uses; otherwise its script must
                // be sound.
                let script = match print.code {
                    Some(0) => {
                        if let Err(e) = sh_check(&print.out()) {
                            problems.push(format!("sh -n refuses the bootstrap script: {e}"));
                        }
                        Some(shell_commands(&print.out()))
                    }
                    Some(2) => None,
                    other => {
                        problems.push(format!(
                            "render accepted it, bootstrap --print exited {other:?}: {}",
                            tail(&print.err())
                        ));
                        None
                    }
                };
                let (mut cloud_init, mut ssh_options) = (None, None);
                if hosts {
                    let ci = twip(&["bootstrap", env, "--cloud-init"]);
                    problems.extend(universal_problems(&ci, &[]));
                    if ci.code == Some(0) {
                        cloud_init = Some(keys(&ci.out(), "cloud-init user-data", &mut problems));
                    }
                    // Over "SSH": the fake ssh logs the argv twip would run (a refusal, exit
                    // 2, runs nothing).
                    let boot = twip(&["bootstrap", env, "--timeout", "1s"]);
                    problems.extend(universal_problems(&boot, &[]));
                    if boot.code != Some(2) {
                        ssh_options = Some(
                            logged_argvs(&sb.log)
                                .iter()
                                .map(|a| options_of(a))
                                .collect(),
                        );
                    }
                }
                Some(Shape {
                    haproxy: haproxy_directives(&file("haproxy.cfg")),
                    stack,
                    prometheus,
                    script,
                    cloud_init,
                    ssh_options,
                })
            }
            other => {
                problems.push(format!(
                    "render exited {other:?} (neither refused with 2 nor rendered): {}",
                    tail(&render.err())
                ));
                None
            }
        };
        if sb.marker.exists() {
            problems.push("the marker file was created".into());
        }
        if tree_state(&sb.root, &[&sb.project, &sb.root.join("log")]) != before_root {
            problems.push("files outside the project changed".into());
        }
        if problems.is_empty() {
            Ok(result)
        } else {
            Err(problems)
        }
    }
}

/// The benign render's shape, with the names of `rename` (old -> new) masked in key paths so a
/// renamed service or volume compares equal when nothing else changed.
fn masked(shape: &Shape, names: &[&str]) -> Shape {
    let m = |v: &Vec<String>| -> Vec<String> {
        let mut out: Vec<String> = v
            .iter()
            .map(|p| {
                p.split(SEP)
                    .map(|seg| {
                        if names.iter().any(|n| !n.is_empty() && seg.contains(n)) {
                            "*".to_string()
                        } else {
                            seg.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(SEP)
            })
            .collect();
        out.sort();
        out
    };
    Shape {
        haproxy: shape.haproxy.clone(),
        stack: m(&shape.stack),
        prometheus: m(&shape.prometheus),
        script: shape.script.clone(),
        cloud_init: shape.cloud_init.as_ref().map(m),
        ssh_options: shape.ssh_options.clone(),
    }
}

#[test]
fn the_full_manifest_sets_every_field_of_the_schema() {
    // Every property of every object of `twip schema` appears somewhere in the full
    // manifest, so the property test below reaches every field (a new field of the model
    // fails here until the fixture sets it).
    let out = Command::new(assert_cmd::cargo::cargo_bin("twip"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut props = BTreeSet::new();
    fn collect(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::Object(p)) = o.get("properties") {
                    out.extend(p.keys().cloned());
                }
                o.values().for_each(|x| collect(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    collect(&schema, &mut props);
    assert!(
        props.len() > 60,
        "only {} properties in the schema",
        props.len()
    );
    let mut keys = BTreeSet::new();
    fn keys_of(y: &Yaml, out: &mut BTreeSet<String>) {
        match y {
            Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
                if let Yaml::String(k) = k {
                    out.insert(k.clone());
                }
                keys_of(v, out);
            }),
            Yaml::Array(a) => a.iter().for_each(|v| keys_of(v, out)),
            _ => {}
        }
    }
    keys_of(&full_doc(), &mut keys);
    let missing: Vec<&String> = props.difference(&keys).collect();
    assert!(
        missing.is_empty(),
        "tests/fixtures/hostile/full/environments/full.yaml does not set {missing:?}"
    );
}

/// How many hostile values each field gets (TWIP_HOSTILE_CASES overrides; CI keeps the whole
/// test well under a minute).
fn cases_per_field() -> u32 {
    std::env::var("TWIP_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[test]
fn hostile_strings_in_every_string_field() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let doc = full_doc();
    let all = targets(&doc);
    let scalars = all
        .iter()
        .filter(|t| matches!(t, Target::Scalar(_)))
        .count();
    let keys = all.iter().filter(|t| matches!(t, Target::Key(_))).count();
    assert!(
        scalars >= 80 && keys >= 12,
        "{scalars} scalars, {keys} keys"
    );
    let ps = PropSandbox::new();
    let baseline = ps
        .try_manifest("full", &emit(&doc), &[], true, false)
        .unwrap_or_else(|p| panic!("the benign full manifest: {p:?}"))
        .expect("the benign full manifest renders");
    assert!(baseline.haproxy.len() > 30);
    assert!(baseline.script.as_ref().is_some_and(|s| s.len() > 20));
    assert!(baseline.cloud_init.as_ref().is_some_and(|s| s.len() > 2));
    assert!(
        baseline.ssh_options.as_ref().is_some_and(|s| !s.is_empty()),
        "bootstrap ran no ssh through the fake"
    );
    let refused = std::cell::Cell::new(0);
    let accepted = std::cell::Cell::new(0);
    let mut failures = Vec::new();
    let start = Instant::now();
    for target in &all {
        let mut runner = TestRunner::new(Config {
            cases: cases_per_field(),
            failure_persistence: None,
            max_shrink_iters: 8,
            ..Config::default()
        });
        let result = runner.run(
            &(hostile_value(), any::<bool>()),
            |((append, value), via_var)| {
                let value = ps.sb.subst(&value);
                let mut m = doc.clone();
                let mut env = "full".to_string();
                let mut vars = Vec::new();
                let mut names: Vec<String> = Vec::new();
                match target {
                    Target::Scalar(path) => {
                        let slot = get_mut(&mut m, path);
                        let old = slot.as_str().unwrap().to_string();
                        let new = if append {
                            format!("{old}{value}")
                        } else {
                            value.clone()
                        };
                        // A route at `/` is the root route: it matches every path, so its
                        // HAProxy rule has no path ACL. A shape of its own, not a hostile one.
                        prop_assume!(!(new == "/" && is_route_path(path)));
                        if via_var && !new.contains('\0') {
                            vars.push(("TWIP_HOSTILE_VALUE".to_string(), new));
                            *slot = Yaml::String("${TWIP_HOSTILE_VALUE}".into());
                        } else {
                            *slot = Yaml::String(new);
                        }
                    }
                    Target::Key(path) => {
                        let Some(Seg::Key(old)) = path.last() else {
                            unreachable!()
                        };
                        let new = if append {
                            format!("{old}{value}")
                        } else {
                            value.clone()
                        };
                        prop_assume!(!new.is_empty() && !doc_has(&doc, &new));
                        m = rename_everywhere(&m, old, &new);
                        names = vec![old.clone(), new];
                    }
                    Target::EnvName => {
                        let new = if append {
                            format!("full{value}")
                        } else {
                            value.clone()
                        };
                        prop_assume!(
                            !new.is_empty()
                                && !new.contains('/')
                                && !new.contains('\0')
                                && new != "."
                                && new != ".."
                                && new.len() < 200
                        );
                        env = new;
                    }
                }
                let text = emit(&m);
                // The emitter's escaping is the test's, not twip's: check it round-trips.
                let back = YamlLoader::load_from_str(&text).map(|mut d| d.remove(0));
                // YAML has no implicit key longer than 1024 characters, so no manifest can hold
                // such a name (the emitter writes it anyway); only those may be skipped.
                let long_key =
                    matches!(target, Target::Key(_)) && names.iter().any(|n| n.len() > 1024);
                if long_key && back.as_ref() != Ok(&m) {
                    return Ok(());
                }
                prop_assert!(
                    back.as_ref() == Ok(&m),
                    "the test's YAML does not round-trip"
                );
                let hosts = match target {
                    Target::EnvName => true,
                    Target::Scalar(p) | Target::Key(p) => matches!(
                        p.first(),
                        Some(Seg::Key(k)) if ["nodes", "engine", "description", "project", "stack", "extends"].contains(&k.as_str())
                    ),
                };
                let on_purpose = value.contains(SECRET_ENV.0);
                match ps.try_manifest(&env, &text, &vars, hosts, on_purpose) {
                    Err(p) => Err(TestCaseError::fail(p.join("\n"))),
                    Ok(None) => {
                        refused.set(refused.get() + 1);
                        Ok(())
                    }
                    Ok(Some(shape)) => {
                        accepted.set(accepted.get() + 1);
                        let n: Vec<&str> = names.iter().map(String::as_str).collect();
                        let want = masked(&baseline, &n);
                        let got = masked(&shape, &n);
                        prop_assert_eq!(&got.haproxy, &want.haproxy, "HAProxy directives");
                        prop_assert_eq!(&got.stack, &want.stack, "stack.yml key paths");
                        prop_assert_eq!(&got.prometheus, &want.prometheus, "prometheus.yml");
                        if got.script.is_some() {
                            prop_assert_eq!(&got.script, &want.script, "bootstrap commands");
                        }
                        if hosts && got.cloud_init.is_some() {
                            prop_assert_eq!(&got.cloud_init, &want.cloud_init, "user-data keys");
                        }
                        if hosts && got.ssh_options.is_some() {
                            prop_assert_eq!(&got.ssh_options, &want.ssh_options, "ssh options");
                        }
                        Ok(())
                    }
                }
            },
        );
        if let Err(e) = result {
            failures.push(format!("{}: {e}", describe(target)));
        }
    }
    let (refused, accepted) = (refused.get(), accepted.get());
    eprintln!(
        "{} targets: {refused} refused, {accepted} accepted harmlessly, in {:.1} s",
        all.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fields take a hostile value unsafely:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
    assert!(refused > 0, "no hostile value was refused");
}

fn describe(t: &Target) -> String {
    match t {
        Target::Scalar(p) => format!("the value of {}", seg_text(p)),
        Target::Key(p) => format!("the name {}", seg_text(p)),
        Target::EnvName => "the environment's name".into(),
    }
}

/// Whether any string of the document holds `s` (a rename to it would merge two names).
fn doc_has(y: &Yaml, s: &str) -> bool {
    match y {
        Yaml::String(x) => x.contains(s),
        Yaml::Array(a) => a.iter().any(|v| doc_has(v, s)),
        Yaml::Hash(h) => h.iter().any(|(k, v)| doc_has(k, s) || doc_has(v, s)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Property test: the argv builders, through the library's public API
// ---------------------------------------------------------------------------------------

/// The option names of an argv before `--`: `--tag=X` counts as `--tag` (its value is
/// attached and cannot be read as another option), `-o` as `-o`; anything else that starts
/// with `-` is an option too, and would differ from the benign argv's.
fn option_names(argv: &[&str]) -> Vec<String> {
    argv.iter()
        .skip(1)
        .take_while(|a| **a != "--")
        .filter(|a| a.starts_with('-'))
        .map(|a| match a.split_once('=') {
            Some((name, _)) if a.starts_with("--") => name.to_string(),
            _ => a.to_string(),
        })
        .collect()
}

/// Builds one argv with `value` in one slot (`slot` picks which). Ok(None) is a refusal
/// (exit 2); the benign value "benign-0" gives the baseline.
fn build_argv(slot: usize, value: &str) -> Result<Option<Vec<String>>, String> {
    use twip::exec::buildx::{build, BuildSpec};
    use twip::exec::ssh::SshHost;
    use twip::exec::{docker, Cmd};
    let v = value.to_string();
    let host = |user: &str, host: &str| SshHost {
        user: user.to_string(),
        host: host.to_string(),
        port: Some(2222),
        identity_file: Some(PathBuf::from("/keys/id")),
        strict_host_key_checking: true,
    };
    let spec = |f: &dyn Fn(&mut BuildSpec)| {
        let mut s = BuildSpec::new("/ctx");
        s.platforms = vec!["linux/amd64".into()];
        s.tags = vec!["registry.example.com/app:1".into()];
        s.build_args.insert("ARG".into(), "x".into());
        s.target = Some("stage".into());
        s.dockerfile = Some(PathBuf::from("/ctx/Dockerfile"));
        f(&mut s);
        build(&s)
    };
    let r: anyhow::Result<Cmd> = match slot {
        0 => host(&v, "10.0.0.1").script("ssh"),
        1 => host("deploy", &v).script("ssh"),
        2 => host(&v, "10.0.0.1").forward_socket("ssh", Path::new("/tmp/s"), "/run/docker.sock"),
        3 => host("deploy", &v).forward_socket("ssh", Path::new("/tmp/s"), "/run/docker.sock"),
        4 => docker::push(&v),
        5 => docker::tag("app:1", &v),
        6 => docker::tag(&v, "app:1"),
        7 => docker::image_id(&v),
        8 => spec(&|s| s.tags = vec![v.clone()]),
        9 => spec(&|s| s.platforms = vec![v.clone()]),
        10 => spec(&|s| s.target = Some(v.clone())),
        11 => spec(&|s| {
            s.build_args.insert(v.clone(), "x".into());
        }),
        12 => spec(&|s| {
            s.build_args.insert("ARG".into(), v.clone());
        }),
        13 => spec(&|s| s.dockerfile = Some(PathBuf::from(v.clone()))),
        14 => spec(&|s| s.context = PathBuf::from(v.clone())),
        15 => twip::exec::buildx::imagetools_inspect(&v),
        _ => unreachable!(),
    };
    match r {
        Ok(c) => Ok(Some(c.argv().iter().map(|s| s.to_string()).collect())),
        Err(e) if twip::exit::code_for(&e) == 2 => {
            let msg = format!("{e:#}");
            if msg.to_ascii_lowercase().contains(SECRET_MARK) {
                return Err(format!("the refusal shows the value: {msg}"));
            }
            Ok(None)
        }
        Err(e) => Err(format!(
            "refused with exit {}: {e:#}",
            twip::exit::code_for(&e)
        )),
    }
}

#[test]
fn no_argv_builder_turns_a_value_into_an_option() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    const SLOTS: usize = 16;
    let mut failures = Vec::new();
    for slot in 0..SLOTS {
        let base = build_argv(slot, "benign-0")
            .unwrap_or_else(|e| panic!("slot {slot}: {e}"))
            .unwrap_or_else(|| panic!("slot {slot}: the benign value is refused"));
        let base_refs: Vec<&str> = base.iter().map(String::as_str).collect();
        let want = option_names(&base_refs);
        let mut runner = TestRunner::new(Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        });
        let r = runner.run(&hostile_value(), |(append, value)| {
            let value = if append {
                format!("benign-0{value}")
            } else {
                value
            };
            match build_argv(slot, &value) {
                Err(e) => Err(TestCaseError::fail(e)),
                Ok(None) => Ok(()),
                Ok(Some(argv)) => {
                    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
                    prop_assert_eq!(option_names(&refs), want.clone(), "argv {:?}", argv);
                    prop_assert_eq!(argv.len(), base.len(), "argv {:?}", argv);
                    Ok(())
                }
            }
        });
        if let Err(e) = r {
            failures.push(format!("argv slot {slot}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Negative control: a builder that put the value first would be caught.
    assert_ne!(
        option_names(&["ssh", "-oProxyCommand=x", "--", "host"]),
        option_names(&["ssh", "--", "-oProxyCommand=x"])
    );
}
