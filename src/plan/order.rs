//! What runs before what, from the manifest: the release tasks a plan runs before it changes
//! any service (`before_deploy`), and the waves its service actions run in (`depends_on`).
//! Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Action, Op, Plan, Resource};
use crate::manifest::model::{Condition, Manifest};

/// Service actions that run together, once the dependencies they wait for are met.
#[derive(Debug, Clone)]
pub struct Wave {
    /// What to wait for before this wave: (a service's full name, the condition), for each
    /// dependency of this wave's services that an earlier wave creates or updates.
    pub wait_for: Vec<(String, Condition)>,
    pub actions: Vec<Action>,
}

/// The plan's service creates, updates and scales (phase 1) in waves: a service comes after
/// every service it depends on, as early as that allows (its depth in the dependency graph).
/// One wave when nothing depends on anything. Assumes no cycle (validation refuses them; a
/// cycle that slipped through ends at the depth of the number of services rather than
/// looping).
pub fn waves(plan: &Plan, m: &Manifest) -> Vec<Wave> {
    let prefix = format!("{}_", plan.stack);
    let full = |short: &str| format!("{prefix}{short}");
    let deps: BTreeMap<String, Vec<(String, Condition)>> = m
        .services
        .iter()
        .map(|(n, s)| {
            let d = s.depends_on.0.iter().map(|(d, c)| (full(d), *c)).collect();
            (full(n), d)
        })
        .collect();
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    fn depth_of(
        n: &str,
        deps: &BTreeMap<String, Vec<(String, Condition)>>,
        memo: &mut BTreeMap<String, usize>,
        budget: usize,
    ) -> usize {
        if let Some(d) = memo.get(n) {
            return *d;
        }
        let d = match deps.get(n) {
            Some(list) if budget > 0 => list
                .iter()
                .map(|(d, _)| depth_of(d, deps, memo, budget - 1) + 1)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        memo.insert(n.to_string(), d);
        d
    }
    let services: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| a.resource == Resource::Service && a.phase == 1)
        .collect();
    let mut by_depth: BTreeMap<usize, Vec<Action>> = BTreeMap::new();
    for a in &services {
        let d = depth_of(&a.name, &deps, &mut depth, deps.len());
        by_depth.entry(d).or_default().push((*a).clone());
    }
    let mut out: Vec<Wave> = Vec::new();
    let mut earlier: Vec<String> = Vec::new();
    for (_, actions) in by_depth {
        let mut wait_for: Vec<(String, Condition)> = actions
            .iter()
            .flat_map(|a| deps.get(&a.name).cloned().unwrap_or_default())
            .filter(|(d, _)| earlier.contains(d))
            .collect();
        wait_for.sort();
        wait_for.dedup();
        earlier.extend(actions.iter().map(|a| a.name.clone()));
        out.push(Wave { wait_for, actions });
    }
    out
}

/// The services PLAN touches that a wait for convergence can wait for: all but those that
/// others wait for to `completed` (they end, so they never "run"; the waves waited for them).
pub fn to_converge(plan: &Plan, m: &Manifest) -> Vec<String> {
    let prefix = format!("{}_", plan.stack);
    let ends: Vec<String> = m
        .services
        .values()
        .flat_map(|s| s.depends_on.0.iter())
        .filter(|(_, c)| **c == Condition::Completed)
        .map(|(d, _)| format!("{prefix}{d}"))
        .collect();
    plan.touched_services()
        .into_iter()
        .filter(|s| !ends.contains(s))
        .collect()
}

/// One release task: COMMAND run once from SERVICE's new spec before any service changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseStep {
    /// The service's full name (`training_web`).
    pub service: String,
    /// Its name in the manifest (`web`).
    pub short: String,
    pub command: Vec<String>,
}

/// The release tasks of the services PLAN creates or updates, in the order of the plan's
/// actions and of each service's `before_deploy` list. A service the plan only scales, or
/// leaves alone, runs none: its spec, and so what a migration would see, did not change.
pub fn release_steps(plan: &Plan, m: &Manifest) -> Vec<ReleaseStep> {
    let prefix = format!("{}_", plan.stack);
    let mut steps = Vec::new();
    for a in &plan.actions {
        if a.resource != Resource::Service || !matches!(a.op, Op::Create | Op::Update) {
            continue;
        }
        let Some(short) = a.name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(s) = m.services.get(short) else {
            continue;
        };
        for command in s.release_tasks().unwrap_or_default() {
            steps.push(ReleaseStep {
                service: a.name.clone(),
                short: short.to_string(),
                command,
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Op;

    fn manifest(text: &str) -> Manifest {
        let (_dir, env) = crate::project::scratch("demo", text, &[]);
        env.manifest
    }

    fn plan(services: &[(&str, Op)]) -> Plan {
        let mut actions: Vec<Action> = services
            .iter()
            .map(|(n, op)| Action {
                resource: Resource::Service,
                name: format!("demo_{n}"),
                op: *op,
                cause: String::new(),
                phase: 1,
                spec: None,
                version: None,
                changes: Vec::new(),
            })
            .collect();
        actions.push(Action {
            resource: Resource::Network,
            name: "demo_default".into(),
            op: Op::Create,
            cause: String::new(),
            phase: 0,
            spec: None,
            version: None,
            changes: Vec::new(),
        });
        Plan {
            env: "demo".into(),
            stack: "demo".into(),
            actions,
            unchanged: Vec::new(),
            release: Vec::new(),
        }
    }

    fn names(w: &Wave) -> Vec<&str> {
        w.actions.iter().map(|a| a.name.as_str()).collect()
    }

    const CHAIN: &str = "services:
  web:
    image: nginx:1.25
    depends_on: {api: {condition: healthy}, db: {condition: healthy}}
  api:
    image: nginx:1.25
    depends_on: [db]
  db:
    image: nginx:1.25
  cache:
    image: nginx:1.25
";

    #[test]
    fn services_come_after_what_they_depend_on_as_early_as_they_can() {
        let m = manifest(CHAIN);
        let all = [
            ("web", Op::Create),
            ("api", Op::Create),
            ("db", Op::Create),
            ("cache", Op::Create),
        ];
        let w = waves(&plan(&all), &m);
        assert_eq!(w.len(), 3);
        assert_eq!(names(&w[0]), vec!["demo_db", "demo_cache"]);
        assert_eq!(w[0].wait_for, vec![]);
        assert_eq!(names(&w[1]), vec!["demo_api"]);
        assert_eq!(
            w[1].wait_for,
            vec![("demo_db".to_string(), Condition::Started)]
        );
        assert_eq!(names(&w[2]), vec!["demo_web"]);
        assert_eq!(
            w[2].wait_for,
            vec![
                ("demo_api".to_string(), Condition::Healthy),
                ("demo_db".to_string(), Condition::Healthy)
            ]
        );
    }

    #[test]
    fn only_changed_dependencies_are_waited_for() {
        let m = manifest(CHAIN);
        // db unchanged: api and web still come in order, api waits for nothing.
        let w = waves(&plan(&[("web", Op::Update), ("api", Op::Update)]), &m);
        assert_eq!(w.len(), 2);
        assert_eq!(names(&w[0]), vec!["demo_api"]);
        assert_eq!(w[0].wait_for, vec![]);
        assert_eq!(
            w[1].wait_for,
            vec![("demo_api".to_string(), Condition::Healthy)]
        );
        // Only web changes: one wave, nothing to wait for.
        let w = waves(&plan(&[("web", Op::Update)]), &m);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].wait_for, vec![]);
    }

    #[test]
    fn without_dependencies_there_is_one_wave_of_every_service_action() {
        let m = manifest("services:\n  a:\n    image: nginx:1.25\n  b:\n    image: nginx:1.25\n");
        let w = waves(&plan(&[("a", Op::Update), ("b", Op::Scale)]), &m);
        assert_eq!(w.len(), 1);
        assert_eq!(names(&w[0]), vec!["demo_a", "demo_b"]);
    }

    #[test]
    fn completed_dependencies_are_not_waited_for_as_running_services() {
        let m = manifest("services:\n  web:\n    image: nginx:1.25\n    depends_on: {seed: {condition: completed}}\n  seed:\n    image: nginx:1.25\n    restart: {condition: none}\n");
        let p = plan(&[("web", Op::Create), ("seed", Op::Create)]);
        assert_eq!(to_converge(&p, &m), vec!["demo_web".to_string()]);
    }
}
