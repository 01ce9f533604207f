//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use twip::manifest::interp::Vars;
use twip::manifest::{Environment, Loader};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loader for `dir` that sees no process variables (so results do not depend on the shell).
pub fn loader(dir: &Path) -> Loader {
    Loader {
        project_dir: dir.to_path_buf(),
        vars: Vars {
            dotenv: BTreeMap::new(),
            overrides: Some(BTreeMap::new()),
        },
    }
}

pub fn load(dir: &Path, name: &str) -> Environment {
    let l = loader(dir);
    let file = l
        .env_file(name)
        .unwrap_or_else(|| panic!("no environment {name}"));
    l.load_file(name, &file)
        .unwrap_or_else(|d| panic!("{name} does not validate:\n{d}"))
}

/// The twip binary with a clean environment for variables the manifests read.
pub fn twip() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("twip").expect("the twip binary is built");
    for var in [
        "TWIP_BASE_IMAGE",
        "TWIP_WEB_VERSION",
        "TWIP_HTTP_PORT",
        "TWIP_STATS_PORT",
        "TWIP_REGISTRY",
        "TWIP_PROJECT_DIR",
        "TWIP_HOST",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}
