//! The Engine API's data types (service specs, tasks, nodes, ...), as the rest of twip sees
//! them. The desired state and the plan are written in the engine's own vocabulary, so that
//! what twip computes is exactly what it sends and what it reads back; this module is the one
//! door through which those types leave `engine/` (only `engine/` imports the API client).
pub use bollard::models::*;

/// The secret reference of SPEC's container mounted at file TARGET (`tls-acme.pem`).
pub fn secret_at<'a>(
    spec: &'a ServiceSpec,
    target: &str,
) -> Option<&'a TaskSpecContainerSpecSecrets> {
    spec.task_template
        .as_ref()?
        .container_spec
        .as_ref()?
        .secrets
        .as_ref()?
        .iter()
        .find(|r| r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(target))
}

/// Points SPEC's secret reference at file TARGET to the secret NAME (and ID, when known).
/// Returns whether it changed (false: it names NAME already, or there is no reference there).
pub fn point_secret_at(spec: &mut ServiceSpec, target: &str, name: &str, id: Option<&str>) -> bool {
    let refs = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
        .and_then(|c| c.secrets.as_mut());
    let mut changed = false;
    for r in refs.into_iter().flatten() {
        if r.file.as_ref().and_then(|f| f.name.as_deref()) == Some(target)
            && r.secret_name.as_deref() != Some(name)
        {
            r.secret_name = Some(name.to_string());
            if let Some(id) = id {
                r.secret_id = Some(id.to_string());
            }
            changed = true;
        }
    }
    changed
}
