//! An `http[s]://host[:port][/path][?query]` URL, checked so that it can be sent as it is.

use super::{check_request_target, describe_char};

/// Where the requests go: from `http://host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The host as resolved (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The `Host` header: the URL's authority (IPv6 with brackets, port if given).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// `https://`: the connection speaks TLS (SNI from `host`).
    pub tls: bool,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{url}` is not a URL (expected http://HOST[:PORT]/PATH)"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "`{url}`: unsupported scheme `{other}`; twip bench speaks http:// and https://"
                ))
            }
        };
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
            None | Some("") if tls => 443,
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
        Ok(Url {
            host,
            port,
            authority: authority.to_string(),
            path,
            tls,
        })
    }

    /// `http://authority/path` (or `https://`).
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Url::parse("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/a/b?x=1");
        let t = Url::parse("http://example.com").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = Url::parse("HTTP://[::1]:81?q").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 81));
        assert_eq!(t.authority, "[::1]:81");
        assert_eq!(t.path, "/?q");
        assert_eq!(t.url(), "http://[::1]:81/?q");
        let t = Url::parse("https://x.example/a").unwrap();
        assert_eq!(
            (t.tls, t.port, t.url().as_str()),
            (true, 443, "https://x.example/a")
        );
        let t = Url::parse("HTTPS://x:8443").unwrap();
        assert_eq!((t.tls, t.port), (true, 8443));
        assert!(!Url::parse("http://x/").unwrap().tls);
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
        assert!(Url::parse("http://x:0/").is_err());
        assert!(Url::parse("http:///a").is_err());
        assert!(Url::parse("http://u:p@x/").is_err());
        assert!(Url::parse("example.com").is_err());
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
            let e = Url::parse(url).unwrap_err();
            assert!(e.contains(needle), "{url:?}: {e}");
        }
        for ok in [
            "http://h/a%20b",
            "http://h/~u/x-y_z.html?a=1&b=%2F;c=(d)*+,$!:@'",
            "http://[::1%25eth0]:8/",
        ] {
            assert!(Url::parse(ok).is_ok(), "{ok}");
        }
        assert!(check_request_target("a").is_err());
    }
}
