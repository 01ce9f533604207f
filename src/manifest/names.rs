//! One grammar per kind of name or value that leaves the manifest for another language (YAML
//! keys and file names of `stack.yml` and render output, HAProxy arguments, HTTP request
//! targets, argv of ssh/docker/buildx). Each function accepts a value or says what is wrong
//! with it, without repeating the value (the caller decides what may be shown). None accepts
//! a leading `-` (it would be read as an option), control characters, spaces, or anything
//! outside ASCII unless said so.

/// Names of swarm objects and their manifest keys: services, networks, volumes, configs,
/// secrets, stacks. Letters, digits, `_`, `-`, `.`; starts with a letter or digit; at most 63.
pub fn object_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && s.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err("use letters, digits, `_`, `-`, `.`, starting with a letter or digit, at most 63 characters".into())
    }
}

/// Names of services and jobs: swarm's rule for them (a DNS name component: `tasks.STACK_NAME`
/// is what the proxy resolves): letters and digits, with `-` and `_` between them; no `.`;
/// at most 63.
pub fn service_name(s: &str) -> Result<(), String> {
    let ok = s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err("use letters, digits, and `-` or `_` between them (no `.`: swarm makes it a DNS name), at most 63 characters".into())
    }
}

/// An environment (a file `environments/NAME.yaml`): an object name, or `_` and one for a
/// partial.
pub fn environment_name(s: &str) -> Result<(), String> {
    object_name(s.strip_prefix('_').unwrap_or(s)).map_err(|_| {
        "an environment name uses letters, digits, `_`, `-`, `.` and starts with a letter or digit (or `_` for a partial), at most 63 characters".into()
    })
}

/// The project name (prefix of image names): lowercase letters, digits, `_`, `-`, `.`,
/// starting with a letter or digit.
pub fn project_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && s.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err("use lowercase letters, digits, `-`, `_`, `.`, starting with a letter or digit (it prefixes image names)".into())
    }
}

/// A label key (services, volumes, nodes): letters, digits, `.`, `_`, `-`, `/`, starting
/// and ending with a letter or digit, at most 255.
pub fn label_key(s: &str) -> Result<(), String> {
    let ok = s.len() <= 255
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if ok {
        Ok(())
    } else {
        Err("a label key uses letters, digits, `.`, `_`, `-`, `/`, starts and ends with a letter or digit (e.g. com.example.tier)".into())
    }
}

/// An environment variable or build argument name: a letter or `_`, then letters, digits,
/// `_` or `.`.
pub fn env_var_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && s.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err("a variable name starts with a letter or `_` and has letters, digits, `_`, `.`".into())
    }
}

/// A DNS name: dot-separated labels of ASCII letters, digits and `-` (not at either end of
/// a label), each at most 63, at most 253 in all. Non-ASCII (IDN) names are refused: write
/// their ASCII (`xn--`) form.
pub fn dns_name(s: &str) -> Result<(), String> {
    if !s.is_ascii() {
        return Err(
            "not ASCII; write an internationalised name in its ASCII form (xn--...)".into(),
        );
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err("a host name is made of labels of letters, digits and `-` (not first or last), separated by dots".into());
        }
    }
    Ok(())
}

/// A host: a DNS name, an IPv4 address or an IPv6 address (bare or in brackets).
pub fn host_name(s: &str) -> Result<(), String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    dns_name(s).map_err(|e| format!("not a host name or IP address: {e}"))
}

/// `HOST[:PORT]` (IPv6 in brackets when there is a port).
pub fn host_port(s: &str) -> Result<(), String> {
    let (host, port) = split_host_port(s);
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => {}
            _ => return Err("the port after `:` is a number from 1 to 65535".into()),
        }
    }
    host_name(host)
}

fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        if let Some(end) = s.find(']') {
            let rest = &s[end + 1..];
            return (&s[..=end], rest.strip_prefix(':'));
        }
        return (s, None);
    }
    match s.rsplit_once(':') {
        // More than one `:`: a bare IPv6 address, no port.
        Some((h, _)) if h.contains(':') => (s, None),
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

/// A volume driver option's name (`type`, `o`, `device`): letters, digits, `_`, `.`, `-`,
/// starting with a letter; at most 64.
pub fn driver_option(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err("letters, digits, `_`, `.`, `-`, starting with a letter; at most 64".into())
    }
}

/// An IPv4 address in dotted decimal, four numbers 0-255 (`10.0.0.100`), no prefix length; not
/// 0.0.0.0, a loopback, multicast or broadcast address.
pub fn ipv4_address(s: &str) -> Result<(), String> {
    let ip: std::net::Ipv4Addr = s
        .parse()
        .map_err(|_| "not an IPv4 address (four numbers 0-255 separated by `.`)".to_string())?;
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
        return Err(
            "not an address a node can hold (unspecified, loopback, multicast or broadcast)".into(),
        );
    }
    Ok(())
}

/// A network interface's name as Linux takes it: 1 to 15 of letters, digits, `_`, `.`, `-`,
/// `@`-free, not `.` or `..`, not starting with `-`.
pub fn interface_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err("an interface name has 1 to 15 characters".into());
    }
    if s == "." || s == ".." || s.starts_with('-') {
        return Err("not an interface name".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("an interface name has only letters, digits, `_`, `.` and `-`".into());
    }
    Ok(())
}

/// A node's name in the swarm (its hostname): a DNS name.
pub fn node_name(s: &str) -> Result<(), String> {
    dns_name(s)
}

/// A user name for ssh: letters, digits, `_`, `.`, `-`, starting with a letter, digit or
/// `_`; at most 32.
pub fn ssh_user(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && s.len() <= 32;
    if ok {
        Ok(())
    } else {
        Err("a user name has letters, digits, `_`, `.`, `-`, starts with a letter, digit or `_`, at most 32 characters".into())
    }
}

/// A registry address: `HOST[:PORT][/PATH]`, without a scheme.
pub fn registry_address(s: &str) -> Result<(), String> {
    if s.contains("://") {
        return Err("write the registry as host[:port], without a scheme".into());
    }
    // `HOST[:PORT]`, optionally followed by path components (`ghcr.io/team`,
    // `127.0.0.1:5000/ci-run`): images are then named `URL/NAMESPACE/NAME:TAG`.
    let (host, path) = match s.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    host_port(host).map_err(|e| format!("not a registry address (host[:port][/path]): {e}"))?;
    if let Some(p) = path {
        if !p.split('/').all(path_component) {
            return Err(
                "not a registry address (host[:port][/path]): each part of the path is \
                        lowercase letters and digits, separated by `.`, `_` or `-`"
                    .into(),
            );
        }
    }
    Ok(())
}

/// One path component of a repository: lowercase letters and digits, separated by `.`, `_`,
/// `__` or runs of `-`.
fn path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    if !b[b.len() - 1].is_ascii_lowercase() && !b[b.len() - 1].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__` or `-`+, then an alphanumeric.
        let start = i;
        match ch {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !b.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
            return false;
        }
    }
    true
}

/// A repository (`[REGISTRY/]PATH`, e.g. `nginx`, `library/nginx`, `localhost:5000/twip/web`),
/// by the docker reference grammar.
pub fn repository(s: &str) -> Result<(), String> {
    let msg = "a repository is [REGISTRY/]PATH: lowercase letters, digits and `.`, `_`, `-` between them, in `/`-separated parts";
    if s.is_empty() || s.len() > 255 {
        return Err(msg.into());
    }
    let mut parts: Vec<&str> = s.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains(['.', ':']) || first == "localhost" {
            host_port(first).map_err(|e| format!("the registry part: {e}"))?;
            parts.remove(0);
        }
    }
    if parts.iter().all(|p| path_component(p)) {
        Ok(())
    } else {
        Err(msg.into())
    }
}

/// An image tag: letters, digits, `_`, `.`, `-`, not starting with `.` or `-`, at most 128.
pub fn image_tag(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !s.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err("a tag has letters, digits, `_`, `.`, `-` (not first), at most 128".into())
    }
}

/// An image reference by the docker grammar: `REPOSITORY[:TAG][@ALGO:HEX]`.
pub fn image_reference(s: &str) -> Result<(), String> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-_".contains(c))
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return Err("the digest after `@` is ALGORITHM:HEX (e.g. sha256:...)".into());
        }
    }
    // A tag is after the last `:` that comes after the last `/`.
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        image_tag(t).map_err(|e| format!("the tag: {e}"))?;
    }
    repository(repo)
        .map_err(|e| format!("not an image reference ([REGISTRY/]NAME[:TAG][@DIGEST]): {e}"))
}

/// A request path for HAProxy and HTTP: starts with `/`; then unreserved characters,
/// `%HH`, and `/ : @ ! $ & ( ) * + , ; = ~`; no spaces, `#`, `?`, quotes, backslashes,
/// control or non-ASCII characters (percent-encode them).
pub fn request_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("a path starts with `/`".into());
    }
    if s.len() > 1024 {
        return Err("a path has at most 1024 characters".into());
    }
    path_chars(s, false)
}

/// A request target: a request path, optionally with `?QUERY` (same characters, and `?`).
pub fn request_target(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("a path starts with `/`".into());
    }
    if s.len() > 1024 {
        return Err("a path has at most 1024 characters".into());
    }
    path_chars(s, true)
}

fn path_chars(s: &str, query: bool) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_query = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'%' => {
                let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !ok {
                    return Err("`%` starts an escape of two hex digits (`%20`)".into());
                }
                i += 3;
                continue;
            }
            b'?' if query => in_query = true,
            b'?' => return Err("a path has no `?` (no query string here)".into()),
            b'#' => return Err("a path has no `#` (HAProxy would cut it there)".into()),
            b' ' | b'\t' => {
                return Err("a path has no spaces or tabs (percent-encode them: `%20`)".into())
            }
            _ if c.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' | b'/' | b':' | b'@' | b'!' | b'$' | b'&' | b'(' | b')'
            | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ if !c.is_ascii() => {
                return Err("a path is ASCII (percent-encode other characters)".into())
            }
            _ if c.is_ascii_control() => return Err("a path has no control characters".into()),
            _ => {
                return Err(format!(
                    "`{}` is not allowed in a path (percent-encode it)",
                    c as char
                ))
            }
        }
        i += 1;
    }
    let _ = in_query;
    Ok(())
}

/// A path a manifest names (files, build contexts, Dockerfiles): not empty, not starting
/// with `-` (write `./-x`), no NUL.
pub fn file_path(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the path is empty".into());
    }
    if s.starts_with('-') {
        return Err(
            "a path starting with `-` would be read as an option; write `./` before it".into(),
        );
    }
    if s.contains('\0') {
        return Err("a path has no NUL character".into());
    }
    Ok(())
}

/// Characters refused in names and single-line values: C0 controls (TAB, CR, LF
/// included), DEL, C1 controls, bidi overrides and isolates, zero-width characters.
pub fn unsafe_in_line(c: char) -> bool {
    super::diag::is_unsafe_char(c)
}

/// Characters refused in free text (config content, environment values, commands,
/// descriptions): every control character except TAB, LF and CR.
pub fn unsafe_in_text(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The first refused character of a single-line value, described (`U+000A (line feed)`).
pub fn check_line(s: &str) -> Result<(), String> {
    match s.chars().find(|&c| unsafe_in_line(c)) {
        Some(c) => Err(format!(
            "has the character {}; names and single-line values have no control, bidi or zero-width characters",
            describe(c)
        )),
        None => Ok(()),
    }
}

/// The first refused character of free text.
pub fn check_text(s: &str) -> Result<(), String> {
    match s.chars().find(|&c| unsafe_in_text(c)) {
        Some(c) => Err(format!(
            "has the control character {}; text may hold tabs and line breaks, no other control characters",
            describe(c)
        )),
        None => Ok(()),
    }
}

fn describe(c: char) -> String {
    let name = match c {
        '\0' => " (NUL)",
        '\t' => " (tab)",
        '\n' => " (line feed)",
        '\r' => " (carriage return)",
        '\x1b' => " (escape)",
        '\u{7f}' => " (delete)",
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => " (bidi override)",
        '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' => " (zero-width)",
        _ => "",
    };
    format!("U+{:04X}{name}", c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(f: fn(&str) -> Result<(), String>, good: &[&str], bad: &[&str]) {
        assert!(!good.is_empty() && !bad.is_empty());
        for g in good {
            assert!(f(g).is_ok(), "should accept {g:?}: {:?}", f(g));
        }
        for b in bad {
            assert!(f(b).is_err(), "should refuse {b:?}");
        }
    }

    const HOSTILE: &[&str] = &[
        "",
        "-oProxyCommand=x",
        "a b",
        "a\nb",
        "a\r\nb",
        "a\tb",
        "a#b",
        "a\u{202e}b",
        "a\u{200b}b",
        "a\x1b[31mb",
        "a\0b",
        "$(id)",
        "`id`",
        "a'b",
        "a\"b",
        "../x",
    ];

    #[test]
    fn driver_options() {
        table(
            driver_option,
            &["type", "o", "device", "size-1", "a.b_c"],
            HOSTILE,
        );
        table(driver_option, &["x"], &["1x", "_x", &"a".repeat(65)]);
    }

    #[test]
    fn ipv4_addresses() {
        table(
            ipv4_address,
            &["10.0.0.100", "192.168.1.1", "10.99.0.250"],
            HOSTILE,
        );
        table(
            ipv4_address,
            &["1.2.3.4"],
            &[
                "10.0.0",
                "10.0.0.256",
                "10.0.0.1/24",
                "::1",
                "127.0.0.1",
                "0.0.0.0",
                "224.0.0.18",
                "255.255.255.255",
                " 10.0.0.1",
            ],
        );
    }

    #[test]
    fn interface_names() {
        table(
            interface_name,
            &["eth0", "ens3", "br-1a2b", "bond0.100", "wg_0"],
            HOSTILE,
        );
        table(
            interface_name,
            &["e"],
            &[".", "..", "-x", "eth0:1", "a/b", &"e".repeat(16)],
        );
    }

    #[test]
    fn object_names() {
        table(object_name, &["web", "Web-1", "a.b_c", "0x"], HOSTILE);
        table(object_name, &["x"], &[".x", "_x", "x/y", &"a".repeat(64)]);
    }

    #[test]
    fn service_names() {
        table(
            service_name,
            &["web", "Web-1", "a_b", "0x", "a--b"],
            HOSTILE,
        );
        table(
            service_name,
            &["x"],
            &["a.b", "web..", "web.", "web-", "_x", &"a".repeat(64)],
        );
    }

    #[test]
    fn environment_names() {
        table(environment_name, &["training", "_base", "prod.eu"], HOSTILE);
        table(environment_name, &["a"], &["__x", "x\ny", "x/../y"]);
    }

    #[test]
    fn project_names() {
        table(project_name, &["twip", "my-app.2"], HOSTILE);
        table(project_name, &["a"], &["Twip", "_x", ".x"]);
    }

    #[test]
    fn label_keys() {
        table(label_key, &["tier", "com.example/role", "a-b_c"], HOSTILE);
        table(label_key, &["a"], &["a.", "-a", "a=b"]);
    }

    #[test]
    fn env_var_names() {
        table(env_var_name, &["PATH", "_x", "a.b", "A1"], HOSTILE);
        table(env_var_name, &["A"], &["1A", "A-B", "A=B"]);
    }

    #[test]
    fn host_names() {
        table(
            host_name,
            &[
                "example.com",
                "a-b.c",
                "10.0.0.1",
                "::1",
                "[fe80::1]",
                "xn--bcher-kva.de",
                "host.",
            ],
            HOSTILE,
        );
        table(
            host_name,
            &["localhost"],
            &[
                "-a.com",
                "a-.com",
                "a..b",
                "bücher.de",
                &"a".repeat(64),
                "a_b.com",
            ],
        );
    }

    #[test]
    fn host_ports() {
        table(
            host_port,
            &["a.com", "a.com:8080", "[::1]:80", "10.0.0.1:5000"],
            HOSTILE,
        );
        table(
            host_port,
            &["a"],
            &["a.com:0", "a.com:99999", "a.com:x", "a.com/x"],
        );
    }

    #[test]
    fn ssh_users() {
        table(ssh_user, &["root", "deploy", "ci_bot", "a.b-c"], HOSTILE);
        table(ssh_user, &["u"], &["-u", "u@h", &"u".repeat(33)]);
    }

    #[test]
    fn registry_addresses() {
        table(
            registry_address,
            &[
                "localhost:5000",
                "registry.example.com",
                "10.0.0.2:5001",
                "ghcr.io/team",
                "127.0.0.1:5001/twiptest-27604437902",
            ],
            HOSTILE,
        );
        table(
            registry_address,
            &["r.io", "r.io/x", "r.io/a/b-c"],
            &[
                "https://r.io",
                "r.io:",
                "r.io/",
                "r.io/X",
                "r.io//x",
                "r.io/-x",
                "r.io/x y",
            ],
        );
    }

    #[test]
    fn image_references() {
        table(
            image_reference,
            &[
                "nginx",
                "nginx:1.25",
                "library/nginx:latest",
                "localhost:5000/twip/web:v1",
                "haproxy:2.9-alpine",
                "prom/prometheus:v2.53.0",
                "ghcr.io/owner/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "registry.example.com:443/a/b__c/d-e:1",
            ],
            HOSTILE,
        );
        table(
            image_reference,
            &["a"],
            &[
                "Nginx",
                "nginx:",
                "nginx:-x",
                "a//b",
                "a/-b",
                "nginx@sha256:xyz",
                "https://u:p@r.io/x",
                "a:b:c",
            ],
        );
    }

    #[test]
    fn request_paths() {
        table(
            request_path,
            &["/", "/api/", "/a%20b", "/~u/x.css", "/a:b@c"],
            HOSTILE,
        );
        table(
            request_path,
            &["/x"],
            &[
                "x",
                "/a b",
                "/a#b",
                "/a?b",
                "/a\nserver evil 1.2.3.4:80",
                "/a%2",
                "/é",
                "/a\"b",
                "/a\\b",
                "/a{b}",
            ],
        );
        table(
            request_target,
            &["/healthz", "/h?x=1&y=2"],
            &["/h#x", "/h z", "h"],
        );
    }

    #[test]
    fn file_paths() {
        table(file_path, &["a", "./-x", "conf/x.yml"], &["", "-x", "a\0b"]);
    }

    #[test]
    fn characters() {
        assert!(check_line("plain text, ok").is_ok());
        for bad in [
            "a\n", "a\t", "\r", "\x1b", "\u{7f}", "\u{85}", "\u{202e}", "\u{2066}", "\u{200b}",
            "\u{feff}",
        ] {
            let e = check_line(bad).unwrap_err();
            assert!(e.contains("U+"), "{e}");
        }
        assert!(check_text("line 1\nline 2\twith tab\r\n").is_ok());
        assert!(check_text("right-to-left \u{202e} text").is_ok());
        for bad in ["\0", "\x1b[2J", "\u{7f}", "\u{9b}"] {
            assert!(check_text(bad).is_err(), "{bad:?}");
        }
        assert!(check_line("a\nb")
            .unwrap_err()
            .contains("U+000A (line feed)"));
    }
}
