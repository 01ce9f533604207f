//! `proxy.tls` in the proxy's context: the certificate files as swarm secrets of the proxy
//! service (their content never enters a rendered file; the stack file points at the files
//! in the project, as for the manifest's own secrets), and the HTTPS listener of haproxy.cfg.

use serde::Serialize;

use crate::manifest::model::*;
use crate::render::Raw;

/// Where the proxy container listens for HTTPS (published on `proxy.tls.port`).
pub const HTTPS_LISTEN_PORT: u16 = 443;
/// Where swarm mounts a service's secrets.
pub const SECRETS_DIR: &str = "/run/secrets";

/// One certificate file deployed as a secret of the proxy service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSecret {
    /// The secret's key in the stack. It starts with `_`, which no manifest key can, so it
    /// never collides with the manifest's secrets.
    pub key: String,
    /// The file, relative to the project directory (as the manifest says).
    pub file: String,
    /// The file name under [`SECRETS_DIR`] in the proxy's containers. HAProxy loads
    /// `NAME.pem` and, when that holds no key, `NAME.pem.key` beside it.
    pub target: String,
}

/// The key of the ACME certificate's secret (chain and key in one PEM) in the stack.
pub const ACME_SECRET_KEY: &str = "_tls_acme";
/// Its file name under [`SECRETS_DIR`] in the proxy's containers.
pub const ACME_SECRET_TARGET: &str = "tls-acme.pem";
/// Its file name under [`SECRETS_DIR`] in the agent's container: the certificate the proxies
/// serve (which the agent swaps into a proxy task that swarm started with an older one).
pub const ACME_AGENT_TARGET: &str = "twip-hot-swap-tls-acme.pem";
/// The port the agent's certificates controller answers HTTP-01 challenges on.
pub const ACME_CHALLENGE_PORT: u16 = 8402;
/// The path prefix of HTTP-01 challenges.
pub const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// Whether `p` has a certificate from ACME.
pub fn has_acme(p: &Proxy) -> bool {
    p.tls.as_ref().is_some_and(|t| t.acme.is_some())
}

/// The secrets of `p`'s certificates, in the manifest's order: `cert` and `key`, or `bundle`.
pub fn tls_secrets(p: &Proxy) -> Vec<TlsSecret> {
    let Some(t) = &p.tls else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, c) in t.certificates.iter().enumerate() {
        for (what, file) in c.files() {
            let target = match what {
                "key" => format!("tls-{i}.pem.key"),
                _ => format!("tls-{i}.pem"),
            };
            out.push(TlsSecret {
                key: format!("_tls_{i}_{what}"),
                file: file.to_string(),
                target,
            });
        }
    }
    out
}

/// The stack's internal network on which only the proxy and the agent meet (the proxy's
/// runtime API): `STACK__control`. Its key starts with `_`, which no manifest key can.
pub const CONTROL_NETWORK: &str = "_control";
/// The runtime API's secrets of the proxy: (key, target under [`SECRETS_DIR`], what it holds).
pub const RUNTIME_PROXY_SECRETS: [(&str, &str, RuntimePart); 2] = [
    (
        "_runtime_server",
        "twip-runtime.pem",
        RuntimePart::ServerBundle,
    ),
    ("_runtime_ca", "twip-runtime-ca.pem", RuntimePart::Ca),
];
/// The runtime API's secrets of the agent (the targets `agent::hot_swap` reads).
pub const RUNTIME_AGENT_SECRETS: [(&str, &str, RuntimePart); 3] = [
    ("_runtime_ca", "twip-runtime-ca.pem", RuntimePart::Ca),
    (
        "_runtime_client",
        "twip-runtime-client.pem",
        RuntimePart::ClientCert,
    ),
    (
        "_runtime_client_key",
        "twip-runtime-client.key",
        RuntimePart::ClientKey,
    ),
];

/// Every runtime-API secret of the stack (the proxy's and the agent's, each once).
pub const RUNTIME_SECRETS: [(&str, RuntimePart); 4] = [
    ("_runtime_server", RuntimePart::ServerBundle),
    ("_runtime_ca", RuntimePart::Ca),
    ("_runtime_client", RuntimePart::ClientCert),
    ("_runtime_client_key", RuntimePart::ClientKey),
];

/// Which of the runtime API's credentials (`tls::runtime::Credentials`) a secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimePart {
    Ca,
    ServerBundle,
    ClientCert,
    ClientKey,
}

impl RuntimePart {
    pub fn of(self, c: &crate::tls::runtime::Credentials) -> &str {
        match self {
            RuntimePart::Ca => &c.ca_cert,
            RuntimePart::ServerBundle => &c.server_bundle,
            RuntimePart::ClientCert => &c.client_cert,
            RuntimePart::ClientKey => &c.client_key,
        }
    }
}

/// Whether the proxy exposes its runtime API (to the agent, for certificates swapped live):
/// when it serves certificates from files or from ACME.
pub fn runtime_api(p: &Proxy) -> bool {
    p.tls
        .as_ref()
        .is_some_and(|t| !t.certificates.is_empty() || t.acme.is_some())
}

/// The runtime API in haproxy.cfg: the admin socket (Unix, in the container) and the TLS
/// listener in front of it.
#[derive(Debug, Serialize)]
pub struct RuntimeCtx {
    pub port: u16,
    pub socket: String,
    pub crt: String,
    pub ca: String,
}

/// The HTTPS side of haproxy.cfg.
#[derive(Debug, Serialize)]
pub struct TlsCtx {
    pub listen_port: u16,
    /// Certificate files in the container, the first one the default.
    pub crts: Vec<String>,
    pub alpn: Raw,
    pub min_version: Raw,
    pub ciphers: String,
    pub ciphersuites: String,
    /// Every route redirects plain HTTP to HTTPS.
    pub redirect_all: bool,
    /// Some route redirects (and some does not: decided per route).
    pub redirect_some: bool,
    /// What a request no route matches does.
    pub redirect_default: bool,
    /// The `Strict-Transport-Security` value, when HSTS is on.
    pub hsts: Option<String>,
    /// Where HTTP-01 challenges go (`tasks.STACK_agent:8402`), when a certificate is from ACME.
    pub acme_challenge: Option<String>,
    /// The published HTTPS port when it is not 443: redirects name it (the Host header of a
    /// plain HTTP request carries the HTTP port, if any).
    pub redirect_port: Option<u16>,
    /// The runtime API, when the agent swaps certificates live.
    pub runtime: Option<RuntimeCtx>,
}

/// Whether route `r` redirects plain HTTP to HTTPS.
pub fn route_redirects(t: &ProxyTls, r: &Route) -> bool {
    r.https_redirect.unwrap_or(t.redirect.unwrap_or(true))
}

pub fn tls_ctx(p: &Proxy, stack: &str) -> Option<TlsCtx> {
    let t = p.tls.as_ref()?;
    let mut crts: Vec<String> = (0..t.certificates.len())
        .map(|i| format!("{SECRETS_DIR}/tls-{i}.pem"))
        .collect();
    if t.acme.is_some() {
        crts.push(format!("{SECRETS_DIR}/{ACME_SECRET_TARGET}"));
    }
    let redirecting = p.routes.iter().filter(|r| route_redirects(t, r)).count();
    let default = t.redirect.unwrap_or(true);
    Some(TlsCtx {
        listen_port: HTTPS_LISTEN_PORT,
        crts,
        alpn: Raw::constant("h2,http/1.1"),
        min_version: Raw::constant(t.min_version.unwrap_or(TlsVersion::V12).haproxy()),
        ciphers: t
            .ciphers
            .clone()
            .unwrap_or_else(|| INTERMEDIATE_CIPHERS.to_string()),
        ciphersuites: t
            .ciphersuites
            .clone()
            .unwrap_or_else(|| INTERMEDIATE_CIPHERSUITES.to_string()),
        redirect_all: redirecting == p.routes.len() && default,
        redirect_some: redirecting > 0 || default,
        redirect_default: default,
        acme_challenge: t
            .acme
            .as_ref()
            .map(|_| format!("tasks.{stack}_agent:{ACME_CHALLENGE_PORT}")),
        redirect_port: Some(t.port.unwrap_or(443)).filter(|p| *p != 443),
        runtime: runtime_api(p).then(|| RuntimeCtx {
            port: crate::tls::runtime::PORT,
            socket: "/run/haproxy-api.sock".into(),
            crt: format!("{SECRETS_DIR}/{}", RUNTIME_PROXY_SECRETS[0].1),
            ca: format!("{SECRETS_DIR}/{}", RUNTIME_PROXY_SECRETS[1].1),
        }),
        hsts: t.hsts.as_ref().map(|h| {
            let mut v = format!("max-age={}", h.max_age);
            if h.include_subdomains {
                v.push_str("; includeSubDomains");
            }
            v
        }),
    })
}
