//! Scheduled jobs on a real engine in swarm mode: `twip jobs run` streams a job's output and
//! exits with its code; the jobs controller (its rounds driven from this process, each by a
//! new controller, as after an agent restart, and twice per round, as two agents would) runs
//! an every-10-seconds job once per slot, never twice, checked from the job's own output; `twip
//! down` removes the runs, claims and records.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use twip::agent::{AgentConfig, AgentContext};

static SERIAL: Mutex<()> = Mutex::new(());

fn project(name: &str, jobs: &str) -> (TestProject, String) {
    let mut p = TestProject::new(&[], "jobs");
    let stack = test_stack(&format!("jobs_{name}"));
    p.write_env(
        name,
        &format!(
            "stack: {stack}\nservices:\n  app:\n    image: twip/base:bookworm\n    command: [sleep, infinity]\njobs:\n{jobs}"
        ),
    );
    p.stacks.push(stack.clone());
    (p, stack)
}

/// Services and configs of STACK's jobs (runs, claims, records).
fn job_objects(stack: &str) -> Vec<String> {
    let f = format!("label=io.twip.job.stack={stack}");
    let mut v = list(&["service", "ls", "-q", "--filter", &f]);
    v.extend(list(&["config", "ls", "-q", "--filter", &f]));
    v
}

struct RemoveJobs(String);

impl Drop for RemoveJobs {
    fn drop(&mut self) {
        let f = format!("label=io.twip.job.stack={}", self.0);
        let s = list(&["service", "ls", "-q", "--filter", &f]);
        if !s.is_empty() {
            docker(&["service", "rm"]).args(&s).output().ok();
        }
        let c = list(&["config", "ls", "-q", "--filter", &f]);
        if !c.is_empty() {
            docker(&["config", "rm"]).args(&c).output().ok();
        }
    }
}

#[test]
fn jobs_run_streams_the_output_and_exits_with_the_jobs_code() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let (p, stack) = project(
        "manual",
        "  hello:\n    schedule: \"0 0 1 1 *\"\n    image: twip/base:bookworm\n    command: [sh, -c, 'echo job-says-$$TWIP_JOB_SLOT; exit 7']\n",
    );
    let _rm = RemoveJobs(stack.clone());
    let up = p.twip(&["up", "manual"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let out = p.twip(&["jobs", "run", "manual", "hello"]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(7), "{o}\n{e}");
    assert!(o.contains("job-says-manual-"), "{o}\n{e}");
    // Recorded in the swarm, listed with its exit code; the run itself is gone.
    let ls = p.twip(&["jobs", "manual", "--json"]);
    assert!(ls.status.success(), "{}", stderr(&ls));
    let v: serde_json::Value = serde_json::from_str(&stdout(&ls)).unwrap();
    let runs = v[0]["last_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{v}");
    assert_eq!(runs[0]["status"], "failed", "{v}");
    assert_eq!(runs[0]["exit_code"], 7, "{v}");
    // `twip status` shows the job and its last run too.
    let st = p.twip(&["status", "manual"]);
    assert!(st.status.success(), "{}", stderr(&st));
    let line = stdout(&st)
        .lines()
        .find(|l| l.starts_with("job hello"))
        .map(str::to_string);
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains("failed (exit 7)") && l.contains("next ")),
        "{}",
        stdout(&st)
    );
    let st = p.twip(&["status", "manual", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&st)).unwrap();
    assert_eq!(v["jobs"][0]["name"], "hello", "{v}");
    assert_eq!(v["jobs"][0]["last_runs"][0]["exit_code"], 7, "{v}");
    // A job the manifest does not have is an input error.
    let bad = p.twip(&["jobs", "run", "manual", "helo"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("did you mean `hello`"),
        "{}",
        stderr(&bad)
    );
    // down removes the records and claims.
    assert!(!job_objects(&stack).is_empty());
    let down = p.twip(&["down", "manual"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(job_objects(&stack), Vec::<String>::new());
}

/// Output of each finished run of STACK not yet in SEEN, by run name (polls until its task
/// ended, at most 60 s).
fn collect_runs(stack: &str, seen: &mut BTreeMap<String, Vec<String>>) {
    let f = format!("label=io.twip.job.stack={stack}");
    for name in list(&["service", "ls", "--filter", &f, "--format", "{{.Name}}"]) {
        if seen.contains_key(&name) {
            continue;
        }
        eventually(60, || {
            list(&["service", "ps", &name, "--format", "{{.CurrentState}}"])
                .iter()
                .any(|s| s.starts_with("Complete") || s.starts_with("Failed"))
                .then_some(())
        });
        let logs = docker(&["service", "logs", "--raw", &name])
            .output()
            .unwrap();
        seen.insert(name, stdout(&logs).lines().map(str::to_string).collect());
    }
}

#[test]
fn the_controller_runs_each_slot_exactly_once_across_restarts() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_swarm();
    let (p, stack) = project(
        "tick",
        "  tick:\n    schedule: \"*/10 * * * * *\"\n    image: twip/base:bookworm\n    command: [sh, -c, 'echo ran-slot-$$TWIP_JOB_SLOT']\n",
    );
    let _rm = RemoveJobs(stack.clone());
    let up = p.twip(&["up", "tick"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let env = load(p.path(), "tick");
    let config = AgentConfig::for_environment(&env, p.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docker = twip::engine::Docker::connect_with_local_defaults().unwrap();
    let cx = AgentContext { docker, config };
    let mut seen = BTreeMap::new();
    let mut decisions = Vec::new();
    let start = Instant::now();
    // About five slots; each round is run by two fresh controllers (a restarted agent, and a
    // second agent racing it).
    while start.elapsed() < Duration::from_secs(50) {
        for _ in 0..2 {
            let mut c = twip::agent::jobs::controller(&cx.config).expect("a jobs controller");
            let round = rt.block_on(c.tick(&cx)).unwrap();
            decisions.push(round.decision);
        }
        collect_runs(&stack, &mut seen);
        std::thread::sleep(Duration::from_millis(500));
    }
    // The last runs' ends are recorded and their services removed.
    let mut c = twip::agent::jobs::controller(&cx.config).unwrap();
    rt.block_on(c.tick(&cx)).unwrap();
    let slots: Vec<String> = seen
        .values()
        .flatten()
        .filter_map(|l| l.strip_prefix("ran-slot-").map(str::to_string))
        .collect();
    let mut distinct = slots.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        slots.len(),
        distinct.len(),
        "a slot ran twice: {slots:?}\n{decisions:?}"
    );
    assert!(distinct.len() >= 3, "{slots:?}\n{decisions:?}");
    assert_eq!(
        seen.len(),
        slots.len(),
        "each run printed its slot once: {seen:?}"
    );
    // Negative control: the claim is what stops a second run of a slot.
    let api: &dyn twip::engine::SwarmApi = &cx.docker;
    let again = rt
        .block_on(twip::engine::jobs::claim(api, &stack, "tick", &distinct[0]))
        .unwrap();
    assert!(!again, "a claimed slot was claimed again");
    // History: one record per run (newest 20 kept).
    let (_, records) = rt
        .block_on(twip::engine::jobs::history(api, &stack, "tick"))
        .unwrap();
    let recorded: Vec<&str> = records.iter().map(|(_, r)| r.slot.as_str()).collect();
    for s in &distinct {
        assert!(
            recorded.contains(&s.as_str()) || records.len() == 20,
            "{s} not recorded: {recorded:?}"
        );
    }
    assert!(
        records
            .iter()
            .all(|(_, r)| r.status == "succeeded" && r.exit_code == Some(0)),
        "{records:?}"
    );
    drop(p);
}
