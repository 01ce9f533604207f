//! The command line as a user meets it: help with examples everywhere, exit codes, the
//! environment shortcuts, completions, the schema, init, and the generated docs.

mod common;

use clap::CommandFactory;
use common::{repo, twip};
use twip::cli::Cli;

fn all_commands(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        if sub.has_subcommands() {
            all_commands(sub, p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_command_has_help_with_examples() {
    let mut cmds = Vec::new();
    all_commands(&Cli::command(), Vec::new(), &mut cmds);
    assert!(cmds.len() >= 25, "{cmds:?}");
    for c in cmds {
        let out = twip().args(&c).arg("--help").output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{c:?}");
        assert!(
            s.contains("Examples:"),
            "`twip {}` --help has no examples:\n{s}",
            c.join(" ")
        );
        assert!(s.contains("Usage: twip"), "{c:?}");
    }
}

#[test]
fn top_level_help_documents_exit_codes_and_shortcuts() {
    let out = twip().arg("--help").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains(twip::exit::EXIT_CODES_HELP), "{s}");
    assert!(s.contains("twip train CMD"), "{s}");
}

#[test]
fn usage_errors_exit_2() {
    let out = twip().args(["scale", "training", "web"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`web` is not SERVICE=COUNT, e.g. web=3"),
        "{err}"
    );
    let out = twip().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
}

#[test]
fn unknown_environment_is_invalid_input_with_a_hint() {
    let out = twip()
        .arg("--project-dir")
        .arg(repo())
        .args(["render", "productoin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no environment `productoin`"), "{err}");
    assert!(err.contains("did you mean `production`?"), "{err}");
}

#[test]
fn certs_renew_without_acme_is_invalid_input() {
    let out = twip()
        .arg("--project-dir")
        .arg(repo())
        .args(["certs", "renew", "production", "--force"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no ACME certificate (no proxy.tls.acme)"),
        "{err}"
    );
}

#[test]
fn outside_a_project_the_error_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = twip()
        .current_dir(tmp.path())
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no environments/ directory") && err.contains("twip init"),
        "{err}"
    );
}

#[test]
fn train_and_prod_shortcuts_name_the_environment() {
    let a = twip()
        .current_dir(repo())
        .args(["train", "render", "-o", "-"])
        .output()
        .unwrap();
    let b = twip()
        .current_dir(repo())
        .args(["render", "training", "-o", "-"])
        .output()
        .unwrap();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let p = twip()
        .current_dir(repo())
        .args(["prod", "render", "-o", "-"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&p.stdout).contains("environment production"));
}

#[test]
fn validate_reports_each_environment() {
    let out = twip().current_dir(repo()).arg("validate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for e in ["training", "production", "scaled"] {
        assert!(err.contains(&format!("✓ {e}")), "{err}");
    }
    // NO_COLOR (set by the helper) and a pipe: no escape codes.
    assert!(!err.contains('\u{1b}'), "{err:?}");
    let out = twip()
        .current_dir(repo())
        .args(["validate", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["environments"].as_array().unwrap().len(), 3);
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = twip().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains("twip") && s.contains("validate"), "{shell}");
    }
}

#[test]
fn schema_is_draft_07_and_the_committed_copy_is_current() {
    let out = twip().arg("schema").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(v["properties"]["services"].is_object());
    assert_eq!(v["additionalProperties"], false);
    let committed = std::fs::read_to_string(repo().join("docs/twip.schema.json")).unwrap();
    assert_eq!(
        committed,
        String::from_utf8_lossy(&out.stdout),
        "docs/twip.schema.json is stale: run `twip schema > docs/twip.schema.json`"
    );
}

#[test]
fn docs_commands_matches_the_help() {
    let out = twip().arg("docs-commands").output().unwrap();
    let committed = std::fs::read_to_string(repo().join("docs/commands.md")).unwrap();
    assert_eq!(
        committed,
        String::from_utf8_lossy(&out.stdout),
        "docs/commands.md is stale: run `cargo run -q -- docs-commands > docs/commands.md`"
    );
}

#[test]
fn init_makes_a_project_that_validates_and_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let out = twip().arg("init").arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "environments/training.yaml",
        "images/app/Dockerfile",
        "templates/stack.yml.j2",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let v = twip().current_dir(&dir).arg("validate").output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let r = twip()
        .current_dir(&dir)
        .args(["render", "training"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stack = std::fs::read_to_string(dir.join("build/training/stack.yml")).unwrap();
    assert!(stack.contains("image: \"shop/app:latest\""), "{stack}");
    // A second init refuses to overwrite, and writes nothing.
    std::fs::write(dir.join("images/app/Dockerfile"), "FROM mine\n").unwrap();
    let again = twip().arg("init").arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already has environments/training.yaml")
            && err.contains("nothing was written (use --force to overwrite)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("images/app/Dockerfile")).unwrap(),
        "FROM mine\n"
    );
}

#[test]
fn engine_commands_validate_before_saying_they_are_not_available() {
    let dir = repo().join("tests/fixtures/invalid");
    let out = twip()
        .arg("--project-dir")
        .arg(&dir)
        .args(["up", "wrong-type-replicas"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an invalid manifest is reported first: {err}"
    );
    assert!(
        err.contains("environments/wrong-type-replicas.yaml:4:15: services.web.replicas:"),
        "{err}"
    );
}

/// A stand-in for the system ssh client, first on PATH: it records its argv (one element a
/// line) and, like the real one, reads options up to `--` (also after the destination) and
/// runs a `-oProxyCommand=` it finds there with the shell. Then it fails as a refused login.
struct FakeSsh {
    dir: tempfile::TempDir,
}

impl FakeSsh {
    fn new() -> FakeSsh {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let ssh = dir.path().join("bin/ssh");
        std::fs::write(
            &ssh,
            "#!/bin/sh\n\
             for a in \"$@\"; do printf '%s\\n' \"$a\"; done >> \"$FAKE_SSH_LOG\"\n\
             for a in \"$@\"; do\n\
               case \"$a\" in\n\
                 --) break ;;\n\
                 -oProxyCommand=*) sh -c \"${a#-oProxyCommand=}\" ;;\n\
               esac\n\
             done\n\
             echo 'Permission denied (publickey).' >&2\n\
             exit 255\n",
        )
        .unwrap();
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.path().join("project/environments")).unwrap();
        FakeSsh { dir }
    }

    fn marker(&self) -> std::path::PathBuf {
        self.dir.path().join("pwned")
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("ssh-argv")
    }

    fn path_var(&self) -> std::ffi::OsString {
        let mut p = self.dir.path().join("bin").into_os_string();
        p.push(":");
        p.push(std::env::var_os("PATH").unwrap_or_default());
        p
    }

    /// `environments/boot.yaml`: a manager and a worker, the given ssh users.
    fn manifest(&self, manager_user: &str, worker_user: &str) {
        std::fs::write(
            self.dir.path().join("project/environments/boot.yaml"),
            format!(
                "nodes:\n  - name: m1\n    address: 192.0.2.10\n    role: manager\n    ssh:\n      user: {manager_user:?}\n\
                 \x20 - name: w1\n    address: 127.0.0.1\n    role: worker\n    ssh:\n      user: {worker_user:?}\n\
                 services:\n  web:\n    image: nginx:1\n"
            ),
        )
        .unwrap();
    }

    fn twip(&self, args: &[&str]) -> std::process::Output {
        twip()
            .env("PATH", self.path_var())
            .env("FAKE_SSH_LOG", self.log())
            .arg("--project-dir")
            .arg(self.dir.path().join("project"))
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    }
}

#[test]
fn the_fake_ssh_runs_an_injected_proxy_command_as_ssh_would() {
    // Negative control: the argv twip built before `--` and the refusal (the user glued to
    // the host, nothing ending the options) makes the stand-in run the command.
    let f = FakeSsh::new();
    let user = format!("-oProxyCommand=touch {} #", f.marker().display());
    let out = std::process::Command::new(f.dir.path().join("bin/ssh"))
        .env("FAKE_SSH_LOG", f.log())
        .args([
            "-o",
            "BatchMode=yes",
            &format!("{user}@127.0.0.1"),
            "sh",
            "-s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(f.marker().exists(), "the stand-in must behave like ssh");
}

#[test]
fn an_ssh_user_that_reads_as_an_option_runs_nothing() {
    let f = FakeSsh::new();
    let hostile = format!("-oProxyCommand=touch {} #", f.marker().display());
    f.manifest("root", &hostile);
    let out = f.twip(&["bootstrap", "boot", "w1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ssh.user"), "{stderr}");
    assert!(!f.marker().exists(), "the injected command ran");
    assert!(!f.log().exists(), "ssh was started: {stderr}");

    // The manager's user reaches the API client's ssh through an ssh:// URL: refused too.
    f.manifest(&hostile, "root");
    let out = f.twip(&["swarm", "join", "boot"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ssh.user"), "{stderr}");
    assert!(!f.marker().exists(), "the injected command ran");
    assert!(!f.log().exists(), "ssh was started: {stderr}");
}

#[test]
fn a_plain_ssh_user_reaches_ssh_after_dashes() {
    // Positive control: the same path with a good user starts ssh, destination after `--`.
    let f = FakeSsh::new();
    f.manifest("root", "deploy");
    let out = f.twip(&["bootstrap", "boot", "w1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let argv: Vec<String> = std::fs::read_to_string(f.log())
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let dashes = argv.iter().position(|a| a == "--").expect("`--` in argv");
    assert_eq!(argv[dashes + 1], "deploy@127.0.0.1", "{argv:?}");
    assert_eq!(&argv[dashes + 2..], ["sudo", "-n", "sh", "-s"], "{argv:?}");
    let own = ["-o", "-p", "-i"];
    let options: Vec<&String> = argv[..dashes]
        .iter()
        .filter(|a| a.starts_with('-'))
        .collect();
    assert!(options.len() >= 3, "{argv:?}");
    for a in options {
        assert!(
            own.contains(&a.as_str()),
            "`{a}` is not twip's own: {argv:?}"
        );
    }
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the panic trigger exists only in debug builds"
)]
fn a_panic_is_one_line_and_exit_70_whatever_rust_backtrace_says() {
    let mut seen = 0;
    for (how, backtrace) in [("1", "1"), ("1", "full"), ("task", "1"), ("1", "0")] {
        let out = twip()
            .env("TWIP_TEST_PANIC", how)
            .env("RUST_BACKTRACE", backtrace)
            .arg("schema")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(70), "{how}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{how}: {stderr}");
        assert!(
            stderr.starts_with("twip: internal error: TWIP_TEST_PANIC"),
            "{stderr}"
        );
        assert!(
            stderr
                .trim_end()
                .ends_with(&format!("; please report it to {}", twip::exit::REPORT_TO)),
            "{stderr}"
        );
        assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
        assert!(!stderr.contains("panicked at"), "{stderr}");
        assert!(!stderr.contains('\u{1b}'), "{stderr}");
        seen += 1;
    }
    assert_eq!(seen, 4);
    // Without the trigger the same command succeeds (the trigger is what failed above).
    let out = twip().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_readme_exit_code_table_is_the_one_in_the_code() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("## Exit codes")
        .nth(1)
        .expect("README has an Exit codes section");
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let want: Vec<String> = twip::exit::TABLE
        .iter()
        .map(|(c, m)| format!("| {c} | {m} |"))
        .collect();
    assert!(want.len() >= 7);
    assert_eq!(rows, want);
}

#[test]
fn errors_show_terminal_controls_escaped_and_no_url_credentials() {
    let out = twip()
        .arg("--project-dir")
        .arg(repo())
        .args([
            "render",
            "pwn\u{1b}]0;title\u{7}\u{1b}[2J\u{202e}",
            "-o",
            "-",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pwn\\x1b]0;title\\x07\\x1b[2J\\u{202e}"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "{stderr}"
    );

    // A usage error quotes what was typed.
    let out = twip()
        .args(["pw\u{1b}[2Jn\u{9b}31m\u{202e}"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unrecognized subcommand"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{9b}') && !stderr.contains('\u{202e}'),
        "{stderr}"
    );

    for verbose in [false, true] {
        let mut cmd = twip();
        cmd.arg("--project-dir").arg(repo());
        if verbose {
            cmd.arg("-v");
        }
        let out = cmd
            .args([
                "--host",
                "tcp://ci:s3cr3t@192.0.2.1:2376",
                "status",
                "training",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("tcp://***@192.0.2.1:2376"), "{stderr}");
        assert!(!stderr.contains("s3cr3t"), "{stderr}");
    }
}

/// `twip build` runs the project's hooks/pre-build first; a failing one builds nothing (no
/// engine is needed to see it: the hook runs before buildx is looked at), `--no-hooks` skips it.
#[test]
fn build_runs_the_pre_build_hook_first_and_stops_when_it_fails() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let out = twip().arg("init").arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir_all(dir.join("hooks")).unwrap();
    let hook = dir.join("hooks/pre-build");
    std::fs::write(
        &hook,
        "#!/bin/sh\nenv | grep '^TWIP_' | sort > pre-build.env\necho 'lint failed' >&2\nexit 4\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = twip()
        .current_dir(&dir)
        .env("TWIP_USER", "carol")
        .env("DOCKER_HOST", "unix:///nonexistent/twip-test.sock")
        .args(["build", "training"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pre-build | lint failed"), "{err}");
    assert!(
        err.contains(
            "training: the pre-build hook (hooks/pre-build) exited with code 4; nothing was changed"
        ),
        "{err}"
    );
    let vars = std::fs::read_to_string(dir.join("pre-build.env")).unwrap();
    for want in [
        "TWIP_COMMAND=build",
        "TWIP_ENV=training",
        "TWIP_RELEASE=",
        "TWIP_SERVICES=app,proxy",
        "TWIP_USER=carol",
    ] {
        assert!(vars.lines().any(|l| l == want), "{want} in:\n{vars}");
    }
    // --no-hooks: the hook does not run (its file is not rewritten), the build goes on to
    // whatever comes next (here: no engine at that socket, so it fails otherwise).
    std::fs::remove_file(dir.join("pre-build.env")).unwrap();
    let out = twip()
        .current_dir(&dir)
        .env("DOCKER_HOST", "unix:///nonexistent/twip-test.sock")
        .args(["build", "training", "--no-hooks"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("pre-build"), "{err}");
    assert!(!dir.join("pre-build.env").exists(), "{err}");
}

#[test]
fn the_agent_refuses_a_missing_or_malformed_config_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = twip()
        .args(["agent", "--config"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the agent's config"), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"env\": \"x\", \"stack\": \"x\", \"unknown\": 1}").unwrap();
    let out = twip()
        .args(["agent", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field"), "{err}");
}
