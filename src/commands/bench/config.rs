//! `twip bench`'s arguments checked and turned into a [`load::Config`]: the request (method,
//! headers, body) and the URL (given, or an environment's proxy entrypoint).

use std::time::Duration;

use crate::cli::{BenchArgs, GlobalArgs};
use crate::exit::invalid;
use crate::http::{self, Url};
use crate::load;

/// The run the arguments ask for, every argument checked before anything is sent (exit 2).
pub(super) fn config(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<load::Config> {
    if args.connections == 0 {
        return Err(invalid("-c must be at least 1"));
    }
    if args.threads == Some(0) {
        return Err(invalid("--threads must be at least 1"));
    }
    if args.requests == Some(0) {
        return Err(invalid("-n must be at least 1"));
    }
    if args.duration == Some(Duration::ZERO) {
        return Err(invalid("-z must be longer than 0"));
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(invalid(
                "--rate must be a number of requests per second above 0",
            ));
        }
    }
    let r = &args.request;
    let headers = r
        .headers
        .iter()
        .map(|h| http::parse_header(h).map_err(invalid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body: Option<Vec<u8>> = match (&r.data, &r.data_file) {
        (Some(d), _) => Some(d.clone().into_bytes()),
        (None, Some(f)) => Some(
            std::fs::read(f)
                .map_err(|e| invalid(format!("cannot read the body file {}: {e}", f.display())))?,
        ),
        (None, None) => None,
    };
    let method = match &r.method {
        Some(m) => {
            let m = m.to_ascii_uppercase();
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
                return Err(invalid(format!("`{m}` is not an HTTP method")));
            }
            m
        }
        None if body.is_some() => "POST".to_string(),
        None => "GET".to_string(),
    };
    http::check_framing(&headers, body.as_deref()).map_err(invalid)?;
    Ok(load::Config {
        url: resolve_url(args, global)?,
        method,
        headers,
        body,
        content_type: r.content_type.clone(),
        keepalive: !args.no_keepalive,
        connections: args.connections,
        threads: args.threads,
        requests: args.requests,
        duration: args.duration,
        rate: args.rate,
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        max_head: args.max_header_size,
        retry_idempotent: args.retry_idempotent,
        busy_poll: args.busy_poll,
        nap: args.nap,
        sched: match args.sched.as_str() {
            "normal" => load::Sched::Normal,
            _ => load::Sched::Batch,
        },
        verify: match (&args.tls.cacert, args.tls.insecure) {
            (_, true) => crate::tls::client::Verify::Insecure,
            (Some(f), _) => {
                crate::tls::client::Verify::Roots(std::fs::read(f).map_err(|e| {
                    invalid(format!("cannot read the CA file {}: {e}", f.display()))
                })?)
            }
            (None, false) => crate::tls::client::Verify::System,
        },
    })
}

/// The URL a TARGET stands for: itself, or an environment's proxy entrypoint.
fn resolve_url(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<Url> {
    let mut target = if args.target.contains("://") {
        if args.lab.is_some() {
            return Err(invalid(
                "--lab says which lab an environment runs on: give ENV, not a URL",
            ));
        }
        Url::parse(&args.target).map_err(invalid)?
    } else {
        let project = crate::project::Project::discover(global.project_dir.as_deref())?;
        let env = project.load(&args.target)?;
        env.manifest.proxy.as_ref().ok_or_else(|| {
            invalid(format!(
                "environment `{}` has no `proxy` section, so it has no entrypoint to bench; \
                 give a URL instead (twip bench http://HOST:PORT/PATH)",
                args.target
            ))
        })?;
        let lab = args.lab.as_deref().map(crate::lab::Lab::load).transpose()?;
        let url = crate::render::context::vip::vip_url(&env)
            .or_else(|| crate::context::entrypoint_on(&env, lab.as_ref()))
            .unwrap_or_else(|| "http://127.0.0.1/".into());
        Url::parse(&url)
            .map_err(|e| invalid(format!("environment `{}`: proxy.url {e}", args.target)))?
    };
    if let Some(p) = &args.request.path {
        let path = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        http::check_request_target(&path).map_err(|e| invalid(format!("--path: {e}")))?;
        target.path = path;
    }
    Ok(target)
}
