//! What runs before what: release tasks (`before_deploy`) and `depends_on`.

use super::Checker;
use crate::manifest::model::*;

pub(super) fn check_order(m: &Manifest, c: &mut Checker) {
    for (name, s) in &m.services {
        check_release_tasks(name, s, c);
    }
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
    use crate::manifest::model::StringOrList;

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
