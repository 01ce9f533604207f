//! `twip exec`'s arguments, and the checks of what they pass into a container.

use clap::Args;

use crate::exit::invalid;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// The service
    #[arg(value_name = "SVC")]
    pub service: String,
    /// The task in slot N (default: the first running task by slot)
    #[arg(long, value_name = "N", conflicts_with_all = ["node", "all"])]
    pub task: Option<u64>,
    /// A task on the node of this name (its hostname in the swarm, or its name in the manifest)
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub node: Option<String>,
    /// Every running task at once, each line prefixed with its task (`web.2@worker-1 | `);
    /// exit code: 0 when all exited 0, else that of the first failed task by slot
    #[arg(long, conflicts_with_all = ["interactive", "tty"])]
    pub all: bool,
    /// Pipe twip's stdin to the command (EOF closes its stdin)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal (with -i: twip's terminal in raw mode, resize followed)
    #[arg(short, long)]
    pub tty: bool,
    /// Run as this user: user, user:group, uid or uid:gid (default: the container's)
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// Run in this absolute directory of the container (default: the container's)
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Set a variable for the command (repeatable); `K` alone passes twip's own value of K
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub vars: Vec<String>,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
    /// The command and its arguments, after `--` (no shell: `-- sh -c '...'` for one)
    #[arg(value_name = "CMD", last = true, required = true)]
    pub command: Vec<String>,
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

impl ExecArgs {
    /// The user, checked: not empty, no control characters (exit 2).
    pub fn checked_user(&self) -> anyhow::Result<Option<String>> {
        match &self.user {
            Some(u) if u.is_empty() || has_control(u) || u.starts_with('-') => Err(invalid(
                format!("--user `{u}` is not a user: give user, user:group, uid or uid:gid"),
            )),
            u => Ok(u.clone()),
        }
    }

    /// The working directory, checked: absolute, no control characters (exit 2).
    pub fn checked_workdir(&self) -> anyhow::Result<Option<String>> {
        match &self.workdir {
            Some(d) if !d.starts_with('/') || has_control(d) => Err(invalid(format!(
                "--workdir `{d}` is not an absolute directory (e.g. /app)"
            ))),
            d => Ok(d.clone()),
        }
    }

    /// The `K=V` entries of `--env`: `K` alone takes twip's own value of K (left out when
    /// twip has none, as `docker exec -e` does). Errors name the key only, never a value.
    pub fn env_entries(&self) -> anyhow::Result<Vec<String>> {
        env_entries(&self.vars, |k| std::env::var(k).ok())
    }
}

fn env_entries(
    vars: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for v in vars {
        let (key, value) = match v.split_once('=') {
            Some((k, val)) => (k, Some(val.to_string())),
            None => (v.as_str(), None),
        };
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !ok {
            let shown: String = if key.is_empty() {
                "(empty)".into()
            } else {
                crate::ui::clean(key)
            };
            return Err(invalid(format!(
                "--env: `{shown}` is not a variable name: use letters, digits, `_`, `.` and `-`, then `=VALUE`"
            )));
        }
        match value.or_else(|| lookup(key)) {
            Some(val) => out.push(format!("{key}={val}")),
            None => continue,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(vars: &[&str]) -> anyhow::Result<Vec<String>> {
        let vars: Vec<String> = vars.iter().map(|s| s.to_string()).collect();
        env_entries(&vars, |k| {
            (k == "FROM_TWIP").then(|| "local value".to_string())
        })
    }

    #[test]
    fn env_entries_take_values_or_twips_own() {
        assert_eq!(
            entries(&["A=1", "B=x=y", "C=", "FROM_TWIP", "UNSET"]).unwrap(),
            ["A=1", "B=x=y", "C=", "FROM_TWIP=local value"]
        );
    }

    #[test]
    fn a_bad_name_is_refused_without_its_value() {
        for bad in [
            "=hunter2secret",
            "A B=hunter2secret",
            "A\u{1b}=hunter2secret",
        ] {
            let e = entries(&[bad]).unwrap_err();
            assert_eq!(crate::exit::code_for(&e), 2);
            assert!(!e.to_string().contains("hunter2secret"), "{e}");
            assert!(e.to_string().contains("is not a variable name"), "{e}");
        }
    }
}
