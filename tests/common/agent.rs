//! The agent's autoscaling controller driven from a test process (until the agent runs as a
//! service of the stack): its config from a project's environment, its rounds at an interval.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use twip::agent::AgentConfig;
use twip::manifest::interp::Vars;
use twip::manifest::Loader;

/// The agent's config for ENV of the project at DIR, with VARS (as it was deployed).
pub fn agent_config(dir: &Path, env: &str, vars: &[(&str, &str)]) -> AgentConfig {
    let l = Loader {
        project_dir: dir.to_path_buf(),
        vars: Vars {
            dotenv: Default::default(),
            overrides: Some(
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        },
    };
    let file = l.env_file(env).expect("the environment's file");
    let e = l
        .load_file(env, &file)
        .unwrap_or_else(|d| panic!("{env} does not validate:\n{d}"));
    AgentConfig::for_environment(&e, dir).unwrap()
}

/// Runs the autoscaling controller's rounds every 3 s (as the agent would, at its interval)
/// until STOP, against ENGINE, the request counters read from URLS: each decision as JSON
/// (with `acted`: `kept`, `scaled, release N`, ...), each failed round in ERRORS.
pub fn drive_autoscale(
    engine: &str,
    config: AgentConfig,
    urls: Vec<String>,
    stop: &AtomicBool,
    errors: &Mutex<Vec<String>>,
    decisions: &Mutex<Vec<serde_json::Value>>,
) {
    use twip::agent::autoscale::AutoscaleController;
    use twip::agent::autoscale_round::{Acted, StatsPages};
    use twip::agent::{AgentContext, Controller};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ep = twip::engine::Endpoint {
            url: engine.to_string(),
            tls: None,
            allow_plain_tcp: true,
        };
        let docker = twip::engine::connect(&ep)
            .await
            .expect("the lab's manager engine");
        let probe = StatsPages {
            urls,
            docker: docker.clone(),
        };
        let mut c = AutoscaleController::with_probe(&config, Box::new(probe))
            .expect("labas has an autoscale policy");
        let cx = AgentContext { docker, config };
        while !stop.load(Ordering::SeqCst) {
            let next = tokio::time::Instant::now() + Duration::from_secs(3);
            match c.tick(&cx).await {
                Ok(_) => {
                    for o in c.last() {
                        let Some(d) = &o.decision else {
                            errors.lock().unwrap().push(o.summary());
                            continue;
                        };
                        let mut v = serde_json::to_value(d).unwrap();
                        v["service"] = o.service.clone().into();
                        v["acted"] = match &o.acted {
                            Acted::Kept => "kept".to_string(),
                            Acted::Scaled(Some(n)) => format!("scaled, release {n}"),
                            Acted::Scaled(None) => "scaled, not recorded".to_string(),
                            Acted::Locked(who) => format!("skipped, {who}"),
                            Acted::Failed(e) => format!("failed: {e}"),
                        }
                        .into();
                        decisions.lock().unwrap().push(v);
                    }
                }
                Err(e) => errors.lock().unwrap().push(format!("{e:#}")),
            }
            tokio::time::sleep_until(next).await;
        }
    });
}
