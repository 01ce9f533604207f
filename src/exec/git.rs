//! The git commit an image is built from: `abc1234`, or `abc1234-dirty` when the work tree
//! has uncommitted changes to tracked files (as `git describe --dirty` counts them).

use std::path::Path;

use super::{run, Cmd, RunOpts};

/// `git -C DIR rev-parse --short HEAD`
pub fn short_head(dir: &Path) -> Cmd {
    Cmd::new("git").args([
        "-C".to_string(),
        dir.display().to_string(),
        "rev-parse".into(),
        "--short".into(),
        "HEAD".into(),
    ])
}

/// `git -C DIR status --porcelain --untracked-files=no`
pub fn status(dir: &Path) -> Cmd {
    Cmd::new("git").args([
        "-C".to_string(),
        dir.display().to_string(),
        "status".into(),
        "--porcelain".into(),
        "--untracked-files=no".into(),
    ])
}

/// The tag for a commit: `abc1234` or `abc1234-dirty`.
pub fn commit_tag(short: &str, dirty: bool) -> String {
    if dirty {
        format!("{short}-dirty")
    } else {
        short.to_string()
    }
}

/// The commit tag of the project at `dir`; `None` when it is not in a git repository (or
/// git is not installed, or there is no commit yet).
pub async fn commit_tag_of(dir: &Path) -> Option<String> {
    which::which("git").ok()?;
    let head = run(&short_head(dir), &RunOpts::quiet()).await.ok()?;
    let short = head.stdout.trim();
    if short.is_empty() {
        return None;
    }
    let dirty = run(&status(dir), &RunOpts::quiet())
        .await
        .map(|o| !o.stdout.trim().is_empty())
        .unwrap_or(false);
    Some(commit_tag(short, dirty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_tags() {
        let d = Path::new("/p");
        assert_eq!(
            short_head(d).to_string(),
            "git -C /p rev-parse --short HEAD"
        );
        assert_eq!(
            status(d).to_string(),
            "git -C /p status --porcelain --untracked-files=no"
        );
        assert_eq!(commit_tag("abc1234", false), "abc1234");
        assert_eq!(commit_tag("abc1234", true), "abc1234-dirty");
    }
}
