//! Environment shortcuts: `twip train up` is `twip up training`.

use std::ffi::OsString;

/// Environment shortcuts: `twip train up` is `twip up training`, `twip prod scale web=3` is
/// `twip scale production web=3`. The environment is inserted right after the command word
/// (after the second word for `swarm`, `lab` and `images`). Global options may come first.
pub fn expand_shortcuts(args: Vec<OsString>) -> Vec<OsString> {
    let takes_value = ["--project-dir", "--host"];
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if takes_value.contains(&a.as_ref()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        break;
    }
    if i >= args.len() {
        return args;
    }
    let env = match args[i].to_string_lossy().as_ref() {
        "train" => "training",
        "prod" => "production",
        _ => return args,
    };
    let mut out: Vec<OsString> = args[..i].to_vec();
    let rest = &args[i + 1..];
    // Find the command word (skipping options placed before it).
    let Some(cmd_pos) = rest
        .iter()
        .position(|a| !a.to_string_lossy().starts_with('-'))
    else {
        // `twip train` alone, or `twip train --help`: show what the shortcut is.
        out.push("help".into());
        return out;
    };
    let cmd = rest[cmd_pos].to_string_lossy().to_string();
    let nested = matches!(cmd.as_str(), "swarm" | "lab" | "images");
    let insert_at = if nested { cmd_pos + 2 } else { cmd_pos + 1 };
    let mut tail: Vec<OsString> = rest.to_vec();
    let insert_at = insert_at.min(tail.len());
    tail.insert(insert_at, env.into());
    out.extend(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(s: &str) -> String {
        let args = s.split(' ').map(std::ffi::OsString::from).collect();
        expand_shortcuts(args)
            .iter()
            .map(|a| a.to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn shortcuts_insert_the_environment_after_the_command() {
        assert_eq!(expand("twip train up"), "twip up training");
        assert_eq!(
            expand("twip prod up --detach"),
            "twip up production --detach"
        );
        assert_eq!(
            expand("twip -v train scale web=3"),
            "twip -v scale training web=3"
        );
        assert_eq!(
            expand("twip --project-dir x prod render -o -"),
            "twip --project-dir x render production -o -"
        );
        assert_eq!(expand("twip prod swarm join"), "twip swarm join production");
        assert_eq!(expand("twip up training"), "twip up training");
        assert_eq!(expand("twip train"), "twip help");
    }
}
