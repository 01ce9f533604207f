//! TLS for twip itself: reading PEM certificates and keys (what the proxy will serve, checked
//! before anything is deployed) and the rustls client configuration of `twip bench`. Pure
//! except for reading the system's root certificates; imports nothing of twip.

pub mod client;
pub mod runtime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The most bytes a certificate or key file may hold (a chain of a few certificates is a
/// few kilobytes).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// A certificate as `twip certs` and validation see it: the leaf of a PEM chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    /// The DNS names of its subject alternative names, in the certificate's order (SNI picks
    /// the certificate by these).
    pub names: Vec<String>,
    pub subject: String,
    pub issuer: String,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// How many certificates the chain holds (the leaf included).
    pub chain: usize,
}

impl CertInfo {
    /// Whole days from `now` (Unix seconds) until it expires (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

/// The certificates of a PEM text, in order; an error when there is none or one is not valid
/// PEM or DER.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a valid PEM certificate ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into());
    }
    Ok(certs)
}

/// The private key of a PEM text (PKCS#8, PKCS#1 or SEC1), never shown in an error.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "holds no PEM private key (`-----BEGIN PRIVATE KEY-----`)".to_string()
        }
        _ => "not a valid PEM private key".to_string(),
    })
}

/// Reads the leaf of `chain`: names, subject, issuer, validity.
pub fn inspect(chain: &[CertificateDer<'_>]) -> Result<CertInfo, String> {
    let leaf = chain.first().ok_or("no certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("not a valid X.509 certificate ({e})"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    Ok(CertInfo {
        names,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        chain: chain.len(),
    })
}

/// Whether `key` is the private key of `chain`'s leaf (same public key), and of a type the
/// proxy can serve (RSA, ECDSA P-256/P-384, Ed25519).
pub fn key_matches(
    chain: &[CertificateDer<'static>],
    key: PrivateKeyDer<'static>,
) -> Result<(), String> {
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain.to_vec(), key, &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err("the key is not the certificate's key (their public keys differ)".into())
        }
        Err(e) => Err(format!("the key cannot be used: {e}")),
    }
}

/// A certificate and key read from PEM (a bundle passes the same text twice), checked: it
/// parses, and the key belongs to the certificate.
pub fn load_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertInfo, String> {
    let chain = certificates(cert_pem)?;
    let info = inspect(&chain)?;
    let key = private_key(key_pem)?;
    key_matches(&chain, key)?;
    Ok(info)
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A date as `2026-12-01` (UTC) from Unix seconds.
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
pub(crate) mod testcert {
    //! Certificates made for tests with rcgen.

    /// A self-signed certificate for `names` valid from `from` to `to` (Unix seconds), as
    /// (certificate PEM, key PEM).
    pub fn make(names: &[&str], from: i64, to: i64) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.not_before =
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(from as u64);
        params.not_after =
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(to as u64);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or("test"),
        );
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = params.self_signed(&key).expect("a certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// Valid from a day ago for `days` days.
    pub fn valid_for(names: &[&str], days: i64) -> (String, String) {
        let now = super::now();
        make(names, now - 86_400, now + days * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_issuer_and_validity_of_a_matching_pair() {
        let (cert, key) = testcert::valid_for(&["a.example.com", "www.a.example.com"], 90);
        let info = load_pair(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(info.names, ["a.example.com", "www.a.example.com"]);
        assert!(
            info.subject.contains("CN=a.example.com"),
            "{}",
            info.subject
        );
        assert_eq!(info.issuer, info.subject, "self-signed");
        assert_eq!(info.chain, 1);
        let left = info.days_left(now());
        assert!((88..=90).contains(&left), "{left}");
    }

    #[test]
    fn a_bundle_is_the_same_text_twice() {
        let (cert, key) = testcert::valid_for(&["b.example.com"], 30);
        let bundle = format!("{cert}{key}");
        let info = load_pair(bundle.as_bytes(), bundle.as_bytes()).unwrap();
        assert_eq!(info.names, ["b.example.com"]);
    }

    #[test]
    fn another_certificates_key_is_refused() {
        let (cert, _) = testcert::valid_for(&["a.example.com"], 30);
        let (_, other) = testcert::valid_for(&["a.example.com"], 30);
        let e = load_pair(cert.as_bytes(), other.as_bytes()).unwrap_err();
        assert!(e.contains("not the certificate's key"), "{e}");
    }

    #[test]
    fn text_that_is_not_pem_is_refused_without_showing_it() {
        let e = load_pair(b"hello", b"hello").unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let (cert, _) = testcert::valid_for(&["a.example.com"], 30);
        let e = load_pair(cert.as_bytes(), b"secret-ish text").unwrap_err();
        assert!(
            e.contains("no PEM private key") && !e.contains("secret-ish"),
            "{e}"
        );
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = load_pair(broken.as_bytes(), b"").unwrap_err();
        assert!(e.contains("not a valid X.509"), "{e}");
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_764_547_200), "2025-12-01");
        assert_eq!(date(951_782_400), "2000-02-29");
    }
}
