//! Names of the swarm objects twip makes for secrets. Configs are named by a plain hash of their
//! content (their content is not secret). A secret's name must not reveal its value, so it
//! carries an HMAC-SHA256 of the value under a key that is not in the repository: without the
//! key, a short value (a PIN) cannot be found by trying them all against the name.
//!
//! The key: `TWIP_NAME_KEY` when set (CI and every operator of an environment set the same
//! value, so that nobody's deploy renames secrets), else the project's `.twip/name-key`, made on
//! first use (32 random bytes, mode 0600, in a folder whose own `.gitignore` keeps it out of
//! version control).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const KEY_ENV: &str = "TWIP_NAME_KEY";
pub const KEY_FILE: &str = ".twip/name-key";

/// The key secret names are made with. Never printed.
pub struct NameKey(Vec<u8>);

impl std::fmt::Debug for NameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameKey(<redacted>)")
    }
}

impl NameKey {
    pub fn from_bytes(b: &[u8]) -> NameKey {
        NameKey(b.to_vec())
    }

    /// The key itself, for what is derived from it (the proxy's runtime-API credentials,
    /// `tls::runtime::credentials`). Never printed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `TWIP_NAME_KEY`, else the project's key file (made when missing).
    pub fn for_project(project_dir: &Path) -> anyhow::Result<NameKey> {
        if let Ok(v) = std::env::var(KEY_ENV) {
            if v.len() < 32 {
                return Err(crate::exit::invalid(format!(
                    "{KEY_ENV} must hold at least 32 characters (e.g. `openssl rand -hex 32`)"
                )));
            }
            return Ok(NameKey(v.into_bytes()));
        }
        let path = project_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(b) if b.len() >= 32 => return Ok(NameKey(b)),
            Ok(_) => {
                return Err(crate::exit::invalid(format!(
                    "{} is shorter than 32 bytes; remove it and twip makes a new one",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let dir = project_dir.join(".twip");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n")
                .with_context(|| format!("writing {}", ignore.display()))?;
        }
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
            .context("reading random bytes for the secret-name key")?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(hex.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(NameKey(hex.into_bytes()))
    }
}

/// `STACK_KEY_MAC`: MAC is the first 10 hex digits of HMAC-SHA256(key, stack NUL key NUL value).
/// The stack and key are in the MAC, so two secrets with one value get unrelated names.
pub fn secret_name(stack: &str, key: &str, value: &[u8], k: &NameKey) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&k.0).expect("HMAC takes any key length");
    mac.update(stack.as_bytes());
    mac.update(&[0]);
    mac.update(key.as_bytes());
    mac.update(&[0]);
    mac.update(value);
    let out = mac.finalize().into_bytes();
    let hex: String = out.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("{stack}_{key}_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_depend_on_the_key_and_hide_the_value() {
        let a = NameKey::from_bytes(&[1; 32]);
        let b = NameKey::from_bytes(&[2; 32]);
        let n = secret_name("s", "pin", b"1234", &a);
        assert_eq!(n, secret_name("s", "pin", b"1234", &a));
        assert_ne!(n, secret_name("s", "pin", b"1234", &b));
        assert_ne!(n, secret_name("s", "pin", b"1235", &a));
        assert_ne!(n, secret_name("s", "other", b"1234", &a));
        // Not the plain content hash of the value.
        assert_ne!(n, format!("s_pin_{}", crate::render::content_hash(b"1234")));
        assert!(n.starts_with("s_pin_") && n.len() == "s_pin_".len() + 10);
    }

    #[test]
    fn the_project_key_is_made_once_private_and_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        if std::env::var(KEY_ENV).is_ok() {
            return;
        }
        let k1 = NameKey::for_project(tmp.path()).unwrap();
        let k2 = NameKey::for_project(tmp.path()).unwrap();
        assert_eq!(k1.0, k2.0);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(tmp.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(".twip/.gitignore")).unwrap(),
            "*\n"
        );
    }
}
