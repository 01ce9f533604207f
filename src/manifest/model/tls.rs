//! `proxy.tls`: HTTPS at the proxy. Certificates come from files today; a sibling source
//! (`acme:`) can sit next to `certificates` without changing what is here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyTls {
    /// The published HTTPS port (default 443).
    #[serde(default)]
    pub port: Option<u16>,
    /// Certificates from files, chosen by SNI from their subject alternative names; the first
    /// one answers clients that send no name (or a name no certificate holds).
    #[serde(default)]
    pub certificates: Vec<CertificateFiles>,
    /// A certificate obtained and renewed with ACME (RFC 8555, HTTP-01) by the agent.
    #[serde(default)]
    pub acme: Option<Acme>,
    /// Redirect plain HTTP to HTTPS with a 301 (default true; a route may opt out).
    #[serde(default)]
    pub redirect: Option<bool>,
    /// `Strict-Transport-Security` on HTTPS responses (off unless given).
    #[serde(default)]
    pub hsts: Option<Hsts>,
    /// The lowest TLS version accepted (default `1.2`).
    #[serde(default)]
    pub min_version: Option<TlsVersion>,
    /// TLS 1.2 ciphers, OpenSSL names joined with `:`, from Mozilla's "old" list (default: its
    /// "intermediate" list).
    #[serde(default)]
    pub ciphers: Option<String>,
    /// TLS 1.3 cipher suites joined with `:` (default: Mozilla's "intermediate" list).
    #[serde(default)]
    pub ciphersuites: Option<String>,
}

/// A certificate and its key in PEM files, inside the project: `{cert, key}` or `{bundle}`
/// (certificate chain and key in one file). The key is deployed as a swarm secret.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// The certificate (and its chain), PEM.
    #[serde(default)]
    pub cert: Option<String>,
    /// The private key of `cert`, PEM.
    #[serde(default)]
    pub key: Option<String>,
    /// Certificate chain and private key in one PEM file.
    #[serde(default)]
    pub bundle: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    /// `max-age` in seconds (e.g. 31536000 for a year).
    pub max_age: u64,
    /// Add `includeSubDomains` (default false).
    #[serde(default)]
    pub include_subdomains: bool,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    V12,
    #[serde(rename = "1.3")]
    V13,
}

impl TlsVersion {
    /// HAProxy's name for it (`ssl-min-ver`).
    pub fn haproxy(self) -> &'static str {
        match self {
            TlsVersion::V12 => "TLSv1.2",
            TlsVersion::V13 => "TLSv1.3",
        }
    }
}

/// Mozilla's "intermediate" configuration (TLS 1.2 ciphers, TLS 1.3 suites), version 5.7.
pub const INTERMEDIATE_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:\
DHE-RSA-CHACHA20-POLY1305";
pub const INTERMEDIATE_CIPHERSUITES: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

impl CertificateFiles {
    /// The files of this certificate, with the key each is given under (`cert`, `key`,
    /// `bundle`), in that order.
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        let mut v = Vec::new();
        for (k, f) in [
            ("cert", &self.cert),
            ("key", &self.key),
            ("bundle", &self.bundle),
        ] {
            if let Some(f) = f {
                v.push((k, f.as_str()));
            }
        }
        v
    }
}

/// `proxy.tls.acme`: one certificate for `domains`, obtained from an ACME directory with
/// HTTP-01 challenges answered through the proxy, renewed at two thirds of its lifetime.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// The account's contact address (the CA writes to it about expiry and problems).
    pub email: String,
    /// The directory: an `https://` URL, `production` or `staging` (Let's Encrypt's). Default:
    /// Let's Encrypt production.
    #[serde(default)]
    pub directory: Option<String>,
    /// The DNS names of the certificate (one or more; no wildcards with HTTP-01).
    pub domains: Vec<String>,
    /// A PEM file in the project with the root(s) that the directory's own HTTPS certificate
    /// chains to, for a private or test CA (default: the system's roots).
    #[serde(default)]
    pub ca_bundle: Option<String>,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

impl Acme {
    /// The directory URL this names.
    pub fn directory_url(&self) -> String {
        match self.directory.as_deref() {
            None | Some("production") => LETS_ENCRYPT.to_string(),
            Some("staging") => LETS_ENCRYPT_STAGING.to_string(),
            Some(u) => u.to_string(),
        }
    }
}
