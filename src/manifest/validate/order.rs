//! What runs before what: release tasks (`before_deploy`) and `depends_on`.

use std::collections::BTreeMap;

use super::{did_you_mean, Checker};
use crate::manifest::model::*;

pub(super) fn check_order(m: &Manifest, c: &mut Checker) {
    for (name, s) in &m.services {
        check_release_tasks(name, s, c);
        check_dependencies(m, name, s, c);
    }
    for cycle in cycles(&graph(m)) {
        c.err(
            &["services", &cycle[0], "depends_on"],
            format!(
                "a cycle: {}; `up` could not start any of them first",
                cycle.join(" → ")
            ),
        );
    }
}

/// Each dependency is a service of the manifest, and its condition can be met.
fn check_dependencies(m: &Manifest, name: &str, s: &Service, c: &mut Checker) {
    for (dep, condition) in &s.depends_on.0 {
        let path = ["services", name, "depends_on", dep.as_str()];
        let Some(d) = m.services.get(dep) else {
            c.err(
                &path,
                format!(
                    "undefined service `{dep}`{}",
                    did_you_mean(dep, m.services.keys().map(String::as_str))
                ),
            );
            continue;
        };
        match condition {
            Condition::Healthy if d.healthcheck.as_ref().is_some_and(|h| h.disable) => c.err(
                &path,
                format!("`healthy` needs a health check, and `{dep}`'s is disabled"),
            ),
            Condition::Completed => {
                let restart = d.restart.as_ref().and_then(|r| r.condition);
                if !matches!(
                    restart,
                    Some(RestartCondition::None | RestartCondition::OnFailure)
                ) {
                    c.err(
                        &path,
                        format!("`completed` waits for `{dep}`'s tasks to exit 0, but swarm restarts them (restart.condition: any); set its restart.condition to none or on-failure"),
                    );
                }
            }
            _ => {}
        }
    }
}

/// Service → the services it depends on (those the manifest has).
fn graph(m: &Manifest) -> BTreeMap<String, Vec<String>> {
    m.services
        .iter()
        .map(|(n, s)| {
            let deps = s.depends_on.0.keys();
            let known = deps.filter(|d| m.services.contains_key(*d)).cloned();
            (n.clone(), known.collect())
        })
        .collect()
}

/// Every cycle of G once, each as its path from its smallest name back to it (`a → b → a`).
pub fn cycles(g: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, Vec<String>>,
        stack: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle: Vec<String> = stack[i..].to_vec();
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| *s)
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(min);
            cycle.push(cycle[0].clone());
            if !found.contains(&cycle) {
                found.push(cycle);
            }
            return;
        }
        if done.contains(n) {
            return;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, stack, done, found);
        }
        stack.pop();
        done.insert(n.to_string());
    }
    let mut found = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for n in g.keys() {
        visit(n, g, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// `before_deploy`: one command or a list of commands, none of them empty.
fn check_release_tasks(name: &str, s: &Service, c: &mut Checker) {
    let path = ["services", name, "before_deploy"];
    match s.release_tasks() {
        Err(e) => c.err(&path, e),
        Ok(tasks) => {
            for (i, argv) in tasks.iter().enumerate() {
                if argv.is_empty() || argv[0].trim().is_empty() {
                    let idx = i.to_string();
                    let at: Vec<&str> = if s.before_deploy.len() == tasks.len() {
                        vec!["services", name, "before_deploy", &idx]
                    } else {
                        path.to_vec()
                    };
                    c.err(&at, "an empty command: give the program and its arguments");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::model::{Condition, StringOrList};

    /// What loading MANIFEST reports (empty when it is valid).
    pub(super) fn problems(manifest: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        std::fs::write(dir.path().join("environments/t.yaml"), manifest).unwrap();
        let project = crate::project::Project::at(dir.path().to_path_buf()).unwrap();
        match project.load("t") {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        }
    }

    fn svc(extra: &str) -> String {
        format!("services:\n  web:\n    image: nginx:1.25\n{extra}  db:\n    image: nginx:1.25\n")
    }

    #[test]
    fn before_deploy_is_one_command_or_a_list_of_commands() {
        let one = svc("    before_deploy: [python3, manage.py, migrate]\n");
        assert_eq!(problems(&one), "");
        let many = svc("    before_deploy:\n      - [python3, manage.py, migrate]\n      - [python3, manage.py, seed]\n");
        assert_eq!(problems(&many), "");
        let s: crate::manifest::model::Service = serde_json::from_value(serde_json::json!({
            "image": "x", "before_deploy": [["a", "b"], ["c"]]
        }))
        .unwrap();
        assert_eq!(
            s.release_tasks().unwrap(),
            vec![vec!["a".to_string(), "b".into()], vec!["c".to_string()]]
        );
        let s: crate::manifest::model::Service = serde_json::from_value(serde_json::json!({
            "image": "x", "before_deploy": ["a", "b"]
        }))
        .unwrap();
        assert_eq!(
            s.release_tasks().unwrap(),
            vec![vec!["a".to_string(), "b".into()]]
        );
        assert!(matches!(s.before_deploy[0], StringOrList::String(_)));
    }

    #[test]
    fn depends_on_takes_a_list_or_a_mapping_of_conditions() {
        assert_eq!(problems(&svc("    depends_on: [db]\n")), "");
        let m = svc("    depends_on:\n      db: {condition: healthy}\n");
        assert_eq!(problems(&m), "");
        let d: crate::manifest::model::Service = serde_json::from_value(serde_json::json!({
            "image": "x", "depends_on": {"db": {"condition": "healthy"}, "cache": null}
        }))
        .unwrap();
        assert_eq!(
            d.depends_on.0.into_iter().collect::<Vec<_>>(),
            vec![
                ("cache".to_string(), Condition::Started),
                ("db".to_string(), Condition::Healthy)
            ]
        );
        let bad = problems(&svc("    depends_on:\n      db: {condition: ready}\n"));
        assert!(
            bad.contains("services.web.depends_on.db.condition"),
            "{bad}"
        );
    }

    #[test]
    fn depends_on_refuses_unknown_services_and_conditions_that_cannot_be_met() {
        let unknown = problems(&svc("    depends_on: [dbb]\n"));
        assert!(
            unknown.contains("undefined service `dbb` (did you mean `db`?)"),
            "{unknown}"
        );
        let completed = problems(&svc("    depends_on: {db: {condition: completed}}\n"));
        assert!(completed.contains("swarm restarts them"), "{completed}");
        let ok = "services:\n  web:\n    image: nginx:1.25\n    depends_on: {db: {condition: completed}}\n  db:\n    image: nginx:1.25\n    restart: {condition: on-failure}\n";
        assert_eq!(problems(ok), "");
    }

    #[test]
    fn cycles_are_refused_and_named() {
        let m = "services:\n  a:\n    image: nginx:1.25\n    depends_on: [b]\n  b:\n    image: nginx:1.25\n    depends_on: [c]\n  c:\n    image: nginx:1.25\n    depends_on: [a]\n  d:\n    image: nginx:1.25\n    depends_on: [d]\n";
        let p = problems(m);
        assert!(
            p.contains("services.a.depends_on: a cycle: a → b → c → a"),
            "{p}"
        );
        assert!(p.contains("services.d.depends_on: a cycle: d → d"), "{p}");
        assert_eq!(p.matches("a cycle").count(), 2, "{p}");
        let g = std::collections::BTreeMap::from([
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec![]),
        ]);
        assert_eq!(super::cycles(&g), Vec::<Vec<String>>::new());
    }

    #[test]
    fn before_deploy_refuses_mixed_lists_empty_commands_and_shell_strings() {
        let mixed = problems(&svc("    before_deploy: [migrate, [seed]]\n"));
        assert!(
            mixed.contains("services.web.before_deploy: mixes words and lists"),
            "{mixed}"
        );
        let empty = problems(&svc("    before_deploy: [[migrate], []]\n"));
        assert!(
            empty.contains("services.web.before_deploy[1]: an empty command"),
            "{empty}"
        );
        let shell = problems(&svc("    before_deploy: \"python3 manage.py migrate\"\n"));
        assert!(shell.contains("services.web.before_deploy"), "{shell}");
    }
}
