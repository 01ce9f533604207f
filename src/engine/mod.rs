//! The only place that talks to the Docker Engine API (bollard). Connecting, classifying
//! errors once, and naming what twip makes.

pub mod acme;
pub mod api;
pub mod attach;
pub mod clean;
pub mod error;
pub mod events;
pub mod execute;
pub mod fake;
pub mod host;
pub mod images;
pub mod jobs;
pub mod lock;
pub mod managers;
pub mod model;
pub mod nodes;
pub mod observe;
pub mod oneoff;
pub mod records;
pub mod releases;
pub mod requests;
pub mod stats;
pub mod status;
pub mod swarm;
pub mod vip;
pub mod wait;

use std::path::PathBuf;
use std::time::Duration;

/// The connection to one engine. Outside `engine/` it is an opaque handle: it is passed to this
/// module's functions, never called directly.
pub use bollard::Docker;

pub use api::SwarmApi;
pub use error::{EngineError, ErrorKind};

use crate::exit;
use crate::manifest::Environment;

/// Seconds bollard waits for an answer to one request.
const REQUEST_TIMEOUT_S: u64 = 120;

/// Where the engine is, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As given: `unix:///var/run/docker.sock`, `tcp://host:2376`, `ssh://user@host`.
    pub url: String,
    /// Directory with `ca.pem`, `cert.pem`, `key.pem` for TLS (`tcp://`).
    pub tls: Option<TlsFiles>,
    /// Plain TCP to a non-loopback address was explicitly allowed (labs).
    pub allow_plain_tcp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

impl Endpoint {
    /// `--host`, else the manifest's `engine`, else `DOCKER_HOST`, else the local socket.
    /// TLS files: the manifest's, else `DOCKER_CERT_PATH` when `DOCKER_TLS_VERIFY` or a
    /// `tcp://` endpoint asks for them.
    pub fn resolve(flag: Option<&str>, env: Option<&Environment>) -> Endpoint {
        let engine = env.and_then(|e| e.manifest.engine.as_ref());
        let url = flag
            .map(str::to_string)
            .or_else(|| engine.and_then(|e| e.host.clone()))
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        let project_dir = env.map(|_| PathBuf::from("."));
        let tls = engine
            .and_then(|e| e.tls.as_ref())
            .and_then(|t| match (&t.ca, &t.cert, &t.key) {
                (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                    ca: project_dir.clone().unwrap_or_default().join(ca),
                    cert: project_dir.clone().unwrap_or_default().join(cert),
                    key: project_dir.clone().unwrap_or_default().join(key),
                }),
                _ => None,
            })
            .or_else(|| {
                let dir = std::env::var_os("DOCKER_CERT_PATH")?;
                let dir = PathBuf::from(dir);
                dir.join("cert.pem").is_file().then(|| TlsFiles {
                    ca: dir.join("ca.pem"),
                    cert: dir.join("cert.pem"),
                    key: dir.join("key.pem"),
                })
            });
        Endpoint {
            url,
            tls,
            allow_plain_tcp: engine.is_some_and(|e| e.allow_plain_tcp),
        }
    }

    fn is_loopback(host: &str) -> bool {
        let h = host.trim_start_matches('[').trim_end_matches(']');
        h == "localhost" || h.starts_with("127.") || h == "::1"
    }

    /// The host part of a `tcp://host:port` URL.
    pub fn tcp_host(&self) -> Option<&str> {
        let rest = self.url.strip_prefix("tcp://")?;
        Some(rest.rsplit_once(':').map_or(rest, |(h, _)| h))
    }
}

/// Connects and negotiates the API version, then pings: an unreachable engine is reported
/// here, before anything else is done.
pub async fn connect(ep: &Endpoint) -> anyhow::Result<Docker> {
    connect_within(ep, Duration::from_secs(20)).await
}

/// [`connect`], giving up when the version negotiation or the ping take longer than `within`
/// each (how twip tries one manager after another: a dead one costs at most that).
pub async fn connect_within(ep: &Endpoint, within: Duration) -> anyhow::Result<Docker> {
    let v = bollard::API_DEFAULT_VERSION;
    let docker = if let Some(path) = ep.url.strip_prefix("unix://") {
        if !std::path::Path::new(path).exists() {
            return Err(unreachable(ep, "the socket does not exist"));
        }
        Docker::connect_with_unix(&ep.url, REQUEST_TIMEOUT_S, v)
    } else if ep.url.starts_with("tcp://") || ep.url.starts_with("http://") {
        let host = ep.tcp_host().unwrap_or_default().to_string();
        match &ep.tls {
            Some(t) => {
                Docker::connect_with_ssl(&ep.url, &t.key, &t.cert, &t.ca, REQUEST_TIMEOUT_S, v)
            }
            None if Endpoint::is_loopback(&host) || ep.allow_plain_tcp => {
                Docker::connect_with_http(&ep.url, REQUEST_TIMEOUT_S, v)
            }
            None => {
                return Err(exit::invalid(format!(
                "refusing plain TCP to the engine at {}: it is unencrypted and unauthenticated. \
                     Give TLS files (engine.tls in the manifest, or DOCKER_CERT_PATH), use ssh://, \
                     or set engine.allow_plain_tcp: true for a lab",
                ep.url
            )))
            }
        }
    } else if ep.url.starts_with("ssh://") {
        // The API client runs the system ssh client with the URL's user and host and no `--`.
        crate::exec::ssh::check_engine_url(&ep.url)?;
        Docker::connect_with_ssh(&ep.url, REQUEST_TIMEOUT_S, v, None)
    } else {
        return Err(exit::invalid(format!(
            "`{}` is not an engine endpoint; use unix:///var/run/docker.sock, tcp://HOST:2376 or ssh://USER@HOST",
            ep.url
        )));
    };
    let docker = docker.map_err(|e| unreachable(ep, &e.to_string()))?;
    let late = || unreachable(ep, &format!("no answer within {}s", within.as_secs()));
    let docker = tokio::time::timeout(within, docker.negotiate_version())
        .await
        .map_err(|_| late())?
        .map_err(|e| unreachable(ep, &error::with_sources(&e)))?;
    tokio::time::timeout(within, docker.ping())
        .await
        .map_err(|_| late())?
        .map_err(|e| unreachable(ep, &error::with_sources(&e)))?;
    Ok(docker)
}

fn unreachable(ep: &Endpoint, why: &str) -> anyhow::Error {
    let hint = if ep.url == DEFAULT_SOCKET {
        " Is dockerd running? (`scripts/engine-up.sh` installs and starts one on Debian)"
    } else {
        ""
    };
    anyhow::anyhow!("cannot reach the Docker engine at {}: {why}.{hint}", ep.url)
}

/// The name twip shows for a service's update state (as `docker service inspect` does).
pub fn update_state_name(s: bollard::models::ServiceUpdateStatusStateEnum) -> &'static str {
    use bollard::models::ServiceUpdateStatusStateEnum as S;
    match s {
        S::UPDATING => "updating",
        S::PAUSED => "paused",
        S::COMPLETED => "completed",
        S::ROLLBACK_STARTED => "rollback_started",
        S::ROLLBACK_PAUSED => "rollback_paused",
        S::ROLLBACK_COMPLETED => "rollback_completed",
        _ => "unknown",
    }
}

/// The swarm state of the engine: twip's lifecycle needs a manager.
pub async fn require_manager(docker: &dyn SwarmApi, ep: &Endpoint) -> anyhow::Result<()> {
    let info = docker.info().await?;
    let swarm = info.swarm.unwrap_or_default();
    let state = swarm
        .local_node_state
        .map(|s| s.to_string())
        .unwrap_or_default();
    if state != "active" {
        return Err(exit::coded(
            exit::FAILURE,
            format!(
                "the engine at {} is not in a swarm (state: {}); run `twip swarm init ENV` (or `docker swarm init`) first",
                ep.url,
                if state.is_empty() { "inactive" } else { &state }
            ),
        ));
    }
    if swarm.control_available != Some(true) {
        return Err(exit::coded(
            exit::FAILURE,
            format!(
                "the engine at {} is a swarm worker, not a manager; point twip at a manager (--host, or engine.host in the manifest)",
                ep.url
            ),
        ));
    }
    Ok(())
}
