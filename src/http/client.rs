//! The simple client: one GET on a new connection (`Connection: close`), read to the end, its
//! head parsed by [`super::parse_head`] and a chunked body decoded by [`super::Chunked`]. For
//! `twip test` and the autoscaler's reading of HAProxy's stats; the load generator has its own
//! loop (`load::client`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{build_request, check_request_target, parse_head, Chunked, Framing, RequestSpec, Url};
use crate::exit;

/// A response, read to the end.
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
        s.write_all(&req).await?;
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
pub fn request(host: &str, target: &str) -> anyhow::Result<Vec<u8>> {
    check_request_target(target).map_err(exit::invalid)?;
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
    {
        return Err(exit::invalid(format!(
            "`{}` is not a host[:port]",
            crate::ui::clean(host)
        )));
    }
    // The request names only the authority (`Host`) and the path; the port is not used.
    let url = Url {
        host: host.to_string(),
        port: 80,
        authority: host.to_string(),
        path: target.to_string(),
        tls: false,
    };
    let headers = [("User-Agent".to_string(), "twip-test".to_string())];
    Ok(build_request(&RequestSpec {
        method: "GET",
        target: &url,
        headers: &headers,
        body: None,
        content_type: None,
        keepalive: false,
    }))
}

/// A whole response (read until the server closed): `None` when it is not HTTP/1.x.
pub fn parse(buf: &[u8]) -> Option<Reply> {
    let head = parse_head(buf, false).ok()??;
    let text = std::str::from_utf8(&buf[..head.len]).ok()?;
    let mut lines = text.lines();
    let status_line = lines.next()?.to_string();
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect::<Vec<_>>();
    let rest = &buf[head.len..];
    let body = match head.framing {
        Framing::Chunked => dechunk(rest),
        _ => rest.to_vec(),
    };
    Some(Reply {
        status: head.status,
        status_line,
        headers,
        body,
    })
}

/// The data of a chunked body, as far as it is well formed. Fed to the decoder a byte at a
/// time, which tells which bytes are data; a smoke test's body is small.
fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut dec = Chunked::new();
    let mut out = Vec::new();
    for b in body {
        match dec.feed(std::slice::from_ref(b)) {
            Ok(f) if f.done => break,
            Ok(f) if f.data > 0 => out.push(*b),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_targets_that_would_split_them() {
        let r = String::from_utf8(request("127.0.0.1:80", "/api?x=1").unwrap()).unwrap();
        assert!(r.starts_with("GET /api?x=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
        assert!(r.contains("\r\nUser-Agent: twip-test\r\n"), "{r}");
        assert!(r.contains("\r\nConnection: close\r\n"), "{r}");
        assert_eq!(r.matches("User-Agent").count(), 1, "{r}");
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

    #[test]
    fn replies_keep_their_status_line_headers_and_body() {
        let r = parse(b"HTTP/1.1 503 Service Unavailable\r\nX-Twip-Backend: web_1\r\nContent-Length: 4\r\n\r\ndown").unwrap();
        assert_eq!(r.status_line, "HTTP/1.1 503 Service Unavailable");
        assert_eq!(r.header("x-twip-backend"), Some("web_1"));
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.body, b"down");
        // A truncated chunked body gives what arrived.
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc").unwrap();
        assert_eq!(r.body, b"abc");
        // A head that never ends is not a reply.
        assert!(parse(b"HTTP/1.1 200 OK\r\nServer: x\r\n").is_none());
    }
}
