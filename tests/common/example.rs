//! The examples under examples/ as test projects.

use std::path::Path;

use super::*;

/// A copy of examples/NAME whose environments have stacks of this run
/// (`twiptest<run id>_NAME_ENV`) and a `project:` of this run (`twiptest<run id>NAME`, so
/// images are `twiptest<run id>NAME/...`, not the example's own `NAME/...`). It sits two
/// levels down in a temporary directory that holds a copy of the repository's `images/`, so the
/// examples' `../../images/proxy` build context resolves as it does in the repository.
pub struct Example {
    pub project: TestProject,
    /// The example's name.
    pub name: String,
    /// Its `project:` in this copy: the prefix of every image its builds make.
    pub image_project: String,
    _outer: tempfile::TempDir,
}

impl Drop for Example {
    /// Removes the images this copy's builds made (`twiptest<run id>NAME/*`, nobody else's);
    /// the stacks go with `project`.
    fn drop(&mut self) {
        let images = list(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("reference={}/*", self.image_project),
        ]);
        if !images.is_empty() {
            docker(&["rmi", "-f"]).args(&images).output().ok();
        }
    }
}

impl Example {
    pub fn new(name: &str) -> Example {
        let base = std::env::var("TWIP_EXAMPLES_BASE_IMAGE")
            .unwrap_or_else(|_| "twip/examples-base:bookworm".into());
        assert!(
            docker(&["image", "inspect", &base])
                .output()
                .unwrap()
                .status
                .success(),
            "no {base} image: scripts/engine-up.sh makes it (the examples build offline from it)"
        );
        let outer = tempfile::tempdir().unwrap();
        super::copy_dir(&repo().join("images"), &outer.path().join("images"));
        std::fs::create_dir(outer.path().join("examples")).unwrap();
        let dir = tempfile::tempdir_in(outer.path().join("examples")).unwrap();
        let src = repo().join("examples").join(name);
        super::copy_dir(&src.join("images"), &dir.path().join("images"));
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        let mut stacks = Vec::new();
        let image_project = format!("twiptest{}{name}", run_id());
        let mut projects = 0;
        for entry in std::fs::read_dir(src.join("environments")).unwrap() {
            let path = entry.unwrap().path();
            let env = path.file_stem().unwrap().to_string_lossy().to_string();
            let stack = Example::stack_of(name, &env);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("\nstack: "), "{env} names its stack");
            let text: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("stack: ") {
                        format!("stack: {stack}\n")
                    } else if l.starts_with("project: ") {
                        projects += 1;
                        format!("project: {image_project}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            // The examples build from `../../images/...`, shared by the repository's examples:
            // in the repository that is the project's git tree; here it is declared.
            let text = format!(
                "{text}allow_paths_outside_project: [\"{}\"]\n",
                outer.path().join("images").display()
            );
            std::fs::write(
                dir.path()
                    .join("environments")
                    .join(path.file_name().unwrap()),
                text,
            )
            .unwrap();
            stacks.push(stack);
        }
        for f in std::fs::read_dir(&src).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
            }
        }
        assert!(projects > 0, "examples/{name} names its project");
        Example {
            project: TestProject { dir, stacks },
            name: name.to_string(),
            image_project,
            _outer: outer,
        }
    }

    /// The stack of environment ENV of example NAME in this run.
    pub fn stack_of(name: &str, env: &str) -> String {
        test_stack(&format!("{name}_{env}"))
    }

    /// The stack of this example's environment ENV.
    pub fn stack(&self, env: &str) -> String {
        Example::stack_of(&self.name, env)
    }

    pub fn path(&self) -> &Path {
        self.project.path()
    }

    /// `twip ARGS` run from the example's directory (as its README says), with the test's
    /// ports and base images and VARS.
    pub fn twip_with(&self, vars: &[(&str, String)], args: &[&str]) -> std::process::Output {
        let mut cmd = twip();
        cmd.current_dir(self.path()).args(args);
        for (k, v) in test_vars() {
            cmd.env(k, v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.timeout(std::time::Duration::from_secs(600));
        cmd.output().unwrap()
    }

    pub fn twip(&self, args: &[&str]) -> std::process::Output {
        self.twip_with(&[], args)
    }

    /// `twip test ENV` passes: right after `up` HAProxy may not have marked the new tasks up
    /// yet (its checks run every few seconds, later on a loaded machine), so it is retried
    /// for up to 2 minutes; the stdout of the run that passed, or a failure with the last one.
    pub fn test_passes(&self, env: &str) -> String {
        let mut last = None;
        let passed = eventually(120, || {
            let out = self.twip(&["test", env]);
            let ok = out.status.success().then(|| stdout(&out));
            last = Some(out);
            ok
        });
        passed.unwrap_or_else(|| {
            let out = last.expect("twip test ran");
            panic!(
                "twip test {env} never passed within 2 minutes; the last run:\n{}{}",
                stdout(&out),
                stderr(&out)
            )
        })
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(&[], args)
    }

    /// The same with more variables set; fails the test unless twip succeeds.
    pub fn ok_with(&self, vars: &[(&str, String)], args: &[&str]) -> String {
        let out = self.twip_with(vars, args);
        assert!(
            out.status.success(),
            "twip {}: {}{}",
            args.join(" "),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }
}
