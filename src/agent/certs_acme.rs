//! The ACME side of the certificates controller: the account, one order for the domains with
//! HTTP-01 challenges, and the small HTTP listener that answers them (the proxy routes
//! `/.well-known/acme-challenge/` to it on every node).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Tokens of the challenges under way and their key authorizations.
pub type Challenges = Arc<Mutex<HashMap<String, String>>>;

/// A certificate obtained: its chain and key, PEM (never printed).
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// The HTTP client of the account: trusting `ca_bundle` (PEM) only when given.
fn builder(ca_bundle: Option<&str>) -> anyhow::Result<instant_acme::AccountBuilder> {
    match ca_bundle {
        None => Ok(Account::builder()?),
        Some(pem) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let path = std::env::temp_dir()
                .join(format!("twip-acme-ca-{}-{nanos}.pem", std::process::id()));
            std::fs::write(&path, pem)?;
            let b = Account::builder_with_root(&path);
            let _ = std::fs::remove_file(&path);
            Ok(b?)
        }
    }
}

/// The account from stored credentials (JSON), else a new one: (account, credentials JSON to
/// keep, when new).
pub async fn account(
    directory: &str,
    email: &str,
    ca_bundle: Option<&str>,
    stored: Option<&str>,
) -> anyhow::Result<(Account, Option<String>)> {
    if let Some(json) = stored {
        let creds: AccountCredentials =
            serde_json::from_str(json).context("reading the stored ACME account")?;
        let acct = builder(ca_bundle)?.from_credentials(creds).await?;
        return Ok((acct, None));
    }
    let contact = format!("mailto:{email}");
    let (acct, creds) = builder(ca_bundle)?
        .create(
            &NewAccount {
                contact: &[&contact],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.to_string(),
            None,
        )
        .await
        .with_context(|| format!("creating an account at {directory}"))?;
    Ok((acct, Some(serde_json::to_string(&creds)?)))
}

/// One order for DOMAINS, its HTTP-01 challenges put in CHALLENGES while it runs.
pub async fn obtain(
    acct: &Account,
    domains: &[String],
    challenges: &Challenges,
    wait: Duration,
) -> anyhow::Result<Issued> {
    let ids: Vec<Identifier> = domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = acct.new_order(&NewOrder::new(&ids)).await?;
    let mut tokens = Vec::new();
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => anyhow::bail!("an authorization is {s:?}"),
            }
            let mut ch = a
                .challenge(ChallengeType::Http01)
                .context("the directory offers no HTTP-01 challenge")?;
            let ka = ch.key_authorization().as_str().to_string();
            challenges
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ch.token.clone(), ka);
            tokens.push(ch.token.clone());
            ch.set_ready().await?;
        }
    }
    let retry = RetryPolicy::new().timeout(wait);
    let status = order.poll_ready(&retry).await;
    let result = async {
        let status = status?;
        if status != OrderStatus::Ready {
            anyhow::bail!("the order is {status:?}: {}", why_invalid(&mut order).await);
        }
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&retry).await?;
        Ok(Issued { chain_pem, key_pem })
    }
    .await;
    let mut map = challenges.lock().unwrap_or_else(|p| p.into_inner());
    for t in tokens {
        map.remove(&t);
    }
    result
}

/// What the directory said about the failed challenges.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(Ok(a)) = authzs.next().await {
        for c in &a.challenges {
            if let Some(e) = &c.error {
                out.push(format!(
                    "{}: {}",
                    a.identifier(),
                    e.detail.clone().unwrap_or_else(|| format!("{e:?}"))
                ));
            }
        }
    }
    if out.is_empty() {
        "no reason given".into()
    } else {
        out.join("; ")
    }
}

/// Answers `GET /.well-known/acme-challenge/TOKEN` on LISTEN with the key authorization, 404
/// for anything else. Runs until the process ends.
pub async fn serve(listen: &str, challenges: Challenges) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening for ACME challenges on {listen}"))?;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let challenges = challenges.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while n < buf.len() {
                    match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf[n..]))
                        .await
                    {
                        Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                        Ok(Ok(k)) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let answer = path
                    .strip_prefix(crate::render::context::tls::ACME_CHALLENGE_PATH)
                    .and_then(|t| {
                        let map = challenges.lock().unwrap_or_else(|p| p.into_inner());
                        map.get(t).cloned()
                    });
                let resp = match answer {
                    Some(ka) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{ka}",
                        ka.len()
                    ),
                    None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string(),
                };
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(())
}
