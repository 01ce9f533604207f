//! What `twip clean` removes: exited containers, dangling images and unused networks (twip's
//! own by label, or everything unused with `all`), the agent's images that older twip binaries
//! built ([`OldAgents`]), and the build cache.

use std::collections::HashMap;

use bollard::query_parameters::{
    InspectNetworkOptions, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    ListNetworksOptionsBuilder, PruneBuildOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use bollard::Docker;

use super::error::{EngineError, EngineResult};
use crate::labels::{
    MANAGED as LABEL_MANAGED, NAMESPACE as LABEL_NAMESPACE, PROJECT as LABEL_PROJECT,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub size: u64,
}

fn label_filter(label: String) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![label])])
}

/// Which agent images are old: tagged `twip-agent` (their OCI title), under REPOSITORY when
/// set (an environment's, e.g. `registry/ns/twip-agent`), with a tag other than KEEP (this
/// binary's hash: `twip up` would use it).
#[derive(Debug, Clone)]
pub struct OldAgents {
    pub repository: Option<String>,
    pub keep: String,
}

/// The OCI title label the agent's image carries (`lifecycle::agent_image::dockerfile`).
pub const AGENT_IMAGE_TITLE: &str = "org.opencontainers.image.title=twip-agent";

/// What clean would remove.
pub async fn candidates(
    docker: &Docker,
    stack: Option<&str>,
    project: Option<&str>,
    all: bool,
    agents: &OldAgents,
) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let owner = match stack {
        Some(s) => format!("{LABEL_NAMESPACE}={s}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    items.extend(stopped_containers(docker, &owner, all).await?);
    items.extend(dangling_images(docker, project, all).await?);
    items.extend(unused_networks(docker, owner, all).await?);
    items.extend(old_agent_images(docker, agents).await?);
    items.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    items.dedup();
    Ok(items)
}

/// Containers that are not running (twip's unless `all`).
async fn stopped_containers(docker: &Docker, owner: &str, all: bool) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    // Containers that are not running.
    let mut f = HashMap::from([(
        "status".to_string(),
        vec![
            "exited".to_string(),
            "created".to_string(),
            "dead".to_string(),
        ],
    )]);
    if !all {
        f.insert("label".into(), vec![owner.to_string()]);
    }
    for c in docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .size(true)
                .filters(&f)
                .build(),
        ))
        .await
        .engine("list containers", "")?
    {
        items.push(Item {
            kind: "container",
            id: c.id.clone().unwrap_or_default(),
            name: c
                .names
                .unwrap_or_default()
                .first()
                .cloned()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            size: c.size_rw.unwrap_or(0).max(0) as u64,
        });
    }
    Ok(items)
}

/// Dangling images (of twip's project unless `all`).
async fn dangling_images(
    docker: &Docker,
    project: Option<&str>,
    all: bool,
) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    // Dangling images (of twip's project when not --all).
    let mut f = HashMap::from([("dangling".to_string(), vec!["true".to_string()])]);
    if !all {
        f.insert(
            "label".into(),
            vec![match project {
                Some(p) => format!("{LABEL_PROJECT}={p}"),
                None => LABEL_PROJECT.to_string(),
            }],
        );
    }
    for i in docker
        .list_images(Some(
            ListImagesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list images", "")?
    {
        items.push(Item {
            kind: "image",
            id: i.id.clone(),
            name: i.id.chars().take(19).collect(),
            size: i.size.max(0) as u64,
        });
    }
    Ok(items)
}

/// The tags of agent images that an older twip binary built (see [`OldAgents`]), of images
/// no container (running or stopped) was made from. Each tag is one item: removing it untags,
/// and the image goes with its last tag.
async fn old_agent_images(docker: &Docker, agents: &OldAgents) -> anyhow::Result<Vec<Item>> {
    let used: std::collections::HashSet<String> = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default().all(true).build(),
        ))
        .await
        .engine("list containers", "")?
        .into_iter()
        .filter_map(|c| c.image_id)
        .collect();
    let f = label_filter(AGENT_IMAGE_TITLE.to_string());
    let mut items = Vec::new();
    for i in docker
        .list_images(Some(
            ListImagesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list images", "")?
    {
        if used.contains(&i.id) {
            continue;
        }
        // The image's size counts once, with its first old tag.
        let mut size = i.size.max(0) as u64;
        for tag in &i.repo_tags {
            if is_old_agent(tag, agents) {
                items.push(Item {
                    kind: "image",
                    id: tag.clone(),
                    name: tag.clone(),
                    size: std::mem::take(&mut size),
                });
            }
        }
    }
    Ok(items)
}

/// Whether TAG (`repo:tag`) is an old agent image's (pure).
pub fn is_old_agent(tag: &str, agents: &OldAgents) -> bool {
    let Some((repo, t)) = tag.rsplit_once(':').filter(|(r, _)| !r.ends_with('/')) else {
        return false;
    };
    let repo_ok = match &agents.repository {
        Some(r) => repo == r,
        None => repo == "twip-agent" || repo.ends_with("/twip-agent"),
    };
    repo_ok && t != agents.keep
}

/// Networks nothing uses (twip's unless `all`).
async fn unused_networks(docker: &Docker, owner: String, all: bool) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    // Networks nothing uses.
    let f = if all {
        HashMap::new()
    } else {
        label_filter(owner)
    };
    for n in docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .engine("list networks", "")?
    {
        let name = n.name.clone().unwrap_or_default();
        if ["bridge", "host", "none", "ingress", "docker_gwbridge"].contains(&name.as_str()) {
            continue;
        }
        let id = n.id.clone().unwrap_or_default();
        // A network is in use when a service of its stack exists or a container is attached.
        let detail = docker
            .inspect_network(&id, None::<InspectNetworkOptions>)
            .await
            .engine("inspect network", &name)?;
        let attached = detail.containers.as_ref().is_some_and(|c| !c.is_empty());
        let stack_label = n
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_NAMESPACE))
            .cloned();
        let stack_alive = match &stack_label {
            Some(s) => !super::observe::observe(docker, s)
                .await?
                .services
                .is_empty(),
            None => false,
        };
        // Unused: nothing attached and no service of its stack left.
        let unused = !attached
            && !stack_alive
            && (n.scope.as_deref() != Some("swarm") || stack_label.is_some());
        if unused {
            items.push(Item {
                kind: "network",
                id,
                name,
                size: 0,
            });
        }
    }
    Ok(items)
}

/// Removes one [`candidates`] item (a container's volumes are kept).
pub async fn remove(docker: &Docker, i: &Item) -> Result<(), EngineError> {
    match i.kind {
        "container" => docker
            .remove_container(
                &i.id,
                Some(RemoveContainerOptionsBuilder::default().v(false).build()),
            )
            .await
            .engine("remove container", &i.name)
            .map(|_| ()),
        "image" => docker
            .remove_image(
                &i.id,
                Some(RemoveImageOptionsBuilder::default().build()),
                None,
            )
            .await
            .engine("remove image", &i.name)
            .map(|_| ()),
        _ => docker
            .remove_network(&i.id)
            .await
            .engine("remove network", &i.name),
    }
}

/// Removes the whole build cache: (entries removed, bytes reclaimed).
pub async fn prune_build_cache(docker: &Docker) -> Result<(usize, u64), EngineError> {
    let r = docker
        .prune_build(Some(PruneBuildOptionsBuilder::default().all(true).build()))
        .await
        .engine("prune build cache", "")?;
    Ok((
        r.caches_deleted.map_or(0, |c| c.len()),
        r.space_reclaimed.unwrap_or(0).max(0) as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_agent_tags_are_other_hashes_of_the_repository() {
        let any = OldAgents {
            repository: None,
            keep: "aaaa".into(),
        };
        assert!(is_old_agent("twip/twip-agent:bbbb", &any));
        assert!(is_old_agent("127.0.0.1:5000/ns/twip-agent:bbbb", &any));
        assert!(!is_old_agent("twip/twip-agent:aaaa", &any));
        assert!(!is_old_agent("twip/web:bbbb", &any));
        assert!(!is_old_agent("twip/not-twip-agent:bbbb", &any));
        assert!(!is_old_agent("<none>:<none>", &any));
        let env = OldAgents {
            repository: Some("localhost:5000/shop/twip-agent".into()),
            keep: "aaaa".into(),
        };
        assert!(is_old_agent("localhost:5000/shop/twip-agent:bbbb", &env));
        assert!(!is_old_agent("twip/twip-agent:bbbb", &env));
        assert!(!is_old_agent("localhost:5000/shop/twip-agent:aaaa", &env));
    }
}
