//! The in-cluster agent as a service of the stack, through the in-memory swarm (no daemon):
//! `agent: {enabled: true}` deploys `STACK_agent` with its spec (socket, config, manager,
//! restart), without the key (no controller has work) or with `enabled: false` there is none,
//! and the agent's records and pending requests are kept by `up` and removed by `down`.

mod fake_support;

use fake_support::{code, World};
use twip::engine::model::{MountType, TaskSpecRestartPolicyConditionEnum};
use twip::engine::records::{self, Record};
use twip::engine::requests;
use twip::plan::{Op, Resource};

const AGENT: &str = "driftfixture_agent";

fn with_agent(w: &World, enabled: Option<bool>) {
    let path = w.dir.path().join("environments/driftfixture.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    if let Some(e) = enabled {
        text.push_str(&format!("\nagent:\n  enabled: {e}\n"));
    }
    std::fs::write(&path, text).unwrap();
}

#[tokio::test]
async fn an_enabled_agent_is_a_service_on_a_manager_with_the_socket_and_its_config() {
    let w = World::new();
    with_agent(&w, Some(true));
    let env = w.env();
    assert_eq!(code(&w.up(&env).await), 0);
    assert_eq!(w.running(AGENT), 1);
    let spec = w.fake.inspect(AGENT).unwrap().spec.unwrap();
    let labels = spec.labels.clone().unwrap();
    assert_eq!(
        labels.get("io.twip.agent").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        labels.get("com.docker.stack.namespace").map(String::as_str),
        Some("driftfixture")
    );
    assert_eq!(
        spec.mode.unwrap().replicated.unwrap().replicas,
        Some(1),
        "one agent"
    );
    let task = spec.task_template.unwrap();
    let c = task.container_spec.unwrap();
    let image = c.image.unwrap();
    let hash = twip::lifecycle::agent_image::binary_hash().unwrap();
    assert_eq!(image, format!("twip/twip-agent:{hash}"));
    assert_eq!(c.command, Some(vec!["twip".to_string()]));
    assert_eq!(c.args, Some(vec!["agent".to_string()]));
    let mounts = c.mounts.unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].typ, Some(MountType::BIND));
    assert_eq!(mounts[0].source.as_deref(), Some("/var/run/docker.sock"));
    assert_eq!(mounts[0].target.as_deref(), Some("/var/run/docker.sock"));
    let configs = c.configs.unwrap();
    assert_eq!(configs.len(), 1);
    let file = configs[0].file.clone().unwrap();
    assert_eq!(file.name.as_deref(), Some(twip::agent::CONFIG_PATH));
    let config_name = configs[0].config_name.clone().unwrap();
    assert!(
        config_name.starts_with("driftfixture_twip_agent_"),
        "{config_name}"
    );
    assert_eq!(
        task.placement.unwrap().constraints,
        Some(vec!["node.role == manager".to_string()])
    );
    assert_eq!(
        task.restart_policy.unwrap().condition,
        Some(TaskSpecRestartPolicyConditionEnum::ANY)
    );
    let nets = task.networks.unwrap();
    assert_eq!(nets.len(), 1, "{nets:?}");
    // The config mounted is the rendered agent.json, and parses as the agent's config.
    let rendered = std::fs::read_to_string(w.dir.path().join("build/driftfixture/agent.json"))
        .expect("agent.json rendered");
    let parsed: twip::agent::AgentConfig = serde_json::from_str(&rendered).unwrap();
    assert_eq!(parsed.stack, "driftfixture");
    assert_eq!(parsed.env, "driftfixture");
    // A second up changes nothing.
    let plan = w.plan(&env).await;
    assert!(plan.is_empty(), "{plan}");
}

#[tokio::test]
async fn no_agent_without_work_or_when_disabled() {
    for enabled in [None, Some(false)] {
        let w = World::new();
        with_agent(&w, enabled);
        let env = w.env();
        assert_eq!(code(&w.up(&env).await), 0);
        assert!(w.fake.inspect(AGENT).is_none(), "{enabled:?}");
        assert!(!w.dir.path().join("build/driftfixture/agent.json").exists());
        // The rest of the stack is there (the negative control is not an empty stack).
        assert_eq!(w.running(fake_support::APP), 1);
    }
}

#[tokio::test]
async fn turning_the_agent_off_removes_its_service() {
    let w = World::new();
    with_agent(&w, Some(true));
    assert_eq!(code(&w.up(&w.env()).await), 0);
    assert!(w.fake.inspect(AGENT).is_some());
    w.edit("enabled: true", "enabled: false");
    let plan = w.plan(&w.env()).await;
    let removed: Vec<(Resource, String)> = plan
        .actions
        .iter()
        .filter(|a| a.op == Op::Remove)
        .map(|a| (a.resource, a.name.clone()))
        .collect();
    assert!(
        removed.contains(&(Resource::Service, AGENT.to_string())),
        "{plan}"
    );
    // Its config stays while a kept release refers to it (a rollback brings the agent back).
    assert!(
        !removed
            .iter()
            .any(|(r, n)| *r == Resource::Config && n.starts_with("driftfixture_twip_agent_")),
        "{plan}"
    );
}

#[tokio::test]
async fn the_agents_records_and_requests_are_kept_by_up_and_removed_by_down() {
    let w = World::new();
    with_agent(&w, Some(true));
    let env = w.env();
    assert_eq!(code(&w.up(&env).await), 0);
    let record = Record {
        controller: "jobs".into(),
        decision: "nothing due".into(),
        error: false,
        at: 1,
        request: Some("00000000000000aa".into()),
        outcome: None,
    };
    records::write(&w.fake, "driftfixture", &record)
        .await
        .unwrap();
    let request = requests::Request::new("certificates", true);
    requests::ask(&w.fake, "driftfixture", &request)
        .await
        .unwrap();
    let plan = w.plan(&env).await;
    assert!(
        plan.is_empty(),
        "a record or a request is not the manifest's: {plan}"
    );
    assert_eq!(code(&w.up(&env).await), 0);
    assert_eq!(
        records::list(&w.fake, "driftfixture").await.unwrap(),
        vec![record]
    );
    let pending = requests::list(&w.fake, "driftfixture", None).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].request, request);
    assert_eq!(code(&w.down(&env, false).await), 0);
    assert!(records::list(&w.fake, "driftfixture")
        .await
        .unwrap()
        .is_empty());
    assert!(requests::list(&w.fake, "driftfixture", None)
        .await
        .unwrap()
        .is_empty());
    assert!(w.fake.inspect(AGENT).is_none());
}
