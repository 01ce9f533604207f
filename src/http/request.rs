//! The request: its target checked, its `-H` headers parsed, its bytes built.

use super::{describe_char, Url};

/// Checks that a request target (`/path?query`, origin form) is valid HTTP/1.1 as it is:
/// twip sends it byte for byte and does not encode it, so a raw space, a control character,
/// a non-ASCII character or one of `"<>\^`{|}` (RFC 3986 allows none of them) is refused,
/// as is a `%` not followed by two hex digits. curl refuses such URLs too.
pub fn check_request_target(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "the path `{}` does not start with `/`",
            path.escape_debug()
        ));
    }
    let b = path.as_bytes();
    for (i, c) in path.char_indices() {
        let ok = c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?".contains(c);
        if c == '%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(format!(
                    "the path `{}` holds a `%` not followed by two hex digits; write `%25` for a literal `%`",
                    path.escape_debug()
                ));
            }
        } else if !ok {
            let hint = if c.is_ascii() {
                format!("; percent-encode it (%{:02X})", c as u32)
            } else {
                "; percent-encode its UTF-8 bytes".to_string()
            };
            return Err(format!(
                "the path `{}` holds {}, which is not valid in an HTTP request target{hint}",
                path.escape_debug(),
                describe_char(c)
            ));
        }
    }
    Ok(())
}

/// Refuses `-H` headers that would change how the request is framed: twip frames the body
/// itself (`Content-Length`, never chunked), so a `Content-Length` that disagrees with the
/// body, a repeated one or any `Transfer-Encoding` would make the server read a different
/// request than the one sent (the rest of the bytes would be read as the next request).
/// A repeated `Host` is refused too (servers must answer it with 400).
pub fn check_framing(headers: &[(String, String)], body: Option<&[u8]>) -> Result<(), String> {
    let body_len = body.map_or(0, <[u8]>::len);
    let mut lengths = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if let Some((_, v)) = lengths.next() {
        if lengths.next().is_some() {
            return Err(
                "Content-Length is given more than once with -H; twip sets it from the body"
                    .to_string(),
            );
        }
        let n: u64 = v
            .parse()
            .ok()
            .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("-H 'Content-Length: {v}' is not a number of bytes"))?;
        if n != body_len as u64 {
            return Err(format!(
                "-H 'Content-Length: {v}' conflicts with the body, which is {body_len} bytes: \
                 the server would read a different request than the one sent; drop the \
                 header (twip sets Content-Length from the body)"
            ));
        }
    }
    if let Some((k, v)) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err(format!(
            "-H '{k}: {v}': twip sends the body with Content-Length and never encodes it, so \
             the server would read a different request than the one sent; drop the header"
        ));
    }
    if headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
        .count()
        > 1
    {
        return Err("Host is given more than once with -H".to_string());
    }
    Ok(())
}

/// What goes into the request.
#[derive(Debug, Clone)]
pub struct RequestSpec<'a> {
    pub method: &'a str,
    pub target: &'a Url,
    /// `(name, value)` pairs from `-H`; they replace the defaults of the same name.
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    pub keepalive: bool,
}

/// Builds the request bytes, sent as they are for every request of the run.
pub fn build_request(spec: &RequestSpec) -> Vec<u8> {
    let has = |name: &str| {
        spec.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut out = Vec::with_capacity(256 + spec.body.map_or(0, <[u8]>::len));
    out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", spec.method, spec.target.path).as_bytes());
    let mut line = |k: &str, v: &str| {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    if !has("host") {
        line("Host", &spec.target.authority);
    }
    // As few bytes as identify the client: a server parses every header of every request
    // (no `Accept`: without one, any type is acceptable; RFC 9110, 12.5.1).
    if !has("user-agent") {
        line("User-Agent", concat!("twip/", env!("CARGO_PKG_VERSION")));
    }
    if let Some(ct) = spec.content_type {
        if !has("content-type") {
            line("Content-Type", ct);
        }
    }
    let needs_length = spec.body.is_some()
        || matches!(
            spec.method.to_ascii_uppercase().as_str(),
            "POST" | "PUT" | "PATCH"
        );
    if needs_length && !has("content-length") {
        line(
            "Content-Length",
            &spec.body.map_or(0, <[u8]>::len).to_string(),
        );
    }
    if !spec.keepalive && !has("connection") {
        line("Connection", "close");
    }
    for (k, v) in spec.headers {
        line(k, v);
    }
    out.extend_from_slice(b"\r\n");
    if let Some(b) = spec.body {
        out.extend_from_slice(b);
    }
    out
}

/// Parses `-H 'Name: value'`.
pub fn parse_header(h: &str) -> Result<(String, String), String> {
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| format!("header `{h}` is not `Name: value`"))?;
    let k = k.trim();
    let valid_name = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(format!("header `{h}`: `{k}` is not a valid header name"));
    }
    if v.contains(['\r', '\n']) {
        return Err(format!("header `{h}`: the value holds a line break"));
    }
    if let Some(c) = v.chars().find(|&c| c.is_ascii_control() && c != '\t') {
        return Err(format!(
            "header `{}`: the value holds {}",
            h.escape_debug(),
            describe_char(c)
        ));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_headers_that_conflict_are_refused() {
        let h = |v: &[&str]| {
            v.iter()
                .map(|x| parse_header(x).unwrap())
                .collect::<Vec<_>>()
        };
        let e = check_framing(&h(&["Content-Length: 3"]), Some(b"abcdef")).unwrap_err();
        assert!(
            e.contains("conflicts with the body, which is 6 bytes"),
            "{e}"
        );
        assert!(check_framing(&h(&["Content-Length: 6"]), Some(b"abcdef")).is_ok());
        assert!(check_framing(&h(&["content-length: 0"]), None).is_ok());
        assert!(check_framing(&h(&["Content-Length: 5"]), None).is_err());
        assert!(check_framing(&h(&["Content-Length: +6"]), Some(b"abcdef")).is_err());
        assert!(check_framing(
            &h(&["Content-Length: 6", "Content-Length: 6"]),
            Some(b"abcdef")
        )
        .is_err());
        let e = check_framing(&h(&["Transfer-Encoding: chunked"]), Some(b"x")).unwrap_err();
        assert!(e.contains("Content-Length"), "{e}");
        assert!(check_framing(&h(&["transfer-encoding: gzip"]), None).is_err());
        assert!(check_framing(&h(&["Host: a", "host: b"]), None).is_err());
        assert!(check_framing(&h(&["Host: a", "X-A: 1"]), None).is_ok());
        assert!(parse_header("X: a\u{0}b").is_err());
        assert!(parse_header("X: a\tb").is_ok());
    }

    fn target() -> Url {
        Url::parse("http://h:8080/p?q=1").unwrap()
    }

    #[test]
    fn a_get_request() {
        let t = target();
        let req = build_request(&RequestSpec {
            method: "GET",
            target: &t,
            headers: &[],
            body: None,
            content_type: None,
            keepalive: true,
        });
        let s = String::from_utf8(req).unwrap();
        // Every byte counts: the server parses each header of each request.
        assert_eq!(
            s,
            concat!(
                "GET /p?q=1 HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: twip/",
                env!("CARGO_PKG_VERSION"),
                "\r\n\r\n"
            )
        );
    }

    #[test]
    fn a_post_with_headers_and_no_keepalive() {
        let t = target();
        let headers = vec![
            parse_header("X-Token: abc ").unwrap(),
            parse_header("host: other").unwrap(),
        ];
        let req = build_request(&RequestSpec {
            method: "POST",
            target: &t,
            headers: &headers,
            body: Some(b"{\"a\":1}"),
            content_type: Some("application/json"),
            keepalive: false,
        });
        let s = String::from_utf8(req).unwrap();
        assert!(s.starts_with("POST /p?q=1 HTTP/1.1\r\n"));
        assert!(!s.contains("Host: h:8080"), "-H replaces Host: {s}");
        assert!(s.contains("\r\nhost: other\r\n"));
        assert!(s.contains("\r\nX-Token: abc\r\n"));
        assert!(s.contains("\r\nContent-Type: application/json\r\n"));
        assert!(s.contains("\r\nContent-Length: 7\r\n"));
        assert!(s.contains("\r\nConnection: close\r\n"));
        assert!(s.ends_with("\r\n\r\n{\"a\":1}"));
        // An empty POST still says its length.
        let req = build_request(&RequestSpec {
            method: "POST",
            target: &t,
            headers: &[],
            body: None,
            content_type: None,
            keepalive: true,
        });
        assert!(String::from_utf8(req)
            .unwrap()
            .contains("Content-Length: 0\r\n"));
    }

    #[test]
    fn header_flags() {
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header(": v").is_err());
        assert!(parse_header("a b: v").is_err());
        assert_eq!(
            parse_header("A:b:c").unwrap(),
            ("A".to_string(), "b:c".to_string())
        );
    }
}
