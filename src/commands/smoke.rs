//! `twip test ENV [PATH...]`: the twip.sh smoke test. One request per path through the
//! environment's entrypoint (the proxy); prints the status line, the server, the upstream
//! that answered and the time. Exit 1 when any request fails or answers >= 400.

use std::time::{Duration, Instant};

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{GlobalArgs, TestArgs};
use crate::exit;
use crate::project::Project;
use crate::ui::Ui;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET (`Connection: close`), read to the end. Enough for a smoke test.
pub async fn get(url: &str, timeout: Duration) -> anyhow::Result<Reply> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| exit::invalid(format!("`{url}` is not an http:// URL")))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let req = request(hostport, path)?;
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {addr} within {}s", timeout.as_secs()))?
        .map_err(|e| anyhow::anyhow!("{addr}: {e}"))?;
    parse(&buf).ok_or_else(|| anyhow::anyhow!("{addr} answered something that is not HTTP"))
}

/// The bytes of a GET for `target` on `host`: the target must be an origin-form request
/// target and the host a host[:port] of URL characters, else exit 2 (nothing is sent).
pub fn request(host: &str, target: &str) -> anyhow::Result<String> {
    crate::render::escape::request_target(target).map_err(|e| exit::invalid(e.to_string()))?;
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
    {
        return Err(exit::invalid(format!(
            "`{}` is not a host[:port]",
            crate::render::escape::comment(host)
        )));
    }
    Ok(format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: twip-test\r\nConnection: close\r\n\r\n"
    ))
}

pub fn parse(buf: &[u8]) -> Option<Reply> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?.to_string();
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect::<Vec<_>>();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Reply {
        status,
        status_line,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..i])
                .unwrap_or("0")
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || b.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[(i + 4 + size).min(b.len())..];
    }
    out
}

pub async fn run(g: &GlobalArgs, args: &TestArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = args.lab.as_deref().map(crate::lab::Lab::load).transpose()?;
    let base = crate::context::entrypoint_on(&env, lab.as_ref()).ok_or_else(|| {
        exit::invalid(format!(
            "{} has no proxy: there is no entrypoint to test",
            env.name
        ))
    })?;
    let base = base.trim_end_matches('/').to_string();
    let paths: Vec<String> = if args.paths.is_empty() {
        let mut p: Vec<String> = env
            .manifest
            .proxy
            .as_ref()
            .map(|p| {
                p.routes
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let (key, p) = match (&r.probe, &r.path) {
                            (Some(p), _) => ("probe", p.clone()),
                            (None, Some(p)) => ("path", p.clone()),
                            (None, None) => ("path", "/".into()),
                        };
                        crate::render::escape::request_target(&p)
                            .map_err(|e| exit::invalid(format!("proxy.routes[{i}].{key}: {e}")))?;
                        Ok(p)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        p.dedup();
        p
    } else {
        args.paths
            .iter()
            .map(|p| {
                let p = if p.starts_with('/') {
                    p.clone()
                } else {
                    format!("/{p}")
                };
                crate::render::escape::request_target(&p)
                    .map_err(|e| exit::invalid(format!("PATH argument: {e}")))?;
                Ok(p)
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec![
        "PATH",
        "STATUS",
        "SERVER",
        "UPSTREAM",
        "SERVED BY",
        "TIME",
    ]);
    let mut failed = 0;
    for p in &paths {
        let url = format!("{base}{p}");
        let t0 = Instant::now();
        match get(&url, Duration::from_secs(10)).await {
            Ok(r) => {
                if r.status >= 400 {
                    failed += 1;
                }
                table.add_row(vec![
                    p.clone(),
                    r.status_line
                        .split_once(' ')
                        .map(|x| x.1)
                        .unwrap_or_default()
                        .to_string(),
                    r.header("server").unwrap_or("-").to_string(),
                    r.header("x-twip-backend").unwrap_or("-").to_string(),
                    r.header("x-served-by").unwrap_or("-").to_string(),
                    format!("{:.1} ms", t0.elapsed().as_secs_f64() * 1000.0),
                ]);
            }
            Err(e) => {
                failed += 1;
                table.add_row(vec![
                    p.clone(),
                    format!("error: {e}"),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("{:.1} ms", t0.elapsed().as_secs_f64() * 1000.0),
                ]);
            }
        }
    }
    println!("{table}");
    if failed > 0 {
        ui.error(&format!(
            "{failed} of {} requests to {base} failed",
            paths.len()
        ));
        Ok(exit::FAILURE)
    } else {
        ui.ok(&format!(
            "{} answers on {base} ({} paths)",
            env.name,
            paths.len()
        ));
        Ok(exit::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_targets_that_would_split_them() {
        let r = request("127.0.0.1:80", "/api?x=1").unwrap();
        assert!(r.starts_with("GET /api?x=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
        for bad in ["/a\r\nX-Evil: 1", "/a b", "/a\nb", "api", "/a#b"] {
            let e = request("127.0.0.1:80", bad).unwrap_err();
            assert_eq!(
                crate::exit::code_for(&e),
                crate::exit::INVALID_INPUT,
                "{bad:?}"
            );
        }
        assert!(request("evil\r\nX: 1", "/").is_err());
    }

    #[test]
    fn parses_replies_and_chunks() {
        let r = parse(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("SERVER"), Some("nginx"));
        assert_eq!(r.body, b"abcde");
        assert!(parse(b"garbage").is_none());
    }
}
