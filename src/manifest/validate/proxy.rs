//! The `proxy` and `monitoring` sections: routes to services that exist, on ports they have.

use super::images::check_image_ref;
use super::services::check_placement;
use super::{did_you_mean, Checker, VIP_SERVICE};
use crate::manifest::model::*;

pub(super) fn check_proxy(m: &Manifest, c: &mut Checker) {
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
    if let Some(v) = &p.vip {
        check_vip(m, v, c);
    }
}

/// `proxy.vip`: an IPv4 address, an interface name, a router id 1-255, a secret that exists,
/// keepalived's image. Written as a bare address, problems are reported at `proxy.vip`.
fn check_vip(m: &Manifest, v: &Vip, c: &mut Checker) {
    let short = v.interface.is_none()
        && v.router_id.is_none()
        && v.password_secret.is_none()
        && v.image.is_none();
    let at = |key: &'static str| -> Vec<&'static str> {
        if short {
            vec!["proxy", "vip"]
        } else {
            vec!["proxy", "vip", key]
        }
    };
    if let Err(e) = crate::manifest::names::ipv4_address(&v.address) {
        c.err(&at("address"), format!("`{}`: {e}", v.address));
    }
    if let Some(i) = &v.interface {
        if let Err(e) = crate::manifest::names::interface_name(i) {
            c.err(&at("interface"), format!("`{i}`: {e}"));
        }
    }
    if let Some(r) = v.router_id {
        if !(1..=255).contains(&r) {
            c.err(
                &at("router_id"),
                format!("{r}: a VRRP router id is 1 to 255"),
            );
        }
    }
    if let Some(s) = &v.password_secret {
        if !m.secrets.contains_key(s) {
            c.err(
                &at("password_secret"),
                format!(
                    "undefined secret `{s}`{}",
                    did_you_mean(s, m.secrets.keys().map(String::as_str))
                ),
            );
        }
    }
    check_image_ref(
        m,
        v.image.as_deref().unwrap_or("keepalived"),
        &at("image"),
        c,
    );
    if m.networks.contains_key("host") {
        c.err(
            &["networks", "host"],
            "`host` is the node's own network, which keepalived joins for `proxy.vip`; rename this one",
        );
    }
    if m.services.contains_key(VIP_SERVICE) {
        c.err(
            &["services", VIP_SERVICE],
            format!("`{VIP_SERVICE}` is the name of the service twip adds for `proxy.vip`; rename this one"),
        );
    }
}

pub(super) fn check_monitoring(m: &Manifest, c: &mut Checker) {
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
