//! The HTTP/1.1 pieces of the client that need no socket: the target URL, the request bytes
//! (built once per run), the response head parser and the chunked-body decoder. Pure.

/// Where the requests go: from `http://host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as resolved (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The `Host` header: the URL's authority (IPv6 with brackets, port if given).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{url}` is not a URL (expected http://HOST[:PORT]/PATH)"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "http" => {}
            "https" => {
                return Err(format!(
                    "`{url}`: https is not supported yet by twip bench; use an http:// URL"
                ))
            }
            other => {
                return Err(format!(
                    "`{url}`: unsupported scheme `{other}`; twip bench speaks http://"
                ))
            }
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!(
                "`{url}`: credentials in the URL are not supported; use -H 'Authorization: ...'"
            ));
        }
        if authority.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        if let Some(c) = authority
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || "-._~:[]%".contains(c)))
        {
            return Err(format!(
                "`{}`: the host holds {}, which a host name cannot",
                url.escape_debug(),
                describe_char(c)
            ));
        }
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (h, p) = after
                .split_once(']')
                .ok_or_else(|| format!("`{url}`: unclosed `[` in the host"))?;
            let port = match p {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("`{url}`: bad port `{p}`"))?,
                ),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            None | Some("") => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("`{url}`: bad port `{p}`"))?,
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        // The authority becomes the Host header: only the characters a host may hold.
        let bracketed = authority.starts_with('[');
        if let Some(c) = host.chars().find(|&c| {
            !(c.is_ascii_alphanumeric()
                || "-._~".contains(c)
                || (bracketed && (c == ':' || c == '%')))
        }) {
            return Err(format!(
                "`{}`: the host holds {}, which a host name cannot",
                url.escape_debug(),
                describe_char(c)
            ));
        }
        let tail = tail.split('#').next().unwrap_or("");
        let path = if tail.is_empty() {
            "/".to_string()
        } else if tail.starts_with('?') {
            format!("/{tail}")
        } else {
            tail.to_string()
        };
        check_request_target(&path).map_err(|e| format!("`{}`: {e}", url.escape_debug()))?;
        Ok(Target {
            host,
            port,
            authority: authority.to_string(),
            path,
        })
    }

    /// `http://authority/path`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

/// `c` for a message: `a space`, `U+000A`, `` `{` ``.
fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        c if c.is_control() || !c.is_ascii() => format!("the character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

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
    pub target: &'a Target,
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

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the status line and headers, final blank line included.
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The connection cannot be reused after this response.
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    Invalid,
}

/// Parses a response head from the start of `buf`: `Ok(None)` when more bytes are needed.
/// `head_only`: the request was HEAD, so no body follows whatever the headers say.
///
/// Written by hand for speed: it checks the status line strictly, splits the header lines
/// and looks only at the three headers that frame the message (`Content-Length`,
/// `Transfer-Encoding`, `Connection`). Lines may end in CRLF or a bare LF; folded header
/// lines (obsolete) and lines without a colon are invalid.
pub fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<Head>, ParseError> {
    let Some(eol) = memchr::memchr(b'\n', buf) else {
        return partial_status_line(buf);
    };
    let line = strip_cr(&buf[..eol]);
    // HTTP/1.x SSS[ reason]
    if line.len() < 12
        || &line[..7] != b"HTTP/1."
        || !matches!(line[7], b'0' | b'1')
        || line[8] != b' '
        || !line[9..12].iter().all(u8::is_ascii_digit)
        || (line.len() > 12 && line[12] != b' ')
    {
        return Err(ParseError::Invalid);
    }
    let http10 = line[7] == b'0';
    let status = line[9..12]
        .iter()
        .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
    let mut pos = eol + 1;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut conn_close = false;
    let mut conn_keepalive = false;
    let len = loop {
        let Some(rel) = memchr::memchr(b'\n', &buf[pos..]) else {
            return Ok(None);
        };
        let line = strip_cr(&buf[pos..pos + rel]);
        pos += rel + 1;
        if line.is_empty() {
            break pos;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(ParseError::Invalid);
        };
        let name = &line[..colon];
        if name.is_empty() || name[0] == b' ' || name[0] == b'\t' || name.ends_with(b" ") {
            return Err(ParseError::Invalid);
        }
        let value = &line[colon + 1..];
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let v = trim(value);
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 19 {
                    return Err(ParseError::Invalid);
                }
                let n = v.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
                if length.is_some_and(|l| l != n) {
                    return Err(ParseError::Invalid);
                }
                length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // Chunked is the last coding when present (RFC 9112 6.1).
                let v = trim(value);
                chunked = v.len() >= 7 && v[v.len() - 7..].eq_ignore_ascii_case(b"chunked");
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let t = trim(token);
                    if t.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keepalive = true;
                    }
                }
            }
            _ => {}
        }
    };
    let framing = if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let close = conn_close || (http10 && !conn_keepalive) || framing == Framing::UntilClose;
    Ok(Some(Head {
        len,
        status,
        framing,
        close,
    }))
}

/// Whether an incomplete first line can still become a status line.
fn partial_status_line(buf: &[u8]) -> Result<Option<Head>, ParseError> {
    let n = buf.len().min(7);
    if buf[..n] != b"HTTP/1."[..n] {
        return Err(ParseError::Invalid);
    }
    Ok(None)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    match line {
        [rest @ .., b'\r'] => rest,
        _ => line,
    }
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Decodes a chunked body incrementally, counting its data bytes and finding its end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    size: u64,
    size_digits: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size.
    #[default]
    Size,
    /// After the size: extensions, until LF.
    SizeLine,
    Data,
    /// CRLF after data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one. `line_empty` tracks that.
    Trailer {
        line_empty: bool,
    },
    Done,
}

/// What [`Chunked::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input that belong to the body (all of it unless `done`).
    pub consumed: usize,
    /// Data bytes (without the chunk framing) in what was consumed.
    pub data: u64,
    pub done: bool,
}

impl Chunked {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, buf: &[u8]) -> Result<Fed, ParseError> {
        let mut i = 0;
        let mut data = 0u64;
        while i < buf.len() {
            match self.state {
                ChunkState::Size => {
                    let b = buf[i];
                    if let Some(d) = (b as char).to_digit(16) {
                        self.size_digits += 1;
                        if self.size_digits > 15 {
                            return Err(ParseError::Invalid);
                        }
                        self.size = self.size * 16 + u64::from(d);
                        i += 1;
                    } else if self.size_digits == 0 {
                        return Err(ParseError::Invalid);
                    } else {
                        self.state = ChunkState::SizeLine;
                    }
                }
                ChunkState::SizeLine => match memchr_lf(&buf[i..]) {
                    Some(p) => {
                        i += p + 1;
                        self.size_digits = 0;
                        self.state = if self.size == 0 {
                            ChunkState::Trailer { line_empty: true }
                        } else {
                            ChunkState::Data
                        };
                    }
                    None => i = buf.len(),
                },
                ChunkState::Data => {
                    let take = (self.size).min((buf.len() - i) as u64);
                    self.size -= take;
                    data += take;
                    i += take as usize;
                    if self.size == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    match buf[i] {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Size,
                        _ => return Err(ParseError::Invalid),
                    }
                    i += 1;
                }
                ChunkState::Trailer { line_empty } => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\n' if line_empty => {
                            self.state = ChunkState::Done;
                            return Ok(Fed {
                                consumed: i,
                                data,
                                done: true,
                            });
                        }
                        b'\n' => self.state = ChunkState::Trailer { line_empty: true },
                        b'\r' => {}
                        _ => self.state = ChunkState::Trailer { line_empty: false },
                    }
                }
                ChunkState::Done => {
                    return Ok(Fed {
                        consumed: i,
                        data,
                        done: true,
                    })
                }
            }
        }
        Ok(Fed {
            consumed: i,
            data,
            done: self.state == ChunkState::Done,
        })
    }
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/a/b?x=1");
        let t = Target::parse("http://example.com").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = Target::parse("HTTP://[::1]:81?q").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 81));
        assert_eq!(t.authority, "[::1]:81");
        assert_eq!(t.path, "/?q");
        assert_eq!(t.url(), "http://[::1]:81/?q");
        assert!(Target::parse("https://x/")
            .unwrap_err()
            .contains("not supported yet"));
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http://x:99999/").is_err());
        assert!(Target::parse("http://x:0/").is_err());
        assert!(Target::parse("http:///a").is_err());
        assert!(Target::parse("http://u:p@x/").is_err());
        assert!(Target::parse("example.com").is_err());
    }

    #[test]
    fn invalid_request_targets_are_refused() {
        for (url, needle) in [
            ("http://h/a b", "a space"),
            ("http://h/a\r\nX: y", "U+000D"),
            ("http://h/a\tb", "U+0009"),
            ("http://h/\u{7f}", "U+007F"),
            ("http://h/caf\u{e9}", "UTF-8"),
            ("http://h/a{b}", "%7B"),
            ("http://h/a\"b", "%22"),
            ("http://h/a%zz", "two hex digits"),
            ("http://h/a%4", "two hex digits"),
            ("http://h?q=a b", "a space"),
            ("http://h\r\nX: y/", "host"),
            ("http://a b/", "host"),
        ] {
            let e = Target::parse(url).unwrap_err();
            assert!(e.contains(needle), "{url:?}: {e}");
        }
        for ok in [
            "http://h/a%20b",
            "http://h/~u/x-y_z.html?a=1&b=%2F;c=(d)*+,$!:@'",
            "http://[::1%25eth0]:8/",
        ] {
            assert!(Target::parse(ok).is_ok(), "{ok}");
        }
        assert!(check_request_target("a").is_err());
    }

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

    fn target() -> Target {
        Target::parse("http://h:8080/p?q=1").unwrap()
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

    #[test]
    fn heads() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
        let h = parse_head(r, false).unwrap().unwrap();
        assert_eq!(h.len, r.len() - 5);
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(!h.close);
        assert_eq!(parse_head(&r[..20], false), Ok(None));
        let h = parse_head(r, true).unwrap().unwrap();
        assert_eq!(h.framing, Framing::None);

        let r = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive, Close\r\n\r\n";
        let h = parse_head(r, false).unwrap().unwrap();
        assert_eq!(
            (h.status, h.framing, h.close),
            (500, Framing::Chunked, true)
        );

        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n";
        assert!(parse_head(r, false).unwrap().unwrap().close);
        let r = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n";
        assert!(!parse_head(r, false).unwrap().unwrap().close);

        let r = b"HTTP/1.1 200 OK\r\n\r\n";
        let h = parse_head(r, false).unwrap().unwrap();
        assert_eq!((h.framing, h.close), (Framing::UntilClose, true));

        let r = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            parse_head(r, false).unwrap().unwrap().framing,
            Framing::None
        );
        let r = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(
            parse_head(r, false).unwrap().unwrap().framing,
            Framing::None
        );

        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        assert!(
            parse_head(b"SSH-2.0", false).is_err(),
            "garbage fails early"
        );
        assert_eq!(parse_head(b"HTTP/1", false), Ok(None));
        assert!(parse_head(b"HTTP/2 200 OK\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 20 OK\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200OK\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", false).is_err());
        // A status line without a reason, bare LFs, and a partial head.
        let h = parse_head(b"HTTP/1.1 404\nContent-Length: 3\n\nabc", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.len, h.framing), (404, 32, Framing::Length(3)));
        let full = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 330\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse_head(&full[..cut], false), Ok(None), "cut at {cut}");
        }
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err());
    }

    #[test]
    fn chunked_in_one_piece_and_byte_by_byte() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let mut c = Chunked::new();
        let f = c.feed(body).unwrap();
        assert!(f.done);
        assert_eq!(f.data, 23);
        assert_eq!(&body[f.consumed..], b"NEXT");

        let mut c = Chunked::new();
        let mut data = 0;
        let mut consumed = 0;
        for (i, b) in body.iter().enumerate() {
            let f = c.feed(std::slice::from_ref(b)).unwrap();
            data += f.data;
            consumed += f.consumed;
            if f.done {
                assert_eq!(i, body.len() - 5);
                break;
            }
        }
        assert_eq!((data, consumed), (23, body.len() - 4));
    }

    #[test]
    fn chunked_without_trailer_and_bad_input() {
        let mut c = Chunked::new();
        let f = c.feed(b"3\r\nabc\r\n0\r\n\r\n").unwrap();
        assert_eq!((f.data, f.done), (3, true));
        assert!(Chunked::new().feed(b"zz\r\n").is_err());
        assert!(Chunked::new().feed(b"1\r\naXY").is_err());
        let mut c = Chunked::new();
        let f = c.feed(b"10\r\n0123").unwrap();
        assert_eq!((f.data, f.done, f.consumed), (4, false, 8));
    }
}
