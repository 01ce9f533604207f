//! What a deploy needs from outside the manifest: the contents of config files, the values of
//! secrets (from files or environment variables) and the key secret names are made with.
//! [`gather`] reads them once, here, so that [`crate::plan::desired`] works from content alone
//! and gives the same specs for the same inputs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::manifest::Environment;
use crate::render::names::NameKey;

/// Content read from the project and the environment for one environment's desired state.
/// Secret values are kept in memory only; `Debug` never shows them.
#[derive(Default)]
pub struct Inputs {
    /// The contents of the configs given by `file`, by config key.
    pub config_files: BTreeMap<String, Vec<u8>>,
    /// The values of the secrets given by `file` or `environment`, by secret key.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// The key secret names are made with; present when there is a secret to name.
    pub name_key: Option<NameKey>,
    /// A self-signed certificate and key (PEM) the proxy serves for `proxy.tls.acme` until the
    /// agent has obtained one: generated, never written to a file.
    pub acme_placeholder: Option<Vec<u8>>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field(
                "config_files",
                &self.config_files.keys().collect::<Vec<_>>(),
            )
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("name_key", &self.name_key)
            .finish()
    }
}

/// Reads what `env`'s desired state needs: config files (relative to `project_dir`), secret
/// files and environment variables, in the manifest's order (configs, then secrets), and the
/// secret-name key when the first secret with a value is met. External objects read nothing.
pub fn gather(env: &Environment, project_dir: &Path) -> anyhow::Result<Inputs> {
    let m = &env.manifest;
    let mut inputs = Inputs::default();
    for (key, c) in &m.configs {
        if c.external {
            continue;
        }
        if let Some(f) = &c.file {
            let data = std::fs::read(project_dir.join(f))?;
            inputs.config_files.insert(key.clone(), data);
        }
    }
    for (key, s) in &m.secrets {
        if s.external {
            continue;
        }
        let data = if let Some(f) = &s.file {
            std::fs::read(project_dir.join(f))?
        } else if let Some(var) = &s.environment {
            std::env::var(var)
                .map_err(|_| {
                    crate::exit::invalid(format!(
                        "secret `{key}` reads the environment variable {var}, which is not set"
                    ))
                })?
                .into_bytes()
        } else {
            continue;
        };
        if inputs.name_key.is_none() {
            inputs.name_key = Some(NameKey::for_project(project_dir)?);
        }
        inputs.secrets.insert(key.clone(), data);
    }
    for t in m.proxy.iter().flat_map(crate::render::context::tls_secrets) {
        let data = std::fs::read(project_dir.join(&t.file))?;
        if inputs.name_key.is_none() {
            inputs.name_key = Some(NameKey::for_project(project_dir)?);
        }
        inputs.secrets.insert(t.key, data);
    }
    if m.proxy
        .as_ref()
        .is_some_and(crate::render::context::tls::has_acme)
    {
        inputs.acme_placeholder = Some(crate::tls::placeholder_pem()?);
        // The runtime API's credentials (the agent swaps the certificate live) are named
        // with it.
        if inputs.name_key.is_none() {
            inputs.name_key = Some(NameKey::for_project(project_dir)?);
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_config_files_and_secret_values_but_nothing_external_or_inline() {
        let (dir, env) = crate::project::scratch(
            "demo",
            "services:\n  app:\n    image: nginx:1.25\n\
             configs:\n  motd: {file: motd.txt}\n  banner: {content: hi}\n  \
             shared: {external: true}\n\
             secrets:\n  token: {file: token.txt}\n  outside: {external: true}\n",
            &[
                ("motd.txt", b"the motd"),
                ("token.txt", b"the token"),
                (crate::render::names::KEY_FILE, &[b'k'; 32]),
            ],
        );
        let inputs = gather(&env, dir.path()).unwrap();
        assert_eq!(
            inputs.config_files,
            BTreeMap::from([("motd".to_string(), b"the motd".to_vec())])
        );
        assert_eq!(
            inputs.secrets,
            BTreeMap::from([("token".to_string(), b"the token".to_vec())])
        );
        assert!(inputs.name_key.is_some());
        let shown = format!("{inputs:?}");
        assert!(!shown.contains("the token"), "{shown}");
    }
}
