//! The narrow seam a lab is provisioned through: the few container, volume, network and image
//! operations `twip lab` needs on the local engine ([`ContainerHost`]), implemented for the
//! real engine ([`Docker`]) and, for tests, by an in-memory [`FakeHost`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig, Mount,
    MountType, NetworkCreateRequest, NetworkingConfig, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectNetworkOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions, StartContainerOptions,
};
use bollard::Docker;

use super::error::{EngineError, EngineResult, ErrorKind};

/// A privileged node container: created with its own volume at `/var/lib/docker` and a fixed
/// address on `network`, then started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeContainer {
    /// The container's name and hostname.
    pub name: String,
    pub image: String,
    pub network: String,
    pub address: String,
    pub volume: String,
    pub labels: BTreeMap<String, String>,
    /// The arguments of the image's entrypoint.
    pub cmd: Vec<String>,
    pub env: Vec<String>,
}

/// A container as the host lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `running`, `exited`, ...
    pub state: String,
    /// Its address on each network, by network name.
    pub addresses: BTreeMap<String, String>,
}

/// What provisioning a lab needs from the local engine. Objects are selected by one label
/// (`key=value`).
#[allow(async_fn_in_trait)]
pub trait ContainerHost {
    /// Whether the engine has the image.
    async fn image_exists(&self, image: &str) -> Result<bool, EngineError>;
    /// The subnets every network of the engine uses.
    async fn subnets(&self) -> Result<Vec<String>, EngineError>;
    /// The first subnet of network `name` (`None` when there is no such network).
    async fn network_subnet(&self, name: &str) -> Option<String>;
    /// A bridge network with one subnet and its gateway.
    async fn create_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError>;
    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError>;
    /// Creates and starts a node container.
    async fn run_node(&self, node: &NodeContainer) -> Result<(), EngineError>;
    /// Containers (running or not) with the label.
    async fn containers(&self, label: &str) -> Result<Vec<ContainerInfo>, EngineError>;
    /// Removes a container by force, with its anonymous volumes.
    async fn remove_container(&self, id: &str) -> Result<(), EngineError>;
    /// The names of the volumes with the label.
    async fn volumes(&self, label: &str) -> Result<Vec<String>, EngineError>;
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError>;
    /// The ids of the networks with the label.
    async fn networks(&self, label: &str) -> Result<Vec<String>, EngineError>;
    async fn remove_network(&self, id: &str) -> Result<(), EngineError>;
}

fn label_filter(label: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![label.to_string()])])
}

fn hash(labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl ContainerHost for Docker {
    async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        super::images::exists(self, image).await
    }

    async fn subnets(&self) -> Result<Vec<String>, EngineError> {
        let nets = self
            .list_networks(None::<ListNetworksOptions>)
            .await
            .engine("list networks", "")?;
        Ok(nets
            .iter()
            .flat_map(|n| {
                n.ipam
                    .as_ref()
                    .and_then(|i| i.config.clone())
                    .unwrap_or_default()
            })
            .filter_map(|c| c.subnet)
            .collect())
    }

    async fn network_subnet(&self, name: &str) -> Option<String> {
        self.inspect_network(name, None::<InspectNetworkOptions>)
            .await
            .ok()
            .and_then(|n| n.ipam?.config?.into_iter().next()?.subnet)
    }

    async fn create_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(gateway.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(hash(labels)),
            ..Default::default()
        })
        .await
        .engine("create network", name)?;
        Ok(())
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.create_volume(VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(hash(labels)),
            ..Default::default()
        })
        .await
        .engine("create volume", name)?;
        Ok(())
    }

    async fn run_node(&self, n: &NodeContainer) -> Result<(), EngineError> {
        let body = ContainerCreateBody {
            image: Some(n.image.clone()),
            hostname: Some(n.name.clone()),
            labels: Some(hash(&n.labels)),
            cmd: Some(n.cmd.clone()),
            env: Some(n.env.clone()),
            host_config: Some(HostConfig {
                privileged: Some(true),
                network_mode: Some(n.network.clone()),
                mounts: Some(vec![Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(n.volume.clone()),
                    target: Some("/var/lib/docker".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    n.network.clone(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(n.address.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        self.create_container(
            Some(CreateContainerOptions {
                name: Some(n.name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .engine("create container", &n.name)?;
        self.start_container(&n.name, None::<StartContainerOptions>)
            .await
            .engine("start container", &n.name)?;
        Ok(())
    }

    async fn containers(&self, label: &str) -> Result<Vec<ContainerInfo>, EngineError> {
        let list = self
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(label_filter(label)),
                ..Default::default()
            }))
            .await
            .engine("list containers", "")?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                addresses: c
                    .network_settings
                    .and_then(|s| s.networks)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(net, e)| Some((net, e.ip_address?)))
                    .collect(),
            })
            .collect())
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        self.remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
        .engine("remove container", id)
    }

    async fn volumes(&self, label: &str) -> Result<Vec<String>, EngineError> {
        Ok(self
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(label_filter(label)),
            }))
            .await
            .engine("list volumes", "")?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await
            .engine("remove volume", name)
    }

    async fn networks(&self, label: &str) -> Result<Vec<String>, EngineError> {
        Ok(self
            .list_networks(Some(ListNetworksOptions {
                filters: Some(label_filter(label)),
            }))
            .await
            .engine("list networks", "")?
            .into_iter()
            .map(|n| n.id.unwrap_or_default())
            .collect())
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.remove_network(id).await.engine("remove network", id)
    }
}

/// An in-memory [`ContainerHost`] for tests: what was created, with the engine's answers for
/// names taken (409) and objects missing (404), and failures injected by operation.
#[derive(Debug, Default)]
pub struct FakeHost {
    pub state: Mutex<FakeState>,
}

/// What a [`FakeHost`] holds.
#[derive(Debug, Default, Clone)]
pub struct FakeState {
    pub images: Vec<String>,
    /// Networks made by others (name, subnet) and by the caller, with their labels.
    pub networks: Vec<FakeNetwork>,
    pub volumes: Vec<(String, BTreeMap<String, String>)>,
    pub containers: Vec<NodeContainer>,
    /// `run_node` of the container with this name fails (with a 500).
    pub fail_node: Option<String>,
    /// Every call, in order (`run_node lab-worker-1`, `remove_volume x`, ...).
    pub calls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeNetwork {
    pub name: String,
    pub subnet: String,
    pub labels: BTreeMap<String, String>,
}

fn fake_error(
    op: &str,
    resource: &str,
    kind: ErrorKind,
    status: u16,
    message: &str,
) -> EngineError {
    EngineError {
        op: op.to_string(),
        resource: resource.to_string(),
        kind,
        status: Some(status),
        message: message.to_string(),
    }
}

/// Whether `labels` has the `key=value` label.
fn has_label(labels: &BTreeMap<String, String>, label: &str) -> bool {
    match label.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(label),
    }
}

impl FakeHost {
    pub fn new(state: FakeState) -> Self {
        FakeHost {
            state: Mutex::new(state),
        }
    }

    /// A copy of what the host holds now.
    pub fn snapshot(&self) -> FakeState {
        self.state.lock().expect("fake host lock").clone()
    }

    fn with<T>(&self, call: String, f: impl FnOnce(&mut FakeState) -> T) -> T {
        let mut s = self.state.lock().expect("fake host lock");
        s.calls.push(call);
        f(&mut s)
    }
}

impl ContainerHost for FakeHost {
    async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        Ok(self.with(format!("image_exists {image}"), |s| {
            s.images.iter().any(|i| i == image)
        }))
    }

    async fn subnets(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.with("subnets".into(), |s| {
            s.networks.iter().map(|n| n.subnet.clone()).collect()
        }))
    }

    async fn network_subnet(&self, name: &str) -> Option<String> {
        self.with(format!("network_subnet {name}"), |s| {
            s.networks
                .iter()
                .find(|n| n.name == name)
                .map(|n| n.subnet.clone())
        })
    }

    async fn create_network(
        &self,
        name: &str,
        subnet: &str,
        _gateway: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.with(format!("create_network {name}"), |s| {
            if s.networks.iter().any(|n| n.name == name) {
                return Err(fake_error(
                    "create network",
                    name,
                    ErrorKind::AlreadyExists,
                    409,
                    "network already exists",
                ));
            }
            s.networks.push(FakeNetwork {
                name: name.to_string(),
                subnet: subnet.to_string(),
                labels: labels.clone(),
            });
            Ok(())
        })
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.with(format!("create_volume {name}"), |s| {
            if !s.volumes.iter().any(|(v, _)| v == name) {
                s.volumes.push((name.to_string(), labels.clone()));
            }
            Ok(())
        })
    }

    async fn run_node(&self, node: &NodeContainer) -> Result<(), EngineError> {
        self.with(format!("run_node {}", node.name), |s| {
            if s.fail_node.as_deref() == Some(node.name.as_str()) {
                return Err(fake_error(
                    "start container",
                    &node.name,
                    ErrorKind::Other,
                    500,
                    "injected failure",
                ));
            }
            if s.containers.iter().any(|c| c.name == node.name) {
                return Err(fake_error(
                    "create container",
                    &node.name,
                    ErrorKind::Conflict,
                    409,
                    "the container name is already in use",
                ));
            }
            s.containers.push(node.clone());
            Ok(())
        })
    }

    async fn containers(&self, label: &str) -> Result<Vec<ContainerInfo>, EngineError> {
        Ok(self.with(format!("containers {label}"), |s| {
            s.containers
                .iter()
                .filter(|c| has_label(&c.labels, label))
                .map(|c| ContainerInfo {
                    id: format!("id-{}", c.name),
                    name: c.name.clone(),
                    labels: c.labels.clone(),
                    state: "running".into(),
                    addresses: BTreeMap::from([(c.network.clone(), c.address.clone())]),
                })
                .collect()
        }))
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        self.with(format!("remove_container {id}"), |s| {
            let before = s.containers.len();
            s.containers.retain(|c| format!("id-{}", c.name) != id);
            if s.containers.len() == before {
                return Err(fake_error(
                    "remove container",
                    id,
                    ErrorKind::NotFound,
                    404,
                    "no such container",
                ));
            }
            Ok(())
        })
    }

    async fn volumes(&self, label: &str) -> Result<Vec<String>, EngineError> {
        Ok(self.with(format!("volumes {label}"), |s| {
            s.volumes
                .iter()
                .filter(|(_, l)| has_label(l, label))
                .map(|(v, _)| v.clone())
                .collect()
        }))
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.with(format!("remove_volume {name}"), |s| {
            let before = s.volumes.len();
            s.volumes.retain(|(v, _)| v != name);
            if s.volumes.len() == before {
                return Err(fake_error(
                    "remove volume",
                    name,
                    ErrorKind::NotFound,
                    404,
                    "no such volume",
                ));
            }
            Ok(())
        })
    }

    async fn networks(&self, label: &str) -> Result<Vec<String>, EngineError> {
        Ok(self.with(format!("networks {label}"), |s| {
            s.networks
                .iter()
                .filter(|n| has_label(&n.labels, label))
                .map(|n| n.name.clone())
                .collect()
        }))
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.with(format!("remove_network {id}"), |s| {
            let before = s.networks.len();
            s.networks.retain(|n| n.name != id);
            if s.networks.len() == before {
                return Err(fake_error(
                    "remove network",
                    id,
                    ErrorKind::NotFound,
                    404,
                    "no such network",
                ));
            }
            Ok(())
        })
    }
}
