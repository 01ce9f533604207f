//! Hooks through the in-memory swarm (no daemon): the project's hooks/ run with the TWIP_*
//! variables in the project's folder; a failing pre- hook changes nothing; --no-hooks skips
//! them.

mod fake_support;

use std::os::unix::fs::PermissionsExt;

use fake_support::{code, World, APP};
use twip::lifecycle::lock::{scoped, Operation};

fn op(command: &str, hooks: bool) -> Operation {
    Operation {
        command: command.into(),
        user: "alice".into(),
        host: "box".into(),
        reason: String::new(),
        hooks,
    }
}

/// A hook that writes its TWIP_ variables and its working directory to NAME.env.
fn hook(w: &World, name: &str, body: &str, executable: bool) {
    let dir = w.dir.path().join("hooks");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn recorder(w: &World, name: &str) {
    hook(
        w,
        name,
        &format!("env | grep '^TWIP_' | sort > {name}.env\necho \"PWD=$(pwd)\" >> {name}.env"),
        true,
    );
}

fn written(w: &World, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(w.dir.path().join(format!("{name}.env"))).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

#[tokio::test]
async fn pre_and_post_deploy_run_with_their_variables_in_the_project() {
    let w = World::new();
    recorder(&w, "pre-deploy");
    recorder(&w, "post-deploy");
    let r = scoped(op("up", true), w.up(&w.env())).await;
    assert_eq!(code(&r), 0, "{r:?}");
    let pwd = format!("PWD={}", w.dir.path().canonicalize().unwrap().display());
    let want = |release: &str| {
        vec![
            "TWIP_COMMAND=up".to_string(),
            "TWIP_ENV=driftfixture".into(),
            format!("TWIP_RELEASE={release}"),
            "TWIP_SERVICES=app,worker".into(),
            "TWIP_STACK=driftfixture".into(),
            "TWIP_USER=alice".into(),
            pwd.clone(),
        ]
    };
    assert_eq!(written(&w, "pre-deploy").unwrap(), want("1"));
    assert_eq!(written(&w, "post-deploy").unwrap(), want("1"));
    assert_eq!(w.releases().await, vec![1]);
}

#[tokio::test]
async fn a_failing_pre_deploy_hook_changes_nothing() {
    let w = World::new();
    hook(&w, "pre-deploy", "echo 'checks failed' >&2\nexit 3", true);
    recorder(&w, "post-deploy");
    let r = scoped(op("up", true), w.up(&w.env())).await;
    assert_eq!(code(&r), 1, "{r:?}");
    assert_eq!(
        r.unwrap_err().to_string(),
        "driftfixture: the pre-deploy hook (hooks/pre-deploy) exited with code 3; nothing was changed (--no-hooks skips hooks)"
    );
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
    assert!(w.fake.inspect(APP).is_none());
    assert!(w.releases().await.is_empty());
    assert!(written(&w, "post-deploy").is_none());
}

#[tokio::test]
async fn a_hook_that_is_not_executable_is_an_error_that_says_chmod() {
    let w = World::new();
    hook(&w, "pre-deploy", "exit 0", false);
    let r = scoped(op("up", true), w.up(&w.env())).await;
    assert_eq!(code(&r), 2, "{r:?}");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("`chmod +x hooks/pre-deploy`"));
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
}

#[tokio::test]
async fn no_hooks_skips_them() {
    let w = World::new();
    recorder(&w, "pre-deploy");
    hook(&w, "post-deploy", "exit 1", true);
    let r = scoped(op("up", false), w.up(&w.env())).await;
    assert_eq!(code(&r), 0, "{r:?}");
    assert!(written(&w, "pre-deploy").is_none());
    assert_eq!(w.running(APP), 1);
}

#[tokio::test]
async fn post_rollback_runs_after_a_rollback_and_a_failed_post_hook_leaves_the_change() {
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    let v2 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    w.up(&v2).await.unwrap();
    recorder(&w, "post-rollback");
    hook(&w, "post-deploy", "exit 4", true);
    let r = scoped(op("rollback --to 1", true), w.rollback(&v2, None, Some(1))).await;
    assert_eq!(code(&r), 0, "{r:?}");
    let vars = written(&w, "post-rollback").unwrap();
    assert!(
        vars.contains(&"TWIP_COMMAND=rollback --to 1".to_string()),
        "{vars:?}"
    );
    assert!(vars.contains(&"TWIP_RELEASE=3".to_string()), "{vars:?}");
    // post-deploy fails after an up: exit 1, but the change is done and recorded.
    let v3 = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v3")]);
    let r = scoped(op("up", true), w.up(&v3)).await;
    assert_eq!(code(&r), 1, "{r:?}");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("the post-deploy hook (hooks/post-deploy) exited with code 4; the change itself is done (release 4)"));
    assert_eq!(w.image(APP), "twip/base:v3");
    assert_eq!(w.releases().await, vec![1, 2, 3, 4]);
}
