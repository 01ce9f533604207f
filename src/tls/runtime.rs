//! HAProxy's runtime API over mutual TLS: the credentials (a CA, the proxy's server
//! certificate, the agent's client certificate) and the client that speaks the API's line
//! protocol.
//!
//! HAProxy 2.6 (Debian bookworm's, the proxy image's) accepts `ssl` on a TCP `stats socket`
//! and ignores it: the admin CLI answered in plain text (seen, tests/hot_swap.rs). So the
//! proxy keeps its stats socket a Unix socket inside its container, and a `listen` section in
//! TCP mode, bound on [`PORT`], demands TLS 1.3 and a client certificate signed by the CA
//! (`verify required`) and forwards to it. The stack's internal control network is the one
//! the agent shares with the proxy; the listener still binds every address of the proxy
//! container (HAProxy cannot name the control network's), so the client certificate is what
//! keeps the services on the proxy's other networks out.
//!
//! The credentials are *derived* from a secret key (the project's name key): the same key gives
//! the same bytes on every operator's machine, so `twip up` from two laptops names the same
//! swarm secrets and changes nothing. Ed25519 keys come from HMAC-SHA256(key, purpose) as their
//! seed, and Ed25519 signatures are deterministic, so the certificates are too. Nothing here
//! prints a key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The DNS name in the proxy's runtime-API certificate; the client asks for it whatever
/// address it connects to.
pub const SERVER_NAME: &str = "twip-proxy-runtime";
/// The port the proxy listens on for the runtime API (inside the control network only).
pub const PORT: u16 = 9443;

/// The runtime API's credentials, as PEM. Never printed (its `Debug` hides the keys).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The CA certificate both sides verify the other against.
    pub ca_cert: String,
    /// The proxy's certificate followed by its key (one file, as HAProxy's `crt` wants).
    pub server_bundle: String,
    /// The agent's certificate.
    pub client_cert: String,
    /// The agent's key.
    pub client_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// An Ed25519 key pair whose seed is HMAC-SHA256(key, purpose).
fn derived_key(key: &[u8], purpose: &str) -> Result<rcgen::KeyPair, String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|e| e.to_string())?;
    mac.update(b"twip runtime api v1: ");
    mac.update(purpose.as_bytes());
    let seed = mac.finalize().into_bytes();
    // PKCS#8 v1 of an Ed25519 private key (RFC 8410): a fixed prefix, then the 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    rcgen::KeyPair::try_from(der.as_slice()).map_err(|e| e.to_string())
}

fn params(cn: &str, serial: u64, sans: Vec<String>) -> Result<rcgen::CertificateParams, String> {
    let mut p = rcgen::CertificateParams::new(sans).map_err(|e| e.to_string())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.serial_number = Some(rcgen::SerialNumber::from(serial));
    // Fixed dates (rcgen's defaults are 1975 to 4096): the same key gives the same bytes.
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2125, 1, 1);
    Ok(p)
}

/// The credentials derived from `key` (the project's name key).
pub fn credentials(key: &[u8]) -> Result<Credentials, String> {
    let ca_key = derived_key(key, "ca")?;
    let mut ca = params("twip runtime API CA", 1, Vec::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| e.to_string())?;

    let server_key = derived_key(key, "server")?;
    let mut server = params("twip proxy runtime API", 2, vec![SERVER_NAME.to_string()])?;
    server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(|e| e.to_string())?;

    let client_key = derived_key(key, "client")?;
    let mut client = params("twip agent", 3, Vec::new())?;
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .map_err(|e| e.to_string())?;

    Ok(Credentials {
        ca_cert: ca_cert.pem(),
        server_bundle: format!("{}{}", server_cert.pem(), server_key.serialize_pem()),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    })
}

/// The agent's client configuration: TLS 1.3 only, the proxy verified against `ca_pem` (and
/// named [`SERVER_NAME`]), the agent's certificate offered.
pub fn client_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in super::certificates(ca_pem)? {
        roots.add(c).map_err(|e| format!("runtime API CA: {e}"))?;
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(super::certificates(cert_pem)?, super::private_key(key_pem)?)
        .map_err(|e| format!("runtime API client certificate: {e}"))?;
    Ok(Arc::new(config))
}

/// The text of one runtime-API command: `line`, and when `payload` is given, HAProxy's
/// `<<` form (the payload's lines, then an empty line that ends it).
pub fn command_text(line: &str, payload: Option<&str>) -> Result<String, String> {
    if line.contains(['\n', '\r', ';']) {
        return Err("a runtime API command is one line without `;`".into());
    }
    let mut out = line.to_string();
    if let Some(p) = payload {
        let p = p.trim_end_matches('\n');
        if p.lines().any(|l| l.trim().is_empty()) {
            return Err("a runtime API payload holds no empty line".into());
        }
        out.push_str(" <<\n");
        out.push_str(p);
        out.push_str("\n\n");
    } else {
        out.push('\n');
    }
    Ok(out)
}

/// Runs one command on the runtime API at `addr` and returns its answer. The API is used in
/// its non-interactive mode: one command per connection, the proxy closes after answering.
pub async fn command(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    line: &str,
    payload: Option<&str>,
) -> Result<String, String> {
    let text = command_text(line, payload)?;
    let run = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let name = ServerName::try_from(SERVER_NAME).map_err(|e| e.to_string())?;
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {addr}: {e}"))?;
        tls.write_all(text.as_bytes())
            .await
            .map_err(|e| format!("writing to {addr}: {e}"))?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        match tls.read_to_end(&mut buf).await {
            Ok(_) => {}
            // HAProxy may close without close_notify once it has answered.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
            Err(e) => return Err(format!("reading from {addr}: {e}")),
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .map_err(|_| format!("runtime API at {addr}: no answer in 15s"))?
}

/// The serial number from `show ssl cert FILE`'s answer (`Serial: 0A1B...`), upper-case hex.
pub fn shown_serial(answer: &str) -> Option<String> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Serial:"))
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
}

/// The serial number of the first certificate in `pem`, as HAProxy shows it (upper-case hex,
/// two digits a byte, leading zero bytes dropped).
pub fn pem_serial(pem: &[u8]) -> Result<String, String> {
    let chain = super::certificates(pem)?;
    let first = chain.first().ok_or("no certificate")?;
    let (_, x) = x509_parser::parse_x509_certificate(first).map_err(|e| e.to_string())?;
    Ok(serial_hex(x.raw_serial()))
}

/// A serial in hex, any case, with or without leading zero bytes (a label's), as HAProxy
/// prints it.
pub fn normal_serial(hex: &str) -> String {
    let mut s = hex.trim().to_ascii_uppercase();
    if s.len() % 2 == 1 {
        s.insert(0, '0');
    }
    while s.len() > 2 && s.starts_with("00") {
        s.drain(..2);
    }
    s
}

/// Bytes as HAProxy prints a serial: upper-case hex without leading zero bytes.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let s: String = raw[start..].iter().map(|b| format!("{b:02X}")).collect();
    if s.is_empty() {
        "00".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_deterministic_and_differ_by_key() {
        let a = credentials(&[7u8; 32]).unwrap();
        let b = credentials(&[7u8; 32]).unwrap();
        let c = credentials(&[8u8; 32]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.ca_cert, c.ca_cert);
        assert_ne!(a.client_key, c.client_key);
        assert_eq!(format!("{a:?}"), "Credentials(<redacted>)");
    }

    #[test]
    fn the_client_config_accepts_the_credentials() {
        let c = credentials(b"0123456789abcdef0123456789abcdef").unwrap();
        client_config(
            c.ca_cert.as_bytes(),
            c.client_cert.as_bytes(),
            c.client_key.as_bytes(),
        )
        .unwrap();
        // The server bundle holds its certificate and its key, and they match.
        let info =
            crate::tls::load_pair(c.server_bundle.as_bytes(), c.server_bundle.as_bytes()).unwrap();
        assert!(
            info.names.iter().any(|n| n == SERVER_NAME),
            "{:?}",
            info.names
        );
    }

    #[test]
    fn command_text_uses_the_payload_form() {
        assert_eq!(command_text("show info", None).unwrap(), "show info\n");
        assert_eq!(
            command_text("set ssl cert /x.pem", Some("A\nB\n")).unwrap(),
            "set ssl cert /x.pem <<\nA\nB\n\n"
        );
        assert!(command_text("show info; shutdown", None).is_err());
        assert!(command_text("set ssl cert /x.pem", Some("A\n\nB")).is_err());
    }

    #[test]
    fn serials_read_as_haproxy_prints_them() {
        assert_eq!(serial_hex(&[0, 0x0a, 0xff]), "0AFF");
        assert_eq!(normal_serial("000aff"), "0AFF");
        assert_eq!(normal_serial("aff"), "0AFF");
        assert_eq!(
            shown_serial("Filename: /x\nSerial: 0aff\nnotBefore: x\n").as_deref(),
            Some("0AFF")
        );
        assert_eq!(shown_serial("Can't display the certificate\n"), None);
        let c = credentials(&[1u8; 32]).unwrap();
        assert_eq!(pem_serial(c.client_cert.as_bytes()).unwrap(), "03");
    }
}
