//! Checks that types cannot express: references between sections, ports that would collide,
//! counts that contradict each other, files that must exist. Every rule adds a problem with
//! the path of the key it is about; none stops the others.

use std::collections::BTreeMap;
use std::path::Path;

use super::diag::{join_path, suggest, Problem};
use super::model::*;
use super::names;
use super::yaml::Node;

/// Platforms buildx and swarm know.
pub const PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
];

/// Service names twip adds to the stack itself when the sections are present.
pub const PROXY_SERVICE: &str = "proxy";
pub const MONITORING_SERVICE: &str = "prometheus";

struct Checker<'a> {
    root: &'a Node,
    out: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn err(&mut self, path: &[&str], msg: impl Into<String>) {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let span = self.root.span_of(&path);
        self.out.push(Problem::at(span, &join_path(&path), msg));
    }
}

fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str> + Clone) -> String {
    match suggest(name, known.clone()) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => {
            let list: Vec<&str> = known.into_iter().collect();
            if list.is_empty() {
                String::new()
            } else {
                format!(" (defined: {})", list.join(", "))
            }
        }
    }
}

/// Whether a service/proxy image reference is a full registry reference (not an `images` key).
pub fn is_full_reference(image: &str) -> bool {
    image.contains(':') || image.contains('@') || image.contains('/')
}

fn valid_name(s: &str) -> bool {
    names::object_name(s).is_ok()
}

/// The key a problem with an image's Dockerfile is reported at: `dockerfile` when the manifest
/// names one, else `context` (the default `Dockerfile` is looked for there).
fn dockerfile_key(b: &Build) -> &'static str {
    if b.dockerfile.is_some() {
        "dockerfile"
    } else {
        "context"
    }
}

/// Runs every rule. `project_dir` is where relative paths (build contexts, files) start.
pub fn check(m: &Manifest, root: &Node, project_dir: &Path, out: &mut Vec<Problem>) {
    let mut c = Checker { root, out };
    check_top(m, &mut c);
    check_images(m, project_dir, &mut c);
    check_services(m, project_dir, &mut c);
    check_ports(m, &mut c);
    check_proxy(m, &mut c);
    check_monitoring(m, &mut c);
    check_nodes(m, &mut c);
    check_files(m, project_dir, &mut c);
    check_grammars(m, &mut c);
    check_numbers(m, &mut c);
    check_paths(m, project_dir, &mut c);
    check_characters(root, c.out);
}

fn check_top(m: &Manifest, c: &mut Checker) {
    if let Some(stack) = &m.stack {
        if !valid_name(stack) {
            c.err(
                &["stack"],
                format!("`{stack}` is not a valid stack name (letters, digits, `_`, `-`, `.`)"),
            );
        }
    }
    if let Some(project) = &m.project {
        if names::project_name(project).is_err() {
            c.err(&["project"], format!("`{project}` is not a valid project name: use lowercase letters, digits, `-`, `_`, `.` (it prefixes image names)"));
        }
    }
    if let Some(engine) = &m.engine {
        if let Some(host) = &engine.host {
            check_endpoint(
                host,
                engine.tls.is_some(),
                engine.allow_plain_tcp,
                &["engine", "host"],
                c,
            );
        }
    }
    if let Some(reg) = &m.registry {
        if reg.url.contains("://") {
            c.err(
                &["registry", "url"],
                format!(
                    "write the registry as host[:port], without a scheme: `{}`",
                    reg.url.split("://").nth(1).unwrap_or("")
                ),
            );
        } else if let Err(e) = names::registry_address(&reg.url) {
            if names::check_line(&reg.url).is_ok() {
                c.err(&["registry", "url"], format!("`{}` {e}", reg.url));
            } else {
                c.err(&["registry", "url"], e);
            }
        }
    }
    if m.services.is_empty() {
        c.err(
            &["services"],
            "no services: an environment needs at least one",
        );
    }
}

/// `unix://`, `tcp://` (TLS, or plain to loopback or when allowed), `ssh://`.
fn check_endpoint(host: &str, tls: bool, allow_plain: bool, path: &[&str], c: &mut Checker) {
    let Some((scheme, rest)) = host.split_once("://") else {
        c.err(path, format!("`{host}` is not an engine endpoint; use unix:///var/run/docker.sock, tcp://HOST:2376 or ssh://USER@HOST"));
        return;
    };
    match scheme {
        "unix" => {}
        "ssh" => {
            let authority = rest.split('/').next().unwrap_or("");
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            if let Some(u) = user {
                if names::ssh_user(u).is_err() {
                    c.err(path, "the user in ssh://USER@HOST is not a valid user name (letters, digits, `_`, `.`, `-`, not starting with `-`)");
                }
            }
            if names::host_port(hostport).is_err() {
                c.err(
                    path,
                    "the host in ssh://USER@HOST[:PORT] is not a host name or IP address",
                );
            }
        }
        "tcp" => {
            let hostpart = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
            let hostpart = hostpart.trim_start_matches('[').trim_end_matches(']');
            let loopback =
                hostpart == "localhost" || hostpart.starts_with("127.") || hostpart == "::1";
            if !tls && !allow_plain && !loopback {
                c.err(path, format!("plain TCP to `{hostpart}` is unencrypted and unauthenticated; add engine.tls (cert, key, ca), use ssh://, or set allow_plain_tcp: true for a lab"));
            }
        }
        other => c.err(
            path,
            format!("`{other}://` is not a supported engine scheme; use unix://, tcp:// or ssh://"),
        ),
    }
}

fn check_images(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    for (name, img) in &m.images {
        let p = ["images", name.as_str()];
        if !valid_name(name) || name.chars().any(|ch| ch.is_ascii_uppercase()) {
            c.err(&p, format!("`{name}` is not a valid image name: use lowercase letters, digits, `-`, `_`, `.`"));
        }
        match (&img.build, &img.reference) {
            (None, None) => c.err(&p, format!("image `{name}` has neither `build` (to build it) nor `ref` (to use an image from a registry)")),
            (Some(_), Some(_)) => c.err(&["images", name, "ref"], format!("image `{name}` has both `build` and `ref`; keep one")),
            _ => {}
        }
        if let Some(r) = &img.reference {
            if r.is_empty() || r.contains(' ') {
                c.err(
                    &["images", name, "ref"],
                    format!("`{r}` is not an image reference"),
                );
            }
        }
        for (i, plat) in img.platforms.iter().enumerate() {
            if !PLATFORMS.contains(&plat.as_str()) {
                let idx = i.to_string();
                c.err(
                    &["images", name, "platforms", &idx],
                    format!(
                        "`{plat}` is not a platform{}",
                        did_you_mean(plat, PLATFORMS.iter().copied())
                    ),
                );
            }
        }
        if let Some(b) = &img.build {
            let ctx = project_dir.join(&b.context);
            if !ctx.is_dir() {
                c.err(&["images", name, "build", "context"], format!("the build context `{}` is not a directory (paths are relative to the project directory)", b.context));
            } else {
                let df = b.dockerfile.as_deref().unwrap_or("Dockerfile");
                if !ctx.join(df).is_file() {
                    c.err(
                        &["images", name, "build", dockerfile_key(b)],
                        format!("no Dockerfile `{df}` in `{}`", b.context),
                    );
                }
            }
        }
        for (i, t) in img.tags.iter().enumerate() {
            let ok = names::image_tag(&t.0).is_ok();
            if !ok {
                let idx = i.to_string();
                c.err(
                    &["images", name, "tags", &idx],
                    format!(
                        "`{}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)",
                        t.0
                    ),
                );
            }
        }
    }
}

fn check_image_ref(m: &Manifest, image: &str, path: &[&str], c: &mut Checker) {
    if m.images.contains_key(image) || is_full_reference(image) {
        return;
    }
    let hint = did_you_mean(image, m.images.keys().map(String::as_str));
    c.err(path, format!("undefined image `{image}`{hint}; name an `images` entry, or a registry image with its tag (`{image}:TAG`)"));
}

fn max_tasks(mode: Mode, replicas: Option<u64>, autoscale: Option<&Autoscale>) -> u64 {
    match mode {
        Mode::Global => 1,
        Mode::Replicated => replicas.unwrap_or(1).max(autoscale.map_or(0, |a| a.max)),
    }
}

fn check_services(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    let _ = project_dir;
    for (name, s) in &m.services {
        let n = name.as_str();
        if !valid_name(name) {
            c.err(
                &["services", n],
                format!("`{name}` is not a valid service name (letters, digits, `_`, `-`, `.`)"),
            );
        }
        if (m.proxy.is_some() && name == PROXY_SERVICE)
            || (m.monitoring.as_ref().is_some_and(|x| x.enabled) && name == MONITORING_SERVICE)
        {
            c.err(&["services", n], format!("`{name}` is the name of the service twip adds for the `{}` section; rename this one", if name == PROXY_SERVICE { "proxy" } else { "monitoring" }));
        }
        check_image_ref(m, &s.image, &["services", n, "image"], c);
        if s.mode == Mode::Global {
            if s.replicas.is_some() {
                c.err(&["services", n, "replicas"], "a global service runs one task per node; remove `replicas` or use mode: replicated");
            }
            if s.placement
                .as_ref()
                .and_then(|p| p.max_replicas_per_node)
                .is_some()
            {
                c.err(
                    &["services", n, "placement", "max_replicas_per_node"],
                    "has no effect on a global service (one task per node); remove it",
                );
            }
            if s.autoscale.is_some() {
                c.err(&["services", n, "autoscale"], "a global service cannot be autoscaled (it runs one task per node); use mode: replicated");
            }
        }
        if let Some(p) = &s.placement {
            check_placement(p, &["services", n, "placement"], c);
        }
        for (i, net) in s.networks.iter().enumerate() {
            if net != "default" && !m.networks.contains_key(net) {
                let idx = i.to_string();
                c.err(
                    &["services", n, "networks", &idx],
                    format!(
                        "undefined network `{net}`{}",
                        did_you_mean(net, m.networks.keys().map(String::as_str))
                    ),
                );
            }
        }
        for (i, v) in s.volumes.iter().enumerate() {
            let idx = i.to_string();
            match (v.kind(), &v.source) {
                (MountKind::Volume, Some(src)) if !m.volumes.contains_key(src) => {
                    c.err(
                        &["services", n, "volumes", &idx],
                        format!(
                            "undefined volume `{src}`{}; declare it under `volumes:`",
                            did_you_mean(src, m.volumes.keys().map(String::as_str))
                        ),
                    );
                }
                (MountKind::Bind, None) => c.err(
                    &["services", n, "volumes", &idx],
                    "a bind mount needs a source path",
                ),
                (MountKind::Tmpfs, Some(_)) => c.err(
                    &["services", n, "volumes", &idx],
                    "a tmpfs mount takes no source",
                ),
                _ => {}
            }
            if !v.target.starts_with('/') {
                c.err(
                    &["services", n, "volumes", &idx],
                    format!("the target `{}` must be an absolute path", v.target),
                );
            }
        }
        for (i, r) in s.secrets.iter().enumerate() {
            if !m.secrets.contains_key(&r.source) {
                let idx = i.to_string();
                c.err(
                    &["services", n, "secrets", &idx],
                    format!(
                        "undefined secret `{}`{}",
                        r.source,
                        did_you_mean(&r.source, m.secrets.keys().map(String::as_str))
                    ),
                );
            }
        }
        for (i, r) in s.configs.iter().enumerate() {
            if !m.configs.contains_key(&r.source) {
                let idx = i.to_string();
                c.err(
                    &["services", n, "configs", &idx],
                    format!(
                        "undefined config `{}`{}",
                        r.source,
                        did_you_mean(&r.source, m.configs.keys().map(String::as_str))
                    ),
                );
            }
        }
        if let Some(h) = &s.healthcheck {
            if let Some(StringOrList::List(l)) = &h.test {
                let first = l.first().map(String::as_str).unwrap_or("");
                if !matches!(first, "CMD" | "CMD-SHELL" | "NONE") {
                    c.err(
                        &["services", n, "healthcheck", "test"],
                        format!("a list test starts with CMD, CMD-SHELL or NONE, not `{first}`"),
                    );
                }
            }
            if h.test.is_none() && !h.disable {
                c.err(
                    &["services", n, "healthcheck"],
                    "a healthcheck needs `test` (or `disable: true`)",
                );
            }
        }
        for (key, u) in [("update", &s.update), ("rollback", &s.rollback)] {
            if let Some(u) = u {
                if let Some(r) = u.max_failure_ratio {
                    if !(0.0..=1.0).contains(&r) {
                        c.err(
                            &["services", n, key, "max_failure_ratio"],
                            format!("{r} is not a ratio between 0 and 1"),
                        );
                    }
                }
            }
        }
        if let Some(res) = &s.resources {
            let lim = res.limits.as_ref();
            let resv = res.reservations.as_ref();
            if let (Some(l), Some(r)) = (lim.and_then(|x| x.cpus), resv.and_then(|x| x.cpus)) {
                if r.0 > l.0 {
                    c.err(
                        &["services", n, "resources", "reservations", "cpus"],
                        format!("reserves {} CPUs but is limited to {}", r.0, l.0),
                    );
                }
            }
            if let (Some(l), Some(r)) = (lim.and_then(|x| x.memory), resv.and_then(|x| x.memory)) {
                if r.0 > l.0 {
                    c.err(
                        &["services", n, "resources", "reservations", "memory"],
                        "reserves more memory than its limit",
                    );
                }
            }
            for (k, spec) in [("limits", lim), ("reservations", resv)] {
                if let Some(mem) = spec.and_then(|x| x.memory) {
                    if mem.0 < 6 << 20 {
                        c.err(
                            &["services", n, "resources", k, "memory"],
                            format!("{} bytes is below Docker's minimum of 6M", mem.0),
                        );
                    }
                }
            }
        }
        if let Some(a) = &s.autoscale {
            let p = ["services", n, "autoscale"];
            if a.min > a.max {
                c.err(
                    &["services", n, "autoscale", "min"],
                    format!("min ({}) is greater than max ({})", a.min, a.max),
                );
            }
            if a.min == 0 {
                c.err(
                    &["services", n, "autoscale", "min"],
                    "min must be at least 1 (a service at 0 tasks has no metric to scale on)",
                );
            }
            if a.target <= 0.0 {
                c.err(
                    &["services", n, "autoscale", "target"],
                    format!("the target must be more than 0, not {}", a.target),
                );
            }
            if let Some(t) = a.tolerance {
                if !(0.0..1.0).contains(&t) {
                    c.err(
                        &["services", n, "autoscale", "tolerance"],
                        format!("{t} is not a tolerance between 0 and 1 (0.1 is 10%)"),
                    );
                }
            }
            if a.max_step == Some(0) {
                c.err(
                    &["services", n, "autoscale", "max_step"],
                    "max_step must be at least 1",
                );
            }
            if let Some(r) = s.replicas {
                if r < a.min || r > a.max {
                    c.err(
                        &p,
                        format!(
                            "replicas ({r}) is outside the autoscale range {}..{}",
                            a.min, a.max
                        ),
                    );
                }
            }
        }
    }
    for (name, _) in m.networks.iter() {
        if name == "default" {
            // `default` may be configured, that is fine.
            continue;
        }
        if !valid_name(name) {
            c.err(
                &["networks", name],
                format!("`{name}` is not a valid network name"),
            );
        }
    }
}

fn check_placement(p: &Placement, path: &[&str], c: &mut Checker) {
    for (i, con) in p.constraints.iter().enumerate() {
        if !(con.contains("==") || con.contains("!=")) {
            let idx = i.to_string();
            let mut full: Vec<&str> = path.to_vec();
            full.push("constraints");
            full.push(&idx);
            c.err(&full, format!("`{con}` is not a constraint; write e.g. `node.role == worker` or `node.labels.tier == front`"));
        }
    }
    for (i, s) in p.spread.iter().enumerate() {
        if !s.starts_with("node.") && !s.starts_with("engine.labels.") {
            let idx = i.to_string();
            let mut full: Vec<&str> = path.to_vec();
            full.push("spread");
            full.push(&idx);
            c.err(
                &full,
                format!("`{s}` is not a spread descriptor; write e.g. `node.labels.zone`"),
            );
        }
    }
    if p.max_replicas_per_node == Some(0) {
        let mut full: Vec<&str> = path.to_vec();
        full.push("max_replicas_per_node");
        c.err(&full, "must be at least 1");
    }
}

/// One published port, where it was declared.
struct Published {
    port: u16,
    proto: Protocol,
    path: Vec<String>,
}

fn check_ports(m: &Manifest, c: &mut Checker) {
    let mut seen: Vec<Published> = Vec::new();
    let mut publish = |port: u16, proto: Protocol, path: Vec<String>, c: &mut Checker| {
        if let Some(first) = seen.iter().find(|p| p.port == port && p.proto == proto) {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            let proto_s = if proto == Protocol::Udp { "udp" } else { "tcp" };
            c.err(
                &refs,
                format!(
                    "port {port}/{proto_s} is already published by {}",
                    join_path(&first.path)
                ),
            );
        } else {
            seen.push(Published { port, proto, path });
        }
    };
    for (name, s) in &m.services {
        let tasks = max_tasks(s.mode, s.replicas, s.autoscale.as_ref());
        let per_node = s.placement.as_ref().and_then(|p| p.max_replicas_per_node);
        for (i, port) in s.ports.iter().enumerate() {
            let idx = i.to_string();
            let path = vec![
                "services".to_string(),
                name.clone(),
                "ports".into(),
                idx.clone(),
            ];
            let host_mode = port.mode.unwrap_or(PublishMode::Host) == PublishMode::Host;
            if let Some(published) = port.published {
                if host_mode && tasks > 1 && per_node != Some(1) {
                    c.err(&["services", name, "ports", &idx], format!(
                        "port {published} is published in host mode, but up to {tasks} tasks of `{name}` can run on one node and the second would fail with \"port is already allocated\"; set placement.max_replicas_per_node: 1 (one task per node), use mode: global, or put the service behind the proxy"
                    ));
                }
                publish(published, port.protocol, path, c);
            }
        }
    }
    if let Some(p) = &m.proxy {
        let port = p.port.unwrap_or(80);
        publish(port, Protocol::Tcp, vec!["proxy".into(), "port".into()], c);
        if let Some(st) = &p.stats {
            if st.enabled {
                publish(
                    st.port.unwrap_or(1936),
                    Protocol::Tcp,
                    vec!["proxy".into(), "stats".into(), "port".into()],
                    c,
                );
            }
        } else {
            publish(1936, Protocol::Tcp, vec!["proxy".into(), "stats".into()], c);
        }
        let host_mode = p.publish_mode.unwrap_or(PublishMode::Host) == PublishMode::Host;
        let tasks = max_tasks(p.mode, p.replicas, None);
        let per_node = p.placement.as_ref().and_then(|x| x.max_replicas_per_node);
        if host_mode && tasks > 1 && per_node != Some(1) {
            c.err(&["proxy", "replicas"], format!(
                "the proxy publishes port {port} in host mode, but {tasks} of its tasks can run on one node and the second would fail with \"port is already allocated\"; use mode: global, or placement.max_replicas_per_node: 1"
            ));
        }
    }
    if let Some(mon) = &m.monitoring {
        if mon.enabled {
            publish(
                mon.port.unwrap_or(9090),
                Protocol::Tcp,
                vec!["monitoring".into(), "port".into()],
                c,
            );
        }
    }
}

fn check_proxy(m: &Manifest, c: &mut Checker) {
    let Some(p) = &m.proxy else { return };
    check_image_ref(
        m,
        p.image.as_deref().unwrap_or("proxy"),
        &["proxy", "image"],
        c,
    );
    if p.mode == Mode::Global && p.replicas.is_some() {
        c.err(
            &["proxy", "replicas"],
            "a global proxy runs one task per node; remove `replicas` or use mode: replicated",
        );
    }
    if let Some(pl) = &p.placement {
        check_placement(pl, &["proxy", "placement"], c);
    }
    if p.routes.is_empty() {
        c.err(
            &["proxy", "routes"],
            "the proxy needs at least one route (e.g. `- {path: /, service: web, port: 8080}`)",
        );
    }
    let mut catch_all_seen: Option<usize> = None;
    for (i, r) in p.routes.iter().enumerate() {
        let idx = i.to_string();
        if !m.services.contains_key(&r.service) {
            c.err(
                &["proxy", "routes", &idx, "service"],
                format!(
                    "undefined service `{}`{}",
                    r.service,
                    did_you_mean(&r.service, m.services.keys().map(String::as_str))
                ),
            );
        }
        if let Some(path) = &r.path {
            if !path.starts_with('/') {
                c.err(
                    &["proxy", "routes", &idx, "path"],
                    format!("a route path starts with `/`: `/{path}`"),
                );
            }
        }
        if let Some(h) = &r.probe {
            if !h.starts_with('/') {
                c.err(
                    &["proxy", "routes", &idx, "probe"],
                    format!("a probe path starts with `/`: `/{h}`"),
                );
            }
        }
        if let Some(h) = &r.health {
            if !h.starts_with('/') {
                c.err(
                    &["proxy", "routes", &idx, "health"],
                    format!("a health-check path starts with `/`: `/{h}`"),
                );
            }
        }
        if let Some(host) = &r.host {
            if host.is_empty() || host.contains(['/', ' ', ':']) {
                c.err(
                    &["proxy", "routes", &idx, "host"],
                    format!("`{host}` is not a host name"),
                );
            }
        }
        if let Some(first) = catch_all_seen {
            c.err(&["proxy", "routes", &idx], format!("never used: routes[{first}] above matches every request; put catch-all routes last"));
        }
        if r.host.is_none() && r.path.as_deref().is_none_or(|x| x == "/") {
            catch_all_seen.get_or_insert(i);
        }
    }
    if let Some(h) = p.health.as_ref().and_then(|h| h.path.as_ref()) {
        if !h.starts_with('/') {
            c.err(
                &["proxy", "health", "path"],
                format!("a health-check path starts with `/`: `/{h}`"),
            );
        }
    }
    if let Some(uri) = p.stats.as_ref().and_then(|s| s.uri.as_ref()) {
        if !uri.starts_with('/') {
            c.err(&["proxy", "stats", "uri"], "the stats uri starts with `/`");
        }
    }
}

fn check_monitoring(m: &Manifest, c: &mut Checker) {
    let Some(mon) = &m.monitoring else { return };
    if !mon.enabled {
        return;
    }
    check_image_ref(m, &mon.image, &["monitoring", "image"], c);
    for (i, t) in mon.targets.iter().enumerate() {
        if !m.services.contains_key(&t.service) {
            let idx = i.to_string();
            c.err(
                &["monitoring", "targets", &idx, "service"],
                format!(
                    "undefined service `{}`{}",
                    t.service,
                    did_you_mean(&t.service, m.services.keys().map(String::as_str))
                ),
            );
        }
    }
}

fn check_nodes(m: &Manifest, c: &mut Checker) {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in m.nodes.iter().enumerate() {
        let idx = i.to_string();
        if let Some(first) = names.insert(n.name.as_str(), i) {
            c.err(
                &["nodes", &idx, "name"],
                format!("node name `{}` is already used by nodes[{first}]", n.name),
            );
        }
        if n.address.is_empty() || n.address.contains(['/', ' ']) {
            c.err(
                &["nodes", &idx, "address"],
                format!("`{}` is not a host address", n.address),
            );
        }
        if let Some(p) = &n.platform {
            if !PLATFORMS.contains(&p.as_str()) {
                c.err(
                    &["nodes", &idx, "platform"],
                    format!(
                        "`{p}` is not a platform{}",
                        did_you_mean(p, PLATFORMS.iter().copied())
                    ),
                );
            }
        }
        if let Some(e) = &n.engine {
            let engine = m.engine.as_ref();
            check_endpoint(
                e,
                engine.is_some_and(|x| x.tls.is_some()),
                engine.is_some_and(|x| x.allow_plain_tcp),
                &["nodes", &idx, "engine"],
                c,
            );
        }
    }
    if !m.nodes.is_empty() && !m.nodes.iter().any(|n| n.role == Role::Manager) {
        c.err(
            &["nodes"],
            "no node has role: manager; a swarm needs at least one",
        );
    }
}

fn check_files(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    for (name, s) in &m.secrets {
        let n = name.as_str();
        match (&s.file, &s.environment, s.external) {
            (_, _, true) => {}
            (Some(_), Some(_), _) => c.err(
                &["secrets", n],
                "give one of `file` or `environment`, not both",
            ),
            (None, None, _) => c.err(
                &["secrets", n],
                "a secret needs `file`, `environment`, or `external: true`",
            ),
            (Some(f), None, _) if !project_dir.join(f).is_file() => c.err(
                &["secrets", n, "file"],
                format!("no file `{f}` (relative to the project directory)"),
            ),
            _ => {}
        }
    }
    for (name, s) in &m.configs {
        let n = name.as_str();
        match (&s.file, &s.content, s.external) {
            (_, _, true) => {}
            (Some(_), Some(_), _) => {
                c.err(&["configs", n], "give one of `file` or `content`, not both")
            }
            (None, None, _) => c.err(
                &["configs", n],
                "a config needs `file`, `content`, or `external: true`",
            ),
            (Some(f), None, _) if !project_dir.join(f).is_file() => c.err(
                &["configs", n, "file"],
                format!("no file `{f}` (relative to the project directory)"),
            ),
            _ => {}
        }
    }
    for (name, s) in &m.services {
        if let Some(files) = &s.env_file {
            for (i, f) in files.to_vec().iter().enumerate() {
                if !project_dir.join(f).is_file() {
                    let idx = i.to_string();
                    let path: Vec<&str> = match files {
                        StringOrList::String(_) => vec!["services", name, "env_file"],
                        StringOrList::List(_) => vec!["services", name, "env_file", &idx],
                    };
                    c.err(
                        &path,
                        format!("no env file `{f}` (relative to the project directory)"),
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Grammars of names and values (see `names`), characters, numbers, paths
// ---------------------------------------------------------------------------------------

impl Checker<'_> {
    /// Reports `what` at `path` when `check` refuses `value`: `` `VALUE` is not a valid
    /// WHAT: RULE ``. Values that came from variables are shown as written when the problem
    /// is printed (see `Sources::resolve`).
    fn grammar(
        &mut self,
        path: &[&str],
        value: &str,
        what: &str,
        check: fn(&str) -> Result<(), String>,
    ) {
        if let Err(rule) = check(value) {
            // A value with refused characters is reported by the character check; do not
            // quote it here.
            if names::check_line(value).is_ok() {
                self.err(path, format!("`{value}` is not a valid {what}: {rule}"));
            }
        }
    }
}

fn check_grammars(m: &Manifest, c: &mut Checker) {
    use names::*;
    for name in m.volumes.keys() {
        c.grammar(&["volumes", name], name, "volume name", object_name);
    }
    for name in m.configs.keys() {
        c.grammar(&["configs", name], name, "config name", object_name);
    }
    for name in m.secrets.keys() {
        c.grammar(&["secrets", name], name, "secret name", object_name);
        if let Some(var) = &m.secrets[name].environment {
            c.grammar(
                &["secrets", name, "environment"],
                var,
                "variable name",
                env_var_name,
            );
        }
    }
    if let Some(reg) = &m.registry {
        if let Some(ns) = &reg.namespace {
            c.grammar(&["registry", "namespace"], ns, "namespace", repository);
        }
    }
    for (name, img) in &m.images {
        if let Some(r) = &img.reference {
            if !r.is_empty() {
                c.grammar(
                    &["images", name, "ref"],
                    r,
                    "image reference",
                    image_reference,
                );
            }
        }
        if let Some(r) = &img.repository {
            c.grammar(&["images", name, "repository"], r, "repository", repository);
        }
        if let Some(b) = &img.build {
            c.grammar(
                &["images", name, "build", "context"],
                &b.context,
                "path",
                file_path,
            );
            if let Some(df) = &b.dockerfile {
                c.grammar(
                    &["images", name, "build", "dockerfile"],
                    df,
                    "path",
                    file_path,
                );
            }
            if let Some(t) = &b.target {
                c.grammar(
                    &["images", name, "build", "target"],
                    t,
                    "build stage",
                    object_name,
                );
            }
            for k in b.args.keys() {
                c.grammar(
                    &["images", name, "build", "args", k],
                    k,
                    "build argument name",
                    env_var_name,
                );
            }
        }
    }
    for (name, s) in &m.services {
        if is_full_reference(&s.image) {
            c.grammar(
                &["services", name, "image"],
                &s.image,
                "image reference",
                image_reference,
            );
        }
        for k in s.environment.0.keys() {
            c.grammar(
                &["services", name, "environment", k],
                k,
                "variable name",
                env_var_name,
            );
        }
        for k in s.labels.keys() {
            c.grammar(&["services", name, "labels", k], k, "label key", label_key);
        }
        if let Some(files) = &s.env_file {
            for f in files.to_vec() {
                c.grammar(&["services", name, "env_file"], &f, "path", file_path);
            }
        }
        for (i, r) in s.secrets.iter().chain(s.configs.iter()).enumerate() {
            if let Some(mode) = r.mode {
                if mode > 0o777 {
                    let (key, idx) = if i < s.secrets.len() {
                        ("secrets", i)
                    } else {
                        ("configs", i - s.secrets.len())
                    };
                    let idx = idx.to_string();
                    c.err(
                        &["services", name, key, &idx, "mode"],
                        format!("{mode} is not a file mode (0 to 511, i.e. 0o777)"),
                    );
                }
            }
        }
    }
    for (name, v) in &m.volumes {
        if let Some(v) = v {
            for k in v.labels.keys() {
                c.grammar(&["volumes", name, "labels", k], k, "label key", label_key);
            }
        }
    }
    for (i, n) in m.nodes.iter().enumerate() {
        let idx = i.to_string();
        c.grammar(&["nodes", &idx, "name"], &n.name, "node name", node_name);
        if !n.address.is_empty() && !n.address.contains(['/', ' ']) {
            c.grammar(
                &["nodes", &idx, "address"],
                &n.address,
                "host address",
                host_name,
            );
        }
        if let Some(u) = n.ssh.as_ref().and_then(|s| s.user.as_ref()) {
            c.grammar(&["nodes", &idx, "ssh", "user"], u, "user name", ssh_user);
        }
        if let Some(f) = n.ssh.as_ref().and_then(|s| s.identity_file.as_ref()) {
            c.grammar(
                &["nodes", &idx, "ssh", "identity_file"],
                f,
                "path",
                file_path,
            );
        }
        for k in n.labels.keys() {
            c.grammar(&["nodes", &idx, "labels", k], k, "label key", label_key);
        }
    }
    if let Some(p) = &m.proxy {
        if let Some(img) = &p.image {
            if is_full_reference(img) {
                c.grammar(&["proxy", "image"], img, "image reference", image_reference);
            }
        }
        for (i, r) in p.routes.iter().enumerate() {
            let idx = i.to_string();
            if let Some(path) = &r.path {
                if path.starts_with('/') {
                    c.grammar(
                        &["proxy", "routes", &idx, "path"],
                        path,
                        "route path",
                        request_path,
                    );
                }
            }
            if let Some(h) = &r.host {
                if !h.is_empty() && !h.contains(['/', ' ', ':']) {
                    c.grammar(&["proxy", "routes", &idx, "host"], h, "host", host_port);
                }
            }
            for (key, v) in [("health", &r.health), ("probe", &r.probe)] {
                if let Some(v) = v {
                    if v.starts_with('/') {
                        c.grammar(
                            &["proxy", "routes", &idx, key],
                            v,
                            "request path",
                            request_target,
                        );
                    }
                }
            }
        }
        if let Some(h) = p.health.as_ref().and_then(|h| h.path.as_ref()) {
            if h.starts_with('/') {
                c.grammar(
                    &["proxy", "health", "path"],
                    h,
                    "request path",
                    request_target,
                );
            }
        }
        if let Some(u) = p.stats.as_ref().and_then(|s| s.uri.as_ref()) {
            if u.starts_with('/') {
                c.grammar(&["proxy", "stats", "uri"], u, "stats uri", request_path);
            }
        }
    }
    if let Some(mon) = &m.monitoring {
        if is_full_reference(&mon.image) {
            c.grammar(
                &["monitoring", "image"],
                &mon.image,
                "image reference",
                image_reference,
            );
        }
        for (i, t) in mon.targets.iter().enumerate() {
            if let Some(p) = &t.path {
                let idx = i.to_string();
                c.grammar(
                    &["monitoring", "targets", &idx, "path"],
                    p,
                    "metrics path",
                    request_path,
                );
            }
        }
    }
}

/// Paths whose values are free text (multi-line, any printable character): config
/// content, descriptions, environment values, commands, healthcheck tests, build
/// arguments. Everything else (keys included) is a name or a single-line value.
fn is_free_text(path: &[String]) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        p.as_slice(),
        ["description"]
            | ["configs", _, "content"]
            | ["services", _, "environment", _]
            | ["services", _, "command" | "entrypoint", ..]
            | ["services", _, "healthcheck", "test", ..]
            | ["images", _, "build", "args", _]
    )
}

/// Every key and every scalar of the (interpolated) tree: no control, bidi or zero-width
/// characters in names and single-line values; no control characters but tab and line
/// breaks in free text. Walks with an explicit stack (the depth is bounded by the parser).
fn check_characters(root: &Node, out: &mut Vec<Problem>) {
    use super::yaml::Kind;
    let mut todo: Vec<(&Node, Vec<String>)> = vec![(root, Vec::new())];
    while let Some((node, path)) = todo.pop() {
        match &node.kind {
            Kind::Scalar(s, _) => {
                let r = if is_free_text(&path) {
                    names::check_text(s)
                } else {
                    names::check_line(s)
                };
                if let Err(e) = r {
                    out.push(Problem::at(
                        node.span,
                        &join_path(&path),
                        format!("the value {e}"),
                    ));
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    todo.push((item, p));
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let mut p = path.clone();
                    p.push(k.name.clone());
                    if let Err(e) = names::check_line(&k.name) {
                        out.push(Problem::at(k.span, &join_path(&p), format!("the key {e}")));
                    }
                    todo.push((v, p));
                }
            }
            Kind::Null => {}
        }
    }
}

/// Largest count anywhere (replicas, retries, parallelism, ...): beyond it a value is a typo,
/// and every count must fit the engine's signed 64-bit fields.
pub const MAX_COUNT: u64 = 100_000;
/// Longest duration: HAProxy takes at most 2^31-1 ms (about 24 days).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_millis((1 << 31) - 1);
/// Largest memory amount (64 TiB).
pub const MAX_MEMORY: u64 = 64 << 40;

fn check_numbers(m: &Manifest, c: &mut Checker) {
    fn count(c: &mut Checker, path: &[&str], v: Option<u64>, min: u64, max: u64) {
        if let Some(v) = v {
            if v < min || v > max {
                c.err(path, format!("{v} is out of range: use {min} to {max}"));
            }
        }
    }
    fn dur(c: &mut Checker, path: &[&str], d: Option<&Duration>, min_ms: u64) {
        if let Some(d) = d {
            let min = std::time::Duration::from_millis(min_ms);
            if d.0 < min || d.0 > MAX_DURATION {
                c.err(
                    path,
                    format!(
                        "`{}` is out of range: use {} to 24 days (whole milliseconds)",
                        humantime::format_duration(d.0),
                        if min_ms == 0 {
                            "0s".to_string()
                        } else {
                            format!("{min_ms}ms")
                        }
                    ),
                );
            } else if d.0.subsec_nanos() % 1_000_000 != 0 {
                c.err(
                    path,
                    format!("`{:?}` has a part below a millisecond, which would be lost; use whole milliseconds", d.0),
                );
            }
        }
    }
    for (name, s) in &m.services {
        let n = name.as_str();
        count(c, &["services", n, "replicas"], s.replicas, 0, MAX_COUNT);
        if let Some(h) = &s.healthcheck {
            let p = |k: &'static str| ["services", n, "healthcheck", k];
            dur(c, &p("interval"), h.interval.as_ref(), 1);
            dur(c, &p("timeout"), h.timeout.as_ref(), 1);
            dur(c, &p("start_period"), h.start_period.as_ref(), 0);
            count(c, &p("retries"), h.retries, 0, 1000);
        }
        if let Some(pl) = &s.placement {
            count(
                c,
                &["services", n, "placement", "max_replicas_per_node"],
                pl.max_replicas_per_node,
                1,
                MAX_COUNT,
            );
        }
        for (key, u) in [("update", &s.update), ("rollback", &s.rollback)] {
            if let Some(u) = u {
                count(
                    c,
                    &["services", n, key, "parallelism"],
                    u.parallelism,
                    0,
                    MAX_COUNT,
                );
                dur(c, &["services", n, key, "delay"], u.delay.as_ref(), 0);
                dur(c, &["services", n, key, "monitor"], u.monitor.as_ref(), 0);
            }
        }
        if let Some(r) = &s.restart {
            count(
                c,
                &["services", n, "restart", "max_attempts"],
                r.max_attempts,
                0,
                MAX_COUNT,
            );
            dur(c, &["services", n, "restart", "delay"], r.delay.as_ref(), 0);
            dur(
                c,
                &["services", n, "restart", "window"],
                r.window.as_ref(),
                0,
            );
        }
        dur(
            c,
            &["services", n, "stop_grace_period"],
            s.stop_grace_period.as_ref(),
            0,
        );
        if let Some(res) = &s.resources {
            for (k, spec) in [("limits", &res.limits), ("reservations", &res.reservations)] {
                if let Some(mem) = spec.as_ref().and_then(|x| x.memory) {
                    if mem.0 > MAX_MEMORY {
                        c.err(
                            &["services", n, "resources", k, "memory"],
                            format!(
                                "{} bytes is more than the largest amount twip takes (64T)",
                                mem.0
                            ),
                        );
                    }
                }
            }
        }
        if let Some(a) = &s.autoscale {
            count(
                c,
                &["services", n, "autoscale", "max"],
                Some(a.max),
                1,
                MAX_COUNT,
            );
            count(
                c,
                &["services", n, "autoscale", "max_step"],
                a.max_step,
                1,
                MAX_COUNT,
            );
            if !a.target.is_finite() || a.target > 1e9 {
                c.err(
                    &["services", n, "autoscale", "target"],
                    "the target is out of range: use more than 0, up to 1e9",
                );
            }
            dur(
                c,
                &["services", n, "autoscale", "scale_down_window"],
                a.scale_down_window.as_ref(),
                0,
            );
        }
    }
    if let Some(p) = &m.proxy {
        count(c, &["proxy", "replicas"], p.replicas, 0, MAX_COUNT);
        if let Some(pl) = &p.placement {
            count(
                c,
                &["proxy", "placement", "max_replicas_per_node"],
                pl.max_replicas_per_node,
                1,
                MAX_COUNT,
            );
        }
        if let Some(t) = &p.timeouts {
            dur(c, &["proxy", "timeouts", "connect"], t.connect.as_ref(), 1);
            dur(c, &["proxy", "timeouts", "client"], t.client.as_ref(), 1);
            dur(c, &["proxy", "timeouts", "server"], t.server.as_ref(), 1);
        }
        if let Some(h) = &p.health {
            dur(c, &["proxy", "health", "interval"], h.interval.as_ref(), 1);
            count(c, &["proxy", "health", "fall"], h.fall, 1, 1000);
            count(c, &["proxy", "health", "rise"], h.rise, 1, 1000);
        }
        if let Some(st) = &p.stats {
            dur(c, &["proxy", "stats", "refresh"], st.refresh.as_ref(), 1000);
        }
        for (i, r) in p.routes.iter().enumerate() {
            if r.port == Some(0) {
                let idx = i.to_string();
                c.err(
                    &["proxy", "routes", &idx, "port"],
                    "0 is not a port: use 1 to 65535",
                );
            }
        }
        if p.port == Some(0) {
            c.err(&["proxy", "port"], "0 is not a port: use 1 to 65535");
        }
    }
    if let Some(mon) = &m.monitoring {
        dur(
            c,
            &["monitoring", "scrape_interval"],
            mon.scrape_interval.as_ref(),
            1000,
        );
        if mon.port == Some(0) {
            c.err(&["monitoring", "port"], "0 is not a port: use 1 to 65535");
        }
        for (i, t) in mon.targets.iter().enumerate() {
            if t.port == 0 {
                let idx = i.to_string();
                c.err(
                    &["monitoring", "targets", &idx, "port"],
                    "0 is not a port: use 1 to 65535",
                );
            }
        }
    }
}

/// Directories never read, whatever `allow_paths_outside_project` says.
const NEVER: &[&str] = &["/proc", "/sys", "/dev"];

/// Resolves `rel` (relative to `base`, symlinks included) and says whether it stays in the
/// project directory or in one of the allowed directories. A path that does not exist is
/// left to the checks that look for it.
pub fn stays_in_project(
    project_dir: &Path,
    base: &Path,
    rel: &str,
    allowed: &[String],
) -> Result<(), String> {
    let Ok(target) = base.join(rel).canonicalize() else {
        return Ok(());
    };
    let never = NEVER.iter().any(|n| target.starts_with(n));
    if never {
        return Err("resolves into /proc, /sys or /dev, which twip never reads".to_string());
    }
    let project = project_dir
        .canonicalize()
        .unwrap_or_else(|_| project_dir.to_path_buf());
    if target.starts_with(&project) {
        return Ok(());
    }
    for a in allowed {
        if let Ok(dir) = Path::new(a).canonicalize() {
            if Path::new(a).is_absolute() && target.starts_with(&dir) {
                return Ok(());
            }
        }
    }
    Err("leaves the project directory (symlinks are followed); move it into the project, or list its directory in allow_paths_outside_project".to_string())
}

fn check_paths(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    let allowed = &m.allow_paths_outside_project;
    for (i, a) in allowed.iter().enumerate() {
        if !Path::new(a).is_absolute() {
            let idx = i.to_string();
            c.err(
                &["allow_paths_outside_project", &idx],
                "write an absolute directory (paths inside the project need no entry)",
            );
        }
    }
    let one = |c: &mut Checker, path: &[&str], base: &Path, rel: &str| {
        if let Err(e) = stays_in_project(project_dir, base, rel, allowed) {
            c.err(path, format!("the path {e}"));
        }
    };
    for (name, s) in &m.secrets {
        if let Some(f) = &s.file {
            one(c, &["secrets", name, "file"], project_dir, f);
        }
    }
    for (name, s) in &m.configs {
        if let Some(f) = &s.file {
            one(c, &["configs", name, "file"], project_dir, f);
        }
    }
    for (name, s) in &m.services {
        if let Some(files) = &s.env_file {
            for (i, f) in files.to_vec().iter().enumerate() {
                let idx = i.to_string();
                let path: Vec<&str> = match files {
                    StringOrList::String(_) => vec!["services", name, "env_file"],
                    StringOrList::List(_) => vec!["services", name, "env_file", &idx],
                };
                one(c, &path, project_dir, f);
            }
        }
    }
    // Build contexts (sent to the builder, not to the swarm) may also come from the git
    // repository the project is in: a monorepo's shared image directories.
    let repo = project_dir.canonicalize().ok().and_then(|p| {
        p.ancestors()
            .find(|a| a.join(".git").exists())
            .map(|a| a.to_string_lossy().to_string())
    });
    let mut build_allowed = allowed.clone();
    build_allowed.extend(repo);
    let one = |c: &mut Checker, path: &[&str], base: &Path, rel: &str| {
        if let Err(e) = stays_in_project(project_dir, base, rel, &build_allowed) {
            c.err(path, format!("the path {e}"));
        }
    };
    for (name, img) in &m.images {
        if let Some(b) = &img.build {
            one(
                c,
                &["images", name, "build", "context"],
                project_dir,
                &b.context,
            );
            let ctx = project_dir.join(&b.context);
            let df = b.dockerfile.as_deref().unwrap_or("Dockerfile");
            one(c, &["images", name, "build", dockerfile_key(b)], &ctx, df);
        }
    }
}
