//! The manifest's nodes as twip reaches them: each node's engine, the nodes a command names,
//! and (with `--lab`) the lab's nodes standing in for them. Shared by `swarm`, `bootstrap`,
//! `images` and the lab.

use crate::exit::invalid;
use crate::manifest::model::NodeSpec;
use crate::manifest::Environment;

/// A node's engine: `nodes[].engine`, else `ssh://USER@ADDRESS[:PORT]` (user `root` by default).
pub fn node_engine_url(n: &NodeSpec) -> String {
    if let Some(e) = &n.engine {
        return e.clone();
    }
    let ssh = n.ssh.as_ref();
    let user = ssh
        .and_then(|s| s.user.clone())
        .unwrap_or_else(|| "root".into());
    match ssh.and_then(|s| s.port) {
        Some(p) => format!("ssh://{user}@{}:{p}", n.address),
        None => format!("ssh://{user}@{}", n.address),
    }
}

/// The nodes to deliver to: all, or the ones named (unknown names are exit 2).
pub fn select_nodes<'a>(
    env: &'a Environment,
    names: &[String],
) -> anyhow::Result<Vec<&'a NodeSpec>> {
    let nodes = &env.manifest.nodes;
    if names.is_empty() {
        return Ok(nodes.iter().collect());
    }
    let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut out = Vec::new();
    for name in names {
        let Some(n) = nodes.iter().find(|n| &n.name == name) else {
            let hint = crate::suggest::closest(name, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(invalid(format!(
                "no node `{name}` in environment `{}`{hint} (nodes: {})",
                env.name,
                known.join(", ")
            )));
        };
        if !out.iter().any(|o: &&NodeSpec| o.name == n.name) {
            out.push(n);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_engines_default_to_ssh() {
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker"
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "ssh://root@10.0.0.2");
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker",
            "ssh": {"user": "deploy", "port": 2222}
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "ssh://deploy@10.0.0.2:2222");
        let n: NodeSpec = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "10.0.0.2", "role": "worker",
            "engine": "unix:///tmp/d.sock"
        }))
        .unwrap();
        assert_eq!(node_engine_url(&n), "unix:///tmp/d.sock");
    }
}
