//! Reads what the engine holds for a stack into an [`Observed`] snapshot (by labels: no state
//! file), and a few other reads the commands share.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListNetworksOptionsBuilder, ListSecretsOptionsBuilder,
    ListServicesOptionsBuilder, ListTasksOptionsBuilder,
};
use bollard::Docker;

use super::error::{EngineError, EngineResult};
use crate::plan::desired::LABEL_NAMESPACE;
use crate::plan::{Observed, ObservedObject, ObservedService};

pub fn namespace_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_NAMESPACE}={stack}")],
    )])
}

pub async fn observe(docker: &Docker, stack: &str) -> Result<Observed, EngineError> {
    let f = namespace_filter(stack);
    let (services, networks, all_networks, configs, secrets) = tokio::try_join!(
        async {
            docker
                .list_services(Some(
                    ListServicesOptionsBuilder::default().filters(&f).build(),
                ))
                .await
                .engine("list services of stack", stack)
        },
        async {
            docker
                .list_networks(Some(
                    ListNetworksOptionsBuilder::default().filters(&f).build(),
                ))
                .await
                .engine("list networks of stack", stack)
        },
        // Every network (a service's spec names its networks by ID, external ones too).
        async {
            docker
                .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
                .await
                .engine("list networks", "")
        },
        async {
            docker
                .list_configs(Some(
                    ListConfigsOptionsBuilder::default().filters(&f).build(),
                ))
                .await
                .engine("list configs of stack", stack)
        },
        async {
            docker
                .list_secrets(Some(
                    ListSecretsOptionsBuilder::default().filters(&f).build(),
                ))
                .await
                .engine("list secrets of stack", stack)
        },
    )?;
    let mut obs = Observed::default();
    for s in services {
        let Some(spec) = s.spec else { continue };
        obs.services.push(ObservedService {
            name: spec.name.clone().unwrap_or_default(),
            id: s.id.unwrap_or_default(),
            version: s.version.and_then(|v| v.index).unwrap_or(0),
            spec,
        });
    }
    for n in networks {
        obs.networks.push(ObservedObject {
            name: n.name.unwrap_or_default(),
            id: n.id.unwrap_or_default(),
        });
    }
    obs.network_names = all_networks
        .into_iter()
        .filter_map(|n| Some((n.id?, n.name?)))
        .collect();
    for c in configs {
        obs.configs.push(ObservedObject {
            name: c.spec.and_then(|s| s.name).unwrap_or_default(),
            id: c.id.unwrap_or_default(),
        });
    }
    for c in secrets {
        obs.secrets.push(ObservedObject {
            name: c.spec.and_then(|s| s.name).unwrap_or_default(),
            id: c.id.unwrap_or_default(),
        });
    }
    obs.services.sort_by(|a, b| a.name.cmp(&b.name));
    obs.retained = super::releases::retained_objects(docker, stack).await?;
    Ok(obs)
}

/// Tasks of one service (all states).
pub async fn tasks(
    docker: &Docker,
    service: &str,
) -> Result<Vec<bollard::models::Task>, EngineError> {
    let f = HashMap::from([("service".to_string(), vec![service.to_string()])]);
    docker
        .list_tasks(Some(ListTasksOptionsBuilder::default().filters(&f).build()))
        .await
        .engine("list tasks of service", service)
}
