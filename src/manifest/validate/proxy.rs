//! The `proxy` and `monitoring` sections: routes to services that exist, on ports they have.

use super::images::check_image_ref;
use super::services::check_placement;
use super::{did_you_mean, Checker};
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
