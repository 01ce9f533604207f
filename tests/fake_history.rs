//! The audit trail through the in-memory swarm (no daemon): each change recorded with who,
//! the command, the plan, the images and the outcome; `twip history`'s list, one release
//! with its diff (never a secret or an environment value), and `rollback --to N`.

mod fake_support;

use fake_support::{code, World, APP};
use twip::lifecycle::history;
use twip::lifecycle::lock::{scoped, Operation};

fn op(user: &str, command: &str) -> Operation {
    Operation {
        command: command.into(),
        user: user.into(),
        host: "box".into(),
        reason: String::new(),
        hooks: true,
    }
}

async fn releases(w: &World) -> Vec<twip::engine::releases::Release> {
    history::list(&w.deployment(&w.env())).await.unwrap()
}

/// Three deploys by two people and a scale.
async fn four_changes(w: &World) {
    let v = |tag: &str| w.env_with(&[("TWIP_DRIFT_IMAGE", tag)]);
    scoped(op("alice", "up"), w.up(&v("twip/base:v1")))
        .await
        .unwrap();
    scoped(op("bob", "up"), w.up(&v("twip/base:v2")))
        .await
        .unwrap();
    w.edit("GREETING: hello", "GREETING: bonjour");
    scoped(op("alice", "up"), w.up(&v("twip/base:v2")))
        .await
        .unwrap();
    scoped(
        op("bob", "scale app=2"),
        w.scale(&v("twip/base:v2"), "app", 2),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn each_change_is_recorded_with_who_the_command_the_plan_and_the_images() {
    let w = World::new();
    four_changes(&w).await;
    let list = releases(&w).await;
    let who: Vec<(u64, &str, &str, &str)> = list
        .iter()
        .map(|r| {
            (
                r.seq,
                r.user.as_str(),
                r.command.as_str(),
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            (1, "alice", "up", "converged"),
            (2, "bob", "up", "converged"),
            (3, "alice", "up", "converged"),
            (4, "bob", "scale app=2", "converged")
        ]
    );
    assert_eq!(list[1].images[APP], "twip/base:v2");
    assert_eq!(list[0].host, "box");
    // The plan executed: the first created everything, the second updated both services.
    assert!(list[0]
        .plan
        .iter()
        .any(|s| s.op == "create" && s.name == APP));
    let updated: Vec<&str> = list[1]
        .plan
        .iter()
        .filter(|s| s.op == "update")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(updated, [APP, "driftfixture_worker"]);
    assert!(
        list[3].plan.iter().all(|s| s.op == "scale"),
        "{:?}",
        list[3].plan
    );
    assert_eq!(list[3].plan.len(), 1);

    let table = history::table("driftfixture", "driftfixture", &list);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    assert!(lines[1].starts_with("#  time"), "{table}");
    assert!(lines[2].starts_with("4  2026-01-01T"), "{table}");
    assert!(
        lines[2].contains("bob    scale app=2  converged  twip/base:v2"),
        "{table}"
    );
    assert!(
        lines[5].contains("alice  up           converged  twip/base:v1"),
        "{table}"
    );
}

#[tokio::test]
async fn one_release_shows_its_plan_and_what_changed_without_values() {
    let w = World::new();
    four_changes(&w).await;
    let list = releases(&w).await;
    let (r2, p1) = history::find("driftfixture", &list, 2).unwrap();
    assert_eq!(p1.as_ref().map(|p| p.seq), Some(1));
    let text = history::show(&r2, p1.as_ref());
    assert!(text.starts_with("release 2: 2026-01-01T"), "{text}");
    assert!(
        text.contains(" by bob@box\n  command: up\n  outcome: converged\n"),
        "{text}"
    );
    assert!(
        text.contains("plan:\n  update service driftfixture_app: "),
        "{text}"
    );
    assert!(
        text.contains("  driftfixture_app: image twip/base:v1 → twip/base:v2\n"),
        "{text}"
    );
    // The environment change of release 3: its key, never its values.
    let (r3, p2) = history::find("driftfixture", &list, 3).unwrap();
    let d = history::diff(p2.as_ref(), &r3);
    assert_eq!(d, ["driftfixture_app: environment key GREETING changed"]);
    let text = history::show(&r3, p2.as_ref());
    assert!(
        !text.contains("bonjour") && !text.contains("hello"),
        "{text}"
    );
    // The scale: replicas.
    let (r4, p3) = history::find("driftfixture", &list, 4).unwrap();
    assert_eq!(
        history::diff(p3.as_ref(), &r4),
        ["driftfixture_app: replicas 1 → 2"]
    );
    // The first release: every service added; its secret by name only.
    let (r1, none) = history::find("driftfixture", &list, 1).unwrap();
    assert!(none.is_none());
    let text = history::show(&r1, None);
    assert!(
        text.contains("driftfixture_app: service added (twip/base:v1)"),
        "{text}"
    );
    assert!(!text.contains("never printed"), "{text}");
    let json = serde_json::to_string(&history::to_json(&r1, None, true)).unwrap();
    assert!(
        !json.contains("never printed") && !json.contains("hello"),
        "{json}"
    );
    // A release that is not kept.
    let e = history::find("driftfixture", &list, 9).unwrap_err();
    assert_eq!(twip::exit::code_for(&e), 2);
    assert_eq!(
        e.to_string(),
        "driftfixture: no release 9 (kept: 1, 2, 3, 4)"
    );
}

#[tokio::test]
async fn rollback_to_a_release_is_recorded_as_a_new_one() {
    let w = World::new();
    four_changes(&w).await;
    let env = w.env_with(&[("TWIP_DRIFT_IMAGE", "twip/base:v2")]);
    let r = scoped(
        op("carol", "rollback --to 1"),
        w.rollback(&env, None, Some(1)),
    )
    .await;
    assert_eq!(code(&r), 0, "{r:?}");
    assert_eq!(w.image(APP), "twip/base:v1");
    // The replicas that run are kept (the scale of release 4).
    assert_eq!(w.replicas(APP), Some(2));
    let list = releases(&w).await;
    let last = list.last().unwrap();
    assert_eq!(
        (
            last.seq,
            last.user.as_str(),
            last.command.as_str(),
            last.outcome.as_str()
        ),
        (5, "carol", "rollback --to 1", "converged")
    );
    assert_eq!(last.images[APP], "twip/base:v1");
    assert!(last
        .plan
        .iter()
        .any(|s| s.cause.starts_with("back to release 1")));
    // Its diff to release 4 shows the way back.
    let (r5, p4) = history::find("driftfixture", &list, 5).unwrap();
    let d = history::diff(p4.as_ref(), &r5);
    assert!(
        d.contains(&"driftfixture_app: image twip/base:v2 → twip/base:v1".to_string()),
        "{d:?}"
    );
    assert!(
        d.contains(&"driftfixture_app: environment key GREETING changed".to_string()),
        "{d:?}"
    );
}

#[tokio::test]
async fn records_from_before_the_audit_fields_read_as_unknown() {
    use base64::Engine as _;
    let w = World::new();
    w.up(&w.env()).await.unwrap();
    // A release as older twip versions wrote it: number, time and specs only.
    let old = serde_json::json!({"seq": 7, "created": 1767225600u64, "services": {}});
    let labels = std::collections::HashMap::from([
        (
            "com.docker.stack.namespace".to_string(),
            "driftfixture".to_string(),
        ),
        ("io.twip.release".to_string(), "7".to_string()),
    ]);
    twip::engine::SwarmApi::create_config(
        &w.fake,
        twip::engine::model::ConfigSpec {
            name: Some("driftfixture_twip-release-000007".into()),
            labels: Some(labels),
            data: Some(base64::engine::general_purpose::STANDARD.encode(old.to_string())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let list = releases(&w).await;
    assert_eq!(list.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 7]);
    let table = history::table("driftfixture", "driftfixture", &list);
    assert!(
        table
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("7  2026-01-01T00:00:00Z  unknown  unknown  unknown"),
        "{table}"
    );
    let v = history::to_json(&list[1], Some(&list[0]), true);
    assert_eq!(v["user"], "unknown");
    assert_eq!(v["outcome"], "unknown");
}
