//! A project and an in-memory swarm for the lifecycle tests that need no daemon: the drift
//! fixture project (every field twip sets) copied into a temporary folder, deployed to
//! `twip::engine::fake::FakeSwarm`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use twip::engine::fake::FakeSwarm;
use twip::lifecycle::{self, Deployment};
use twip::manifest::interp::Vars;
use twip::manifest::{Environment, Loader};
use twip::plan::{Options, Plan};
use twip::ui::Ui;

pub const ENV: &str = "driftfixture";
pub const APP: &str = "driftfixture_app";
pub const WORKER: &str = "driftfixture_worker";
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub struct World {
    pub dir: tempfile::TempDir,
    pub fake: FakeSwarm,
    pub ui: Ui,
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine")
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixtures().join("project"), dir.path());
        let mut ui = Ui::plain();
        ui.quiet = true;
        World {
            dir,
            fake: FakeSwarm::new(),
            ui,
        }
    }

    /// The environment with these variables (`TWIP_DRIFT_IMAGE`, `TWIP_DRIFT_PORT`).
    pub fn env_with(&self, vars: &[(&str, &str)]) -> Environment {
        let l = Loader {
            project_dir: self.dir.path().to_path_buf(),
            vars: Vars {
                dotenv: BTreeMap::new(),
                overrides: Some(
                    vars.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            },
        };
        let file = l.env_file(ENV).unwrap();
        l.load_file(ENV, &file)
            .unwrap_or_else(|d| panic!("{ENV} does not validate:\n{d}"))
    }

    pub fn env(&self) -> Environment {
        self.env_with(&[])
    }

    /// The environment after an edit of its manifest (FROM replaced by TO).
    pub fn edit(&self, from: &str, to: &str) {
        let path = self.dir.path().join("environments/driftfixture.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "the manifest has no `{from}`");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }

    pub fn deployment<'a>(&'a self, env: &'a Environment) -> Deployment<'a> {
        Deployment {
            api: &self.fake,
            env,
            project_dir: self.dir.path(),
            lab: None,
        }
    }

    /// `twip up` (after the images exist) with OPTS.
    pub async fn converge(&self, env: &Environment, opts: &Options) -> anyhow::Result<i32> {
        let d = self.deployment(env);
        let desired = lifecycle::desired_for(env, self.dir.path())?;
        lifecycle::converge_on(&d, opts, desired, false, TIMEOUT, &self.ui).await
    }

    pub async fn up(&self, env: &Environment) -> anyhow::Result<i32> {
        self.converge(env, &Options::default()).await
    }

    /// `twip plan`.
    pub async fn plan(&self, env: &Environment) -> Plan {
        let d = self.deployment(env);
        let desired = lifecycle::desired_for(env, self.dir.path()).unwrap();
        lifecycle::converge::make_plan_with(&d, &Options::default(), desired)
            .await
            .unwrap()
            .1
    }

    pub async fn scale(&self, env: &Environment, svc: &str, n: u64) -> anyhow::Result<i32> {
        let opts = Options {
            scale: BTreeMap::from([(svc.to_string(), n)]),
            ..Options::default()
        };
        self.converge(env, &opts).await
    }

    pub async fn rollback(
        &self,
        env: &Environment,
        service: Option<&str>,
        to: Option<u64>,
    ) -> anyhow::Result<i32> {
        let d = self.deployment(env);
        lifecycle::rollback::rollback(&d, service, to, TIMEOUT, &self.ui).await
    }

    pub async fn down(&self, env: &Environment, volumes: bool) -> anyhow::Result<i32> {
        lifecycle::down::down(&self.deployment(env), volumes, &self.ui).await
    }

    /// The image SERVICE's spec names.
    pub fn image(&self, service: &str) -> String {
        self.fake
            .inspect(service)
            .and_then(|s| s.spec?.task_template?.container_spec?.image)
            .unwrap_or_default()
    }

    pub fn replicas(&self, service: &str) -> Option<i64> {
        self.fake
            .inspect(service)
            .and_then(|s| s.spec?.mode?.replicated?.replicas)
    }

    pub fn version(&self, service: &str) -> u64 {
        self.fake
            .inspect(service)
            .and_then(|s| s.version?.index)
            .unwrap()
    }

    /// Tasks of SERVICE meant to run that do.
    pub fn running(&self, service: &str) -> usize {
        use twip::engine::model::TaskState;
        self.fake
            .tasks_of(service)
            .iter()
            .filter(|t| t.desired_state == Some(TaskState::RUNNING))
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .count()
    }

    /// Sequence numbers of the recorded releases.
    pub async fn releases(&self) -> Vec<u64> {
        twip::engine::releases::list(&self.fake, "driftfixture")
            .await
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.seq)
            .collect()
    }
}

impl World {
    /// The outcome of each recorded release, oldest first.
    pub async fn outcomes(&self) -> Vec<String> {
        twip::engine::releases::list(&self.fake, "driftfixture")
            .await
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.outcome)
            .collect()
    }
}

/// The exit code an error maps to.
pub fn code(r: &anyhow::Result<i32>) -> i32 {
    match r {
        Ok(c) => *c,
        Err(e) => twip::exit::code_for(e),
    }
}

/// The calls that change the swarm, those of one kind only (`create`, `update`, `remove`).
pub fn calls_of(fake: &FakeSwarm, verb: &str) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter(|c| c.starts_with(verb))
        .collect()
}

/// The calls that change the stack itself (the release history left out).
pub fn stack_calls(fake: &FakeSwarm) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter(|c| !c.contains("_twip-release-"))
        .collect()
}
