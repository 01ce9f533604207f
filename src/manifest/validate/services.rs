//! Services: names, modes, references to networks, volumes, secrets and configs,
//! healthchecks, resources, autoscaling, placement, and ports that would collide.

use std::path::Path;

use super::images::check_image_ref;
use super::{did_you_mean, valid_name, Checker, MONITORING_SERVICE, PROXY_SERVICE};
use crate::manifest::diag::join_path;
use crate::manifest::model::*;
use crate::manifest::names;

fn max_tasks(mode: Mode, replicas: Option<u64>, autoscale: Option<&Autoscale>) -> u64 {
    match mode {
        Mode::Global => 1,
        Mode::Replicated => replicas.unwrap_or(1).max(autoscale.map_or(0, |a| a.max)),
    }
}

pub(super) fn check_services(m: &Manifest, project_dir: &Path, c: &mut Checker) {
    let _ = project_dir;
    for (name, s) in &m.services {
        let n = name.as_str();
        check_service_identity(m, n, s, c);
        check_service_references(m, "services", n, s, c);
        check_healthcheck(s, n, c);
        check_service_limits(s, n, c);
        check_autoscale(s, n, c);
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

/// A service's name (valid, and not one twip adds), its image, and what a global mode rules out.
fn check_service_identity(m: &Manifest, n: &str, s: &Service, c: &mut Checker) {
    if let Err(rule) = names::service_name(n) {
        c.err(
            &["services", n],
            format!("`{n}` is not a valid service name: {rule}"),
        );
    }
    if (m.proxy.is_some() && n == PROXY_SERVICE)
        || (m.monitoring.as_ref().is_some_and(|x| x.enabled) && n == MONITORING_SERVICE)
    {
        c.err(
            &["services", n],
            format!(
                "`{n}` is the name of the service twip adds for the `{}` section; rename this one",
                if n == PROXY_SERVICE {
                    "proxy"
                } else {
                    "monitoring"
                }
            ),
        );
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
}

/// Placement, and the networks, volumes, secrets and configs a service names exist.
pub(super) fn check_service_references(
    m: &Manifest,
    section: &str,
    n: &str,
    s: &Service,
    c: &mut Checker,
) {
    if let Some(p) = &s.placement {
        check_placement(p, &[section, n, "placement"], c);
    }
    for (i, net) in s.networks.iter().enumerate() {
        if net != "default" && !m.networks.contains_key(net) {
            let idx = i.to_string();
            c.err(
                &[section, n, "networks", &idx],
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
                    &[section, n, "volumes", &idx],
                    format!(
                        "undefined volume `{src}`{}; declare it under `volumes:`",
                        did_you_mean(src, m.volumes.keys().map(String::as_str))
                    ),
                );
            }
            (MountKind::Bind, None) => c.err(
                &[section, n, "volumes", &idx],
                "a bind mount needs a source path",
            ),
            (MountKind::Tmpfs, Some(_)) => c.err(
                &[section, n, "volumes", &idx],
                "a tmpfs mount takes no source",
            ),
            _ => {}
        }
        if !v.target.starts_with('/') {
            c.err(
                &[section, n, "volumes", &idx],
                format!("the target `{}` must be an absolute path", v.target),
            );
        }
    }
    for (i, r) in s.secrets.iter().enumerate() {
        if !m.secrets.contains_key(&r.source) {
            let idx = i.to_string();
            c.err(
                &[section, n, "secrets", &idx],
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
                &[section, n, "configs", &idx],
                format!(
                    "undefined config `{}`{}",
                    r.source,
                    did_you_mean(&r.source, m.configs.keys().map(String::as_str))
                ),
            );
        }
    }
}

fn check_healthcheck(s: &Service, n: &str, c: &mut Checker) {
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
}

/// Update and rollback failure ratios, and resource reservations within their limits.
fn check_service_limits(s: &Service, n: &str, c: &mut Checker) {
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
}

/// An autoscale range that holds together, and the replica count inside it.
fn check_autoscale(s: &Service, n: &str, c: &mut Checker) {
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

pub(super) fn check_placement(p: &Placement, path: &[&str], c: &mut Checker) {
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

pub(super) fn check_ports(m: &Manifest, c: &mut Checker) {
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
        if let Some(t) = &p.tls {
            let mut path = vec!["proxy".to_string(), "tls".to_string()];
            if t.port.is_some() {
                path.push("port".into());
            }
            publish(t.port.unwrap_or(443), Protocol::Tcp, path, c);
        }
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
